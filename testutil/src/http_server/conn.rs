//! One HTTP/1.1 connection: read request heads (with `httparse`) and bodies, answer each, keep
//! the connection alive until the client closes it or a fault breaks its framing.
//!
//! The response is written by hand, byte for byte, because the faults (a short body, a wrong
//! `Content-Length`, a cut) are exactly what a real HTTP library refuses to produce.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::body::{self, Framing};
use super::fault::Plan;
use super::respond::{reason, RequestHead, Response};
use super::Shared;

/// Request heads larger than this are refused: no test client sends such.
const MAX_HEAD: usize = 64 * 1024;

/// Serves requests on `stream` until it closes.
pub(crate) async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let head = match read_head(&mut stream, &mut buf).await {
            Ok(Some(head)) => head,
            Ok(None) | Err(_) => return,
        };
        let (req, framing, close_requested) = match head {
            Head::Request {
                req,
                framing,
                close,
            } => (req, framing, close),
            Head::Bad(status) => return refuse(&mut stream, status).await,
        };
        // A client that sent `Expect: 100-continue` waits for this before it sends the body
        // (curl does for large uploads, a second long, then sends anyway). The final answer
        // comes after the body is read, as always here.
        if framing.has_body()
            && req
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
            && stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
        {
            return;
        }
        let body = match body::read(&mut stream, &mut buf, framing).await {
            Ok(body) => body,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return refuse(&mut stream, 400).await;
            }
            // The client hung up mid-body: nobody is left to answer.
            Err(_) => return,
        };
        let (resp, plan) = shared.answer(&req, body).await;
        if resp.status == super::HANG_UP {
            // `Reply::hang_up`: the request was read and logged; no answer, ever.
            let _ = stream.shutdown().await;
            return;
        }
        let written = write_response(&mut stream, &req.method, &resp, &plan).await;
        if written.is_err() || close_requested || plan.breaks_connection() {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

enum Head {
    Request {
        req: RequestHead,
        framing: Framing,
        close: bool,
    },
    /// A request this server cannot read: answer this status and close.
    Bad(u16),
}

/// Reads one request head from `stream`, keeping any bytes after it in `buf`.
/// `Ok(None)` when the client closed the connection between requests.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<Head>> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(buf) {
            Ok(httparse::Status::Complete(used)) => {
                let head = to_head(&parsed);
                buf.drain(..used);
                return Ok(Some(head));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => return Ok(Some(Head::Bad(431))),
            Err(_) => return Ok(Some(Head::Bad(400))),
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn to_head(parsed: &httparse::Request<'_, '_>) -> Head {
    let (Some(method), Some(target)) = (parsed.method, parsed.path) else {
        return Head::Bad(400);
    };
    let raw_path = target.split(['?', '#']).next().unwrap_or_default();
    let Some(path) = percent_decode(raw_path) else {
        return Head::Bad(400);
    };
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let Some(framing) = Framing::of(&headers) else {
        return Head::Bad(400);
    };
    let connection = find("connection").unwrap_or_default().to_ascii_lowercase();
    // HTTP/1.0 closes unless asked to keep alive; HTTP/1.1 keeps alive unless asked to close.
    let close = if parsed.version == Some(0) {
        !connection.contains("keep-alive")
    } else {
        connection.contains("close")
    };
    let req = RequestHead {
        method: method.to_string(),
        target: target.to_string(),
        path,
        headers,
    };
    Head::Request {
        req,
        framing,
        close,
    }
}

/// Decodes `%XX` escapes; `None` for a bad escape or a result that is not UTF-8.
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Answers a request this server cannot read with `status`, and ends the connection: where the
/// next request would start is unknown.
async fn refuse(stream: &mut TcpStream, status: u16) {
    let _ = write_response(stream, "GET", &plain(status), &Plan::default()).await;
    let _ = stream.shutdown().await;
}

fn plain(status: u16) -> Response {
    let body = format!("{status} {}\n", reason(status)).into_bytes();
    let end = body.len();
    Response {
        status,
        headers: Vec::new(),
        body: Arc::new(body),
        start: 0,
        end,
    }
}

/// Writes `resp`, applying the body faults of `plan`.
async fn write_response(
    stream: &mut TcpStream,
    method: &str,
    resp: &Response,
    plan: &Plan,
) -> std::io::Result<()> {
    let has_body = method != "HEAD" && resp.status_has_body();
    let real_len = if resp.status_has_body() {
        resp.body_len()
    } else {
        0
    };
    let announced = i64::try_from(real_len)
        .unwrap_or(i64::MAX)
        .saturating_add(plan.length_off_by)
        .max(0);
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (name, value) in &resp.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if resp.status_has_body() {
        head.push_str(&format!("Content-Length: {announced}\r\n"));
    }
    if plan.breaks_connection() {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    if has_body {
        let mut body = &resp.body[resp.start..resp.end];
        if let Some(cut) = plan.cut_after {
            body = &body[..body.len().min(usize::try_from(cut).unwrap_or(usize::MAX))];
        }
        match plan.throttle {
            Some(rate) => write_throttled(stream, body, rate).await?,
            None => stream.write_all(body).await?,
        }
    }
    stream.flush().await
}

/// Writes `body` in slices every 50 ms so that about `rate` bytes leave per second.
async fn write_throttled(stream: &mut TcpStream, body: &[u8], rate: u64) -> std::io::Result<()> {
    const TICK: Duration = Duration::from_millis(50);
    let per_tick = usize::try_from(rate / 20).unwrap_or(usize::MAX).max(1);
    for slice in body.chunks(per_tick) {
        stream.write_all(slice).await?;
        stream.flush().await?;
        tokio::time::sleep(TICK).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("/a%20b%3Ac").as_deref(), Some("/a b:c"));
        assert_eq!(percent_decode("/plain").as_deref(), Some("/plain"));
        assert_eq!(percent_decode("/bad%2"), None);
        assert_eq!(percent_decode("/bad%zz"), None);
    }
}
