//! Layouts: how a file name (and the directory it is in) maps to a product, a version, an item
//! and the fields Canonical's streams give (`os`, `release`, `version`, `arch`, `ftype`,
//! `pubname`, …), so that filters, `--max` and Glance properties work on a checksum-file
//! directory as on a real stream.
//!
//! | layout | files | product | version | item |
//! |---|---|---|---|---|
//! | `debian` | `debian-<ver>-<variant>-<arch>-<build>.<ext>` in `<YYYYMMDD-NNNN>/` | `org.debian.cloud:<variant>:<ver>:<arch>` | the build (`20240211-1651`) | the ftype |
//! | `ubuntu` | `<series>-server-cloudimg-<arch>[-<suffix>].<ext>` in `release-<YYYYMMDD[.N]>/` | `com.ubuntu.cloud:server:<version>:<arch>` | the date | the ftype |
//! | `fedora` | `Fedora-<edition>-<release>-<compose>.<arch>.<ext>` | `org.fedoraproject.cloud:<edition>:<release>:<arch>` | the compose (`1.4`) | the ftype |
//! | `plain` | anything with an extension | the file name without its extension | the directory | the ftype |
//! | a regex | named groups `product`, `version`, `item` (`ftype`), every other group a field | `product` | `version`, else the directory | `item`, else the ftype |
//!
//! A version not given by the file name comes from the directory: its dated name under the
//! layout's pattern (`release-20240423` → `20240423`), else (for a subdirectory of the root
//! read as a version) its name, else the date of its checksum file (`YYYYMMDD`), else its name.

use std::sync::LazyLock;

use regex::Regex;

use super::distro::{
    debian_codename, ftype_for_extension, normalise_arch, split_extension, ubuntu_release,
    ARCH_WORDS,
};
use super::error::SumsError;

/// How file names map to products; see the module documentation.
#[derive(Debug, Clone)]
pub enum Layout {
    /// Debian's `cloud.debian.org/images/cloud/<release>/<YYYYMMDD-NNNN>/`.
    Debian,
    /// Ubuntu's `cloud-images.ubuntu.com/releases/<series>/release-<date>/` (and daily
    /// `<series>/<date>/`, and `minimal` images).
    Ubuntu,
    /// Fedora's `…/Cloud/<arch>/images/` with a `*-CHECKSUM` file.
    Fedora,
    /// Any directory: product from the file name, version from the directory.
    Plain,
    /// A regular expression with named groups.
    Custom(CustomLayout),
}

/// A `--layout REGEX`.
#[derive(Debug, Clone)]
pub struct CustomLayout {
    spec: String,
    regex: Regex,
    /// Matched against `DIR/NAME` (the path below the root) when the regex has a `/`.
    whole_path: bool,
}

/// The directory a file is in, as a layout sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirContext<'a> {
    /// Its path below the root of the source (`""` for the root itself).
    pub rel: &'a str,
    /// Its own name: the last component of `rel`, or for the root the last component of the
    /// location given.
    pub name: &'a str,
    /// The modification date of its checksum file, `YYYYMMDD` (UTC), when known.
    pub date: Option<&'a str>,
}

/// Where a file goes in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// Product name.
    pub product: String,
    /// Version name.
    pub version: String,
    /// Item name.
    pub item: String,
    /// The item's fields (path, size and checksums are added by the builder), in the order
    /// they are written.
    pub fields: Vec<(String, String)>,
}

const EXT: &str = r"[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)*";

static DEBIAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^debian-(?P<ver>\d+|sid|testing)-(?P<variant>[a-z0-9]+(?:-[a-z0-9]+)*?)-(?P<arch>amd64|arm64|ppc64el|i386|armhf|armel|riscv64|s390x|mips64el|loong64)(?:-(?P<daily>daily-)?(?P<build>\d{{8}}-\d{{4}}))?\.(?P<ext>{EXT})$"
    ))
    .expect("the debian pattern is valid")
});
static DEBIAN_DIR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:daily-)?(\d{8}-\d{4})$").expect("valid"));

static UBUNTU: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^(?:ubuntu-(?P<numver>\d{{2}}\.\d{{2}})|(?P<series>[a-z]+))-(?P<kind>server|minimal)-cloudimg-(?P<arch>amd64|arm64|armhf|armel|i386|ppc64el|s390x|riscv64|powerpc)(?:-(?P<suffix>[a-z0-9][a-z0-9-]*?))?(?:\.(?P<ext>{EXT}))?$"
    ))
    .expect("the ubuntu pattern is valid")
});
static UBUNTU_DIR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(release-)?(\d{8}(?:\.\d+)?)$").expect("valid"));

const FEDORA_ARCH: &str = "x86_64|aarch64|ppc64le|s390x|armhfp|i386";
static FEDORA: LazyLock<[Regex; 2]> = LazyLock::new(|| {
    [
        // Fedora 41 on: Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2
        Regex::new(&format!(
            r"^Fedora-(?P<edition>[A-Za-z][A-Za-z0-9_-]*?)-(?P<release>\d+|Rawhide)-(?P<compose>\d[0-9A-Za-z.]*?)\.(?P<arch>{FEDORA_ARCH})\.(?P<ext>{EXT})$"
        ))
        .expect("the fedora pattern is valid"),
        // Fedora 40: Fedora-Cloud-Base-Generic.x86_64-40-1.14.qcow2
        Regex::new(&format!(
            r"^Fedora-(?P<edition>[A-Za-z][A-Za-z0-9_-]*?)\.(?P<arch>{FEDORA_ARCH})-(?P<release>\d+|Rawhide)-(?P<compose>\d[0-9A-Za-z.]*?)\.(?P<ext>{EXT})$"
        ))
        .expect("the fedora pattern is valid"),
    ]
});

/// Directory names never read as versions of a parent: aliases of a dated directory
/// (`latest`, `current`), a stream already made there (`streams`), and hidden ones.
fn is_alias_dir(name: &str) -> bool {
    name.starts_with('.') || matches!(name, "latest" | "current" | "streams" | "release")
}

impl Layout {
    /// The layout `spec` names: `debian`, `ubuntu`, `fedora`, `plain`, or else a regular
    /// expression with at least a `(?P<product>…)` group.
    pub fn parse(spec: &str) -> Result<Layout, SumsError> {
        match spec {
            "debian" => return Ok(Layout::Debian),
            "ubuntu" => return Ok(Layout::Ubuntu),
            "fedora" => return Ok(Layout::Fedora),
            "plain" => return Ok(Layout::Plain),
            _ => {}
        }
        let err = |message: String| SumsError::Layout {
            spec: spec.to_string(),
            message,
        };
        let regex = Regex::new(spec).map_err(|e| {
            err(format!(
                "neither debian, ubuntu, fedora nor plain, and not a regular expression: {e}"
            ))
        })?;
        let names: Vec<&str> = regex.capture_names().flatten().collect();
        if !names.contains(&"product") {
            return Err(err(
                "a layout regex needs a (?P<product>…) group (and may have version, item, \
                 ftype and any other named group, which becomes a field)"
                    .into(),
            ));
        }
        Ok(Layout::Custom(CustomLayout {
            spec: spec.to_string(),
            whole_path: spec.contains('/'),
            regex,
        }))
    }

    /// The name used in the content id: `debian`, `ubuntu`, `fedora`, `plain` or `custom`.
    pub fn name(&self) -> &'static str {
        match self {
            Layout::Debian => "debian",
            Layout::Ubuntu => "ubuntu",
            Layout::Fedora => "fedora",
            Layout::Plain => "plain",
            Layout::Custom(_) => "custom",
        }
    }

    /// The layout as given (the regex of a custom one).
    pub fn spec(&self) -> &str {
        match self {
            Layout::Custom(c) => &c.spec,
            other => other.name(),
        }
    }

    /// Whether a subdirectory `name` of a parent is read as a version: Debian's
    /// `YYYYMMDD-NNNN`, Ubuntu's `release-YYYYMMDD[.N]` (or a daily `YYYYMMDD`); for the other
    /// layouts any directory but hidden ones and aliases (`latest`, `current`, `release`,
    /// `streams`).
    pub fn reads_dir(&self, name: &str) -> bool {
        match self {
            Layout::Debian => DEBIAN_DIR.is_match(name),
            Layout::Ubuntu => UBUNTU_DIR.is_match(name),
            _ => !is_alias_dir(name),
        }
    }

    /// The version a directory's name gives under this layout's pattern, if it has one.
    pub fn dir_version(&self, name: &str) -> Option<String> {
        match self {
            Layout::Debian => DEBIAN_DIR.captures(name).map(|c| c[1].to_string()),
            Layout::Ubuntu => UBUNTU_DIR.captures(name).map(|c| c[2].to_string()),
            _ => None,
        }
    }

    /// The version of files whose names do not carry one (see the module documentation).
    pub fn version_of_dir(&self, dir: &DirContext<'_>) -> String {
        if let Some(v) = self.dir_version(dir.name) {
            return v;
        }
        if !dir.rel.is_empty() && !dir.name.is_empty() {
            return dir.name.to_string();
        }
        match dir.date {
            Some(d) => d.to_string(),
            None if !dir.name.is_empty() => dir.name.to_string(),
            None => "0".to_string(),
        }
    }

    /// Where the file `name` in `dir` goes, or `None` when it is not an image of this layout.
    pub fn classify(&self, dir: &DirContext<'_>, name: &str) -> Option<Classified> {
        match self {
            Layout::Debian => debian(dir, name, self),
            Layout::Ubuntu => ubuntu(dir, name, self),
            Layout::Fedora => fedora(name),
            Layout::Plain => plain(dir, name, self),
            Layout::Custom(c) => custom(c, dir, name, self),
        }
    }

    /// The named layout that recognises most of `names` (file names), `plain` when none
    /// recognises any: what a checksum file read without `--layout` is taken to be.
    pub fn detect<'a>(names: impl IntoIterator<Item = &'a str> + Clone) -> Layout {
        let dir = DirContext {
            rel: "",
            name: "",
            date: None,
        };
        let mut best = (0, Layout::Plain);
        for layout in [Layout::Debian, Layout::Ubuntu, Layout::Fedora] {
            let n = names
                .clone()
                .into_iter()
                .filter(|f| layout.classify(&dir, f).is_some())
                .count();
            if n > best.0 {
                best = (n, layout);
            }
        }
        best.1
    }

    /// The named layout whose directory pattern most of `dirs` (subdirectory names of a
    /// parent) match, if any does.
    pub fn detect_dirs<'a>(dirs: impl IntoIterator<Item = &'a str> + Clone) -> Option<Layout> {
        let mut best: Option<(usize, Layout)> = None;
        for layout in [Layout::Debian, Layout::Ubuntu] {
            let n = dirs
                .clone()
                .into_iter()
                .filter(|d| layout.reads_dir(d))
                .count();
            if n > 0 && best.as_ref().is_none_or(|(b, _)| n > *b) {
                best = Some((n, layout));
            }
        }
        best.map(|(_, l)| l)
    }
}

fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn debian(dir: &DirContext<'_>, name: &str, layout: &Layout) -> Option<Classified> {
    let c = DEBIAN.captures(name)?;
    let ver = &c["ver"];
    let variant = &c["variant"];
    let arch = &c["arch"];
    let ext = &c["ext"];
    let version = match c.name("build") {
        Some(b) => b.as_str().to_string(),
        None => layout.version_of_dir(dir),
    };
    let ftype = ftype_for_extension(ext);
    let pubname = &name[..name.len() - ext.len() - 1];
    let mut f = vec![("os", "debian")];
    let release = debian_codename(ver);
    if let Some(r) = release {
        f.push(("release", r));
    }
    f.extend([
        ("version", ver),
        ("variant", variant),
        ("arch", arch),
        ("ftype", ftype.as_str()),
        ("pubname", pubname),
    ]);
    if c.name("daily").is_some() {
        f.push(("label", "daily"));
    }
    Some(Classified {
        product: format!("org.debian.cloud:{variant}:{ver}:{arch}"),
        version,
        item: ftype.clone(),
        fields: fields(&f),
    })
}

fn ubuntu(dir: &DirContext<'_>, name: &str, layout: &Layout) -> Option<Classified> {
    let c = UBUNTU.captures(name)?;
    let release = match (c.name("series"), c.name("numver")) {
        (Some(s), _) => ubuntu_release(s.as_str()).ok_or(s.as_str()),
        (None, Some(v)) => ubuntu_release(v.as_str()).ok_or(v.as_str()),
        (None, None) => return None,
    };
    let series = match release {
        Ok(r) => r.series,
        Err(s) if c.name("series").is_some() => s,
        // ubuntu-NN.NN-… of a version not in the table: no series to give.
        Err(_) => return None,
    };
    let kind = &c["kind"];
    let arch = &c["arch"];
    let ftype = match (c.name("suffix"), c.name("ext")) {
        (Some(s), Some(e)) => format!("{}.{}", s.as_str(), e.as_str()),
        (Some(s), None) => s.as_str().to_string(),
        (None, Some(e)) if e.as_str() == "img" => "disk1.img".to_string(),
        (None, Some(e)) => e.as_str().to_string(),
        (None, None) => return None,
    };
    let version = layout.version_of_dir(dir);
    let label = match UBUNTU_DIR.captures(dir.name) {
        Some(d) if d.get(1).is_none() => "daily",
        _ => "release",
    };
    let ver = release.ok().map(|r| r.version);
    let pubname = match ver {
        Some(v) => format!("ubuntu-{series}-{v}-{arch}-{kind}-{version}"),
        None => format!("ubuntu-{series}-{arch}-{kind}-{version}"),
    };
    let mut f = vec![("os", "ubuntu"), ("release", series)];
    let title;
    if let Ok(r) = release {
        title = r.title();
        f.extend([
            ("version", r.version),
            ("release_codename", r.codename),
            ("release_title", title.as_str()),
        ]);
    }
    f.extend([
        ("arch", arch),
        ("ftype", ftype.as_str()),
        ("label", label),
        ("pubname", pubname.as_str()),
    ]);
    Some(Classified {
        product: format!("com.ubuntu.cloud:{kind}:{}:{arch}", ver.unwrap_or(series)),
        version,
        item: ftype.clone(),
        fields: fields(&f),
    })
}

fn fedora(name: &str) -> Option<Classified> {
    let c = FEDORA.iter().find_map(|r| r.captures(name))?;
    let edition = c["edition"].to_ascii_lowercase();
    let release = c["release"].to_ascii_lowercase();
    let arch = normalise_arch(&c["arch"]);
    let ext = &c["ext"];
    let ftype = ftype_for_extension(ext);
    let pubname = &name[..name.len() - ext.len() - 1];
    let f = [
        ("os", "fedora"),
        ("release", release.as_str()),
        ("version", release.as_str()),
        ("variant", edition.as_str()),
        ("arch", arch.as_str()),
        ("ftype", ftype.as_str()),
        ("pubname", pubname),
    ];
    Some(Classified {
        product: format!("org.fedoraproject.cloud:{edition}:{release}:{arch}"),
        version: c["compose"].to_string(),
        item: ftype.clone(),
        fields: fields(&f),
    })
}

fn plain(dir: &DirContext<'_>, name: &str, layout: &Layout) -> Option<Classified> {
    let (stem, ext) = split_extension(name);
    if ext.is_empty() || stem.is_empty() {
        return None;
    }
    let ftype = ftype_for_extension(ext);
    let mut f = vec![("ftype".to_string(), ftype.clone())];
    if let Some(arch) = stem.split(['-', '_', '.']).find(|w| ARCH_WORDS.contains(w)) {
        f.push(("arch".into(), normalise_arch(arch)));
    }
    f.push(("pubname".into(), stem.to_string()));
    Some(Classified {
        product: stem.to_string(),
        version: layout.version_of_dir(dir),
        item: ftype,
        fields: f,
    })
}

fn custom(
    c: &CustomLayout,
    dir: &DirContext<'_>,
    name: &str,
    layout: &Layout,
) -> Option<Classified> {
    let joined;
    let subject = if c.whole_path && !dir.rel.is_empty() {
        joined = format!("{}/{name}", dir.rel);
        joined.as_str()
    } else {
        name
    };
    let caps = c.regex.captures(subject)?;
    let group = |g: &str| {
        caps.name(g)
            .map(|m| m.as_str().to_string())
            .filter(|s| !s.is_empty())
    };
    let product = group("product")?;
    let (_, ext) = split_extension(name);
    let ftype = group("ftype").unwrap_or_else(|| {
        if ext.is_empty() {
            "file".into()
        } else {
            ftype_for_extension(ext)
        }
    });
    let mut f = vec![("ftype".to_string(), ftype.clone())];
    for g in c.regex.capture_names().flatten() {
        if matches!(g, "product" | "version" | "item" | "ftype") {
            continue;
        }
        if let Some(v) = group(g) {
            f.push((g.to_string(), v));
        }
    }
    Some(Classified {
        product,
        version: group("version").unwrap_or_else(|| layout.version_of_dir(dir)),
        item: group("item").unwrap_or(ftype),
        fields: f,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(name: &str) -> DirContext<'_> {
        DirContext {
            rel: "",
            name,
            date: Some("20240501"),
        }
    }

    fn get<'a>(c: &'a Classified, k: &str) -> Option<&'a str> {
        c.fields
            .iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn debian_names_give_release_variant_arch_and_build() {
        let c = Layout::Debian
            .classify(
                &root("20240211-1651"),
                "debian-12-genericcloud-amd64-20240211-1651.qcow2",
            )
            .expect("debian");
        assert_eq!(c.product, "org.debian.cloud:genericcloud:12:amd64");
        assert_eq!(
            (c.version.as_str(), c.item.as_str()),
            ("20240211-1651", "disk1.img")
        );
        assert_eq!(get(&c, "release"), Some("bookworm"));
        assert_eq!(
            get(&c, "pubname"),
            Some("debian-12-genericcloud-amd64-20240211-1651")
        );
        let raw = Layout::Debian
            .classify(&root("x"), "debian-11-nocloud-arm64-20240211-1651.tar.xz")
            .expect("tar");
        assert_eq!(
            (get(&raw, "release"), raw.item.as_str()),
            (Some("bullseye"), "tar.xz")
        );
        // latest/: no build in the name; the version is the directory's.
        let latest = Layout::Debian
            .classify(&root("latest"), "debian-13-generic-amd64.raw")
            .expect("latest");
        assert_eq!(
            (latest.version.as_str(), get(&latest, "release")),
            ("20240501", Some("trixie"))
        );
        assert!(Layout::Debian.classify(&root("x"), "SHA512SUMS").is_none());
    }

    #[test]
    fn ubuntu_names_give_canonical_products_and_ftypes() {
        let dir = root("release-20240423");
        let cases = [
            ("noble-server-cloudimg-amd64.img", "disk1.img"),
            ("noble-server-cloudimg-arm64.img", "disk1.img"),
            ("noble-server-cloudimg-amd64-root.tar.xz", "root.tar.xz"),
            ("noble-server-cloudimg-amd64-lxd.tar.xz", "lxd.tar.xz"),
            ("noble-server-cloudimg-amd64.squashfs", "squashfs"),
            ("noble-server-cloudimg-amd64.tar.gz", "tar.gz"),
            ("noble-server-cloudimg-amd64-disk-kvm.img", "disk-kvm.img"),
            (
                "noble-server-cloudimg-amd64.squashfs.manifest",
                "squashfs.manifest",
            ),
            (
                "noble-server-cloudimg-amd64-vmlinuz-generic",
                "vmlinuz-generic",
            ),
        ];
        for (name, ftype) in cases {
            let c = Layout::Ubuntu.classify(&dir, name).expect(name);
            assert_eq!(c.item, ftype, "{name}");
            assert_eq!(c.version, "20240423");
            assert_eq!(get(&c, "version"), Some("24.04"));
            assert_eq!(get(&c, "release"), Some("noble"));
            assert_eq!(get(&c, "label"), Some("release"));
        }
        let c = Layout::Ubuntu
            .classify(&dir, "noble-server-cloudimg-arm64.img")
            .expect("arm");
        assert_eq!(c.product, "com.ubuntu.cloud:server:24.04:arm64");
        assert_eq!(
            get(&c, "pubname"),
            Some("ubuntu-noble-24.04-arm64-server-20240423")
        );
        let old = Layout::Ubuntu
            .classify(
                &root("release-20161020"),
                "ubuntu-16.04-server-cloudimg-amd64-disk1.img",
            )
            .expect("old naming");
        assert_eq!(
            (old.item.as_str(), get(&old, "release")),
            ("disk1.img", Some("xenial"))
        );
        let daily = Layout::Ubuntu
            .classify(&root("20240423.1"), "jammy-server-cloudimg-amd64.img")
            .expect("daily");
        assert_eq!(
            (daily.version.as_str(), get(&daily, "label")),
            ("20240423.1", Some("daily"))
        );
    }

    #[test]
    fn fedora_names_of_both_eras() {
        let c = Layout::Fedora
            .classify(
                &root("images"),
                "Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2",
            )
            .expect("41");
        assert_eq!(
            c.product,
            "org.fedoraproject.cloud:cloud-base-generic:41:amd64"
        );
        assert_eq!((c.version.as_str(), c.item.as_str()), ("1.4", "disk1.img"));
        assert_eq!(
            get(&c, "pubname"),
            Some("Fedora-Cloud-Base-Generic-41-1.4.x86_64")
        );
        let c = Layout::Fedora
            .classify(
                &root("images"),
                "Fedora-Cloud-Base-Generic.x86_64-40-1.14.qcow2",
            )
            .expect("40");
        assert_eq!(
            (c.version.as_str(), get(&c, "release")),
            ("1.14", Some("40"))
        );
        let c = Layout::Fedora
            .classify(
                &root("images"),
                "Fedora-Cloud-Base-AmazonEC2-41-1.4.aarch64.raw.xz",
            )
            .expect("raw.xz");
        assert_eq!(
            (c.item.as_str(), get(&c, "arch")),
            ("raw.xz", Some("arm64"))
        );
    }

    #[test]
    fn custom_regexes_need_a_product_and_make_fields_of_other_groups() {
        let l = Layout::parse(r"^(?P<product>[a-z]+)-(?P<flavour>[a-z]+)-(?P<version>\d+)\.qcow2$")
            .expect("regex");
        let c = l
            .classify(&root("d"), "centos-stream-20240101.qcow2")
            .expect("match");
        assert_eq!(
            (c.product.as_str(), c.version.as_str(), c.item.as_str()),
            ("centos", "20240101", "disk1.img")
        );
        assert_eq!(get(&c, "flavour"), Some("stream"));
        let err = Layout::parse(r"^(?P<name>.*)$").expect_err("no product");
        assert!(err.to_string().contains("(?P<product>"), "{err}");
        let err = Layout::parse(r"^(unclosed").expect_err("bad regex");
        assert!(
            err.to_string().contains("not a regular expression"),
            "{err}"
        );
    }

    #[test]
    fn detection_picks_the_layout_that_recognises_most() {
        let names = [
            "debian-12-genericcloud-amd64-20240211-1651.qcow2",
            "SHA512SUMS",
        ];
        assert_eq!(Layout::detect(names).name(), "debian");
        assert_eq!(
            Layout::detect(["noble-server-cloudimg-amd64.img"]).name(),
            "ubuntu"
        );
        assert_eq!(Layout::detect(["in-house-amd64.qcow2"]).name(), "plain");
        assert_eq!(
            Layout::detect_dirs(["20240211-1651", "latest"]).map(|l| l.name()),
            Some("debian")
        );
        assert_eq!(
            Layout::detect_dirs(["release-20240423"]).map(|l| l.name()),
            Some("ubuntu")
        );
        assert!(Layout::detect_dirs(["a", "b"]).is_none());
        assert!(!Layout::Debian.reads_dir("latest"));
        assert!(!Layout::Plain.reads_dir("latest"));
    }
}
