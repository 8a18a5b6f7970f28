//! The one error type of this crate: each variant names the file (local or in the store), the
//! item or the JSON field it is about, so that a message is actionable on its own.

use std::path::PathBuf;

/// Everything that can stop a publishing operation. Nothing is published when one is returned
/// (the repository stays as it was, consumable).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed (or refused a path, or is locked by a sync).
    #[error(transparent)]
    Store(#[from] simplestreams_mirror::Error),

    /// Metadata already in the repository cannot be read: the core's error names the file and
    /// the JSON field. Nothing is changed (it is never silently rewritten).
    #[error("{source}; the repository's metadata is corrupt, refusing to change it")]
    Corrupt {
        /// The parse error, with file and field.
        #[source]
        source: simplestreams_core::Error,
    },

    /// An existing `.sjson` does not verify against the key given: another key signed it (or
    /// it was tampered with). Re-signing it would hide that.
    #[error(
        "{file}: signed by another key (or tampered with): {reason}; refusing to re-sign it \
         (give the key that signed it)"
    )]
    SignedByAnotherKey {
        /// The signed file.
        file: String,
        /// Why it does not verify.
        reason: String,
    },

    /// The repository is signed and no key was given: changing it would leave its signatures
    /// stale or remove them.
    #[error(
        "{file}: the repository is signed; give its signing key to change it (or allow \
         unsigning: its signatures are then removed)"
    )]
    SignedRepo {
        /// The signed file found.
        file: String,
    },

    /// A local file could not be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// A file's type is not recognised from its content and no `ftype` was given.
    #[error(
        "{}: cannot tell what kind of image this is from its content (not qcow2, vmdk, vhd(x), \
         iso, squashfs, a raw disk, tar or a compressed file); give its ftype (--ftype)",
        .path.display()
    )]
    UnknownType {
        /// The file.
        path: PathBuf,
    },

    /// An image lacks something needed to place it (a product id and the fields that make
    /// one, a path template field, …).
    #[error("{image}: {message}")]
    Incomplete {
        /// The image (its file).
        image: String,
        /// What is missing.
        message: String,
    },

    /// Two different files claim the same content id, product, version and item.
    #[error("{item}: claimed by two different files: {first} and {second}")]
    Conflict {
        /// `content_id product version item`.
        item: String,
        /// The file (or published path and sha256) that has it already.
        first: String,
        /// The file that claims it too.
        second: String,
    },

    /// A path in the store is already named by an item with other content.
    #[error("{path}: already holds {owner} (other content); refusing to overwrite it with {file}")]
    PathTaken {
        /// The path in the store.
        path: String,
        /// The item that names it.
        owner: String,
        /// The file that would overwrite it.
        file: String,
    },

    /// A file changed while it was being added, or does not match the size or checksums its
    /// metadata gives.
    #[error("{file}: {source}")]
    Content {
        /// The file.
        file: String,
        /// The size or checksum mismatch.
        #[source]
        source: simplestreams_core::Error,
    },

    /// A manifest or flat item list is wrong at a given line (or item).
    #[error("{file}:{line}: {message}")]
    Manifest {
        /// The manifest file.
        file: String,
        /// The line (1-based), or the item number for a JSON item list.
        line: usize,
        /// What is wrong.
        message: String,
    },

    /// A product, version or stream asked for is not in the repository.
    #[error("{0}: not in the repository")]
    NotFound(String),

    /// An argument does not make sense (an ambiguous stream name, a reserved field, …).
    #[error("{0}")]
    Invalid(String),
}

impl From<simplestreams_core::Error> for Error {
    fn from(e: simplestreams_core::Error) -> Error {
        Error::Store(e.into())
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
