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
//! only once the body has ended cleanly ([`last_chunk_held`]), so a body failing at its end
//! (the engine's checksums) leaves the service short of the `Content-Length`, storing nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use http_retry::{send, Failure, HttpOptions, Replay, RetryConfig};
use object_store::path::Path;
use object_store::signer::{HeaderName, HeaderValue, Method, SignedUrlOptions, Signer};
use reqwest::header::CONTENT_LENGTH;
use simplestreams_mirror::{last_chunk_held, ByteStream, Error, Result};

/// `Content-MD5` (RFC 1864; `http` has no constant for it).
const CONTENT_MD5: HeaderName = HeaderName::from_static("content-md5");

/// The largest object S3 accepts in one PUT.
pub const MAX_STREAMED_PUT: u64 = 5 << 30;

/// How long a presigned URL is valid: the service checks it when the request starts, so an
/// upload may take longer.
const URL_VALIDITY: Duration = Duration::from_secs(15 * 60);

/// Presigned, streamed PUTs to one store.
#[derive(Clone)]
pub(crate) struct StreamedPut {
    signer: Arc<dyn Signer>,
    http: reqwest::Client,
}

impl std::fmt::Debug for StreamedPut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamedPut")
    }
}

impl StreamedPut {
    /// PUTs through URLs `signer` presigns, with a client of the workspace's usual settings.
    pub(crate) fn new(signer: Arc<dyn Signer>) -> Result<StreamedPut> {
        let http = HttpOptions::default()
            .client()
            .map_err(|e| Error::Transport {
                url: String::new(),
                message: format!("building the HTTP client: {e}"),
                source: Some(Box::new(e)),
            })?;
        Ok(StreamedPut { signer, http })
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
        // The body's own error (the engine's, naming the item and what failed) is kept to be
        // the answer; the HTTP client only learns that the body stopped.
        let failure = Arc::new(Mutex::new(None::<Error>));
        let seen = failure.clone();
        let mut body = Some(last_chunk_held(body).map(move |next| {
            next.map_err(|e| {
                let message = e.to_string();
                if let Ok(mut slot) = seen.lock() {
                    slot.get_or_insert(e);
                }
                std::io::Error::other(message)
            })
        }));
        // A streamed body is sent once: no retry.
        let answer = send(
            &RetryConfig::default(),
            Replay::ONCE,
            |s| s.is_success(),
            |_| {
                let request = self
                    .http
                    .put(url.clone())
                    .header(CONTENT_MD5, content_md5.clone())
                    .header(CONTENT_LENGTH, size);
                match body.take() {
                    Some(b) => request.body(reqwest::Body::wrap_stream(b)),
                    None => request,
                }
            },
        )
        .await;
        if let Some(e) = failure.lock().ok().and_then(|mut slot| slot.take()) {
            return Err(e);
        }
        match answer {
            Ok(response) => Ok(response
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)),
            Err(Failure::Status { response, .. }) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                Err(fail(format!(
                    "the service answered {status}{}",
                    s3_error(&text)
                        .map(|(code, message)| format!(": {code}: {message}"))
                        .unwrap_or_default()
                )))
            }
            Err(Failure::Transport { source, .. }) => Err(Error::Transport {
                url: location.to_string(),
                message: "the upload failed".into(),
                source: Some(Box::new(source)),
            }),
        }
    }
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
