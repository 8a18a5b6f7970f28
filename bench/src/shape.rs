//! The vocabulary of the generated streams, modelled on the Ubuntu cloud images stream
//! (`com.ubuntu.cloud:released:download`): releases, architectures and file types.

/// Architectures, in the order products cycle through them.
pub(crate) const ARCHES: [&str; 8] = [
    "amd64", "arm64", "armhf", "i386", "ppc64el", "s390x", "powerpc", "riscv64",
];

const ADJECTIVES: [&str; 26] = [
    "Amber", "Brisk", "Calm", "Dapper", "Eager", "Fancy", "Gentle", "Hardy", "Ideal", "Jolly",
    "Keen", "Lively", "Merry", "Noble", "Odd", "Proud", "Quiet", "Rapid", "Sunny", "Tidy",
    "Upbeat", "Vivid", "Witty", "Xeric", "Young", "Zesty",
];

const ANIMALS: [&str; 26] = [
    "Aardvark", "Badger", "Crane", "Dingo", "Egret", "Ferret", "Gecko", "Heron", "Ibex", "Jackal",
    "Koala", "Lemur", "Marmot", "Newt", "Ocelot", "Puffin", "Quokka", "Raven", "Stoat", "Tapir",
    "Urchin", "Vole", "Walrus", "Xerus", "Yak", "Zebu",
];

/// One release: the product-level fields that depend on it.
#[derive(Debug, Clone)]
pub(crate) struct Release {
    /// `16.04`-style version number.
    pub(crate) version: String,
    /// Lowercase code name (`xenial`-style), unique per release.
    pub(crate) name: String,
    /// `Xenial Xerus`-style title.
    pub(crate) codename: String,
    /// First year of the release, for dates.
    pub(crate) year: i32,
}

/// The `n`th release: two a year (`.04` and `.10`) from 2010 on, named alphabetically and
/// numbered after the first 26 so that names stay unique however many are asked for.
pub(crate) fn release(n: usize) -> Release {
    let year = 10 + n / 2;
    let month = if n.is_multiple_of(2) { 4 } else { 10 };
    let (adj, animal) = (ADJECTIVES[n % 26], ANIMALS[n % 26]);
    let round = n / 26;
    let suffix = if round == 0 {
        String::new()
    } else {
        round.to_string()
    };
    Release {
        version: format!("{year}.{month:02}"),
        name: format!("{}{suffix}", adj.to_lowercase()),
        codename: format!(
            "{adj} {animal}{}",
            if round == 0 {
                String::new()
            } else {
                format!(" {round}")
            }
        ),
        // Bounded by the product count (at most a few million), so the cast cannot overflow.
        year: 2000 + i32::try_from(year).unwrap_or(i32::MAX - 2000),
    }
}

/// A file type of an item and the file name suffix it gets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileType {
    pub(crate) ftype: &'static str,
    pub(crate) suffix: &'static str,
    /// Typical size in bytes when no files are written (the real stream's order of magnitude).
    pub(crate) typical_size: u64,
}

const FILE_TYPES: [FileType; 8] = [
    FileType {
        ftype: "disk1.img",
        suffix: ".img",
        typical_size: 300_000_000,
    },
    FileType {
        ftype: "tar.gz",
        suffix: ".tar.gz",
        typical_size: 250_000_000,
    },
    FileType {
        ftype: "manifest",
        suffix: ".manifest",
        typical_size: 14_000,
    },
    FileType {
        ftype: "squashfs",
        suffix: ".squashfs",
        typical_size: 150_000_000,
    },
    FileType {
        ftype: "squashfs.manifest",
        suffix: ".squashfs.manifest",
        typical_size: 14_000,
    },
    FileType {
        ftype: "lxd.tar.xz",
        suffix: "-lxd.tar.xz",
        typical_size: 800,
    },
    FileType {
        ftype: "root.tar.xz",
        suffix: "-root.tar.xz",
        typical_size: 120_000_000,
    },
    FileType {
        ftype: "uefi1.img",
        suffix: "-uefi1.img",
        typical_size: 300_000_000,
    },
];

/// The item names (= file types) of every version: the first `count` of the Ubuntu ones, then
/// `extraN.img` for more.
pub(crate) fn file_types(count: usize) -> Vec<(String, FileType)> {
    (0..count)
        .map(|i| match FILE_TYPES.get(i) {
            Some(ft) => (ft.ftype.to_string(), *ft),
            None => {
                let extra = FileType {
                    ftype: "extra.img",
                    suffix: ".img",
                    typical_size: 1_000_000,
                };
                (format!("extra{}.img", i - FILE_TYPES.len() + 1), extra)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_unique_and_ubuntu_like() {
        let first = release(12);
        assert_eq!(
            (first.version.as_str(), first.name.as_str()),
            ("16.04", "merry")
        );
        let names: std::collections::HashSet<String> = (0..300).map(|n| release(n).name).collect();
        assert_eq!(names.len(), 300);
        let kinds: Vec<String> = file_types(10).into_iter().map(|(name, _)| name).collect();
        assert_eq!(kinds[0], "disk1.img");
        assert_eq!(kinds[9], "extra2.img");
    }
}
