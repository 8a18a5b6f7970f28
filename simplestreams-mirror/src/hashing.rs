//! Hashing on a thread of its own: the one way this workspace hashes large bodies while they
//! stream (the engine's verification, Glance's md5 of what it sends).
//!
//! Chunks are reference-counted, not copied, and handed over in batches of about 1 MiB, so that
//! receiving, hashing and writing overlap on separate cores and a thread wakes up once per batch
//! rather than once per chunk.

use bytes::Bytes;
use simplestreams_core::{Digests, StreamVerifier};

use crate::error::{Error, Result};

/// Bytes handed to a hashing thread at a time: few thread wake-ups, little memory held.
pub const HASH_BATCH: usize = 1 << 20;

/// A [`StreamVerifier`] running on a blocking thread, fed through a small channel.
pub struct HashingThread {
    tx: tokio::sync::mpsc::Sender<Vec<Bytes>>,
    done: tokio::task::JoinHandle<simplestreams_core::Result<Digests>>,
}

impl HashingThread {
    /// Starts `verifier` on a blocking thread of the runtime.
    pub fn start(mut verifier: StreamVerifier) -> HashingThread {
        // Two batches in flight keep the thread busy; more would only hold more memory.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(2);
        let done = tokio::task::spawn_blocking(move || {
            while let Some(batch) = rx.blocking_recv() {
                for chunk in batch {
                    verifier.update(&chunk)?;
                }
            }
            verifier.finish()
        });
        HashingThread { tx, done }
    }

    /// Hands over a batch; `false` when the thread has already stopped (its verdict, from
    /// [`HashingThread::finish`], says why).
    pub async fn send(&self, batch: Vec<Bytes>) -> bool {
        batch.is_empty() || self.tx.send(batch).await.is_ok()
    }

    /// Ends the input and waits for the verdict: the digests, or the verification failure.
    pub async fn finish(self) -> Result<simplestreams_core::Result<Digests>> {
        drop(self.tx);
        self.done
            .await
            .map_err(|e| Error::Aborted(format!("hashing task failed: {e}")))
    }
}

/// Gathers chunks into batches of about [`HASH_BATCH`] bytes.
#[derive(Default)]
pub struct Batcher {
    batch: Vec<Bytes>,
    size: usize,
}

impl Batcher {
    /// Adds a chunk; returns a full batch to hand over, if this one filled it.
    pub fn push(&mut self, chunk: Bytes) -> Option<Vec<Bytes>> {
        self.size += chunk.len();
        self.batch.push(chunk);
        (self.size >= HASH_BATCH).then(|| self.take())
    }

    /// Whatever is gathered (maybe nothing).
    pub fn take(&mut self) -> Vec<Bytes> {
        self.size = 0;
        std::mem::take(&mut self.batch)
    }
}

/// A request body fed chunk by chunk, its MD5 computed on a hashing thread on the way: for a
/// backend streaming a segment or part of an object in one request, which compares that MD5
/// with the ETag the service answers (the body is not held, so the MD5 cannot go first).
pub struct HashedBody {
    tx: futures::channel::mpsc::Sender<std::io::Result<Bytes>>,
    hasher: HashingThread,
    batcher: Batcher,
    len: u64,
}

/// Chunks queued for the request: enough to keep its connection busy.
const QUEUED_CHUNKS: usize = 8;

impl HashedBody {
    /// A body to feed, and the stream to give the HTTP client as the request's body.
    pub fn new() -> (HashedBody, crate::store::HttpBody) {
        use futures::StreamExt;
        let (tx, rx) = futures::channel::mpsc::channel(QUEUED_CHUNKS);
        let md5 = StreamVerifier::new("", simplestreams_core::Expected::default())
            .also_compute(simplestreams_core::ChecksumKind::Md5);
        let body = HashedBody {
            tx,
            hasher: HashingThread::start(md5),
            batcher: Batcher::default(),
            len: 0,
        };
        (body, rx.boxed())
    }

    /// The bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Feeds a chunk; `false` when the request no longer reads its body (it ended early: its
    /// answer says why).
    pub async fn push(&mut self, chunk: Bytes) -> bool {
        use futures::SinkExt;
        self.len += chunk.len() as u64;
        if let Some(batch) = self.batcher.push(chunk.clone()) {
            // A failed send means the hasher stopped; `finish` says why.
            let _ = self.hasher.send(batch).await;
        }
        self.tx.send(Ok(chunk)).await.is_ok()
    }

    /// Ends the body cleanly (the request then completes) and returns the MD5 (hex) of what
    /// was fed.
    pub async fn finish(mut self) -> Result<String> {
        self.tx.close_channel();
        let _ = self.hasher.send(self.batcher.take()).await;
        let digests = self.hasher.finish().await??;
        Ok(digests.md5.unwrap_or_default())
    }

    /// Cuts the body: an error as its next chunk makes the HTTP client drop the request without
    /// the body's end, so the service stores nothing of it. `false` when the request did not
    /// take it within `wait` (stalled, or already ended): the caller must then drop the request
    /// itself *before* dropping this body, whose end would otherwise look clean.
    pub async fn cut(&mut self, wait: std::time::Duration) -> bool {
        use futures::SinkExt;
        let error = std::io::Error::other("the object's body failed");
        let delivered = tokio::time::timeout(wait, self.tx.send(Err(error))).await;
        matches!(delivered, Ok(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use simplestreams_core::{ChecksumKind, Expected};

    use super::*;

    #[tokio::test]
    async fn a_hashed_body_passes_its_chunks_and_gives_their_md5() {
        use futures::StreamExt;
        let (mut body, request) = HashedBody::new();
        let reader = tokio::spawn(request.collect::<Vec<_>>());
        for chunk in [&b"hello "[..], &[7u8; 3 << 20][..], &b"world"[..]] {
            assert!(body.push(Bytes::copy_from_slice(chunk)).await);
        }
        assert_eq!(body.len(), 6 + (3 << 20) + 5);
        let md5 = body.finish().await.expect("md5");
        let got: Vec<u8> = reader
            .await
            .expect("reader")
            .into_iter()
            .map(|c| c.expect("clean"))
            .flat_map(|c| c.to_vec())
            .collect();
        let mut want = StreamVerifier::new("", Expected::default()).also_compute(ChecksumKind::Md5);
        want.update(&got).expect("hash");
        assert_eq!(Some(md5), want.finish().expect("digests").md5);
    }

    #[tokio::test]
    async fn a_cut_hashed_body_ends_with_an_error() {
        use futures::StreamExt;
        let (mut body, mut request) = HashedBody::new();
        assert!(body.push(Bytes::from_static(b"part")).await);
        assert!(body.cut(std::time::Duration::from_secs(1)).await);
        assert!(matches!(request.next().await, Some(Ok(_))));
        assert!(
            matches!(request.next().await, Some(Err(_))),
            "the cut comes as an error"
        );
    }

    #[tokio::test]
    async fn batches_reach_the_verifier_in_order() {
        let verifier =
            StreamVerifier::new("x", Expected::default()).also_compute(ChecksumKind::Sha256);
        let thread = HashingThread::start(verifier);
        let mut batcher = Batcher::default();
        let mut all = Vec::new();
        for i in 0..(3 * HASH_BATCH / 1000 + 7) {
            let chunk = Bytes::from(vec![(i % 251) as u8; 1000]);
            all.extend_from_slice(&chunk);
            if let Some(batch) = batcher.push(chunk) {
                assert!(thread.send(batch).await);
            }
        }
        assert!(thread.send(batcher.take()).await);
        let digests = thread.finish().await.expect("joined").expect("verified");
        let mut direct =
            StreamVerifier::new("x", Expected::default()).also_compute(ChecksumKind::Sha256);
        direct.update(&all).expect("update");
        assert_eq!(digests, direct.finish().expect("digests"));
    }
}
