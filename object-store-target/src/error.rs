//! Errors of the `object_store` crate, as the sync engine's [`Error`].

use object_store::client::{HttpError, HttpErrorKind};
use simplestreams_mirror::Error;

/// A request to the object store failed: which operation, on which object (by the store's URL),
/// and why in a few words; the `object_store` error, which names the HTTP request (method and
/// endpoint URL) and its causes, is the [`std::error::Error::source`].
///
/// The engine sees it as [`Error::Service`]; downcast to reach the `object_store` error.
#[derive(Debug, thiserror::Error)]
#[error("{operation} {location}: {}", summary(.source))]
pub struct ObjectStoreError {
    /// What was being done: `get`, `put`, `list`, ...
    pub operation: &'static str,
    /// The object (or prefix), as `URL/PATH` of the store.
    pub location: String,
    /// The error of the `object_store` crate.
    #[source]
    pub source: object_store::Error,
}

impl ObjectStoreError {
    /// The `object_store` error.
    pub fn inner(&self) -> &object_store::Error {
        &self.source
    }
}

/// A few words on what went wrong; the details follow in the source chain.
fn summary(e: &object_store::Error) -> &'static str {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => "not found",
        E::AlreadyExists { .. } => "already exists",
        E::Precondition { .. } => "precondition failed",
        E::NotModified { .. } => "not modified",
        E::PermissionDenied { .. } => "permission denied",
        E::Unauthenticated { .. } => "not authenticated (check the credentials)",
        E::NotSupported { .. } | E::NotImplemented { .. } => "not supported by this store",
        E::InvalidPath { .. } => "invalid path",
        E::UnknownConfigurationKey { .. } => "unknown configuration key",
        _ => match http_error_kind(e) {
            Some(HttpErrorKind::Connect) => "no answer from the endpoint (connection failed)",
            Some(HttpErrorKind::Timeout) => "the endpoint did not answer in time",
            Some(_) => "the request or its answer failed",
            None if is_status(e, 501) => "not implemented by the server",
            None => "request failed",
        },
    }
}

/// The kind of the HTTP failure somewhere in the chain of `e`, if it is one.
fn http_error_kind(e: &object_store::Error) -> Option<HttpErrorKind> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(h) = c.downcast_ref::<HttpError>() {
            return Some(h.kind());
        }
        cause = c.source();
    }
    None
}

/// Whether the server answered `status` (`object_store` keeps the status in a private type;
/// its message is "... non-2xx status code: 501 Not Implemented ...").
pub(crate) fn is_status(e: &object_store::Error, status: u16) -> bool {
    let needle = format!("status code: {status} ");
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.to_string().contains(&needle) {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Converts an `object_store` error on `location`: not found is [`Error::NotFound`], anything
/// else an [`Error::Service`] holding an [`ObjectStoreError`].
pub(crate) fn convert(operation: &'static str, location: String, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::NotFound { location },
        source => Error::Service(Box::new(ObjectStoreError {
            operation,
            location,
            source,
        })),
    }
}
