//! `sstream juju generate-image`, `generate-agents`, `validate-images` and `validate-agents`:
//! what is generated has Juju's file names and fields, and the lookup (Juju's rules: index2
//! then index, signed then unsigned, cloud and product filters, newest first) finds what was
//! generated and nothing for another region, endpoint, base, architecture or version.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn sstream_out(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sstream"))
        .args(args)
        .output()
        .expect("run sstream")
}

fn ok(args: &[&str]) -> String {
    let out = sstream_out(args);
    assert!(
        out.status.success(),
        "sstream {args:?}:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs sstream, asserting exit code 1; returns stderr.
fn finds_nothing(args: &[&str]) -> String {
    let out = sstream_out(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "sstream {args:?} should find nothing:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .unwrap()
}

const ENDPOINT: &str = "https://keystone.example:5000/v3";

fn generate(dir: &Path, id: &str, region: &str, arch: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "juju",
        "generate-image",
        "-d",
        s(dir),
        "-i",
        id,
        "-r",
        region,
        "-u",
        ENDPOINT,
        "--base",
        "ubuntu@24.04",
        "-a",
        arch,
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

fn validate_images(dir: &Path, region: &str, endpoint: &str, base: &str, arch: &str) -> Output {
    sstream_out(&[
        "juju",
        "validate-images",
        "-d",
        s(dir),
        "-r",
        region,
        "-u",
        endpoint,
        "--base",
        base,
        "-a",
        arch,
    ])
}

#[test]
fn generated_image_metadata_is_found_as_juju_finds_it() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("metadata");
    generate(&dir, "img-noble-1", "RegionOne", "amd64", &[]);
    generate(
        &dir,
        "img-noble-arm",
        "RegionOne",
        "arm64",
        &["--virt-type", "kvm"],
    );
    generate(&dir, "img-two", "RegionTwo", "amd64", &[]);
    // The same product, region, virt and storage again: replaced (Juju's merge).
    generate(&dir, "img-noble-2", "RegionOne", "amd64", &[]);

    // Juju's files and fields.
    let images = dir.join("images");
    let index = json(&images.join("streams/v1/index.json"));
    assert_eq!(index["format"], "index:1.0");
    let entry = &index["index"]["com.ubuntu.cloud:custom"];
    assert_eq!(entry["datatype"], "image-ids");
    assert_eq!(entry["cloudname"], "custom");
    assert_eq!(entry["format"], "products:1.0");
    assert_eq!(
        entry["path"],
        "streams/v1/com.ubuntu.cloud-released-imagemetadata.json"
    );
    assert_eq!(
        entry["products"],
        serde_json::json!([
            "com.ubuntu.cloud:server:24.04:amd64",
            "com.ubuntu.cloud:server:24.04:arm64"
        ])
    );
    let mut regions: Vec<&str> = entry["clouds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["endpoint"], ENDPOINT);
            c["region"].as_str().unwrap()
        })
        .collect();
    regions.sort();
    assert_eq!(regions, ["RegionOne", "RegionTwo"]);
    let products = json(&images.join("streams/v1/com.ubuntu.cloud-released-imagemetadata.json"));
    assert_eq!(products["content_id"], "com.ubuntu.cloud:custom");
    let amd64 = &products["products"]["com.ubuntu.cloud:server:24.04:amd64"];
    assert_eq!(amd64["version"], "24.04");
    assert_eq!(amd64["arch"], "amd64");
    let versions = amd64["versions"].as_object().unwrap();
    assert_eq!(versions.len(), 1, "one version, today");
    let (date, version) = versions.iter().next().unwrap();
    assert_eq!(date.len(), 8);
    let items = version["items"].as_object().unwrap();
    let ids: Vec<&String> = items.keys().collect();
    assert_eq!(ids, ["img-noble-2", "img-two"], "img-noble-1 replaced");
    assert_eq!(items["img-two"]["region"], "RegionTwo");
    let arm = &products["products"]["com.ubuntu.cloud:server:24.04:arm64"]["versions"][date]
        ["items"]["img-noble-arm"];
    assert_eq!(arm["virt"], "kvm");

    // Found: the id of the region, for the base and arch; the endpoint without its slash, the
    // region in the index without case or spaces (the item's region must match exactly).
    let out = validate_images(
        &dir,
        "RegionOne",
        &format!("{ENDPOINT}/"),
        "ubuntu@24.04",
        "amd64",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("ImageIds:\n- img-noble-2"), "{stdout}");
    assert!(!stdout.contains("img-two"), "{stdout}");
    assert!(stdout.contains("signed: false"), "{stdout}");
    assert!(stdout.contains("streams/v1/index.json"), "{stdout}");
    let out = validate_images(&dir, "RegionTwo", ENDPOINT, "ubuntu@24.04", "amd64");
    assert!(text(&out.stdout).contains("- img-two"));
    let out = validate_images(&dir, "RegionOne", ENDPOINT, "ubuntu@24.04", "arm64");
    assert!(text(&out.stdout).contains("- img-noble-arm  # virt kvm"));

    // Nothing: another region, endpoint, base or arch.
    let fail = |region: &str, endpoint: &str, base: &str, arch: &str| {
        let out = validate_images(&dir, region, endpoint, base, arch);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{region} {endpoint} {base} {arch}"
        );
        text(&out.stderr)
    };
    let err = fail("RegionThree", ENDPOINT, "ubuntu@24.04", "amd64");
    assert!(
        err.contains("no matching image ids for region RegionThree"),
        "{err}"
    );
    fail(
        "RegionOne",
        "https://other.example:5000/v3",
        "ubuntu@24.04",
        "amd64",
    );
    fail("RegionOne", ENDPOINT, "ubuntu@22.04", "amd64");
    fail("RegionOne", ENDPOINT, "ubuntu@24.04", "s390x");
    // "regionone" passes the index's cloud filter but not the items' exact region.
    let err = fail("regionone", ENDPOINT, "ubuntu@24.04", "amd64");
    assert!(err.contains("no matching items"), "{err}");

    // A daily stream is another product (com.ubuntu.cloud.daily:…), in the same file.
    generate(
        &dir,
        "img-daily",
        "RegionOne",
        "amd64",
        &["--stream", "daily"],
    );
    let out = sstream_out(&[
        "juju",
        "validate-images",
        "-d",
        s(&dir),
        "-r",
        "RegionOne",
        "-u",
        ENDPOINT,
        "--base",
        "ubuntu@24.04",
        "--stream",
        "daily",
    ]);
    assert!(
        text(&out.stdout).contains("- img-daily"),
        "{}",
        text(&out.stderr)
    );
    let out = validate_images(&dir, "RegionOne", ENDPOINT, "ubuntu@24.04", "amd64");
    assert!(text(&out.stdout).contains("- img-noble-2"));
    assert!(!text(&out.stdout).contains("img-daily"));
}

#[test]
fn signed_image_metadata_is_read_signed_first() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("metadata");
    let keys = work.path().join("keys");
    ok(&["key", "generate", s(&keys), "--name", "juju"]);
    let secret = keys.join("juju.sec.asc");
    let keyring = keys.join("juju.gpg");
    generate(
        &dir,
        "img-1",
        "RegionOne",
        "amd64",
        &["--signing-key", s(&secret)],
    );
    let v1 = dir.join("images/streams/v1");
    for f in [
        "index.json",
        "index.sjson",
        "index.json.gpg",
        "com.ubuntu.cloud-released-imagemetadata.sjson",
        "signing-key.asc",
    ] {
        assert!(v1.join(f).is_file(), "{f}");
    }
    // Without the key the signed one cannot be read: nothing is written unsigned over it.
    let out = sstream_out(&[
        "juju",
        "generate-image",
        "-d",
        s(&dir),
        "-i",
        "img-2",
        "-r",
        "RegionOne",
        "-u",
        ENDPOINT,
        "--base",
        "ubuntu@24.04",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("signed"),
        "{}",
        text(&out.stderr)
    );

    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "juju",
            "validate-images",
            "-d",
            s(&dir),
            "-r",
            "RegionOne",
            "-u",
            ENDPOINT,
            "--base",
            "ubuntu@24.04",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let run = |a: Vec<String>| sstream_out(&a.iter().map(String::as_str).collect::<Vec<_>>());
    // With the key: the signed files.
    let mut with_key = args(&[]);
    with_key.extend(["--keyring".to_string(), s(&keyring).to_string()]);
    let out = run(with_key.clone());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("signed: true"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stdout).contains("index.sjson"));
    // Without: as Juju, the signed attempt fails and the unsigned files are read …
    let out = run(args(&[]));
    assert!(
        text(&out.stdout).contains("signed: false"),
        "{}",
        text(&out.stdout)
    );
    // … unless signatures are required.
    let out = run(args(&["--require-signed"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no public key"),
        "{}",
        text(&out.stderr)
    );
    // A key that did not sign it: refused, then unsigned.
    let other = work.path().join("other");
    ok(&["key", "generate", s(&other), "--name", "other"]);
    let mut wrong = args(&["--require-signed"]);
    wrong.extend([
        "--keyring".to_string(),
        s(&other.join("other.gpg")).to_string(),
    ]);
    assert_eq!(run(wrong).status.code(), Some(1));
    // Our validate agrees the signed stream is sound.
    let out = ok(&["validate", s(&dir.join("images")), "--keyring", s(&keyring)]);
    assert!(out.starts_with("ok: "), "{out}");
}

fn tarball(dir: &Path, stream: &str, name: &str, content: &[u8]) {
    let d = dir.join(stream);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(name), content).unwrap();
}

#[test]
fn generated_agent_metadata_is_found_as_juju_finds_it() {
    for top in ["tools", "agent"] {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("metadata");
        let tools = dir.join(top);
        tarball(
            &tools,
            "released",
            "juju-3.5.0-ubuntu-amd64.tgz",
            b"agent 3.5.0",
        );
        tarball(
            &tools,
            "released",
            "juju-3.5.1-ubuntu-amd64.tgz",
            b"agent 3.5.1",
        );
        tarball(
            &tools,
            "released",
            "juju-3.4.9-linux-arm64.tgz",
            b"agent 3.4.9 linux",
        );
        tarball(
            &tools,
            "devel",
            "juju-3.6-beta1-ubuntu-amd64.tgz",
            b"agent beta",
        );
        ok(&["juju", "generate-agents", "-d", s(&dir)]);
        ok(&[
            "juju",
            "generate-agents",
            "-d",
            s(&dir),
            "--stream",
            "devel",
        ]);
        let again = ok(&["juju", "generate-agents", "-d", s(&dir)]);
        assert!(again.contains("nothing changed"), "{again}");

        // Juju's files: index2 lists every stream, index only released.
        let v1 = tools.join("streams/v1");
        let index2 = json(&v1.join("index2.json"));
        let ids: Vec<&String> = index2["index"].as_object().unwrap().keys().collect();
        assert_eq!(
            ids,
            [
                "com.ubuntu.juju:devel:agents",
                "com.ubuntu.juju:released:agents"
            ]
        );
        let index = json(&v1.join("index.json"));
        let ids: Vec<&String> = index["index"].as_object().unwrap().keys().collect();
        assert_eq!(ids, ["com.ubuntu.juju:released:agents"]);
        let entry = &index["index"]["com.ubuntu.juju:released:agents"];
        assert_eq!(entry["datatype"], "content-download");
        assert_eq!(
            entry["path"],
            "streams/v1/com.ubuntu.juju-released-agents.json"
        );
        let products = json(&v1.join("com.ubuntu.juju-released-agents.json"));
        assert_eq!(products["content_id"], "com.ubuntu.juju:released:agents");
        let ubuntu = &products["products"]["com.ubuntu.juju:ubuntu:amd64"];
        assert_eq!(ubuntu["arch"], "amd64");
        let (_, version) = ubuntu["versions"]
            .as_object()
            .unwrap()
            .iter()
            .next()
            .unwrap();
        let item = &version["items"]["3.5.1-ubuntu-amd64"];
        assert_eq!(item["path"], "released/juju-3.5.1-ubuntu-amd64.tgz");
        assert_eq!(item["ftype"], "tar.gz");
        assert_eq!(item["size"], 11);
        assert_eq!(item["release"], "ubuntu");
        assert_eq!(item["version"], "3.5.1");
        // A linux tarball is listed for ubuntu, centos and genericlinux.
        for os in ["ubuntu", "centos", "genericlinux"] {
            let p = &products["products"][format!("com.ubuntu.juju:{os}:arm64")];
            assert!(p.is_object(), "{os}");
        }

        // Found, newest first.
        let out = ok(&["juju", "validate-agents", "-d", s(&dir)]);
        assert!(
            out.starts_with(
                "Matching Agent Binaries Versions:\n- 3.5.1-ubuntu-amd64  # released/juju-3.5.1-ubuntu-amd64.tgz"
            ),
            "{out}"
        );
        assert!(out.contains("- 3.5.0-ubuntu-amd64"), "{out}");
        assert!(out.contains("index2.json"), "{out}");
        let out = ok(&[
            "juju",
            "validate-agents",
            "-d",
            s(&dir),
            "--agent-version",
            "3.5.0",
        ]);
        assert!(
            out.contains("- 3.5.0-ubuntu-amd64") && !out.contains("3.5.1"),
            "{out}"
        );
        let out = ok(&[
            "juju",
            "validate-agents",
            "-d",
            s(&dir),
            "--os",
            "centos",
            "-a",
            "arm64",
        ]);
        assert!(out.contains("- 3.4.9-centos-arm64"), "{out}");
        let out = ok(&[
            "juju",
            "validate-agents",
            "-d",
            s(&dir),
            "--stream",
            "devel",
        ]);
        assert!(out.contains("- 3.6-beta1-ubuntu-amd64"), "{out}");

        // Nothing.
        finds_nothing(&["juju", "validate-agents", "-d", s(&dir), "-a", "s390x"]);
        finds_nothing(&[
            "juju",
            "validate-agents",
            "-d",
            s(&dir),
            "--majorminor-version",
            "3.4",
        ]);
        finds_nothing(&[
            "juju",
            "validate-agents",
            "-d",
            s(&dir),
            "--agent-version",
            "3.5.2",
        ]);
        finds_nothing(&[
            "juju",
            "validate-agents",
            "-d",
            s(&dir),
            "--stream",
            "proposed",
        ]);

        // A tarball replaced by other content under the same name is refused …
        tarball(
            &tools,
            "released",
            "juju-3.5.0-ubuntu-amd64.tgz",
            b"other bytes",
        );
        let out = sstream_out(&["juju", "generate-agents", "-d", s(&dir)]);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("3.5.0-ubuntu-amd64"),
            "{}",
            text(&out.stderr)
        );
        // … unless the listing starts again.
        ok(&["juju", "generate-agents", "-d", s(&dir), "--clean"]);
    }
}
