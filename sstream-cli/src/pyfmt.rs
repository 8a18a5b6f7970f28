//! Output exactly as the Python reference prints it, so scripts that parse `sstream-query`
//! output keep working: `repr()` of a dict (default), `pprint.pprint` (`--pretty`),
//! `json.dumps(indent=2, sort_keys=True)` (`--json`) and `%`-templates (`-o`).
//!
//! Written by hand because no crate reproduces CPython's formatting rules; each function cites
//! the CPython behaviour it follows.

use std::borrow::Cow;
use std::fmt::Write as _;

use simplestreams_core::{
    is_kept, lossy_text, py_chars, write_python_json_string, PyChar, KEPT_TEXT_PREFIX,
};

/// A flattened item: ordered (key, value) string pairs.
pub type Pairs<'a> = [(&'a str, Cow<'a, str>)];

/// `repr(str)`: single quotes unless the string holds `'` and no `"`; backslash escapes for
/// the quote, `\\`, `\t`, `\n`, `\r`, and `\xhh`/`\uhhhh`/`\Uhhhhhhhh` for non-printable characters.
pub fn repr_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_repr_str(&mut out, s);
    out
}

/// Appends `repr(s)` to `out`.
fn push_repr_str(out: &mut String, s: &str) {
    // Fast path: printable ASCII without quotes or backslashes, the usual case (a branch-free
    // test the compiler vectorises; this runs for every key and value printed).
    let plain = s.bytes().fold(true, |acc, b| {
        acc & (b' '..=b'~').contains(&b) & (b != b'\'') & (b != b'\\')
    });
    if plain {
        out.push('\'');
        out.push_str(s);
        out.push('\'');
        return;
    }
    out.push_str(&repr_escaped(s));
}

/// `repr(s)` for strings that need quotes chosen or characters escaped. A string the model keeps
/// marked (lone surrogates, see `simplestreams_core::py_chars`) is decoded: a lone surrogate is
/// not printable, so Python writes it `\ud800`.
fn repr_escaped(s: &str) -> String {
    let text = lossy_text(s);
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in py_chars(s) {
        let c = match c {
            PyChar::Char(c) => c,
            PyChar::Surrogate(u) => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{u:04x}");
                continue;
            }
        };
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c => {
                let n = c as u32;
                // Writing to a String cannot fail.
                let _ = if n < 0x100 {
                    write!(out, "\\x{n:02x}")
                } else if n < 0x10000 {
                    write!(out, "\\u{n:04x}")
                } else {
                    write!(out, "\\U{n:08x}")
                };
            }
        }
    }
    out.push(quote);
    out
}

/// An approximation of Python's `str.isprintable` for one character: control characters,
/// unassigned/format/separator characters other than the ASCII space are not printable.
fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    // Format characters and private use areas commonly met; the rest of Unicode prints as is.
    // Noncharacters (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF) are unassigned: not printable either.
    match c as u32 {
        0xAD | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x2064 | 0xFEFF => false,
        0xE000..=0xF8FF | 0xFDD0..=0xFDEF => false,
        n => n & 0xFFFE != 0xFFFE,
    }
}

/// `repr(dict)` of string pairs in the given order: `{'k': 'v', 'k2': 'v2'}`.
pub fn repr_dict(pairs: &Pairs<'_>) -> String {
    let mut out = String::with_capacity(64 * pairs.len());
    out.push('{');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_repr_str(&mut out, k);
        out.push_str(": ");
        push_repr_str(&mut out, v);
    }
    out.push('}');
    out
}

fn sorted<'p, 'a>(pairs: &'p Pairs<'a>) -> Vec<&'p (&'a str, Cow<'a, str>)> {
    let mut v: Vec<_> = pairs.iter().collect();
    // Python sorts str by code point, which is UTF-8 byte order.
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

const PPRINT_WIDTH: usize = 80;

/// `pprint.pprint(dict)` with the defaults (width 80, sorted keys), plus the newline.
pub fn pprint_dict(pairs: &Pairs<'_>) -> String {
    let items = sorted(pairs);
    let one_line = {
        let owned: Vec<(&str, Cow<'_, str>)> = items
            .iter()
            .map(|(k, v)| (*k, Cow::Borrowed(v.as_ref())))
            .collect();
        repr_dict(&owned)
    };
    if one_line.chars().count() <= PPRINT_WIDTH {
        return one_line + "\n";
    }
    // PrettyPrinter._pprint_dict / _format_dict_items: one entry per line, indent 1.
    let mut out = String::from("{");
    let last = items.len().saturating_sub(1);
    for (i, (k, v)) in items.iter().enumerate() {
        let key = repr_str(k);
        out.push_str(&key);
        out.push_str(": ");
        let indent = 1 + key.chars().count() + 2;
        // The closing brace counts against the last entry's width.
        let allowance = if i == last { 2 } else { 1 };
        out.push_str(&pprint_str(v, indent, allowance));
        if i != last {
            out.push_str(",\n ");
        }
    }
    out.push_str("}\n");
    out
}

/// PrettyPrinter._format + _pprint_str for a string value nested in a dict (level 2): if its
/// repr does not fit, it is split into chunks at whitespace, one per line, aligned at `indent`.
fn pprint_str(s: &str, indent: usize, allowance: usize) -> String {
    let rep = repr_str(s);
    if rep.chars().count() <= PPRINT_WIDTH.saturating_sub(indent + allowance) || s.is_empty() {
        return rep;
    }
    // A kept string (lone surrogates) is split on its text, each part marked again: its escapes
    // hold no whitespace or line break, so no split falls inside one.
    let (prefix, s) = match s.strip_prefix(KEPT_TEXT_PREFIX) {
        Some(text) => (KEPT_TEXT_PREFIX, text),
        None => ("", s),
    };
    let repr_str = |x: &str| {
        if prefix.is_empty() {
            repr_str(x)
        } else {
            repr_str(&format!("{prefix}{x}"))
        }
    };
    let width = |x: &str| repr_str(x).chars().count();
    let max_width = PPRINT_WIDTH.saturating_sub(indent);
    let lines = split_lines_keepends(s);
    let mut chunks: Vec<String> = Vec::new();
    let mut last_rep = String::new();
    for (i, line) in lines.iter().enumerate() {
        let is_last_line = i + 1 == lines.len();
        let rep = repr_str(line);
        let max_width1 = if is_last_line {
            max_width.saturating_sub(allowance)
        } else {
            max_width
        };
        if rep.chars().count() <= max_width1 {
            chunks.push(rep.clone());
        } else {
            let parts = split_words(line);
            let mut max_width2 = max_width;
            let mut current = String::new();
            for (j, part) in parts.iter().enumerate() {
                let candidate = format!("{current}{part}");
                if j + 1 == parts.len() && is_last_line {
                    max_width2 = max_width2.saturating_sub(allowance);
                }
                if width(&candidate) > max_width2 {
                    if !current.is_empty() {
                        chunks.push(repr_str(&current));
                    }
                    current = part.to_string();
                } else {
                    current = candidate;
                }
            }
            if !current.is_empty() {
                chunks.push(repr_str(&current));
            }
        }
        last_rep = rep;
    }
    if chunks.len() == 1 {
        // CPython writes the last line's repr here, not the chunk.
        return last_rep;
    }
    chunks.join(&format!("\n{}", " ".repeat(indent)))
}

/// Python whitespace for `\s` on str: Unicode whitespace plus the ASCII separators 0x1c..0x1f.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `re.findall(r'\S*\s*', line)` without the final empty match.
fn split_words(line: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && !is_py_space(chars[i].1) {
            i += 1;
        }
        while i < chars.len() && is_py_space(chars[i].1) {
            i += 1;
        }
        let end = chars.get(i).map(|c| c.0).unwrap_or(line.len());
        parts.push(&line[start..end]);
        start = end;
    }
    parts
}

/// `str.splitlines(keepends=True)`.
fn split_lines_keepends(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut iter = s.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{0b}'
                | '\u{0c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if is_break {
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(j, '\n')) = iter.peek() {
                    end = j + 1;
                    iter.next();
                }
            }
            out.push(&s[start..end]);
            start = end;
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// `json.dumps(list_of_dicts, indent=2, sort_keys=True, separators=(',', ': '))`.
pub fn json_dumps(items: &[Vec<(&str, Cow<'_, str>)>]) -> String {
    if items.is_empty() {
        return "[]".into();
    }
    let mut out = String::from("[\n");
    for (i, item) in items.iter().enumerate() {
        if item.is_empty() {
            out.push_str("  {}");
        } else {
            out.push_str("  {\n");
            let fields = sorted(item);
            for (j, (k, v)) in fields.iter().enumerate() {
                out.push_str("    ");
                write_python_json_string(&mut out, k);
                out.push_str(": ");
                write_python_json_string(&mut out, v);
                if j + 1 < fields.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            out.push_str("  }");
        }
        if i + 1 < items.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push(']');
    out
}

/// Why a `%`-template could not be applied to an item.
#[derive(Debug, PartialEq, Eq)]
pub enum TemplateError {
    /// `%(key)s` named a key the item lacks (the reference prints a message and skips the item).
    MissingKey(String),
    /// The template itself is malformed or uses an unsupported conversion.
    Bad(String),
}

/// Python `template % item` for the conversions meaningful on string values: `%(key)s`,
/// `%(key)r`, a bare `%s`/`%r` (the whole item, as `repr(dict)`) and `%%`.
pub fn percent_format(template: &str, pairs: &Pairs<'_>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos + 1..];
        let (value, after): (Option<String>, &str) = if let Some(r) = rest.strip_prefix('(') {
            let Some(close) = r.find(')') else {
                return Err(TemplateError::Bad("incomplete format key".into()));
            };
            let key = &r[..close];
            let value = pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_ref());
            let Some(value) = value else {
                return Err(TemplateError::MissingKey(key.to_string()));
            };
            (Some(value.to_string()), &r[close + 1..])
        } else {
            (None, rest)
        };
        // Conversion flags and width ("%-20(key)s" is not valid Python; "%(key)-20s" is).
        let spec_len = after
            .find(|c: char| !matches!(c, '-' | '+' | ' ' | '#' | '0'..='9' | '.'))
            .unwrap_or(after.len());
        let spec = &after[..spec_len];
        let Some(conv) = after[spec_len..].chars().next() else {
            return Err(TemplateError::Bad("incomplete format".into()));
        };
        rest = &after[spec_len + conv.len_utf8()..];
        let text = match (conv, value) {
            ('%', None) if spec.is_empty() => "%".to_string(),
            ('s', Some(v)) => py_str(v),
            ('r', Some(v)) => repr_str(&v),
            ('s', None) | ('r', None) => repr_dict(pairs),
            (c, _) => {
                return Err(TemplateError::Bad(format!(
                    "unsupported format character '{c}'"
                )))
            }
        };
        out.push_str(&pad(&text, spec));
    }
    out.push_str(rest);
    Ok(out)
}

/// `%s` of a value: itself, or for a kept string (lone surrogates) its text with each lone
/// surrogate written `\udXXX` (Python's `backslashreplace`; the reference itself stops with a
/// `UnicodeEncodeError` when it prints one).
fn py_str(v: String) -> String {
    if !is_kept(&v) {
        return v;
    }
    let mut out = String::with_capacity(v.len());
    for c in py_chars(&v) {
        match c {
            PyChar::Char(c) => out.push(c),
            // Writing to a String cannot fail.
            PyChar::Surrogate(u) => {
                let _ = write!(out, "\\u{u:04x}");
            }
        }
    }
    out
}

/// Applies a `%`-conversion width (`-` to left-align), as Python does for `%-10s`.
fn pad(text: &str, spec: &str) -> String {
    let left = spec.starts_with('-');
    let digits: String = spec
        .trim_start_matches(['-', '+', ' ', '#', '0'])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let width: usize = digits.parse().unwrap_or(0);
    let len = text.chars().count();
    if len >= width {
        return text.to_string();
    }
    let fill = " ".repeat(width - len);
    if left {
        format!("{text}{fill}")
    } else {
        format!("{fill}{text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[(&'static str, &'static str)]) -> Vec<(&'static str, Cow<'static, str>)> {
        v.iter().map(|&(k, v)| (k, Cow::Borrowed(v))).collect()
    }

    #[test]
    fn repr_quotes_like_python() {
        assert_eq!(repr_str("abc"), "'abc'");
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("both ' and \""), "'both \\' and \"'");
        assert_eq!(repr_str("a\\b\n"), "'a\\\\b\\n'");
        assert_eq!(repr_str("\u{7f}é"), "'\\x7fé'");
    }

    #[test]
    fn lone_surrogates_print_as_python_prints_them() {
        // How the model keeps "a\ud800b\\" (a lone surrogate, then a backslash).
        let kept = format!("{KEPT_TEXT_PREFIX}a\\ud800b\\\\");
        assert_eq!(repr_str(&kept), "'a\\ud800b\\\\'");
        let item = vec![("note", Cow::Owned(kept.clone()))];
        assert_eq!(repr_dict(&item), "{'note': 'a\\ud800b\\\\'}");
        assert_eq!(
            percent_format("%(note)r", &item).unwrap(),
            "'a\\ud800b\\\\'"
        );
        assert_eq!(percent_format("%(note)s", &item).unwrap(), "a\\ud800b\\");
        assert_eq!(
            json_dumps(&[item]),
            "[\n  {\n    \"note\": \"a\\ud800b\\\\\"\n  }\n]"
        );
        let long = format!("{KEPT_TEXT_PREFIX}{}\\udfff", "word ".repeat(20));
        let out = pprint_dict(&[("k", Cow::Borrowed("v")), ("label", Cow::Owned(long))]);
        // What Python 3's pprint prints for the same dict.
        assert_eq!(
            out,
            "{'k': 'v',\n 'label': 'word word word word word word word word word word word word word '\n          'word word word word word word word \\udfff'}\n"
        );
        assert!(!out.contains('\u{FDD0}'), "{out}");
    }

    #[test]
    fn percent_templates() {
        let item = p(&[("a", "1"), ("b", "x y")]);
        assert_eq!(
            percent_format("%(a)s-%(b)s 100%%", &item).unwrap(),
            "1-x y 100%"
        );
        assert_eq!(percent_format("%(b)r", &item).unwrap(), "'x y'");
        assert_eq!(percent_format("[%(a)-3s]", &item).unwrap(), "[1  ]");
        assert_eq!(
            percent_format("%(zz)s", &item),
            Err(TemplateError::MissingKey("zz".into()))
        );
        assert_eq!(
            percent_format("%s", &item).unwrap(),
            "{'a': '1', 'b': 'x y'}"
        );
        assert!(matches!(
            percent_format("%(a)d", &item),
            Err(TemplateError::Bad(_))
        ));
    }

    #[test]
    fn json_like_python() {
        let items = vec![p(&[("b", "é\"")]), p(&[("a", "1")])];
        assert_eq!(
            json_dumps(&items),
            "[\n  {\n    \"b\": \"\\u00e9\\\"\"\n  },\n  {\n    \"a\": \"1\"\n  }\n]"
        );
        assert_eq!(json_dumps(&[]), "[]");
    }

    #[test]
    fn pprint_splits_long_dicts_and_words() {
        assert_eq!(
            pprint_dict(&p(&[("b", "2"), ("a", "1")])),
            "{'a': '1', 'b': '2'}\n"
        );
        let long = "word ".repeat(20);
        let out = pprint_dict(&p(&[
            ("k", "v"),
            ("label", &*Box::leak(long.into_boxed_str())),
        ]));
        assert!(out.starts_with("{'k': 'v',\n 'label': 'word "), "{out}");
        assert!(out.lines().all(|l| l.chars().count() <= 80), "{out}");
    }
}
