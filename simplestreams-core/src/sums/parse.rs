//! Checksum files as distributions publish them beside their images:
//!
//! - GNU coreutils (`sha256sum`): `HASH  NAME` (text mode) or `HASH *NAME` (binary mode), a
//!   leading `\` when the name was escaped; Ubuntu's `SHA256SUMS`, Debian's `SHA512SUMS`, any
//!   `MD5SUMS`;
//! - BSD / `--tag` / OpenSSL: `ALGO (NAME) = HASH`, as in Fedora's `*-CHECKSUM` files, which
//!   also carry `# NAME: SIZE` comments (the only sizes a checksum file ever gives).
//!
//! The algorithm of a GNU line comes from the file name (`SHA256SUMS`, `SHA512SUMS`,
//! `MD5SUMS`), else from the digest's length; a BSD line names its own. Blank lines and `#`
//! comments are skipped; any other line that does not parse is refused, naming the file and the
//! line, and so is a name that would leave the directory (`..`, absolute, see
//! [`crate::check_safe_path`]). A leading `./` is dropped (`sha256sum ./*` writes it).

use std::collections::BTreeMap;

use crate::error::ChecksumKind;
use crate::safe_path::check_safe_path;

use super::error::SumsError;

/// The checksum file names read when a directory names none: strongest first.
pub const STANDARD_SUMS: [&str; 3] = ["SHA512SUMS", "SHA256SUMS", "MD5SUMS"];

/// The suffixes of a detached signature of a checksum file, in the order they are looked for
/// (`SHA256SUMS.gpg` as Ubuntu publishes it, `.sign`, `.asc`).
pub const SIGNATURE_SUFFIXES: [&str; 3] = [".gpg", ".sign", ".asc"];

/// Whether `name` (a file name, no directory) is a checksum file by its name:
/// one of [`STANDARD_SUMS`], or Fedora's `…-CHECKSUM`.
pub fn is_checksum_file_name(name: &str) -> bool {
    STANDARD_SUMS.contains(&name) || name == "CHECKSUM" || name.ends_with("-CHECKSUM")
}

/// Whether `name` is a detached signature (`.gpg`, `.sign`, `.asc`, `.sig`).
pub fn is_signature_name(name: &str) -> bool {
    SIGNATURE_SUFFIXES.iter().any(|s| name.ends_with(s)) || name.ends_with(".sig")
}

/// The algorithm a checksum file's name announces (`SHA256SUMS` → sha256), if any.
pub fn kind_from_file_name(name: &str) -> Option<ChecksumKind> {
    let upper = name.to_ascii_uppercase();
    let stem = upper.strip_suffix(".TXT").unwrap_or(&upper);
    if stem.starts_with("SHA512") || stem.ends_with("SHA512SUMS") {
        Some(ChecksumKind::Sha512)
    } else if stem.starts_with("SHA256") || stem.ends_with("SHA256SUMS") {
        Some(ChecksumKind::Sha256)
    } else if stem.starts_with("MD5") || stem.ends_with("MD5SUMS") {
        Some(ChecksumKind::Md5)
    } else {
        None
    }
}

/// One file listed by a checksum file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumsEntry {
    /// Its path relative to the checksum file's directory (checked safe).
    pub name: String,
    /// The algorithm.
    pub kind: ChecksumKind,
    /// The digest, lower-case hex of the algorithm's length.
    pub digest: String,
    /// The line it was read from (from 1, in the file as served).
    pub line: usize,
}

/// A parsed checksum file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChecksumFile {
    /// The file (URL or path), as errors name it.
    pub file: String,
    /// The files listed, in file order, each name and kind once.
    pub entries: Vec<SumsEntry>,
    /// Sizes given by `# NAME: SIZE` comments (Fedora), by name.
    pub sizes: BTreeMap<String, u64>,
}

/// Whether `bytes` are a web page rather than a checksum file: a checksum file never starts
/// with `<`, an HTML page (or an XML error from an object store) always does.
pub fn looks_like_html(bytes: &[u8]) -> bool {
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    text.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'<')
}

/// The line number (from 1) of the first line of the payload of a clear-signed file `raw`
/// (after the `-----BEGIN PGP SIGNED MESSAGE-----` line, its `Hash:` headers and the blank
/// line), so that errors about the payload name lines of the file as served; 1 for a file
/// that is not clear-signed.
pub fn payload_first_line(raw: &[u8]) -> usize {
    let text = raw.strip_prefix(b"\xef\xbb\xbf").unwrap_or(raw);
    if !text.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----") {
        return 1;
    }
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        if i > 0 && line.trim_ascii().is_empty() {
            return i + 2;
        }
    }
    1
}

impl ChecksumFile {
    /// Parses the text of a checksum file. `name` is its file name (it may announce the
    /// algorithm), `file` its URL or path for errors, `first_line` the number of its first
    /// line in the file as served (see [`payload_first_line`]; 1 for an unsigned file).
    ///
    /// ```
    /// use simplestreams_core::sums::ChecksumFile;
    /// let text = "\
    /// 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 *noble-server-cloudimg-amd64.img
    /// ";
    /// let sums = ChecksumFile::parse(text.as_bytes(), "SHA256SUMS", "http://h/SHA256SUMS", 1).unwrap();
    /// assert_eq!(sums.entries[0].name, "noble-server-cloudimg-amd64.img");
    /// assert_eq!(sums.entries[0].kind.field(), "sha256");
    /// ```
    pub fn parse(
        bytes: &[u8],
        name: &str,
        file: &str,
        first_line: usize,
    ) -> Result<ChecksumFile, SumsError> {
        if looks_like_html(bytes) {
            return Err(SumsError::Html { file: file.into() });
        }
        let named_kind = kind_from_file_name(name);
        let mut out = ChecksumFile {
            file: file.to_string(),
            ..ChecksumFile::default()
        };
        let mut seen: BTreeMap<(String, ChecksumKind), usize> = BTreeMap::new();
        let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        for (i, raw) in body.split(|b| *b == b'\n').enumerate() {
            let line_no = first_line + i;
            let err = |message: String| SumsError::Line {
                file: file.to_string(),
                line: line_no,
                message,
            };
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let line = std::str::from_utf8(raw).map_err(|_| err("not UTF-8 text".into()))?;
            if line.trim().is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                if let Some((n, size)) = size_comment(comment) {
                    out.sizes.insert(n, size);
                }
                continue;
            }
            if line.starts_with("-----BEGIN PGP") || line.starts_with("-----END PGP") {
                return Err(err(
                    "an OpenPGP armor line: the signature was not taken off this file".into(),
                ));
            }
            let (kind, entry_name, hex) = parse_line(line, named_kind).map_err(err)?;
            let entry_name = normalise_name(&entry_name);
            check_safe_path(&entry_name).map_err(|e| err(e.to_string()))?;
            let digest = hex.to_ascii_lowercase();
            match seen.get(&(entry_name.clone(), kind)) {
                Some(&at) if out.entries[at].digest == digest => continue,
                Some(&at) => {
                    let first = &out.entries[at];
                    return Err(SumsError::Conflict(Box::new(super::error::Conflict {
                        name: entry_name,
                        kind: kind.to_string(),
                        file: file.to_string(),
                        line: line_no,
                        digest,
                        other_file: file.to_string(),
                        other_line: first.line,
                        other_digest: first.digest.clone(),
                    })));
                }
                None => {}
            }
            seen.insert((entry_name.clone(), kind), out.entries.len());
            out.entries.push(SumsEntry {
                name: entry_name,
                kind,
                digest,
                line: line_no,
            });
        }
        Ok(out)
    }
}

/// `# NAME: SIZE` (Fedora's CHECKSUM files).
fn size_comment(comment: &str) -> Option<(String, u64)> {
    let (name, size) = comment.trim().rsplit_once(": ")?;
    let size = size.trim();
    if name.is_empty() || size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((normalise_name(name.trim()), size.parse().ok()?))
}

fn normalise_name(name: &str) -> String {
    let mut n = name;
    while let Some(rest) = n.strip_prefix("./") {
        n = rest;
    }
    n.to_string()
}

/// One checksum line: (kind, name, hex digest), or why it is not one.
fn parse_line(
    line: &str,
    named_kind: Option<ChecksumKind>,
) -> Result<(ChecksumKind, String, String), String> {
    if let Some(bsd) = parse_bsd(line)? {
        return Ok(bsd);
    }
    parse_gnu(line, named_kind)
}

/// `ALGO (NAME) = HASH` (`ALGO(NAME)= HASH` from OpenSSL), or `None` when the line does not
/// have that shape.
fn parse_bsd(line: &str) -> Result<Option<(ChecksumKind, String, String)>, String> {
    let Some(open) = line.find('(') else {
        return Ok(None);
    };
    let tag = line[..open].trim_end();
    if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Ok(None);
    }
    let Some(close) = line.rfind(')') else {
        return Ok(None);
    };
    let after = line[close + 1..].trim_start();
    let Some(hex) = after.strip_prefix('=') else {
        return Ok(None);
    };
    if close <= open {
        return Ok(None);
    }
    let name = &line[open + 1..close];
    let hex = hex.trim();
    let kind = match tag.to_ascii_uppercase().replace('-', "").as_str() {
        "MD5" => ChecksumKind::Md5,
        "SHA256" | "SHA2256" => ChecksumKind::Sha256,
        "SHA512" | "SHA2512" => ChecksumKind::Sha512,
        "SHA1" | "SHA224" | "SHA384" | "SHA2224" | "SHA2384" => {
            return Err(format!(
                "{tag} is not a checksum simplestreams items carry (md5, sha256, sha512)"
            ))
        }
        _ => return Err(format!("unknown checksum algorithm {tag:?}")),
    };
    if name.is_empty() {
        return Err("no file name".into());
    }
    check_hex(hex, kind)?;
    Ok(Some((kind, name.to_string(), hex.to_string())))
}

/// `HASH  NAME` or `HASH *NAME` (one space tolerated), a leading `\` for an escaped name.
fn parse_gnu(
    line: &str,
    named_kind: Option<ChecksumKind>,
) -> Result<(ChecksumKind, String, String), String> {
    let shape = || {
        "not a checksum line (expected `HASH  NAME`, `HASH *NAME` or `ALGO (NAME) = HASH`)"
            .to_string()
    };
    let (escaped, line) = match line.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let hex_end = line
        .find(|c: char| !c.is_ascii_hexdigit())
        .ok_or_else(shape)?;
    let (hex, rest) = line.split_at(hex_end);
    if hex.is_empty() {
        return Err(shape());
    }
    let rest = rest.strip_prefix(' ').ok_or_else(shape)?;
    let rest = rest
        .strip_prefix(' ')
        .or_else(|| rest.strip_prefix('*'))
        .unwrap_or(rest);
    if rest.is_empty() {
        return Err("no file name".into());
    }
    let name = if escaped {
        unescape(rest)?
    } else {
        rest.to_string()
    };
    let kind = match named_kind {
        Some(k) => k,
        None => kind_of_length(hex.len())?,
    };
    check_hex(hex, kind)?;
    Ok((kind, name, hex.to_string()))
}

fn kind_of_length(len: usize) -> Result<ChecksumKind, String> {
    match len {
        32 => Ok(ChecksumKind::Md5),
        64 => Ok(ChecksumKind::Sha256),
        128 => Ok(ChecksumKind::Sha512),
        40 | 56 | 96 => Err(format!(
            "a {len}-digit digest (sha1, sha224 or sha384): not a checksum simplestreams items \
             carry (md5, sha256, sha512)"
        )),
        _ => Err(format!("a {len}-digit digest is no known checksum")),
    }
}

fn check_hex(hex: &str, kind: ChecksumKind) -> Result<(), String> {
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{kind} digest {hex:?} is not hexadecimal"));
    }
    if hex.len() != kind.hex_len() {
        return Err(format!(
            "a {}-digit digest where {kind} has {}",
            hex.len(),
            kind.hex_len()
        ));
    }
    Ok(())
}

/// GNU's escaping of names with a backslash or a newline: `\\` and `\n`.
fn unescape(name: &str) -> Result<String, String> {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            other => return Err(format!("bad escape \\{}", other.unwrap_or(' '))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H64: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

    fn parse(text: &str, name: &str) -> Result<ChecksumFile, SumsError> {
        ChecksumFile::parse(text.as_bytes(), name, "F", 1)
    }

    #[test]
    fn gnu_text_and_binary_lines_and_a_leading_dot_slash() {
        let text = format!("{H64}  a.img\n{H64} *b.img\r\n\n{H64}  ./c d.img\n");
        let f = parse(&text, "SHA256SUMS").expect("parse");
        let names: Vec<_> = f.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a.img", "b.img", "c d.img"]);
        assert_eq!(f.entries[2].line, 4);
    }

    #[test]
    fn the_algorithm_comes_from_the_name_the_tag_or_the_length() {
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        let f = parse(&format!("{md5}  x\n"), "whatever.sums").expect("by length");
        assert_eq!(f.entries[0].kind, ChecksumKind::Md5);
        let err = parse(&format!("{md5}  x\n"), "SHA256SUMS").expect_err("wrong length");
        assert!(
            err.to_string()
                .contains("F:1: a 32-digit digest where sha256"),
            "{err}"
        );
        let f = parse(&format!("SHA256 (x.qcow2) = {H64}\n"), "Fedora-41-CHECKSUM").expect("bsd");
        assert_eq!(f.entries[0].kind, ChecksumKind::Sha256);
        let f = parse(&format!("SHA2-256(x.qcow2)= {H64}\n"), "sums").expect("openssl");
        assert_eq!(f.entries[0].name, "x.qcow2");
        let sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
        let err = parse(&format!("{sha1}  x\n"), "SUMS").expect_err("sha1");
        assert!(err.to_string().contains("sha1"), "{err}");
    }

    #[test]
    fn fedora_size_comments_are_read() {
        let text = format!(
            "# Fedora-x.qcow2: 571342848\n# other comment\nSHA256 (Fedora-x.qcow2) = {H64}\n"
        );
        let f = parse(&text, "Fedora-CHECKSUM").expect("parse");
        assert_eq!(f.sizes.get("Fedora-x.qcow2"), Some(&571342848));
        assert_eq!(f.entries[0].line, 3);
    }

    #[test]
    fn duplicates_agree_or_are_refused() {
        let other = H64.replace('5', "6");
        let f = parse(&format!("{H64}  a\n{H64}  a\n"), "SHA256SUMS").expect("same twice");
        assert_eq!(f.entries.len(), 1);
        let err = parse(&format!("{H64}  a\n{other}  a\n"), "SHA256SUMS").expect_err("differ");
        assert!(err.to_string().starts_with("F:2: a: sha256"), "{err}");
        assert!(err.to_string().contains("F:1"), "{err}");
    }

    #[test]
    fn escaped_names_are_unescaped_then_judged() {
        let err = parse(&format!("\\{H64}  a\\\\b\n"), "SHA256SUMS").expect_err("backslash");
        assert!(err.to_string().contains("backslash"), "{err}");
    }

    #[test]
    fn clear_signed_payloads_keep_the_served_line_numbers() {
        let raw = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nfirst\n";
        assert_eq!(payload_first_line(raw), 4);
        assert_eq!(payload_first_line(b"abc\n"), 1);
    }
}
