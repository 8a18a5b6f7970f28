//! How the Python reference writes JSON strings, for output that must match it byte for byte
//! (`sstream-query --json`, Glance's `simplestreams_metadata` property).

use std::fmt::Write as _;

/// Appends `s` as a JSON string the way Python's `json.dumps` writes it by default
/// (`ensure_ascii=True`): printable ASCII as is, the usual short escapes, everything else as
/// `\uXXXX` (surrogate pairs above U+FFFF). A kept string ([`crate::py_chars`]) is written
/// with its lone surrogates as `\udXXX`, as Python writes them.
///
/// ```
/// let mut out = String::new();
/// simplestreams_core::write_python_json_string(&mut out, "café \"x\"");
/// assert_eq!(out, r#""caf\u00e9 \"x\"""#);
/// ```
pub fn write_python_json_string(out: &mut String, s: &str) {
    out.push('"');
    if crate::is_kept(s) {
        for c in crate::py_chars(s) {
            match c {
                crate::PyChar::Char(c) => push_char(out, c),
                // Writing to a String cannot fail.
                crate::PyChar::Surrogate(u) => {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    } else {
        for c in s.chars() {
            push_char(out, c);
        }
    }
    out.push('"');
}

fn push_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{08}' => out.push_str("\\b"),
        '\u{0c}' => out.push_str("\\f"),
        ' '..='~' => out.push(c),
        c => {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
}
