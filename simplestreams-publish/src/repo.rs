//! [`Repo`]: a published stream opened for changes, under the store's lock.
//!
//! Opening reads `streams/v1/index.json` and every products file it names and checks what is
//! there (refusing corrupt metadata, and signatures by another key). Changes (`add`,
//! `remove`, `prune`, `promote`) copy files into the store at once but change metadata only
//! in memory; [`Repo::commit`] publishes it, then deletes the files nothing names any more.
//! Dropping a `Repo` without committing publishes nothing: the repository stays as it was
//! (files already copied are left unnamed, and a re-run reuses their paths; [`Repo::abort`]
//! removes them).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use indexmap::IndexMap;
use serde_json::Value;
use simplestreams_core::openpgp::{self, SigningKey};
use simplestreams_core::{
    detached_path, json_path, sjson_path, Index, Item, Products, INDEX_FORMAT, PRODUCTS_FORMAT,
};
use simplestreams_mirror::{Publisher, Store, StoreExt, StoreLock, PUBLIC_KEY_PATH, STATE_DIR};

use crate::error::{Error, Result};
use crate::image::{check_item_path, default_content_id, DEFAULT_DATATYPE, DEFAULT_STREAM};
use crate::layout::normalize;

/// Where the index of a repository is.
pub const INDEX_PATH: &str = "streams/v1/index.json";

/// The lock a repository is changed under: the sync engine's, so that a mirror sync into the
/// same store and a publish never interleave.
pub fn lock_path() -> String {
    format!("{STATE_DIR}/lock")
}

/// Choices of [`Repo::open_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoOptions {
    /// Change a signed repository without its key: its signatures (`.sjson`, `.json.gpg`,
    /// the published key) are removed on commit, leaving it unsigned. Off by default: a
    /// signed repository is refused without its key.
    pub allow_unsigning: bool,
}

/// One products file of the repository.
#[derive(Debug, Clone)]
pub(crate) struct StreamFile {
    /// Its `.json` path.
    pub path: String,
    pub doc: Products,
    /// Its `.json` bytes as read (`None`: new, or published signed only).
    pub raw: Option<Bytes>,
    pub changed: bool,
}

/// What a path in the store holds, by the items that name it.
#[derive(Debug, Clone)]
pub(crate) struct Named {
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub md5: Option<String>,
    /// How many items name it.
    pub count: usize,
}

impl Named {
    /// Whether content of `size` with these checksums is what the path holds: the same size
    /// and the same value of every checksum both know, at least one.
    pub fn same(&self, size: u64, sha256: Option<&str>, md5: Option<&str>) -> bool {
        let common = [(self.sha256.as_deref(), sha256), (self.md5.as_deref(), md5)]
            .into_iter()
            .filter_map(|(a, b)| Some((a?, b?)))
            .collect::<Vec<_>>();
        self.size.is_none_or(|s| s == size)
            && !common.is_empty()
            && common.iter().all(|(a, b)| a == b)
    }
}

/// An item removed by `remove` or `prune`, or a version promoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRef {
    /// Content id.
    pub content_id: String,
    /// Product id.
    pub product: String,
    /// Version name.
    pub version: String,
}

/// What [`Repo::commit`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Metadata documents published (by their `.json` path; signed ones with their `.sjson`
    /// and `.json.gpg`).
    pub published: Vec<String>,
    /// Files deleted: item files nothing names any more, products files of emptied content
    /// ids, signatures of an unsigned repository.
    pub deleted: Vec<String>,
    /// Whether the metadata is signed.
    pub signed: bool,
}

impl CommitReport {
    /// Whether nothing was written or deleted.
    pub fn is_noop(&self) -> bool {
        self.published.is_empty() && self.deleted.is_empty()
    }
}

/// A stream repository opened for changes (see the module).
pub struct Repo {
    pub(crate) store: Arc<dyn Store>,
    key: Option<Arc<SigningKey>>,
    lock: Option<StoreLock>,
    /// The index as read, and its `.json` bytes.
    index: Option<Index>,
    index_raw: Option<Bytes>,
    /// Products files by content id, in index order.
    pub(crate) streams: IndexMap<String, StreamFile>,
    /// Content ids emptied: their entry leaves the index and their files are deleted.
    dropped: Vec<StreamFile>,
    /// Paths named by items now.
    pub(crate) named: HashMap<String, Named>,
    /// Where in `streams` the content id last looked up was (see [`Repo::stream_index`]).
    /// An atomic only so that `Repo` stays `Sync`: the index is a hint, checked against the key.
    last_stream: std::sync::atomic::AtomicUsize,
    /// Paths named when the repository was opened.
    named_at_open: HashSet<String>,
    /// Paths this session copied files to.
    pub(crate) copied: Vec<String>,
    /// Signed files found (`.sjson`).
    signed_files: Vec<String>,
}

// A repository (and its commit future) can be handed to another task or thread.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Repo>();
};

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("store", &self.store.to_string())
            .field("signed", &self.key.is_some())
            .field("content_ids", &self.streams.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Repo {
    /// Opens the repository in `store` (an empty one if it has no index), signing what it
    /// publishes with `key` when given. See [`Repo::open_with`].
    pub async fn open(store: Arc<dyn Store>, key: Option<Arc<SigningKey>>) -> Result<Repo> {
        Repo::open_with(store, key, RepoOptions::default()).await
    }

    /// Opens the repository in `store`: takes its lock ([`lock_path`]; fails at once if a
    /// sync or another publish holds it), reads the index and every products file it names.
    ///
    /// Refused, leaving everything as it is: metadata that does not parse (the error names
    /// the file and the JSON field), a products file the index names that is missing, an
    /// `.sjson` that does not verify against `key` ("signed by another key"), and a signed
    /// repository without a key unless `options.allow_unsigning`.
    pub async fn open_with(
        store: Arc<dyn Store>,
        key: Option<Arc<SigningKey>>,
        options: RepoOptions,
    ) -> Result<Repo> {
        let lock = store.lock(&lock_path()).await?;
        let mut repo = Repo {
            store,
            key,
            lock: Some(lock),
            index: None,
            index_raw: None,
            streams: IndexMap::new(),
            dropped: Vec::new(),
            named: HashMap::new(),
            last_stream: std::sync::atomic::AtomicUsize::new(0),
            named_at_open: HashSet::new(),
            copied: Vec::new(),
            signed_files: Vec::new(),
        };
        repo.load(&options).await?;
        Ok(repo)
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether what is published is signed (a key was given).
    pub fn signs(&self) -> bool {
        self.key.is_some()
    }

    /// The content ids, in index order.
    pub fn content_ids(&self) -> Vec<&str> {
        self.streams.keys().map(String::as_str).collect()
    }

    /// The products document of a content id, as it will be published (before condensing).
    pub fn products(&self, content_id: &str) -> Option<&Products> {
        self.streams.get(content_id).map(|s| &s.doc)
    }

    /// Whether any products file changed since the repository was opened.
    pub fn is_changed(&self) -> bool {
        !self.dropped.is_empty() || self.streams.values().any(|s| s.changed)
    }

    async fn read_opt(&self, path: &str) -> Result<Option<Bytes>> {
        match self.store.get_bytes(path).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The JSON of a signed file, checked against the key (or, without one, refused unless
    /// unsigning is allowed).
    fn open_signed(&mut self, path: &str, raw: &[u8], options: &RepoOptions) -> Result<Vec<u8>> {
        self.signed_files.push(path.to_string());
        match &self.key {
            Some(key) => openpgp::verify_clearsigned(raw, key.public_keyring(), path)
                .map(|v| v.payload)
                .map_err(|e| Error::SignedByAnotherKey {
                    file: path.to_string(),
                    reason: match e {
                        simplestreams_core::Error::Signature { reason, .. } => reason,
                        other => other.to_string(),
                    },
                }),
            None if options.allow_unsigning => {
                openpgp::strip_clearsigned(raw, path).map_err(|source| Error::Corrupt { source })
            }
            None => Err(Error::SignedRepo {
                file: path.to_string(),
            }),
        }
    }

    /// A metadata document: its `.json` bytes if present, and the JSON to parse (the `.json`,
    /// or the payload of the `.sjson` when there is no `.json`). The `.sjson` is checked
    /// whenever present.
    async fn read_document(
        &mut self,
        path: &str,
        options: &RepoOptions,
    ) -> Result<Option<(Option<Bytes>, Bytes)>> {
        let json = self.read_opt(&json_path(path)).await?;
        let signed = self.read_opt(&sjson_path(path)).await?;
        let payload = match &signed {
            Some(raw) => Some(self.open_signed(&sjson_path(path), raw, options)?),
            None => None,
        };
        Ok(match (json, payload) {
            (Some(j), _) => Some((Some(j.clone()), j)),
            (None, Some(p)) => Some((None, Bytes::from(p))),
            (None, None) => None,
        })
    }

    async fn load(&mut self, options: &RepoOptions) -> Result<()> {
        let Some((raw, bytes)) = self.read_document(INDEX_PATH, options).await? else {
            return Ok(());
        };
        let index =
            Index::from_slice(&bytes, INDEX_PATH).map_err(|source| Error::Corrupt { source })?;
        for (content_id, entry) in &index.index {
            if entry.format() != Some(PRODUCTS_FORMAT) {
                continue; // a nested index or an entry readers skip: kept as it is
            }
            let Some(path) = entry.path() else { continue };
            let path = json_path(path);
            let Some((raw, bytes)) = self.read_document(&path, options).await? else {
                return Err(Error::Corrupt {
                    source: simplestreams_core::Error::Field {
                        file: INDEX_PATH.into(),
                        json_path: format!("index.{content_id}.path"),
                        message: format!("names {path}, which is not in the store"),
                    },
                });
            };
            let doc =
                Products::from_slice(&bytes, &path).map_err(|source| Error::Corrupt { source })?;
            if doc.content_id() != content_id {
                return Err(Error::Corrupt {
                    source: simplestreams_core::Error::Field {
                        file: path,
                        json_path: "content_id".into(),
                        message: format!(
                            "{:?}, but the index lists this file as {content_id:?}",
                            doc.content_id()
                        ),
                    },
                });
            }
            let file = StreamFile {
                path,
                doc,
                raw,
                changed: false,
            };
            register_all(&mut self.named, &file.doc, 1);
            self.streams.insert(content_id.clone(), file);
        }
        self.named_at_open = self.named.keys().cloned().collect();
        self.index = Some(index);
        self.index_raw = raw;
        Ok(())
    }

    /// The content id a stream name (or content id, if it has a `:`) designates: the
    /// repository's one content id for it (`X:STREAM:…`), else [`default_content_id`].
    /// `None` means [`DEFAULT_STREAM`].
    pub fn resolve_stream(&self, stream: Option<&str>) -> Result<String> {
        let stream = stream.unwrap_or(DEFAULT_STREAM);
        if stream.contains(':') {
            return Ok(stream.to_string());
        }
        Ok(self
            .existing_stream(stream)?
            .unwrap_or_else(|| default_content_id(stream)))
    }

    /// The repository's content id for stream name `stream`, if it has one.
    pub(crate) fn existing_stream(&self, stream: &str) -> Result<Option<String>> {
        if self.streams.contains_key(stream) {
            return Ok(Some(stream.to_string()));
        }
        let matching: Vec<&String> = self
            .streams
            .keys()
            .filter(|cid| cid.split(':').nth(1) == Some(stream))
            .collect();
        match matching.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some((*one).clone())),
            many => Err(Error::Invalid(format!(
                "stream {stream:?} matches several content ids ({}); give the content id",
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Refuses a content id that cannot name a new products file
    /// (`streams/v1/CONTENT_ID.json`).
    pub(crate) fn check_new_content_id(&self, content_id: &str) -> Result<()> {
        if self.stream_index(content_id).is_some() {
            return Ok(());
        }
        let bad = content_id.is_empty()
            || content_id.contains(['/', '\\'])
            || content_id.starts_with('.')
            || content_id.chars().any(char::is_control)
            || simplestreams_core::check_safe_path(&format!("streams/v1/{content_id}.json"))
                .is_err();
        if bad {
            return Err(Error::Invalid(format!(
                "{content_id:?}: not a content id a products file can be named after"
            )));
        }
        Ok(())
    }

    /// Where the products file of `content_id` is in `streams`. Asked several times for each
    /// item added, nearly always about the content id asked about last: that one is compared
    /// before the table is searched (hashing the id each time costs more than adding the item).
    pub(crate) fn stream_index(&self, content_id: &str) -> Option<usize> {
        let last = self.last_stream.load(std::sync::atomic::Ordering::Relaxed);
        if self
            .streams
            .get_index(last)
            .is_some_and(|(cid, _)| cid == content_id)
        {
            return Some(last);
        }
        let at = self.streams.get_index_of(content_id)?;
        self.last_stream
            .store(at, std::sync::atomic::Ordering::Relaxed);
        Some(at)
    }

    /// The products file of `content_id`, created (empty, with `datatype`) if new.
    pub(crate) fn stream_mut(
        &mut self,
        content_id: &str,
        datatype: Option<&str>,
    ) -> &mut StreamFile {
        let at = self.stream_at(content_id, datatype);
        &mut self.streams[at]
    }

    /// [`Repo::stream_mut`] by its position in [`Repo::streams`].
    pub(crate) fn stream_at(&mut self, content_id: &str, datatype: Option<&str>) -> usize {
        if let Some(pos) = self
            .dropped
            .iter()
            .position(|d| d.doc.content_id() == content_id)
        {
            let file = self.dropped.remove(pos);
            self.streams.insert(content_id.to_string(), file);
        }
        // Looked up before its key is made: called once per item added.
        let at = match self.stream_index(content_id) {
            Some(at) => at,
            None => {
                let file = StreamFile {
                    path: format!("streams/v1/{content_id}.json"),
                    doc: Products::new(content_id, datatype.unwrap_or(DEFAULT_DATATYPE)),
                    raw: None,
                    changed: true,
                };
                self.streams.insert_full(content_id.to_string(), file).0
            }
        };
        at
    }

    /// Moves emptied products files out of the index.
    pub(crate) fn drop_empty_streams(&mut self) {
        let empty: Vec<String> = self
            .streams
            .iter()
            .filter(|(_, s)| s.doc.products.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        for cid in empty {
            if let Some(file) = self.streams.shift_remove(&cid) {
                if file.raw.is_some()
                    || self
                        .index
                        .as_ref()
                        .is_some_and(|i| i.index.contains_key(&cid))
                {
                    self.dropped.push(file);
                }
            }
        }
    }

    /// The index to publish, and whether it differs from the one read (`updated` aside).
    fn desired_index(&self, now: &str) -> (Index, bool) {
        let mut index = match &self.index {
            Some(i) => i.clone(),
            None => Index::new(),
        };
        for file in &self.dropped {
            index.index.shift_remove(file.doc.content_id());
        }
        for (cid, file) in &self.streams {
            let entry = index.index.entry(cid.clone()).or_default();
            let f = &mut entry.fields;
            let mut products: Vec<&String> = file.doc.products.keys().collect();
            products.sort();
            f.insert(
                "datatype".into(),
                Value::String(file.doc.datatype().unwrap_or(DEFAULT_DATATYPE).into()),
            );
            f.insert("format".into(), Value::String(PRODUCTS_FORMAT.into()));
            f.insert("path".into(), Value::String(file.path.clone()));
            f.insert(
                "products".into(),
                Value::Array(
                    products
                        .into_iter()
                        .map(|p| Value::String(p.clone()))
                        .collect(),
                ),
            );
            if let Some(updated) = file.doc.updated() {
                f.insert("updated".into(), Value::String(updated.into()));
            }
        }
        let without_updated = |i: &Index| {
            let mut i = i.clone();
            i.fields.shift_remove("updated");
            i
        };
        let changed = match &self.index {
            Some(old) => without_updated(old) != without_updated(&index),
            None => true,
        };
        if changed {
            index
                .fields
                .insert("format".into(), Value::String(INDEX_FORMAT.into()));
            index
                .fields
                .insert("updated".into(), Value::String(now.to_string()));
        }
        (index, changed)
    }

    /// Publishes the changes (see the module): every changed products file (condensed,
    /// `updated` now), then the index; signed when a key was given (`X.json`, `X.sjson`,
    /// `X.json.gpg`, and the public key as `streams/v1/signing-key.asc`), and a repository
    /// that was unsigned gets signed whole. Files already saying the same are not rewritten
    /// (a commit with no change writes nothing). Then deletes what nothing names any more
    /// and releases the lock.
    ///
    /// Items were copied before this publishes metadata naming them, and products files are
    /// published before the index naming them, so a failure at any point leaves a
    /// consumable repository, and re-running the same change completes it.
    pub async fn commit(mut self) -> Result<CommitReport> {
        let publisher = Publisher::new(self.store.clone()).signing_with(self.key.clone());
        let now = crate::time::rfc2822_now();
        let mut report = CommitReport {
            signed: self.key.is_some(),
            ..CommitReport::default()
        };
        self.drop_empty_streams();
        for file in self.streams.values_mut() {
            let bytes = if file.changed {
                let threads = threads_for(&file.doc);
                normalize(&mut file.doc, threads);
                file.doc
                    .fields
                    .insert("updated".into(), Value::String(now.clone()));
                file.doc.to_vec_pretty_parallel(threads)
            } else if let Some(raw) = &file.raw {
                raw.to_vec()
            } else {
                file.doc.to_vec_pretty()
            };
            // A products document (made here, or read and parsed as one): not parsed again.
            if publisher.products(&file.path, bytes).await? {
                report.published.push(file.path.clone());
            }
        }
        if !self.streams.is_empty() || self.index.is_some() {
            let (index, changed) = self.desired_index(&now);
            let bytes = match (&self.index_raw, changed) {
                (Some(raw), false) => raw.to_vec(),
                _ => index.to_vec_pretty(),
            };
            if publisher.document(INDEX_PATH, &bytes).await? {
                report.published.push(INDEX_PATH.to_string());
            }
        }
        if self.key.is_none() && !self.signed_files.is_empty() {
            // Unsigning: signed copies would now be stale. The index first, so that a client
            // reading signed files finds none rather than old ones.
            let mut docs = vec![INDEX_PATH.to_string()];
            docs.extend(self.streams.values().map(|f| f.path.clone()));
            for doc in docs {
                for path in [sjson_path(&doc), detached_path(&doc)] {
                    self.delete(&path, &mut report).await?;
                }
            }
            self.delete(PUBLIC_KEY_PATH, &mut report).await?;
        }
        for file in std::mem::take(&mut self.dropped) {
            for path in [
                sjson_path(&file.path),
                detached_path(&file.path),
                file.path.clone(),
            ] {
                self.delete(&path, &mut report).await?;
            }
        }
        // Never a path no image may have (metadata, the engine's lock), whatever an old
        // products file named.
        let mut unnamed: Vec<String> = self
            .named_at_open
            .iter()
            .chain(self.copied.iter())
            .filter(|p| !self.named.contains_key(*p) && check_item_path(p).is_ok())
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        unnamed.sort();
        for path in unnamed {
            self.delete(&path, &mut report).await?;
        }
        if let Some(lock) = self.lock.take() {
            lock.release().await;
        }
        self.free_in_background();
        Ok(report)
    }

    /// Frees the metadata of a large repository on a thread of its own: tens of thousands of
    /// small maps take longer to free than to publish, and the caller need not wait (a
    /// command that exits right after does not).
    fn free_in_background(&mut self) {
        const LARGE: usize = 2_000;
        if self.named.len() < LARGE {
            return;
        }
        let big = (
            std::mem::take(&mut self.streams),
            std::mem::take(&mut self.named),
            std::mem::take(&mut self.named_at_open),
            self.index.take(),
        );
        if let Err(e) = std::thread::Builder::new()
            .name("free-metadata".into())
            .spawn(move || drop(big))
        {
            tracing::debug!("cannot free the metadata in the background: {e}");
        }
    }

    /// Gives up the changes: deletes the files this session copied that the published
    /// metadata does not name, and releases the lock. Nothing else changes.
    pub async fn abort(mut self) -> Result<Vec<String>> {
        let mut report = CommitReport::default();
        let copied = std::mem::take(&mut self.copied);
        for path in copied {
            if !self.named_at_open.contains(&path) {
                self.delete(&path, &mut report).await?;
            }
        }
        if let Some(lock) = self.lock.take() {
            lock.release().await;
        }
        Ok(report.deleted)
    }

    async fn delete(&self, path: &str, report: &mut CommitReport) -> Result<()> {
        match self.store.delete(path).await {
            Ok(()) => {
                report.deleted.push(path.to_string());
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The first item naming `path`, for messages (`CONTENT_ID PRODUCT VERSION ITEM`).
    pub(crate) fn owner_of(&self, path: &str) -> String {
        for (cid, file) in &self.streams {
            let doc = &file.doc;
            for (pname, p) in &doc.products {
                for (vname, v) in &p.versions {
                    for iname in v.items.keys() {
                        let view = ItemView::of(doc, pname, vname, iname);
                        if view.is_some_and(|v| v.path.as_deref() == Some(path)) {
                            return format!("{cid} {pname} {vname} {iname}");
                        }
                    }
                }
            }
        }
        "(an item)".into()
    }

    /// The item at `content_id product version item`, with its effective fields.
    pub(crate) fn lookup(&self, key: &ItemRef) -> Option<ItemView> {
        let doc = &self.streams[self.stream_index(&key.content_id)?].doc;
        ItemView::of(doc, &key.product, &key.version, &key.item)
    }
}

/// The threads a changed products file is normalized and written on: one for a small one
/// (starting a thread costs about 50 us, more than the work of a few hundred items), a few
/// for a large one (both are memory-bound: more threads than this add little).
fn threads_for(doc: &Products) -> usize {
    const LARGE: usize = 2_000;
    const MAX_THREADS: usize = 4;
    if doc.item_count() < LARGE {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
}

/// Identifies an item.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ItemRef {
    pub content_id: String,
    pub product: String,
    pub version: String,
    pub item: String,
}

impl std::fmt::Display for ItemRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.content_id, self.product, self.version, self.item
        )
    }
}

/// The fields of an item that say what its file is, inherited ones included.
#[derive(Debug, Clone, Default)]
pub(crate) struct ItemView {
    pub path: Option<String>,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub md5: Option<String>,
}

impl ItemView {
    pub fn of(doc: &Products, product: &str, version: &str, item: &str) -> Option<ItemView> {
        let p = doc.products.get(product)?;
        let v = p.versions.get(version)?;
        let i = v.items.get(item)?;
        Some(ItemView::from_levels(&[
            &i.fields,
            &v.fields,
            &p.fields,
            &doc.fields,
        ]))
    }

    fn from_levels(levels: &[&simplestreams_core::Map]) -> ItemView {
        let get = |k: &str| levels.iter().find_map(|m| m.get(k));
        let string = |k: &str| get(k).and_then(Value::as_str).map(str::to_ascii_lowercase);
        ItemView {
            path: get("path").and_then(Value::as_str).map(str::to_string),
            size: get("size").and_then(|v| simplestreams_core::parse_size(v).ok()),
            sha256: string("sha256"),
            md5: string("md5"),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} (size {}, sha256 {})",
            self.path.as_deref().unwrap_or("(no path)"),
            self.size
                .map(|s| s.to_string())
                .unwrap_or_else(|| "?".into()),
            self.sha256.as_deref().unwrap_or("?")
        )
    }
}

/// Counts (`delta` = 1) or uncounts (`-1`) the paths the items of `doc` name.
pub(crate) fn register_all(named: &mut HashMap<String, Named>, doc: &Products, delta: isize) {
    for (pname, p) in &doc.products {
        for (vname, v) in &p.versions {
            for i in v.items.values() {
                register_item(named, doc, pname, vname, i, delta);
            }
        }
    }
}

pub(crate) fn register_item(
    named: &mut HashMap<String, Named>,
    doc: &Products,
    product: &str,
    version: &str,
    item: &Item,
    delta: isize,
) {
    let p = &doc.products[product];
    let v = &p.versions[version];
    register_levels(
        named,
        [&item.fields, &v.fields, &p.fields, &doc.fields],
        delta,
    );
}

/// [`register_item`] for an item given by its fields and those of its version, product and
/// document, in that order.
pub(crate) fn register_levels(
    named: &mut HashMap<String, Named>,
    levels: [&simplestreams_core::Map; 4],
    delta: isize,
) {
    let view = ItemView::from_levels(&levels);
    let Some(path) = view.path else {
        return;
    };
    if delta > 0 {
        let entry = named.entry(path).or_insert_with(|| Named {
            size: view.size,
            sha256: view.sha256,
            md5: view.md5,
            count: 0,
        });
        entry.count += 1;
    } else if let Some(entry) = named.get_mut(&path) {
        entry.count = entry.count.saturating_sub(1);
        if entry.count == 0 {
            named.remove(&path);
        }
    }
}
