//! `sstream-mirror-glance`: keep OpenStack Glance in sync with a simplestreams image stream and
//! publish what the cloud holds as an `image-ids` stream. A drop-in for the reference command:
//! the same flags with the same meanings (those the glance-simplestreams-sync charm passes
//! included), plus `--dry-run` and `--no-verify`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _};
use clap::{Parser, ValueEnum};
use glance_target::image_ids::CloudInfo;
use glance_target::properties::{parse_custom_property, ImageSettings};
use glance_target::{GlanceClient, GlanceEvent, GlanceTarget, GlanceTargetOptions, Session};
use simplestreams_core::{FilterSet, PlanLimits};
use simplestreams_mirror::{
    open_source, split_entry, FallbackSource, HttpConfig, ItemKey, MetadataMode, Mirror, Progress,
    Source, SyncOptions,
};

use crate::source::engine_signature_policy;

/// The item filters used when none are given (the reference's).
pub const DEFAULT_FILTERS: [&str; 2] = ["ftype~(disk1.img|disk.img)", "arch~(x86_64|amd64|i386)"];

/// Image visibility in Glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Visibility {
    /// Everyone (needs the admin role by default).
    Public,
    /// The owning project only.
    Private,
    /// Every project may use it; listed only on request.
    Community,
    /// Projects the image is shared with.
    Shared,
}

/// Keep OpenStack Glance in sync with a simplestreams image stream.
#[derive(Debug, Parser)]
#[command(
    name = "sstream-mirror-glance",
    version,
    after_help = "Credentials come from the OS_* variables of an openrc file, or the clouds.yaml \
                  cloud named by OS_CLOUD.\n\nFILTERS are KEY=VALUE, KEY!=VALUE, KEY~REGEX or \
                  KEY!~REGEX on the flattened item fields (default: \
                  'ftype~(disk1.img|disk.img)' 'arch~(x86_64|amd64|i386)').\n\nExample:\n  \
                  sstream-mirror-glance --max 1 --cloud-name mycloud --content-id \
                  'auto.sync:%(region)s' --output-dir /srv/image-ids \
                  https://cloud-images.ubuntu.com/releases/ release=noble"
)]
pub struct MirrorGlanceArgs {
    /// Keep images up to MAX versions even after they have left the source.
    #[arg(long, requires = "max")]
    pub keep: bool,
    /// Keep at most MAX versions of each product in Glance.
    #[arg(long, value_name = "MAX")]
    pub max: Option<usize>,
    /// Operate on this region (repeatable; default: every region with an image endpoint).
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,
    /// Another mirror of the source, tried when a file is missing there (repeatable).
    #[arg(long = "mirror", value_name = "URL")]
    pub mirrors: Vec<String>,
    /// Sync from this index or products file in the mirror.
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// Write the image-ids stream to DIR/REGION/.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Write the image-ids stream to Swift under PREFIX (not supported yet).
    #[arg(long, value_name = "PREFIX", conflicts_with = "output_dir")]
    pub output_swift: Option<String>,
    /// Prefix of every image name.
    #[arg(long, value_name = "PREFIX")]
    pub name_prefix: Option<String>,
    /// A unique name for this cloud (the index's "cloudname").
    #[arg(long, value_name = "NAME", required = true)]
    pub cloud_name: String,
    /// Run CMD on each image (a temporary file, IMAGE_PATH) before uploading it.
    #[arg(long, value_name = "CMD")]
    pub modify_hook: Option<String>,
    /// The content id of our images and of the published stream; may contain "%(region)s".
    #[arg(long, value_name = "NAME", required = true)]
    pub content_id: String,
    /// Show one line per finished image.
    #[arg(long)]
    pub progress: bool,
    /// More output (-v: info, -vv: debug).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Write log messages to this file instead of stderr.
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// OpenPGP keyring to verify a signed (.sjson) source with.
    #[arg(long, value_name = "KEYRING")]
    pub keyring: Vec<PathBuf>,
    /// Set hypervisor_type on images and virt in the stream, from the ftype.
    #[arg(long)]
    pub hypervisor_mapping: bool,
    /// An extra image property KEY=VALUE (repeatable; the value may contain '=').
    #[arg(long = "custom-property", value_name = "KEY=VALUE")]
    pub custom_properties: Vec<String>,
    /// Visibility of the images.
    #[arg(long, value_enum, default_value = "public")]
    pub visibility: Visibility,
    /// Upload raw images through Glance's import flow (which may convert them).
    #[arg(long)]
    pub image_import_conversion: bool,
    /// Leave latest=true on the newest image of each os_version + architecture only.
    #[arg(long)]
    pub set_latest_property: bool,
    /// Only print the plan: "+ product version item path size" for each image to upload,
    /// "- product version item image-id size" for each to delete.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not check signatures of a signed source.
    #[arg(short = 'U', long = "no-verify")]
    pub no_verify: bool,
    /// Images uploaded in parallel.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 2)]
    pub jobs: usize,
    /// Mirror URL, or the URL of an index or products file.
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// Item filters.
    #[arg(value_name = "FILTERS")]
    pub filters: Vec<String>,
}

/// Substitutes `%(region)s` (and `%%`) in a content id as Python's `%` operator does.
pub fn content_id_for(template: &str, region: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(r) = tail.strip_prefix("%(region)s") {
            out.push_str(region);
            rest = r;
        } else if let Some(r) = tail.strip_prefix("%%") {
            out.push('%');
            rest = r;
        } else {
            bail!("--content-id {template:?}: only %(region)s and %% may follow a '%'");
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// What the arguments mean, checked before anything is contacted.
struct Plan {
    options: SyncOptions,
    settings: ImageSettings,
    modify_hook: Option<Vec<String>>,
}

fn validate(args: &MirrorGlanceArgs) -> anyhow::Result<Plan> {
    if args.output_swift.is_some() {
        bail!(
            "--output-swift is not supported yet: publishing the image-ids stream to Swift comes \
             with the Swift target; use --output-dir DIR for now"
        );
    }
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    content_id_for(&args.content_id, "region")?;
    let filters = if args.filters.is_empty() {
        FilterSet::parse(&DEFAULT_FILTERS)?
    } else {
        FilterSet::parse(&args.filters)?
    };
    let custom_properties = args
        .custom_properties
        .iter()
        .map(|p| parse_custom_property(p).map_err(|e| anyhow::anyhow!("--custom-property {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (_, entry) = split_entry(&args.source, args.path.as_deref());
    let signatures = engine_signature_policy(&entry, !args.no_verify, &args.keyring)?;
    let modify_hook = match &args.modify_hook {
        Some(cmd) => {
            let words: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
            if words.is_empty() {
                bail!("--modify-hook is empty");
            }
            Some(words)
        }
        None => None,
    };
    Ok(Plan {
        options: SyncOptions {
            entry,
            filters,
            limits: PlanLimits {
                max: args.max,
                keep: args.keep,
            },
            item_download: true,
            jobs: args.jobs,
            metadata: MetadataMode::Verbatim,
            signatures,
            signing_key: None,
        },
        settings: ImageSettings {
            content_id: String::new(),
            name_prefix: args.name_prefix.clone().unwrap_or_default(),
            hypervisor_mapping: args.hypervisor_mapping,
            custom_properties,
            import_conversion: args.image_import_conversion,
        },
        modify_hook,
    })
}

/// Runs `sstream-mirror-glance`.
pub fn run(args: MirrorGlanceArgs) -> anyhow::Result<ExitCode> {
    crate::common::init_logging(args.verbose, args.log_file.as_deref())?;
    let plan = validate(&args)?;
    let rt = crate::common::runtime()?;
    rt.block_on(run_async(args, plan))
}

fn source_of(args: &MirrorGlanceArgs) -> anyhow::Result<Arc<dyn Source>> {
    let http = HttpConfig::default();
    let (root, _) = split_entry(&args.source, args.path.as_deref());
    let mut sources: Vec<Arc<dyn Source>> = vec![open_source(&root, &http)?];
    for m in &args.mirrors {
        sources.push(open_source(m, &http)?);
    }
    Ok(Arc::new(FallbackSource::new(sources)?))
}

fn print_event(e: &GlanceEvent) {
    let mut out = std::io::stdout().lock();
    // Reference format; a closed stdout must not stop the sync half-way.
    let _ = match e {
        GlanceEvent::Created { id, name } => writeln!(out, "created {id}: {name}"),
        GlanceEvent::Removing { id, name } => writeln!(out, "removing {id}: {name}"),
        GlanceEvent::CleanedUp { id, status } => {
            tracing::warn!("deleted unfinished image {id} ({status}) left by an interrupted sync");
            Ok(())
        }
        _ => Ok(()),
    };
}

async fn run_async(args: MirrorGlanceArgs, plan: Plan) -> anyhow::Result<ExitCode> {
    let session = Session::from_env().context("cannot read the OpenStack credentials")?;
    let token = session.token().await.context("cannot authenticate")?;
    let Some(project_id) = token.project_id.clone() else {
        bail!("the token is not scoped to a project: set OS_PROJECT_NAME or OS_PROJECT_ID");
    };
    let regions = if args.regions.is_empty() {
        session.regions("image").await?
    } else {
        args.regions.clone()
    };
    if regions.is_empty() {
        bail!("the service catalog has no image endpoint");
    }
    if args.output_dir.is_none() && !args.dry_run {
        eprintln!("not writing data anywhere");
    }
    let source = source_of(&args)?;
    let mut ok = true;
    for region in &regions {
        let content_id = content_id_for(&args.content_id, region)?;
        let glance = GlanceClient::for_region(&session, region)
            .await
            .with_context(|| format!("region {region}"))?;
        let options = GlanceTargetOptions {
            settings: ImageSettings {
                content_id: content_id.clone(),
                ..plan.settings.clone()
            },
            visibility: format!("{:?}", args.visibility).to_lowercase(),
            modify_hook: plan.modify_hook.clone(),
            events: Arc::new(print_event),
            ..GlanceTargetOptions::default()
        };
        let target = Arc::new(GlanceTarget::new(glance, project_id.clone(), options));
        let mirror = Mirror::new(source.clone(), target.clone(), plan.options.clone());
        if args.dry_run {
            print_plan(&mirror.plan().await?)?;
            continue;
        }
        let mirror = if args.progress {
            mirror.with_progress(Arc::new(Lines::default()))
        } else {
            mirror
        };
        let started = Instant::now();
        let report = mirror
            .run()
            .await
            .with_context(|| format!("cannot sync {} into {target}", args.source))?;
        for e in &report.errors {
            eprintln!("sstream-mirror-glance: error: {e}");
        }
        ok &= report.is_success();
        let cloud = CloudInfo {
            content_id,
            cloud_name: args.cloud_name.clone(),
            region: region.clone(),
            endpoint: session.config().auth_url.clone(),
            owner_id: project_id.clone(),
            hypervisor_mapping: args.hypervisor_mapping,
        };
        let dir = args.output_dir.as_ref().map(|d| d.join(region));
        if let Err(e) = target
            .finish(
                args.set_latest_property,
                dir.as_deref().map(|d| (d, &cloud)),
            )
            .await
        {
            eprintln!("sstream-mirror-glance: error: {region}: {e}");
            ok = false;
        }
        tracing::info!(
            "{region}: {} image(s) uploaded, {} removed in {:.2}s",
            report.downloaded,
            report.removed,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_plan(lines: &[simplestreams_mirror::PlanLine]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for l in lines {
        let k = &l.key;
        writeln!(
            out,
            "{} {} {} {} {} {}",
            l.op,
            k.product,
            k.version,
            k.item,
            l.path,
            l.size.unwrap_or(0)
        )?;
    }
    writeln!(
        out,
        "total: {} to upload, {} to delete",
        lines.iter().filter(|l| l.op == '+').count(),
        lines.iter().filter(|l| l.op == '-').count()
    )?;
    Ok(())
}

/// `--progress`: a line per finished image on stderr.
#[derive(Default)]
struct Lines {
    total: std::sync::atomic::AtomicU64,
    done: std::sync::atomic::AtomicU64,
}

impl Progress for Lines {
    fn start(&self, items: u64, _bytes: u64) {
        self.total
            .store(items, std::sync::atomic::Ordering::Relaxed);
    }

    fn item_done(&self, key: &ItemKey, ok: bool) {
        let done = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let total = self.total.load(std::sync::atomic::Ordering::Relaxed);
        let status = if ok { "ok" } else { "FAILED" };
        eprintln!("[{done}/{total}] {key}: {status}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_id_takes_the_region_like_python() {
        assert_eq!(
            content_id_for("auto.sync:%(region)s", "RegionOne").ok(),
            Some("auto.sync:RegionOne".to_string())
        );
        assert_eq!(content_id_for("a%%b", "r").ok(), Some("a%b".to_string()));
        assert_eq!(content_id_for("plain", "r").ok(), Some("plain".to_string()));
        assert!(content_id_for("bad %s", "r").is_err());
    }

    #[test]
    fn default_filters_apply_when_none_are_given() {
        let args = MirrorGlanceArgs::parse_from([
            "sstream-mirror-glance",
            "--no-verify",
            "--cloud-name",
            "c",
            "--content-id",
            "x",
            "http://h/",
        ]);
        let plan = validate(&args).expect("valid");
        assert_eq!(
            format!("{:?}", plan.options.filters),
            format!("{:?}", FilterSet::parse(&DEFAULT_FILTERS).expect("parse"))
        );
        assert_eq!(plan.options.entry, "streams/v1/index.sjson");
    }

    #[test]
    fn output_swift_is_refused_with_a_clear_message() {
        let args = MirrorGlanceArgs::parse_from([
            "sstream-mirror-glance",
            "--cloud-name",
            "c",
            "--content-id",
            "x",
            "--output-swift",
            "simplestreams/data/",
            "http://h/",
        ]);
        let err = validate(&args)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("--output-swift is not supported yet"), "{err}");
    }

    #[test]
    fn charm_flags_parse() {
        let args = MirrorGlanceArgs::parse_from([
            "sstream-mirror-glance",
            "-vv",
            "--keep",
            "--max",
            "2",
            "--content-id",
            "auto.sync",
            "--cloud-name",
            "mycloud",
            "--path",
            "streams/v1/index.json",
            "--name-prefix",
            "ubuntu:released/",
            "--output-dir",
            "/tmp/out",
            "--hypervisor-mapping",
            "--custom-property",
            "a=b=c",
            "--custom-property",
            "d=e",
            "--image-import-conversion",
            "--set-latest-property",
            "--visibility",
            "private",
            "--region",
            "R1",
            "--region",
            "R2",
            "http://h/",
            "release~(noble|jammy)",
            "arch~(x86_64|amd64)",
        ]);
        assert_eq!(args.regions, ["R1", "R2"]);
        assert_eq!(args.visibility, Visibility::Private);
        let plan = validate(&args).expect("valid");
        assert_eq!(
            plan.settings.custom_properties,
            vec![("a".into(), "b=c".into()), ("d".into(), "e".into())]
        );
        assert_eq!(plan.options.limits.max, Some(2));
        assert!(plan.options.limits.keep);
        assert_eq!(plan.options.entry, "streams/v1/index.json");
    }
}
