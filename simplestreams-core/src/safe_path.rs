//! Path safety: every `path` in simplestreams metadata is relative to the mirror root and must
//! never reach outside it, whatever the target (a directory, an object store, a URL).

use crate::error::{Error, Result};

/// Checks that `path` (from metadata) is a safe relative path below a mirror root.
///
/// Refused: empty paths, absolute paths (`/x`, `C:\x`, `\\server`), any `..` component, NUL or
/// other control characters, backslashes (a Windows separator that would let `..\` slip past a
/// `/`-only check), empty components (`a//b`) and `.` components.
///
/// ```
/// use simplestreams_core::check_safe_path;
/// assert!(check_safe_path("files/release-2024/disk1.img").is_ok());
/// assert!(check_safe_path("../etc/passwd").is_err());
/// assert!(check_safe_path("/etc/passwd").is_err());
/// ```
pub fn check_safe_path(path: &str) -> Result<()> {
    let refuse = |reason: &'static str| {
        Err(Error::UnsafePath {
            path: path.to_string(),
            reason,
        })
    };
    if path.is_empty() {
        return refuse("empty path");
    }
    // This runs for every item of large streams, so the usual case is kept cheap: one
    // branch-free pass over the bytes (which the compiler vectorises) for bytes that need the
    // per-character checks below, and a memchr walk over the separators for bad components.
    let bytes = path.as_bytes();
    let unusual = bytes.iter().fold(false, |acc, &b| {
        acc | (b < 0x20) | (b == 0x7f) | (b == b'\\') | (b >= 0x80)
    });
    let mut bad_component = None;
    let mut start = 0;
    for slash in memchr::memchr_iter(b'/', bytes) {
        bad_component = bad_component.or_else(|| component_problem(&bytes[start..slash]));
        start = slash + 1;
    }
    bad_component = bad_component.or_else(|| component_problem(&bytes[start..]));
    if unusual {
        if path.contains('\0') {
            return refuse("contains a NUL byte");
        }
        if path.chars().any(|c| c.is_control()) {
            return refuse("contains a control character");
        }
        if path.contains('\\') {
            return refuse("contains a backslash");
        }
    }
    if path.starts_with('/') {
        return refuse("is absolute");
    }
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return refuse("is absolute (drive letter)");
    }
    if let Some(reason) = bad_component {
        return refuse(reason);
    }
    Ok(())
}

/// Why a path component is refused, if it is.
fn component_problem(component: &[u8]) -> Option<&'static str> {
    match component {
        b".." => Some("contains a '..' component"),
        b"." => Some("contains a '.' component"),
        b"" => Some("contains an empty component"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        for p in [
            "a",
            "server/releases/xenial/release-20161101/ubuntu-16.04-server-cloudimg-amd64-disk1.img",
            "files/beta-2/x.tar.gz",
            "a/...b/c",
            "streams/v1/com.ubuntu.cloud:released:download.json",
        ] {
            assert!(check_safe_path(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn refuses_escapes() {
        for p in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/..",
            "..",
            "a\\..\\x",
            "C:\\x",
            "c:x",
            "a\0b",
            "a//b",
            "./a",
            "a/\nb",
        ] {
            assert!(check_safe_path(p).is_err(), "{p:?} should be refused");
        }
    }
}
