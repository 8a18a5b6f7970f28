//! The cleartext signature framework (RFC 4880 §7, RFC 9580 §7): splitting a clear-signed
//! message into its text and its signature block, and building one. No cryptography here.

use crate::error::{Error, Result};

const BEGIN_MESSAGE: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";
const BEGIN_SIGNATURE: &[u8] = b"-----BEGIN PGP SIGNATURE-----";
const END_SIGNATURE: &[u8] = b"-----END PGP SIGNATURE-----";

/// A clear-signed message split into its parts, nothing verified yet.
///
/// Parsing is strict where leniency would let the shown text differ from the signed text: only
/// `Hash` armor headers, every body line starting with `-` must be dash-escaped, and nothing but
/// whitespace may follow the signature block. It never panics, whatever the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearSigned<'a> {
    hashes: Vec<String>,
    /// Body lines, dash-escaping and line endings removed, trailing whitespace still present.
    lines: Vec<&'a [u8]>,
    signature_block: &'a [u8],
    /// The line number (from 1) of the `-----BEGIN PGP SIGNATURE-----` line.
    signature_line: usize,
}

impl<'a> ClearSigned<'a> {
    /// Splits `bytes` into headers, text and signature block. `file` names the source in errors.
    pub fn parse(bytes: &'a [u8], file: &str) -> Result<ClearSigned<'a>> {
        let err = |reason: String| Error::Signature {
            file: file.to_owned(),
            reason,
        };
        let mut lines = Lines {
            rest: bytes,
            offset: 0,
            number: 0,
        };

        match lines.next() {
            Some(line) if trim_end(line.text) == BEGIN_MESSAGE => {}
            _ => {
                return Err(err(
                    "no signature: the content is not an OpenPGP clear-signed message \
                     (it does not start with -----BEGIN PGP SIGNED MESSAGE-----)"
                        .into(),
                ))
            }
        }

        let mut hashes = Vec::new();
        loop {
            let Some(line) = lines.next() else {
                return Err(err("the message ends inside its armor headers".into()));
            };
            let text = trim_end(line.text);
            if text.is_empty() {
                break;
            }
            let Some(values) = text.strip_prefix(b"Hash:") else {
                // Other headers are not allowed here (RFC 9580 §7.1); GnuPG refuses them too,
                // since a header like `NotDashEscaped` changes how the text is read.
                return Err(err(format!(
                    "line {}: unexpected armor header {:?} (only Hash is allowed)",
                    line.number,
                    String::from_utf8_lossy(text)
                )));
            };
            for value in String::from_utf8_lossy(values).split(',') {
                hashes.push(value.trim().to_owned());
            }
        }

        let mut body = Vec::new();
        let (signature_start, signature_line) = loop {
            let Some(line) = lines.next() else {
                return Err(err(
                    "no signature: the message has no -----BEGIN PGP SIGNATURE----- block".into(),
                ));
            };
            if trim_end(line.text) == BEGIN_SIGNATURE {
                break (line.start, line.number);
            }
            if let Some(unescaped) = line.text.strip_prefix(b"- ") {
                body.push(unescaped);
            } else if line.text.starts_with(b"-") {
                return Err(err(format!(
                    "line {}: starts with '-' but is not dash-escaped",
                    line.number
                )));
            } else {
                body.push(line.text);
            }
        };

        let signature_end = loop {
            let Some(line) = lines.next() else {
                return Err(err(
                    "the signature block has no -----END PGP SIGNATURE----- line".into(),
                ));
            };
            if trim_end(line.text) == END_SIGNATURE {
                break line.end;
            }
        };

        if !lines.rest.iter().all(u8::is_ascii_whitespace) {
            return Err(err(format!(
                "line {}: unexpected data after the signature block",
                lines.number + 1
            )));
        }

        Ok(ClearSigned {
            hashes,
            lines: body,
            // The slice bounds come from the line scanner over `bytes`; `get` keeps this total.
            signature_block: bytes
                .get(signature_start..signature_end)
                .unwrap_or_default(),
            signature_line,
        })
    }

    /// The values of the `Hash:` armor headers (`SHA512`, …), as written.
    pub fn hash_headers(&self) -> &[String] {
        &self.hashes
    }

    /// The armored signature block, from its `-----BEGIN PGP SIGNATURE-----` line to its
    /// `-----END PGP SIGNATURE-----` line.
    pub fn signature_block(&self) -> &'a [u8] {
        self.signature_block
    }

    /// The line number (from 1) where the signature block starts in the message.
    pub(crate) fn signature_line(&self) -> usize {
        self.signature_line
    }

    /// The text as the signature covers it: dash-escaping removed, trailing spaces and tabs
    /// removed from every line, lines joined with CR LF, no line ending after the last line.
    pub fn signed_text(&self) -> Vec<u8> {
        join_lines(self.lines.iter().map(|l| trim_end(l)), b"\r\n", false)
    }

    /// The payload handed to JSON parsing: the signed text with LF line endings and a final LF.
    ///
    /// Trailing spaces and tabs are not covered by the signature, so they are left out: every
    /// byte returned is authenticated once the signature is checked. (JSON cannot have a raw
    /// line break inside a string, so this never changes what a JSON document means.)
    pub fn payload(&self) -> Vec<u8> {
        join_lines(self.lines.iter().map(|l| trim_end(l)), b"\n", true)
    }
}

/// Whether `bytes` starts like a clear-signed message (as the reference decides, by the first
/// line only).
pub fn is_clearsigned(bytes: &[u8]) -> bool {
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    trim_end(first) == BEGIN_MESSAGE
}

/// The payload of a clear-signed message without checking its signature (for `--no-verify`).
/// See [`ClearSigned::payload`].
pub fn strip_clearsigned(bytes: &[u8], file: &str) -> Result<Vec<u8>> {
    Ok(ClearSigned::parse(bytes, file)?.payload())
}

/// Prepares `data` for clear-signing: returns `(signed_text, dash_escaped_body)`.
///
/// Line endings (LF or CR LF) are split off and trailing spaces and tabs removed, as GnuPG
/// does, so that the text we sign is the text every verifier hashes. A final line ending is part
/// of the framing, so `"x\n"` and `"x"` sign the same text.
pub(crate) fn prepare(data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    let lines: Vec<&[u8]> = if data.is_empty() {
        Vec::new()
    } else {
        data.split(|&b| b == b'\n')
            .map(|l| trim_end(l.strip_suffix(b"\r").unwrap_or(l)))
            .collect()
    };
    let signed = join_lines(lines.iter().copied(), b"\r\n", false);
    let mut body = Vec::with_capacity(data.len() + 16);
    for line in &lines {
        // Lines starting with '-' must be escaped; GnuPG also escapes "From " for mail, which
        // verifiers undo the same way, but it is not required and we do not.
        if line.starts_with(b"-") {
            body.extend_from_slice(b"- ");
        }
        body.extend_from_slice(line);
        body.push(b'\n');
    }
    (signed, body)
}

/// Assembles a clear-signed message from a dash-escaped body (each line ending in LF), the hash
/// name for the `Hash:` header and an armored signature block.
pub(crate) fn assemble(body: &[u8], hash: &str, signature_block: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + signature_block.len() + 64);
    out.extend_from_slice(BEGIN_MESSAGE);
    out.extend_from_slice(b"\nHash: ");
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(b"\n\n");
    out.extend_from_slice(body);
    out.extend_from_slice(signature_block);
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

fn join_lines<'l>(lines: impl Iterator<Item = &'l [u8]>, sep: &[u8], final_sep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        if i > 0 {
            out.extend_from_slice(sep);
        }
        out.extend_from_slice(line);
    }
    if final_sep && !out.is_empty() {
        out.extend_from_slice(sep);
    }
    out
}

/// Removes trailing spaces and tabs (and a CR, which belongs to the line ending).
fn trim_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b' ' | b'\t' | b'\r') {
        end -= 1;
    }
    &line[..end]
}

struct Line<'a> {
    text: &'a [u8],
    start: usize,
    /// Offset just past the line's content (before its line ending).
    end: usize,
    number: usize,
}

/// Splits on LF; a CR before it stays in the line and is removed by [`trim_end`].
struct Lines<'a> {
    rest: &'a [u8],
    offset: usize,
    number: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let len = self
            .rest
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(self.rest.len());
        let (text, rest) = self.rest.split_at(len);
        let rest = rest.get(1..).unwrap_or_default();
        let line = Line {
            text,
            start: self.offset,
            end: self.offset + len,
            number: self.number + 1,
        };
        self.offset += self.rest.len() - rest.len();
        self.rest = rest;
        self.number += 1;
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n";

    #[test]
    fn dash_escaping_and_trailing_whitespace() {
        let msg = format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n{{ \t\r\n- -x\n- - y  \n}}\n{SIG}"
        );
        let parsed = ClearSigned::parse(msg.as_bytes(), "m").unwrap();
        assert_eq!(parsed.hash_headers(), ["SHA512"]);
        assert_eq!(parsed.signed_text(), b"{\r\n-x\r\n- y\r\n}");
        assert_eq!(parsed.payload(), b"{\n-x\n- y\n}\n");
        assert_eq!(parsed.signature_block(), SIG.trim_end().as_bytes());
    }

    #[test]
    fn prepare_round_trips_through_parse() {
        let data = b"{\n-a  \n  b\t\r\n- c\n}\n";
        let (signed, body) = prepare(data);
        let msg = assemble(&body, "SHA512", SIG.as_bytes());
        let parsed = ClearSigned::parse(&msg, "m").unwrap();
        assert_eq!(parsed.signed_text(), signed);
        assert_eq!(parsed.payload(), b"{\n-a\n  b\n- c\n}\n");
    }

    #[test]
    fn refusals() {
        let cases = [
            ("{}\n", "no signature"),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n",
                "armor headers",
            ),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\nNotDashEscaped: x\n\n",
                "only Hash",
            ),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\n\n{}\n",
                "no -----BEGIN PGP SIGNATURE",
            ),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\n\n-x\n",
                "not dash-escaped",
            ),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\n\n{}\n-----BEGIN PGP SIGNATURE-----\n",
                "END PGP",
            ),
        ];
        for (input, expected) in cases {
            let err = ClearSigned::parse(input.as_bytes(), "f.sjson")
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{input:?}: {err}");
            assert!(err.starts_with("f.sjson: signature: "), "{err}");
        }
        let trailing = format!("-----BEGIN PGP SIGNED MESSAGE-----\n\n{{}}\n{SIG}more\n");
        let err = ClearSigned::parse(trailing.as_bytes(), "f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 8: unexpected data after"), "{err}");
    }

    #[test]
    fn is_clearsigned_looks_at_the_first_line() {
        assert!(is_clearsigned(
            b"-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA1\r\n"
        ));
        assert!(!is_clearsigned(b"{\"format\": \"index:1.0\"}"));
        assert!(!is_clearsigned(b" -----BEGIN PGP SIGNED MESSAGE-----\n"));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = ClearSigned::parse(&tail, "fuzz");
            let mut framed = b"-----BEGIN PGP SIGNED MESSAGE-----\n".to_vec();
            framed.extend_from_slice(&tail);
            let _ = ClearSigned::parse(&framed, "fuzz");
        }

        #[test]
        fn what_we_frame_parses_back_to_the_signed_text(
            lines in proptest::collection::vec("[-a-zA-Z {}\":,\t\r]{0,12}", 0..12)
        ) {
            let data = lines.join("\n");
            let (signed, body) = prepare(data.as_bytes());
            let msg = assemble(&body, "SHA512", SIG.as_bytes());
            let parsed = ClearSigned::parse(&msg, "m").unwrap();
            proptest::prop_assert_eq!(parsed.signed_text(), signed.clone());
            // The payload is the signed text with LF line endings, and a final LF unless empty.
            let mut expected = String::from_utf8(signed).unwrap().replace("\r\n", "\n");
            if !expected.is_empty() {
                expected.push('\n');
            }
            proptest::prop_assert_eq!(String::from_utf8(parsed.payload()).unwrap(), expected);
        }
    }
}
