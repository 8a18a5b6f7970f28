//! Values the reference reads but `serde_json::Value` cannot hold, kept in a marked string.
//!
//! Python's `json` module reads three things serde_json refuses or changes:
//! - a number beyond `f64` (`1e400`): Python makes it `inf` (`-1e400`: `-inf`); serde_json
//!   refuses the whole document ("number out of range");
//! - an integer beyond `u64`/`i64` (`123456789012345678901234567890`): Python keeps it exact;
//!   serde_json turns it into an `f64` (or refuses it past `f64`); and `-0`, which Python reads
//!   as the integer `0` and serde_json as the float `-0.0`;
//! - a lone UTF-16 surrogate escape (`"\ud800"`): Python keeps it in its `str`; a Rust `String`
//!   cannot hold it and serde_json refuses the document.
//!
//! **Design.** serde_json's normal parse stays the fast path. After it, [`needs_lenient`] walks
//! the parsed tree for the only traces these leave there (a float that could have been an
//! integer token beyond 64 bits, `-0.0`, a string or key starting with [`MARK`]); when the parse
//! fails, or the walk finds such a trace, [`rewrite`] makes one pass over the bytes and rewrites
//! just the offending tokens, and serde_json parses the result. Only unusual files pay the
//! second pass. The rewritten tokens are strings starting with `MARK` (U+FDD0, a noncharacter):
//! - `MARK 'n' TOKEN`: a number token as written (an integer beyond 64 bits, or a number beyond
//!   `f64`); [`crate::scalar_string`] gives Python's `str()` of it (the digits; `inf`, `-inf`);
//! - `MARK 'e' TEXT`: a string holding lone surrogates, or a genuine string that itself starts
//!   with `MARK` (so that every string starting with `MARK` is one of these forms): `TEXT` is the
//!   string with `\` written `\\` and each lone surrogate `\udXXX`. Flattening keeps this form;
//!   printers decode it with [`py_chars`] (`repr` gives `'\ud800'`, as Python's does).
//!
//! `-0` is rewritten to `0`, which is what Python reads.
//!
//! Typed fields (`format`, `content_id`, `path`, checksums, `size`) refuse these forms with a
//! clear message; serialising a document writes each kept value back as its original token
//! ([`Wire`]), so a mirror does not change it (a key holding a lone surrogate, which a JSON
//! serialiser cannot be handed, is written with U+FFFD in its place).
//!
//! **Why not serde_json's `arbitrary_precision`.** It would keep big integers and `1e400` (not
//! lone surrogates), but it is a workspace-wide switch (feature unification): every number of
//! every document, API response and config in every crate would become a heap string, and serde's
//! `untagged`/`flatten` derives are known to break on numbers under it. Handling the few unusual
//! tokens here costs nothing on ordinary files and touches nothing outside this crate.
//!
//! The query's fast path ([`crate::ProductsView`]) declines any string starting with `MARK` and
//! any token serde_json refuses, so the model decides those; it keeps an integer token beyond
//! 64 bits as written (the same string this module gives).

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use crate::tree::{python_float_repr, Map};

/// The first character of every kept form (U+FDD0, a Unicode noncharacter).
pub const MARK: char = '\u{FDD0}';

/// [`MARK`] in UTF-8.
const MARK_UTF8: &[u8] = "\u{FDD0}".as_bytes();

/// The start of a kept number: `MARK 'n'`, then the number token as written.
const NUMBER_PREFIX: &str = "\u{FDD0}n";

/// The start of a kept string (see the module docs): `MARK 'e'`, then its text with `\` as `\\`
/// and lone surrogates as `\udXXX`. Printers that split a string (pprint) may split the text
/// after it and put it back before each part: escapes hold no whitespace.
pub const KEPT_TEXT_PREFIX: &str = "\u{FDD0}e";

/// A character of a string as the reference holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PyChar {
    /// A Unicode scalar value.
    Char(char),
    /// A lone UTF-16 surrogate (U+D800 to U+DFFF), which JSON can write, Python's `str` keeps and
    /// Rust's `str` cannot hold.
    Surrogate(u16),
}

/// A kept form, decoded one level.
enum Kept<'a> {
    /// A number token, as written.
    Number(&'a str),
    /// A string (its escaped text follows [`KEPT_TEXT_PREFIX`]).
    Text,
}

fn kept(s: &str) -> Option<Kept<'_>> {
    if !s.starts_with(MARK) {
        return None;
    }
    if let Some(token) = s.strip_prefix(NUMBER_PREFIX) {
        Some(Kept::Number(token))
    } else {
        s.starts_with(KEPT_TEXT_PREFIX).then_some(Kept::Text)
    }
}

/// Whether `s` is a kept form (a string value or key of the model that starts with [`MARK`]).
pub fn is_kept(s: &str) -> bool {
    s.starts_with(MARK)
}

/// Python's `str()` of a kept number token: an integer exactly as written, any other number as
/// the float it reads as (beyond `f64`: `inf` or `-inf`).
fn number_str(token: &str) -> String {
    if token.bytes().all(|b| b == b'-' || b.is_ascii_digit()) {
        token.to_string()
    } else {
        python_float_repr(token.parse::<f64>().unwrap_or(f64::NAN))
    }
}

/// The string flattening gives a `Value::String`: itself, or for a kept number its Python
/// `str()` (a kept string stays in its kept form, for printers to decode).
pub(crate) fn string_scalar(s: &str) -> Cow<'_, str> {
    match kept(s) {
        Some(Kept::Number(token)) => Cow::Owned(number_str(token)),
        _ => Cow::Borrowed(s),
    }
}

/// What a kept form holds, for error messages (`None`: an ordinary string).
pub(crate) fn kind(s: &str) -> Option<&'static str> {
    match kept(s)? {
        Kept::Number(token) if token.bytes().all(|b| b == b'-' || b.is_ascii_digit()) => {
            Some("an integer beyond 64 bits")
        }
        Kept::Number(_) => Some("a number beyond the range of a float"),
        Kept::Text => Some("a string with a lone surrogate or starting with U+FDD0"),
    }
}

/// The characters of a string value (or key, or flattened value) as the reference holds it:
/// `s`'s own characters, or, for a kept string ([`KEPT_TEXT_PREFIX`]), the decoded text with its
/// lone surrogates.
pub fn py_chars(s: &str) -> impl Iterator<Item = PyChar> + '_ {
    let (text, escaped) = match s.strip_prefix(KEPT_TEXT_PREFIX) {
        Some(text) => (text, true),
        None => (s, false),
    };
    let mut chars = text.chars();
    std::iter::from_fn(move || {
        let c = chars.next()?;
        if !escaped || c != '\\' {
            return Some(PyChar::Char(c));
        }
        let rest = chars.as_str();
        if let Some(after) = rest.strip_prefix('\\') {
            chars = after.chars();
            return Some(PyChar::Char('\\'));
        }
        // `\udXXX`; anything else (a hand-made string) is taken literally.
        let unit = rest
            .strip_prefix('u')
            .and_then(|r| r.get(..4))
            .and_then(|hex| u16::from_str_radix(hex, 16).ok())
            .filter(|u| (0xD800..=0xDFFF).contains(u));
        match unit {
            Some(u) => {
                chars = rest[5..].chars();
                Some(PyChar::Surrogate(u))
            }
            None => Some(PyChar::Char('\\')),
        }
    })
}

/// `s` as Rust text: a kept string decoded with U+FFFD for each lone surrogate (what filters
/// compare; a filter given on a command line cannot hold a lone surrogate anyway).
pub fn lossy_text(s: &str) -> Cow<'_, str> {
    if !s.starts_with(KEPT_TEXT_PREFIX) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        py_chars(s)
            .map(|c| match c {
                PyChar::Char(c) => c,
                PyChar::Surrogate(_) => char::REPLACEMENT_CHARACTER,
            })
            .collect(),
    )
}

/// Whether a tree parsed by serde_json may hold a value this module must rewrite: a string or
/// key starting with [`MARK`], a float that is an integer of 2^63 or more in magnitude (an
/// integer token beyond 64 bits, or a float token such as `1e19`: [`rewrite`] tells them apart),
/// or `-0.0` (from `-0` or `-0.0`).
pub(crate) fn needs_lenient(map: &Map) -> bool {
    map.iter()
        .any(|(k, v)| is_kept(k) || value_needs_lenient(v))
}

fn value_needs_lenient(v: &Value) -> bool {
    match v {
        Value::String(s) => is_kept(s),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            (f.fract() == 0.0 && f.abs() >= 9_223_372_036_854_775_808.0)
                || (f == 0.0 && f.is_sign_negative())
        }
        Value::Array(list) => list.iter().any(value_needs_lenient),
        Value::Object(map) => needs_lenient(map),
        _ => false,
    }
}

/// Rewrites the tokens serde_json cannot take as the reference does (see the module docs), or
/// `None` when there is none. A rewritten token is a valid token of the same role (a number in a
/// value position becomes a string; a string stays a string), so the result is valid JSON
/// exactly when the input was, but for the rewritten tokens themselves.
pub(crate) fn rewrite(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::new();
    let mut copied = 0;
    // Open containers, and the last structural byte: a number is a value (and may be rewritten)
    // only after `:`, `[`, or `,` inside a list.
    let mut stack: Vec<u8> = Vec::new();
    let mut last = 0u8;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (end, replacement) = match b {
            b'"' => {
                let Some(end) = string_end(bytes, i) else {
                    break;
                };
                (end, string_token(&bytes[i..end]))
            }
            b'-' | b'0'..=b'9' => {
                let len = bytes[i..]
                    .iter()
                    .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .unwrap_or(bytes.len() - i);
                let is_value = match last {
                    b':' | b'[' => true,
                    b',' => stack.last() == Some(&b'['),
                    _ => false,
                };
                let token = &bytes[i..i + len];
                (i + len, number_token(token).filter(|_| is_value))
            }
            _ => {
                match b {
                    b'{' | b'[' => stack.push(b),
                    b'}' | b']' => {
                        stack.pop();
                    }
                    _ => {}
                }
                if !b.is_ascii_whitespace() {
                    last = b;
                }
                i += 1;
                continue;
            }
        };
        last = b'v';
        if let Some(replacement) = replacement {
            out.extend_from_slice(&bytes[copied..i]);
            out.extend_from_slice(&replacement);
            copied = end;
        }
        i = end;
    }
    if copied == 0 {
        return None;
    }
    out.extend_from_slice(&bytes[copied..]);
    Some(out)
}

/// The end (after the closing quote) of the string token starting at `bytes[start]`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        i += memchr::memchr2(b'"', b'\\', bytes.get(i..)?)?;
        if bytes[i] == b'"' {
            return Some(i + 1);
        }
        i += 2;
    }
}

/// A number token's replacement: `-0` becomes `0`; an integer beyond 64 bits or a number beyond
/// `f64` becomes a kept number. `None` for anything else, including a malformed token (which
/// serde_json then refuses as before).
fn number_token(token: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(token).ok()?;
    let integer = is_json_integer(text);
    if !integer && !is_json_number(text) {
        return None;
    }
    if text == "-0" {
        return Some(b"0".to_vec());
    }
    let fits = if integer {
        text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok()
    } else {
        text.parse::<f64>().is_ok_and(f64::is_finite)
    };
    if fits {
        return None;
    }
    serde_json::to_vec(&format!("{NUMBER_PREFIX}{text}")).ok()
}

/// `-?(0|[1-9][0-9]*)`
fn is_json_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
fn is_json_number(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (mantissa, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    is_json_integer(int)
        && frac.is_none_or(digits)
        && exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)))
}

/// A string token's replacement when it holds a lone surrogate or starts with [`MARK`]: its kept
/// form. `None` for any other string, and for a malformed one (left to serde_json to refuse).
fn string_token(token: &[u8]) -> Option<Vec<u8>> {
    let inner = &token[1..token.len() - 1];
    if !inner.contains(&b'\\') && !inner.starts_with(MARK_UTF8) {
        return None;
    }
    let chars = decode_string(inner)?;
    let surrogate = chars.iter().any(|c| matches!(c, PyChar::Surrogate(_)));
    if !surrogate && chars.first() != Some(&PyChar::Char(MARK)) {
        return None;
    }
    let mut kept = String::from(KEPT_TEXT_PREFIX);
    for c in chars {
        match c {
            PyChar::Char('\\') => kept.push_str("\\\\"),
            PyChar::Char(c) => kept.push(c),
            PyChar::Surrogate(u) => kept.push_str(&format!("\\u{u:04x}")),
        }
    }
    serde_json::to_vec(&kept).ok()
}

/// Decodes a JSON string's content as Python does, lone surrogates kept; `None` if it is not
/// valid JSON (a bad escape, a raw control character, invalid UTF-8).
fn decode_string(inner: &[u8]) -> Option<Vec<PyChar>> {
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let run = memchr::memchr(b'\\', &inner[i..]).unwrap_or(inner.len() - i);
        let text = std::str::from_utf8(&inner[i..i + run]).ok()?;
        if text.bytes().any(|b| b < 0x20) {
            return None;
        }
        out.extend(text.chars().map(PyChar::Char));
        i += run;
        if i == inner.len() {
            break;
        }
        let escape = *inner.get(i + 1)?;
        i += 2;
        let c = match escape {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{08}',
            b'f' => '\u{0c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = hex4(inner.get(i..i + 4)?)?;
                i += 4;
                if (0xD800..0xDC00).contains(&unit) && inner.get(i..i + 2) == Some(b"\\u") {
                    let low = inner.get(i + 2..i + 6).and_then(hex4);
                    if let Some(low @ 0xDC00..=0xDFFF) = low {
                        i += 6;
                        let code = 0x10000
                            + ((u32::from(unit) - 0xD800) << 10)
                            + (u32::from(low) - 0xDC00);
                        out.push(PyChar::Char(char::from_u32(code)?));
                        continue;
                    }
                }
                match char::from_u32(u32::from(unit)) {
                    Some(c) => c,
                    None => {
                        out.push(PyChar::Surrogate(unit));
                        continue;
                    }
                }
            }
            _ => return None,
        };
        out.push(PyChar::Char(c));
    }
    Some(out)
}

fn hex4(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.len() != 4 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(text, 16).ok()
}

/// A kept string as a JSON string token (lone surrogates as `\udXXX` escapes).
fn json_string_token(s: &str) -> String {
    let mut out = String::from("\"");
    for c in py_chars(s) {
        match c {
            PyChar::Char('"') => out.push_str("\\\""),
            PyChar::Char('\\') => out.push_str("\\\\"),
            PyChar::Char(c) if c < ' ' => out.push_str(&format!("\\u{:04x}", c as u32)),
            PyChar::Char(c) => out.push(c),
            PyChar::Surrogate(u) => out.push_str(&format!("\\u{u:04x}")),
        }
    }
    out.push('"');
    out
}

/// Serialises a JSON value with its kept forms written back as the tokens they came from.
pub(crate) struct Wire<'a>(pub &'a Value);

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::String(s) => {
                let raw = match kept(s) {
                    None => return serializer.serialize_str(s),
                    Some(Kept::Number(token)) => token.to_string(),
                    Some(Kept::Text) => json_string_token(s),
                };
                match serde_json::value::RawValue::from_string(raw) {
                    Ok(raw) => raw.serialize(serializer),
                    Err(_) => serializer.serialize_str(&lossy_text(s)),
                }
            }
            Value::Array(list) => {
                let mut seq = serializer.serialize_seq(Some(list.len()))?;
                for v in list {
                    seq.serialize_element(&Wire(v))?;
                }
                seq.end()
            }
            Value::Object(map) => WireMap(map).serialize(serializer),
            other => other.serialize(serializer),
        }
    }
}

/// Serialises a map of JSON values as [`Wire`] does.
pub(crate) struct WireMap<'a>(pub &'a Map);

impl Serialize for WireMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries = self
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), Entry::<()>::Json(v)));
        serialize_object(serializer, entries)
    }
}

/// Serialises a map of named children (products, versions, items, index entries) with their
/// names written back as read.
pub(crate) struct Named<'a, T>(pub &'a indexmap::IndexMap<String, T>);

impl<T: Serialize> Serialize for Named<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries = self.0.iter().map(|(k, v)| (k.as_str(), Entry::Child(v)));
        serialize_object(serializer, entries)
    }
}

/// A member of an object being serialised: a JSON value (kept values written back as read) or
/// a child of the typed model.
pub(crate) enum Entry<'a, C> {
    Json(&'a Value),
    Child(&'a C),
}

impl<C> Clone for Entry<'_, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for Entry<'_, C> {}

impl<C: Serialize> Serialize for Entry<'_, C> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Entry::Json(v) => Wire(v).serialize(serializer),
            Entry::Child(c) => c.serialize(serializer),
        }
    }
}

/// Whether a key is a kept string holding a lone surrogate.
fn has_surrogate(key: &str) -> bool {
    key.starts_with(KEPT_TEXT_PREFIX) && py_chars(key).any(|c| matches!(c, PyChar::Surrogate(_)))
}

/// Whether an object with these keys is written member by member ([`serialize_object`]);
/// otherwise it is one raw JSON text.
pub(crate) fn plain_keys<'a>(mut keys: impl Iterator<Item = &'a str>) -> bool {
    !keys.any(has_surrogate)
}

/// A key of an object written member by member, as the serialiser is given it.
pub(crate) fn wire_key(key: &str) -> Cow<'_, str> {
    lossy_text(key)
}

/// Serialises an object. Serialisers take keys only as Rust strings, so an object with a key
/// holding a lone surrogate is written as one raw JSON text instead (compact, even inside pretty
/// output: such keys come only from hostile or broken documents, and they survive unchanged).
pub(crate) fn serialize_object<'a, S, C, I>(serializer: S, entries: I) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    C: Serialize + 'a,
    I: Iterator<Item = (&'a str, Entry<'a, C>)> + Clone,
{
    use serde::ser::Error as _;
    if plain_keys(entries.clone().map(|(k, _)| k)) {
        let mut map = serializer.serialize_map(entries.size_hint().1)?;
        for (k, v) in entries {
            map.serialize_entry(&wire_key(k), &v)?;
        }
        return map.end();
    }
    let mut text = String::from("{");
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&json_string_token(k));
        text.push(':');
        text.push_str(&serde_json::to_string(&v).map_err(S::Error::custom)?);
    }
    text.push('}');
    serde_json::value::RawValue::from_string(text)
        .map_err(S::Error::custom)?
        .serialize(serializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(doc: &str) -> Map {
        crate::tree::Ctx { file: "t.json" }
            .parse_object(doc.as_bytes())
            .unwrap_or_else(|e| panic!("{doc}: {e}"))
    }

    fn flat(doc: &str, key: &str) -> String {
        let map = parse(doc);
        crate::scalar_string(&map[key])
            .expect("a scalar")
            .into_owned()
    }

    #[test]
    fn numbers_beyond_f64_read_as_infinities() {
        assert_eq!(flat(r#"{"a": 1e400}"#, "a"), "inf");
        assert_eq!(flat(r#"{"a": -1e400}"#, "a"), "-inf");
        assert_eq!(
            flat(r#"{"a": [1E+999, {"b": 2.5e9999}], "c": 1e400}"#, "c"),
            "inf"
        );
    }

    #[test]
    fn integers_beyond_64_bits_stay_exact() {
        for n in [
            "123456789012345678901234567890",
            "-123456789012345678901234567890",
            "18446744073709551616",
            "-9223372036854775809",
            // Beyond f64 too: serde_json alone refuses it.
            &"9".repeat(400),
        ] {
            assert_eq!(flat(&format!(r#"{{"a": {n}}}"#), "a"), n);
        }
        // Still exact or Python's float, as before.
        assert_eq!(
            flat(r#"{"a": 18446744073709551615}"#, "a"),
            "18446744073709551615"
        );
        assert_eq!(
            flat(r#"{"a": -9223372036854775808}"#, "a"),
            "-9223372036854775808"
        );
        assert_eq!(flat(r#"{"a": 1e19}"#, "a"), "1e+19");
        assert_eq!(flat(r#"{"a": 1e300, "b": 1e400}"#, "a"), "1e+300");
    }

    #[test]
    fn minus_zero_is_the_integer_zero() {
        assert_eq!(flat(r#"{"a": -0}"#, "a"), "0");
        assert_eq!(flat(r#"{"a": -0.0}"#, "a"), "-0.0");
        assert_eq!(flat(r#"{"a": [-0], "b": -0.0}"#, "b"), "-0.0");
    }

    #[test]
    fn lone_surrogates_are_kept() {
        let map =
            parse(r#"{"a": "x\ud800y", "b": "\udc00", "\ud83d": "\ud83d\ude00\ud800\u0041"}"#);
        let chars = |s: &str| py_chars(s).collect::<Vec<_>>();
        assert_eq!(
            chars(map["a"].as_str().unwrap()),
            [
                PyChar::Char('x'),
                PyChar::Surrogate(0xd800),
                PyChar::Char('y')
            ]
        );
        assert_eq!(
            chars(map["b"].as_str().unwrap()),
            [PyChar::Surrogate(0xdc00)]
        );
        let (key, value) = map.iter().nth(2).unwrap();
        assert_eq!(chars(key), [PyChar::Surrogate(0xd83d)]);
        assert_eq!(
            chars(value.as_str().unwrap()),
            [
                PyChar::Char('😀'),
                PyChar::Surrogate(0xd800),
                PyChar::Char('A')
            ]
        );
        assert_eq!(lossy_text(map["a"].as_str().unwrap()), "x\u{fffd}y");
    }

    #[test]
    fn strings_starting_with_the_mark_are_not_mistaken_for_kept_values() {
        for doc in [
            "{\"a\": \"\u{FDD0}n1e400\"}",
            r#"{"a": "\ufdd0n1e400"}"#,
            r#"{"a": "\uFDD0e\\ud800"}"#,
        ] {
            let map = parse(doc);
            let original: String = serde_json::from_str::<Map>(doc).unwrap()["a"]
                .as_str()
                .unwrap()
                .to_string();
            let value = map["a"].as_str().unwrap();
            assert_eq!(crate::scalar_string(&map["a"]).unwrap(), value);
            let decoded: String = py_chars(value)
                .map(|c| match c {
                    PyChar::Char(c) => c,
                    PyChar::Surrogate(_) => panic!("no surrogate in {doc}"),
                })
                .collect();
            assert_eq!(decoded, original, "{doc}");
        }
    }

    #[test]
    fn serialising_writes_kept_values_back_as_read() {
        let doc = r#"{"a":1e400,"b":123456789012345678901234567890,"c":"x\ud800\\y\"","d":["\udfff",-1E+400],"\ud800k":1,"e":"\ufdd0"}"#;
        let map = parse(doc);
        let out = serde_json::to_string(&WireMap(&map)).unwrap();
        let expected = r#"{"a":1e400,"b":123456789012345678901234567890,"c":"x\ud800\\y\"","d":["\udfff",-1E+400],"\ud800k":1,"e":"!"}"#
            .replace('!', "\u{FDD0}");
        assert_eq!(out, expected);
        // Read again, the same values.
        let again = parse(&out);
        for key in ["a", "b", "c", "d", "e"] {
            assert_eq!(again[key], map[key], "{key}");
        }
    }

    #[test]
    fn documents_with_kept_values_round_trip_unchanged() {
        // As the `document` fuzz target demands: parse -> serialise -> parse gives the same
        // document, and serialising again the same bytes; names and keys with lone surrogates too.
        let doc = r#"{"format":"products:1.0","content_id":"c","big":123456789012345678901234567890,
          "\ud800top":{"\udc00":[1e400]},"products":{"p\ud800":{"versions":{"v":{"\udfffk":"-0",
          "items":{"i\ud83d":{"path":"a","size":1,"n":-1e400,"s":"\ufdd0\ud800"}}}}}}}"#;
        let first = crate::Document::from_slice(doc.as_bytes(), "d").unwrap();
        let crate::Document::Products(products) = &first else {
            panic!("a products document")
        };
        let bytes = products.to_vec_pretty();
        let again = crate::Document::from_slice(&bytes, "d").unwrap();
        assert_eq!(first, again, "{}", String::from_utf8_lossy(&bytes));
        let crate::Document::Products(again) = &again else {
            panic!("a products document")
        };
        assert_eq!(again.to_vec_pretty(), bytes);
        let text = String::from_utf8(bytes).unwrap();
        for token in [
            "123456789012345678901234567890",
            "1e400",
            "-1e400",
            "\\ud800top",
            "p\\ud800",
        ] {
            assert!(text.contains(token), "{token} in {text}");
        }
        // No kept form leaks out (the one U+FDD0 is the string's own).
        assert!(!text.contains(NUMBER_PREFIX), "{text}");
        assert!(!text.contains(KEPT_TEXT_PREFIX), "{text}");
        assert_eq!(text.matches(MARK).count(), 1, "{text}");
    }

    #[test]
    fn malformed_documents_are_still_refused() {
        let ctx = crate::tree::Ctx { file: "t.json" };
        for doc in [
            r#"{1e400: 1}"#,
            r#"{"a" 1e400}"#,
            r#"{"a": 1e400"#,
            r#"{"a": "\ud800"#,
            r#"{"a": "\ud800\x"}"#,
            r#"{"a": 01e400}"#,
            r#"{"a": 1e400.5}"#,
            r#"{"a": [1e400 2]}"#,
            "[1e400]",
            r#"{"a": "\ud800" "b"}"#,
        ] {
            assert!(ctx.parse_object(doc.as_bytes()).is_err(), "{doc}");
        }
    }
}
