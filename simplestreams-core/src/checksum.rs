//! Streaming verification of an item's size and checksums (docs/format.md, "Checksums").
//!
//! Bytes are fed once, as they arrive; every checksum the metadata gives is computed in the same
//! pass and checked at the end, so there is no second read of a file.

use md5::Md5;
use sha2::{Digest, Sha256, Sha512};

use crate::error::{ChecksumKind, Error, Result};
use crate::products::{parse_size, Item};

/// What the metadata says an item's content is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// Exact size in bytes.
    pub size: Option<u64>,
    /// Lower-case hex digests by kind.
    pub md5: Option<String>,
    /// SHA-256 hex digest.
    pub sha256: Option<String>,
    /// SHA-512 hex digest.
    pub sha512: Option<String>,
}

impl Expected {
    /// Reads `size`, `md5`, `sha256` and `sha512` from item fields (flattened or not).
    pub fn from_item(item: &Item) -> Expected {
        let get = |k: &str| {
            item.get_str(k)
                .filter(|s| !s.is_empty())
                .map(|s| s.to_ascii_lowercase())
        };
        Expected {
            size: item.fields.get("size").and_then(|v| parse_size(v).ok()),
            md5: get("md5"),
            sha256: get("sha256"),
            sha512: get("sha512"),
        }
    }

    /// The expected digest of one kind.
    pub fn digest(&self, kind: ChecksumKind) -> Option<&str> {
        match kind {
            ChecksumKind::Md5 => self.md5.as_deref(),
            ChecksumKind::Sha256 => self.sha256.as_deref(),
            ChecksumKind::Sha512 => self.sha512.as_deref(),
        }
    }

    /// The kinds given, weakest first.
    pub fn kinds(&self) -> Vec<ChecksumKind> {
        ChecksumKind::ALL
            .into_iter()
            .filter(|k| self.digest(*k).is_some())
            .collect()
    }

    /// The size and the digest of `kind` only: one part of a verification split by kind, so
    /// that each kind can be hashed on a thread of its own.
    pub fn only(&self, kind: ChecksumKind) -> Expected {
        let mut part = Expected {
            size: self.size,
            ..Expected::default()
        };
        let digest = self.digest(kind).map(str::to_string);
        match kind {
            ChecksumKind::Md5 => part.md5 = digest,
            ChecksumKind::Sha256 => part.sha256 = digest,
            ChecksumKind::Sha512 => part.sha512 = digest,
        }
        part
    }

    /// Refuses an item that could not be verified: no size, or no checksum at all.
    pub fn require_verifiable(&self, item: &str) -> Result<()> {
        if self.size.is_none() {
            return Err(Error::Unverifiable {
                item: item.into(),
                message: "no size".into(),
            });
        }
        if self.kinds().is_empty() {
            return Err(Error::Unverifiable {
                item: item.into(),
                message: "no checksum (md5, sha256 or sha512)".into(),
            });
        }
        Ok(())
    }
}

/// Which of an item's checksums a verification covers (the size always is). docs/format.md, "Checksums".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChecksumPolicy {
    /// One: SHA-256 when given (the fastest, with SHA-NI), else SHA-512, else MD5 (which alone
    /// proves little: callers warn). Checking MD5 as well adds no assurance once SHA-256
    /// matches, and costs more time than the SHA-256 itself.
    #[default]
    Strongest,
    /// Every checksum given (`--all-checksums`).
    All,
}

impl Expected {
    /// The checks `policy` asks for.
    pub fn checks(&self, policy: ChecksumPolicy) -> Expected {
        match policy {
            ChecksumPolicy::All => self.clone(),
            ChecksumPolicy::Strongest => {
                let kind = [
                    ChecksumKind::Sha256,
                    ChecksumKind::Sha512,
                    ChecksumKind::Md5,
                ]
                .into_iter()
                .find(|k| self.digest(*k).is_some());
                match kind {
                    Some(k) => self.only(k),
                    None => Expected {
                        size: self.size,
                        ..Expected::default()
                    },
                }
            }
        }
    }

    /// Whether MD5 is the only checksum given.
    pub fn md5_only(&self) -> bool {
        self.md5.is_some() && self.sha256.is_none() && self.sha512.is_none()
    }
}

/// Digests computed over a stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digests {
    /// Bytes seen.
    pub size: u64,
    /// MD5, if computed.
    pub md5: Option<String>,
    /// SHA-256, if computed.
    pub sha256: Option<String>,
    /// SHA-512, if computed.
    pub sha512: Option<String>,
}

impl Digests {
    /// A digest of one kind, if computed.
    pub fn get(&self, kind: ChecksumKind) -> Option<&str> {
        match kind {
            ChecksumKind::Md5 => self.md5.as_deref(),
            ChecksumKind::Sha256 => self.sha256.as_deref(),
            ChecksumKind::Sha512 => self.sha512.as_deref(),
        }
    }
}

/// Hashes bytes as they stream by and checks them against [`Expected`].
///
/// ```
/// use simplestreams_core::{Expected, StreamVerifier};
/// let expected = Expected {
///     size: Some(5),
///     sha256: Some("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".into()),
///     ..Expected::default()
/// };
/// let mut v = StreamVerifier::new("hello.txt", expected);
/// v.update(b"hel").unwrap();
/// v.update(b"lo").unwrap();
/// v.finish().unwrap();
/// ```
#[derive(Clone)]
pub struct StreamVerifier {
    item: String,
    expected: Expected,
    seen: u64,
    md5: Option<Md5>,
    sha256: Option<Sha256>,
    sha512: Option<Sha512>,
}

impl std::fmt::Debug for StreamVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamVerifier")
            .field("item", &self.item)
            .field("expected", &self.expected)
            .field("seen", &self.seen)
            .finish()
    }
}

impl StreamVerifier {
    /// Verifies `expected`, hashing only what it names. `item` names the content in errors.
    pub fn new(item: impl Into<String>, expected: Expected) -> StreamVerifier {
        let md5 = expected.md5.as_ref().map(|_| Md5::new());
        let sha256 = expected.sha256.as_ref().map(|_| Sha256::new());
        let sha512 = expected.sha512.as_ref().map(|_| Sha512::new());
        StreamVerifier {
            item: item.into(),
            expected,
            seen: 0,
            md5,
            sha256,
            sha512,
        }
    }

    /// Also computes `kind` even when the metadata does not give it (Glance wants an md5).
    pub fn also_compute(mut self, kind: ChecksumKind) -> StreamVerifier {
        match kind {
            ChecksumKind::Md5 => self.md5.get_or_insert_with(Md5::new),
            ChecksumKind::Sha256 => {
                self.sha256.get_or_insert_with(Sha256::new);
                return self;
            }
            ChecksumKind::Sha512 => {
                self.sha512.get_or_insert_with(Sha512::new);
                return self;
            }
        };
        self
    }

    /// Bytes fed so far.
    pub fn bytes_seen(&self) -> u64 {
        self.seen
    }

    /// What is being checked.
    pub fn expected(&self) -> &Expected {
        &self.expected
    }

    /// Feeds bytes. Fails as soon as more bytes arrive than the expected size.
    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        self.seen += data.len() as u64;
        if let Some(size) = self.expected.size {
            if self.seen > size {
                return Err(Error::Size {
                    item: self.item.clone(),
                    expected: size,
                    found: self.seen,
                });
            }
        }
        if let Some(h) = &mut self.md5 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha512 {
            h.update(data);
        }
        Ok(())
    }

    /// Ends the stream: checks the size, then every expected checksum (strongest first), and
    /// returns the digests computed.
    pub fn finish(self) -> Result<Digests> {
        let digests = Digests {
            size: self.seen,
            md5: self.md5.map(|h| hex::encode(h.finalize())),
            sha256: self.sha256.map(|h| hex::encode(h.finalize())),
            sha512: self.sha512.map(|h| hex::encode(h.finalize())),
        };
        if let Some(size) = self.expected.size {
            if digests.size != size {
                return Err(Error::Size {
                    item: self.item,
                    expected: size,
                    found: digests.size,
                });
            }
        }
        for kind in ChecksumKind::ALL.into_iter().rev() {
            if let Some(expected) = self.expected.digest(kind) {
                let found = digests.get(kind).unwrap_or_default();
                if found != expected {
                    return Err(Error::Checksum {
                        item: self.item,
                        kind,
                        expected: expected.to_string(),
                        found: found.to_string(),
                    });
                }
            }
        }
        Ok(digests)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_policy_checks_the_size_and_one_checksum() {
        let all = Expected {
            size: Some(3),
            md5: Some("m".into()),
            sha256: Some("s2".into()),
            sha512: Some("s5".into()),
        };
        let only = |md5: bool, sha256: bool, sha512: bool| Expected {
            size: Some(3),
            md5: md5.then(|| "m".into()),
            sha256: sha256.then(|| "s2".into()),
            sha512: sha512.then(|| "s5".into()),
        };
        assert_eq!(
            all.checks(ChecksumPolicy::Strongest),
            only(false, true, false)
        );
        assert_eq!(all.checks(ChecksumPolicy::All), all);
        let no_sha256 = only(true, false, true);
        assert_eq!(
            no_sha256.checks(ChecksumPolicy::Strongest),
            only(false, false, true)
        );
        let md5 = only(true, false, false);
        assert_eq!(md5.checks(ChecksumPolicy::Strongest), md5);
        assert!(md5.md5_only() && !all.md5_only());
        let none = only(false, false, false);
        assert_eq!(none.checks(ChecksumPolicy::Strongest), none);
    }

    use super::*;

    const HELLO_MD5: &str = "5d41402abc4b2a76b9719d911017c592";
    const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    const HELLO_SHA512: &str = "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043";

    fn all() -> Expected {
        Expected {
            size: Some(5),
            md5: Some(HELLO_MD5.into()),
            sha256: Some(HELLO_SHA256.into()),
            sha512: Some(HELLO_SHA512.into()),
        }
    }

    fn run(expected: Expected, data: &[u8]) -> Result<Digests> {
        let mut v = StreamVerifier::new("i", expected);
        for chunk in data.chunks(2) {
            v.update(chunk)?;
        }
        v.finish()
    }

    #[test]
    fn a_part_by_kind_keeps_the_size_and_that_digest_only() {
        let md5 = all().only(ChecksumKind::Md5);
        assert_eq!(md5.kinds(), vec![ChecksumKind::Md5]);
        assert_eq!((md5.size, md5.md5.as_deref()), (Some(5), Some(HELLO_MD5)));
        let sha512 = all().only(ChecksumKind::Sha512);
        assert_eq!(sha512.kinds(), vec![ChecksumKind::Sha512]);
        assert!(matches!(
            run(sha512, b"jello"),
            Err(Error::Checksum {
                kind: ChecksumKind::Sha512,
                ..
            })
        ));
        let none = Expected { md5: None, ..all() }.only(ChecksumKind::Md5);
        assert!(none.kinds().is_empty(), "a kind not given stays absent");
    }

    #[test]
    fn good_content_passes_every_checksum() {
        let d = run(all(), b"hello").unwrap();
        assert_eq!(d.sha512.as_deref(), Some(HELLO_SHA512));
    }

    #[test]
    fn every_failure_mode_is_caught() {
        // size - 1 (truncated)
        assert!(matches!(
            run(all(), b"hell"),
            Err(Error::Size { found: 4, .. })
        ));
        // appended bytes: fails as soon as they arrive
        assert!(matches!(
            run(all(), b"hello!"),
            Err(Error::Size { found: 6, .. })
        ));
        // same size, different content: the strongest checksum is named
        assert!(matches!(
            run(all(), b"jello"),
            Err(Error::Checksum {
                kind: ChecksumKind::Sha512,
                ..
            })
        ));
        // a single wrong checksum among good ones is found and named
        let mut e = all();
        e.md5 = Some("0".repeat(32));
        assert!(matches!(
            run(e, b"hello"),
            Err(Error::Checksum {
                kind: ChecksumKind::Md5,
                ..
            })
        ));
        let mut e = all();
        e.sha256 = Some("0".repeat(64));
        assert!(matches!(
            run(e, b"hello"),
            Err(Error::Checksum {
                kind: ChecksumKind::Sha256,
                ..
            })
        ));
    }

    #[test]
    fn unverifiable_items_are_refused() {
        let no_sums = Expected {
            size: Some(5),
            ..Expected::default()
        };
        assert!(no_sums.require_verifiable("i").is_err());
        let no_size = Expected {
            sha256: Some(HELLO_SHA256.into()),
            ..Expected::default()
        };
        assert!(no_size.require_verifiable("i").is_err());
        assert!(all().require_verifiable("i").is_ok());
    }

    #[test]
    fn extra_digest_on_request() {
        let e = Expected {
            size: Some(5),
            sha256: Some(HELLO_SHA256.into()),
            ..Expected::default()
        };
        let mut v = StreamVerifier::new("i", e).also_compute(ChecksumKind::Md5);
        v.update(b"hello").unwrap();
        assert_eq!(v.finish().unwrap().md5.as_deref(), Some(HELLO_MD5));
    }
}
