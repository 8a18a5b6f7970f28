//! Helpers shared by the in-memory and the test bed tests.
#![allow(dead_code)]

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use object_store_target::ObjectStoreAdapter;
use simplestreams_mirror::{
    ByteStream, Error, GetOptions, GetResult, Mirror, PutOptions, Store, StoreExt, StoreSource,
    SyncOptions,
};

/// `len` bytes of a pattern that differs from part to part (so that parts put out of order
/// would show).
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i / 4096) as u8) ^ (i as u8).wrapping_mul(31))
        .collect()
}

/// `data` as a body of 1 MiB chunks (the size the engine sends is of that order).
pub fn chunked(data: &[u8]) -> ByteStream {
    let chunks: Vec<Result<Bytes, Error>> = data
        .chunks(1 << 20)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(chunks).boxed()
}

/// `good` bytes in 1 MiB chunks, then an error.
pub fn failing_after(good: usize) -> ByteStream {
    let data = pattern(good);
    chunked(&data)
        .chain(stream::once(async {
            Err(Error::Aborted("verification failed".into()))
        }))
        .boxed()
}

/// Puts `len` bytes (several parts when `len` exceeds the part size) and reads them back:
/// whole, from an offset (inside the second part when there is one), and from the end.
pub async fn large_put_round_trips(store: &ObjectStoreAdapter, path: &str, len: usize) {
    let data = pattern(len);
    let meta = store
        .put(path, chunked(&data), PutOptions::default())
        .await
        .expect("large put");
    assert_eq!(meta.size, Some(len as u64));
    let head = store.head(path).await.expect("head").expect("present");
    assert_eq!(head.size, Some(len as u64));
    assert_eq!(store.get_bytes(path).await.expect("get"), &data[..]);
    // Inside the second part when there is one.
    let offset = if len > store.part_size() + 12_345 {
        store.part_size() + 12_345
    } else {
        len / 2
    };
    match store
        .get(
            path,
            GetOptions {
                offset: Some(offset as u64),
                ..GetOptions::default()
            },
        )
        .await
        .expect("get from an offset")
    {
        GetResult::Found { meta, body } => {
            assert_eq!(meta.size, Some(len as u64), "size is the whole object's");
            let rest = simplestreams_mirror::collect(body).await.expect("body");
            assert_eq!(&rest[..], &data[offset..]);
        }
        GetResult::NotModified => panic!("not modified without a condition"),
    }
    match store
        .get(
            path,
            GetOptions {
                offset: Some(len as u64),
                ..GetOptions::default()
            },
        )
        .await
        .expect("get from the end")
    {
        GetResult::Found { body, .. } => {
            assert!(simplestreams_mirror::collect(body)
                .await
                .expect("body")
                .is_empty());
        }
        GetResult::NotModified => panic!("not modified without a condition"),
    }
    store.delete(path).await.expect("delete");
}

/// A body failing after more than one part: the put fails with the body's error, nothing is
/// published, and an object that was there stays as it was.
pub async fn failing_large_put_leaves_nothing(store: &ObjectStoreAdapter, path: &str) {
    let good = store.part_size() + (1 << 20);
    let err = store
        .put(path, failing_after(good), PutOptions::default())
        .await
        .expect_err("a failing body fails the put");
    assert!(
        matches!(err, Error::Aborted(_)),
        "the body's own error: {err}"
    );
    assert!(
        store.head(path).await.expect("head").is_none(),
        "nothing published"
    );

    store
        .put_bytes(path, Bytes::from_static(b"before"))
        .await
        .expect("small put");
    assert!(store
        .put(path, failing_after(good), PutOptions::default())
        .await
        .is_err());
    assert_eq!(
        store.get_bytes(path).await.expect("get"),
        "before",
        "the previous object stays"
    );
    store.delete(path).await.expect("delete");
}

/// The doc example's stream, mirrored into `store`, then mirrored again (nothing to do).
pub async fn mirror_into(store: &ObjectStoreAdapter) {
    let upstream = simplestreams_mirror::InMemory::new();
    upstream
        .put_bytes(
            "streams/v1/index.json",
            r#"{"format": "index:1.0", "index": {
              "c": {"format": "products:1.0", "path": "streams/v1/c.json"}}}"#
                .into(),
        )
        .await
        .unwrap();
    upstream
        .put_bytes(
            "streams/v1/c.json",
            r#"{"format": "products:1.0", "content_id": "c",
              "products": {"p": {"arch": "amd64", "versions": {"1": {"items": {"i": {
              "path": "f/i.txt", "size": 5, "md5": "5d41402abc4b2a76b9719d911017c592"}}}}}}}"#
                .into(),
        )
        .await
        .unwrap();
    upstream.put_bytes("f/i.txt", "hello".into()).await.unwrap();
    let source = std::sync::Arc::new(StoreSource::new(std::sync::Arc::new(upstream)));
    let report = Mirror::to_store(
        source.clone(),
        std::sync::Arc::new(store.clone()),
        SyncOptions::default(),
    )
    .run()
    .await
    .expect("mirror");
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.downloaded, 1);
    assert_eq!(store.get_bytes("f/i.txt").await.unwrap(), "hello");
    let again = Mirror::to_store(
        source,
        std::sync::Arc::new(store.clone()),
        SyncOptions::default(),
    )
    .run()
    .await
    .expect("mirror again");
    assert!(again.is_success());
    assert_eq!(again.downloaded, 0, "a second run has nothing to do");
    for object in store.list("").await.expect("list") {
        store.delete(&object.path).await.expect("delete");
    }
}

/// Two handles (as two processes would have) on one lock: one gets it, the other is refused
/// with a message naming the holder and how to break the lock; release, break_lock.
pub async fn lock_excludes(a: &ObjectStoreAdapter, b: &ObjectStoreAdapter, name: &str) {
    let held = a.lock(name).await.expect("lock");
    match b.lock(name).await {
        Err(Error::Locked { message, .. }) => {
            assert!(message.contains("\"pid\""), "names the holder: {message}");
            assert!(message.contains("break"), "says how to break it: {message}");
        }
        other => panic!("a held lock is refused: {other:?}"),
    }
    held.release().await;
    let held = b.lock(name).await.expect("lock after release");
    // Its holder dies without releasing: the lock stays until broken.
    std::mem::forget(held);
    assert!(matches!(a.lock(name).await, Err(Error::Locked { .. })));
    assert!(a.break_lock(name).await.expect("break") >= 1);
    a.lock(name)
        .await
        .expect("lock after break")
        .release()
        .await;
    assert_eq!(a.break_lock(name).await.expect("break"), 0, "released");
}
