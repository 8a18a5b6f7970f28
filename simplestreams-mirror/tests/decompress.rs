//! Compressed images decompressed while they stream: every compression gives back the raw bytes
//! with their size, sha256 and type; a corrupt or truncated stream, a failing body and a bomb
//! beyond the limit each end the stream with an error of their own.

use std::io::Write;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use simplestreams_core::filetype::FileType;
use simplestreams_mirror::decompress::{
    decompressing, Compression, DecompressError, DecompressOptions, Decompressed,
};
use simplestreams_mirror::{ByteStream, Error};

/// A qcow2-looking image: its magic, then bytes that compress but are not all alike.
fn qcow2_image(len: usize) -> Vec<u8> {
    let mut v = b"QFI\xfb\x00\x00\x00\x03".to_vec();
    let mut x: u32 = 12345;
    while v.len() < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        // Runs of one byte: compressible, as real images are.
        let run = (x >> 24) as usize % 64 + 1;
        v.extend(std::iter::repeat_n((x >> 16) as u8, run));
    }
    v.truncate(len);
    v
}

fn compress(c: Compression, data: &[u8]) -> Vec<u8> {
    match c {
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Xz => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Bzip2 => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(data, 3).unwrap(),
    }
}

fn sha256(data: &[u8]) -> String {
    use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};
    let mut v = StreamVerifier::new("", Expected::default()).also_compute(ChecksumKind::Sha256);
    v.update(data).unwrap();
    v.finish().unwrap().sha256.unwrap()
}

/// `data` as a body of chunks of `chunk` bytes.
fn body(data: &[u8], chunk: usize) -> ByteStream {
    let chunks: Vec<simplestreams_mirror::Result<Bytes>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(chunks).boxed()
}

async fn run(
    c: Compression,
    input: ByteStream,
    options: DecompressOptions,
) -> (Result<Vec<u8>, Error>, Option<Decompressed>) {
    let (mut out, handle) = decompressing(input, c, options, "img");
    let mut raw = Vec::new();
    while let Some(chunk) = out.next().await {
        match chunk {
            Ok(b) => raw.extend_from_slice(&b),
            Err(e) => return (Err(e), handle.get()),
        }
    }
    (Ok(raw), handle.get())
}

fn decompress_error(e: &Error) -> &DecompressError {
    match e {
        Error::Service(b) => b
            .downcast_ref::<DecompressError>()
            .unwrap_or_else(|| panic!("not a decompression error: {e}")),
        other => panic!("not a decompression error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_gives_the_raw_bytes_their_size_sha256_and_type() {
    let raw = qcow2_image(3 << 20);
    for c in Compression::ALL {
        let packed = compress(c, &raw);
        assert!(
            packed.len() < raw.len(),
            "{c}: the test image must compress"
        );
        let (out, done) = run(c, body(&packed, 64 * 1024), DecompressOptions::default()).await;
        let out = out.unwrap_or_else(|e| panic!("{c}: {e}"));
        assert!(out == raw, "{c}: the raw bytes differ");
        let done = done.unwrap_or_else(|| panic!("{c}: no result after a clean end"));
        assert_eq!(done.size, raw.len() as u64, "{c}");
        assert_eq!(done.sha256, sha256(&raw), "{c}");
        assert_eq!(done.file_type, Some(FileType::Qcow2), "{c}");
        assert_eq!(done.disk_format(), "qcow2", "{c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concatenated_members_are_all_decompressed() {
    let (a, b) = (qcow2_image(100_000), b"and a second member".to_vec());
    for c in Compression::ALL {
        let mut packed = compress(c, &a);
        packed.extend(compress(c, &b));
        let (out, done) = run(c, body(&packed, 7000), DecompressOptions::default()).await;
        let out = out.unwrap_or_else(|e| panic!("{c}: {e}"));
        assert_eq!(out.len(), a.len() + b.len(), "{c}");
        assert_eq!(done.map(|d| d.size), Some((a.len() + b.len()) as u64));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_stream_fails_and_gives_no_result() {
    let raw = qcow2_image(1 << 20);
    for c in Compression::ALL {
        let packed = compress(c, &raw);
        let cut = &packed[..packed.len() * 2 / 3];
        let (out, done) = run(c, body(cut, 50_000), DecompressOptions::default()).await;
        let e = out.expect_err(&format!("{c}: a truncated stream was accepted"));
        match decompress_error(&e) {
            DecompressError::Corrupt {
                name, compression, ..
            } => {
                assert_eq!((name.as_str(), *compression), ("img", c));
            }
            other => panic!("{c}: {other}"),
        }
        assert!(
            e.to_string().contains(&format!("not a valid {c} stream")),
            "{e}"
        );
        assert!(done.is_none(), "{c}: a result for a failed stream");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_stream_fails() {
    let raw = qcow2_image(1 << 20);
    for c in Compression::ALL {
        let mut packed = compress(c, &raw);
        // The headers and a stretch of the data: every format checks these (a CRC, a block
        // check, or the symbols making no sense).
        for i in (0..packed.len()).step_by(97) {
            packed[i] ^= 0x5a;
        }
        let (out, done) = run(c, body(&packed, 50_000), DecompressOptions::default()).await;
        let e = out.expect_err(&format!("{c}: a corrupt stream was accepted"));
        assert!(
            matches!(decompress_error(&e), DecompressError::Corrupt { .. }),
            "{c}: {e}"
        );
        assert!(done.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_bytes_are_not_taken_for_a_compressed_stream() {
    let raw = qcow2_image(100_000);
    for c in Compression::ALL {
        let (out, _) = run(c, body(&raw, 10_000), DecompressOptions::default()).await;
        let e = out.expect_err(&format!("{c}: plain bytes accepted"));
        assert!(
            matches!(decompress_error(&e), DecompressError::Corrupt { .. }),
            "{c}: {e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bomb_beyond_the_limit_is_refused() {
    // 64 MiB of zeros: a few KiB compressed.
    let raw = vec![0u8; 64 << 20];
    for c in Compression::ALL {
        let packed = compress(c, &raw);
        assert!(packed.len() < raw.len() / 100, "{c}");
        let limit = DecompressOptions { max_size: 10 << 20 };
        let (out, done) = run(c, body(&packed, 4096), limit).await;
        let e = out.expect_err(&format!("{c}: a bomb was accepted"));
        match decompress_error(&e) {
            DecompressError::TooLarge { limit, .. } => assert_eq!(*limit, 10 << 20),
            other => panic!("{c}: {other}"),
        }
        assert!(e.to_string().contains("decompression bomb"), "{e}");
        assert!(done.is_none());
        // At the limit exactly, it passes.
        let exact = DecompressOptions {
            max_size: raw.len() as u64,
        };
        let (out, done) = run(c, body(&packed, 4096), exact).await;
        assert_eq!(out.map(|o| o.len()).ok(), Some(raw.len()), "{c}");
        assert_eq!(done.map(|d| d.size), Some(raw.len() as u64));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_body_is_reported_as_itself_not_as_corruption() {
    // What the engine's verifier does when the published checksum does not match: the body
    // ends with its error, which must come out unchanged.
    let raw = qcow2_image(1 << 20);
    for c in Compression::ALL {
        let packed = compress(c, &raw);
        let mut chunks: Vec<simplestreams_mirror::Result<Bytes>> = packed
            .chunks(100_000)
            .map(|b| Ok(Bytes::copy_from_slice(b)))
            .collect();
        let keep = chunks.len() / 2;
        chunks.truncate(keep.max(1));
        chunks.push(Err(Error::Aborted(
            "the published sha256 does not match".into(),
        )));
        let (out, done) = run(
            c,
            stream::iter(chunks).boxed(),
            DecompressOptions::default(),
        )
        .await;
        match out {
            Err(Error::Aborted(m)) => assert!(m.contains("published sha256"), "{c}: {m}"),
            Err(e) => panic!("{c}: the body's error became {e}"),
            Ok(_) => panic!("{c}: a failing body was accepted"),
        }
        assert!(done.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_that_is_no_known_format_is_raw_for_glance() {
    let raw = b"just some bytes, no partition table".repeat(1000);
    let packed = compress(Compression::Zstd, &raw);
    let (out, done) = run(
        Compression::Zstd,
        body(&packed, 1000),
        DecompressOptions::default(),
    )
    .await;
    assert_eq!(out.unwrap(), raw);
    let done = done.unwrap();
    assert_eq!((done.file_type, done.disk_format()), (None, "raw"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compressed_bytes_are_verified_as_published_in_the_same_pass() {
    use simplestreams_core::Expected;
    use simplestreams_mirror::decompress::verify_and_decompress;
    let raw = qcow2_image(2 << 20);
    for c in Compression::ALL {
        let packed = compress(c, &raw);
        let published = Expected {
            size: Some(packed.len() as u64),
            sha256: Some(sha256(&packed)),
            ..Expected::default()
        };
        let drain = |(mut s, h): (ByteStream, _)| async move {
            let mut n = 0usize;
            while let Some(chunk) = s.next().await {
                n += chunk?.len();
            }
            Ok::<_, Error>((n, h))
        };
        let url = format!("http://h/img.{}", c.extension());
        let ok = verify_and_decompress(
            body(&packed, 65536),
            "img",
            url.clone(),
            published.clone(),
            c,
            DecompressOptions::default(),
        );
        let (n, handle): (usize, simplestreams_mirror::decompress::DecompressedHandle) =
            drain(ok).await.unwrap_or_else(|e| panic!("{c}: {e}"));
        assert_eq!(n, raw.len());
        let done = handle.get().unwrap();
        assert_eq!((done.size, done.sha256), (raw.len() as u64, sha256(&raw)));

        // The raw bytes' checksum in place of the compressed one's: refused, as published
        // checksums are about the file as served.
        let wrong = Expected {
            sha256: Some(sha256(&raw)),
            ..published
        };
        let bad = verify_and_decompress(
            body(&packed, 65536),
            "img",
            url,
            wrong,
            c,
            DecompressOptions::default(),
        );
        let e = drain(bad)
            .await
            .err()
            .unwrap_or_else(|| panic!("{c}: accepted"));
        assert!(matches!(e, Error::Verify { .. }), "{c}: {e}");
        assert!(e.to_string().contains("sha256"), "{c}: {e}");
    }
}

/// Mirrors with `--decompress`: compressed images stored raw, described as stored.
mod mirror {
    use std::sync::Arc;

    use bytes::Bytes;
    use serde_json::{json, Value};
    use simplestreams_core::PlanLimits;
    use simplestreams_mirror::decompress::{Compression, DecompressOptions};
    use simplestreams_mirror::{
        InMemory, MetadataMode, Mirror, Report, Store, StoreExt, StoreSource, SyncOptions,
    };

    use super::{compress, qcow2_image, sha256};

    fn md5(data: &[u8]) -> String {
        use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};
        let mut v = StreamVerifier::new("", Expected::default()).also_compute(ChecksumKind::Md5);
        v.update(data).unwrap();
        v.finish().unwrap().md5.unwrap()
    }

    const PRODUCTS: &str = "streams/v1/p.json";

    /// A version of product `p`: `disk` (a qcow2 image, xz-compressed), `raw` (gzip), and
    /// `lxd` (a tarball, kept as published, whose md5 the version level gives).
    fn version(name: &str, files: &mut Vec<(String, Vec<u8>)>, disk: &[u8]) -> Value {
        let xz = compress(Compression::Xz, disk);
        let gz = compress(Compression::Gzip, &disk[..disk.len() / 2]);
        let tar = compress(Compression::Xz, b"a root filesystem archive");
        let entry = |path: &str, data: &[u8], ftype: &str| json!({"path": path, "size": data.len(), "sha256": sha256(data), "ftype": ftype});
        let mut disk_entry = entry(&format!("images/{name}/disk.qcow2.xz"), &xz, "qcow2.xz");
        disk_entry["md5"] = json!(md5(&xz));
        let v = json!({
            "md5": md5(&tar),
            "items": {
                "disk": disk_entry,
                "raw": entry(&format!("images/{name}/disk.raw.gz"), &gz, "raw.gz"),
                "lxd": entry(&format!("images/{name}/root.tar.xz"), &tar, "tar.xz"),
            }
        });
        files.push((format!("images/{name}/disk.qcow2.xz"), xz));
        files.push((format!("images/{name}/disk.raw.gz"), gz));
        files.push((format!("images/{name}/root.tar.xz"), tar));
        v
    }

    async fn upstream(versions: &[(&str, &[u8])]) -> InMemory {
        let store = InMemory::new();
        let mut files = Vec::new();
        let mut vs = serde_json::Map::new();
        for (name, disk) in versions {
            vs.insert(name.to_string(), version(name, &mut files, disk));
        }
        let doc = json!({"format": "products:1.0", "content_id": "c", "datatype": "image-downloads",
            "products": {"p": {"arch": "amd64", "versions": vs}}});
        store
            .put_bytes(PRODUCTS, serde_json::to_vec(&doc).unwrap().into())
            .await
            .unwrap();
        for (path, data) in files {
            store.put_bytes(&path, data.into()).await.unwrap();
        }
        store
    }

    fn options() -> SyncOptions {
        SyncOptions {
            entry: PRODUCTS.into(),
            metadata: MetadataMode::Filtered,
            decompress: Some(DecompressOptions::default()),
            limits: PlanLimits {
                max: Some(1),
                ..PlanLimits::default()
            },
            ..SyncOptions::default()
        }
    }

    async fn sync(upstream: &InMemory, mirror: &InMemory, options: SyncOptions) -> Report {
        Mirror::to_store(
            Arc::new(StoreSource::new(Arc::new(upstream.clone()))),
            Arc::new(mirror.clone()),
            options,
        )
        .run()
        .await
        .unwrap()
    }

    /// Sets item `name` of version 1 in `up`'s products file to `item`, served as `data`.
    async fn add_item(up: &InMemory, name: &str, item: Value, data: Vec<u8>) {
        let doc = up.get_bytes(PRODUCTS).await.unwrap();
        let mut doc: Value = serde_json::from_slice(&doc).unwrap();
        let path = item["path"].as_str().unwrap().to_string();
        doc["products"]["p"]["versions"]["1"]["items"][name] = item;
        up.put_bytes(PRODUCTS, serde_json::to_vec(&doc).unwrap().into())
            .await
            .unwrap();
        up.put_bytes(&path, data.into()).await.unwrap();
    }

    async fn published_item(mirror: &InMemory, version: &str, item: &str) -> Value {
        let doc: Value =
            serde_json::from_slice(&mirror.get_bytes(PRODUCTS).await.unwrap()).unwrap();
        doc["products"]["p"]["versions"][version]["items"][item].clone()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn images_are_stored_raw_and_described_as_stored_and_a_rerun_is_a_no_op() {
        let disk = qcow2_image(1 << 20);
        let up = upstream(&[("20240101", &disk)]).await;
        let mirror = InMemory::new();
        let report = sync(&up, &mirror, options()).await;
        assert!(report.is_success(), "{:?}", report.errors);
        assert_eq!(report.downloaded, 3);

        let raw = mirror
            .get_bytes("images/20240101/disk.qcow2")
            .await
            .unwrap();
        assert_eq!(raw, Bytes::from(disk.clone()));
        assert!(mirror
            .head("images/20240101/disk.qcow2.xz")
            .await
            .unwrap()
            .is_none());
        let half = mirror.get_bytes("images/20240101/disk.raw").await.unwrap();
        assert_eq!(half.len(), disk.len() / 2);
        assert!(
            mirror
                .head("images/20240101/root.tar.xz")
                .await
                .unwrap()
                .is_some(),
            "a tarball is kept as published"
        );

        let item = published_item(&mirror, "20240101", "disk").await;
        assert_eq!(item["path"], "images/20240101/disk.qcow2");
        assert_eq!(item["size"], disk.len() as u64);
        assert_eq!(item["sha256"], sha256(&disk));
        assert_eq!(
            item["ftype"], "disk1.img",
            "qcow2.xz decompressed is a disk1.img"
        );
        assert!(
            item.get("md5").is_none(),
            "the md5 was the compressed file's: {item}"
        );
        let tar = published_item(&mirror, "20240101", "lxd").await;
        assert_eq!(tar["path"], "images/20240101/root.tar.xz");
        assert_eq!(tar["ftype"], "tar.xz");
        assert!(
            tar.get("md5").is_some(),
            "the version's md5 moved down onto the items kept as published: {tar}"
        );
        let doc: Value =
            serde_json::from_slice(&mirror.get_bytes(PRODUCTS).await.unwrap()).unwrap();
        assert!(doc["products"]["p"]["versions"]["20240101"]
            .get("md5")
            .is_none());

        let again = sync(&up, &mirror, options()).await;
        assert!(again.is_success(), "{:?}", again.errors);
        assert_eq!((again.downloaded, again.removed), (0, 0));
        assert!(
            again.products_published.is_empty(),
            "nothing changed: {again:?}"
        );

        // Re-verified against the raw record, not the compressed checksums: nothing fetched.
        let verify = SyncOptions {
            verify_existing: true,
            ..options()
        };
        let checked = sync(&up, &mirror, verify.clone()).await;
        assert_eq!(
            (checked.downloaded, checked.repaired),
            (0, 0),
            "{checked:?}"
        );
        // A damaged raw file is fetched and decompressed again.
        mirror
            .put_bytes("images/20240101/disk.qcow2", Bytes::from_static(b"damaged"))
            .await
            .unwrap();
        let repaired = sync(&up, &mirror, verify).await;
        assert!(repaired.is_success(), "{:?}", repaired.errors);
        assert_eq!(repaired.repaired, 1);
        assert_eq!(
            mirror
                .get_bytes("images/20240101/disk.qcow2")
                .await
                .unwrap(),
            Bytes::from(disk)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_newer_version_replaces_the_raw_files_of_the_old_one() {
        let old = qcow2_image(300_000);
        let new = qcow2_image(400_000);
        let mirror = InMemory::new();
        let report = sync(&upstream(&[("1", &old)]).await, &mirror, options()).await;
        assert!(report.is_success(), "{:?}", report.errors);
        let up = upstream(&[("1", &old), ("2", &new)]).await;
        let report = sync(&up, &mirror, options()).await;
        assert!(report.is_success(), "{:?}", report.errors);
        assert_eq!((report.downloaded, report.removed), (3, 3));
        for gone in [
            "images/1/disk.qcow2",
            "images/1/disk.raw",
            "images/1/root.tar.xz",
        ] {
            assert!(
                mirror.head(gone).await.unwrap().is_none(),
                "{gone} left behind"
            );
        }
        assert_eq!(
            mirror.get_bytes("images/2/disk.qcow2").await.unwrap(),
            Bytes::from(new)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_corrupt_image_fails_its_item_and_publishes_nothing() {
        let disk = qcow2_image(200_000);
        let up = upstream(&[("1", &disk)]).await;
        // Served and published as it is (the checksums match), but not xz inside.
        let junk = b"not an xz stream at all, though its checksum is right".to_vec();
        let disk_item = json!({"path": "images/1/disk.qcow2.xz", "ftype": "qcow2.xz",
            "size": junk.len(), "sha256": sha256(&junk)});
        add_item(&up, "disk", disk_item, junk).await;
        let mirror = InMemory::new();
        let report = sync(&up, &mirror, options()).await;
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        let e = report.errors[0].to_string();
        assert!(
            e.contains("p 1 disk") && e.contains("not a valid xz stream"),
            "{e}"
        );
        assert!(mirror.head("images/1/disk.qcow2").await.unwrap().is_none());
        assert!(
            mirror.head(PRODUCTS).await.unwrap().is_none(),
            "nothing published"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_raw_file_landing_on_another_items_file_is_refused() {
        let disk = qcow2_image(100_000);
        let up = upstream(&[("1", &disk)]).await;
        let plain = b"an uncompressed copy".to_vec();
        let plain_item = json!({"path": "images/1/disk.qcow2", "size": plain.len(),
            "sha256": sha256(&plain)});
        add_item(&up, "plain", plain_item, plain).await;
        let mirror = InMemory::new();
        let report = sync(&up, &mirror, options()).await;
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        let e = report.errors[0].to_string();
        assert!(e.contains("would be stored as images/1/disk.qcow2"), "{e}");
        assert!(mirror.head(PRODUCTS).await.unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn metadata_naming_compressed_files_is_not_published_over_raw_ones() {
        let disk = qcow2_image(100_000);
        let up = upstream(&[("1", &disk)]).await;
        let mirror = InMemory::new();
        assert!(sync(&up, &mirror, options()).await.is_success());
        let before = mirror.get_bytes(PRODUCTS).await.unwrap();
        let verbatim = SyncOptions {
            metadata: MetadataMode::Verbatim,
            decompress: None,
            ..options()
        };
        // A changed source, so that the verbatim run has something to publish.
        up.put_bytes(
            PRODUCTS,
            [&up.get_bytes(PRODUCTS).await.unwrap()[..], b"\n"]
                .concat()
                .into(),
        )
        .await
        .unwrap();
        let report = sync(&up, &mirror, verbatim).await;
        let e = report
            .errors
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(e.contains("stored decompressed"), "{report:?}");
        assert_eq!(mirror.get_bytes(PRODUCTS).await.unwrap(), before);
    }
}
