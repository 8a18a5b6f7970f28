//! The sync engine: plan every products file, fetch and verify new items in parallel, publish
//! in a safe order, record the state once, then delete what nothing references.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use simplestreams_core::openpgp::SigningKey;
use simplestreams_core::{
    json_path, ChecksumPolicy, Document, FilterSet, Index, PlanLimits, Products, PRODUCTS_FORMAT,
};

use crate::decompress::{image_compression, DecompressOptions};
use crate::error::{Error, Result};
use crate::metadata::{MetadataLimits, MetadataReader, SignatureMode, SignaturePolicy};
use crate::publish::Publisher;
use crate::source::Source;
use crate::store::Store;
use crate::target::{
    check_mirror_path, HeldItem, ItemKey, NewItem, PendingRemoval, State, StoreTarget, StoredAs,
    Target,
};

mod download;
mod fresh;
mod plan;
mod publish;
mod read;

pub(crate) use download::verifying;
use download::{fetch_item, Fetch};
use plan::{kept_paths, plan_products, ProductsPlan};
use read::Read;

/// Which metadata the target publishes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetadataMode {
    /// The source's files byte for byte (signed files stay signed, and their JSON is published
    /// beside them as `.json` for clients that read only JSON), as the reference, MAAS and the
    /// Glance charm expect; they may name items the filters left out.
    #[default]
    Verbatim,
    /// Only what was mirrored: products files rewritten to the items held, as `.json`, and
    /// with [`SyncOptions::signing_key`] also clear-signed as `.sjson` with a detached
    /// `.json.gpg`.
    Filtered,
}

/// Rollback and freeze protection (TUF's lesson): what the engine accepts of a source's dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Accept metadata older than what was seen before (`--allow-rollback`): by default a file
    /// whose `updated` is older than the newest seen from the same URL is refused, since a
    /// validly signed old file is exactly what an attacker replays.
    pub allow_rollback: bool,
    /// Warn when a signed source's `updated` is older than this (a source frozen in time);
    /// `None` never warns.
    pub stale_after: Option<Duration>,
}

impl Default for Freshness {
    fn default() -> Self {
        Freshness {
            allow_rollback: false,
            stale_after: Some(Duration::from_secs(30 * 24 * 3600)),
        }
    }
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
    /// Signature handling; `None` decides as the reference does, from the entry path: a
    /// `.sjson` entry must verify (and needs a keyring), a `.json` one is read as it is.
    pub signatures: Option<SignaturePolicy>,
    /// Limits on metadata files.
    pub metadata_limits: MetadataLimits,
    /// With [`MetadataMode::Filtered`]: sign the published files with this key.
    pub signing_key: Option<Arc<SigningKey>>,
    /// Which checksums of an item are verified (the size always is).
    pub checksums: ChecksumPolicy,
    /// Rollback and freeze protection.
    pub freshness: Freshness,
    /// Re-verify what the target already holds, and fetch again what fails
    /// (`--verify-existing`).
    pub verify_existing: bool,
    /// Store compressed disk images (see [`crate::decompress::image_compression`])
    /// decompressed (`--decompress`), within these limits; `None` stores every item as
    /// published. The bytes as published are verified as always; the raw size and sha256 are
    /// recorded, and [`MetadataMode::Filtered`] metadata names the raw file with them (the
    /// source's metadata, naming the compressed file, cannot be published verbatim).
    pub decompress: Option<DecompressOptions>,
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
            signatures: None,
            metadata_limits: MetadataLimits::default(),
            signing_key: None,
            checksums: ChecksumPolicy::default(),
            freshness: Freshness::default(),
            verify_existing: false,
            decompress: None,
        }
    }
}

impl SyncOptions {
    /// The signature policy in effect (see [`SyncOptions::signatures`]).
    pub fn signature_policy(&self) -> SignaturePolicy {
        match &self.signatures {
            Some(p) => p.clone(),
            None if self.entry.ends_with(".sjson") => SignaturePolicy {
                mode: SignatureMode::Require,
                keyring: None,
            },
            None => SignaturePolicy::off(),
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
    /// Its path (or, for an item without a file, its id in the target).
    pub path: String,
    /// Its size, when known.
    pub size: Option<u64>,
}

/// The totals of a plan: items and bytes to add and to remove. Byte totals saturate rather
/// than wrap, whatever sizes a stream claims.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanTotals {
    /// Items to download.
    pub add: usize,
    /// Their bytes.
    pub add_bytes: u64,
    /// Items to remove.
    pub remove: usize,
    /// Their bytes.
    pub remove_bytes: u64,
}

impl PlanTotals {
    /// The totals of `lines`.
    pub fn of(lines: &[PlanLine]) -> PlanTotals {
        let mut t = PlanTotals::default();
        for l in lines {
            let size = l.size.unwrap_or(0);
            if l.op == '+' {
                t.add += 1;
                t.add_bytes = t.add_bytes.saturating_add(size);
            } else {
                t.remove += 1;
                t.remove_bytes = t.remove_bytes.saturating_add(size);
            }
        }
        t
    }
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
    /// Items held that failed re-verification and were fetched again (`verify_existing`).
    pub repaired: usize,
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

/// A sync from a [`Source`] into a [`Target`], publishing metadata into a [`Store`] when given
/// one ([`Mirror::publishing_to`]).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use simplestreams_mirror::{InMemory, Mirror, StoreExt, StoreSource, SyncOptions};
///
/// let upstream = InMemory::new();
/// upstream.put_bytes("streams/v1/p.json", r#"{"format": "products:1.0", "content_id": "c",
///   "products": {"p": {"versions": {"1": {"items": {"i": {"path": "f/i.txt", "size": 5,
///   "md5": "5d41402abc4b2a76b9719d911017c592"}}}}}}}"#.into()).await?;
/// upstream.put_bytes("f/i.txt", "hello".into()).await?;
///
/// let mirror = InMemory::new();
/// let options = SyncOptions { entry: "streams/v1/p.json".into(), ..SyncOptions::default() };
/// let report = Mirror::to_store(
///     Arc::new(StoreSource::new(Arc::new(upstream))),
///     Arc::new(mirror.clone()),
///     options,
/// ).run().await?;
/// assert!(report.is_success());
/// assert_eq!(mirror.get_bytes("f/i.txt").await?, "hello");
/// # Ok::<(), simplestreams_mirror::Error>(()) }).unwrap();
/// ```
pub struct Mirror {
    reader: MetadataReader,
    target: Arc<dyn Target>,
    publisher: Option<Publisher>,
    options: SyncOptions,
    progress: Arc<dyn Progress>,
}

/// Metadata gathered and planned, before any write.
struct Gathered {
    /// The entry file when it is an index: as read, and as parsed.
    index: Option<(Read, Index)>,
    plans: Vec<ProductsPlan>,
    /// Products files that could not be fetched or planned.
    errors: Vec<Error>,
}

impl Mirror {
    /// A sync of items into `target` that publishes no metadata (an image service).
    pub fn new(source: Arc<dyn Source>, target: Arc<dyn Target>, options: SyncOptions) -> Mirror {
        let reader = MetadataReader::new(source, options.signature_policy())
            .with_limits(options.metadata_limits);
        Mirror {
            reader,
            target,
            publisher: None,
            options,
            progress: Arc::new(NoProgress),
        }
    }

    /// A mirror into a store: items, metadata and the engine's state all in `store`.
    pub fn to_store(
        source: Arc<dyn Source>,
        store: Arc<dyn Store>,
        options: SyncOptions,
    ) -> Mirror {
        Mirror::new(source, Arc::new(StoreTarget::new(store.clone())), options).publishing_to(store)
    }

    /// Publishes the metadata (as [`SyncOptions::metadata`] says) into `store`, signed with
    /// [`SyncOptions::signing_key`] when given.
    pub fn publishing_to(mut self, store: Arc<dyn Store>) -> Mirror {
        self.publisher = Some(Publisher::new(store).signing_with(self.options.signing_key.clone()));
        self
    }

    /// Reports progress to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Mirror {
        self.progress = progress;
        self
    }

    fn source(&self) -> &dyn Source {
        &**self.reader.source()
    }

    async fn plan_one(
        &self,
        state: &State,
        content_id: Option<&str>,
        path: &str,
        pre: Option<Read>,
    ) -> Result<ProductsPlan> {
        check_mirror_path(path)?;
        let read = match pre {
            Some(r) => r,
            None => self.read(state, path).await?,
        };
        let url = read.file.url.clone();
        let mut products = Products::from_slice(&read.file.json, &url)?;
        products.expand_aliases(&url)?;
        let cid = content_id
            .unwrap_or_else(|| products.content_id())
            .to_string();
        plan_products(
            Some(&cid),
            path,
            read,
            products,
            state.content.get(&cid),
            &self.options.filters,
            self.options.limits,
            self.options.verify_existing,
        )
    }

    async fn gather(&self, state: &mut State) -> Result<Gathered> {
        let entry = self.options.entry.clone();
        check_mirror_path(&entry)?;
        let read = self.read(state, &entry).await?;
        let url = read.file.url.clone();
        match Document::from_slice(&read.file.json, &url)? {
            Document::Products(p) => {
                self.check_fresh(state, &read.file, p.fields.get("updated"))?;
                let plan = self.plan_one(state, None, &entry, Some(read)).await?;
                Ok(Gathered {
                    index: None,
                    plans: vec![plan],
                    errors: Vec::new(),
                })
            }
            Document::Index(index) => {
                self.check_fresh(state, &read.file, index.fields.get("updated"))?;
                let entries: Vec<(String, String)> = index
                    .index
                    .iter()
                    .filter(|(_, e)| e.is_followed() && e.format() == Some(PRODUCTS_FORMAT))
                    .filter_map(|(cid, e)| Some((cid.clone(), e.path()?.to_string())))
                    .collect();
                check_distinct_names(&entries, &url)?;
                let st: &State = state;
                let results: Vec<Result<ProductsPlan>> =
                    stream::iter(entries)
                        .map(|(cid, path)| async move {
                            self.plan_one(st, Some(&cid), &path, None).await
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
                for p in &plans {
                    self.check_fresh(state, &p.read.file, p.products.fields.get("updated"))?;
                }
                Ok(Gathered {
                    index: Some((read, index)),
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
        let mut state = self.target.load_state().await?;
        let g = self.gather(&mut state).await?;
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

    /// Runs the sync. An `Err` means nothing could be done (lock held, entry file unreadable,
    /// a rollback refused); failures of single items or products files are in
    /// [`Report::errors`], and what they touch is left as it was.
    pub async fn run(&self) -> Result<Report> {
        self.run_until(std::future::pending()).await
    }

    /// [`Mirror::run`], stopped when `shutdown` completes (a signal): no further item is
    /// started, those in flight are abandoned, the target cleans up what they left
    /// ([`Target::interrupted`]) with the lock still held, and the result is
    /// [`Error::Interrupted`]. What was published before stays published; nothing half-done
    /// is.
    pub async fn run_until(
        &self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<Report> {
        let lock = self.target.lock().await?;
        let outcome = tokio::select! {
            r = self.run_locked() => Some(r),
            () = shutdown => None,
        };
        let result = match outcome {
            Some(r) => r,
            None => {
                tracing::warn!("interrupted: cleaning up what was in flight");
                if let Err(e) = self.target.interrupted().await {
                    tracing::warn!("cleaning up after the interruption failed: {e}");
                }
                Err(Error::Interrupted)
            }
        };
        lock.release().await;
        result
    }

    async fn run_locked(&self) -> Result<Report> {
        let loaded = self.target.load_state().await?;
        let mut state = loaded.clone();
        let mut report = Report::default();
        self.finish_pending(&mut state).await;

        let mut g = self.gather(&mut state).await?;
        report.errors.extend(g.errors);
        let (failed_paths, stored) = self.download(&g.plans, &mut report).await;
        record_stored(&mut g.plans, &stored);

        let mut all_ok = report.errors.is_empty();
        let mut removed: Vec<(ItemKey, HeldItem)> = Vec::new();
        for plan in g.plans {
            let failed = plan
                .add
                .iter()
                .chain(&plan.verify)
                .filter(|n| n.path.as_ref().is_some_and(|p| failed_paths.contains(p)))
                .count();
            if failed > 0 {
                all_ok = false;
                if self.publisher.is_some() {
                    tracing::error!("{}: not published: {failed} item(s) failed", plan.path);
                }
                continue;
            }
            let published = match &self.publisher {
                Some(p) => publish::products(p, &plan, self.options.metadata).await,
                None => Ok(false),
            };
            match published {
                Ok(published) => {
                    if published {
                        report.products_published.push(plan.path.clone());
                    }
                    if self.options.metadata == MetadataMode::Verbatim {
                        state.validators.insert(
                            plan.read.file.path.clone(),
                            plan.read.file.validators.clone(),
                        );
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
        if let (Some((read, index)), Some(publisher)) = (&g.index, &self.publisher) {
            if all_ok {
                match publish::index(
                    publisher,
                    &self.options.entry,
                    read,
                    index,
                    &state,
                    self.options.metadata,
                )
                .await
                {
                    Ok(published) => {
                        report.index_published = published;
                        if self.options.metadata == MetadataMode::Verbatim {
                            state
                                .validators
                                .insert(read.file.path.clone(), read.file.validators.clone());
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

    /// Downloads every added item with a path, once per path, `jobs` at a time, and with
    /// `verify_existing` fetches again what the target holds but fails verification. Returns
    /// the paths that failed (their errors go into the report), and how the items stored
    /// decompressed were stored, by published path.
    async fn download(
        &self,
        plans: &[ProductsPlan],
        report: &mut Report,
    ) -> (HashSet<String>, HashMap<String, StoredAs>) {
        let mut failed = HashSet::new();
        let mut stored = HashMap::new();
        if !self.options.item_download {
            return (failed, stored);
        }
        let kept = kept_paths(plans);
        let published: HashSet<&str> = plans
            .iter()
            .flat_map(|p| p.add.iter().filter_map(|n| n.path.as_deref()))
            .chain(kept.keys().map(String::as_str))
            .chain(
                kept.values()
                    .filter_map(|k| Some(k.held.stored.as_ref()?.path.as_str())),
            )
            .collect();
        let mut raw_paths: HashMap<String, &ItemKey> = HashMap::new();
        let mut seen: HashMap<&str, &NewItem> = HashMap::new();
        let mut todo: Vec<&NewItem> = Vec::new();
        let mut md5_only = 0usize;
        for n in plans.iter().flat_map(|p| &p.add) {
            let Some(path) = &n.path else { continue };
            if let Some(k) = kept.get(path) {
                if k.held.same_content(&n.held()) {
                    report.present += 1;
                    continue;
                }
                // Downloading it would change the file under an item that stays.
                failed.insert(path.clone());
                report.errors.push(conflict(n, &k.key));
                continue;
            }
            if let Some(first) = seen.get(path.as_str()) {
                if first.expected != n.expected {
                    failed.insert(path.clone());
                    report.errors.push(conflict(n, &first.key));
                }
                continue;
            }
            if let Some(raw) = self.raw_path(path) {
                // Stored decompressed, it must not land on a file another item publishes,
                // nor on the raw file of another compression of the same image.
                let clash = published
                    .get(raw.as_str())
                    .map(|p| p.to_string())
                    .or_else(|| raw_paths.get(&raw).map(|k| k.to_string()));
                if let Some(other) = clash {
                    failed.insert(path.clone());
                    report.errors.push(raw_conflict(n, &raw, &other));
                    continue;
                }
                raw_paths.insert(raw, &n.key);
            }
            seen.insert(path, n);
            md5_only += usize::from(n.expected.md5_only());
            todo.push(n);
        }
        if md5_only > 0 && self.options.checksums == ChecksumPolicy::Strongest {
            tracing::warn!(
                "{md5_only} item(s) give only an md5, which alone proves little against tampering"
            );
        }
        let repairs = self.check_existing(plans).await;
        report.repaired = repairs.len();
        todo.extend(repairs);

        let bytes = todo
            .iter()
            .filter_map(|n| n.expected.size)
            .fold(0u64, u64::saturating_add);
        self.progress.start(todo.len() as u64, bytes);
        let checks = self.options.checksums;
        let decompress = self.options.decompress;
        let mut results = stream::iter(todo)
            .map(|n| async move {
                let r = fetch_item(
                    self.source(),
                    &*self.target,
                    n,
                    checks,
                    decompress,
                    self.progress.clone(),
                )
                .await;
                self.progress.item_done(&n.key, r.is_ok());
                (n, r)
            })
            .buffer_unordered(self.options.jobs.max(1));
        while let Some((n, r)) = results.next().await {
            match r {
                Ok(Fetch::Downloaded(b)) => {
                    report.downloaded += 1;
                    report.bytes = report.bytes.saturating_add(b);
                }
                Ok(Fetch::Decompressed(b, as_stored)) => {
                    report.downloaded += 1;
                    report.bytes = report.bytes.saturating_add(b);
                    if let Some(p) = &n.path {
                        stored.insert(p.clone(), as_stored);
                    }
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
        (failed, stored)
    }

    /// Where the item published at `path` is stored when this sync decompresses it.
    fn raw_path(&self, path: &str) -> Option<String> {
        self.options.decompress?;
        image_compression(path).map(|c| c.strip(path).to_string())
    }

    /// With `verify_existing`: the items held that no longer verify, to be fetched again. An
    /// item stored decompressed is checked against the raw size and sha256 recorded.
    async fn check_existing<'p>(&self, plans: &'p [ProductsPlan]) -> Vec<&'p NewItem> {
        let held: Vec<(&NewItem, Option<NewItem>)> = plans
            .iter()
            .flat_map(|p| p.verify.iter().map(move |n| (n, p.held_as_stored(n))))
            .collect();
        let jobs = self.options.jobs.max(1);
        let results: Vec<(&NewItem, Result<bool>)> = stream::iter(held)
            .map(|(n, as_stored)| async move {
                let check = as_stored.as_ref().unwrap_or(n);
                (n, self.target.has_content(check).await)
            })
            .buffer_unordered(jobs)
            .collect()
            .await;
        let mut repair = Vec::new();
        for (n, r) in results {
            match r {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!("{}: held, but fails verification: fetching it again", n.key);
                    repair.push(n);
                }
                Err(e) => tracing::warn!("{}: cannot verify what is held: {e}", n.key),
            }
        }
        repair
    }
}

/// Records in each plan's `after` how items stored decompressed were stored: those fetched
/// this run (`fetched`, by published path), and those sharing a published path with an item
/// stored so before.
fn record_stored(plans: &mut [ProductsPlan], fetched: &HashMap<String, StoredAs>) {
    let mut by_path = fetched.clone();
    for plan in plans.iter() {
        for held in plan
            .after
            .items
            .values()
            .flat_map(|v| v.values())
            .flat_map(|i| i.values())
        {
            if let (Some(p), Some(s)) = (&held.path, &held.stored) {
                by_path.entry(p.clone()).or_insert_with(|| s.clone());
            }
        }
    }
    if by_path.is_empty() {
        return;
    }
    for plan in plans.iter_mut() {
        let adding: HashSet<ItemKey> = plan.add.iter().map(|n| n.key.clone()).collect();
        for (product, versions) in plan.after.items.iter_mut() {
            for (version, items) in versions.iter_mut() {
                for (item, held) in items.iter_mut() {
                    let key = ItemKey {
                        content_id: plan.content_id.clone(),
                        product: product.clone(),
                        version: version.clone(),
                        item: item.clone(),
                    };
                    // Only what this run added gets a new record; what was held keeps its own.
                    if held.stored.is_some() && !adding.contains(&key) {
                        continue;
                    }
                    if let Some(s) = held.path.as_ref().and_then(|p| by_path.get(p)) {
                        held.stored = Some(s.clone());
                    }
                }
            }
        }
    }
}

/// An item whose decompressed file would land on `raw`, a path `other` has.
fn raw_conflict(item: &NewItem, raw: &str, other: &str) -> Error {
    refused(
        item,
        format!("decompressed, it would be stored as {raw}, which is also the file of {other}"),
    )
}

/// Two items claiming one path with different content: the second is refused.
fn conflict(item: &NewItem, other: &ItemKey) -> Error {
    refused(
        item,
        format!(
            "its path is also the path of {other}, whose size or checksums differ; one file \
             cannot be both"
        ),
    )
}

/// `item` refused, for `message`, before any download.
fn refused(item: &NewItem, message: String) -> Error {
    Error::Verify {
        item: item.key.to_string(),
        url: item.path.clone().unwrap_or_default(),
        source: Box::new(simplestreams_core::Error::Unverifiable {
            item: item.key.to_string(),
            message,
        }),
    }
}

/// Refuses an index whose products files would be published under one name: `a.json` and
/// `a.sjson` of two content ids are both published as `a.json`. (Two entries naming the same
/// file are fine: it is published once.)
fn check_distinct_names(entries: &[(String, String)], url: &str) -> Result<()> {
    let mut names: HashMap<String, (&str, &str)> = HashMap::new();
    for (cid, path) in entries {
        let Some(&(first, first_path)) = names.get(&json_path(path)) else {
            names.insert(json_path(path), (cid, path));
            continue;
        };
        if first_path != path {
            return Err(Error::Location {
                location: url.to_string(),
                message: format!(
                    "content ids {first:?} and {cid:?} name products files that would be \
                     published under one name, {}",
                    json_path(path)
                ),
            });
        }
    }
    Ok(())
}
