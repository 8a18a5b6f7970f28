//! Keystone v3 authentication: a [`Session`] holds a token, renews it before it expires, and
//! sends the requests of the service clients with it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;

use super::catalog::Catalog;
use super::config::{AuthType, CloudConfig};
use super::error::{Error, Result};
use super::http::{self, ClientOptions, Http, Request, Service};

/// A token is renewed when it has less than this left, so that a request started with it
/// (an upload of several GB, say) does not outlive it.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// A Keystone token and what came with it.
#[derive(Clone)]
pub struct Token {
    value: String,
    /// When it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// The user's id.
    pub user_id: String,
    /// The project it is scoped to, if any.
    pub project_id: Option<String>,
    /// The names of the roles it carries.
    pub roles: Vec<String>,
    /// The service catalog.
    pub catalog: Catalog,
}

impl Token {
    /// The token itself (the `X-Auth-Token` header value).
    pub fn value(&self) -> &str {
        &self.value
    }

    fn fresh(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|at| {
            at - now > chrono::Duration::from_std(RENEW_BEFORE_EXPIRY).unwrap_or_default()
        })
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<hidden>")
            .field("expires_at", &self.expires_at)
            .field("user_id", &self.user_id)
            .field("project_id", &self.project_id)
            .field("roles", &self.roles)
            .field("catalog", &self.catalog)
            .finish()
    }
}

/// An authenticated connection to a cloud, shared (cheaply cloned) by the service clients.
///
/// It authenticates on first use, keeps the token, and gets a new one when the token is close
/// to expiry or a service answers 401 to a request that can be sent again (password and
/// application-credential auth; a given token cannot be renewed).
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    config: CloudConfig,
    http: Http,
    /// Keystone's v3 root, without a trailing slash.
    identity_url: String,
    token: Mutex<Option<Token>>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("identity_url", &self.inner.identity_url)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session for `config` with the default [`ClientOptions`]. Nothing is sent yet.
    pub fn new(config: CloudConfig) -> Result<Self> {
        Self::with_options(config, ClientOptions::default())
    }

    /// A session with explicit transport options.
    pub fn with_options(config: CloudConfig, options: ClientOptions) -> Result<Self> {
        config.validate()?;
        let identity_url = identity_v3_url(&config)?;
        let http = Http::new(&config, &options)?;
        Ok(Session {
            inner: Arc::new(Inner {
                config,
                http,
                identity_url,
                token: Mutex::new(None),
            }),
        })
    }

    /// A session from the environment ([`CloudConfig::from_env`]).
    pub fn from_env() -> Result<Self> {
        Self::new(CloudConfig::from_env()?)
    }

    /// The settings in use.
    pub fn config(&self) -> &CloudConfig {
        &self.inner.config
    }

    /// Keystone's v3 URL (ending in `/v3`).
    pub fn identity_url(&self) -> &str {
        &self.inner.identity_url
    }

    /// The current token, authenticating first if there is none or it is about to expire.
    pub async fn token(&self) -> Result<Token> {
        let mut slot = self.inner.token.lock().await;
        if let Some(t) = slot.as_ref().filter(|t| t.fresh(Utc::now())) {
            return Ok(t.clone());
        }
        let token = self.fetch_token().await?;
        *slot = Some(token.clone());
        Ok(token)
    }

    /// Drops the cached token (unless another task already replaced it) and gets a new one.
    pub async fn renew(&self, stale: &str) -> Result<Token> {
        {
            let mut slot = self.inner.token.lock().await;
            if slot.as_ref().is_some_and(|t| t.value == stale) {
                *slot = None;
            }
        }
        self.token().await
    }

    /// The URL of the `service_type` endpoint for the configured interface, in `region`
    /// (or else the configured region, or else any).
    pub async fn endpoint(&self, service_type: &str, region: Option<&str>) -> Result<String> {
        let region = region.or(self.inner.config.region_name.as_deref());
        self.token()
            .await?
            .catalog
            .endpoint(service_type, self.inner.config.interface, region)
    }

    /// Every region with a `service_type` endpoint for the configured interface.
    pub async fn regions(&self, service_type: &str) -> Result<Vec<String>> {
        Ok(self
            .token()
            .await?
            .catalog
            .regions(service_type, self.inner.config.interface))
    }

    /// The token value to send: a given token is used as it is (no Keystone round trip when
    /// the endpoint is known), any other is obtained and renewed as needed.
    async fn token_value(&self) -> Result<String> {
        match (self.inner.config.auth_type, &self.inner.config.token) {
            (AuthType::Token, Some(t)) => Ok(t.clone()),
            _ => Ok(self.token().await?.value),
        }
    }

    /// Sends a service request with the session's token: retried when safe, the token renewed
    /// once on a 401 to a request that can be sent again, and an error answer turned into the
    /// matching [`Error`]. The response has a 2xx or 3xx status.
    pub async fn send(&self, mut req: Request) -> Result<Response> {
        // Keystone itself (its admin API) goes through the unpooled client, like the token.
        let service = if req.url().starts_with(self.inner.identity_url.as_str()) {
            Service::Identity
        } else {
            Service::Other
        };
        let token = self.token_value().await?;
        match self
            .inner
            .http
            .execute(service, &mut req, Some(&token))
            .await
        {
            Err(Error::Unauthorized { .. })
                if req.replayable() && self.inner.config.auth_type != AuthType::Token =>
            {
                tracing::debug!(url = %req.url(), "401: renewing the token and retrying once");
                let token = self.renew(&token).await?;
                self.inner
                    .http
                    .execute(service, &mut req, Some(token.value()))
                    .await
            }
            other => other,
        }
    }

    async fn fetch_token(&self) -> Result<Token> {
        let c = &self.inner.config;
        let url = format!("{}/auth/tokens", self.inner.identity_url);
        let (method, mut req, header_token) = match c.auth_type {
            // A given token is validated (which also yields its catalog) rather than exchanged.
            AuthType::Token => {
                let token = c.token.clone().unwrap_or_default();
                let req = Request::new(Method::GET, &url).header(
                    reqwest::header::HeaderName::from_static("x-subject-token"),
                    reqwest::header::HeaderValue::from_str(&token).map_err(|_| {
                        Error::config(
                            &c.origin,
                            "the token holds characters not allowed in a header",
                        )
                    })?,
                );
                (Method::GET, req, Some(token))
            }
            _ => {
                // Asking for a token with the same credentials twice is harmless: retry it.
                let req = Request::new(Method::POST, &url)
                    .json(&auth_body(c))
                    .idempotent(true);
                (Method::POST, req, None)
            }
        };
        let resp = self
            .inner
            .http
            .execute(Service::Identity, &mut req, header_token.as_deref())
            .await?;
        let value = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| Error::Response {
                method: method.to_string(),
                url: url.clone(),
                message: "no X-Subject-Token header".into(),
            })?;
        let body: TokenBody = http::json(&method, &url, resp).await?;
        let t = body.token;
        let expires_at = match t.expires_at {
            Some(s) => Some(
                DateTime::parse_from_rfc3339(&s)
                    .map(|d| d.with_timezone(&Utc))
                    .map_err(|e| Error::Response {
                        method: method.to_string(),
                        url: url.clone(),
                        message: format!("expires_at {s:?}: {e}"),
                    })?,
            ),
            None => None,
        };
        Ok(Token {
            value,
            expires_at,
            user_id: t.user.id,
            project_id: t.project.map(|p| p.id),
            roles: t.roles.into_iter().map(|r| r.name).collect(),
            catalog: t.catalog,
        })
    }
}

/// Keystone's v3 root for an auth URL given with or without `/v3`.
fn identity_v3_url(config: &CloudConfig) -> Result<String> {
    let base = config.auth_url.trim_end_matches('/');
    let parsed = url::Url::parse(base)
        .map_err(|e| Error::config(&config.origin, format!("auth URL {base:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::config(
            &config.origin,
            format!("auth URL {base:?} is not http(s)"),
        ));
    }
    if base.ends_with("/v2.0") {
        return Err(Error::config(
            &config.origin,
            format!("auth URL {base:?}: only the Identity v3 API is supported"),
        ));
    }
    Ok(if base.ends_with("/v3") {
        base.to_owned()
    } else {
        format!("{base}/v3")
    })
}

/// The `POST /v3/auth/tokens` body for password or application-credential auth.
fn auth_body(c: &CloudConfig) -> serde_json::Value {
    let domain = |id: &Option<String>, name: &Option<String>| -> serde_json::Value {
        match (
            id.as_ref().or(c.domain_id.as_ref()),
            name.as_ref().or(c.domain_name.as_ref()),
        ) {
            (Some(id), _) => json!({ "id": id }),
            (None, Some(name)) => json!({ "name": name }),
            (None, None) => json!({ "id": "default" }),
        }
    };
    let user = || -> serde_json::Value {
        match (&c.user_id, &c.username) {
            (Some(id), _) => json!({ "id": id }),
            (None, name) => {
                json!({ "name": name, "domain": domain(&c.user_domain_id, &c.user_domain_name) })
            }
        }
    };
    let identity = match c.auth_type {
        AuthType::ApplicationCredential => {
            let mut cred = json!({ "secret": c.application_credential_secret });
            match &c.application_credential_id {
                Some(id) => cred["id"] = json!(id),
                None => {
                    cred["name"] = json!(c.application_credential_name);
                    cred["user"] = user();
                }
            }
            json!({ "methods": ["application_credential"], "application_credential": cred })
        }
        _ => {
            let mut u = user();
            u["password"] = json!(c.password);
            json!({ "methods": ["password"], "password": { "user": u } })
        }
    };
    let mut auth = json!({ "identity": identity });
    // An application credential carries its own scope.
    if c.auth_type != AuthType::ApplicationCredential {
        if let Some(id) = &c.project_id {
            auth["scope"] = json!({ "project": { "id": id } });
        } else if let Some(name) = &c.project_name {
            auth["scope"] = json!({ "project": { "name": name, "domain": domain(&c.project_domain_id, &c.project_domain_name) } });
        } else if let Some(id) = &c.domain_id {
            auth["scope"] = json!({ "domain": { "id": id } });
        } else if let Some(name) = &c.domain_name {
            auth["scope"] = json!({ "domain": { "name": name } });
        }
    }
    json!({ "auth": auth })
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenInfo,
}

#[derive(Deserialize)]
struct TokenInfo {
    expires_at: Option<String>,
    user: IdOnly,
    project: Option<IdOnly>,
    #[serde(default)]
    roles: Vec<RoleInfo>,
    #[serde(default)]
    catalog: Catalog,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
struct RoleInfo {
    name: String,
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
