//! Many images at once from a YAML manifest, with the keys of `sstream add`'s flags.
//!
//! ```yaml
//! defaults:              # optional: applies to every image (any key but file)
//!   os: ubuntu
//!   release: noble
//!   stream: candidate
//!   path-template: "{os}/{release}/{version_name}/{arch}/{filename}"
//! images:
//!   - file: noble-amd64.qcow2        # relative to the manifest's directory
//!     arch: amd64
//!     version-name: "20240601"
//!   - file: noble-arm64.qcow2
//!     arch: arm64
//!     alias: [ubuntu/noble, ubuntu/24.04]
//!     label: beta
//!     field: {kernel: "6.8"}
//! ```
//!
//! Keys: `file` (required), `os`, `release`, `arch`, `version`, `version-name`, `ftype`,
//! `product-id`, `content-id`, `stream`, `item`, `alias` (one or a list), `label`, `field` (a
//! map of extra fields), `path-template`, `sha512` (true/false), `variant`, `release-title`.
//! A key an image gives wins over `defaults`, except `alias` and `field`, which add to them.
//! Scalars are taken as written (`version: 24.10` stays `"24.10"`). An unknown key, or an
//! image without `file`, is refused with its line.
//!
//! **Flavours** (read by [`parse_manifest_images`]): `flavour: lxd` or `flavour: maas` makes
//! an entry an [`LxdImage`] or a [`MaasImage`]; its files are then given as `files`, a map
//! from ftype to file, instead of `file`:
//!
//! ```yaml
//! images:
//!   - flavour: lxd                   # lxd.tar.xz (or incus.tar.xz): the metadata tarball
//!     files: {lxd.tar.xz: meta.tar.xz, squashfs: rootfs.squashfs, disk-kvm.img: disk.qcow2}
//!     os: ubuntu
//!     release: noble
//!     release-title: "24.04 LTS"
//!     arch: amd64
//!     alias: [ubuntu/24.04, ubuntu/noble]
//!     incus: true                    # also an incus.tar.xz item
//!     requirements: {secureboot: "false"}
//!   - flavour: maas
//!     files: {boot-kernel: vmlinuz, boot-initrd: initrd, squashfs: root.squashfs, manifest: m}
//!     release: noble
//!     version: "24.04"
//!     arch: amd64
//!     support-eol: 2029-05-31
//! ```
//!
//! LXD keys: those above but `file`, `ftype`, `item`, plus `incus`, `requirements`; `field`
//! adds product fields. MAAS keys: likewise, plus `subarch`, `subarches`, `kflavor`, `krel`,
//! `release-codename`, `support-eol`, `kpackage`, `content-prefix`. Files are relative to
//! the manifest's directory.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;
use simplestreams_core::Map;

use crate::error::{Error, Result};
use crate::image::{NewImage, Placement};
use crate::lxd::{LxdImage, LxdRoot, INCUS_META, LXD_META};
use crate::maas::MaasImage;

/// One image, or the defaults, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Entry {
    file: Option<String>,
    os: Option<String>,
    release: Option<String>,
    arch: Option<String>,
    version: Option<String>,
    version_name: Option<String>,
    ftype: Option<String>,
    product_id: Option<String>,
    content_id: Option<String>,
    stream: Option<String>,
    item: Option<String>,
    alias: Option<OneOrMany>,
    label: Option<String>,
    field: Option<IndexMap<String, String>>,
    path_template: Option<String>,
    sha512: Option<bool>,
    flavour: Option<String>,
    files: Option<IndexMap<String, String>>,
    variant: Option<String>,
    release_title: Option<String>,
    release_codename: Option<String>,
    incus: Option<bool>,
    requirements: Option<IndexMap<String, String>>,
    subarch: Option<String>,
    subarches: Option<String>,
    kflavor: Option<String>,
    krel: Option<String>,
    support_eol: Option<String>,
    kpackage: Option<String>,
    content_prefix: Option<String>,
}

/// One image of a manifest, by flavour.
#[derive(Debug, Clone, PartialEq)]
pub enum ManifestImage {
    /// A plain image ([`crate::Repo::add`]).
    Generic(NewImage),
    /// An LXD/Incus image ([`crate::Repo::add_lxd`]).
    Lxd(LxdImage),
    /// A MAAS boot resource ([`crate::Repo::add_maas`]).
    Maas(MaasImage),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn list(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    defaults: Option<Spanned<Entry>>,
    images: Vec<Spanned<Entry>>,
}

/// Reads the manifest at `path`: images with files relative to its directory. A flavoured
/// entry is refused: read those with [`read_manifest_images`].
pub fn read_manifest(path: &Path) -> Result<Vec<NewImage>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse_manifest(&text, &path.display().to_string(), base)
}

/// Reads the manifest at `path`, flavoured entries included.
pub fn read_manifest_images(path: &Path) -> Result<Vec<ManifestImage>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse_manifest_images(&text, &path.display().to_string(), base)
}

/// Parses a manifest's text; `name` names it in errors, `base` is where relative files are.
/// A flavoured entry is refused (see [`parse_manifest_images`]).
pub fn parse_manifest(text: &str, name: &str, base: &Path) -> Result<Vec<NewImage>> {
    parse_manifest_images(text, name, base)?
        .into_iter()
        .map(|i| match i {
            ManifestImage::Generic(g) => Ok(g),
            _ => Err(Error::Invalid(format!(
                "{name}: flavoured images (flavour: lxd, maas) need parse_manifest_images"
            ))),
        })
        .collect()
}

/// Parses a manifest's text, flavoured entries included; `name` names it in errors, `base`
/// is where relative files are.
pub fn parse_manifest_images(text: &str, name: &str, base: &Path) -> Result<Vec<ManifestImage>> {
    let manifest: Manifest = serde_saphyr::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line() as usize).unwrap_or(0);
        Error::Manifest {
            file: name.to_string(),
            line,
            message: plain_message(&e),
        }
    })?;
    let defaults = manifest
        .defaults
        .map(|d| {
            if d.value.file.is_some() {
                return Err(Error::Manifest {
                    file: name.to_string(),
                    line: d.referenced.line() as usize,
                    message: "defaults cannot give a file".into(),
                });
            }
            Ok(d.value)
        })
        .transpose()?
        .unwrap_or_default();
    if manifest.images.is_empty() {
        return Err(Error::Manifest {
            file: name.to_string(),
            line: 1,
            message: "no images".into(),
        });
    }
    manifest
        .images
        .into_iter()
        .map(|entry| {
            let line = entry.referenced.line() as usize;
            to_manifest_image(&defaults, entry.value, base).map_err(|message| Error::Manifest {
                file: name.to_string(),
                line,
                message,
            })
        })
        .collect()
}

/// The message of a YAML error without its location (we give the line ourselves) or snippet.
fn plain_message(e: &serde_saphyr::Error) -> String {
    let options = serde_saphyr::render_options! {
        snippets: serde_saphyr::SnippetMode::Off,
    };
    let text = e.render_with_options(options);
    let first = text.lines().next().unwrap_or_default().trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "line 4 column 5: unknown field …"
    match first.split_once(": ") {
        Some((loc, rest)) if loc.starts_with("line ") => rest.to_string(),
        _ => first.to_string(),
    }
}

fn to_manifest_image(
    defaults: &Entry,
    e: Entry,
    base: &Path,
) -> std::result::Result<ManifestImage, String> {
    let flavour = e.flavour.clone().or(defaults.flavour.clone());
    match flavour.as_deref() {
        None | Some("generic") => {
            for (key, given) in [
                ("files", e.files.is_some() || defaults.files.is_some()),
                ("incus", e.incus.is_some() || defaults.incus.is_some()),
                (
                    "requirements",
                    e.requirements.is_some() || defaults.requirements.is_some(),
                ),
                ("subarch", e.subarch.is_some() || defaults.subarch.is_some()),
                (
                    "subarches",
                    e.subarches.is_some() || defaults.subarches.is_some(),
                ),
                ("kflavor", e.kflavor.is_some() || defaults.kflavor.is_some()),
                ("krel", e.krel.is_some() || defaults.krel.is_some()),
                (
                    "release-codename",
                    e.release_codename.is_some() || defaults.release_codename.is_some(),
                ),
                (
                    "support-eol",
                    e.support_eol.is_some() || defaults.support_eol.is_some(),
                ),
                (
                    "kpackage",
                    e.kpackage.is_some() || defaults.kpackage.is_some(),
                ),
                (
                    "content-prefix",
                    e.content_prefix.is_some() || defaults.content_prefix.is_some(),
                ),
            ] {
                if given {
                    return Err(format!(
                        "`{key}` is for flavoured images (flavour: lxd or maas)"
                    ));
                }
            }
            to_image(defaults, e, base).map(ManifestImage::Generic)
        }
        Some("lxd") => to_lxd(defaults, e, base).map(ManifestImage::Lxd),
        Some("maas") => to_maas(defaults, e, base).map(ManifestImage::Maas),
        Some(other) => Err(format!("flavour {other:?}: expected generic, lxd or maas")),
    }
}

/// The files of a flavoured entry, relative to `base`, in the order given.
fn flavour_files(
    defaults: &Entry,
    e: &Entry,
    base: &Path,
) -> std::result::Result<Vec<(String, PathBuf)>, String> {
    if e.file.is_some() || e.ftype.is_some() || e.item.is_some() {
        return Err(
            "a flavoured image gives its files as `files` (ftype: file), not `file`, `ftype` \
             or `item`"
                .into(),
        );
    }
    let files = e
        .files
        .clone()
        .or(defaults.files.clone())
        .ok_or("missing field `files`")?;
    Ok(files
        .into_iter()
        .map(|(ftype, file)| {
            let mut path = PathBuf::from(file);
            if path.is_relative() {
                path = base.join(path);
            }
            (ftype, path)
        })
        .collect())
}

fn pick(own: &Option<String>, default: &Option<String>) -> Option<String> {
    own.clone().or(default.clone())
}

fn aliases(defaults: &Entry, e: &Entry) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for list in [&defaults.alias, &e.alias].into_iter().flatten() {
        for a in list.list() {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

fn extra_fields(defaults: &Entry, e: &Entry) -> Map {
    let mut out = Map::new();
    for map in [&defaults.field, &e.field].into_iter().flatten() {
        for (k, v) in map {
            out.insert(k.clone(), Value::String(v.clone()));
        }
    }
    out
}

fn to_lxd(defaults: &Entry, e: Entry, base: &Path) -> std::result::Result<LxdImage, String> {
    let files = flavour_files(defaults, &e, base)?;
    let mut meta = None;
    let mut roots = Vec::new();
    let mut incus = e.incus.or(defaults.incus).unwrap_or(false);
    for (ftype, file) in files {
        match ftype.as_str() {
            LXD_META | INCUS_META => {
                if meta.is_some() {
                    return Err("two metadata tarballs (lxd.tar.xz, incus.tar.xz); give one".into());
                }
                incus |= ftype == INCUS_META;
                meta = Some(file);
            }
            _ => roots.push(LxdRoot {
                file,
                ftype: Some(ftype),
            }),
        }
    }
    let meta = meta.ok_or("no metadata tarball: give `files: {lxd.tar.xz: FILE, …}`")?;
    let required = |own: &Option<String>, default: &Option<String>, key: &str| {
        pick(own, default).ok_or(format!("missing field `{key}`"))
    };
    let mut image = LxdImage::new(
        meta,
        required(&e.os, &defaults.os, "os")?,
        required(&e.release, &defaults.release, "release")?,
        required(&e.arch, &defaults.arch, "arch")?,
    );
    image.roots = roots;
    image.incus = incus;
    image.variant = pick(&e.variant, &defaults.variant);
    image.release_title = pick(&e.release_title, &defaults.release_title);
    image.aliases = aliases(defaults, &e);
    image.label = pick(&e.label, &defaults.label);
    for map in [&defaults.requirements, &e.requirements]
        .into_iter()
        .flatten()
    {
        for (k, v) in map {
            image
                .requirements
                .insert(k.clone(), Value::String(v.clone()));
        }
    }
    image.product_fields = extra_fields(defaults, &e);
    if let Some(v) = pick(&e.version, &defaults.version) {
        image
            .product_fields
            .insert("version".into(), Value::String(v));
    }
    image.product_id = pick(&e.product_id, &defaults.product_id);
    image.version_name = pick(&e.version_name, &defaults.version_name);
    image.content_id = pick(&e.content_id, &defaults.content_id);
    image.stream = pick(&e.stream, &defaults.stream);
    if let Some(t) = pick(&e.path_template, &defaults.path_template) {
        image.placement = Placement::Template(t);
    }
    image.sha512 = e.sha512.or(defaults.sha512).unwrap_or(false);
    Ok(image)
}

fn to_maas(defaults: &Entry, e: Entry, base: &Path) -> std::result::Result<MaasImage, String> {
    if e.incus.is_some() || e.requirements.is_some() || !aliases(defaults, &e).is_empty() {
        return Err("`incus`, `requirements` and `alias` are for LXD images".into());
    }
    let files = flavour_files(defaults, &e, base)?;
    let required = |own: &Option<String>, default: &Option<String>, key: &str| {
        pick(own, default).ok_or(format!("missing field `{key}`"))
    };
    let mut image = MaasImage::new(
        required(&e.release, &defaults.release, "release")?,
        required(&e.arch, &defaults.arch, "arch")?,
        files,
    );
    image.os = pick(&e.os, &defaults.os);
    image.version = pick(&e.version, &defaults.version);
    image.subarch = pick(&e.subarch, &defaults.subarch);
    image.subarches = pick(&e.subarches, &defaults.subarches);
    image.kflavor = pick(&e.kflavor, &defaults.kflavor);
    image.krel = pick(&e.krel, &defaults.krel);
    image.label = pick(&e.label, &defaults.label);
    image.release_title = pick(&e.release_title, &defaults.release_title);
    image.release_codename = pick(&e.release_codename, &defaults.release_codename);
    image.support_eol = pick(&e.support_eol, &defaults.support_eol);
    image.kpackage = pick(&e.kpackage, &defaults.kpackage);
    image.product_fields = extra_fields(defaults, &e);
    image.content_prefix = pick(&e.content_prefix, &defaults.content_prefix);
    image.content_id = pick(&e.content_id, &defaults.content_id);
    image.stream = pick(&e.stream, &defaults.stream);
    image.product_id = pick(&e.product_id, &defaults.product_id);
    image.version_name = pick(&e.version_name, &defaults.version_name);
    if let Some(t) = pick(&e.path_template, &defaults.path_template) {
        image.placement = Placement::Template(t);
    }
    image.sha512 = e.sha512.or(defaults.sha512).unwrap_or(false);
    Ok(image)
}

fn to_image(defaults: &Entry, e: Entry, base: &Path) -> std::result::Result<NewImage, String> {
    let file = e.file.clone().ok_or("missing field `file`")?;
    let pick = |own: &Option<String>, default: &Option<String>| own.clone().or(default.clone());
    let mut path = PathBuf::from(&file);
    if path.is_relative() {
        path = base.join(path);
    }
    let mut image = NewImage::file(path);
    image.content_id = pick(&e.content_id, &defaults.content_id);
    image.stream = pick(&e.stream, &defaults.stream);
    image.product_id = pick(&e.product_id, &defaults.product_id);
    image.version_name = pick(&e.version_name, &defaults.version_name);
    image.item_name = pick(&e.item, &defaults.item);
    image.ftype = pick(&e.ftype, &defaults.ftype);
    image.sha512 = e.sha512.or(defaults.sha512).unwrap_or(false);
    if let Some(t) = pick(&e.path_template, &defaults.path_template) {
        image.placement = Placement::Template(t);
    }
    for (key, own, default) in [
        ("os", &e.os, &defaults.os),
        ("release", &e.release, &defaults.release),
        ("arch", &e.arch, &defaults.arch),
        ("version", &e.version, &defaults.version),
        ("label", &e.label, &defaults.label),
        ("variant", &e.variant, &defaults.variant),
        ("release_title", &e.release_title, &defaults.release_title),
    ] {
        if let Some(v) = pick(own, default) {
            image.fields.insert(key.into(), Value::String(v));
        }
    }
    let mut aliases: Vec<String> = Vec::new();
    for list in [&defaults.alias, &e.alias].into_iter().flatten() {
        for a in list.list() {
            if !aliases.contains(&a) {
                aliases.push(a);
            }
        }
    }
    if !aliases.is_empty() {
        image
            .fields
            .insert("aliases".into(), Value::String(aliases.join(",")));
    }
    for map in [&defaults.field, &e.field].into_iter().flatten() {
        for (k, v) in map {
            image.fields.insert(k.clone(), Value::String(v.clone()));
        }
    }
    image.check_fields().map_err(|e| e.to_string())?;
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
defaults:
  os: ubuntu
  release: noble
  alias: ubuntu/noble
images:
  - file: a.qcow2
    arch: amd64
    version: 24.10
    version-name: 20240601
  - file: /abs/b.img
    arch: arm64
    alias: [ubuntu/24.04]
    field: {kernel: '6.8'}
    path-template: '{os}/{filename}'
    sha512: true
";

    #[test]
    fn images_take_defaults_and_their_own_keys() {
        let images = parse_manifest(GOOD, "m.yaml", Path::new("/base")).unwrap();
        assert_eq!(images.len(), 2);
        let a = &images[0];
        assert_eq!(a.source, crate::ImageSource::File("/base/a.qcow2".into()));
        assert_eq!(a.fields["os"], "ubuntu");
        assert_eq!(a.fields["version"], "24.10", "scalars as written");
        assert_eq!(a.version_name.as_deref(), Some("20240601"));
        assert_eq!(a.fields["aliases"], "ubuntu/noble");
        let b = &images[1];
        assert_eq!(b.source, crate::ImageSource::File("/abs/b.img".into()));
        assert_eq!(b.fields["aliases"], "ubuntu/noble,ubuntu/24.04");
        assert_eq!(b.fields["kernel"], "6.8");
        assert!(b.sha512);
        assert_eq!(b.placement, Placement::Template("{os}/{filename}".into()));
    }

    #[test]
    fn flavoured_entries_become_lxd_and_maas_images() {
        let text = "\
images:
  - flavour: lxd
    files: {incus.tar.xz: m.tar.xz, squashfs: r.squashfs}
    os: ubuntu
    release: noble
    arch: amd64
    alias: [ubuntu/24.04]
    requirements: {secureboot: 'false'}
  - flavour: maas
    files: {boot-kernel: k, boot-initrd: i, squashfs: s}
    release: noble
    version: '24.04'
    arch: amd64
  - flavour: maas
    file: x
    release: r
    arch: amd64
";
        let err = parse_manifest_images(text, "m.yaml", Path::new("/b")).unwrap_err();
        // The line of the entry that mixes `file` into a flavoured image.
        assert!(err.to_string().starts_with("m.yaml:14: "), "{err}");
        let text = text.split("  - flavour: maas\n    file: x").next().unwrap();
        let images = parse_manifest_images(text, "m.yaml", Path::new("/b")).unwrap();
        let ManifestImage::Lxd(lxd) = &images[0] else {
            panic!("{:?}", images[0])
        };
        assert_eq!(lxd.meta, PathBuf::from("/b/m.tar.xz"));
        assert!(lxd.incus);
        assert_eq!(lxd.roots[0].ftype.as_deref(), Some("squashfs"));
        assert_eq!(lxd.aliases, ["ubuntu/24.04"]);
        assert_eq!(lxd.requirements["secureboot"], "false");
        let ManifestImage::Maas(maas) = &images[1] else {
            panic!("{:?}", images[1])
        };
        assert_eq!(maas.files.len(), 3);
        assert_eq!(maas.version.as_deref(), Some("24.04"));
        assert!(parse_manifest(text, "m.yaml", Path::new("/b")).is_err());
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line() {
        let text = GOOD.replace("    sha512: true\n", "    colour: red\n");
        let err = parse_manifest(&text, "m.yaml", Path::new("/")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("m.yaml:15: unknown field `colour`"),
            "{err}"
        );
    }

    #[test]
    fn an_image_without_a_file_is_refused_with_its_line() {
        let text = GOOD.replace("  - file: /abs/b.img\n    arch", "  - arch");
        let err = parse_manifest(&text, "m.yaml", Path::new("/")).unwrap_err();
        assert_eq!(err.to_string(), "m.yaml:10: missing field `file`");
    }

    #[test]
    fn a_reserved_field_is_refused_with_its_line() {
        let text = GOOD.replace("kernel: '6.8'", "sha256: '00'");
        let err = parse_manifest(&text, "m.yaml", Path::new("/")).unwrap_err();
        assert!(err.to_string().starts_with("m.yaml:10: "), "{err}");
        assert!(
            err.to_string().contains("\"sha256\" cannot be given"),
            "{err}"
        );
    }
}
