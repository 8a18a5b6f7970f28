//! Uploading one image: create it with its properties, stream the verified bytes into it,
//! then check what Glance stored against the stream; delete it on any failure.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use simplestreams_core::{filetype, ChecksumKind, Digests, Expected, StreamVerifier};
use simplestreams_mirror::decompress::disk_format_of;
use simplestreams_mirror::hashing::{Batcher, HashingThread};
use simplestreams_mirror::{ByteStream, Error as MirrorError, NewItem};

use crate::glance::{Image, ImportMethod, NewImage, PatchOp};
use crate::properties::{disk_format, glance_properties, image_name};
use crate::target::{to_mirror, GlanceTarget, UNVERIFIED};

impl GlanceTarget {
    /// The image of `item`; `content_format`: the disk format found in the bytes themselves
    /// (a decompressed image), which wins over the one its ftype implies.
    fn new_image(&self, item: &NewItem, content_format: Option<&'static str>) -> NewImage {
        let s = &self.options.settings;
        let format = match content_format {
            // Glance converts whatever comes to raw on import: it is told raw, as always.
            Some(f) if !s.import_conversion => f,
            _ => disk_format(&item.fields, s),
        };
        let mut image = NewImage::new(image_name(&item.fields, &s.name_prefix), format, "bare")
            .with_visibility(self.options.visibility.clone());
        // The properties go on at creation (the reference adds them after the upload): an
        // image cut short by a crash is then recognisably ours, and cleaned up next run. It is
        // marked unverified until what Glance stored has been checked.
        image.properties = glance_properties(&item.fields, &item.key.content_id, s);
        image.properties.insert(UNVERIFIED.into(), "true".into());
        image
    }

    /// Uploads `body` into a new image and checks what Glance stored against `expected`; the
    /// image is deleted on any failure.
    pub(crate) async fn upload_checked(
        &self,
        item: &NewItem,
        body: ByteStream,
        expected: Expected,
        check_stream: bool,
        content_format: Option<&'static str>,
    ) -> Result<Image, MirrorError> {
        let new = self.new_image(item, content_format);
        let image = self.glance.create(&new).await.map_err(to_mirror)?;
        let result = self
            .upload_into(&image, body, &expected, check_stream)
            .await;
        if result.is_err() {
            if let Err(e) = self.glance.delete(&image.id).await {
                tracing::warn!("{}: not deleted after a failed upload: {e}", image.id);
            }
        }
        result
    }

    async fn upload_into(
        &self,
        image: &Image,
        body: ByteStream,
        expected: &Expected,
        check_stream: bool,
    ) -> Result<Image, MirrorError> {
        // Glance's md5 is checked against the stream's; when the stream gives none, against
        // our own md5 of the bytes sent.
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let body = tracked(body, expected.md5.is_none(), tracker.clone());
        let id = &image.id;
        let sent = self.send_data(id, body, expected.size).await;
        let failed = tracker.lock().ok().and_then(|mut t| t.failed.take());
        match (sent, failed) {
            (_, Some(body_error)) => return Err(MirrorError::Aborted(body_error)),
            (Err(e), None) => return Err(e),
            (Ok(()), None) => {}
        }
        let digests = tracker
            .lock()
            .ok()
            .and_then(|mut t| t.finished.take())
            .ok_or_else(|| {
                MirrorError::Aborted(format!("image {id}: the upload stream did not end cleanly"))
            })?;
        let found = if self.options.settings.import_conversion {
            self.glance
                .wait_for_status(
                    id,
                    &["active"],
                    Duration::from_secs(2),
                    Duration::from_secs(6 * 3600),
                )
                .await
                .map_err(to_mirror)?
        } else {
            self.glance.get(id).await.map_err(to_mirror)?
        };
        // A converted image has other bytes than the stream's: only the stream was checked.
        if !self.options.settings.import_conversion {
            check_stored(&found, expected, &digests, check_stream).map_err(|message| {
                MirrorError::Location {
                    location: format!("{}/images/{id}", self.glance.base_url()),
                    message,
                }
            })?;
        }
        self.glance
            .update(id, &[PatchOp::remove(UNVERIFIED)])
            .await
            .map_err(to_mirror)
    }

    /// Sends the image data: uploaded, or staged then imported (`--image-import-conversion`).
    async fn send_data(
        &self,
        id: &str,
        body: ByteStream,
        size: Option<u64>,
    ) -> Result<(), MirrorError> {
        if self.options.settings.import_conversion {
            self.glance.stage(id, body, size).await.map_err(to_mirror)?;
            self.glance
                .import(id, &ImportMethod::GlanceDirect)
                .await
                .map_err(to_mirror)
        } else {
            self.glance.upload(id, body, size).await.map_err(to_mirror)
        }
    }
}

/// The disk format of a decompressed image, from its first bytes (what Glance must be told
/// before the upload starts), and the body with those bytes still in front. A format that only
/// a footer shows (a fixed VHD) is not seen this way: it goes up as `raw`.
pub(crate) async fn content_disk_format(
    mut body: ByteStream,
) -> Result<(&'static str, ByteStream), MirrorError> {
    let mut head: Vec<Bytes> = Vec::new();
    let mut len = 0;
    while len < filetype::HEAD_BYTES {
        match body.next().await {
            Some(Ok(chunk)) => {
                len += chunk.len();
                head.push(chunk);
            }
            Some(Err(e)) => return Err(e),
            None => break,
        }
    }
    let format = disk_format_of(filetype::detect(&head.concat(), &[]));
    let front = stream::iter(head.into_iter().map(Ok));
    Ok((format, front.chain(body).boxed()))
}

/// Compares what Glance stored with what was sent.
fn check_stored(
    found: &Image,
    expected: &Expected,
    sent: &Digests,
    check_sha512: bool,
) -> Result<(), String> {
    let mut wrong = Vec::new();
    if found.status != "active" {
        wrong.push(format!("status is {:?}, not active", found.status));
    }
    let size = expected.size.unwrap_or(sent.size);
    if found.size != Some(size) {
        wrong.push(format!("size is {:?}, expected {size}", found.size));
    }
    let md5 = expected.md5.as_ref().or(sent.md5.as_ref());
    if let Some(md5) = md5 {
        if found
            .checksum
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_ref()
            != Some(md5)
        {
            wrong.push(format!(
                "checksum (md5) is {:?}, expected {md5}",
                found.checksum
            ));
        }
    }
    if let (true, Some(sha512), Some("sha512")) = (
        check_sha512,
        &expected.sha512,
        found.os_hash_algo.as_deref(),
    ) {
        if found
            .os_hash_value
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_ref()
            != Some(sha512)
        {
            wrong.push(format!(
                "os_hash_value (sha512) is {:?}, expected {sha512}",
                found.os_hash_value
            ));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "Glance stored something else: {}; image deleted",
            wrong.join(", ")
        ))
    }
}

/// What an upload stream reports once it is over: whether it ended cleanly, and the size (and
/// md5, when asked for) of what went through.
#[derive(Debug, Default)]
struct Tracker {
    finished: Option<Digests>,
    /// The error the body ended with (the HTTP client reports only that the request failed).
    failed: Option<String>,
}

/// Our own md5 of the bytes sent, on a [`HashingThread`], so that hashing overlaps with
/// sending instead of delaying each chunk on the thread that feeds the HTTP body.
struct Md5Thread {
    thread: HashingThread,
    batcher: Batcher,
}

impl Md5Thread {
    fn start() -> Md5Thread {
        let v = StreamVerifier::new("", Expected::default()).also_compute(ChecksumKind::Md5);
        Md5Thread {
            thread: HashingThread::start(v),
            batcher: Batcher::default(),
        }
    }

    async fn push(&mut self, chunk: Bytes) {
        if let Some(batch) = self.batcher.push(chunk) {
            // A failed send means the thread is gone; `finish` reports why.
            let _ = self.thread.send(batch).await;
        }
    }

    async fn finish(mut self) -> Result<Digests, String> {
        let _ = self.thread.send(self.batcher.take()).await;
        match self.thread.finish().await {
            Ok(Ok(d)) => Ok(d),
            Ok(Err(e)) => Err(format!("md5 of the bytes sent: {e}")),
            Err(e) => Err(format!("md5 of the bytes sent: {e}")),
        }
    }
}

/// Passes `body` through, one chunk behind: a chunk is handed on only once the next one (or
/// the clean end) has been read. With a `Content-Length`, the HTTP client stops reading after
/// the last byte and would never see an error the body raises at its end (a checksum that
/// fails once every byte was hashed); held back, the last chunk goes out only after that end,
/// so such an error cuts the upload short and Glance never gets the whole image. With `md5`,
/// our own md5 of the bytes is computed too (on another thread).
fn tracked(body: ByteStream, md5: bool, tracker: Arc<Mutex<Tracker>>) -> ByteStream {
    struct St {
        body: ByteStream,
        held: Option<Bytes>,
        seen: u64,
        md5: Option<Md5Thread>,
        tracker: Arc<Mutex<Tracker>>,
    }
    let st = St {
        body,
        held: None,
        seen: 0,
        md5: md5.then(Md5Thread::start),
        tracker,
    };
    stream::unfold(Some(st), |st| async move {
        let mut st = st?;
        loop {
            match st.body.next().await {
                Some(Ok(chunk)) => {
                    st.seen += chunk.len() as u64;
                    if let Some(h) = st.md5.as_mut() {
                        h.push(chunk.clone()).await;
                    }
                    match st.held.replace(chunk) {
                        Some(prev) => return Some((Ok(prev), Some(st))),
                        None => continue,
                    }
                }
                Some(Err(e)) => {
                    if let Ok(mut t) = st.tracker.lock() {
                        t.failed = Some(e.to_string());
                    }
                    return Some((Err(e), None));
                }
                None => {
                    let digests = match st.md5.take() {
                        None => Ok(Digests {
                            size: st.seen,
                            ..Digests::default()
                        }),
                        Some(h) => h.finish().await,
                    };
                    let Ok(mut t) = st.tracker.lock() else {
                        return None;
                    };
                    return match digests {
                        Ok(d) => {
                            t.finished = Some(d);
                            st.held.take().map(|last| (Ok(last), None))
                        }
                        Err(message) => {
                            t.failed = Some(message.clone());
                            Some((Err(MirrorError::Aborted(message)), None))
                        }
                    };
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use simplestreams_mirror::hashing::HASH_BATCH;

    fn chunks(parts: Vec<Result<&'static [u8], &'static str>>) -> ByteStream {
        stream::iter(parts.into_iter().map(|p| {
            p.map(Bytes::from_static)
                .map_err(|m| MirrorError::Aborted(m.into()))
        }))
        .boxed()
    }

    async fn run(body: ByteStream, md5: bool) -> (Vec<Result<Bytes, String>>, Tracker) {
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let out: Vec<_> = tracked(body, md5, tracker.clone())
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
            .await;
        let t = std::mem::take(&mut *tracker.lock().expect("tracker"));
        (out, t)
    }

    #[tokio::test]
    async fn tracked_passes_every_byte_and_reports_size_and_md5() {
        // More than one hashing batch, so that the md5 thread sees several.
        let big: &'static [u8] = Box::leak(vec![7u8; HASH_BATCH + 5].into_boxed_slice());
        let parts = vec![Ok(&b"hello "[..]), Ok(big), Ok(&b"world"[..])];
        let (out, t) = run(chunks(parts.clone()), true).await;
        let sent: Vec<u8> = out
            .into_iter()
            .flat_map(|r| r.expect("no error").to_vec())
            .collect();
        let all: Vec<u8> = parts
            .into_iter()
            .flat_map(|p| p.unwrap().to_vec())
            .collect();
        assert_eq!(sent, all);
        let mut v = StreamVerifier::new("", Expected::default()).also_compute(ChecksumKind::Md5);
        v.update(&all).expect("update");
        let want = v.finish().expect("digests");
        let got = t.finished.expect("ended cleanly");
        assert_eq!((got.size, got.md5), (all.len() as u64, want.md5));
        assert!(t.failed.is_none());

        let (_, t) = run(chunks(vec![Ok(&b"abc"[..])]), false).await;
        let got = t.finished.expect("ended cleanly");
        assert_eq!((got.size, got.md5), (3, None), "no md5 unless asked");
    }

    #[tokio::test]
    async fn an_error_at_the_end_keeps_the_last_chunk_from_glance() {
        let parts = vec![Ok(&b"first"[..]), Ok(&b"last"[..]), Err("sha256 mismatch")];
        for md5 in [false, true] {
            let (out, t) = run(chunks(parts.clone()), md5).await;
            assert_eq!(out.len(), 2, "{out:?}");
            assert_eq!(out[0].as_deref().ok(), Some(&b"first"[..]));
            assert!(out[1]
                .as_ref()
                .is_err_and(|e| e.contains("sha256 mismatch")));
            assert!(t.finished.is_none());
            assert!(t.failed.is_some_and(|e| e.contains("sha256 mismatch")));
        }
    }

    #[test]
    fn stored_image_must_match_size_md5_and_sha512() {
        let found: Image = serde_json::from_value(json!({"id": "i", "status": "active", "size": 3,
            "checksum": "ABC", "os_hash_algo": "sha512", "os_hash_value": "s512"}))
        .expect("image");
        let sent = Digests {
            size: 3,
            ..Digests::default()
        };
        let exp = |size, md5: &str, sha512: Option<&str>| Expected {
            size: Some(size),
            md5: Some(md5.into()),
            sha512: sha512.map(str::to_string),
            ..Expected::default()
        };
        assert_eq!(
            check_stored(&found, &exp(3, "abc", Some("s512")), &sent, true),
            Ok(())
        );
        assert!(
            check_stored(&found, &exp(4, "abc", None), &sent, true).is_err(),
            "size"
        );
        assert!(
            check_stored(&found, &exp(3, "abd", None), &sent, true).is_err(),
            "md5"
        );
        assert!(
            check_stored(&found, &exp(3, "abc", Some("x")), &sent, true).is_err(),
            "sha512"
        );
        assert_eq!(
            check_stored(&found, &exp(3, "abc", Some("x")), &sent, false),
            Ok(()),
            "not checked after a hook"
        );
        let ours = Digests {
            size: 3,
            md5: Some("abc".into()),
            ..Digests::default()
        };
        let no_md5 = Expected {
            size: Some(3),
            ..Expected::default()
        };
        assert_eq!(
            check_stored(&found, &no_md5, &ours, true),
            Ok(()),
            "our own md5 when the stream has none"
        );
        let other = Digests {
            size: 3,
            md5: Some("fff".into()),
            ..Digests::default()
        };
        assert!(check_stored(&found, &no_md5, &other, true).is_err());
    }
}
