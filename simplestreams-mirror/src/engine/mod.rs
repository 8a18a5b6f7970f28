//! The sync engine: plan every products file, fetch and verify new items in parallel, publish
//! in a safe order, record the state once, then delete what nothing references.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use simplestreams_core::openpgp::SigningKey;
use simplestreams_core::{Document, FilterSet, PlanLimits, Products, PRODUCTS_FORMAT};

use crate::error::{Error, Result};
use crate::source::Source;
use crate::target::{HeldItem, ItemKey, NewItem, PendingRemoval, State, Target};

mod download;
mod metadata;
mod plan;
mod publish;

pub use metadata::SignaturePolicy;

use download::{fetch_item, Fetch};
use metadata::{fetch, Fetched};
use plan::{kept_paths, plan_products, ProductsPlan};

/// Which metadata the target publishes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetadataMode {
    /// The source's files byte for byte (signed files stay signed), as the reference, MAAS and
    /// the Glance charm expect; they may name items the filters left out.
    #[default]
    Verbatim,
    /// Only what was mirrored: products files rewritten to the items held; unsigned as `.json`
    /// (an index entry path `X.sjson` becomes `X.json`), or clear-signed as `.sjson` with
    /// [`SyncOptions::signing_key`].
    Filtered,
}

/// Options of a sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Path of the entry file (index or products) in the source.
    pub entry: String,
    /// Items must pass every filter.
    pub filters: FilterSet,
    /// `--max` and `--keep`.
    pub limits: PlanLimits,
    /// Download items with a `path` (`--no-item-download` turns it off).
    pub item_download: bool,
    /// Parallel downloads.
    pub jobs: usize,
    /// Which metadata to publish.
    pub metadata: MetadataMode,
    /// Signature handling.
    pub signatures: SignaturePolicy,
    /// With [`MetadataMode::Filtered`]: clear-sign the published files with this key (they are
    /// then published as `.sjson`).
    pub signing_key: Option<Arc<SigningKey>>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            entry: "streams/v1/index.json".into(),
            filters: FilterSet::default(),
            limits: PlanLimits::default(),
            item_download: true,
            jobs: 4,
            metadata: MetadataMode::default(),
            signatures: SignaturePolicy::default(),
            signing_key: None,
        }
    }
}

/// Receives progress events (for a progress bar). Every method does nothing by default.
pub trait Progress: Send + Sync {
    /// Downloads are about to start: this many items and bytes.
    fn start(&self, _items: u64, _bytes: u64) {}
    /// Bytes received and verified so far, for any item.
    fn bytes(&self, _n: u64) {}
    /// One item finished (verified and stored, or failed).
    fn item_done(&self, _key: &ItemKey, _ok: bool) {}
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// One line of a plan: `+` an item to add, `-` one to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanLine {
    /// `'+'` or `'-'`.
    pub op: char,
    /// Which item.
    pub key: ItemKey,
    /// Its path.
    pub path: String,
    /// Its size, when known.
    pub size: Option<u64>,
}

/// What a sync did.
#[derive(Debug, Default)]
pub struct Report {
    /// Items downloaded and verified.
    pub downloaded: usize,
    /// Bytes downloaded and verified.
    pub bytes: u64,
    /// Items found already present and verified (no download).
    pub present: usize,
    /// Items removed from the mirror.
    pub removed: usize,
    /// Products files published this run.
    pub products_published: Vec<String>,
    /// Whether the index was published.
    pub index_published: bool,
    /// Everything that failed; a products file named here was not published.
    pub errors: Vec<Error>,
}

impl Report {
    /// Whether everything succeeded.
    pub fn is_success(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A sync from a [`Source`] into a [`Target`].
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use simplestreams_mirror::{InMemory, Mirror, StoreExt, StoreSource, StoreTarget, SyncOptions};
///
/// let upstream = InMemory::new();
/// upstream.put_bytes("streams/v1/p.json", r#"{"format": "products:1.0", "content_id": "c",
///   "products": {"p": {"versions": {"1": {"items": {"i": {"path": "f/i.txt", "size": 5,
///   "md5": "5d41402abc4b2a76b9719d911017c592"}}}}}}}"#.into()).await?;
/// upstream.put_bytes("f/i.txt", "hello".into()).await?;
///
/// let mirror = InMemory::new();
/// let options = SyncOptions { entry: "streams/v1/p.json".into(), ..SyncOptions::default() };
/// let report = Mirror::new(
///     Arc::new(StoreSource::new(Arc::new(upstream))),
///     Arc::new(StoreTarget::new(Arc::new(mirror.clone()))),
///     options,
/// ).run().await?;
/// assert!(report.is_success());
/// assert_eq!(mirror.get_bytes("f/i.txt").await?, "hello");
/// # Ok::<(), simplestreams_mirror::Error>(()) }).unwrap();
/// ```
pub struct Mirror {
    source: Arc<dyn Source>,
    target: Arc<dyn Target>,
    options: SyncOptions,
    progress: Arc<dyn Progress>,
}

/// Metadata gathered and planned, before any write.
struct Gathered {
    /// The entry file when it is an index: its bytes as fetched and as parsed.
    index: Option<(Fetched, simplestreams_core::Index)>,
    plans: Vec<ProductsPlan>,
    /// Products files that could not be fetched or planned.
    errors: Vec<Error>,
}

impl Mirror {
    /// A sync with no progress reporting.
    pub fn new(source: Arc<dyn Source>, target: Arc<dyn Target>, options: SyncOptions) -> Mirror {
        Mirror {
            source,
            target,
            options,
            progress: Arc::new(NoProgress),
        }
    }

    /// Reports progress to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Mirror {
        self.progress = progress;
        self
    }

    fn signed_stream(&self) -> bool {
        self.options.entry.ends_with(".sjson")
    }

    async fn read_metadata(&self, state: &State, path: &str) -> Result<(Fetched, Bytes)> {
        let conditional = self.options.metadata == MetadataMode::Verbatim;
        let fetched = fetch(&*self.source, &*self.target, state, path, conditional).await?;
        let url = self.source.url(path);
        let json = self
            .options
            .signatures
            .open_shared(&url, &fetched.raw, self.signed_stream())?;
        Ok((fetched, json))
    }

    async fn plan_one(
        &self,
        state: &State,
        content_id: Option<&str>,
        path: &str,
        pre: Option<(Fetched, Bytes)>,
    ) -> Result<ProductsPlan> {
        let (fetched, json) = match pre {
            Some(p) => p,
            None => self.read_metadata(state, path).await?,
        };
        let url = self.source.url(path);
        let mut products = Products::from_slice(&json, &url)?;
        products.expand_aliases(&url)?;
        let cid = content_id
            .unwrap_or_else(|| products.content_id())
            .to_string();
        plan_products(
            Some(&cid),
            path,
            fetched,
            products,
            state.content.get(&cid),
            &self.options.filters,
            self.options.limits,
        )
    }

    async fn gather(&self, state: &State) -> Result<Gathered> {
        let entry = self.options.entry.clone();
        let (fetched, json) = self.read_metadata(state, &entry).await?;
        let url = self.source.url(&entry);
        match Document::from_slice(&json, &url)? {
            Document::Products(_) => {
                let plan = self
                    .plan_one(state, None, &entry, Some((fetched, json)))
                    .await?;
                Ok(Gathered {
                    index: None,
                    plans: vec![plan],
                    errors: Vec::new(),
                })
            }
            Document::Index(index) => {
                let entries: Vec<(String, String)> = index
                    .index
                    .iter()
                    .filter(|(_, e)| e.is_followed() && e.format() == Some(PRODUCTS_FORMAT))
                    .filter_map(|(cid, e)| Some((cid.clone(), e.path()?.to_string())))
                    .collect();
                let results: Vec<Result<ProductsPlan>> = stream::iter(entries)
                    .map(|(cid, path)| async move {
                        self.plan_one(state, Some(&cid), &path, None).await
                    })
                    .buffered(self.options.jobs.max(1))
                    .collect()
                    .await;
                let mut plans = Vec::new();
                let mut errors = Vec::new();
                for r in results {
                    match r {
                        Ok(p) => plans.push(p),
                        Err(e) => errors.push(e),
                    }
                }
                Ok(Gathered {
                    index: Some((fetched, index)),
                    plans,
                    errors,
                })
            }
            Document::Mirrors(_) => Err(Error::Location {
                location: url,
                message: "is a mirrors:1.0 file; give an index or products file".into(),
            }),
        }
    }

    /// The plan, without writing anything (`--dry-run`): `+` lines for items to download,
    /// `-` lines for items to remove. Fails on the first products file that cannot be read.
    pub async fn plan(&self) -> Result<Vec<PlanLine>> {
        let state = self.target.load_state().await?;
        let g = self.gather(&state).await?;
        if let Some(e) = g.errors.into_iter().next() {
            return Err(e);
        }
        let mut lines = Vec::new();
        for p in &g.plans {
            if self.options.item_download {
                for n in &p.add {
                    if let Some(path) = &n.path {
                        lines.push(PlanLine {
                            op: '+',
                            key: n.key.clone(),
                            path: path.clone(),
                            size: n.expected.size,
                        });
                    }
                }
            }
            for (key, held) in &p.remove {
                // An item without a file (a Glance image) is named by its target id.
                if let Some(path) = held.path.as_ref().or(held.id.as_ref()) {
                    lines.push(PlanLine {
                        op: '-',
                        key: key.clone(),
                        path: path.clone(),
                        size: held.size,
                    });
                }
            }
        }
        Ok(lines)
    }

    /// Runs the sync. An `Err` means nothing could be done (lock held, entry file unreadable);
    /// failures of single items or products files are in [`Report::errors`], and what they
    /// touch is left as it was.
    pub async fn run(&self) -> Result<Report> {
        let _lock = self.target.lock().await?;
        let loaded = self.target.load_state().await?;
        let mut state = loaded.clone();
        let mut report = Report::default();
        self.finish_pending(&mut state).await;

        let g = self.gather(&state).await?;
        report.errors.extend(g.errors);
        let failed_paths = self.download(&g.plans, &mut report).await;

        let mut all_ok = report.errors.is_empty();
        let mut removed: Vec<(ItemKey, HeldItem)> = Vec::new();
        for plan in g.plans {
            let failed: Vec<&NewItem> = plan
                .add
                .iter()
                .filter(|n| n.path.as_ref().is_some_and(|p| failed_paths.contains(p)))
                .collect();
            if !failed.is_empty() {
                all_ok = false;
                tracing::error!(
                    "{}: not published: {} item(s) failed",
                    plan.path,
                    failed.len()
                );
                continue;
            }
            match publish::products(
                &*self.target,
                &plan,
                self.options.metadata,
                self.options.signing_key.as_deref(),
            )
            .await
            {
                Ok(published) => {
                    if published {
                        report.products_published.push(plan.path.clone());
                    }
                    if self.options.metadata == MetadataMode::Verbatim {
                        state
                            .validators
                            .insert(plan.path.clone(), plan.fetched.validators.clone());
                    }
                    state.content.insert(plan.content_id.clone(), plan.after);
                    removed.extend(plan.remove);
                }
                Err(e) => {
                    all_ok = false;
                    report.errors.push(e);
                }
            }
        }
        if let Some((fetched, index)) = &g.index {
            if all_ok {
                match publish::index(
                    &*self.target,
                    &self.options.entry,
                    fetched,
                    index,
                    &state,
                    self.options.metadata,
                    self.options.signing_key.as_deref(),
                )
                .await
                {
                    Ok(published) => {
                        report.index_published = published;
                        if self.options.metadata == MetadataMode::Verbatim {
                            state
                                .validators
                                .insert(self.options.entry.clone(), fetched.validators.clone());
                        }
                    }
                    Err(e) => report.errors.push(e),
                }
            } else {
                tracing::error!(
                    "{}: not published, as some products files failed; the previous one stays",
                    self.options.entry
                );
            }
        }

        // Removal: recorded in the state first, then carried out.
        let refs = state.path_refs();
        state.pending = removed
            .into_iter()
            .filter(|(_, h)| h.path.as_deref().is_none_or(|p| !refs.contains_key(p)))
            .map(|(key, held)| PendingRemoval { key, held })
            .collect();
        report.removed = state.pending.len();
        if state != loaded {
            self.target.save_state(&state).await?;
        }
        for p in &state.pending {
            if let Err(e) = self.target.remove_item(&p.key, &p.held).await {
                tracing::warn!("{}: not removed (will retry next run): {e}", p.key);
            }
        }
        Ok(report)
    }

    /// Deletes what an earlier run meant to delete, unless something kept refers to it again.
    async fn finish_pending(&self, state: &mut State) {
        let pending = std::mem::take(&mut state.pending);
        let refs = state.path_refs();
        for p in pending {
            if p.held
                .path
                .as_deref()
                .is_some_and(|path| refs.contains_key(path))
            {
                continue;
            }
            if let Err(e) = self.target.remove_item(&p.key, &p.held).await {
                tracing::warn!("{}: not removed: {e}", p.key);
            }
        }
    }

    /// Downloads every added item with a path, once per path, `jobs` at a time. Returns the
    /// paths that failed (their errors go into the report).
    async fn download(&self, plans: &[ProductsPlan], report: &mut Report) -> HashSet<String> {
        let mut failed = HashSet::new();
        if !self.options.item_download {
            return failed;
        }
        let kept = kept_paths(plans);
        let mut seen = HashSet::new();
        let mut todo: Vec<&NewItem> = Vec::new();
        for n in plans.iter().flat_map(|p| &p.add) {
            let Some(path) = &n.path else { continue };
            if kept.get(path).is_some_and(|h| h.same_content(&n.held())) {
                report.present += 1;
                continue;
            }
            if seen.insert(path.clone()) {
                todo.push(n);
            }
        }
        let bytes: u64 = todo.iter().filter_map(|n| n.expected.size).sum();
        self.progress.start(todo.len() as u64, bytes);
        let mut results = stream::iter(todo)
            .map(|n| async move {
                let r = fetch_item(&*self.source, &*self.target, n, self.progress.clone()).await;
                self.progress.item_done(&n.key, r.is_ok());
                (n, r)
            })
            .buffer_unordered(self.options.jobs.max(1));
        while let Some((n, r)) = results.next().await {
            match r {
                Ok(Fetch::Downloaded(b)) => {
                    report.downloaded += 1;
                    report.bytes += b;
                }
                Ok(Fetch::Present) => report.present += 1,
                Err(e) => {
                    tracing::error!("{e}");
                    if let Some(p) = &n.path {
                        failed.insert(p.clone());
                    }
                    report.errors.push(e);
                }
            }
        }
        failed
    }
}
