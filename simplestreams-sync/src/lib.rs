//! # simplestreams-sync
//!
//! The sync service behind `sstream-sync`: what the glance-simplestreams-sync charm does with
//! cron, a wrapper script and `sstream-mirror-glance`, as one long-running process that an
//! operator points at one configuration file and forgets.
//!
//! - [`config`]: the YAML file, a list of jobs (a source, filters, `max`/`keep`, and a Glance
//!   or mirror target), or the charm's own keys pasted as they are; everything checked at
//!   start, each refusal naming the file, the line and the key ([`ConfigError`]).
//! - [`schedule`]: `hourly`, `daily`, `weekly` or an interval, with jitter; retries every
//!   minute until the first success, then backoff after a failed scheduled run.
//! - [`runner`]: one run of one job, through the same engine as `sstream-mirror` and
//!   `sstream-mirror-glance` ([`simplestreams_mirror::Mirror`],
//!   [`glance_target::GlanceSync`]), stopped cleanly between items on request.
//! - [`service`]: every job on its own timer, concurrently (jobs writing the same target take
//!   turns), reloads, `--once`, dry runs.
//! - [`status`]: the status file (written atomically after each run), its rendering for
//!   people, the Nagios check, and the lock that keeps one process per configuration.
//! - [`metrics`]: `/metrics` (Prometheus) and `/healthz` on a local port.
//!
//! A mirror job run once, from a stream in a directory into another:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use simplestreams_sync::{Config, LocalLocations, Service, StatusBook, StatusFile, Status};
//!
//! let upstream = tempfile::tempdir()?;
//! std::fs::create_dir_all(upstream.path().join("streams/v1"))?;
//! std::fs::create_dir_all(upstream.path().join("f"))?;
//! std::fs::write(upstream.path().join("streams/v1/c.json"), r#"{"format": "products:1.0",
//!   "content_id": "c", "products": {"p": {"arch": "amd64", "versions": {"1": {"items": {"i":
//!   {"path": "f/i.txt", "size": 5, "md5": "5d41402abc4b2a76b9719d911017c592"}}}}}}}"#)?;
//! std::fs::write(upstream.path().join("f/i.txt"), "hello")?;
//! let mirror = tempfile::tempdir()?;
//! let state = tempfile::tempdir()?;
//!
//! let config = Config::parse(&format!(r#"
//! jobs:
//!   - name: example
//!     source: {}/streams/v1/c.json
//!     item_filters: ["arch=amd64"]
//!     schedule: 6h
//!     mirror:
//!       target: {}
//! "#, upstream.path().display(), mirror.path().display()), "example.yaml")?;
//! assert_eq!(config.jobs[0].spec.timing.schedule.to_string(), "every 6h");
//!
//! let status = StatusFile::new(state.path().join("status.json"));
//! let book = Arc::new(StatusBook::new(Some(status.clone()), Status::default()));
//! let service = Service::new(config, state.path().to_path_buf(), book, Arc::new(LocalLocations))?;
//! let outcomes = service.run_once(simplestreams_sync::Shutdown::never()).await;
//! assert!(outcomes[0].1.is_success());
//! assert_eq!(std::fs::read_to_string(mirror.path().join("f/i.txt"))?, "hello");
//!
//! let written = status.load()?.expect("a status file");
//! assert_eq!(written.job("example").map(|j| j.added), Some(1));
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```
#![deny(missing_docs)]

pub mod config;
mod memory;
pub mod metrics;
pub mod runner;
pub mod schedule;
pub mod service;
pub mod status;

pub use config::{Config, ConfigError, Job, JobSpec, Problem, TargetSpec};
pub use memory::BLOCKING_THREAD_KEEP_ALIVE;
pub use runner::{BoxFuture, JobOutcome, LocalLocations, Locations, Runner, StoreSettings};
pub use schedule::{Jitter, Schedule, Timing};
pub use service::{shutdown_channel, Service, Shutdown, ShutdownTrigger};
pub use status::{RunResult, Status, StatusBook, StatusFile};
