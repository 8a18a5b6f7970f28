//! Where a stream is mirrored to, at item level: the [`Target`] trait and the state it keeps.

use std::collections::BTreeMap;
use std::fmt::{self, Debug, Display};

use async_trait::async_trait;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use simplestreams_core::{ChecksumKind, Expected};

use crate::decompress::Compression;
use crate::error::Result;
use crate::store::{ByteStream, StoreLock, Validators};

mod store_target;

pub use store_target::{StoreTarget, STATE_DIR};

/// Identifies an item: content id, product, version, item name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ItemKey {
    /// `content_id` of the products file.
    pub content_id: String,
    /// Product name.
    pub product: String,
    /// Version name.
    pub version: String,
    /// Item name.
    pub item: String,
}

impl Display for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.content_id, self.product, self.version, self.item
        )
    }
}

/// What a target holds for one item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldItem {
    /// Where its content is, relative to the mirror root (`None` for items without a file,
    /// such as cloud image ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// SHA-256, when the metadata gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// MD5, when the metadata gave it and no SHA-256 did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// A target-specific identifier (a Glance image id, for example).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Where and what the content is when it was stored decompressed
    /// ([`crate::SyncOptions::decompress`]); `path`, `size` and the checksums above stay those
    /// published, which is what the next run compares the source with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<StoredAs>,
}

/// An item's content as stored when that is not as published: the raw bytes of a compressed
/// image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAs {
    /// Its path, relative to the mirror root (the published path without the compression's
    /// extension).
    pub path: String,
    /// Its size.
    pub size: u64,
    /// Its sha256, lower-case hex.
    pub sha256: String,
}

impl StoredAs {
    /// What the stored content must be, to verify it again.
    pub fn expected(&self) -> Expected {
        Expected {
            size: Some(self.size),
            sha256: Some(self.sha256.clone()),
            ..Expected::default()
        }
    }
}

impl HeldItem {
    /// The record of an item with this path and expected content.
    pub fn new(path: Option<String>, expected: &Expected) -> HeldItem {
        HeldItem {
            path,
            size: expected.size,
            sha256: expected.sha256.clone(),
            md5: if expected.sha256.is_none() {
                expected.md5.clone()
            } else {
                None
            },
            id: None,
            stored: None,
        }
    }

    /// The path of the content as stored: [`HeldItem::stored`]'s when it was decompressed.
    pub fn stored_path(&self) -> Option<&str> {
        match &self.stored {
            Some(s) => Some(&s.path),
            None => self.path.as_deref(),
        }
    }

    /// Whether two records describe the same content (same size and a common checksum).
    pub fn same_content(&self, other: &HeldItem) -> bool {
        let common = match (&self.sha256, &other.sha256, &self.md5, &other.md5) {
            (Some(a), Some(b), _, _) => a == b,
            (_, _, Some(a), Some(b)) => a == b,
            _ => false,
        };
        common && self.size == other.size
    }
}

/// Items held for one content id: product → version → item.
pub type ItemTree = BTreeMap<String, BTreeMap<String, BTreeMap<String, HeldItem>>>;

/// What a target holds for one content id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentState {
    /// Path of its products file.
    pub path: String,
    /// The items mirrored.
    pub items: ItemTree,
}

/// An item the engine removed whose content waits for deletion (written in the state before
/// deleting, so that a crash between the two leaves nothing behind forever).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRemoval {
    /// Which item.
    pub key: ItemKey,
    /// What it was.
    pub held: HeldItem,
}

/// Everything the engine remembers about a target between runs. Written once per run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// By content id.
    #[serde(default)]
    pub content: BTreeMap<String, ContentState>,
    /// Validators of the metadata files as last fetched, by path, for conditional requests.
    #[serde(default)]
    pub validators: BTreeMap<String, Validators>,
    /// Removed items whose content may still need deleting.
    #[serde(default)]
    pub pending: Vec<PendingRemoval>,
    /// The newest `updated` seen of each metadata file, by URL: a source serving an older
    /// file is refused (rollback protection).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub seen: BTreeMap<String, String>,
}

impl State {
    /// How many items reference each path, over every content id.
    pub fn path_refs(&self) -> std::collections::HashMap<&str, usize> {
        let mut refs = std::collections::HashMap::new();
        for c in self.content.values() {
            for versions in c.items.values() {
                for items in versions.values() {
                    for held in items.values() {
                        if let Some(p) = &held.path {
                            *refs.entry(p.as_str()).or_insert(0) += 1;
                        }
                    }
                }
            }
        }
        refs
    }
}

/// An item to insert, with what the engine knows about it.
#[derive(Debug, Clone)]
pub struct NewItem {
    /// Which item.
    pub key: ItemKey,
    /// Its `path` (`None` for items without a file).
    pub path: Option<String>,
    /// Size and checksums from the metadata.
    pub expected: Expected,
    /// Its flattened fields (product, version and item levels; top level excluded), for targets
    /// that describe items with properties (Glance).
    pub fields: IndexMap<String, String>,
    /// Set when the body handed to [`Target::insert_item`] is the decompressed content of an
    /// item published in this compression: `path` is then where the raw bytes go (the
    /// published path without the extension), and `expected` is empty (the raw size and
    /// checksums are known only at the end; the engine verified the bytes as published).
    pub decompress: Option<Compression>,
}

impl NewItem {
    /// The record a target keeps once the item is in.
    pub fn held(&self) -> HeldItem {
        HeldItem::new(self.path.clone(), &self.expected)
    }
}

/// Refuses a path that no item or metadata file may have in a mirror: unsafe (absolute,
/// `..`, see [`simplestreams_core::check_safe_path`]) or inside the engine's private
/// [`STATE_DIR`], where it would overwrite the state or the lock.
pub fn check_mirror_path(path: &str) -> Result<()> {
    simplestreams_core::check_safe_path(path)?;
    let first = path
        .trim_start_matches("./")
        .split('/')
        .next()
        .unwrap_or_default();
    if first == STATE_DIR {
        return Err(simplestreams_core::Error::UnsafePath {
            path: path.to_string(),
            reason: "inside .sstream-mirror/, which holds the mirror's own state and lock",
        }
        .into());
    }
    Ok(())
}

/// Item-level storage: the engine's view of a mirror destination. Publishing metadata is not
/// its job: the engine writes metadata into a [`crate::Store`] with a [`crate::Publisher`].
///
/// A directory or object store implements it through [`StoreTarget`]; a cloud image service
/// implements it directly (an image per item). The contract, checked by
/// `testkit::target_conformance` (feature `testkit`):
/// - `insert_item` consumes a body that ends with an error if verification fails; the item must
///   then not be visible at all;
/// - `save_state` replaces the state atomically; `load_state` returns what was last saved (or,
///   for a target that reads what it holds from the service itself, what is there);
/// - `lock` is held for a whole sync, so that two syncs never interleave.
#[async_trait]
pub trait Target: Send + Sync + Debug + Display + 'static {
    /// Takes the target's lock for one sync ([`crate::Error::Locked`] if held).
    async fn lock(&self) -> Result<StoreLock>;

    /// What the target holds, as recorded by the last run.
    async fn load_state(&self) -> Result<State>;

    /// Records what the target holds (once per run, atomically).
    async fn save_state(&self, state: &State) -> Result<()>;

    /// Whether the item's content is already there and verified (after a crash, or a path shared
    /// with another item), so that it need not be downloaded.
    async fn has_content(&self, item: &NewItem) -> Result<bool>;

    /// Inserts an item from a stream that fails at its end if the bytes do not verify.
    async fn insert_item(&self, item: &NewItem, body: ByteStream) -> Result<()>;

    /// Checksum kinds of `item` that this target checks itself against the metadata once it has
    /// stored the bytes, so that the engine need not compute them while streaming (Glance
    /// computes the md5 of what it stores; hashing it twice on the same machine costs an upload
    /// a core's worth of time). The size and every other kind verified are still checked in
    /// the stream. A target naming a kind must fail `insert_item`, leaving nothing visible, when
    /// that checksum differs. The default, none, has the engine verify everything: what a
    /// directory or object store needs, since it keeps no digest of its own.
    fn self_verified(&self, _item: &NewItem) -> Vec<ChecksumKind> {
        Vec::new()
    }

    /// Removes an item's content (the engine calls it only when nothing kept refers to it).
    async fn remove_item(&self, key: &ItemKey, held: &HeldItem) -> Result<()>;

    /// A sync holding the lock was interrupted while inserts were in flight: removes what
    /// they left behind (an image service's half-uploaded images). The default does nothing,
    /// which is right for a store: a put cut short publishes nothing and removes its
    /// temporary file.
    async fn interrupted(&self) -> Result<()> {
        Ok(())
    }
}
