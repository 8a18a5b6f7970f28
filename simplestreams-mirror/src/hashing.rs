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

#[cfg(test)]
mod tests {
    use simplestreams_core::{ChecksumKind, Expected};

    use super::*;

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
