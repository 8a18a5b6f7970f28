//! `sstream add --lxd` checked by the real LXD client: Debian's `lxd-client` (`lxc`, installed
//! by scripts/install-deps) reads simplestreams remotes itself, over HTTPS, without a daemon.
//! The repository (and mirrors of it made by `sstream-mirror`) is served over HTTPS from the
//! test (a TLS terminator on 127.0.0.1 in front of a plain file server, with a certificate made
//! for the test and handed to `lxc` as the remote's server certificate), and `lxc image list`,
//! `lxc image info` and `lxc image export` must show and fetch what was published, with the
//! fingerprint equal to sha256(metadata tarball || root file system).
//!
//! Incus's client is not packaged in this Debian; its one difference that matters here (it
//! reads only `incus.tar.xz` metadata items) is checked on the JSON, as Incus reads it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};
use simplestreams_testutil::http_server::TestServer;
use tokio::net::{TcpListener, TcpStream};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn sstream(args: &[&str]) -> String {
    ok(env!("CARGO_BIN_EXE_sstream"), args)
}

fn sha256(parts: &[&[u8]]) -> String {
    let mut v = StreamVerifier::new("x", Expected::default()).also_compute(ChecksumKind::Sha256);
    for p in parts {
        v.update(p).unwrap();
    }
    v.finish().unwrap().sha256.unwrap()
}

/// A directory served over HTTPS on 127.0.0.1: a TLS terminator in front of the workspace's
/// plain test file server, with a self-signed certificate for 127.0.0.1.
struct Https {
    url: String,
    cert_pem: String,
    _files: TestServer,
    _rt: tokio::runtime::Runtime,
}

impl Https {
    fn serve(dir: &Path) -> Https {
        let files = TestServer::serve_dir(dir);
        let backend = files.addr();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        rt.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // LXD tries plain http first for files: that handshake fails, and it
                    // retries over https.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Https {
            url,
            cert_pem: cert.pem(),
            _files: files,
            _rt: rt,
        }
    }
}

/// The real `lxc`, with a configuration of its own (`LXD_CONF`).
struct Lxc {
    conf: tempfile::TempDir,
}

impl Lxc {
    fn new() -> Lxc {
        let probe = Command::new("lxc").arg("version").output();
        assert!(
            probe.is_ok(),
            "the LXD client `lxc` is needed (Debian package lxd-client; scripts/install-deps)"
        );
        Lxc {
            conf: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("lxc")
            .args(args)
            .env("LXD_CONF", self.conf.path())
            .env_remove("LXD_DIR")
            .output()
            .expect("run lxc")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "lxc {args:?}:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `lxc remote add NAME URL --protocol=simplestreams --public`, trusting the server's
    /// certificate the way lxc does for a remote: `servercerts/NAME.crt` in its configuration.
    fn add_remote(&self, name: &str, https: &Https) {
        self.ok(&[
            "remote",
            "add",
            name,
            &https.url,
            "--protocol=simplestreams",
            "--public",
        ]);
        let certs = self.conf.path().join("servercerts");
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::write(certs.join(format!("{name}.crt")), &https.cert_pem).unwrap();
    }

    /// `lxc image list REMOTE: --format json`.
    fn images(&self, remote: &str) -> Vec<Value> {
        let out = self.ok(&["image", "list", &format!("{remote}:"), "--format", "json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }
}

/// The inputs of an LXD image: a real xz metadata tarball (metadata.yaml), a squashfs-looking
/// root file system and a qcow2-looking VM disk.
struct Inputs {
    meta: PathBuf,
    rootfs: PathBuf,
    disk: PathBuf,
}

fn inputs(dir: &Path) -> Inputs {
    let meta_dir = dir.join("meta");
    std::fs::create_dir_all(&meta_dir).unwrap();
    std::fs::write(
        meta_dir.join("metadata.yaml"),
        "architecture: x86_64\ncreation_date: 1717243200\nproperties:\n  description: Test image\n  os: ubuntu\n  release: noble\n",
    )
    .unwrap();
    let meta = dir.join("lxd.tar.xz");
    ok(
        "tar",
        &["-C", s(&meta_dir), "-cJf", s(&meta), "metadata.yaml"],
    );
    let rootfs = dir.join("rootfs.squashfs");
    let mut bytes = b"hsqs".to_vec();
    bytes.extend((0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    std::fs::write(&rootfs, bytes).unwrap();
    let disk = dir.join("disk.qcow2");
    let mut bytes = b"QFI\xfb\x00\x00\x00\x03".to_vec();
    bytes.extend((0..200_000u32).map(|i| (i.wrapping_mul(40_503) >> 7) as u8));
    std::fs::write(&disk, bytes).unwrap();
    Inputs { meta, rootfs, disk }
}

/// A key (sstream key generate) and a signed LXD repository with a container and a VM image,
/// Incus's item too.
fn publish(work: &Path, inputs: &Inputs) -> (PathBuf, PathBuf) {
    let keys = work.join("keys");
    sstream(&["key", "generate", s(&keys), "--name", "publisher"]);
    let repo = work.join("repo");
    let out = sstream(&[
        "add",
        s(&repo),
        "--lxd",
        s(&inputs.meta),
        s(&inputs.rootfs),
        s(&inputs.disk),
        "--incus",
        "--os",
        "ubuntu",
        "--release",
        "noble",
        "--release-title",
        "24.04 LTS",
        "--arch",
        "amd64",
        "--alias",
        "ubuntu/24.04",
        "--alias",
        "ubuntu/noble",
        "--label",
        "release",
        "--version-name",
        "20240601_1200",
        "--signing-key",
        s(&keys.join("publisher.sec.asc")),
    ]);
    assert!(out.contains("fingerprint "), "{out}");
    (repo, keys)
}

#[test]
fn lxc_lists_describes_and_fetches_a_published_lxd_image() {
    let work = tempfile::tempdir().unwrap();
    let inputs = inputs(work.path());
    let (repo, keys) = publish(work.path(), &inputs);
    let meta = std::fs::read(&inputs.meta).unwrap();
    let rootfs = std::fs::read(&inputs.rootfs).unwrap();
    let disk = std::fs::read(&inputs.disk).unwrap();
    let container_fp = sha256(&[&meta, &rootfs]);
    let vm_fp = sha256(&[&meta, &disk]);

    // Our own checks agree (fingerprints recomputed from the files, LXD's rules).
    let out = sstream(&[
        "validate",
        s(&repo),
        "--keyring",
        s(&keys.join("publisher.gpg")),
    ]);
    assert!(out.starts_with("ok: "), "{out}");

    // LXD reads the JSON literally: fields where it looks for them, nothing condensed.
    let index: Value =
        serde_json::from_slice(&std::fs::read(repo.join("streams/v1/index.json")).unwrap())
            .unwrap();
    let (cid, entry) = index["index"].as_object().unwrap().iter().next().unwrap();
    assert_eq!(entry["datatype"], "image-downloads", "{cid}");
    assert_eq!(
        entry["products"],
        serde_json::json!(["ubuntu:noble:default:amd64"])
    );
    let products: Value =
        serde_json::from_slice(&std::fs::read(repo.join(entry["path"].as_str().unwrap())).unwrap())
            .unwrap();
    let product = &products["products"]["ubuntu:noble:default:amd64"];
    assert_eq!(product["aliases"], "ubuntu/24.04,ubuntu/noble");
    for (k, v) in [
        ("os", "ubuntu"),
        ("release", "noble"),
        ("release_title", "24.04 LTS"),
        ("variant", "default"),
        ("arch", "amd64"),
    ] {
        assert_eq!(product[k], v, "{k} on the product");
    }
    let version = &product["versions"]["20240601_1200"];
    assert_eq!(version["label"], "release");
    for item in version["items"].as_object().unwrap().values() {
        for k in ["ftype", "path", "sha256", "size"] {
            assert!(item.get(k).is_some(), "{k} on every item: {item}");
        }
    }
    // Incus reads only incus.tar.xz, LXD (5.21+) only lxd.tar.xz: both, the same file.
    let items = &version["items"];
    assert_eq!(
        items["lxd.tar.xz"]["combined_squashfs_sha256"],
        container_fp
    );
    assert_eq!(items["lxd.tar.xz"]["combined_disk-kvm-img_sha256"], vm_fp);
    assert_eq!(items["incus.tar.xz"]["ftype"], "incus.tar.xz");
    for k in [
        "path",
        "sha256",
        "size",
        "combined_squashfs_sha256",
        "combined_disk-kvm-img_sha256",
    ] {
        assert_eq!(items["incus.tar.xz"][k], items["lxd.tar.xz"][k], "{k}");
    }

    // The real client, over HTTPS.
    let https = Https::serve(&repo);
    let lxc = Lxc::new();
    lxc.add_remote("pub", &https);
    let images = lxc.images("pub");
    assert_eq!(images.len(), 2, "a container and a VM: {images:#?}");
    let by_fp = |fp: &str| {
        images
            .iter()
            .find(|i| i["fingerprint"] == fp)
            .unwrap_or_else(|| panic!("no image {fp} in {images:#?}"))
    };
    let container = by_fp(&container_fp);
    let vm = by_fp(&vm_fp);
    assert_eq!(container["type"], "container");
    assert_eq!(vm["type"], "virtual-machine");
    for image in [container, vm] {
        assert_eq!(image["architecture"], "x86_64");
        let aliases: Vec<&str> = image["aliases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        for a in ["ubuntu/24.04", "ubuntu/noble", "ubuntu/24.04/amd64"] {
            assert!(aliases.contains(&a), "{a} in {aliases:?}");
        }
        // LXD 5.0's description: OS RELEASE_TITLE ARCH (LABEL) (SERIAL).
        assert_eq!(
            image["properties"]["description"],
            "ubuntu 24.04 LTS amd64 (release) (20240601_1200)"
        );
    }
    // The table a user sees.
    let table = lxc.ok(&["image", "list", "pub:"]);
    assert!(table.contains("ubuntu/24.04"), "{table}");
    assert!(table.contains(&container_fp[..12]), "{table}");
    assert!(
        table.contains("ubuntu 24.04 LTS amd64 (release) (20240601_1200)"),
        "{table}"
    );

    let info = lxc.ok(&["image", "info", "pub:ubuntu/24.04"]);
    for line in [
        format!("Fingerprint: {container_fp}"),
        "Architecture: x86_64".to_string(),
        "Type: container".to_string(),
        "os: ubuntu".to_string(),
        "release: noble".to_string(),
        "variant: default".to_string(),
        "architecture: amd64".to_string(),
        "serial: 20240601_1200".to_string(),
        "label: release".to_string(),
    ] {
        assert!(info.contains(&line), "{line:?} in:\n{info}");
    }
    let info = lxc.ok(&["image", "info", "--vm", "pub:ubuntu/noble"]);
    assert!(info.contains(&format!("Fingerprint: {vm_fp}")), "{info}");
    assert!(info.contains("Type: virtual-machine"), "{info}");

    // lxc downloads both files (checking each sha256): they are the inputs, and hash to the
    // fingerprint.
    let export = work.path().join("export");
    std::fs::create_dir_all(&export).unwrap();
    let out = lxc.run(&[
        "image",
        "export",
        &format!("pub:{container_fp}"),
        s(&export),
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&export)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let exported: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert_eq!(exported.len(), 2, "{files:?}");
    let (m, r) = if exported[0] == meta {
        (&exported[0], &exported[1])
    } else {
        (&exported[1], &exported[0])
    };
    assert_eq!(m, &meta);
    assert_eq!(r, &rootfs);
    assert_eq!(sha256(&[m, r]), container_fp);
}

#[test]
fn lxc_lists_mirrors_of_a_signed_lxd_stream() {
    let work = tempfile::tempdir().unwrap();
    let inputs = inputs(work.path());
    let (repo, keys) = publish(work.path(), &inputs);
    let meta = std::fs::read(&inputs.meta).unwrap();
    let rootfs = std::fs::read(&inputs.rootfs).unwrap();
    let container_fp = sha256(&[&meta, &rootfs]);
    let source = TestServer::serve_dir(&repo);
    let mirror = env!("CARGO_BIN_EXE_sstream-mirror");

    // Verbatim: the source's signed files byte for byte, their JSON published beside them.
    let verbatim = work.path().join("verbatim");
    ok(
        mirror,
        &[
            "--keyring",
            s(&keys.join("publisher.gpg")),
            &source.url_for("streams/v1/index.sjson"),
            s(&verbatim),
        ],
    );
    for f in ["index.json", "index.sjson"] {
        assert!(verbatim.join("streams/v1").join(f).is_file(), "{f}");
    }
    assert_eq!(
        std::fs::read(verbatim.join("streams/v1/index.sjson")).unwrap(),
        std::fs::read(repo.join("streams/v1/index.sjson")).unwrap()
    );

    // Filtered and re-signed with another key: only the container.
    let keys2 = work.path().join("keys2");
    sstream(&["key", "generate", s(&keys2), "--name", "mirror"]);
    let filtered = work.path().join("filtered");
    ok(
        mirror,
        &[
            "--keyring",
            s(&keys.join("publisher.gpg")),
            "--filtered-metadata",
            "--signing-key",
            s(&keys2.join("mirror.sec.asc")),
            &source.url_for("streams/v1/index.sjson"),
            s(&filtered),
            "ftype!=disk-kvm.img",
        ],
    );
    assert!(filtered.join("streams/v1/index.json").is_file());

    let lxc = Lxc::new();
    let https1 = Https::serve(&verbatim);
    lxc.add_remote("verbatim", &https1);
    let images = lxc.images("verbatim");
    assert_eq!(images.len(), 2, "{images:#?}");
    assert!(images.iter().any(|i| i["fingerprint"] == container_fp));

    let https2 = Https::serve(&filtered);
    lxc.add_remote("filtered", &https2);
    let images = lxc.images("filtered");
    assert_eq!(images.len(), 1, "the VM disk was filtered out: {images:#?}");
    assert_eq!(images[0]["fingerprint"], container_fp);
    let info = lxc.ok(&["image", "info", "filtered:ubuntu/noble"]);
    assert!(info.contains("serial: 20240601_1200"), "{info}");
}

#[test]
fn lxd_images_lxd_would_skip_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let inputs = inputs(work.path());
    let repo = work.path().join("repo");
    let base = [
        "add",
        s(&repo),
        "--lxd",
        s(&inputs.meta),
        s(&inputs.rootfs),
        "--os",
        "ubuntu",
        "--release",
        "noble",
    ];
    let fails = |extra: &[&str], want: &str| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let out = run(env!("CARGO_BIN_EXE_sstream"), &args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = text(&out.stderr);
        assert!(err.contains(want), "{want:?} in {err}");
    };
    fails(&["--arch", "sparc"], "does not know the architecture");
    fails(
        &["--arch", "amd64", "--version-name", "v1"],
        "does not start with a date",
    );
    fails(
        &["--arch", "amd64", "--alias", "a, b"],
        "splits aliases at commas",
    );
    fails(
        &["--arch", "amd64", "--ftype", "squashfs"],
        "--ftype and --item",
    );
    assert!(!repo.join("streams").exists(), "nothing published");
}
