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

    /// The request never got an answer, or its body was cut: connection refused or reset,
    /// timeout, TLS failure. The underlying error, with its causes, is the source.
    #[error("{url}: {message}")]
    Transport {
        /// The URL requested.
        url: String,
        /// What happened (and after how many attempts).
        message: String,
        /// The cause.
        #[source]
        source: Option<BoxError>,
    },

    /// A storage or image service (Glance, Swift, an object store) failed: its own typed
    /// error, which names the request, with its causes.
    #[error(transparent)]
    Service(BoxError),

    /// A local file operation failed.
    #[error("{}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A source served a metadata file older than one it served before: a rollback, which
    /// an attacker replaying validly signed old metadata would cause. Nothing was written.
    #[error(
        "{url}: updated {got:?} is older than {seen:?}, seen from this source before; \
             refusing to roll the mirror back (--allow-rollback accepts it)"
    )]
    Rollback {
        /// The file.
        url: String,
        /// The newest `updated` seen before.
        seen: String,
        /// The `updated` served now.
        got: String,
    },

    /// A metadata file is larger than the limit set for metadata.
    #[error("{location}: larger than the {} MiB allowed for a metadata file (--max-metadata-size)", .limit >> 20)]
    TooLarge {
        /// URL or path.
        location: String,
        /// The limit, in bytes.
        limit: u64,
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

    /// The sync was stopped (a signal) before it finished; what it had published stays, what
    /// was in flight was cleaned up.
    #[error("interrupted")]
    Interrupted,

    /// The stream of bytes being stored was aborted by its producer (for example a failed
    /// verification); nothing was published.
    #[error("aborted: {0}")]
    Aborted(String),
}

/// Any error, as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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

    /// A transport failure of `url`, with its cause.
    pub fn transport(url: &str, message: impl Into<String>, source: impl Into<BoxError>) -> Error {
        Error::Transport {
            url: url.to_string(),
            message: message.into(),
            source: Some(source.into()),
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
