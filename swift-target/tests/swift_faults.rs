//! [`SwiftStore`] and its session under Keystone and Swift faults, against a fake Keystone +
//! Swift scripted on the test server: every answer is scripted, in order, so each test is
//! deterministic. Wrong credentials, an expired token, a container not writable, a segment
//! answered 503 or 422, a segment whose connection drops without an answer, and a proxy that
//! lies about what it stored.
//!
//! Objects larger than the segment size (1000 bytes here) are Static Large Objects: segments
//! named `c_segments/p/obj/<random upload id>/<index>`, then the manifest. The store sends the
//! segments one after another, so one prefix route (`PUT .../c_segments/p/obj/*`) answers them
//! in a known order although their names are made up on the way.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use md5::{Digest, Md5};
use openstack_client::{ClientOptions, RetryConfig};
use serde_json::json;
use simplestreams_mirror::{byte_stream, ByteStream, PutOptions, Store};
use simplestreams_testutil::http_server::{Reply, RequestRecord, TestServer, HANG_UP};
use swift_target::{CloudConfig, Session, SwiftClient, SwiftStore, SwiftStoreOptions};

const TOKENS: &str = "POST /v3/auth/tokens";
/// The account of the catalog's `object-store` endpoint.
const ACCOUNT: &str = "/v1/AUTH_test";
/// The object every test writes: `obj` under the prefix `p` of the container `c`.
const OBJECT: &str = "/v1/AUTH_test/c/p/obj";
/// Where its segments go.
const SEGMENT_DIR: &str = "/v1/AUTH_test/c_segments/p/obj/";
const SEGMENT_PUTS: &str = "PUT /v1/AUTH_test/c_segments/p/obj/*";
const SEGMENT_DELETES: &str = "DELETE /v1/AUTH_test/c_segments/p/obj/*";
/// Listings of the segments container (the query, `?prefix=p/obj/`, is not part of a route).
const LISTING: &str = "GET /v1/AUTH_test/c_segments";
const SEGMENT_SIZE: usize = 1000;

const KEYSTONE_401: &str = r#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#;
const SWIFT_401: &str = "<html><h1>Unauthorized</h1><p>This server could not verify that you \
                         are authorized to access the document you requested.</p></html>";
const SWIFT_403: &str = "<html><h1>Forbidden</h1><p>Access was denied to this resource.</p></html>";
const SWIFT_422: &str =
    "<html><h1>Unprocessable Entity</h1><p>Unable to process the contained instructions</p></html>";
const SWIFT_503: &str = "<html><h1>Service Unavailable</h1><p>The server is currently \
                         unavailable. Please try again at a later time.</p></html>";

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// 2,500 bytes: three segments (1000, 1000 and 500 bytes) that all differ.
fn content() -> Vec<u8> {
    (0..2500).map(|i| (i * 31 % 251) as u8).collect()
}

fn segments(data: &[u8]) -> Vec<&[u8]> {
    data.chunks(SEGMENT_SIZE).collect()
}

/// Swift's answer to a PUT it stored: 201 with the MD5 of what it got as `Etag`.
fn stored(bytes: &[u8]) -> Reply {
    Reply::new(201, "").header("Etag", md5_hex(bytes))
}

fn options() -> SwiftStoreOptions {
    SwiftStoreOptions {
        segment_size: SEGMENT_SIZE as u64,
        public_read: false,
        // One segment at a time: the fake answers the PUTs in the order they arrive, and the
        // tests name which one fails (the test bed's tests run the default, several at once).
        segments_in_flight: 1,
        ..SwiftStoreOptions::default()
    }
}

/// Two retries after the first attempt, with backoffs of a millisecond or two.
fn fast() -> ClientOptions {
    ClientOptions {
        retry: RetryConfig {
            max_retries: 2,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        },
        ..ClientOptions::default()
    }
}

fn is_2xx(r: &RequestRecord) -> bool {
    (200..300).contains(&r.status)
}

/// The test server playing Keystone and Swift, and its base URL (no trailing `/`).
struct Fake {
    server: Arc<TestServer>,
    base: String,
}

impl Fake {
    fn new() -> Fake {
        let server = TestServer::builder().start();
        let base = server.url().trim_end_matches('/').to_owned();
        Fake {
            server: Arc::new(server),
            base,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A Keystone token answer valid for two hours, whose catalog points `object-store` at
    /// this server's account.
    fn token(&self, value: &str) -> Reply {
        let expires = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
        let body = json!({"token": {
            "expires_at": expires,
            "user": {"id": "u1", "name": "admin"},
            "project": {"id": "test", "name": "admin"},
            "roles": [{"id": "r", "name": "admin"}],
            "catalog": [{"type": "object-store", "name": "swift", "endpoints": [
                {"interface": "public", "region_id": "RegionOne", "url": self.url(ACCOUNT)}]}]
        }});
        Reply::new(201, body.to_string())
            .header("X-Subject-Token", value)
            .header("Content-Type", "application/json")
    }

    fn session(&self) -> Session {
        let config = CloudConfig::password(&self.base, "admin", "secret", "admin");
        Session::with_options(config, fast()).expect("session")
    }

    fn route(&self, route: &str, replies: Vec<Reply>) {
        self.server.route(route, replies);
    }

    fn requests(&self, route: &str) -> Vec<RequestRecord> {
        self.server.requests_for_route(route)
    }

    /// A session authenticated with token `t1` and the store `swift://c/p` opened on it (its
    /// two containers created).
    async fn store(&self) -> SwiftStore {
        self.store_with(options()).await
    }

    /// [`Fake::store`] with other options.
    async fn store_with(&self, options: SwiftStoreOptions) -> SwiftStore {
        self.route(TOKENS, vec![self.token("t1")]);
        self.route("PUT /v1/AUTH_test/c", vec![Reply::new(201, "")]);
        self.route("PUT /v1/AUTH_test/c_segments", vec![Reply::new(201, "")]);
        let client = SwiftClient::new(&self.session()).await.expect("client");
        SwiftStore::open(client, "c", "p", options)
            .await
            .expect("open")
    }

    /// Scripts the end of a successful large upload: the manifest stored, and the listing the
    /// store makes to remove older segments of the object (there are none).
    fn manifest_and_cleanup_succeed(&self) {
        self.route(
            &format!("PUT {OBJECT}"),
            vec![Reply::new(201, "").header("Etag", "\"0123456789abcdef0123456789abcdef\"")],
        );
        self.route(LISTING, vec![Reply::new(200, "[]")]);
    }
}

/// `data` as a body whose first segment comes alone; the rest comes only once that segment
/// was stored and the segments container's listing is scripted to show it, as Swift would
/// list it (its name holds the upload id, known only once it was sent).
fn body_listing_the_first_segment(fake: &Fake, data: &[u8]) -> ByteStream {
    let server = fake.server.clone();
    let first = Bytes::copy_from_slice(&data[..SEGMENT_SIZE]);
    let rest = Bytes::copy_from_slice(&data[SEGMENT_SIZE..]);
    let head = stream::once(async move { Ok(first) });
    let tail = stream::once(async move {
        let mut found = None;
        for _ in 0..5000 {
            found = server
                .requests_for_route(SEGMENT_PUTS)
                .into_iter()
                .find(is_2xx);
            if found.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let segment = found.expect("the first segment is stored before the rest of the body");
        let name = segment
            .path
            .strip_prefix("/v1/AUTH_test/c_segments/")
            .expect("a segment path");
        let listing = json!([{
            "name": name,
            "bytes": segment.body.len(),
            "hash": md5_hex(&segment.body),
            "content_type": "application/octet-stream",
            "last_modified": "2026-01-01T00:00:00.000000"
        }]);
        server.route(
            LISTING,
            vec![Reply::new(200, listing.to_string()).header("Content-Type", "application/json")],
        );
        Ok(rest)
    });
    head.chain(tail).boxed()
}

/// Every segment PUT carries its body's MD5 as `ETag` (so that Swift checks it), and all go
/// below one upload id of the object.
fn check_segment_puts(fake: &Fake) -> Vec<RequestRecord> {
    let puts = fake.requests(SEGMENT_PUTS);
    let upload_dir = |r: &RequestRecord| {
        let rest = r.path.strip_prefix(SEGMENT_DIR).expect("a segment path");
        rest.rsplit_once('/')
            .expect("<upload id>/<index>")
            .0
            .to_string()
    };
    for r in &puts {
        assert_eq!(
            r.header("etag"),
            Some(md5_hex(&r.body).as_str()),
            "{}: a segment is sent with its MD5 as ETag",
            r.path
        );
        assert_eq!(upload_dir(r), upload_dir(&puts[0]), "one upload id");
    }
    puts
}

/// The one manifest PUT, parsed, after checking that it lists every segment of `data` in order
/// with its MD5 and size, and that each segment it names was stored (the last PUT of that name
/// was answered 2xx, with those bytes) before the manifest was sent: never a manifest naming a
/// missing segment.
fn check_manifest(fake: &Fake, data: &[u8]) -> Vec<serde_json::Value> {
    let manifest_puts = fake.requests(&format!("PUT {OBJECT}"));
    assert_eq!(manifest_puts.len(), 1, "one manifest: {manifest_puts:?}");
    let manifest = &manifest_puts[0];
    assert_eq!(manifest.target, format!("{OBJECT}?multipart-manifest=put"));
    let entries: Vec<serde_json::Value> =
        serde_json::from_slice(&manifest.body).expect("the manifest is a JSON array");
    let want = segments(data);
    assert_eq!(
        entries.len(),
        want.len(),
        "every segment listed: {entries:?}"
    );
    let log = fake.server.requests();
    let manifest_at = log
        .iter()
        .position(|r| r.method == "PUT" && r.path == OBJECT)
        .expect("manifest in the log");
    for (i, (entry, bytes)) in entries.iter().zip(&want).enumerate() {
        let path = entry["path"].as_str().expect("path");
        assert!(
            path.starts_with("/c_segments/p/obj/") && path.ends_with(&format!("/{i:08}")),
            "segment {i} is {path}"
        );
        assert_eq!(entry["etag"], json!(md5_hex(bytes)), "etag of segment {i}");
        assert_eq!(
            entry["size_bytes"],
            json!(bytes.len()),
            "size of segment {i}"
        );
        let full = format!("{ACCOUNT}{path}");
        let (at, last) = log
            .iter()
            .enumerate()
            .rfind(|(_, r)| r.method == "PUT" && r.path == full)
            .unwrap_or_else(|| panic!("the manifest names {path}, never PUT"));
        assert!(
            is_2xx(last),
            "the manifest names {path}, whose last PUT was answered {}",
            last.status
        );
        assert_eq!(&last.body[..], *bytes, "{path} holds segment {i}");
        assert!(at < manifest_at, "{path} was stored before the manifest");
    }
    entries
}

#[tokio::test]
async fn wrong_credentials_fail_with_one_error_naming_keystone_and_401_without_retries() {
    let fake = Fake::new();
    let refused = Reply::new(401, KEYSTONE_401).header("Content-Type", "application/json");
    fake.route(TOKENS, vec![refused; 3]);
    let want = format!(
        "POST {}/v3/auth/tokens: 401 Unauthorized: The request you have made requires \
         authentication.",
        fake.base
    );
    let session = fake.session();

    let err = SwiftClient::new(&session)
        .await
        .expect_err("no Swift client with wrong credentials");
    assert_eq!(err.to_string(), want);
    assert_eq!(fake.requests(TOKENS).len(), 1, "a 401 is not retried");

    // Opening for writing, with the endpoint given: the same one error, one more token request.
    let client = SwiftClient::with_endpoint(&session, &fake.url(ACCOUNT));
    let err = SwiftStore::open(client.clone(), "c", "p", options())
        .await
        .expect_err("no store with wrong credentials");
    assert_eq!(err.to_string(), want);
    assert_eq!(fake.requests(TOKENS).len(), 2);

    // Writing into a store only connected to: the same.
    let store = SwiftStore::connect(client, "c", "p", options()).expect("connect");
    let err = store
        .put("obj", byte_stream("x"), PutOptions::default())
        .await
        .expect_err("no write with wrong credentials");
    assert_eq!(err.to_string(), want);
    assert_eq!(fake.requests(TOKENS).len(), 3);
    let others: Vec<String> = fake
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path != "/v3/auth/tokens")
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert!(others.is_empty(), "Swift asked without a token: {others:?}");
}

#[tokio::test]
async fn an_expired_token_is_renewed_once_and_the_put_resent_but_a_second_401_is_the_error() {
    let fake = Fake::new();
    let store = fake.store().await;
    let put = format!("PUT {OBJECT}");
    fake.route(TOKENS, vec![fake.token("t2")]);
    fake.route(&put, vec![Reply::new(401, SWIFT_401), stored(b"hello")]);
    let meta = store
        .put("obj", byte_stream("hello"), PutOptions::default())
        .await
        .expect("the put succeeds with a renewed token");
    assert_eq!(meta.size, Some(5));
    assert_eq!(fake.requests(TOKENS).len(), 2, "the token renewed once");
    let puts = fake.requests(&put);
    let sent: Vec<(Option<&str>, &[u8], u16)> = puts
        .iter()
        .map(|r| (r.header("x-auth-token"), &r.body[..], r.status))
        .collect();
    assert_eq!(
        sent,
        [
            (Some("t1"), &b"hello"[..], 401),
            (Some("t2"), &b"hello"[..], 201)
        ],
        "the same PUT resent with the new token"
    );

    // Refused with the new token too: that second 401 in a row is the error.
    fake.route(TOKENS, vec![fake.token("t3")]);
    fake.route(&put, vec![Reply::new(401, SWIFT_401); 2]);
    let err = store
        .put("obj", byte_stream("hello"), PutOptions::default())
        .await
        .expect_err("a second 401 in a row fails the put");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("PUT {}: 401 Unauthorized", fake.url(OBJECT))),
        "{msg}"
    );
    assert_eq!(
        fake.requests(TOKENS).len(),
        3,
        "renewed once more, not again"
    );
    let puts = fake.requests(&put);
    let tokens: Vec<Option<&str>> = puts[2..].iter().map(|r| r.header("x-auth-token")).collect();
    assert_eq!(tokens, [Some("t2"), Some("t3")]);
}

#[tokio::test]
async fn a_container_not_writable_fails_the_put_once_naming_the_object_url_and_403() {
    let fake = Fake::new();
    let store = fake.store().await;
    let put = format!("PUT {OBJECT}");
    fake.route(&put, vec![Reply::new(403, SWIFT_403)]);
    let err = store
        .put("obj", byte_stream("hello"), PutOptions::default())
        .await
        .expect_err("403");
    let msg = err.to_string();
    assert_eq!(
        msg,
        format!(
            "PUT {}: 403 Forbidden: Forbidden Access was denied to this resource.",
            fake.url(OBJECT)
        )
    );
    assert_eq!(fake.requests(&put).len(), 1, "a 403 is not retried");
    assert_eq!(
        fake.requests(TOKENS).len(),
        1,
        "nor taken for an expired token"
    );

    // A large object: the first segment refused fails the put, once, and no manifest is sent.
    fake.route(SEGMENT_PUTS, vec![Reply::new(403, SWIFT_403)]);
    fake.route(LISTING, vec![Reply::new(200, "[]")]);
    let err = store
        .put("obj", byte_stream(content()), PutOptions::default())
        .await
        .expect_err("403 on a segment");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("PUT {}", fake.url(SEGMENT_DIR))) && msg.contains("403 Forbidden"),
        "{msg}"
    );
    assert_eq!(fake.requests(SEGMENT_PUTS).len(), 1, "not retried");
    assert_eq!(fake.requests(&put).len(), 1, "no manifest");
}

#[tokio::test]
async fn opening_a_container_not_writable_fails_once_naming_the_container_url_and_403() {
    let fake = Fake::new();
    fake.route(TOKENS, vec![fake.token("t1")]);
    fake.route("PUT /v1/AUTH_test/c", vec![Reply::new(403, SWIFT_403)]);
    let client = SwiftClient::new(&fake.session()).await.expect("client");
    let err = SwiftStore::open(client, "c", "p", options())
        .await
        .expect_err("403");
    assert_eq!(
        err.to_string(),
        format!(
            "PUT {}: 403 Forbidden: Forbidden Access was denied to this resource.",
            fake.url("/v1/AUTH_test/c")
        )
    );
    assert_eq!(
        fake.server.requests().len(),
        2,
        "one token, one PUT, no retry"
    );
}

#[tokio::test]
async fn a_segment_answered_503_is_resent_alone_and_the_manifest_lists_every_segment() {
    let fake = Fake::new();
    let store = fake.store().await;
    let data = content();
    let seg = segments(&data);
    fake.route(
        SEGMENT_PUTS,
        vec![
            stored(seg[0]),
            Reply::new(503, SWIFT_503),
            stored(seg[1]),
            stored(seg[2]),
        ],
    );
    fake.manifest_and_cleanup_succeed();
    let meta = store
        .put("obj", byte_stream(data.clone()), PutOptions::default())
        .await
        .expect("the upload completes");
    assert_eq!(meta.size, Some(data.len() as u64));

    let puts = check_segment_puts(&fake);
    let statuses: Vec<u16> = puts.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, 503, 201, 201]);
    assert_eq!(
        (&puts[2].path, &puts[2].body),
        (&puts[1].path, &puts[1].body),
        "the segment answered 503 is resent, the same"
    );
    assert!(puts[0].path != puts[1].path && puts[2].path != puts[3].path);
    check_manifest(&fake, &data);
    assert!(
        fake.requests(SEGMENT_DELETES).is_empty(),
        "nothing of the upload deleted"
    );
}

#[tokio::test]
async fn a_segment_answered_422_for_a_damaged_body_is_resent_and_the_upload_completes() {
    let fake = Fake::new();
    let store = fake.store().await;
    let data = content();
    let seg = segments(&data);
    // What Swift answers when the body it got does not match the ETag sent with it.
    fake.route(
        SEGMENT_PUTS,
        vec![
            stored(seg[0]),
            Reply::new(422, SWIFT_422),
            stored(seg[1]),
            stored(seg[2]),
        ],
    );
    fake.manifest_and_cleanup_succeed();
    store
        .put("obj", byte_stream(data.clone()), PutOptions::default())
        .await
        .expect("the segment answered 422 is resent and the upload completes");
    let puts = check_segment_puts(&fake);
    let statuses: Vec<u16> = puts.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, 422, 201, 201]);
    assert_eq!(
        (&puts[2].path, &puts[2].body),
        (&puts[1].path, &puts[1].body)
    );
    check_manifest(&fake, &data);
}

#[tokio::test]
async fn a_proxy_answering_another_etag_fails_the_put_with_no_manifest_and_its_segments_deleted() {
    let fake = Fake::new();
    let store = fake.store().await;
    let data = content();
    let seg = segments(&data);
    // Stored, it says, but the ETag is not the MD5 of what was sent (one hex digit off).
    let mut lie = md5_hex(seg[0]);
    let last = if lie.ends_with('0') { "1" } else { "0" };
    lie.replace_range(31.., last);
    fake.route(
        SEGMENT_PUTS,
        vec![
            Reply::new(201, "").header("Etag", lie.clone()),
            stored(seg[1]),
            stored(seg[2]),
        ],
    );
    fake.route(&format!("PUT {OBJECT}"), vec![Reply::new(201, "")]);
    fake.route(SEGMENT_DELETES, vec![Reply::new(204, ""); 3]);
    let err = store
        .put(
            "obj",
            body_listing_the_first_segment(&fake, &data),
            PutOptions::default(),
        )
        .await
        .expect_err("an ETag that is not the MD5 sent fails the put");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&fake.url(SEGMENT_DIR))
            && msg.contains(&lie)
            && msg.contains(&md5_hex(seg[0])),
        "{msg}"
    );
    assert!(
        fake.requests(&format!("PUT {OBJECT}")).is_empty(),
        "no manifest"
    );
    let sent: Vec<String> = fake
        .requests(SEGMENT_PUTS)
        .into_iter()
        .filter(is_2xx)
        .map(|r| r.path)
        .collect();
    let deleted: Vec<String> = fake
        .requests(SEGMENT_DELETES)
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert!(!sent.is_empty());
    for path in &sent {
        assert!(
            deleted.contains(path),
            "{path} was sent and not deleted: {deleted:?}"
        );
    }
}

#[tokio::test]
async fn a_proxy_answering_another_etag_to_a_small_put_fails_it() {
    let fake = Fake::new();
    let store = fake.store().await;
    let put = format!("PUT {OBJECT}");
    fake.route(&put, vec![stored(b"hellO")]);
    let err = store
        .put("obj", byte_stream("hello"), PutOptions::default())
        .await
        .expect_err("an ETag that is not the MD5 sent fails the put");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&fake.url(OBJECT)) && msg.contains(&md5_hex(b"hellO")),
        "{msg}"
    );
    let puts = fake.requests(&put);
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].header("etag"), Some(md5_hex(b"hello").as_str()));
}

#[tokio::test]
async fn a_segment_whose_connection_drops_without_an_answer_is_resent_and_the_manifest_is_whole() {
    let fake = Fake::new();
    let store = fake.store().await;
    let data = content();
    let seg = segments(&data);
    fake.route(
        SEGMENT_PUTS,
        vec![
            stored(seg[0]),
            Reply::hang_up(),
            stored(seg[1]),
            stored(seg[2]),
        ],
    );
    fake.manifest_and_cleanup_succeed();
    store
        .put("obj", byte_stream(data.clone()), PutOptions::default())
        .await
        .expect("the dropped segment is resent and the upload completes");
    let puts = check_segment_puts(&fake);
    let statuses: Vec<u16> = puts.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, HANG_UP, 201, 201]);
    assert_eq!(
        (&puts[2].path, &puts[2].body),
        (&puts[1].path, &puts[1].body),
        "the segment cut off is the one resent"
    );
    check_manifest(&fake, &data);
}

#[tokio::test]
async fn a_segment_whose_connection_keeps_dropping_fails_the_put_with_no_manifest_and_nothing_left()
{
    let fake = Fake::new();
    let store = fake.store().await;
    let data = content();
    let seg = segments(&data);
    // Three attempts (two retries), none answered.
    fake.route(
        SEGMENT_PUTS,
        vec![
            stored(seg[0]),
            Reply::hang_up(),
            Reply::hang_up(),
            Reply::hang_up(),
        ],
    );
    fake.route(&format!("PUT {OBJECT}"), vec![Reply::new(201, "")]);
    fake.route(SEGMENT_DELETES, vec![Reply::new(204, ""); 3]);
    let err = store
        .put(
            "obj",
            body_listing_the_first_segment(&fake, &data),
            PutOptions::default(),
        )
        .await
        .expect_err("a segment never answered fails the put");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("PUT {}", fake.url(SEGMENT_DIR)))
            && msg.contains("no answer after 3 attempts"),
        "{msg}"
    );
    let puts = check_segment_puts(&fake);
    assert_eq!(
        puts.len(),
        4,
        "the first segment once, the second three times"
    );
    assert_no_manifest_and_only_deleted(&fake, &puts[0].path, "the stored segment is deleted");
}

#[tokio::test]
async fn a_segment_still_being_sent_when_the_body_fails_is_let_finish_and_deleted_though_not_yet_listed(
) {
    let fake = Fake::new();
    let store = fake.store().await;
    let data = content();
    let seg = segments(&data);
    fake.route(SEGMENT_PUTS, vec![stored(seg[0])]);
    // Swift's listing lags behind the PUT it has just answered: only the name tells.
    fake.route(LISTING, vec![Reply::new(200, "[]")]);
    fake.route(SEGMENT_DELETES, vec![Reply::new(204, "")]);
    // One whole segment (sent at once, while the next fills), then the body fails.
    let body = stream::iter(vec![
        Ok(Bytes::copy_from_slice(seg[0])),
        Ok(Bytes::copy_from_slice(&seg[1][..10])),
        Err(simplestreams_mirror::Error::Aborted(
            "checksum mismatch".into(),
        )),
    ])
    .boxed();
    let err = store
        .put("obj", body, PutOptions::default())
        .await
        .expect_err("a failing body fails the put");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    let puts = check_segment_puts(&fake);
    assert_eq!(puts.len(), 1, "the whole segment was sent: {puts:?}");
    assert_no_manifest_and_only_deleted(
        &fake,
        &puts[0].path,
        "the segment Swift stored is deleted, although its listing did not show it yet",
    );
}

/// No manifest was sent, and the one segment DELETE was of `segment` (a request path).
fn assert_no_manifest_and_only_deleted(fake: &Fake, segment: &str, what: &str) {
    assert!(
        fake.requests(&format!("PUT {OBJECT}")).is_empty(),
        "no manifest naming a missing segment"
    );
    let deleted: Vec<String> = fake
        .requests(SEGMENT_DELETES)
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(deleted, [segment], "{what}");
}

/// What the engine gives for an item whose size and md5 the stream publishes.
fn known(data: &[u8]) -> PutOptions {
    PutOptions {
        size: Some(data.len() as u64),
        md5: Some(md5_hex(data)),
        ..PutOptions::default()
    }
}

/// `data` in chunks of 700 bytes.
fn chunked(data: &[u8]) -> ByteStream {
    chunked_then(data, None)
}

/// `data` in chunks of 700 bytes, then `error` if given.
fn chunked_then(data: &[u8], error: Option<simplestreams_mirror::Error>) -> ByteStream {
    let chunks: Vec<_> = data
        .chunks(700)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .chain(error.map(Err))
        .collect();
    stream::iter(chunks).boxed()
}

#[tokio::test]
async fn an_object_whose_md5_is_known_is_one_streamed_put_with_that_etag_and_no_segments() {
    let fake = Fake::new();
    let store = fake.store().await;
    let data = content();
    let put = format!("PUT {OBJECT}");
    fake.route(&put, vec![stored(&data)]);
    // Larger than a segment: the object's old segments, if any, are looked for afterwards.
    fake.route(LISTING, vec![Reply::new(200, "[]")]);
    assert!(store.verifies_md5(Some(data.len() as u64)));
    let meta = store
        .put("obj", chunked(&data), known(&data))
        .await
        .expect("streamed put");
    assert_eq!(meta.size, Some(data.len() as u64));
    let puts = fake.requests(&put);
    assert_eq!(puts.len(), 1, "one PUT");
    assert_eq!(puts[0].header("etag"), Some(md5_hex(&data).as_str()));
    assert_eq!(puts[0].header("content-length"), Some("2500"));
    assert_eq!(puts[0].body, data);
    assert!(
        fake.requests(SEGMENT_PUTS).is_empty(),
        "no segment for an object Swift checks whole"
    );
    assert_eq!(fake.requests(LISTING).len(), 1, "old segments looked for");
}

#[tokio::test]
async fn a_streamed_put_refused_for_its_md5_fails_naming_the_md5_and_is_not_resent() {
    let fake = Fake::new();
    let store = fake.store().await;
    let data = content();
    let put = format!("PUT {OBJECT}");
    fake.route(&put, vec![Reply::new(422, SWIFT_422), stored(&data)]);
    let err = store
        .put("obj", chunked(&data), known(&data))
        .await
        .expect_err("a 422 fails the put");
    let msg = err.to_string();
    assert!(
        msg.contains("422") && msg.contains(&md5_hex(&data)) && msg.contains(&fake.url(OBJECT)),
        "{msg}"
    );
    assert_eq!(fake.requests(&put).len(), 1, "a streamed body is sent once");
}

#[tokio::test]
async fn a_streamed_put_whose_body_fails_at_its_end_never_sends_its_last_bytes() {
    let fake = Fake::new();
    let store = fake.store().await;
    let data = content();
    let put = format!("PUT {OBJECT}");
    // Were every byte of the Content-Length to arrive, Swift would store the object.
    fake.route(&put, vec![stored(&data)]);
    fake.route(LISTING, vec![Reply::new(200, "[]")]);
    let failing = chunked_then(
        &data,
        Some(simplestreams_mirror::Error::Aborted(
            "obj: sha256 mismatch".into(),
        )),
    );
    let err = store
        .put("obj", failing, known(&data))
        .await
        .expect_err("the body's failure fails the put");
    assert!(
        err.to_string().contains("sha256 mismatch"),
        "the body's own error is the answer: {err}"
    );
    for request in fake.requests(&put) {
        assert!(
            request.body.len() < data.len() && !is_2xx(&request),
            "Swift never got the whole body: {} bytes, status {}",
            request.body.len(),
            request.status
        );
    }
}

/// A store streaming its segments (larger than those held), and a body that is one such
/// segment: just larger than what is sent in one PUT.
async fn streamed_segments(fake: &Fake) -> (SwiftStore, Vec<u8>) {
    let store = fake
        .store_with(SwiftStoreOptions {
            segment_size: swift_target::HELD_SEGMENT_MAX + 1,
            ..SwiftStoreOptions::default()
        })
        .await;
    let data: Vec<u8> = (0..swift_target::HELD_OBJECT_MAX + 1000)
        .map(|i| (i % 251) as u8)
        .collect();
    (store, data)
}

#[tokio::test]
async fn a_streamed_segment_answered_503_fails_the_upload_once_with_no_manifest_and_is_deleted() {
    let fake = Fake::new();
    let (store, data) = streamed_segments(&fake).await;
    fake.route(
        SEGMENT_PUTS,
        vec![Reply::new(503, SWIFT_503), stored(&data)],
    );
    fake.route(LISTING, vec![Reply::new(200, "[]")]);
    fake.route(SEGMENT_DELETES, vec![Reply::new(404, "")]);
    let err = store
        .put("obj", chunked(&data), PutOptions::default())
        .await
        .expect_err("the segment's 503 fails the upload");
    assert!(err.to_string().contains("503"), "{err}");
    let puts = fake.requests(SEGMENT_PUTS);
    assert_eq!(puts.len(), 1, "a streamed segment is not resent");
    assert!(
        puts[0].header("etag").is_none(),
        "its MD5 is not known before it is sent"
    );
    assert_no_manifest_and_only_deleted(&fake, &puts[0].path, "the failed segment is deleted");
}

#[tokio::test]
async fn a_streamed_segment_answered_with_another_etag_fails_the_upload_with_no_manifest() {
    let fake = Fake::new();
    let (store, data) = streamed_segments(&fake).await;
    let mut damaged = data.clone();
    damaged[12_345] ^= 1;
    fake.route(SEGMENT_PUTS, vec![stored(&damaged)]);
    fake.route(LISTING, vec![Reply::new(200, "[]")]);
    fake.route(SEGMENT_DELETES, vec![Reply::new(204, "")]);
    let err = store
        .put("obj", chunked(&data), PutOptions::default())
        .await
        .expect_err("Swift stored other bytes");
    let msg = err.to_string();
    assert!(
        msg.contains(&md5_hex(&damaged)) && msg.contains(&md5_hex(&data)),
        "{msg}"
    );
    let puts = fake.requests(SEGMENT_PUTS);
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].body, data, "the segment was streamed whole");
    assert_no_manifest_and_only_deleted(&fake, &puts[0].path, "the damaged segment is deleted");
}
