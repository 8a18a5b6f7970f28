//! `sstream-mirror`: mirror a filtered part of a stream (metadata and files) into a directory,
//! a drop-in for the Python reference's command with the same flags and meanings, plus parallel
//! downloads, retries, timeouts, a progress bar and a summary line.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{ArgGroup, Parser};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use simplestreams_core::{FilterSet, PlanLimits};
use simplestreams_mirror::{
    ItemKey, MetadataMode, Mirror, PlanTotals, Progress, Report, SyncOptions,
};

use crate::common::{
    error_message, human, load_signing_key, HttpArgs, LogArgs, SumsArgs, SyncArgs, VerifyArgs,
};
use crate::location::{open_store, StoreArgs};
use crate::source::Stream;

/// Mirror a simplestreams stream (metadata and item files) into a directory, Swift or an
/// object store.
#[derive(Debug, Parser)]
#[command(
    name = "sstream-mirror",
    version,
    after_help = "FILTERS are KEY=VALUE, KEY!=VALUE, KEY~REGEX or KEY!~REGEX on the flattened item \
                  fields, all of which must pass.\n\nExample:\n  sstream-mirror --max 1 \
                  https://cloud-images.ubuntu.com/releases/ /srv/mirror release=noble arch=amd64 ftype=disk1.img",
    group(ArgGroup::new("rewritten").args(["filtered_metadata", "decompress"]).multiple(true))
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
    /// Logging flags.
    #[command(flatten)]
    pub log: LogArgs,
    /// Signature flags.
    #[command(flatten)]
    pub verify: VerifyArgs,
    /// Verification flags.
    #[command(flatten)]
    pub sync: SyncArgs,
    /// Accepted for compatibility; items are always verified while they stream.
    #[arg(long, hide = true)]
    pub no_checksumming_reader: bool,
    /// Parallel downloads.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 4)]
    pub jobs: usize,
    /// Publish only what was mirrored (products files reduced to the items held) instead of
    /// the source's files byte for byte: .json, and with --signing-key also .sjson and
    /// .json.gpg.
    #[arg(long)]
    pub filtered_metadata: bool,
    /// Store compressed disk images (.gz, .xz, .bz2, .zst; not .tar.*) decompressed, under
    /// their name without the extension; implies --filtered-metadata, whose products files
    /// then name the raw file with its size, sha256 and ftype. The compressed bytes are
    /// verified as published.
    #[arg(long)]
    pub decompress: bool,
    /// With --filtered-metadata or --decompress: sign the published files with this armored
    /// secret key. The passphrase, if any, is read from $SSTREAM_SIGNING_PASSPHRASE.
    #[arg(long, value_name = "KEYFILE", requires = "rewritten")]
    pub signing_key: Option<PathBuf>,
    /// Network flags.
    #[command(flatten)]
    pub http: HttpArgs,
    /// Storage flags.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Checksum-file directory flags.
    #[command(flatten)]
    pub sums: SumsArgs,
    /// Mirror URL (http(s)://, file://, a directory, swift://CONTAINER/PREFIX, s3://…), or the
    /// URL of an index or products file.
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// Where to mirror into: a directory, swift://CONTAINER/PREFIX or s3://BUCKET/PREFIX.
    #[arg(value_name = "TARGET")]
    pub output_dir: String,
    /// Item filters.
    #[arg(value_name = "FILTERS")]
    pub filters: Vec<String>,
}

/// Runs `sstream-mirror`.
pub fn run(args: MirrorArgs) -> anyhow::Result<ExitCode> {
    keep_freed_memory();
    args.log.init()?;
    let rt = crate::common::runtime()?;
    let scope = simplestreams_mirror::sums::SizeScope {
        filters: FilterSet::parse(&args.filters)?,
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
    let options = sync_options(&args, &stream)?;
    let store = rt.block_on(open_store(&args.output_dir, &args.store))?;

    if args.dry_run {
        let mirror = Mirror::to_store(stream.source.clone(), store, options);
        let lines = rt.block_on(mirror.plan())?;
        let mut out = std::io::stdout().lock();
        for l in &lines {
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
        let t = PlanTotals::of(&lines);
        writeln!(
            out,
            "total: {} to download ({}), {} to remove ({})",
            t.add,
            human(t.add_bytes),
            t.remove,
            human(t.remove_bytes)
        )?;
        return Ok(ExitCode::SUCCESS);
    }

    let progress = Arc::new(Bar::new(args.progress));
    let mirror =
        Mirror::to_store(stream.source.clone(), store, options).with_progress(progress.clone());
    let started = Instant::now();
    let report = rt
        .block_on(mirror.run())
        .with_context(|| format!("cannot mirror {} into {}", args.source, args.output_dir))?;
    progress.finish();
    eprintln!("{}", summary(&report, started.elapsed()));
    for e in &report.errors {
        eprintln!("{}", error_message("sstream-mirror", e));
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
fn sync_options(args: &MirrorArgs, stream: &Stream) -> anyhow::Result<SyncOptions> {
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let signing_key = match &args.signing_key {
        Some(path) => Some(Arc::new(load_signing_key(path, None)?)),
        None => None,
    };
    Ok(SyncOptions {
        entry: stream.entry.clone(),
        filters: FilterSet::parse(&args.filters)?,
        limits: PlanLimits {
            max: args.max,
            keep: args.keep,
        },
        item_download: !args.no_item_download,
        jobs: args.jobs,
        metadata: if args.filtered_metadata || args.decompress {
            MetadataMode::Filtered
        } else {
            MetadataMode::Verbatim
        },
        signatures: Some(args.verify.policy(&stream.entry)?),
        metadata_limits: args.http.metadata_limits()?,
        signing_key,
        checksums: args.sync.checksums(),
        freshness: args.sync.freshness(),
        verify_existing: args.sync.verify_existing,
        decompress: args.decompress.then(|| args.sync.decompress_options()),
    })
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
    if r.repaired > 0 {
        s.push_str(&format!("; {} repaired", r.repaired));
    }
    if !r.errors.is_empty() {
        s.push_str(&format!("; {} error(s)", r.errors.len()));
    }
    s
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
