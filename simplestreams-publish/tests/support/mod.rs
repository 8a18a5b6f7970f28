//! Helpers of this crate's integration tests: image files, keys, and a store wrapper that
//! counts writes and fails chosen puts (a full disk, a crash).
#![allow(dead_code)]

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use simplestreams_core::openpgp::keygen::{generate, GeneratedKey, KeyOptions};
use simplestreams_core::openpgp::SigningKey;
use simplestreams_mirror::{
    ByteStream, GetOptions, GetResult, InMemory, ObjectMeta, PutOptions, Store, StoreExt, StoreLock,
};
use simplestreams_publish::NewImage;

/// A qcow2-looking file of `len` bytes whose content depends on `seed`.
pub fn qcow2(dir: &Path, name: &str, seed: u8, len: usize) -> PathBuf {
    let mut bytes = b"QFI\xfb\x00\x00\x00\x03".to_vec();
    bytes.extend((0..len.saturating_sub(8)).map(|i| (i as u8).wrapping_mul(31) ^ seed));
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A squashfs-looking file.
pub fn squashfs(dir: &Path, name: &str, seed: u8) -> PathBuf {
    let mut bytes = b"hsqs".to_vec();
    bytes.extend((0..5000u32).map(|i| (i as u8) ^ seed));
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// An image of Ubuntu noble for `arch`, version `version`.
pub fn noble(file: &Path, arch: &str, version: &str) -> NewImage {
    let mut image = NewImage::file(file)
        .field("os", "ubuntu")
        .field("release", "noble")
        .field("arch", arch)
        .field("label", "release");
    image.version_name = Some(version.to_string());
    image
}

/// A new Ed25519 key and its signing half.
pub fn key(name: &str) -> (GeneratedKey, Arc<SigningKey>) {
    let generated = generate(&KeyOptions::new(name, "publisher@example.invalid")).unwrap();
    let signing = SigningKey::from_armored(&generated.secret_armored, None, name).unwrap();
    (generated, Arc::new(signing))
}

/// An error with its causes, on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Every object of a store, path → bytes.
pub async fn tree(store: &InMemory) -> Vec<(String, Bytes)> {
    let mut out = Vec::new();
    for p in store.paths() {
        if p.starts_with(".sstream-mirror/") {
            continue;
        }
        let b = store.get_bytes(&p).await.unwrap();
        out.push((p, b));
    }
    out
}

/// Which puts fail.
pub type FailWhen = Box<dyn Fn(&str) -> bool + Send>;

/// A store that counts puts and deletes and fails the puts `fail` chooses, as a full disk
/// does: the body is read in part, then the put errors and publishes nothing.
#[derive(Clone)]
pub struct Faulty {
    pub inner: InMemory,
    pub puts: Arc<AtomicUsize>,
    pub deletes: Arc<AtomicUsize>,
    /// Paths read, in order.
    pub gets: Arc<Mutex<Vec<String>>>,
    pub fail: Arc<Mutex<Option<FailWhen>>>,
}

impl Faulty {
    pub fn new(inner: InMemory) -> Faulty {
        Faulty {
            inner,
            puts: Arc::new(AtomicUsize::new(0)),
            deletes: Arc::new(AtomicUsize::new(0)),
            gets: Arc::new(Mutex::new(Vec::new())),
            fail: Arc::new(Mutex::new(None)),
        }
    }

    pub fn fail_when(&self, f: impl Fn(&str) -> bool + Send + 'static) {
        *self.fail.lock().unwrap() = Some(Box::new(f));
    }

    pub fn writes(&self) -> usize {
        self.puts.load(Ordering::SeqCst) + self.deletes.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for Faulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Faulty")
    }
}

impl fmt::Display for Faulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("faulty:")
    }
}

#[async_trait]
impl Store for Faulty {
    async fn get(
        &self,
        path: &str,
        options: GetOptions,
    ) -> simplestreams_mirror::Result<GetResult> {
        self.gets.lock().unwrap().push(path.to_string());
        self.inner.get(path, options).await
    }

    async fn head(&self, path: &str) -> simplestreams_mirror::Result<Option<ObjectMeta>> {
        self.inner.head(path).await
    }

    async fn put(
        &self,
        path: &str,
        mut body: ByteStream,
        options: PutOptions,
    ) -> simplestreams_mirror::Result<ObjectMeta> {
        let fails = self.fail.lock().unwrap().as_ref().is_some_and(|f| f(path));
        if fails {
            // Read a little, as a disk filling up would, then give up.
            let _ = body.next().await;
            return Err(simplestreams_mirror::Error::Io {
                path: path.into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "No space left on device",
                ),
            });
        }
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put(path, body, options).await
    }

    async fn delete(&self, path: &str) -> simplestreams_mirror::Result<()> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(path).await
    }

    async fn list(&self, prefix: &str) -> simplestreams_mirror::Result<Vec<ObjectMeta>> {
        self.inner.list(prefix).await
    }

    async fn lock(&self, name: &str) -> simplestreams_mirror::Result<StoreLock> {
        self.inner.lock(name).await
    }
}
