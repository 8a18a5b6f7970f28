//! The HTTP side of the OpenStack clients: TLS settings from the cloud's config, requests sent
//! through the workspace's retry layer (`http-retry`), and the mapping of error answers to
//! [`Error`].

use std::time::Duration;

use bytes::Bytes;
use http_retry::{Failure, HttpOptions, Replay, RetryConfig};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE};
use reqwest::{Method, Response};

use super::config::CloudConfig;
use super::error::{Error, Result};

/// Transport settings shared by every request of a [`Session`](super::Session).
///
/// Defaults: the retry policy of [`RetryConfig::default`] (5 retries, full-jitter exponential
/// backoff from 0.2 s up to 15 s; connection errors, timeouts, 408, 429 and 5xx), a 30 s
/// connect timeout and a 300 s read timeout (the longest silence allowed while waiting for a
/// response or between body chunks; Glance answers an upload only once it has stored it).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Retry policy for requests that are safe to send again.
    pub retry: RetryConfig,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response.
    pub read_timeout: Duration,
    /// The `User-Agent` header (the charm's `user_agent`); `None` for the workspace's.
    pub user_agent: Option<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            retry: RetryConfig::default(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(300),
            user_agent: None,
        }
    }
}

/// A request body.
enum Body {
    Empty,
    /// Cheap to clone, so it can be sent again on a retry.
    Bytes(Bytes),
    /// A stream can be sent once: the request is not retried.
    Stream(Option<reqwest::Body>),
}

/// A request to a service endpoint, before the token is added; sent with
/// [`Session::send`](super::Session::send).
pub struct Request {
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Body,
    /// POSTs and PATCHes are retried only when the caller says the request is idempotent.
    idempotent: bool,
    /// Error statuses worth another try.
    retry_status: fn(u16) -> bool,
}

impl Request {
    /// A request without a body. GET, HEAD, PUT, DELETE and OPTIONS count as idempotent.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        Request {
            method,
            url: url.into(),
            headers: HeaderMap::new(),
            body: Body::Empty,
            idempotent,
            retry_status: RetryConfig::retryable_status,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// A JSON body (sent again on retries).
    pub fn json(mut self, value: &serde_json::Value) -> Self {
        self.body = Body::Bytes(Bytes::from(value.to_string()));
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self
    }

    /// A body held in memory (sent again on retries).
    pub fn bytes(mut self, content_type: &'static str, body: Bytes) -> Self {
        self.body = Body::Bytes(body);
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        self
    }

    /// A streamed body (sent once: the request is not retried).
    pub fn stream(mut self, content_type: &'static str, body: reqwest::Body) -> Self {
        self.body = Body::Stream(Some(body));
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        self
    }

    /// Whether the request may be sent again after an error answer or a dropped connection.
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }

    /// Which error statuses are worth sending it again for (by default 408, 429 and 5xx).
    pub fn retry_status(mut self, retryable: fn(u16) -> bool) -> Self {
        self.retry_status = retryable;
        self
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether it could be sent again (a stream body cannot).
    pub fn replayable(&self) -> bool {
        !matches!(self.body, Body::Stream(_))
    }

    fn take_body(&mut self) -> Option<reqwest::Body> {
        match &mut self.body {
            Body::Empty => None,
            Body::Bytes(b) => Some(reqwest::Body::from(b.clone())),
            Body::Stream(s) => s.take(),
        }
    }
}

/// The two HTTP clients of a session and the retry policy.
#[derive(Debug)]
pub(crate) struct Http {
    /// Glance, Swift: pooled connections.
    services: reqwest::Client,
    /// Keystone: no pooling. Keystone under uwsgi (and other WSGI front ends) may close a
    /// connection after a response without announcing it; a pooled connection would then fail
    /// on its next use.
    identity: reqwest::Client,
    retry: RetryConfig,
}

/// Which client a request goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Identity,
    Other,
}

impl Http {
    pub fn new(config: &CloudConfig, options: &ClientOptions) -> Result<Self> {
        let mut http = HttpOptions {
            connect_timeout: options.connect_timeout,
            read_timeout: options.read_timeout,
            retry: options.retry,
            accept_invalid_certs: config.insecure,
            ..HttpOptions::default()
        };
        if let Some(agent) = &options.user_agent {
            http.user_agent = agent.clone();
        }
        if let Some(path) = &config.cacert {
            let pem = std::fs::read(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            http = http
                .with_pem_roots(&pem, &format!("CA file {}", path.display()))
                .map_err(|e| Error::config(&config.origin, e))?;
        }
        let build = |pool: bool| {
            HttpOptions {
                pool,
                ..http.clone()
            }
            .client()
            .map_err(|e| Error::config(&config.origin, format!("HTTP client: {e}")))
        };
        Ok(Http {
            services: build(true)?,
            identity: build(false)?,
            retry: options.retry,
        })
    }

    /// Sends `req` with `token` (if any), retrying what is safe to retry, and turns an error
    /// answer into the matching [`Error`]. The response returned has a 2xx or 3xx status.
    pub async fn execute(
        &self,
        service: Service,
        req: &mut Request,
        token: Option<&str>,
    ) -> Result<Response> {
        let client = match service {
            Service::Identity => &self.identity,
            Service::Other => &self.services,
        };
        let replay = Replay {
            idempotent: req.idempotent,
            replayable: req.replayable(),
            retry_status: req.retry_status,
        };
        let accept = |s: reqwest::StatusCode| s.is_success() || s.is_redirection();
        let outcome = http_retry::send(&self.retry, replay, accept, |attempt| {
            tracing::debug!(method = %req.method, url = %req.url, attempt, "OpenStack request");
            let mut builder = client
                .request(req.method.clone(), &req.url)
                .headers(req.headers.clone());
            if service == Service::Identity {
                builder = builder.header(CONNECTION, "close");
            }
            if let Some(token) = token {
                builder = builder.header("X-Auth-Token", token);
            }
            if let Some(body) = req.take_body() {
                builder = builder.body(body);
            }
            builder
        })
        .await;
        match outcome {
            Ok(resp) => Ok(resp),
            Err(Failure::Status { response, .. }) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                Err(Error::from_status(
                    req.method.as_str(),
                    &req.url,
                    status,
                    &body,
                ))
            }
            Err(Failure::Transport { source, attempts }) => Err(Error::Transport {
                method: req.method.to_string(),
                url: req.url.clone(),
                attempts,
                source: source.without_url(),
            }),
        }
    }
}

/// Reads a JSON response body into `T`, naming the request in the error.
pub async fn json<T: serde::de::DeserializeOwned>(
    method: &Method,
    url: &str,
    resp: Response,
) -> Result<T> {
    let bytes = resp.bytes().await.map_err(|source| Error::Transport {
        method: method.to_string(),
        url: url.to_owned(),
        attempts: 1,
        source: source.without_url(),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Response {
        method: method.to_string(),
        url: url.to_owned(),
        message: format!("invalid JSON: {e}"),
    })
}

/// Percent-encodes one path segment (an image id, a container or object name part).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes an object name, keeping its slashes.
pub fn encode_path(s: &str) -> String {
    s.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_unreserved_and_escapes_the_rest() {
        assert_eq!(encode_segment("a b/c%ü"), "a%20b%2Fc%25%C3%BC");
        assert_eq!(
            encode_path("releases/noble/a b.img"),
            "releases/noble/a%20b.img"
        );
    }
}
