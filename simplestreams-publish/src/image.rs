//! What a publisher adds: [`NewImage`], one file and where it belongs in the stream, and the
//! defaults that fill in what it leaves out.
//!
//! | what | default |
//! |---|---|
//! | content id | [`default_content_id`] of the stream name (`released` unless given), or the one content id of the repository already published for that stream name |
//! | datatype of a new products file | [`DEFAULT_DATATYPE`] (`image-downloads`, what LXD, Incus and MAAS look for) |
//! | product id | `OS:RELEASE:ARCH` from the `os`, `release` and `arch` fields (`:VARIANT` appended when a `variant` field is given) |
//! | version name | the file's modification date, `YYYYMMDD` (UTC), as build tools leave it; today when unknown |
//! | ftype | from the file's content ([`ftype_for`]); a file of no known type needs one given |
//! | item name | the ftype (as Ubuntu's and LXD's streams name items) |
//! | path in the store | content-addressed: `images/<sha256[..2]>/<sha256>.<ext>` ([`Placement`]) |

use std::path::{Path, PathBuf};

use serde_json::Value;
use simplestreams_core::filetype::FileType;
use simplestreams_core::{Expected, Map};

use crate::error::{Error, Result};

/// The stream name used when neither a content id nor a stream is given.
pub const DEFAULT_STREAM: &str = "released";

/// The first part of a content id made from a stream name (see [`default_content_id`]).
pub const DEFAULT_CONTENT_PREFIX: &str = "images";

/// The datatype of a products file this crate creates.
pub const DEFAULT_DATATYPE: &str = "image-downloads";

/// Item fields this crate computes or that place an item in the tree: they cannot be given
/// as extra fields.
pub const RESERVED_FIELDS: &[&str] = &[
    "path",
    "size",
    "md5",
    "sha256",
    "sha512",
    "ftype",
    "content_id",
    "product_name",
    "version_name",
    "item_name",
    "format",
    "datatype",
    "updated",
    "products",
    "versions",
    "items",
    "_aliases",
];

/// Whether `key` is one of [`RESERVED_FIELDS`]: a `match` rather than a search of the list,
/// asked for every field of every image (twice for each item of a flat list);
/// `reserved_matches_the_list` keeps them in step.
fn is_reserved(key: &str) -> bool {
    describes_file(key)
        || matches!(
            key,
            "content_id"
                | "product_name"
                | "version_name"
                | "item_name"
                | "format"
                | "datatype"
                | "updated"
                | "products"
                | "versions"
                | "items"
                | "_aliases"
        )
}

/// Whether `key` is an item field that says what its file is: where it is, its size, its
/// checksums and its type.
pub(crate) fn describes_file(key: &str) -> bool {
    matches!(key, "path" | "size" | "md5" | "sha256" | "sha512" | "ftype")
}

/// The content id of stream `stream` when the repository has none for it yet:
/// `images:STREAM:download` (`images:released:download`, `images:candidate:download`), in the
/// `PREFIX:STREAM:download` shape of Ubuntu's (`com.ubuntu.cloud:released:download`), so
/// that `promote` can swap the stream part.
pub fn default_content_id(stream: &str) -> String {
    format!("{DEFAULT_CONTENT_PREFIX}:{stream}:download")
}

/// Where an image file goes in the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Placement {
    /// `images/<sha256[..2]>/<sha256>.<ext>`: a file is stored once however many items name
    /// it, and a path never changes content. The file is hashed before it is copied (its path
    /// depends on it): two reads.
    #[default]
    ContentAddressed,
    /// A path made from a template such as `{os}/{release}/{version_name}/{arch}/{filename}`:
    /// `{KEY}` is replaced by the item's field `KEY` (any field given, `ftype`), or by
    /// `content_id`, `product_name`, `version_name`, `item_name`, `filename` (the file's own
    /// name), `ext` (its extension) or `sha256`. Without `{sha256}`, a new file is read once,
    /// hashed while it is copied.
    Template(String),
    /// Exactly this path (a flat item list's `path`).
    Exact(String),
}

impl Placement {
    /// Whether the path depends on the file's SHA-256.
    pub fn needs_sha256(&self) -> bool {
        match self {
            Placement::ContentAddressed => true,
            Placement::Template(t) => t.contains("{sha256}"),
            Placement::Exact(_) => false,
        }
    }

    /// The path, with `lookup` giving the value of a template key. Checked safe for a
    /// mirror, and outside `streams/` (where metadata lives).
    pub(crate) fn resolve(
        &self,
        image: impl Fn() -> String,
        sha256: Option<&str>,
        ext: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<String> {
        let incomplete = |message: String| Error::Incomplete {
            image: image(),
            message,
        };
        let path = match self {
            Placement::ContentAddressed => {
                let sha = sha256.ok_or_else(|| {
                    incomplete("a content-addressed path needs the file's sha256".into())
                })?;
                format!("images/{}/{sha}.{ext}", &sha[..2.min(sha.len())])
            }
            Placement::Exact(p) => p.clone(),
            Placement::Template(t) => {
                let mut out = String::new();
                let mut rest = t.as_str();
                while let Some(open) = rest.find('{') {
                    out.push_str(&rest[..open]);
                    let after = &rest[open + 1..];
                    let Some(close) = after.find('}') else {
                        return Err(incomplete(format!(
                            "path template {t:?}: '{{' without '}}'"
                        )));
                    };
                    let key = &after[..close];
                    let value = match key {
                        "sha256" => sha256.map(str::to_string),
                        "ext" => Some(ext.to_string()),
                        _ => lookup(key),
                    };
                    let Some(value) = value.filter(|v| !v.is_empty()) else {
                        return Err(incomplete(format!(
                            "path template {t:?}: no value for {{{key}}} (give the field {key})"
                        )));
                    };
                    out.push_str(&value);
                    rest = &after[close + 1..];
                }
                out.push_str(rest);
                out
            }
        };
        check_item_path(&path).map_err(|e| incomplete(e.to_string()))?;
        Ok(path)
    }
}

/// Refuses a path no image file may have: unsafe, inside the engine's private directory, or
/// among the stream's metadata (`streams/`).
pub(crate) fn check_item_path(path: &str) -> Result<()> {
    simplestreams_mirror::check_mirror_path(path)?;
    if path == "streams" || path.starts_with("streams/") {
        return Err(Error::Invalid(format!(
            "{path}: image files may not go below streams/, which holds the metadata"
        )));
    }
    Ok(())
}

/// Where an image's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A local file, copied into the store (and hashed while copied).
    File(PathBuf),
    /// Nothing to copy: the content is already in place at the item's path (or served from
    /// elsewhere) and [`NewImage::expected`] describes it (a size and at least one checksum
    /// are required). `validate` checks it later.
    Described,
}

/// One image to add: a file and its place in the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct NewImage {
    /// Its bytes.
    pub source: ImageSource,
    /// The content id (products file) it goes in; see [`NewImage::stream`].
    pub content_id: Option<String>,
    /// The stream name, used when `content_id` is not given: the repository's content id for
    /// that stream, else [`default_content_id`]. Default [`DEFAULT_STREAM`].
    pub stream: Option<String>,
    /// The datatype of the products file, if it is created. Default [`DEFAULT_DATATYPE`].
    pub datatype: Option<String>,
    /// Product id; default `OS:RELEASE:ARCH[:VARIANT]` from the fields.
    pub product_id: Option<String>,
    /// Version name; default the file's modification date, `YYYYMMDD`.
    pub version_name: Option<String>,
    /// Item name; default the ftype.
    pub item_name: Option<String>,
    /// `ftype`; default from the file's content.
    pub ftype: Option<String>,
    /// Whether to find the ftype (and a `disk_format` hint) from the content when not given,
    /// refusing a file of no known type. True by default; a flat item list turns it off (its
    /// items say what they are, as the reference's `json2streams` takes them).
    pub infer_ftype: bool,
    /// Other fields: `os`, `release`, `arch`, `version`, `label`, `aliases` (LXD reads a comma
    /// list), `release_title`, anything. They are set on the item, and move up to the version
    /// and product when every item there agrees (condensing); `label` and `pubname` stop at
    /// the version, where LXD and MAAS read them.
    pub fields: Map,
    /// Fields set on the product itself, where clients that read the JSON literally (LXD,
    /// Incus, MAAS 3.8) look for them: never condensed nor moved. A value that differs from
    /// the product's is written on the product, and the product's older value is kept on its
    /// other versions (their flattened fields do not change). Strings, numbers, booleans or
    /// objects (LXD's `requirements`).
    pub product_fields: Map,
    /// Fields set on the version itself (`label`, `pubname`), likewise.
    pub version_fields: Map,
    /// Where the file goes in the store.
    pub placement: Placement,
    /// Also record a `sha512`.
    pub sha512: bool,
    /// What the content must be (checked while copying a file), or is (for
    /// [`ImageSource::Described`]).
    pub expected: Expected,
}

impl NewImage {
    /// A local file to add, every other choice left to the defaults.
    pub fn file(path: impl Into<PathBuf>) -> NewImage {
        NewImage {
            source: ImageSource::File(path.into()),
            content_id: None,
            stream: None,
            datatype: None,
            product_id: None,
            version_name: None,
            item_name: None,
            ftype: None,
            infer_ftype: true,
            fields: Map::new(),
            product_fields: Map::new(),
            version_fields: Map::new(),
            placement: Placement::default(),
            sha512: false,
            expected: Expected::default(),
        }
    }

    /// Sets a field (`os`, `release`, `arch`, …).
    pub fn field(mut self, key: &str, value: impl Into<String>) -> NewImage {
        self.fields
            .insert(key.to_string(), Value::String(value.into()));
        self
    }

    /// How the image is named in messages: its file, else its path.
    pub fn label(&self) -> String {
        match &self.source {
            ImageSource::File(p) => p.display().to_string(),
            ImageSource::Described => match &self.placement {
                Placement::Exact(p) | Placement::Template(p) => p.clone(),
                Placement::ContentAddressed => "(described item)".into(),
            },
        }
    }

    /// Refuses reserved field names.
    pub(crate) fn check_fields(&self) -> Result<()> {
        let all = self
            .fields
            .keys()
            .chain(self.product_fields.keys())
            .chain(self.version_fields.keys());
        for key in all {
            if is_reserved(key) {
                return Err(Error::Invalid(format!(
                    "{}: {key:?} cannot be given as a field ({})",
                    self.label(),
                    match key.as_str() {
                        "ftype" => "give it as the ftype",
                        "path" => "use a path template",
                        "size" | "md5" | "sha256" | "sha512" => "it is computed from the file",
                        _ => "it places the item in the stream",
                    }
                )));
            }
        }
        Ok(())
    }

    /// The string value of field `key`, if given.
    pub(crate) fn field_str(&self, key: &str) -> Option<String> {
        let value = self
            .fields
            .get(key)
            .or_else(|| self.version_fields.get(key))
            .or_else(|| self.product_fields.get(key))?;
        match value {
            Value::String(s) => Some(s.clone()),
            other => simplestreams_core::scalar_string(other).map(|c| c.into_owned()),
        }
    }

    /// The default product id: `OS:RELEASE:ARCH[:VARIANT]`.
    pub(crate) fn default_product_id(&self) -> Result<String> {
        let missing: Vec<&str> = ["os", "release", "arch"]
            .into_iter()
            .filter(|k| self.field_str(k).is_none_or(|v| v.is_empty()))
            .collect();
        if !missing.is_empty() {
            return Err(Error::Incomplete {
                image: self.label(),
                message: format!(
                    "no product id: give one (--product-id), or the fields it is made of \
                     (missing: {})",
                    missing.join(", ")
                ),
            });
        }
        let mut id = ["os", "release", "arch"]
            .map(|k| self.field_str(k).unwrap_or_default())
            .join(":");
        if let Some(variant) = self.field_str("variant").filter(|v| !v.is_empty()) {
            id.push(':');
            id.push_str(&variant);
        }
        Ok(id)
    }
}

/// The ftype of a file of type `kind` named `name`: Ubuntu's names where there is one
/// (`disk1.img` for qcow2, `squashfs`, `root.tar.xz`, `lxd.tar.xz`, …), else the type's
/// usual extension (`vmdk`, `vhd`, `vhdx`, `iso`, `img` for a raw disk, `tar`). A compressed
/// file is named by its last two extensions when the first is `tar`, `img` or `qcow2`
/// (`tar.gz`, `img.xz`), and LXD's and Incus's file names (`lxd.tar.xz`,
/// `incus_combined.tar.gz`, …) are kept whole, since those clients look for them.
pub fn ftype_for(kind: FileType, name: &str) -> String {
    const NAMED: &[&str] = &[
        "lxd.tar.xz",
        "incus.tar.xz",
        "lxd_combined.tar.gz",
        "incus_combined.tar.gz",
        "root.tar.xz",
        "root.tar.gz",
    ];
    let lower = name.to_ascii_lowercase();
    if let Some(named) = NAMED.iter().find(|n| lower.ends_with(*n)) {
        return (*named).to_string();
    }
    match kind {
        FileType::Qcow2 => "disk1.img".into(),
        FileType::Raw => "img".into(),
        k if k.is_compressed() => compound_extension(&lower, k.extension()),
        k => k.extension().into(),
    }
}

/// `tar.xz` for `x.tar.xz` given `xz`; `xz` when the name says nothing more.
fn compound_extension(lower_name: &str, ext: &str) -> String {
    for inner in ["tar", "img", "qcow2"] {
        if lower_name.ends_with(&format!(".{inner}.{ext}")) {
            return format!("{inner}.{ext}");
        }
    }
    ext.to_string()
}

/// The extension of a content-addressed path: the detected type's (`qcow2`, `squashfs`,
/// `tar.xz`, …), else the file's own last extension (letters and digits only), else `bin`.
pub(crate) fn path_extension(kind: Option<FileType>, name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match kind {
        Some(k) if k.is_compressed() => compound_extension(&lower, k.extension()),
        Some(k) => k.extension().to_string(),
        None => Path::new(&lower)
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| !e.is_empty() && e.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or("bin")
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_matches_the_list() {
        for key in RESERVED_FIELDS {
            assert!(is_reserved(key), "{key}");
        }
        for key in [
            "arch", "os", "release", "label", "pat", "items_", "Path", "",
        ] {
            assert!(!is_reserved(key), "{key}");
        }
    }

    #[test]
    fn ftypes_follow_ubuntu_and_lxd_names() {
        assert_eq!(ftype_for(FileType::Qcow2, "x.img"), "disk1.img");
        assert_eq!(ftype_for(FileType::Squashfs, "rootfs.squashfs"), "squashfs");
        assert_eq!(ftype_for(FileType::Xz, "lxd.tar.xz"), "lxd.tar.xz");
        assert_eq!(ftype_for(FileType::Xz, "build-root.tar.xz"), "root.tar.xz");
        assert_eq!(ftype_for(FileType::Gzip, "tools.tar.gz"), "tar.gz");
        assert_eq!(ftype_for(FileType::Xz, "disk.img.xz"), "img.xz");
        assert_eq!(ftype_for(FileType::Zstd, "blob"), "zst");
        assert_eq!(path_extension(Some(FileType::Xz), "a.tar.xz"), "tar.xz");
        assert_eq!(path_extension(None, "kernel.EFI"), "efi");
        assert_eq!(path_extension(None, "noext"), "bin");
    }

    #[test]
    fn templates_fill_fields_and_refuse_unsafe_or_missing_values() {
        let t = Placement::Template("{os}/{release}/{version_name}/{filename}".into());
        let lookup = |k: &str| match k {
            "os" => Some("ubuntu".to_string()),
            "release" => Some("noble".to_string()),
            "version_name" => Some("20240101".to_string()),
            "filename" => Some("a.img".to_string()),
            "evil" => Some("../x".to_string()),
            _ => None,
        };
        assert_eq!(
            t.resolve(|| "f".into(), None, "img", lookup).unwrap(),
            "ubuntu/noble/20240101/a.img"
        );
        let missing = Placement::Template("{os}/{arch}/x".into());
        let err = missing
            .resolve(|| "f".into(), None, "img", lookup)
            .unwrap_err();
        assert!(err.to_string().contains("no value for {arch}"), "{err}");
        let evil = Placement::Template("{evil}/x".into());
        assert!(evil.resolve(|| "f".into(), None, "img", lookup).is_err());
        let meta = Placement::Exact("streams/v1/index.json".into());
        assert!(meta.resolve(|| "f".into(), None, "img", lookup).is_err());
        let ca = Placement::ContentAddressed
            .resolve(|| "f".into(), Some("abcdef"), "qcow2", lookup)
            .unwrap();
        assert_eq!(ca, "images/ab/abcdef.qcow2");
    }
}
