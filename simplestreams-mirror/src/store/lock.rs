//! The guard returned by [`crate::Store::lock`].

use std::fmt;

use futures::future::BoxFuture;

/// How a lock whose release is a request (a lock object in an object store) is let go.
pub type Release = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send + Sync>;

/// Holds a store's lock until released or dropped.
///
/// A local lock (a locked file) goes away with its guard, and with the process. A lock object
/// in a remote store must be deleted: [`StoreLock::release`] does it and waits; dropping the
/// guard unreleased still asks for it on the current runtime, but cannot wait, so a process
/// that exits at once may leave the lock behind (the store's docs say how to break it).
pub struct StoreLock {
    what: String,
    _guard: Box<dyn Send + Sync>,
    release: Option<Release>,
}

impl StoreLock {
    /// Wraps whatever keeps the lock held (a locked file, a registry entry); `what` names it.
    pub fn new(what: impl Into<String>, guard: Box<dyn Send + Sync>) -> StoreLock {
        StoreLock {
            what: what.into(),
            _guard: guard,
            release: None,
        }
    }

    /// A lock let go by running `release` (deleting a lock object).
    pub fn with_release(what: impl Into<String>, release: Release) -> StoreLock {
        StoreLock {
            what: what.into(),
            _guard: Box::new(()),
            release: Some(release),
        }
    }

    /// What is locked.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Lets the lock go, waiting until it is gone.
    pub async fn release(mut self) {
        if let Some(release) = self.release.take() {
            release().await;
        }
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(release());
                }
                Err(_) => tracing::warn!(
                    "{}: lock not released (no runtime to release it on)",
                    self.what
                ),
            }
        }
    }
}

impl fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreLock")
            .field("what", &self.what)
            .finish()
    }
}
