//! [`ObjectStoreAdapter`]: any `object_store` store, below a prefix, as a [`Store`].

use std::fmt;
use std::sync::atomic::AtomicU8;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{Attribute, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use simplestreams_mirror::{
    ByteStream, Error, GetOptions, GetResult, HttpOptions, ObjectMeta, PutOptions, Result, Store,
    StoreLock, Validators,
};

use crate::error::convert;
use crate::lock::LockMode;
use crate::streamed::{StreamedPut, MAX_STREAMED_PUT};
use object_store::multipart::MultipartStore;
use object_store::signer::Signer;

/// The smallest part of a multipart upload that S3 accepts (all but the last part).
pub const MIN_PART_SIZE: usize = 5 << 20;

/// The default part size: 8 MiB. S3's 10,000 parts then allow objects of up to 78 GiB.
pub const DEFAULT_PART_SIZE: usize = 8 << 20;

/// The part bytes an upload holds at most (the parts being sent and the one filling): as many
/// parts are sent at once as fit besides the one filling, at least one and at most
/// [`MAX_PARTS_IN_FLIGHT`] (two of 16 MiB, four of 8 MiB). With the rest of the process, a
/// 1 GiB upload stays under the 64 MB the project allows (46 MB measured with parts of 16 MiB).
pub const PART_MEMORY: usize = 48 << 20;

/// The most parts of one upload sent at once: each is a request of its own to the service,
/// whose rounds (and, on Swift's s3api, container updates) overlap; small parts would
/// otherwise mean dozens at once.
pub const MAX_PARTS_IN_FLIGHT: usize = 4;

/// An `object_store` store (S3, Google Cloud Storage, Azure Blob, in memory) and a prefix in
/// it, as a [`Store`] of the sync engine. Cloning gives another handle on the same store.
///
/// - `get`: from an offset with a range request (`Range: bytes=N-`), conditionally with
///   `If-None-Match` (the ETag) or, without an ETag, `If-Modified-Since`.
/// - `put`: where the store can presign requests ([`Self::with_signer`]), an object of known
///   size and MD5 is one streamed PUT, and one of known size larger than a part a multipart
///   upload of few streamed parts. Otherwise a body that ends within one part is one PUT, which the store publishes whole or
///   not at all. A larger one is a multipart upload in parts of [`Self::part_size`],
///   [`Self::parts_in_flight`] sent while the next fills; the object appears when the upload is completed, and an upload whose
///   body fails (or whose `put` is dropped) is aborted, so the store discards its parts and the
///   previous object stays.
/// - `delete`: S3 answers success for a missing key; the adapter asks first (HEAD), so that a
///   missing object is [`Error::NotFound`] as the [`Store`] contract says.
/// - `list`: every object below the prefix, all pages (object_store follows continuation
///   tokens).
/// - `lock`: see [`LockMode`].
#[derive(Clone)]
pub struct ObjectStoreAdapter {
    pub(crate) store: Arc<dyn ObjectStore>,
    /// Empty, or the prefix's segments without a trailing `/`.
    prefix: String,
    /// For messages: the store's URL, without a trailing `/`.
    url: String,
    part_size: usize,
    pub(crate) lock_mode: LockMode,
    /// What [`LockMode::Auto`] found out: 0 not yet, 1 conditional create works, 2 it does not.
    pub(crate) conditional_create: Arc<AtomicU8>,
    /// The same store without retries, for finding out whether it can create conditionally.
    pub(crate) probe: Option<Arc<dyn ObjectStore>>,
    /// Streamed PUTs through presigned URLs, for a store that can presign them (S3).
    streamed: Option<StreamedPut>,
}

impl fmt::Debug for ObjectStoreAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreAdapter")
            .field("url", &self.url)
            .field("store", &self.store)
            .field("part_size", &self.part_size)
            .field("lock_mode", &self.lock_mode)
            .finish()
    }
}

impl fmt::Display for ObjectStoreAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl ObjectStoreAdapter {
    /// `store` below `prefix` (`""` for all of it; leading and trailing `/` ignored). Shown in
    /// messages as `STORE/PREFIX` (`STORE` being the store's own `Display`, for example
    /// `AmazonS3(bucket)`) until [`Self::with_url`] names it better.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Result<ObjectStoreAdapter> {
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() {
            Path::parse(prefix).map_err(|e| Error::Location {
                location: prefix.to_string(),
                message: format!("not a valid object prefix: {e}"),
            })?;
        }
        let url = if prefix.is_empty() {
            store.to_string()
        } else {
            format!("{store}/{prefix}")
        };
        Ok(ObjectStoreAdapter {
            store,
            prefix: prefix.to_string(),
            url,
            part_size: DEFAULT_PART_SIZE,
            lock_mode: LockMode::Auto,
            conditional_create: Arc::new(AtomicU8::new(crate::lock::UNKNOWN)),
            probe: None,
            streamed: None,
        })
    }

    /// Names the store in messages and in [`std::fmt::Display`] (`s3://bucket/prefix`).
    pub fn with_url(mut self, url: &str) -> ObjectStoreAdapter {
        self.url = url.trim_end_matches('/').to_string();
        self
    }

    /// Uploads objects larger than `bytes` in parts of `bytes`; raised to [`MIN_PART_SIZE`]
    /// (5 MiB, S3's minimum) if smaller. Default [`DEFAULT_PART_SIZE`].
    pub fn with_part_size(mut self, bytes: usize) -> ObjectStoreAdapter {
        self.part_size = bytes.max(MIN_PART_SIZE);
        self
    }

    /// How [`Store::lock`] makes a lock (default [`LockMode::Auto`]).
    pub fn with_lock_mode(mut self, mode: LockMode) -> ObjectStoreAdapter {
        self.lock_mode = mode;
        self.conditional_create = Arc::new(AtomicU8::new(crate::lock::UNKNOWN));
        self
    }

    /// Puts an object whose size and MD5 are known before it is sent (an item whose `md5` the
    /// stream publishes), up to [`MAX_STREAMED_PUT`], as one PUT streamed as the bytes come,
    /// through a URL `signer` presigns for the same store, with `Content-MD5`, which the
    /// service checks; an object larger than a part whose size only is known, as a multipart
    /// upload (started and completed by `multipart`) of parts streamed the same way, each
    /// checked against its MD5 computed on the way. Nothing held in memory, no part to sign (see
    /// `streamed.rs`), through a client of settings `http`. [`crate::open_url`] sets it for S3,
    /// whose signer is the store itself.
    pub fn with_signer(
        mut self,
        signer: Arc<dyn Signer>,
        multipart: Arc<dyn MultipartStore>,
        http: &HttpOptions,
    ) -> Result<ObjectStoreAdapter> {
        self.streamed = Some(StreamedPut::new(signer, multipart, http)?);
        Ok(self)
    }

    /// A handle on the same store that does not retry, for the first conditional create of
    /// [`LockMode::Auto`]: a store without conditional writes answers it with HTTP 501, which
    /// `object_store` retries like any 5xx (seconds lost on each first lock). Other failures of
    /// the probe are tried again on the store itself. [`crate::open_url`] sets it.
    pub fn with_lock_probe(mut self, probe: Arc<dyn ObjectStore>) -> ObjectStoreAdapter {
        self.probe = Some(probe);
        self
    }

    /// The part size of multipart uploads.
    pub fn part_size(&self) -> usize {
        self.part_size
    }

    /// How many parts of a multipart upload are sent at once: as many as [`PART_MEMORY`] holds
    /// besides the one filling, from 1 to [`MAX_PARTS_IN_FLIGHT`].
    pub fn parts_in_flight(&self) -> usize {
        (PART_MEMORY / self.part_size.max(1))
            .saturating_sub(1)
            .clamp(1, MAX_PARTS_IN_FLIGHT)
    }

    /// The prefix, without leading or trailing `/` (empty for the whole store).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The `object_store` store.
    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// `URL/PATH`, for messages.
    pub(crate) fn location(&self, path: &str) -> String {
        format!("{}/{path}", self.url)
    }

    /// The key of `path` (checked like every store path: relative, no `..`).
    pub(crate) fn key(&self, path: &str) -> Result<Path> {
        simplestreams_core::check_safe_path(path)?;
        let full = if self.prefix.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", self.prefix)
        };
        Path::parse(&full).map_err(|e| Error::Location {
            location: self.location(path),
            message: format!("not a valid object name: {e}"),
        })
    }

    /// The store path of a key below the prefix.
    fn relative<'a>(&self, key: &'a Path) -> Option<&'a str> {
        let key: &str = key.as_ref();
        if self.prefix.is_empty() {
            return Some(key);
        }
        key.strip_prefix(self.prefix.as_str())?.strip_prefix('/')
    }

    pub(crate) fn meta(&self, path: &str, meta: &object_store::ObjectMeta) -> ObjectMeta {
        ObjectMeta {
            path: path.to_string(),
            size: Some(meta.size),
            validators: Validators {
                etag: meta.e_tag.clone(),
                last_modified: Some(http_date(meta.last_modified)),
            },
            content_encoding: None,
        }
    }

    pub(crate) fn err(&self, operation: &'static str, path: &str, e: object_store::Error) -> Error {
        convert(operation, self.location(path), e)
    }

    /// Objects whose store path starts with `prefix`, with their metadata.
    pub(crate) async fn list_raw(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        // object_store lists whole path segments: ask for the directory of `prefix`, keep the
        // names that start with all of it.
        let dir = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let full = match (self.prefix.is_empty(), dir.is_empty()) {
            (true, true) => None,
            (true, false) => Some(dir.to_string()),
            (false, true) => Some(self.prefix.clone()),
            (false, false) => Some(format!("{}/{dir}", self.prefix)),
        };
        let key = match full {
            Some(full) => Some(Path::parse(&full).map_err(|e| Error::Location {
                location: self.location(prefix),
                message: format!("not a valid object prefix: {e}"),
            })?),
            None => None,
        };
        let mut listing = self.store.list(key.as_ref());
        let mut out = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = match meta {
                Ok(m) => m,
                // A prefix with nothing below it.
                Err(object_store::Error::NotFound { .. }) => break,
                Err(e) => return Err(self.err("list", prefix, e)),
            };
            if let Some(rel) = self.relative(&meta.location) {
                if rel.starts_with(prefix) {
                    out.push(self.meta(rel, &meta));
                }
            }
        }
        Ok(out)
    }
}

/// `Sun, 22 Nov 2026 00:00:00 GMT`, as `Last-Modified` says it.
fn http_date(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn parse_http_date(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc2822(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// A multipart upload that is aborted unless finished: on a failing body, and when the `put`
/// future is dropped half-way (then on the current runtime, without waiting), so that the store
/// drops its parts and nothing is published.
struct Upload {
    write: Option<WriteMultipart>,
    location: String,
}

impl Upload {
    fn get(&mut self) -> &mut WriteMultipart {
        self.write.as_mut().expect("upload not finished")
    }

    async fn abort(mut self) {
        if let Some(w) = self.write.take() {
            if let Err(e) = w.abort().await {
                tracing::warn!(
                    "{}: aborting the multipart upload failed: {e}",
                    self.location
                );
            }
        }
    }

    async fn finish(mut self) -> std::result::Result<object_store::PutResult, object_store::Error> {
        // `finish` aborts the upload itself when a part or the completion fails.
        let w = self.write.take().expect("upload not finished");
        w.finish().await
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(w) = self.write.take() {
            let location = std::mem::take(&mut self.location);
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(async move {
                        if let Err(e) = w.abort().await {
                            tracing::warn!("{location}: aborting the multipart upload failed: {e}");
                        }
                    });
                }
                Err(_) => {
                    tracing::warn!("{location}: multipart upload left (no runtime to abort it)")
                }
            }
        }
    }
}

#[async_trait]
impl Store for ObjectStoreAdapter {
    async fn get(&self, path: &str, options: GetOptions) -> Result<GetResult> {
        let key = self.key(path)?;
        let offset = options.offset.unwrap_or(0);
        let mut opts = object_store::GetOptions::default();
        if offset > 0 {
            opts.range = Some(GetRange::Offset(offset));
        }
        if let Some(v) = &options.if_not_modified {
            if let Some(etag) = &v.etag {
                opts.if_none_match = Some(etag.clone());
            } else if let Some(t) = v.last_modified.as_deref().and_then(parse_http_date) {
                opts.if_modified_since = Some(t);
            }
        }
        let result = match self.store.get_opts(&key, opts).await {
            Ok(r) => r,
            Err(object_store::Error::NotModified { .. }) => return Ok(GetResult::NotModified),
            Err(e @ object_store::Error::NotFound { .. }) => return Err(self.err("get", path, e)),
            Err(e) if offset > 0 => {
                // A range starting at the end (or beyond) is refused (HTTP 416): the object is
                // then read from there, which is nothing.
                match self.store.head(&key).await {
                    Ok(meta) if meta.size <= offset => {
                        return Ok(GetResult::Found {
                            meta: self.meta(path, &meta),
                            body: futures::stream::empty().boxed(),
                        })
                    }
                    _ => return Err(self.err("get", path, e)),
                }
            }
            Err(e) => return Err(self.err("get", path, e)),
        };
        let mut meta = self.meta(path, &result.meta);
        meta.content_encoding = result
            .attributes
            .get(&Attribute::ContentEncoding)
            .map(|v| v.to_string());
        let location = self.location(path);
        let body = result
            .into_stream()
            .map_err(move |e| convert("get", location.clone(), e))
            .boxed();
        Ok(GetResult::Found { meta, body })
    }

    async fn head(&self, path: &str) -> Result<Option<ObjectMeta>> {
        let key = self.key(path)?;
        match self.store.head(&key).await {
            Ok(meta) => Ok(Some(self.meta(path, &meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err("head", path, e)),
        }
    }

    async fn put(
        &self,
        path: &str,
        mut body: ByteStream,
        options: PutOptions,
    ) -> Result<ObjectMeta> {
        // Every upload is durable once the store acknowledges it: `durable` asks nothing more.
        let key = self.key(path)?;
        if let (Some(streamed), Some(size)) = (&self.streamed, options.size) {
            let location = self.location(path);
            let meta = |etag| ObjectMeta {
                path: path.to_string(),
                size: Some(size),
                validators: Validators {
                    etag,
                    last_modified: None,
                },
                content_encoding: None,
            };
            match &options.md5 {
                Some(md5) if size <= MAX_STREAMED_PUT => {
                    return Ok(meta(streamed.put(&key, &location, body, size, md5).await?));
                }
                _ if size > self.part_size as u64 => {
                    let etag = streamed.put_in_parts(&key, &location, body, size).await?;
                    return Ok(meta(etag));
                }
                // Within one part: held and sent as one PUT, below.
                _ => {}
            }
        }
        // The body until it outgrows one part: then sent as one PUT.
        let mut first: Vec<Bytes> = Vec::new();
        let mut first_len = 0usize;
        let mut upload: Option<Upload> = None;
        let mut size: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    if let Some(up) = upload.take() {
                        up.abort().await;
                    }
                    return Err(e);
                }
            };
            size += chunk.len() as u64;
            let failed = match upload.as_mut() {
                None if first_len + chunk.len() <= self.part_size => {
                    first_len += chunk.len();
                    first.push(chunk);
                    None
                }
                None => match self.store.put_multipart(&key).await {
                    Ok(started) => {
                        let mut up = Upload {
                            write: Some(WriteMultipart::new_with_chunk_size(
                                started,
                                self.part_size,
                            )),
                            location: self.location(path),
                        };
                        for piece in first.drain(..) {
                            up.get().put(piece);
                        }
                        up.get().put(chunk);
                        upload = Some(up);
                        None
                    }
                    Err(e) => Some(e),
                },
                Some(up) => match up.get().wait_for_capacity(self.parts_in_flight()).await {
                    Ok(()) => {
                        up.get().put(chunk);
                        None
                    }
                    Err(e) => Some(e),
                },
            };
            if let Some(e) = failed {
                if let Some(up) = upload.take() {
                    up.abort().await;
                }
                return Err(self.err("put", path, e));
            }
        }
        let result = match upload {
            None => self.store.put(&key, PutPayload::from_iter(first)).await,
            Some(up) => up.finish().await,
        }
        .map_err(|e| self.err("put", path, e))?;
        Ok(ObjectMeta {
            path: path.to_string(),
            size: Some(size),
            validators: Validators {
                etag: result.e_tag,
                last_modified: None,
            },
            content_encoding: None,
        })
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let key = self.key(path)?;
        // S3 (and object_store) delete a missing object without complaint; the contract wants
        // NotFound, so ask first. (A concurrent delete in between goes unnoticed: harmless.)
        self.store
            .head(&key)
            .await
            .map_err(|e| self.err("delete", path, e))?;
        self.store
            .delete(&key)
            .await
            .map_err(|e| self.err("delete", path, e))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.list_raw(prefix).await
    }

    async fn lock(&self, name: &str) -> Result<StoreLock> {
        crate::lock::lock(self, name).await
    }

    /// With a signer ([`ObjectStoreAdapter::with_signer`]): the service checks the MD5 of a
    /// streamed PUT.
    fn verifies_md5(&self, size: Option<u64>) -> bool {
        self.streamed.is_some() && size.is_some_and(|n| n <= MAX_STREAMED_PUT)
    }
}
