//! # object-store-target
//!
//! S3 and the other object stores of the [`object_store`] crate (Google Cloud Storage, Azure
//! Blob, in memory) as a first-class [`Store`](simplestreams_mirror::Store) of the simplestreams
//! sync engine: a mirror can be read from or written to a bucket as it is to a directory or a
//! Swift container, with the same guarantees (atomic streamed puts, resumable ranged gets,
//! conditional gets, an exclusive lock).
//!
//! - [`ObjectStoreAdapter`] wraps any `Arc<dyn ObjectStore>` and a prefix in it; its docs say
//!   how each [`Store`](simplestreams_mirror::Store) method maps onto the object store.
//! - [`open_url`] opens `s3://BUCKET/PREFIX` with the standard `AWS_*` variables
//!   (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL` for
//!   S3-compatible services, `AWS_ALLOW_HTTP`, ...), `gs://BUCKET/PREFIX` with the
//!   `GOOGLE_*` ones, `az://CONTAINER/PREFIX` (and the other Azure forms) with the `AZURE_*`
//!   ones, and `memory:///PREFIX` (a new, empty store); [`open_url_with`] adds settings,
//!   retries, the part size and the lock mode.
//! - [`LockMode`]: the lock is an object created only if absent where the store can do that,
//!   else claims checked by listing (Swift's S3 API has no conditional writes);
//!   [`ObjectStoreAdapter::break_lock`] breaks a stale one.
//! - Errors are the engine's [`Error`]: [`Error::NotFound`] for a missing object, else
//!   [`Error::Service`] holding an [`ObjectStoreError`] (operation, object URL, and the
//!   `object_store` error, which names the HTTP request, as its source).
//!
//! Mirroring into a store (here in memory, so that this runs anywhere; `open_url("s3://...")`
//! gives the S3 one):
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use object_store::memory::InMemory;
//! use object_store_target::ObjectStoreAdapter;
//! use simplestreams_mirror::{Mirror, Store, StoreExt, StoreSource, SyncOptions};
//!
//! let upstream = simplestreams_mirror::InMemory::new();
//! upstream.put_bytes("streams/v1/index.json", r#"{"format": "index:1.0", "index": {
//!   "c": {"format": "products:1.0", "path": "streams/v1/c.json"}}}"#.into()).await?;
//! upstream.put_bytes("streams/v1/c.json", r#"{"format": "products:1.0", "content_id": "c",
//!   "products": {"p": {"arch": "amd64", "versions": {"1": {"items": {"i": {"path": "f/i.txt",
//!   "size": 5, "md5": "5d41402abc4b2a76b9719d911017c592"}}}}}}}"#.into()).await?;
//! upstream.put_bytes("f/i.txt", "hello".into()).await?;
//!
//! let bucket = Arc::new(InMemory::new());
//! let mirror = ObjectStoreAdapter::new(bucket, "mirror")?;
//! let report = Mirror::to_store(
//!     Arc::new(StoreSource::new(Arc::new(upstream))),
//!     Arc::new(mirror.clone()),
//!     SyncOptions::default(),
//! ).run().await?;
//! assert!(report.is_success());
//! assert_eq!(mirror.get_bytes("f/i.txt").await?, "hello");
//! assert!(mirror.head("streams/v1/index.json").await?.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```
//!
//! And S3 (an S3-compatible service through `AWS_ENDPOINT_URL`; the project's test bed
//! exports everything needed, see `docs/testbed.md`):
//!
//! ```no_run
//! # async fn f() -> simplestreams_mirror::Result<()> {
//! use simplestreams_mirror::StoreExt;
//! let mirror = object_store_target::open_url("s3://images/ubuntu")?;
//! mirror.put_bytes("hello.txt", "hello".into()).await?; // s3://images/ubuntu/hello.txt
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod adapter;
mod error;
mod lock;
mod streamed;

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::memory::InMemory;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, ObjectStoreScheme};
use simplestreams_mirror::{Error, HttpOptions, Result, RetryConfig};

pub use adapter::{
    ObjectStoreAdapter, DEFAULT_PART_SIZE, MAX_PARTS_IN_FLIGHT, MIN_PART_SIZE, PART_MEMORY,
};
pub use error::ObjectStoreError;
pub use lock::LockMode;
/// The `object_store` crate this one is built on (to build stores for
/// [`ObjectStoreAdapter::new`] with the same version).
pub use object_store;
pub use streamed::MAX_STREAMED_PUT;

/// Options of [`open_url_with`].
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// `object_store` settings of the URL's scheme, as `(key, value)`, applied over those
    /// from the environment: `aws_endpoint`, `aws_region`, `aws_access_key_id`,
    /// `aws_conditional_put`, `google_service_account`, `azure_storage_account_name`, ...
    /// (the names of `AmazonS3ConfigKey`, `GoogleConfigKey` and `AzureConfigKey`). Empty by
    /// default.
    pub config: Vec<(String, String)>,
    /// Retries of each request: transport failures, timeouts and 5xx answers (the project's
    /// usual policy by default: 5 retries, backoff from 200 ms up to 15 s, with jitter).
    pub retry: RetryConfig,
    /// The longest a request may take with its retries (default 3 minutes).
    pub retry_timeout: Duration,
    /// See [`ObjectStoreAdapter::with_part_size`].
    pub part_size: usize,
    /// See [`LockMode`].
    pub lock_mode: LockMode,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            config: Vec::new(),
            retry: RetryConfig::default(),
            retry_timeout: Duration::from_secs(180),
            part_size: DEFAULT_PART_SIZE,
            lock_mode: LockMode::Auto,
        }
    }
}

/// The store a URL names, with the default [`OpenOptions`]: `s3://BUCKET/PREFIX` (settings
/// from the `AWS_*` variables), `gs://BUCKET/PREFIX` (`GOOGLE_*`), `az://CONTAINER/PREFIX`
/// and Azure's other forms (`AZURE_*`), `memory:///PREFIX`. Nothing is contacted yet: a
/// wrong endpoint or credential shows in the first request, naming the URL.
pub fn open_url(url: &str) -> Result<ObjectStoreAdapter> {
    open_url_with(url, &OpenOptions::default())
}

/// [`open_url`] with options.
pub fn open_url_with(url: &str, options: &OpenOptions) -> Result<ObjectStoreAdapter> {
    let bad = |message: String| Error::Location {
        location: url.to_string(),
        message,
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(format!("not a URL: {e}")))?;
    let (scheme, prefix) = ObjectStoreScheme::parse(&parsed).map_err(|e| bad(e.to_string()))?;
    let retry = object_store::RetryConfig {
        backoff: BackoffConfig {
            init_backoff: options.retry.initial_backoff,
            max_backoff: options.retry.max_backoff,
            base: 2.0,
        },
        max_retries: options.retry.max_retries as usize,
        retry_timeout: options.retry_timeout,
    };
    let built = |e: object_store::Error| {
        Error::Service(Box::new(ObjectStoreError {
            operation: "open",
            location: url.to_string(),
            source: e,
        }))
    };
    let key_error = |key: &str, e: object_store::Error| {
        bad(format!(
            "unknown setting {key:?} for this kind of store: {e}"
        ))
    };
    // For the probe of conditional creates (see ObjectStoreAdapter::with_lock_probe). GCS and
    // Azure have them: no probe needed.
    let no_retry = object_store::RetryConfig {
        max_retries: 0,
        ..retry.clone()
    };
    let mut lock_probe: Option<Arc<dyn ObjectStore>> = None;
    // S3 presigns the streamed PUTs; whether its client accepts invalid certificates.
    let mut presigning: Option<(Arc<AmazonS3>, bool)> = None;
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::AmazonS3 => {
            let mut builder = AmazonS3Builder::from_env().with_url(url);
            for (k, v) in &options.config {
                let key: AmazonS3ConfigKey = k
                    .to_ascii_lowercase()
                    .parse()
                    .map_err(|e| key_error(k, e))?;
                builder = builder.with_config(key, v);
            }
            // The streamed PUTs go through the workspace's HTTP client: it accepts what the
            // store's own client was told to.
            let accept_invalid_certs = builder
                .get_config_value(&AmazonS3ConfigKey::Client(
                    ClientConfigKey::AllowInvalidCertificates,
                ))
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
            let probe = builder.clone().with_retry(no_retry.clone());
            lock_probe = Some(Arc::new(probe.build().map_err(built)?));
            let s3 = Arc::new(builder.with_retry(retry).build().map_err(built)?);
            presigning = Some((s3.clone(), accept_invalid_certs));
            s3
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let mut builder = GoogleCloudStorageBuilder::from_env().with_url(url);
            for (k, v) in &options.config {
                let key: GoogleConfigKey = k
                    .to_ascii_lowercase()
                    .parse()
                    .map_err(|e| key_error(k, e))?;
                builder = builder.with_config(key, v);
            }
            Arc::new(builder.with_retry(retry).build().map_err(built)?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut builder = MicrosoftAzureBuilder::from_env().with_url(url);
            for (k, v) in &options.config {
                let key: AzureConfigKey = k
                    .to_ascii_lowercase()
                    .parse()
                    .map_err(|e| key_error(k, e))?;
                builder = builder.with_config(key, v);
            }
            Arc::new(builder.with_retry(retry).build().map_err(built)?)
        }
        ObjectStoreScheme::Memory => Arc::new(InMemory::new()),
        other => {
            return Err(bad(format!(
                "{other:?} URLs are not object stores here (s3://, gs://, az://, memory://)"
            )))
        }
    };
    let mut adapter = ObjectStoreAdapter::new(store, prefix.as_ref())?
        .with_url(url)
        .with_part_size(options.part_size)
        .with_lock_mode(options.lock_mode);
    if let Some(probe) = lock_probe {
        adapter = adapter.with_lock_probe(probe);
    }
    if let Some((s3, accept_invalid_certs)) = presigning {
        let http = HttpOptions {
            accept_invalid_certs,
            ..HttpOptions::default()
        };
        adapter = adapter.with_signer(s3.clone(), s3, &http)?;
    }
    Ok(adapter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_store_and_prefix() {
        let s = open_url("memory:///a/b/").expect("memory");
        assert_eq!(s.prefix(), "a/b");
        assert_eq!(s.to_string(), "memory:///a/b");
        let s = open_url_with(
            "s3://bucket/some/prefix",
            &OpenOptions {
                config: vec![("aws_region".into(), "RegionOne".into())],
                ..OpenOptions::default()
            },
        )
        .expect("s3");
        assert_eq!(s.prefix(), "some/prefix");
        assert_eq!(s.to_string(), "s3://bucket/some/prefix");
        assert_eq!(s.part_size(), DEFAULT_PART_SIZE);
    }

    #[test]
    fn bad_urls_and_settings_are_refused() {
        for url in ["not a url", "ftp://host/x", "file:///tmp/x"] {
            assert!(
                matches!(open_url(url), Err(Error::Location { .. })),
                "{url}"
            );
        }
        let e = open_url_with(
            "s3://bucket/p",
            &OpenOptions {
                config: vec![("no_such_key".into(), "x".into())],
                ..OpenOptions::default()
            },
        )
        .expect_err("unknown key");
        assert!(e.to_string().contains("no_such_key"), "{e}");
    }

    #[test]
    fn part_size_is_at_least_the_s3_minimum() {
        let s = open_url_with(
            "memory:///",
            &OpenOptions {
                part_size: 1024,
                ..OpenOptions::default()
            },
        )
        .expect("memory");
        assert_eq!(s.part_size(), MIN_PART_SIZE);
        assert_eq!(
            s.parts_in_flight(),
            MAX_PARTS_IN_FLIGHT,
            "small parts: the most at once"
        );
    }

    #[test]
    fn parts_in_flight_and_the_one_filling_fit_the_part_memory() {
        let store = Arc::new(InMemory::new());
        for (mib, in_flight) in [(16, 2), (12, 3), (8, 4), (5, 4), (24, 1), (64, 1)] {
            let s = ObjectStoreAdapter::new(store.clone(), "")
                .expect("adapter")
                .with_part_size(mib << 20);
            assert_eq!(s.parts_in_flight(), in_flight, "parts of {mib} MiB");
            assert!(
                (in_flight + 1) * s.part_size() <= PART_MEMORY || in_flight == 1,
                "{mib} MiB"
            );
        }
    }
}
