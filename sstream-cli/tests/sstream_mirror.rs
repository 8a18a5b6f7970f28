//! `sstream-mirror` as users run it, against real HTTP servers on 127.0.0.1 (with faults):
//! every behaviour issue 3 requires, each in a test named after it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};
use simplestreams_testutil::fixture;
use simplestreams_testutil::http_server::{Fault, TestServer};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sstream-mirror")
}

fn mirror(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run sstream-mirror")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "sstream-mirror failed:\n{}",
        text(&out.stderr)
    );
    text(&out.stderr)
}

fn digest(data: &[u8], kind: ChecksumKind) -> String {
    let mut v = StreamVerifier::new("", Expected::default()).also_compute(kind);
    v.update(data).unwrap();
    let d = v.finish().unwrap();
    d.get(kind).unwrap().to_string()
}

/// Deterministic content of an item.
fn content(product: &str, version: &str, item: &str, size: usize) -> Vec<u8> {
    let seed = format!("{product}/{version}/{item}:");
    seed.bytes().cycle().take(size).collect()
}

/// Writes a stream into `dir`: content ids `c1`, `c2`, each with products `p1`, `p2`, the given
/// versions, items `a`, `b` of `size` bytes at `files/CID/P/V/I`. Returns the directory.
fn write_stream(dir: &Path, versions: &[&str], size: usize) -> PathBuf {
    let mut index = serde_json::Map::new();
    for cid in ["c1", "c2"] {
        let mut products = serde_json::Map::new();
        for p in ["p1", "p2"] {
            let mut vs = serde_json::Map::new();
            for v in versions {
                let mut items = serde_json::Map::new();
                for i in ["a", "b"] {
                    let path = format!("files/{cid}/{p}/{v}/{i}");
                    let c = content(p, v, i, size);
                    std::fs::create_dir_all(dir.join(&path).parent().unwrap()).unwrap();
                    std::fs::write(dir.join(&path), &c).unwrap();
                    items.insert(i.into(), json!({"path": path, "size": c.len(), "sha256": digest(&c, ChecksumKind::Sha256), "ftype": i}));
                }
                vs.insert((*v).into(), json!({"items": items}));
            }
            products.insert(p.into(), json!({"arch": "amd64", "versions": vs}));
        }
        let doc = json!({"format": "products:1.0", "content_id": cid, "datatype": "image-downloads", "products": products});
        let path = format!("streams/v1/{cid}.json");
        std::fs::create_dir_all(dir.join("streams/v1")).unwrap();
        std::fs::write(dir.join(&path), serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        index.insert(
            cid.into(),
            json!({"format": "products:1.0", "path": path, "products": ["p1", "p2"]}),
        );
    }
    let idx = json!({"format": "index:1.0", "index": index});
    std::fs::write(
        dir.join("streams/v1/index.json"),
        serde_json::to_vec_pretty(&idx).unwrap(),
    )
    .unwrap();
    dir.to_path_buf()
}

/// Every file of a mirror (relative path → bytes), the tools' private state aside.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    simplestreams_testutil::dir_tree(dir, &[".sstream-mirror"])
}

/// Checks a mirror is consumable: every item its published products files name under the
/// given --max exists with the right size and sha256.
fn assert_consistent(out: &Path, max: usize) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("streams/v1/index.json")).unwrap()).unwrap();
    for entry in index["index"].as_object().unwrap().values() {
        let doc: Value = serde_json::from_slice(
            &std::fs::read(out.join(entry["path"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        for pv in doc["products"].as_object().unwrap().values() {
            let mut versions: Vec<&String> = pv["versions"].as_object().unwrap().keys().collect();
            versions.sort();
            for v in versions.iter().rev().take(max) {
                for item in pv["versions"][v.as_str()]["items"]
                    .as_object()
                    .unwrap()
                    .values()
                {
                    let path = item["path"].as_str().unwrap();
                    let data =
                        std::fs::read(out.join(path)).unwrap_or_else(|_| panic!("{path} missing"));
                    assert_eq!(
                        digest(&data, ChecksumKind::Sha256),
                        item["sha256"].as_str().unwrap(),
                        "{path}"
                    );
                }
            }
        }
    }
    let leftovers: Vec<String> = tree(out)
        .into_keys()
        .filter(|p| p.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

fn item_gets(server: &TestServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/files/"))
        .count()
}

#[test]
fn mirrors_a_stream_over_http_with_filters_and_max() {
    let src = tempfile::tempdir().unwrap();
    write_stream(src.path(), &["1", "2", "3"], 1000);
    let server = TestServer::serve_dir(src.path());
    let out = tempfile::tempdir().unwrap();
    let url = server.url_for("streams/v1/index.json");
    let o = out.path().to_str().unwrap();
    let err = ok(&mirror(&["--max", "2", &url, o, "item_name=a"]));
    assert!(err.contains("8 item(s) downloaded"), "summary line: {err}");
    let files: Vec<String> = tree(out.path())
        .into_keys()
        .filter(|p| p.starts_with("files/"))
        .collect();
    assert_eq!(files.len(), 8);
    assert!(
        files
            .iter()
            .all(|f| f.ends_with("/a") && !f.contains("/1/")),
        "{files:?}"
    );
    // Metadata is the source's, byte for byte.
    for f in [
        "streams/v1/index.json",
        "streams/v1/c1.json",
        "streams/v1/c2.json",
    ] {
        assert_eq!(
            std::fs::read(out.path().join(f)).unwrap(),
            std::fs::read(src.path().join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn noop_rerun_downloads_no_item_and_uses_conditional_requests() {
    let src = tempfile::tempdir().unwrap();
    write_stream(src.path(), &["1", "2"], 500);
    let server = TestServer::serve_dir(src.path());
    let out = tempfile::tempdir().unwrap();
    let url = server.url_for("streams/v1/index.json");
    let o = out.path().to_str().unwrap();
    ok(&mirror(&[&url, o]));
    let before = tree(out.path());
    server.clear_requests();
    let err = ok(&mirror(&[&url, o]));
    assert_eq!(item_gets(&server), 0, "no item is downloaded again");
    let meta: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/streams/"))
        .collect();
    assert_eq!(meta.len(), 3, "index and two products files");
    for r in &meta {
        assert!(
            r.header("if-none-match").is_some() || r.header("if-modified-since").is_some(),
            "{} unconditional",
            r.path
        );
        assert_eq!(r.status, 304, "{}", r.path);
    }
    assert!(err.contains("0 item(s) downloaded"), "{err}");
    assert_eq!(tree(out.path()), before, "a no-op run changes nothing");
}

#[test]
fn bad_checksum_fails_only_its_products_file_and_the_previous_mirror_stays() {
    let src = tempfile::tempdir().unwrap();
    write_stream(src.path(), &["1"], 700);
    let server = TestServer::serve_dir(src.path());
    let out = tempfile::tempdir().unwrap();
    let url = server.url_for("streams/v1/index.json");
    let o = out.path().to_str().unwrap();
    ok(&mirror(&["--max", "1", &url, o]));
    let previous = tree(out.path());

    // Version 2 upstream; one of its items is served corrupt (same size, other bytes).
    write_stream(src.path(), &["1", "2"], 700);
    let bad = "files/c1/p1/2/a";
    server.set_file(bad, vec![b'x'; 700]);
    let o2 = mirror(&["--max", "1", &url, o]);
    assert!(!o2.status.success(), "must exit non-zero");
    let err = text(&o2.stderr);
    assert!(
        err.contains("c1 p1 2 a")
            && err.contains(&server.url_for(bad))
            && err.contains("sha256 mismatch"),
        "{err}"
    );
    let now = tree(out.path());
    assert!(
        !now.contains_key(bad),
        "the bad item never reaches its final path"
    );
    // c1 is as it was; c2 moved to version 2; the index (naming c1) is the previous one.
    for (path, bytes) in &previous {
        if path.starts_with("files/c1/")
            || path == "streams/v1/c1.json"
            || path == "streams/v1/index.json"
        {
            assert_eq!(now.get(path), Some(bytes), "{path} changed");
        }
    }
    assert!(
        now.contains_key("files/c2/p1/2/a") && !now.contains_key("files/c2/p1/1/a"),
        "c2 completed"
    );
    assert_eq!(
        now["streams/v1/c2.json"],
        std::fs::read(src.path().join("streams/v1/c2.json")).unwrap()
    );
    assert!(!now.contains_key("files/c1/p1/2/b.part") && now.keys().all(|k| !k.ends_with(".part")));

    server.remove_file(bad);
    ok(&mirror(&["--max", "1", &url, o]));
    assert_consistent(out.path(), 1);
}

#[test]
fn cut_connection_is_resumed_with_range_and_reverified() {
    let src = tempfile::tempdir().unwrap();
    write_stream(src.path(), &["1"], 10_000);
    let path = "/files/c1/p1/1/a";
    let server = TestServer::builder()
        .dir(src.path())
        .fault(path, Fault::CutAfter(4000))
        .start();
    let out = tempfile::tempdir().unwrap();
    ok(&mirror(&[
        &server.url_for("streams/v1/index.json"),
        out.path().to_str().unwrap(),
    ]));
    let ranges: Vec<Option<String>> = server
        .requests_for(path)
        .into_iter()
        .map(|r| r.range)
        .collect();
    assert_eq!(
        ranges,
        [None, Some("bytes=4000-".into()), Some("bytes=8000-".into())]
    );
    assert_consistent(out.path(), 1);
}

#[test]
fn server_answering_200_to_a_range_request_restarts_cleanly() {
    let src = tempfile::tempdir().unwrap();
    write_stream(src.path(), &["1"], 10_000);
    let path = "/files/c1/p1/1/a";
    // The first answer is slow and cut at 4000 bytes; by the time the client asks again with a
    // Range, the server ignores ranges (answers 200 with everything).
    let server = TestServer::builder()
        .dir(src.path())
        .fault(path, Fault::CutAfter(4000))
        .fault(path, Fault::Throttle(10_000))
        .start();
    let out = tempfile::tempdir().unwrap();
    let child = Command::new(bin())
        .args([
            "-j",
            "1",
            &server.url_for("streams/v1/index.json"),
            out.path().to_str().unwrap(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while server.requests_for(path).is_empty() {
        std::thread::sleep(Duration::from_millis(1));
    }
    server.clear_faults();
    server.add_fault(path, Fault::IgnoreRange);
    let o = child.wait_with_output().unwrap();
    ok(&o);
    let reqs = server.requests_for(path);
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(
        (reqs[1].range.as_deref(), reqs[1].status),
        (Some("bytes=4000-"), 200)
    );
    assert_consistent(out.path(), 1);
}

#[test]
fn server_errors_are_retried_with_backoff() {
    let src = tempfile::tempdir().unwrap();
    write_stream(src.path(), &["1"], 100);
    let path = "/files/c2/p2/1/b";
    let server = TestServer::builder()
        .dir(src.path())
        .fault(
            path,
            Fault::FailFirst {
                times: 2,
                status: 503,
            },
        )
        .start();
    let out = tempfile::tempdir().unwrap();
    ok(&mirror(&[
        &server.url_for("streams/v1/index.json"),
        out.path().to_str().unwrap(),
    ]));
    let statuses: Vec<u16> = server
        .requests_for(path)
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [503, 503, 200]);
    assert_consistent(out.path(), 1);
}

#[test]
fn mirror_fallbacks_are_tried_on_404_and_on_failures() {
    let src = tempfile::tempdir().unwrap();
    write_stream(src.path(), &["1"], 100);
    let primary = TestServer::builder()
        .dir(src.path())
        .fault("/files/c1/*", Fault::NotFound)
        .fault(
            "/files/c2/*",
            Fault::FailFirst {
                times: 1000,
                status: 500,
            },
        )
        .start();
    let fallback = TestServer::serve_dir(src.path());
    let out = tempfile::tempdir().unwrap();
    let o = mirror(&[
        "--retries",
        "0",
        "--mirror",
        &fallback.url(),
        &primary.url_for("streams/v1/index.json"),
        out.path().to_str().unwrap(),
    ]);
    ok(&o);
    assert_eq!(item_gets(&fallback), 8, "every item came from the fallback");
    assert_consistent(out.path(), 1);
}

#[test]
fn paths_escaping_the_target_are_refused_before_any_write() {
    let src = tempfile::tempdir().unwrap();
    write_stream(src.path(), &["1"], 100);
    let p = src.path().join("streams/v1/c1.json");
    let doc = std::fs::read_to_string(&p)
        .unwrap()
        .replace("files/c1/p1/1/a", "../../escaped");
    std::fs::write(&p, doc).unwrap();
    let server = TestServer::serve_dir(src.path());
    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("mirror");
    let o = mirror(&[&server.url_for("streams/v1/c1.json"), out.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("unsafe path \"../../escaped\""), "{err}");
    assert!(
        tree(&out).is_empty(),
        "nothing written: {:?}",
        tree(&out).keys()
    );
    assert!(!parent.path().join("escaped").exists());
}

#[test]
fn two_syncs_into_one_directory_the_second_refuses_and_nothing_is_corrupted() {
    let src = tempfile::tempdir().unwrap();
    write_stream(src.path(), &["1", "2"], 2000);
    let server = TestServer::builder()
        .dir(src.path())
        .global_fault(Fault::Throttle(50_000))
        .start();
    let out = tempfile::tempdir().unwrap();
    let url = server.url_for("streams/v1/index.json");
    let o = out.path().to_str().unwrap();
    let first = Command::new(bin())
        .args([&url, o])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first sync takes the lock before its first request.
    while server.requests().is_empty() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let second = mirror(&[&url, o]);
    assert!(!second.status.success());
    assert!(
        text(&second.stderr).contains("locked by another sync"),
        "{}",
        text(&second.stderr)
    );
    ok(&first.wait_with_output().unwrap());
    assert_consistent(out.path(), 2);
}

#[test]
fn kill_9_at_any_moment_then_a_rerun_ends_in_a_correct_mirror() {
    let src = tempfile::tempdir().unwrap();
    write_stream(src.path(), &["1", "2", "3"], 20_000);
    let server = TestServer::builder()
        .dir(src.path())
        .global_fault(Fault::Throttle(400_000))
        .start();
    let url = server.url_for("streams/v1/index.json");
    let reference = tempfile::tempdir().unwrap();
    ok(&mirror(&[
        "--max",
        "2",
        &url,
        reference.path().to_str().unwrap(),
    ]));
    // Kill after a growing number of requests answered: before, during and after downloads.
    for after in [0, 1, 3, 8, 14, 20, 26] {
        let out = tempfile::tempdir().unwrap();
        let o = out.path().to_str().unwrap();
        if after > 0 {
            // Start from an older mirror, so that pruning happens too.
            ok(&mirror(&["--max", "1", &url, o]));
        }
        server.clear_requests();
        let mut child = Command::new(bin())
            .args(["--max", "2", &url, o])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        while server.requests().len() < after && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        ok(&mirror(&["--max", "2", &url, o]));
        assert_eq!(
            tree(out.path()),
            tree(reference.path()),
            "killed after {after} requests"
        );
        assert_consistent(out.path(), 2);
    }
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let src = tempfile::tempdir().unwrap();
    write_stream(src.path(), &["1", "2"], 100);
    let server = TestServer::serve_dir(src.path());
    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("m");
    let o = mirror(&[
        "--dry-run",
        "--max",
        "1",
        &server.url_for("streams/v1/index.json"),
        out.to_str().unwrap(),
        "product_name=p1",
    ]);
    ok(&o);
    let plan = text(&o.stdout);
    let lines: Vec<&str> = plan.lines().collect();
    assert_eq!(lines[0], "+ p1 2 a files/c1/p1/2/a 100");
    assert_eq!(lines.len(), 5, "{plan}");
    assert_eq!(lines[4], "total: 4 to download (400 B), 0 to remove (0 B)");
    assert!(!out.exists(), "a dry run writes nothing");
    assert_eq!(item_gets(&server), 0);
}

#[test]
fn signed_metadata_is_kept_verbatim_and_verified() {
    let signed = fixture("python-examples-signed/foocloud");
    let files = fixture("python-examples/foocloud");
    let meta = TestServer::serve_dir(&signed);
    let items = TestServer::serve_dir(&files);
    let out = tempfile::tempdir().unwrap();
    let keyring = fixture("python-examples/keys/example.pub");
    let o = mirror(&[
        "-v",
        "--keyring",
        keyring.to_str().unwrap(),
        "--mirror",
        &items.url(),
        &meta.url_for("streams/v1/index.sjson"),
        out.path().to_str().unwrap(),
    ]);
    let err = ok(&o);
    assert!(
        err.contains("index.sjson: good signature from"),
        "-v names verified files: {err}"
    );
    for f in [
        "index.sjson",
        "com.example.foovendor:released:download.sjson",
        "com.example.foovendor:released:aws.sjson",
    ] {
        let path = format!("streams/v1/{f}");
        assert_eq!(
            std::fs::read(out.path().join(&path)).unwrap(),
            std::fs::read(signed.join(&path)).unwrap(),
            "{f} byte for byte"
        );
    }
    // A tampered products file is refused: nothing of it is published.
    let tampered = tempfile::tempdir().unwrap();
    copy_dir(&signed, tampered.path());
    let p = tampered
        .path()
        .join("streams/v1/com.example.foovendor:released:download.sjson");
    let doc = std::fs::read_to_string(&p)
        .unwrap()
        .replacen("\"size\": 60", "\"size\": 61", 1);
    std::fs::write(&p, doc).unwrap();
    let bad = TestServer::serve_dir(tampered.path());
    let out2 = tempfile::tempdir().unwrap();
    let o = mirror(&[
        "--keyring",
        keyring.to_str().unwrap(),
        "--mirror",
        &items.url(),
        &bad.url_for("streams/v1/index.sjson"),
        out2.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("signature"), "{}", text(&o.stderr));
    assert!(!out2
        .path()
        .join("streams/v1/com.example.foovendor:released:download.sjson")
        .exists());
    assert!(!out2.path().join("streams/v1/index.sjson").exists());
}

#[test]
fn filtered_metadata_lists_only_what_was_mirrored_and_is_resigned() {
    let files = fixture("python-examples/foocloud");
    let server = TestServer::serve_dir(&files);
    let out = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (secret, public) = test_key(keys.path());
    let o = mirror(&[
        "--filtered-metadata",
        "--signing-key",
        secret.to_str().unwrap(),
        "--max",
        "1",
        &server.url_for("streams/v1/index.json"),
        out.path().to_str().unwrap(),
        "arch=amd64",
    ]);
    ok(&o);
    let keyring = simplestreams_core::openpgp::Keyring::from_bytes(
        &std::fs::read(public).unwrap(),
        "test key",
    )
    .unwrap();
    let raw = std::fs::read(out.path().join("streams/v1/index.sjson")).unwrap();
    let index: Value = serde_json::from_slice(
        &simplestreams_core::openpgp::verify_clearsigned(&raw, &keyring, "index")
            .unwrap()
            .payload,
    )
    .unwrap();
    let entry = &index["index"]["com.example.foovendor:released:download"];
    assert_eq!(
        entry["path"],
        "streams/v1/com.example.foovendor:released:download.sjson"
    );
    assert_eq!(
        entry["products"],
        json!(["com.example.foovendor:pinky:server:amd64"])
    );
    let raw = std::fs::read(out.path().join(entry["path"].as_str().unwrap())).unwrap();
    let doc: Value = serde_json::from_slice(
        &simplestreams_core::openpgp::verify_clearsigned(&raw, &keyring, "products")
            .unwrap()
            .payload,
    )
    .unwrap();
    let products = doc["products"].as_object().unwrap();
    assert_eq!(
        products.keys().collect::<Vec<_>>(),
        ["com.example.foovendor:pinky:server:amd64"]
    );
    let versions: Vec<&String> = products["com.example.foovendor:pinky:server:amd64"]["versions"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        versions,
        ["20121026.1"],
        "only the mirrored version is listed"
    );
    // Clients that read only JSON (LXD, Incus) find the same stream as .json, with an index
    // naming .json files, and each .json has a detached signature beside it (docs/format.md, "Publishing, and what clients read").
    let plain: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("streams/v1/index.json")).unwrap())
            .unwrap();
    let plain_entry = &plain["index"]["com.example.foovendor:released:download"];
    assert_eq!(
        plain_entry["path"],
        "streams/v1/com.example.foovendor:released:download.json"
    );
    assert_eq!(plain_entry["products"], entry["products"]);
    let plain_products =
        std::fs::read(out.path().join(plain_entry["path"].as_str().unwrap())).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&plain_products).unwrap(),
        doc
    );
    for name in ["index", "com.example.foovendor:released:download"] {
        let json = std::fs::read(out.path().join(format!("streams/v1/{name}.json"))).unwrap();
        let sig = std::fs::read(out.path().join(format!("streams/v1/{name}.json.gpg"))).unwrap();
        simplestreams_core::openpgp::verify_detached(&json, &sig, &keyring, name)
            .unwrap_or_else(|e| panic!("{name}.json.gpg: {e}"));
    }
    // A re-run with nothing new rewrites nothing (a new signature would differ by its date).
    let before = tree(out.path());
    let again = mirror(&[
        "--filtered-metadata",
        "--signing-key",
        secret.to_str().unwrap(),
        "--max",
        "1",
        &server.url_for("streams/v1/index.json"),
        out.path().to_str().unwrap(),
        "arch=amd64",
    ]);
    let err = ok(&again);
    assert!(err.contains("0 products file(s) published"), "{err}");
    assert_eq!(tree(out.path()), before);
}

/// A fresh signing key made with GnuPG (the fixtures' example key has expired): (secret, public)
/// armored files.
fn test_key(dir: &Path) -> (PathBuf, PathBuf) {
    let home = dir.join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    let gpg = |args: &[&str]| {
        let o = Command::new("gpg")
            .arg("--homedir")
            .arg(&home)
            .args([
                "--batch",
                "--quiet",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args)
            .output()
            .expect("run gpg (apt package gnupg)");
        assert!(o.status.success(), "gpg {args:?}: {}", text(&o.stderr));
        o.stdout
    };
    gpg(&[
        "--quick-gen-key",
        "sstream-mirror test key (TEST ONLY) <test@example.invalid>",
        "ed25519",
        "sign",
        "never",
    ]);
    let (secret, public) = (dir.join("test.sec.asc"), dir.join("test.pub.asc"));
    std::fs::write(&secret, gpg(&["--armor", "--export-secret-keys"])).unwrap();
    std::fs::write(&public, gpg(&["--armor", "--export"])).unwrap();
    (secret, public)
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}
