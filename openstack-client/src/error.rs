//! The error of every OpenStack call: what went wrong, with the request's method and URL.

use std::path::PathBuf;

/// An OpenStack client error. HTTP errors carry the method, the URL (never a token or password)
/// and the start of the service's own message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The settings (`OS_*` variables, `clouds.yaml`, builder values) are incomplete or invalid.
    #[error("OpenStack settings ({origin}): {message}")]
    Config {
        /// Where the settings came from: "environment", a clouds.yaml path, "builder".
        origin: String,
        /// What is missing or wrong.
        message: String,
    },
    /// A local file (CA bundle, clouds.yaml) could not be read.
    #[error("reading {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// HTTP 401: no, a wrong or an expired token or credentials.
    #[error("{method} {url}: 401 Unauthorized: {message}")]
    Unauthorized {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// The service's message.
        message: String,
    },
    /// HTTP 403: authenticated, but not allowed.
    #[error("{method} {url}: 403 Forbidden: {message}")]
    Forbidden {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// The service's message.
        message: String,
    },
    /// HTTP 404.
    #[error("{method} {url}: 404 Not Found: {message}")]
    NotFound {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// The service's message.
        message: String,
    },
    /// HTTP 409: the resource's state forbids the request (an image already uploaded, a
    /// container not empty, ...).
    #[error("{method} {url}: 409 Conflict: {message}")]
    Conflict {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// The service's message.
        message: String,
    },
    /// HTTP 413: the body exceeds a size limit or quota.
    #[error("{method} {url}: 413 Request Entity Too Large: {message}")]
    TooLarge {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// The service's message.
        message: String,
    },
    /// HTTP 5xx, after the retries allowed for the request.
    #[error("{method} {url}: server error {status}: {message}")]
    Server {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The service's message.
        message: String,
    },
    /// Any other unexpected HTTP status.
    #[error("{method} {url}: unexpected status {status}: {message}")]
    Status {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The service's message.
        message: String,
    },
    /// The request could not be sent or the response not read (connection, TLS, timeout,
    /// a failing upload stream), after the retries allowed for the request. The cause, with
    /// its own causes, is the error's source.
    #[error("{method} {url}: no answer{}", if *.attempts > 1 { format!(" after {attempts} attempts") } else { String::new() })]
    Transport {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// A response that is not what the API documents (bad JSON, a missing header or field).
    #[error("{method} {url}: unexpected response: {message}")]
    Response {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The catalog has no endpoint for the service.
    #[error("the service catalog has no {interface} endpoint of type {service_type}{}",
        region.as_deref().map(|r| format!(" in region {r}")).unwrap_or_default())]
    NoEndpoint {
        /// Service type (`image`, `object-store`, ...).
        service_type: String,
        /// Interface (`public`, `internal`, `admin`).
        interface: String,
        /// Region asked for, if any.
        region: Option<String>,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status of an error answer from a service, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Unauthorized { .. } => Some(401),
            Error::Forbidden { .. } => Some(403),
            Error::NotFound { .. } => Some(404),
            Error::Conflict { .. } => Some(409),
            Error::TooLarge { .. } => Some(413),
            Error::Server { status, .. } | Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error for an HTTP error answer.
    pub(crate) fn from_status(method: &str, url: &str, status: u16, body: &str) -> Error {
        let (method, url, message) = (method.to_owned(), url.to_owned(), summary(body));
        match status {
            401 => Error::Unauthorized {
                method,
                url,
                message,
            },
            403 => Error::Forbidden {
                method,
                url,
                message,
            },
            404 => Error::NotFound {
                method,
                url,
                message,
            },
            409 => Error::Conflict {
                method,
                url,
                message,
            },
            413 => Error::TooLarge {
                method,
                url,
                message,
            },
            500..=599 => Error::Server {
                method,
                url,
                status,
                message,
            },
            _ => Error::Status {
                method,
                url,
                status,
                message,
            },
        }
    }

    pub(crate) fn config(origin: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Config {
            origin: origin.into(),
            message: message.into(),
        }
    }
}

/// The useful part of an error body: OpenStack services answer JSON with a `message` or
/// `title`/`description` somewhere, or HTML; keep one line of at most 300 characters.
fn summary(body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            // Glance: {"message": ..}; Keystone: {"error": {"message": ..}}; others:
            // {"<kind>": {"message": ..}}.
            let message = |v: &serde_json::Value| {
                v.get("message").and_then(|m| m.as_str()).map(str::to_owned)
            };
            message(&v).or_else(|| {
                v.as_object()
                    .filter(|o| o.len() == 1)
                    .and_then(|o| o.values().next())
                    .and_then(message)
            })
        });
    let text = from_json.unwrap_or_else(|| strip_tags(body));
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_maps_to_typed_errors_carrying_the_url() {
        let e = Error::from_status("GET", "http://h/v2/images/x", 404, "");
        assert!(matches!(e, Error::NotFound { ref url, .. } if url == "http://h/v2/images/x"));
        assert_eq!(e.status(), Some(404));
        for (status, want) in [
            (401, 401),
            (403, 403),
            (409, 409),
            (413, 413),
            (503, 503),
            (418, 418),
        ] {
            assert_eq!(
                Error::from_status("PUT", "u", status, "").status(),
                Some(want)
            );
        }
        assert!(matches!(
            Error::from_status("PUT", "u", 502, ""),
            Error::Server { .. }
        ));
        assert!(matches!(
            Error::from_status("PUT", "u", 418, ""),
            Error::Status { .. }
        ));
    }

    #[test]
    fn messages_come_from_keystone_json_and_glance_html() {
        let ks = r#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#;
        let e = Error::from_status("POST", "http://k/v3/auth/tokens", 401, ks);
        assert_eq!(
            e.to_string(),
            "POST http://k/v3/auth/tokens: 401 Unauthorized: The request you have made requires authentication."
        );
        let html = "<html>\n <head>\n  <title>409 Conflict</title>\n </head>\n <body>\n  <h1>409 Conflict</h1>\n  Image status transition from active to saving is not allowed<br /><br />\n\n\n\n </body>\n</html>";
        let e = Error::from_status("PUT", "http://g/v2/images/1/file", 409, html);
        assert!(e.to_string().ends_with(
            "409 Conflict: 409 Conflict 409 Conflict Image status transition from active to saving is not allowed"
        ), "{e}");
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = "x".repeat(1000);
        let e = Error::from_status("GET", "u", 500, &body);
        let Error::Server { message, .. } = e else {
            panic!("not a server error: {e:?}")
        };
        assert_eq!(message.chars().count(), 301);
    }
}
