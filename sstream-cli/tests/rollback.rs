//! `sstream-mirror`'s protection against a source going back in time or standing still, and
//! its re-verification of what it holds: a validly signed older stream is refused unless
//! `--allow-rollback`, a signed stream not updated for `--stale-after` days is warned about,
//! `--verify-existing` finds and repairs a corrupted file, and `--all-checksums` checks the
//! checksums the default leaves aside.

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;
use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};
use simplestreams_testutil::fixture;
use simplestreams_testutil::http_server::TestServer;

const OLDER: &str = "Mon, 01 Jan 2024 00:00:00 +0000";
const NEWER: &str = "Mon, 01 Jul 2024 00:00:00 +0000";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"))
}

fn mirror(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_sstream-mirror"), args)
}

/// Asserts success; returns stderr.
fn ok(out: &Output) -> String {
    let err = text(&out.stderr);
    assert!(out.status.success(), "sstream-mirror failed:\n{err}");
    err
}

/// Asserts failure (not a crash); returns stderr.
fn refused(out: &Output) -> String {
    let err = text(&out.stderr);
    assert!(!out.status.success(), "must exit non-zero:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn digest(data: &[u8], kind: ChecksumKind) -> String {
    let mut v = StreamVerifier::new("", Expected::default()).also_compute(kind);
    v.update(data).unwrap();
    v.finish().unwrap().get(kind).unwrap().to_string()
}

fn write(dir: &Path, rel: &str, bytes: impl AsRef<[u8]>) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn content(version: &str) -> Vec<u8> {
    format!("disk image of version {version}\n")
        .repeat(50)
        .into_bytes()
}

/// Writes an unsigned stream into `dir`: product `p` with `versions`, one item `disk` each at
/// `files/V/disk`, index and products file both `updated` as given.
fn write_stream(dir: &Path, updated: &str, versions: &[&str]) {
    let mut vs = serde_json::Map::new();
    for v in versions {
        let c = content(v);
        let path = format!("files/{v}/disk");
        write(dir, &path, &c);
        vs.insert(
            (*v).into(),
            json!({"items": {"disk": {"path": path, "size": c.len(),
                "sha256": digest(&c, ChecksumKind::Sha256), "ftype": "disk"}}}),
        );
    }
    let products = json!({"format": "products:1.0", "content_id": "com.example:c",
        "datatype": "image-downloads", "updated": updated,
        "products": {"p": {"arch": "amd64", "versions": vs}}});
    let index = json!({"format": "index:1.0", "updated": updated, "index": {"com.example:c": {
        "format": "products:1.0", "datatype": "image-downloads", "path": "streams/v1/c.json",
        "updated": updated, "products": ["p"]}}});
    write(
        dir,
        "streams/v1/c.json",
        serde_json::to_vec_pretty(&products).unwrap(),
    );
    write(
        dir,
        "streams/v1/index.json",
        serde_json::to_vec_pretty(&index).unwrap(),
    );
}

fn secret_key() -> PathBuf {
    fixture("signed-cases/valid-key/test-signing-key.sec.asc")
}

fn public_key() -> PathBuf {
    fixture("signed-cases/valid-key/test-signing-key.pub.asc")
}

/// Writes the stream into `dir` and signs it with the test key (`sstream sign`).
fn write_signed_stream(dir: &Path, updated: &str, versions: &[&str]) {
    write_stream(dir, updated, versions);
    let out = run(
        env!("CARGO_BIN_EXE_sstream"),
        &["sign", "--secret-key", s(&secret_key()), s(dir)],
    );
    assert!(out.status.success(), "sstream sign: {}", text(&out.stderr));
    assert!(dir.join("streams/v1/index.sjson").is_file());
}

/// Replaces what `serving` holds with `from`'s files.
fn serve_instead(serving: &Path, from: &Path) {
    let _ = std::fs::remove_dir_all(serving.join("streams"));
    copy_dir(from, serving);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Every file of a mirror, the state included, but the lock (rewritten with the pid).
fn mirror_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    simplestreams_testutil::dir_tree(dir, &[".sstream-mirror/lock"])
}

#[test]
fn a_validly_signed_older_stream_is_refused_as_a_rollback_unless_allowed() {
    let older = tempfile::tempdir().unwrap();
    write_signed_stream(older.path(), OLDER, &["1"]);
    let newer = tempfile::tempdir().unwrap();
    write_signed_stream(newer.path(), NEWER, &["1", "2"]);
    let serving = tempfile::tempdir().unwrap();
    serve_instead(serving.path(), newer.path());
    let server = TestServer::serve_dir(serving.path());
    let url = server.url_for("streams/v1/index.sjson");
    let out = tempfile::tempdir().unwrap();
    let pubkey = public_key();
    let args = ["--keyring", s(&pubkey), &url, s(out.path())];
    ok(&mirror(&args));
    assert!(out.path().join("files/2/disk").is_file());
    let before = mirror_tree(out.path());

    // The source now serves the older stream: genuine files, good signatures, an older date.
    serve_instead(serving.path(), older.path());
    let err = refused(&mirror(&args));
    assert!(
        err.contains(&url) && err.contains(OLDER) && err.contains(NEWER),
        "the error names the file and both dates: {err}"
    );
    assert!(
        err.contains("older than") && err.contains("roll") && err.contains("--allow-rollback"),
        "the error says it is a rollback and how to accept it: {err}"
    );
    assert_eq!(
        mirror_tree(out.path()),
        before,
        "a refused rollback changes nothing in the mirror"
    );

    let allowed = [&["--allow-rollback"][..], &args[..]].concat();
    let err = ok(&mirror(&allowed));
    assert!(
        err.contains("--allow-rollback"),
        "the accepted rollback is still reported: {err}"
    );
    assert_eq!(
        std::fs::read(out.path().join("streams/v1/index.sjson")).unwrap(),
        std::fs::read(older.path().join("streams/v1/index.sjson")).unwrap(),
        "with --allow-rollback the older index is published"
    );
}

#[test]
fn a_signed_source_not_updated_for_stale_after_days_is_warned_about() {
    let src = tempfile::tempdir().unwrap();
    write_signed_stream(src.path(), OLDER, &["1"]);
    let server = TestServer::serve_dir(src.path());
    let url = server.url_for("streams/v1/index.sjson");
    let pubkey = public_key();
    let warned = |err: &str| err.contains("frozen") && err.contains(OLDER);

    let out = tempfile::tempdir().unwrap();
    let err = ok(&mirror(&["--keyring", s(&pubkey), &url, s(out.path())]));
    assert!(
        warned(&err) && err.contains(&url) && err.contains("WARN"),
        "a source last updated in January 2024 is stale by the default 30 days: {err}"
    );

    for never in [
        &["--stale-after", "0"][..],
        &["--stale-after", "1000000"][..],
    ] {
        let out = tempfile::tempdir().unwrap();
        let args = [never, &["--keyring", s(&pubkey), &url, s(out.path())]].concat();
        let err = ok(&mirror(&args));
        assert!(!warned(&err), "no warning with {never:?}: {err}");
    }
}

#[test]
fn verify_existing_finds_a_corrupted_item_and_fetches_it_again() {
    let src = tempfile::tempdir().unwrap();
    write_stream(src.path(), NEWER, &["1", "2"]);
    let server = TestServer::serve_dir(src.path());
    let url = server.url_for("streams/v1/index.json");
    let out = tempfile::tempdir().unwrap();
    ok(&mirror(&[&url, s(out.path())]));

    // One byte flipped in place: same file, same size.
    let item = "files/2/disk";
    let file = out.path().join(item);
    let good = std::fs::read(&file).unwrap();
    {
        let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.seek(SeekFrom::Start(10)).unwrap();
        f.write_all(&[good[10] ^ 0x01]).unwrap();
    }
    let corrupt = std::fs::read(&file).unwrap();
    assert_eq!(corrupt.len(), good.len());
    assert_ne!(corrupt, good);

    server.clear_requests();
    let err = ok(&mirror(&[&url, s(out.path())]));
    assert!(
        err.contains("0 item(s) downloaded") && !err.contains("repaired"),
        "a plain re-run trusts what it holds: {err}"
    );
    assert!(server.requests_for(item).is_empty());
    assert_eq!(
        std::fs::read(&file).unwrap(),
        corrupt,
        "and does not notice"
    );

    server.clear_requests();
    let err = ok(&mirror(&["--verify-existing", &url, s(out.path())]));
    assert!(
        err.contains("1 repaired"),
        "the summary counts the repair: {err}"
    );
    assert_eq!(
        server.requests_for(item).len(),
        1,
        "the corrupted item is fetched again"
    );
    assert!(
        server.requests_for("files/1/disk").is_empty(),
        "the intact one is not"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        good,
        "the file is good again"
    );
}

/// A products file whose one item has a right sha256 and a wrong md5.
fn stream_with_a_wrong_md5(dir: &Path) {
    let c = content("1");
    write(dir, "files/1/disk", &c);
    let products = json!({"format": "products:1.0", "content_id": "c", "products": {"p": {
        "versions": {"1": {"items": {"disk": {"path": "files/1/disk", "size": c.len(),
            "sha256": digest(&c, ChecksumKind::Sha256),
            "md5": digest(b"other bytes", ChecksumKind::Md5)}}}}}}});
    write(
        dir,
        "streams/v1/c.json",
        serde_json::to_vec(&products).unwrap(),
    );
}

#[test]
fn a_wrong_md5_beside_a_right_sha256_passes_by_default_and_fails_with_all_checksums() {
    let src = tempfile::tempdir().unwrap();
    stream_with_a_wrong_md5(src.path());
    let entry = src.path().join("streams/v1/c.json");

    let out = tempfile::tempdir().unwrap();
    let err = ok(&mirror(&[s(&entry), s(out.path())]));
    assert!(err.contains("1 item(s) downloaded"), "{err}");
    assert_eq!(
        std::fs::read(out.path().join("files/1/disk")).unwrap(),
        content("1")
    );

    let strict = tempfile::tempdir().unwrap();
    let err = refused(&mirror(&["--all-checksums", s(&entry), s(strict.path())]));
    assert!(
        err.contains("c p 1 disk") && err.contains("md5"),
        "the error names the item and the checksum that failed: {err}"
    );
    assert!(
        !strict.path().join("files/1/disk").exists()
            && !strict.path().join("streams/v1/c.json").exists(),
        "nothing of it is published"
    );
}
