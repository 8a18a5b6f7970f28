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
