//! The adapter against a real S3 API: Swift's s3api on the OpenStack test bed
//! (`scripts/test` starts it and sources `scripts/openstack-testbed s3env`, which exports the
//! `AWS_*` variables and `OPENSTACK_TESTBED_S3_BUCKET`).

mod common;

use object_store::aws::AwsCredential;
use object_store::client::HttpRequest;
use object_store_target::{open_url, open_url_with, LockMode, ObjectStoreAdapter, OpenOptions};
use simplestreams_mirror::{testkit, Error, Store, StoreExt};

const NEEDS: &str = "needs the OpenStack test bed (scripts/test runs it)";

fn bucket() -> String {
    std::env::var("OPENSTACK_TESTBED_S3_BUCKET").unwrap_or_else(|_| {
        panic!("OPENSTACK_TESTBED_S3_BUCKET unset: source \"$(scripts/openstack-testbed s3env)\"; {NEEDS}")
    })
}

/// A prefix of its own for each test (they run in parallel, in one bucket).
fn unique_url(name: &str) -> String {
    format!(
        "s3://{}/{name}-{}-{:08x}",
        bucket(),
        std::process::id(),
        rand::random::<u32>()
    )
}

fn s3(name: &str) -> ObjectStoreAdapter {
    let url = unique_url(name);
    open_url_with(
        &url,
        &OpenOptions {
            part_size: object_store_target::MIN_PART_SIZE,
            ..OpenOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{url}: {e}; {NEEDS}"))
}

/// Multipart uploads in progress below `key` of the bucket (ListMultipartUploads, which
/// object_store does not offer), signed with the test bed's credential.
async fn uploads_in_progress(key: &str) -> String {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} unset; {NEEDS}"));
    let credential = AwsCredential {
        key_id: var("AWS_ACCESS_KEY_ID"),
        secret_key: var("AWS_SECRET_ACCESS_KEY"),
        token: None,
    };
    let region = var("AWS_REGION");
    let url = format!(
        "{}/{}?prefix={key}&uploads=",
        var("AWS_ENDPOINT_URL").trim_end_matches('/'),
        bucket()
    );
    let mut request = HttpRequest::new(object_store::client::HttpRequestBody::empty());
    *request.uri_mut() = url.parse().expect("uri");
    object_store::aws::AwsAuthorizer::new(&credential, "s3", &region)
        .try_authorize(&mut request, None)
        .expect("sign");
    let response = reqwest::Client::new()
        .get(&url)
        .headers(request.headers().clone())
        .send()
        .await
        .expect("list uploads");
    assert!(response.status().is_success(), "{response:?}");
    response.text().await.expect("body")
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn conforms_on_s3api() {
    testkit::store_conformance(&s3("conformance")).await;
    testkit::store_conformance(&s3("conformance").with_lock_mode(LockMode::CreateThenList)).await;
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn open_url_reads_the_aws_variables() {
    let url = unique_url("open-url");
    let store = open_url(&url).unwrap_or_else(|e| panic!("{e}; {NEEDS}"));
    store
        .put_bytes("a/b.txt", "hello".into())
        .await
        .expect("put");
    assert_eq!(store.get_bytes("a/b.txt").await.expect("get"), "hello");
    let listed = store.list("a/").await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].path, "a/b.txt");
    assert_eq!(listed[0].size, Some(5));
    store.delete("a/b.txt").await.expect("delete");
    assert!(store
        .delete("a/b.txt")
        .await
        .expect_err("again")
        .is_not_found());
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn large_puts_are_multipart_on_s3api() {
    let store = s3("large");
    let len = 2 * store.part_size() + 4321;
    // A multipart object's ETag is "<md5 of the parts' md5s>-<parts>" (s3api as AWS).
    let data = common::pattern(len);
    let meta = store
        .put(
            "images/etag.img",
            common::chunked(&data),
            Default::default(),
        )
        .await
        .expect("put");
    let etag = meta.validators.etag.expect("etag");
    assert!(etag.ends_with("-3\""), "three parts: {etag}");
    store.delete("images/etag.img").await.expect("delete");
    common::large_put_round_trips(&store, "images/disk.img", len).await;
}

fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(data))
}

/// What the engine gives for an item whose size and md5 the stream publishes.
fn known(data: &[u8], md5: String) -> simplestreams_mirror::PutOptions {
    simplestreams_mirror::PutOptions {
        size: Some(data.len() as u64),
        md5: Some(md5),
        ..Default::default()
    }
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn an_object_of_known_md5_is_one_streamed_put_s3api_checks() {
    let store = s3("streamed");
    let len = 2 * store.part_size() + 4321;
    let data = common::pattern(len);
    assert!(
        store.verifies_md5(Some(len as u64)),
        "S3 presigns: it checks the md5"
    );
    let meta = store
        .put(
            "images/one.img",
            common::chunked(&data),
            known(&data, md5_hex(&data)),
        )
        .await
        .expect("streamed put");
    // One PUT, not multipart: the ETag is the object's own MD5.
    assert_eq!(
        meta.validators.etag.as_deref(),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
    assert_eq!(store.get_bytes("images/one.img").await.expect("get"), data);

    // Bytes that are not those of the md5 given: s3api refuses them (BadDigest), naming the
    // object; the object stored before stays.
    let err = store
        .put(
            "images/one.img",
            common::chunked(&data),
            known(&data, md5_hex(b"other bytes")),
        )
        .await
        .expect_err("a wrong md5 is refused");
    let msg = err.to_string();
    assert!(
        msg.contains("images/one.img") && msg.contains("BadDigest"),
        "{msg}"
    );
    assert_eq!(store.get_bytes("images/one.img").await.expect("get"), data);
    store.delete("images/one.img").await.expect("delete");
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn an_object_of_known_size_only_is_one_streamed_part_and_a_failed_one_leaves_nothing() {
    let store = s3("parts");
    let len = 2 * store.part_size() + 4321;
    let data = common::pattern(len);
    let size_only = simplestreams_mirror::PutOptions {
        size: Some(len as u64),
        ..Default::default()
    };
    let meta = store
        .put("images/big.img", common::chunked(&data), size_only.clone())
        .await
        .expect("put in streamed parts");
    // A multipart upload of one part (its ETag "<md5 of the part's md5>-1"), not three.
    let etag = meta.validators.etag.expect("etag");
    assert!(etag.ends_with("-1\""), "one streamed part: {etag}");
    assert_eq!(store.get_bytes("images/big.img").await.expect("get"), data);

    // A body failing at its end (the engine's checksums): the upload is aborted, the object
    // stored before stays, no upload is left in progress.
    let mut failing: Vec<simplestreams_mirror::Result<bytes::Bytes>> = data
        .chunks(65_536)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    failing.push(Err(Error::Aborted("sha256 mismatch".into())));
    let err = store
        .put(
            "images/big.img",
            futures::StreamExt::boxed(futures::stream::iter(failing)),
            size_only,
        )
        .await
        .expect_err("a failing body fails the put");
    assert!(err.to_string().contains("sha256 mismatch"), "{err}");
    assert_eq!(store.get_bytes("images/big.img").await.expect("get"), data);
    let key = format!("{}/images/big.img", store.prefix());
    let uploads = uploads_in_progress(&key).await;
    assert!(
        !uploads.contains("<UploadId>"),
        "the aborted upload's parts are gone: {uploads}"
    );
    store.delete("images/big.img").await.expect("delete");
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn a_failing_body_leaves_no_object_and_no_parts_on_s3api() {
    let store = s3("failing");
    common::failing_large_put_leaves_nothing(&store, "images/bad.img").await;
    let key = format!("{}/images/bad.img", store.prefix());
    let uploads = uploads_in_progress(&key).await;
    assert!(
        !uploads.contains("<UploadId>"),
        "the aborted upload's parts are gone: {uploads}"
    );
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn lists_past_a_page_on_s3api() {
    // The test bed's s3api answers at most 100 keys a page (max_bucket_listing).
    let store = s3("pages");
    let names: Vec<String> = (0..130).map(|i| format!("d/{i:04}")).collect();
    futures::future::try_join_all(names.iter().map(|n| store.put_bytes(n, "x".into())))
        .await
        .expect("puts");
    let mut listed: Vec<String> = store
        .list("d/")
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.path)
        .collect();
    listed.sort();
    assert_eq!(listed, names);
    futures::future::try_join_all(names.iter().map(|n| store.delete(n)))
        .await
        .expect("deletes");
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn mirrors_into_s3api() {
    common::mirror_into(&s3("mirror")).await;
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn locks_on_s3api_without_conditional_writes() {
    let url = unique_url("lock");
    let a = open_url(&url).expect("open");
    let b = open_url(&url).expect("open");
    common::lock_excludes(&a, &b, ".sstream-mirror/lock").await;

    // s3api refuses If-None-Match: * (501): a store told to rely on it fails the lock so.
    let strict = open_url_with(
        &url,
        &OpenOptions {
            lock_mode: LockMode::ConditionalCreate,
            ..OpenOptions::default()
        },
    )
    .expect("open");
    match strict.lock("strict.lock").await {
        Err(e @ Error::Service(_)) => {
            assert!(
                e.to_string().contains("not implemented by the server"),
                "{e}"
            )
        }
        other => panic!("refused as unsupported: {other:?}"),
    }
    assert!(strict.head("strict.lock").await.expect("head").is_none());
}
