//! One PUT streamed as the bytes come, for an object whose size and MD5 are known before it is
//! sent (an item whose `md5` the stream publishes).
//!
//! `object_store`'s own `put` takes the whole object in memory, and its multipart upload holds
//! parts in memory, hashes each for its signature, and costs the service a part each (on
//! Swift's s3api, a segment each and a manifest). For an object of known size and MD5 there is
//! a plainer way: a URL presigned by `object_store`'s [`Signer`] (its SigV4 signing, so no
//! signing code here), with `Content-MD5` among the signed headers, and one PUT of exactly
//! `size` bytes through the workspace's HTTP client. The service checks the MD5 as it stores
//! the bytes (S3's `BadDigest`) and stores the object whole or not at all. The last chunk goes
//! only once the body has ended cleanly ([`simplestreams_mirror::last_chunk_held`]), so a body failing at its end
//! (the engine's checksums) leaves the service short of the `Content-Length`, storing nothing.
//!
//! An object whose size only is known (an item published with its sha256 alone) goes the same
//! way as a multipart upload of few, large parts (up to [`MAX_STREAMED_PUT`] each, so a 1 GiB
//! item is one part): `object_store` starts and completes it ([`MultipartStore`]), each part is
//! one streamed PUT to a presigned `UploadPart` URL (the flow `object_store` documents for
//! credential-less clients), its MD5 computed on a hashing thread on the way and compared with
//! the ETag the service answers. The object appears only when the upload is completed, after
//! the body has ended cleanly; on any failure the upload is aborted. A failed part cannot be
//! sent again: the item fails, and the next run sends it again.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use http_retry::{send, Failure, HttpOptions, Replay, RetryConfig};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::signer::{HeaderName, HeaderValue, Method, SignedUrlOptions, Signer, Url};
use object_store::MultipartId;
use reqwest::header::CONTENT_LENGTH;
use simplestreams_mirror::hashing::HashedBody;
use simplestreams_mirror::{http_body, ByteStream, Error, Result};

/// `Content-MD5` (RFC 1864; `http` has no constant for it).
const CONTENT_MD5: HeaderName = HeaderName::from_static("content-md5");

/// The largest object S3 accepts in one PUT.
pub const MAX_STREAMED_PUT: u64 = 5 << 30;

/// How long cutting a part's body may wait for its connection to take the error.
const CUT_WAIT: Duration = Duration::from_secs(10);

/// How long a presigned URL is valid: the service checks it when the request starts, so an
/// upload may take longer.
const URL_VALIDITY: Duration = Duration::from_secs(15 * 60);

/// Presigned, streamed PUTs to one store.
#[derive(Clone)]
pub(crate) struct StreamedPut {
    signer: Arc<dyn Signer>,
    multipart: Arc<dyn MultipartStore>,
    http: reqwest::Client,
}

impl std::fmt::Debug for StreamedPut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamedPut")
    }
}

impl StreamedPut {
    /// PUTs through URLs `signer` presigns, multipart uploads started and completed by
    /// `multipart` (the same store), with a client of settings `http`.
    pub(crate) fn new(
        signer: Arc<dyn Signer>,
        multipart: Arc<dyn MultipartStore>,
        http: &HttpOptions,
    ) -> Result<StreamedPut> {
        let http = http.client().map_err(|e| Error::Transport {
            url: String::new(),
            message: format!("building the HTTP client: {e}"),
            source: Some(Box::new(e)),
        })?;
        Ok(StreamedPut {
            signer,
            multipart,
            http,
        })
    }

    /// Stores `body` (`size` bytes whose MD5 is `md5`, hex) at `key`; `location` names it in
    /// messages. Returns the ETag the service answered.
    pub(crate) async fn put(
        &self,
        key: &Path,
        location: &str,
        body: ByteStream,
        size: u64,
        md5: &str,
    ) -> Result<Option<String>> {
        let fail = |message: String| Error::Transport {
            url: location.to_string(),
            message,
            source: None,
        };
        let digest = hex::decode(md5)
            .ok()
            .filter(|d| d.len() == 16)
            .ok_or_else(|| fail(format!("{md5:?} is not an MD5")))?;
        let content_md5 =
            HeaderValue::try_from(base64::engine::general_purpose::STANDARD.encode(digest))
                .map_err(|e| fail(format!("Content-MD5: {e}")))?;
        let options =
            SignedUrlOptions::default().with_signed_header(CONTENT_MD5, content_md5.clone());
        let url = self
            .signer
            .signed_url_opts(Method::PUT, key, URL_VALIDITY, &options)
            .await
            .map_err(|e| crate::error::convert("put", location.to_string(), e))?;
        let (body, failure) = http_body(body);
        let answer = self
            .send_once(
                url,
                Some(content_md5),
                reqwest::Body::wrap_stream(body),
                size,
                location,
            )
            .await;
        if let Some(e) = failure.take() {
            return Err(e);
        }
        answer
    }

    /// Stores `body` (`size` bytes) at `key` as a multipart upload of streamed parts (see the
    /// module's documentation); `location` names it in messages. Returns the object's ETag.
    pub(crate) async fn put_in_parts(
        &self,
        key: &Path,
        location: &str,
        mut body: ByteStream,
        size: u64,
    ) -> Result<Option<String>> {
        let converted = |e| crate::error::convert("put", location.to_string(), e);
        let id = self
            .multipart
            .create_multipart(key)
            .await
            .map_err(converted)?;
        let done = match self.send_parts(key, location, &id, &mut body, size).await {
            Ok(parts) => self
                .multipart
                .complete_multipart(key, &id, parts)
                .await
                .map_err(converted),
            Err(e) => Err(e),
        };
        match done {
            Ok(result) => Ok(result.e_tag),
            Err(e) => {
                if let Err(abort) = self.multipart.abort_multipart(key, &id).await {
                    tracing::warn!("{location}: aborting the multipart upload failed: {abort}");
                }
                Err(e)
            }
        }
    }

    /// Sends the parts of upload `id`, each checked against its MD5; the body must then end
    /// cleanly, exactly `size` bytes long.
    async fn send_parts(
        &self,
        key: &Path,
        location: &str,
        id: &MultipartId,
        body: &mut ByteStream,
        size: u64,
    ) -> Result<Vec<PartId>> {
        let mut parts = Vec::new();
        let mut carry: Option<Bytes> = None;
        let mut left = size;
        while left > 0 {
            let len = left.min(MAX_STREAMED_PUT);
            let query = SignedUrlOptions::default().with_query([
                ("partNumber", (parts.len() + 1).to_string()),
                ("uploadId", id.clone()),
            ]);
            let url = self
                .signer
                .signed_url_opts(Method::PUT, key, URL_VALIDITY, &query)
                .await
                .map_err(|e| crate::error::convert("put", location.to_string(), e))?;
            let (part, request_body) = HashedBody::new();
            let offset = size - left;
            let feed = feed_part(body, &mut carry, part, len, offset, size, location);
            let sent = self.send_once(
                url,
                None,
                reqwest::Body::wrap_stream(request_body),
                len,
                location,
            );
            let (fed, answer) = tokio::join!(feed, sent);
            let fed = fed?;
            let etag = answer?;
            let want = fed.unwrap_or_default();
            match &etag {
                Some(got) if got.trim_matches('"').eq_ignore_ascii_case(&want) => {}
                other => {
                    return Err(Error::Transport {
                        url: location.to_string(),
                        message: format!(
                            "part {} stored something else: ETag {other:?}, sent MD5 {want}",
                            parts.len() + 1
                        ),
                        source: None,
                    })
                }
            }
            parts.push(PartId {
                content_id: etag.unwrap_or_default(),
            });
            left -= len;
        }
        // Every byte announced went: the body must end here, cleanly (the engine's checksums
        // end it with an error when they fail).
        let longer = || {
            Error::Aborted(format!(
                "{location}: the body is longer than its {size} bytes"
            ))
        };
        if carry.is_some() {
            return Err(longer());
        }
        while let Some(next) = body.next().await {
            if !next?.is_empty() {
                return Err(longer());
            }
        }
        Ok(parts)
    }

    /// One PUT of `len` bytes from `body` to a presigned `url` (with `Content-MD5` when given),
    /// sent once; returns the ETag answered, or an error naming `location` and the service's
    /// own error code.
    async fn send_once(
        &self,
        url: Url,
        content_md5: Option<HeaderValue>,
        body: reqwest::Body,
        len: u64,
        location: &str,
    ) -> Result<Option<String>> {
        let mut body = Some(body);
        // A streamed body is sent once: no retry.
        let answer = send(
            &RetryConfig::default(),
            Replay::ONCE,
            |s| s.is_success(),
            |_| {
                let mut request = self.http.put(url.clone()).header(CONTENT_LENGTH, len);
                if let Some(md5) = &content_md5 {
                    request = request.header(CONTENT_MD5, md5.clone());
                }
                match body.take() {
                    Some(b) => request.body(b),
                    None => request,
                }
            },
        )
        .await;
        match answer {
            Ok(response) => Ok(response
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)),
            Err(Failure::Status { response, .. }) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                Err(Error::Transport {
                    url: location.to_string(),
                    message: format!(
                        "the service answered {status}{}",
                        s3_error(&text)
                            .map(|(code, message)| format!(": {code}: {message}"))
                            .unwrap_or_default()
                    ),
                    source: None,
                })
            }
            Err(Failure::Transport { source, .. }) => Err(Error::Transport {
                url: location.to_string(),
                message: "the upload failed".into(),
                source: Some(Box::new(source)),
            }),
        }
    }
}

/// Feeds `len` bytes of `body` (after what `carry` holds from the previous part) to a part's
/// request. A body failing or ending early cuts the request (the service stores nothing of
/// it). Returns the MD5 of the part, or `None` when the request ended before its body (its
/// answer says why).
async fn feed_part(
    body: &mut ByteStream,
    carry: &mut Option<Bytes>,
    mut part: HashedBody,
    len: u64,
    offset: u64,
    size: u64,
    location: &str,
) -> Result<Option<String>> {
    while part.len() < len {
        let next = match carry.take() {
            Some(c) => Ok(c),
            None => match body.next().await {
                Some(next) => next,
                None => Err(Error::Aborted(format!(
                    "{location}: the body ended after {} of its {size} bytes",
                    offset + part.len()
                ))),
            },
        };
        let mut chunk = match next {
            Ok(c) => c,
            Err(e) => {
                // With its Content-Length short, the request fails whether or not the cut
                // reaches it in time.
                part.cut(CUT_WAIT).await;
                return Err(e);
            }
        };
        let room = usize::try_from(len - part.len()).unwrap_or(usize::MAX);
        if chunk.len() > room {
            *carry = Some(chunk.split_off(room));
        }
        if !part.push(chunk).await {
            return Ok(None);
        }
    }
    part.finish().await.map(Some)
}

/// `Code` and `Message` of an S3 XML error answer (`<Error><Code>BadDigest</Code>...`).
fn s3_error(body: &str) -> Option<(&str, &str)> {
    let field = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let end = start + body[start..].find(&format!("</{name}>"))?;
        Some(&body[start..end])
    };
    Some((field("Code")?, field("Message").unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_error_answers_give_their_code_and_message() {
        let body = "<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>BadDigest</Code>\
                    <Message>The Content-MD5 you specified did not match what we received.\
                    </Message><RequestId>tx1</RequestId></Error>";
        assert_eq!(
            s3_error(body),
            Some((
                "BadDigest",
                "The Content-MD5 you specified did not match what we received."
            ))
        );
        assert_eq!(s3_error("<html>Bad Gateway</html>"), None);
    }
}
