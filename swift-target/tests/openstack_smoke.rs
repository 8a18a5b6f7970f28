//! Issue 4's smoke test of the OpenStack test bed, through our own clients: a token and its
//! catalog, a Glance image created, uploaded, downloaded and deleted, a Swift object put, read
//! and deleted, and 401s for a bad token. Needs the test bed's `OS_*` environment
//! (`scripts/test` starts it and sources its openrc).

use bytes::Bytes;
use futures::stream;
use glance_target::{GlanceClient, NewImage};
use md5::Md5;
use sha2::{Digest, Sha256};
use swift_target::{CloudConfig, Error, PutOptions, Session, SwiftClient};

const NEEDS: &str = "needs the OpenStack test bed (scripts/test runs it)";

fn session() -> Session {
    Session::from_env().unwrap_or_else(|e| panic!("{e}: {NEEDS}"))
}

/// Random test data: 3 MiB, so that it crosses several chunks and buffers.
fn data() -> Bytes {
    use rand::RngCore;
    let mut v = vec![0u8; 3 << 20];
    rand::thread_rng().fill_bytes(&mut v);
    Bytes::from(v)
}

fn sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), rand::random::<u32>())
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn token_and_catalog() {
    let session = session();
    let token = session.token().await.expect("token");
    assert!(!token.value().is_empty());
    assert!(
        token.project_id.is_some(),
        "the openrc scopes the token to a project"
    );
    assert!(token.expires_at.is_some());
    let image = session
        .endpoint("image", None)
        .await
        .expect("image endpoint");
    let store = session
        .endpoint("object-store", None)
        .await
        .expect("object-store endpoint");
    assert!(image.starts_with("http://127.0.0.1:"), "{image}");
    // Swift's account URL carries the project id.
    let project = token.project_id.clone().unwrap_or_default();
    assert!(store.ends_with(&format!("/v1/AUTH_{project}")), "{store}");
    let regions = session.regions("image").await.expect("regions");
    assert_eq!(
        Some(regions.as_slice()),
        session
            .config()
            .region_name
            .as_ref()
            .map(std::slice::from_ref)
    );
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn glance_create_upload_download_delete() {
    let session = session();
    let glance = GlanceClient::new(&session).await.expect("glance client");
    let name = unique("smoke");
    let image = glance
        .create(&NewImage::new(&name, "raw", "bare").with_property("smoke_test", &name))
        .await
        .expect("create");
    assert_eq!(image.status, "queued");
    assert_eq!(image.property("smoke_test"), Some(name.as_str()));

    let body = data();
    // Streamed in 64 KiB chunks, as a download being passed through would be.
    let chunks: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(64 << 10)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    glance
        .upload(&image.id, stream::iter(chunks), Some(body.len() as u64))
        .await
        .expect("upload");

    let got = glance.get(&image.id).await.expect("get");
    assert_eq!(got.status, "active");
    assert_eq!(got.size, Some(body.len() as u64));
    assert_eq!(
        got.checksum.as_deref(),
        Some(hex::encode(md5(&body)).as_str())
    );

    let download = glance.download(&image.id).await.expect("download");
    assert_eq!(download.size, Some(body.len() as u64));
    let bytes = download.bytes().await.expect("download body");
    assert_eq!(sha256(&bytes), sha256(&body));

    glance.delete(&image.id).await.expect("delete");
    let err = glance
        .get(&image.id)
        .await
        .expect_err("deleted image is gone");
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains(&image.id),
        "the error names the URL: {err}"
    );
}

fn md5(b: &[u8]) -> [u8; 16] {
    Md5::digest(b).into()
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn swift_put_get_list_delete() {
    let session = session();
    let swift = SwiftClient::new(&session).await.expect("swift client");
    let container = unique("smoke");
    swift
        .create_container(&container)
        .await
        .expect("create container");
    let body = data();
    let mut opts = PutOptions::default();
    opts.metadata.insert("color".into(), "blue".into());
    let etag = swift
        .put_object(&container, "a/b c.bin", body.clone(), &opts)
        .await
        .expect("put");
    assert_eq!(etag.as_deref(), Some(hex::encode(md5(&body)).as_str()));

    let listed = swift
        .list_objects(&container, Some("a/"))
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "a/b c.bin");
    assert_eq!(listed[0].bytes, body.len() as u64);

    let got = swift
        .get_object(&container, "a/b c.bin")
        .await
        .expect("get");
    assert_eq!(
        got.meta.metadata.get("color").map(String::as_str),
        Some("blue")
    );
    assert_eq!(sha256(&got.bytes().await.expect("get body")), sha256(&body));

    // A container with an object in it cannot go.
    let err = swift
        .delete_container(&container)
        .await
        .expect_err("not empty");
    assert!(matches!(err, Error::Conflict { .. }), "{err}");

    swift
        .delete_object(&container, "a/b c.bin")
        .await
        .expect("delete object");
    let err = swift
        .head_object(&container, "a/b c.bin")
        .await
        .expect_err("gone");
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    swift
        .delete_container(&container)
        .await
        .expect("delete container");
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn bad_token_is_a_401_from_each_service() {
    let good = session();
    let glance_url = good.endpoint("image", None).await.expect("image endpoint");
    let swift_url = good
        .endpoint("object-store", None)
        .await
        .expect("object-store endpoint");
    let auth_url = good.config().auth_url.clone();
    let bad = Session::new(CloudConfig::token(&auth_url, "not-a-valid-token")).expect("session");

    // Keystone refuses to validate it.
    let err = bad.token().await.expect_err("keystone refuses the token");
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("/v3/auth/tokens"), "{err}");

    // Glance and Swift refuse it too, and the error names their URL.
    let err = GlanceClient::with_endpoint(&bad, &glance_url)
        .get("00000000-0000-0000-0000-000000000000")
        .await
        .expect_err("glance");
    assert!(
        matches!(err, Error::Unauthorized { ref url, .. } if url.starts_with(&glance_url)),
        "{err}"
    );
    let err = SwiftClient::with_endpoint(&bad, &swift_url)
        .list_containers(None)
        .await
        .expect_err("swift");
    assert!(
        matches!(err, Error::Unauthorized { ref url, .. } if url.starts_with(&swift_url)),
        "{err}"
    );
}
