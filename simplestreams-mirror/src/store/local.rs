//! A store in a local directory: temporary file, fsync, rename.

use std::fmt;
use std::io::{ErrorKind, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::io::AsyncSeekExt;

use super::flush::{sync_dir, sync_filesystem, EarlyWriteback};
use super::{
    ByteStream, GetOptions, GetResult, ObjectMeta, PutOptions, Store, StoreLock, Validators,
};
use crate::error::{Error, Result};

/// Suffix of the temporary name an object is written under before its rename.
const TEMP_SUFFIX: &str = ".part";

/// Bytes gathered before a write to the file (large writes are what make copying fast).
const WRITE_BUFFER: usize = 1 << 20;

/// Bytes per chunk when reading a file.
const READ_CHUNK: usize = 256 * 1024;

/// Objects as files below a root directory.
///
/// An object `a/b` is written to `a/.b.part`, then renamed to `a/b`; a crash at any moment
/// leaves either the old object or the new one, never a mix. A durable put fsyncs its file,
/// flushes the filesystem (`syncfs`, so that earlier puts are durable too; skipped when no
/// other put happened since the last flush), renames, then fsyncs the directory. When flushing is on, the disk writes of a large object start while it is
/// still arriving, so that the flush finds little left to do. Paths are checked with
/// [`simplestreams_core::check_safe_path`] before anything touches the disk.
#[derive(Clone)]
pub struct LocalStore {
    root: PathBuf,
    fsync: bool,
    /// Whether a non-durable put may not be on stable storage yet: a durable put flushes the
    /// filesystem only then (a sync publishes several metadata files in a row; the first
    /// flush covers the items, the next ones need only their own file). True at first: files
    /// an earlier process left unflushed may be named by what this one publishes.
    unsynced: Arc<AtomicBool>,
}

impl LocalStore {
    /// A store rooted at `root` (created on the first write).
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore {
            root: root.into(),
            fsync: true,
            unsynced: Arc::new(AtomicBool::new(true)),
        }
    }

    /// With `false`, durable puts do not flush to stable storage (`fsync`, `syncfs`): faster on
    /// slow disks, still safe against a killed process (renames are atomic), but a power cut
    /// may lose recent writes. The default is `true`.
    pub fn with_fsync(mut self, fsync: bool) -> LocalStore {
        self.fsync = fsync;
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn file(&self, path: &str) -> Result<PathBuf> {
        simplestreams_core::check_safe_path(path)?;
        Ok(self.root.join(path))
    }

    fn temp_of(file: &Path) -> PathBuf {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        file.with_file_name(format!(".{name}{TEMP_SUFFIX}"))
    }

    fn meta_of(path: &str, md: &std::fs::Metadata) -> ObjectMeta {
        // The modification time in nanoseconds plus the size changes whenever the file is
        // replaced, which is what a validator needs.
        let mtime = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        ObjectMeta {
            path: path.to_string(),
            size: Some(md.len()),
            validators: Validators {
                etag: Some(format!("\"{mtime:x}-{:x}\"", md.len())),
                last_modified: None,
            },
            content_encoding: None,
        }
    }
}

impl fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalStore({})", self.root.display())
    }
}

impl fmt::Display for LocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.root.display())
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Aborted(format!("file task failed: {e}")))?
}

/// What the async side of a put sends to the writer.
enum Chunk {
    Data(Vec<bytes::Bytes>),
    /// The body ended cleanly: publish. A channel closed without it means abort.
    End,
}

/// Writes `file` through its temporary name from `rx`, publishing it only on [`Chunk::End`].
fn write_file(
    file: &Path,
    path: &str,
    mut rx: tokio::sync::mpsc::Receiver<Chunk>,
    durable: bool,
    writeback: bool,
    unsynced: &AtomicBool,
) -> Result<ObjectMeta> {
    let temp = LocalStore::temp_of(file);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut f = std::fs::File::create(&temp).map_err(|e| Error::io(&temp, e))?;
    let mut flusher = writeback.then(EarlyWriteback::default);
    let mut write_all = || {
        loop {
            match rx.blocking_recv() {
                Some(Chunk::Data(batch)) => {
                    write_batch(&mut f, &batch).map_err(|e| Error::io(&temp, e))?;
                    if let Some(w) = &mut flusher {
                        w.wrote(&f, batch.iter().map(|b| b.len() as u64).sum());
                    }
                }
                Some(Chunk::End) => {
                    if let Some(w) = &mut flusher {
                        w.end(&f);
                    }
                    break;
                }
                None => {
                    return Err(Error::Aborted(format!(
                        "{path}: body failed, not published"
                    )))
                }
            }
        }
        if durable {
            f.sync_all().map_err(|e| Error::io(&temp, e))?;
            // Earlier non-durable puts (items) become durable before this one (metadata
            // naming them) is published.
            if unsynced.swap(false, Ordering::AcqRel) {
                sync_filesystem(&f).map_err(|e| {
                    unsynced.store(true, Ordering::Release);
                    Error::io(&temp, e)
                })?;
            }
        }
        Ok(())
    };
    let written = write_all();
    drop(f);
    if let Err(e) = written {
        // Nothing was published; the temporary file is garbage.
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    std::fs::rename(&temp, file).map_err(|e| Error::io(file, e))?;
    if !durable {
        unsynced.store(true, Ordering::Release);
    }
    if durable {
        if let Some(dir) = file.parent() {
            sync_dir(dir)?;
        }
    }
    let md = std::fs::metadata(file).map_err(|e| Error::io(file, e))?;
    Ok(LocalStore::meta_of(path, &md))
}

/// Writes the chunks of `batch` straight from where they are, with as few `writev` calls as the
/// kernel allows: the caller already gathers about [`WRITE_BUFFER`] bytes per batch, so copying
/// them into a buffer first would only cost a pass over every byte (a tenth of the CPU time of a
/// large download).
fn write_batch(f: &mut std::fs::File, batch: &[bytes::Bytes]) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = batch
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| IoSlice::new(b))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match f.write_vectored(rest) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[async_trait]
impl Store for LocalStore {
    async fn get(&self, path: &str, options: GetOptions) -> Result<GetResult> {
        let file = self.file(path)?;
        let mut f = tokio::fs::File::open(&file)
            .await
            .map_err(|e| Error::io(&file, e))?;
        let md = f.metadata().await.map_err(|e| Error::io(&file, e))?;
        if md.is_dir() {
            return Err(Error::NotFound {
                location: file.display().to_string(),
            });
        }
        let meta = LocalStore::meta_of(path, &md);
        if let Some(v) = &options.if_not_modified {
            if v.etag.is_some() && v.etag == meta.validators.etag {
                return Ok(GetResult::NotModified);
            }
        }
        if options.offset.is_none() && options.whole_up_to.is_some_and(|max| md.len() <= max) {
            let f = f.into_std().await;
            let len = md.len();
            let reading = file.clone();
            let bytes =
                blocking(move || read_whole(&f, len).map_err(|e| Error::io(reading, e))).await?;
            return Ok(GetResult::Found {
                meta,
                body: super::byte_stream(bytes),
            });
        }
        if let Some(offset) = options.offset {
            f.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(|e| Error::io(&file, e))?;
        }
        let body = tokio_util::io::ReaderStream::with_capacity(f, READ_CHUNK)
            .map(move |r| r.map_err(|e| Error::io(&file, e)))
            .boxed();
        Ok(GetResult::Found { meta, body })
    }

    async fn head(&self, path: &str) -> Result<Option<ObjectMeta>> {
        let file = self.file(path)?;
        match tokio::fs::metadata(&file).await {
            Ok(md) if md.is_file() => Ok(Some(LocalStore::meta_of(path, &md))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(file, e)),
        }
    }

    async fn put(
        &self,
        path: &str,
        mut body: ByteStream,
        options: PutOptions,
    ) -> Result<ObjectMeta> {
        let file = self.file(path)?;
        // The file is written by one blocking task fed through a small channel: the async side
        // (network, hashing) and the disk work overlap, and a small object costs one hop to the
        // blocking pool instead of one per file operation. Two batches in flight keep the disk
        // busy; more would only hold more memory (the peak RSS of a large download).
        let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(2);
        let path_owned = path.to_string();
        let fsync = self.fsync;
        let unsynced = self.unsynced.clone();
        let writer = tokio::task::spawn_blocking(move || {
            write_file(
                &file,
                &path_owned,
                rx,
                options.durable && fsync,
                fsync,
                &unsynced,
            )
        });
        let mut failed = None;
        let (mut batch, mut batched) = (Vec::new(), 0);
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(bytes) => {
                    batched += bytes.len();
                    batch.push(bytes);
                    if batched >= WRITE_BUFFER {
                        batched = 0;
                        if tx
                            .send(Chunk::Data(std::mem::take(&mut batch)))
                            .await
                            .is_err()
                        {
                            break; // the writer failed; its error is reported below
                        }
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if failed.is_none() {
            let _ = tx.send(Chunk::Data(batch)).await;
            let _ = tx.send(Chunk::End).await;
        }
        drop(tx);
        let written = writer
            .await
            .map_err(|e| Error::Aborted(format!("file task failed: {e}")))?;
        match failed {
            Some(e) => Err(e),
            None => written,
        }
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let file = self.file(path)?;
        tokio::fs::remove_file(&file)
            .await
            .map_err(|e| Error::io(&file, e))?;
        // Remove directories left empty, up to the root, as the reference does.
        let root = self.root.clone();
        let _ = blocking(move || {
            let mut dir = file.parent().map(Path::to_path_buf);
            while let Some(d) = dir {
                if d == root || std::fs::remove_dir(&d).is_err() {
                    break;
                }
                dir = d.parent().map(Path::to_path_buf);
            }
            Ok(())
        })
        .await;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        blocking(move || {
            let mut out = Vec::new();
            let mut stack = vec![root.clone()];
            while let Some(dir) = stack.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io(&dir, e)),
                };
                for entry in entries {
                    let entry = entry.map_err(|e| Error::io(&dir, e))?;
                    let p = entry.path();
                    let md = entry.metadata().map_err(|e| Error::io(&p, e))?;
                    let Ok(rel) = p.strip_prefix(&root) else {
                        continue;
                    };
                    let rel = rel.to_string_lossy().replace('\\', "/");
                    if md.is_dir() {
                        stack.push(p);
                        continue;
                    }
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
                        continue;
                    }
                    if rel.starts_with(&prefix) {
                        out.push(LocalStore::meta_of(&rel, &md));
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn lock(&self, name: &str) -> Result<StoreLock> {
        let file = self.file(name)?;
        blocking(move || {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&file)
                .map_err(|e| Error::io(&file, e))?;
            try_lock(&f).map_err(|e| match e.kind() {
                ErrorKind::WouldBlock => Error::Locked {
                    target: file.display().to_string(),
                    message: "held by another process".into(),
                },
                _ => Error::io(&file, e),
            })?;
            // The owner's pid, for a human wondering who holds it; the kernel lock is what counts,
            // and it goes away with the process, even after kill -9.
            let _ = f.set_len(0);
            let _ = writeln!(f, "{}", std::process::id());
            Ok(StoreLock::new(file.display().to_string(), Box::new(f)))
        })
        .await
    }
}

/// Reads a whole file of `len` bytes into one buffer: a large metadata file is not copied
/// again chunk by chunk, and its two halves are read at once on two threads when there is a
/// second core (the kernel's copy and the first touch of each page of the buffer are most of
/// the reading).
fn read_whole(f: &std::fs::File, len: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::FileExt as _;
    let size = usize::try_from(len).map_err(|_| std::io::Error::other("file too large"))?;
    if !crate::query::worth_two_threads(size) {
        let mut bytes = Vec::with_capacity(size);
        (&*f).read_to_end(&mut bytes)?;
        return Ok(bytes);
    }
    let mut bytes = vec![0u8; size];
    let (first, second) = bytes.split_at_mut(size / 2);
    let offset = first.len() as u64;
    std::thread::scope(|scope| {
        let other = scope.spawn(|| f.read_exact_at(second, offset));
        let mine = f.read_exact_at(first, 0);
        mine.and(
            other
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the reading thread panicked"))),
        )
    })?;
    Ok(bytes)
}

#[cfg(unix)]
fn try_lock(f: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; no memory is passed.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn try_lock(_f: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}
