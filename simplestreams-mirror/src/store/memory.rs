//! An in-memory store: first class, used by doctests and engine tests.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;

use super::{
    byte_stream, ByteStream, GetOptions, GetResult, ObjectMeta, PutOptions, Store, StoreLock,
    Validators,
};
use crate::error::{Error, Result};

/// Objects kept in a map in memory. Cloning gives another handle on the same objects.
///
/// ```
/// # tokio_test_block_on(async {
/// use simplestreams_mirror::{InMemory, StoreExt};
/// let store = InMemory::new();
/// store.put_bytes("a/b.txt", "hello".into()).await?;
/// assert_eq!(store.get_bytes("a/b.txt").await?, "hello");
/// # Ok::<(), simplestreams_mirror::Error>(()) }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f) }
/// ```
#[derive(Clone, Default)]
pub struct InMemory {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    objects: BTreeMap<String, (Bytes, u64)>,
    generation: u64,
    locks: HashSet<String>,
}

struct LockEntry {
    inner: Arc<Mutex<Inner>>,
    name: String,
}

impl Drop for LockEntry {
    fn drop(&mut self) {
        lock_inner(&self.inner).locks.remove(&self.name);
    }
}

fn lock_inner(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A panic while holding this lock cannot leave the map half-updated (each update is one
    // insert or remove), so a poisoned lock is still consistent.
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

impl InMemory {
    /// An empty store.
    pub fn new() -> InMemory {
        InMemory::default()
    }

    /// Paths of every object, sorted (handy in tests).
    pub fn paths(&self) -> Vec<String> {
        lock_inner(&self.inner).objects.keys().cloned().collect()
    }

    fn meta(path: &str, bytes: &Bytes, generation: u64) -> ObjectMeta {
        ObjectMeta {
            path: path.to_string(),
            size: Some(bytes.len() as u64),
            validators: Validators {
                etag: Some(format!("\"{generation}\"")),
                last_modified: None,
            },
            content_encoding: None,
        }
    }
}

impl fmt::Debug for InMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InMemory")
    }
}

impl fmt::Display for InMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("memory:")
    }
}

#[async_trait]
impl Store for InMemory {
    async fn get(&self, path: &str, options: GetOptions) -> Result<GetResult> {
        let (bytes, generation) = lock_inner(&self.inner)
            .objects
            .get(path)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                location: format!("memory:{path}"),
            })?;
        let meta = InMemory::meta(path, &bytes, generation);
        if let Some(v) = &options.if_not_modified {
            if v.etag.is_some() && v.etag == meta.validators.etag {
                return Ok(GetResult::NotModified);
            }
        }
        let start = (options.offset.unwrap_or(0) as usize).min(bytes.len());
        Ok(GetResult::Found {
            meta,
            body: byte_stream(bytes.slice(start..)),
        })
    }

    async fn head(&self, path: &str) -> Result<Option<ObjectMeta>> {
        Ok(lock_inner(&self.inner)
            .objects
            .get(path)
            .map(|(b, g)| InMemory::meta(path, b, *g)))
    }

    async fn put(&self, path: &str, mut body: ByteStream, _: PutOptions) -> Result<ObjectMeta> {
        simplestreams_core::check_safe_path(path)?;
        let mut buf = Vec::new();
        while let Some(chunk) = body.next().await {
            buf.extend_from_slice(&chunk?);
        }
        let bytes = Bytes::from(buf);
        let mut inner = lock_inner(&self.inner);
        inner.generation += 1;
        let generation = inner.generation;
        inner
            .objects
            .insert(path.to_string(), (bytes.clone(), generation));
        Ok(InMemory::meta(path, &bytes, generation))
    }

    async fn delete(&self, path: &str) -> Result<()> {
        match lock_inner(&self.inner).objects.remove(path) {
            Some(_) => Ok(()),
            None => Err(Error::NotFound {
                location: format!("memory:{path}"),
            }),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        Ok(lock_inner(&self.inner)
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (b, g))| InMemory::meta(k, b, *g))
            .collect())
    }

    async fn lock(&self, name: &str) -> Result<StoreLock> {
        let mut inner = lock_inner(&self.inner);
        if !inner.locks.insert(name.to_string()) {
            return Err(Error::Locked {
                target: format!("memory:{name}"),
                message: "held by another handle in this process".into(),
            });
        }
        Ok(StoreLock::new(
            format!("memory:{name}"),
            Box::new(LockEntry {
                inner: self.inner.clone(),
                name: name.to_string(),
            }),
        ))
    }
}
