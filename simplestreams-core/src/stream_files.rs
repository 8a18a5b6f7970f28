//! The files a published metadata document is made of, and how they are named: `X.json` for
//! clients that read only JSON (LXD, Incus), `X.sjson` clear-signed for those that verify
//! (Juju, the reference, MAAS), and `X.json.gpg`, a detached signature of `X.json` (MAAS).
//! An index comes in two versions: its `.json` names `.json` products files and its `.sjson`
//! names `.sjson` ones, so that a signed index never leads to unsigned files.

use serde_json::Value;

use crate::error::Result;
use crate::index::Index;
use crate::openpgp::{clearsign, sign_detached, verify_clearsigned, verify_detached, SigningKey};

/// `X.json` for `X.json` or `X.sjson` (any other path is returned as it is).
pub fn json_path(path: &str) -> String {
    match path.strip_suffix(".sjson") {
        Some(stem) => format!("{stem}.json"),
        None => path.to_string(),
    }
}

/// `X.sjson` for `X.json` or `X.sjson` (any other path is returned as it is).
pub fn sjson_path(path: &str) -> String {
    match path.strip_suffix(".json") {
        Some(stem) => format!("{stem}.sjson"),
        None => path.to_string(),
    }
}

/// `X.json.gpg`, the detached signature of `X.json`, for `X.json` or `X.sjson`.
pub fn detached_path(path: &str) -> String {
    format!("{}.gpg", json_path(path))
}

/// The index with every entry's `path` pointing at the signed (`.sjson`) or unsigned (`.json`)
/// version of its products file.
pub fn index_for(index: &Index, signed: bool) -> Index {
    let mut out = index.clone();
    for entry in out.index.values_mut() {
        if let Some(Value::String(p)) = entry.fields.get_mut("path") {
            *p = if signed { sjson_path(p) } else { json_path(p) };
        }
    }
    out
}

/// The files of one document, signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFiles {
    /// `X.json`: the document (an index naming `.json` files).
    pub json: Vec<u8>,
    /// `X.sjson`: the document clear-signed (an index naming `.sjson` files).
    pub sjson: Vec<u8>,
    /// `X.json.gpg`: an armored detached signature of `X.json`.
    pub detached: Vec<u8>,
}

/// The texts of one document before signing: what `X.json` holds, and what `X.sjson` signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentTexts {
    /// `X.json`: the document (an index naming `.json` files).
    pub json: Vec<u8>,
    /// The text `X.sjson` signs when it differs from `json` (an index naming `.sjson` files);
    /// `None` for any other document, whose megabytes are then held once.
    signed_text: Option<Vec<u8>>,
}

impl DocumentTexts {
    /// The texts of a document given as its JSON: an index (`format: index:1.0`) gets its two
    /// versions (see the module), the `.json` one byte for byte as given when its paths
    /// already name `.json` files; any other document is used as it is. Invalid JSON is an
    /// error (a broken document is never published). `file` names it in errors.
    pub fn of(json: &[u8], file: &str) -> Result<DocumentTexts> {
        Ok(match index_of(json, file)? {
            Some(index) => {
                let unsigned = index_for(&index, false);
                DocumentTexts {
                    json: if unsigned == index {
                        json.to_vec()
                    } else {
                        unsigned.to_vec_pretty()
                    },
                    signed_text: Some(index_for(&index, true).to_vec_pretty()),
                }
            }
            None => DocumentTexts {
                json: json.to_vec(),
                signed_text: None,
            },
        })
    }

    /// The texts of a products (or any non-index) document, as it is: no parse, for writers
    /// that made the document themselves (a large products file parsed again only to learn
    /// that it is not an index costs more than writing it).
    pub fn products(json: Vec<u8>) -> DocumentTexts {
        DocumentTexts {
            json,
            signed_text: None,
        }
    }

    /// The text `X.sjson` signs (an index naming `.sjson` files; else the same as `json`).
    pub fn signed_text(&self) -> &[u8] {
        self.signed_text.as_deref().unwrap_or(&self.json)
    }

    /// Signs them. Both signatures are checked against the key before they are returned, so
    /// a broken signer never publishes. `file` names the document in errors.
    pub fn sign(self, key: &SigningKey, file: &str) -> Result<SignedFiles> {
        let sjson = clearsign(self.signed_text(), key)?;
        let detached = sign_detached(&self.json, key)?;
        verify_clearsigned(&sjson, key.public_keyring(), &sjson_path(file))?;
        verify_detached(
            &self.json,
            &detached,
            key.public_keyring(),
            &json_path(file),
        )?;
        Ok(SignedFiles {
            json: self.json,
            sjson,
            detached,
        })
    }
}

/// Signs one document given as its JSON: [`DocumentTexts::of`], then [`DocumentTexts::sign`].
pub fn sign_document(json: &[u8], key: &SigningKey, file: &str) -> Result<SignedFiles> {
    DocumentTexts::of(json, file)?.sign(key, file)
}

/// The document parsed as an index when it is one; any JSON object that is not an index is
/// `None`; invalid JSON is an error (a broken document is never signed).
pub fn index_of(json: &[u8], file: &str) -> Result<Option<Index>> {
    let map = crate::tree::Ctx { file }.parse_object(json)?;
    match map.get("format").and_then(Value::as_str) {
        Some(crate::index::INDEX_FORMAT) => Ok(Some(Index::from_map(map, file)?)),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_switch_between_json_and_sjson() {
        assert_eq!(json_path("streams/v1/a.sjson"), "streams/v1/a.json");
        assert_eq!(json_path("streams/v1/a.json"), "streams/v1/a.json");
        assert_eq!(sjson_path("streams/v1/a.json"), "streams/v1/a.sjson");
        assert_eq!(sjson_path("streams/v1/a.sjson"), "streams/v1/a.sjson");
        assert_eq!(detached_path("streams/v1/a.sjson"), "streams/v1/a.json.gpg");
        assert_eq!(json_path("other.txt"), "other.txt");
    }

    #[test]
    fn an_index_names_the_files_of_its_own_kind() {
        let index = Index::from_slice(
            br#"{"format": "index:1.0", "index": {
              "a": {"format": "products:1.0", "path": "streams/v1/a.sjson"},
              "b": {"format": "products:1.0", "path": "streams/v1/b.json"}}}"#,
            "index.json",
        )
        .expect("index");
        let paths = |i: &Index| -> Vec<String> {
            i.index
                .values()
                .filter_map(|e| e.path().map(str::to_string))
                .collect()
        };
        assert_eq!(
            paths(&index_for(&index, false)),
            ["streams/v1/a.json", "streams/v1/b.json"]
        );
        assert_eq!(
            paths(&index_for(&index, true)),
            ["streams/v1/a.sjson", "streams/v1/b.sjson"]
        );
    }

    #[test]
    fn broken_json_is_never_signed() {
        assert!(index_of(b"{\"format\": ", "x.json").is_err());
        assert!(index_of(br#"{"format": "products:1.0"}"#, "x.json")
            .expect("object")
            .is_none());
    }
}
