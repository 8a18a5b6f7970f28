//! A mirror over HTTP(S): GETs with retries (the workspace's `http-retry` layer), conditional
//! requests, and bodies that resume with `Range` after a cut.

use std::fmt;

use async_trait::async_trait;
use http_retry::{HttpOptions, RetryConfig};
use reqwest::StatusCode;
use url::Url;

use super::request::{content_range, validators_of, Requester};
use super::resume::resuming;
use super::Source;
use crate::error::{Error, Result};
use crate::store::{GetOptions, GetResult, ObjectMeta};

/// A mirror over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpSource {
    base: Url,
    requester: Requester,
}

/// `location` as the base URL of the files below it (ending with `/`).
pub(crate) fn base_url(location: &str) -> Result<Url> {
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
    Ok(base)
}

impl HttpSource {
    /// A source rooted at `location` (`http://host/path/`), with its own client.
    pub fn new(location: &str, options: &HttpOptions) -> Result<HttpSource> {
        let client = options
            .client()
            .map_err(|e| Error::transport(location, "cannot build the HTTP client", e))?;
        HttpSource::with_client(location, client, options.retry)
    }

    /// A source sharing an existing client (connections are pooled per client).
    pub fn with_client(
        location: &str,
        client: reqwest::Client,
        retry: RetryConfig,
    ) -> Result<HttpSource> {
        let base = base_url(location)?;
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
        let resp = self.requester.get(&url, offset, cond).await?;
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
                        source: None,
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
            content_encoding: resp
                .headers()
                .get(reqwest::header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
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
