//! `sstream glance-images`: the images a sync keeps in Glance, with the properties it set, like
//! `openstack image list --long` restricted to our project (no python client needed).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use glance_target::{GlanceClient, Image, ListQuery, Session};

/// Properties a sync sets, shown as columns (the others with `--long`).
const COLUMNS: [&str; 5] = [
    "product_name",
    "version_name",
    "item_name",
    "os_version",
    "architecture",
];

/// List the images of our project in Glance, with the properties `sstream-mirror-glance` sets.
///
/// Credentials come from the `OS_*` variables or `clouds.yaml` (`OS_CLOUD`), as for
/// sstream-mirror-glance.
#[derive(Debug, Args)]
pub struct GlanceImagesArgs {
    /// Only images with this content_id property (as given to sstream-mirror-glance).
    #[arg(long, value_name = "ID")]
    pub content_id: Option<String>,
    /// Region of the image endpoint (default: the first with one).
    #[arg(long)]
    pub region: Option<String>,
    /// Also print every other property, one per line under each image.
    #[arg(long)]
    pub long: bool,
}

/// Runs `sstream glance-images`.
pub fn run(args: GlanceImagesArgs) -> anyhow::Result<ExitCode> {
    let rt = crate::common::runtime()?;
    let images = rt.block_on(list(&args))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<36}  {:<8}  {:>12}  {}  name",
        "id",
        "status",
        "size",
        COLUMNS.join("  ")
    )?;
    for image in &images {
        let columns: Vec<&str> = COLUMNS
            .iter()
            .map(|c| image.property(c).unwrap_or("-"))
            .collect();
        let size = image
            .size
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "{:<36}  {:<8}  {:>12}  {}  {}",
            image.id,
            image.status,
            size,
            columns.join("  "),
            image.name.as_deref().unwrap_or("")
        )?;
        if args.long {
            for (key, value) in &image.properties {
                if let Some(value) = value.as_str().filter(|_| !COLUMNS.contains(&key.as_str())) {
                    writeln!(out, "    {key}={value}")?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(args: &GlanceImagesArgs) -> anyhow::Result<Vec<Image>> {
    let session = Session::from_env().context("cannot read the OpenStack credentials")?;
    let token = session.token().await?;
    let project = token
        .project_id
        .clone()
        .context("the token is not scoped to a project")?;
    let glance = match &args.region {
        Some(region) => GlanceClient::for_region(&session, region).await?,
        None => GlanceClient::new(&session).await?,
    };
    let mut query = ListQuery::new().filter("owner", project).sort("name:asc");
    if let Some(content_id) = &args.content_id {
        query = query.filter("content_id", content_id.as_str());
    }
    Ok(glance.list(&query).await?)
}
