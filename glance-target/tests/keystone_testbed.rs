//! The three authentication methods against the test bed's real Keystone
//! (`scripts/test` starts it and sources its openrc): password (the openrc), an application
//! credential made for the test, and an existing token.

use glance_target::{AuthType, CloudConfig, Error, GlanceClient, ListQuery, Session};
use serde_json::{json, Value};

const NEEDS: &str = "needs the OpenStack test bed (scripts/test runs it)";

fn password_session() -> Session {
    Session::from_env().unwrap_or_else(|e| panic!("{e}: {NEEDS}"))
}

/// Keystone closes connections after each answer: no pooling for this raw client either.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn application_credential_auth_gets_a_scoped_token_and_catalog() {
    let session = password_session();
    let token = session.token().await.expect("password token");
    let name = format!(
        "sstream-test-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let url = format!(
        "{}/users/{}/application_credentials",
        session.identity_url(),
        token.user_id
    );
    let resp = raw_client()
        .post(&url)
        .header("X-Auth-Token", token.value())
        .json(&json!({"application_credential": {"name": name}}))
        .send()
        .await
        .expect("create application credential");
    assert_eq!(
        resp.status().as_u16(),
        201,
        "creating an application credential"
    );
    let created: Value = resp.json().await.expect("JSON");
    let id = created["application_credential"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let secret = created["application_credential"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();

    let by_id = CloudConfig {
        auth_url: session.config().auth_url.clone(),
        auth_type: AuthType::ApplicationCredential,
        application_credential_id: Some(id.clone()),
        application_credential_secret: Some(secret.clone()),
        region_name: session.config().region_name.clone(),
        origin: "test".into(),
        ..CloudConfig::default()
    };
    let by_name = CloudConfig {
        application_credential_id: None,
        application_credential_name: Some(name.clone()),
        user_id: Some(token.user_id.clone()),
        ..by_id.clone()
    };
    for config in [by_id, by_name] {
        let app = Session::new(config).expect("session");
        let t = app.token().await.expect("application credential token");
        // The credential carries the project of the token that made it.
        assert_eq!(t.project_id, token.project_id);
        let glance = GlanceClient::new(&app).await.expect("catalog has glance");
        glance
            .list(&ListQuery::new().page_size(1))
            .await
            .expect("glance accepts the token");
    }

    // A wrong secret is refused by Keystone.
    let wrong = CloudConfig {
        auth_url: session.config().auth_url.clone(),
        auth_type: AuthType::ApplicationCredential,
        application_credential_id: Some(id.clone()),
        // bcrypt reads only the first 72 bytes of a secret: change its start.
        application_credential_secret: Some(format!("wrong-{secret}")),
        origin: "test".into(),
        ..CloudConfig::default()
    };
    let err = Session::new(wrong)
        .expect("session")
        .token()
        .await
        .expect_err("wrong secret");
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");

    let resp = raw_client()
        .delete(format!("{url}/{id}"))
        .header("X-Auth-Token", token.value())
        .send()
        .await
        .expect("delete application credential");
    assert_eq!(resp.status().as_u16(), 204);
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn an_existing_token_is_used_with_its_catalog() {
    let session = password_session();
    let token = session.token().await.expect("password token");
    let config = CloudConfig::token(&session.config().auth_url, token.value());
    let reuse = Session::new(config).expect("session");
    let t = reuse.token().await.expect("token validates");
    assert_eq!(
        (t.value(), &t.user_id, &t.project_id),
        (token.value(), &token.user_id, &token.project_id)
    );
    assert_eq!(t.catalog, token.catalog);
    let glance = GlanceClient::new(&reuse)
        .await
        .expect("glance from its catalog");
    glance
        .list(&ListQuery::new().page_size(1))
        .await
        .expect("glance accepts it");
}
