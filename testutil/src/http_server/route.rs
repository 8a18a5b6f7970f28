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

/// The status of [`Reply::hang_up`]: no answer at all (also what the request log records).
pub const HANG_UP: u16 = 0;

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

    /// No answer: the server reads the whole request (and logs it, with status
    /// [`HANG_UP`], 0), then closes the connection without sending a byte, as a server or
    /// proxy that dies mid-request does. The client sees the connection drop before any answer.
    ///
    /// ```
    /// use simplestreams_testutil::http_server::{Reply, TestServer, HANG_UP};
    /// use std::io::{Read, Write};
    ///
    /// let server = TestServer::builder().route("PUT /o", vec![Reply::hang_up()]).start();
    /// let mut conn = std::net::TcpStream::connect(server.addr()).unwrap();
    /// conn.write_all(b"PUT /o HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab").unwrap();
    /// let mut answer = Vec::new();
    /// conn.read_to_end(&mut answer).unwrap();
    /// assert!(answer.is_empty(), "closed without an answer");
    /// let log = server.requests_for_route("PUT /o");
    /// assert_eq!((log[0].status, log[0].body.as_slice()), (HANG_UP, &b"ab"[..]));
    /// ```
    pub fn hang_up() -> Reply {
        Reply::new(HANG_UP, Vec::new())
    }

    /// Whether this is [`Reply::hang_up`].
    pub fn is_hang_up(&self) -> bool {
        self.status == HANG_UP
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

/// The replies still to answer, by route key (`"METHOD /path"`, or `"METHOD /prefix/*"` for
/// every path under a prefix).
#[derive(Debug, Default)]
pub(crate) struct Routes {
    queues: HashMap<String, VecDeque<Reply>>,
}

/// Whether a request's `key` falls under the route `pattern`: the same key, or, for a pattern
/// ending in `*`, a key starting with what comes before the `*` (method included).
pub(crate) fn matches(pattern: &str, key: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => pattern == key,
    }
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

    /// The route that answers `key`: the route of that very key if scripted, else the longest
    /// scripted prefix route (`"METHOD /prefix/*"`) it falls under, if any.
    pub(crate) fn resolve(&self, key: &str) -> Option<String> {
        if self.contains(key) {
            return Some(key.to_string());
        }
        self.queues
            .keys()
            .filter(|pattern| pattern.ends_with('*') && matches(pattern, key))
            .max_by_key(|pattern| pattern.len())
            .cloned()
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
    fn prefix_routes_answer_the_paths_under_them_and_exact_routes_win() {
        let mut routes = Routes::default();
        routes.add(
            "PUT /c_segments/*",
            vec![Reply::new(503, ""), Reply::new(201, "")],
        );
        routes.add("PUT /c_segments/obj/*", vec![Reply::hang_up()]);
        routes.add("PUT /c_segments/exact", vec![Reply::new(202, "")]);
        assert_eq!(
            routes.resolve("PUT /c_segments/exact").as_deref(),
            Some("PUT /c_segments/exact")
        );
        assert_eq!(
            routes.resolve("PUT /c_segments/a/0001").as_deref(),
            Some("PUT /c_segments/*")
        );
        assert_eq!(
            routes.resolve("PUT /c_segments/obj/0001").as_deref(),
            Some("PUT /c_segments/obj/*"),
            "the longest prefix wins"
        );
        assert_eq!(
            routes.resolve("GET /c_segments/a"),
            None,
            "the method counts"
        );
        assert_eq!(routes.resolve("PUT /other"), None);
        assert!(routes
            .next("PUT /c_segments/obj/*")
            .is_some_and(|r| r.is_hang_up()));
        assert!(matches("PUT /a/*", "PUT /a/b/c"));
        assert!(!matches("PUT /a/*", "PUT /ab"));
        assert!(matches("PUT /a", "PUT /a") && !matches("PUT /a", "PUT /a/b"));
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
