//! A JSON cursor for [`super::ProductsView`]: it hands out strings as spans of the input and
//! validates as it goes, at about a third of the instructions serde_json's visitor interface
//! costs on the same text.
//!
//! Why by hand: the view needs the byte span of every plain string and of every integer (to
//! keep them without copying), and a parse that costs little more than a scan; serde_json gives
//! neither spans nor that speed through `Deserializer`, and the pull parsers on crates.io that
//! give spans were measured no faster than serde_json here. The cursor only covers the common
//! case itself (plain strings, non-negative integers, literals, structure); every escaped
//! string and every other number is handed to serde_json, so the rules for those are serde_json's
//! own, exactly as the full model applies them. Whatever it does not accept it reports as `None`,
//! and the caller falls back to the full model: a `None` is never a verdict on the document.

use serde::Deserialize;

/// U+FDD0 in UTF-8: strings starting with it are the model's kept forms (`kept.rs`).
const MARK_UTF8: &[u8] = "\u{FDD0}".as_bytes();

/// Deepest nesting the cursor follows. serde_json (and so the model) refuses documents nested
/// deeper than 128; stopping well before keeps the view from accepting what the model refuses.
const MAX_DEPTH: usize = 100;

/// A string token: a span of the input, or its unescaped text.
pub(super) enum Str {
    /// No escapes: the text is `input[start..end]`.
    Plain(usize, usize),
    /// Had escapes: the unescaped text.
    Escaped(String),
}

/// A scalar token.
pub(super) enum Value {
    Str(Str),
    /// An integer written plainly: `input[start..end]` is already its string form (a
    /// non-negative integer of up to 19 digits, or an integer beyond 64 bits).
    PlainInt(usize, usize),
    /// Any other number, as the model's flattening writes it.
    Number(String),
    Bool(bool),
    Null,
    /// A list or an object (skipped, but validated).
    Compound,
}

/// A position in the input.
pub(super) struct Cursor<'a> {
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(input: &'a str) -> Cursor<'a> {
        Cursor {
            input,
            bytes: input.as_bytes(),
            pos: 0,
        }
    }

    /// A cursor at byte `pos` of `input`.
    pub(super) fn at(input: &'a str, pos: usize) -> Cursor<'a> {
        Cursor {
            input,
            bytes: input.as_bytes(),
            pos,
        }
    }

    /// The byte offset of the cursor.
    pub(super) fn position(&self) -> usize {
        self.pos
    }

    /// Moves the cursor to byte `pos` (which another cursor over the same input reached).
    pub(super) fn set_position(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// Skips whitespace and returns the next byte, without consuming it.
    pub(super) fn peek(&mut self) -> Option<u8> {
        // Pretty-printed streams are about a third indentation: runs of spaces go eight at a
        // time.
        const SPACES: u64 = u64::from_ne_bytes([b' '; 8]);
        loop {
            match *self.bytes.get(self.pos)? {
                b' ' => {
                    let eight = self
                        .bytes
                        .get(self.pos..self.pos + 8)
                        .and_then(|chunk| <[u8; 8]>::try_from(chunk).ok());
                    match eight {
                        Some(eight) if u64::from_ne_bytes(eight) == SPACES => self.pos += 8,
                        _ => self.pos += 1,
                    }
                }
                b'\n' | b'\r' | b'\t' => self.pos += 1,
                b => return Some(b),
            }
        }
    }

    /// Consumes `byte` (after whitespace), or fails.
    pub(super) fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// After an element: `true` if a `,` (another one follows), `false` at `close`.
    pub(super) fn next_or_close(&mut self, close: u8) -> Option<bool> {
        match self.peek()? {
            b',' => {
                self.pos += 1;
                Some(true)
            }
            b if b == close => {
                self.pos += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// Consumes `{` and tells whether the object has a first member (it is not `{}`).
    pub(super) fn open_object(&mut self) -> Option<bool> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(false);
        }
        Some(true)
    }

    /// Only whitespace remains.
    pub(super) fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// A string (after whitespace).
    pub(super) fn string(&mut self) -> Option<Str> {
        self.expect(b'"')?;
        let start = self.pos;
        let rest = self.bytes.get(start..)?;
        let end = start + memchr::memchr2(b'"', b'\\', rest)?;
        if self.bytes[end] == b'"' {
            // JSON forbids raw control characters in strings; a branch-free test. A string
            // starting with U+FDD0 is left to the model, which keeps it marked (`kept.rs`).
            let bad = self.bytes[start..end]
                .iter()
                .fold(false, |acc, &b| acc | (b < 0x20));
            if bad || self.bytes[start..end].starts_with(MARK_UTF8) {
                return None;
            }
            self.pos = end + 1;
            return Some(Str::Plain(start, end));
        }
        // Escapes: serde_json decodes them (and refuses bad ones), from the opening quote.
        // Lone surrogates, which serde_json refuses, are left to the model too.
        let (text, used) = self.with_serde::<String>(start - 1)?;
        if crate::is_kept(&text) {
            return None;
        }
        self.pos = start - 1 + used;
        Some(Str::Escaped(text))
    }

    /// Any value (after whitespace); `depth` is the nesting of the object holding it.
    pub(super) fn value(&mut self, depth: usize) -> Option<Value> {
        match self.peek()? {
            b'"' => Some(Value::Str(self.string()?)),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            b'0'..=b'9' | b'-' => self.number(),
            b'[' | b'{' => {
                self.skip_compound(depth + 1)?;
                Some(Value::Compound)
            }
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Option<Value> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word).then(|| {
            self.pos = end;
            value
        })
    }

    /// A number: plain non-negative integers of up to 19 digits (which always fit a `u64`, and
    /// print as written) are kept as spans; anything else goes through serde_json, which gives
    /// the value (or the refusal) the model would.
    fn number(&mut self) -> Option<Value> {
        let start = self.pos;
        let rest = self.bytes.get(start..)?;
        let len = rest
            .iter()
            .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .unwrap_or(rest.len());
        let text = &rest[..len];
        let plain = text.len() <= 19
            && text.iter().all(u8::is_ascii_digit)
            && (text.len() == 1 || text[0] != b'0');
        self.pos = start + len;
        if plain {
            return Some(Value::PlainInt(start, start + len));
        }
        // Beyond `f64` (`1e400`), serde_json refuses the number and the model decides.
        let number: serde_json::Value =
            serde_json::from_str(self.input.get(start..start + len)?).ok()?;
        if number.is_f64() && text.iter().all(|&b| b == b'-' || b.is_ascii_digit()) {
            // An integer token serde_json made a float: `-0` (the integer 0 to Python) or an
            // integer beyond 64 bits, which Python keeps exact, as written (as the model does).
            if text == b"-0" {
                return Some(Value::Number("0".into()));
            }
            return Some(Value::PlainInt(start, start + len));
        }
        let text = crate::tree::scalar_string(&number)?;
        Some(Value::Number(text.into_owned()))
    }

    /// Skips a list or an object, checking it is valid JSON.
    fn skip_compound(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let close = match self.peek()? {
            b'[' => b']',
            b'{' => b'}',
            _ => return None,
        };
        self.pos += 1;
        if self.peek()? == close {
            self.pos += 1;
            return Some(());
        }
        loop {
            if close == b'}' {
                self.string()?;
                self.expect(b':')?;
            }
            self.value(depth)?;
            if !self.next_or_close(close)? {
                return Some(());
            }
        }
    }

    /// Deserialises one `T` with serde_json from byte `at`, giving it and the bytes it used.
    fn with_serde<T: for<'de> Deserialize<'de>>(&self, at: usize) -> Option<(T, usize)> {
        let mut stream = serde_json::Deserializer::from_str(self.input.get(at..)?).into_iter::<T>();
        let value = stream.next()?.ok()?;
        Some((value, stream.byte_offset()))
    }
}
