//! Fetching one item: stream it from the source through the verifier into the target.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use simplestreams_core::{ChecksumKind, ChecksumPolicy, Expected, StreamVerifier};

use super::Progress;
use crate::decompress::{
    decompressed_ftype, decompressing, image_compression, Compression, DecompressOptions,
};
use crate::error::{Error, Result};
use crate::hashing::{Batcher, HashingThread};
use crate::source::Source;
use crate::store::{ByteStream, GetOptions, GetResult};
use crate::target::{NewItem, StoredAs, Target};

/// Wraps `body` so that every byte goes through the verifier; the stream ends with an error if
/// the size or any checksum of `expected` fails, so that the target never publishes it.
///
/// Hashing runs on [`HashingThread`]s, so that receiving, hashing and writing overlap: one core
/// hashes while another receives. When several checksums are verified (`--all-checksums` on
/// Ubuntu's md5 + sha256), each kind gets a thread of its own: hashed one after the other they
/// would cost the sum, MD5 alone being about 2 s per GiB. The end of the stream waits for
/// every hasher's verdict.
pub(crate) fn verifying(
    body: ByteStream,
    name: String,
    expected: Expected,
    url: String,
    progress: Arc<dyn Progress>,
) -> ByteStream {
    let small = expected.size.is_some_and(|n| n <= INLINE_HASH_MAX);
    if small {
        let verifier = StreamVerifier::new(name.clone(), expected);
        return verifying_inline(body, verifier, name, url, progress);
    }
    let hashers = hasher_parts(&expected)
        .into_iter()
        .map(|part| HashingThread::start(StreamVerifier::new(name.clone(), part)))
        .collect();
    let item_name = name.clone();
    let fail = move |e: simplestreams_core::Error| Error::Verify {
        item: name.clone(),
        url: url.clone(),
        source: Box::new(e),
    };
    let state = Verifying {
        name: item_name,
        body,
        hashers,
        open: true,
        batcher: Batcher::default(),
        fail: Box::new(fail),
        progress,
    };
    stream::unfold(state, |mut st| async move {
        if !st.open {
            return None;
        }
        match st.body.next().await {
            Some(Ok(chunk)) => {
                if let Some(batch) = st.batcher.push(chunk.clone()) {
                    if !st.send(batch).await {
                        // A hasher stopped early: too many bytes. Its verdict says so; the
                        // stream must fail either way, or the target would publish a part.
                        let err = match st.verdict().await {
                            Err(e) => e,
                            Ok(()) => Error::Aborted(format!(
                                "{}: hashing stopped before the end of the item",
                                st.name
                            )),
                        };
                        return Some((Err(err), st));
                    }
                }
                st.progress.bytes(chunk.len() as u64);
                Some((Ok(chunk), st))
            }
            Some(Err(e)) => {
                st.open = false;
                st.hashers.clear();
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

/// How the checks of `expected` are shared out among hashing threads: one per checksum kind when
/// there are several and more than one core to run them, else all on one.
fn hasher_parts(expected: &Expected) -> Vec<Expected> {
    let kinds = expected.kinds();
    if kinds.len() < 2 || cores() < 2 {
        return vec![expected.clone()];
    }
    kinds.into_iter().map(|k| expected.only(k)).collect()
}

/// The cores this process may use, asked once: the answer reads cgroup files on Linux.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Items up to this size are hashed as they arrive, on the task that receives them: a thread
/// hand-off would cost more than the hashing (a mirror of many small files pays it per file).
const INLINE_HASH_MAX: u64 = 256 * 1024;

/// [`verifying`] for a small item: the same checks, without a hashing thread.
fn verifying_inline(
    body: ByteStream,
    verifier: StreamVerifier,
    name: String,
    url: String,
    progress: Arc<dyn Progress>,
) -> ByteStream {
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

struct Verifying {
    /// The item, for errors.
    name: String,
    body: ByteStream,
    hashers: Vec<HashingThread>,
    /// False once the stream has ended (with or without an error).
    open: bool,
    batcher: Batcher,
    fail: Fail,
    progress: Arc<dyn Progress>,
}

impl Verifying {
    /// Hands `batch` to every hasher; false when one of them has already stopped.
    async fn send(&mut self, batch: Vec<Bytes>) -> bool {
        let Some((last, others)) = self.hashers.split_last() else {
            return true;
        };
        for hasher in others {
            if !hasher.send(batch.clone()).await {
                return false;
            }
        }
        last.send(batch).await
    }

    /// Closes the hashers' input and waits for their results; the stream ends after this. When
    /// several checks fail, the error is the one a single verifier would give: the size first,
    /// then the strongest checksum.
    async fn verdict(&mut self) -> Result<()> {
        self.open = false;
        let rest = self.batcher.take();
        // A failed send means that hasher already has a verdict.
        let _ = self.send(rest).await;
        let mut worst: Option<simplestreams_core::Error> = None;
        for hasher in std::mem::take(&mut self.hashers) {
            if let Err(e) = hasher.finish().await? {
                if worst.as_ref().is_none_or(|w| severity(&e) > severity(w)) {
                    worst = Some(e);
                }
            }
        }
        match worst {
            None => Ok(()),
            Some(e) => Err((self.fail)(e)),
        }
    }
}

/// Which failure of one item to report when several hashers fail: a wrong size explains every
/// checksum failing, and a stronger checksum is the more telling one.
fn severity(e: &simplestreams_core::Error) -> usize {
    match e {
        simplestreams_core::Error::Size { .. } => ChecksumKind::ALL.len() + 1,
        simplestreams_core::Error::Checksum { kind, .. } => {
            ChecksumKind::ALL
                .iter()
                .position(|k| k == kind)
                .unwrap_or(0)
                + 1
        }
        _ => 0,
    }
}

/// What happened to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fetch {
    /// Downloaded and verified, this many bytes.
    Downloaded(u64),
    /// Downloaded (this many bytes, verified as published) and stored decompressed, as this.
    Decompressed(u64, StoredAs),
    /// Already there and verified.
    Present,
}

/// Downloads and inserts one item with a `path`, verifying what `checks` asks for; with
/// `decompress`, a compressed disk image is stored decompressed.
pub(crate) async fn fetch_item(
    source: &dyn Source,
    target: &dyn Target,
    item: &NewItem,
    checks: ChecksumPolicy,
    decompress: Option<DecompressOptions>,
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
    let compression = decompress.and_then(|o| Some((image_compression(path)?, o)));
    // A decompressed item's raw checksums are unknown until it is fetched: nothing held can be
    // checked against them (the engine re-verifies it from its record, `check_existing`).
    if compression.is_none() && target.has_content(item).await.map_err(wrap)? {
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
    let size = item.expected.size.unwrap_or(0);
    if let Some((compression, options)) = compression {
        // The target gets other bytes than those published, so it checks none of the
        // published checksums itself: the engine verifies them all as the bytes arrive.
        let name = item.key.to_string();
        let verified = verifying(
            body,
            name.clone(),
            item.expected.checks(checks),
            url.clone(),
            progress,
        );
        let (raw, handle) = decompressing(verified, compression, options, name);
        let raw_item = raw_item(item, path, compression);
        target.insert_item(&raw_item, raw).await.map_err(wrap)?;
        let done = handle.get().ok_or_else(|| {
            wrap(Error::Aborted(
                "the decompressed stream ended before its size and sha256 were known".into(),
            ))
        })?;
        let stored = StoredAs {
            path: compression.strip(path).to_string(),
            size: done.size,
            sha256: done.sha256,
        };
        return Ok(Fetch::Decompressed(size, stored));
    }
    let body = verifying(
        body,
        item.key.to_string(),
        streamed_checks(target, item, checks),
        url.clone(),
        progress,
    );
    target.insert_item(item, body).await.map_err(wrap)?;
    Ok(Fetch::Downloaded(size))
}

/// `item` (published compressed at `path`) as the target gets it decompressed: the raw
/// file's path, the ftype of the raw content, and no size or checksums (those published are
/// the compressed file's; the raw ones are known only at the end).
fn raw_item(item: &NewItem, path: &str, compression: Compression) -> NewItem {
    let raw_path = compression.strip(path).to_string();
    let mut fields = item.fields.clone();
    for k in ["size", "md5", "sha256", "sha512"] {
        fields.shift_remove(k);
    }
    if fields.contains_key("path") {
        fields.insert("path".into(), raw_path.clone());
    }
    if let Some(ftype) = fields.get_mut("ftype") {
        *ftype = decompressed_ftype(ftype, compression);
    }
    NewItem {
        path: Some(raw_path),
        expected: Expected::default(),
        decompress: Some(compression),
        fields,
        key: item.key.clone(),
    }
}

/// What the engine verifies as the bytes stream: the item's size and the checksums `checks`
/// picks, less the kinds the target checks itself after storing them (see
/// [`Target::self_verified`]).
fn streamed_checks(target: &dyn Target, item: &NewItem, checks: ChecksumPolicy) -> Expected {
    let mut expected = item.expected.checks(checks);
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
    use crate::hashing::HASH_BATCH;
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
            decompress: None,
        }
    }

    fn good() -> Expected {
        Expected {
            sha512: None,
            ..expected_of(DATA)
        }
    }

    /// The size and every checksum of `data`.
    fn expected_of(data: &[u8]) -> Expected {
        let mut v = StreamVerifier::new("", Expected::default())
            .also_compute(ChecksumKind::Md5)
            .also_compute(ChecksumKind::Sha256)
            .also_compute(ChecksumKind::Sha512);
        v.update(data).expect("no expectation to fail");
        let d = v.finish().expect("digests");
        Expected {
            size: Some(d.size),
            md5: d.md5,
            sha256: d.sha256,
            sha512: d.sha512,
        }
    }

    /// Fetches `served` as the item described by `expected` into a directory target that
    /// claims `kinds`, verifying every checksum; returns the outcome and whether the item's
    /// file is there.
    async fn fetch(
        served: &[u8],
        expected: Expected,
        kinds: &[ChecksumKind],
    ) -> (Result<Fetch>, bool) {
        fetch_with(served, expected, kinds, ChecksumPolicy::All).await
    }

    async fn fetch_with(
        served: &[u8],
        expected: Expected,
        kinds: &[ChecksumKind],
        checks: ChecksumPolicy,
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
        let r = fetch_item(
            &source,
            &target,
            &item(expected),
            checks,
            None,
            Arc::new(NoProgress),
        )
        .await;
        (r, dir.path().join("images/disk1.img").is_file())
    }

    fn failed_on_size(r: &Result<Fetch>) -> bool {
        matches!(r, Err(Error::Verify { source, .. })
            if matches!(**source, simplestreams_core::Error::Size { .. }))
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
    async fn by_default_the_size_and_the_strongest_checksum_are_verified() {
        let bad_md5 = Expected {
            md5: Some("0".repeat(32)),
            ..good()
        };
        let (r, present) = fetch_with(DATA, bad_md5, &[], ChecksumPolicy::Strongest).await;
        assert_eq!(
            r.ok(),
            Some(Fetch::Downloaded(DATA.len() as u64)),
            "md5 is not checked once sha256 is"
        );
        assert!(present);
        let bad_sha256 = Expected {
            sha256: Some("0".repeat(64)),
            ..good()
        };
        let (r, present) = fetch_with(DATA, bad_sha256, &[], ChecksumPolicy::Strongest).await;
        assert_eq!(failed_kind(&r), Some(ChecksumKind::Sha256), "{r:?}");
        assert!(!present);
        let md5_only = Expected {
            md5: Some("0".repeat(32)),
            sha256: None,
            ..good()
        };
        let (r, present) = fetch_with(DATA, md5_only, &[], ChecksumPolicy::Strongest).await;
        assert_eq!(
            failed_kind(&r),
            Some(ChecksumKind::Md5),
            "md5 alone is still checked: {r:?}"
        );
        assert!(!present);
        let longer = [DATA, b"!"].concat();
        let (r, _) = fetch_with(&longer, good(), &[], ChecksumPolicy::Strongest).await;
        assert!(failed_on_size(&r), "{r:?}");
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
        assert!(failed_on_size(&r), "{r:?}");
        assert!(!present, "the size is always the engine's");
    }

    /// An item big enough to be hashed on threads, in several batches, one thread per kind.
    fn big() -> Vec<u8> {
        (0..3 * HASH_BATCH + 12345)
            .map(|i| (i * 7 % 251) as u8)
            .collect()
    }

    #[tokio::test]
    async fn a_big_item_with_every_checksum_is_verified_by_each_and_the_right_failure_named() {
        let data = big();
        let all = expected_of(&data);
        assert_eq!(
            hasher_parts(&all).len(),
            cores_parts(3),
            "one hasher per kind"
        );

        let (r, present) = fetch(&data, all.clone(), &[]).await;
        assert_eq!(r.ok(), Some(Fetch::Downloaded(data.len() as u64)));
        assert!(present);

        for kind in ChecksumKind::ALL {
            let mut wrong = all.clone();
            match kind {
                ChecksumKind::Md5 => wrong.md5 = Some("0".repeat(32)),
                ChecksumKind::Sha256 => wrong.sha256 = Some("0".repeat(64)),
                ChecksumKind::Sha512 => wrong.sha512 = Some("0".repeat(128)),
            }
            let (r, present) = fetch(&data, wrong, &[]).await;
            assert_eq!(failed_kind(&r), Some(kind), "{r:?}");
            assert!(!present, "a bad {kind:?} leaves no file");
        }

        // Two wrong: the stronger is named, as a single verifier would.
        let two_wrong = Expected {
            md5: Some("0".repeat(32)),
            sha256: Some("0".repeat(64)),
            ..all.clone()
        };
        let (r, _) = fetch(&data, two_wrong, &[]).await;
        assert_eq!(failed_kind(&r), Some(ChecksumKind::Sha256), "{r:?}");

        // One byte more, or one less: the size is named, not the checksums it breaks.
        let longer = [&data[..], b"!"].concat();
        let (r, present) = fetch(&longer, all.clone(), &[]).await;
        assert!(failed_on_size(&r), "{r:?}");
        assert!(!present);
        let (r, present) = fetch(&data[..data.len() - 1], all, &[]).await;
        assert!(failed_on_size(&r), "{r:?}");
        assert!(!present);
    }

    /// How many hashers an item giving `kinds` checksums gets on this machine.
    fn cores_parts(kinds: usize) -> usize {
        if cores() < 2 {
            1
        } else {
            kinds
        }
    }
}
