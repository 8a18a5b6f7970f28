//! A response body that survives cut connections: it asks again from where it stopped with
//! `Range: bytes=N-`, and copes with servers that ignore `Range` (they answer 200 with the whole
//! object; the download then restarts from byte 0 and the bytes already delivered are skipped
//! as they arrive again). Bytes are delivered once, in order; the caller verifies them all.

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use reqwest::StatusCode;
use url::Url;

use super::request::{content_range, validators_of, Requester};
use crate::error::{Error, Result};
use crate::store::ByteStream;

struct Body {
    requester: Requester,
    url: Url,
    inner: BoxStream<'static, reqwest::Result<Bytes>>,
    /// Absolute offset of the next byte to deliver.
    pos: u64,
    /// Bytes of the current response to drop before delivering (a restart after a 200).
    skip: u64,
    /// Full size of the object, when the server said.
    total: Option<u64>,
    etag: Option<String>,
    /// Consecutive failures without a byte of progress.
    failures: u32,
    done: bool,
}

pub(crate) fn resuming(
    requester: Requester,
    url: Url,
    resp: reqwest::Response,
    offset: u64,
    skip: u64,
    total: Option<u64>,
    etag: Option<String>,
) -> ByteStream {
    let body = Body {
        requester,
        url,
        inner: resp.bytes_stream().boxed(),
        pos: offset,
        skip,
        total,
        etag,
        failures: 0,
        done: false,
    };
    stream::unfold(body, |mut b| async move {
        if b.done {
            return None;
        }
        match b.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), b)),
            Ok(None) => None,
            Err(e) => {
                b.done = true;
                Some((Err(e), b))
            }
        }
    })
    .boxed()
}

/// Why a body stopped before its end.
#[derive(Debug, thiserror::Error)]
enum Cut {
    #[error(transparent)]
    Error(reqwest::Error),
    #[error("connection closed at byte {at} of {total}")]
    Closed { at: u64, total: u64 },
}

impl Body {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            let why = match self.inner.next().await {
                Some(Ok(mut chunk)) => {
                    if self.skip > 0 {
                        let drop = self.skip.min(chunk.len() as u64) as usize;
                        self.skip -= drop as u64;
                        chunk = chunk.slice(drop..);
                    }
                    if chunk.is_empty() {
                        continue;
                    }
                    self.pos += chunk.len() as u64;
                    self.failures = 0;
                    return Ok(Some(chunk));
                }
                Some(Err(e)) => Cut::Error(e.without_url()),
                None => match self.total {
                    // A connection closed before the announced end is a cut, not an end.
                    Some(total) if self.pos < total => Cut::Closed {
                        at: self.pos,
                        total,
                    },
                    _ => return Ok(None),
                },
            };
            self.resume(why).await?;
        }
    }

    /// Asks again from the first byte not delivered. Cuts without a byte of progress in
    /// between are counted: after as many as the retry policy allows, the cut is the answer.
    /// The request itself goes through the retry layer, so one that fails is final.
    async fn resume(&mut self, why: Cut) -> Result<()> {
        if self.failures >= self.requester.retry.max_retries {
            return Err(Error::transport(
                self.url.as_str(),
                format!(
                    "cut at byte {} (gave up after {} resumes)",
                    self.pos, self.failures
                ),
                why,
            ));
        }
        let wait = self.requester.retry.backoff(self.failures);
        self.failures += 1;
        tracing::info!(
            "{}: {why}; resuming at byte {} in {wait:?}",
            self.url,
            self.pos
        );
        tokio::time::sleep(wait).await;
        let resp = self.requester.get(&self.url, self.pos, None).await?;
        let etag = validators_of(resp.headers()).etag;
        if let (Some(old), Some(new)) = (&self.etag, &etag) {
            if old != new {
                return Err(Error::Transport {
                    url: self.url.to_string(),
                    message: format!("changed while downloading (ETag {old} then {new})"),
                    source: None,
                });
            }
        }
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => match content_range(resp.headers()) {
                Some((start, _)) if start == self.pos => self.skip = 0,
                other => {
                    return Err(Error::Transport {
                        url: self.url.to_string(),
                        message: format!(
                            "asked to resume at byte {}, got Content-Range {other:?}",
                            self.pos
                        ),
                        source: None,
                    })
                }
            },
            StatusCode::OK => {
                tracing::info!(
                    "{}: the server ignored Range; reading again from byte 0",
                    self.url
                );
                self.skip = self.pos;
            }
            other => {
                return Err(Error::Http {
                    url: self.url.to_string(),
                    status: other.as_u16(),
                    message: "unexpected answer to a resumed request".into(),
                })
            }
        }
        self.inner = resp.bytes_stream().boxed();
        Ok(())
    }
}
