//! Conformance suites every [`Store`] and [`Target`] backend runs (feature `testkit`).
//!
//! Each function panics with a message naming the broken rule. Backends call them from their own
//! tests:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use simplestreams_mirror::{testkit, InMemory, StoreTarget};
//! use simplestreams_mirror::testkit::TargetCapabilities;
//! testkit::store_conformance(&InMemory::new()).await;
//! testkit::target_conformance(
//!     &StoreTarget::new(Arc::new(InMemory::new())),
//!     TargetCapabilities::MIRROR,
//! ).await;
//! # });
//! ```

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use indexmap::IndexMap;
use simplestreams_core::Expected;

use crate::error::Error;
use crate::store::{byte_stream, ByteStream, GetOptions, GetResult, PutOptions, Store};
use crate::target::{ContentState, HeldItem, ItemKey, NewItem, State, Target};

/// A body that yields `good` then fails: what the engine sends when verification fails.
fn failing_body(good: &'static [u8]) -> ByteStream {
    stream::iter(vec![
        Ok(Bytes::from_static(good)),
        Err(Error::Aborted("verification failed".into())),
    ])
    .boxed()
}

async fn read(store: &dyn Store, path: &str, options: GetOptions) -> Option<Bytes> {
    match store.get(path, options).await {
        Ok(GetResult::Found { body, .. }) => Some(crate::store::collect(body).await.expect("body")),
        Ok(GetResult::NotModified) => panic!("{path}: NotModified without a condition"),
        Err(e) if e.is_not_found() => None,
        Err(e) => panic!("{path}: {e}"),
    }
}

/// Checks the [`Store`] contract: atomic streamed puts, ranges, conditional gets, list, delete,
/// lock, path safety.
pub async fn store_conformance(store: &dyn Store) {
    let path = "conformance/dir/object.bin";
    assert!(
        read(store, path, GetOptions::default()).await.is_none(),
        "a missing object is NotFound"
    );
    assert!(
        store.head(path).await.expect("head").is_none(),
        "head of a missing object is None"
    );

    let chunks = stream::iter(vec![
        Ok(Bytes::from_static(b"hello ")),
        Ok(Bytes::from_static(b"world")),
    ])
    .boxed();
    store
        .put(path, chunks, PutOptions::durable())
        .await
        .expect("put");
    assert_eq!(
        read(store, path, GetOptions::default()).await.as_deref(),
        Some(&b"hello world"[..])
    );
    let meta = store
        .head(path)
        .await
        .expect("head")
        .expect("present after put");
    assert_eq!(meta.size, Some(11), "head gives the size");

    let from6 = GetOptions {
        offset: Some(6),
        ..GetOptions::default()
    };
    assert_eq!(
        read(store, path, from6).await.as_deref(),
        Some(&b"world"[..]),
        "get from an offset"
    );

    if meta.validators.etag.is_some() {
        let cond = GetOptions {
            if_not_modified: Some(meta.validators.clone()),
            ..GetOptions::default()
        };
        assert!(
            matches!(
                store.get(path, cond).await.expect("get"),
                GetResult::NotModified
            ),
            "a get with matching validators is NotModified"
        );
    }

    // A body failing part-way publishes nothing and leaves the previous object intact.
    assert!(
        store
            .put(path, failing_body(b"partial"), PutOptions::default())
            .await
            .is_err(),
        "a failed body fails the put"
    );
    assert_eq!(
        read(store, path, GetOptions::default()).await.as_deref(),
        Some(&b"hello world"[..]),
        "a failed put leaves the old object"
    );
    let other = "conformance/dir/never.bin";
    assert!(store
        .put(other, failing_body(b"partial"), PutOptions::default())
        .await
        .is_err());
    assert!(
        store.head(other).await.expect("head").is_none(),
        "a failed put creates nothing"
    );

    // The same with the size (and, for a store checking it, the md5) known in advance, as the
    // engine puts items: a store may then send one request of that length, and must still
    // publish nothing when the body fails at its very end (the engine's checksums fail there).
    let known = |body: &[u8]| PutOptions {
        size: Some(body.len() as u64),
        md5: store
            .verifies_md5(Some(body.len() as u64))
            .then(|| md5::md5_hex(body)),
        ..PutOptions::default()
    };
    assert!(
        store
            .put(path, failing_body(b"partial"), known(b"partial"))
            .await
            .is_err(),
        "a body of the announced size failing at its end fails the put"
    );
    assert_eq!(
        read(store, path, GetOptions::default()).await.as_deref(),
        Some(&b"hello world"[..]),
        "a failed put of a known size leaves the old object"
    );
    if store.verifies_md5(Some(5)) {
        let wrong = PutOptions {
            md5: Some(md5::md5_hex(b"something else")),
            ..known(b"v1bis")
        };
        assert!(
            store.put(path, byte_stream("v1bis"), wrong).await.is_err(),
            "a store checking the md5 refuses bytes that do not have it"
        );
        assert_eq!(
            read(store, path, GetOptions::default()).await.as_deref(),
            Some(&b"hello world"[..]),
            "a put refused for its md5 leaves the old object"
        );
    }
    store
        .put(path, byte_stream("v1bis"), known(b"v1bis"))
        .await
        .expect("a put of a known size and md5");
    assert_eq!(
        read(store, path, GetOptions::default()).await.as_deref(),
        Some(&b"v1bis"[..])
    );

    store
        .put(path, byte_stream("v2"), PutOptions::default())
        .await
        .expect("replace");
    if let Some(old) = &meta.validators.etag {
        let now = store.head(path).await.expect("head").expect("present");
        assert_ne!(
            now.validators.etag.as_ref(),
            Some(old),
            "replacing an object changes its ETag"
        );
    }

    let listed: Vec<String> = store
        .list("conformance/")
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.path)
        .collect();
    assert_eq!(
        listed,
        vec![path.to_string()],
        "list shows objects, not temporary names"
    );

    store.delete(path).await.expect("delete");
    assert!(
        read(store, path, GetOptions::default()).await.is_none(),
        "deleted"
    );
    assert!(
        store
            .delete(path)
            .await
            .expect_err("second delete")
            .is_not_found(),
        "deleting a missing object is NotFound"
    );

    for bad in ["../escape", "/abs", "a/../../b"] {
        assert!(
            store
                .put(bad, byte_stream("x"), PutOptions::default())
                .await
                .is_err(),
            "{bad:?} must be refused"
        );
    }

    let lock = store.lock("conformance.lock").await.expect("first lock");
    assert!(
        matches!(
            store.lock("conformance.lock").await,
            Err(Error::Locked { .. })
        ),
        "a held lock is refused"
    );
    lock.release().await;
    store
        .lock("conformance.lock")
        .await
        .expect("lock again after release")
        .release()
        .await;
}

/// An item as the engine hands it to a target: with its flattened fields (the names of its
/// product, version and item, its path, size and md5), which targets that describe items with
/// properties (an image service) need.
fn item(path: &str, content: &[u8]) -> NewItem {
    let key = ItemKey {
        content_id: "com.example:conformance".into(),
        product: "p".into(),
        version: "1".into(),
        item: path.rsplit('/').next().unwrap_or(path).into(),
    };
    let expected = Expected {
        size: Some(content.len() as u64),
        md5: Some(md5::md5_hex(content)),
        ..Expected::default()
    };
    let fields: IndexMap<String, String> = [
        ("product_name", key.product.clone()),
        ("version_name", key.version.clone()),
        ("item_name", key.item.clone()),
        ("path", path.to_string()),
        ("size", content.len().to_string()),
        ("md5", expected.md5.clone().unwrap_or_default()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    NewItem {
        key,
        path: Some(path.into()),
        expected,
        fields,
        decompress: None,
    }
}

/// MD5 through the core's verifier (no extra dependency).
mod md5 {
    use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};
    pub(super) fn md5_hex(content: &[u8]) -> String {
        let mut v = StreamVerifier::new("", Expected::default()).also_compute(ChecksumKind::Md5);
        v.update(content).expect("no expectation to fail");
        v.finish()
            .expect("no expectation to fail")
            .md5
            .unwrap_or_default()
    }
}

/// What a [`Target`] backend keeps, so that the suite checks only what applies to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetCapabilities {
    /// `save_state` stores what `load_state` returns (a mirror keeps its state). `false` for a
    /// target that reads what it holds from the service itself (Glance): its `load_state` must
    /// then show the items inserted, and only those.
    pub stores_state: bool,
}

impl TargetCapabilities {
    /// A mirror: items as files at their paths, the state stored.
    pub const MIRROR: TargetCapabilities = TargetCapabilities { stores_state: true };
    /// An image service: the state is what the service holds.
    pub const SERVICE: TargetCapabilities = TargetCapabilities {
        stores_state: false,
    };
}

/// The item `good` as the target holds it once inserted: from its state when the target reads
/// it from the service, else as the engine records it.
async fn held_of(
    target: &dyn Target,
    item: &NewItem,
    caps: TargetCapabilities,
) -> Option<HeldItem> {
    if caps.stores_state {
        return Some(item.held());
    }
    let state = target.load_state().await.expect("load");
    let k = &item.key;
    state
        .content
        .get(&k.content_id)
        .and_then(|c| c.items.get(&k.product))
        .and_then(|v| v.get(&k.version))
        .and_then(|i| i.get(&k.item))
        .cloned()
}

/// Checks the [`Target`] contract: verified inserts only (a failed one leaves nothing),
/// removal, the state, an exclusive lock.
pub async fn target_conformance(target: &dyn Target, caps: TargetCapabilities) {
    let empty = target.load_state().await.expect("load");
    assert!(
        empty.content.values().all(|c| c.items.is_empty()),
        "a new target holds nothing: {empty:?}"
    );

    let good = item("conformance/good.img", b"good bytes");
    assert!(
        !target.has_content(&good).await.expect("has_content"),
        "nothing before insert"
    );
    target
        .insert_item(&good, byte_stream(&b"good bytes"[..]))
        .await
        .expect("insert");
    assert!(
        target.has_content(&good).await.expect("has_content"),
        "present and verified after insert"
    );
    let held = held_of(target, &good, caps)
        .await
        .expect("the target holds the item inserted");

    let bad = item("conformance/bad.img", b"bad bytes");
    assert!(
        target
            .insert_item(&bad, failing_body(b"bad"))
            .await
            .is_err(),
        "a failing body fails the insert"
    );
    assert!(
        !target.has_content(&bad).await.expect("has_content"),
        "a failed insert leaves nothing"
    );
    assert!(
        held_of(target, &bad, caps).await.is_none() || caps.stores_state,
        "a failed insert is not held"
    );

    if caps.stores_state {
        let mut state = State::default();
        let mut cs = ContentState {
            path: "streams/v1/c.json".into(),
            ..ContentState::default()
        };
        cs.items
            .entry("p".into())
            .or_default()
            .entry("1".into())
            .or_default()
            .insert("good.img".into(), good.held());
        state.content.insert(good.key.content_id.clone(), cs);
        state.seen.insert(
            "http://h/streams/v1/index.json".into(),
            "Sun, 22 Nov 2026 00:00:00 +0000".into(),
        );
        target.save_state(&state).await.expect("save");
        assert_eq!(
            target.load_state().await.expect("load"),
            state,
            "state round-trips"
        );
    }

    target.remove_item(&good.key, &held).await.expect("remove");
    assert!(
        !target.has_content(&good).await.expect("has_content"),
        "removed"
    );
    target
        .remove_item(&good.key, &held)
        .await
        .expect("removing a removed item succeeds");

    let lock = target.lock().await.expect("lock");
    assert!(
        matches!(target.lock().await, Err(Error::Locked { .. })),
        "a second sync is refused while one runs"
    );
    lock.release().await;
    target
        .lock()
        .await
        .expect("lock after release")
        .release()
        .await;
}
