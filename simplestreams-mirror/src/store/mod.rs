//! Object-level storage: the [`Store`] trait and its backends.
//!
//! A store holds bytes under `/`-separated relative paths. Every backend implements the few
//! methods of [`Store`]; conveniences (`get_bytes`, `put_bytes`) live on [`StoreExt`], implemented
//! for every store, so that a wrapper cannot get them subtly wrong.

use std::fmt::{Debug, Display};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::error::{Error, Result};

mod flush;
mod local;
mod lock;
mod memory;

pub use local::LocalStore;
pub use lock::StoreLock;
pub use memory::InMemory;

/// A stream of bytes, ending early with an error if the producer fails.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// Makes a [`ByteStream`] of one chunk.
pub fn byte_stream(bytes: impl Into<Bytes>) -> ByteStream {
    let bytes: Bytes = bytes.into();
    stream::once(async move { Ok(bytes) }).boxed()
}

/// The same body, each chunk given only once the next one (or the clean end) has come: its
/// last chunk waits until the body has ended without error. For a backend sending a
/// `Content-Length`, whose service stores the object as soon as that many bytes arrived: a
/// body failing at its end (the engine's checksums are known only once every byte passed)
/// then stops one chunk short, and the service stores nothing.
pub fn last_chunk_held(body: ByteStream) -> ByteStream {
    stream::unfold(
        (body, None::<Bytes>, false),
        |(mut body, mut held, done)| async move {
            if done {
                return None;
            }
            loop {
                match body.next().await {
                    Some(Ok(chunk)) if chunk.is_empty() => continue,
                    Some(Ok(chunk)) => match held.replace(chunk) {
                        Some(previous) => return Some((Ok(previous), (body, held, false))),
                        None => continue,
                    },
                    // The held chunk is dropped: the service must not get the whole body.
                    Some(Err(e)) => return Some((Err(e), (body, None, true))),
                    None => return held.take().map(|last| (Ok(last), (body, None, true))),
                }
            }
        },
    )
    .boxed()
}

/// A body as an HTTP client sends it in one request ([`http_body`]): its chunks as I/O
/// results, its last chunk held until it ended cleanly ([`last_chunk_held`]).
pub type HttpBody = BoxStream<'static, std::io::Result<Bytes>>;

/// The error a body sent by [`http_body`] ended with, kept to be the answer: the engine's own
/// (naming the item and the check that failed), where the HTTP client only reports that its
/// body stopped.
#[derive(Debug, Clone, Default)]
pub struct BodyFailure(std::sync::Arc<std::sync::Mutex<Option<Error>>>);

impl BodyFailure {
    /// The body's error, if it ended with one.
    pub fn take(&self) -> Option<Error> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// `body` for a backend that sends it in one HTTP request: the last chunk held until the
/// body ended cleanly (see [`last_chunk_held`]), and its error, if any, kept in the
/// [`BodyFailure`] returned, to be answered instead of the client's own.
pub fn http_body(body: ByteStream) -> (HttpBody, BodyFailure) {
    let failure = BodyFailure::default();
    let seen = failure.clone();
    let body = last_chunk_held(body)
        .map(move |next| {
            next.map_err(|e| {
                let message = e.to_string();
                if let Ok(mut slot) = seen.0.lock() {
                    slot.get_or_insert(e);
                }
                std::io::Error::other(message)
            })
        })
        .boxed();
    (body, failure)
}

/// Validators of one version of an object, for conditional requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    /// Entity tag, quotes included, as the server sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// `Last-Modified`, as the server sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

impl Validators {
    /// Whether there is anything to send.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// What a store knows about an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Path in the store.
    pub path: String,
    /// Size in bytes, when known.
    pub size: Option<u64>,
    /// Validators for a later conditional request.
    pub validators: Validators,
    /// The `Content-Encoding` the bytes were sent with (HTTP only); item bytes are kept as
    /// sent, metadata is decoded.
    pub content_encoding: Option<String>,
}

/// Options of [`Store::get`]; grows without breaking callers.
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    /// Start reading at this byte offset (an HTTP `Range: bytes=N-`).
    pub offset: Option<u64>,
    /// Answer [`GetResult::NotModified`] if the object still matches these validators.
    pub if_not_modified: Option<Validators>,
    /// The caller reads the object whole (metadata) and refuses it beyond this many bytes: a
    /// backend may then deliver an object up to that size in one chunk, read as fast as it
    /// can (a local file in one go, on two threads when large).
    pub whole_up_to: Option<u64>,
}

/// The answer to [`Store::get`].
pub enum GetResult {
    /// The object, from the requested offset.
    Found {
        /// Its metadata (`size` is the full object size when known).
        meta: ObjectMeta,
        /// Its bytes.
        body: ByteStream,
    },
    /// The object matches the validators given in [`GetOptions::if_not_modified`].
    NotModified,
}

impl Debug for GetResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GetResult::Found { meta, .. } => f.debug_struct("Found").field("meta", meta).finish(),
            GetResult::NotModified => f.write_str("NotModified"),
        }
    }
}

/// Options of [`Store::put`].
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Make this object, and every object put before it, durable (on stable storage) before
    /// it is published. Items are put without it and metadata with it: one flush per
    /// metadata file instead of two per item, and never metadata naming an item that a power
    /// cut could lose.
    pub durable: bool,
    /// The body's size, when known before it is sent (an item's published `size`). A backend
    /// may then send it as one request with this length; the body still fails if it differs.
    pub size: Option<u64>,
    /// The MD5 (hex) the whole body has, when known before it is sent (an item's published
    /// `md5`), for a store that checks it itself as it writes (see [`Store::verifies_md5`]):
    /// it must then publish nothing, and keep the previous object, when the bytes differ.
    pub md5: Option<String>,
}

impl PutOptions {
    /// Options of a metadata file: durable, nothing known in advance.
    pub fn durable() -> PutOptions {
        PutOptions {
            durable: true,
            ..PutOptions::default()
        }
    }
}

/// Object-level storage, the layer below a [`crate::Target`].
///
/// Contract, checked by `testkit::store_conformance` (feature `testkit`):
/// - `put` streams the body to a temporary name and publishes it atomically at `path` only once
///   the body ended without error: a reader never sees a partial object, and a body that ends
///   with an error leaves the previous object (or its absence) untouched;
/// - `get` of a missing object and `delete` of a missing object fail with
///   [`Error::NotFound`];
/// - `list` returns the objects below a prefix, temporary names excluded;
/// - `lock` returns a guard that at most one holder has at a time, released on drop and when the
///   process dies.
#[async_trait]
pub trait Store: Send + Sync + Debug + Display + 'static {
    /// Reads an object (from an offset, conditionally).
    async fn get(&self, path: &str, options: GetOptions) -> Result<GetResult>;

    /// Metadata of an object, `None` when absent.
    async fn head(&self, path: &str) -> Result<Option<ObjectMeta>>;

    /// Writes an object from a stream, publishing it atomically when the stream ends cleanly.
    async fn put(&self, path: &str, body: ByteStream, options: PutOptions) -> Result<ObjectMeta>;

    /// Deletes an object.
    async fn delete(&self, path: &str) -> Result<()>;

    /// Objects below `prefix` (`""` for all), in no particular order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;

    /// Takes the lock `name`, failing with [`Error::Locked`] if someone holds it.
    async fn lock(&self, name: &str) -> Result<StoreLock>;

    /// Whether `put` checks a [`PutOptions::md5`] given against the bytes itself for a body of
    /// `size` bytes (the service computes the MD5 as it stores them, as Swift and S3 do), so
    /// that the engine need not compute it on the way. The default, no, is right for a store
    /// keeping no digest.
    fn verifies_md5(&self, _size: Option<u64>) -> bool {
        false
    }
}

/// Conveniences for every [`Store`].
#[async_trait]
pub trait StoreExt: Store {
    /// Reads a whole object into memory (for metadata; items are streamed).
    async fn get_bytes(&self, path: &str) -> Result<Bytes> {
        match self.get(path, GetOptions::default()).await? {
            GetResult::Found { body, .. } => collect(body).await,
            GetResult::NotModified => Err(Error::Aborted(format!(
                "{path}: not modified without a conditional request"
            ))),
        }
    }

    /// Writes a whole object from memory.
    async fn put_bytes(&self, path: &str, bytes: Bytes) -> Result<ObjectMeta> {
        self.put(path, byte_stream(bytes), PutOptions::default())
            .await
    }

    /// Deletes an object, succeeding if it was already absent.
    async fn delete_if_present(&self, path: &str) -> Result<()> {
        match self.delete(path).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

/// Collects a byte stream into one buffer.
pub async fn collect(body: ByteStream) -> Result<Bytes> {
    let chunks: Vec<Bytes> = body.try_collect().await?;
    if chunks.len() == 1 {
        return Ok(chunks.into_iter().next().unwrap_or_default());
    }
    Ok(Bytes::from(chunks.concat()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: Vec<Result<&'static [u8]>>) -> ByteStream {
        stream::iter(parts.into_iter().map(|r| r.map(Bytes::from_static))).boxed()
    }

    #[tokio::test]
    async fn a_clean_body_passes_whole_and_in_order() {
        let body = last_chunk_held(chunks(vec![Ok(b"ab"), Ok(b""), Ok(b"cd"), Ok(b"e")]));
        let got: Vec<Bytes> = body.try_collect().await.expect("clean");
        assert_eq!(got.concat(), b"abcde");
    }

    #[tokio::test]
    async fn a_body_failing_at_its_end_never_gives_its_last_chunk() {
        let failing = chunks(vec![
            Ok(b"ab"),
            Ok(b"cd"),
            Err(Error::Aborted("checksum".into())),
        ]);
        let mut body = last_chunk_held(failing);
        let mut passed = Vec::new();
        let mut failed = false;
        while let Some(next) = body.next().await {
            match next {
                Ok(c) => passed.extend_from_slice(&c),
                Err(_) => failed = true,
            }
        }
        assert!(failed, "the error comes through");
        assert_eq!(passed, b"ab", "the chunk before the error was held back");
    }
}
