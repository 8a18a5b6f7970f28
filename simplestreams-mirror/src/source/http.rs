//! The one HTTP layer: a shared client, retries with backoff, status-to-error mapping, Range.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{self, HeaderMap};
use reqwest::StatusCode;
use url::Url;

use super::resume::resuming;
use super::{RetryConfig, Source};
use crate::error::{Error, Result};
use crate::store::{GetOptions, GetResult, ObjectMeta, Validators};

/// HTTP client settings.
///
/// Defaults: connect timeout 10 s, read timeout 60 s (time without receiving a byte), retries as
/// [`RetryConfig::default`], no automatic decompression (image bytes are stored as served, so
/// that their checksums match).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed between two reads of a response.
    pub read_timeout: Duration,
    /// Retry policy.
    pub retry: RetryConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            retry: RetryConfig::default(),
        }
    }
}

impl HttpConfig {
    /// Builds a client with these settings (one per process; it pools connections).
    pub fn client(&self) -> Result<reqwest::Client> {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .user_agent(concat!("simplestreams-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Transport {
                url: String::new(),
                message: format!("cannot build the HTTP client: {e}"),
            })
    }
}

/// Sends requests with retries; shared by [`HttpSource`] and its resuming body.
#[derive(Debug, Clone)]
pub(crate) struct Requester {
    pub(crate) client: reqwest::Client,
    pub(crate) retry: RetryConfig,
}

impl Requester {
    /// GET `url` from `offset`, conditionally; retries what is worth retrying. Answers with a
    /// response whose status is 2xx or 304; 404 and 410 are [`Error::NotFound`].
    pub(crate) async fn request(
        &self,
        url: &Url,
        offset: u64,
        validators: Option<&Validators>,
    ) -> Result<reqwest::Response> {
        let mut attempt = 0;
        loop {
            let mut req = self.client.get(url.clone());
            if offset > 0 {
                req = req.header(header::RANGE, format!("bytes={offset}-"));
            }
            if let Some(v) = validators {
                if let Some(etag) = &v.etag {
                    req = req.header(header::IF_NONE_MATCH, etag);
                }
                if let Some(lm) = &v.last_modified {
                    req = req.header(header::IF_MODIFIED_SINCE, lm);
                }
            }
            let failure = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_success() || status == StatusCode::NOT_MODIFIED {
                        return Ok(resp);
                    }
                    if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
                        return Err(Error::NotFound {
                            location: url.to_string(),
                        });
                    }
                    if !RetryConfig::retryable_status(status.as_u16()) {
                        return Err(Error::Http {
                            url: url.to_string(),
                            status: status.as_u16(),
                            message: String::new(),
                        });
                    }
                    Error::Http {
                        url: url.to_string(),
                        status: status.as_u16(),
                        message: format!("after {} attempts", attempt + 1),
                    }
                }
                Err(e) => Error::Transport {
                    url: url.to_string(),
                    message: format!("{} (after {} attempts)", error_chain(&e), attempt + 1),
                },
            };
            if attempt >= self.retry.max_retries {
                return Err(failure);
            }
            let wait = self.retry.backoff(attempt);
            tracing::debug!("{failure}; retrying in {wait:?}");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// The error and its causes on one line (reqwest's own message hides the cause).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

pub(crate) fn validators_of(headers: &HeaderMap) -> Validators {
    let get = |h| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Validators {
        etag: get(header::ETAG),
        last_modified: get(header::LAST_MODIFIED),
    }
}

/// `Content-Range: bytes START-END/TOTAL` → (START, TOTAL).
pub(crate) fn content_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let v = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

/// A mirror over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpSource {
    base: Url,
    requester: Requester,
}

impl HttpSource {
    /// A source rooted at `location` (`http://host/path/`), with its own client.
    pub fn new(location: &str, config: &HttpConfig) -> Result<HttpSource> {
        HttpSource::with_client(location, config.client()?, config.retry)
    }

    /// A source sharing an existing client (connections are pooled per client).
    pub fn with_client(
        location: &str,
        client: reqwest::Client,
        retry: RetryConfig,
    ) -> Result<HttpSource> {
        let mut base = Url::parse(location).map_err(|e| Error::Location {
            location: location.into(),
            message: e.to_string(),
        })?;
        if base.cannot_be_a_base() {
            return Err(Error::Location {
                location: location.into(),
                message: "not a base URL".into(),
            });
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        Ok(HttpSource {
            base,
            requester: Requester { client, retry },
        })
    }

    fn url_of(&self, path: &str) -> Result<Url> {
        simplestreams_core::check_safe_path(path)?;
        let mut url = self.base.clone();
        {
            let mut segments = url.path_segments_mut().map_err(|()| Error::Location {
                location: self.base.to_string(),
                message: "not a base URL".into(),
            })?;
            segments.pop_if_empty();
            segments.extend(path.split('/'));
        }
        Ok(url)
    }
}

impl fmt::Display for HttpSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base.as_str())
    }
}

#[async_trait]
impl Source for HttpSource {
    async fn get(&self, path: &str, options: GetOptions) -> Result<GetResult> {
        let url = self.url_of(path)?;
        let offset = options.offset.unwrap_or(0);
        let cond = options.if_not_modified.as_ref().filter(|v| !v.is_empty());
        let resp = self.requester.request(&url, offset, cond).await?;
        if resp.status() == StatusCode::NOT_MODIFIED {
            return Ok(GetResult::NotModified);
        }
        let validators = validators_of(resp.headers());
        let (size, skip) = if resp.status() == StatusCode::PARTIAL_CONTENT {
            match content_range(resp.headers()) {
                Some((start, total)) if start == offset => (total, 0),
                other => {
                    return Err(Error::Transport {
                        url: url.to_string(),
                        message: format!(
                            "asked for bytes from {offset}, got Content-Range {other:?}"
                        ),
                    })
                }
            }
        } else {
            // A 200 to a Range request: the server sends everything; drop what we did not ask for.
            (resp.content_length(), offset)
        };
        let meta = ObjectMeta {
            path: path.to_string(),
            size,
            validators: validators.clone(),
        };
        let body = resuming(
            self.requester.clone(),
            url,
            resp,
            offset,
            skip,
            size,
            validators.etag,
        );
        Ok(GetResult::Found { meta, body })
    }

    fn url(&self, path: &str) -> String {
        self.url_of(path)
            .map(String::from)
            .unwrap_or_else(|_| format!("{}{path}", self.base))
    }
}
