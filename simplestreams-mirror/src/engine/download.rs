//! Fetching one item: stream it from the source through the verifier into the target.

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use simplestreams_core::StreamVerifier;

use super::Progress;
use crate::error::{Error, Result};
use crate::source::Source;
use crate::store::{ByteStream, GetOptions, GetResult};
use crate::target::{NewItem, Target};

/// Wraps `body` so that every byte goes through the verifier; the stream ends with an error if
/// the size or any checksum fails, so that the target never publishes it.
pub(crate) fn verifying(
    body: ByteStream,
    item: &NewItem,
    url: String,
    progress: Arc<dyn Progress>,
) -> ByteStream {
    let verifier = StreamVerifier::new(item.key.to_string(), item.expected.clone());
    let name = item.key.to_string();
    let fail = move |e: simplestreams_core::Error| Error::Verify {
        item: name.clone(),
        url: url.clone(),
        source: Box::new(e),
    };
    stream::unfold(Some((body, verifier, fail, progress)), |st| async move {
        let (mut body, mut v, fail, progress) = st?;
        match body.next().await {
            Some(Ok(chunk)) => match v.update(&chunk) {
                Ok(()) => {
                    progress.bytes(chunk.len() as u64);
                    Some((Ok(chunk), Some((body, v, fail, progress))))
                }
                Err(e) => Some((Err(fail(e)), None)),
            },
            Some(Err(e)) => Some((Err(e), None)),
            None => match v.finish() {
                Ok(_) => None,
                Err(e) => Some((Err(fail(e)), None)),
            },
        }
    })
    .boxed()
}

/// What happened to one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fetch {
    /// Downloaded and verified, this many bytes.
    Downloaded(u64),
    /// Already there and verified.
    Present,
}

/// Downloads and inserts one item with a `path`.
pub(crate) async fn fetch_item(
    source: &dyn Source,
    target: &dyn Target,
    item: &NewItem,
    progress: Arc<dyn Progress>,
) -> Result<Fetch> {
    let Some(path) = item.path.as_deref() else {
        return Ok(Fetch::Present);
    };
    let url = source.url(path);
    let wrap = |e: Error| match e {
        e @ Error::Verify { .. } => e,
        e => Error::Item {
            item: item.key.to_string(),
            url: url.clone(),
            source: Box::new(e),
        },
    };
    item.expected
        .require_verifiable(&item.key.to_string())
        .map_err(|e| Error::Verify {
            item: item.key.to_string(),
            url: url.clone(),
            source: Box::new(e),
        })?;
    if target.has_content(item).await.map_err(wrap)? {
        tracing::debug!("{}: already present and verified", item.key);
        return Ok(Fetch::Present);
    }
    let body = match source
        .get(path, GetOptions::default())
        .await
        .map_err(wrap)?
    {
        GetResult::Found { body, .. } => body,
        GetResult::NotModified => {
            return Err(wrap(Error::Aborted(
                "not modified to an unconditional request".into(),
            )))
        }
    };
    let body = verifying(body, item, url.clone(), progress);
    target.insert_item(item, body).await.map_err(wrap)?;
    Ok(Fetch::Downloaded(item.expected.size.unwrap_or(0)))
}
