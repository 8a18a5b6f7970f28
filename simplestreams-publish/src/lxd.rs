//! LXD and Incus images ([`Repo::add_lxd`]): a metadata tarball (`lxd.tar.xz`) and the root
//! file systems it goes with (a squashfs for a container, a `disk-kvm.img` qcow2 for a virtual
//! machine, a `root.tar.xz`), published the way LXD's and Incus's simplestreams clients read
//! them (docs/publishing.md has the commands):
//!
//! - LXD reads only `streams/v1/index.json` and the `.json` products files it names, entries
//!   of datatype `image-downloads` with a non-empty `products` list, and it reads the JSON
//!   literally, without inheritance: the product's fields (`aliases`, `arch`, `os`,
//!   `release`, `release_title`, `variant`, `requirements`) are written on the product, the
//!   version's (`label`) on the version, and `ftype`, `path`, `sha256` and `size` on every
//!   item. Nothing of these is condensed.
//! - Products are named `OS:RELEASE:VARIANT:ARCH` (the `incus-simplestreams` default) and
//!   versions `YYYYMMDD_HHMM` (LXD reads the date, and the time since LXD 6.2, from the
//!   name; a name whose first eight characters are not a date hides the version from it).
//! - The image's fingerprint is the SHA-256 of the metadata tarball's bytes followed by the
//!   root file system's, written on the metadata item as `combined_squashfs_sha256`,
//!   `combined_disk-kvm-img_sha256`, `combined_rootxz_sha256` (and the older name
//!   `combined_sha256`) for a `root.tar.xz`, `combined_disk1-img_sha256` or
//!   `combined_uefi1-img_sha256`. It is computed on the passes that read the files anyway
//!   (the metadata tarball's hash state seeds each root file system's), never by reading them
//!   again.
//! - Incus accepts only `incus.tar.xz` metadata items, LXD (since 5.21) only `lxd.tar.xz`:
//!   with [`LxdImage::incus`], the version gets both items, sharing the one file.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;
use simplestreams_core::filetype::{self, FileType};
use simplestreams_core::{Item, Map};

use crate::add::{AddOutcome, AddReport, AddedImage};
use crate::error::{Error, Result};
use crate::files::{peek, Tap};
use crate::image::{NewImage, Placement};
use crate::repo::{register_item, ItemRef, Repo};

/// The ftype of LXD's metadata tarball item.
pub const LXD_META: &str = "lxd.tar.xz";

/// The ftype of Incus's metadata tarball item.
pub const INCUS_META: &str = "incus.tar.xz";

/// The root file system ftypes LXD and Incus pair with a metadata tarball, and the fields of
/// the metadata item that hold the combined fingerprint for each.
pub const ROOT_FTYPES: &[(&str, &[&str])] = &[
    ("squashfs", &["combined_squashfs_sha256"]),
    ("disk-kvm.img", &["combined_disk-kvm-img_sha256"]),
    (
        "root.tar.xz",
        &["combined_rootxz_sha256", "combined_sha256"],
    ),
    ("disk1.img", &["combined_disk1-img_sha256"]),
    ("uefi1.img", &["combined_uefi1-img_sha256"]),
];

/// The fields of a metadata item holding the fingerprint of the image made with a root file
/// system of ftype `root_ftype`, if LXD knows that ftype.
pub fn combined_fields(root_ftype: &str) -> Option<&'static [&'static str]> {
    ROOT_FTYPES
        .iter()
        .find(|(f, _)| *f == root_ftype)
        .map(|(_, fields)| *fields)
}

/// The first of [`combined_fields`], the one LXD reads first.
fn combined_field(root_ftype: &str) -> Option<&'static str> {
    combined_fields(root_ftype).and_then(|f| f.first().copied())
}

/// LXD's architecture names (its `osarch` table): each canonical name with the names it also
/// accepts. A product whose `arch` is none of these is skipped by LXD without a word.
pub const ARCHITECTURES: &[(&str, &[&str])] = &[
    ("i686", &["i386", "i586", "386", "x86", "generic_32"]),
    ("x86_64", &["amd64", "amd64v3", "generic_64"]),
    ("armv6l", &["armel", "arm"]),
    (
        "armv7l",
        &[
            "armhf",
            "armhfp",
            "armv7a_hardfp",
            "armv7",
            "armv7a_vfpv3_hardfp",
        ],
    ),
    ("armv8l", &[]),
    ("aarch64", &["arm64", "arm64_generic"]),
    ("ppc", &["powerpc"]),
    ("ppc64", &["powerpc64"]),
    ("ppc64le", &["ppc64el"]),
    ("s390x", &[]),
    ("mips", &["mipsel", "mipsle"]),
    ("mips64", &["mips64el", "mips64le"]),
    ("riscv32", &[]),
    ("riscv64", &[]),
    ("loongarch64", &["loong64"]),
];

/// LXD's canonical name for `arch` (`amd64` → `x86_64`), if LXD knows it. As LXD does, only
/// the first word counts.
pub fn lxd_architecture(arch: &str) -> Option<&'static str> {
    let word = arch.split_whitespace().next()?;
    ARCHITECTURES
        .iter()
        .find(|(name, aliases)| *name == word || aliases.contains(&word))
        .map(|(name, _)| *name)
}

/// Whether LXD takes `name` as a version: at least 8 characters, the first 8 a date
/// (`YYYYMMDD`); versions named otherwise are skipped by LXD and Incus.
pub fn is_lxd_version_name(name: &str) -> bool {
    name.len() >= 8
        && name.is_char_boundary(8)
        && name.as_bytes()[..8].iter().all(u8::is_ascii_digit)
        && chrono::NaiveDate::parse_from_str(&name[..8], "%Y%m%d").is_ok()
}

/// One root file system of an LXD image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LxdRoot {
    /// The file.
    pub file: PathBuf,
    /// Its ftype (one of [`ROOT_FTYPES`]); default from its content: a squashfs is
    /// `squashfs`, a qcow2 image `disk-kvm.img`, an xz file `root.tar.xz`.
    pub ftype: Option<String>,
}

/// One LXD (and Incus) image: its metadata tarball, its root file systems, and what LXD shows
/// of it (see the module).
#[derive(Debug, Clone, PartialEq)]
pub struct LxdImage {
    /// The metadata tarball (`metadata.yaml` and templates), xz-compressed as LXD's are.
    pub meta: PathBuf,
    /// The root file systems: a container's squashfs and/or a virtual machine's disk, ….
    pub roots: Vec<LxdRoot>,
    /// Also publish the metadata as an `incus.tar.xz` item (the same file), for Incus.
    pub incus: bool,
    /// `os` (ubuntu, debian, …).
    pub os: String,
    /// `release` (noble, 12, …).
    pub release: String,
    /// `arch`, as LXD names it or as Debian does (amd64, arm64, x86_64, …).
    pub arch: String,
    /// `variant`; default `default`.
    pub variant: Option<String>,
    /// `release_title` (what `lxc image list` shows: "24.04 LTS"); default the release.
    pub release_title: Option<String>,
    /// `aliases`; default `OS/RELEASE/VARIANT`, and `OS/RELEASE` for the `default` variant.
    pub aliases: Vec<String>,
    /// The version's `label` (release, daily, …), shown in LXD's description.
    pub label: Option<String>,
    /// `requirements` (secureboot, nesting, cgroup): string values.
    pub requirements: Map,
    /// Other product fields (`support_eol`, `version`, …).
    pub product_fields: Map,
    /// Product id; default `OS:RELEASE:VARIANT:ARCH`.
    pub product_id: Option<String>,
    /// Version name; default the metadata tarball's modification time, `YYYYMMDD_HHMM` (UTC).
    pub version_name: Option<String>,
    /// The content id; see [`NewImage::content_id`].
    pub content_id: Option<String>,
    /// The stream name; see [`NewImage::stream`].
    pub stream: Option<String>,
    /// Where the files go (default content-addressed).
    pub placement: Placement,
    /// Also record each file's sha512.
    pub sha512: bool,
}

impl LxdImage {
    /// An image of `os` `release` for `arch` from the metadata tarball `meta`, every other
    /// choice left to the defaults (add its root file systems with [`LxdImage::root`]).
    pub fn new(
        meta: impl Into<PathBuf>,
        os: impl Into<String>,
        release: impl Into<String>,
        arch: impl Into<String>,
    ) -> LxdImage {
        LxdImage {
            meta: meta.into(),
            roots: Vec::new(),
            incus: false,
            os: os.into(),
            release: release.into(),
            arch: arch.into(),
            variant: None,
            release_title: None,
            aliases: Vec::new(),
            label: None,
            requirements: Map::new(),
            product_fields: Map::new(),
            product_id: None,
            version_name: None,
            content_id: None,
            stream: None,
            placement: Placement::default(),
            sha512: false,
        }
    }

    /// Adds a root file system, its ftype told from its content.
    pub fn root(mut self, file: impl Into<PathBuf>) -> LxdImage {
        self.roots.push(LxdRoot {
            file: file.into(),
            ftype: None,
        });
        self
    }

    fn variant(&self) -> &str {
        self.variant
            .as_deref()
            .filter(|v| !v.is_empty())
            .unwrap_or("default")
    }

    /// The aliases, the defaults when none are given.
    pub fn aliases(&self) -> Vec<String> {
        if !self.aliases.is_empty() {
            return self.aliases.clone();
        }
        let mut out = vec![format!("{}/{}/{}", self.os, self.release, self.variant())];
        if self.variant() == "default" {
            out.push(format!("{}/{}", self.os, self.release));
        }
        out
    }

    /// The product id.
    pub fn product(&self) -> String {
        self.product_id.clone().unwrap_or_else(|| {
            format!(
                "{}:{}:{}:{}",
                self.os,
                self.release,
                self.variant(),
                self.arch
            )
        })
    }

    fn check(&self) -> Result<()> {
        let label = self.meta.display().to_string();
        let incomplete = |message: String| Error::Incomplete {
            image: label.clone(),
            message,
        };
        for (what, value) in [
            ("os", &self.os),
            ("release", &self.release),
            ("arch", &self.arch),
        ] {
            if value.trim().is_empty() {
                return Err(incomplete(format!("an LXD image needs its {what}")));
            }
        }
        if lxd_architecture(&self.arch).is_none() {
            return Err(incomplete(format!(
                "LXD does not know the architecture {:?} and would skip the image (amd64, \
                 arm64, armhf, i386, ppc64el, s390x, riscv64, x86_64, aarch64, …)",
                self.arch
            )));
        }
        for alias in self.aliases() {
            if alias.is_empty() || alias.contains(',') || alias.trim() != alias {
                return Err(incomplete(format!(
                    "alias {alias:?}: LXD splits aliases at commas and keeps spaces"
                )));
            }
        }
        if let Some(v) = &self.version_name {
            if !is_lxd_version_name(v) {
                return Err(incomplete(format!(
                    "version name {v:?}: LXD skips versions whose name does not start with a \
                     date, YYYYMMDD (use YYYYMMDD_HHMM)"
                )));
            }
        }
        if self.roots.is_empty() {
            return Err(incomplete(
                "an LXD image needs a root file system (a squashfs, a disk-kvm.img, a \
                 root.tar.xz) besides its metadata tarball"
                    .into(),
            ));
        }
        for (k, v) in &self.requirements {
            if !v.is_string() {
                return Err(incomplete(format!(
                    "requirement {k}: LXD reads requirements as strings"
                )));
            }
        }
        Ok(())
    }
}

/// An image's fingerprint, as `lxc image list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LxdFingerprint {
    /// Content id.
    pub content_id: String,
    /// Product id.
    pub product: String,
    /// Version name.
    pub version: String,
    /// The root file system's ftype (`squashfs`: a container; `disk-kvm.img`: a virtual
    /// machine).
    pub root_ftype: String,
    /// SHA-256 of the metadata tarball followed by the root file system.
    pub fingerprint: String,
}

/// What [`Repo::add_lxd`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LxdAddReport {
    /// Every item, in order: the metadata tarball, its Incus twin, the root file systems.
    pub images: AddReport,
    /// The fingerprint of each image (one per root file system).
    pub fingerprints: Vec<LxdFingerprint>,
}

/// The ftype of a root file system from its content.
fn root_ftype(kind: Option<FileType>, file: &std::path::Path) -> Result<String> {
    match kind {
        Some(FileType::Squashfs) => Ok("squashfs".into()),
        Some(FileType::Qcow2) => Ok("disk-kvm.img".into()),
        Some(FileType::Xz) => Ok("root.tar.xz".into()),
        other => Err(Error::Incomplete {
            image: file.display().to_string(),
            message: format!(
                "not a root file system LXD takes ({}): a squashfs, a qcow2 disk-kvm.img or \
                 an xz root.tar.xz; give its ftype (FTYPE=FILE) if it is one",
                match other {
                    Some(k) => format!("a {} file", k.extension()),
                    None => "of no known type".into(),
                }
            ),
        }),
    }
}

impl Repo {
    /// Adds LXD images (see the module): for each, its metadata tarball, then each root file
    /// system, each file copied once and read no more than [`Repo::add`] reads it (the
    /// combined fingerprints are computed on those passes), then the fingerprints written on
    /// the metadata item (and its `incus.tar.xz` twin with [`LxdImage::incus`]).
    ///
    /// Refused before anything is copied: an architecture LXD does not know, a version name
    /// LXD would skip, an alias with a comma, no root file system, a root file system of a
    /// type LXD does not pair with metadata. Otherwise as [`Repo::add`] (an item already
    /// there with the same content is unchanged; with other content, refused).
    pub async fn add_lxd(&mut self, images: Vec<LxdImage>) -> Result<LxdAddReport> {
        let mut report = LxdAddReport::default();
        let mut claimed = HashMap::new();
        // Check every image (and tell the roots' types) before copying anything.
        let mut planned = Vec::with_capacity(images.len());
        for image in images {
            image.check()?;
            let mut roots = Vec::with_capacity(image.roots.len());
            for root in &image.roots {
                let ftype = match &root.ftype {
                    Some(f) => f.clone(),
                    None => {
                        let p = peek(&root.file).await?;
                        root_ftype(filetype::detect(&p.head, &p.tail), &root.file)?
                    }
                };
                if combined_field(&ftype).is_none() {
                    return Err(Error::Incomplete {
                        image: root.file.display().to_string(),
                        message: format!(
                            "ftype {ftype:?}: LXD pairs metadata only with {}",
                            ROOT_FTYPES
                                .iter()
                                .map(|(f, _)| *f)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                }
                if roots.iter().any(|(_, f): &(PathBuf, String)| f == &ftype) {
                    return Err(Error::Incomplete {
                        image: root.file.display().to_string(),
                        message: format!("two root file systems of ftype {ftype} in one version"),
                    });
                }
                roots.push((root.file.clone(), ftype));
            }
            let version = match &image.version_name {
                Some(v) => v.clone(),
                None => {
                    let modified = std::fs::metadata(&image.meta)
                        .and_then(|m| m.modified())
                        .map_err(|e| Error::io(&image.meta, e))?;
                    chrono::DateTime::<chrono::Utc>::from(modified)
                        .format("%Y%m%d_%H%M")
                        .to_string()
                }
            };
            planned.push((image, roots, version));
        }

        for (image, roots, version) in planned {
            let product = image.product();
            let mut product_fields = Map::new();
            let mut put = |k: &str, v: String| {
                product_fields.insert(k.to_string(), Value::String(v));
            };
            put("aliases", image.aliases().join(","));
            put("arch", image.arch.clone());
            put("os", image.os.clone());
            put("release", image.release.clone());
            put(
                "release_title",
                image
                    .release_title
                    .clone()
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| image.release.clone()),
            );
            put("variant", image.variant().to_string());
            for (k, v) in &image.product_fields {
                product_fields.insert(k.clone(), v.clone());
            }
            if !image.requirements.is_empty() {
                product_fields.insert(
                    "requirements".into(),
                    Value::Object(image.requirements.clone().into_iter().collect()),
                );
            }
            let mut version_fields = Map::new();
            if let Some(label) = image.label.clone().filter(|l| !l.is_empty()) {
                version_fields.insert("label".into(), Value::String(label));
            }
            let base = |file: PathBuf, ftype: &str| {
                let mut i = NewImage::file(file);
                i.content_id = image.content_id.clone();
                i.stream = image.stream.clone();
                i.datatype = Some(crate::image::DEFAULT_DATATYPE.into());
                i.product_id = Some(product.clone());
                i.version_name = Some(version.clone());
                i.item_name = Some(ftype.to_string());
                i.ftype = Some(ftype.to_string());
                i.infer_ftype = false;
                i.placement = image.placement.clone();
                i.sha512 = image.sha512;
                i
            };

            // The metadata tarball, its hash state kept for the fingerprints.
            let mut meta = base(image.meta.clone(), LXD_META);
            meta.product_fields = product_fields;
            meta.version_fields = version_fields;
            let mut tap = Tap::sha256();
            let added = self.add_one(meta, &mut claimed, Some(&mut tap)).await?;
            let key = ItemRef {
                content_id: added.content_id.clone(),
                product: added.product.clone(),
                version: added.version.clone(),
                item: LXD_META.to_string(),
            };
            report.images.images.push(added);
            let meta_state = tap.end.ok_or_else(|| Error::Incomplete {
                image: image.meta.display().to_string(),
                message: "the metadata tarball was not read".into(),
            })?;

            let mut combined = Map::new();
            for (file, ftype) in roots {
                let mut tap = Tap::seeded(meta_state.clone());
                let added = self
                    .add_one(base(file.clone(), &ftype), &mut claimed, Some(&mut tap))
                    .await?;
                report.images.images.push(added);
                let state = tap.end.ok_or_else(|| Error::Incomplete {
                    image: file.display().to_string(),
                    message: "the root file system was not read".into(),
                })?;
                let fingerprint = state
                    .finish()
                    .map_err(|source| Error::Content {
                        file: file.display().to_string(),
                        source,
                    })?
                    .sha256
                    .unwrap_or_default();
                for field in combined_fields(&ftype).unwrap_or_default() {
                    combined.insert((*field).to_string(), Value::String(fingerprint.clone()));
                }
                report.fingerprints.push(LxdFingerprint {
                    content_id: key.content_id.clone(),
                    product: key.product.clone(),
                    version: key.version.clone(),
                    root_ftype: ftype,
                    fingerprint,
                });
            }
            self.set_item_fields(&key, &combined);
            if image.incus {
                let twin = self.twin(&key, INCUS_META);
                report.images.images.push(twin);
            }
        }
        Ok(report)
    }

    /// Sets fields on an item (the fingerprints on a metadata item), marking its products
    /// file changed when any differs.
    fn set_item_fields(&mut self, key: &ItemRef, fields: &Map) {
        let Some(file) = self.streams.get_mut(&key.content_id) else {
            return;
        };
        let Some(item) = file
            .doc
            .products
            .get_mut(&key.product)
            .and_then(|p| p.versions.get_mut(&key.version))
            .and_then(|v| v.items.get_mut(&key.item))
        else {
            return;
        };
        let mut changed = false;
        for (k, v) in fields {
            if item.fields.get(k) != Some(v) {
                item.fields.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        if changed {
            file.changed = true;
        }
    }

    /// Makes item `ftype` of the version of `key` a copy of item `key` with that ftype (the
    /// same file, sizes and checksums): Incus's metadata item beside LXD's.
    fn twin(&mut self, key: &ItemRef, ftype: &str) -> AddedImage {
        let cid = key.content_id.clone();
        let file = self.streams.get_mut(&cid).expect("the item was just added");
        let version = file
            .doc
            .products
            .get_mut(&key.product)
            .and_then(|p| p.versions.get_mut(&key.version))
            .expect("the version was just added");
        let mut fields = version.items[&key.item].fields.clone();
        fields.insert("ftype".into(), Value::String(ftype.to_string()));
        let path = fields
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let size = fields.get("size").and_then(Value::as_u64).unwrap_or(0);
        let sha256 = fields
            .get("sha256")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let old = version.items.get(ftype).cloned();
        let outcome = if old.as_ref().map(|i| &i.fields) == Some(&fields) {
            AddOutcome::Unchanged
        } else {
            version.items.insert(ftype.to_string(), Item { fields });
            file.changed = true;
            AddOutcome::Shared
        };
        if outcome == AddOutcome::Shared {
            let twin_key = ItemRef {
                item: ftype.to_string(),
                ..key.clone()
            };
            let doc = &self.streams[&cid].doc;
            if let Some(old) = old {
                register_item(
                    &mut self.named,
                    doc,
                    &twin_key.product,
                    &twin_key.version,
                    &old,
                    -1,
                );
            }
            let item = &doc.products[&twin_key.product].versions[&twin_key.version].items[ftype];
            register_item(
                &mut self.named,
                doc,
                &twin_key.product,
                &twin_key.version,
                item,
                1,
            );
        }
        AddedImage {
            content_id: cid,
            product: key.product.clone(),
            version: key.version.clone(),
            item: ftype.to_string(),
            path,
            size,
            sha256,
            outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_and_version_names_as_lxd_reads_them() {
        assert_eq!(lxd_architecture("amd64"), Some("x86_64"));
        assert_eq!(lxd_architecture("x86_64"), Some("x86_64"));
        assert_eq!(lxd_architecture("arm64"), Some("aarch64"));
        assert_eq!(lxd_architecture("ppc64el"), Some("ppc64le"));
        assert_eq!(lxd_architecture("sparc"), None);
        assert!(is_lxd_version_name("20240601_1200"));
        assert!(is_lxd_version_name("20240601"));
        assert!(is_lxd_version_name("20200304_22:10"));
        assert!(!is_lxd_version_name("2024061"));
        assert!(!is_lxd_version_name("20241301_0000"));
        assert!(!is_lxd_version_name("v20240601"));
        assert_eq!(
            combined_fields("root.tar.xz"),
            Some(&["combined_rootxz_sha256", "combined_sha256"][..])
        );
    }

    #[test]
    fn default_aliases_and_product_follow_incus_simplestreams() {
        let i = LxdImage::new("m", "ubuntu", "noble", "amd64");
        assert_eq!(i.product(), "ubuntu:noble:default:amd64");
        assert_eq!(i.aliases(), ["ubuntu/noble/default", "ubuntu/noble"]);
        let mut c = i.clone();
        c.variant = Some("cloud".into());
        assert_eq!(c.aliases(), ["ubuntu/noble/cloud"]);
        assert_eq!(c.product(), "ubuntu:noble:cloud:amd64");
    }
}
