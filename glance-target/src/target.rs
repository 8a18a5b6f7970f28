//! [`GlanceTarget`]: the sync engine's [`Target`] for Glance. Items are images; what the target
//! holds is read from Glance itself on every run (the images that are ours), never from a state
//! file, so that a crash, the reference tool or an operator's manual delete can never make it
//! believe in images that are not there.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use simplestreams_core::{ChecksumKind, Expected};
use simplestreams_mirror::{
    ByteStream, ContentState, Error as MirrorError, HeldItem, ItemKey, LocalStore, NewItem,
    Publisher, PutOptions, State, Store, StoreExt, StoreLock, Target,
};

use crate::glance::{GlanceClient, Image, ListQuery, PatchOp};
use crate::image_ids::{publish_image_ids, CloudInfo};
use crate::latest::latest_changes;
use crate::modify_hook::run_modify_hook;
use crate::properties::ImageSettings;
use crate::upload::content_disk_format;
use openstack_client::Error;

/// Statuses an image of ours can only have while a sync uploads it; met when we hold the lock,
/// they are leftovers of a sync that crashed or was killed.
const UNFINISHED: [&str; 5] = ["queued", "saving", "uploading", "importing", "killed"];

/// What the target did, for the command to report (`created ID: NAME` like the reference).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GlanceEvent {
    /// An image was uploaded and verified.
    Created {
        /// Image id.
        id: String,
        /// Image name.
        name: String,
    },
    /// An image of ours is being deleted (its version left the stream or `--max`).
    Removing {
        /// Image id.
        id: String,
        /// Image name.
        name: String,
    },
    /// An unfinished image of ours, left by an interrupted sync, was deleted.
    CleanedUp {
        /// Image id.
        id: String,
        /// Its status.
        status: String,
    },
}

/// Receives [`GlanceEvent`]s.
pub type EventSink = Arc<dyn Fn(&GlanceEvent) + Send + Sync>;

/// How a [`GlanceTarget`] creates images.
#[derive(Clone)]
pub struct GlanceTargetOptions {
    /// Name, formats and properties of the images.
    pub settings: ImageSettings,
    /// Visibility of new images (`public` by default, as the reference).
    pub visibility: String,
    /// `--modify-hook`: a command (split on spaces) run on a temporary copy of each image
    /// before upload, with the item's fields and `IMAGE_PATH` in its environment.
    pub modify_hook: Option<Vec<String>>,
    /// Where the sync keeps what Glance cannot hold for it: the lock that keeps two syncs of
    /// one content id apart, and the newest `updated` seen of each source file (rollback
    /// protection). Default: [`default_state_dir`].
    pub state_dir: PathBuf,
    /// Receives what was done.
    pub events: EventSink,
}

impl Default for GlanceTargetOptions {
    fn default() -> Self {
        GlanceTargetOptions {
            settings: ImageSettings::default(),
            visibility: "public".into(),
            modify_hook: None,
            state_dir: default_state_dir(),
            events: Arc::new(|_| {}),
        }
    }
}

impl fmt::Debug for GlanceTargetOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlanceTargetOptions")
            .field("settings", &self.settings)
            .field("visibility", &self.visibility)
            .field("modify_hook", &self.modify_hook)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

/// `$XDG_STATE_HOME/simplestreams-rs/glance`, else `~/.local/state/simplestreams-rs/glance`,
/// else (no home) a directory in the system's temporary directory.
pub fn default_state_dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })
        .unwrap_or_else(std::env::temp_dir);
    base.join("simplestreams-rs/glance")
}

/// The property an image carries from its creation until what Glance stored was checked
/// against the stream: an image that still has it was never verified (the check failed to run,
/// the sync was killed), and is checked again, or replaced, before it is held.
pub(crate) const UNVERIFIED: &str = "simplestreams_unverified";

/// The images of one project in one Glance that carry one content id: a mirror target.
///
/// An image is ours when its owner is our project, its `content_id` property is ours, the four
/// identity properties are set, and it is `active`; nothing else is ever changed or deleted.
#[derive(Debug)]
pub struct GlanceTarget {
    pub(crate) glance: GlanceClient,
    pub(crate) project_id: String,
    pub(crate) options: GlanceTargetOptions,
    /// Names of the images seen, by id (for `removing ID: NAME`).
    names: Mutex<HashMap<String, String>>,
    /// Our images as last listed, while nothing of ours has changed since: a sync lists them
    /// when it takes the lock, to load its state and to finish, and a no-op sync changes
    /// nothing in between, so one listing serves all three. A target lives for one sync.
    listing: Mutex<Option<Vec<Image>>>,
}

impl fmt::Display for GlanceTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Glance {} (project {}, content id {})",
            self.glance.base_url(),
            self.project_id,
            self.options.settings.content_id
        )
    }
}

/// Converts an OpenStack error for the engine: a 404 is the engine's "not found", anything
/// else stays the typed OpenStack error (method, URL, status, the service's message, causes).
pub(crate) fn to_mirror(e: Error) -> MirrorError {
    match e {
        Error::NotFound { url, .. } => MirrorError::NotFound { location: url },
        other => MirrorError::Service(Box::new(other)),
    }
}

impl GlanceTarget {
    /// A target writing into `glance` as `project_id` (the project of the session's token).
    pub fn new(glance: GlanceClient, project_id: String, options: GlanceTargetOptions) -> Self {
        GlanceTarget {
            glance,
            project_id,
            options,
            names: Mutex::new(HashMap::new()),
            listing: Mutex::new(None),
        }
    }

    /// Something of ours in Glance is about to change (or has): the next look lists again.
    pub(crate) fn changing(&self) {
        if let Ok(mut l) = self.listing.lock() {
            *l = None;
        }
    }

    /// The Glance client.
    pub fn glance(&self) -> &GlanceClient {
        &self.glance
    }

    /// The content id of our images.
    pub fn content_id(&self) -> &str {
        &self.options.settings.content_id
    }

    fn emit(&self, e: GlanceEvent) {
        (self.options.events)(&e);
    }

    /// Every image of our project with our content id, whatever its status. One listing,
    /// filtered by Glance (owner and property), not every image of the cloud; made again only
    /// once this target has changed something.
    pub async fn our_images(&self) -> Result<Vec<Image>, Error> {
        if let Some(listed) = self.listing.lock().ok().and_then(|l| l.clone()) {
            return Ok(listed);
        }
        let query = ListQuery::new()
            .filter("owner", &self.project_id)
            .filter("content_id", self.content_id())
            .page_size(1000);
        let images = self.glance.list(&query).await?;
        let ours: Vec<Image> = images
            .into_iter()
            .filter(|i| {
                i.owner.as_deref() == Some(self.project_id.as_str())
                    && i.property("content_id") == Some(self.content_id())
            })
            .collect();
        if let Ok(mut names) = self.names.lock() {
            for i in &ours {
                names.insert(i.id.clone(), i.name.clone().unwrap_or_default());
            }
        }
        if let Ok(mut l) = self.listing.lock() {
            *l = Some(ours.clone());
        }
        Ok(ours)
    }

    /// Our active, verified images with all identity properties set: what the target holds.
    pub async fn held_images(&self) -> Result<Vec<Image>, Error> {
        Ok(self
            .our_images()
            .await?
            .into_iter()
            .filter(|i| i.status == "active" && identity(i).is_some())
            .filter(|i| i.property(UNVERIFIED).is_none())
            .collect())
    }

    /// Deletes our images left unfinished (`queued`, `saving`, …) by an interrupted sync, and
    /// settles those left unverified: kept when what Glance stored matches the size and md5
    /// the stream gave, deleted otherwise (the next sync uploads them again). Called with the
    /// lock held, so that no sync of ours can be uploading them. Returns how many were deleted.
    pub async fn clean_up_unfinished(&self) -> Result<usize, Error> {
        let mut n = 0;
        for image in self.our_images().await? {
            if identity(&image).is_none() {
                continue;
            }
            let unfinished = UNFINISHED.contains(&image.status.as_str());
            if unfinished || image.property(UNVERIFIED).is_some() {
                self.changing();
            }
            if !unfinished && image.property(UNVERIFIED).is_some() {
                if matches_its_stream(&image) {
                    tracing::info!(
                        "{}: left unverified by an earlier sync; it checks out",
                        image.id
                    );
                    self.glance
                        .update(&image.id, &[PatchOp::remove(UNVERIFIED)])
                        .await?;
                    continue;
                }
                tracing::warn!(
                    "{}: left unverified by an earlier sync, and its size or md5 differs from \
                     the stream's (or the stream gives no md5): deleting it",
                    image.id
                );
            } else if !unfinished {
                continue;
            }
            match self.glance.delete(&image.id).await {
                Ok(()) | Err(Error::NotFound { .. }) => {
                    n += 1;
                    self.emit(GlanceEvent::CleanedUp {
                        id: image.id.clone(),
                        status: image.status.clone(),
                    });
                }
                Err(e) => tracing::warn!("{}: unfinished image not deleted: {e}", image.id),
            }
        }
        Ok(n)
    }

    /// What a sync does once the engine is done: with `set_latest`, leaves `latest=true` on
    /// exactly one image of ours per os_version + architecture (the newest version); with
    /// `output`, publishes the image-ids stream of what the cloud now holds, once.
    pub async fn finish(
        &self,
        set_latest: bool,
        output: Option<(&Publisher, &CloudInfo)>,
    ) -> Result<(), MirrorError> {
        self.finish_latest(set_latest).await.map_err(to_mirror)?;
        if let Some((publisher, cloud)) = output {
            let images = self.held_images().await.map_err(to_mirror)?;
            publish_image_ids(publisher, &images, cloud).await?;
        }
        Ok(())
    }

    async fn finish_latest(&self, set_latest: bool) -> Result<(), Error> {
        let images = self.held_images().await?;
        if set_latest {
            for (id, on) in latest_changes(&images) {
                let op = if on {
                    PatchOp::set("latest", "true")
                } else {
                    PatchOp::remove("latest")
                };
                self.changing();
                self.glance.update(&id, &[op]).await?;
            }
        }
        Ok(())
    }
}

impl GlanceTarget {
    /// Uploads `item` from `body` into a new image, as the options say (decompressed, through
    /// the modify hook, or as it is); the image is deleted on any failure.
    async fn upload_item(&self, item: &NewItem, body: ByteStream) -> Result<Image, MirrorError> {
        Ok(match &self.options.modify_hook {
            // Decompressed by the engine, which verified the bytes as published: Glance's md5
            // is checked against ours of the raw bytes, and the format comes from them.
            None if item.decompress.is_some() => {
                let (format, body) = content_disk_format(body).await?;
                self.upload_checked(item, body, Expected::default(), false, Some(format))
                    .await?
            }
            None => {
                self.upload_checked(item, body, item.expected.clone(), true, None)
                    .await?
            }
            Some(cmd) => {
                let modified = run_modify_hook(cmd, item, body).await?;
                let expected = Expected {
                    size: Some(modified.size),
                    md5: Some(modified.md5.clone()),
                    ..Expected::default()
                };
                let result = self
                    .upload_checked(item, modified.stream().await?, expected, false, None)
                    .await;
                modified.remove().await;
                result?
            }
        })
    }
}

/// Whether Glance's size and md5 of an image are those its stream gave (its
/// `simplestreams_metadata`); `false` when the stream gave no md5 to compare with.
fn matches_its_stream(image: &Image) -> bool {
    let meta: serde_json::Map<String, serde_json::Value> = image
        .property("simplestreams_metadata")
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    let text = |k: &str| match meta.get(k) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let size_ok = text("size").and_then(|s| s.parse::<u64>().ok()) == image.size;
    let md5_ok = match (text("md5"), &image.checksum) {
        (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
        _ => false,
    };
    size_ok && md5_ok
}

/// `(source_content_id, product, version, item)` of an image, when all are set.
pub(crate) fn identity(i: &Image) -> Option<(&str, &str, &str, &str)> {
    let get = |k| i.property(k).filter(|v| !v.is_empty());
    Some((
        get("source_content_id")?,
        get("product_name")?,
        get("version_name")?,
        get("item_name")?,
    ))
}

impl GlanceTarget {
    /// This target's name in the state directory: the endpoint and content id, made safe.
    fn state_name(&self) -> String {
        format!("{}-{}", self.glance.base_url(), self.content_id())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    fn state_store(&self) -> LocalStore {
        LocalStore::new(&self.options.state_dir)
    }

    fn seen_file(&self) -> String {
        format!("{}.seen.json", self.state_name())
    }
}

#[async_trait]
impl Target for GlanceTarget {
    /// A local lock per Glance endpoint and content id; once held, whatever of ours is still
    /// unfinished or unverified was left by an interrupted sync and is settled.
    async fn lock(&self) -> Result<StoreLock, MirrorError> {
        let lock = self
            .state_store()
            .lock(&format!("{}.lock", self.state_name()))
            .await?;
        self.clean_up_unfinished().await.map_err(to_mirror)?;
        Ok(lock)
    }

    async fn load_state(&self) -> Result<State, MirrorError> {
        let mut state = State::default();
        // The dates seen of the source's files live beside the lock; the rest is in Glance.
        match self.state_store().get_bytes(&self.seen_file()).await {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(seen) => state.seen = seen,
                Err(e) => tracing::warn!(
                    "{}/{}: unreadable ({e}); rollback protection starts afresh",
                    self.options.state_dir.display(),
                    self.seen_file()
                ),
            },
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let mut seen: HashMap<(String, String, String, String), String> = HashMap::new();
        let mut images = self.held_images().await.map_err(to_mirror)?;
        images.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        for image in &images {
            let Some((src, p, v, i)) = identity(image) else {
                continue;
            };
            let key = (src.to_string(), p.to_string(), v.to_string(), i.to_string());
            if let Some(first) = seen.get(&key) {
                tracing::warn!(
                    "images {first} and {} are both {src} {p} {v} {i}; keeping track of the first",
                    image.id
                );
                continue;
            }
            seen.insert(key, image.id.clone());
            let meta: serde_json::Map<String, serde_json::Value> = image
                .property("simplestreams_metadata")
                .and_then(|m| serde_json::from_str(m).ok())
                .unwrap_or_default();
            let text = |k: &str| meta.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let held = HeldItem {
                path: None,
                size: image.size,
                sha256: text("sha256"),
                md5: image.checksum.clone(),
                id: Some(image.id.clone()),
                stored: None,
            };
            state
                .content
                .entry(src.to_string())
                .or_insert_with(ContentState::default)
                .items
                .entry(p.to_string())
                .or_default()
                .entry(v.to_string())
                .or_default()
                .insert(i.to_string(), held);
        }
        Ok(state)
    }

    /// Glance is the state of the items; only the dates seen of the source's files are saved,
    /// beside the lock.
    async fn save_state(&self, state: &State) -> Result<(), MirrorError> {
        let bytes = serde_json::to_vec_pretty(&state.seen).map_err(|e| MirrorError::State {
            path: self.seen_file(),
            message: e.to_string(),
        })?;
        self.state_store()
            .put(
                &self.seen_file(),
                simplestreams_mirror::byte_stream(bytes),
                PutOptions::durable(),
            )
            .await?;
        Ok(())
    }

    async fn has_content(&self, item: &NewItem) -> Result<bool, MirrorError> {
        let query = ListQuery::new()
            .filter("owner", &self.project_id)
            .filter("content_id", self.content_id())
            .filter("product_name", &item.key.product)
            .filter("version_name", &item.key.version)
            .filter("item_name", &item.key.item)
            .filter("status", "active");
        let found = self.glance.list(&query).await.map_err(to_mirror)?;
        Ok(found
            .iter()
            .any(|i| identity(i).is_some_and(|(src, ..)| src == item.key.content_id)))
    }

    async fn insert_item(&self, item: &NewItem, body: ByteStream) -> Result<(), MirrorError> {
        self.changing();
        let uploaded = self.upload_item(item, body).await;
        // Again, whatever the outcome: a listing made meanwhile does not show how it ended.
        self.changing();
        let image = uploaded?;
        let name = image.name.clone().unwrap_or_default();
        if let Ok(mut names) = self.names.lock() {
            names.insert(image.id.clone(), name.clone());
        }
        self.emit(GlanceEvent::Created { id: image.id, name });
        Ok(())
    }

    /// The md5: Glance computes it as it stores the bytes, and `upload_checked` compares its
    /// `checksum` with the stream's, deleting the image on a mismatch. Not after a modify hook
    /// (Glance gets other bytes, checked against their own md5) nor with an import conversion
    /// (Glance's checksum is of the converted image): the engine then checks every kind.
    fn self_verified(&self, _item: &NewItem) -> Vec<ChecksumKind> {
        if self.options.modify_hook.is_none() && !self.options.settings.import_conversion {
            vec![ChecksumKind::Md5]
        } else {
            Vec::new()
        }
    }

    /// An upload cut short leaves an image `queued` or `saving`: deleted now, not by the next
    /// sync.
    async fn interrupted(&self) -> Result<(), MirrorError> {
        self.changing();
        self.clean_up_unfinished().await.map_err(to_mirror)?;
        Ok(())
    }

    async fn remove_item(&self, _key: &ItemKey, held: &HeldItem) -> Result<(), MirrorError> {
        let Some(id) = &held.id else {
            return Ok(());
        };
        self.changing();
        let name = self
            .names
            .lock()
            .ok()
            .and_then(|n| n.get(id).cloned())
            .unwrap_or_default();
        self.emit(GlanceEvent::Removing {
            id: id.clone(),
            name,
        });
        match self.glance.delete(id).await {
            Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(to_mirror(e)),
        }
    }
}
