//! The one HTTP layer of the OpenStack clients: TLS settings, retries with backoff, and the
//! mapping of error answers to [`Error`].

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE};
use reqwest::{Method, Response};
use simplestreams_mirror::RetryConfig;

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
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            retry: RetryConfig::default(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(300),
        }
    }
}

/// A request body.
pub(crate) enum Body {
    Empty,
    /// Cheap to clone, so it can be sent again on a retry.
    Bytes(Bytes),
    /// A stream can be sent once: the request is not retried.
    Stream(Option<reqwest::Body>),
}

/// A request of a client, before the token is added.
pub(crate) struct Request {
    pub method: Method,
    pub url: String,
    pub headers: HeaderMap,
    pub body: Body,
    /// POSTs are retried only when the caller says the request is idempotent.
    pub idempotent: bool,
}

impl Request {
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
        }
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    pub fn json(mut self, value: &serde_json::Value) -> Self {
        self.body = Body::Bytes(Bytes::from(value.to_string()));
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self
    }

    pub fn bytes(mut self, content_type: &'static str, body: Bytes) -> Self {
        self.body = Body::Bytes(body);
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        self
    }

    pub fn stream(mut self, content_type: &'static str, body: reqwest::Body) -> Self {
        self.body = Body::Stream(Some(body));
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        self
    }

    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
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
        let mut certs = Vec::new();
        if let Some(path) = &config.cacert {
            let pem = std::fs::read(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::config(&config.origin, format!("CA file {}: {e}", path.display()))
            })?;
            if certs.is_empty() {
                return Err(Error::config(
                    &config.origin,
                    format!("CA file {} holds no certificate", path.display()),
                ));
            }
        }
        let build = |pool: bool| {
            let mut b = reqwest::Client::builder()
                .user_agent(concat!("simplestreams-rs/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(options.connect_timeout)
                .read_timeout(options.read_timeout)
                .tls_certs_merge(certs.iter().cloned())
                .danger_accept_invalid_certs(config.insecure);
            if !pool {
                b = b.pool_max_idle_per_host(0);
            }
            b.build()
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
        let mut attempt = 0u32;
        loop {
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
            let can_retry = req.replayable() && attempt < self.retry.max_retries;
            tracing::debug!(method = %req.method, url = %req.url, attempt, "OpenStack request");
            match builder.send().await {
                Ok(resp) if resp.status().is_success() || resp.status().is_redirection() => {
                    return Ok(resp)
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if can_retry && req.idempotent && RetryConfig::retryable_status(status) {
                        tracing::debug!(status, url = %req.url, "retrying after an error status");
                    } else {
                        let body = resp.text().await.unwrap_or_default();
                        return Err(Error::from_status(
                            req.method.as_str(),
                            &req.url,
                            status,
                            &body,
                        ));
                    }
                }
                Err(e) => {
                    // A failed connection never reached the server: any request may be resent.
                    // A refused certificate stays refused.
                    let retry = can_retry && (req.idempotent || e.is_connect()) && !tls_refusal(&e);
                    if !retry {
                        return Err(Error::Transport {
                            method: req.method.to_string(),
                            url: req.url.clone(),
                            source: e,
                        });
                    }
                    tracing::debug!(error = %e, url = %req.url, "retrying after a transport error");
                }
            }
            tokio::time::sleep(self.retry.backoff(attempt)).await;
            attempt += 1;
        }
    }
}

/// Whether a transport error is a TLS refusal (an unknown CA, a wrong host name): TLS
/// libraries report those as `InvalidData` I/O errors somewhere down the source chain.
fn tls_refusal(e: &reqwest::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = next {
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) if io.kind() == std::io::ErrorKind::InvalidData => return true,
            // An I/O error's `source()` skips the error it wraps: look at that one itself.
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    false
}

/// Reads a JSON response body into `T`, naming the request in the error.
pub(crate) async fn json<T: serde::de::DeserializeOwned>(
    method: &Method,
    url: &str,
    resp: Response,
) -> Result<T> {
    let bytes = resp.bytes().await.map_err(|source| Error::Transport {
        method: method.to_string(),
        url: url.to_owned(),
        source,
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
