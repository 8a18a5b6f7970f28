//! `sstream-mirror` against the Python reference on foocloud (and its `samepaths` version, which
//! reuses the files of another version): over successive runs with `--max`, `--keep` and an
//! upstream that drops versions, both tools leave the same files, byte for byte.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use simplestreams_testutil::http_server::TestServer;
use simplestreams_testutil::{fixture, reference_bin};

const DOWNLOAD: &str = "streams/v1/com.example.foovendor:released:download.json";

fn run(program: &Path, args: &[&str]) {
    let o = Command::new(program).args(args).output().expect("run");
    assert!(
        o.status.success(),
        "{} {args:?} failed:\n{}",
        program.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Every file of a mirror (relative path → bytes), the tools' private state aside.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    simplestreams_testutil::dir_tree(dir, &[".data", ".sstream-mirror"])
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

/// Removes versions from every product of the download products file upstream.
fn drop_versions(src: &Path, versions: &[&str]) {
    let path = src.join(DOWNLOAD);
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for product in doc["products"].as_object_mut().unwrap().values_mut() {
        let vs = product["versions"].as_object_mut().unwrap();
        for v in versions {
            vs.remove(*v);
        }
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
}

fn files(t: &BTreeMap<String, Vec<u8>>) -> Vec<&String> {
    t.keys().filter(|k| k.starts_with("files/")).collect()
}

#[test]
fn same_item_files_as_the_reference_over_successive_runs_with_max_keep_and_samepaths() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    copy_dir(&fixture("python-examples/foocloud"), &src);
    let server = TestServer::serve_dir(&src);
    let (ours, theirs) = (work.path().join("ours"), work.path().join("theirs"));
    let reference = reference_bin("sstream-mirror");
    let our_bin = Path::new(env!("CARGO_BIN_EXE_sstream-mirror"));
    let url = server.url_for("streams/v1/index.json");
    let local = src.join("streams/v1/index.json");

    // (upstream change before the run, arguments)
    let steps: Vec<(&[&str], Vec<&str>)> = vec![
        (&[], vec!["--max", "3"]),
        (&[], vec!["--max", "1"]),
        (&[], vec!["--max", "2"]),
        // samepaths leaves upstream; --keep holds on to it while there is room.
        (&["samepaths"], vec!["--max", "3", "--keep"]),
        (&[], vec!["--max", "2", "--keep"]),
        (&["20121026.1"], vec!["--max", "2"]),
        (&[], vec!["--max", "1", "arch=amd64"]),
    ];
    let mut seen_samepaths = false;
    for (i, (dropped, args)) in steps.iter().enumerate() {
        drop_versions(&src, dropped);
        let mut a: Vec<&str> = args.clone();
        let o = ours.to_str().unwrap();
        let t = theirs.to_str().unwrap();
        let filters: Vec<&str> = a.iter().copied().filter(|x| x.contains('=')).collect();
        a.retain(|x| !x.contains('='));
        let mut our_args = a.clone();
        our_args.extend([url.as_str(), o]);
        our_args.extend(&filters);
        let mut ref_args = a.clone();
        ref_args.extend([local.to_str().unwrap(), t]);
        ref_args.extend(&filters);
        run(&reference, &ref_args);
        run(our_bin, &our_args);
        let (mine, refs) = (tree(&ours), tree(&theirs));
        assert_eq!(
            files(&mine),
            files(&refs),
            "step {i} {args:?}: different item files"
        );
        assert_eq!(mine, refs, "step {i} {args:?}: different bytes");
        seen_samepaths |= refs.keys().any(|k| k.contains("release-20121001"));
    }
    assert!(
        seen_samepaths,
        "the samepaths version (files of release-20121001) was mirrored at some step"
    );
}
