//! Scripted routes: replies queued per method + path and answered in order, for tests of API
//! clients (retries, token renewal, error mapping) where the exact sequence of answers matters
//! and no file would do.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::fault::Plan;
use super::normalise;
use super::respond::Response;

/// The status answered when a route's replies are used up: outside the registered range, so
/// no client mistakes it for a real answer and the test fails where the script fell short.
pub(crate) const EXHAUSTED: u16 = 599;

/// One scripted answer to a request on a route: a status, headers and a body.
///
/// The server frames the body itself (`Content-Length`, or none for `204` and `304`), so a
/// `Content-Length` or `Transfer-Encoding` header given here is left out; to announce a wrong
/// length, use [`Fault::LengthOffBy`](super::Fault::LengthOffBy) on the path.
///
/// ```
/// use simplestreams_testutil::http_server::Reply;
///
/// let created = Reply::new(201, r#"{"id": "a"}"#).header("Content-Type", "application/json");
/// assert_eq!(created.status, 201);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// Headers, in the order they are sent.
    pub headers: Vec<(String, String)>,
    /// The body (sent whole except to a `HEAD`, and never with `204` or `304`).
    pub body: Vec<u8>,
}

impl Reply {
    /// A reply with this status and body and no headers.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn into_response(self) -> Response {
        let headers = self
            .headers
            .into_iter()
            .filter(|(name, _)| {
                !name.eq_ignore_ascii_case("content-length")
                    && !name.eq_ignore_ascii_case("transfer-encoding")
            })
            .collect();
        let end = self.body.len();
        Response {
            status: self.status,
            headers,
            body: Arc::new(self.body),
            start: 0,
            end,
        }
    }
}

/// The replies still to answer, by route key (`"METHOD /path"`).
#[derive(Debug, Default)]
pub(crate) struct Routes {
    queues: HashMap<String, VecDeque<Reply>>,
}

impl Routes {
    /// Appends `replies` to the queue of `route` (`"METHOD /path"`).
    ///
    /// # Panics
    /// When `route` is not a method, one space and a path without a query (see [`parse`]).
    pub(crate) fn add(&mut self, route: &str, replies: Vec<Reply>) {
        self.queues.entry(parse(route)).or_default().extend(replies);
    }

    /// Whether `key` (from [`key`]) is scripted, even if none of its replies are left: a
    /// scripted route never falls back to a file, so a short script shows as such.
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.queues.contains_key(key)
    }

    /// Takes the next reply for `key`, if any is left.
    pub(crate) fn next(&mut self, key: &str) -> Option<Reply> {
        self.queues.get_mut(key)?.pop_front()
    }
}

/// The route key of a request: its method and its decoded path, without the query.
pub(crate) fn key(method: &str, path: &str) -> String {
    format!("{method} {path}")
}

/// Normalises a route as a test writes it (`"POST /v3/auth/tokens"`, or without the leading
/// `/`) to a key. The method is kept as written: HTTP methods are case-sensitive.
///
/// # Panics
/// When `route` is not a method, a space and a path, or the path has a query or fragment,
/// which would never match: routes match on the path alone.
pub(crate) fn parse(route: &str) -> String {
    let parsed = route
        .trim()
        .split_once(' ')
        .map(|(method, path)| (method, path.trim()))
        .filter(|(method, path)| {
            !method.is_empty() && !path.is_empty() && !path.contains(['?', '#', ' '])
        });
    let Some((method, path)) = parsed else {
        panic!("a route is \"METHOD /path\" with no query string, not {route:?}");
    };
    key(method, &normalise(path))
}

/// The answer on a scripted route: `reply`, or the status of a fault that stands in for it
/// (`reply` is then `None`, and stays queued), or [`EXHAUSTED`] when `reply` is `None` because
/// the script ran out.
pub(crate) fn respond(key: &str, reply: Option<Reply>, plan: &Plan) -> Response {
    if let Some(status) = plan.status {
        return Response::text(status, Vec::new());
    }
    reply.map_or_else(
        || Reply::new(EXHAUSTED, format!("nothing scripted for {key}")).into_response(),
        Reply::into_response,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_normalise_and_answer_in_order() {
        assert_eq!(parse(" GET v2/images "), "GET /v2/images");
        let mut routes = Routes::default();
        routes.add("GET /a", vec![Reply::new(200, "1")]);
        routes.add("GET /a", vec![Reply::new(200, "2")]);
        assert!(routes.contains("GET /a"));
        assert!(!routes.contains("POST /a"));
        assert_eq!(routes.next("GET /a").map(|r| r.body), Some(b"1".to_vec()));
        assert_eq!(routes.next("GET /a").map(|r| r.body), Some(b"2".to_vec()));
        assert_eq!(routes.next("GET /a"), None);
        assert!(
            routes.contains("GET /a"),
            "an exhausted route stays scripted"
        );
    }

    #[test]
    #[should_panic(expected = "no query string")]
    fn a_route_with_a_query_is_refused() {
        parse("GET /v2/images?limit=2");
    }

    #[test]
    fn framing_headers_are_left_to_the_server() {
        let resp = Reply::new(200, "abc")
            .header("Content-Length", "99")
            .header("X-Kept", "yes")
            .into_response();
        assert_eq!(resp.headers, [("X-Kept".to_string(), "yes".to_string())]);
        assert_eq!(resp.body_len(), 3);
    }

    #[test]
    fn exhausted_routes_and_status_faults() {
        let resp = respond("PUT /x", None, &Plan::default());
        assert_eq!(resp.status, EXHAUSTED);
        assert_eq!(resp.body.as_slice(), b"nothing scripted for PUT /x");
        let plan = Plan {
            status: Some(503),
            ..Plan::default()
        };
        assert_eq!(respond("PUT /x", None, &plan).status, 503);
    }
}
