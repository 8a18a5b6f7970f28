//! `sstream add --maas` checked against MAAS's reading of a boot source. There is no MAAS
//! here, so its documented rules are replayed on what was published (the notes behind
//! docs/publishing.md; MAAS 3.6/3.7 read through python-simplestreams, MAAS 3.8 through its
//! own pydantic models):
//!
//! - the boot source URL is the stream root (`…/streams/v1/index.sjson` implied): every file
//!   read, index and products, must be clear-signed and verify with `gpgv --keyring=KEYRING`,
//!   the keyring given as `keyring_filename` (here the publisher's `NAME.gpg`); a URL ending in
//!   `index.json` reads plain JSON instead;
//! - index: `format: index:1.0`, `updated`; entries with `format: products:1.0`, `path`,
//!   `updated`, `products`;
//! - products file: `content_id`, `datatype` `image-ids` (or `image-downloads`), `updated`,
//!   `format`; every products file must fit a model, or the whole import fails;
//! - product: `arch`, `label`, `os`, `release`, `release_title`, `subarch`, `subarches`,
//!   `version` on the product itself (MAAS 3.8 reads the JSON literally; 3.6 fails on a
//!   missing `arch`, `release`, `label`); an Ubuntu (multi-file) product's name matches
//!   `.*:v([23]|3\+platform):.*`;
//! - a boot version's items are keyed `boot-kernel`, `boot-initrd`, `manifest` and `squashfs`
//!   (or `root-image.gz`); a custom one's `manifest` and `root-tgz`; each item has `ftype`,
//!   `path`, `sha256`, `size`, and its file matches them;
//! - selection (`boot-source-selections create os=ubuntu release=noble arches=amd64
//!   subarches='*' labels='*'`): exact `os` and `release`, `arch` in `arches`; the latest
//!   version is the greatest name; the resource is named `OS/RELEASE`, architecture
//!   `ARCH/SUBARCH`.
//!
//! The reference's `sstream-query` (the python-simplestreams MAAS 3.6 and 3.7 import with,
//! verifying with gpgv) reads the signed stream as well.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};
use simplestreams_testutil::reference_bin;

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

fn sstream(args: &[&str]) -> String {
    let out = sstream_out(args);
    assert!(
        out.status.success(),
        "sstream {args:?}:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn sha256(bytes: &[u8]) -> String {
    let mut v = StreamVerifier::new("x", Expected::default()).also_compute(ChecksumKind::Sha256);
    v.update(bytes).unwrap();
    v.finish().unwrap().sha256.unwrap()
}

/// A throw-away GnuPG home for gpgv (MAAS runs `gpgv --keyring=FILE -`).
struct GnuPgHome(tempfile::TempDir);

impl GnuPgHome {
    fn new() -> GnuPgHome {
        let home = tempfile::Builder::new().prefix("gpg").tempdir().unwrap();
        std::fs::set_permissions(
            home.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        GnuPgHome(home)
    }

    /// MAAS's check of one file: `gpgv --keyring=KEYRING -` on its content.
    fn gpgv_stdin(&self, keyring: &Path, content: &[u8]) -> bool {
        use std::io::Write as _;
        let mut child = Command::new("gpgv")
            .arg("--homedir")
            .arg(self.0.path())
            .arg(format!("--keyring={}", keyring.display()))
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("gpgv (package gpgv) must be installed");
        child.stdin.take().unwrap().write_all(content).unwrap();
        child.wait().unwrap().success()
    }
}

impl Drop for GnuPgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.0.path())
            .args(["--kill", "all"])
            .status();
    }
}

/// MAAS 3.8's unwrapping of a signed file: from the first `{` to the signature.
fn unwrap_signed(content: &[u8]) -> Value {
    let t = text(content);
    assert!(
        t.starts_with("-----BEGIN PGP SIGNED MESSAGE-----"),
        "not clear-signed"
    );
    let start = t.find('{').unwrap();
    let end = t.find("-----BEGIN PGP SIGNATURE-----").unwrap();
    serde_json::from_str(&t[start..end]).unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn noise(seed: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 11) as u8)
        .collect()
}

/// Replays MAAS's reading of the boot source at `root` (URL without index.json: signed),
/// returning the products documents read.
fn maas_reads(root: &Path, keyring: &Path, gnupg: &GnuPgHome) -> Vec<Value> {
    let read_signed = |path: &str| -> Value {
        let content = std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(
            gnupg.gpgv_stdin(keyring, &content),
            "{path}: gpgv refuses it"
        );
        unwrap_signed(&content)
    };
    let index = read_signed("streams/v1/index.sjson");
    assert_eq!(index["format"], "index:1.0");
    assert!(index["updated"].is_string(), "index updated");
    let mut docs = Vec::new();
    for (cid, entry) in index["index"].as_object().unwrap() {
        assert_eq!(
            entry["format"], "products:1.0",
            "{cid}: MAAS 3.6 skips it otherwise"
        );
        assert!(entry["updated"].is_string(), "{cid}: updated");
        assert!(!entry["products"].as_array().unwrap().is_empty());
        let path = entry["path"].as_str().unwrap();
        assert!(
            path.ends_with(".sjson"),
            "the signed index names signed files: {path}"
        );
        let doc = read_signed(path);
        assert_eq!(doc["content_id"], cid.as_str());
        assert!(
            matches!(
                doc["datatype"].as_str(),
                Some("image-ids" | "image-downloads")
            ),
            "{}",
            doc["datatype"]
        );
        assert!(doc["updated"].is_string());
        assert_eq!(doc["format"], "products:1.0");
        let mut listed: Vec<&str> = entry["products"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        listed.sort();
        let mut actual: Vec<&str> = doc["products"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        actual.sort();
        assert_eq!(listed, actual);
        for (pname, product) in doc["products"].as_object().unwrap() {
            for k in [
                "arch",
                "label",
                "os",
                "release",
                "release_title",
                "subarch",
                "subarches",
                "version",
            ] {
                assert!(product[k].is_string(), "{pname}: {k} on the product");
            }
            if let Some(eol) = product.get("support_eol") {
                // pydantic's date: YYYY-MM-DD.
                let eol = eol.as_str().unwrap();
                let parts: Vec<&str> = eol.split('-').collect();
                assert!(
                    parts.len() == 3
                        && [4, 2, 2]
                            .iter()
                            .zip(&parts)
                            .all(|(n, p)| p.len() == *n && p.bytes().all(|b| b.is_ascii_digit())),
                    "support_eol {eol}"
                );
            }
            for (vname, version) in product["versions"].as_object().unwrap() {
                let items = version["items"].as_object().unwrap();
                let multi = items.contains_key("boot-kernel");
                let needed: &[&str] = if multi {
                    assert!(
                        regex_v3(pname),
                        "{pname}: MAAS needs :v3: in a boot product's name"
                    );
                    &["boot-kernel", "boot-initrd", "manifest"]
                } else {
                    &["manifest", "root-tgz"]
                };
                for k in needed {
                    assert!(items.contains_key(*k), "{pname} {vname}: item {k}");
                }
                if multi {
                    assert!(items.contains_key("squashfs") || items.contains_key("root-image.gz"));
                }
                for (iname, item) in items {
                    for k in ["ftype", "path", "sha256", "size"] {
                        assert!(item.get(k).is_some(), "{pname} {vname} {iname}: {k}");
                    }
                    let bytes = std::fs::read(root.join(item["path"].as_str().unwrap())).unwrap();
                    assert_eq!(item["size"], bytes.len(), "{iname} size");
                    assert_eq!(item["sha256"], sha256(&bytes), "{iname} sha256");
                }
            }
        }
        docs.push(doc);
    }
    docs
}

/// MAAS's `.*:v([23]|3\+platform):.*`.
fn regex_v3(name: &str) -> bool {
    [":v2:", ":v3:", ":v3+platform:"]
        .iter()
        .any(|p| name.contains(p))
}

/// What a selection `os=OS release=RELEASE arches=ARCH subarches='*' labels='*'` imports:
/// (resource name, architecture, version) of the latest version of each matching product.
fn select(docs: &[Value], os: &str, release: &str, arch: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for doc in docs {
        for product in doc["products"].as_object().unwrap().values() {
            if product["os"] != os || product["release"] != release || product["arch"] != arch {
                continue;
            }
            let latest = product["versions"]
                .as_object()
                .unwrap()
                .keys()
                .max()
                .unwrap()
                .clone();
            out.push((
                format!("{os}/{release}"),
                format!("{arch}/{}", product["subarch"].as_str().unwrap()),
                latest,
            ));
        }
    }
    out
}

#[test]
fn a_signed_maas_boot_source_reads_as_maas_reads_it() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let gnupg = GnuPgHome::new();
    let keys = dir.join("keys");
    sstream(&["key", "generate", s(&keys), "--name", "maas-images"]);
    let secret = keys.join("maas-images.sec.asc");
    let keyring = keys.join("maas-images.gpg");
    let repo = dir.join("repo");

    // A boot image (kernel, initrd, squashfs, manifest) in two versions, and a custom image.
    let kernel = write(dir, "vmlinuz", &noise(1, 40_000));
    let initrd = write(dir, "initrd.img", &noise(2, 60_000));
    let mut squash = b"hsqs".to_vec();
    squash.extend(noise(3, 100_000));
    let squash = write(dir, "root.squashfs", &squash);
    let manifest = write(
        dir,
        "root.manifest",
        b"bash\t5.2.21-2ubuntu4\ncoreutils\t9.4-3ubuntu6\n",
    );
    let products_updated = |repo: &Path| -> Option<String> {
        let path = repo.join("streams/v1/images:stable:v3:download.json");
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        doc["updated"].as_str().map(str::to_string)
    };
    let mut updated_before = None;
    for (version, kpkg) in [("20240601", "linux-generic"), ("20240701", "linux-generic")] {
        let out = sstream(&[
            "add",
            s(&repo),
            "--maas",
            &format!("boot-kernel={}", s(&kernel)),
            &format!("boot-initrd={}", s(&initrd)),
            &format!("squashfs={}", s(&squash)),
            &format!("manifest={}", s(&manifest)),
            "--release",
            "noble",
            "--version",
            "24.04",
            "--arch",
            "amd64",
            "--release-title",
            "24.04 LTS",
            "--release-codename",
            "Noble Numbat",
            "--support-eol",
            "2029-05-31",
            "--kpackage",
            kpkg,
            "--version-name",
            version,
            "--signing-key",
            s(&secret),
        ]);
        // Every add re-signs the products file; the index changes with the first, and after
        // that only to carry the products file's new `updated` (a time to the second: the
        // second add may run within the same second, or not).
        assert!(
            out.contains("published streams/v1/images:stable:v3:download.json (signed)"),
            "{out}"
        );
        let updated = products_updated(&repo);
        assert!(updated.is_some(), "{out}");
        assert_eq!(
            out.contains("published streams/v1/index.json (signed)"),
            version == "20240601" || updated != updated_before,
            "{out}"
        );
        updated_before = updated;
    }
    let meta = dir.join("meta");
    std::fs::create_dir_all(meta.join("etc")).unwrap();
    std::fs::write(meta.join("etc/os-release"), "NAME=MyCloud\n").unwrap();
    let tgz = dir.join("root.tgz");
    let out = Command::new("tar")
        .args(["-C", s(&meta), "-czf", s(&tgz), "etc"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let custom_manifest = write(dir, "custom.manifest", b"mycloud-base\t1.0\n");
    sstream(&[
        "add",
        s(&repo),
        "--maas",
        &format!("root-tgz={}", s(&tgz)),
        &format!("manifest={}", s(&custom_manifest)),
        "--release",
        "mycloud",
        "--arch",
        "amd64",
        "--version",
        "1.0",
        "--version-name",
        "20240615",
        "--signing-key",
        s(&secret),
    ]);

    // Our own validation, against the keyring MAAS is given.
    let out = sstream(&["validate", s(&repo), "--keyring", s(&keyring)]);
    assert!(out.starts_with("ok: "), "{out}");

    // MAAS's reading: every file signed and verified by gpgv with the keyring.
    let docs = maas_reads(&repo, &keyring, &gnupg);
    assert_eq!(docs.len(), 1, "one products file");
    let doc = &docs[0];
    assert_eq!(doc["content_id"], "images:stable:v3:download");
    assert_eq!(doc["datatype"], "image-ids");
    let boot = &doc["products"]["images:v3:boot:24.04:amd64:ga-24.04"];
    for (k, v) in [
        ("arch", "amd64"),
        ("kflavor", "generic"),
        ("krel", "noble"),
        ("label", "stable"),
        ("os", "ubuntu"),
        ("release", "noble"),
        ("release_codename", "Noble Numbat"),
        ("release_title", "24.04 LTS"),
        ("subarch", "ga-24.04"),
        ("subarches", "generic,ga-24.04"),
        ("support_eol", "2029-05-31"),
        ("version", "24.04"),
    ] {
        assert_eq!(boot[k], v, "{k}");
    }
    let items = &boot["versions"]["20240701"]["items"];
    assert_eq!(items["boot-kernel"]["kpackage"], "linux-generic");
    assert_eq!(items["squashfs"]["ftype"], "squashfs");
    let custom = &doc["products"]["images:custom-bases:mycloud:amd64"];
    assert_eq!(custom["os"], "custom");
    assert_eq!(custom["subarch"], "generic");
    assert_eq!(
        custom["versions"]["20240615"]["items"]["root-tgz"]["ftype"],
        "root-tgz"
    );

    // The selections of docs/publishing.md import the latest versions.
    assert_eq!(
        select(&docs, "ubuntu", "noble", "amd64"),
        [(
            "ubuntu/noble".to_string(),
            "amd64/ga-24.04".to_string(),
            "20240701".to_string()
        )]
    );
    assert_eq!(
        select(&docs, "custom", "mycloud", "amd64"),
        [(
            "custom/mycloud".to_string(),
            "amd64/generic".to_string(),
            "20240615".to_string()
        )]
    );
    assert!(select(&docs, "ubuntu", "noble", "arm64").is_empty());

    // A file that is not signed by the keyring's key is refused, as MAAS refuses it.
    let other = dir.join("other");
    sstream(&["key", "generate", s(&other), "--name", "other"]);
    let index = std::fs::read(repo.join("streams/v1/index.sjson")).unwrap();
    assert!(!gnupg.gpgv_stdin(&other.join("other.gpg"), &index));

    // MAAS 3.6/3.7 read through python-simplestreams: the reference reads the signed stream,
    // verifying every file with gpgv, and sees the items MAAS imports.
    let query = Command::new(reference_bin("sstream-query"))
        .env("GNUPGHOME", gnupg.0.path())
        .args([
            "--keyring",
            s(&keyring),
            "--max",
            "1",
            "-o",
            "%(product_name)s %(version_name)s %(item_name)s %(os)s %(release)s %(arch)s %(subarch)s %(label)s",
            s(&repo.join("streams/v1/index.sjson")),
            "os=ubuntu",
            "release=noble",
        ])
        .output()
        .unwrap();
    assert!(query.status.success(), "{}", text(&query.stderr));
    let mut lines: Vec<String> = text(&query.stdout).lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(
        lines,
        ["boot-initrd", "boot-kernel", "manifest", "squashfs"].map(|i| format!(
            "images:v3:boot:24.04:amd64:ga-24.04 20240701 {i} ubuntu noble amd64 ga-24.04 stable"
        ))
    );
}

#[test]
fn maas_images_maas_cannot_use_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let kernel = write(dir, "k", &noise(1, 100));
    let repo = dir.join("repo");
    let fails = |args: &[&str], want: &str| {
        let mut all = vec!["add", s(&repo), "--maas"];
        all.extend_from_slice(args);
        let out = sstream_out(&all);
        assert!(!out.status.success(), "{all:?} should fail");
        let err = text(&out.stderr);
        assert!(err.contains(want), "{want:?} in {err}");
    };
    let k = format!("boot-kernel={}", s(&kernel));
    fails(
        &[&k, "--release", "noble", "--arch", "amd64"],
        "needs its boot-initrd",
    );
    fails(
        &[s(&kernel), "--release", "noble", "--arch", "amd64"],
        "FTYPE=FILE",
    );
    fails(
        &[
            &format!("disk1.img={}", s(&kernel)),
            "--release",
            "n",
            "--arch",
            "amd64",
        ],
        "FTYPE=FILE",
    );
    fails(&[&k, "--arch", "amd64"], "--maas needs --release");
    let t = format!("root-tgz={}", s(&kernel));
    fails(
        &[
            &t,
            "--release",
            "r",
            "--arch",
            "amd64",
            "--support-eol",
            "soon",
        ],
        "YYYY-MM-DD",
    );
    assert!(!repo.join("streams").exists(), "nothing published");
}
