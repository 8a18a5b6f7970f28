//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while reading a source or writing a target.
///
/// Variants carry the URL, path or item they are about, so that a message is actionable on its
/// own; backend errors (reqwest, I/O) are converted into these at the boundary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The object does not exist (HTTP 404, no such file, no such key).
    #[error("{location}: not found")]
    NotFound {
        /// URL or path.
        location: String,
    },

    /// An HTTP server answered with an error status (after retries, for retryable ones).
    #[error("{url}: HTTP {status}{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Http {
        /// The URL requested.
        url: String,
        /// Status code.
        status: u16,
        /// Extra detail (for example the number of attempts).
        message: String,
    },

    /// The request never got an answer: connection refused or reset, timeout, TLS failure.
    #[error("{url}: {message}")]
    Transport {
        /// The URL requested.
        url: String,
        /// What happened (the underlying error, and the number of attempts).
        message: String,
    },

    /// A local file operation failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A source or target location could not be understood.
    #[error("{location}: {message}")]
    Location {
        /// The location as given.
        location: String,
        /// What is wrong with it.
        message: String,
    },

    /// Another sync holds the target's lock.
    #[error("{target} is locked by another sync ({message}); wait for it to finish")]
    Locked {
        /// The target (directory or store).
        target: String,
        /// Detail from the lock.
        message: String,
    },

    /// Content failed verification while being fetched: names the item, where it came from
    /// and what failed (size or which checksum).
    #[error("{item} from {url}: {source}")]
    Verify {
        /// The item (`content_id product version item`).
        item: String,
        /// Where its bytes came from.
        url: String,
        /// The size or checksum failure.
        #[source]
        source: Box<simplestreams_core::Error>,
    },

    /// An item could not be fetched or stored: names the item and its URL.
    #[error("{item} from {url}: {source}")]
    Item {
        /// The item (`content_id product version item`).
        item: String,
        /// Where its bytes came from.
        url: String,
        /// Why.
        #[source]
        source: Box<Error>,
    },

    /// Metadata could not be parsed, a path was unsafe, a signature failed: from the core.
    #[error(transparent)]
    Core(Box<simplestreams_core::Error>),

    /// The state file of a target could not be read or written.
    #[error("{path}: state: {message}")]
    State {
        /// Where the state lives.
        path: String,
        /// What is wrong.
        message: String,
    },

    /// The stream of bytes being stored was aborted by its producer (for example a failed
    /// verification); nothing was published.
    #[error("aborted: {0}")]
    Aborted(String),
}

impl From<simplestreams_core::Error> for Error {
    fn from(e: simplestreams_core::Error) -> Error {
        Error::Core(Box::new(e))
    }
}

impl Error {
    /// Whether this is [`Error::NotFound`] (or a wrapped one).
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::NotFound { .. } => true,
            Error::Item { source, .. } => source.is_not_found(),
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        if source.kind() == std::io::ErrorKind::NotFound {
            return Error::NotFound {
                location: path.into().display().to_string(),
            };
        }
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
