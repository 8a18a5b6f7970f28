//! [`Target`] on any [`Store`], with the mirror layout: items and metadata at their stream
//! paths, the engine's state in a hidden directory beside them.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use simplestreams_core::{ChecksumKind, StreamVerifier};

use super::{HeldItem, ItemKey, NewItem, State, Target};
use crate::error::{Error, Result};
use crate::store::{
    byte_stream, ByteStream, GetOptions, GetResult, PutOptions, Store, StoreExt, StoreLock,
};

/// The directory (below the mirror root) holding the engine's state and lock.
pub const STATE_DIR: &str = ".sstream-mirror";
const STATE_FILE: &str = ".sstream-mirror/state.json";
const LOCK_FILE: &str = ".sstream-mirror/lock";

/// A mirror in a [`Store`]: `LocalStore` for a directory, `InMemory` for tests.
///
/// ```
/// use std::sync::Arc;
/// use simplestreams_mirror::{InMemory, StoreTarget};
/// let target = StoreTarget::new(Arc::new(InMemory::new()));
/// ```
#[derive(Debug, Clone)]
pub struct StoreTarget {
    store: Arc<dyn Store>,
}

impl StoreTarget {
    /// A target writing into `store`.
    pub fn new(store: Arc<dyn Store>) -> StoreTarget {
        StoreTarget { store }
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    async fn publish(&self, path: &str, bytes: Bytes) -> Result<()> {
        self.store
            .put(path, byte_stream(bytes), PutOptions::durable())
            .await?;
        Ok(())
    }

    /// Whether the store checks `item`'s published md5 itself (see [`Store::verifies_md5`]).
    fn store_checks_md5(&self, item: &NewItem) -> bool {
        item.expected.md5.is_some()
            && item.decompress.is_none()
            && self.store.verifies_md5(item.expected.size)
    }

    /// The state's path, for messages.
    fn state_location(&self) -> String {
        format!("{}/{STATE_FILE}", self.store)
    }
}

impl fmt::Display for StoreTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.store, f)
    }
}

#[async_trait]
impl Target for StoreTarget {
    async fn lock(&self) -> Result<StoreLock> {
        self.store.lock(LOCK_FILE).await
    }

    async fn load_state(&self) -> Result<State> {
        let bytes = match self.store.get_bytes(STATE_FILE).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(State::default()),
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::State {
            path: self.state_location(),
            message: e.to_string(),
        })
    }

    async fn save_state(&self, state: &State) -> Result<()> {
        let bytes = serde_json::to_vec(state).map_err(|e| Error::State {
            path: self.state_location(),
            message: e.to_string(),
        })?;
        self.publish(STATE_FILE, bytes.into()).await
    }

    async fn has_content(&self, item: &NewItem) -> Result<bool> {
        let Some(path) = &item.path else {
            return Ok(false);
        };
        let Some(meta) = self.store.head(path).await? else {
            return Ok(false);
        };
        if meta.size != item.expected.size {
            return Ok(false);
        }
        // Same size: read it through the verifier (much cheaper than downloading it again).
        let GetResult::Found { mut body, .. } = self.store.get(path, GetOptions::default()).await?
        else {
            return Ok(false);
        };
        let mut v = StreamVerifier::new(item.key.to_string(), item.expected.clone());
        while let Some(chunk) = body.next().await {
            if v.update(&chunk?).is_err() {
                return Ok(false);
            }
        }
        Ok(v.finish().is_ok())
    }

    async fn insert_item(&self, item: &NewItem, body: ByteStream) -> Result<()> {
        let Some(path) = &item.path else {
            // Nothing to store: the metadata is the item.
            return Ok(());
        };
        // Not durable on its own: the metadata naming it is put durably later, which flushes it.
        let options = PutOptions {
            durable: false,
            size: item.expected.size,
            md5: item
                .expected
                .md5
                .clone()
                .filter(|_| self.store_checks_md5(item)),
        };
        self.store.put(path, body, options).await?;
        Ok(())
    }

    /// The md5, when the store checks it itself (it computes it as it stores the bytes, and
    /// refuses the object on a mismatch): hashing it here as well would cost the upload a
    /// core's worth of time.
    fn self_verified(&self, item: &NewItem) -> Vec<ChecksumKind> {
        if self.store_checks_md5(item) {
            vec![ChecksumKind::Md5]
        } else {
            Vec::new()
        }
    }

    async fn remove_item(&self, _key: &ItemKey, held: &HeldItem) -> Result<()> {
        match held.stored_path() {
            Some(path) => self.store.delete_if_present(path).await,
            None => Ok(()),
        }
    }
}
