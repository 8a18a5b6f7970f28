//! What to answer to one request, decided without I/O: status, headers and the part of the body
//! to send, from the file found (if any), the request headers and the faults that apply.
//!
//! Hand-written rather than taken from a framework because the faults need control over every
//! header (a lying `Content-Length`, a `Range` that is ignored) that frameworks rightly forbid.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::fault::Plan;

/// A file as served: its bytes and validators.
#[derive(Debug, Clone)]
pub(crate) struct Resource {
    pub(crate) body: Arc<Vec<u8>>,
    pub(crate) last_modified: SystemTime,
    pub(crate) content_type: &'static str,
}

impl Resource {
    pub(crate) fn new(body: Arc<Vec<u8>>, last_modified: SystemTime, path: &str) -> Resource {
        // Truncated to whole seconds: that is all an HTTP date carries, and a client that sends
        // back the `Last-Modified` it got must match.
        let secs = last_modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let content_type = if path.ends_with(".json") {
            "application/json"
        } else {
            "application/octet-stream"
        };
        Resource {
            body,
            last_modified: UNIX_EPOCH + Duration::from_secs(secs),
            content_type,
        }
    }

    /// A strong validator from the content (FNV-1a 64 and the length), so identical bytes get
    /// identical tags whether they come from disk or memory, and any change changes the tag.
    pub(crate) fn etag(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in self.body.iter() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("\"{hash:016x}-{:x}\"", self.body.len())
    }
}

/// The parts of a request the answer depends on.
#[derive(Debug, Clone)]
pub(crate) struct RequestHead {
    pub(crate) method: String,
    /// The request target as sent: the raw path with its query string.
    pub(crate) target: String,
    /// The percent-decoded path, without the query.
    pub(crate) path: String,
    /// Header names lower-cased.
    pub(crate) headers: Vec<(String, String)>,
}

impl RequestHead {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The answer: everything the connection code needs to write it.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    /// The bytes a GET sends (a HEAD sends none of them).
    pub(crate) body: Arc<Vec<u8>>,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Response {
    /// A short text answer (`404 Not Found`) with these headers.
    pub(crate) fn text(status: u16, headers: Vec<(String, String)>) -> Response {
        let body = format!("{} {}\n", status, reason(status)).into_bytes();
        let end = body.len();
        let mut headers = headers;
        headers.push(("Content-Type".to_string(), "text/plain".to_string()));
        Response {
            status,
            headers,
            body: Arc::new(body),
            start: 0,
            end,
        }
    }

    /// The length of the body this response really carries for a GET.
    pub(crate) fn body_len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the status allows a body (and so a `Content-Length`): RFC 9110 forbids both
    /// for `1xx` and `204`, and a `304` has no body whatever its headers say.
    pub(crate) fn status_has_body(&self) -> bool {
        !matches!(self.status, 100..=199 | 204 | 304)
    }
}

/// The standard reason phrase, or a neutral one for codes tests invent.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Scripted Status",
    }
}

/// Formats an HTTP date (IMF-fixdate, always GMT).
pub(crate) fn http_date(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Parses an IMF-fixdate (the only form current clients send); anything else is `None`,
/// which makes the condition using it not apply, as RFC 9110 asks for invalid dates.
fn parse_http_date(text: &str) -> Option<SystemTime> {
    let parsed = chrono::DateTime::parse_from_rfc2822(text.trim()).ok()?;
    let secs = u64::try_from(parsed.timestamp()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Whether an `If-None-Match` list names this tag (weak comparison, as RFC 9110 asks there).
fn none_match_hits(header: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    header
        .split(',')
        .any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

/// A `Range` header as this server understands it.
#[derive(Debug, PartialEq, Eq)]
enum RangeSpec {
    /// `bytes=N-` or `bytes=N-M`, `last` inclusive.
    FromTo { first: u64, last: Option<u64> },
    /// `bytes=-S`: the last S bytes.
    Suffix(u64),
}

/// Parses a single byte range; `None` for anything else (other units, several ranges, bad
/// syntax), which the caller answers with the whole body, as RFC 9110 allows.
fn parse_range(header: &str) -> Option<RangeSpec> {
    let spec = header.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return last.parse().ok().map(RangeSpec::Suffix);
    }
    let first = first.parse().ok()?;
    let last = if last.is_empty() {
        None
    } else {
        Some(last.parse().ok()?)
    };
    match last {
        Some(last) if last < first => None,
        _ => Some(RangeSpec::FromTo { first, last }),
    }
}

/// Decides the answer to `req` for `found` (the file, if there is one) under `plan`.
pub(crate) fn respond(req: &RequestHead, found: Option<Resource>, plan: &Plan) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return Response::text(405, vec![("Allow".to_string(), "GET, HEAD".to_string())]);
    }
    if let Some(status) = plan.status {
        return Response::text(status, Vec::new());
    }
    let Some(res) = found else {
        return Response::text(404, Vec::new());
    };
    let etag = res.etag();
    let mut headers: Vec<(String, String)> = [
        ("ETag", etag.clone()),
        ("Last-Modified", http_date(res.last_modified)),
        ("Accept-Ranges", "bytes".to_string()),
        ("Content-Type", res.content_type.to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    let len = res.body.len();
    let not_modified = Response {
        status: 304,
        headers: headers.clone(),
        body: res.body.clone(),
        start: 0,
        end: 0,
    };
    // If-None-Match wins over If-Modified-Since when both are sent (RFC 9110 section 13.2.2).
    if let Some(inm) = req.header("if-none-match") {
        if none_match_hits(inm, &etag) {
            return not_modified;
        }
    } else if let Some(since) = req.header("if-modified-since").and_then(parse_http_date) {
        if res.last_modified <= since {
            return not_modified;
        }
    }
    let range = req
        .header("range")
        .filter(|_| !plan.ignore_range)
        .filter(|_| if_range_holds(req, &res, &etag));
    let full = Response {
        status: 200,
        headers: headers.clone(),
        body: res.body.clone(),
        start: 0,
        end: len,
    };
    let Some(spec) = range.and_then(parse_range) else {
        return full;
    };
    let len64 = len as u64;
    let (first, last) = match spec {
        RangeSpec::FromTo { first, last } if first < len64 => {
            (first, last.map_or(len64 - 1, |l| l.min(len64 - 1)))
        }
        RangeSpec::Suffix(n) if n > 0 && len64 > 0 => (len64.saturating_sub(n), len64 - 1),
        _ => {
            headers.push(("Content-Range".to_string(), format!("bytes */{len}")));
            return Response::text(416, headers);
        }
    };
    headers.push((
        "Content-Range".to_string(),
        format!("bytes {first}-{last}/{len}"),
    ));
    // Both bounds are below `len`, a usize, so the conversions cannot fail.
    let start = usize::try_from(first).unwrap_or(len);
    let end = usize::try_from(last + 1).unwrap_or(len);
    Response {
        status: 206,
        headers,
        body: res.body,
        start,
        end,
    }
}

/// `If-Range`: the range applies only if the validator sent still matches (a strong ETag, or
/// exactly the Last-Modified date); otherwise the client gets the whole new body.
fn if_range_holds(req: &RequestHead, res: &Resource, etag: &str) -> bool {
    match req.header("if-range") {
        None => true,
        Some(v) if v.trim_start().starts_with('"') => v.trim() == etag,
        Some(v) if v.trim_start().starts_with("W/") => false,
        Some(v) => parse_http_date(v) == Some(res.last_modified),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_like_rfc_9110() {
        assert_eq!(
            parse_range("bytes=5-"),
            Some(RangeSpec::FromTo {
                first: 5,
                last: None
            })
        );
        assert_eq!(
            parse_range("bytes=0-9"),
            Some(RangeSpec::FromTo {
                first: 0,
                last: Some(9)
            })
        );
        assert_eq!(parse_range("bytes=-3"), Some(RangeSpec::Suffix(3)));
        assert_eq!(parse_range("bytes=9-1"), None);
        assert_eq!(parse_range("bytes=0-1,4-5"), None);
        assert_eq!(parse_range("items=0-1"), None);
    }

    #[test]
    fn dates_round_trip() {
        let t = UNIX_EPOCH + Duration::from_secs(1_463_443_200);
        assert_eq!(http_date(t), "Tue, 17 May 2016 00:00:00 GMT");
        assert_eq!(parse_http_date(&http_date(t)), Some(t));
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn weak_etags_match_for_if_none_match() {
        assert!(none_match_hits("W/\"a\", \"b\"", "\"a\""));
        assert!(none_match_hits("*", "\"a\""));
        assert!(!none_match_hits("\"b\"", "\"a\""));
    }
}
