//! The errors of reading a checksum-file directory as a stream: each names the file (and the
//! line, where there is one) so that the message alone says what to fix.

/// What can be wrong with a checksum file, a layout, a sidecar file or the stream they make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SumsError {
    /// A line of a checksum file (or of a `.properties` sidecar) that cannot be used: not a
    /// checksum line, an unknown or unusable algorithm, a digest of the wrong length, an unsafe
    /// file name.
    #[error("{file}:{line}: {message}")]
    Line {
        /// The file (URL or path).
        file: String,
        /// The line number, from 1, in the file as served.
        line: usize,
        /// What is wrong.
        message: String,
    },

    /// A web page was served where a checksum file was expected (a wrong URL, an error or
    /// login page, a directory listing).
    #[error("{file}: an HTML page, not a checksum file")]
    Html {
        /// The file (URL or path).
        file: String,
    },

    /// Two lines (of one checksum file, or of two in the same directory) give one file two
    /// different digests of the same kind.
    #[error("{0}")]
    Conflict(Box<Conflict>),

    /// Two files map to one item (same product, version and item name) under the layout.
    #[error("{0}")]
    Duplicate(Box<Duplicate>),

    /// A sidecar file (`<image>.properties` or `<image>.json`) that cannot be used: not a flat
    /// object, or a key that would override what the checksum file and the listing say.
    #[error("{file}: {message}")]
    Sidecar {
        /// The sidecar file (URL or path).
        file: String,
        /// What is wrong (naming the key).
        message: String,
    },

    /// A `--layout` that is neither a known name nor a usable regular expression.
    #[error("layout {spec:?}: {message}")]
    Layout {
        /// The layout as given.
        spec: String,
        /// What is wrong.
        message: String,
    },

    /// Nothing to make a stream of.
    #[error("{location}: {message}")]
    Empty {
        /// The directory or checksum file.
        location: String,
        /// Why there is nothing.
        message: String,
    },
}

/// Two digests of one kind for one file: [`SumsError::Conflict`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{file}:{line}: {name}: {kind} {digest} disagrees with {other_file}:{other_line} \
     ({other_digest}); refusing to guess which is right"
)]
pub struct Conflict {
    /// The file named by both lines.
    pub name: String,
    /// The checksum kind (`sha256`, …).
    pub kind: String,
    /// The later line's file.
    pub file: String,
    /// The later line's number.
    pub line: usize,
    /// The later line's digest.
    pub digest: String,
    /// The earlier line's file.
    pub other_file: String,
    /// The earlier line's number.
    pub other_line: usize,
    /// The earlier line's digest.
    pub other_digest: String,
}

/// Two files in one place of the stream: [`SumsError::Duplicate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{first} and {second} are both product {product} version {version} item {item} under \
     the {layout} layout; a stream cannot hold both (give a --layout that tells them apart)"
)]
pub struct Duplicate {
    /// The first file's path.
    pub first: String,
    /// The second file's path.
    pub second: String,
    /// The product.
    pub product: String,
    /// The version.
    pub version: String,
    /// The item.
    pub item: String,
    /// The layout's name.
    pub layout: String,
}
