//! `Content-Encoding` of metadata. Servers may gzip JSON on the fly; the reference decodes it,
//! and so do we, for metadata only: item bytes are always stored and hashed as served.

use std::io::Read;

use bytes::Bytes;

use crate::error::{Error, Result};

/// The bytes of a body sent with `encoding`, decoded; at most `max` bytes after decoding (a
/// small gzip can expand a thousandfold).
pub(super) fn decode_body(
    raw: Bytes,
    encoding: Option<&str>,
    url: &str,
    max: u64,
) -> Result<Bytes> {
    let encoding = encoding.map(|e| e.trim().to_ascii_lowercase());
    let reader: Box<dyn Read + '_> = match encoding.as_deref() {
        None | Some("") | Some("identity") => return Ok(raw),
        Some("gzip") | Some("x-gzip") => Box::new(flate2::read::MultiGzDecoder::new(&raw[..])),
        Some("deflate") => Box::new(flate2::read::ZlibDecoder::new(&raw[..])),
        Some(other) => {
            return Err(Error::Transport {
                url: url.to_string(),
                message: format!(
                    "the server sent the metadata with Content-Encoding {other:?}, which this \
                     tool cannot decode (gzip and deflate are)"
                ),
                source: None,
            })
        }
    };
    let mut out = Vec::new();
    reader.take(max + 1).read_to_end(&mut out).map_err(|e| {
        Error::transport(
            url,
            format!(
                "cannot decode the {} body the server sent",
                encoding.as_deref().unwrap_or_default()
            ),
            e,
        )
    })?;
    if out.len() as u64 > max {
        return Err(Error::TooLarge {
            location: url.to_string(),
            limit: max,
        });
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Bytes {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write");
        Bytes::from(e.finish().expect("finish"))
    }

    #[test]
    fn gzip_is_decoded_and_identity_passed_through() {
        let json = br#"{"format": "index:1.0"}"#;
        assert_eq!(
            decode_body(gzip(json), Some("gzip"), "u", 1 << 20).expect("decoded"),
            &json[..]
        );
        assert_eq!(
            decode_body(Bytes::from_static(json), None, "u", 1 << 20).expect("as is"),
            &json[..]
        );
    }

    #[test]
    fn a_bomb_stops_at_the_limit_and_garbage_is_named() {
        let big = vec![b' '; 1 << 20];
        let err = decode_body(gzip(&big), Some("gzip"), "u", 1000).expect_err("too large");
        assert!(matches!(err, Error::TooLarge { limit: 1000, .. }), "{err}");
        let err = decode_body(
            Bytes::from_static(b"not gzip"),
            Some("gzip"),
            "http://h/i.json",
            1000,
        )
        .expect_err("garbage");
        assert!(
            err.to_string().contains("cannot decode the gzip body"),
            "{err}"
        );
        let err = decode_body(Bytes::from_static(b"x"), Some("br"), "u", 1000).expect_err("br");
        assert!(err.to_string().contains("\"br\""), "{err}");
    }
}
