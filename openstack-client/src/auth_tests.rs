use std::time::Duration;

use futures::stream;
use http_retry::RetryConfig;
use reqwest::header::{HeaderValue, CONTENT_LENGTH};
use serde_json::json;
use simplestreams_testutil::http_server::{Reply, TestServer};

use super::*;
use crate::Request;

/// A server for scripted Keystone and service answers, and its base URL without the trailing
/// `/`, as auth URLs and catalog endpoints are written.
fn server() -> (TestServer, String) {
    let server = TestServer::builder().start();
    let url = server.url().trim_end_matches('/').to_owned();
    (server, url)
}

/// GET `{base}/v2/images/{id}` through the session, as a service client would.
async fn get_image(session: &Session, base: &str, id: &str) -> Result<String> {
    let url = format!("{base}/v2/images/{id}");
    let resp = session.send(Request::new(Method::GET, &url)).await?;
    let image: serde_json::Value = http::json(&Method::GET, &url, resp).await?;
    Ok(image["id"].as_str().unwrap_or_default().to_owned())
}

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
    let (m, base) = server();
    m.route(
        "POST /v3/auth/tokens",
        vec![token_reply("tok-1", 24 * 60, &base)],
    );
    m.route("GET /v2/images/a", vec![image_reply("a"), image_reply("a")]);
    let session = Session::with_options(password_config(&base), fast()).expect("session");
    assert_eq!(get_image(&session, &base, "a").await.expect("get"), "a");
    assert_eq!(get_image(&session, &base, "a").await.expect("get"), "a");
    assert_eq!(m.requests_for_route("POST /v3/auth/tokens").len(), 1);
    let seen = m.requests();
    let auth = seen
        .iter()
        .find(|s| s.method == "POST")
        .expect("auth request");
    // Keystone behind uwsgi drops idle connections silently: never pool them.
    assert_eq!(auth.header("connection"), Some("close"));
    let sent: serde_json::Value = serde_json::from_slice(&auth.body).expect("JSON body");
    assert_eq!(
        sent["auth"]["identity"]["password"]["user"]["password"],
        "secret"
    );
    for s in seen.iter().filter(|s| s.method == "GET") {
        assert_eq!(s.header("x-auth-token"), Some("tok-1"));
    }
}

#[tokio::test]
async fn a_token_close_to_expiry_is_renewed_before_use() {
    let (m, base) = server();
    m.route(
        "POST /v3/auth/tokens",
        vec![
            token_reply("short", 5, &base),
            token_reply("long", 600, &base),
        ],
    );
    let session = Session::with_options(password_config(&base), fast()).expect("session");
    assert_eq!(session.token().await.expect("first").value(), "short");
    assert_eq!(session.token().await.expect("renewed").value(), "long");
    assert_eq!(session.token().await.expect("cached").value(), "long");
    assert_eq!(m.requests_for_route("POST /v3/auth/tokens").len(), 2);
}

#[tokio::test]
async fn a_401_renews_the_token_and_resends_once() {
    let (m, base) = server();
    m.route(
        "POST /v3/auth/tokens",
        vec![
            token_reply("old", 600, &base),
            token_reply("new", 600, &base),
            token_reply("newer", 600, &base),
        ],
    );
    m.route(
        "GET /v2/images/a",
        vec![Reply::new(401, "expired"), image_reply("a")],
    );
    let session = Session::with_options(password_config(&base), fast()).expect("session");
    assert_eq!(get_image(&session, &base, "a").await.expect("renewed"), "a");
    let tokens: Vec<_> = m
        .requests()
        .into_iter()
        .filter(|s| s.method == "GET")
        .filter_map(|s| s.header("x-auth-token").map(str::to_owned))
        .collect();
    assert_eq!(tokens, ["old", "new"]);

    // A second 401 in a row is the answer.
    m.route(
        "GET /v2/images/b",
        vec![
            Reply::new(401, r#"{"message": "no"}"#),
            Reply::new(401, r#"{"message": "still no"}"#),
        ],
    );
    let err = get_image(&session, &base, "b")
        .await
        .expect_err("401 twice");
    assert!(
        matches!(err, Error::Unauthorized { ref url, ref message, .. } if url == &format!("{}/v2/images/b", base) && message == "still no"),
        "{err}"
    );
}

#[tokio::test]
async fn server_errors_are_retried_for_gets_but_not_for_creates() {
    let (m, base) = server();
    m.route("POST /v3/auth/tokens", vec![token_reply("t", 600, &base)]);
    m.route(
        "GET /v2/images/a",
        vec![
            Reply::new(503, "busy"),
            Reply::new(502, "busy"),
            image_reply("a"),
        ],
    );
    let session = Session::with_options(password_config(&base), fast()).expect("session");
    assert_eq!(
        get_image(&session, &base, "a").await.expect("third try"),
        "a"
    );
    assert_eq!(m.requests_for_route("GET /v2/images/a").len(), 3);

    m.route(
        "POST /v2/images",
        vec![Reply::new(503, "busy"), Reply::new(201, "{}")],
    );
    let create =
        Request::new(Method::POST, format!("{}/v2/images", base)).json(&json!({"name": "n"}));
    let err = session.send(create).await.expect_err("not retried");
    assert!(matches!(err, Error::Server { status: 503, .. }), "{err}");
    assert_eq!(m.requests_for_route("POST /v2/images").len(), 1);

    // Retries end: max_retries = 2, so 3 attempts in all.
    m.route(
        "GET /v2/images/b",
        vec![
            Reply::new(500, "x"),
            Reply::new(500, "x"),
            Reply::new(500, "x"),
            image_reply("b"),
        ],
    );
    let err = get_image(&session, &base, "b").await.expect_err("gave up");
    assert!(matches!(err, Error::Server { status: 500, .. }), "{err}");
    assert_eq!(m.requests_for_route("GET /v2/images/b").len(), 3);
}

#[tokio::test]
async fn a_streamed_upload_is_sent_once() {
    let (m, base) = server();
    m.route("POST /v3/auth/tokens", vec![token_reply("t", 600, &base)]);
    m.route(
        "PUT /v2/images/a/file",
        vec![Reply::new(503, "busy"), Reply::new(204, "")],
    );
    let session = Session::with_options(password_config(&base), fast()).expect("session");
    let chunks = vec![Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"abc"))];
    let upload = Request::new(Method::PUT, format!("{}/v2/images/a/file", base))
        .stream(
            "application/octet-stream",
            reqwest::Body::wrap_stream(stream::iter(chunks)),
        )
        .header(CONTENT_LENGTH, HeaderValue::from(3u64));
    let err = session.send(upload).await.expect_err("not retried");
    assert!(matches!(err, Error::Server { .. }), "{err}");
    assert_eq!(m.requests_for_route("PUT /v2/images/a/file").len(), 1);
    let put = m
        .requests()
        .into_iter()
        .find(|s| s.method == "PUT")
        .expect("PUT seen");
    assert_eq!(put.body, b"abc");
    assert_eq!(put.header("content-length"), Some("3"));
}

#[tokio::test]
async fn a_given_token_is_validated_not_exchanged() {
    let (m, base) = server();
    m.route(
        "GET /v3/auth/tokens",
        vec![token_reply("given", 600, &base)],
    );
    let session =
        Session::with_options(CloudConfig::token(&base, "given"), fast()).expect("session");
    let t = session.token().await.expect("validated");
    assert_eq!(
        (t.value(), t.project_id.as_deref(), t.roles.as_slice()),
        ("given", Some("p1"), &["admin".to_owned()][..])
    );
    let seen = m.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-auth-token"), Some("given"));
    assert_eq!(seen[0].header("x-subject-token"), Some("given"));
}

#[tokio::test]
async fn keystone_refusal_is_unauthorized_with_its_message() {
    let (m, base) = server();
    m.route("POST /v3/auth/tokens", vec![Reply::new(401, r#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#)]);
    let session = Session::with_options(password_config(&base), fast()).expect("session");
    let err = session.token().await.expect_err("refused");
    assert_eq!(err.to_string(), format!("POST {}/v3/auth/tokens: 401 Unauthorized: The request you have made requires authentication.", base));
    // Not retried: a refusal is final.
    assert_eq!(m.requests_for_route("POST /v3/auth/tokens").len(), 1);
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
