//! The adapter on `object_store`'s in-memory store (always run), and against an endpoint where
//! nothing listens.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, ListResult, MultipartUpload, ObjectStore, PutMultipartOptions, PutPayload,
    PutResult, UploadPart,
};
use object_store_target::{
    open_url_with, LockMode, ObjectStoreAdapter, ObjectStoreError, OpenOptions, MIN_PART_SIZE,
};
use simplestreams_mirror::{testkit, Error, PutOptions, RetryConfig, Store, StoreExt};

/// What a [`Spy`] saw.
#[derive(Debug, Default)]
struct Seen {
    puts: AtomicUsize,
    multipart_started: AtomicUsize,
    parts: AtomicUsize,
    completed: AtomicUsize,
    aborted: AtomicUsize,
}

/// An in-memory store that counts single puts and multipart uploads.
#[derive(Debug)]
struct Spy {
    inner: InMemory,
    seen: Arc<Seen>,
}

impl std::fmt::Display for Spy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spy")
    }
}

#[derive(Debug)]
struct SpyUpload {
    inner: Box<dyn MultipartUpload>,
    seen: Arc<Seen>,
}

#[async_trait::async_trait]
impl MultipartUpload for SpyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.seen.parts.fetch_add(1, Ordering::SeqCst);
        self.inner.put_part(data)
    }
    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.seen.completed.fetch_add(1, Ordering::SeqCst);
        self.inner.complete().await
    }
    async fn abort(&mut self) -> object_store::Result<()> {
        self.seen.aborted.fetch_add(1, Ordering::SeqCst);
        self.inner.abort().await
    }
}

#[async_trait::async_trait]
impl ObjectStore for Spy {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<PutResult> {
        self.seen.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.seen.multipart_started.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(SpyUpload {
            inner: self.inner.put_multipart_opts(location, opts).await?,
            seen: self.seen.clone(),
        }))
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(
        &self,
        prefix: Option<&Path>,
    ) -> BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

fn spy() -> (ObjectStoreAdapter, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let store = Spy {
        inner: InMemory::new(),
        seen: seen.clone(),
    };
    let adapter = ObjectStoreAdapter::new(Arc::new(store), "spy")
        .unwrap()
        .with_part_size(MIN_PART_SIZE);
    (adapter, seen)
}

fn memory(prefix: &str) -> ObjectStoreAdapter {
    ObjectStoreAdapter::new(Arc::new(InMemory::new()), prefix)
        .expect("adapter")
        .with_part_size(MIN_PART_SIZE)
}

#[tokio::test]
async fn conforms_in_memory() {
    testkit::store_conformance(&memory("")).await;
    testkit::store_conformance(&memory("some/prefix")).await;
    for mode in [LockMode::ConditionalCreate, LockMode::CreateThenList] {
        testkit::store_conformance(&memory("p").with_lock_mode(mode)).await;
    }
}

#[tokio::test]
async fn objects_live_below_the_prefix() {
    let bucket = Arc::new(InMemory::new());
    let a = ObjectStoreAdapter::new(bucket.clone(), "a").unwrap();
    let ab = ObjectStoreAdapter::new(bucket.clone(), "a/b").unwrap();
    let root = ObjectStoreAdapter::new(bucket, "").unwrap();
    a.put_bytes("b/x.txt", "x".into()).await.unwrap();
    a.put_bytes("bc/y.txt", "y".into()).await.unwrap();
    assert_eq!(ab.get_bytes("x.txt").await.unwrap(), "x");
    assert_eq!(root.get_bytes("a/bc/y.txt").await.unwrap(), "y");
    let names = |v: Vec<simplestreams_mirror::ObjectMeta>| {
        let mut n: Vec<String> = v.into_iter().map(|m| m.path).collect();
        n.sort();
        n
    };
    assert_eq!(names(a.list("").await.unwrap()), ["b/x.txt", "bc/y.txt"]);
    // A prefix that ends inside a name matches by string, as the Store contract says.
    assert_eq!(names(a.list("b").await.unwrap()), ["b/x.txt", "bc/y.txt"]);
    assert_eq!(names(a.list("b/").await.unwrap()), ["b/x.txt"]);
    assert_eq!(names(a.list("bc/y").await.unwrap()), ["bc/y.txt"]);
    assert!(a.list("nothing/").await.unwrap().is_empty());
    assert_eq!(names(ab.list("").await.unwrap()), ["x.txt"]);
}

#[tokio::test]
async fn large_puts_are_multipart_and_whole() {
    let (store, seen) = spy();
    // Three parts: two full, one short.
    common::large_put_round_trips(&store, "images/disk.img", 2 * MIN_PART_SIZE + 4321).await;
    assert_eq!(seen.multipart_started.load(Ordering::SeqCst), 1);
    assert_eq!(seen.parts.load(Ordering::SeqCst), 3);
    assert_eq!(seen.completed.load(Ordering::SeqCst), 1);
    assert_eq!(seen.puts.load(Ordering::SeqCst), 0);
    // Exactly one part: one PUT.
    common::large_put_round_trips(&store, "images/one.img", MIN_PART_SIZE).await;
    assert_eq!(seen.multipart_started.load(Ordering::SeqCst), 1);
    assert_eq!(seen.puts.load(Ordering::SeqCst), 1);
    assert_eq!(seen.aborted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_failing_body_leaves_nothing() {
    let (store, seen) = spy();
    common::failing_large_put_leaves_nothing(&store, "images/bad.img").await;
    // Two failed multipart uploads, both aborted; the small put in between.
    assert_eq!(seen.multipart_started.load(Ordering::SeqCst), 2);
    assert_eq!(seen.aborted.load(Ordering::SeqCst), 2);
    assert_eq!(seen.completed.load(Ordering::SeqCst), 0);
    assert_eq!(seen.puts.load(Ordering::SeqCst), 1);
    // A body failing within the first part sends nothing at all.
    assert!(store
        .put("x", common::failing_after(1000), PutOptions::default())
        .await
        .is_err());
    assert_eq!(seen.puts.load(Ordering::SeqCst), 1);
    assert_eq!(seen.multipart_started.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_dropped_put_aborts_its_upload() {
    let (store, seen) = spy();
    // More than a part, then a body that never ends: the put waits for it.
    let data = common::pattern(MIN_PART_SIZE + 10);
    let body = common::chunked(&data)
        .chain(futures::stream::pending())
        .boxed();
    let put = store.put("images/slow.img", body, PutOptions::default());
    assert!(tokio::time::timeout(Duration::from_millis(300), put)
        .await
        .is_err());
    // Dropped by the timeout: the abort runs on the runtime.
    for _ in 0..100 {
        if seen.aborted.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.multipart_started.load(Ordering::SeqCst), 1);
    assert_eq!(seen.aborted.load(Ordering::SeqCst), 1);
    assert!(store.head("images/slow.img").await.unwrap().is_none());
}

#[tokio::test]
async fn mirrors_into_the_store() {
    common::mirror_into(&memory("mirror")).await;
}

#[tokio::test]
async fn the_lock_excludes_in_every_mode() {
    for mode in [
        LockMode::Auto,
        LockMode::ConditionalCreate,
        LockMode::CreateThenList,
    ] {
        let bucket = Arc::new(InMemory::new());
        let a = ObjectStoreAdapter::new(bucket.clone(), "m")
            .unwrap()
            .with_lock_mode(mode);
        let b = ObjectStoreAdapter::new(bucket, "m")
            .unwrap()
            .with_lock_mode(mode);
        common::lock_excludes(&a, &b, ".sstream-mirror/lock").await;
    }
    // The two ways exclude each other too (a process configured otherwise).
    let bucket = Arc::new(InMemory::new());
    let cond = ObjectStoreAdapter::new(bucket.clone(), "m")
        .unwrap()
        .with_lock_mode(LockMode::ConditionalCreate);
    let list = ObjectStoreAdapter::new(bucket, "m")
        .unwrap()
        .with_lock_mode(LockMode::CreateThenList);
    common::lock_excludes(&cond, &list, "lock").await;
    common::lock_excludes(&list, &cond, "lock").await;
}

/// An S3 endpoint on a port where nothing listens: the error names the object (by the
/// store's URL) and the endpoint URL, and says what happened.
#[tokio::test]
async fn a_down_endpoint_names_the_url() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let options = OpenOptions {
        config: vec![
            ("aws_endpoint".into(), endpoint.clone()),
            ("aws_allow_http".into(), "true".into()),
            ("aws_region".into(), "RegionOne".into()),
            ("aws_access_key_id".into(), "key".into()),
            ("aws_secret_access_key".into(), "secret".into()),
            ("aws_virtual_hosted_style_request".into(), "false".into()),
        ],
        retry: RetryConfig {
            max_retries: 1,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
        },
        ..OpenOptions::default()
    };
    let store = open_url_with("s3://bucket/prefix", &options).expect("open");
    let started = std::time::Instant::now();
    let err = store
        .get_bytes("streams/v1/index.json")
        .await
        .expect_err("down");
    assert!(started.elapsed() < Duration::from_secs(30));
    let Error::Service(inner) = &err else {
        panic!("a service error: {err:?}")
    };
    let ours = inner
        .downcast_ref::<ObjectStoreError>()
        .expect("an ObjectStoreError");
    assert!(matches!(ours.inner(), object_store::Error::Generic { .. }));
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        text.push_str("\n  caused by: ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    println!("{text}");
    assert!(
        text.starts_with(
            "get s3://bucket/prefix/streams/v1/index.json: no answer from the endpoint"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("{endpoint}/bucket/prefix/streams/v1/index.json")),
        "names the endpoint URL: {text}"
    );
}
