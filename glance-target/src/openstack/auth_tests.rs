use std::time::Duration;

use futures::stream;
use serde_json::json;
use simplestreams_mirror::RetryConfig;

use super::*;
use crate::openstack::mock_server::{MockServer, Reply};
use crate::GlanceClient;

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

/// A Keystone token answer valid for `minutes`, whose catalog points `image` at `glance`.
fn token_reply(value: &str, minutes: i64, glance: &str) -> Reply {
    let expires = (Utc::now() + chrono::Duration::minutes(minutes)).to_rfc3339();
    let body = json!({"token": {
        "expires_at": expires,
        "user": {"id": "u1", "name": "admin"},
        "project": {"id": "p1", "name": "admin"},
        "roles": [{"id": "r", "name": "admin"}],
        "catalog": [{"type": "image", "name": "glance", "endpoints": [
            {"interface": "public", "region_id": "RegionOne", "url": glance}]}]
    }});
    Reply::new(201, body.to_string())
        .header("X-Subject-Token", value)
        .header("Content-Type", "application/json")
}

fn image_reply(id: &str) -> Reply {
    Reply::new(
        200,
        json!({"id": id, "status": "active", "name": "n"}).to_string(),
    )
}

fn password_config(url: &str) -> CloudConfig {
    CloudConfig::password(url, "admin", "secret", "admin")
}

#[test]
fn password_body_names_the_user_and_project_in_the_default_domain() {
    let body = auth_body(&password_config("http://k"));
    assert_eq!(
        body,
        json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": "secret"}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    );
}

#[test]
fn domains_by_name_and_project_by_id() {
    let mut c = password_config("http://k");
    c.user_domain_name = Some("Users".into());
    c.project_domain_name = Some("Projects".into());
    let body = auth_body(&c);
    assert_eq!(
        body["auth"]["identity"]["password"]["user"]["domain"],
        json!({"name": "Users"})
    );
    assert_eq!(
        body["auth"]["scope"]["project"]["domain"],
        json!({"name": "Projects"})
    );
    c.project_id = Some("p42".into());
    assert_eq!(
        auth_body(&c)["auth"]["scope"],
        json!({"project": {"id": "p42"}})
    );
    // OS_DOMAIN_NAME is the default of both domains, and the scope when there is no project.
    let mut c = CloudConfig::password("http://k", "u", "pw", "x");
    c.project_name = None;
    c.domain_name = Some("D".into());
    let body = auth_body(&c);
    assert_eq!(
        body["auth"]["identity"]["password"]["user"]["domain"],
        json!({"name": "D"})
    );
    assert_eq!(body["auth"]["scope"], json!({"domain": {"name": "D"}}));
}

#[test]
fn application_credentials_carry_their_own_scope() {
    let c = CloudConfig {
        auth_url: "http://k".into(),
        auth_type: AuthType::ApplicationCredential,
        application_credential_id: Some("ac1".into()),
        application_credential_secret: Some("s".into()),
        project_name: Some("ignored".into()),
        ..CloudConfig::default()
    };
    assert_eq!(
        auth_body(&c),
        json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": "ac1", "secret": "s"}}}})
    );
    let c = CloudConfig {
        application_credential_id: None,
        application_credential_name: Some("mirror".into()),
        username: Some("bob".into()),
        ..c
    };
    assert_eq!(
        auth_body(&c)["auth"]["identity"]["application_credential"],
        json!({"name": "mirror", "secret": "s", "user": {"name": "bob", "domain": {"id": "default"}}})
    );
}

#[test]
fn auth_url_gets_v3_once_and_must_be_http() {
    for (given, want) in [
        ("http://k:5000", "http://k:5000/v3"),
        ("http://k:5000/", "http://k:5000/v3"),
        ("https://k/identity/v3/", "https://k/identity/v3"),
        ("https://k/identity", "https://k/identity/v3"),
    ] {
        assert_eq!(
            identity_v3_url(&password_config(given)).ok().as_deref(),
            Some(want),
            "{given}"
        );
    }
    for bad in ["http://k:5000/v2.0", "ftp://k/", "not a url"] {
        assert!(
            matches!(
                identity_v3_url(&password_config(bad)),
                Err(Error::Config { .. })
            ),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn token_is_obtained_once_and_sent_to_services() {
    let m = MockServer::start().await;
    m.script(
        "POST /v3/auth/tokens",
        vec![token_reply("tok-1", 24 * 60, &m.url)],
    );
    m.script("GET /v2/images/a", vec![image_reply("a"), image_reply("a")]);
    let session = Session::with_options(password_config(&m.url), fast()).expect("session");
    let glance = GlanceClient::new(&session).await.expect("client");
    assert_eq!(glance.get("a").await.expect("get").id, "a");
    assert_eq!(glance.get("a").await.expect("get").id, "a");
    assert_eq!(m.count("POST /v3/auth/tokens"), 1);
    let seen = m.seen();
    let auth = seen
        .iter()
        .find(|s| s.method == "POST")
        .expect("auth request");
    // Keystone behind uwsgi drops idle connections silently: never pool them.
    assert_eq!(
        auth.headers.get("connection").map(String::as_str),
        Some("close")
    );
    let sent: serde_json::Value = serde_json::from_slice(&auth.body).expect("JSON body");
    assert_eq!(
        sent["auth"]["identity"]["password"]["user"]["password"],
        "secret"
    );
    for s in seen.iter().filter(|s| s.method == "GET") {
        assert_eq!(
            s.headers.get("x-auth-token").map(String::as_str),
            Some("tok-1")
        );
    }
}

#[tokio::test]
async fn a_token_close_to_expiry_is_renewed_before_use() {
    let m = MockServer::start().await;
    m.script(
        "POST /v3/auth/tokens",
        vec![
            token_reply("short", 5, &m.url),
            token_reply("long", 600, &m.url),
        ],
    );
    let session = Session::with_options(password_config(&m.url), fast()).expect("session");
    assert_eq!(session.token().await.expect("first").value(), "short");
    assert_eq!(session.token().await.expect("renewed").value(), "long");
    assert_eq!(session.token().await.expect("cached").value(), "long");
    assert_eq!(m.count("POST /v3/auth/tokens"), 2);
}

#[tokio::test]
async fn a_401_renews_the_token_and_resends_once() {
    let m = MockServer::start().await;
    m.script(
        "POST /v3/auth/tokens",
        vec![
            token_reply("old", 600, &m.url),
            token_reply("new", 600, &m.url),
            token_reply("newer", 600, &m.url),
        ],
    );
    m.script(
        "GET /v2/images/a",
        vec![Reply::new(401, "expired"), image_reply("a")],
    );
    let session = Session::with_options(password_config(&m.url), fast()).expect("session");
    let glance = GlanceClient::new(&session).await.expect("client");
    assert_eq!(glance.get("a").await.expect("renewed").id, "a");
    let tokens: Vec<_> = m
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET")
        .filter_map(|s| s.headers.get("x-auth-token").cloned())
        .collect();
    assert_eq!(tokens, ["old", "new"]);

    // A second 401 in a row is the answer.
    m.script(
        "GET /v2/images/b",
        vec![
            Reply::new(401, r#"{"message": "no"}"#),
            Reply::new(401, r#"{"message": "still no"}"#),
        ],
    );
    let err = glance.get("b").await.expect_err("401 twice");
    assert!(
        matches!(err, Error::Unauthorized { ref url, ref message, .. } if url == &format!("{}/v2/images/b", m.url) && message == "still no"),
        "{err}"
    );
}

#[tokio::test]
async fn server_errors_are_retried_for_gets_but_not_for_creates() {
    let m = MockServer::start().await;
    m.script("POST /v3/auth/tokens", vec![token_reply("t", 600, &m.url)]);
    m.script(
        "GET /v2/images/a",
        vec![
            Reply::new(503, "busy"),
            Reply::new(502, "busy"),
            image_reply("a"),
        ],
    );
    let session = Session::with_options(password_config(&m.url), fast()).expect("session");
    let glance = GlanceClient::new(&session).await.expect("client");
    assert_eq!(glance.get("a").await.expect("third try").id, "a");
    assert_eq!(m.count("GET /v2/images/a"), 3);

    m.script(
        "POST /v2/images",
        vec![Reply::new(503, "busy"), Reply::new(201, "{}")],
    );
    let err = glance
        .create(&crate::NewImage::new("n", "raw", "bare"))
        .await
        .expect_err("not retried");
    assert!(matches!(err, Error::Server { status: 503, .. }), "{err}");
    assert_eq!(m.count("POST /v2/images"), 1);

    // Retries end: max_retries = 2, so 3 attempts in all.
    m.script(
        "GET /v2/images/b",
        vec![
            Reply::new(500, "x"),
            Reply::new(500, "x"),
            Reply::new(500, "x"),
            image_reply("b"),
        ],
    );
    let err = glance.get("b").await.expect_err("gave up");
    assert!(matches!(err, Error::Server { status: 500, .. }), "{err}");
    assert_eq!(m.count("GET /v2/images/b"), 3);
}

#[tokio::test]
async fn a_streamed_upload_is_sent_once() {
    let m = MockServer::start().await;
    m.script("POST /v3/auth/tokens", vec![token_reply("t", 600, &m.url)]);
    m.script(
        "PUT /v2/images/a/file",
        vec![Reply::new(503, "busy"), Reply::new(204, "")],
    );
    let session = Session::with_options(password_config(&m.url), fast()).expect("session");
    let glance = GlanceClient::new(&session).await.expect("client");
    let chunks = vec![Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"abc"))];
    let err = glance
        .upload("a", stream::iter(chunks), Some(3))
        .await
        .expect_err("not retried");
    assert!(matches!(err, Error::Server { .. }), "{err}");
    assert_eq!(m.count("PUT /v2/images/a/file"), 1);
    let put = m
        .seen()
        .into_iter()
        .find(|s| s.method == "PUT")
        .expect("PUT seen");
    assert_eq!(put.body, b"abc");
    assert_eq!(
        put.headers.get("content-length").map(String::as_str),
        Some("3")
    );
}

#[tokio::test]
async fn a_given_token_is_validated_not_exchanged() {
    let m = MockServer::start().await;
    m.script(
        "GET /v3/auth/tokens",
        vec![token_reply("given", 600, &m.url)],
    );
    let session =
        Session::with_options(CloudConfig::token(&m.url, "given"), fast()).expect("session");
    let t = session.token().await.expect("validated");
    assert_eq!(
        (t.value(), t.project_id.as_deref(), t.roles.as_slice()),
        ("given", Some("p1"), &["admin".to_owned()][..])
    );
    let seen = m.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].headers.get("x-auth-token").map(String::as_str),
        Some("given")
    );
    assert_eq!(
        seen[0].headers.get("x-subject-token").map(String::as_str),
        Some("given")
    );
}

#[tokio::test]
async fn keystone_refusal_is_unauthorized_with_its_message() {
    let m = MockServer::start().await;
    m.script("POST /v3/auth/tokens", vec![Reply::new(401, r#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#)]);
    let session = Session::with_options(password_config(&m.url), fast()).expect("session");
    let err = session.token().await.expect_err("refused");
    assert_eq!(err.to_string(), format!("POST {}/v3/auth/tokens: 401 Unauthorized: The request you have made requires authentication.", m.url));
    // Not retried: a refusal is final.
    assert_eq!(m.count("POST /v3/auth/tokens"), 1);
}

#[test]
fn debug_output_hides_secrets() {
    let mut c = CloudConfig::password("http://k", "admin", "pw-s3cr3t", "admin");
    c.token = Some("tok-s3cr3t".into());
    c.application_credential_secret = Some("ac-s3cr3t".into());
    let shown = format!("{c:?}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert!(shown.contains("<hidden>"));
}
