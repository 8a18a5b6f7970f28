//! Fetching one item: stream it from the source through the verifier into the target.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use simplestreams_core::StreamVerifier;

use super::Progress;
use crate::error::{Error, Result};
use crate::source::Source;
use crate::store::{ByteStream, GetOptions, GetResult};
use crate::target::{NewItem, Target};

/// Wraps `body` so that every byte goes through the verifier; the stream ends with an error if
/// the size or any checksum fails, so that the target never publishes it.
///
/// Hashing runs on a blocking thread fed through a channel (chunks are reference-counted, not
/// copied), so that receiving, hashing and writing overlap: one core hashes while another
/// receives. The end of the stream waits for the hasher's verdict.
pub(crate) fn verifying(
    body: ByteStream,
    item: &NewItem,
    url: String,
    progress: Arc<dyn Progress>,
) -> ByteStream {
    let mut verifier = StreamVerifier::new(item.key.to_string(), item.expected.clone());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(4);
    let hasher = tokio::task::spawn_blocking(move || {
        while let Some(batch) = rx.blocking_recv() {
            for chunk in batch {
                verifier.update(&chunk)?;
            }
        }
        verifier.finish()
    });
    let name = item.key.to_string();
    let fail = move |e: simplestreams_core::Error| Error::Verify {
        item: name.clone(),
        url: url.clone(),
        source: Box::new(e),
    };
    let state = Verifying {
        body,
        tx: Some(tx),
        batch: Vec::new(),
        batched: 0,
        hasher: Some(hasher),
        fail: Box::new(fail),
        progress,
    };
    stream::unfold(state, |mut st| async move {
        let tx = st.tx.as_ref()?;
        match st.body.next().await {
            Some(Ok(chunk)) => {
                st.batched += chunk.len();
                st.batch.push(chunk.clone());
                if st.batched >= HASH_BATCH {
                    let batch = std::mem::take(&mut st.batch);
                    st.batched = 0;
                    if tx.send(batch).await.is_err() {
                        // The hasher stopped early: too many bytes. Its verdict says so.
                        let err = st.verdict().await.err()?;
                        return Some((Err(err), st));
                    }
                }
                st.progress.bytes(chunk.len() as u64);
                Some((Ok(chunk), st))
            }
            Some(Err(e)) => {
                st.tx = None;
                Some((Err(e), st))
            }
            None => match st.verdict().await {
                Ok(()) => None,
                Err(e) => Some((Err(e), st)),
            },
        }
    })
    .boxed()
}

type Fail = Box<dyn Fn(simplestreams_core::Error) -> Error + Send + Sync>;

/// Bytes handed to the hasher at a time: few thread wake-ups, little memory held.
const HASH_BATCH: usize = 1 << 20;

struct Verifying {
    body: ByteStream,
    tx: Option<tokio::sync::mpsc::Sender<Vec<Bytes>>>,
    batch: Vec<Bytes>,
    batched: usize,
    hasher:
        Option<tokio::task::JoinHandle<simplestreams_core::Result<simplestreams_core::Digests>>>,
    fail: Fail,
    progress: Arc<dyn Progress>,
}

impl Verifying {
    /// Closes the hasher's input and waits for its result; the stream ends after this.
    async fn verdict(&mut self) -> Result<()> {
        if let Some(tx) = self.tx.take() {
            let rest = std::mem::take(&mut self.batch);
            // A send error means the hasher already has a verdict.
            let _ = tx.send(rest).await;
        }
        let Some(hasher) = self.hasher.take() else {
            return Ok(());
        };
        match hasher.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err((self.fail)(e)),
            Err(e) => Err(Error::Aborted(format!("hashing task failed: {e}"))),
        }
    }
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
