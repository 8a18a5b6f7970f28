//! `index:1.0` documents: the entry point of a stream, naming its products files.

use indexmap::IndexMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::safe_path::check_safe_path;
use crate::tree::{join, serialize_with_children, take_children, Ctx, Map};

/// The `format` of an index document.
pub const INDEX_FORMAT: &str = "index:1.0";

/// An `index:1.0` document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Index {
    /// Top-level fields other than `index` (`format`, `updated`, …).
    pub fields: Map,
    /// Entries by content id, in file order.
    pub index: IndexMap<String, IndexEntry>,
    index_pos: Option<usize>,
}

/// One entry of an index: a content id and where its products file is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IndexEntry {
    /// All fields (`path`, `format`, `datatype`, `updated`, `products`, `clouds`, `cloudname`, …).
    pub fields: Map,
}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        let mut fields = Map::new();
        fields.insert("format".into(), Value::String(INDEX_FORMAT.into()));
        Index {
            fields,
            index: IndexMap::new(),
            index_pos: None,
        }
    }

    /// Parses an index document. `file` names the source in errors.
    pub fn from_slice(bytes: &[u8], file: &str) -> Result<Index> {
        let ctx = Ctx { file };
        let map = ctx.parse_object(bytes)?;
        Index::from_map(map, file)
    }

    /// Builds an index from an already parsed JSON object.
    pub fn from_map(mut fields: Map, file: &str) -> Result<Index> {
        let ctx = Ctx { file };
        match ctx.opt_str(&fields, "format", "")? {
            Some(INDEX_FORMAT) => {}
            Some(other) => {
                return Err(ctx.field_err(
                    "format",
                    format!("expected {INDEX_FORMAT:?}, found {other:?}"),
                ))
            }
            None => return Err(ctx.field_err("format", "missing")),
        }
        let (children, index_pos) = take_children(&mut fields, "index");
        let children = match children {
            Some(c) => ctx.object(c, "index")?,
            None => return Err(ctx.field_err("index", "missing")),
        };
        let mut index = IndexMap::with_capacity(children.len());
        for (content_id, value) in children {
            let at = join("index", &content_id);
            let entry = ctx.object(value, &at)?;
            for key in ["path", "format", "datatype", "updated"] {
                ctx.opt_str(&entry, key, &at)?;
            }
            if let Some(Value::String(path)) = entry.get("path") {
                if let Err(Error::UnsafePath { reason, .. }) = check_safe_path(path) {
                    return Err(
                        ctx.field_err(join(&at, "path"), format!("unsafe path {path:?}: {reason}"))
                    );
                }
            }
            index.insert(content_id, IndexEntry { fields: entry });
        }
        Ok(Index {
            fields,
            index,
            index_pos,
        })
    }

    /// Serialises as pretty JSON (key order kept), with a final newline.
    pub fn to_vec_pretty(&self) -> Vec<u8> {
        crate::to_vec_pretty(self)
    }

    /// `updated`, if given.
    pub fn updated(&self) -> Option<&str> {
        self.fields.get("updated").and_then(Value::as_str)
    }
}

impl IndexEntry {
    /// A field as a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    /// `path` of the products (or nested index) file, relative to the mirror root.
    pub fn path(&self) -> Option<&str> {
        self.get_str("path")
    }

    /// `format` of the file named by `path`.
    pub fn format(&self) -> Option<&str> {
        self.get_str("format")
    }

    /// Whether a reader follows this entry (it has a path and names an index or products file).
    pub fn is_followed(&self) -> bool {
        self.path().is_some()
            && matches!(
                self.format(),
                Some(INDEX_FORMAT) | Some(crate::PRODUCTS_FORMAT)
            )
    }
}

impl Serialize for Index {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serialize_with_children(
            serializer,
            &self.fields,
            "index",
            &self.index,
            self.index_pos,
            self.index.is_empty(),
        )
    }
}

impl Serialize for IndexEntry {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        crate::tree::WireMap(&self.fields).serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        let doc = r#"{"index":{"com.example:download":{"datatype":"image-downloads","path":"streams/v1/download.json","format":"products:1.0","products":["a"]}},"updated":"x","format":"index:1.0"}"#;
        let idx = Index::from_slice(doc.as_bytes(), "i.json").unwrap();
        assert_eq!(serde_json::to_string(&idx).unwrap(), doc);
        let e = &idx.index["com.example:download"];
        assert!(e.is_followed());
        assert_eq!(e.path(), Some("streams/v1/download.json"));
    }

    #[test]
    fn missing_index_names_field() {
        let err = Index::from_slice(br#"{"format":"index:1.0"}"#, "i.json").unwrap_err();
        assert_eq!(err.to_string(), "i.json: index: missing");
    }
}
