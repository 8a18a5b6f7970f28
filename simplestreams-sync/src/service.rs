//! The service: every job on its own timer, run by the [`Runner`], recorded in the
//! [`StatusBook`]; a reloaded configuration applied without a restart; a clean stop.
//!
//! **Jobs run concurrently, each on its own timer** (one task per job), rather than one after
//! the other: a job is mostly waiting on the network (a 1 GiB image from a slow mirror can take
//! an hour), and the rule is that one job must neither stop nor delay another. Run in turn, a
//! long upload would hold back every other job's schedule and its retries; concurrently, each
//! job retries a minute after its own failure whatever the others do. Each job already bounds
//! its own transfers (`parallel`), so a handful of jobs is a handful of connections. The one
//! exception is jobs that write the same place (the same mirror target, or the same Glance
//! content id, as the charm's `mirror_list` entries all do): those take turns, through a lock
//! per target, as the charm runs its mirrors one after the other — their syncs would otherwise
//! refuse each other at the target's lock.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch, Mutex};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::config::{Config, Job};
use crate::memory::{release_when_idle, Activity};
use crate::runner::{JobOutcome, Locations, Runner};
use crate::schedule::format_duration;
use crate::status::{human_bytes, RunResult, StatusBook};

/// Why a job stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    No,
    /// The service stops (a signal).
    Shutdown,
    /// The job left the configuration.
    Removed,
}

/// Completes when the service is told to stop.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// Tells the service to stop: jobs stop between items, cleaning up what is in flight.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// A stop signal and its trigger.
pub fn shutdown_channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    /// Stops the service.
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    /// Never completes.
    pub fn never() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        std::mem::forget(tx);
        Shutdown(rx)
    }

    /// Waits for the stop (also when the trigger is dropped).
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|v| *v).await;
    }

    /// Whether the stop was asked for.
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }
}

/// The locks of the targets jobs share (see the module's documentation).
#[derive(Default)]
struct Turns(std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>);

impl Turns {
    fn of(&self, key: &str) -> Arc<Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.to_string()).or_default().clone()
    }
}

/// What every job task shares.
#[derive(Clone)]
struct Shared {
    book: Arc<StatusBook>,
    runner: watch::Receiver<Arc<Runner>>,
    turns: Arc<Turns>,
    /// The runs in progress: when the last ends, freed memory goes back to the system.
    activity: Activity,
}

/// The sync service of one configuration.
pub struct Service {
    config: Config,
    state_dir: PathBuf,
    locations: Arc<dyn Locations>,
    book: Arc<StatusBook>,
    runner: watch::Sender<Arc<Runner>>,
    shared: Shared,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("config", &self.config.file)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

struct Task {
    job: watch::Sender<Arc<Job>>,
    stop: watch::Sender<Stop>,
    handle: JoinHandle<()>,
}

impl Service {
    /// A service for `config`, keeping its state below `state_dir` and recording in `book`.
    pub fn new(
        config: Config,
        state_dir: PathBuf,
        book: Arc<StatusBook>,
        locations: Arc<dyn Locations>,
    ) -> anyhow::Result<Service> {
        let runner = Arc::new(Runner::new(
            config.settings.clone(),
            state_dir.clone(),
            locations.clone(),
        )?);
        let (runner_tx, runner_rx) = watch::channel(runner);
        let service = Service {
            shared: Shared {
                book: book.clone(),
                runner: runner_rx,
                turns: Arc::new(Turns::default()),
                activity: Activity::default(),
            },
            config,
            state_dir,
            locations,
            book,
            runner: runner_tx,
        };
        service.describe_jobs();
        Ok(service)
    }

    /// The status it records.
    pub fn book(&self) -> Arc<StatusBook> {
        self.book.clone()
    }

    /// The configuration in effect.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Puts each job's description in the status (and only the configured jobs, in order).
    fn describe_jobs(&self) {
        let now = SystemTime::now();
        self.book.update(|s| {
            let mut jobs = Vec::new();
            for job in &self.config.jobs {
                let mut j = s.job(job.name()).cloned().unwrap_or_default();
                j.name = job.name().to_string();
                j.kind = job.kind().to_string();
                j.source = job.spec.source.clone();
                j.target = job.target_label();
                j.schedule = job.spec.timing.schedule.to_string();
                j.interval_seconds = job.spec.timing.schedule.interval().as_secs_f64();
                j.enabled = job.spec.enabled;
                j.since.get_or_insert(now);
                j.running = false;
                if !job.spec.enabled {
                    j.next_run = None;
                }
                jobs.push(j);
            }
            s.jobs = jobs;
        });
    }

    /// Runs every enabled job once (those sharing a target in turn, the others at the same
    /// time), records each outcome, and returns them in the configuration's order.
    pub async fn run_once(&self, shutdown: Shutdown) -> Vec<(String, JobOutcome)> {
        let mut runs = Vec::new();
        for job in &self.config.jobs {
            if !job.spec.enabled {
                tracing::info!("{}: disabled, not run", job.name());
                continue;
            }
            let shared = self.shared.clone();
            let stop = shutdown.clone();
            let span = tracing::info_span!("sync", job = %job.name());
            runs.push(
                async move {
                    let turn = shared.turns.of(&job.exclusive_key());
                    let _turn = turn.lock().await;
                    let runner = shared.runner.borrow().clone();
                    let outcome =
                        run_and_record(&shared.book, &runner, job, stop.wait(), false).await;
                    (job.name().to_string(), outcome)
                }
                .instrument(span),
            );
        }
        let out = futures::future::join_all(runs).await;
        self.book.save().await;
        out
    }

    /// Prints nothing and writes nothing: each job's plan, or why it could not be made.
    pub async fn plans(&self) -> Vec<(String, anyhow::Result<Vec<String>>)> {
        let runner = self.runner.borrow().clone();
        let mut out = Vec::new();
        for job in &self.config.jobs {
            out.push((job.name().to_string(), runner.plan(job).await));
        }
        out
    }

    /// Runs the jobs on their schedules until `shutdown`; each configuration received on
    /// `reloads` replaces the current one: new jobs start, removed jobs stop (between items),
    /// changed jobs run again now with their new settings, unchanged jobs keep their timers.
    ///
    /// The jobs run on a `LocalSet` of their own (see [`Runner::run`]): await this future with
    /// `block_on`, not in a spawned task.
    pub async fn run(self, reloads: mpsc::Receiver<Config>, shutdown: Shutdown) {
        let local = tokio::task::LocalSet::new();
        local.run_until(self.run_jobs(reloads, shutdown)).await;
    }

    async fn run_jobs(mut self, mut reloads: mpsc::Receiver<Config>, shutdown: Shutdown) {
        let mut tasks: HashMap<String, Task> = HashMap::new();
        let mut retired: Vec<JoinHandle<()>> = Vec::new();
        for job in self.config.jobs.clone() {
            let task = self.spawn(job);
            tasks.insert(task.0, task.1);
        }
        self.book.save().await;
        let release = tokio::task::spawn_local(release_when_idle(self.shared.activity.clone()));
        let stop = shutdown.clone().wait();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                config = reloads.recv() => match config {
                    Some(config) => self.reload(config, &mut tasks, &mut retired).await,
                    None => std::future::pending::<()>().await,
                },
                () = &mut stop => break,
            }
        }
        tracing::info!("stopping: jobs in progress stop between items");
        for t in tasks.values() {
            let _ = t.stop.send(Stop::Shutdown);
        }
        for (_, t) in tasks {
            let _ = t.handle.await;
        }
        for h in retired {
            let _ = h.await;
        }
        release.abort();
        self.book.save().await;
    }

    async fn reload(
        &mut self,
        config: Config,
        tasks: &mut HashMap<String, Task>,
        retired: &mut Vec<JoinHandle<()>>,
    ) {
        if config.settings != self.config.settings {
            match Runner::new(
                config.settings.clone(),
                self.state_dir.clone(),
                self.locations.clone(),
            ) {
                Ok(r) => {
                    let _ = self.runner.send(Arc::new(r));
                }
                Err(e) => {
                    tracing::error!("the new settings are refused, the old ones kept: {e:#}");
                    return;
                }
            }
            if config.settings.listen != self.config.settings.listen
                || config.settings.state_dir != self.config.settings.state_dir
                || config.settings.status_file != self.config.settings.status_file
            {
                tracing::warn!("listen, state_dir and status_file take effect at the next start");
            }
        }
        let names: Vec<String> = config.jobs.iter().map(|j| j.name().to_string()).collect();
        let gone: Vec<String> = tasks
            .keys()
            .filter(|n| !names.contains(n))
            .cloned()
            .collect();
        for name in gone {
            if let Some(t) = tasks.remove(&name) {
                tracing::info!("{name}: removed from the configuration, stopping it");
                let _ = t.stop.send(Stop::Removed);
                retired.push(t.handle);
            }
        }
        let (mut added, mut changed) = (0, 0);
        for job in &config.jobs {
            match tasks.get(job.name()) {
                Some(t) => {
                    if t.job.borrow().spec != job.spec {
                        changed += 1;
                    }
                    let _ = t.job.send(Arc::new(job.clone()));
                }
                None => added += 1,
            }
        }
        self.config = config;
        self.describe_jobs();
        for job in self.config.jobs.clone() {
            if !tasks.contains_key(job.name()) {
                let (name, task) = self.spawn(job);
                tasks.insert(name, task);
            }
        }
        retired.retain(|h| !h.is_finished());
        self.book.save().await;
        tracing::info!(
            "configuration reloaded from {}: {} job(s), {added} new, {changed} changed",
            self.config.file,
            self.config.jobs.len()
        );
    }

    fn spawn(&self, job: Job) -> (String, Task) {
        let name = job.name().to_string();
        let (job_tx, job_rx) = watch::channel(Arc::new(job));
        let (stop_tx, stop_rx) = watch::channel(Stop::No);
        let span = tracing::info_span!("sync", job = %name);
        let handle = tokio::task::spawn_local(
            job_loop(self.shared.clone(), job_rx, stop_rx).instrument(span),
        );
        (
            name,
            Task {
                job: job_tx,
                stop: stop_tx,
                handle,
            },
        )
    }
}

/// Completes when the job is told to stop (or its service is gone).
async fn stopped(mut stop: watch::Receiver<Stop>) {
    let _ = stop.wait_for(|s| *s != Stop::No).await;
}

/// One job's life: wait for its time, take its turn, run, record, schedule the next run.
async fn job_loop(
    shared: Shared,
    mut job_rx: watch::Receiver<Arc<Job>>,
    stop: watch::Receiver<Stop>,
) {
    let mut job = job_rx.borrow_and_update().clone();
    let name = job.name().to_string();
    let last = shared
        .book
        .update(|s| s.job(&name).and_then(|j| j.last_run()));
    let mut next = job
        .spec
        .timing
        .at_start(SystemTime::now(), last, rand::random());
    loop {
        let enabled = job.spec.enabled;
        shared
            .book
            .update(|s| s.job_mut(&name).next_run = enabled.then_some(next));
        let wait = if enabled {
            next.duration_since(SystemTime::now()).unwrap_or_default()
        } else {
            Duration::from_secs(365 * 86400)
        };
        if enabled {
            tracing::debug!("next run in {}", format_duration(wait));
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            changed = job_rx.changed() => {
                if changed.is_err() {
                    return;
                }
                let new = job_rx.borrow_and_update().clone();
                if new.spec != job.spec {
                    tracing::info!("its configuration changed: it runs now");
                    next = SystemTime::now();
                }
                job = new;
                continue;
            }
            () = stopped(stop.clone()) => return,
        }
        let turn = shared.turns.of(&job.exclusive_key());
        let _turn = tokio::select! {
            t = turn.lock() => t,
            () = stopped(stop.clone()) => return,
        };
        if *stop.borrow() != Stop::No {
            return;
        }
        let runner = shared.runner.borrow().clone();
        let busy = shared.activity.start();
        run_and_record(&shared.book, &runner, &job, stopped(stop.clone()), true).await;
        drop(busy);
        let reason = *stop.borrow();
        if reason != Stop::No {
            if reason == Stop::Removed {
                shared.book.update(|s| s.jobs.retain(|j| j.name != name));
                shared.book.save().await;
            }
            return;
        }
        next = shared
            .book
            .update(|s| s.job(&name).and_then(|j| j.next_run))
            .unwrap_or_else(|| SystemTime::now() + job.spec.timing.retry_interval);
    }
}

/// Runs `job` once and records it in `book`: the start, then the outcome, the totals and
/// (with `schedule`) the next run. Logs one line for the run.
async fn run_and_record(
    book: &StatusBook,
    runner: &Runner,
    job: &Job,
    shutdown: impl std::future::Future<Output = ()>,
    schedule: bool,
) -> JobOutcome {
    let name = job.name().to_string();
    let started = SystemTime::now();
    book.update(|s| {
        let j = s.job_mut(&name);
        j.running = true;
        j.last_start = Some(started);
        j.next_run = None;
    });
    book.save().await;
    tracing::info!("syncing {} into {}", job.spec.source, job.target_label());
    let clock = std::time::Instant::now();
    let outcome = runner.run(job, shutdown).await;
    let took = clock.elapsed();
    let ended = started + took;
    let timing = job.spec.timing;
    let next = book.update(|s| {
        let j = s.job_mut(&name);
        j.running = false;
        j.last_end = Some(ended);
        j.last_duration_seconds = Some(took.as_secs_f64());
        j.last_result = Some(outcome.result);
        j.last_error = (!outcome.errors.is_empty()).then(|| outcome.errors.join("\n"));
        j.added = outcome.added;
        j.removed = outcome.removed;
        j.bytes = outcome.bytes;
        j.totals.runs += 1;
        j.totals.added += outcome.added;
        j.totals.removed += outcome.removed;
        j.totals.bytes += outcome.bytes;
        let ever_succeeded = j.last_success.is_some();
        if outcome.is_success() {
            j.last_success = Some(ended);
            j.consecutive_failures = 0;
        } else {
            j.totals.failures += 1;
            j.consecutive_failures += 1;
        }
        let next = if outcome.is_success() {
            timing.after_success(started, ended, rand::random())
        } else {
            timing.after_failure(ended, j.consecutive_failures, ever_succeeded)
        };
        j.next_run = schedule.then_some(next);
        next
    });
    book.save().await;
    let wait = format_duration(next.duration_since(SystemTime::now()).unwrap_or_default());
    let did = format!(
        "{} added, {} removed, {}",
        outcome.added,
        outcome.removed,
        human_bytes(outcome.bytes)
    );
    match outcome.result {
        RunResult::Success if schedule => tracing::info!(
            "synced in {} ({did}); next run in {wait}",
            format_duration(took)
        ),
        RunResult::Success => tracing::info!("synced in {} ({did})", format_duration(took)),
        RunResult::Interrupted => {
            tracing::warn!("interrupted after {} ({did})", format_duration(took))
        }
        RunResult::Failure => {
            let retry = if schedule {
                format!("; retry in {wait}")
            } else {
                String::new()
            };
            tracing::error!(
                "FAILED after {} ({did}){retry}: {}",
                format_duration(took),
                outcome.errors.join("; ")
            );
        }
    }
    outcome
}
