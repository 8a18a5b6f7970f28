//! Helpers shared by the typed documents: an ordered JSON object whose child collection
//! (`products`, `versions`, `items`, `index`) is held apart but serialised back in its place.

use serde::ser::Serializer;
use serde_json::Value;

use crate::error::Error;
pub(crate) use crate::kept::WireMap;
use crate::kept::{self, Entry, Named};

/// An ordered JSON object (insertion order is kept: `serde_json` is built with `preserve_order`).
pub type Map = serde_json::Map<String, Value>;

/// Takes the child collection `key` out of `fields`, remembering where it stood so that
/// serialising puts it back there (a lossless round trip keeps key order).
pub(crate) fn take_children(fields: &mut Map, key: &str) -> (Option<Value>, Option<usize>) {
    match fields.keys().position(|k| k == key) {
        Some(pos) => (fields.shift_remove(key), Some(pos)),
        None => (None, None),
    }
}

/// Serialises `fields` with `children` (under `key`) re-inserted at `pos` (or at the end).
/// A child collection that was absent and is still empty stays absent (a lossless round trip).
/// Values kept in marked strings (`kept.rs`) are written back as the tokens they were read from.
pub(crate) fn serialize_with_children<S, C>(
    serializer: S,
    fields: &Map,
    key: &str,
    children: &indexmap::IndexMap<String, C>,
    pos: Option<usize>,
    children_empty: bool,
) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    C: serde::Serialize,
{
    let children = Named(children);
    let entries = members(fields, key, &children, pos, children_empty);
    kept::serialize_object(serializer, entries.iter().copied())
}

/// The members of an object written with its child collection: `fields` with `children` (under
/// `key`) at `pos` (or at the end), or left out when it was absent and is still empty.
pub(crate) fn members<'a, C>(
    fields: &'a Map,
    key: &'a str,
    children: &'a C,
    pos: Option<usize>,
    children_empty: bool,
) -> Vec<(&'a str, Entry<'a, C>)> {
    let mut entries: Vec<(&str, Entry<'_, C>)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), Entry::Json(v)))
        .collect();
    if pos.is_some() || !children_empty {
        let pos = pos.unwrap_or(fields.len()).min(fields.len());
        entries.insert(pos, (key, Entry::Child(children)));
    }
    entries
}

/// Context for errors while converting a parsed `Value` into the typed model.
pub(crate) struct Ctx<'a> {
    pub file: &'a str,
}

impl Ctx<'_> {
    pub fn json_err(&self, json_path: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Json {
            file: self.file.to_string(),
            json_path: json_path.into(),
            message: message.into(),
        }
    }

    pub fn field_err(&self, json_path: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Field {
            file: self.file.to_string(),
            json_path: json_path.into(),
            message: message.into(),
        }
    }

    /// Parses bytes as a JSON object, reporting syntax errors with line and column.
    ///
    /// Reads what Python's `json` reads: numbers beyond `f64`, integers beyond 64 bits and lone
    /// surrogates are kept in marked strings (see `kept.rs`); only documents holding them pay a
    /// second pass.
    pub fn parse_object(&self, bytes: &[u8]) -> Result<Map, Error> {
        let parsed = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) if !kept::needs_lenient(&map) => return Ok(map),
            Ok(value) => match kept::rewrite(bytes) {
                Some(rewritten) => serde_json::from_slice::<Value>(&rewritten),
                // A float such as `1e19` rather than an integer token: nothing to rewrite.
                None => Ok(value),
            },
            Err(e) => match kept::rewrite(bytes) {
                Some(rewritten) => serde_json::from_slice::<Value>(&rewritten),
                None => Err(e),
            },
        };
        match parsed {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(self.json_err(
                "(document)",
                format!("expected an object, found {}", kind_of(&other)),
            )),
            Err(e) => Err(self.json_err("(document)", format!("invalid JSON: {e}"))),
        }
    }

    /// Requires `value` to be an object.
    pub fn object(&self, value: Value, json_path: &str) -> Result<Map, Error> {
        match value {
            Value::Object(map) => Ok(map),
            other => Err(self.json_err(
                json_path,
                format!("expected an object, found {}", kind_of(&other)),
            )),
        }
    }

    /// Requires an optional string field to be a string when present.
    pub fn opt_str<'m>(
        &self,
        fields: &'m Map,
        key: &str,
        parent: &str,
    ) -> Result<Option<&'m str>, Error> {
        match fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !kept::is_kept(s) => Ok(Some(s)),
            Some(other) => Err(self.json_err(
                join(parent, key),
                format!("expected a string, found {}", kind_of(other)),
            )),
        }
    }
}

/// Joins a dotted JSON path.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Names a JSON value's type for error messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(s) => kept::kind(s).unwrap_or("a string"),
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The string form the reference gives a scalar (Python `str()` of the JSON value): strings as
/// they are, integers in decimal, floats like Python's `repr`, booleans `True`/`False`. A number
/// beyond `f64` gives `inf` or `-inf`, an integer beyond 64 bits its exact digits; a string with
/// a lone surrogate keeps its marked form, which printers decode with [`crate::py_chars`].
/// Lists, objects and null are not scalars and return `None`: they never inherit.
pub fn scalar_string(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    match v {
        Value::String(s) => Some(kept::string_scalar(s)),
        Value::Bool(true) => Some(Cow::Borrowed("True")),
        Value::Bool(false) => Some(Cow::Borrowed("False")),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(Cow::Owned(i.to_string()))
            } else if let Some(u) = n.as_u64() {
                Some(Cow::Owned(u.to_string()))
            } else {
                n.as_f64().map(|f| Cow::Owned(python_float_repr(f)))
            }
        }
        _ => None,
    }
}

/// Python's `repr(float)`: shortest round-trip digits, exponent form outside 1e-4 <= |x| < 1e16.
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let abs = f.abs();
    if (1e-4..1e16).contains(&abs) {
        let s = format!("{f}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        // Rust's `{:e}` gives the shortest digits too ("1e16", "1.5e-5"); Python writes "1e+16",
        // "1.5e-05": a sign and at least two exponent digits.
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        format!("{mantissa}e{sign}{digits:0>2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python() {
        assert_eq!(python_float_repr(1.5), "1.5");
        assert_eq!(python_float_repr(2.0), "2.0");
        assert_eq!(python_float_repr(1e16), "1e+16");
        assert_eq!(python_float_repr(1.5e-5), "1.5e-05");
        assert_eq!(python_float_repr(0.0001), "0.0001");
        assert_eq!(python_float_repr(123456789.125), "123456789.125");
    }

    #[test]
    fn scalars_stringify_like_python() {
        assert_eq!(scalar_string(&serde_json::json!(60)).as_deref(), Some("60"));
        assert_eq!(
            scalar_string(&serde_json::json!(true)).as_deref(),
            Some("True")
        );
        assert_eq!(scalar_string(&serde_json::json!("x")).as_deref(), Some("x"));
        assert_eq!(scalar_string(&serde_json::json!([1])), None);
        assert_eq!(scalar_string(&serde_json::json!(null)), None);
    }
}
