//! The guard returned by [`crate::Store::lock`].

use std::fmt;

/// Holds a store's lock until dropped.
pub struct StoreLock {
    what: String,
    _guard: Box<dyn Send + Sync>,
}

impl StoreLock {
    /// Wraps whatever keeps the lock held (a locked file, a registry entry); `what` names it.
    pub fn new(what: impl Into<String>, guard: Box<dyn Send + Sync>) -> StoreLock {
        StoreLock {
            what: what.into(),
            _guard: guard,
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
