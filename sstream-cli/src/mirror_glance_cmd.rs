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
use glance_target::properties::{parse_custom_property, ImageSettings};
use glance_target::{
    content_id_for, default_state_dir, GlanceEvent, GlanceSync, GlanceSyncOptions,
    GlanceTargetOptions, ImageIdsOutput, Session,
};
use simplestreams_core::{FilterSet, PlanLimits};
use simplestreams_mirror::{ItemKey, MetadataMode, PlanLine, Progress, SyncOptions};
use swift_target::{SwiftClient, SwiftStore, SwiftStoreOptions};

use crate::common::{error_message, HttpArgs, LogArgs, SumsArgs, SyncArgs, VerifyArgs};
use crate::source::Stream;

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
    /// Write the image-ids stream to Swift: PREFIX is CONTAINER/OBJECT-PREFIX, as the
    /// charm passes it (`simplestreams/data/`: container `simplestreams`, objects below
    /// `data/`). The container is made readable by anyone, as the reference does.
    #[arg(long, value_name = "PREFIX", conflicts_with = "output_dir")]
    pub output_swift: Option<String>,
    /// Announce the published image-ids stream in Keystone as the `product-streams` service
    /// (public, internal and admin endpoints in each region), as the charm does, so that Juju
    /// finds it. The URL is that of --output-swift, or --product-streams-url. Needs the admin
    /// role; a second run changes nothing.
    #[arg(long)]
    pub register_product_streams: bool,
    /// With --register-product-streams: the URL the stream is served from (needed with
    /// --output-dir, where only you know how the directory is served).
    #[arg(long, value_name = "URL", requires = "register_product_streams")]
    pub product_streams_url: Option<String>,
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
    /// Logging flags.
    #[command(flatten)]
    pub log: LogArgs,
    /// Signature flags.
    #[command(flatten)]
    pub verify: VerifyArgs,
    /// Verification flags.
    #[command(flatten)]
    pub sync: SyncArgs,
    /// Network flags.
    #[command(flatten)]
    pub http: HttpArgs,
    /// Checksum-file directory flags.
    #[command(flatten)]
    pub sums: SumsArgs,
    /// Where the sync keeps its lock and the dates seen of the source (rollback protection).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
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

/// What the arguments mean, checked before anything is contacted.
struct Plan {
    options: SyncOptions,
    settings: ImageSettings,
    modify_hook: Option<Vec<String>>,
}

fn validate(args: &MirrorGlanceArgs, stream: &Stream) -> anyhow::Result<Plan> {
    if let Some(prefix) = &args.output_swift {
        if prefix.trim_matches('/').is_empty() {
            bail!("--output-swift needs CONTAINER/PREFIX, e.g. simplestreams/data/");
        }
    }
    if args.register_product_streams
        && args.output_swift.is_none()
        && args.product_streams_url.is_none()
    {
        bail!(
            "--register-product-streams needs the stream's URL: publish with --output-swift, or \
             give --product-streams-url"
        );
    }
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    content_id_for(&args.content_id, "region").map_err(|e| anyhow::anyhow!("--content-id: {e}"))?;
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
            entry: stream.entry.clone(),
            filters,
            limits: PlanLimits {
                max: args.max,
                keep: args.keep,
            },
            item_download: true,
            jobs: args.jobs,
            metadata: MetadataMode::Verbatim,
            signatures: Some(args.verify.policy(&stream.entry)?),
            metadata_limits: args.http.metadata_limits()?,
            signing_key: None,
            checksums: args.sync.checksums(),
            freshness: args.sync.freshness(),
            verify_existing: args.sync.verify_existing,
            decompress: Some(args.sync.decompress_options()),
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
    args.log.init()?;
    let rt = crate::common::runtime()?;
    let scope = simplestreams_mirror::sums::SizeScope {
        filters: if args.filters.is_empty() {
            FilterSet::parse(&DEFAULT_FILTERS)?
        } else {
            FilterSet::parse(&args.filters)?
        },
        max: args.max,
    };
    let stream = rt.block_on(Stream::open_with(
        &args.source,
        args.path.as_deref(),
        &args.mirrors,
        &args.http,
        &args.sums,
        &args.verify,
        scope,
    ))?;
    let plan = validate(&args, &stream)?;
    rt.block_on(run_async(args, stream, plan))
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

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            // Without signal handling, never: the default action (exit) applies.
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The Swift store of `--output-swift CONTAINER/PREFIX`, in the session's region, readable by
/// anyone (as the reference makes it).
async fn output_swift(session: &Session, prefix: &str) -> anyhow::Result<SwiftStore> {
    let (container, objects) = prefix
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((prefix.trim_start_matches('/'), ""));
    let client = SwiftClient::new(session)
        .await
        .context("--output-swift: cannot find the object-store endpoint")?;
    let options = SwiftStoreOptions {
        public_read: true,
        ..SwiftStoreOptions::default()
    };
    SwiftStore::open(client, container, objects, options)
        .await
        .with_context(|| format!("--output-swift {prefix}"))
}

async fn run_async(args: MirrorGlanceArgs, stream: Stream, plan: Plan) -> anyhow::Result<ExitCode> {
    let session = Session::from_env().context("cannot read the OpenStack credentials")?;
    session.token().await.context("cannot authenticate")?;
    if args.output_dir.is_none() && args.output_swift.is_none() && !args.dry_run {
        eprintln!("not writing data anywhere");
    }
    let (output, published_at) = match (&args.output_dir, &args.output_swift) {
        (Some(dir), _) => (Some(ImageIdsOutput::Directory(dir.clone())), None),
        (None, Some(prefix)) => {
            let swift = output_swift(&session, prefix).await?;
            let url = swift.public_root();
            (Some(ImageIdsOutput::Store(Arc::new(swift))), Some(url))
        }
        (None, None) => (None, None),
    };
    let options = GlanceSyncOptions {
        sync: plan.options,
        target: GlanceTargetOptions {
            settings: plan.settings,
            visibility: format!("{:?}", args.visibility).to_lowercase(),
            modify_hook: plan.modify_hook,
            state_dir: args.state_dir.clone().unwrap_or_else(default_state_dir),
            events: Arc::new(print_event),
        },
        content_id: args.content_id.clone(),
        cloud_name: args.cloud_name.clone(),
        regions: args.regions.clone(),
        output,
        signing_key: None,
        set_latest: args.set_latest_property,
        product_streams_url: args
            .register_product_streams
            .then(|| args.product_streams_url.clone().or(published_at))
            .flatten(),
    };
    let mut sync = GlanceSync::new(session, stream.source.clone(), options);
    if args.dry_run {
        for (_, lines) in sync.plan().await? {
            print_plan(&lines)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.progress {
        sync = sync.with_progress(Arc::new(Lines::default()));
    }
    let started = Instant::now();
    let outcomes = sync
        .run(shutdown_signal())
        .await
        .with_context(|| format!("cannot sync {} into Glance", args.source))?;
    let mut ok = true;
    for o in &outcomes {
        ok &= o.is_success();
        if let Some(report) = &o.report {
            for e in &report.errors {
                eprintln!("{}", error_message("sstream-mirror-glance", e));
            }
            tracing::info!(
                "{}: {} image(s) uploaded, {} removed in {:.2}s",
                o.region,
                report.downloaded,
                report.removed,
                started.elapsed().as_secs_f64()
            );
        }
        for e in &o.errors {
            eprintln!(
                "{}",
                error_message(&format!("sstream-mirror-glance: {}", o.region), e)
            );
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_plan(lines: &[PlanLine]) -> anyhow::Result<()> {
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
        let stream = crate::common::runtime()
            .expect("runtime")
            .block_on(Stream::open(
                &args.source,
                args.path.as_deref(),
                &[],
                &args.http,
            ))
            .expect("stream");
        let plan = validate(&args, &stream).expect("valid");
        assert_eq!(
            format!("{:?}", plan.options.filters),
            format!("{:?}", FilterSet::parse(&DEFAULT_FILTERS).expect("parse"))
        );
        assert_eq!(plan.options.entry, "streams/v1/index.sjson");
    }

    #[test]
    fn product_streams_need_a_url() {
        let parse = |extra: &[&str]| {
            // --no-verify: the default keyring need not be installed where tests run.
            let mut argv = vec![
                "sstream-mirror-glance",
                "--no-verify",
                "--cloud-name",
                "c",
                "--content-id",
                "x",
            ];
            argv.extend_from_slice(extra);
            argv.push("http://h/");
            let args = MirrorGlanceArgs::parse_from(argv);
            let stream = crate::common::runtime()
                .expect("runtime")
                .block_on(Stream::open(
                    &args.source,
                    args.path.as_deref(),
                    &[],
                    &args.http,
                ))
                .expect("stream");
            validate(&args, &stream).err().map(|e| e.to_string())
        };
        let err = parse(&["--register-product-streams", "--output-dir", "/tmp/x"]);
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("needs the stream's URL")),
            "{err:?}"
        );
        assert_eq!(
            parse(&[
                "--register-product-streams",
                "--output-swift",
                "simplestreams/data/"
            ]),
            None
        );
        assert_eq!(parse(&["--output-swift", "simplestreams/data/"]), None);
        assert!(parse(&["--output-swift", "/"]).is_some());
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
        let stream = crate::common::runtime()
            .expect("runtime")
            .block_on(Stream::open(
                &args.source,
                args.path.as_deref(),
                &[],
                &args.http,
            ))
            .expect("stream");
        let plan = validate(&args, &stream).expect("valid");
        assert_eq!(
            plan.settings.custom_properties,
            vec![("a".into(), "b=c".into()), ("d".into(), "e".into())]
        );
        assert_eq!(plan.options.limits.max, Some(2));
        assert!(plan.options.limits.keep);
        assert_eq!(plan.options.entry, "streams/v1/index.json");
    }
}
