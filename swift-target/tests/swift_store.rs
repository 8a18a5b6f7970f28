//! [`SwiftStore`] against the real Swift of the test bed (`scripts/test` starts it and sources
//! its openrc): the store conformance suite, segmented uploads, failures that leave nothing,
//! the lock, and the private container.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use simplestreams_mirror::testkit::{self, TargetCapabilities};
use simplestreams_mirror::{
    byte_stream, ByteStream, Error, PutOptions, Store, StoreExt, StoreTarget,
};
use swift_target::{Session, SwiftClient, SwiftStore, SwiftStoreOptions};

const NEEDS: &str = "needs the OpenStack test bed (scripts/test runs it)";

async fn client() -> SwiftClient {
    let session = Session::from_env().unwrap_or_else(|e| panic!("{e}: {NEEDS}"));
    SwiftClient::new(&session)
        .await
        .unwrap_or_else(|e| panic!("{e}: {NEEDS}"))
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), rand::random::<u32>())
}

/// A store in a fresh container, with small segments so that tests see several.
async fn store(segment_size: u64) -> SwiftStore {
    let options = SwiftStoreOptions {
        segment_size,
        ..SwiftStoreOptions::default()
    };
    SwiftStore::open(client().await, &unique("store"), "some/prefix", options)
        .await
        .expect("open store")
}

/// Every object of a container, names only.
async fn names(client: &SwiftClient, container: &str) -> Vec<String> {
    client
        .list_objects(container, None)
        .await
        .expect("list")
        .into_iter()
        .map(|o| o.name)
        .collect()
}

fn container_of(store: &SwiftStore) -> String {
    // swift://CONTAINER/PREFIX/
    let url = store.to_string();
    let rest = url.strip_prefix("swift://").expect("swift url");
    rest.split('/').next().expect("container").to_string()
}

fn content(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// A body in chunks of `chunk` bytes, failing at the end when `fail` is set.
fn body(data: &[u8], chunk: usize, fail: bool) -> ByteStream {
    let mut parts: Vec<Result<Bytes, Error>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    if fail {
        parts.push(Err(Error::Aborted("checksum mismatch".into())));
    }
    stream::iter(parts).boxed()
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn swift_store_conforms() {
    let store = store(1 << 20).await;
    testkit::store_conformance(&store).await;
    testkit::target_conformance(
        &StoreTarget::new(Arc::new(store.clone())),
        TargetCapabilities::MIRROR,
    )
    .await;
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn large_objects_are_segmented_whole_and_replace_cleanly() {
    let store = store(100_000).await;
    let container = container_of(&store);
    let segments = format!("{container}_segments");
    let data = content(345_678);
    store
        .put(
            "big/image.img",
            body(&data, 7_777, false),
            PutOptions::default(),
        )
        .await
        .expect("put");
    assert_eq!(store.get_bytes("big/image.img").await.expect("get"), data);
    let meta = store
        .head("big/image.img")
        .await
        .expect("head")
        .expect("present");
    assert_eq!(meta.size, Some(data.len() as u64));
    let segs = names(store.client(), &segments).await;
    assert_eq!(
        segs.len(),
        4,
        "345,678 bytes in segments of 100,000: {segs:?}"
    );
    assert!(segs
        .iter()
        .all(|s| s.starts_with("some/prefix/big/image.img/")));
    assert_eq!(
        names(store.client(), &container).await,
        ["some/prefix/big/image.img"],
        "segments never appear in the published container"
    );

    // Replaced by another large object: the old segments go, the new ones stay.
    let other = content(250_000).into_iter().rev().collect::<Vec<u8>>();
    store
        .put(
            "big/image.img",
            body(&other, 65_536, false),
            PutOptions::default(),
        )
        .await
        .expect("replace");
    assert_eq!(store.get_bytes("big/image.img").await.expect("get"), other);
    assert_eq!(names(store.client(), &segments).await.len(), 3);

    // A range read across a segment boundary.
    let got = match store
        .get(
            "big/image.img",
            simplestreams_mirror::GetOptions {
                offset: Some(99_990),
                ..Default::default()
            },
        )
        .await
        .expect("get")
    {
        simplestreams_mirror::GetResult::Found { body, .. } => {
            simplestreams_mirror::collect(body).await.expect("body")
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(got, &other[99_990..]);

    // Deleting it deletes its segments.
    store.delete("big/image.img").await.expect("delete");
    assert!(names(store.client(), &segments).await.is_empty());
    assert!(names(store.client(), &container).await.is_empty());
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn a_failed_large_upload_leaves_neither_manifest_nor_segments_and_keeps_the_old_object() {
    let store = store(50_000).await;
    let container = container_of(&store);
    let segments = format!("{container}_segments");
    let old = content(120_000);
    store
        .put("f.img", body(&old, 10_000, false), PutOptions::default())
        .await
        .expect("first version");
    let kept = names(store.client(), &segments).await;

    let err = store
        .put(
            "f.img",
            body(&content(180_000), 9_000, true),
            PutOptions::default(),
        )
        .await
        .expect_err("a failing body fails the put");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert_eq!(
        store.get_bytes("f.img").await.expect("get"),
        old,
        "old object intact"
    );
    assert_eq!(
        names(store.client(), &segments).await,
        kept,
        "only the old object's segments remain"
    );

    let never = store
        .put(
            "never.img",
            body(&content(130_000), 10_000, true),
            PutOptions::default(),
        )
        .await;
    assert!(never.is_err());
    assert!(store.head("never.img").await.expect("head").is_none());
    assert_eq!(names(store.client(), &segments).await, kept);
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn streamed_segments_make_whole_objects_and_a_failed_upload_leaves_none() {
    // Segments beyond what is held in memory are streamed; objects up to HELD_OBJECT_MAX are
    // one PUT even then.
    let segment = swift_target::HELD_SEGMENT_MAX + 1;
    let store = store(segment).await;
    testkit::store_conformance(&store).await;
    let container = container_of(&store);
    let segments = format!("{container}_segments");
    let len = 2 * segment as usize + 12_345;
    let data = content(len);
    store
        .put("big.img", body(&data, 65_536, false), PutOptions::default())
        .await
        .expect("put");
    assert_eq!(store.get_bytes("big.img").await.expect("get"), data);
    let first = names(store.client(), &segments).await;
    assert_eq!(first.len(), 3, "three segments: {first:?}");
    let small = content(swift_target::HELD_OBJECT_MAX);
    store
        .put(
            "small.img",
            body(&small, 65_536, false),
            PutOptions::default(),
        )
        .await
        .expect("small put");
    assert_eq!(names(store.client(), &segments).await, first, "one PUT");

    // A body failing at its end, in its last segment: no manifest, none of its segments
    // left, the old object intact.
    let other: Vec<u8> = data.iter().rev().copied().collect();
    let err = store
        .put("big.img", body(&other, 65_536, true), PutOptions::default())
        .await
        .expect_err("a failing body fails the put");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert_eq!(store.get_bytes("big.img").await.expect("get"), data);
    assert_eq!(names(store.client(), &segments).await, first);

    // Replaced: the old segments go.
    store
        .put(
            "big.img",
            body(&other, 65_536, false),
            PutOptions::default(),
        )
        .await
        .expect("replace");
    assert_eq!(store.get_bytes("big.img").await.expect("get"), other);
    let now = names(store.client(), &segments).await;
    assert_eq!(now.len(), 3);
    assert!(now.iter().all(|n| !first.contains(n)), "{now:?}");
    store.delete("big.img").await.expect("delete");
    assert!(names(store.client(), &segments).await.is_empty());
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn the_lock_and_the_state_live_in_the_private_container() {
    let store = store(1 << 20).await;
    let container = container_of(&store);
    let lock = store.lock(".sstream-mirror/lock").await.expect("lock");
    let err = store.lock(".sstream-mirror/lock").await.expect_err("held");
    let text = err.to_string();
    assert!(matches!(err, Error::Locked { .. }), "{text}");
    assert!(
        text.contains("sstream unlock swift://"),
        "says how to break it: {text}"
    );
    assert!(text.contains("\"pid\""), "names the holder: {text}");
    store
        .put(
            ".sstream-mirror/state.json",
            byte_stream("{}"),
            PutOptions::default(),
        )
        .await
        .expect("state");
    assert!(
        names(store.client(), &container).await.is_empty(),
        "nothing private in the published container"
    );
    assert_eq!(
        names(store.client(), &format!("{container}_segments")).await,
        [
            "some/prefix/.sstream-mirror/lock",
            "some/prefix/.sstream-mirror/state.json"
        ]
    );
    lock.release().await;
    store
        .lock(".sstream-mirror/lock")
        .await
        .expect("free again")
        .release()
        .await;
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn a_public_container_is_readable_without_credentials() {
    let options = SwiftStoreOptions {
        public_read: true,
        ..SwiftStoreOptions::default()
    };
    let store = SwiftStore::open(client().await, &unique("public"), "data", options)
        .await
        .expect("open");
    store
        .put_bytes("streams/v1/index.json", Bytes::from_static(b"{}"))
        .await
        .expect("put");
    let url = store.public_url("streams/v1/index.json");
    let resp = reqwest::get(&url).await.expect("anonymous GET");
    assert_eq!(resp.status(), 200, "{url}");
    assert_eq!(&resp.bytes().await.expect("body")[..], b"{}");
    let private = url.replace(
        &container_of(&store),
        &format!("{}_segments", container_of(&store)),
    );
    assert_ne!(reqwest::get(&private).await.expect("GET").status(), 200);
}
