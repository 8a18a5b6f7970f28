//! The test HTTP server, driven over real sockets with a raw client so the exact bytes on the
//! wire (a short body, a lying `Content-Length`) are visible.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, UNIX_EPOCH};

use simplestreams_testutil::http_server::{Fault, Reply as Scripted, TestServer};

const BODY: &[u8] = b"0123456789abcdefghij";

/// One parsed answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> usize {
        self.header("content-length")
            .expect("a Content-Length")
            .parse()
            .expect("a number")
    }
}

/// Sends `method path` with extra header lines and `Connection: close`, reads to the end.
fn send(addr: SocketAddr, method: &str, path: &str, extra: &[&str]) -> Reply {
    send_body(addr, method, path, extra, b"")
}

/// Like [`send`], then sends `body` as is after the head (framed by the `extra` headers).
fn send_body(addr: SocketAddr, method: &str, path: &str, extra: &[&str], body: &[u8]) -> Reply {
    let mut conn = TcpStream::connect(addr).expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for line in extra {
        req.push_str(line);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    conn.write_all(&[req.as_bytes(), body].concat())
        .expect("send");
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).expect("read");
    parse(&raw).0
}

/// Parses one response from `raw` and returns the rest. The body is what follows the head up
/// to Content-Length, or to the end if fewer bytes came.
fn parse(raw: &[u8]) -> (Reply, &[u8]) {
    parse_with(raw, true)
}

/// Parses one response; `has_body: false` for the answer to a HEAD, which has none whatever
/// its Content-Length says.
fn parse_with(raw: &[u8], has_body: bool) -> (Reply, &[u8]) {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = std::str::from_utf8(&raw[..split]).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse::<usize>().expect("a number"));
    let take = if has_body { len.min(rest.len()) } else { 0 };
    (
        Reply {
            status,
            headers,
            body: rest[..take].to_vec(),
        },
        &rest[take..],
    )
}

fn get(server: &TestServer, path: &str, extra: &[&str]) -> Reply {
    send(server.addr(), "GET", path, extra)
}

fn server_with_dir() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::create_dir_all(dir.path().join("streams/v1")).expect("mkdir");
    std::fs::write(dir.path().join("streams/v1/index.json"), BODY).expect("write");
    let server = TestServer::serve_dir(dir.path());
    (dir, server)
}

#[test]
fn serves_a_directory_with_get_and_head() {
    let (_dir, server) = server_with_dir();
    let reply = get(&server, "/streams/v1/index.json", &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, BODY);
    assert_eq!(reply.content_length(), BODY.len());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("accept-ranges"), Some("bytes"));
    let head = send(server.addr(), "HEAD", "/streams/v1/index.json", &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.content_length(), BODY.len());
    assert!(head.body.is_empty());
    assert_eq!(head.header("etag"), reply.header("etag"));
}

#[test]
fn missing_files_directories_and_escapes_are_404() {
    // Served: outer/root; beside it, a file no request may reach.
    let outer = tempfile::tempdir().expect("a temp dir");
    let root = outer.path().join("root");
    std::fs::create_dir_all(root.join("streams/v1")).expect("mkdir");
    std::fs::write(root.join("streams/v1/index.json"), BODY).expect("write");
    std::fs::write(outer.path().join("secret"), b"secret").expect("write");
    let server = TestServer::serve_dir(&root);
    assert_eq!(get(&server, "/streams/v1/index.json", &[]).status, 200);
    assert_eq!(get(&server, "/nope", &[]).status, 404);
    assert_eq!(get(&server, "/streams/v1", &[]).status, 404);
    assert_eq!(get(&server, "/../secret", &[]).status, 404);
    assert_eq!(get(&server, "/streams/../../secret", &[]).status, 404);
    assert_eq!(get(&server, "/%2e%2e/secret", &[]).status, 404);
    assert_eq!(
        send(server.addr(), "POST", "/streams/v1/index.json", &[]).status,
        405
    );
}

#[test]
fn percent_encoded_paths_are_decoded() {
    let server = TestServer::builder()
        .file("/com.ubuntu:a b.json", "x")
        .start();
    assert_eq!(get(&server, "/com.ubuntu%3Aa%20b.json", &[]).body, b"x");
    assert_eq!(server.requests()[0].path, "/com.ubuntu:a b.json");
}

#[test]
fn byte_ranges_get_206_with_content_range() {
    let (_dir, server) = server_with_dir();
    let path = "/streams/v1/index.json";
    let from = get(&server, path, &["Range: bytes=15-"]);
    assert_eq!(from.status, 206);
    assert_eq!(from.body, b"fghij");
    assert_eq!(from.header("content-range"), Some("bytes 15-19/20"));
    let span = get(&server, path, &["Range: bytes=2-4"]);
    assert_eq!((span.status, span.body.as_slice()), (206, &b"234"[..]));
    assert_eq!(span.header("content-range"), Some("bytes 2-4/20"));
    let past_end = get(&server, path, &["Range: bytes=18-99"]);
    assert_eq!(
        (past_end.status, past_end.body.as_slice()),
        (206, &b"ij"[..])
    );
    let suffix = get(&server, path, &["Range: bytes=-3"]);
    assert_eq!((suffix.status, suffix.body.as_slice()), (206, &b"hij"[..]));
    let unsatisfiable = get(&server, path, &["Range: bytes=20-"]);
    assert_eq!(unsatisfiable.status, 416);
    assert_eq!(unsatisfiable.header("content-range"), Some("bytes */20"));
    let several = get(&server, path, &["Range: bytes=0-1,4-5"]);
    assert_eq!((several.status, several.body.as_slice()), (200, BODY));
}

#[test]
fn etag_and_last_modified_give_304() {
    let modified = UNIX_EPOCH + Duration::from_secs(1_463_443_200);
    let server = TestServer::builder()
        .file_modified("/f", BODY, modified)
        .start();
    let first = get(&server, "/f", &[]);
    let etag = first.header("etag").expect("an ETag").to_string();
    assert_eq!(
        first.header("last-modified"),
        Some("Tue, 17 May 2016 00:00:00 GMT")
    );
    let same = get(&server, "/f", &[&format!("If-None-Match: {etag}")]);
    assert_eq!(same.status, 304);
    assert!(same.body.is_empty());
    assert_eq!(
        get(&server, "/f", &["If-None-Match: \"other\""]).status,
        200
    );
    assert_eq!(
        get(
            &server,
            "/f",
            &["If-Modified-Since: Tue, 17 May 2016 00:00:00 GMT"]
        )
        .status,
        304
    );
    assert_eq!(
        get(
            &server,
            "/f",
            &["If-Modified-Since: Mon, 16 May 2016 23:59:59 GMT"]
        )
        .status,
        200
    );
    // If-None-Match decides when both are sent.
    let both = [
        "If-None-Match: \"other\"",
        "If-Modified-Since: Tue, 17 May 2016 00:00:00 GMT",
    ];
    assert_eq!(get(&server, "/f", &both).status, 200);
}

#[test]
fn changed_content_changes_the_etag_and_if_range_falls_back_to_the_whole_body() {
    let server = TestServer::builder().file("/f", BODY).start();
    let old = get(&server, "/f", &[])
        .header("etag")
        .expect("an ETag")
        .to_string();
    let resumed = get(
        &server,
        "/f",
        &["Range: bytes=10-", &format!("If-Range: {old}")],
    );
    assert_eq!(
        (resumed.status, resumed.body.as_slice()),
        (206, &b"abcdefghij"[..])
    );
    server.set_file("/f", "new content");
    let reply = get(&server, "/f", &[&format!("If-None-Match: {old}")]);
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (200, &b"new content"[..])
    );
    assert_ne!(reply.header("etag"), Some(old.as_str()));
    let stale = get(
        &server,
        "/f",
        &["Range: bytes=4-", &format!("If-Range: {old}")],
    );
    assert_eq!(
        (stale.status, stale.body.as_slice()),
        (200, &b"new content"[..])
    );
}

#[test]
fn cut_after_sends_a_short_body_and_closes() {
    let server = TestServer::builder()
        .file("/f", BODY)
        .fault("/f", Fault::CutAfter(7))
        .start();
    let reply = get(&server, "/f", &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_length(), BODY.len());
    assert_eq!(reply.body, b"0123456");
}

#[test]
fn ignore_range_answers_200_with_everything() {
    let server = TestServer::builder()
        .file("/f", BODY)
        .global_fault(Fault::IgnoreRange)
        .start();
    let reply = get(&server, "/f", &["Range: bytes=5-"]);
    assert_eq!((reply.status, reply.body.as_slice()), (200, BODY));
    assert_eq!(reply.header("content-range"), None);
}

#[test]
fn throttled_bodies_arrive_whole() {
    let server = TestServer::builder()
        .file("/f", BODY)
        .fault("/f", Fault::Throttle(200))
        .start();
    let reply = get(&server, "/f", &["Range: bytes=10-"]);
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (206, &b"abcdefghij"[..])
    );
}

#[test]
fn fail_first_fails_n_times_then_serves() {
    let server = TestServer::builder()
        .file("/f", BODY)
        .file("/g", BODY)
        .fault(
            "/f",
            Fault::FailFirst {
                times: 2,
                status: 503,
            },
        )
        .start();
    assert_eq!(get(&server, "/g", &[]).status, 200);
    assert_eq!(get(&server, "/f", &[]).status, 503);
    assert_eq!(get(&server, "/f", &[]).status, 503);
    assert_eq!(get(&server, "/f", &[]).status, 200);
    let statuses: Vec<u16> = server.requests_for("f").iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200]);
}

#[test]
fn lying_content_length_then_close() {
    let server = TestServer::builder()
        .file("/more", BODY)
        .file("/less", BODY)
        .fault("/more", Fault::LengthOffBy(10))
        .fault("/less", Fault::LengthOffBy(-5))
        .start();
    let more = get(&server, "/more", &[]);
    assert_eq!(more.content_length(), BODY.len() + 10);
    assert_eq!(more.body, BODY);
    // Read raw to see the extra bytes a client trusting Content-Length would leave behind.
    let mut conn = TcpStream::connect(server.addr()).expect("connect");
    conn.write_all(b"GET /less HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw)
        .expect("the server closes after the lie");
    let (less, rest) = parse(&raw);
    assert_eq!(less.content_length(), BODY.len() - 5);
    assert_eq!([less.body.as_slice(), rest].concat(), BODY);
}

#[test]
fn not_found_fault_hides_an_existing_file_and_faults_can_be_cleared() {
    let (_dir, server) = server_with_dir();
    server.add_fault("/streams/*", Fault::NotFound);
    assert_eq!(get(&server, "/streams/v1/index.json", &[]).status, 404);
    server.clear_faults();
    assert_eq!(get(&server, "/streams/v1/index.json", &[]).status, 200);
}

#[test]
fn keep_alive_serves_pipelined_requests_on_one_connection() {
    let server = TestServer::builder()
        .file("/a", "first")
        .file("/b", "second")
        .start();
    let mut conn = TcpStream::connect(server.addr()).expect("connect");
    conn.write_all(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nHEAD /b HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).expect("read");
    let (a, rest) = parse(&raw);
    assert_eq!(a.body, b"first");
    let (head_b, rest) = parse_with(rest, false);
    assert_eq!(head_b.content_length(), 6);
    // A HEAD answer has no body, whatever its Content-Length: the next answer follows at once.
    assert!(
        rest.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "after the HEAD answer: {:?}",
        String::from_utf8_lossy(rest)
    );
    let (b, rest) = parse(rest);
    assert_eq!(b.body, b"second");
    assert!(rest.is_empty());
}

#[test]
fn the_log_records_method_path_range_and_status() {
    let server = TestServer::builder().file("/f", BODY).start();
    get(
        &server,
        "/f?query=1",
        &["Range: bytes=1-2", "If-None-Match: \"x\""],
    );
    send(server.addr(), "HEAD", "/missing", &[]);
    let log = server.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str(), log[0].status),
        ("GET", "/f", 206)
    );
    assert_eq!(log[0].range.as_deref(), Some("bytes=1-2"));
    assert_eq!(log[0].target, "/f?query=1");
    assert!(log[0].body.is_empty());
    assert_eq!(log[0].header("If-None-Match"), Some("\"x\""));
    assert_eq!(
        (log[1].method.as_str(), log[1].path.as_str(), log[1].status),
        ("HEAD", "/missing", 404)
    );
    assert_eq!(log[1].range, None);
    server.clear_requests();
    assert!(server.requests().is_empty());
}

#[test]
fn dropping_the_server_stops_it() {
    let server = TestServer::builder().file("/f", BODY).start();
    let addr = server.addr();
    assert_eq!(server.url(), format!("http://{addr}/"));
    assert_eq!(server.url_for("a/b"), format!("http://{addr}/a/b"));
    drop(server);
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after drop"
    );
}

#[tokio::test]
async fn works_inside_an_async_test_and_mid_transfer_drop_does_not_hang() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::builder()
        .file("/slow", vec![b'x'; 10_000])
        .global_fault(Fault::Throttle(100))
        .start();
    let mut conn = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    conn.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("send");
    let mut first = [0u8; 12];
    conn.read_exact(&mut first)
        .await
        .expect("the status line starts");
    assert_eq!(&first, b"HTTP/1.1 200");
    drop(server);
    // The throttled body (100 s long) is abandoned: the connection ends instead of the drop
    // waiting for it.
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest).await;
    assert!(
        rest.len() < 10_000,
        "the whole throttled body arrived after drop"
    );
}

#[test]
fn a_route_answers_its_replies_in_order_then_599() {
    let server = TestServer::builder()
        .file("/api/x", "a file")
        .route(
            "GET /api/x",
            vec![
                Scripted::new(200, "first").header("X-Order", "1"),
                Scripted::new(503, "busy"),
            ],
        )
        .start();
    let first = get(&server, "/api/x", &[]);
    assert_eq!((first.status, first.body.as_slice()), (200, &b"first"[..]));
    assert_eq!(first.header("x-order"), Some("1"));
    // The route wins over the file at its path, and a query does not change the route.
    let second = get(&server, "/api/x?page=2", &[]);
    assert_eq!((second.status, second.body.as_slice()), (503, &b"busy"[..]));
    let third = get(&server, "/api/x", &[]);
    assert_eq!(
        (third.status, third.body.as_slice()),
        (599, &b"nothing scripted for GET /api/x"[..])
    );
    // More replies at run time; other methods on the path are not scripted by it.
    server.route("GET /api/x", vec![Scripted::new(200, "later")]);
    assert_eq!(get(&server, "/api/x", &[]).body, b"later");
    assert_eq!(send(server.addr(), "POST", "/api/x", &[]).status, 405);
    let statuses: Vec<u16> = server
        .requests_for_route("GET /api/x")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [200, 503, 599, 200]);
    assert_eq!(server.requests_for_route("POST api/x").len(), 1);
}

#[test]
fn routes_take_any_method_and_bodiless_statuses_have_no_length() {
    let server = TestServer::builder()
        .route("PATCH /v2/images/a", vec![Scripted::new(200, "{}")])
        .route("DELETE /v2/images/a", vec![Scripted::new(204, "")])
        .route(
            "HEAD /v2/images/a",
            vec![Scripted::new(200, "twelve bytes")],
        )
        .start();
    assert_eq!(
        send(server.addr(), "PATCH", "/v2/images/a", &[]).body,
        b"{}"
    );
    let deleted = send(server.addr(), "DELETE", "/v2/images/a", &[]);
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.header("content-length"), None);
    let head = send(server.addr(), "HEAD", "/v2/images/a", &[]);
    assert_eq!((head.status, head.content_length()), (200, 12));
    assert!(head.body.is_empty());
}

#[test]
fn a_post_body_and_its_query_are_recorded() {
    let server = TestServer::builder()
        .route("POST /v3/auth/tokens", vec![Scripted::new(201, "{}")])
        .start();
    let body = br#"{"auth": {}}"#;
    let reply = send_body(
        server.addr(),
        "POST",
        "/v3/auth/tokens?nocatalog=1&a=%20b",
        &[&format!("Content-Length: {}", body.len())],
        body,
    );
    assert_eq!(reply.status, 201);
    let log = server.requests_for_route("POST /v3/auth/tokens");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].path, "/v3/auth/tokens");
    assert_eq!(log[0].target, "/v3/auth/tokens?nocatalog=1&a=%20b");
    assert_eq!(log[0].body, body);
    assert_eq!(log[0].header("content-length"), Some("12"));
}

#[test]
fn a_chunked_put_body_is_recorded_and_the_connection_stays_in_step() {
    let server = TestServer::builder()
        .file("/after", "next")
        .route("PUT /v2/images/a/file", vec![Scripted::new(204, "")])
        .start();
    let mut conn = TcpStream::connect(server.addr()).expect("connect");
    conn.write_all(
        b"PUT /v2/images/a/file HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n5;ext=1\r\ndefgh\r\n0\r\nX-Trailer: ignored\r\n\r\n\
          GET /after HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .expect("send");
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).expect("read");
    let (put, rest) = parse(&raw);
    assert_eq!(put.status, 204);
    let (after, rest) = parse(rest);
    assert_eq!((after.status, after.body.as_slice()), (200, &b"next"[..]));
    assert!(rest.is_empty());
    let log = server.requests_for_route("PUT /v2/images/a/file");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].body, b"abcdefgh");
    assert_eq!(log[0].header("transfer-encoding"), Some("chunked"));
}

#[test]
fn bad_chunked_bodies_and_ambiguous_framing_are_400() {
    let server = TestServer::builder()
        .route("PUT /x", vec![Scripted::new(204, "")])
        .start();
    let bad_size = send_body(
        server.addr(),
        "PUT",
        "/x",
        &["Transfer-Encoding: chunked"],
        b"xyz\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(bad_size.status, 400);
    let both = send_body(
        server.addr(),
        "PUT",
        "/x",
        &["Transfer-Encoding: chunked", "Content-Length: 3"],
        b"3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(both.status, 400);
    // Neither reached the route: its reply is still there.
    assert!(server.requests().is_empty());
    assert_eq!(
        send_body(server.addr(), "PUT", "/x", &["Content-Length: 1"], b"z").status,
        204
    );
}

#[test]
fn expect_100_continue_gets_its_interim_answer_before_the_body_is_sent() {
    let server = TestServer::builder()
        .route("POST /upload", vec![Scripted::new(201, "stored")])
        .start();
    let mut conn = TcpStream::connect(server.addr()).expect("connect");
    conn.write_all(
        b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    )
    .expect("send the head");
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut got = vec![0u8; interim.len()];
    conn.read_exact(&mut got).expect("the interim answer");
    assert_eq!(got, interim);
    conn.write_all(b"data").expect("send the body");
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).expect("read");
    let (reply, _) = parse(&raw);
    assert_eq!((reply.status, reply.body.as_slice()), (201, &b"stored"[..]));
    assert_eq!(server.requests()[0].body, b"data");
}

#[test]
fn a_status_fault_on_a_route_leaves_its_reply_queued() {
    let server = TestServer::builder()
        .route("GET /api/y", vec![Scripted::new(200, "ok")])
        .fault(
            "/api/y",
            Fault::FailFirst {
                times: 1,
                status: 502,
            },
        )
        .start();
    assert_eq!(get(&server, "/api/y", &[]).status, 502);
    let reply = get(&server, "/api/y", &[]);
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"ok"[..]));
    assert_eq!(get(&server, "/api/y", &[]).status, 599);
}

#[tokio::test]
async fn routes_work_from_an_async_test() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::builder().start();
    server.route("GET /a", vec![Scripted::new(200, "async")]);
    let mut conn = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    conn.write_all(b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.expect("read");
    assert_eq!(parse(&raw).0.body, b"async");
}
