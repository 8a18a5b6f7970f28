//! `sstream product-streams register`: announcing a published image-ids stream in Keystone,
//! as the glance-simplestreams-sync charm does, so that Juju finds it.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use glance_target::{Session, PRODUCT_STREAMS};

/// Keystone's `product-streams` service.
#[derive(Debug, Args)]
pub struct ProductStreamsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ProductStreamsCommand,
}

/// The `product-streams` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProductStreamsCommand {
    /// Create (or update) the service and its public, internal and admin endpoints at URL.
    Register(RegisterArgs),
}

/// `sstream product-streams register URL`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The region of the endpoints (default: OS_REGION_NAME, else every region with an image
    /// endpoint).
    #[arg(long)]
    pub region: Vec<String>,
    /// Where the stream is served: the root holding streams/v1/ (e.g. the public URL of
    /// `swift://simplestreams/data`).
    #[arg(value_name = "URL")]
    pub url: String,
}

/// Runs `sstream product-streams`.
pub fn run(args: ProductStreamsArgs) -> anyhow::Result<ExitCode> {
    let ProductStreamsCommand::Register(args) = args.command;
    let rt = crate::common::runtime()?;
    rt.block_on(async {
        let session = Session::from_env().context("cannot read the OpenStack credentials")?;
        let regions = if !args.region.is_empty() {
            args.region.clone()
        } else if let Some(r) = session.config().region_name.clone() {
            vec![r]
        } else {
            session.regions("image").await?
        };
        anyhow::ensure!(!regions.is_empty(), "no region: give --region");
        for region in regions {
            let done = session
                .register_endpoints(&PRODUCT_STREAMS, &region, &args.url)
                .await
                .with_context(|| format!("cannot register product-streams in {region}"))?;
            let what = if done.changed() {
                format!(
                    "service {}, endpoints created {:?}, updated {:?}, duplicates removed {}",
                    if done.service_created {
                        "created"
                    } else {
                        "kept"
                    },
                    done.created,
                    done.updated,
                    done.removed_duplicates
                )
            } else {
                "unchanged".to_string()
            };
            println!("{region}: product-streams {}: {what}", args.url);
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
