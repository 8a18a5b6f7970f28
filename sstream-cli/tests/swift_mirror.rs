//! `sstream-mirror` into Swift and out of it, against the test bed's real Swift (ignored
//! unless `scripts/test` runs them): the same guarantees as a directory (publication, no-op
//! re-run, prune), a public container the reference reads, a mirror of the mirror, and a sync
//! killed during a large upload that a re-run finishes without orphan segments.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use simplestreams_testutil::http_server::{Fault, TestServer};
use simplestreams_testutil::{dir_tree, fixture, reference_bin};
use swift_target::{Session, SwiftClient};

fn mirror(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sstream-mirror"))
        .args(args)
        .output()
        .expect("run sstream-mirror")
}

fn sstream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sstream"))
        .args(args)
        .output()
        .expect("run sstream")
}

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    err
}

fn unique(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

async fn swift() -> SwiftClient {
    SwiftClient::new(&Session::from_env().expect("OS_* variables"))
        .await
        .expect("swift client")
}

fn object_names(container: &str) -> Vec<String> {
    rt().block_on(async {
        match swift().await.list_objects(container, None).await {
            Ok(list) => list.into_iter().map(|o| o.name).collect(),
            Err(e) if e.status() == Some(404) => Vec::new(),
            Err(e) => panic!("list {container}: {e}"),
        }
    })
}

fn account_url() -> String {
    rt().block_on(async { swift().await.account_url().to_string() })
}

/// The file tree of a mirror, without the engine's own state.
fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    dir_tree(dir, &[".sstream-mirror"])
}

#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn a_mirror_in_swift_is_read_by_the_reference_and_mirrored_again_to_a_directory() {
    let server = TestServer::serve_dir(fixture("python-examples/foocloud"));
    let container = unique("mirror");
    let target = format!("swift://{container}/ubuntu");
    let source = server.url_for("streams/v1/index.json");
    let args = [
        "--public",
        "--max",
        "1",
        source.as_str(),
        target.as_str(),
        "arch=amd64",
    ];
    let err = ok(&mirror(&args));
    assert!(err.contains("item(s) downloaded"), "{err}");

    // What a directory mirror of the same holds, the Swift one holds.
    let dir = tempfile::tempdir().expect("tempdir");
    let direct = dir.path().join("direct");
    ok(&mirror(&[
        "--max",
        "1",
        &source,
        direct.to_str().expect("utf-8"),
        "arch=amd64",
    ]));
    let published: Vec<String> = object_names(&container)
        .into_iter()
        .map(|n| n.trim_start_matches("ubuntu/").to_string())
        .collect();
    let expected: Vec<String> = tree(&direct).keys().cloned().collect();
    assert_eq!(published, expected);
    assert!(
        object_names(&format!("{container}_segments"))
            .iter()
            .all(|n| n.starts_with("ubuntu/.sstream-mirror/")),
        "only the engine's state is private"
    );

    // The reference reads it anonymously through Swift's public URL.
    let public = format!("{}/{container}/ubuntu/streams/v1/index.json", account_url());
    let q = Command::new(reference_bin("sstream-query"))
        .args(["--output-format", "%(item_name)s %(version_name)s"])
        .arg(&public)
        .output()
        .expect("reference sstream-query");
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
    assert!(!q.stdout.is_empty());

    // A no-op re-run writes nothing.
    let err = ok(&mirror(&args));
    assert!(
        err.contains("0 item(s) downloaded") && err.contains("0 products file(s) published"),
        "{err}"
    );

    // A mirror of the mirror: swift:// as the source (with the same filters: the verbatim
    // metadata still names the items left out).
    let again = dir.path().join("again");
    let from_swift = format!("{target}/streams/v1/index.json");
    ok(&mirror(&[
        "--max",
        "1",
        &from_swift,
        again.to_str().expect("utf-8"),
        "arch=amd64",
    ]));
    assert_eq!(tree(&again), tree(&direct));

    // sstream ls shows what the mirror holds, not its state.
    let ls = sstream(&["ls", &target, "streams/v1/"]);
    assert!(
        ls.status.success(),
        "{}",
        String::from_utf8_lossy(&ls.stderr)
    );
    let listed = String::from_utf8_lossy(&ls.stdout).into_owned();
    assert!(listed.contains("streams/v1/index.json"), "{listed}");
    assert!(!listed.contains(".sstream-mirror"), "{listed}");
}

#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn killed_during_a_large_upload_then_unlocked_and_rerun_leaves_no_orphan_segments() {
    // One item of 6 MiB in segments of 1 MiB, served slowly so that the kill lands mid-way.
    let src = tempfile::tempdir().expect("tempdir");
    let data: Vec<u8> = (0..6 * 1024 * 1024)
        .map(|i: usize| (i % 253) as u8)
        .collect();
    std::fs::create_dir_all(src.path().join("streams/v1")).expect("mkdir");
    std::fs::create_dir_all(src.path().join("f")).expect("mkdir");
    std::fs::write(src.path().join("f/big.img"), &data).expect("write");
    let sha256 = {
        use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};
        let mut v = StreamVerifier::new("", Expected::default()).also_compute(ChecksumKind::Sha256);
        v.update(&data).expect("hash");
        v.finish().expect("digest").sha256.expect("sha256")
    };
    let doc = serde_json::json!({"format": "products:1.0", "content_id": "c", "products": {"p":
        {"versions": {"1": {"items": {"big.img": {"path": "f/big.img", "size": data.len(),
        "sha256": sha256}}}}}}});
    std::fs::write(src.path().join("streams/v1/c.json"), doc.to_string()).expect("write");
    let server = TestServer::serve_dir(src.path());
    server.add_fault("/f/*", Fault::Throttle(1_500_000));
    let container = unique("killed");
    let target = format!("swift://{container}/m");
    let source = server.url_for("streams/v1/c.json");
    let segments = format!("{container}_segments");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sstream-mirror"))
        .args(["--segment-size", "1", &source, &target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut uploading = false;
    for _ in 0..200 {
        std::thread::sleep(Duration::from_millis(50));
        if object_names(&segments)
            .iter()
            .any(|n| n.starts_with("m/f/big.img/"))
        {
            uploading = true;
            break;
        }
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    assert!(uploading, "segments were being uploaded when killed");
    assert!(
        object_names(&container).is_empty(),
        "no manifest was published"
    );

    // The killed sync's lock stays: a re-run says who holds it and how to break it.
    server.clear_faults();
    let locked = mirror(&["--segment-size", "1", &source, &target]);
    assert!(!locked.status.success());
    let err = String::from_utf8_lossy(&locked.stderr);
    assert!(
        err.contains("locked") && err.contains("sstream unlock"),
        "{err}"
    );
    let unlock = sstream(&["unlock", &target]);
    assert!(
        unlock.status.success(),
        "{}",
        String::from_utf8_lossy(&unlock.stderr)
    );

    ok(&mirror(&["--segment-size", "1", &source, &target]));
    let segs: Vec<String> = object_names(&segments)
        .into_iter()
        .filter(|n| n.starts_with("m/f/big.img/"))
        .collect();
    assert_eq!(
        segs.len(),
        6,
        "exactly the segments of the object published: {segs:?}"
    );
    let uploads: std::collections::BTreeSet<&str> =
        segs.iter().filter_map(|n| n.split('/').nth(3)).collect();
    assert_eq!(
        uploads.len(),
        1,
        "one upload's segments, none orphaned: {segs:?}"
    );
    let got = rt().block_on(async {
        swift()
            .await
            .get_object(&container, "m/f/big.img")
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes")
    });
    assert!(got == data, "the object is whole");
}

#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn an_item_with_its_md5_published_is_one_object_and_one_without_is_segmented() {
    use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};
    // Two items of 3 MiB in segments of 1 MiB: one published with md5 and sha256 (as Ubuntu's
    // images are), one with its sha256 only (as LXD's).
    let src = tempfile::tempdir().expect("tempdir");
    let data: Vec<u8> = (0..3 * 1024 * 1024)
        .map(|i: usize| (i % 251) as u8)
        .collect();
    std::fs::create_dir_all(src.path().join("streams/v1")).expect("mkdir");
    std::fs::create_dir_all(src.path().join("f")).expect("mkdir");
    std::fs::write(src.path().join("f/with-md5.img"), &data).expect("write");
    std::fs::write(src.path().join("f/sha256-only.img"), &data).expect("write");
    let mut v = StreamVerifier::new("", Expected::default())
        .also_compute(ChecksumKind::Sha256)
        .also_compute(ChecksumKind::Md5);
    v.update(&data).expect("hash");
    let sums = v.finish().expect("digests");
    let (sha256, md5) = (sums.sha256.expect("sha256"), sums.md5.expect("md5"));
    let doc = serde_json::json!({"format": "products:1.0", "content_id": "c", "products": {"p":
        {"versions": {"1": {"items": {
            "a": {"path": "f/with-md5.img", "size": data.len(), "sha256": sha256, "md5": md5},
            "b": {"path": "f/sha256-only.img", "size": data.len(), "sha256": sha256}}}}}}});
    std::fs::write(src.path().join("streams/v1/c.json"), doc.to_string()).expect("write");
    let server = TestServer::serve_dir(src.path());
    let container = unique("md5");
    let target = format!("swift://{container}/m");
    let source = server.url_for("streams/v1/c.json");
    ok(&mirror(&["--segment-size", "1", &source, &target]));

    let segments = object_names(&format!("{container}_segments"));
    assert!(
        !segments.iter().any(|n| n.starts_with("m/f/with-md5.img/")),
        "the item Swift checks whole is not segmented: {segments:?}"
    );
    assert_eq!(
        segments
            .iter()
            .filter(|n| n.starts_with("m/f/sha256-only.img/"))
            .count(),
        3,
        "the other is a Static Large Object of 1 MiB segments: {segments:?}"
    );
    rt().block_on(async {
        let swift = swift().await;
        for name in ["m/f/with-md5.img", "m/f/sha256-only.img"] {
            let got = swift
                .get_object(&container, name)
                .await
                .expect("get")
                .bytes()
                .await
                .expect("bytes");
            assert!(got == data, "{name} is whole");
        }
        let whole = swift
            .head_object(&container, "m/f/with-md5.img")
            .await
            .expect("head");
        assert!(!whole.is_slo, "one object");
        assert_eq!(
            whole
                .etag
                .as_deref()
                .map(|e| e.trim_matches('"').to_string()),
            Some(md5.clone()),
            "Swift stored the bytes of the published md5"
        );
    });
}
