//! What the layouts know about distributions: Ubuntu's series and Debian's releases, the
//! architecture names simplestreams uses, and the `ftype` a file extension stands for.

/// One Ubuntu release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UbuntuRelease {
    /// The series (`noble`).
    pub series: &'static str,
    /// The version (`24.04`).
    pub version: &'static str,
    /// The code name (`Noble Numbat`).
    pub codename: &'static str,
    /// A long-term support release.
    pub lts: bool,
}

impl UbuntuRelease {
    /// `24.04 LTS`, `24.10`: Canonical's `release_title`.
    pub fn title(&self) -> String {
        if self.lts {
            format!("{} LTS", self.version)
        } else {
            self.version.to_string()
        }
    }
}

const fn u(
    series: &'static str,
    version: &'static str,
    codename: &'static str,
    lts: bool,
) -> UbuntuRelease {
    UbuntuRelease {
        series,
        version,
        codename,
        lts,
    }
}

/// Ubuntu releases with cloud images, oldest first.
pub const UBUNTU_RELEASES: &[UbuntuRelease] = &[
    u("precise", "12.04", "Precise Pangolin", true),
    u("trusty", "14.04", "Trusty Tahr", true),
    u("xenial", "16.04", "Xenial Xerus", true),
    u("bionic", "18.04", "Bionic Beaver", true),
    u("focal", "20.04", "Focal Fossa", true),
    u("jammy", "22.04", "Jammy Jellyfish", true),
    u("kinetic", "22.10", "Kinetic Kudu", false),
    u("lunar", "23.04", "Lunar Lobster", false),
    u("mantic", "23.10", "Mantic Minotaur", false),
    u("noble", "24.04", "Noble Numbat", true),
    u("oracular", "24.10", "Oracular Oriole", false),
    u("plucky", "25.04", "Plucky Puffin", false),
    u("questing", "25.10", "Questing Quokka", false),
];

/// The Ubuntu release of a series (`noble`) or a version (`24.04`).
pub fn ubuntu_release(series_or_version: &str) -> Option<&'static UbuntuRelease> {
    UBUNTU_RELEASES
        .iter()
        .find(|r| r.series == series_or_version || r.version == series_or_version)
}

/// Debian releases: (version, code name), oldest first.
pub const DEBIAN_RELEASES: &[(&str, &str)] = &[
    ("8", "jessie"),
    ("9", "stretch"),
    ("10", "buster"),
    ("11", "bullseye"),
    ("12", "bookworm"),
    ("13", "trixie"),
    ("14", "forky"),
    ("15", "duke"),
];

/// The code name of a Debian version (`12` → `bookworm`); `sid` and `testing` are their own.
pub fn debian_codename(version: &str) -> Option<&'static str> {
    match version {
        "sid" => Some("sid"),
        "testing" => Some("testing"),
        v => DEBIAN_RELEASES
            .iter()
            .find(|(n, _)| *n == v)
            .map(|(_, c)| *c),
    }
}

/// The architecture as Ubuntu's and Debian's streams spell it (`x86_64` → `amd64`,
/// `aarch64` → `arm64`, `ppc64le` → `ppc64el`, `armhfp` → `armhf`, `i686` → `i386`), so that
/// one filter (`arch=amd64`) selects the same machines in every source; Glance's
/// `architecture` property comes out in OpenStack's spelling either way.
pub fn normalise_arch(arch: &str) -> String {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "ppc64le" => "ppc64el",
        "armhfp" | "armv7hl" | "armv7l" => "armhf",
        "i686" | "i586" => "i386",
        other => other,
    }
    .to_string()
}

/// Architecture names a plain file name may carry as one of its `-`, `_` or `.` separated
/// words.
pub const ARCH_WORDS: &[&str] = &[
    "amd64", "x86_64", "arm64", "aarch64", "armhf", "armhfp", "i386", "i686", "ppc64el", "ppc64le",
    "s390x", "riscv64",
];

/// The `ftype` of a file with extension `ext` (as [`split_extension`] gives it): `disk1.img`
/// for a qcow2 image, as Ubuntu's streams and this project's publisher name it (what Glance
/// maps to `qcow2`), else the extension itself (`raw`, `tar.xz`, `raw.xz`, `vhd`, …).
pub fn ftype_for_extension(ext: &str) -> String {
    match ext.to_ascii_lowercase().as_str() {
        "qcow2" => "disk1.img".into(),
        other => other.into(),
    }
}

/// Compression extensions: a file ending in one keeps the extension before it too
/// (`x.tar.xz` → `tar.xz`, `x.raw.xz` → `raw.xz`).
const COMPRESSION: &[&str] = &["gz", "xz", "bz2", "zst", "lz4", "lzma", "zip"];

/// Splits a file name into its stem and extension: the last extension, or the last two when
/// the last is a compression (`a.tar.xz` → (`a`, `tar.xz`)); (`name`, ``) without a dot.
pub fn split_extension(name: &str) -> (&str, &str) {
    let Some(dot) = name.rfind('.').filter(|d| *d > 0) else {
        return (name, "");
    };
    let last = &name[dot + 1..];
    if COMPRESSION.contains(&last.to_ascii_lowercase().as_str()) {
        if let Some(inner) = name[..dot].rfind('.').filter(|d| *d > 0) {
            let mid = &name[inner + 1..dot];
            if !mid.is_empty()
                && mid.len() <= 8
                && mid.bytes().all(|b| b.is_ascii_alphanumeric())
                && mid.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            {
                return (&name[..inner], &name[inner + 1..]);
            }
        }
    }
    (&name[..dot], last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_keep_what_a_compression_wraps() {
        assert_eq!(split_extension("a.tar.xz"), ("a", "tar.xz"));
        assert_eq!(
            split_extension("F-41-1.4.x86_64.raw.xz"),
            ("F-41-1.4.x86_64", "raw.xz")
        );
        assert_eq!(
            split_extension("debian-12-x-20240211-1651.qcow2"),
            ("debian-12-x-20240211-1651", "qcow2")
        );
        assert_eq!(split_extension("a-1.4.xz"), ("a-1.4", "xz"));
        assert_eq!(split_extension("README"), ("README", ""));
        assert_eq!(ftype_for_extension("qcow2"), "disk1.img");
        assert_eq!(ftype_for_extension("raw"), "raw");
    }

    #[test]
    fn tables_answer_both_ways() {
        assert_eq!(ubuntu_release("noble").map(|r| r.version), Some("24.04"));
        assert_eq!(ubuntu_release("22.04").map(|r| r.series), Some("jammy"));
        assert_eq!(
            ubuntu_release("noble").map(|r| r.title()),
            Some("24.04 LTS".into())
        );
        assert_eq!(debian_codename("12"), Some("bookworm"));
        assert_eq!(debian_codename("11"), Some("bullseye"));
        assert_eq!(debian_codename("13"), Some("trixie"));
        assert_eq!(normalise_arch("x86_64"), "amd64");
        assert_eq!(normalise_arch("aarch64"), "arm64");
    }
}
