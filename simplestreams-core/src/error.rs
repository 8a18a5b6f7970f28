//! The one error type of this crate.

use std::fmt;

/// A checksum algorithm that simplestreams items carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChecksumKind {
    /// `md5`
    Md5,
    /// `sha256`
    Sha256,
    /// `sha512`
    Sha512,
}

impl ChecksumKind {
    /// Every kind, weakest first.
    pub const ALL: [ChecksumKind; 3] = [
        ChecksumKind::Md5,
        ChecksumKind::Sha256,
        ChecksumKind::Sha512,
    ];

    /// The field name used in simplestreams items (`md5`, `sha256`, `sha512`).
    pub fn field(self) -> &'static str {
        match self {
            ChecksumKind::Md5 => "md5",
            ChecksumKind::Sha256 => "sha256",
            ChecksumKind::Sha512 => "sha512",
        }
    }

    /// Length of the hex digest.
    pub fn hex_len(self) -> usize {
        match self {
            ChecksumKind::Md5 => 32,
            ChecksumKind::Sha256 => 64,
            ChecksumKind::Sha512 => 128,
        }
    }
}

impl fmt::Display for ChecksumKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field())
    }
}

/// Everything that can go wrong in `simplestreams-core`.
///
/// Variants carry the file (or URL) and, where there is one, the JSON path of the offending field,
/// so that a message is actionable without a debugger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The document is not JSON, or a field has the wrong JSON type.
    #[error("{file}: {json_path}: {message}")]
    Json {
        /// File or URL the document came from.
        file: String,
        /// Dotted path of the field (`products.P.versions.V.items.I.size`), or `(document)`.
        json_path: String,
        /// What is wrong.
        message: String,
    },

    /// A field has a value that simplestreams does not allow.
    #[error("{file}: {json_path}: {message}")]
    Field {
        /// File or URL the document came from.
        file: String,
        /// Dotted path of the field.
        json_path: String,
        /// What is wrong.
        message: String,
    },

    /// A filter expression could not be parsed.
    #[error("bad filter {expression:?}: {message} (expected KEY=VALUE, KEY!=VALUE, KEY~REGEX or KEY!~REGEX)")]
    Filter {
        /// The expression as given.
        expression: String,
        /// What is wrong.
        message: String,
    },

    /// A `path` would escape the mirror root.
    #[error("unsafe path {path:?}: {reason}")]
    UnsafePath {
        /// The path as found in the metadata.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// Content did not match its expected size.
    #[error("{item}: size mismatch: expected {expected} bytes, got {found}")]
    Size {
        /// Item identity or path.
        item: String,
        /// Size the metadata announced.
        expected: u64,
        /// Bytes actually seen (so far, if more arrived than expected).
        found: u64,
    },

    /// Content did not match a checksum.
    #[error("{item}: {kind} mismatch: expected {expected}, got {found}")]
    Checksum {
        /// Item identity or path.
        item: String,
        /// Which checksum failed.
        kind: ChecksumKind,
        /// Digest the metadata announced.
        expected: String,
        /// Digest of the bytes seen.
        found: String,
    },

    /// An item that names a `path` has no size or no checksum, so it cannot be verified.
    #[error("{item}: cannot verify: {message}")]
    Unverifiable {
        /// Item identity or path.
        item: String,
        /// What is missing.
        message: String,
    },

    /// An OpenPGP signature is missing, bad, or made by a key we do not trust.
    #[error("{file}: signature: {reason}")]
    Signature {
        /// File or URL whose signature failed.
        file: String,
        /// Why.
        reason: String,
    },

    /// A key or keyring could not be read or used.
    #[error("{source_name}: key: {reason}")]
    Key {
        /// Where the key came from.
        source_name: String,
        /// Why.
        reason: String,
    },

    /// Invalid arguments to an operation (for example `keep` without `max`).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
