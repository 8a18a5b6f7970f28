//! Request bodies: how a request says its body ends (RFC 9112 section 6), and reading it.
//!
//! Every body is read whole, even one nobody asked for (a GET may carry one): on a kept-alive
//! connection the next request starts right after it, so skipping it wrong would desynchronise
//! the connection. The bytes are kept for the request log, which is how tests of API clients
//! check what they uploaded.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Chunk-size and trailer lines longer than this are refused: no test client sends such, and
/// a missing line end must not make the server buffer without bound.
const MAX_LINE: usize = 8 * 1024;

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length` bytes (0 when the header is absent: a request without either header
    /// has no body).
    Length(usize),
    /// `Transfer-Encoding: chunked`: what reqwest sends for a streamed body of unknown length.
    Chunked,
}

impl Framing {
    /// The framing the headers (names lower-cased) announce; `None` for one this server cannot
    /// follow, which must be refused since the end of the body, and so the start of the next
    /// request, is unknown.
    pub(crate) fn of(headers: &[(String, String)]) -> Option<Framing> {
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let length = find("content-length");
        match find("transfer-encoding") {
            // Both at once is the shape of request smuggling; RFC 9112 section 6.1 lets a
            // server reject it, which is simpler than explaining which one wins.
            Some(_) if length.is_some() => None,
            // Only `chunked` as the last coding says where the body ends.
            Some(codings) => codings
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
                .then_some(Framing::Chunked),
            None => match length {
                None => Some(Framing::Length(0)),
                Some(n) => n.parse().ok().map(Framing::Length),
            },
        }
    }

    /// Whether a body follows the head.
    pub(crate) fn has_body(self) -> bool {
        self != Framing::Length(0)
    }
}

/// Reads the body framed as `framing` from `buf` (bytes already read past the head) and then
/// `stream`, leaving in `buf` whatever follows it (a pipelined request).
///
/// Fails with `InvalidData` for malformed chunked framing (the client gets a 400), and with
/// `UnexpectedEof` when the client hangs up mid-body.
pub(crate) async fn read<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    framing: Framing,
) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    match framing {
        Framing::Length(len) => take(stream, buf, len, &mut body).await?,
        Framing::Chunked => loop {
            let size = chunk_size(&read_line(stream, buf).await?)?;
            if size == 0 {
                // Trailer fields, if any, up to the empty line; tests have no use for them.
                while !read_line(stream, buf).await?.is_empty() {}
                break;
            }
            take(stream, buf, size, &mut body).await?;
            if !read_line(stream, buf).await?.is_empty() {
                return Err(invalid("chunk data longer than its size"));
            }
        },
    }
    Ok(body)
}

/// Parses a chunk-size line: hex digits, optionally followed by `;extensions` (ignored).
fn chunk_size(line: &[u8]) -> std::io::Result<usize> {
    let line = std::str::from_utf8(line).map_err(|_| invalid("chunk size is not text"))?;
    let digits = line.split(';').next().unwrap_or_default().trim();
    // Checked by hand because `from_str_radix` also takes a leading `+`, which HTTP does not.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("bad chunk size"));
    }
    usize::from_str_radix(digits, 16).map_err(|_| invalid("chunk size too large"))
}

/// Reads one line and returns it without its end (`CRLF`, or a bare `LF`, which RFC 9112
/// section 2.2 allows a recipient to accept).
async fn read_line<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> std::io::Result<Vec<u8>> {
    loop {
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = buf.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
        if buf.len() > MAX_LINE {
            return Err(invalid("line too long in a chunked body"));
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Moves `len` bytes to `out`: first those already buffered, then straight from `stream`
/// (nothing is read past them, so nothing of the next request is consumed).
async fn take<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    len: usize,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    let from_buf = len.min(buf.len());
    out.extend(buf.drain(..from_buf));
    let mut left = len - from_buf;
    let mut chunk = [0u8; 8192];
    while left > 0 {
        let want = left.min(chunk.len());
        let n = stream.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        out.extend_from_slice(&chunk[..n]);
        left -= n;
    }
    Ok(())
}

fn invalid(what: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// Reads a body from `wire`, the first `buffered` bytes of it as if read with the head.
    fn read_all(
        wire: &[u8],
        buffered: usize,
        framing: Framing,
    ) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let mut buf = wire[..buffered].to_vec();
        let mut stream = &wire[buffered..];
        let body = runtime.block_on(read(&mut stream, &mut buf, framing))?;
        buf.extend_from_slice(stream);
        Ok((body, buf))
    }

    #[test]
    fn framing_follows_rfc_9112() {
        assert_eq!(Framing::of(&[]), Some(Framing::Length(0)));
        assert_eq!(
            Framing::of(&headers(&[("content-length", "12")])),
            Some(Framing::Length(12))
        );
        assert_eq!(Framing::of(&headers(&[("content-length", "x")])), None);
        assert_eq!(
            Framing::of(&headers(&[("transfer-encoding", "gzip, Chunked")])),
            Some(Framing::Chunked)
        );
        assert_eq!(
            Framing::of(&headers(&[("transfer-encoding", "chunked, gzip")])),
            None
        );
        assert_eq!(
            Framing::of(&headers(&[
                ("transfer-encoding", "chunked"),
                ("content-length", "3")
            ])),
            None
        );
    }

    #[test]
    fn a_length_body_stops_at_its_length() {
        let wire = b"abcdefGET /next";
        for buffered in [0, 2, wire.len()] {
            let (body, rest) = read_all(wire, buffered, Framing::Length(6)).expect("read");
            assert_eq!(
                (body.as_slice(), rest.as_slice()),
                (&b"abcdef"[..], &b"GET /next"[..])
            );
        }
        assert_eq!(
            read_all(b"abc", 0, Framing::Length(6))
                .expect_err("short")
                .kind(),
            std::io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn chunked_bodies_are_reassembled_with_extensions_and_trailers_skipped() {
        let wire = b"3;name=v\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nGET /next";
        for buffered in [0, 5, 20, wire.len()] {
            let (body, rest) = read_all(wire, buffered, Framing::Chunked).expect("read");
            assert_eq!(body, b"abc0123456789");
            assert_eq!(rest, b"GET /next");
        }
        let bare_lf = b"2\nhi\n0\n\n";
        assert_eq!(
            read_all(bare_lf, 0, Framing::Chunked).expect("read").0,
            b"hi"
        );
    }

    #[test]
    fn malformed_chunks_are_invalid_data() {
        for wire in [
            &b"+3\r\nabc\r\n0\r\n\r\n"[..],
            b"zz\r\n",
            b"3\r\nabcd\r\n0\r\n\r\n",
            b"ffffffffffffffffffff\r\n",
        ] {
            let err = read_all(wire, 0, Framing::Chunked).expect_err("malformed");
            assert_eq!(
                err.kind(),
                std::io::ErrorKind::InvalidData,
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let no_end = vec![b'1'; MAX_LINE + 10];
        assert_eq!(
            read_all(&no_end, 0, Framing::Chunked)
                .expect_err("endless")
                .kind(),
            std::io::ErrorKind::InvalidData
        );
    }
}
