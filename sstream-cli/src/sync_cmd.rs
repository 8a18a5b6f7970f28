//! `sstream-sync`: the sync service. One configuration file of jobs (Glance or mirror targets,
//! or the glance-simplestreams-sync charm's keys as they are), each on its own schedule, with
//! retries, a status file, an optional metrics endpoint, SIGHUP reloads and clean stops. The
//! logic is the `simplestreams-sync` library; this is the command line around it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use simplestreams_mirror::{HttpOptions, Source, Store};
use simplestreams_sync::schedule::parse_duration;
use simplestreams_sync::status::{self, default_state_dir, Thresholds, STATUS_VERSION};
use simplestreams_sync::{
    metrics, shutdown_channel, BoxFuture, Config, Locations, Service, Status, StatusBook,
    StatusFile, StoreSettings,
};

use crate::common::LogArgs;
use crate::location::{open_source, open_store, open_store_existing, StoreArgs};

/// The exit status of a refused configuration (`EX_CONFIG`): the unit does not restart on it.
pub const EXIT_CONFIG: u8 = 78;

/// Keep Glance and mirrors in sync with simplestreams sources, as a service.
#[derive(Debug, Parser)]
#[command(
    name = "sstream-sync",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "The configuration (YAML) lists jobs; the glance-simplestreams-sync charm's keys \
                  (mirror_list, cloud_name, content_id_template, ...) are accepted as they are. \
                  See docs/sync.md and contrib/sstream-sync.yaml.\n\nSignals: SIGTERM or SIGINT \
                  stop between items (uploads in flight are cleaned up); SIGHUP reloads the \
                  configuration (a bad one is refused and the old one kept).\n\nExit status: 0, \
                  or 1 when a --once job failed or the service could not start, 78 when the \
                  configuration is refused.\n\nExamples:\n  sstream-sync check \
                  /etc/sstream-sync.yaml\n  sstream-sync --config /etc/sstream-sync.yaml \
                  --listen 127.0.0.1:9780\n  sstream-sync status --check --warn-after 2d \
                  --crit-after 4d"
)]
pub struct SstreamSyncArgs {
    /// `check` or `status`; without one, the service runs.
    #[command(subcommand)]
    pub command: Option<SyncCommand>,
    /// The configuration file.
    #[arg(long, value_name = "FILE", required = true)]
    pub config: Option<PathBuf>,
    /// Run every enabled job once (in parallel, jobs writing the same target in turn), then
    /// exit: 0 when all succeeded, 1 otherwise.
    #[arg(long)]
    pub once: bool,
    /// Print each job's plan ("+ product version item path size" to add, "- ..." to remove)
    /// and exit; nothing is written.
    #[arg(long)]
    pub dry_run: bool,
    /// The status file (default: the configuration's status_file, else
    /// STATE_DIR/status.json); the lock that keeps one service per configuration is beside
    /// it.
    #[arg(long, value_name = "FILE")]
    pub status_file: Option<PathBuf>,
    /// Serve /metrics (Prometheus) and /healthz on this address, e.g. 127.0.0.1:9780.
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub listen: Option<SocketAddr>,
    /// Logging flags (the service logs at info level unless RUST_LOG says otherwise).
    #[command(flatten)]
    pub log: LogArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Check a configuration (keys, filters, keyrings, schedules) without syncing anything;
    /// list its jobs.
    Check {
        /// The configuration file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print the status file for people, or check it for Nagios (--check).
    Status(StatusArgs),
}

/// `sstream-sync status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The status file (default: that of --config, else $STATE_DIRECTORY/status.json, else
    /// /var/lib/sstream-sync/status.json when it exists, else
    /// ~/.local/state/simplestreams-rs/sync/status.json).
    #[arg(long, value_name = "FILE")]
    pub status_file: Option<PathBuf>,
    /// Find the status file through this configuration.
    #[arg(long, value_name = "FILE", conflicts_with = "status_file")]
    pub config: Option<PathBuf>,
    /// Nagios plugin: exit 0 (OK), 1 (WARNING), 2 (CRITICAL) or 3 (UNKNOWN) by the age of
    /// each enabled job's last success, with one line of output and performance data.
    #[arg(long)]
    pub check: bool,
    /// WARNING when a job's last success is older than this (default: twice its interval).
    #[arg(long, value_name = "DURATION", requires = "check", value_parser = duration)]
    pub warn_after: Option<std::time::Duration>,
    /// CRITICAL when a job's last success is older than this (default: four times its
    /// interval).
    #[arg(long, value_name = "DURATION", requires = "check", value_parser = duration)]
    pub crit_after: Option<std::time::Duration>,
}

fn duration(s: &str) -> Result<std::time::Duration, String> {
    parse_duration(s)
}

/// Sources and stores opened as the other tools open them (`location.rs`): directories,
/// HTTP(S), `swift://`, and the object stores it knows.
struct CliLocations;

impl Locations for CliLocations {
    fn source<'a>(
        &'a self,
        location: &'a str,
        http: &'a HttpOptions,
    ) -> BoxFuture<'a, anyhow::Result<Arc<dyn Source>>> {
        Box::pin(open_source(location, http))
    }

    fn store<'a>(
        &'a self,
        location: &'a str,
        settings: StoreSettings,
    ) -> BoxFuture<'a, anyhow::Result<Arc<dyn Store>>> {
        Box::pin(async move {
            if settings.create {
                let args = StoreArgs {
                    no_fsync: !settings.fsync,
                    segment_size: settings.segment_size_mib,
                    public: settings.public,
                };
                open_store(location, &args).await
            } else {
                open_store_existing(location).await
            }
        })
    }
}

/// Runs `sstream-sync`.
pub fn run(args: SstreamSyncArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(SyncCommand::Check { file }) => {
            args.log.init()?;
            check(&file)
        }
        Some(SyncCommand::Status(s)) => {
            args.log.init()?;
            status_cmd(&s)
        }
        None => {
            let mut log = args.log.clone();
            log.verbose = log.verbose.max(1);
            log.init()?;
            let path = args.config.clone().context("--config FILE is required")?;
            let config = match Config::load(&path) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!(
                        "sstream-sync: the configuration is refused, nothing was synced:\n{e}"
                    );
                    return Ok(ExitCode::from(EXIT_CONFIG));
                }
            };
            serve(args, path, config)
        }
    }
}

/// `sstream-sync check FILE`.
fn check(file: &Path) -> anyhow::Result<ExitCode> {
    let config = match Config::load(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    for note in &config.notes {
        println!("note: {note}");
    }
    println!("{}: {} job(s)", config.file, config.jobs.len());
    for j in &config.jobs {
        println!(
            "  {} ({}{}): {} -> {}, {}",
            j.name(),
            j.kind(),
            if j.spec.enabled { "" } else { ", disabled" },
            j.spec.source,
            j.target_label(),
            j.spec.timing.schedule
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the status file is, for `sstream-sync status`.
fn find_status_file(s: &StatusArgs) -> anyhow::Result<PathBuf> {
    if let Some(f) = &s.status_file {
        return Ok(f.clone());
    }
    if let Some(c) = &s.config {
        let config = Config::load(c).map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok(status_path(&config, None));
    }
    if std::env::var_os("STATE_DIRECTORY").is_none() {
        let system = PathBuf::from("/var/lib/sstream-sync/status.json");
        if system.is_file() {
            return Ok(system);
        }
    }
    Ok(default_state_dir().join("status.json"))
}

fn state_dir(config: &Config) -> PathBuf {
    config
        .settings
        .state_dir
        .clone()
        .unwrap_or_else(default_state_dir)
}

fn status_path(config: &Config, flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| config.settings.status_file.clone())
        .unwrap_or_else(|| state_dir(config).join("status.json"))
}

/// `sstream-sync status [--check]`.
fn status_cmd(s: &StatusArgs) -> anyhow::Result<ExitCode> {
    let path = find_status_file(s)?;
    let file = StatusFile::new(&path);
    let loaded = file.load();
    if s.check {
        let (severity, line) = match loaded {
            Ok(Some(status)) => status::check(
                &status,
                SystemTime::now(),
                Thresholds {
                    warn_after: s.warn_after,
                    crit_after: s.crit_after,
                },
            ),
            Ok(None) => (
                status::Severity::Unknown,
                format!("SSTREAM-SYNC UNKNOWN: no status file at {}", path.display()),
            ),
            Err(e) => (
                status::Severity::Unknown,
                format!("SSTREAM-SYNC UNKNOWN: {e:#}"),
            ),
        };
        println!("{line}");
        return Ok(ExitCode::from(severity as u8));
    }
    match loaded? {
        Some(status) => {
            print!("{}", status::render(&status, SystemTime::now()));
            Ok(ExitCode::SUCCESS)
        }
        None => anyhow::bail!(
            "no status file at {} (give --status-file or --config)",
            path.display()
        ),
    }
}

/// The service, `--once` or `--dry-run`.
fn serve(args: SstreamSyncArgs, path: PathBuf, config: Config) -> anyhow::Result<ExitCode> {
    for note in &config.notes {
        tracing::info!("{}: {note}", config.file);
    }
    // The blocking threads (file I/O, hashing) end soon after a pass rather than 10 s later,
    // so that what they hold goes back to the system when the service goes idle.
    let rt =
        crate::common::runtime_keeping_threads(simplestreams_sync::BLOCKING_THREAD_KEEP_ALIVE)?;
    let state_dir = state_dir(&config);
    let locations: Arc<dyn Locations> = Arc::new(CliLocations);
    if args.dry_run {
        let book = Arc::new(StatusBook::new(None, Status::default()));
        let service = Service::new(config, state_dir, book, locations)?;
        let plans = rt.block_on(service.plans());
        let mut ok = true;
        for (name, plan) in plans {
            println!("== {name}");
            match plan {
                Ok(lines) => {
                    for l in &lines {
                        println!("{l}");
                    }
                    let add = lines.iter().filter(|l| l.starts_with('+')).count();
                    let remove = lines.iter().filter(|l| l.starts_with('-')).count();
                    println!("total: {add} to add, {remove} to remove");
                }
                Err(e) => {
                    ok = false;
                    println!("cannot plan: {e:#}");
                }
            }
        }
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }

    let status_file = StatusFile::new(status_path(&config, args.status_file.as_deref()));
    rt.block_on(async move {
        let _lock = status_file.lock().await?;
        let mut previous = match status_file.load() {
            Ok(s) => s.unwrap_or_default(),
            Err(e) => {
                tracing::warn!("{e:#}; starting a new status file");
                Status::default()
            }
        };
        previous.version = STATUS_VERSION;
        previous.pid = Some(std::process::id());
        previous.config = Some(path.display().to_string());
        previous.started = Some(SystemTime::now());
        let book = Arc::new(StatusBook::new(Some(status_file.clone()), previous));
        let (trigger, shutdown) = shutdown_channel();
        tokio::spawn(async move {
            crate::mirror_glance_cmd::shutdown_signal().await;
            tracing::info!("stop requested");
            trigger.trigger();
        });
        let listen = args.listen.or(config.settings.listen);
        if let Some(addr) = listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            if !addr.ip().is_loopback() {
                tracing::warn!("--listen {addr}: the endpoint is not limited to this machine");
            }
            tracing::info!(
                "serving /metrics and /healthz on {}",
                listener
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default()
            );
            tokio::spawn(metrics::serve(
                listener,
                book.clone(),
                shutdown.clone().wait(),
            ));
        }
        tracing::info!(
            "{}: {} job(s); status in {}",
            config.file,
            config.jobs.len(),
            status_file.path().display()
        );
        let once = args.once;
        let service = Service::new(config, state_dir, book, locations)?;
        let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(reload_on_hangup(path, reload_tx, once));
        if once {
            let outcomes = service.run_once(shutdown).await;
            let failed: Vec<&str> = outcomes
                .iter()
                .filter(|(_, o)| !o.is_success())
                .map(|(n, _)| n.as_str())
                .collect();
            if failed.is_empty() {
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!("sstream-sync: failed: {}", failed.join(", "));
            return Ok(ExitCode::FAILURE);
        }
        service.run(reload_rx, shutdown).await;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// On each SIGHUP, reads the configuration again and hands it to the service; a refused one
/// is logged and the old one kept. With `--once`, SIGHUP is ignored (logged).
async fn reload_on_hangup(path: PathBuf, tx: tokio::sync::mpsc::Sender<Config>, once: bool) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            if once {
                tracing::info!("SIGHUP ignored: --once runs the configuration it started with");
                continue;
            }
            tracing::info!("SIGHUP: reading {} again", path.display());
            match Config::load(&path) {
                Ok(config) => {
                    for note in &config.notes {
                        tracing::info!("{}: {note}", config.file);
                    }
                    if tx.send(config).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!("the new configuration is refused, the old one is kept:\n{e}")
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (path, tx, once);
    }
}
