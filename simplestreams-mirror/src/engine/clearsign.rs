//! Unwrapping OpenPGP clear-signed text (RFC 4880 §7) without verifying it, for `--no-verify`
//! and for signed files met in an unsigned stream.

use crate::error::Result;

const BEGIN: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";
const SIG: &[u8] = b"-----BEGIN PGP SIGNATURE-----";

/// Whether `raw` starts like a clear-signed message.
pub(crate) fn is_clearsigned(raw: &[u8]) -> bool {
    raw.trim_ascii_start().starts_with(BEGIN)
}

/// The signed text: armor headers skipped, dash-escaping undone, the line ending before the
/// signature dropped (it is not part of the signed text).
pub(crate) fn strip(file: &str, raw: &[u8]) -> Result<Vec<u8>> {
    let bad = |reason: &str| simplestreams_core::Error::Signature {
        file: file.into(),
        reason: reason.into(),
    };
    let mut lines = raw.trim_ascii_start().split(|b| *b == b'\n');
    lines.next(); // the BEGIN line
    for line in lines.by_ref() {
        if line.trim_ascii().is_empty() {
            break;
        }
    }
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut first = true;
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(SIG) {
            return Ok(out);
        }
        if !first {
            out.push(b'\n');
        }
        first = false;
        out.extend_from_slice(line.strip_prefix(b"- ").unwrap_or(line));
    }
    Err(bad("clear-signed message without a signature block").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_dash_escaped_text() {
        let raw = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n{\"a\": 1}\n- -x\n-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n";
        assert!(is_clearsigned(raw));
        assert_eq!(strip("f", raw).unwrap(), b"{\"a\": 1}\n-x");
        assert!(strip("f", b"-----BEGIN PGP SIGNED MESSAGE-----\n\nx\n").is_err());
    }
}
