//! One run of one job: the source opened, the target opened (a mirror store, or Glance through
//! one shared OpenStack session), the sync engine run until it ends or the service stops, and
//! what it did summed up as a [`JobOutcome`].
//!
//! Locations the library cannot open by itself (`swift://`, `s3://`, and what else the
//! command line's location rules know) are opened through [`Locations`], which the
//! `sstream-sync` binary implements with the same code as the other tools; [`LocalLocations`]
//! opens directories, `file://` and HTTP(S) sources.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
pub use futures::future::BoxFuture;
use glance_target::properties::ImageSettings;
use glance_target::{
    ClientOptions, CloudConfig, GlanceEvent, GlanceSync, GlanceSyncOptions, GlanceTargetOptions,
    ImageIdsOutput, Session,
};
use simplestreams_core::{ChecksumPolicy, PlanLimits};
use simplestreams_mirror::decompress::DecompressOptions;
use simplestreams_mirror::{
    FallbackSource, Freshness, HttpOptions, LocalStore, MetadataLimits, MetadataMode, Mirror,
    PlanLine, Report, RetryConfig, Source, Store, StoreExt, SyncOptions,
};
use swift_target::{SwiftClient, SwiftStore, SwiftStoreOptions};
use tokio::sync::Mutex;

use crate::config::{GlanceSpec, ImageIdsSpec, Job, MirrorSpec, Settings, TargetSpec};
use crate::status::RunResult;

/// How a mirror target's store is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSettings {
    /// Flush files to stable storage (directories).
    pub fsync: bool,
    /// Segment size of large Swift objects (S3 parts), in MiB; `None`: the store's default.
    pub segment_size_mib: Option<u64>,
    /// Make a Swift container readable by anyone.
    pub public: bool,
    /// Create what is missing (a container); `false` for a dry run, which writes nothing.
    pub create: bool,
}

/// Opens sources and stores from the locations a configuration gives. (Boxed futures rather
/// than `async fn`, so that implementing it needs no macro.)
pub trait Locations: Send + Sync {
    /// The source at `location` (a mirror root).
    fn source<'a>(
        &'a self,
        location: &'a str,
        http: &'a HttpOptions,
    ) -> BoxFuture<'a, anyhow::Result<Arc<dyn Source>>>;
    /// The store at `location` (a mirror target).
    fn store<'a>(
        &'a self,
        location: &'a str,
        settings: StoreSettings,
    ) -> BoxFuture<'a, anyhow::Result<Arc<dyn Store>>>;
}

/// Directories, `file://` and HTTP(S) sources; directory stores.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalLocations;

impl Locations for LocalLocations {
    fn source<'a>(
        &'a self,
        location: &'a str,
        http: &'a HttpOptions,
    ) -> BoxFuture<'a, anyhow::Result<Arc<dyn Source>>> {
        Box::pin(async move { Ok(simplestreams_mirror::open_source(location, http)?) })
    }

    fn store<'a>(
        &'a self,
        location: &'a str,
        settings: StoreSettings,
    ) -> BoxFuture<'a, anyhow::Result<Arc<dyn Store>>> {
        Box::pin(async move {
            match simplestreams_mirror::local_dir(location) {
                Ok(Some(dir)) => {
                    let store: Arc<dyn Store> =
                        Arc::new(LocalStore::new(dir).with_fsync(settings.fsync));
                    Ok(store)
                }
                _ => anyhow::bail!("{location}: only directories can be written here"),
            }
        })
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    /// How it ended.
    pub result: RunResult,
    /// What failed, one message (with its causes) per error.
    pub errors: Vec<String>,
    /// Items (images) added.
    pub added: u64,
    /// Items (images) removed.
    pub removed: u64,
    /// Bytes transferred.
    pub bytes: u64,
}

impl JobOutcome {
    fn failed(e: anyhow::Error) -> JobOutcome {
        JobOutcome {
            result: RunResult::Failure,
            errors: vec![format!("{e:#}")],
            added: 0,
            removed: 0,
            bytes: 0,
        }
    }

    fn interrupted() -> JobOutcome {
        JobOutcome {
            result: RunResult::Interrupted,
            errors: vec!["interrupted (the next run finishes the job)".into()],
            added: 0,
            removed: 0,
            bytes: 0,
        }
    }

    fn add_report(&mut self, report: &Report, prefix: &str) {
        self.added += report.downloaded as u64;
        self.removed += report.removed as u64;
        self.bytes += report.bytes;
        for e in &report.errors {
            self.errors.push(format!("{prefix}{}", chain(e)));
        }
    }

    /// Whether it succeeded.
    pub fn is_success(&self) -> bool {
        self.result == RunResult::Success
    }
}

/// An error with its causes, on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

/// Runs jobs: the service-wide settings, the HTTP settings of sources, and the OpenStack
/// session shared by every Glance job (authenticated on first use, its token renewed as it
/// nears expiry; a failure to build it fails the run and is tried again at the next).
pub struct Runner {
    settings: Settings,
    state_dir: PathBuf,
    http: HttpOptions,
    locations: Arc<dyn Locations>,
    session: Mutex<Option<Session>>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// A runner with `settings`, keeping Glance's lock and dates below `state_dir/glance`.
    pub fn new(
        settings: Settings,
        state_dir: PathBuf,
        locations: Arc<dyn Locations>,
    ) -> anyhow::Result<Runner> {
        let h = &settings.http;
        let mut http = HttpOptions {
            connect_timeout: h.connect_timeout,
            read_timeout: h.read_timeout,
            retry: RetryConfig {
                max_retries: h.retries,
                ..RetryConfig::default()
            },
            ..HttpOptions::default()
        };
        if let Some(ua) = &h.user_agent {
            http.user_agent = ua.clone();
        }
        if let Some(pem) = &h.ca_pem {
            http = http
                .with_pem_roots(pem, "the configured CA")
                .map_err(anyhow::Error::msg)?;
        }
        http.validate().map_err(anyhow::Error::msg)?;
        Ok(Runner {
            settings,
            state_dir,
            http,
            locations,
            session: Mutex::new(None),
        })
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Runs `job` once, until it ends or `shutdown` completes (then what is in flight is
    /// cleaned up and the outcome is [`RunResult::Interrupted`]).
    ///
    /// The future is not `Send` (the engine's futures are, but the compiler cannot prove it
    /// through their closures): run it with `block_on` or on a `LocalSet`, as
    /// [`Service`](crate::Service) does.
    pub async fn run(&self, job: &Job, shutdown: impl Future<Output = ()>) -> JobOutcome {
        let result = match &job.spec.target {
            TargetSpec::Mirror(m) => self.run_mirror(job, m, shutdown).await,
            TargetSpec::Glance(g) => self.run_glance(job, g, shutdown).await,
        };
        match result {
            Ok(outcome) => outcome,
            Err(e) if is_interrupted(&e) => JobOutcome::interrupted(),
            Err(e) => JobOutcome::failed(e),
        }
    }

    /// The plan of `job` (`--dry-run`): `+ product version item path size` for each item to
    /// add, `- …` for each to remove, per region for Glance; nothing is written.
    pub async fn plan(&self, job: &Job) -> anyhow::Result<Vec<String>> {
        let fmt = |l: &PlanLine| {
            let k = &l.key;
            format!(
                "{} {} {} {} {} {}",
                l.op,
                k.product,
                k.version,
                k.item,
                l.path,
                l.size.unwrap_or(0)
            )
        };
        match &job.spec.target {
            TargetSpec::Mirror(m) => {
                let source = self.source(job).await?;
                let store = self.store(m, false).await?;
                let lines = Mirror::to_store(source, store, self.sync_options(job))
                    .plan()
                    .await?;
                Ok(lines.iter().map(fmt).collect())
            }
            TargetSpec::Glance(g) => {
                let sync = self.glance_sync(job, g, false).await?;
                let mut out = Vec::new();
                for (region, lines) in sync.plan().await? {
                    out.push(format!("region {region}:"));
                    out.extend(lines.iter().map(fmt));
                }
                Ok(out)
            }
        }
    }

    async fn source(&self, job: &Job) -> anyhow::Result<Arc<dyn Source>> {
        let mut sources = vec![self
            .locations
            .source(&job.root, &self.http)
            .await
            .with_context(|| format!("cannot open the source {}", job.root))?];
        for m in &job.spec.mirrors {
            sources.push(
                self.locations
                    .source(m, &self.http)
                    .await
                    .with_context(|| format!("cannot open the mirror {m}"))?,
            );
        }
        Ok(if sources.len() == 1 {
            sources.remove(0)
        } else {
            Arc::new(FallbackSource::new(sources)?)
        })
    }

    async fn store(&self, m: &MirrorSpec, create: bool) -> anyhow::Result<Arc<dyn Store>> {
        let settings = StoreSettings {
            fsync: m.fsync,
            segment_size_mib: m.segment_size_mib,
            public: m.public,
            create,
        };
        self.locations
            .store(&m.target, settings)
            .await
            .with_context(|| format!("cannot open the target {}", m.target))
    }

    fn sync_options(&self, job: &Job) -> SyncOptions {
        let s = &job.spec;
        let (item_download, metadata) = match &s.target {
            TargetSpec::Mirror(m) => (
                m.item_download,
                if m.filtered_metadata {
                    MetadataMode::Filtered
                } else {
                    MetadataMode::Verbatim
                },
            ),
            TargetSpec::Glance(_) => (true, MetadataMode::Verbatim),
        };
        SyncOptions {
            entry: job.entry.clone(),
            filters: job.filters.clone(),
            limits: PlanLimits {
                max: s.max,
                keep: s.keep,
            },
            item_download,
            jobs: s.parallel.max(1),
            metadata,
            signatures: Some(job.signatures.clone()),
            metadata_limits: MetadataLimits {
                max_size: self.settings.http.max_metadata_size,
            },
            signing_key: job.signing_key.clone(),
            checksums: if s.all_checksums {
                ChecksumPolicy::All
            } else {
                ChecksumPolicy::Strongest
            },
            freshness: Freshness {
                allow_rollback: s.allow_rollback,
                stale_after: (s.stale_after_days > 0).then(|| {
                    std::time::Duration::from_secs(s.stale_after_days.saturating_mul(86400))
                }),
            },
            verify_existing: s.verify_existing,
            // Glance jobs decompress images whatever this says (GlanceSync), within these
            // limits; mirror jobs only with `decompress`.
            decompress: match &s.target {
                TargetSpec::Mirror(m) if !m.decompress => None,
                _ => Some(DecompressOptions {
                    max_size: s.max_decompressed_size_mib.saturating_mul(1 << 20),
                }),
            },
        }
    }

    async fn run_mirror(
        &self,
        job: &Job,
        m: &MirrorSpec,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<JobOutcome> {
        let source = self.source(job).await?;
        let store = self.store(m, true).await?;
        let report = Mirror::to_store(source, store, self.sync_options(job))
            .run_until(shutdown)
            .await?;
        let mut outcome = JobOutcome {
            result: RunResult::Success,
            errors: Vec::new(),
            added: 0,
            removed: 0,
            bytes: 0,
        };
        outcome.add_report(&report, "");
        if !outcome.errors.is_empty() {
            outcome.result = RunResult::Failure;
        }
        Ok(outcome)
    }

    /// The OpenStack session, built on first use from the `OS_*` variables or `clouds.yaml`
    /// and the `openstack:` settings.
    pub async fn session(&self) -> anyhow::Result<Session> {
        let mut held = self.session.lock().await;
        if let Some(s) = &*held {
            return Ok(s.clone());
        }
        let os = &self.settings.openstack;
        let mut config = match &os.cloud {
            Some(cloud) => CloudConfig::from_vars(|name| {
                if name == "OS_CLOUD" {
                    Some(cloud.clone())
                } else {
                    std::env::var(name).ok().filter(|v| !v.is_empty())
                }
            }),
            None => CloudConfig::from_env(),
        }
        .context("cannot read the OpenStack credentials (the OS_* variables of an openrc file, or OS_CLOUD and clouds.yaml)")?;
        if let Some(i) = os.interface {
            config.interface = i;
        }
        if let Some(pem) = &os.ca_pem {
            // The session takes its extra CA from a file: the decoded `ssl_ca`, kept in the
            // state directory (written atomically; rewritten only when it changed).
            let store = LocalStore::new(&self.state_dir);
            let name = "openstack-ca.pem";
            let current = std::fs::read(self.state_dir.join(name)).ok();
            if current.as_deref() != Some(pem.as_slice()) {
                store
                    .put_bytes(name, pem.clone().into())
                    .await
                    .context("cannot write the configured CA into the state directory")?;
            }
            config.cacert = Some(self.state_dir.join(name));
        }
        let mut options = ClientOptions::default();
        options.retry.max_retries = self.settings.http.retries;
        options.user_agent = os.user_agent.clone();
        let session = Session::with_options(config, options).context("cannot set up OpenStack")?;
        *held = Some(session.clone());
        Ok(session)
    }

    async fn glance_sync(
        &self,
        job: &Job,
        g: &GlanceSpec,
        create: bool,
    ) -> anyhow::Result<GlanceSync> {
        let session = self.session().await?;
        let source = self.source(job).await?;
        let (output, published_at) = match &g.output {
            None => (None, None),
            Some(ImageIdsSpec::Directory(dir)) => {
                (Some(ImageIdsOutput::Directory(dir.clone())), None)
            }
            Some(ImageIdsSpec::Swift(prefix)) if create => {
                let swift = output_swift(&session, prefix).await?;
                let url = swift.public_root();
                (Some(ImageIdsOutput::Store(Arc::new(swift))), Some(url))
            }
            Some(ImageIdsSpec::Swift(_)) => (None, None),
        };
        let name = job.spec.name.clone();
        let events = Arc::new(move |e: &GlanceEvent| match e {
            GlanceEvent::Created { id, name: image } => {
                tracing::info!("{name}: created {id}: {image}")
            }
            GlanceEvent::Removing { id, name: image } => {
                tracing::info!("{name}: removing {id}: {image}")
            }
            GlanceEvent::CleanedUp { id, status } => tracing::warn!(
                "{name}: deleted unfinished image {id} ({status}) left by an interrupted sync"
            ),
            _ => {}
        });
        let options = GlanceSyncOptions {
            sync: self.sync_options(job),
            target: GlanceTargetOptions {
                settings: ImageSettings {
                    content_id: String::new(),
                    name_prefix: g.name_prefix.clone(),
                    hypervisor_mapping: g.hypervisor_mapping,
                    custom_properties: g.custom_properties.clone(),
                    import_conversion: g.image_import_conversion,
                },
                visibility: g.visibility.clone(),
                modify_hook: g.modify_hook.clone(),
                state_dir: self.state_dir.join("glance"),
                events,
            },
            content_id: g.content_id.clone(),
            cloud_name: g.cloud_name.clone(),
            regions: g.regions.clone(),
            output,
            signing_key: None,
            set_latest: g.set_latest_property,
            product_streams_url: g
                .register_product_streams
                .then(|| g.product_streams_url.clone().or(published_at))
                .flatten(),
        };
        Ok(GlanceSync::new(session, source, options))
    }

    async fn run_glance(
        &self,
        job: &Job,
        g: &GlanceSpec,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<JobOutcome> {
        let sync = self.glance_sync(job, g, true).await?;
        let outcomes = sync.run(shutdown).await?;
        let mut outcome = JobOutcome {
            result: RunResult::Success,
            errors: Vec::new(),
            added: 0,
            removed: 0,
            bytes: 0,
        };
        for o in &outcomes {
            let prefix = format!("{}: ", o.region);
            if let Some(report) = &o.report {
                outcome.add_report(report, &prefix);
            }
            for e in &o.errors {
                outcome.errors.push(format!("{prefix}{}", chain(e)));
            }
        }
        if !outcome.errors.is_empty() {
            outcome.result = RunResult::Failure;
        }
        Ok(outcome)
    }
}

fn is_interrupted(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<simplestreams_mirror::Error>(),
            Some(simplestreams_mirror::Error::Interrupted)
        )
    })
}

/// The Swift store of `output_swift: CONTAINER/PREFIX`, readable by anyone (as the reference
/// and the charm make it).
async fn output_swift(session: &Session, prefix: &str) -> anyhow::Result<SwiftStore> {
    let trimmed = prefix.trim_start_matches('/');
    let (container, objects) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let client = SwiftClient::new(session)
        .await
        .context("output_swift: cannot find the object-store endpoint")?;
    let options = SwiftStoreOptions {
        public_read: true,
        ..SwiftStoreOptions::default()
    };
    SwiftStore::open(client, container, objects, options)
        .await
        .with_context(|| format!("output_swift {prefix}"))
}
