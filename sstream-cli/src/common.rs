//! What every command shares: the flags that mean the same everywhere (logging, signatures,
//! HTTP timeouts, metadata limits), defined once here and flattened into each command; logging
//! set up from them; and turning a command's result into an exit code with a plain message.

use std::fs::File;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use simplestreams_core::openpgp::Keyring;
use simplestreams_core::ChecksumPolicy;
use simplestreams_mirror::decompress::{DecompressOptions, DEFAULT_MAX_DECOMPRESSED};
use simplestreams_mirror::{
    load_keyrings, Freshness, HttpOptions, MetadataLimits, RetryConfig, SignaturePolicy,
};
use tracing_subscriber::EnvFilter;

/// The keyring the reference uses when none is given.
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// One line per message, for people.
    #[default]
    Human,
    /// One JSON object per message, for journald or a log collector.
    Json,
}

/// `-v`, `--log-file`, `--log-format`.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Logging")]
pub struct LogArgs {
    /// More output on stderr (-v: info, -vv: debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Write log messages to this file instead of stderr.
    #[arg(long, value_name = "FILE", global = true)]
    pub log_file: Option<PathBuf>,
    /// Log line format.
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value_t,
        global = true
    )]
    pub log_format: LogFormat,
}

impl LogArgs {
    /// Sets up logging to stderr or the log file: `-v` shows info, `-vv` debug; warnings
    /// always. `RUST_LOG` overrides the level when set. Colours only on a terminal.
    pub fn init(&self) -> anyhow::Result<()> {
        let level = match self.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        };
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false);
        let json = self.log_format == LogFormat::Json;
        // A second init (tests running commands in-process) keeps the first subscriber.
        let _ = match (&self.log_file, json) {
            (Some(path), _) => {
                let file = File::create(path)
                    .with_context(|| format!("cannot open log file {}", path.display()))?;
                let b = builder.with_ansi(false).with_writer(Mutex::new(file));
                if json {
                    b.json().try_init()
                } else {
                    b.try_init()
                }
            }
            (None, true) => builder.json().with_writer(io::stderr).try_init(),
            (None, false) => builder
                .with_ansi(io::stderr().is_terminal())
                .with_writer(io::stderr)
                .without_time()
                .try_init(),
        };
        Ok(())
    }
}

/// `--keyring` and `--no-verify`.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Signatures")]
pub struct VerifyArgs {
    /// OpenPGP keyring (binary or armored) to verify signed metadata with. Repeatable. With a
    /// .json entry, signed .sjson siblings are then read first.
    #[arg(long, value_name = "KEYRING")]
    pub keyring: Vec<PathBuf>,
    /// Do not check signatures of signed metadata.
    #[arg(short = 'U', long = "no-verify")]
    pub no_verify: bool,
}

impl VerifyArgs {
    /// The signature policy for a stream entered at `entry`, as the reference decides it (a
    /// `.sjson` entry is verified, against `--keyring` or else the default keyring).
    pub fn policy(&self, entry: &str) -> anyhow::Result<SignaturePolicy> {
        SignaturePolicy::for_entry(entry, !self.no_verify, !self.keyring.is_empty(), || {
            self.keyring()
        })
    }

    /// The keyrings given, or the default one.
    pub fn keyring(&self) -> anyhow::Result<Keyring> {
        let default = [PathBuf::from(DEFAULT_KEYRING)];
        let paths = if self.keyring.is_empty() {
            &default[..]
        } else {
            &self.keyring[..]
        };
        load_keyrings(paths).with_context(|| {
            format!(
                "cannot read keyring {} (give one with --keyring, or --no-verify to skip checks)",
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }
}

/// `--connect-timeout`, `--read-timeout`, `--retries`, `--max-metadata-size`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Network")]
pub struct HttpArgs {
    /// Seconds allowed to connect to a server.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Seconds allowed without receiving a byte.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub read_timeout: f64,
    /// Retries of a failed request (with exponential backoff and jitter).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub retries: u32,
    /// The largest metadata file accepted, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub max_metadata_size: u64,
}

impl Default for HttpArgs {
    fn default() -> Self {
        HttpArgs {
            connect_timeout: 10.0,
            read_timeout: 60.0,
            retries: 5,
            max_metadata_size: 256,
        }
    }
}

impl HttpArgs {
    /// The HTTP client settings, refusing what would make every request fail.
    pub fn options(&self) -> anyhow::Result<HttpOptions> {
        let secs = |s: f64, flag: &str| -> anyhow::Result<Duration> {
            let d = Duration::try_from_secs_f64(s)
                .map_err(|_| anyhow::anyhow!("{flag} must be a number of seconds, got {s}"))?;
            anyhow::ensure!(!d.is_zero(), "{flag} must be more than 0 seconds");
            Ok(d)
        };
        Ok(HttpOptions {
            connect_timeout: secs(self.connect_timeout, "--connect-timeout")?,
            read_timeout: secs(self.read_timeout, "--read-timeout")?,
            retry: RetryConfig {
                max_retries: self.retries,
                ..RetryConfig::default()
            },
            ..HttpOptions::default()
        })
    }

    /// The limits on metadata files.
    pub fn metadata_limits(&self) -> anyhow::Result<MetadataLimits> {
        anyhow::ensure!(
            self.max_metadata_size > 0,
            "--max-metadata-size must be at least 1 (MiB)"
        );
        Ok(MetadataLimits {
            max_size: self.max_metadata_size.saturating_mul(1 << 20),
        })
    }
}

/// `--layout`, `--sums`, `--max-dirs`, `--sums-content-id`: reading a directory of images with
/// a checksum file (Debian's, Ubuntu's, Fedora's, an in-house one) as a stream. A source
/// naming a checksum file (`…/SHA256SUMS`, `…/SHA512SUMS`, `…/MD5SUMS`, `…/*-CHECKSUM`) is
/// read that way without them. Signatures: with --keyring, every checksum file must be
/// clear-signed or have a detached `.gpg`/`.sign`/`.asc` signature by one of its keys.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Checksum-file directories")]
pub struct SumsArgs {
    /// Read SOURCE as a directory of images with a checksum file, named by this layout:
    /// debian, ubuntu, fedora, plain, auto (detected), or a regex whose named groups are the
    /// product, version and item (any other group becomes a field).
    #[arg(long, value_name = "NAME|REGEX")]
    pub layout: Option<String>,
    /// The checksum file's name, when it is not SHA512SUMS, SHA256SUMS, MD5SUMS or *-CHECKSUM.
    #[arg(long = "sums", value_name = "FILE-NAME")]
    pub sums: Option<String>,
    /// Of a parent of dated directories (Debian's YYYYMMDD-NNNN/, Ubuntu's release-DATE/),
    /// read only the newest N.
    #[arg(long, value_name = "N")]
    pub max_dirs: Option<usize>,
    /// The content id of the stream made of it (default HOST:LAYOUT:sums).
    #[arg(long, value_name = "ID")]
    pub sums_content_id: Option<String>,
}

impl SumsArgs {
    /// Whether `location` is read as a checksum-file directory: one of these flags was given,
    /// or it names a checksum file.
    pub fn applies_to(&self, location: &str) -> bool {
        self.layout.is_some()
            || self.sums.is_some()
            || self.max_dirs.is_some()
            || self.sums_content_id.is_some()
            || simplestreams_mirror::sums::is_sums_location(location)
    }

    /// The options of the `SumsSource`: signatures required when `--keyring` is given (and
    /// not `--no-verify`), sizes found for the items `scope` selects.
    pub fn options(
        &self,
        verify: &VerifyArgs,
        http: &HttpArgs,
        scope: simplestreams_mirror::sums::SizeScope,
    ) -> anyhow::Result<simplestreams_mirror::sums::SumsOptions> {
        let layout = match self.layout.as_deref() {
            None | Some("auto") => None,
            Some(spec) => Some(
                simplestreams_core::sums::Layout::parse(spec)
                    .map_err(|e| anyhow::anyhow!("--layout: {e}"))?,
            ),
        };
        if let Some(n) = &self.sums {
            anyhow::ensure!(
                !n.is_empty() && !n.contains('/'),
                "--sums takes a file name (no directory), got {n:?}"
            );
        }
        anyhow::ensure!(self.max_dirs != Some(0), "--max-dirs must be at least 1");
        let signatures = if verify.no_verify || verify.keyring.is_empty() {
            SignaturePolicy::off()
        } else {
            SignaturePolicy::require(std::sync::Arc::new(verify.keyring()?))
        };
        Ok(simplestreams_mirror::sums::SumsOptions {
            layout,
            sums_name: self.sums.clone(),
            max_dirs: self.max_dirs,
            content_id: self.sums_content_id.clone(),
            signatures,
            scope,
            limits: http.metadata_limits()?,
            ..Default::default()
        })
    }
}

/// What a sync checks of its source and its items: the flags every syncing tool shares.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Verification")]
pub struct SyncArgs {
    /// Verify every checksum an item gives, not just the size and the strongest one
    /// (sha256, else sha512, else md5).
    #[arg(long)]
    pub all_checksums: bool,
    /// Accept metadata older than what was seen before from the same source (by default such
    /// a rollback is refused).
    #[arg(long)]
    pub allow_rollback: bool,
    /// Warn when a signed source was last updated more than DAYS days ago (0: never).
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub stale_after: u64,
    /// Re-verify what the target already holds, and fetch again what fails.
    #[arg(long)]
    pub verify_existing: bool,
    /// The most one compressed image may decompress to, in MiB (default 128 GiB); beyond it
    /// the item fails as a decompression bomb.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MAX_DECOMPRESSED >> 20)]
    pub max_decompressed_size: u64,
}

impl SyncArgs {
    /// The checksum policy asked for.
    pub fn checksums(&self) -> ChecksumPolicy {
        if self.all_checksums {
            ChecksumPolicy::All
        } else {
            ChecksumPolicy::Strongest
        }
    }

    /// Limits of decompressing images.
    pub fn decompress_options(&self) -> DecompressOptions {
        DecompressOptions {
            max_size: self.max_decompressed_size.saturating_mul(1 << 20),
        }
    }

    /// Rollback and freeze protection asked for.
    pub fn freshness(&self) -> Freshness {
        Freshness {
            allow_rollback: self.allow_rollback,
            stale_after: (self.stale_after > 0)
                .then(|| Duration::from_secs(self.stale_after.saturating_mul(24 * 3600))),
        }
    }
}

/// Runs a command's body: errors are printed as `PROGRAM: error: …` with their causes and give
/// exit code 1; a closed stdout (`| head`) ends the program quietly with success.
pub fn main_with(program: &str, body: impl FnOnce() -> anyhow::Result<ExitCode>) -> ExitCode {
    match body() {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", error_message(program, err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// `PROGRAM: error: MESSAGE`, then one `caused by:` line per cause.
pub fn error_message(program: &str, err: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = format!("{program}: error: {err}");
    let mut cause = err.source();
    while let Some(c) = cause {
        msg.push_str(&format!("\n  caused by: {c}"));
        cause = c.source();
    }
    msg
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// Builds the tokio runtime the commands use for network I/O.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    runtime_from(tokio::runtime::Builder::new_multi_thread())
}

/// [`runtime`] whose idle blocking threads (file I/O, hashing) end `keep_alive` after their
/// last task instead of tokio's 10 s.
pub fn runtime_keeping_threads(keep_alive: Duration) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.thread_keep_alive(keep_alive);
    runtime_from(builder)
}

fn runtime_from(mut builder: tokio::runtime::Builder) -> anyhow::Result<tokio::runtime::Runtime> {
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Joins a mirror root and a path the way the reference does (plain concatenation), adding the
/// `/` that users often leave off a directory or URL.
pub fn join_url(mirror: &str, path: &str) -> String {
    if mirror.is_empty() || mirror.ends_with('/') {
        format!("{mirror}{path}")
    } else {
        format!("{mirror}/{path}")
    }
}

/// A size for people: `1.5 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    while unit < UNITS.len() - 1 && bytes >> (10 * (unit + 1)) > 0 {
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes} B");
    }
    // Tenths by integers, rounded half to even as `{:.1}` of the quotient does, without
    // formatting a float, which costs more than the rest of a line of `sstream add` for
    // thousands of items.
    let scale = 1u128 << (10 * unit);
    let scaled = u128::from(bytes) * 10;
    let (mut tenths, rest) = (scaled / scale, scaled % scale);
    if 2 * rest > scale || (2 * rest == scale && tenths % 2 == 1) {
        tenths += 1;
    }
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
}

/// Reads an armored secret key, with the passphrase from `passphrase_file`'s first line or
/// else `$SSTREAM_SIGNING_PASSPHRASE`.
pub fn load_signing_key(
    path: &Path,
    passphrase_file: Option<&Path>,
) -> anyhow::Result<simplestreams_core::openpgp::SigningKey> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read secret key {}", path.display()))?;
    let passphrase = match passphrase_file {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read passphrase file {}", p.display()))?;
            // Like gpg --passphrase-file: the first line, without its line ending.
            Some(text.lines().next().unwrap_or_default().to_owned())
        }
        None => std::env::var("SSTREAM_SIGNING_PASSPHRASE").ok(),
    };
    Ok(simplestreams_core::openpgp::SigningKey::from_armored(
        &bytes,
        passphrase.as_deref(),
        &path.display().to_string(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_for_people_round_to_tenths_as_float_formatting_does() {
        let by_float = |bytes: u64| {
            const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
            let (mut v, mut unit) = (bytes as f64, 0);
            while v >= 1024.0 && unit < UNITS.len() - 1 {
                v /= 1024.0;
                unit += 1;
            }
            match unit {
                0 => format!("{bytes} B"),
                _ => format!("{v:.1} {}", UNITS[unit]),
            }
        };
        let mut sizes: Vec<u64> = (0..5000).chain(1_048_000..1_049_700).collect();
        for shift in 10..=50 {
            let p = 1u64 << shift;
            sizes.extend([
                p - 1,
                p,
                p + 1,
                p + p / 20,
                p + p / 20 + 1,
                p * 3 / 2,
                p * 1023,
            ]);
        }
        sizes.extend([u64::MAX / 2048, 5 << 40, 1_000_000_000_000_000]);
        for bytes in sizes {
            assert_eq!(human(bytes), by_float(bytes), "{bytes}");
        }
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 << 30), "3.0 GiB");
    }

    #[test]
    fn zero_timeouts_are_refused() {
        let zero = HttpArgs {
            read_timeout: 0.0,
            ..HttpArgs::default()
        };
        let err = zero.options().expect_err("refused").to_string();
        assert!(err.contains("--read-timeout must be more than 0"), "{err}");
        assert!(HttpArgs::default().options().is_ok());
    }

    #[test]
    fn urls_join_like_the_reference() {
        assert_eq!(join_url("/m", "a"), "/m/a");
        assert_eq!(join_url("/m/", "a"), "/m/a");
    }
}
