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
//! map of extra fields), `path-template`, `sha512` (true/false). A key an image gives wins
//! over `defaults`, except `alias` and `field`, which add to them. Scalars are taken as
//! written (`version: 24.10` stays `"24.10"`). An unknown key, or an image without `file`,
//! is refused with its line.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::error::{Error, Result};
use crate::image::{NewImage, Placement};

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

/// Reads the manifest at `path`: images with files relative to its directory.
pub fn read_manifest(path: &Path) -> Result<Vec<NewImage>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse_manifest(&text, &path.display().to_string(), base)
}

/// Parses a manifest's text; `name` names it in errors, `base` is where relative files are.
pub fn parse_manifest(text: &str, name: &str, base: &Path) -> Result<Vec<NewImage>> {
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
            to_image(&defaults, entry.value, base).map_err(|message| Error::Manifest {
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
