//! Verification does not depend on an item's size: small items are hashed as they arrive, large
//! ones on a thread of their own in batches (one thread per checksum kind when several are
//! verified, as `--all-checksums` does on Ubuntu's md5 + sha256), and both catch every kind of
//! bad content. Files on disk on
//! both sides, so that large items arrive in many chunks.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{md5_hex, sha256_hex};
use serde_json::json;
use simplestreams_core::ChecksumPolicy;
use simplestreams_mirror::{LocalStore, Mirror, Report, StoreExt, StoreSource, SyncOptions};

/// Sizes on either side of the engine's choice (256 KiB), and one over several hashing batches
/// and past the point where the disk writes of an item start early (8 MiB).
const SIZES: [usize; 3] = [1000, 256 * 1024 + 1, 9 * 1024 * 1024 + 123];

fn good_content(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Mirrors one item described by `good` (its size and sha256, and `md5` when given) but served
/// as `served`, into a fresh directory.
async fn mirror_one(
    good: &[u8],
    md5: Option<String>,
    served: Vec<u8>,
) -> (Report, tempfile::TempDir) {
    mirror_checking(good, md5, served, ChecksumPolicy::Strongest).await
}

/// [`mirror_one`], verifying the checksums `checks` picks.
async fn mirror_checking(
    good: &[u8],
    md5: Option<String>,
    served: Vec<u8>,
    checks: ChecksumPolicy,
) -> (Report, tempfile::TempDir) {
    let up = tempfile::tempdir().unwrap();
    let source = LocalStore::new(up.path());
    let mut item = json!({"path": "files/a.img", "size": good.len(), "sha256": sha256_hex(good)});
    if let Some(md5) = md5 {
        item["md5"] = json!(md5);
    }
    let doc = json!({"format": "products:1.0", "content_id": "c1", "products": {"p": {"versions":
        {"1": {"items": {"a": item}}}}}});
    source
        .put_bytes(
            "streams/v1/c1.json",
            serde_json::to_vec(&doc).unwrap().into(),
        )
        .await
        .unwrap();
    source
        .put_bytes("files/a.img", served.into())
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let report = Mirror::to_store(
        Arc::new(StoreSource::new(Arc::new(source))),
        Arc::new(LocalStore::new(out.path())),
        SyncOptions {
            entry: "streams/v1/c1.json".into(),
            checksums: checks,
            ..SyncOptions::default()
        },
    )
    .run()
    .await
    .unwrap();
    (report, out)
}

/// Every file below `dir`, temporary names included, relative to it.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_items_of_every_size_arrive_whole() {
    for size in SIZES {
        let good = good_content(size);
        for md5 in [None, Some(md5_hex(&good))] {
            let (report, out) = mirror_one(&good, md5, good.clone()).await;
            assert!(report.is_success(), "{size} bytes: {:?}", report.errors);
            assert_eq!(report.bytes, size as u64);
            assert!(
                std::fs::read(out.path().join("files/a.img")).unwrap() == good,
                "{size} bytes: content differs"
            );
        }
    }
}

/// docs/format.md, "Checksums": by default the size and one checksum, sha256 when given, are verified; an md5 that
/// disagrees with a matching sha256 is not looked at (`--all-checksums` does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_sha256_is_verified_and_md5_is_not() {
    let size = SIZES[2];
    let good = good_content(size);
    let (report, out) = mirror_one(&good, Some(md5_hex(b"something else")), good.clone()).await;
    assert!(report.is_success(), "{:?}", report.errors);
    assert!(std::fs::read(out.path().join("files/a.img")).unwrap() == good);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_items_of_every_size_are_refused_and_leave_nothing() {
    for size in SIZES {
        let good = good_content(size);
        let mut flipped = good.clone();
        flipped[size - 1] ^= 1;
        let md5 = Some(md5_hex(&good));
        let (one, all) = (ChecksumPolicy::Strongest, ChecksumPolicy::All);
        let cases = [
            (
                "one byte more",
                None,
                [good.as_slice(), b"!"].concat(),
                one,
                "size mismatch",
            ),
            (
                "one byte less",
                None,
                good[..size - 1].to_vec(),
                one,
                "size mismatch",
            ),
            (
                "last byte changed",
                None,
                flipped.clone(),
                one,
                "sha256 mismatch",
            ),
            // With md5 as well, every checksum verified: the size, then the strongest
            // checksum, is the one named.
            (
                "one byte more, md5 given",
                md5.clone(),
                [good.as_slice(), b"!"].concat(),
                all,
                "size mismatch",
            ),
            (
                "last byte changed, md5 given",
                md5.clone(),
                flipped.clone(),
                all,
                "sha256 mismatch",
            ),
            (
                "last byte changed, md5 given, default checks",
                md5.clone(),
                flipped,
                one,
                "sha256 mismatch",
            ),
            (
                "a wrong md5 in the metadata, every checksum verified",
                Some(md5_hex(b"something else")),
                good.clone(),
                all,
                "md5 mismatch",
            ),
        ];
        for (what, md5, served, checks, message) in cases {
            let (report, out) = mirror_checking(&good, md5, served, checks).await;
            let errors: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
            assert!(
                errors.len() == 1
                    && errors[0].contains("files/a.img")
                    && errors[0].contains(message),
                "{size} bytes, {what}: {errors:?}"
            );
            // Neither the item, nor its temporary file, nor the products file naming it.
            let left: Vec<String> = files(out.path())
                .into_iter()
                .filter(|p| !p.starts_with(".sstream-mirror"))
                .collect();
            assert_eq!(left, Vec::<String>::new(), "{size} bytes, {what}");
        }
    }
}
