//! [`GlanceTarget`]: the sync engine's [`Target`] for Glance. Items are images; what the target
//! holds is read from Glance itself on every run (the images that are ours), never from a state
//! file, so that a crash, the reference tool or an operator's manual delete can never make it
//! believe in images that are not there.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use simplestreams_core::{ChecksumKind, Digests, Expected, StreamVerifier};
use simplestreams_mirror::{
    ByteStream, ContentState, Error as MirrorError, HeldItem, ItemKey, LocalStore, NewItem, State,
    Store, StoreLock, Target,
};

use crate::glance::{GlanceClient, Image, ImportMethod, ListQuery, NewImage, PatchOp};
use crate::image_ids::{write_image_ids, CloudInfo};
use crate::modify_hook::run_modify_hook;
use crate::openstack::Error;
use crate::properties::{disk_format, glance_properties, image_name, ImageSettings};

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
    /// Directory of the lock file that keeps two syncs of one content id apart.
    pub lock_dir: PathBuf,
    /// Receives what was done.
    pub events: EventSink,
}

impl Default for GlanceTargetOptions {
    fn default() -> Self {
        GlanceTargetOptions {
            settings: ImageSettings::default(),
            visibility: "public".into(),
            modify_hook: None,
            lock_dir: std::env::temp_dir().join("sstream-mirror-glance"),
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
            .field("lock_dir", &self.lock_dir)
            .finish_non_exhaustive()
    }
}

/// The images of one project in one Glance that carry one content id: a mirror target.
///
/// An image is ours when its owner is our project, its `content_id` property is ours, the four
/// identity properties are set, and it is `active`; nothing else is ever changed or deleted.
#[derive(Debug)]
pub struct GlanceTarget {
    glance: GlanceClient,
    project_id: String,
    options: GlanceTargetOptions,
    /// Names of the images seen, by id (for `removing ID: NAME`).
    names: Mutex<HashMap<String, String>>,
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

/// Converts an OpenStack error for the engine, keeping the URL and status.
pub(crate) fn to_mirror(e: Error) -> MirrorError {
    let message = e.to_string();
    let status = e.status();
    match e {
        Error::NotFound { url, .. } => MirrorError::NotFound { location: url },
        Error::Unauthorized { url, .. }
        | Error::Forbidden { url, .. }
        | Error::Conflict { url, .. }
        | Error::TooLarge { url, .. }
        | Error::Server { url, .. }
        | Error::Status { url, .. } => MirrorError::Http {
            url,
            status: status.unwrap_or(0),
            message,
        },
        Error::Transport { url, .. } => MirrorError::Transport { url, message },
        Error::Io { path, source } => MirrorError::Io { path, source },
        other => MirrorError::Location {
            location: "OpenStack".into(),
            message: other.to_string(),
        },
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
    /// filtered by Glance (owner and property), not every image of the cloud.
    pub async fn our_images(&self) -> Result<Vec<Image>, Error> {
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
        Ok(ours)
    }

    /// Our active images with all identity properties set: what the target holds.
    pub async fn held_images(&self) -> Result<Vec<Image>, Error> {
        Ok(self
            .our_images()
            .await?
            .into_iter()
            .filter(|i| i.status == "active" && identity(i).is_some())
            .collect())
    }

    /// Deletes our images left unfinished (`queued`, `saving`, …) by an interrupted sync.
    /// Called with the lock held, so that no sync of ours can be uploading them.
    pub async fn clean_up_unfinished(&self) -> Result<usize, Error> {
        let mut n = 0;
        for image in self.our_images().await? {
            if !UNFINISHED.contains(&image.status.as_str()) || identity(&image).is_none() {
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
    /// `output`, writes the image-ids stream of what the cloud now holds, once.
    pub async fn finish(
        &self,
        set_latest: bool,
        output: Option<(&Path, &CloudInfo)>,
    ) -> Result<(), Error> {
        let mut images = self.held_images().await?;
        if set_latest {
            for (id, on) in latest_changes(&images) {
                let op = if on {
                    PatchOp::set("latest", "true")
                } else {
                    PatchOp::remove("latest")
                };
                let updated = self.glance.update(&id, &[op]).await?;
                if let Some(slot) = images.iter_mut().find(|i| i.id == id) {
                    *slot = updated;
                }
            }
        }
        if let Some((dir, cloud)) = output {
            write_image_ids(dir, &images, cloud)?;
        }
        Ok(())
    }

    fn new_image(&self, item: &NewItem) -> NewImage {
        let s = &self.options.settings;
        let mut image = NewImage::new(
            image_name(&item.fields, &s.name_prefix),
            disk_format(&item.fields, s),
            "bare",
        )
        .with_visibility(self.options.visibility.clone());
        // The properties go on at creation (the reference adds them after the upload): an
        // image cut short by a crash is then recognisably ours, and cleaned up next run.
        image.properties = glance_properties(&item.fields, &item.key.content_id, s);
        image
    }

    /// Uploads `body` into a new image and checks what Glance stored against `expected`; the
    /// image is deleted on any failure.
    async fn upload_checked(
        &self,
        item: &NewItem,
        body: ByteStream,
        expected: Expected,
        check_stream: bool,
    ) -> Result<Image, MirrorError> {
        let new = self.new_image(item);
        let image = self.glance.create(&new).await.map_err(to_mirror)?;
        let result = self
            .upload_into(&image, body, &expected, check_stream)
            .await;
        if result.is_err() {
            if let Err(e) = self.glance.delete(&image.id).await {
                tracing::warn!("{}: not deleted after a failed upload: {e}", image.id);
            }
        }
        result
    }

    async fn upload_into(
        &self,
        image: &Image,
        body: ByteStream,
        expected: &Expected,
        check_stream: bool,
    ) -> Result<Image, MirrorError> {
        // Glance's md5 is checked against the stream's; when the stream gives none, against
        // our own md5 of the bytes sent.
        let tracker = Arc::new(Mutex::new(Tracker::new(expected.md5.is_none())));
        let body = tracked(body, tracker.clone());
        let id = &image.id;
        let sent = self.send_data(id, body, expected.size).await;
        let failed = tracker.lock().ok().and_then(|mut t| t.failed.take());
        match (sent, failed) {
            (_, Some(body_error)) => return Err(MirrorError::Aborted(body_error)),
            (Err(e), None) => return Err(e),
            (Ok(()), None) => {}
        }
        let digests = tracker
            .lock()
            .ok()
            .and_then(|mut t| t.finished.take())
            .ok_or_else(|| {
                MirrorError::Aborted(format!("image {id}: the upload stream did not end cleanly"))
            })?;
        let found = if self.options.settings.import_conversion {
            self.glance
                .wait_for_status(
                    id,
                    &["active"],
                    Duration::from_secs(2),
                    Duration::from_secs(6 * 3600),
                )
                .await
                .map_err(to_mirror)?
        } else {
            self.glance.get(id).await.map_err(to_mirror)?
        };
        // A converted image has other bytes than the stream's: only the stream was checked.
        if !self.options.settings.import_conversion {
            check_stored(&found, expected, &digests, check_stream).map_err(|message| {
                MirrorError::Location {
                    location: format!("{}/images/{id}", self.glance.base_url()),
                    message,
                }
            })?;
        }
        Ok(found)
    }

    /// Sends the image data: uploaded, or staged then imported (`--image-import-conversion`).
    async fn send_data(
        &self,
        id: &str,
        body: ByteStream,
        size: Option<u64>,
    ) -> Result<(), MirrorError> {
        if self.options.settings.import_conversion {
            self.glance.stage(id, body, size).await.map_err(to_mirror)?;
            self.glance
                .import(id, &ImportMethod::GlanceDirect)
                .await
                .map_err(to_mirror)
        } else {
            self.glance.upload(id, body, size).await.map_err(to_mirror)
        }
    }
}

/// `(source_content_id, product, version, item)` of an image, when all are set.
fn identity(i: &Image) -> Option<(&str, &str, &str, &str)> {
    let get = |k| i.property(k).filter(|v| !v.is_empty());
    Some((
        get("source_content_id")?,
        get("product_name")?,
        get("version_name")?,
        get("item_name")?,
    ))
}

/// Compares what Glance stored with what was sent.
fn check_stored(
    found: &Image,
    expected: &Expected,
    sent: &Digests,
    check_sha512: bool,
) -> Result<(), String> {
    let mut wrong = Vec::new();
    if found.status != "active" {
        wrong.push(format!("status is {:?}, not active", found.status));
    }
    let size = expected.size.unwrap_or(sent.size);
    if found.size != Some(size) {
        wrong.push(format!("size is {:?}, expected {size}", found.size));
    }
    let md5 = expected.md5.as_ref().or(sent.md5.as_ref());
    if let Some(md5) = md5 {
        if found
            .checksum
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_ref()
            != Some(md5)
        {
            wrong.push(format!(
                "checksum (md5) is {:?}, expected {md5}",
                found.checksum
            ));
        }
    }
    if let (true, Some(sha512), Some("sha512")) = (
        check_sha512,
        &expected.sha512,
        found.os_hash_algo.as_deref(),
    ) {
        if found
            .os_hash_value
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_ref()
            != Some(sha512)
        {
            wrong.push(format!(
                "os_hash_value (sha512) is {:?}, expected {sha512}",
                found.os_hash_value
            ));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "Glance stored something else: {}; image deleted",
            wrong.join(", ")
        ))
    }
}

/// For `--set-latest-property`: the `latest` changes that leave exactly one image per
/// os_version + architecture with `latest=true`, the one of the newest version (then the
/// greatest item name). `(id, true)` sets it, `(id, false)` removes it.
pub fn latest_changes(images: &[Image]) -> Vec<(String, bool)> {
    let mut groups: BTreeMap<(&str, &str), Vec<&Image>> = BTreeMap::new();
    for i in images {
        let key = (
            i.property("os_version").unwrap_or(""),
            i.property("architecture").unwrap_or(""),
        );
        groups.entry(key).or_default().push(i);
    }
    let mut changes = Vec::new();
    for members in groups.values() {
        let newest = members.iter().max_by(|a, b| {
            let k = |i: &Image| {
                (
                    i.property("version_name").unwrap_or("").to_string(),
                    i.property("item_name").unwrap_or("").to_string(),
                    i.id.clone(),
                )
            };
            k(a).cmp(&k(b))
        });
        for i in members {
            let is_newest = newest.is_some_and(|n| n.id == i.id);
            let has = i.properties.contains_key("latest");
            let is_true = i.property("latest") == Some("true");
            if is_newest && !is_true {
                changes.push((i.id.clone(), true));
            } else if !is_newest && has {
                changes.push((i.id.clone(), false));
            }
        }
    }
    changes
}

/// Watches an upload stream: whether it ended cleanly, and the digests of what went through.
struct Tracker {
    verifier: Option<StreamVerifier>,
    finished: Option<Digests>,
    /// The error the body ended with (the HTTP client reports only that the request failed).
    failed: Option<String>,
}

impl Tracker {
    fn new(md5: bool) -> Tracker {
        let mut v = StreamVerifier::new("", Expected::default());
        if md5 {
            v = v.also_compute(ChecksumKind::Md5);
        }
        Tracker {
            verifier: Some(v),
            finished: None,
            failed: None,
        }
    }
}

/// Passes `body` through, one chunk behind: a chunk is handed on only once the next one (or
/// the clean end) has been read. With a `Content-Length`, the HTTP client stops reading after
/// the last byte and would never see an error the body raises at its end (a checksum that
/// fails once every byte was hashed); held back, the last chunk goes out only after that end,
/// so such an error cuts the upload short and Glance never gets the whole image.
fn tracked(body: ByteStream, tracker: Arc<Mutex<Tracker>>) -> ByteStream {
    struct St {
        body: ByteStream,
        held: Option<Bytes>,
        tracker: Arc<Mutex<Tracker>>,
    }
    let st = St {
        body,
        held: None,
        tracker,
    };
    stream::unfold(Some(st), |st| async move {
        let mut st = st?;
        loop {
            match st.body.next().await {
                Some(Ok(chunk)) => {
                    if let Ok(mut t) = st.tracker.lock() {
                        if let Some(v) = t.verifier.as_mut() {
                            // No expectation is set, so updating cannot fail.
                            let _ = v.update(&chunk);
                        }
                    }
                    match st.held.replace(chunk) {
                        Some(prev) => return Some((Ok(prev), Some(st))),
                        None => continue,
                    }
                }
                Some(Err(e)) => {
                    if let Ok(mut t) = st.tracker.lock() {
                        t.failed = Some(e.to_string());
                    }
                    return Some((Err(e), None));
                }
                None => {
                    if let Ok(mut t) = st.tracker.lock() {
                        t.finished = t.verifier.take().and_then(|v| v.finish().ok());
                    }
                    return st.held.take().map(|last| (Ok(last), None));
                }
            }
        }
    })
    .boxed()
}

#[async_trait]
impl Target for GlanceTarget {
    /// A local lock per Glance endpoint and content id; once held, whatever of ours is still
    /// unfinished was left by an interrupted sync and is deleted.
    async fn lock(&self) -> Result<StoreLock, MirrorError> {
        let name: String = format!("{}-{}", self.glance.base_url(), self.content_id())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let lock = LocalStore::new(&self.options.lock_dir)
            .lock(&format!("{name}.lock"))
            .await?;
        self.clean_up_unfinished().await.map_err(to_mirror)?;
        Ok(lock)
    }

    async fn load_state(&self) -> Result<State, MirrorError> {
        let mut state = State::default();
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

    /// Glance is the state: nothing to save.
    async fn save_state(&self, _state: &State) -> Result<(), MirrorError> {
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
        let image = match &self.options.modify_hook {
            None => {
                self.upload_checked(item, body, item.expected.clone(), true)
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
                    .upload_checked(item, modified.stream().await?, expected, false)
                    .await;
                modified.remove().await;
                result?
            }
        };
        let name = image.name.clone().unwrap_or_default();
        if let Ok(mut names) = self.names.lock() {
            names.insert(image.id.clone(), name.clone());
        }
        self.emit(GlanceEvent::Created { id: image.id, name });
        Ok(())
    }

    async fn remove_item(&self, _key: &ItemKey, held: &HeldItem) -> Result<(), MirrorError> {
        let Some(id) = &held.id else {
            return Ok(());
        };
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

    /// The source's metadata is not published into Glance (the image-ids stream is written by
    /// [`GlanceTarget::finish`]).
    async fn read_published(&self, _path: &str) -> Result<Option<Bytes>, MirrorError> {
        Ok(None)
    }

    async fn publish_products(&self, _path: &str, _bytes: Bytes) -> Result<(), MirrorError> {
        Ok(())
    }

    async fn publish_index(&self, _path: &str, _bytes: Bytes) -> Result<(), MirrorError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn image(
        id: &str,
        version: &str,
        item: &str,
        os_version: &str,
        arch: &str,
        latest: Option<&str>,
    ) -> Image {
        let mut v = json!({"id": id, "status": "active", "version_name": version,
            "item_name": item, "os_version": os_version, "architecture": arch});
        if let Some(l) = latest {
            v["latest"] = json!(l);
        }
        serde_json::from_value(v).expect("image")
    }

    #[test]
    fn latest_goes_to_the_newest_version_of_each_os_version_and_arch() {
        let images = [
            image(
                "a",
                "20240101",
                "disk1.img",
                "24.04",
                "x86_64",
                Some("true"),
            ),
            image("b", "20240201", "disk1.img", "24.04", "x86_64", None),
            image(
                "c",
                "20240201",
                "disk1.img",
                "24.04",
                "aarch64",
                Some("true"),
            ),
            image("d", "20230101", "disk1.img", "22.04", "x86_64", None),
            image(
                "e",
                "20220101",
                "disk1.img",
                "22.04",
                "x86_64",
                Some("false"),
            ),
        ];
        let mut changes = latest_changes(&images);
        changes.sort();
        assert_eq!(
            changes,
            vec![
                ("a".to_string(), false),
                ("b".to_string(), true),
                ("d".to_string(), true),
                ("e".to_string(), false),
            ]
        );
    }

    #[test]
    fn stored_image_must_match_size_md5_and_sha512() {
        let found: Image = serde_json::from_value(json!({"id": "i", "status": "active", "size": 3,
            "checksum": "ABC", "os_hash_algo": "sha512", "os_hash_value": "s512"}))
        .expect("image");
        let sent = Digests {
            size: 3,
            ..Digests::default()
        };
        let exp = |size, md5: &str, sha512: Option<&str>| Expected {
            size: Some(size),
            md5: Some(md5.into()),
            sha512: sha512.map(str::to_string),
            ..Expected::default()
        };
        assert_eq!(
            check_stored(&found, &exp(3, "abc", Some("s512")), &sent, true),
            Ok(())
        );
        assert!(
            check_stored(&found, &exp(4, "abc", None), &sent, true).is_err(),
            "size"
        );
        assert!(
            check_stored(&found, &exp(3, "abd", None), &sent, true).is_err(),
            "md5"
        );
        assert!(
            check_stored(&found, &exp(3, "abc", Some("x")), &sent, true).is_err(),
            "sha512"
        );
        assert_eq!(
            check_stored(&found, &exp(3, "abc", Some("x")), &sent, false),
            Ok(()),
            "not checked after a hook"
        );
        let ours = Digests {
            size: 3,
            md5: Some("abc".into()),
            ..Digests::default()
        };
        let no_md5 = Expected {
            size: Some(3),
            ..Expected::default()
        };
        assert_eq!(
            check_stored(&found, &no_md5, &ours, true),
            Ok(()),
            "our own md5 when the stream has none"
        );
        let other = Digests {
            size: 3,
            md5: Some("fff".into()),
            ..Digests::default()
        };
        assert!(check_stored(&found, &no_md5, &other, true).is_err());
    }
}
