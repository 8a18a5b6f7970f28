//! One Glance sync as `sstream-mirror-glance` runs it, and as the sync service repeats it:
//! region by region, the engine into a [`GlanceTarget`], then `latest` and the image-ids
//! stream of what the cloud holds. A failing region does not stop the others.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use simplestreams_core::openpgp::SigningKey;
use simplestreams_mirror::decompress::DecompressOptions;
use simplestreams_mirror::{
    Error as MirrorError, LocalStore, Mirror, PlanLine, Progress, Publisher, Report, Source, Store,
    SyncOptions,
};

use crate::glance::GlanceClient;
use crate::image_ids::CloudInfo;
use crate::target::{GlanceTarget, GlanceTargetOptions};
use openstack_client::{ServiceSpec, Session};

/// Where the image-ids stream of each region is published.
#[derive(Debug, Clone)]
pub enum ImageIdsOutput {
    /// `--output-dir DIR`: region `R` into `DIR/R/`, as the reference writes it.
    Directory(PathBuf),
    /// Every region into one store (`--output-swift`: a Swift container and prefix); the index
    /// holds one entry per content id, hence per region.
    Store(Arc<dyn Store>),
}

impl ImageIdsOutput {
    fn store_for(&self, region: &str) -> Arc<dyn Store> {
        match self {
            ImageIdsOutput::Directory(dir) => Arc::new(LocalStore::new(dir.join(region))),
            ImageIdsOutput::Store(store) => store.clone(),
        }
    }
}

/// Everything one Glance sync needs besides the session and the source.
#[derive(Clone)]
pub struct GlanceSyncOptions {
    /// The engine's options (entry, filters, `--max`, signatures, checksums, …; compressed
    /// images are decompressed whatever `decompress` says, see [`GlanceSync`]).
    pub sync: SyncOptions,
    /// How images are made; `settings.content_id` is filled in per region.
    pub target: GlanceTargetOptions,
    /// `--content-id`: may hold the region as `%(region)s` (the reference) or `{region}` (the
    /// charm's `content_id_template`).
    pub content_id: String,
    /// `--cloud-name`.
    pub cloud_name: String,
    /// The regions to sync; empty for every region with an image endpoint.
    pub regions: Vec<String>,
    /// Where to publish the image-ids stream, if anywhere.
    pub output: Option<ImageIdsOutput>,
    /// Sign the image-ids stream with this key (`.sjson` beside `.json`).
    pub signing_key: Option<Arc<SigningKey>>,
    /// `--set-latest-property`.
    pub set_latest: bool,
    /// Announce the published stream at this URL in Keystone as the `product-streams`
    /// service (public, internal and admin endpoints in each region synced), as the charm
    /// does, so that Juju finds the image ids.
    pub product_streams_url: Option<String>,
}

/// The catalog entry through which Juju finds a cloud's image-ids stream (the service name
/// is the one the glance-simplestreams-sync charm registers).
pub const PRODUCT_STREAMS: ServiceSpec<'static> = ServiceSpec {
    service_type: "product-streams",
    name: "image-stream",
    description: "The simplestreams image-ids of this cloud's images (read by Juju)",
};

/// What happened in one region.
#[derive(Debug)]
pub struct RegionOutcome {
    /// The region.
    pub region: String,
    /// The content id used there.
    pub content_id: String,
    /// The engine's report, when it ran.
    pub report: Option<Report>,
    /// What failed: the sync itself, or what follows it (`latest`, the image-ids stream).
    pub errors: Vec<MirrorError>,
}

impl RegionOutcome {
    /// Whether everything in this region succeeded.
    pub fn is_success(&self) -> bool {
        self.errors.is_empty() && self.report.as_ref().is_some_and(Report::is_success)
    }
}

/// Substitutes the region in a content id template: `%(region)s` and `%%` as Python's `%`
/// operator does (the reference), `{region}` as Python's `format` does (the charm).
pub fn content_id_for(template: &str, region: &str) -> Result<String, String> {
    let template = template.replace("{region}", "%(region)s");
    let mut out = String::new();
    let mut rest = template.as_str();
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
            return Err(format!(
                "content id {template:?}: only %(region)s, {{region}} and %% may be substituted"
            ));
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A Glance sync: the source, the session, the options.
pub struct GlanceSync {
    session: Session,
    source: Arc<dyn Source>,
    options: GlanceSyncOptions,
    progress: Option<Arc<dyn Progress>>,
}

impl GlanceSync {
    /// A sync of `source` into the Glance of `session`'s cloud.
    pub fn new(session: Session, source: Arc<dyn Source>, options: GlanceSyncOptions) -> Self {
        GlanceSync {
            session,
            source,
            options,
            progress: None,
        }
    }

    /// Reports the engine's progress to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The project our images belong to (the token's).
    async fn project_id(&self) -> Result<String, MirrorError> {
        let token = self.session.token().await.map_err(service)?;
        token.project_id.ok_or_else(|| MirrorError::Location {
            location: self.session.identity_url().to_string(),
            message: "the token is not scoped to a project: set OS_PROJECT_NAME or OS_PROJECT_ID"
                .into(),
        })
    }

    /// The regions to sync.
    pub async fn regions(&self) -> Result<Vec<String>, MirrorError> {
        if !self.options.regions.is_empty() {
            return Ok(self.options.regions.clone());
        }
        let regions = self.session.regions("image").await.map_err(service)?;
        if regions.is_empty() {
            return Err(MirrorError::Location {
                location: self.session.identity_url().to_string(),
                message: "the service catalog has no image endpoint".into(),
            });
        }
        Ok(regions)
    }

    async fn target(
        &self,
        region: &str,
        project_id: &str,
    ) -> Result<Arc<GlanceTarget>, MirrorError> {
        let content_id = content_id_for(&self.options.content_id, region).map_err(|message| {
            MirrorError::Location {
                location: "--content-id".into(),
                message,
            }
        })?;
        let glance = GlanceClient::for_region(&self.session, region)
            .await
            .map_err(service)?;
        let mut options = self.options.target.clone();
        options.settings.content_id = content_id;
        Ok(Arc::new(GlanceTarget::new(
            glance,
            project_id.to_string(),
            options,
        )))
    }

    /// The engine's sync into `target`. Compressed images (`.xz`, `.gz`, `.bz2`, `.zst`) are
    /// always uploaded decompressed, within `sync.decompress`'s limits when given: Glance
    /// cannot boot a compressed file, nor tell what is inside.
    fn mirror(&self, target: Arc<GlanceTarget>) -> Mirror {
        let mut sync = self.options.sync.clone();
        sync.decompress
            .get_or_insert_with(DecompressOptions::default);
        let m = Mirror::new(self.source.clone(), target, sync);
        match &self.progress {
            Some(p) => m.with_progress(p.clone()),
            None => m,
        }
    }

    /// The plan of every region (`--dry-run`).
    pub async fn plan(&self) -> Result<Vec<(String, Vec<PlanLine>)>, MirrorError> {
        let project_id = self.project_id().await?;
        let mut plans = Vec::new();
        for region in self.regions().await? {
            let target = self.target(&region, &project_id).await?;
            plans.push((region, self.mirror(target).plan().await?));
        }
        Ok(plans)
    }

    /// Syncs every region in turn, until `shutdown` completes: then the region in progress
    /// cleans up what was in flight and the sync ends with [`MirrorError::Interrupted`].
    pub async fn run(
        &self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Vec<RegionOutcome>, MirrorError> {
        let project_id = self.project_id().await?;
        let regions = self.regions().await?;
        tokio::pin!(shutdown);
        let mut outcomes = Vec::new();
        for region in regions {
            let target = match self.target(&region, &project_id).await {
                Ok(t) => t,
                Err(e) => {
                    outcomes.push(RegionOutcome {
                        content_id: String::new(),
                        region,
                        report: None,
                        errors: vec![e],
                    });
                    continue;
                }
            };
            let content_id = target.content_id().to_string();
            let mut outcome = RegionOutcome {
                region: region.clone(),
                content_id: content_id.clone(),
                report: None,
                errors: Vec::new(),
            };
            match self.mirror(target.clone()).run_until(&mut shutdown).await {
                Ok(report) => outcome.report = Some(report),
                Err(MirrorError::Interrupted) => return Err(MirrorError::Interrupted),
                Err(e) => outcome.errors.push(e),
            }
            if outcome.report.is_some() {
                if let Err(e) = self
                    .finish(&target, &region, &content_id, &project_id)
                    .await
                {
                    outcome.errors.push(e);
                } else if let Some(url) = &self.options.product_streams_url {
                    match self
                        .session
                        .register_endpoints(&PRODUCT_STREAMS, &region, url)
                        .await
                    {
                        Ok(r) if r.changed() => {
                            tracing::info!("{region}: product-streams at {url}: {r:?}")
                        }
                        Ok(_) => {}
                        Err(e) => outcome.errors.push(service(e)),
                    }
                }
            }
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// `latest`, then the image-ids stream of what the region now holds.
    async fn finish(
        &self,
        target: &GlanceTarget,
        region: &str,
        content_id: &str,
        project_id: &str,
    ) -> Result<(), MirrorError> {
        let cloud = CloudInfo {
            content_id: content_id.to_string(),
            cloud_name: self.options.cloud_name.clone(),
            region: region.to_string(),
            endpoint: self.session.config().auth_url.clone(),
            owner_id: project_id.to_string(),
            hypervisor_mapping: self.options.target.settings.hypervisor_mapping,
        };
        let publisher = self.options.output.as_ref().map(|o| {
            Publisher::new(o.store_for(region)).signing_with(self.options.signing_key.clone())
        });
        target
            .finish(
                self.options.set_latest,
                publisher.as_ref().map(|p| (p, &cloud)),
            )
            .await
    }
}

fn service(e: openstack_client::Error) -> MirrorError {
    crate::target::to_mirror(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_id_takes_the_region_like_python_and_the_charm() {
        assert_eq!(
            content_id_for("auto.sync:%(region)s", "RegionOne").ok(),
            Some("auto.sync:RegionOne".to_string())
        );
        assert_eq!(
            content_id_for("auto.sync:{region}", "RegionOne").ok(),
            Some("auto.sync:RegionOne".to_string())
        );
        assert_eq!(content_id_for("a%%b", "r").ok(), Some("a%b".to_string()));
        assert_eq!(content_id_for("plain", "r").ok(), Some("plain".to_string()));
        assert!(content_id_for("bad %s", "r").is_err());
    }
}
