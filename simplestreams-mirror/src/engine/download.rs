//! Fetching one item: stream it from the source through the verifier into the target.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};

use super::Progress;
use crate::error::{Error, Result};
use crate::source::Source;
use crate::store::{ByteStream, GetOptions, GetResult};
use crate::target::{NewItem, Target};

/// Wraps `body` so that every byte goes through the verifier; the stream ends with an error if
/// the size or any checksum of `expected` fails, so that the target never publishes it.
///
/// Hashing runs on a blocking thread fed through a channel (chunks are reference-counted, not
/// copied), so that receiving, hashing and writing overlap: one core hashes while another
/// receives. The end of the stream waits for the hasher's verdict.
pub(crate) fn verifying(
    body: ByteStream,
    item: &NewItem,
    expected: Expected,
    url: String,
    progress: Arc<dyn Progress>,
) -> ByteStream {
    let small = expected.size.is_some_and(|n| n <= INLINE_HASH_MAX);
    let mut verifier = StreamVerifier::new(item.key.to_string(), expected);
    if small {
        return verifying_inline(body, verifier, item, url, progress);
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(2);
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

/// Items up to this size are hashed as they arrive, on the task that receives them: a thread
/// hand-off would cost more than the hashing (a mirror of many small files pays it per file).
const INLINE_HASH_MAX: u64 = 256 * 1024;

/// [`verifying`] for a small item: the same checks, without a hashing thread.
fn verifying_inline(
    body: ByteStream,
    verifier: StreamVerifier,
    item: &NewItem,
    url: String,
    progress: Arc<dyn Progress>,
) -> ByteStream {
    let name = item.key.to_string();
    let fail = move |e: simplestreams_core::Error| Error::Verify {
        item: name.clone(),
        url: url.clone(),
        source: Box::new(e),
    };
    stream::unfold(
        (body, Some(verifier), fail, progress),
        |(mut body, mut verifier, fail, progress)| async move {
            let v = verifier.as_mut()?;
            let next = match body.next().await {
                Some(Ok(chunk)) => match v.update(&chunk) {
                    Ok(()) => {
                        progress.bytes(chunk.len() as u64);
                        Ok(chunk)
                    }
                    Err(e) => {
                        verifier = None;
                        Err(fail(e))
                    }
                },
                Some(Err(e)) => {
                    verifier = None;
                    Err(e)
                }
                None => match verifier.take()?.finish() {
                    Ok(_) => return None,
                    Err(e) => Err(fail(e)),
                },
            };
            Some((next, (body, verifier, fail, progress)))
        },
    )
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
    let body = verifying(
        body,
        item,
        streamed_checks(target, item),
        url.clone(),
        progress,
    );
    target.insert_item(item, body).await.map_err(wrap)?;
    Ok(Fetch::Downloaded(item.expected.size.unwrap_or(0)))
}

/// What the engine verifies as the bytes stream: the item's size and checksums, less the kinds
/// the target checks itself after storing them (see [`Target::self_verified`]).
fn streamed_checks(target: &dyn Target, item: &NewItem) -> Expected {
    let mut expected = item.expected.clone();
    for kind in target.self_verified(item) {
        match kind {
            ChecksumKind::Md5 => expected.md5 = None,
            ChecksumKind::Sha256 => expected.sha256 = None,
            ChecksumKind::Sha512 => expected.sha512 = None,
        }
    }
    expected
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use bytes::Bytes;

    use super::*;
    use crate::engine::NoProgress;
    use crate::source::StoreSource;
    use crate::store::{InMemory, LocalStore, StoreExt, StoreLock};
    use crate::target::{HeldItem, ItemKey, State, StoreTarget};

    /// A directory target that claims to check `kinds` itself, and does not: what it stores
    /// shows what the engine let through.
    #[derive(Debug)]
    struct Claiming {
        inner: StoreTarget,
        kinds: Vec<ChecksumKind>,
    }

    impl std::fmt::Display for Claiming {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "claiming {}", self.inner)
        }
    }

    #[async_trait]
    impl Target for Claiming {
        async fn lock(&self) -> Result<StoreLock> {
            self.inner.lock().await
        }
        async fn load_state(&self) -> Result<State> {
            self.inner.load_state().await
        }
        async fn save_state(&self, state: &State) -> Result<()> {
            self.inner.save_state(state).await
        }
        async fn has_content(&self, item: &NewItem) -> Result<bool> {
            self.inner.has_content(item).await
        }
        async fn insert_item(&self, item: &NewItem, body: ByteStream) -> Result<()> {
            self.inner.insert_item(item, body).await
        }
        fn self_verified(&self, _item: &NewItem) -> Vec<ChecksumKind> {
            self.kinds.clone()
        }
        async fn remove_item(&self, key: &ItemKey, held: &HeldItem) -> Result<()> {
            self.inner.remove_item(key, held).await
        }
        async fn read_published(&self, path: &str) -> Result<Option<Bytes>> {
            self.inner.read_published(path).await
        }
        async fn publish_products(&self, path: &str, bytes: Bytes) -> Result<()> {
            self.inner.publish_products(path, bytes).await
        }
        async fn publish_index(&self, path: &str, bytes: Bytes) -> Result<()> {
            self.inner.publish_index(path, bytes).await
        }
    }

    const DATA: &[u8] = b"the bytes of one image, served as they are";

    fn item(expected: Expected) -> NewItem {
        NewItem {
            key: ItemKey {
                content_id: "c".into(),
                product: "p".into(),
                version: "1".into(),
                item: "disk1.img".into(),
            },
            path: Some("images/disk1.img".into()),
            expected,
            fields: Default::default(),
        }
    }

    fn good() -> Expected {
        let mut v = StreamVerifier::new("", Expected::default())
            .also_compute(ChecksumKind::Md5)
            .also_compute(ChecksumKind::Sha256);
        v.update(DATA).expect("no expectation to fail");
        let d = v.finish().expect("digests");
        Expected {
            size: Some(d.size),
            md5: d.md5,
            sha256: d.sha256,
            sha512: None,
        }
    }

    /// Fetches `served` as the item described by `expected` into a directory target that
    /// claims `kinds`; returns the outcome and whether the item's file is there.
    async fn fetch(
        served: &[u8],
        expected: Expected,
        kinds: &[ChecksumKind],
    ) -> (Result<Fetch>, bool) {
        let upstream = InMemory::new();
        upstream
            .put_bytes("images/disk1.img", Bytes::copy_from_slice(served))
            .await
            .expect("put");
        let source = StoreSource::new(Arc::new(upstream));
        let dir = tempfile::tempdir().expect("tempdir");
        let target = Claiming {
            inner: StoreTarget::new(Arc::new(LocalStore::new(dir.path()))),
            kinds: kinds.to_vec(),
        };
        let r = fetch_item(&source, &target, &item(expected), Arc::new(NoProgress)).await;
        (r, dir.path().join("images/disk1.img").is_file())
    }

    fn failed_kind(r: &Result<Fetch>) -> Option<ChecksumKind> {
        match r {
            Err(Error::Verify { source, .. }) => match **source {
                simplestreams_core::Error::Checksum { kind, .. } => Some(kind),
                _ => None,
            },
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_directory_target_gets_every_checksum_verified() {
        let (r, present) = fetch(DATA, good(), &[]).await;
        assert_eq!(r.ok(), Some(Fetch::Downloaded(DATA.len() as u64)));
        assert!(present);
        let bad_md5 = Expected {
            md5: Some("0".repeat(32)),
            ..good()
        };
        let (r, present) = fetch(DATA, bad_md5, &[]).await;
        assert_eq!(failed_kind(&r), Some(ChecksumKind::Md5), "{r:?}");
        assert!(!present, "a bad md5 leaves no file");
    }

    #[tokio::test]
    async fn kinds_a_target_checks_itself_are_left_to_it_and_the_rest_still_verified() {
        let bad_md5 = Expected {
            md5: Some("0".repeat(32)),
            ..good()
        };
        let (r, present) = fetch(DATA, bad_md5, &[ChecksumKind::Md5]).await;
        assert!(r.is_ok(), "md5 is the target's to check: {r:?}");
        assert!(present);

        let bad_sha256 = Expected {
            sha256: Some("0".repeat(64)),
            ..good()
        };
        let (r, present) = fetch(DATA, bad_sha256, &[ChecksumKind::Md5]).await;
        assert_eq!(failed_kind(&r), Some(ChecksumKind::Sha256), "{r:?}");
        assert!(!present);

        let longer = [DATA, b"!"].concat();
        let (r, present) = fetch(&longer, good(), &[ChecksumKind::Md5]).await;
        assert!(
            matches!(&r, Err(Error::Verify { source, .. })
                if matches!(**source, simplestreams_core::Error::Size { .. })),
            "{r:?}"
        );
        assert!(!present, "the size is always the engine's");
    }
}
