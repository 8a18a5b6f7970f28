//! `mirrors:1.0` documents (Juju): alternative locations of the same content.

use serde::Serialize;
use serde_json::Value;

use crate::error::Result;
use crate::tree::{Ctx, Map};

/// The `format` of a mirrors document.
pub const MIRRORS_FORMAT: &str = "mirrors:1.0";

/// A `mirrors:1.0` document. Its layout (`mirrors: {content_id: [{datatype, path, clouds,
/// mirror}…]}`) is kept as JSON; accessors cover what readers need.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mirrors {
    /// All fields.
    pub fields: Map,
}

/// One mirror location of a content id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorLocation {
    /// Base URL of the mirror.
    pub mirror: String,
    /// Path of the metadata on that mirror, if given.
    pub path: Option<String>,
}

impl Mirrors {
    /// Parses a mirrors document.
    pub fn from_slice(bytes: &[u8], file: &str) -> Result<Mirrors> {
        let fields = Ctx { file }.parse_object(bytes)?;
        Mirrors::from_map(fields, file)
    }

    /// Builds a mirrors document from an already parsed JSON object.
    pub fn from_map(fields: Map, file: &str) -> Result<Mirrors> {
        let ctx = Ctx { file };
        match ctx.opt_str(&fields, "format", "")? {
            Some(MIRRORS_FORMAT) => {}
            Some(other) => {
                return Err(ctx.field_err(
                    "format",
                    format!("expected {MIRRORS_FORMAT:?}, found {other:?}"),
                ))
            }
            None => return Err(ctx.field_err("format", "missing")),
        }
        if let Some(m) = fields.get("mirrors") {
            if !m.is_object() {
                return Err(ctx.json_err("mirrors", "expected an object"));
            }
        }
        Ok(Mirrors { fields })
    }

    /// The mirror locations listed for `content_id`, in file order.
    pub fn locations(&self, content_id: &str) -> Vec<MirrorLocation> {
        let Some(Value::Array(list)) = self.fields.get("mirrors").and_then(|m| m.get(content_id))
        else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|entry| {
                let mirror = entry.get("mirror")?.as_str()?.to_string();
                let path = entry
                    .get("path")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                Some(MirrorLocation { mirror, path })
            })
            .collect()
    }
}

impl Serialize for Mirrors {
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
    fn lists_locations() {
        let doc = r#"{"format":"mirrors:1.0","mirrors":{"com.ubuntu.juju:released:tools":[{"datatype":"content-download","path":"streams/v1/tools_metadata:public-mirrors.sjson","mirror":"https://juju-dist.s3.amazonaws.com/tools"}]}}"#;
        let m = Mirrors::from_slice(doc.as_bytes(), "m.json").unwrap();
        let l = m.locations("com.ubuntu.juju:released:tools");
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].mirror, "https://juju-dist.s3.amazonaws.com/tools");
        assert!(m.locations("nope").is_empty());
    }
}
