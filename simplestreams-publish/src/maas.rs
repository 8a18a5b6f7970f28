//! MAAS boot resources ([`Repo::add_maas`]): images a MAAS region imports from a boot source,
//! in the shape of `images.maas.io`'s v3 streams (docs/publishing.md has the `maas` commands):
//!
//! - one products file per stream, content id `PREFIX:STREAM:v3:download` (`stable` by
//!   default), datatype `image-ids` as MAAS's own streams have it (their items are files
//!   nonetheless: `ftype`, `path`, `sha256`, `size`);
//! - **boot images** (an Ubuntu-like OS MAAS deploys and boots): product
//!   `PREFIX:v3:boot:VERSION:ARCH:SUBARCH` (the `:v3:` is what MAAS looks for in the name of
//!   an Ubuntu product), items `boot-kernel`, `boot-initrd`, `squashfs` (or `root-image.gz`),
//!   `manifest` (MAAS 3.8 and later require it), `boot-dtb` optionally;
//! - **custom images** (`os` `custom` by default): product `PREFIX:OS-bases:RELEASE:ARCH`
//!   (as `images.maas.io` names its CentOS images), items `root-tgz` (or a `root-dd*` disk
//!   image; MAAS 3.8 reads only `root-tgz`) and `manifest`;
//! - product fields, written on the product where MAAS 3.8 reads them (never condensed):
//!   `arch`, `label`, `os`, `release`, `release_title`, `subarch`, `subarches`, `version`,
//!   `support_eol` when given, and for boot images `kflavor`, `krel`, `release_codename`;
//! - every document has its `updated`, and is signed when the repository is (MAAS verifies
//!   every file with the boot source's keyring unless its URL ends in `index.json`).

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;
use simplestreams_core::Map;

use crate::add::AddReport;
use crate::error::{Error, Result};
use crate::image::{NewImage, Placement, DEFAULT_CONTENT_PREFIX};
use crate::repo::Repo;

/// The datatype of MAAS's boot-resource streams.
pub const MAAS_DATATYPE: &str = "image-ids";

/// The stream name MAAS images go in when none is given.
pub const MAAS_DEFAULT_STREAM: &str = "stable";

/// The file types MAAS imports (`BOOT_RESOURCE_FILE_TYPE`), and `manifest`, which MAAS 3.8
/// requires beside the root image (older MAAS skip it with a warning).
pub const MAAS_FTYPES: &[&str] = &[
    "root-tgz",
    "root-tbz",
    "root-txz",
    "root-dd",
    "root-dd.tar",
    "root-dd.raw",
    "root-dd.bz2",
    "root-dd.gz",
    "root-dd.xz",
    "root-dd.tar.bz2",
    "root-dd.tar.xz",
    "root-image.gz",
    "squashfs",
    "boot-kernel",
    "boot-initrd",
    "boot-dtb",
    "archive.tar.xz",
    "manifest",
];

/// The root images of a custom (single-file) image.
pub const CUSTOM_ROOT_FTYPES: &[&str] = &[
    "root-tgz",
    "root-tbz",
    "root-txz",
    "root-dd",
    "root-dd.tar",
    "root-dd.raw",
    "root-dd.bz2",
    "root-dd.gz",
    "root-dd.xz",
    "root-dd.tar.bz2",
    "root-dd.tar.xz",
];

/// Which of MAAS's two shapes an image has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaasKind {
    /// Kernel, initrd and root file system: MAAS boots and deploys it (Ubuntu's shape).
    Boot,
    /// One root image (`root-tgz`, `root-dd…`) a deployment writes to disk.
    Custom,
}

/// The content id of MAAS images of stream `stream`: `PREFIX:STREAM:v3:download`.
pub fn maas_content_id(prefix: &str, stream: &str) -> String {
    format!("{prefix}:{stream}:v3:download")
}

/// One MAAS image: its files by ftype, and the fields MAAS reads (see the module).
#[derive(Debug, Clone, PartialEq)]
pub struct MaasImage {
    /// The files, by ftype (`boot-kernel`, `boot-initrd`, `squashfs`, `manifest`; or
    /// `root-tgz`/`root-dd…` and `manifest`).
    pub files: Vec<(String, PathBuf)>,
    /// `os`; default `ubuntu` for a boot image, `custom` for a custom one.
    pub os: Option<String>,
    /// `release` (noble, …): required.
    pub release: String,
    /// `arch` (amd64, arm64, …): required.
    pub arch: String,
    /// `version` (24.04); default the release.
    pub version: Option<String>,
    /// `subarch`; default `ga-VERSION` for a boot image, `generic` for a custom one.
    pub subarch: Option<String>,
    /// `subarches` (comma list of the subarchitectures the kernel boots); default
    /// `generic,SUBARCH`.
    pub subarches: Option<String>,
    /// `kflavor`; default `generic` (boot images).
    pub kflavor: Option<String>,
    /// `krel`, the kernel's release; default the release (boot images).
    pub krel: Option<String>,
    /// `label`; default the stream name.
    pub label: Option<String>,
    /// `release_title` ("24.04 LTS"); default the version.
    pub release_title: Option<String>,
    /// `release_codename` ("Noble Numbat"); default the release (boot images).
    pub release_codename: Option<String>,
    /// `support_eol`, `YYYY-MM-DD`, when known.
    pub support_eol: Option<String>,
    /// The kernel's package (`kpackage` on the `boot-kernel` item), when known.
    pub kpackage: Option<String>,
    /// Other product fields.
    pub product_fields: Map,
    /// The first part of content and product ids; default `images`.
    pub content_prefix: Option<String>,
    /// The content id; default [`maas_content_id`] of the prefix and stream.
    pub content_id: Option<String>,
    /// The stream name; default [`MAAS_DEFAULT_STREAM`].
    pub stream: Option<String>,
    /// The product id; default by kind (see the module).
    pub product_id: Option<String>,
    /// Version name; default the newest modification date of the files, `YYYYMMDD` (UTC).
    pub version_name: Option<String>,
    /// Where the files go (default content-addressed).
    pub placement: Placement,
    /// Also record each file's sha512.
    pub sha512: bool,
}

impl MaasImage {
    /// An image of `release` for `arch` made of `files` (ftype, file), every other choice left
    /// to the defaults.
    pub fn new(
        release: impl Into<String>,
        arch: impl Into<String>,
        files: Vec<(String, PathBuf)>,
    ) -> MaasImage {
        MaasImage {
            files,
            os: None,
            release: release.into(),
            arch: arch.into(),
            version: None,
            subarch: None,
            subarches: None,
            kflavor: None,
            krel: None,
            label: None,
            release_title: None,
            release_codename: None,
            support_eol: None,
            kpackage: None,
            product_fields: Map::new(),
            content_prefix: None,
            content_id: None,
            stream: None,
            product_id: None,
            version_name: None,
            placement: Placement::default(),
            sha512: false,
        }
    }

    fn label_for_errors(&self) -> String {
        self.files
            .first()
            .map(|(_, f)| f.display().to_string())
            .unwrap_or_else(|| format!("MAAS image {} {}", self.release, self.arch))
    }

    fn has(&self, ftype: &str) -> bool {
        self.files.iter().any(|(f, _)| f == ftype)
    }

    /// The image's kind, from its files; refuses a set of files MAAS cannot use.
    pub fn kind(&self) -> Result<MaasKind> {
        let incomplete = |message: String| Error::Incomplete {
            image: self.label_for_errors(),
            message,
        };
        for (i, (ftype, _)) in self.files.iter().enumerate() {
            if !MAAS_FTYPES.contains(&ftype.as_str()) {
                return Err(incomplete(format!(
                    "ftype {ftype:?}: MAAS imports only {}",
                    MAAS_FTYPES.join(", ")
                )));
            }
            if self.files[..i].iter().any(|(f, _)| f == ftype) {
                return Err(incomplete(format!("two files of ftype {ftype}")));
            }
        }
        let roots: Vec<&str> = self
            .files
            .iter()
            .map(|(f, _)| f.as_str())
            .filter(|f| CUSTOM_ROOT_FTYPES.contains(f))
            .collect();
        if self.has("boot-kernel") || self.has("boot-initrd") {
            for needed in ["boot-kernel", "boot-initrd"] {
                if !self.has(needed) {
                    return Err(incomplete(format!("a boot image needs its {needed}")));
                }
            }
            if !self.has("squashfs") && !self.has("root-image.gz") {
                return Err(incomplete(
                    "a boot image needs its root file system: squashfs (or root-image.gz)".into(),
                ));
            }
            if !roots.is_empty() {
                return Err(incomplete(format!(
                    "{}: a boot image's root file system is a squashfs; a custom image is a \
                     root image alone",
                    roots.join(", ")
                )));
            }
            return Ok(MaasKind::Boot);
        }
        match roots.as_slice() {
            [_] => Ok(MaasKind::Custom),
            [] => Err(incomplete(
                "no image: give boot-kernel, boot-initrd and squashfs (a boot image), or a \
                 root-tgz or root-dd (a custom image)"
                    .into(),
            )),
            many => Err(incomplete(format!(
                "several root images ({}); give one",
                many.join(", ")
            ))),
        }
    }

    fn prefix(&self) -> &str {
        self.content_prefix
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_CONTENT_PREFIX)
    }

    fn stream(&self) -> &str {
        self.stream
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(MAAS_DEFAULT_STREAM)
    }

    fn version(&self) -> String {
        self.version
            .clone()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| self.release.clone())
    }

    fn subarch(&self, kind: MaasKind) -> String {
        if let Some(s) = self.subarch.clone().filter(|s| !s.is_empty()) {
            return s;
        }
        let version = self.version();
        match kind {
            MaasKind::Boot if version.starts_with(|c: char| c.is_ascii_digit()) => {
                format!("ga-{version}")
            }
            _ => "generic".into(),
        }
    }

    fn os(&self, kind: MaasKind) -> String {
        self.os
            .clone()
            .filter(|o| !o.is_empty())
            .unwrap_or_else(|| match kind {
                MaasKind::Boot => "ubuntu".into(),
                MaasKind::Custom => "custom".into(),
            })
    }

    /// The content id.
    pub fn content_id(&self) -> String {
        self.content_id
            .clone()
            .unwrap_or_else(|| maas_content_id(self.prefix(), self.stream()))
    }

    /// The product id.
    pub fn product(&self) -> Result<String> {
        if let Some(p) = &self.product_id {
            return Ok(p.clone());
        }
        let kind = self.kind()?;
        Ok(match kind {
            MaasKind::Boot => format!(
                "{}:v3:boot:{}:{}:{}",
                self.prefix(),
                self.version(),
                self.arch,
                self.subarch(kind)
            ),
            MaasKind::Custom => format!(
                "{}:{}-bases:{}:{}",
                self.prefix(),
                self.os(kind),
                self.release,
                self.arch
            ),
        })
    }

    /// The product fields MAAS reads.
    pub fn fields(&self) -> Result<Map> {
        let kind = self.kind()?;
        let subarch = self.subarch(kind);
        let version = self.version();
        let mut f = Map::new();
        let mut put = |k: &str, v: String| {
            f.insert(k.to_string(), Value::String(v));
        };
        put("arch", self.arch.clone());
        if kind == MaasKind::Boot {
            put(
                "kflavor",
                self.kflavor.clone().unwrap_or_else(|| "generic".into()),
            );
            put(
                "krel",
                self.krel.clone().unwrap_or_else(|| self.release.clone()),
            );
        }
        put(
            "label",
            self.label
                .clone()
                .unwrap_or_else(|| self.stream().to_string()),
        );
        put("os", self.os(kind));
        put("release", self.release.clone());
        if kind == MaasKind::Boot {
            put(
                "release_codename",
                self.release_codename
                    .clone()
                    .unwrap_or_else(|| self.release.clone()),
            );
        }
        put(
            "release_title",
            self.release_title
                .clone()
                .unwrap_or_else(|| version.clone()),
        );
        put("subarch", subarch.clone());
        put(
            "subarches",
            self.subarches.clone().unwrap_or_else(|| {
                if subarch == "generic" {
                    subarch.clone()
                } else {
                    format!("generic,{subarch}")
                }
            }),
        );
        if let Some(eol) = &self.support_eol {
            put("support_eol", eol.clone());
        }
        put("version", version);
        for (k, v) in &self.product_fields {
            f.insert(k.clone(), v.clone());
        }
        Ok(f)
    }

    fn check(&self) -> Result<()> {
        let incomplete = |message: String| Error::Incomplete {
            image: self.label_for_errors(),
            message,
        };
        for (what, value) in [("release", &self.release), ("arch", &self.arch)] {
            if value.trim().is_empty() {
                return Err(incomplete(format!("a MAAS image needs its {what}")));
            }
        }
        if let Some(eol) = &self.support_eol {
            if chrono::NaiveDate::parse_from_str(eol, "%Y-%m-%d").is_err() {
                return Err(incomplete(format!(
                    "support_eol {eol:?}: MAAS reads a date, YYYY-MM-DD"
                )));
            }
        }
        let kind = self.kind()?;
        let product = self.product()?;
        if kind == MaasKind::Boot && !has_v3(&product) {
            return Err(incomplete(format!(
                "product id {product:?}: MAAS imports a boot image only from a product whose \
                 name has :v2:, :v3: or :v3+platform:"
            )));
        }
        Ok(())
    }
}

/// Whether a product name matches MAAS's `.*:v([23]|3\+platform):.*`.
pub fn has_v3(product: &str) -> bool {
    [":v2:", ":v3:", ":v3+platform:"]
        .iter()
        .any(|p| product.contains(p))
}

impl Repo {
    /// Adds MAAS images (see the module): each file copied as [`Repo::add`] does, with its
    /// ftype as item name, and the product fields written on the product.
    ///
    /// Refused before anything is copied: a file type MAAS does not import, a boot image
    /// without kernel, initrd or root file system, several root images, an unparsable
    /// `support_eol`.
    pub async fn add_maas(&mut self, images: Vec<MaasImage>) -> Result<AddReport> {
        let mut planned = Vec::with_capacity(images.len());
        for image in images {
            image.check()?;
            let version = match &image.version_name {
                Some(v) => v.clone(),
                None => {
                    let mut newest = None;
                    for (_, file) in &image.files {
                        let modified = std::fs::metadata(file)
                            .and_then(|m| m.modified())
                            .map_err(|e| Error::io(file, e))?;
                        newest = newest.max(Some(modified));
                    }
                    crate::time::version_date(newest.unwrap_or_else(std::time::SystemTime::now))
                }
            };
            planned.push((image, version));
        }
        let mut report = AddReport::default();
        let mut claimed = HashMap::new();
        for (image, version) in planned {
            let product = image.product()?;
            let fields = image.fields()?;
            let content_id = image.content_id();
            for (ftype, file) in &image.files {
                let mut i = NewImage::file(file);
                i.content_id = Some(content_id.clone());
                i.datatype = Some(MAAS_DATATYPE.into());
                i.product_id = Some(product.clone());
                i.version_name = Some(version.clone());
                i.item_name = Some(ftype.clone());
                i.ftype = Some(ftype.clone());
                i.infer_ftype = false;
                i.placement = image.placement.clone();
                i.sha512 = image.sha512;
                i.product_fields = fields.clone();
                if ftype == "boot-kernel" {
                    if let Some(k) = &image.kpackage {
                        i.fields.insert("kpackage".into(), Value::String(k.clone()));
                    }
                }
                report
                    .images
                    .push(self.add_one(i, &mut claimed, None).await?);
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(ftypes: &[&str]) -> Vec<(String, PathBuf)> {
        ftypes
            .iter()
            .map(|f| (f.to_string(), PathBuf::from(format!("/x/{f}"))))
            .collect()
    }

    #[test]
    fn boot_images_are_named_as_images_maas_io_names_them() {
        let mut i = MaasImage::new(
            "noble",
            "amd64",
            files(&["boot-kernel", "boot-initrd", "squashfs", "manifest"]),
        );
        i.version = Some("24.04".into());
        assert_eq!(i.kind().unwrap(), MaasKind::Boot);
        assert_eq!(i.product().unwrap(), "images:v3:boot:24.04:amd64:ga-24.04");
        assert_eq!(i.content_id(), "images:stable:v3:download");
        let f = i.fields().unwrap();
        assert_eq!(f["subarches"], "generic,ga-24.04");
        assert_eq!(f["os"], "ubuntu");
        assert_eq!(f["label"], "stable");
        assert_eq!(f["krel"], "noble");
        assert!(i.check().is_ok());
    }

    #[test]
    fn custom_images_and_refusals() {
        let c = MaasImage::new("mycloud", "amd64", files(&["root-tgz", "manifest"]));
        assert_eq!(c.kind().unwrap(), MaasKind::Custom);
        assert_eq!(c.product().unwrap(), "images:custom-bases:mycloud:amd64");
        assert_eq!(c.fields().unwrap()["subarch"], "generic");
        let bad = MaasImage::new("n", "amd64", files(&["boot-kernel", "squashfs"]));
        assert!(bad.kind().unwrap_err().to_string().contains("boot-initrd"));
        let two = MaasImage::new("n", "amd64", files(&["root-tgz", "root-dd"]));
        assert!(two.kind().is_err());
        let odd = MaasImage::new("n", "amd64", files(&["disk1.img"]));
        assert!(odd
            .kind()
            .unwrap_err()
            .to_string()
            .contains("MAAS imports only"));
        let mut no_v3 = MaasImage::new(
            "n",
            "amd64",
            files(&["boot-kernel", "boot-initrd", "squashfs"]),
        );
        no_v3.product_id = Some("x:boot:n".into());
        assert!(no_v3.check().is_err());
    }
}
