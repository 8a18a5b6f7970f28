//! The reference's `json2streams` input: a JSON list of flat items, each with `content_id`,
//! `product_name`, `version_name`, `item_name`, `path` and any other fields, turned into
//! [`NewImage`]s.
//!
//! As the reference does, `item_url` is dropped, `size` may be a number or a numeric string,
//! every other key stays on the item, and no `ftype` is invented (items say what they are).
//! The item's `path` is where its file goes in the repository, and where its local file is
//! looked for, relative to the JSON file's directory (or a base directory given):
//!
//! - the local file exists: it is copied into the repository at `path`, hashed while copied;
//!   a `size`, `sha256`, `md5` or `sha512` the item gives must match it;
//! - it does not, and the item gives its `size` and a checksum: the item is published as
//!   described, nothing copied (the reference never reads files: it writes metadata for
//!   files already in place); `validate` then checks the file at `path`;
//! - else the item is refused, naming it.
//!
//! Differences from the reference: a products file this creates has datatype
//! `image-downloads` (what LXD and MAAS read; the reference writes `content-download`), and
//! `--juju-format` file naming is not offered.

use std::path::Path;

use serde_json::Value;
use simplestreams_core::{parse_size, Expected, Map};

use crate::error::{Error, Result};
use crate::image::{ImageSource, NewImage, Placement};

/// Reads a flat item list; local files are looked for relative to `base` (default: the
/// JSON file's directory).
pub fn read_json2streams(path: &Path, base: Option<&Path>) -> Result<Vec<NewImage>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let base = base.unwrap_or_else(|| path.parent().unwrap_or(Path::new(".")));
    parse_json2streams(&bytes, &path.display().to_string(), base)
}

/// Parses a flat item list (see the module); `name` names it in errors.
pub fn parse_json2streams(bytes: &[u8], name: &str, base: &Path) -> Result<Vec<NewImage>> {
    let err = |line: usize, message: String| Error::Manifest {
        file: name.to_string(),
        line,
        message,
    };
    let items: Vec<Value> = serde_json::from_slice(bytes)
        .map_err(|e| err(e.line(), format!("not a JSON list of items: {e}")))?;
    let mut out = Vec::with_capacity(items.len());
    for (n, item) in items.into_iter().enumerate() {
        // Errors name the item by its number (1-based) in the list.
        let at = |message: String| Error::Manifest {
            file: format!("{name} item"),
            line: n + 1,
            message,
        };
        let Value::Object(mut fields) = item else {
            return Err(at("not an object".into()));
        };
        let take = |fields: &mut Map, key: &str| take_str(fields, key).map_err(at);
        let required = |fields: &mut Map, key: &str| {
            take_str(fields, key)
                .map_err(at)?
                .filter(|v| !v.is_empty())
                .ok_or_else(|| at(format!("missing field `{key}`")))
        };
        let content_id = required(&mut fields, "content_id")?;
        let product = required(&mut fields, "product_name")?;
        let version = required(&mut fields, "version_name")?;
        let item_name = required(&mut fields, "item_name")?;
        let path = required(&mut fields, "path")?;
        take(&mut fields, "item_url")?;
        let ftype = take(&mut fields, "ftype")?;
        let size = match fields.shift_remove("size") {
            None => None,
            Some(v) => Some(parse_size(&v).map_err(|m| at(format!("size: {m}")))?),
        };
        let lower = |s: Option<String>| s.map(|s| s.to_ascii_lowercase());
        let expected = Expected {
            size,
            md5: lower(take(&mut fields, "md5")?),
            sha256: lower(take(&mut fields, "sha256")?),
            sha512: lower(take(&mut fields, "sha512")?),
        };
        let local = base.join(&path);
        let source = if local.is_file() {
            ImageSource::File(local)
        } else if expected.size.is_some() && !expected.kinds().is_empty() {
            ImageSource::Described
        } else {
            return Err(at(format!(
                "{path}: no file at {} and no size and checksum to publish it as described",
                local.display()
            )));
        };
        let sha512 = expected.sha512.is_some();
        let mut image = NewImage::file("");
        image.source = source;
        image.content_id = Some(content_id);
        image.product_id = Some(product);
        image.version_name = Some(version);
        image.item_name = Some(item_name);
        image.ftype = ftype;
        image.infer_ftype = false;
        image.placement = Placement::Exact(path);
        image.expected = expected;
        image.sha512 = sha512;
        image.fields = std::mem::replace(&mut fields, Map::new());
        image.check_fields().map_err(|e| at(e.to_string()))?;
        out.push(image);
    }
    Ok(out)
}

/// Takes a scalar field as a string.
fn take_str(fields: &mut Map, key: &str) -> std::result::Result<Option<String>, String> {
    match fields.shift_remove(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => simplestreams_core::scalar_string(&other)
            .map(|s| Some(s.into_owned()))
            .ok_or_else(|| format!("{key}: expected a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_items_become_images() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("files")).unwrap();
        std::fs::write(dir.path().join("files/a.txt"), "hello").unwrap();
        let text = r#"[
          {"content_id": "c", "product_name": "p", "version_name": "1", "item_name": "a",
           "path": "files/a.txt", "item_url": "http://x", "arch": "amd64", "ftype": "text"},
          {"content_id": "c", "product_name": "p", "version_name": "1", "item_name": "b",
           "path": "files/b.txt", "size": "27", "sha256": "AB", "count": 3}
        ]"#;
        let images = parse_json2streams(text.as_bytes(), "items.json", dir.path()).unwrap();
        assert_eq!(
            images[0].source,
            ImageSource::File(dir.path().join("files/a.txt"))
        );
        assert_eq!(images[0].ftype.as_deref(), Some("text"));
        assert!(!images[0].fields.contains_key("item_url"));
        assert_eq!(images[0].fields["arch"], "amd64");
        assert_eq!(images[1].source, ImageSource::Described);
        assert_eq!(images[1].expected.size, Some(27));
        assert_eq!(images[1].expected.sha256.as_deref(), Some("ab"));
        assert_eq!(images[1].fields["count"], 3, "other values as given");
        assert_eq!(images[1].placement, Placement::Exact("files/b.txt".into()));
    }

    #[test]
    fn items_without_a_file_or_a_description_are_refused_by_number() {
        let text = r#"[{"content_id": "c", "product_name": "p", "version_name": "1",
            "item_name": "a", "path": "nowhere.img"},
            {"content_id": "c"}]"#;
        let err = parse_json2streams(text.as_bytes(), "i.json", Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("i.json item:1: nowhere.img: no file"),
            "{err}"
        );
        let text = r#"[{"content_id": "c"}]"#;
        let err = parse_json2streams(text.as_bytes(), "i.json", Path::new("/"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "i.json item:1: missing field `product_name`");
    }
}
