//! `sstream-mirror-glance` as a user runs it: against the OpenStack test bed (ignored unless
//! `scripts/test` runs them) with a stream served over HTTP, and its refusals without services.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use glance_target::Session;
use serde_json::json;
use simplestreams_core::{
    ChecksumKind, Expected, Item, Product, Products, StreamVerifier, Version,
};
use simplestreams_testutil::http_server::{Fault, TestServer};
use simplestreams_testutil::reference_bin;

mod common;
use common::{images, unique};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sstream-mirror-glance"))
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

fn digests(bytes: &[u8]) -> (String, String) {
    let mut v = StreamVerifier::new("", Expected::default())
        .also_compute(ChecksumKind::Md5)
        .also_compute(ChecksumKind::Sha256);
    v.update(bytes).expect("no expectation");
    let d = v.finish().expect("no expectation");
    (d.md5.unwrap_or_default(), d.sha256.unwrap_or_default())
}

/// A stream like Ubuntu's, small: releases × arches × versions, a disk1.img and a root.tar.xz
/// per version (the default filters keep the disk1.img of amd64 only).
fn write_stream(dir: &Path, releases: &[(&str, &str)], versions: &[&str], size: usize) {
    let cid = "org.example.cli:download";
    let mut doc = Products::new(cid, "image-downloads");
    for (release, version) in releases {
        for arch in ["amd64", "arm64"] {
            let mut p = Product::new();
            for (k, v) in [
                ("os", "demo"),
                ("release", release),
                ("version", version),
                ("arch", arch),
            ] {
                p.fields.insert(k.into(), json!(v));
            }
            for serial in versions {
                let mut v = Version::new();
                v.fields.insert(
                    "pubname".into(),
                    json!(format!("demo-{release}-{serial}-{arch}")),
                );
                for ftype in ["disk1.img", "root.tar.xz"] {
                    let path = format!("images/{release}/{serial}/{arch}-{ftype}");
                    let bytes: Vec<u8> = path.bytes().cycle().take(size).collect();
                    let file = dir.join(&path);
                    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
                    std::fs::write(&file, &bytes).expect("write");
                    let (md5, sha256) = digests(&bytes);
                    let mut item = Item::default();
                    for (k, val) in [
                        ("ftype", json!(ftype)),
                        ("path", json!(path)),
                        ("size", json!(bytes.len())),
                        ("md5", json!(md5)),
                        ("sha256", json!(sha256)),
                    ] {
                        item.fields.insert(k.into(), val);
                    }
                    v.items.insert(ftype.into(), item);
                }
                p.versions.insert(serial.to_string(), v);
            }
            doc.products
                .insert(format!("org.example:{version}:{arch}"), p);
        }
    }
    let products = format!("streams/v1/{cid}.json");
    std::fs::create_dir_all(dir.join("streams/v1")).expect("mkdir");
    std::fs::write(dir.join(&products), doc.to_vec_pretty()).expect("write");
    let index = json!({"format": "index:1.0", "index": {cid: {
        "format": "products:1.0", "datatype": "image-downloads", "path": products}}});
    std::fs::write(dir.join("streams/v1/index.json"), index.to_string()).expect("write");
}

/// GET `url` without credentials: the body as text, after checking the status is 200.
fn anonymous_get(url: &str) -> String {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let resp = reqwest::get(url).await.expect("GET");
        assert_eq!(resp.status(), 200, "GET {url}");
        resp.text().await.expect("body")
    })
}

fn index_url(server: &TestServer) -> String {
    format!("{}streams/v1/index.json", server.url())
}

fn lines_starting(out: &str, prefix: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

fn glance_args<'a>(cmd: &'a mut Command, cid: &str, url: &str, extra: &[&str]) -> &'a mut Command {
    cmd.args([
        "--cloud-name",
        "testcloud",
        "--content-id",
        cid,
        "--visibility",
        "private",
    ])
    .args(extra)
    .arg(url)
}

/// The charm's `--output-swift simplestreams/data/`: the image-ids stream lands in a Swift
/// container readable by anyone, which the reference and Juju read through the
/// `product-streams` endpoint that `--register-product-streams` announces (once: a second run
/// changes nothing).
#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn output_swift_is_what_juju_and_the_reference_read_through_product_streams() {
    let src = tempfile::tempdir().expect("tempdir");
    write_stream(src.path(), &[("alpha", "1.0")], &["20240101"], 1500);
    let server = TestServer::serve_dir(src.path());
    let cid = unique("swift");
    // The charm's container is `simplestreams`; a container of this test's own keeps parallel
    // runs apart. The endpoint it registers is the same service either way.
    let container = format!("simplestreams-{}", std::process::id());
    let prefix = format!("{container}/data/");
    let template = format!("{cid}:{{region}}");
    let args = [
        "--output-swift",
        prefix.as_str(),
        "--register-product-streams",
    ];
    let (o, stdout, stderr) = run(glance_args(
        &mut bin(),
        &template,
        &index_url(&server),
        &args,
    ));
    assert!(o.status.success(), "{stderr}");
    let created = lines_starting(&stdout, "created ");
    assert_eq!(created.len(), 1, "{stdout}");
    let image_id = created[0]
        .trim_start_matches("created ")
        .split(':')
        .next()
        .expect("id")
        .to_string();

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (public, endpoints) = rt.block_on(async {
        let session = Session::from_env().expect("OS_* variables");
        let token = session.token().await.expect("token");
        let swift = token
            .catalog
            .endpoint(
                "object-store",
                glance_target::Interface::Public,
                Some("RegionOne"),
            )
            .expect("swift endpoint");
        let session = Session::from_env().expect("OS_* variables");
        let token = session.token().await.expect("fresh token, fresh catalog");
        let service = token
            .catalog
            .services
            .iter()
            .find(|s| s.service_type == "product-streams")
            .cloned()
            .expect("product-streams in the catalog");
        (format!("{swift}/{container}/data"), service.endpoints)
    });
    let in_region: Vec<_> = endpoints
        .iter()
        .filter(|e| e.region_id.as_deref() == Some("RegionOne"))
        .collect();
    assert_eq!(in_region.len(), 3, "public, internal, admin: {in_region:?}");
    assert!(in_region.iter().all(|e| e.url == public), "{in_region:?}");

    // Juju: the public product-streams endpoint + streams/v1/index.json, no credentials.
    let index: serde_json::Value =
        serde_json::from_str(&anonymous_get(&format!("{public}/streams/v1/index.json")))
            .expect("index JSON");
    let entry = &index["index"][format!("{cid}:RegionOne")];
    assert_eq!(entry["datatype"], "image-ids", "{index}");
    assert_eq!(entry["clouds"][0]["region"], "RegionOne");
    // The reference reads the same through the public URL.
    let q = Command::new(reference_bin("sstream-query"))
        .args(["--output-format", "%(id)s"])
        .arg(format!("{public}/streams/v1/index.json"))
        .arg("region=RegionOne")
        .output()
        .expect("reference query");
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
    assert_eq!(String::from_utf8_lossy(&q.stdout).trim(), image_id);

    // Again: nothing uploaded, the stream not rewritten, the catalog unchanged.
    let before = anonymous_get(&format!("{public}/streams/v1/index.json"));
    let (o, stdout, stderr) = run(glance_args(
        &mut bin(),
        &template,
        &index_url(&server),
        &args,
    ));
    assert!(o.status.success(), "{stderr}");
    assert_eq!(stdout, "");
    let after = anonymous_get(&format!("{public}/streams/v1/index.json"));
    assert_eq!(
        before, after,
        "a no-op run leaves the published stream as it was"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sstream"))
        .args([
            "product-streams",
            "register",
            "--region",
            "RegionOne",
            &public,
        ])
        .output()
        .expect("sstream");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("unchanged"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    images(&format!("{cid}:RegionOne"), true);
}

#[test]
fn cloud_name_and_content_id_are_required_like_the_reference() {
    let (out, _, err) = run(bin().args(["--content-id", "x", "http://127.0.0.1:9/"]));
    assert!(!out.status.success());
    assert!(err.contains("--cloud-name"), "{err}");
}

#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn syncs_a_stream_then_no_op_and_the_image_ids_stream_reads_back_with_both_queries() {
    let src = tempfile::tempdir().expect("tempdir");
    write_stream(
        src.path(),
        &[("alpha", "1.0"), ("beta", "2.0")],
        &["20240101", "20240102"],
        3000,
    );
    let server = TestServer::serve_dir(src.path());
    let out = tempfile::tempdir().expect("tempdir");
    let cid = unique("sync");
    let template = format!("{cid}:%(region)s");
    let dir = out.path().to_string_lossy().into_owned();

    let (o, stdout, stderr) = run(glance_args(
        &mut bin(),
        &template,
        &index_url(&server),
        &["--output-dir", &dir],
    ));
    assert!(o.status.success(), "{stderr}");
    let created = lines_starting(&stdout, "created ");
    assert_eq!(
        created.len(),
        4,
        "amd64 disk1.img of 2 releases x 2 versions: {stdout}"
    );

    let index = out.path().join("RegionOne/streams/v1/index.json");
    let index_s = index.to_string_lossy().into_owned();
    for (name, query) in [
        (
            "ours",
            std::path::PathBuf::from(env!("CARGO_BIN_EXE_sstream-query")),
        ),
        ("reference", reference_bin("sstream-query")),
    ] {
        let q = Command::new(&query)
            .args(["--output-format", "%(id)s %(name)s"])
            .arg(&index_s)
            .args([
                "release=beta",
                "arch=amd64",
                "region=RegionOne",
                "version_name=20240102",
            ])
            .output()
            .expect("query");
        let text = String::from_utf8_lossy(&q.stdout);
        assert!(
            q.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&q.stderr)
        );
        let expected: Vec<String> = created
            .iter()
            .filter(|l| l.ends_with("demo-beta-20240102-amd64-disk1.img"))
            .map(|l| l.trim_start_matches("created ").replacen(": ", " ", 1))
            .collect();
        assert_eq!(expected.len(), 1);
        assert_eq!(text.trim(), expected[0], "{name} finds the image id");
    }

    let (o, stdout, stderr) = run(glance_args(
        &mut bin(),
        &template,
        &index_url(&server),
        &["--output-dir", &dir, "-vv"],
    ));
    assert!(o.status.success(), "{stderr}");
    assert_eq!(stdout, "", "a second run uploads and removes nothing");
    // Taking the lock, loading the state and publishing the image ids all look at the same
    // images: a run that changes nothing lists them once.
    let listings = stderr
        .lines()
        .filter(|l| l.contains("OpenStack request") && l.contains("method=GET"))
        .filter(|l| l.contains("/v2/images?"))
        .count();
    assert_eq!(listings, 1, "{stderr}");
    assert_eq!(images(&format!("{cid}:RegionOne"), true).len(), 4);
}

#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn takes_over_images_uploaded_by_the_reference() {
    let src = tempfile::tempdir().expect("tempdir");
    write_stream(
        src.path(),
        &[("alpha", "1.0")],
        &["20240101", "20240102"],
        2000,
    );
    let server = TestServer::serve_dir(src.path());
    let cid = unique("takeover");
    let url = format!("{}streams/v1/index.json", server.url());
    let mut reference = Command::new(reference_bin("sstream-mirror-glance"));
    let (o, stdout, stderr) = run(glance_args(&mut reference, &cid, &url, &["--max", "2"]));
    assert!(o.status.success(), "reference: {stderr}");
    let by_reference = lines_starting(&stdout, "created ");
    assert_eq!(by_reference.len(), 2, "{stdout}");

    let (o, stdout, stderr) = run(glance_args(&mut bin(), &cid, &url, &["--max", "2"]));
    assert!(o.status.success(), "{stderr}");
    assert_eq!(stdout, "", "same flags: nothing uploaded, nothing removed");

    // And they are ours to manage: --max 1 removes the older one, as the reference would.
    let (o, stdout, stderr) = run(glance_args(&mut bin(), &cid, &url, &["--max", "1"]));
    assert!(o.status.success(), "{stderr}");
    let removing = lines_starting(&stdout, "removing ");
    let older = by_reference
        .iter()
        .find(|l| l.contains("20240101"))
        .expect("older")
        .replacen("created ", "removing ", 1);
    assert_eq!(removing, vec![older]);
    assert_eq!(images(&cid, true).len(), 1);
}

#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let src = tempfile::tempdir().expect("tempdir");
    write_stream(
        src.path(),
        &[("alpha", "1.0")],
        &["20240101", "20240102"],
        1000,
    );
    let server = TestServer::serve_dir(src.path());
    let cid = unique("dryrun");
    let (o, stdout, stderr) = run(glance_args(
        &mut bin(),
        &cid,
        &index_url(&server),
        &["--dry-run"],
    ));
    assert!(o.status.success(), "{stderr}");
    assert_eq!(lines_starting(&stdout, "+ ").len(), 2, "{stdout}");
    assert!(
        stdout.contains(
            "+ org.example:1.0:amd64 20240102 disk1.img images/alpha/20240102/amd64-disk1.img 1000"
        ),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("total: 2 to upload, 0 to delete\n"),
        "{stdout}"
    );
    assert!(images(&cid, false).is_empty(), "a dry run uploads nothing");

    let (o, _, stderr) = run(glance_args(&mut bin(), &cid, &index_url(&server), &[]));
    assert!(o.status.success(), "{stderr}");
    let (o, stdout, _) = run(glance_args(
        &mut bin(),
        &cid,
        &index_url(&server),
        &["--dry-run", "--max", "1"],
    ));
    assert!(o.status.success());
    let minus = lines_starting(&stdout, "- ");
    assert_eq!(minus.len(), 1, "{stdout}");
    assert!(
        minus[0].starts_with("- org.example:1.0:amd64 20240101 disk1.img "),
        "{stdout}"
    );
    assert_eq!(images(&cid, true).len(), 2, "the dry run deleted nothing");
}

#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn killed_mid_upload_then_rerun_leaves_one_active_image_and_nothing_unfinished() {
    let src = tempfile::tempdir().expect("tempdir");
    write_stream(src.path(), &[("alpha", "1.0")], &["20240101"], 20_000);
    let server = TestServer::serve_dir(src.path());
    server.add_fault("/images/*", Fault::Throttle(2_000));
    let cid = unique("kill");
    let mut child = glance_args(&mut bin(), &cid, &index_url(&server), &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut saw_unfinished = false;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        if images(&cid, false).iter().any(|i| i.status != "active") {
            saw_unfinished = true;
            break;
        }
    }
    child.kill().expect("kill");
    let _ = child.wait();
    assert!(saw_unfinished, "the upload was under way when killed");

    server.clear_faults();
    let (o, stdout, stderr) = run(glance_args(&mut bin(), &cid, &index_url(&server), &[]));
    assert!(o.status.success(), "{stderr}");
    assert_eq!(lines_starting(&stdout, "created ").len(), 1, "{stdout}");
    let left = images(&cid, true);
    assert_eq!(left.len(), 1, "no duplicate, nothing unfinished: {left:?}");
    assert_eq!(left[0].status, "active");
}

/// Sends SIGTERM to `child` (through kill(1): no libc needed by the tests).
fn terminate(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM {}", child.id());
}

/// Waits at most `limit` for `child` to exit; its status, or `None` if it did not.
fn wait_at_most(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn sigterm_mid_upload_exits_soon_as_interrupted_deleting_the_unfinished_image_then_a_rerun_completes(
) {
    // 40 kB at 2 kB/s: the upload alone would take 20 s.
    let src = tempfile::tempdir().expect("tempdir");
    write_stream(src.path(), &[("alpha", "1.0")], &["20240101"], 40_000);
    let server = TestServer::serve_dir(src.path());
    server.add_fault("/images/*", Fault::Throttle(2_000));
    let cid = unique("sigterm");
    let mut child = glance_args(&mut bin(), &cid, &index_url(&server), &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Read stderr as it comes, so that the child never blocks on a full pipe.
    let mut pipe = child.stderr.take().expect("stderr pipe");
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut s);
        s
    });
    let mut in_flight = None;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(i) = images(&cid, false)
            .into_iter()
            .find(|i| i.status != "active")
        {
            in_flight = Some(i);
            break;
        }
    }
    let Some(in_flight) = in_flight else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no upload under way: {}", stderr.join().unwrap_or_default());
    };

    terminate(&child);
    let signalled = std::time::Instant::now();
    let status = wait_at_most(&mut child, Duration::from_secs(10));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stderr = stderr.join().expect("stderr reader");
    let status = status.unwrap_or_else(|| {
        panic!("still running 10 s after SIGTERM (the upload would take 20 s): {stderr}")
    });
    assert!(
        !status.success(),
        "an interrupted sync exits non-zero: {status:?}, {stderr}"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    let left = images(&cid, false);
    assert!(
        left.iter().all(|i| !matches!(
            i.status.as_str(),
            "queued" | "saving" | "uploading" | "importing"
        )),
        "nothing unfinished left {:.1} s after SIGTERM: {left:?}",
        signalled.elapsed().as_secs_f64()
    );
    assert!(
        left.iter().all(|i| i.id != in_flight.id),
        "the image being uploaded ({}) was deleted: {left:?}",
        in_flight.id
    );

    server.clear_faults();
    let (o, stdout, stderr) = run(glance_args(&mut bin(), &cid, &index_url(&server), &[]));
    assert!(o.status.success(), "{stderr}");
    assert_eq!(lines_starting(&stdout, "created ").len(), 1, "{stdout}");
    let left = images(&cid, true);
    assert_eq!(left.len(), 1, "one image, nothing unfinished: {left:?}");
    assert_eq!(left[0].status, "active");
}
