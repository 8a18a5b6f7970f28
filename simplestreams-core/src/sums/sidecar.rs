//! Optional metadata beside an image: `<image>.properties` (`key=value` lines) or
//! `<image>.json` (a flat JSON object), merged into the item's fields. What the checksum file
//! and the listing establish (`path`, `size`, the checksums) and what names the item's place in
//! the stream cannot be overridden: such a key is refused, naming the file and the key.

use serde_json::Value;

use crate::tree::Map;

use super::error::SumsError;

/// The sidecar suffixes, in the order they are looked for.
pub const SIDECAR_SUFFIXES: [&str; 2] = [".properties", ".json"];

/// Keys a sidecar may not set.
pub const RESERVED_KEYS: &[&str] = &[
    "path",
    "size",
    "md5",
    "sha256",
    "sha512",
    "sha1",
    "product_name",
    "version_name",
    "item_name",
    "content_id",
    "format",
    "datatype",
];

/// The image a sidecar file name belongs to (`a.qcow2.properties` → `a.qcow2`), if it is one.
pub fn sidecar_of(name: &str) -> Option<&str> {
    SIDECAR_SUFFIXES
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .filter(|image| !image.is_empty())
}

/// Reads a sidecar: `.properties` or `.json` by `file`'s name.
pub fn parse_sidecar(bytes: &[u8], file: &str) -> Result<Map, SumsError> {
    if file.ends_with(".json") {
        parse_json_sidecar(bytes, file)
    } else {
        parse_properties(bytes, file)
    }
}

/// `key=value` lines (`key: value` and `key = value` too); `#` and `!` comments, blank lines.
pub fn parse_properties(bytes: &[u8], file: &str) -> Result<Map, SumsError> {
    let mut out = Map::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let err = |message: String| SumsError::Line {
            file: file.to_string(),
            line: i + 1,
            message,
        };
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw).map_err(|_| err("not UTF-8 text".into()))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((key, value)) = line.split_once(['=', ':']) else {
            return Err(err(format!("{line:?} is not key=value")));
        };
        let key = key.trim();
        check_key(key).map_err(err)?;
        out.insert(key.to_string(), Value::String(value.trim().to_string()));
    }
    Ok(out)
}

/// A flat JSON object: values strings, numbers or booleans.
pub fn parse_json_sidecar(bytes: &[u8], file: &str) -> Result<Map, SumsError> {
    let err = |message: String| SumsError::Sidecar {
        file: file.to_string(),
        message,
    };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| err(format!("not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(err("not a JSON object".into()));
    };
    for (k, v) in &map {
        check_key(k).map_err(err)?;
        if !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
            return Err(err(format!(
                "key {k:?}: only strings, numbers and booleans are fields of an item"
            )));
        }
    }
    Ok(map)
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(format!(
            "key {key:?}: keys are letters, digits, '_', '-' and '.'"
        ));
    }
    Ok(())
}

/// Merges a sidecar's fields into an item's, refusing [`RESERVED_KEYS`] with the file and the
/// key named. Other keys override what the layout gave (`os`, `arch`, …) or add new fields.
pub fn merge_sidecar(fields: &mut Map, sidecar: &Map, file: &str) -> Result<(), SumsError> {
    if let Some(key) = sidecar.keys().find(|k| RESERVED_KEYS.contains(&k.as_str())) {
        return Err(SumsError::Sidecar {
            file: file.to_string(),
            message: format!(
                "key {key:?} may not be set here: the item's path, size and checksums come from \
                 the checksum file and the listing, and its place in the stream from the layout"
            ),
        });
    }
    for (k, v) in sidecar {
        fields.insert(k.clone(), v.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_and_json_read_the_same_and_reserved_keys_are_refused() {
        let p = parse_properties(
            b"# c\nos = centos\nrelease: 9\n\nlabel=a=b\n",
            "x.properties",
        )
        .expect("properties");
        assert_eq!(p["os"], "centos");
        assert_eq!(p["release"], "9");
        assert_eq!(p["label"], "a=b");
        let j = parse_json_sidecar(br#"{"os": "centos", "min_ram": 512}"#, "x.json").expect("json");
        assert_eq!(j["min_ram"], 512);
        let err = parse_json_sidecar(br#"{"tags": ["a"]}"#, "x.json").expect_err("nested");
        assert!(err.to_string().contains("\"tags\""), "{err}");
        let err = parse_properties(b"os centos\n", "x.properties").expect_err("no =");
        assert!(err.to_string().starts_with("x.properties:1:"), "{err}");
        let mut fields = Map::new();
        let bad = parse_properties(b"sha256=00\n", "i.properties").expect("parses");
        let err = merge_sidecar(&mut fields, &bad, "i.properties").expect_err("reserved");
        assert!(
            err.to_string().contains("i.properties: key \"sha256\""),
            "{err}"
        );
        assert_eq!(sidecar_of("a.qcow2.json"), Some("a.qcow2"));
        assert_eq!(sidecar_of(".json"), None);
    }
}
