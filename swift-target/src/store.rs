//! [`SwiftStore`]: a Swift container (and a prefix in it) as a `Store` of the sync engine.
//!
//! - An object whose size and MD5 are known before it is sent (an item whose `md5` the stream
//!   publishes), up to [`SwiftStoreOptions::max_streamed_put`], is one PUT streamed as the
//!   bytes come, nothing held and no MD5 computed here: Swift computes it as it stores the
//!   bytes and refuses them (422) when it is not the one sent as `ETag`. The last chunk is
//!   sent only once the body has ended cleanly, so that a body failing at its end (the
//!   engine's checksums) leaves Swift short of the `Content-Length`, storing nothing. Such a
//!   PUT cannot be resent: a failure fails the item, and the next run sends it again.
//! - Other objects larger than the segment size (5 GiB by default, the most Swift takes in one
//!   PUT) are Static Large Objects: segments of that size in the private container, then the
//!   manifest, which Swift accepts only when every segment it names is there with that MD5
//!   and size. Until the manifest is in, readers see the previous object; an upload that fails
//!   removes its segments; one killed leaves them, and the next upload of the same object
//!   removes them.
//! - Segments up to [`HELD_SEGMENT_MAX`] are held in memory while sent, each PUT with its MD5
//!   as `ETag` and resent on its own when it fails. Larger ones (the default) are streamed
//!   (`streamed_upload.rs`): nothing held, few segments, their MD5 computed on the way and
//!   compared with Swift's answer, a failed segment failing the upload; objects up to
//!   [`HELD_OBJECT_MAX`] are then held and sent in one PUT with their MD5 as `ETag`.
//! - The private container `<container>_segments` (never made public) holds the segments and
//!   the engine's own files (`.sstream-mirror/`: its state and its lock), so that a public
//!   mirror does not serve them.
//! - The lock is an object created with `If-None-Match: *`, which two processes cannot both
//!   create; it names its holder. `sstream unlock` breaks a stale one.

use std::fmt;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::{self, StreamExt};
use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};
use simplestreams_mirror::hashing::{Batcher, HashingThread};
use simplestreams_mirror::{
    http_body, ByteStream, Error as MirrorError, GetOptions, GetResult, ObjectMeta as StoreMeta,
    PutOptions, Store, StoreLock, Validators, STATE_DIR,
};

use crate::client::{GetOptions as SwiftGet, PutOptions as SwiftPut, SloSegment, SwiftClient};
use crate::streamed_upload::StreamedUpload;
use openstack_client::Error;

/// How a [`SwiftStore`] stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwiftStoreOptions {
    /// Objects larger than this (and not sent whole, see `max_streamed_put`) are uploaded as
    /// Static Large Objects of segments this large. Default 5 GiB, the most Swift takes in
    /// one PUT. Segments up to [`HELD_SEGMENT_MAX`] (20 MiB) are held in memory while sent
    /// (`segments_in_flight` + 1 of them: those being sent, one filling), each resent on its own
    /// when its PUT fails; larger ones are streamed (see `streamed_upload.rs`): nothing held,
    /// few segments, but a failed segment fails the upload, and objects up to
    /// [`HELD_OBJECT_MAX`] are then one PUT. Swift accepts segments from 1 MiB (tests use
    /// smaller ones; its own minimum, `min_segment_size`, is 1 byte on recent releases).
    pub segment_size: u64,
    /// How many segments of one object are sent at once; 0 (the default) sends as many as
    /// [`SEGMENT_MEMORY`] holds with the one filling (one of 16 MiB, four of 8 MiB). Each
    /// segment PUT costs Swift a round of its own (proxy, object server, fsync, container
    /// update) besides its bytes; several in flight overlap those rounds, but each holds a
    /// whole segment (its MD5 goes first, as `ETag`, for Swift to check): at 16 MiB, two in
    /// flight peaked at 65 MB, over the 64 MB budget.
    pub segments_in_flight: usize,
    /// Make the container readable by anyone (`X-Container-Read: .r:*,.rlistings`), as the
    /// reference does for its `--output-swift` stream. The private container never is.
    pub public_read: bool,
    /// The largest object sent as one streamed PUT when its size and MD5 are known before it
    /// is sent (an item whose `md5` the stream publishes): default 5 GiB, Swift's default
    /// `max_file_size`. Lower it for a cluster configured with a smaller one.
    pub max_streamed_put: u64,
}

impl Default for SwiftStoreOptions {
    fn default() -> Self {
        SwiftStoreOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            public_read: false,
            segments_in_flight: 0,
            max_streamed_put: 5 << 30,
        }
    }
}

/// The default segment size: 5 GiB, the most Swift takes in one PUT (its default
/// `max_file_size`).
pub const DEFAULT_SEGMENT_SIZE: u64 = 5 << 30;

/// The largest segments held in memory while sent (and resent when they fail); larger ones are
/// streamed.
pub const HELD_SEGMENT_MAX: u64 = SEGMENT_MEMORY / 2;

/// With streamed segments, objects up to this size are held and sent in one PUT whose MD5
/// Swift checks (metadata files, small items): only larger ones become Static Large Objects.
pub const HELD_OBJECT_MAX: usize = 16 << 20;

/// The segment bytes an upload holds at most when [`SwiftStoreOptions::segments_in_flight`] is
/// 0 (those being sent and the one filling): with the rest of the process (about 16 MB for a
/// 1 GiB item), under the 64 MB the project allows.
pub const SEGMENT_MEMORY: u64 = 40 << 20;

/// The most segments sent at once when [`SwiftStoreOptions::segments_in_flight`] is 0: small
/// segments would otherwise mean dozens of PUTs at once against one proxy.
pub const MAX_AUTO_IN_FLIGHT: usize = 4;

impl SwiftStoreOptions {
    /// How many segments are sent at once: [`SwiftStoreOptions::segments_in_flight`], or when 0
    /// as many as fit in [`SEGMENT_MEMORY`] besides the one filling (at least one, at most
    /// [`MAX_AUTO_IN_FLIGHT`]).
    pub fn in_flight(&self) -> usize {
        match self.segments_in_flight {
            0 => usize::try_from((SEGMENT_MEMORY / self.segment_size.max(1)).saturating_sub(1))
                .unwrap_or(usize::MAX)
                .clamp(1, MAX_AUTO_IN_FLIGHT),
            n => n,
        }
    }
}

/// A container and a prefix in it, as a store.
#[derive(Clone)]
pub struct SwiftStore {
    client: SwiftClient,
    container: String,
    private: String,
    /// Empty, or ending with `/`.
    prefix: String,
    options: SwiftStoreOptions,
}

impl fmt::Debug for SwiftStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SwiftStore({self})")
    }
}

impl fmt::Display for SwiftStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "swift://{}/{}", self.container, self.prefix)
    }
}

/// `swift://CONTAINER/PREFIX` → (container, prefix ending with `/` or empty).
pub fn parse_swift_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("swift://")?;
    let (container, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if container.is_empty() {
        return None;
    }
    let prefix = prefix.trim_matches('/');
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    Some((container.to_string(), prefix))
}

/// Converts a Swift error for the engine: a 404 is "not found"; anything else keeps the
/// typed error (method, URL, status, Swift's message) as its source.
pub(crate) fn to_mirror(e: Error) -> MirrorError {
    match e {
        Error::NotFound { url, .. } => MirrorError::NotFound { location: url },
        other => MirrorError::Service(Box::new(other)),
    }
}

impl SwiftStore {
    /// The store `prefix` (with or without a trailing `/`) of `container`, as it is: nothing
    /// is created (for reading a mirror of a mirror).
    pub fn connect(
        client: SwiftClient,
        container: &str,
        prefix: &str,
        options: SwiftStoreOptions,
    ) -> Result<SwiftStore, MirrorError> {
        if container.is_empty() || container.contains('/') {
            return Err(MirrorError::Location {
                location: container.to_string(),
                message: "not a Swift container name".into(),
            });
        }
        let prefix = prefix.trim_matches('/');
        Ok(SwiftStore {
            private: format!("{container}_segments"),
            container: container.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            client,
            options,
        })
    }

    /// [`SwiftStore::connect`], then both containers created when missing (the main one
    /// readable by anyone with [`SwiftStoreOptions::public_read`]), for writing.
    pub async fn open(
        client: SwiftClient,
        container: &str,
        prefix: &str,
        options: SwiftStoreOptions,
    ) -> Result<SwiftStore, MirrorError> {
        let store = SwiftStore::connect(client, container, prefix, options)?;
        let acl = store.options.public_read.then_some(".r:*,.rlistings");
        store
            .client
            .create_container_readable(&store.container, acl)
            .await
            .map_err(to_mirror)?;
        store
            .client
            .create_container(&store.private)
            .await
            .map_err(to_mirror)?;
        Ok(store)
    }

    /// The store a `swift://CONTAINER/PREFIX` URL names, opened for writing
    /// ([`SwiftStore::open`]) or, with `write == false`, only connected.
    pub async fn from_url(
        client: SwiftClient,
        url: &str,
        options: SwiftStoreOptions,
        write: bool,
    ) -> Result<SwiftStore, MirrorError> {
        let (container, prefix) = parse_swift_url(url).ok_or_else(|| MirrorError::Location {
            location: url.to_string(),
            message: "expected swift://CONTAINER/PREFIX".into(),
        })?;
        if write {
            SwiftStore::open(client, &container, &prefix, options).await
        } else {
            SwiftStore::connect(client, &container, &prefix, options)
        }
    }

    /// The public URL of the store's root (what Juju and the reference read, through the
    /// `product-streams` endpoint), without a trailing slash.
    pub fn public_root(&self) -> String {
        format!(
            "{}/{}/{}",
            self.client.account_url(),
            self.container,
            self.prefix
        )
        .trim_end_matches('/')
        .to_string()
    }

    /// The client.
    pub fn client(&self) -> &SwiftClient {
        &self.client
    }

    /// How it stores.
    pub fn options(&self) -> &SwiftStoreOptions {
        &self.options
    }

    /// The private container: segments, and the engine's own files.
    pub fn private_container(&self) -> &str {
        &self.private
    }

    /// The public URL of an object of the store (what a client without credentials reads,
    /// when the container is public).
    pub fn public_url(&self, path: &str) -> String {
        format!(
            "{}/{}/{}{}",
            self.client.account_url(),
            self.container,
            self.prefix,
            path
        )
    }

    /// Which container, and which object name in it, `path` is stored under.
    pub(crate) fn locate(&self, path: &str) -> Result<(&str, String), MirrorError> {
        simplestreams_core::check_safe_path(path)?;
        let private = path.split('/').next() == Some(STATE_DIR);
        let container = if private {
            &self.private
        } else {
            &self.container
        };
        Ok((container, format!("{}{path}", self.prefix)))
    }

    /// Where the segments of `path` go, in the private container.
    pub(crate) fn segments_of(&self, path: &str) -> String {
        format!("{}{path}/", self.prefix)
    }

    /// Deletes segments of `path` in the private container: those `which` selects, and those
    /// named in `also` (object names in the private container) whether listed or not.
    pub(crate) async fn remove_segments(
        &self,
        path: &str,
        which: Segments<'_>,
        also: &[String],
    ) -> Result<(), MirrorError> {
        let prefix = self.segments_of(path);
        let listed = self
            .client
            .list_objects(&self.private, Some(&prefix))
            .await
            .map_err(to_mirror)?;
        let mut stale: Vec<String> = listed
            .into_iter()
            .filter(|o| {
                segment_of(&o.name[prefix.len().min(o.name.len())..])
                    .is_some_and(|(upload, _)| which.selects(upload))
            })
            .map(|o| o.name)
            .collect();
        for name in also {
            if !stale.contains(name) {
                stale.push(name.clone());
            }
        }
        if !stale.is_empty() {
            tracing::debug!(
                "{self}: removing {} stale segment(s) of {path}",
                stale.len()
            );
        }
        let results: Vec<Result<(), Error>> = stream::iter(stale)
            .map(|name| async move {
                match self.client.delete_object(&self.private, &name).await {
                    Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(4)
            .collect()
            .await;
        results
            .into_iter()
            .collect::<Result<(), Error>>()
            .map_err(to_mirror)
    }

    /// Puts the manifest of upload `id` of `path`, naming `segments`: the object appears,
    /// whole. Then the object's other segments (of the object it replaced, or of an upload
    /// killed half-way) go.
    pub(crate) async fn publish_manifest(
        &self,
        path: &str,
        id: &str,
        segments: &[SloSegment],
    ) -> Result<StoreMeta, MirrorError> {
        let (container, name) = self.locate(path)?;
        let etag = self
            .client
            .put_manifest(container, &name, segments)
            .await
            .map_err(to_mirror)?;
        if let Err(e) = self.remove_segments(path, Segments::AllBut(id), &[]).await {
            tracing::warn!("{self}: old segments of {path} not removed: {e}");
        }
        let size = segments.iter().map(|s| s.size_bytes).sum();
        Ok(store_meta(path, Some(size), etag))
    }

    /// Removes the segments of upload `id` of `path`, which failed: those listed, and those
    /// named in `stored` (`/<private container>/<name>` paths, as a manifest names them),
    /// since Swift's listing may lag behind the PUTs it answered.
    pub(crate) async fn remove_failed_upload(&self, path: &str, id: &str, stored: &[String]) {
        let prefix = format!("/{}/", self.private);
        let named: Vec<String> = stored
            .iter()
            .filter_map(|p| p.strip_prefix(&prefix).map(str::to_string))
            .collect();
        if let Err(e) = self.remove_segments(path, Segments::Of(id), &named).await {
            tracing::warn!("{self}: segments of a failed upload of {path} not removed: {e}");
        }
    }

    /// One PUT streamed from the body (see the module's documentation).
    async fn put_streamed(
        &self,
        path: &str,
        body: ByteStream,
        size: u64,
        md5: &str,
    ) -> Result<StoreMeta, MirrorError> {
        let (container, name) = self.locate(path)?;
        let (body, failure) = http_body(body);
        let put = SwiftPut {
            etag: Some(md5.to_string()),
            ..SwiftPut::default()
        };
        let answer = self
            .client
            .put_object_stream(container, &name, body, Some(size), &put)
            .await;
        if let Some(e) = failure.take() {
            return Err(e);
        }
        let etag = match answer {
            Ok(etag) => etag,
            Err(Error::Status {
                status: 422, url, ..
            }) => {
                return Err(MirrorError::Transport {
                    url,
                    message: format!(
                        "Swift refused the bytes (422): their MD5 is not {md5}, the md5 published"
                    ),
                    source: None,
                })
            }
            Err(e) => return Err(to_mirror(e)),
        };
        check_etag(&self.client, container, &name, etag.as_deref(), md5)?;
        if size > self.options.segment_size.min(HELD_OBJECT_MAX as u64) {
            // An object this large may have been a Static Large Object before (segmented by
            // an upload without its MD5, with any segment size, or one killed half-way): its
            // segments go.
            if let Err(e) = self.remove_segments(path, Segments::All, &[]).await {
                tracing::warn!("{self}: old segments of {path} not removed: {e}");
            }
        }
        Ok(store_meta(path, Some(size), Some(md5.to_string())))
    }

    /// An object of unknown MD5 with streamed segments: held up to [`HELD_OBJECT_MAX`] (then
    /// one PUT), else a Static Large Object of streamed segments.
    async fn put_in_streamed_segments(
        &self,
        path: &str,
        mut body: ByteStream,
    ) -> Result<StoreMeta, MirrorError> {
        let mut held: Vec<Bytes> = Vec::new();
        let mut held_len = 0usize;
        let mut upload: Option<StreamedUpload<'_>> = None;
        while let Some(next) = body.next().await {
            let sent = match (next, upload.as_mut()) {
                (Err(e), _) => Err(e),
                (Ok(chunk), None) if held_len + chunk.len() <= HELD_OBJECT_MAX => {
                    held_len += chunk.len();
                    held.push(chunk);
                    Ok(())
                }
                (Ok(chunk), None) => {
                    let up = upload.insert(StreamedUpload::new(self, path));
                    let mut sent = Ok(());
                    for piece in held.drain(..).chain(std::iter::once(chunk)) {
                        sent = up.push(piece).await;
                        if sent.is_err() {
                            break;
                        }
                    }
                    sent
                }
                (Ok(chunk), Some(up)) => up.push(chunk).await,
            };
            if let Err(e) = sent {
                if let Some(up) = upload.take() {
                    up.abort().await;
                }
                return Err(e);
            }
        }
        match upload {
            Some(up) => up.finish().await,
            None => {
                let mut part = Part::new(BytesMut::with_capacity(held_len));
                for chunk in held {
                    part.push(chunk).await;
                }
                self.put_single(path, part).await
            }
        }
    }

    async fn put_single(&self, path: &str, part: Part) -> Result<StoreMeta, MirrorError> {
        let (container, name) = self.locate(path)?;
        let (bytes, md5) = part.finish().await?;
        let size = bytes.len() as u64;
        let etag = self
            .client
            .put_object(
                container,
                &name,
                bytes,
                &SwiftPut {
                    etag: Some(md5.clone()),
                    ..SwiftPut::default()
                },
            )
            .await
            .map_err(to_mirror)?;
        check_etag(&self.client, container, &name, etag.as_deref(), &md5)?;
        Ok(store_meta(path, Some(size), Some(md5)))
    }
}

/// Refuses an answer whose ETag is not the MD5 sent (Swift checks it itself when given one;
/// this catches a proxy or a server that does not).
pub(crate) fn check_etag(
    client: &SwiftClient,
    container: &str,
    name: &str,
    got: Option<&str>,
    want: &str,
) -> Result<(), MirrorError> {
    match got {
        Some(got) if got.trim_matches('"').eq_ignore_ascii_case(want) => Ok(()),
        other => Err(MirrorError::Transport {
            url: format!("{}/{container}/{name}", client.account_url()),
            message: format!("Swift stored something else: ETag {other:?}, sent MD5 {want}"),
            source: None,
        }),
    }
}

/// Which segments of an object to remove.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Segments<'a> {
    /// Every one (the object is deleted).
    All,
    /// Those of one upload (it failed).
    Of(&'a str),
    /// All but those of one upload (it succeeded: the rest belong to the object it replaced,
    /// or to an upload killed half-way).
    AllBut(&'a str),
}

impl Segments<'_> {
    fn selects(self, upload: &str) -> bool {
        match self {
            Segments::All => true,
            Segments::Of(id) => upload == id,
            Segments::AllBut(id) => upload != id,
        }
    }
}

/// `(upload id, segment number)` of a segment name below an object's segment prefix.
fn segment_of(rest: &str) -> Option<(&str, u32)> {
    let (upload, index) = rest.split_once('/')?;
    let ok_id = upload.len() == 32 && upload.bytes().all(|b| b.is_ascii_hexdigit());
    let ok_index = index.len() == 8 && index.bytes().all(|b| b.is_ascii_digit());
    (ok_id && ok_index).then(|| (upload, index.parse().unwrap_or(0)))
}

pub(crate) fn store_meta(path: &str, size: Option<u64>, etag: Option<String>) -> StoreMeta {
    StoreMeta {
        path: path.to_string(),
        size,
        validators: Validators {
            etag: etag.map(|e| format!("\"{}\"", e.trim_matches('"'))),
            last_modified: None,
        },
        content_encoding: None,
    }
}

/// The bytes of one object or segment as they arrive, with their MD5 computed on a hashing
/// thread meanwhile, so that it is ready when the part is full.
struct Part {
    data: BytesMut,
    hasher: HashingThread,
    batcher: Batcher,
}

impl Part {
    fn new(data: BytesMut) -> Part {
        let md5 = StreamVerifier::new("", Expected::default()).also_compute(ChecksumKind::Md5);
        Part {
            data,
            hasher: HashingThread::start(md5),
            batcher: Batcher::default(),
        }
    }

    fn len(&self) -> usize {
        self.data.len()
    }

    async fn push(&mut self, chunk: Bytes) {
        self.data.extend_from_slice(&chunk);
        if let Some(batch) = self.batcher.push(chunk) {
            // A failed send means the hasher stopped; `finish` says why.
            let _ = self.hasher.send(batch).await;
        }
    }

    /// The bytes and their MD5.
    async fn finish(mut self) -> Result<(Bytes, String), MirrorError> {
        let _ = self.hasher.send(self.batcher.take()).await;
        let digests = self.hasher.finish().await??;
        Ok((self.data.freeze(), digests.md5.unwrap_or_default()))
    }
}

/// Segment buffers handed back once their PUT is answered, for the segments that follow: a
/// fresh 16 MiB allocation for each segment costs a page fault and a zeroed page every 4 KiB of
/// it (a tenth of the upload's CPU on the test bed). At most the segments in flight and the one
/// filling are ever allocated.
#[derive(Default)]
struct Buffers(std::sync::Mutex<Vec<BytesMut>>);

impl Buffers {
    /// An empty buffer of at least `capacity` bytes, reused when one is free.
    fn take(&self, capacity: usize) -> BytesMut {
        let reused = self.0.lock().ok().and_then(|mut free| free.pop());
        match reused {
            Some(mut b) => {
                b.clear();
                b.reserve(capacity);
                b
            }
            None => BytesMut::with_capacity(capacity),
        }
    }

    /// Takes back the bytes of a segment that was sent, unless something still holds them.
    fn give(&self, bytes: Bytes) {
        if let Ok(b) = bytes.try_into_mut() {
            if let Ok(mut free) = self.0.lock() {
                free.push(b);
            }
        }
    }
}

/// A Static Large Object being uploaded: segments sent while the next fills.
struct LargeUpload<'s> {
    store: &'s SwiftStore,
    buffers: std::sync::Arc<Buffers>,
    path: String,
    id: String,
    sent: Vec<SloSegment>,
    /// Segments started (sent, being sent, or failed): their names are numbered from 0.
    started: usize,
    /// Segments being sent, oldest first (the manifest lists them in order).
    in_flight: std::collections::VecDeque<tokio::task::JoinHandle<Result<SloSegment, MirrorError>>>,
}

impl<'s> LargeUpload<'s> {
    fn new(store: &'s SwiftStore, path: &str, buffers: std::sync::Arc<Buffers>) -> Self {
        LargeUpload {
            store,
            buffers,
            path: path.to_string(),
            id: hex::encode(rand::random::<[u8; 16]>()),
            sent: Vec::new(),
            started: 0,
            in_flight: std::collections::VecDeque::new(),
        }
    }

    /// Waits until at most `at_most` segments are still being sent.
    async fn wait(&mut self, at_most: usize) -> Result<(), MirrorError> {
        while self.in_flight.len() > at_most {
            let Some(task) = self.in_flight.pop_front() else {
                break;
            };
            let segment = task
                .await
                .map_err(|e| MirrorError::Aborted(format!("segment upload failed: {e}")))??;
            self.sent.push(segment);
        }
        Ok(())
    }

    /// The object name of segment `index` of this upload.
    fn segment_name(&self, index: usize) -> String {
        format!(
            "{}{}/{index:08}",
            self.store.segments_of(&self.path),
            self.id
        )
    }

    /// Waits until another segment may be sent.
    async fn make_room(&mut self) -> Result<(), MirrorError> {
        self.wait(self.store.options.in_flight() - 1).await
    }

    /// Sends `part` as the next segment, once fewer than `segments_in_flight` are being sent.
    async fn send(&mut self, part: Part) -> Result<(), MirrorError> {
        self.make_room().await?;
        let name = self.segment_name(self.started);
        self.started += 1;
        let client = self.store.client.clone();
        let container = self.store.private.clone();
        let buffers = self.buffers.clone();
        self.in_flight.push_back(tokio::spawn(async move {
            let (bytes, md5) = part.finish().await?;
            let size = bytes.len() as u64;
            let put = SwiftPut {
                etag: Some(md5.clone()),
                ..SwiftPut::default()
            };
            let answer = client
                .put_object(&container, &name, bytes.clone(), &put)
                .await;
            buffers.give(bytes);
            let etag = answer.map_err(to_mirror)?;
            check_etag(&client, &container, &name, etag.as_deref(), &md5)?;
            Ok(SloSegment {
                path: format!("/{container}/{name}"),
                etag: md5,
                size_bytes: size,
            })
        }));
        Ok(())
    }

    /// Sends the last part (if any) and puts the manifest: the object appears, whole. On any
    /// failure, this upload's segments are removed and the previous object stays.
    async fn finish(mut self, last: Part) -> Result<StoreMeta, MirrorError> {
        let published = async {
            if last.len() > 0 {
                self.send(last).await?;
            }
            self.wait(0).await?;
            self.store
                .publish_manifest(&self.path, &self.id, &self.sent)
                .await
        }
        .await;
        if published.is_err() {
            self.abort().await;
        }
        published
    }

    /// Removes what this upload sent: nothing of it stays.
    async fn abort(mut self) {
        // Segments being sent are let finish rather than cut: a PUT cut after its bytes went
        // may still be stored by Swift after the listing below, and stay as a stray.
        let mut stored: Vec<String> = std::mem::take(&mut self.sent)
            .into_iter()
            .map(|s| s.path)
            .collect();
        for task in self.in_flight.drain(..) {
            if let Ok(Ok(segment)) = task.await {
                stored.push(segment.path);
            }
        }
        self.store
            .remove_failed_upload(&self.path, &self.id, &stored)
            .await;
    }
}

#[async_trait]
impl Store for SwiftStore {
    async fn get(&self, path: &str, options: GetOptions) -> Result<GetResult, MirrorError> {
        let (container, name) = self.locate(path)?;
        let opts = SwiftGet {
            offset: options.offset,
            if_none_match: options
                .if_not_modified
                .as_ref()
                .and_then(|v| v.etag.clone()),
        };
        let Some(download) = self
            .client
            .get_object_with(container, &name, &opts)
            .await
            .map_err(to_mirror)?
        else {
            return Ok(GetResult::NotModified);
        };
        let size = download.meta.total_size.or(download.meta.size);
        let meta = store_meta(path, size, download.meta.etag.clone());
        let body = download.into_stream().map(|r| r.map_err(to_mirror)).boxed();
        Ok(GetResult::Found { meta, body })
    }

    async fn head(&self, path: &str) -> Result<Option<StoreMeta>, MirrorError> {
        let (container, name) = self.locate(path)?;
        match self.client.head_object(container, &name).await {
            Ok(m) => Ok(Some(store_meta(path, m.size, m.etag))),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(to_mirror(e)),
        }
    }

    async fn put(
        &self,
        path: &str,
        mut body: ByteStream,
        options: PutOptions,
    ) -> Result<StoreMeta, MirrorError> {
        self.locate(path)?;
        if let (Some(size), Some(md5)) = (options.size, &options.md5) {
            if self.verifies_md5(Some(size)) {
                return self.put_streamed(path, body, size, md5).await;
            }
        }
        if self.options.segment_size > HELD_SEGMENT_MAX {
            return self.put_in_streamed_segments(path, body).await;
        }
        let segment = usize::try_from(self.options.segment_size.max(1)).unwrap_or(usize::MAX);
        // The first part grows as the body comes: a small object needs no whole segment.
        let mut part = Part::new(BytesMut::with_capacity(segment.min(1 << 20)));
        let buffers = std::sync::Arc::new(Buffers::default());
        let mut large: Option<LargeUpload<'_>> = None;
        while let Some(next) = body.next().await {
            let mut chunk = match next {
                Ok(c) => c,
                Err(e) => {
                    if let Some(up) = large {
                        up.abort().await;
                    }
                    return Err(e);
                }
            };
            while !chunk.is_empty() {
                let room = segment - part.len();
                let piece = chunk.split_to(room.min(chunk.len()));
                part.push(piece).await;
                if part.len() == segment {
                    let up =
                        large.get_or_insert_with(|| LargeUpload::new(self, path, buffers.clone()));
                    // Room first, so that the next part fills the buffer of a segment sent
                    // rather than one more.
                    let sent = match up.make_room().await {
                        Ok(()) => {
                            let next = Part::new(buffers.take(segment));
                            up.send(std::mem::replace(&mut part, next)).await
                        }
                        Err(e) => Err(e),
                    };
                    if let Err(e) = sent {
                        if let Some(up) = large.take() {
                            up.abort().await;
                        }
                        return Err(e);
                    }
                }
            }
        }
        match large {
            None => self.put_single(path, part).await,
            Some(up) => up.finish(part).await,
        }
    }

    async fn delete(&self, path: &str) -> Result<(), MirrorError> {
        let (container, name) = self.locate(path)?;
        let meta = self
            .client
            .head_object(container, &name)
            .await
            .map_err(to_mirror)?;
        if meta.is_slo {
            self.client
                .delete_large_object(container, &name)
                .await
                .map_err(to_mirror)?;
        } else {
            self.client
                .delete_object(container, &name)
                .await
                .map_err(to_mirror)?;
        }
        if meta.is_slo {
            self.remove_segments(path, Segments::All, &[]).await?;
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<StoreMeta>, MirrorError> {
        let full = format!("{}{prefix}", self.prefix);
        let listed = self
            .client
            .list_objects(&self.container, Some(&full))
            .await
            .map_err(to_mirror)?;
        Ok(listed
            .into_iter()
            .filter_map(|o| {
                let path = o.name.strip_prefix(&self.prefix)?.to_string();
                Some(store_meta(&path, Some(o.bytes), Some(o.hash)))
            })
            .collect())
    }

    /// Swift checks the MD5 of a streamed PUT (see [`SwiftStoreOptions::max_streamed_put`]).
    fn verifies_md5(&self, size: Option<u64>) -> bool {
        size.is_some_and(|n| n <= self.options.max_streamed_put)
    }

    async fn lock(&self, name: &str) -> Result<StoreLock, MirrorError> {
        let (container, object) = self.locate(name)?;
        let holder = serde_json::json!({
            "host": hostname(),
            "pid": std::process::id(),
            "since": chrono_now(),
        });
        let put = SwiftPut {
            create_only: true,
            content_type: Some("application/json".into()),
            ..SwiftPut::default()
        };
        let what = format!("{}/{container}/{object}", self.client.account_url());
        match self
            .client
            .put_object(container, &object, Bytes::from(holder.to_string()), &put)
            .await
        {
            Ok(_) => {}
            Err(Error::Status { status: 412, .. }) => {
                let held_by = match self.client.get_object(container, &object).await {
                    Ok(d) => d
                        .bytes()
                        .await
                        .ok()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default(),
                    Err(_) => String::new(),
                };
                return Err(MirrorError::Locked {
                    target: what,
                    message: format!(
                        "held by {held_by}; if that sync is gone, break the lock with `sstream \
                         unlock {self}`"
                    ),
                });
            }
            Err(e) => return Err(to_mirror(e)),
        }
        let client = self.client.clone();
        let (container, object) = (container.to_string(), object.clone());
        Ok(StoreLock::with_release(
            what,
            Box::new(move || {
                Box::pin(async move {
                    match client.delete_object(&container, &object).await {
                        Ok(()) | Err(Error::NotFound { .. }) => {}
                        Err(e) => tracing::warn!("lock {container}/{object} not released: {e}"),
                    }
                })
            }),
        ))
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_container_and_prefix() {
        assert_eq!(
            parse_swift_url("swift://simplestreams/data/"),
            Some(("simplestreams".into(), "data/".into()))
        );
        assert_eq!(
            parse_swift_url("swift://c"),
            Some(("c".into(), String::new()))
        );
        assert_eq!(
            parse_swift_url("swift://c/a/b"),
            Some(("c".into(), "a/b/".into()))
        );
        assert_eq!(parse_swift_url("swift:///x"), None);
        assert_eq!(parse_swift_url("http://x"), None);
    }

    #[test]
    fn segments_in_flight_and_the_one_filling_fit_the_segment_memory() {
        for (mib, in_flight) in [(16, 1), (10, 3), (8, 4), (4, 4), (32, 1), (64, 1)] {
            let options = SwiftStoreOptions {
                segment_size: mib << 20,
                ..SwiftStoreOptions::default()
            };
            assert_eq!(options.in_flight(), in_flight, "segments of {mib} MiB");
            assert!(
                (in_flight as u64 + 1) * options.segment_size <= SEGMENT_MEMORY || in_flight == 1,
                "{mib} MiB"
            );
        }
        let fixed = SwiftStoreOptions {
            segments_in_flight: 3,
            ..SwiftStoreOptions::default()
        };
        assert_eq!(fixed.in_flight(), 3, "a number given is kept");
    }

    #[test]
    fn only_segment_names_of_this_object_are_recognised() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(segment_of(&format!("{id}/00000003")), Some((id, 3)));
        assert_eq!(segment_of(&format!("sub/{id}/00000003")), None);
        assert_eq!(segment_of(&format!("{id}/3")), None);
        assert_eq!(segment_of("x/00000001"), None);
    }
}
