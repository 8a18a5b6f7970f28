//! Compressed images (`.gz`, `.xz`, `.bz2`, `.zst`) decompressed while they stream.
//!
//! The published checksum is of the compressed bytes, so those are verified as they arrive
//! (the engine's `verifying` wrapper, unchanged); [`decompressing`] sits after
//! it and turns them into the image's raw bytes, whose size and sha256 it computes in the same
//! pass, with what the content is ([`FileType`]: qcow2, raw, vmdk, vhd…) for Glance's
//! `disk_format`. The published checksum failing, a corrupt or truncated stream, or output
//! beyond [`DecompressOptions::max_size`] (a decompression bomb) ends the stream with an error,
//! so that a target never publishes the result.
//!
//! Decompression runs on a blocking thread of its own and the raw bytes are hashed on a
//! [`HashingThread`], so that receiving, decompressing and hashing overlap on separate cores as
//! `xz -dc | sha256sum` does.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use simplestreams_core::filetype::{self, FileType, HEAD_BYTES};
use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};

use crate::error::{Error, Result};
use crate::hashing::{Batcher, HashingThread};
use crate::store::ByteStream;

/// A compression an image may be published in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// gzip (`.gz`), members concatenated or not.
    Gzip,
    /// xz (`.xz`), streams concatenated or not.
    Xz,
    /// bzip2 (`.bz2`), streams concatenated or not.
    Bzip2,
    /// Zstandard (`.zst`), one or more frames.
    Zstd,
}

impl Compression {
    /// Every compression, in the order [`Compression::from_name`] tries them.
    pub const ALL: [Compression; 4] = [
        Compression::Gzip,
        Compression::Xz,
        Compression::Bzip2,
        Compression::Zstd,
    ];

    /// The compression a file name (or path) ends in, if any.
    pub fn from_name(name: &str) -> Option<Compression> {
        let (_, ext) = name.rsplit_once('.')?;
        let ext = ext.to_ascii_lowercase();
        Compression::ALL.into_iter().find(|c| c.extension() == ext)
    }

    /// The compression of content starting with `head`, from its magic bytes.
    pub fn from_magic(head: &[u8]) -> Option<Compression> {
        match filetype::detect(head, &[])? {
            FileType::Gzip => Some(Compression::Gzip),
            FileType::Xz => Some(Compression::Xz),
            FileType::Bzip2 => Some(Compression::Bzip2),
            FileType::Zstd => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Its file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => "gz",
            Compression::Xz => "xz",
            Compression::Bzip2 => "bz2",
            Compression::Zstd => "zst",
        }
    }

    /// `name` without this compression's extension (`a.qcow2.xz` → `a.qcow2`); `name` itself
    /// when it does not end in it.
    pub fn strip(self, name: &str) -> &str {
        match name.rsplit_once('.') {
            Some((stem, ext)) if ext.eq_ignore_ascii_case(self.extension()) && !stem.is_empty() => {
                stem
            }
            _ => name,
        }
    }

    /// A decoder of this compression reading `input`.
    fn decoder<'a, R: Read + Send + 'a>(self, input: R) -> io::Result<Box<dyn Read + Send + 'a>> {
        // Multi-member/stream decoders: `pigz`, `pxz` and `cat a.gz b.gz` make several, and a
        // single-member decoder would stop after the first and call the rest garbage.
        let input = io::BufReader::with_capacity(IN_BUF, input);
        Ok(match self {
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
            Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(input)),
            Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
        })
    }
}

/// The compression of a compressed disk image at `path`, which a target may store
/// decompressed: a name ending in `.gz`, `.xz`, `.bz2` or `.zst`, but not a compressed tarball
/// (`.tar.xz`, a root filesystem archive is used as published) and not a bare extension.
pub fn image_compression(path: &str) -> Option<Compression> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let compression = Compression::from_name(name)?;
    let stem = compression.strip(name);
    if stem == name || stem.to_ascii_lowercase().ends_with(".tar") {
        return None;
    }
    Some(compression)
}

/// The `ftype` of an item once decompressed: the published one without the compression's
/// extension, named as the stream conventions name the result (`qcow2.xz` → `disk1.img`,
/// `raw.xz` → `raw`); `ftype` itself when it does not name the compression (`disk1.img`).
pub fn decompressed_ftype(ftype: &str, compression: Compression) -> String {
    match compression.strip(ftype) {
        stem if stem.len() < ftype.len() => simplestreams_core::sums::ftype_for_extension(stem),
        _ => ftype.to_string(),
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Bzip2 => "bzip2",
            Compression::Zstd => "zstd",
        })
    }
}

/// The default [`DecompressOptions::max_size`]: larger than any cloud image (the biggest
/// published raw images are a few tens of GiB), small enough that a bomb stops before it fills
/// a disk.
pub const DEFAULT_MAX_DECOMPRESSED: u64 = 128 << 30;

/// How to decompress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecompressOptions {
    /// The most raw bytes one image may decompress to; beyond it the item fails as a
    /// decompression bomb.
    pub max_size: u64,
}

impl Default for DecompressOptions {
    fn default() -> Self {
        DecompressOptions {
            max_size: DEFAULT_MAX_DECOMPRESSED,
        }
    }
}

/// What the raw bytes of a decompressed image were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decompressed {
    /// Their size.
    pub size: u64,
    /// Their sha256, lower-case hex.
    pub sha256: String,
    /// What they are, from their content (`None`: none of the formats [`filetype`] knows).
    pub file_type: Option<FileType>,
}

impl Decompressed {
    /// Glance's `disk_format` for the raw bytes: detected from the content, `raw` when the
    /// content is no known container format (a bare filesystem, an unpartitioned disk).
    pub fn disk_format(&self) -> &'static str {
        disk_format_of(self.file_type)
    }
}

/// Glance's `disk_format` for decompressed content of type `file_type` ([`filetype::detect`]):
/// `raw` when it is no known container format (a bare filesystem, an unpartitioned disk).
pub fn disk_format_of(file_type: Option<FileType>) -> &'static str {
    file_type.and_then(FileType::disk_format).unwrap_or("raw")
}

/// Why decompressing failed.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    /// The compressed stream is corrupt, truncated, or not of its compression at all.
    #[error("{name}: not a valid {compression} stream ({reason}); nothing of it is kept")]
    Corrupt {
        /// The item or file.
        name: String,
        /// Its compression.
        compression: Compression,
        /// What the decoder said.
        reason: String,
    },
    /// More raw bytes than allowed.
    #[error(
        "{name}: decompresses to more than {limit} bytes (the limit for one image, \
         --max-decompressed-size): refused as a decompression bomb"
    )]
    TooLarge {
        /// The item or file.
        name: String,
        /// The limit.
        limit: u64,
    },
}

/// The result of a [`decompressing`] stream, known once the stream has ended without an error.
#[derive(Debug, Clone, Default)]
pub struct DecompressedHandle {
    slot: Arc<Mutex<Option<Decompressed>>>,
}

impl DecompressedHandle {
    /// The size, sha256 and type of the raw bytes; `None` until the stream has ended cleanly.
    pub fn get(&self) -> Option<Decompressed> {
        self.slot.lock().ok().and_then(|s| s.clone())
    }
}

/// Compressed bytes read at a time by the decoder.
const IN_BUF: usize = 256 * 1024;
/// Raw bytes produced at a time: one chunk of the output stream.
const OUT_CHUNK: usize = 1 << 20;
/// The end of the raw bytes kept for [`filetype::detect`]: a VHD's footer.
const TAIL: usize = 512;
/// Chunks in flight each way between the async side and the decoder's thread.
const IN_FLIGHT: usize = 4;

/// The input of the decoder: chunks from the async side. An error of the body (the published
/// checksum failing, the connection cut) is kept to be reported as itself, not as the
/// decoder's complaint about the bytes stopping.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes>>,
    chunk: Bytes,
    failed: Arc<Mutex<Option<Error>>>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(c)) => self.chunk = c,
                Some(Err(e)) => {
                    if let Ok(mut f) = self.failed.lock() {
                        *f = Some(e);
                    }
                    return Err(io::Error::other("the compressed stream failed"));
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// What the decoder's thread hands back: raw chunks, then its verdict (the type of the
/// content), or the error that stopped it.
enum Out {
    Chunk(Bytes),
    Done(Option<FileType>),
    Failed(Error),
}

/// Decodes everything from `input`, sending raw chunks to `tx`.
fn decode(
    input: ChannelReader,
    compression: Compression,
    options: DecompressOptions,
    name: &str,
    tx: &tokio::sync::mpsc::Sender<Out>,
) -> Result<Option<FileType>> {
    let failed = input.failed.clone();
    let corrupt = |e: io::Error| -> Error {
        if let Some(e) = failed.lock().ok().and_then(|mut f| f.take()) {
            return e;
        }
        Error::Service(Box::new(DecompressError::Corrupt {
            name: name.to_string(),
            compression,
            reason: e.to_string(),
        }))
    };
    let mut decoder = compression.decoder(input).map_err(corrupt)?;
    let mut head: Vec<u8> = Vec::with_capacity(HEAD_BYTES);
    // The last 512 bytes: a VHD's footer.
    let mut tail = [0u8; TAIL];
    let mut total: u64 = 0;
    loop {
        let mut buf = vec![0u8; OUT_CHUNK];
        let mut filled = 0;
        while filled < buf.len() {
            match decoder.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(corrupt(e)),
            }
        }
        if filled == 0 {
            break;
        }
        buf.truncate(filled);
        total += filled as u64;
        if total > options.max_size {
            return Err(Error::Service(Box::new(DecompressError::TooLarge {
                name: name.to_string(),
                limit: options.max_size,
            })));
        }
        if head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - head.len()).min(buf.len());
            head.extend_from_slice(&buf[..take]);
        }
        if buf.len() >= TAIL {
            tail.copy_from_slice(&buf[buf.len() - TAIL..]);
        } else {
            tail.copy_within(buf.len().., 0);
            tail[TAIL - buf.len()..].copy_from_slice(&buf);
        }
        if tx.blocking_send(Out::Chunk(Bytes::from(buf))).is_err() {
            // The reader went away: nobody wants the rest.
            return Err(Error::Aborted(format!("{name}: decompression abandoned")));
        }
    }
    let tail_len = total.min(TAIL as u64) as usize;
    Ok(filetype::detect(&head, &tail[TAIL - tail_len..]))
}

/// Decompresses `body` (bytes in `compression`, already being verified as published) into the
/// raw bytes; see the module documentation. The handle has their size, sha256 and type once
/// the returned stream has ended without an error.
pub fn decompressing(
    body: ByteStream,
    compression: Compression,
    options: DecompressOptions,
    name: impl Into<String>,
) -> (ByteStream, DecompressedHandle) {
    let name = name.into();
    let handle = DecompressedHandle::default();
    let (in_tx, in_rx) = tokio::sync::mpsc::channel::<Result<Bytes>>(IN_FLIGHT);
    let (out_tx, out_rx) = tokio::sync::mpsc::channel::<Out>(IN_FLIGHT);
    // The body is pulled by a task of its own, so that receiving goes on while the decoder
    // works; it stops when the decoder stops reading.
    let pump = tokio::spawn(async move {
        let mut body = body;
        while let Some(item) = body.next().await {
            let stop = item.is_err();
            if in_tx.send(item).await.is_err() || stop {
                break;
            }
        }
    });
    let input = ChannelReader {
        rx: in_rx,
        chunk: Bytes::new(),
        failed: Arc::new(Mutex::new(None)),
    };
    let thread_name = name.clone();
    tokio::task::spawn_blocking(move || {
        let last = match decode(input, compression, options, &thread_name, &out_tx) {
            Ok(t) => Out::Done(t),
            Err(e) => Out::Failed(e),
        };
        let _ = out_tx.blocking_send(last);
    });
    let hasher = HashingThread::start(
        StreamVerifier::new(name.clone(), Expected::default()).also_compute(ChecksumKind::Sha256),
    );
    let state = State {
        name,
        rx: out_rx,
        hasher: Some(hasher),
        batcher: Batcher::default(),
        slot: handle.slot.clone(),
        _pump: AbortOnDrop(pump),
    };
    let stream = stream::unfold(state, |mut st| async move {
        let hasher = st.hasher.as_ref()?;
        match st.rx.recv().await {
            Some(Out::Chunk(chunk)) => {
                if let Some(batch) = st.batcher.push(chunk.clone()) {
                    if !hasher.send(batch).await {
                        st.hasher = None;
                        let e = Error::Aborted(format!("{}: hashing stopped early", st.name));
                        return Some((Err(e), st));
                    }
                }
                Some((Ok(chunk), st))
            }
            Some(Out::Done(file_type)) => {
                let result = st.finish(file_type).await;
                st.hasher = None;
                result.err().map(|e| (Err(e), st))
            }
            Some(Out::Failed(e)) => {
                st.hasher = None;
                Some((Err(e), st))
            }
            None => {
                st.hasher = None;
                let e = Error::Aborted(format!("{}: the decompressing task failed", st.name));
                Some((Err(e), st))
            }
        }
    })
    .boxed();
    (stream, handle)
}

/// [`decompressing`] behind the engine's verification of the bytes as published (`published`:
/// the compressed file's size and checksums, as its checksum file or stream gives them): the
/// path of an item downloaded compressed and kept raw. A mismatch of the compressed bytes
/// fails the stream with the engine's [`Error::Verify`], as for any item.
pub fn verify_and_decompress(
    body: ByteStream,
    name: impl Into<String>,
    url: impl Into<String>,
    published: Expected,
    compression: Compression,
    options: DecompressOptions,
) -> (ByteStream, DecompressedHandle) {
    let name = name.into();
    let verified = crate::engine::verifying(
        body,
        name.clone(),
        published,
        url.into(),
        Arc::new(crate::engine::NoProgress),
    );
    decompressing(verified, compression, options, name)
}

/// Stops the task pulling the body when the stream is dropped before its end.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct State {
    name: String,
    rx: tokio::sync::mpsc::Receiver<Out>,
    hasher: Option<HashingThread>,
    batcher: Batcher,
    slot: Arc<Mutex<Option<Decompressed>>>,
    _pump: AbortOnDrop,
}

impl State {
    async fn finish(&mut self, file_type: Option<FileType>) -> Result<()> {
        let Some(hasher) = self.hasher.take() else {
            return Ok(());
        };
        let rest = self.batcher.take();
        let _ = hasher.send(rest).await;
        let digests = hasher.finish().await?.map_err(Error::from)?;
        let sha256 = digests
            .sha256
            .ok_or_else(|| Error::Aborted(format!("{}: no sha256 of the raw bytes", self.name)))?;
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some(Decompressed {
                size: digests.size,
                sha256,
                file_type,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_magic_give_the_compression() {
        assert_eq!(
            Compression::from_name("debian-12-generic-amd64.raw.XZ"),
            Some(Compression::Xz)
        );
        assert_eq!(
            Compression::from_name("a/b.qcow2.gz"),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::from_name("a.tar.bz2"),
            Some(Compression::Bzip2)
        );
        assert_eq!(Compression::from_name("a.img.zst"), Some(Compression::Zstd));
        assert_eq!(Compression::from_name("a.qcow2"), None);
        assert_eq!(Compression::from_name("noext"), None);
        assert_eq!(Compression::Xz.strip("a.raw.xz"), "a.raw");
        assert_eq!(Compression::Xz.strip("a.raw"), "a.raw");
        assert_eq!(Compression::Gzip.strip(".gz"), ".gz");
        assert_eq!(
            Compression::from_magic(b"\xfd7zXZ\x00\x00"),
            Some(Compression::Xz)
        );
        assert_eq!(Compression::from_magic(b"QFI\xfb"), None);
    }

    #[test]
    fn images_are_decompressed_and_archives_kept_with_the_ftype_following() {
        let xz = Some(Compression::Xz);
        assert_eq!(image_compression("a/debian-12-nocloud-amd64.raw.xz"), xz);
        assert_eq!(
            image_compression("F-41.x86_64.qcow2.gz"),
            Some(Compression::Gzip)
        );
        assert_eq!(
            image_compression("noble-server-cloudimg-amd64-lxd.tar.xz"),
            None
        );
        assert_eq!(image_compression("root.TAR.gz"), None);
        assert_eq!(image_compression("dir.xz/disk.img"), None);
        assert_eq!(image_compression("images/.xz"), None);
        assert_eq!(decompressed_ftype("raw.xz", Compression::Xz), "raw");
        assert_eq!(decompressed_ftype("qcow2.xz", Compression::Xz), "disk1.img");
        assert_eq!(
            decompressed_ftype("disk1.img", Compression::Xz),
            "disk1.img"
        );
        assert_eq!(decompressed_ftype("raw.gz", Compression::Xz), "raw.gz");
    }
}
