//! `sstream-mirror` into S3 and out of it, against the test bed's real S3 API (Swift's s3api,
//! ignored unless `scripts/test` runs them with the `s3env` variables): what a directory mirror
//! holds, an S3 mirror holds; a no-op re-run writes nothing; the reference reads it (an s3api
//! bucket is a Swift container: through Swift's public URL); and S3 as a source.

use std::path::Path;
use std::process::{Command, Output};

use simplestreams_testutil::http_server::TestServer;
use simplestreams_testutil::{dir_tree, fixture, reference_bin};
use swift_target::{Session, SwiftClient};

fn mirror(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sstream-mirror"))
        .args(args)
        .output()
        .expect("run sstream-mirror")
}

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    err
}

fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    dir_tree(dir, &[".sstream-mirror"])
}

#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn a_mirror_in_s3_holds_what_a_directory_mirror_holds_and_the_reference_reads_it() {
    let bucket = std::env::var("OPENSTACK_TESTBED_S3_BUCKET")
        .expect("the s3env of the test bed (scripts/openstack-testbed s3env)");
    let prefix = format!("cli-{}-{}", std::process::id(), rand::random::<u32>());
    let target = format!("s3://{bucket}/{prefix}");
    let server = TestServer::serve_dir(fixture("python-examples/foocloud"));
    let source = server.url_for("streams/v1/index.json");
    let args = ["--max", "1", source.as_str(), target.as_str(), "arch=amd64"];
    ok(&mirror(&args));

    let dir = tempfile::tempdir().expect("tempdir");
    let direct = dir.path().join("direct");
    ok(&mirror(&[
        "--max",
        "1",
        &source,
        direct.to_str().expect("utf-8"),
        "arch=amd64",
    ]));

    // Read back out of S3: a mirror of the mirror is the directory mirror, file for file.
    let again = dir.path().join("again");
    let from_s3 = format!("{target}/streams/v1/index.json");
    ok(&mirror(&[
        "--max",
        "1",
        &from_s3,
        again.to_str().expect("utf-8"),
        "arch=amd64",
    ]));
    assert_eq!(tree(&again), tree(&direct));

    // A no-op re-run writes nothing.
    let err = ok(&mirror(&args));
    assert!(
        err.contains("0 item(s) downloaded") && err.contains("0 products file(s) published"),
        "{err}"
    );

    // The reference: the bucket is a Swift container; made readable, it is read anonymously.
    let public = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let swift = SwiftClient::new(&Session::from_env().expect("OS_* variables"))
                .await
                .expect("swift");
            swift
                .create_container_readable(&bucket, Some(".r:*,.rlistings"))
                .await
                .expect("read ACL");
            format!(
                "{}/{bucket}/{prefix}/streams/v1/index.json",
                swift.account_url()
            )
        });
    let q = Command::new(reference_bin("sstream-query"))
        .args(["--output-format", "%(item_name)s"])
        .arg(&public)
        .output()
        .expect("reference sstream-query");
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
    assert!(!q.stdout.is_empty());
}

/// An S3 endpoint that is down: the run fails soon with an error naming the endpoint's URL,
/// and the source is untouched (nothing can have been published there).
#[test]
fn an_s3_endpoint_that_is_down_fails_the_mirror_naming_its_url() {
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let server = TestServer::serve_dir(fixture("python-examples/foocloud"));
    let source = server.url_for("streams/v1/index.json");
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_sstream-mirror"))
        .args([source.as_str(), "s3://bucket/prefix", "arch=amd64"])
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ENDPOINT", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "RegionOne")
        .env("AWS_ACCESS_KEY_ID", "key")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .output()
        .expect("run sstream-mirror");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a down endpoint succeeded: {err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")),
        "the error names the endpoint: {err}"
    );
    assert!(
        !err.contains("published"),
        "nothing is reported published: {err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(120),
        "it gives up in time"
    );
}
