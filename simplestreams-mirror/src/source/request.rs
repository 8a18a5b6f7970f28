//! GET requests of the HTTP source through the workspace's retry layer, and what their
//! headers say (validators, `Content-Range`). Shared by the source and its resuming body.

use http_retry::{Failure, Replay, RetryConfig};
use reqwest::header::{self, HeaderMap};
use reqwest::StatusCode;
use url::Url;

use crate::error::{Error, Result};
use crate::store::Validators;

/// Sends GET requests with retries.
#[derive(Debug, Clone)]
pub(super) struct Requester {
    pub(super) client: reqwest::Client,
    pub(super) retry: RetryConfig,
}

impl Requester {
    /// GET `url` from `offset`, conditionally; retries what is worth retrying. Answers with a
    /// response whose status is 2xx or 304; 404 and 410 are [`Error::NotFound`].
    pub(super) async fn get(
        &self,
        url: &Url,
        offset: u64,
        validators: Option<&Validators>,
    ) -> Result<reqwest::Response> {
        let accept = |s: StatusCode| s.is_success() || s == StatusCode::NOT_MODIFIED;
        let outcome = http_retry::send(&self.retry, Replay::IDEMPOTENT, accept, |_| {
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
            req
        })
        .await;
        match outcome {
            Ok(resp) => Ok(resp),
            Err(Failure::Status { response, attempts }) => {
                let status = response.status();
                if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
                    return Err(Error::NotFound {
                        location: url.to_string(),
                    });
                }
                Err(Error::Http {
                    url: url.to_string(),
                    status: status.as_u16(),
                    message: if attempts > 1 {
                        format!("after {attempts} attempts")
                    } else {
                        String::new()
                    },
                })
            }
            Err(Failure::Transport { source, attempts }) => Err(Error::transport(
                url.as_str(),
                if attempts > 1 {
                    format!("no answer after {attempts} attempts")
                } else {
                    "no answer".into()
                },
                source.without_url(),
            )),
        }
    }
}

pub(super) fn validators_of(headers: &HeaderMap) -> Validators {
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
pub(super) fn content_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let v = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}
