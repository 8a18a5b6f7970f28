//! `sstream-query` and `sstream-mirror` on crafted, hostile streams: each test runs the built
//! binaries on one stream made to trip a tool up (loops, paths reaching the tool's own state
//! or outside the target, colliding names, oversized or mis-encoded metadata, absurd sizes, a
//! server that stops talking) and checks that the tool refuses cleanly, with an error naming
//! what is wrong, and that nothing is written where it must not be.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};
use simplestreams_testutil::fixture;
use simplestreams_testutil::http_server::{Reply, TestServer};

const QUERY: &str = env!("CARGO_BIN_EXE_sstream-query");
const MIRROR: &str = env!("CARGO_BIN_EXE_sstream-mirror");

/// Longest a run may take in these tests: a tool that loops or hangs fails the test instead
/// of hanging it.
const PATIENCE: Duration = Duration::from_secs(60);

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `bin` with `args`, killing it (and failing the test) if it runs longer than `limit`.
/// Returns its output and how long it took.
fn run_within(bin: &str, args: &[&str], limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"));
    // Drained on threads, so that a chatty child never blocks on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{bin} {args:?} still running after {limit:?}: it never ends\nstderr so far: {}",
                text(&err.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    let output = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (output, took)
}

fn run(bin: &str, args: &[&str]) -> Output {
    run_within(bin, args, PATIENCE).0
}

/// Asserts a run failed, and returns its stderr.
fn failed(out: &Output) -> String {
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "must exit non-zero; stdout:\n{}\nstderr:\n{err}",
        text(&out.stdout)
    );
    assert!(!err.contains("panicked"), "a panic is not a refusal: {err}");
    err
}

/// Asserts a run succeeded, and returns its stderr.
fn succeeded(out: &Output) -> String {
    let err = text(&out.stderr);
    assert!(out.status.success(), "must succeed; stderr:\n{err}");
    err
}

fn sha256(data: &[u8]) -> String {
    let mut v = StreamVerifier::new("", Expected::default()).also_compute(ChecksumKind::Sha256);
    v.update(data).unwrap();
    v.finish()
        .unwrap()
        .get(ChecksumKind::Sha256)
        .unwrap()
        .to_string()
}

fn write(dir: &Path, rel: &str, bytes: impl AsRef<[u8]>) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

fn write_json(dir: &Path, rel: &str, v: &Value) {
    write(dir, rel, serde_json::to_vec_pretty(v).unwrap());
}

/// An item of `content` at `path`: its size and sha256.
fn item(path: &str, content: &[u8]) -> Value {
    json!({"path": path, "size": content.len(), "sha256": sha256(content), "ftype": "img"})
}

/// A products file of content id `cid` with one product `p` (arch amd64) and these versions.
fn products(cid: &str, versions: Value) -> Value {
    json!({"format": "products:1.0", "content_id": cid, "datatype": "image-downloads",
           "products": {"p": {"arch": "amd64", "versions": versions}}})
}

/// An index naming one products file per (content id, path).
fn index(entries: &[(&str, &str)]) -> Value {
    let mut index = serde_json::Map::new();
    for (cid, path) in entries {
        index.insert(
            (*cid).into(),
            json!({"format": "products:1.0", "path": path, "products": ["p"]}),
        );
    }
    json!({"format": "index:1.0", "index": index})
}

/// Every file of a mirror but the engine's own lock (rewritten with the pid on each run).
fn mirror_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    simplestreams_testutil::dir_tree(dir, &[".sstream-mirror/lock"])
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---- a. loops and depth ------------------------------------------------------------------

/// An index entry leading to another index.
fn index_entry(path: &str) -> Value {
    json!({"format": "index:1.0", "path": path})
}

#[test]
fn an_index_naming_itself_is_refused_as_a_loop() {
    let src = tempfile::tempdir().unwrap();
    write_json(
        src.path(),
        "streams/v1/index.json",
        &json!({"format": "index:1.0", "index": {"me": index_entry("streams/v1/index.json")}}),
    );
    let entry = src.path().join("streams/v1/index.json");
    let (out, took) = run_within(QUERY, &[s(&entry)], PATIENCE);
    let err = failed(&out);
    assert!(
        err.contains("streams/v1/index.json") && err.contains("loops"),
        "the error names the file and says the stream loops: {err}"
    );
    assert!(took < Duration::from_secs(10), "ends quickly: {took:?}");
}

#[test]
fn two_indexes_naming_each_other_are_refused_as_a_loop() {
    let src = tempfile::tempdir().unwrap();
    let p = products("c", json!({"1": {"items": {"i": item("files/i", b"i")}}}));
    write_json(src.path(), "streams/v1/c.json", &p);
    write_json(
        src.path(),
        "streams/v1/a.json",
        &json!({"format": "index:1.0", "index": {
            "b": index_entry("streams/v1/b.json"),
            "c": {"format": "products:1.0", "path": "streams/v1/c.json"}}}),
    );
    write_json(
        src.path(),
        "streams/v1/b.json",
        &json!({"format": "index:1.0", "index": {"a": index_entry("streams/v1/a.json")}}),
    );
    // Over HTTP too, where each round of the loop would be a request.
    let server = TestServer::serve_dir(src.path());
    let url = server.url_for("streams/v1/a.json");
    for entry in [s(&src.path().join("streams/v1/a.json")), &url] {
        let (out, took) = run_within(QUERY, &[entry], PATIENCE);
        let err = failed(&out);
        assert!(
            err.contains("streams/v1/a.json") && err.contains("loops"),
            "the error names the file read again and says the stream loops: {err}"
        );
        assert!(took < Duration::from_secs(10), "ends quickly: {took:?}");
    }
    assert!(
        server.requests_for("streams/v1/a.json").len() <= 1,
        "the loop is not followed: {:?}",
        server.requests()
    );
}

// An index with two entries naming one products file (a diamond, no loop) is read as the
// reference reads it: the items of each entry are printed; only a file among its own
// ancestors is a loop.
#[test]
fn an_index_naming_one_products_file_twice_is_not_a_loop() {
    let src = tempfile::tempdir().unwrap();
    let p = products("c", json!({"1": {"items": {"i": item("files/i", b"i")}}}));
    write_json(src.path(), "streams/v1/c.json", &p);
    write_json(
        src.path(),
        "streams/v1/index.json",
        &index(&[("c", "streams/v1/c.json"), ("c-again", "streams/v1/c.json")]),
    );
    let entry = src.path().join("streams/v1/index.json");
    let out = run(QUERY, &["-o", "%(content_id)s %(item_name)s", s(&entry)]);
    succeeded(&out);
    assert_eq!(
        text(&out.stdout),
        "c i\nc i\n",
        "each entry's items, as the reference prints them"
    );
}

#[test]
fn an_index_chain_deeper_than_8_levels_is_refused_and_a_short_one_is_read() {
    let src = tempfile::tempdir().unwrap();
    let p = products("c", json!({"1": {"items": {"i": item("files/i", b"i")}}}));
    write_json(src.path(), "streams/v1/c.json", &p);
    let products_entry = json!({"format": "products:1.0", "path": "streams/v1/c.json"});
    // idx0 -> idx1 -> ... -> idx11 -> c.json, each index a distinct file: no loop, only depth.
    let levels = 12;
    for n in 0..levels {
        let next = if n + 1 < levels {
            index_entry(&format!("streams/v1/idx{}.json", n + 1))
        } else {
            products_entry.clone()
        };
        write_json(
            src.path(),
            &format!("streams/v1/idx{n}.json"),
            &json!({"format": "index:1.0", "index": {"next": next}}),
        );
    }
    let deep = src.path().join("streams/v1/idx0.json");
    let err = failed(&run(QUERY, &[s(&deep)]));
    assert!(
        err.contains("streams/v1/idx") && err.contains("more than 8 indexes deep"),
        "the error names the file and the limit: {err}"
    );

    // Two levels of index (as Juju's index2 leads to another index) are read as ever.
    let short = src
        .path()
        .join(format!("streams/v1/idx{}.json", levels - 2));
    let out = run(QUERY, &["-o", "%(product_name)s %(path)s", s(&short)]);
    succeeded(&out);
    assert_eq!(text(&out.stdout), "p files/i\n");
}

// ---- b. items inside the engine's own state directory -------------------------------------

#[test]
fn an_item_path_inside_the_mirror_state_directory_is_refused_and_the_state_is_untouched() {
    for hostile in [".sstream-mirror/state.json", ".sstream-mirror/lock"] {
        let src = tempfile::tempdir().unwrap();
        write(src.path(), "files/good", b"good");
        let v1 = json!({"1": {"items": {"i": item("files/good", b"good")}}});
        write_json(src.path(), "streams/v1/c.json", &products("c", v1));
        let out = tempfile::tempdir().unwrap();
        let entry = src.path().join("streams/v1/c.json");
        succeeded(&run(MIRROR, &[s(&entry), s(out.path())]));
        let state_file = out.path().join(".sstream-mirror/state.json");
        let state_before = std::fs::read(&state_file).expect("a state after the first run");
        let inode_before = inode(&state_file);
        let tree_before = mirror_tree(out.path());

        // Version 2 adds an item whose path is inside the engine's private directory, with
        // bytes (served there in the source) that would replace the state.
        let evil = br#"{"content": {}}"#;
        write(src.path(), hostile, evil);
        let v2 = json!({
            "1": {"items": {"i": item("files/good", b"good")}},
            "2": {"items": {"i": item(hostile, evil)}}});
        write_json(src.path(), "streams/v1/c.json", &products("c", v2));
        let err = failed(&run(MIRROR, &[s(&entry), s(out.path())]));
        assert!(
            err.contains("c p 2 i") && err.contains(hostile) && err.contains("unsafe path"),
            "the error names the item and its path, refused as unsafe: {err}"
        );
        assert_eq!(
            std::fs::read(&state_file).unwrap(),
            state_before,
            "{hostile}: the state is unchanged"
        );
        assert_eq!(
            inode(&state_file),
            inode_before,
            "{hostile}: the state is not replaced"
        );
        assert_eq!(
            mirror_tree(out.path()),
            tree_before,
            "{hostile}: nothing else changed"
        );
    }
}

fn inode(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().ino()
}

// ---- c. two items, one path ----------------------------------------------------------------

#[test]
fn two_items_sharing_a_path_with_different_checksums_are_refused_and_their_products_file_not_published(
) {
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "files/shared.img", b"the real bytes");
    let mut other = item("files/shared.img", b"the real bytes");
    other["sha256"] = json!(sha256(b"other bytes, same path"));
    let versions = json!({"1": {"items": {
        "first": item("files/shared.img", b"the real bytes"),
        "second": other}}});
    write_json(src.path(), "streams/v1/c.json", &products("c", versions));
    write(src.path(), "files/ok.img", b"ok");
    let fine = json!({"1": {"items": {"i": item("files/ok.img", b"ok")}}});
    write_json(src.path(), "streams/v1/d.json", &products("d", fine));
    write_json(
        src.path(),
        "streams/v1/index.json",
        &index(&[("c", "streams/v1/c.json"), ("d", "streams/v1/d.json")]),
    );
    let out = tempfile::tempdir().unwrap();
    let entry = src.path().join("streams/v1/index.json");
    let err = failed(&run(MIRROR, &[s(&entry), s(out.path())]));
    assert!(
        err.contains("c p 1 first") && err.contains("c p 1 second"),
        "the error names both items: {err}"
    );
    assert!(err.contains("files/shared.img"), "and the path: {err}");
    let tree = mirror_tree(out.path());
    assert!(
        !tree.contains_key("streams/v1/c.json"),
        "the products file of the conflict is not published"
    );
    assert!(
        !tree.contains_key("streams/v1/index.json"),
        "nor the index naming it"
    );
    assert!(
        tree.contains_key("streams/v1/d.json"),
        "the other products file is: {:?}",
        tree.keys()
    );
}

// ---- d. unsafe paths that arrive by inheritance or through _aliases -------------------------

/// Products files whose item gets an unsafe `path` from elsewhere than the item: the product,
/// the version, or a top-level `_aliases` entry. (name, products document)
fn inherited_unsafe_paths(unsafe_path: &str) -> Vec<(&'static str, Value)> {
    let content = b"bytes";
    let checks = json!({"size": content.len(), "sha256": sha256(content)});
    vec![
        (
            "from the product",
            json!({"format": "products:1.0", "content_id": "c", "products": {"p": {
                "arch": "amd64", "path": unsafe_path,
                "versions": {"1": {"items": {"i": checks}}}}}}),
        ),
        (
            "from the version",
            json!({"format": "products:1.0", "content_id": "c", "products": {"p": {
                "arch": "amd64",
                "versions": {"1": {"path": unsafe_path, "items": {"i": checks}}}}}}),
        ),
        (
            "through _aliases",
            json!({"format": "products:1.0", "content_id": "c",
                "_aliases": {"where": {"evil": {"path": unsafe_path}}},
                "products": {"p": {"arch": "amd64", "versions": {"1": {"items": {"i": {
                    "where": "evil", "size": content.len(), "sha256": sha256(content)}}}}}}}),
        ),
    ]
}

#[test]
fn an_unsafe_path_by_inheritance_or_aliases_is_refused_by_query_and_mirror() {
    let outside = tempfile::tempdir().unwrap();
    let absolute = outside.path().join("x").display().to_string();
    for unsafe_path in ["../x", "../../x", absolute.as_str()] {
        for (how, doc) in inherited_unsafe_paths(unsafe_path) {
            let case = format!("{unsafe_path:?} {how}");
            let parent = tempfile::tempdir().unwrap();
            let src = parent.path().join("src");
            write_json(&src, "streams/v1/c.json", &doc);
            write(parent.path(), "x", b"bytes");
            let entry = src.join("streams/v1/c.json");

            let out = run(QUERY, &[s(&entry)]);
            let err = failed(&out);
            assert!(
                err.contains("unsafe path") && err.contains(unsafe_path),
                "{case}: sstream-query names the unsafe path: {err}"
            );
            assert!(
                !text(&out.stdout).contains("item_url"),
                "{case}: no item printed: {}",
                text(&out.stdout)
            );

            let target = parent.path().join("mirror");
            let before_parent: Vec<String> = std::fs::read_dir(parent.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            let err = failed(&run(MIRROR, &[s(&entry), s(&target)]));
            assert!(
                err.contains("c p 1 i") && err.contains(unsafe_path),
                "{case}: sstream-mirror names the item and its path: {err}"
            );
            assert!(
                mirror_tree(&target)
                    .keys()
                    .all(|k| k.starts_with(".sstream-mirror/")),
                "{case}: nothing mirrored: {:?}",
                mirror_tree(&target).keys()
            );
            let mut after_parent: Vec<String> = std::fs::read_dir(parent.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != "mirror")
                .collect();
            after_parent.sort();
            let mut before_parent = before_parent;
            before_parent.sort();
            assert_eq!(
                after_parent, before_parent,
                "{case}: nothing written beside the target"
            );
            assert_eq!(
                std::fs::read(parent.path().join("x")).unwrap(),
                b"bytes",
                "{case}: the file a relative escape names is untouched"
            );
            assert!(
                std::fs::read_dir(outside.path()).unwrap().next().is_none(),
                "{case}: nothing written at the absolute path"
            );
        }
    }
}

// ---- e. two products files published under one name ---------------------------------------

#[test]
fn filtered_metadata_refuses_two_entries_published_under_one_name() {
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "files/a", b"a");
    write(src.path(), "files/b", b"b");
    let a1 = products("a1", json!({"1": {"items": {"i": item("files/a", b"a")}}}));
    let a2 = products("a2", json!({"1": {"items": {"i": item("files/b", b"b")}}}));
    write_json(src.path(), "streams/v1/a.json", &a1);
    // Unsigned JSON under an .sjson name: read as it is with a .json entry and no keyring.
    write_json(src.path(), "streams/v1/a.sjson", &a2);
    write_json(
        src.path(),
        "streams/v1/index.json",
        &index(&[("a1", "streams/v1/a.json"), ("a2", "streams/v1/a.sjson")]),
    );
    let out = tempfile::tempdir().unwrap();
    let entry = src.path().join("streams/v1/index.json");
    let err = failed(&run(
        MIRROR,
        &["--filtered-metadata", s(&entry), s(out.path())],
    ));
    assert!(
        err.contains("\"a1\"") && err.contains("\"a2\"") && err.contains("streams/v1/a.json"),
        "the error names both content ids and the name they share: {err}"
    );
    let written: Vec<String> = mirror_tree(out.path())
        .into_keys()
        .filter(|k| !k.starts_with(".sstream-mirror/"))
        .collect();
    assert!(written.is_empty(), "nothing written: {written:?}");
    assert!(
        !out.path().join(".sstream-mirror/state.json").exists(),
        "no state recorded"
    );
}

// Two index entries naming the very same products file do not collide: in the default
// (verbatim) mode that file is published once, byte for byte, as the reference mirrors such a
// stream. Only distinct source files published under one name (a.json and a.sjson) collide.
#[test]
fn verbatim_mirror_accepts_two_entries_naming_the_same_products_file() {
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "files/a", b"a");
    let a = products("a", json!({"1": {"items": {"i": item("files/a", b"a")}}}));
    write_json(src.path(), "streams/v1/a.json", &a);
    write_json(
        src.path(),
        "streams/v1/index.json",
        &index(&[("a", "streams/v1/a.json"), ("a-again", "streams/v1/a.json")]),
    );
    let out = tempfile::tempdir().unwrap();
    let entry = src.path().join("streams/v1/index.json");
    succeeded(&run(MIRROR, &[s(&entry), s(out.path())]));
    assert_eq!(std::fs::read(out.path().join("files/a")).unwrap(), b"a");
    assert_eq!(
        std::fs::read(out.path().join("streams/v1/a.json")).unwrap(),
        std::fs::read(src.path().join("streams/v1/a.json")).unwrap()
    );
}

// ---- f. metadata larger than allowed ---------------------------------------------------------

#[test]
fn metadata_over_max_metadata_size_is_refused_by_query_and_mirror_and_the_default_accepts_it() {
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "files/i", b"i");
    let mut doc = products("c", json!({"1": {"items": {"i": item("files/i", b"i")}}}));
    doc["padding"] = json!("x".repeat(2 << 20));
    write_json(src.path(), "streams/v1/c.json", &doc);
    let server = TestServer::serve_dir(src.path());
    let local = src.path().join("streams/v1/c.json");
    let url = server.url_for("streams/v1/c.json");
    for entry in [s(&local), url.as_str()] {
        let err = failed(&run(QUERY, &["--max-metadata-size", "1", entry]));
        assert!(
            err.contains("streams/v1/c.json")
                && err.contains("1 MiB")
                && err.contains("--max-metadata-size"),
            "sstream-query names the file and the limit: {err}"
        );

        let out = tempfile::tempdir().unwrap();
        let err = failed(&run(
            MIRROR,
            &["--max-metadata-size", "1", entry, s(out.path())],
        ));
        assert!(
            err.contains("streams/v1/c.json")
                && err.contains("1 MiB")
                && err.contains("--max-metadata-size"),
            "sstream-mirror names the file and the limit: {err}"
        );
        assert!(
            !out.path().join("files/i").exists() && !out.path().join("streams").exists(),
            "nothing mirrored"
        );

        let ok = run(QUERY, &["-o", "%(item_name)s", entry]);
        succeeded(&ok);
        assert_eq!(
            text(&ok.stdout),
            "i\n",
            "the default limit accepts a 2 MiB file"
        );
        succeeded(&run(MIRROR, &[entry, s(out.path())]));
        assert_eq!(std::fs::read(out.path().join("files/i")).unwrap(), b"i");
    }
}

// ---- g. Content-Encoding --------------------------------------------------------------------

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A small products file with three items, as bytes.
fn three_items() -> Vec<u8> {
    let versions = json!({
        "20240101": {"items": {"disk": item("files/1/disk", b"d1"), "root": item("files/1/root", b"r1")}},
        "20240202": {"items": {"disk": item("files/2/disk", b"d2")}}});
    serde_json::to_vec_pretty(&products("c", versions)).unwrap()
}

#[test]
fn gzip_encoded_metadata_is_decoded_and_prints_as_the_plain_file() {
    let doc = three_items();
    let path = "/streams/v1/c.json";
    let plain = TestServer::builder().file(path, doc.clone()).start();
    let gzipped = TestServer::builder()
        .route(
            &format!("GET {path}"),
            vec![Reply::new(200, gzip(&doc)).header("Content-Encoding", "gzip")],
        )
        .start();
    let expected = text(&run(QUERY, &[&plain.url_for(path)]).stdout);
    assert!(
        expected.matches("'item_name'").count() == 3,
        "the plain file prints its items: {expected}"
    );
    let out = run(QUERY, &["--retries", "0", &gzipped.url_for(path)]);
    succeeded(&out);
    assert_eq!(
        text(&out.stdout).replace(&gzipped.url(), "BASE/"),
        expected.replace(&plain.url(), "BASE/"),
        "same output as the plain file"
    );
}

#[test]
fn metadata_that_says_gzip_but_is_not_gives_an_error_naming_the_encoding() {
    let path = "/streams/v1/c.json";
    let server = TestServer::builder()
        .route(
            &format!("GET {path}"),
            vec![Reply::new(200, three_items()).header("Content-Encoding", "gzip")],
        )
        .start();
    let url = server.url_for(path);
    let err = failed(&run(QUERY, &["--retries", "0", &url]));
    assert!(
        err.contains(&url) && err.contains("gzip") && err.contains("decode"),
        "the error names the file and the encoding: {err}"
    );
}

#[test]
fn an_item_served_gzip_encoded_is_stored_as_served_and_verified_as_such() {
    let image = b"an image that the server happens to send compressed".repeat(20);
    let served = gzip(&image);
    let doc = products(
        "c",
        json!({"1": {"items": {"disk": item("files/disk.img", &served)}}}),
    );
    let server = TestServer::builder()
        .file("/streams/v1/c.json", serde_json::to_vec(&doc).unwrap())
        .route(
            "GET /files/disk.img",
            vec![Reply::new(200, served.clone()).header("Content-Encoding", "gzip")],
        )
        .start();
    let out = tempfile::tempdir().unwrap();
    let err = succeeded(&run(
        MIRROR,
        &[
            "--retries",
            "0",
            &server.url_for("streams/v1/c.json"),
            s(out.path()),
        ],
    ));
    assert!(err.contains("1 item(s) downloaded"), "{err}");
    assert_eq!(
        std::fs::read(out.path().join("files/disk.img")).unwrap(),
        served,
        "the item's bytes are the bytes served, not decoded"
    );
}

// ---- h. absurd sizes ------------------------------------------------------------------------

#[test]
fn dry_run_with_items_of_size_u64_max_neither_panics_nor_wraps() {
    let src = tempfile::tempdir().unwrap();
    let huge = u64::MAX;
    // Summed with wrapping, these two would make a total of 1 byte.
    let versions = json!({"1": {"items": {
        "a": {"path": "files/a", "size": huge, "sha256": sha256(b"a")},
        "b": {"path": "files/b", "size": 2, "sha256": sha256(b"b")}}}});
    write_json(src.path(), "streams/v1/c.json", &products("c", versions));
    let parent = tempfile::tempdir().unwrap();
    let target = parent.path().join("m");
    let entry = src.path().join("streams/v1/c.json");
    let out = run(MIRROR, &["--dry-run", s(&entry), s(&target)]);
    let err = succeeded(&out);
    assert!(!err.contains("panicked"), "{err}");
    let plan = text(&out.stdout);
    assert!(
        plan.contains(&format!("+ p 1 a files/a {huge}")),
        "the size is printed as given: {plan}"
    );
    let total = plan
        .lines()
        .find(|l| l.starts_with("total: "))
        .unwrap_or_else(|| panic!("a total line: {plan}"));
    assert!(
        total.starts_with("total: 2 to download (16777216.0 TiB)"),
        "the byte total saturates at u64::MAX instead of wrapping: {total}"
    );
    assert!(!target.exists(), "a dry run writes nothing");
}

// ---- i. no colour codes off a terminal -------------------------------------------------------

#[test]
fn log_lines_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let stream = fixture("signed-cases/valid-key/minimal");
    let keyring = fixture("signed-cases/valid-key/test-signing-key.pub.asc");
    let entry = stream.join("streams/v1/index.sjson");
    let out = tempfile::tempdir().unwrap();
    for (bin, args) in [
        (QUERY, vec!["-v", "--keyring", s(&keyring), s(&entry)]),
        (
            MIRROR,
            vec![
                "-v",
                "--no-item-download",
                "--keyring",
                s(&keyring),
                s(&entry),
                s(out.path()),
            ],
        ),
    ] {
        let err = succeeded(&run(bin, &args));
        assert!(
            err.contains("INFO") && err.contains("good signature"),
            "{bin}: -v shows info lines (else this test proves nothing): {err}"
        );
        assert!(
            !err.contains("\x1b["),
            "{bin}: no colour escape codes when stderr is a pipe: {err:?}"
        );
    }
}

// ---- j. timeouts ----------------------------------------------------------------------------

/// A server on 127.0.0.1 that reads each request, sends headers announcing 100 bytes, then
/// nothing (holding the connection open). Returns its base URL and how many connections it
/// accepted.
fn silent_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
                let _ = stream.flush();
                std::thread::sleep(Duration::from_secs(120));
            });
        }
    });
    (url, accepted)
}

#[test]
fn a_server_that_stops_sending_fails_within_the_read_timeout_naming_the_url() {
    let (base, accepted) = silent_server();
    let url = format!("{base}streams/v1/index.json");
    let out_dir = tempfile::tempdir().unwrap();
    for (bin, args) in [
        (
            QUERY,
            vec!["--read-timeout", "1", "--retries", "0", url.as_str()],
        ),
        (
            MIRROR,
            vec![
                "--read-timeout",
                "1",
                "--retries",
                "0",
                url.as_str(),
                s(out_dir.path()),
            ],
        ),
    ] {
        let (out, took) = run_within(bin, &args, PATIENCE);
        let err = failed(&out);
        assert!(err.contains(&url), "{bin}: the error names the URL: {err}");
        assert!(
            took < Duration::from_secs(8),
            "{bin}: fails within a few seconds of the 1 s read timeout, took {took:?}"
        );
    }
    assert!(accepted.load(Ordering::SeqCst) >= 2, "the server was asked");
}

#[test]
fn a_zero_read_timeout_is_refused_at_start_naming_the_flag() {
    let (base, accepted) = silent_server();
    let url = format!("{base}streams/v1/index.json");
    let out_dir = tempfile::tempdir().unwrap();
    for (bin, args) in [
        (QUERY, vec!["--read-timeout", "0", url.as_str()]),
        (
            MIRROR,
            vec!["--read-timeout", "0", url.as_str(), s(out_dir.path())],
        ),
    ] {
        let (out, took) = run_within(bin, &args, PATIENCE);
        let err = failed(&out);
        assert!(
            err.contains("--read-timeout"),
            "{bin}: the error names the flag: {err}"
        );
        assert!(
            took < Duration::from_secs(5),
            "{bin}: at once, took {took:?}"
        );
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "refused before any request"
    );
}
