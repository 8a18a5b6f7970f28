//! From checksum files and a layout to a stream: the files of a directory merged from all its
//! checksum files ([`DirSums`]), then each image placed by the layout ([`SumsImage`]) and
//! gathered into one `products:1.0` document and the `index:1.0` naming it
//! ([`StreamBuilder`]), with item fields as Canonical's streams have them.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::Value;

use crate::condense::{condense, CondenseTop};
use crate::error::ChecksumKind;
use crate::index::{Index, IndexEntry};
use crate::products::{Item, Products, PRODUCTS_FORMAT};
use crate::tree::Map;

use super::error::SumsError;
use super::layout::Classified;
use super::parse::ChecksumFile;

/// The datatype of a stream made from checksum files.
pub const SUMS_DATATYPE: &str = "image-downloads";

/// Keys left on the items when the document is condensed: those of downloads, `sha512` and
/// `ftype` (as Canonical's streams keep them on items).
pub const SUMS_STICKY: &[&str] = &[
    "path", "sha256", "sha512", "md5", "size", "mirrors", "ftype",
];

/// Where one digest was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestAt {
    /// Lower-case hex.
    pub digest: String,
    /// The checksum file (URL or path).
    pub file: String,
    /// Its line.
    pub line: usize,
}

/// One file as the checksum files of its directory list it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listed {
    /// Its digests by kind.
    pub digests: BTreeMap<ChecksumKind, DigestAt>,
    /// Its size, when a checksum file gives it (Fedora's comments).
    pub size: Option<u64>,
}

/// The files of one directory, merged from every checksum file read there (`SHA256SUMS` and
/// `MD5SUMS` give an item both checksums). Two files giving one name two different digests of
/// the same kind are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirSums {
    /// By name relative to the directory.
    pub files: BTreeMap<String, Listed>,
    /// The checksum files merged, as named in errors.
    pub sources: Vec<String>,
}

impl DirSums {
    /// Adds the entries of one checksum file.
    pub fn add(&mut self, sums: &ChecksumFile) -> Result<(), SumsError> {
        for e in &sums.entries {
            let listed = self.files.entry(e.name.clone()).or_default();
            if let Some(before) = listed.digests.get(&e.kind) {
                if before.digest != e.digest {
                    return Err(SumsError::Conflict(Box::new(super::error::Conflict {
                        name: e.name.clone(),
                        kind: e.kind.to_string(),
                        file: sums.file.clone(),
                        line: e.line,
                        digest: e.digest.clone(),
                        other_file: before.file.clone(),
                        other_line: before.line,
                        other_digest: before.digest.clone(),
                    })));
                }
                continue;
            }
            listed.digests.insert(
                e.kind,
                DigestAt {
                    digest: e.digest.clone(),
                    file: sums.file.clone(),
                    line: e.line,
                },
            );
            if listed.size.is_none() {
                listed.size = sums.sizes.get(&e.name).copied();
            }
        }
        self.sources.push(sums.file.clone());
        Ok(())
    }
}

/// One image, placed.
#[derive(Debug, Clone, PartialEq)]
pub struct SumsImage {
    /// Its path below the root of the source.
    pub path: String,
    /// Its product, version, item and layout fields.
    pub place: Classified,
    /// Its size, when known (an item without one cannot be downloaded: the engine refuses it).
    pub size: Option<u64>,
    /// Its checksums.
    pub digests: BTreeMap<ChecksumKind, String>,
    /// Fields from its sidecar file, already checked ([`super::merge_sidecar`]).
    pub extra: Map,
}

/// Gathers images into a products document and its index.
#[derive(Debug, Clone)]
pub struct StreamBuilder {
    content_id: String,
    layout: String,
    images: BTreeMap<(String, String, String), SumsImage>,
}

impl StreamBuilder {
    /// A builder of the stream `content_id`; `layout` names the layout in errors.
    pub fn new(content_id: &str, layout: &str) -> StreamBuilder {
        StreamBuilder {
            content_id: content_id.to_string(),
            layout: layout.to_string(),
            images: BTreeMap::new(),
        }
    }

    /// The content id.
    pub fn content_id(&self) -> &str {
        &self.content_id
    }

    /// Images added.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether none was added.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// The images, by (product, version, item).
    pub fn images(&self) -> impl Iterator<Item = &SumsImage> {
        self.images.values()
    }

    /// Sets the size of the image at (product, version, item).
    pub fn set_size(&mut self, product: &str, version: &str, item: &str, size: u64) {
        let key = (product.to_string(), version.to_string(), item.to_string());
        if let Some(image) = self.images.get_mut(&key) {
            image.size = Some(size);
        }
    }

    /// Adds an image. A second file in the same place is refused unless it has the same
    /// content (the same digests), when it is the same image listed twice and the first path
    /// is kept.
    pub fn add(&mut self, image: SumsImage) -> Result<(), SumsError> {
        let key = (
            image.place.product.clone(),
            image.place.version.clone(),
            image.place.item.clone(),
        );
        if let Some(first) = self.images.get(&key) {
            if first.digests == image.digests {
                return Ok(());
            }
            return Err(SumsError::Duplicate(Box::new(super::error::Duplicate {
                first: first.path.clone(),
                second: image.path,
                product: key.0,
                version: key.1,
                item: key.2,
                layout: self.layout.clone(),
            })));
        }
        self.images.insert(key, image);
        Ok(())
    }

    /// The products document: products, versions and items in name order, each item with its
    /// layout fields, its sidecar's, `path`, `size` when known and its checksums, condensed
    /// ([`SUMS_STICKY`] kept on items). `updated` is RFC 2822 ([`rfc2822`]).
    pub fn products(&self, updated: Option<&str>) -> Products {
        let mut doc = Products::new(&self.content_id, SUMS_DATATYPE);
        doc.fields
            .insert("format".into(), Value::String(PRODUCTS_FORMAT.into()));
        if let Some(u) = updated {
            doc.fields.insert("updated".into(), Value::String(u.into()));
        }
        for ((p, v, i), image) in &self.images {
            let mut fields = Map::new();
            for (k, val) in &image.place.fields {
                fields.insert(k.clone(), Value::String(val.clone()));
            }
            for (k, val) in &image.extra {
                fields.insert(k.clone(), val.clone());
            }
            fields.insert("path".into(), Value::String(image.path.clone()));
            if let Some(size) = image.size {
                fields.insert("size".into(), Value::from(size));
            }
            for (kind, digest) in &image.digests {
                fields.insert(kind.field().into(), Value::String(digest.clone()));
            }
            doc.products
                .entry(p.clone())
                .or_default()
                .versions
                .entry(v.clone())
                .or_default()
                .items
                .insert(i.clone(), Item { fields });
        }
        condense(&mut doc, SUMS_STICKY, CondenseTop::Products);
        doc
    }
}

/// The index naming `products`, published at `path` (`streams/v1/<content_id>.json`).
pub fn index_of_products(products: &Products, path: &str) -> Index {
    let mut index = Index::new();
    let mut entry = IndexEntry::default();
    entry.fields.insert(
        "datatype".into(),
        Value::String(products.datatype().unwrap_or(SUMS_DATATYPE).into()),
    );
    entry
        .fields
        .insert("format".into(), Value::String(PRODUCTS_FORMAT.into()));
    entry
        .fields
        .insert("path".into(), Value::String(path.into()));
    let names: Vec<Value> = products
        .products
        .keys()
        .map(|k| Value::String(k.clone()))
        .collect();
    entry.fields.insert("products".into(), Value::Array(names));
    if let Some(u) = products.updated() {
        entry
            .fields
            .insert("updated".into(), Value::String(u.into()));
        index
            .fields
            .insert("updated".into(), Value::String(u.into()));
    }
    index.index.insert(products.content_id().to_string(), entry);
    index
}

/// The content id of a stream made from checksum files at `host` under `layout`:
/// `<host>:<layout>:sums` (`cloud.debian.org:debian:sums`).
pub fn default_content_id(host: &str, layout: &str) -> String {
    format!("{host}:{layout}:sums")
}

/// The path of the products file of `content_id`: `streams/v1/<content_id>.json`.
pub fn products_path(content_id: &str) -> String {
    format!("streams/v1/{content_id}.json")
}

/// A time as simplestreams' `updated` writes it (RFC 2822, UTC).
pub fn rfc2822(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc2822()
}

/// A time as a version name of a date: `YYYYMMDD` (UTC).
pub fn yyyymmdd(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y%m%d")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(path: &str, version: &str, sha: &str) -> SumsImage {
        SumsImage {
            path: path.into(),
            place: Classified {
                product: "p".into(),
                version: version.into(),
                item: "disk1.img".into(),
                fields: vec![
                    ("os".into(), "debian".into()),
                    ("ftype".into(), "disk1.img".into()),
                ],
            },
            size: Some(5),
            digests: [(ChecksumKind::Sha256, sha.to_string())].into(),
            extra: Map::new(),
        }
    }

    #[test]
    fn the_document_holds_every_image_condensed_and_the_index_names_it() {
        let mut b = StreamBuilder::new("h:debian:sums", "debian");
        b.add(image("2/a.qcow2", "2", "bb")).expect("add");
        b.add(image("1/a.qcow2", "1", "aa")).expect("add");
        let doc = b.products(Some("Sun, 11 Feb 2024 16:51:00 +0000"));
        let p = &doc.products["p"];
        assert_eq!(p.fields["os"], "debian", "condensed to the product");
        assert_eq!(p.versions.keys().collect::<Vec<_>>(), ["1", "2"]);
        let item = &p.versions["1"].items["disk1.img"];
        assert_eq!(item.fields["path"], "1/a.qcow2");
        assert_eq!(item.fields["size"], 5);
        assert_eq!(item.fields["ftype"], "disk1.img", "sticky");
        let index = index_of_products(&doc, &products_path("h:debian:sums"));
        assert_eq!(
            index.index["h:debian:sums"].fields["path"],
            "streams/v1/h:debian:sums.json"
        );
        assert_eq!(index.fields["updated"], "Sun, 11 Feb 2024 16:51:00 +0000");
        // Parsed back, both are valid documents.
        Products::from_slice(&doc.to_vec_pretty(), "p.json").expect("products");
        Index::from_slice(&index.to_vec_pretty(), "i.json").expect("index");
    }

    #[test]
    fn two_files_in_one_place_must_be_one_content() {
        let mut b = StreamBuilder::new("c", "debian");
        b.add(image("1/a.qcow2", "1", "aa")).expect("add");
        b.add(image("x/a.qcow2", "1", "aa"))
            .expect("same content: kept once");
        let err = b
            .add(image("y/a.qcow2", "1", "cc"))
            .expect_err("different content");
        assert!(
            err.to_string()
                .contains("1/a.qcow2 and y/a.qcow2 are both product p version 1"),
            "{err}"
        );
    }
}
