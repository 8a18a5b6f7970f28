//! # simplestreams-mirror
//!
//! The sync engine of simplestreams-rs: it copies a filtered part of a stream (metadata and
//! files) from a source to a target, crash-safely and in parallel, as `sstream-mirror` does,
//! and the pieces every tool shares for that:
//!
//! - [`Store`]: objects (get with a byte range or conditionally, put by streaming to a
//!   temporary name then publishing atomically, delete, list, head, lock). Backends:
//!   [`InMemory`] (first class: doctests, engine tests) and [`LocalStore`] (a directory);
//!   `swift-target` and the `object_store` adapter add Swift and S3. Conveniences live on
//!   [`StoreExt`].
//! - [`Target`]: items, the engine's view (what is held, insert a verified item, remove one,
//!   save the state). [`StoreTarget`] implements it on any store with the mirror layout; an
//!   image service (Glance) implements it directly.
//! - [`Source`]: where a stream is read from: [`HttpSource`] (retries through `http-retry`,
//!   timeouts, `Range` resume that copes with servers ignoring `Range`), any store through
//!   [`StoreSource`], and [`FallbackSource`] for `--mirror` fallbacks; [`open_source`] picks
//!   one from a URL or path.
//! - [`MetadataReader`]: the one way metadata is read, with one [`SignaturePolicy`] (off,
//!   signed first, signed only), a size limit and `Content-Encoding` decoding.
//! - [`Publisher`]: the one way metadata is written: atomically, `.json` beside `.sjson` and
//!   `.json.gpg` when signing, unchanged files left alone.
//! - [`query`]: the items of a stream that pass filters, as `sstream-query` prints them.
//!
//! [`Mirror`] runs a sync: it plans each products file with the core's `plan_versions`,
//! downloads added items `jobs` at a time, hashing as they stream, publishes items, then products
//! files, then the index, records its [`State`] once, and only then deletes items that nothing
//! published refers to. A bad item fails its products file only.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use simplestreams_core::FilterSet;
//! use simplestreams_mirror::{InMemory, Mirror, Store, StoreExt, StoreSource, SyncOptions};
//!
//! let upstream = InMemory::new();
//! upstream.put_bytes("streams/v1/index.json", r#"{"format": "index:1.0", "index": {
//!   "c": {"format": "products:1.0", "path": "streams/v1/c.json"}}}"#.into()).await?;
//! upstream.put_bytes("streams/v1/c.json", r#"{"format": "products:1.0", "content_id": "c",
//!   "products": {"p": {"arch": "amd64", "versions": {"1": {"items": {"i": {"path": "f/i.txt",
//!   "size": 5, "md5": "5d41402abc4b2a76b9719d911017c592"}}}}},
//!   "q": {"arch": "arm64", "versions": {"1": {"items": {"i": {"path": "f/q.txt",
//!   "size": 5, "md5": "5d41402abc4b2a76b9719d911017c592"}}}}}}}"#.into()).await?;
//! upstream.put_bytes("f/i.txt", "hello".into()).await?;
//!
//! let mirror = InMemory::new();
//! let options = SyncOptions {
//!     filters: FilterSet::parse(&["arch=amd64"])?,
//!     ..SyncOptions::default()
//! };
//! let report = Mirror::to_store(
//!     Arc::new(StoreSource::new(Arc::new(upstream))),
//!     Arc::new(mirror.clone()),
//!     options,
//! ).run().await?;
//! assert!(report.is_success());
//! assert_eq!(report.downloaded, 1);
//! assert!(mirror.head("f/q.txt").await?.is_none()); // filtered out
//! assert!(mirror.head("streams/v1/index.json").await?.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```
#![deny(missing_docs)]

pub mod decompress;
mod engine;
mod error;
pub mod hashing;
mod metadata;
mod publish;
pub mod query;
mod source;
mod store;
pub mod sums;
mod target;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use engine::{
    Freshness, MetadataMode, Mirror, NoProgress, PlanLine, PlanTotals, Progress, Report,
    SyncOptions,
};
pub use error::{BoxError, Error, Result};
pub use http_retry::{HttpOptions, RetryConfig};
pub use metadata::{
    load_keyrings, Fetched, MetadataFile, MetadataLimits, MetadataReader, SignatureMode,
    SignaturePolicy,
};
pub use publish::{Publisher, PUBLIC_KEY_PATH};
pub use source::{
    local_dir, open_source, split_entry, FallbackSource, HttpSource, Source, StoreSource,
};
pub use store::{
    byte_stream, collect, http_body, last_chunk_held, BodyFailure, ByteStream, GetOptions,
    GetResult, InMemory, LocalStore, ObjectMeta, PutOptions, Store, StoreExt, StoreLock,
    Validators,
};
pub use target::{
    check_mirror_path, ContentState, HeldItem, ItemKey, ItemTree, NewItem, PendingRemoval, State,
    StoreTarget, StoredAs, Target, STATE_DIR,
};
