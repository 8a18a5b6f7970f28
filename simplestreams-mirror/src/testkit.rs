//! Conformance suites every [`Store`] and [`Target`] backend runs (feature `testkit`).
//!
//! Each function panics with a message naming the broken rule. Backends call them from their own
//! tests:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use simplestreams_mirror::{testkit, InMemory, StoreTarget};
//! testkit::store_conformance(&InMemory::new()).await;
//! testkit::target_conformance(&StoreTarget::new(Arc::new(InMemory::new()))).await;
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
        .put(path, chunks, PutOptions { durable: true })
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
    drop(lock);
    store
        .lock("conformance.lock")
        .await
        .expect("lock again after release");
}

fn item(path: &str, content: &[u8]) -> NewItem {
    NewItem {
        key: ItemKey {
            content_id: "com.example:conformance".into(),
            product: "p".into(),
            version: "1".into(),
            item: path.rsplit('/').next().unwrap_or(path).into(),
        },
        path: Some(path.into()),
        expected: Expected {
            size: Some(content.len() as u64),
            md5: Some(md5::md5_hex(content)),
            ..Expected::default()
        },
        fields: IndexMap::new(),
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

/// Checks the [`Target`] contract: state round trip, verified inserts only, removal,
/// metadata publication, exclusive lock.
pub async fn target_conformance(target: &dyn Target) {
    assert_eq!(
        target.load_state().await.expect("load"),
        State::default(),
        "a new target has an empty state"
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
    target.save_state(&state).await.expect("save");
    assert_eq!(
        target.load_state().await.expect("load"),
        state,
        "state round-trips"
    );

    target
        .remove_item(&good.key, &good.held())
        .await
        .expect("remove");
    assert!(
        !target.has_content(&good).await.expect("has_content"),
        "removed"
    );
    target
        .remove_item(
            &good.key,
            &HeldItem {
                path: Some("conformance/good.img".into()),
                ..HeldItem::default()
            },
        )
        .await
        .expect("removing a removed item succeeds");

    target
        .publish_products("streams/v1/c.json", Bytes::from_static(b"{}"))
        .await
        .expect("publish products");
    target
        .publish_index("streams/v1/index.json", Bytes::from_static(b"{\"i\":1}"))
        .await
        .expect("publish index");
    assert_eq!(
        target
            .read_published("streams/v1/c.json")
            .await
            .expect("read")
            .as_deref(),
        Some(&b"{}"[..])
    );
    assert_eq!(
        target
            .read_published("streams/v1/index.json")
            .await
            .expect("read")
            .as_deref(),
        Some(&b"{\"i\":1}"[..])
    );
    assert!(target
        .read_published("streams/v1/none.json")
        .await
        .expect("read")
        .is_none());

    let lock = target.lock().await.expect("lock");
    assert!(
        matches!(target.lock().await, Err(Error::Locked { .. })),
        "a second sync is refused while one runs"
    );
    drop(lock);
    target.lock().await.expect("lock after release");
}
