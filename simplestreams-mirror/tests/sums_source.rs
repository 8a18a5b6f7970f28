//! `SumsSource`: Debian-, Ubuntu- and Fedora-like checksum-file directories (small fake images,
//! signed with the test key) read as streams, queried, mirrored, and refused cleanly when bad.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use simplestreams_core::openpgp::{clearsign, sign_detached, Keyring, SigningKey};
use simplestreams_core::sums::{Layout, SumsError};
use simplestreams_core::{ChecksumKind, Expected, FilterSet, FlatItem, StreamVerifier};
use simplestreams_mirror::query::Query;
use simplestreams_mirror::sums::{
    DirEntries, DirLister, FileStat, LocalLister, SizeScope, SumsLocation, SumsOptions, SumsSource,
};
use simplestreams_mirror::{
    Error, InMemory, LocalStore, MetadataReader, Mirror, SignaturePolicy, Source, StoreExt,
    StoreSource, SyncOptions,
};

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

fn key() -> SigningKey {
    let path = testdata("signed-cases/valid-key/test-signing-key.sec.asc");
    SigningKey::from_armored(&std::fs::read(&path).expect("test key"), None, "test key")
        .expect("the test key")
}

fn keyring() -> Arc<Keyring> {
    Arc::new(key().public_keyring().clone())
}

fn digest(kind: ChecksumKind, data: &[u8]) -> String {
    let mut v = StreamVerifier::new("x", Expected::default()).also_compute(kind);
    v.update(data).expect("hash");
    let d = v.finish().expect("digests");
    d.get(kind).expect("computed").to_string()
}

fn write(dir: &Path, rel: &str, data: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, data).expect("write");
}

/// A fake image: its name repeated, so every file differs.
fn image(name: &str) -> Vec<u8> {
    format!("fake image {name}\n").repeat(3).into_bytes()
}

/// Writes `names` as images into `dir` and a GNU checksum file `sums` listing them.
fn dir_with_sums(dir: &Path, sums: &str, kind: ChecksumKind, names: &[&str]) -> String {
    let mut text = String::new();
    for n in names {
        let data = image(n);
        write(dir, n, &data);
        text.push_str(&format!("{} *{n}\n", digest(kind, &data)));
    }
    write(dir, sums, text.as_bytes());
    text
}

/// Debian: `bookworm/<YYYYMMDD-NNNN>/` with SHA512SUMS, plus `latest/` (never read).
fn debian_tree(root: &Path, builds: &[&str]) {
    for b in builds {
        let names: Vec<String> = [
            format!("debian-12-genericcloud-amd64-{b}.qcow2"),
            format!("debian-12-genericcloud-arm64-{b}.qcow2"),
            format!("debian-12-nocloud-amd64-{b}.raw"),
            format!("debian-12-genericcloud-amd64-{b}.tar.xz"),
        ]
        .into();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        dir_with_sums(&root.join(b), "SHA512SUMS", ChecksumKind::Sha512, &refs);
    }
    dir_with_sums(
        &root.join("latest"),
        "SHA512SUMS",
        ChecksumKind::Sha512,
        &["debian-12-genericcloud-amd64.qcow2"],
    );
}

const UBUNTU: [&str; 5] = [
    "noble-server-cloudimg-amd64.img",
    "noble-server-cloudimg-arm64.img",
    "noble-server-cloudimg-amd64.tar.gz",
    "noble-server-cloudimg-amd64.squashfs",
    "noble-server-cloudimg-amd64-lxd.tar.xz",
];

/// Ubuntu: `release-<date>/` with SHA256SUMS and a detached SHA256SUMS.gpg.
fn ubuntu_dir(dir: &Path) {
    let text = dir_with_sums(dir, "SHA256SUMS", ChecksumKind::Sha256, &UBUNTU);
    write(
        dir,
        "SHA256SUMS.gpg",
        &sign_detached(text.as_bytes(), &key()).expect("sign"),
    );
}

const FEDORA: [&str; 2] = [
    "Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2",
    "Fedora-Cloud-Base-AmazonEC2-41-1.4.x86_64.raw.xz",
];
const FEDORA_SUMS: &str = "Fedora-Cloud-41-1.4-x86_64-CHECKSUM";

/// Fedora: a clear-signed CHECKSUM with BSD lines and `# name: size` comments.
fn fedora_dir(dir: &Path) {
    let mut text = String::new();
    for n in FEDORA {
        let data = image(n);
        write(dir, n, &data);
        text.push_str(&format!("# {n}: {}\n", data.len()));
        text.push_str(&format!(
            "SHA256 ({n}) = {}\n",
            digest(ChecksumKind::Sha256, &data)
        ));
    }
    write(
        dir,
        FEDORA_SUMS,
        &clearsign(text.as_bytes(), &key()).expect("clearsign"),
    );
}

fn options() -> SumsOptions {
    SumsOptions::default()
}

fn signed() -> SumsOptions {
    SumsOptions {
        signatures: SignaturePolicy::require(keyring()),
        ..SumsOptions::default()
    }
}

async fn open_at(
    location: &Path,
    options: &SumsOptions,
) -> simplestreams_mirror::Result<SumsSource> {
    open_str(location.to_str().expect("utf-8"), options).await
}

async fn open_str(
    location: &str,
    options: &SumsOptions,
) -> simplestreams_mirror::Result<SumsSource> {
    SumsSource::open_location(location, options, &Default::default()).await
}

fn message(e: &Error) -> String {
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s.push_str(&format!(" / {c}"));
        cause = c.source();
    }
    s
}

/// The flattened items a query of `source` prints, as (key, value) lists.
async fn query(source: Arc<dyn Source>, filters: &[&str]) -> Vec<Vec<(String, String)>> {
    let reader = MetadataReader::new(source, SignaturePolicy::off());
    let mut out = Vec::new();
    Query::new(FilterSet::parse(filters).expect("filters"), None)
        .run(&reader, "streams/v1/index.json", |flat: FlatItem<'_>| {
            out.push(
                flat.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
            Ok(())
        })
        .await
        .expect("query");
    out
}

fn field<'a>(item: &'a [(String, String)], key: &str) -> Option<&'a str> {
    item.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn a_debian_parent_of_dated_directories_becomes_versions_of_the_same_products() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("bookworm");
    debian_tree(&root, &["20240101-0101", "20240211-1651"]);
    write(
        &root.join("20240211-1651"),
        "unlisted-extra.qcow2",
        b"not in SHA512SUMS",
    );
    let source = open_at(&root, &options()).await.expect("open");
    assert_eq!(source.layout().name(), "debian");
    assert_eq!(source.products().content_id(), "local:debian:sums");
    let product = &source.products().products["org.debian.cloud:genericcloud:12:amd64"];
    assert_eq!(
        product.versions.keys().collect::<Vec<_>>(),
        ["20240101-0101", "20240211-1651"],
        "latest/ is not a version"
    );
    let items = query(Arc::new(source), &["arch=amd64", "ftype=disk1.img"]).await;
    assert_eq!(items.len(), 2);
    let newest = items
        .iter()
        .find(|i| field(i, "version_name") == Some("20240211-1651"))
        .expect("newest");
    let name = "debian-12-genericcloud-amd64-20240211-1651.qcow2";
    for (k, v) in [
        ("os", "debian"),
        ("release", "bookworm"),
        ("version", "12"),
        ("variant", "genericcloud"),
        ("arch", "amd64"),
        ("ftype", "disk1.img"),
        ("item_name", "disk1.img"),
        ("path", &format!("20240211-1651/{name}")),
        ("size", &image(name).len().to_string()),
        ("sha512", &digest(ChecksumKind::Sha512, &image(name))),
        ("pubname", "debian-12-genericcloud-amd64-20240211-1651"),
        ("content_id", "local:debian:sums"),
    ] {
        assert_eq!(field(newest, k), Some(v), "{k}");
    }
}

#[tokio::test]
async fn max_dirs_reads_only_the_newest_directories() {
    let tmp = tempfile::tempdir().expect("tmp");
    debian_tree(
        tmp.path(),
        &["20240101-0101", "20240201-0202", "20240301-0303"],
    );
    let o = SumsOptions {
        max_dirs: Some(2),
        ..options()
    };
    let source = open_at(tmp.path(), &o).await.expect("open");
    let product = &source.products().products["org.debian.cloud:genericcloud:12:amd64"];
    assert_eq!(
        product.versions.keys().collect::<Vec<_>>(),
        ["20240201-0202", "20240301-0303"]
    );
}

#[tokio::test]
async fn an_ubuntu_release_directory_signed_detached_is_verified_mirrored_and_a_rerun_is_a_no_op() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("noble/release-20240423");
    ubuntu_dir(&dir);
    // Named by its checksum file, the layout detected, the signature required and checked.
    let sums = dir.join("SHA256SUMS");
    let source = Arc::new(open_at(&sums, &signed()).await.expect("open"));
    assert_eq!(source.layout().name(), "ubuntu");
    let doc = source.products();
    let amd64 = &doc.products["com.ubuntu.cloud:server:24.04:amd64"];
    assert_eq!(
        amd64.versions["20240423"].items.keys().collect::<Vec<_>>(),
        ["disk1.img", "lxd.tar.xz", "squashfs", "tar.gz"]
    );
    let items = query(source.clone(), &["arch=amd64", "ftype=disk1.img"]).await;
    assert_eq!(items.len(), 1);
    // As Canonical's own stream gives them.
    for (k, v) in [
        ("product_name", "com.ubuntu.cloud:server:24.04:amd64"),
        ("version_name", "20240423"),
        ("item_name", "disk1.img"),
        ("os", "ubuntu"),
        ("release", "noble"),
        ("version", "24.04"),
        ("release_codename", "Noble Numbat"),
        ("release_title", "24.04 LTS"),
        ("label", "release"),
        ("pubname", "ubuntu-noble-24.04-amd64-server-20240423"),
        ("ftype", "disk1.img"),
        ("path", UBUNTU[0]),
    ] {
        assert_eq!(field(&items[0], k), Some(v), "{k}");
    }

    let mirror_dir = tmp.path().join("mirror");
    let target = Arc::new(LocalStore::new(&mirror_dir));
    let sync = |source: Arc<SumsSource>| {
        Mirror::to_store(
            source,
            target.clone(),
            SyncOptions {
                entry: "streams/v1/index.json".into(),
                filters: FilterSet::parse(&["arch=amd64"]).expect("filter"),
                ..SyncOptions::default()
            },
        )
    };
    let report = sync(source.clone()).run().await.expect("mirror");
    assert!(report.is_success(), "{:?}", report.errors);
    assert_eq!(report.downloaded, 4);
    assert!(report.index_published);
    for n in [
        "noble-server-cloudimg-amd64.img",
        "noble-server-cloudimg-amd64-lxd.tar.xz",
    ] {
        assert_eq!(
            std::fs::read(mirror_dir.join(n)).expect("mirrored"),
            image(n)
        );
    }
    assert!(
        !mirror_dir.join("noble-server-cloudimg-arm64.img").exists(),
        "filtered out"
    );
    // The mirror is a real stream: its index names the synthesized products file.
    let index = std::fs::read_to_string(mirror_dir.join("streams/v1/index.json")).expect("index");
    assert!(
        index.contains("streams/v1/local:ubuntu:sums.json"),
        "{index}"
    );
    assert!(mirror_dir
        .join("streams/v1/local:ubuntu:sums.json")
        .is_file());

    // Read again (a new source, as a new run would): nothing to do, nothing written.
    let again = Arc::new(open_at(&sums, &signed()).await.expect("reopen"));
    let report = sync(again).run().await.expect("re-run");
    assert!(report.is_success(), "{:?}", report.errors);
    assert_eq!((report.downloaded, report.removed), (0, 0));
    assert!(report.products_published.is_empty() && !report.index_published);
}

/// A lister that lists nothing and counts `stat`s: as an HTTP directory without an index page.
#[derive(Debug)]
struct Counting {
    inner: LocalLister,
    stats: AtomicUsize,
}

#[async_trait]
impl DirLister for Counting {
    async fn list(&self, dir: &str) -> simplestreams_mirror::Result<DirEntries> {
        Err(Error::NotFound {
            location: format!("listing of {dir:?}"),
        })
    }

    async fn stat(&self, path: &str) -> simplestreams_mirror::Result<Option<FileStat>> {
        self.stats.fetch_add(1, Ordering::SeqCst);
        self.inner.stat(path).await
    }

    fn lists_sizes(&self) -> bool {
        false
    }
}

async fn open_counting(
    dir: &Path,
    location: &str,
    options: &SumsOptions,
) -> (simplestreams_mirror::Result<SumsSource>, usize) {
    let lister = Arc::new(Counting {
        inner: LocalLister::new(dir),
        stats: AtomicUsize::new(0),
    });
    let files: Arc<dyn Source> = Arc::new(StoreSource::new(Arc::new(LocalStore::new(dir))));
    let loc = SumsLocation::parse(location, options.sums_name.as_deref());
    let r = SumsSource::open(&loc, files, lister.clone(), options).await;
    (r, lister.stats.load(Ordering::SeqCst))
}

#[tokio::test]
async fn a_fedora_clear_signed_checksum_file_gives_sizes_from_its_comments() {
    let tmp = tempfile::tempdir().expect("tmp");
    fedora_dir(tmp.path());
    let location = format!("{}/{FEDORA_SUMS}", tmp.path().display());
    let (source, stats) = open_counting(tmp.path(), &location, &signed()).await;
    let source = source.expect("open");
    assert_eq!(stats, 0, "the sizes were in the comments: no stat");
    assert_eq!(source.layout().name(), "fedora");
    let items = query(Arc::new(source), &[]).await;
    assert_eq!(items.len(), 2);
    let generic = items
        .iter()
        .find(|i| field(i, "ftype") == Some("disk1.img"))
        .expect("generic");
    let n = FEDORA[0];
    for (k, v) in [
        (
            "product_name",
            "org.fedoraproject.cloud:cloud-base-generic:41:amd64",
        ),
        ("version_name", "1.4"),
        ("os", "fedora"),
        ("release", "41"),
        ("arch", "amd64"),
        ("path", n),
        ("size", &image(n).len().to_string()),
        ("sha256", &digest(ChecksumKind::Sha256, &image(n))),
    ] {
        assert_eq!(field(generic, k), Some(v), "{k}");
    }
}

#[tokio::test]
async fn sizes_are_found_only_for_the_items_in_scope() {
    let tmp = tempfile::tempdir().expect("tmp");
    dir_with_sums(tmp.path(), "SHA256SUMS", ChecksumKind::Sha256, &UBUNTU);
    let location = format!("{}/SHA256SUMS", tmp.path().display());
    let scoped = SumsOptions {
        scope: SizeScope {
            filters: FilterSet::parse(&["arch=arm64"]).expect("filter"),
            max: None,
        },
        ..options()
    };
    let (source, stats) = open_counting(tmp.path(), &location, &scoped).await;
    assert_eq!(stats, 1, "one item passes the filter");
    let source = source.expect("open");
    let arm = &source.products().products["com.ubuntu.cloud:server:24.04:arm64"];
    assert!(arm
        .versions
        .values()
        .all(|v| v.items.values().all(|i| i.size().is_some())));
    let amd = &source.products().products["com.ubuntu.cloud:server:24.04:amd64"];
    assert!(amd
        .versions
        .values()
        .all(|v| v.items.values().all(|i| i.size().is_none())));
    let (_, stats) = open_counting(tmp.path(), &location, &options()).await;
    assert_eq!(stats, UBUNTU.len());
}

#[tokio::test]
async fn a_sidecar_adds_fields_and_may_not_override_the_path_or_a_checksum() {
    let tmp = tempfile::tempdir().expect("tmp");
    let names = ["inhouse-base-amd64.qcow2", "inhouse-web-amd64.qcow2"];
    dir_with_sums(tmp.path(), "SHA256SUMS", ChecksumKind::Sha256, &names);
    write(
        tmp.path(),
        "inhouse-base-amd64.qcow2.properties",
        b"os=centos\nversion=9\n",
    );
    write(
        tmp.path(),
        "inhouse-web-amd64.qcow2.json",
        br#"{"os": "centos", "min_ram": 2048}"#,
    );
    let source = open_at(tmp.path(), &options()).await.expect("open");
    assert_eq!(source.layout().name(), "plain");
    let items = query(Arc::new(source), &["os=centos"]).await;
    assert_eq!(items.len(), 2, "{items:?}");
    let base = items
        .iter()
        .find(|i| field(i, "product_name") == Some("inhouse-base-amd64"))
        .expect("base");
    assert_eq!(field(base, "version"), Some("9"));
    assert_eq!(field(base, "arch"), Some("amd64"));
    assert_eq!(field(base, "ftype"), Some("disk1.img"));

    for (file, text) in [
        (
            "inhouse-base-amd64.qcow2.properties",
            "path=../../etc/passwd\n",
        ),
        ("inhouse-base-amd64.qcow2.properties", "sha256=00\n"),
    ] {
        write(tmp.path(), file, text.as_bytes());
        let err = open_at(tmp.path(), &options()).await.expect_err("refused");
        let key = text.split('=').next().expect("key");
        let m = message(&err);
        assert!(
            m.contains(file) && m.contains(&format!("key {key:?}")),
            "{m}"
        );
        assert!(matches!(&err, Error::Service(b) if b.downcast_ref::<SumsError>().is_some()));
    }
}

#[tokio::test]
async fn under_a_keyring_a_sidecar_must_be_vouched_for_by_the_signed_checksum_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    ubuntu_dir(tmp.path());
    write(
        tmp.path(),
        "noble-server-cloudimg-amd64.img.properties",
        b"os=not-ubuntu\n",
    );
    let source = open_at(&tmp.path().join("SHA256SUMS"), &signed())
        .await
        .expect("open");
    let items = query(Arc::new(source), &["os=not-ubuntu"]).await;
    assert!(
        items.is_empty(),
        "an unlisted sidecar is not used under a keyring"
    );
    let source = open_at(&tmp.path().join("SHA256SUMS"), &options())
        .await
        .expect("open");
    assert_eq!(query(Arc::new(source), &["os=not-ubuntu"]).await.len(), 1);
}

async fn refused(dir: &Path, sums: &str, text: &str, options: &SumsOptions) -> String {
    write(dir, sums, text.as_bytes());
    let err = open_at(&dir.join(sums), options)
        .await
        .expect_err("refused");
    message(&err)
}

#[tokio::test]
async fn unsafe_names_and_unparsable_lines_are_refused_naming_the_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    let h = digest(ChecksumKind::Sha256, b"x");
    let sums = d.join("SHA256SUMS").display().to_string();
    for (text, want) in [
        (
            format!("{h}  a.img\n{h}  ../etc/passwd\n"),
            format!("{sums}:2: unsafe path \"../etc/passwd\""),
        ),
        (
            format!("{h}  /etc/passwd\n"),
            format!("{sums}:1: unsafe path \"/etc/passwd\": is absolute"),
        ),
        (
            format!("{h}  a.img\n\nthis is not a checksum\n"),
            format!("{sums}:3: not a checksum line"),
        ),
        (
            format!("{}  a.img\n", &h[..60]),
            format!("{sums}:1: a 60-digit digest where sha256 has 64"),
        ),
    ] {
        let m = refused(d, "SHA256SUMS", &text, &options()).await;
        assert!(m.contains(&want), "{m}\nwanted: {want}");
    }
}

#[tokio::test]
async fn an_html_page_served_as_the_checksum_file_is_named_as_such() {
    let tmp = tempfile::tempdir().expect("tmp");
    let page = "<!DOCTYPE html>\n<html><body>Not Found</body></html>\n";
    let m = refused(tmp.path(), "SHA256SUMS", page, &options()).await;
    assert!(
        m.ends_with("SHA256SUMS: an HTML page, not a checksum file"),
        "{m}"
    );
    // Under a keyring too: the page is named, not its missing signature.
    let m = refused(tmp.path(), "SHA256SUMS", page, &signed()).await;
    assert!(m.contains("an HTML page, not a checksum file"), "{m}");
}

#[tokio::test]
async fn a_signature_by_an_unknown_key_or_none_at_all_is_refused_under_a_keyring() {
    let tmp = tempfile::tempdir().expect("tmp");
    ubuntu_dir(tmp.path());
    let other = simplestreams_core::openpgp::keygen::generate(
        &simplestreams_core::openpgp::keygen::KeyOptions::new(
            "Someone Else",
            "else@example.invalid",
        ),
    )
    .expect("a second key");
    let other_ring = Keyring::from_bytes(&other.public_armored, "other.asc").expect("ring");
    let strangers = SumsOptions {
        signatures: SignaturePolicy::require(Arc::new(other_ring)),
        ..options()
    };
    let err = open_at(&tmp.path().join("SHA256SUMS"), &strangers)
        .await
        .expect_err("unknown key");
    let m = message(&err);
    assert!(m.contains("SHA256SUMS: signature:"), "{m}");

    std::fs::remove_file(tmp.path().join("SHA256SUMS.gpg")).expect("rm");
    let err = open_at(&tmp.path().join("SHA256SUMS"), &signed())
        .await
        .expect_err("unsigned");
    let m = message(&err);
    assert!(
        m.contains("not signed") && m.contains("SHA256SUMS.gpg"),
        "{m}"
    );
    // Without a keyring, it is read as it is.
    open_at(&tmp.path().join("SHA256SUMS"), &options())
        .await
        .expect("unchecked");
}

#[tokio::test]
async fn two_checksum_files_that_disagree_about_a_file_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    dir_with_sums(d, "SHA256SUMS", ChecksumKind::Sha256, &UBUNTU[..2]);
    // MD5SUMS beside it agrees: both checksums end up on the items.
    dir_with_sums(d, "MD5SUMS", ChecksumKind::Md5, &UBUNTU[..2]);
    let source = open_at(d, &options()).await.expect("agree");
    let items = query(Arc::new(source), &[]).await;
    assert!(items
        .iter()
        .all(|i| field(i, "md5").is_some() && field(i, "sha256").is_some()));
    // A CHECKSUM file giving one of them another sha256: refused, both files and lines named.
    let name = UBUNTU[1];
    write(
        d,
        "Other-CHECKSUM",
        format!(
            "SHA256 ({name}) = {}\n",
            digest(ChecksumKind::Sha256, b"other bytes")
        )
        .as_bytes(),
    );
    let m = message(&open_at(d, &options()).await.expect_err("disagree"));
    assert!(
        m.contains("Other-CHECKSUM:1") && m.contains("SHA256SUMS:2"),
        "{m}"
    );
    assert!(m.contains(&format!("{name}: sha256")), "{m}");
}

#[tokio::test]
async fn one_image_in_two_dated_directories_with_different_content_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    // Two directories whose names give the same version (a daily and a release of one date).
    let name = "noble-server-cloudimg-amd64.img";
    dir_with_sums(
        &tmp.path().join("release-20240423"),
        "SHA256SUMS",
        ChecksumKind::Sha256,
        &[name],
    );
    let other = tmp.path().join("20240423");
    write(&other, name, b"different bytes");
    write(
        &other,
        "SHA256SUMS",
        format!(
            "{}  {name}\n",
            digest(ChecksumKind::Sha256, b"different bytes")
        )
        .as_bytes(),
    );
    let m = message(
        &open_at(tmp.path(), &options())
            .await
            .expect_err("duplicate"),
    );
    assert!(
        m.contains(&format!(
            "20240423/{name} and release-20240423/{name} are both product"
        )) || m.contains(&format!(
            "release-20240423/{name} and 20240423/{name} are both product"
        )),
        "{m}"
    );
}

#[tokio::test]
async fn a_listed_but_missing_file_fails_its_item_and_an_unlisted_one_is_ignored() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    dir_with_sums(&src, "SHA256SUMS", ChecksumKind::Sha256, &UBUNTU[..2]);
    std::fs::remove_file(src.join(UBUNTU[1])).expect("rm");
    write(&src, "noble-server-cloudimg-riscv64.img", b"not listed");
    let source = Arc::new(open_at(&src, &options()).await.expect("open"));
    let names: Vec<String> = query(source.clone(), &[])
        .await
        .iter()
        .map(|i| field(i, "path").unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        names,
        [UBUNTU[0], UBUNTU[1]],
        "the unlisted file is not an item"
    );
    let target = InMemory::new();
    let report = Mirror::to_store(
        source,
        Arc::new(target.clone()),
        SyncOptions {
            entry: "streams/v1/index.json".into(),
            ..SyncOptions::default()
        },
    )
    .run()
    .await
    .expect("mirror");
    assert!(!report.is_success());
    assert_eq!(report.downloaded, 1, "the other item is mirrored");
    let m = report
        .errors
        .iter()
        .map(message)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(m.contains(UBUNTU[1]) && m.contains("arm64"), "{m}");
    assert!(target.get_bytes(UBUNTU[0]).await.is_ok());
}

#[tokio::test]
async fn a_custom_regex_layout_makes_fields_of_its_groups() {
    let tmp = tempfile::tempdir().expect("tmp");
    let names = ["acme-web-2.1-amd64.qcow2", "acme-db-2.1-arm64.qcow2"];
    dir_with_sums(tmp.path(), "sums.txt", ChecksumKind::Sha256, &names);
    let o = SumsOptions {
        layout: Some(
            Layout::parse(
                r"^acme-(?P<product>[a-z]+)-(?P<version>[\d.]+)-(?P<arch>[a-z0-9]+)\.qcow2$",
            )
            .expect("layout"),
        ),
        sums_name: Some("sums.txt".into()),
        content_id: Some("com.acme:images".into()),
        ..options()
    };
    let source = open_at(tmp.path(), &o).await.expect("open");
    assert_eq!(source.products_path(), "streams/v1/com.acme:images.json");
    let items = query(Arc::new(source), &["arch=arm64"]).await;
    assert_eq!(items.len(), 1);
    assert_eq!(field(&items[0], "product_name"), Some("db"));
    assert_eq!(field(&items[0], "version_name"), Some("2.1"));
    assert_eq!(field(&items[0], "item_name"), Some("disk1.img"));
}

#[tokio::test]
async fn a_directory_without_a_checksum_file_or_images_says_so() {
    let tmp = tempfile::tempdir().expect("tmp");
    write(tmp.path(), "a.qcow2", b"x");
    let m = message(&open_at(tmp.path(), &options()).await.expect_err("nothing"));
    assert!(m.contains("no checksum file"), "{m}");
    dir_with_sums(tmp.path(), "SHA256SUMS", ChecksumKind::Sha256, &["README"]);
    let m = message(&open_at(tmp.path(), &options()).await.expect_err("no image"));
    assert!(m.contains("no image: 1 file(s) listed"), "{m}");
}

#[tokio::test]
async fn the_virtual_files_answer_conditional_and_ranged_reads() {
    let tmp = tempfile::tempdir().expect("tmp");
    dir_with_sums(tmp.path(), "SHA256SUMS", ChecksumKind::Sha256, &UBUNTU[..1]);
    let source = open_at(tmp.path(), &options()).await.expect("open");
    let first = match source
        .get("streams/v1/index.json", Default::default())
        .await
        .expect("index")
    {
        simplestreams_mirror::GetResult::Found { meta, .. } => meta,
        other => panic!("{other:?}"),
    };
    let again = source
        .get(
            "streams/v1/index.json",
            simplestreams_mirror::GetOptions {
                if_not_modified: Some(first.validators.clone()),
                ..Default::default()
            },
        )
        .await
        .expect("conditional");
    assert!(matches!(
        again,
        simplestreams_mirror::GetResult::NotModified
    ));
    let err = source
        .get("streams/v1/index.sjson", Default::default())
        .await
        .expect_err("only ours below streams/v1");
    assert!(err.is_not_found());
}
