//! The lock of an [`ObjectStoreAdapter`]: a lock object, created only if absent where the store
//! can do that, else a claim checked by listing.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};
use simplestreams_mirror::{Error, Result, StoreExt, StoreLock};

use crate::adapter::ObjectStoreAdapter;
use crate::error::is_status;

/// How [`simplestreams_mirror::Store::lock`] makes the lock `NAME` of an
/// [`ObjectStoreAdapter`].
///
/// Either way the lock is one or more objects beside `NAME` holding who took it and when
/// (`{"host": ..., "pid": ..., "since": ..., "token": ...}`), deleted on release. A process
/// that dies holding it leaves them: [`ObjectStoreAdapter::break_lock`] (or deleting `NAME`
/// and every `NAME.<32 hex digits>` with any client) breaks a stale lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockMode {
    /// [`LockMode::ConditionalCreate`] where the store supports it, else
    /// [`LockMode::CreateThenList`]: the first lock tries a conditional create, and a store
    /// that refuses it as unsupported (object_store's `NotImplemented`, or HTTP 501 as Swift's
    /// s3api answers) is remembered by this adapter and its clones as one that needs listing.
    /// Stores from [`crate::open_url`] ask that first time without retries
    /// ([`ObjectStoreAdapter::with_lock_probe`]), so that a 501 costs one request.
    #[default]
    Auto,
    /// The object `NAME`, created with `PutMode::Create` (S3's `If-None-Match: *`; GCS and
    /// Azure have their own): of two processes, exactly one creates it, the store decides.
    /// Needs a store that honours the condition: AWS S3 (since August 2024), MinIO, Ceph RGW,
    /// GCS, Azure. A store that ignored the header would let two processes in (the holder
    /// reads the object back, which catches a later overwrite, not every one); one that
    /// refuses it fails the lock with that error.
    ConditionalCreate,
    /// For stores without conditional writes (Swift's s3api answers 501 to
    /// `If-None-Match: *`): each process writes its own claim `NAME.<token>` (a new name, no
    /// write can be lost), then lists the claims beside `NAME`: if its own is the only one, it
    /// holds the lock; if not, it withdraws its claim and fails with [`Error::Locked`].
    /// Two processes cannot both hold it: each lists after its own write, so the later lister
    /// sees the other's claim. Both may withdraw (a rare race; both fail, a retry succeeds).
    /// Sound as long as a listing shows every object written before it was asked for: AWS S3,
    /// GCS and Azure guarantee that; Swift does when the container server takes the update
    /// during the PUT (the normal case, and the test bed's), and may not while a container
    /// server is overloaded or down (the update is then queued and the listing lags).
    CreateThenList,
}

/// What `conditional_create` holds.
pub(crate) const UNKNOWN: u8 = 0;
const SUPPORTED: u8 = 1;
const UNSUPPORTED: u8 = 2;

/// Whether `name` (the last segment of a path) is a claim `BASE.<32 hex>` of the lock `BASE`.
fn is_claim_of(candidate: &str, lock: &str) -> bool {
    candidate
        .strip_prefix(lock)
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|token| token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn holder(token: &str) -> Bytes {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Bytes::from(
        serde_json::json!({
            "host": host,
            "pid": std::process::id(),
            "since": since,
            "token": token,
        })
        .to_string(),
    )
}

/// How the conditional create went.
enum Created {
    Yes,
    Exists,
    Unsupported(object_store::Error),
}

impl ObjectStoreAdapter {
    /// The objects of lock `name` now: the lock object and the claims beside it.
    async fn lock_objects(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .list_raw(name)
            .await?
            .into_iter()
            .map(|m| m.path)
            .filter(|p| p == name || is_claim_of(p, name))
            .collect())
    }

    /// Who holds the lock (the content of one of its objects), for the message.
    async fn held_by(&self, objects: &[String]) -> String {
        for path in objects {
            if let Ok(b) = self.get_bytes(path).await {
                return String::from_utf8_lossy(&b).into_owned();
            }
        }
        "someone (the lock vanished meanwhile)".into()
    }

    fn locked(&self, name: &str, held_by: String) -> Error {
        Error::Locked {
            target: self.location(name),
            message: format!(
                "held by {held_by}; if that process is gone, break the lock with `sstream \
                 unlock {}` (it deletes {} and {}.*)",
                self,
                self.location(name),
                self.location(name)
            ),
        }
    }

    /// Breaks lock `name`, whoever holds it: deletes the lock object and every claim beside
    /// it. Returns how many objects were deleted (0: it was not held). Only for a lock whose
    /// holder is known to be gone: a live holder would go on as if it still held it.
    pub async fn break_lock(&self, name: &str) -> Result<usize> {
        let objects = self.lock_objects(name).await?;
        for path in &objects {
            self.delete_if_present(path).await?;
        }
        Ok(objects.len())
    }

    /// Creates `key` (the lock object `name`) if absent, through `store`.
    async fn conditional_create(
        &self,
        store: &dyn ObjectStore,
        name: &str,
        key: &Path,
        body: Bytes,
    ) -> std::result::Result<Created, object_store::Error> {
        let payload = PutPayload::from_bytes(body.clone());
        match store.put_opts(key, payload, PutMode::Create.into()).await {
            Ok(_) => Ok(Created::Yes),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => {
                // Ours, when an attempt whose answer was lost did create it.
                match self.get_bytes(name).await {
                    Ok(b) if b == body => Ok(Created::Yes),
                    _ => Ok(Created::Exists),
                }
            }
            Err(
                e @ (object_store::Error::NotImplemented { .. }
                | object_store::Error::NotSupported { .. }),
            ) => Ok(Created::Unsupported(e)),
            Err(e) if is_status(&e, 501) => Ok(Created::Unsupported(e)),
            Err(e) => Err(e),
        }
    }
}

/// Deletes `key` of `store`; what a [`StoreLock`] runs on release.
fn releaser(
    store: std::sync::Arc<dyn ObjectStore>,
    key: Path,
    what: String,
) -> Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send + Sync> {
    Box::new(move || {
        Box::pin(async move {
            match store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => tracing::warn!("lock {what} not released: {e}"),
            }
        })
    })
}

/// [`simplestreams_mirror::Store::lock`] of an adapter.
pub(crate) async fn lock(adapter: &ObjectStoreAdapter, name: &str) -> Result<StoreLock> {
    let lock_key = adapter.key(name)?;
    let token = hex::encode(rand::random::<[u8; 16]>());
    let body = holder(&token);
    let conditional = match adapter.lock_mode {
        LockMode::ConditionalCreate => true,
        LockMode::CreateThenList => false,
        LockMode::Auto => adapter.conditional_create.load(Ordering::Relaxed) != UNSUPPORTED,
    };

    if conditional {
        let probe = match &adapter.probe {
            Some(p) if adapter.conditional_create.load(Ordering::Relaxed) == UNKNOWN => adapter
                .conditional_create(p.as_ref(), name, &lock_key, body.clone())
                .await
                .ok(),
            _ => None,
        };
        let created = match probe {
            Some(c) => c,
            None => adapter
                .conditional_create(adapter.store.as_ref(), name, &lock_key, body.clone())
                .await
                .map_err(|e| adapter.err("lock", name, e))?,
        };
        match created {
            Created::Exists => {
                let held_by = adapter.held_by(&[name.to_string()]).await;
                return Err(adapter.locked(name, held_by));
            }
            Created::Yes => {
                adapter
                    .conditional_create
                    .store(SUPPORTED, Ordering::Relaxed);
                // A process in CreateThenList mode (configured so, or on a store it found
                // unable) may have a claim in: the later of the two to list backs off.
                let others: Vec<String> = match adapter.lock_objects(name).await {
                    Ok(all) => all.into_iter().filter(|p| p != name).collect(),
                    Err(e) => {
                        let _ = adapter.delete_if_present(name).await;
                        return Err(e);
                    }
                };
                // And the lock object must still be ours (a store ignoring the condition would
                // have let another process overwrite it).
                let ours = adapter
                    .get_bytes(name)
                    .await
                    .map(|b| b == body)
                    .unwrap_or(false);
                if !others.is_empty() || !ours {
                    let held_by = if others.is_empty() {
                        adapter.held_by(&[name.to_string()]).await
                    } else {
                        adapter.held_by(&others).await
                    };
                    if ours {
                        adapter.delete_if_present(name).await?;
                    }
                    return Err(adapter.locked(name, held_by));
                }
                let what = adapter.location(name);
                return Ok(StoreLock::with_release(
                    what.clone(),
                    releaser(adapter.store.clone(), lock_key, what),
                ));
            }
            Created::Unsupported(_) if adapter.lock_mode == LockMode::Auto => {
                tracing::debug!(
                    "{adapter}: no conditional create (If-None-Match: *); locking by claims"
                );
                adapter
                    .conditional_create
                    .store(UNSUPPORTED, Ordering::Relaxed);
            }
            // LockMode::ConditionalCreate on a store without it: a configuration error, named
            // as the store gave it ("not implemented by the server", 501 NotImplemented).
            Created::Unsupported(e) => return Err(adapter.err("lock", name, e)),
        }
    }

    // CreateThenList.
    let before = adapter.lock_objects(name).await?;
    if !before.is_empty() {
        let held_by = adapter.held_by(&before).await;
        return Err(adapter.locked(name, held_by));
    }
    let claim = format!("{name}.{token}");
    let claim_key = adapter.key(&claim)?;
    adapter
        .store
        .put(&claim_key, PutPayload::from_bytes(body))
        .await
        .map_err(|e| adapter.err("lock", &claim, e))?;
    let others: Vec<String> = match adapter.lock_objects(name).await {
        Ok(all) => all.into_iter().filter(|p| *p != claim).collect(),
        Err(e) => {
            let _ = adapter.delete_if_present(&claim).await;
            return Err(e);
        }
    };
    if !others.is_empty() {
        let held_by = adapter.held_by(&others).await;
        adapter.delete_if_present(&claim).await?;
        return Err(adapter.locked(name, held_by));
    }
    let what = adapter.location(&claim);
    Ok(StoreLock::with_release(
        what.clone(),
        releaser(adapter.store.clone(), claim_key, what),
    ))
}

#[cfg(test)]
mod tests {
    use super::is_claim_of;

    #[test]
    fn claims_are_named_after_their_lock() {
        let t = "0123456789abcdef0123456789abcdef";
        assert!(is_claim_of(&format!("d/lock.{t}"), "d/lock"));
        assert!(!is_claim_of("d/lock", "d/lock"));
        assert!(!is_claim_of(&format!("d/lock2.{t}"), "d/lock"));
        assert!(!is_claim_of("d/lock.0123", "d/lock"));
        assert!(!is_claim_of(&format!("d/lock.{t}x"), "d/lock"));
    }
}
