//! What every OpenStack client of this workspace shares: settings ([`CloudConfig`]), Keystone
//! v3 authentication ([`Session`]), the service catalog ([`Catalog`]), the HTTP layer with its
//! retry policy ([`ClientOptions`]) and the error type ([`Error`]).
//!
//! `swift-target` builds its Swift client on this module; the dependency goes from
//! `swift-target` to `glance-target`, never back.

mod auth;
mod catalog;
mod config;
mod error;
pub(crate) mod http;
#[cfg(test)]
pub(crate) mod mock_server;

pub use auth::{Session, Token};
pub use catalog::{Catalog, CatalogService, Endpoint};
pub use config::{AuthType, CloudConfig, Interface};
pub use error::{Error, Result};
pub use http::ClientOptions;

/// For service clients outside this crate (`swift-target`): build and send requests through a
/// [`Session`] with its token, retries and error mapping.
pub mod request {
    pub use super::http::{encode_path, encode_segment};
    use super::{Result, Session};
    use bytes::Bytes;
    use reqwest::header::{HeaderName, HeaderValue};
    use reqwest::{Method, Response};

    /// A request to a service endpoint, sent with [`Session::execute`].
    pub struct ServiceRequest(pub(crate) super::http::Request);

    impl ServiceRequest {
        /// A request without a body. GET, HEAD, PUT, DELETE and OPTIONS count as idempotent.
        pub fn new(method: Method, url: impl Into<String>) -> Self {
            ServiceRequest(super::http::Request::new(method, url))
        }

        /// Adds a header.
        pub fn header(self, name: HeaderName, value: HeaderValue) -> Self {
            ServiceRequest(self.0.header(name, value))
        }

        /// A body held in memory (sent again on retries).
        pub fn bytes(self, content_type: &'static str, body: Bytes) -> Self {
            ServiceRequest(self.0.bytes(content_type, body))
        }

        /// A streamed body (sent once: the request is not retried).
        pub fn stream(self, content_type: &'static str, body: reqwest::Body) -> Self {
            ServiceRequest(self.0.stream(content_type, body))
        }

        /// Whether the request may be sent again after an error answer or a dropped connection.
        pub fn idempotent(self, yes: bool) -> Self {
            ServiceRequest(self.0.idempotent(yes))
        }
    }

    impl Session {
        /// Sends a service request with the session's token: retried when safe, the token
        /// renewed once on a 401, and an error answer turned into the matching
        /// [`Error`](super::Error). The response has a 2xx or 3xx status.
        pub async fn execute(&self, req: ServiceRequest) -> Result<Response> {
            self.send(req.0).await
        }
    }

    /// Reads a JSON response body, naming the request in the error.
    pub async fn json<T: serde::de::DeserializeOwned>(
        method: &Method,
        url: &str,
        resp: Response,
    ) -> Result<T> {
        super::http::json(method, url, resp).await
    }
}
