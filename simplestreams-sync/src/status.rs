//! The status file: per job, when it last started, ended and succeeded, the last error, what
//! the last run added, removed and transferred, the totals since the file was created, and when
//! it runs next. Written atomically (by [`LocalStore`]'s put: a temporary name, flushed, then
//! renamed) after each job run, read back at start (schedules survive a restart) and by
//! `sstream-sync status`, for people and for Nagios ([`check`]).
//!
//! The service holds a lock beside it (`STATUS_FILE.lock`, an `flock` released by the kernel
//! even after `kill -9`), so that one configuration is served by one process at a time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use simplestreams_mirror::{LocalStore, PutOptions, Store, StoreLock};

use crate::schedule::{format_duration, LastRun};

/// The version of the status file's layout.
pub const STATUS_VERSION: u32 = 1;

/// The whole status file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The layout's version ([`STATUS_VERSION`]).
    pub version: u32,
    /// The configuration file of the service that wrote it.
    #[serde(default)]
    pub config: Option<String>,
    /// The process id of the service that wrote it.
    #[serde(default)]
    pub pid: Option<u32>,
    /// When that service started.
    #[serde(default, with = "time_opt")]
    pub started: Option<SystemTime>,
    /// When the file was written.
    #[serde(default, with = "time_opt")]
    pub updated: Option<SystemTime>,
    /// The jobs, in the configuration's order.
    #[serde(default)]
    pub jobs: Vec<JobStatus>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunResult {
    /// Everything synced.
    Success,
    /// Something failed (the error says what).
    Failure,
    /// Stopped by a signal; the next run finishes it.
    Interrupted,
}

/// Totals over every run recorded in the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Runs.
    pub runs: u64,
    /// Runs that failed or were interrupted.
    pub failures: u64,
    /// Items (images) added.
    pub added: u64,
    /// Items (images) removed.
    pub removed: u64,
    /// Bytes transferred.
    pub bytes: u64,
}

/// One job's status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// The job's name.
    pub name: String,
    /// `glance` or `mirror`.
    #[serde(default)]
    pub kind: String,
    /// Its source.
    #[serde(default)]
    pub source: String,
    /// Its target.
    #[serde(default)]
    pub target: String,
    /// Its schedule, for people.
    #[serde(default)]
    pub schedule: String,
    /// Its interval in seconds (for `status --check`'s default thresholds).
    #[serde(default)]
    pub interval_seconds: f64,
    /// Whether the service runs it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// When a service first scheduled it (the age of a job that never succeeded counts from
    /// here).
    #[serde(default, with = "time_opt")]
    pub since: Option<SystemTime>,
    /// Whether a run is in progress.
    #[serde(default)]
    pub running: bool,
    /// When the last run started.
    #[serde(default, with = "time_opt")]
    pub last_start: Option<SystemTime>,
    /// When the last run ended.
    #[serde(default, with = "time_opt")]
    pub last_end: Option<SystemTime>,
    /// How long the last run took.
    #[serde(default)]
    pub last_duration_seconds: Option<f64>,
    /// How the last run ended.
    #[serde(default)]
    pub last_result: Option<RunResult>,
    /// The last run's errors, one per line, when it did not succeed.
    #[serde(default)]
    pub last_error: Option<String>,
    /// When the last successful run ended.
    #[serde(default, with = "time_opt")]
    pub last_success: Option<SystemTime>,
    /// Failed runs since the last success.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Items (images) the last run added.
    #[serde(default)]
    pub added: u64,
    /// Items (images) the last run removed.
    #[serde(default)]
    pub removed: u64,
    /// Bytes the last run transferred.
    #[serde(default)]
    pub bytes: u64,
    /// When it runs next.
    #[serde(default, with = "time_opt")]
    pub next_run: Option<SystemTime>,
    /// Totals.
    #[serde(default)]
    pub totals: Totals,
}

fn yes() -> bool {
    true
}

impl JobStatus {
    /// The last run as the schedule needs it.
    pub fn last_run(&self) -> Option<LastRun> {
        Some(LastRun {
            started: self.last_start?,
            ended: self.last_end?,
            success: self.last_result? == RunResult::Success,
        })
    }
}

impl Status {
    /// The job named `name`.
    pub fn job(&self, name: &str) -> Option<&JobStatus> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// The job named `name`, added when missing.
    pub fn job_mut(&mut self, name: &str) -> &mut JobStatus {
        let i = match self.jobs.iter().position(|j| j.name == name) {
            Some(i) => i,
            None => {
                self.jobs.push(JobStatus {
                    name: name.to_string(),
                    enabled: true,
                    ..JobStatus::default()
                });
                self.jobs.len() - 1
            }
        };
        &mut self.jobs[i]
    }
}

/// RFC 3339 times (UTC, milliseconds) for the status file.
mod time_opt {
    use std::time::SystemTime;

    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::rfc3339(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map(|dt| SystemTime::from(dt.with_timezone(&Utc)))
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

/// `2026-11-22T10:00:00.000Z`.
pub fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `2026-11-22 10:00:00 UTC`, for people.
fn human_time(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// The service's state directory: `$STATE_DIRECTORY` (systemd's `StateDirectory=`), else
/// `$XDG_STATE_HOME/simplestreams-rs/sync`, else `~/.local/state/simplestreams-rs/sync`.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY").filter(|v| !v.is_empty()) {
        // systemd separates several directories with ':'; the first is ours.
        let first = dir
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        return PathBuf::from(first);
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })
        .unwrap_or_else(std::env::temp_dir);
    base.join("simplestreams-rs/sync")
}

/// The status file on disk, and the lock beside it.
#[derive(Debug, Clone)]
pub struct StatusFile {
    path: PathBuf,
    dir: LocalStore,
    name: String,
}

impl StatusFile {
    /// The status file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> StatusFile {
        let path: PathBuf = path.into();
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "status.json".into());
        StatusFile {
            dir: LocalStore::new(dir),
            path,
            name,
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock's path.
    pub fn lock_path(&self) -> PathBuf {
        self.path.with_file_name(format!("{}.lock", self.name))
    }

    /// Reads it; `Ok(None)` when there is none yet.
    pub fn load(&self) -> anyhow::Result<Option<Status>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let status: Status = serde_json::from_slice(&bytes).map_err(|e| {
                    anyhow::anyhow!("{}: not a status file: {e}", self.path.display())
                })?;
                Ok(Some(status))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", self.path.display())),
        }
    }

    /// Writes it atomically and durably.
    pub async fn save(&self, status: &Status) -> anyhow::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(status)?;
        bytes.push(b'\n');
        self.dir
            .put(
                &self.name,
                simplestreams_mirror::byte_stream(bytes),
                PutOptions::durable(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", self.path.display()))?;
        Ok(())
    }

    /// Takes the lock beside it, or fails saying another process holds it.
    pub async fn lock(&self) -> anyhow::Result<StoreLock> {
        let name = format!("{}.lock", self.name);
        self.dir.lock(&name).await.map_err(|e| match e {
            simplestreams_mirror::Error::Locked { .. } => anyhow::anyhow!(
                "{}: another sstream-sync is running with this status file (its pid is in the \
                 lock file)",
                self.lock_path().display()
            ),
            e => anyhow::anyhow!("cannot take the lock {}: {e}", self.lock_path().display()),
        })
    }
}

/// The status shared by a running service's jobs: updated in memory, written whole after each
/// change that matters, one write at a time (the last write holds the latest state).
#[derive(Debug)]
pub struct StatusBook {
    file: Option<StatusFile>,
    state: Mutex<Status>,
    writing: tokio::sync::Mutex<()>,
}

impl StatusBook {
    /// A book starting from `status`, written to `file` (none: kept in memory only, for
    /// `--dry-run` and tests).
    pub fn new(file: Option<StatusFile>, status: Status) -> StatusBook {
        StatusBook {
            file,
            state: Mutex::new(status),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// Changes the status in memory.
    pub fn update<R>(&self, f: impl FnOnce(&mut Status) -> R) -> R {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s)
    }

    /// A copy of the status.
    pub fn snapshot(&self) -> Status {
        self.update(|s| s.clone())
    }

    /// Writes the status file; a failure is logged (the service goes on: the file is for
    /// people and monitoring, not for the sync).
    pub async fn save(&self) {
        let Some(file) = &self.file else { return };
        let _one_at_a_time = self.writing.lock().await;
        let snapshot = self.update(|s| {
            s.updated = Some(SystemTime::now());
            s.clone()
        });
        if let Err(e) = file.save(&snapshot).await {
            tracing::warn!("{e:#}");
        }
    }
}

/// Nagios's states, as exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// 0.
    Ok = 0,
    /// 1.
    Warning = 1,
    /// 2.
    Critical = 2,
    /// 3: the status cannot be told.
    Unknown = 3,
}

impl Severity {
    /// `OK`, `WARNING`, `CRITICAL`, `UNKNOWN`.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Ok => "OK",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
            Severity::Unknown => "UNKNOWN",
        }
    }
}

/// The thresholds of [`check`]: explicit, or (`None`) twice and four times each job's interval.
#[derive(Debug, Clone, Copy, Default)]
pub struct Thresholds {
    /// WARNING when a job's last success is older than this.
    pub warn_after: Option<Duration>,
    /// CRITICAL when a job's last success is older than this.
    pub crit_after: Option<Duration>,
}

/// The Nagios verdict on `status` at `now`, by the age of each enabled job's last success (a
/// job that never succeeded counts from when it was first scheduled): the state and the
/// plugin's output line (with performance data: each job's age in seconds).
pub fn check(status: &Status, now: SystemTime, t: Thresholds) -> (Severity, String) {
    let jobs: Vec<&JobStatus> = status.jobs.iter().filter(|j| j.enabled).collect();
    if jobs.is_empty() {
        return (
            Severity::Unknown,
            "SSTREAM-SYNC UNKNOWN: no enabled job in the status file".into(),
        );
    }
    let mut worst = Severity::Ok;
    let mut complaints = Vec::new();
    let mut perf = Vec::new();
    let mut oldest = Duration::ZERO;
    for j in &jobs {
        let interval = Duration::try_from_secs_f64(j.interval_seconds.max(1.0))
            .unwrap_or(Duration::from_secs(86400));
        let warn = t.warn_after.unwrap_or(interval * 2);
        let crit = t.crit_after.unwrap_or(interval * 4).max(warn);
        let baseline = j.last_success.or(j.since);
        let age = baseline
            .map(|b| now.duration_since(b).unwrap_or_default())
            .unwrap_or_default();
        oldest = oldest.max(age);
        let state = if age > crit {
            Severity::Critical
        } else if age > warn {
            Severity::Warning
        } else {
            Severity::Ok
        };
        if state > Severity::Ok {
            let what = match j.last_success {
                Some(_) => format!("{}: last success {} ago", j.name, format_duration(age)),
                None => format!("{}: no success in {}", j.name, format_duration(age)),
            };
            let limit = if state == Severity::Critical {
                crit
            } else {
                warn
            };
            let error = j
                .last_error
                .as_deref()
                .and_then(|e| e.lines().next())
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default();
            complaints.push(format!(
                "{what} ({} after {}{error})",
                state.label().to_lowercase(),
                format_duration(limit)
            ));
        }
        worst = worst.max(state);
        perf.push(format!(
            "'{}'={}s;{};{};0",
            j.name.replace('\'', "\""),
            age.as_secs(),
            warn.as_secs(),
            crit.as_secs()
        ));
    }
    let text = if complaints.is_empty() {
        format!(
            "{} job(s) synced in time (oldest last success {} ago)",
            jobs.len(),
            format_duration(oldest)
        )
    } else {
        complaints.join("; ")
    };
    (
        worst,
        format!(
            "SSTREAM-SYNC {}: {text} | {}",
            worst.label(),
            perf.join(" ")
        ),
    )
}

/// The status for people: a block per job.
pub fn render(status: &Status, now: SystemTime) -> String {
    let ago = |t: SystemTime| match now.duration_since(t) {
        Ok(d) => format!("{} ({} ago)", human_time(t), format_duration(d)),
        Err(e) => format!("{} (in {})", human_time(t), format_duration(e.duration())),
    };
    let mut out = String::new();
    if let (Some(pid), Some(updated)) = (status.pid, status.updated) {
        let _ = writeln!(
            out,
            "written by sstream-sync (pid {pid}{}) at {}",
            status
                .config
                .as_deref()
                .map(|c| format!(", {c}"))
                .unwrap_or_default(),
            ago(updated)
        );
    }
    for j in &status.jobs {
        let _ = writeln!(
            out,
            "\n{} ({} {} -> {})",
            j.name, j.kind, j.source, j.target
        );
        let state = if !j.enabled {
            "disabled".to_string()
        } else if j.running {
            "running".to_string()
        } else {
            j.schedule.clone()
        };
        let _ = writeln!(out, "  schedule:     {state}");
        let _ = writeln!(
            out,
            "  last success: {}",
            j.last_success.map(ago).unwrap_or_else(|| "never".into())
        );
        if let Some(start) = j.last_start {
            let how = match (j.last_result, j.running) {
                (_, true) => "in progress".to_string(),
                (Some(r), _) => format!(
                    "{} after {}",
                    match r {
                        RunResult::Success => "succeeded",
                        RunResult::Failure => "FAILED",
                        RunResult::Interrupted => "interrupted",
                    },
                    format_duration(Duration::from_secs_f64(
                        j.last_duration_seconds.unwrap_or(0.0).max(0.0)
                    ))
                ),
                (None, false) => "unfinished".to_string(),
            };
            let _ = writeln!(out, "  last run:     {}, {how}", ago(start));
            let _ = writeln!(
                out,
                "                {} added, {} removed, {}",
                j.added,
                j.removed,
                human_bytes(j.bytes)
            );
        }
        if j.consecutive_failures > 0 {
            let _ = writeln!(out, "  failures:     {} in a row", j.consecutive_failures);
        }
        if let Some(e) = &j.last_error {
            for (i, l) in e.lines().enumerate() {
                let label = if i == 0 {
                    "  last error:   "
                } else {
                    "                "
                };
                let _ = writeln!(out, "{label}{l}");
            }
        }
        if let (Some(next), true) = (j.next_run, j.enabled && !j.running) {
            let _ = writeln!(out, "  next run:     {}", ago(next));
        }
    }
    out
}

/// `1.5 GiB`.
pub fn human_bytes(bytes: u64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    const H: Duration = Duration::from_secs(3600);

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn job(name: &str, success_ago: Option<Duration>) -> JobStatus {
        JobStatus {
            name: name.into(),
            kind: "mirror".into(),
            enabled: true,
            interval_seconds: 3600.0,
            since: Some(now() - 100 * H),
            last_success: success_ago.map(|a| now() - a),
            ..JobStatus::default()
        }
    }

    #[test]
    fn status_file_round_trips_and_is_written_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StatusFile::new(dir.path().join("status.json"));
        assert_eq!(file.load().expect("no file yet"), None);
        let mut status = Status {
            version: STATUS_VERSION,
            pid: Some(42),
            ..Status::default()
        };
        let j = status.job_mut("a");
        j.last_start = Some(now());
        j.last_end = Some(now() + Duration::from_millis(1500));
        j.last_result = Some(RunResult::Success);
        j.totals.runs = 1;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(file.save(&status)).expect("save");
        let back = file.load().expect("read").expect("present");
        assert_eq!(back, status);
        let text = std::fs::read_to_string(file.path()).expect("read");
        assert!(text.contains("\"last_result\": \"success\""), "{text}");
        assert!(
            text.contains("\"last_start\": \"2027-01-15T08:00:00.000Z\""),
            "{text}"
        );
        // Nothing but the file itself in the directory: no temporary left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["status.json"]);
        std::fs::write(file.path(), "not json").expect("write");
        assert!(file.load().is_err());
    }

    #[test]
    fn status_check_is_ok_warning_or_critical_by_the_age_of_the_last_success() {
        let t = Thresholds {
            warn_after: Some(2 * H),
            crit_after: Some(5 * H),
        };
        let ok = Status {
            jobs: vec![job("a", Some(H)), job("b", Some(H / 2))],
            ..Status::default()
        };
        let (sev, line) = check(&ok, now(), t);
        assert_eq!(sev, Severity::Ok, "{line}");
        assert!(line.starts_with("SSTREAM-SYNC OK: 2 job(s)"), "{line}");
        assert!(line.contains("'a'=3600s;7200;18000;0"), "{line}");

        let warn = Status {
            jobs: vec![job("a", Some(H)), job("b", Some(3 * H))],
            ..Status::default()
        };
        let (sev, line) = check(&warn, now(), t);
        assert_eq!(sev, Severity::Warning, "{line}");
        assert!(
            line.contains("b: last success 3h ago (warning after 2h)"),
            "{line}"
        );

        let mut failing = job("c", None);
        failing.last_error = Some("cannot fetch index.json\nmore".into());
        let crit = Status {
            jobs: vec![job("a", Some(3 * H)), failing],
            ..Status::default()
        };
        let (sev, line) = check(&crit, now(), t);
        assert_eq!(sev, Severity::Critical, "{line}");
        assert!(
            line.contains(
                "c: no success in 4d 4h (critical after 5h, last error: cannot fetch index.json)"
            ),
            "{line}"
        );

        // Without thresholds: twice and four times each job's interval (here an hour).
        let (sev, _) = check(&warn, now(), Thresholds::default());
        assert_eq!(sev, Severity::Warning);

        // A disabled job is not checked; no job at all is UNKNOWN.
        let mut off = job("off", None);
        off.enabled = false;
        let only_off = Status {
            jobs: vec![off],
            ..Status::default()
        };
        assert_eq!(check(&only_off, now(), t).0, Severity::Unknown);
    }

    #[test]
    fn status_renders_for_people() {
        let mut j = job("ubuntu", Some(H));
        j.source = "http://m/".into();
        j.target = "/srv/m".into();
        j.schedule = "hourly".into();
        j.last_start = Some(now() - 10 * Duration::from_secs(60));
        j.last_duration_seconds = Some(2.0);
        j.last_result = Some(RunResult::Failure);
        j.last_error = Some("boom\nsecond".into());
        j.consecutive_failures = 2;
        j.added = 3;
        j.bytes = 3 << 20;
        j.next_run = Some(now() + H);
        let text = render(
            &Status {
                jobs: vec![j],
                ..Status::default()
            },
            now(),
        );
        assert!(
            text.contains("ubuntu (mirror http://m/ -> /srv/m)"),
            "{text}"
        );
        assert!(
            text.contains("last run:     2027-01-15 07:50:00 UTC (10m ago), FAILED after 2s"),
            "{text}"
        );
        assert!(text.contains("3 added, 0 removed, 3.0 MiB"), "{text}");
        assert!(
            text.contains("last error:   boom\n                second"),
            "{text}"
        );
        assert!(
            text.contains("next run:     2027-01-15 09:00:00 UTC (in 1h)"),
            "{text}"
        );
        assert!(text.contains("failures:     2 in a row"), "{text}");
    }
}
