//! One HTTP/1.1 connection: read request heads (with `httparse`), answer each, keep the
//! connection alive until the client closes it or a fault breaks its framing.
//!
//! The response is written by hand, byte for byte, because the faults (a short body, a wrong
//! `Content-Length`, a cut) are exactly what a real HTTP library refuses to produce.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
        let (req, body_len, close_requested) = match head {
            Head::Request {
                req,
                body_len,
                close,
            } => (req, body_len, close),
            Head::Bad(status) => {
                let resp = plain(status);
                let _ = write_response(&mut stream, "GET", &resp, &Plan::default()).await;
                return;
            }
        };
        // GET and HEAD have no body, but a client may send one: skip it to stay in step.
        if discard(&mut stream, &mut buf, body_len).await.is_err() {
            return;
        }
        let (resp, plan) = shared.answer(&req).await;
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
        body_len: usize,
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
    // Chunked request bodies are not supported; reading past one would desynchronise the
    // connection, so such a request is refused.
    if find("transfer-encoding").is_some() {
        return Head::Bad(400);
    }
    let body_len = match find("content-length").map(|v| v.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Head::Bad(400),
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
        path,
        headers,
    };
    Head::Request {
        req,
        body_len,
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

/// Reads and drops `len` body bytes, first from what is already buffered.
async fn discard(stream: &mut TcpStream, buf: &mut Vec<u8>, len: usize) -> std::io::Result<()> {
    let from_buf = len.min(buf.len());
    buf.drain(..from_buf);
    let mut left = len - from_buf;
    let mut chunk = [0u8; 4096];
    while left > 0 {
        let n = stream.read(&mut chunk[..left.min(4096)]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        left -= n;
    }
    Ok(())
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
    let has_body = method != "HEAD" && resp.status != 304;
    let real_len = if resp.status == 304 {
        0
    } else {
        resp.body_len()
    };
    let announced = i64::try_from(real_len)
        .unwrap_or(i64::MAX)
        .saturating_add(plan.length_off_by)
        .max(0);
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (name, value) in &resp.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if resp.status != 304 {
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
