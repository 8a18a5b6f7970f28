//! [`Repo::add`]: images into the repository, each file copied into the store once.

use std::collections::HashMap;

use serde_json::Value;
use simplestreams_core::filetype::{self, FileType};
use simplestreams_core::{ChecksumKind, Digests, Expected, Item, Map};

use crate::error::{Error, Result};
use crate::files::{copy_file, hash_file, peek, Peek, Tap};
use crate::image::{ftype_for, path_extension, ImageSource, NewImage};
use crate::repo::{register_levels, ItemRef, Named, Repo};

/// What happened to one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    /// Copied into the store and added.
    Added,
    /// Added; its file was already in the store at that path, named by another item, with
    /// the same content (not copied again).
    Shared,
    /// Added as described; nothing copied ([`ImageSource::Described`]).
    Described,
    /// The item was already there with this content: nothing changed.
    Unchanged,
    /// The item was already there with this content, but its file was missing from the
    /// store: the file was copied back (the metadata did not change).
    Restored,
}

/// One image added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedImage {
    /// Content id.
    pub content_id: String,
    /// Product id.
    pub product: String,
    /// Version name.
    pub version: String,
    /// Item name.
    pub item: String,
    /// Its path in the store.
    pub path: String,
    /// Its size.
    pub size: u64,
    /// Its SHA-256 (empty when described without one).
    pub sha256: String,
    /// What happened.
    pub outcome: AddOutcome,
}

/// What [`Repo::add`] did, image by image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddReport {
    /// In the order given.
    pub images: Vec<AddedImage>,
}

impl AddReport {
    /// Whether any image changed the repository.
    pub fn changed(&self) -> bool {
        self.images
            .iter()
            .any(|i| i.outcome != AddOutcome::Unchanged)
    }
}

/// An image with its place decided.
struct Placed {
    key: ItemRef,
    ftype: Option<String>,
    detected: Option<FileType>,
    ext: String,
    file_name: String,
}

impl Repo {
    /// Adds images (see [`NewImage`] for the defaults), in order.
    ///
    /// A file is copied into the store at its path (with its size and checksums: `sha256`,
    /// `md5`, and `sha512` on request, computed while it streams), then its item is added to
    /// the metadata in memory; [`Repo::commit`] publishes. A content-addressed path needs the
    /// file's SHA-256 first: such a file is hashed, then copied (and checked again while
    /// copied, so a file changed in between is refused); with a path template, it is read
    /// once.
    ///
    /// Adding an item that is already there with the same content changes nothing (no copy;
    /// the file is hashed to compare, and its copy in the store is only looked up: one
    /// missing is put back). Refused: an item already there with other content, or
    /// claimed by two different files of the same call (the error names both); a path that
    /// an item with other content names; a file of no known type without an ftype.
    ///
    /// On an error, the images before it stay added (in memory, their files copied): commit
    /// them, or [`Repo::abort`] to delete the files copied.
    pub async fn add(&mut self, images: Vec<NewImage>) -> Result<AddReport> {
        self.add_batches(futures::stream::iter([Ok(images)])).await
    }

    /// [`Repo::add`] for images that come in batches while they are being read (a list read
    /// on another thread: [`spawn_json2streams`](crate::json2streams::spawn_json2streams)).
    ///
    /// An error of the list wins, as if it had been read whole before adding: after an image
    /// fails to add, the batches are still read to their end, and an error among them is the
    /// one returned. As with [`Repo::add`], the images added before an error stay added.
    pub async fn add_batches(
        &mut self,
        mut batches: impl futures::Stream<Item = Result<Vec<NewImage>>> + Unpin,
    ) -> Result<AddReport> {
        use futures::StreamExt;
        let mut report = AddReport::default();
        let mut claimed: HashMap<ItemRef, String> = HashMap::new();
        let mut failed = None;
        while let Some(batch) = batches.next().await {
            let images = batch?;
            if failed.is_some() {
                continue;
            }
            report.images.reserve(images.len());
            // Room for the paths at once: a table of thousands grown step by step is
            // rehashed at every step.
            self.named.reserve(images.len());
            for image in images {
                match self.add_one(image, &mut claimed, None).await {
                    Ok(added) => report.images.push(added),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Adds one image; `tap`, when given, is fed the file's bytes on the first pass that reads
    /// them (see [`Tap`]).
    pub(crate) async fn add_one(
        &mut self,
        mut image: NewImage,
        claimed: &mut HashMap<ItemRef, String>,
        mut tap: Option<&mut Tap>,
    ) -> Result<AddedImage> {
        image.check_fields()?;
        let peeked = match &image.source {
            ImageSource::File(path) => Some(peek(path).await?),
            ImageSource::Described => None,
        };
        let placed = self.place(&mut image, peeked.as_ref())?;
        let kinds = {
            let mut k = vec![ChecksumKind::Md5, ChecksumKind::Sha256];
            if image.sha512 {
                k.push(ChecksumKind::Sha512);
            }
            k
        };

        if let Some(existing) = self.lookup(&placed.key) {
            let (size, sha256, md5) = match &image.source {
                ImageSource::File(path) => {
                    // Compare by the strongest checksum the item has.
                    let kind = if existing.sha256.is_some() || existing.md5.is_none() {
                        ChecksumKind::Sha256
                    } else {
                        ChecksumKind::Md5
                    };
                    let d = hash_file(path, &[kind], &image.expected, tap.as_deref_mut()).await?;
                    (d.size, d.sha256, d.md5)
                }
                ImageSource::Described => (
                    image.expected.size.unwrap_or_default(),
                    image.expected.sha256.clone(),
                    image.expected.md5.clone(),
                ),
            };
            let held = Named {
                size: existing.size,
                sha256: existing.sha256.clone(),
                md5: existing.md5.clone(),
                count: 1,
            };
            if held.same(size, sha256.as_deref(), md5.as_deref()) {
                let path = existing.path.unwrap_or_default();
                let mut outcome = AddOutcome::Unchanged;
                if let ImageSource::File(file) = &image.source {
                    // The item is there; its file should be too (a file deleted by hand is
                    // put back, checked against what the item says).
                    if !path.is_empty() && self.store.head(&path).await?.is_none() {
                        let expected = Expected {
                            size: existing.size,
                            sha256: existing.sha256.clone(),
                            md5: existing.md5.clone(),
                            sha512: None,
                        };
                        copy_file(&self.store, &path, file, &[], &expected, None).await?;
                        self.copied.push(path.clone());
                        outcome = AddOutcome::Restored;
                    }
                }
                self.set_level_fields(&placed.key, &image.product_fields, &image.version_fields);
                return Ok(AddedImage {
                    content_id: placed.key.content_id.clone(),
                    product: placed.key.product.clone(),
                    version: placed.key.version.clone(),
                    item: placed.key.item.clone(),
                    path,
                    size,
                    sha256: sha256.unwrap_or_default(),
                    outcome,
                });
            }
            let first = match claimed.get(&placed.key) {
                Some(file) => format!("{file} (added just before)"),
                None => format!("{} (in the repository)", existing.describe()),
            };
            return Err(Error::Conflict {
                item: placed.key.to_string(),
                first,
                second: format!(
                    "{} (size {size}, sha256 {})",
                    image.label(),
                    sha256.unwrap_or_default()
                ),
            });
        }

        let (path, digests, outcome) = match &image.source {
            ImageSource::Described => {
                let e = &image.expected;
                if e.size.is_none() || e.kinds().is_empty() {
                    return Err(Error::Incomplete {
                        image: image.label(),
                        message: "an item without a file to copy needs its size and a checksum"
                            .into(),
                    });
                }
                let path = self.resolve_path(&image, &placed, e.sha256.as_deref())?;
                let e = std::mem::take(&mut image.expected);
                let digests = Digests {
                    size: e.size.unwrap_or_default(),
                    md5: e.md5,
                    sha256: e.sha256,
                    sha512: e.sha512,
                };
                self.check_path_free(&path, &digests, || image.label())?;
                (path, digests, AddOutcome::Described)
            }
            ImageSource::File(file) => {
                let mut hashed = None;
                if image.placement.needs_sha256() {
                    hashed =
                        Some(hash_file(file, &kinds, &image.expected, tap.as_deref_mut()).await?);
                }
                let sha = hashed.as_ref().and_then(|d| d.sha256.clone());
                let path = self.resolve_path(&image, &placed, sha.as_deref())?;
                if self.named.contains_key(&path) && hashed.is_none() {
                    hashed =
                        Some(hash_file(file, &kinds, &image.expected, tap.as_deref_mut()).await?);
                }
                match hashed {
                    Some(d) if self.named.contains_key(&path) => {
                        self.check_path_free(&path, &d, || image.label())?;
                        (path, d, AddOutcome::Shared)
                    }
                    Some(d) => {
                        // Copy, checking the file is still what was hashed.
                        let expected = Expected {
                            size: Some(d.size),
                            sha256: d.sha256.clone(),
                            ..Expected::default()
                        };
                        copy_file(&self.store, &path, file, &[], &expected, None).await?;
                        self.copied.push(path.clone());
                        (path, d, AddOutcome::Added)
                    }
                    None => {
                        let d = copy_file(&self.store, &path, file, &kinds, &image.expected, tap)
                            .await?;
                        self.copied.push(path.clone());
                        (path, d, AddOutcome::Added)
                    }
                }
            }
        };

        if let ImageSource::File(file) = &image.source {
            claimed.insert(placed.key.clone(), file.display().to_string());
        }
        self.insert_item(image, &placed, &path, &digests);
        Ok(AddedImage {
            content_id: placed.key.content_id,
            product: placed.key.product,
            version: placed.key.version,
            item: placed.key.item,
            path,
            size: digests.size,
            sha256: digests.sha256.unwrap_or_default(),
            outcome,
        })
    }

    /// Decides the content id, product, version, item and ftype of an image, taking them from
    /// the image when it gives them (moved, not copied: once per item of a list of thousands).
    fn place(&self, image: &mut NewImage, peeked: Option<&Peek>) -> Result<Placed> {
        let file_name = match &image.source {
            ImageSource::File(p) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            ImageSource::Described => String::new(),
        };
        let detected = peeked.and_then(|p| filetype::detect(&p.head, &p.tail));
        let ftype = match (image.ftype.take(), detected) {
            (Some(f), _) => Some(f),
            (None, Some(kind)) if image.infer_ftype => Some(ftype_for(kind, &file_name)),
            (None, None) if image.infer_ftype && peeked.is_some() => {
                if let ImageSource::File(path) = &image.source {
                    return Err(Error::UnknownType { path: path.clone() });
                }
                None
            }
            _ => None,
        };
        let content_id = match image.content_id.take() {
            Some(c) => c,
            None => self.resolve_stream(image.stream.as_deref())?,
        };
        self.check_new_content_id(&content_id)?;
        if let Some(file) = self.stream_index(&content_id).map(|at| &self.streams[at]) {
            let datatype = file.doc.datatype().unwrap_or("");
            // An image that names the stream's datatype itself knows what it adds (MAAS lists
            // its boot files in an `image-ids` stream).
            let lists_files = matches!(datatype, "image-downloads" | "content-download" | "")
                || image.datatype.as_deref() == Some(datatype);
            if !lists_files {
                return Err(Error::Invalid(format!(
                    "{content_id}: a stream of datatype {datatype:?} does not list files"
                )));
            }
        }
        let product = match image.product_id.take() {
            Some(p) => p,
            None => image.default_product_id()?,
        };
        let version = match image.version_name.take() {
            Some(v) => v,
            None => crate::time::version_date(
                peeked
                    .and_then(|p| p.modified)
                    .unwrap_or_else(std::time::SystemTime::now),
            ),
        };
        let item = match (image.item_name.take(), &ftype) {
            (Some(i), _) => i,
            (None, Some(f)) => f.clone(),
            (None, None) => {
                return Err(Error::Incomplete {
                    image: image.label(),
                    message: "no item name: give one (--item), or an ftype".into(),
                })
            }
        };
        for (what, value) in [
            ("product id", &product),
            ("version name", &version),
            ("item name", &item),
        ] {
            if value.is_empty() {
                return Err(Error::Incomplete {
                    image: image.label(),
                    message: format!("empty {what}"),
                });
            }
        }
        Ok(Placed {
            key: ItemRef {
                content_id,
                product,
                version,
                item,
            },
            ftype,
            ext: path_extension(detected, &file_name),
            detected,
            file_name,
        })
    }

    fn resolve_path(
        &self,
        image: &NewImage,
        placed: &Placed,
        sha256: Option<&str>,
    ) -> Result<String> {
        image.placement.resolve(
            || image.label(),
            sha256,
            &placed.ext,
            |key| match key {
                "content_id" => Some(placed.key.content_id.clone()),
                "product_name" | "product_id" => Some(placed.key.product.clone()),
                "version_name" => Some(placed.key.version.clone()),
                "item_name" => Some(placed.key.item.clone()),
                "ftype" => placed.ftype.clone(),
                "filename" => Some(placed.file_name.clone()).filter(|f| !f.is_empty()),
                other => image.field_str(other),
            },
        )
    }

    /// Refuses `path` when an item names it with other content.
    fn check_path_free(&self, path: &str, d: &Digests, label: impl Fn() -> String) -> Result<()> {
        match self.named.get(path) {
            Some(n) if !n.same(d.size, d.sha256.as_deref(), d.md5.as_deref()) => {
                Err(Error::PathTaken {
                    path: path.to_string(),
                    owner: self.owner_of(path),
                    file: label(),
                })
            }
            _ => Ok(()),
        }
    }

    fn insert_item(&mut self, image: NewImage, placed: &Placed, path: &str, d: &Digests) {
        let (product_fields, version_fields) = (image.product_fields, image.version_fields);
        let mut fields: Map = image.fields;
        if let Some(f) = &placed.ftype {
            fields.insert("ftype".into(), Value::String(f.clone()));
        }
        fields.insert("path".into(), Value::String(path.to_string()));
        fields.insert("size".into(), Value::from(d.size));
        for (k, v) in [
            ("sha256", &d.sha256),
            ("md5", &d.md5),
            ("sha512", &d.sha512),
        ] {
            if let Some(v) = v {
                fields.insert(k.into(), Value::String(v.clone()));
            }
        }
        if image.infer_ftype {
            if let Some(format) = placed.detected.and_then(FileType::disk_format) {
                fields
                    .entry("disk_format")
                    .or_insert_with(|| Value::String(format.into()));
            }
        }
        let key = &placed.key;
        let at = self.stream_at(&key.content_id, image.datatype.as_deref());
        let file = &mut self.streams[at];
        file.changed = true;
        // Keys are copied only when new (products get many versions).
        let products = &mut file.doc.products;
        let product = match products.get_index_of(&key.product) {
            Some(at) => &mut products[at],
            None => products.entry(key.product.clone()).or_default(),
        };
        // Hashed once (a copy of the name made even when the version exists: adding makes new
        // versions far more often, and copying a name costs less than hashing it again).
        let version = product.versions.entry(key.version.clone()).or_default();
        let (at, _) = version.items.insert_full(key.item.clone(), Item { fields });
        if let (Some(sha256), Some(md5)) = (&d.sha256, &d.md5) {
            // The item has its own path, size and both checksums, as just set: nothing
            // inherited to look up (this runs once per item of a list of thousands).
            let named = self.named.entry(path.to_string()).or_insert_with(|| Named {
                size: Some(d.size),
                sha256: Some(sha256.to_ascii_lowercase()),
                md5: Some(md5.to_ascii_lowercase()),
                count: 0,
            });
            named.count += 1;
        } else {
            let item = &version.items[at];
            // Counted from the levels at hand (not looked up again by name).
            register_levels(
                &mut self.named,
                [
                    &item.fields,
                    &version.fields,
                    &product.fields,
                    &file.doc.fields,
                ],
                1,
            );
        }
        self.set_level_fields(key, &product_fields, &version_fields);
    }

    /// Sets fields on the product and version of `key` themselves (see
    /// [`NewImage::product_fields`]): a product value that changes is kept on the product's
    /// other versions, and the version's own value of a product field is dropped.
    pub(crate) fn set_level_fields(
        &mut self,
        key: &ItemRef,
        product_fields: &Map,
        version_fields: &Map,
    ) {
        if product_fields.is_empty() && version_fields.is_empty() {
            return;
        }
        let Some(file) = self.streams.get_mut(&key.content_id) else {
            return;
        };
        let Some(product) = file.doc.products.get_mut(&key.product) else {
            return;
        };
        let mut changed = false;
        for (k, v) in product_fields {
            if product.fields.get(k) == Some(v) {
                continue;
            }
            if let Some(old) = product.fields.get(k).cloned() {
                for (vname, version) in product.versions.iter_mut() {
                    if vname != &key.version && !version.fields.contains_key(k) {
                        version.fields.insert(k.clone(), old.clone());
                    }
                }
            }
            product.fields.insert(k.clone(), v.clone());
            changed = true;
        }
        if let Some(version) = product.versions.get_mut(&key.version) {
            for k in product_fields.keys() {
                changed |= version.fields.shift_remove(k).is_some();
            }
            for (k, v) in version_fields {
                if version.fields.get(k) != Some(v) {
                    version.fields.insert(k.clone(), v.clone());
                    changed = true;
                }
            }
        }
        if changed {
            file.changed = true;
        }
    }
}
