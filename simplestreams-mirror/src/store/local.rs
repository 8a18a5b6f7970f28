//! A store in a local directory: temporary file, fsync, rename.

use std::collections::HashSet;
use std::fmt;
use std::io::{ErrorKind, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
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

/// Random characters in a temporary name.
const TEMP_TAG_LEN: usize = 8;

/// Bytes gathered before a write to the file (large writes are what make copying fast).
const WRITE_BUFFER: usize = 1 << 20;

/// Bytes per chunk when reading a file.
const READ_CHUNK: usize = 256 * 1024;

/// Objects as files below a root directory.
///
/// An object `a/b` is written to a fresh temporary file `a/.b.RANDOM.part`, then renamed to
/// `a/b`; a crash at any moment leaves either the old object or the new one, never a mix. A
/// durable put fsyncs its file, flushes the filesystem (`syncfs`, so that earlier puts are
/// durable too; skipped when no other put happened since the last flush), renames, then fsyncs
/// the directory. When flushing is on, the disk writes of a large object start while it is
/// still arriving, so that the flush finds little left to do. Paths are checked with
/// [`simplestreams_core::check_safe_path`] before anything touches the disk.
///
/// Links planted in the directory never send bytes elsewhere: a temporary file is created
/// under a name that did not exist (`O_EXCL`, which never follows a link), a put or delete
/// through a parent directory that is a symbolic link leading outside the root is refused
/// (one leading to a directory inside the root is followed), and a lock file that is a
/// symbolic link, or has other hard links, is refused. Temporary files a killed process left
/// in a directory are removed the first time this store writes there.
#[derive(Clone)]
pub struct LocalStore {
    root: PathBuf,
    fsync: bool,
    /// Whether a non-durable put may not be on stable storage yet: a durable put flushes the
    /// filesystem only then (a sync publishes several metadata files in a row; the first
    /// flush covers the items, the next ones need only their own file). True at first: files
    /// an earlier process left unflushed may be named by what this one publishes.
    unsynced: Arc<AtomicBool>,
    /// The root with symbolic links resolved, once it exists: where every write must stay.
    real_root: Arc<OnceLock<PathBuf>>,
    /// Directories (real paths) already cleared of temporary files left by an earlier process.
    swept: Arc<Mutex<HashSet<PathBuf>>>,
    /// The flush of the filesystem started when the lock was taken (see [`EarlyFlush`]).
    early_flush: Arc<Mutex<Option<EarlyFlush>>>,
}

/// A flush of the filesystem (`syncfs`) started in the background when the lock is taken,
/// while the caller works out what to publish: what earlier processes left unflushed is on
/// stable storage by the time the first durable put needs it, and that put waits for this
/// flush instead of starting its own. The same guarantee as the put's own flush (everything
/// written before it started, this process's non-durable puts excepted, is flushed), so a
/// durable put relies on it only when it is on the same filesystem and no non-durable put
/// ended since it started (such a put drops it); otherwise the put flushes as before.
struct EarlyFlush {
    /// The filesystem flushed (its device).
    device: u64,
    done: std::thread::JoinHandle<std::io::Result<()>>,
}

impl LocalStore {
    /// Starts an [`EarlyFlush`] of the filesystem holding directory `dir` when durable puts
    /// flush and none happened yet. Through a descriptor of its own (one shared with the lock
    /// file would hold the lock until the flush ends).
    fn start_early_flush(&self, dir: &Path) {
        if !self.fsync || !self.unsynced.load(Ordering::Acquire) {
            return;
        }
        let Some(file) = std::fs::File::open(dir).ok() else {
            return;
        };
        let Some(device) = device_of(&file) else {
            return;
        };
        let started = std::thread::Builder::new()
            .name("early-syncfs".into())
            .spawn(move || sync_filesystem(&file));
        if let Ok(done) = started {
            *self
                .early_flush
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(EarlyFlush { device, done });
        }
    }

    /// Whether an [`EarlyFlush`] (taken, waited for) flushed the filesystem holding `f`.
    fn flushed_early(&self, f: &std::fs::File) -> bool {
        let early = self
            .early_flush
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        early.is_some_and(|e| {
            let device = e.device;
            e.done.join().is_ok_and(|r| r.is_ok()) && device_of(f) == Some(device)
        })
    }
}

/// The device of the filesystem holding `f`.
fn device_of(f: &std::fs::File) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        f.metadata().ok().map(|m| m.dev())
    }
    #[cfg(not(unix))]
    {
        let _ = f;
        None
    }
}

impl LocalStore {
    /// A store rooted at `root` (created on the first write).
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore {
            root: root.into(),
            fsync: true,
            unsynced: Arc::new(AtomicBool::new(true)),
            real_root: Arc::new(OnceLock::new()),
            swept: Arc::new(Mutex::new(HashSet::new())),
            early_flush: Arc::new(Mutex::new(None)),
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

    /// The root with symbolic links resolved (the root itself may be a link), created first
    /// when `create`.
    fn real_root(&self, create: bool) -> Result<PathBuf> {
        if let Some(root) = self.real_root.get() {
            return Ok(root.clone());
        }
        if create {
            std::fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        }
        let real = std::fs::canonicalize(&self.root).map_err(|e| Error::io(&self.root, e))?;
        Ok(self.real_root.get_or_init(|| real).clone())
    }

    /// The real directory holding the object at `path` (already checked safe) and the object's
    /// file name: each directory below the root is created when missing (if `create`), and
    /// one that is a symbolic link must lead to a directory inside the root, else the
    /// operation is refused.
    fn real_parent<'p>(&self, path: &'p str, create: bool) -> Result<(PathBuf, &'p str)> {
        let root = self.real_root(create)?;
        let (parents, name) = match path.rsplit_once('/') {
            Some((parents, name)) => (Some(parents), name),
            None => (None, path),
        };
        let mut dir = root.clone();
        for component in parents.into_iter().flat_map(|p| p.split('/')) {
            dir = step_into(&root, &dir, component, create)?;
        }
        Ok((dir, name))
    }

    /// Removes the temporary files an earlier process left in `dir` (killed in the middle of
    /// a put: each put takes a fresh name, so nothing else would ever replace them), the
    /// first time this store writes there. One whose put is still running elsewhere (another
    /// process writing in the same directory: its lock on the file is held) is left alone. The set's lock is held while sweeping, and every
    /// put passes here before creating its temporary file, so no put of this store loses its
    /// own.
    fn sweep_once(&self, dir: &Path) {
        let mut swept = self.swept.lock().unwrap_or_else(PoisonError::into_inner);
        if swept.contains(dir) {
            return;
        }
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let stale = entry.file_name().to_str().is_some_and(is_temp_name)
                    && entry.file_type().is_ok_and(|t| {
                        // A put in flight elsewhere keeps its file (a link is not opened).
                        t.is_symlink() || (t.is_file() && !being_written(&entry.path()))
                    });
                if stale {
                    // A link is removed, not followed.
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        swept.insert(dir.to_path_buf());
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

/// Writes the object at `path` through a fresh temporary file from `rx`, publishing it only on
/// [`Chunk::End`].
fn write_file(
    store: &LocalStore,
    path: &str,
    mut rx: tokio::sync::mpsc::Receiver<Chunk>,
    durable: bool,
    writeback: bool,
) -> Result<ObjectMeta> {
    let unsynced = &*store.unsynced;
    let (dir, name) = store.real_parent(path, true)?;
    let file = dir.join(name);
    store.sweep_once(&dir);
    let (temp, mut f) = create_temp(&dir, name)?;
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
            if unsynced.swap(false, Ordering::AcqRel) && !store.flushed_early(&f) {
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
    // A rename replaces whatever is at `file` (a link included) without following it.
    if let Err(e) = std::fs::rename(&temp, &file) {
        let _ = std::fs::remove_file(&temp);
        return Err(Error::io(&file, e));
    }
    if !durable {
        unsynced.store(true, Ordering::Release);
        // An early flush no longer covers everything a durable put must find flushed.
        drop(
            store
                .early_flush
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }
    if durable {
        sync_dir(&dir)?;
    }
    let md = std::fs::metadata(&file).map_err(|e| Error::io(&file, e))?;
    Ok(LocalStore::meta_of(path, &md))
}

/// One step down from `dir` (a real directory inside `root`) into `component`: created when
/// missing and `create`; a symbolic link is followed only to a directory inside `root`.
fn step_into(root: &Path, dir: &Path, component: &str, create: bool) -> Result<PathBuf> {
    let next = dir.join(component);
    let md = match std::fs::symlink_metadata(&next) {
        Err(e) if e.kind() == ErrorKind::NotFound && create => {
            match std::fs::create_dir(&next) {
                Ok(()) => return Ok(next),
                // Created meanwhile (another put into the same directory): look again.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    std::fs::symlink_metadata(&next).map_err(|e| Error::io(&next, e))?
                }
                Err(e) => return Err(Error::io(&next, e)),
            }
        }
        other => other.map_err(|e| Error::io(&next, e))?,
    };
    if !md.file_type().is_symlink() {
        return Ok(next);
    }
    let real = std::fs::canonicalize(&next).map_err(|e| Error::io(&next, e))?;
    if !real.starts_with(root) {
        return Err(Error::Location {
            location: next.display().to_string(),
            message: format!(
                "is a symbolic link to {}, outside the store's directory {}: refusing to write \
                 through it",
                real.display(),
                root.display()
            ),
        });
    }
    Ok(real)
}

/// Creates a temporary file for the object `name` in `dir` under a fresh random name: never an
/// existing file, never through a link planted there (`O_CREAT | O_EXCL`, plus `O_NOFOLLOW`).
fn create_temp(dir: &Path, name: &str) -> Result<(PathBuf, std::fs::File)> {
    use rand::Rng as _;
    let mut attempts = 0;
    loop {
        let tag: String = rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(TEMP_TAG_LEN)
            .map(char::from)
            .collect();
        let temp = dir.join(format!(".{name}.{tag}{TEMP_SUFFIX}"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.custom_flags(libc::O_NOFOLLOW);
        }
        match options.open(&temp) {
            Ok(f) => {
                // Locked while it is written, so that another store sweeping this directory
                // (another process, or another store of this one) leaves it alone; see
                // `sweep_once`. A sweep may have removed it before it was locked: then it is
                // no longer at its name, and another is made.
                if !lock_file(&f, true) || still_at(&f, &temp) {
                    return Ok((temp, f));
                }
                attempts += 1;
                if attempts >= 16 {
                    return Err(Error::io(
                        &temp,
                        std::io::Error::new(ErrorKind::NotFound, "removed while being created"),
                    ));
                }
            }
            // Taken (by chance, or by something planted): another name.
            Err(e) if e.kind() == ErrorKind::AlreadyExists && attempts < 16 => attempts += 1,
            Err(e) => return Err(Error::io(&temp, e)),
        }
    }
}

/// Whether the file open as `f` is still the one at `path`.
fn still_at(f: &std::fs::File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        match (f.metadata(), std::fs::symlink_metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = f;
        path.exists()
    }
}

/// Whether a temporary file is being written: a live put holds its lock (`create_temp`). A
/// file that cannot be opened or locked for another reason counts as left over.
fn being_written(path: &Path) -> bool {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    match options.open(path) {
        Ok(f) => {
            !lock_file(&f, false) && std::io::Error::last_os_error().kind() == ErrorKind::WouldBlock
        }
        Err(_) => false,
    }
}

/// Takes an exclusive `flock` on `f`, waiting for it or not; whether it was taken. (`File::lock`
/// is newer than the workspace's minimum Rust.)
fn lock_file(f: &std::fs::File, wait: bool) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd as _;
        let flags = if wait {
            libc::LOCK_EX
        } else {
            libc::LOCK_EX | libc::LOCK_NB
        };
        // SAFETY: flock on a descriptor this `File` owns for the duration of the call.
        unsafe { libc::flock(f.as_raw_fd(), flags) == 0 }
    }
    #[cfg(not(unix))]
    {
        let _ = (f, wait);
        false
    }
}

/// Whether a file name is a temporary name of this store (`.NAME.RANDOM.part`, or `.NAME.part`
/// as earlier versions wrote): hidden by `list`, removed once stale.
fn is_temp_name(name: &str) -> bool {
    name.len() > 1 + TEMP_SUFFIX.len() && name.starts_with('.') && name.ends_with(TEMP_SUFFIX)
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
        self.file(path)?;
        // The file is written by one blocking task fed through a small channel: the async side
        // (network, hashing) and the disk work overlap, and a small object costs one hop to the
        // blocking pool instead of one per file operation. Two batches in flight keep the disk
        // busy; more would only hold more memory (the peak RSS of a large download).
        let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(2);
        let path_owned = path.to_string();
        let fsync = self.fsync;
        let store = self.clone();
        let writer = tokio::task::spawn_blocking(move || {
            write_file(&store, &path_owned, rx, options.durable && fsync, fsync)
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
        self.file(path)?;
        let store = self.clone();
        let path = path.to_string();
        blocking(move || {
            // Never through a linked directory leading outside the root.
            let (dir, name) = store.real_parent(&path, false)?;
            let file = dir.join(name);
            std::fs::remove_file(&file).map_err(|e| Error::io(&file, e))?;
            // Remove directories left empty, up to the root, as the reference does.
            let root = store.real_root(false)?;
            let mut dir = Some(dir.as_path());
            while let Some(d) = dir {
                if d == root || !d.starts_with(&root) || std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
            Ok(())
        })
        .await
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
                    if is_temp_name(&entry.file_name().to_string_lossy()) {
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
        let store = self.clone();
        let name = name.to_string();
        blocking(move || {
            let (dir, base) = store.real_parent(&name, true)?;
            let real = dir.join(base);
            let mut options = std::fs::OpenOptions::new();
            options.create(true).truncate(false).read(true).write(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                // A link planted at the lock's name must not be followed: the lock file is
                // truncated and written.
                options.custom_flags(libc::O_NOFOLLOW);
            }
            let mut f = options.open(&real).map_err(|e| {
                if is_symlink_refusal(&e) {
                    Error::Location {
                        location: file.display().to_string(),
                        message: "is a symbolic link; refusing to use it as the lock (remove it)"
                            .into(),
                    }
                } else {
                    Error::io(&file, e)
                }
            })?;
            check_lock_file(&f, &file)?;
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
            store.start_early_flush(&dir);
            Ok(StoreLock::new(file.display().to_string(), Box::new(f)))
        })
        .await
    }
}

/// Whether opening with `O_NOFOLLOW` failed because the name is a symbolic link.
fn is_symlink_refusal(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// Refuses a lock file that is not a plain file of its own: one with another hard link would
/// have a file elsewhere truncated and written.
fn check_lock_file(f: &std::fs::File, file: &Path) -> Result<()> {
    let md = f.metadata().map_err(|e| Error::io(file, e))?;
    #[cfg(unix)]
    let shared = {
        use std::os::unix::fs::MetadataExt as _;
        md.nlink() > 1
    };
    #[cfg(not(unix))]
    let shared = false;
    if !md.is_file() || shared {
        return Err(Error::Location {
            location: file.display().to_string(),
            message: "is not a plain file of its own (a device, or a file with other hard \
                      links); refusing to use it as the lock (remove it)"
                .into(),
        });
    }
    Ok(())
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

#[cfg(test)]
mod early_flush_tests {
    use super::*;
    use crate::store::byte_stream;

    fn early(store: &LocalStore) -> bool {
        store
            .early_flush
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    #[tokio::test]
    async fn the_first_durable_put_waits_for_the_flush_started_with_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path());
        let lock = store.lock("state/lock").await.expect("lock");
        assert!(early(&store), "started when the lock was taken");
        store
            .put("a.json", byte_stream("{}"), PutOptions::durable())
            .await
            .expect("put");
        assert!(!early(&store), "waited for and used by the durable put");
        assert!(!store.unsynced.load(Ordering::Acquire));
        lock.release().await;
        // Released without waiting for the flush (its own descriptor, not the lock's).
        store
            .lock("state/lock")
            .await
            .expect("again")
            .release()
            .await;
    }

    #[tokio::test]
    async fn a_non_durable_put_since_it_started_makes_the_durable_put_flush_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path());
        let lock = store.lock("state/lock").await.expect("lock");
        store
            .put("item", byte_stream("x"), PutOptions::default())
            .await
            .expect("put");
        assert!(!early(&store), "dropped: it may not cover the item");
        assert!(
            store.unsynced.load(Ordering::Acquire),
            "the next durable put flushes"
        );
        lock.release().await;
        let unflushed = LocalStore::new(dir.path()).with_fsync(false);
        unflushed
            .lock("state/lock")
            .await
            .expect("lock")
            .release()
            .await;
        assert!(!early(&unflushed), "none when puts do not flush");
    }
}
