//! A Static Large Object whose segments are streamed: each segment is one chunked PUT sent as
//! the bytes come, its MD5 computed on a hashing thread on the way and compared with the ETag
//! Swift answers. Nothing is held, so segments can be as large as Swift takes in one PUT (few
//! segments: each costs Swift a round of its own), at the price of resending: a segment that
//! fails cannot be sent again, so the upload fails and the next run sends the object again.
//!
//! Safe as the held segments are: a segment is invisible until the manifest names it, the
//! manifest goes only once every segment's ETag matched, and a body failing (the engine's
//! checksums fail at its very end) cuts the segment being sent before its last chunk, so Swift
//! stores nothing of it; what was stored of the upload is then removed.

use bytes::Bytes;
use simplestreams_mirror::hashing::HashedBody;
use simplestreams_mirror::{Error as MirrorError, ObjectMeta as StoreMeta};

use crate::client::{PutOptions as SwiftPut, SloSegment};
use crate::store::{check_etag, to_mirror, SwiftStore};

/// How long cutting a segment's body may wait for its connection to take the error.
const CUT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// One segment being sent.
struct Segment {
    name: String,
    body: HashedBody,
    answer: tokio::task::JoinHandle<Result<Option<String>, openstack_client::Error>>,
}

/// A Static Large Object being uploaded with streamed segments.
pub(crate) struct StreamedUpload<'s> {
    store: &'s SwiftStore,
    path: String,
    id: String,
    sent: Vec<SloSegment>,
    current: Option<Segment>,
}

impl<'s> StreamedUpload<'s> {
    pub(crate) fn new(store: &'s SwiftStore, path: &str) -> Self {
        StreamedUpload {
            store,
            path: path.to_string(),
            id: hex::encode(rand::random::<[u8; 16]>()),
            sent: Vec::new(),
            current: None,
        }
    }

    /// Starts the next segment's PUT, its body fed by [`Self::push`].
    fn start_segment(&self) -> Segment {
        let name = format!(
            "{}{}/{:08}",
            self.store.segments_of(&self.path),
            self.id,
            self.sent.len()
        );
        let (body, request_body) = HashedBody::new();
        let client = self.store.client().clone();
        let container = self.store.private_container().to_string();
        let segment = name.clone();
        let answer = tokio::spawn(async move {
            client
                .put_object_stream(
                    &container,
                    &segment,
                    request_body,
                    None,
                    &SwiftPut::default(),
                )
                .await
        });
        Segment { name, body, answer }
    }

    /// Sends `chunk`, in as many segments as it spans.
    pub(crate) async fn push(&mut self, mut chunk: Bytes) -> Result<(), MirrorError> {
        let segment_size = self.store.options().segment_size.max(1);
        while !chunk.is_empty() {
            if self.current.is_none() {
                self.current = Some(self.start_segment());
            }
            let Some(segment) = self.current.as_mut() else {
                break;
            };
            let room = usize::try_from(segment_size - segment.body.len()).unwrap_or(usize::MAX);
            let piece = chunk.split_to(room.min(chunk.len()));
            if !segment.body.push(piece).await {
                // The PUT ended before its body: its answer says why.
                return self.finish_segment().await;
            }
            if segment.body.len() == segment_size {
                self.finish_segment().await?;
            }
        }
        Ok(())
    }

    /// Ends the segment being sent: its body complete, its answer awaited, Swift's ETag
    /// compared with the MD5 of what was sent.
    async fn finish_segment(&mut self) -> Result<(), MirrorError> {
        let Some(segment) = self.current.take() else {
            return Ok(());
        };
        let size_bytes = segment.body.len();
        let md5 = segment.body.finish().await?;
        let answer = segment
            .answer
            .await
            .map_err(|e| MirrorError::Aborted(format!("segment upload failed: {e}")))?;
        let container = self.store.private_container();
        // Stored or not, it is named for removal should the upload fail.
        self.sent.push(SloSegment {
            path: format!("/{container}/{}", segment.name),
            etag: md5.clone(),
            size_bytes,
        });
        let etag = answer.map_err(to_mirror)?;
        check_etag(
            self.store.client(),
            container,
            &segment.name,
            etag.as_deref(),
            &md5,
        )
    }

    /// The body ended cleanly: the last segment ends and the manifest goes in; the object
    /// appears, whole. On any failure, this upload's segments are removed.
    pub(crate) async fn finish(mut self) -> Result<StoreMeta, MirrorError> {
        let published = async {
            self.finish_segment().await?;
            self.store
                .publish_manifest(&self.path, &self.id, &self.sent)
                .await
        }
        .await;
        if published.is_err() {
            self.abort().await;
        }
        published
    }

    /// Cuts the segment being sent (Swift stores nothing of a chunked body that stops before
    /// its end) and removes what this upload stored.
    pub(crate) async fn abort(mut self) {
        if let Some(mut segment) = self.current.take() {
            // Swift stores nothing of a chunked body cut before its end. Should the connection
            // not take the cut (stalled), the PUT itself is dropped, before its body is.
            if !segment.body.cut(CUT_WAIT).await {
                segment.answer.abort();
            }
            let _ = segment.answer.await;
            let container = self.store.private_container();
            self.sent.push(SloSegment {
                path: format!("/{container}/{}", segment.name),
                etag: String::new(),
                size_bytes: segment.body.len(),
            });
        }
        let stored: Vec<String> = self.sent.iter().map(|s| s.path.clone()).collect();
        self.store
            .remove_failed_upload(&self.path, &self.id, &stored)
            .await;
    }
}
