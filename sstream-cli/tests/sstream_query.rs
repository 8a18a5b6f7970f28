//! `sstream-query` against the Python reference on real streams: same output, byte for byte,
//! for every output format, with filters and `--max`; and the errors a user meets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use simplestreams_testutil::{fixture, reference_bin};

fn ours(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sstream-query"))
        .args(args)
        .output()
        .expect("run sstream-query")
}

fn reference(args: &[&str]) -> Output {
    Command::new(reference_bin("sstream-query"))
        .args(args)
        .output()
        .expect("run reference sstream-query")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs both tools and asserts identical stdout and success; returns the output.
fn same_as_reference(args: &[&str]) -> String {
    let r = reference(args);
    assert!(
        r.status.success(),
        "reference failed on {args:?}: {}",
        text(&r.stderr)
    );
    let o = ours(args);
    assert!(
        o.status.success(),
        "sstream-query failed on {args:?}: {}",
        text(&o.stderr)
    );
    let (expected, got) = (text(&r.stdout), text(&o.stdout));
    if expected != got {
        let diff: Vec<String> = expected
            .lines()
            .zip(got.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .map(|(i, (a, b))| format!("line {}:\n  reference: {a}\n  ours:      {b}", i + 1))
            .collect();
        panic!(
            "output differs for {args:?} ({} vs {} lines):\n{}",
            expected.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
    got
}

fn p(path: PathBuf) -> String {
    path.display().to_string()
}

#[test]
fn examples_match_reference_in_every_format() {
    for stream in ["minimal", "cirros", "foocloud"] {
        let index = p(fixture(&format!(
            "python-examples/{stream}/streams/v1/index.json"
        )));
        for fmt in [
            &[][..],
            &["--pretty"],
            &["--json"],
            &[
                "-o",
                "%(product_name)s %(version_name)s %(item_name)s %(item_url)s",
            ],
        ] {
            let mut args: Vec<&str> = fmt.to_vec();
            args.push(&index);
            let out = same_as_reference(&args);
            assert!(
                !out.trim().is_empty() && out.trim() != "[]",
                "{stream} {fmt:?}: no items"
            );
        }
    }
}

#[test]
fn filters_and_max_match_reference() {
    let foocloud = p(fixture("python-examples/foocloud/streams/v1/index.json"));
    let cirros = p(fixture("python-examples/cirros/streams/v1/index.json"));
    let cases: Vec<Vec<&str>> = vec![
        vec!["--max", "1", &foocloud],
        vec!["--max", "2", &foocloud, "arch=amd64"],
        vec![&foocloud, "ftype~(disk1.img|tar.gz)", "arch!=i386"],
        vec!["--json", "--max", "1", &cirros, "arch~^(x86_64|i386)$"],
        vec![&cirros, "ftype!~disk"],
        vec![&cirros, "no_such_key="],
        vec!["--max", "0", &cirros],
    ];
    for args in cases {
        same_as_reference(&args);
    }
}

#[test]
fn products_file_directly_and_with_path() {
    let cirros_dir = p(fixture("python-examples/cirros"));
    let with_path = [
        "--path",
        "streams/v1/net.cirros-cloud:released:download.json",
        &cirros_dir,
    ];
    let out = same_as_reference(&with_path);
    assert!(out.contains("net.cirros-cloud:released:download"));
    // A mirror given without the trailing slash still resolves item URLs under it.
    assert!(out.contains(&format!("{cirros_dir}/")), "{out}");
}

#[test]
fn lxd_and_incus_streams_match_reference() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "lxd_products.json",
        "incus_products.json",
        "linuxcontainers_products.json",
    ] {
        let streams = dir.path().join("streams/v1");
        std::fs::create_dir_all(&streams).unwrap();
        std::fs::copy(fixture(&format!("lxd-incus/{name}")), streams.join(name)).unwrap();
        let url = p(streams.join(name));
        same_as_reference(&["--json", &url]);
        same_as_reference(&[&url]);
    }
}

/// The real Canonical-signed 2016 Ubuntu stream: verified with the real key (a binary keyring,
/// as `/usr/share/keyrings` has, which the reference hands to gpgv).
#[test]
fn signed_ubuntu_stream_matches_reference() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = dearmor(
        &fixture("ubuntu-2016/keys/ubuntu-cloud-image-builder-476CF100.pub.asc"),
        dir.path(),
    );
    let index = p(fixture("ubuntu-2016/streams/v1/index.sjson"));
    let kr = p(keyring);
    // The index names products files that are not in the fixture; the download one is.
    let download = p(fixture(
        "ubuntu-2016/streams/v1/com.ubuntu.cloud:released:download.sjson",
    ));
    let out = same_as_reference(&[
        "--keyring",
        &kr,
        "--max",
        "1",
        &download,
        "release=xenial",
        "ftype=disk1.img",
    ]);
    assert!(out.contains("'release': 'xenial'"), "{out}");
    same_as_reference(&[
        "--keyring",
        &kr,
        "--json",
        &download,
        "arch=amd64",
        "release~^(trusty|yakkety)$",
    ]);
    same_as_reference(&[
        "-U",
        "-o",
        "%(version_name)s %(sha256)s",
        &download,
        "release=precise",
    ]);
    // Missing products files named by the index are an error in both tools.
    assert!(!reference(&["--keyring", &kr, &index]).status.success());
    let o = ours(&["--keyring", &kr, &index]);
    assert!(!o.status.success());
}

fn dearmor(asc: &Path, dir: &Path) -> PathBuf {
    let out = dir.join("keyring.gpg");
    let status = Command::new("gpg")
        .args(["--batch", "--yes", "--homedir"])
        .arg(dir)
        .arg("--output")
        .arg(&out)
        .arg("--dearmor")
        .arg(asc)
        .status()
        .expect("run gpg (apt install gnupg)");
    assert!(status.success());
    out
}

#[test]
fn tampered_signature_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let streams = dir.path().join("streams/v1");
    std::fs::create_dir_all(&streams).unwrap();
    std::fs::copy(
        fixture("signed-cases/tampered/download.sjson"),
        streams.join("download.sjson"),
    )
    .unwrap();
    let url = p(streams.join("download.sjson"));
    let key = p(fixture("signed-cases/valid-key/test-signing-key.pub.asc"));
    let o = ours(&["--keyring", &key, &url]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("download.sjson") && err.contains("signature"),
        "{err}"
    );
    // With -U nothing is verified: the tampered payload itself is read, and its edited format
    // (products:1.0 -> products:1.1) is what fails, as in the reference.
    let o = ours(&["-U", &url]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("unknown format \"products:1.1\"") && !err.contains("signature"),
        "{err}"
    );
}

#[test]
fn bad_filter_shows_the_syntax() {
    let url = p(fixture("python-examples/minimal/streams/v1/index.json"));
    let o = ours(&[&url, "arch>amd64"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("arch>amd64") && err.contains("KEY=VALUE"),
        "{err}"
    );
}

#[test]
fn missing_template_key_skips_the_item_like_reference() {
    let url = p(fixture("python-examples/minimal/streams/v1/index.json"));
    let args = ["-o", "%(nope)s", url.as_str()];
    let (r, o) = (reference(&args), ours(&args));
    assert!(o.status.success());
    assert_eq!(text(&o.stdout), text(&r.stdout));
    assert_eq!(text(&o.stderr), text(&r.stderr));
}

#[test]
fn bad_json_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let streams = dir.path().join("streams/v1");
    std::fs::create_dir_all(&streams).unwrap();
    let doc = std::fs::read_to_string(fixture("python-examples/minimal/streams/v1/download.json"))
        .unwrap();
    std::fs::write(
        streams.join("download.json"),
        doc.replacen("\"size\": 38", "\"size\": \"lots\"", 1),
    )
    .unwrap();
    let o = ours(&[&p(streams.join("download.json"))]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("download.json") && err.contains(".size: expected an integer"),
        "{err}"
    );
}

/// Over real HTTP (a server on 127.0.0.1): the same output as the reference, including the
/// item URLs, for a mirror URL given without the trailing slash and `--path`.
#[test]
fn http_mirror_matches_reference() {
    use simplestreams_testutil::http_server::TestServer;
    let server = TestServer::serve_dir(fixture("python-examples/foocloud"));
    let index = server.url_for("/streams/v1/index.json");
    let out = same_as_reference(&["--max", "1", &index, "arch=amd64"]);
    assert!(out.contains(&server.url_for("/files/")), "{out}");
    let root = server.url();
    let with_path =
        same_as_reference(&["--path", "streams/v1/index.json", &root, "ftype=disk1.img"]);
    // Better than the reference, which crashes here: the root without its trailing slash.
    let o = ours(&[
        "--path",
        "streams/v1/index.json",
        root.trim_end_matches('/'),
        "ftype=disk1.img",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), with_path);
    // A server error is reported with the URL.
    let o = ours(&[&server.url_for("/streams/v1/missing.json")]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("missing.json"),
        "{}",
        text(&o.stderr)
    );
}
