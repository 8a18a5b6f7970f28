//! Reading image files: their first and last bytes (to tell their type), hashing them, and
//! copying them into a store while hashing, each checksum on a thread of its own
//! ([`simplestreams_mirror::hashing`]), so that reading, hashing and writing overlap.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::StreamExt;
use simplestreams_core::filetype::HEAD_BYTES;
use simplestreams_core::{ChecksumKind, Digests, Expected, StreamVerifier};
use simplestreams_mirror::hashing::{Batcher, HashingThread};
use simplestreams_mirror::{PutOptions, Store};

use crate::error::{Error, Result};

/// Bytes read from a file at a time.
const CHUNK: usize = 1 << 20;

/// The start and end of a file, and what its metadata says.
#[derive(Debug, Clone)]
pub(crate) struct Peek {
    /// The first [`HEAD_BYTES`] bytes (fewer for a short file).
    pub head: Vec<u8>,
    /// The last 512 bytes (a VHD footer).
    pub tail: Vec<u8>,
    /// Modification time.
    pub modified: Option<SystemTime>,
}

/// Reads the start and end of `path`.
pub(crate) async fn peek(path: &Path) -> Result<Peek> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let err = |e| Error::io(&owned, e);
        let mut f = std::fs::File::open(&owned).map_err(err)?;
        let md = f.metadata().map_err(err)?;
        if !md.is_file() {
            return Err(err(std::io::Error::other("not a regular file")));
        }
        let mut head = Vec::with_capacity(HEAD_BYTES);
        (&mut f)
            .take(HEAD_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(err)?;
        let mut tail = Vec::new();
        if md.len() >= 512 {
            f.seek(SeekFrom::Start(md.len() - 512)).map_err(err)?;
            f.take(512).read_to_end(&mut tail).map_err(err)?;
        }
        Ok(Peek {
            head,
            tail,
            modified: md.modified().ok(),
        })
    })
    .await
    .map_err(|e| Error::Invalid(format!("file task failed: {e}")))?
}

/// Reads `path` in chunks on a blocking thread.
fn spawn_reader(path: PathBuf) -> tokio::sync::mpsc::Receiver<std::io::Result<Bytes>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        loop {
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            // Fill whole chunks: fewer, larger batches for the hashers and the store.
            while filled < CHUNK {
                match f.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
            if filled == 0 {
                return;
            }
            buf.truncate(filled);
            if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                return; // the reader of the chunks gave up
            }
            if filled < CHUNK {
                return;
            }
        }
    });
    rx
}

/// A hash that also sees a file's bytes on the pass that reads the file anyway: LXD's combined
/// fingerprints (the SHA-256 of the metadata tarball followed by the root file system) come
/// without reading either file again. The state of the hash after one file seeds the tap of
/// the next.
#[derive(Debug, Default)]
pub(crate) struct Tap {
    /// The state the file's bytes are fed into; taken by the first read of the file.
    pub start: Option<StreamVerifier>,
    /// That state after the whole file.
    pub end: Option<StreamVerifier>,
}

impl Tap {
    /// A tap that continues from `state`.
    pub fn seeded(state: StreamVerifier) -> Tap {
        Tap {
            start: Some(state),
            end: None,
        }
    }

    /// A tap starting a new SHA-256.
    pub fn sha256() -> Tap {
        Tap::seeded(
            StreamVerifier::new("combined", Expected::default()).also_compute(ChecksumKind::Sha256),
        )
    }
}

/// A tap's hash on a thread of its own, fed the same batches as the file's own hashes; gives
/// back its state (not finished) at the end.
struct TapThread {
    tx: tokio::sync::mpsc::Sender<Vec<Bytes>>,
    done: tokio::task::JoinHandle<StreamVerifier>,
}

impl TapThread {
    fn start(mut state: StreamVerifier) -> TapThread {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(2);
        let done = tokio::task::spawn_blocking(move || {
            while let Some(batch) = rx.blocking_recv() {
                for chunk in batch {
                    // Without an expected size, an update cannot fail.
                    let _ = state.update(&chunk);
                }
            }
            state
        });
        TapThread { tx, done }
    }
}

/// One hashing thread per kind (at least one, checking the size), fed the same batches, and
/// a tap when asked.
struct Hashers {
    threads: Vec<(Option<ChecksumKind>, HashingThread)>,
    tap: Option<TapThread>,
    batcher: Batcher,
}

impl Hashers {
    fn start(
        label: &str,
        kinds: &[ChecksumKind],
        expected: &Expected,
        tap: Option<StreamVerifier>,
    ) -> Hashers {
        let size_only = Expected {
            size: expected.size,
            ..Expected::default()
        };
        let mut threads: Vec<(Option<ChecksumKind>, HashingThread)> = kinds
            .iter()
            .map(|&k| {
                let verifier = StreamVerifier::new(label, expected.only(k)).also_compute(k);
                (Some(k), HashingThread::start(verifier))
            })
            .collect();
        if threads.is_empty() {
            threads.push((
                None,
                HashingThread::start(StreamVerifier::new(label, size_only)),
            ));
        }
        Hashers {
            threads,
            tap: tap.map(TapThread::start),
            batcher: Batcher::default(),
        }
    }

    async fn push(&mut self, chunk: Bytes) {
        if let Some(batch) = self.batcher.push(chunk) {
            self.send(batch).await;
        }
    }

    async fn send(&self, batch: Vec<Bytes>) {
        if batch.is_empty() {
            return;
        }
        if let Some(tap) = &self.tap {
            let _ = tap.tx.send(batch.clone()).await;
        }
        for (_, t) in &self.threads {
            // A thread that stopped early has its verdict ready for `finish`.
            t.send(batch.clone()).await;
        }
    }

    /// The digests, and the tap's state when there is one.
    async fn finish(mut self, file: &str) -> Result<(Digests, Option<StreamVerifier>)> {
        let rest = self.batcher.take();
        self.send(rest).await;
        let tapped = match self.tap.take() {
            Some(TapThread { tx, done }) => {
                drop(tx);
                Some(
                    done.await
                        .map_err(|e| Error::Invalid(format!("hashing task failed: {e}")))?,
                )
            }
            None => None,
        };
        let mut out = Digests::default();
        for (kind, thread) in self.threads {
            let digests = thread.finish().await?.map_err(|source| Error::Content {
                file: file.to_string(),
                source,
            })?;
            out.size = digests.size;
            if let Some(k) = kind {
                let value = digests.get(k).map(str::to_string);
                match k {
                    ChecksumKind::Md5 => out.md5 = value,
                    ChecksumKind::Sha256 => out.sha256 = value,
                    ChecksumKind::Sha512 => out.sha512 = value,
                }
            }
        }
        Ok((out, tapped))
    }
}

/// Takes the starting state of a tap, if it has not been fed yet.
fn tap_start(tap: &mut Option<&mut Tap>) -> Option<StreamVerifier> {
    tap.as_mut().and_then(|t| t.start.take())
}

/// Gives a tap its end state.
fn tap_end(tap: Option<&mut Tap>, end: Option<StreamVerifier>) {
    if let (Some(t), Some(end)) = (tap, end) {
        t.end = Some(end);
    }
}

/// Hashes `path` (every kind in `kinds`), checking it against `expected`; feeds `tap` too
/// when it has not been fed yet.
pub(crate) async fn hash_file(
    path: &Path,
    kinds: &[ChecksumKind],
    expected: &Expected,
    mut tap: Option<&mut Tap>,
) -> Result<Digests> {
    let label = path.display().to_string();
    let start = tap_start(&mut tap);
    let mut hashers = Hashers::start(&label, &kinds_with(kinds, expected), expected, start);
    let mut chunks = spawn_reader(path.to_path_buf());
    while let Some(chunk) = chunks.recv().await {
        hashers.push(chunk.map_err(|e| Error::io(path, e))?).await;
    }
    let (digests, end) = hashers.finish(&label).await?;
    tap_end(tap, end);
    Ok(digests)
}

/// Copies `path` into `store` at `dest`, hashing it on the way (every kind in `kinds`) and
/// checking it against `expected`: the object is published only if the whole file was read
/// and matched, so a file that changed since it was hashed, or a failed read, leaves nothing
/// at `dest` (nor changes what was there). Feeds `tap` too when it has not been fed yet.
pub(crate) async fn copy_file(
    store: &Arc<dyn Store>,
    dest: &str,
    path: &Path,
    kinds: &[ChecksumKind],
    expected: &Expected,
    mut tap: Option<&mut Tap>,
) -> Result<Digests> {
    let label = path.display().to_string();
    let start = tap_start(&mut tap);
    let mut hashers = Hashers::start(&label, &kinds_with(kinds, expected), expected, start);
    let (tx, rx) = tokio::sync::mpsc::channel::<simplestreams_mirror::Result<Bytes>>(4);
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed();
    let put = store.put(dest, body, PutOptions::default());
    let produce = async {
        // Owned here, so that the body ends when this ends.
        let tx = tx;
        let mut chunks = spawn_reader(path.to_path_buf());
        while let Some(chunk) = chunks.recv().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx
                        .send(Err(simplestreams_mirror::Error::Aborted(format!(
                            "{label}: {e}"
                        ))))
                        .await;
                    return Err(Error::io(path, e));
                }
            };
            hashers.push(chunk.clone()).await;
            if tx.send(Ok(chunk)).await.is_err() {
                // The store stopped reading: its error says why.
                return Err(Error::Invalid(format!(
                    "{label}: the store stopped reading"
                )));
            }
        }
        match hashers.finish(&label).await {
            Ok(d) => Ok(d),
            Err(e) => {
                // Ends the body with an error: the store publishes nothing.
                let _ = tx
                    .send(Err(simplestreams_mirror::Error::Aborted(e.to_string())))
                    .await;
                Err(e)
            }
        }
    };
    let (put, produced) = tokio::join!(put, produce);
    match (put, produced) {
        (Ok(_), Ok((digests, end))) => {
            tap_end(tap, end);
            Ok(digests)
        }
        // The file's own failure (read error, mismatch) explains the store's abort.
        (_, Err(e @ (Error::Io { .. } | Error::Content { .. }))) => Err(e),
        (Err(e), _) => Err(e.into()),
        (Ok(_), Err(e)) => Err(e),
    }
}

/// `kinds` plus every kind `expected` names (so that it is checked).
fn kinds_with(kinds: &[ChecksumKind], expected: &Expected) -> Vec<ChecksumKind> {
    let mut out: Vec<ChecksumKind> = kinds.to_vec();
    for k in expected.kinds() {
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out.sort();
    out
}
