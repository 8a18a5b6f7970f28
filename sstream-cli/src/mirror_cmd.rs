//! `sstream-mirror`: mirror a filtered part of a stream (metadata and files) into a directory,
//! a drop-in for the Python reference's command with the same flags and meanings, plus parallel
//! downloads, retries, timeouts, a progress bar and a summary line.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use simplestreams_core::openpgp::SigningKey;
use simplestreams_core::{FilterSet, PlanLimits};
use simplestreams_mirror::{
    open_source, split_entry, FallbackSource, HttpConfig, ItemKey, LocalStore, MetadataMode,
    Mirror, Progress, Report, RetryConfig, Source, StoreTarget, SyncOptions,
};

use crate::source::engine_signature_policy;

/// Mirror a simplestreams stream (metadata and item files) into a directory.
#[derive(Debug, Parser)]
#[command(
    name = "sstream-mirror",
    version,
    after_help = "FILTERS are KEY=VALUE, KEY!=VALUE, KEY~REGEX or KEY!~REGEX on the flattened item \
                  fields, all of which must pass.\n\nExample:\n  sstream-mirror --max 1 \
                  https://cloud-images.ubuntu.com/releases/ /srv/mirror release=noble arch=amd64 ftype=disk1.img"
)]
pub struct MirrorArgs {
    /// Keep items in the target up to MAX versions even after they left the source.
    #[arg(long, requires = "max")]
    pub keep: bool,
    /// Keep at most MAX versions of each product in the target.
    #[arg(long, value_name = "MAX")]
    pub max: Option<usize>,
    /// Sync from this index or products file in the mirror (default: from SOURCE, else
    /// streams/v1/index.sjson).
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// Do not download items with a "path" (mirror the metadata only).
    #[arg(long)]
    pub no_item_download: bool,
    /// Only print what would be done: "+ product version item path size" for each item to
    /// download, "- …" for each to remove, and a total.
    #[arg(long)]
    pub dry_run: bool,
    /// Show progress even when stderr is not a terminal (one line per item). On a terminal a
    /// progress bar is always shown.
    #[arg(long)]
    pub progress: bool,
    /// Another mirror of the same stream, tried in order when a file is missing or fails.
    /// Repeatable.
    #[arg(long = "mirror", value_name = "URL")]
    pub mirrors: Vec<String>,
    /// More output on stderr (-v: files read and verified, items; -vv: debug).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Write log messages to this file instead of stderr.
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// OpenPGP keyring (binary or armored) to verify signed metadata with. Repeatable.
    #[arg(long, value_name = "KEYRING")]
    pub keyring: Vec<PathBuf>,
    /// Do not check signatures of signed metadata.
    #[arg(short = 'U', long = "no-verify")]
    pub no_verify: bool,
    /// Accepted for compatibility; items are always verified while they stream.
    #[arg(long, hide = true)]
    pub no_checksumming_reader: bool,
    /// Parallel downloads.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 4)]
    pub jobs: usize,
    /// Publish only what was mirrored (products files reduced to the items held) instead of
    /// the source's files byte for byte; unsigned .json unless --signing-key is given.
    #[arg(long)]
    pub filtered_metadata: bool,
    /// With --filtered-metadata: clear-sign the published files with this armored secret key
    /// (they are published as .sjson). The passphrase, if any, is read from
    /// $SSTREAM_SIGNING_PASSPHRASE.
    #[arg(long, value_name = "KEYFILE", requires = "filtered_metadata")]
    pub signing_key: Option<PathBuf>,
    /// Seconds allowed to connect to a server.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Seconds allowed without receiving a byte.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub read_timeout: f64,
    /// Retries of a failed request (with exponential backoff and jitter).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub retries: u32,
    /// Do not flush written files to stable storage (fsync): faster on slow disks; a killed
    /// run is still safe, but a power cut may lose the last files written.
    #[arg(long)]
    pub no_fsync: bool,
    /// Mirror URL (http(s)://, file:// or a directory), or the URL of an index or products file.
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// The directory to mirror into.
    #[arg(value_name = "OUTPUT_DIR")]
    pub output_dir: PathBuf,
    /// Item filters.
    #[arg(value_name = "FILTERS")]
    pub filters: Vec<String>,
}

/// Runs `sstream-mirror`.
pub fn run(args: MirrorArgs) -> anyhow::Result<ExitCode> {
    keep_freed_memory();
    crate::common::init_logging(args.verbose, args.log_file.as_deref())?;
    let (options, http) = sync_options(&args)?;
    let (root, _) = split_entry(&args.source, args.path.as_deref());
    let mut sources: Vec<Arc<dyn Source>> = vec![open_source(&root, &http)?];
    for m in &args.mirrors {
        sources.push(open_source(m, &http)?);
    }
    let source: Arc<dyn Source> = Arc::new(FallbackSource::new(sources)?);
    let store = LocalStore::new(&args.output_dir).with_fsync(!args.no_fsync);
    let target = Arc::new(StoreTarget::new(Arc::new(store)));
    let rt = crate::common::runtime()?;

    if args.dry_run {
        let mirror = Mirror::new(source, target, options);
        let lines = rt.block_on(mirror.plan())?;
        let mut out = std::io::stdout().lock();
        let (mut add, mut remove) = (0u64, 0u64);
        for l in &lines {
            let k = &l.key;
            let size = l.size.unwrap_or(0);
            writeln!(
                out,
                "{} {} {} {} {} {}",
                l.op, k.product, k.version, k.item, l.path, size
            )?;
            match l.op {
                '+' => add += size,
                _ => remove += size,
            }
        }
        writeln!(
            out,
            "total: {} to download ({}), {} to remove ({})",
            lines.iter().filter(|l| l.op == '+').count(),
            human(add),
            lines.iter().filter(|l| l.op == '-').count(),
            human(remove)
        )?;
        return Ok(ExitCode::SUCCESS);
    }

    let progress = Arc::new(Bar::new(args.progress));
    let mirror = Mirror::new(source, target, options).with_progress(progress.clone());
    let started = Instant::now();
    let report = rt.block_on(mirror.run()).with_context(|| {
        format!(
            "cannot mirror {} into {}",
            args.source,
            args.output_dir.display()
        )
    })?;
    progress.finish();
    eprintln!("{}", summary(&report, started.elapsed()));
    for e in &report.errors {
        eprintln!("sstream-mirror: error: {e}");
    }
    Ok(if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Lets glibc's allocator keep and reuse the memory of downloaded chunks.
///
/// The HTTP layer reads each response into fresh buffers of a few hundred KiB (earlier chunks are
/// still being hashed and written). With glibc's defaults those come from `mmap` or are trimmed
/// back to the system as soon as they are freed, so every buffer is faulted in and zeroed again:
/// about a third of the system time of a large download. Serving them from the heap and keeping
/// up to 16 MiB of freed memory per arena reuses warm pages instead; the memory held stays
/// bounded by the engine's in-flight window (peak RSS in docs/mirror.md).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before the runtime starts any
    // thread. A refused setting (return 0) leaves glibc's default, which is still correct.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
    }
}

/// Validates the arguments into engine options (separate from building sources and targets).
fn sync_options(args: &MirrorArgs) -> anyhow::Result<(SyncOptions, HttpConfig)> {
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let filters = FilterSet::parse(&args.filters)?;
    let (_, entry) = split_entry(&args.source, args.path.as_deref());
    let signatures = engine_signature_policy(&entry, !args.no_verify, &args.keyring)?;
    let signing_key = match &args.signing_key {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let pass = std::env::var("SSTREAM_SIGNING_PASSPHRASE").ok();
            Some(Arc::new(SigningKey::from_armored(
                &bytes,
                pass.as_deref(),
                &path.display().to_string(),
            )?))
        }
        None => None,
    };
    let secs = |s: f64, flag: &str| {
        Duration::try_from_secs_f64(s)
            .map_err(|_| anyhow::anyhow!("{flag} must be a number of seconds, got {s}"))
    };
    let http = HttpConfig {
        connect_timeout: secs(args.connect_timeout, "--connect-timeout")?,
        read_timeout: secs(args.read_timeout, "--read-timeout")?,
        retry: RetryConfig {
            max_retries: args.retries,
            ..RetryConfig::default()
        },
    };
    let options = SyncOptions {
        entry,
        filters,
        limits: PlanLimits {
            max: args.max,
            keep: args.keep,
        },
        item_download: !args.no_item_download,
        jobs: args.jobs,
        metadata: if args.filtered_metadata {
            MetadataMode::Filtered
        } else {
            MetadataMode::Verbatim
        },
        signatures,
        signing_key,
    };
    Ok((options, http))
}

/// The final line: what was done, how much, how long.
fn summary(r: &Report, took: Duration) -> String {
    let mut s = format!(
        "sstream-mirror: {} item(s) downloaded ({}), {} already present, {} removed, {} products file(s){} published in {:.2}s",
        r.downloaded,
        human(r.bytes),
        r.present,
        r.removed,
        r.products_published.len(),
        if r.index_published { " and the index" } else { "" },
        took.as_secs_f64()
    );
    if !r.errors.is_empty() {
        s.push_str(&format!("; {} error(s)", r.errors.len()));
    }
    s
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Progress: a bar (bytes, rate, ETA, items) on a terminal; with `--progress` and no terminal,
/// one line per finished item; nothing otherwise.
struct Bar {
    bar: ProgressBar,
    lines: bool,
    items: std::sync::atomic::AtomicU64,
    total: std::sync::atomic::AtomicU64,
}

impl Bar {
    fn new(force: bool) -> Bar {
        let terminal = std::io::stderr().is_terminal();
        let bar = if terminal {
            ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Bar {
            bar,
            lines: force && !terminal,
            items: Default::default(),
            total: Default::default(),
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn start(&self, items: u64, bytes: u64) {
        self.total
            .store(items, std::sync::atomic::Ordering::Relaxed);
        self.bar.set_length(bytes);
        self.bar.set_message(format!("0/{items} items"));
    }

    fn bytes(&self, n: u64) {
        self.bar.inc(n);
    }

    fn item_done(&self, key: &ItemKey, ok: bool) {
        let done = self
            .items
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let total = self.total.load(std::sync::atomic::Ordering::Relaxed);
        self.bar.set_message(format!("{done}/{total} items"));
        if self.lines {
            let status = if ok { "ok" } else { "FAILED" };
            eprintln!("[{done}/{total}] {key}: {status}");
        }
    }
}
