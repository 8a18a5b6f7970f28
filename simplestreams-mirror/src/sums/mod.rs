//! A directory of images with a checksum file, read as a stream.
//!
//! [`SumsSource`] is a [`Source`]: it serves a synthesized `streams/v1/index.json` and
//! `streams/v1/<content_id>.json` (plain JSON, made by `simplestreams_core::sums` from the
//! checksum files, the layout and the sizes found) and passes every other path through to the
//! underlying source, so that queries, filters, `--max`, mirrors and Glance syncs work on Debian's,
//! Ubuntu's and Fedora's image directories, and on any in-house one, unchanged.
//!
//! What it reads (see [`SumsSource::open`]):
//! - a location naming a checksum file (`…/SHA256SUMS`): that file, in its directory;
//! - a directory holding checksum files (`SHA512SUMS`, `SHA256SUMS`, `MD5SUMS`,
//!   `*-CHECKSUM`, or the name given): all of them, merged;
//! - a parent of dated directories (Debian's `<YYYYMMDD-NNNN>/`, Ubuntu's
//!   `release-<date>/`): each subdirectory the layout reads (the newest `max_dirs`), whose
//!   images become versions of the same products.
//!
//! Checksum files go through the signature policy as `.sjson` files do: when it checks
//! signatures (a keyring was given), each must be clear-signed or have a detached
//! `.gpg`/`.sign`/`.asc` signature beside it, made by a key of the keyring. Sizes come from
//! the listing (a local directory, a store) or a `HEAD` per file (HTTP, in parallel, only for
//! the items that pass the [`SizeScope`]); an item whose file is missing keeps no size, and the
//! engine refuses it. Files present but not listed are ignored (logged at info level).
//!
//! Errors of the checksum files, layouts and sidecars are [`SumsError`]s, carried as
//! [`Error::Service`] (downcast the box to match on them).

mod list;
mod read;
mod scan;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use simplestreams_core::sums::{is_checksum_file_name, Layout, SumsError};
use simplestreams_core::{FilterSet, Index, Products};

use crate::error::{Error, Result};
use crate::metadata::{MetadataLimits, SignaturePolicy};
use crate::source::{local_dir, open_source, Source};
use crate::store::{byte_stream, GetOptions, GetResult, ObjectMeta, Validators};

pub use list::{DirEntries, DirLister, FileStat, HttpLister, LocalLister, StoreLister};

/// The entry of every stream a [`SumsSource`] serves.
pub const SUMS_INDEX_PATH: &str = "streams/v1/index.json";

/// A [`SumsError`] as this crate's error.
pub(crate) fn sums_err(e: SumsError) -> Error {
    Error::Service(Box::new(e))
}

/// Which items need their size found (a `HEAD` each over HTTP): those a query or sync will
/// look at. Items outside it are in the stream without a size.
#[derive(Debug, Clone, Default)]
pub struct SizeScope {
    /// Items passing these filters.
    pub filters: FilterSet,
    /// At most this many versions of each product, newest first (`--max`).
    pub max: Option<usize>,
}

impl SizeScope {
    /// Every item.
    pub fn all() -> SizeScope {
        SizeScope::default()
    }
}

/// How to read a checksum-file directory.
#[derive(Debug, Clone)]
pub struct SumsOptions {
    /// The layout; `None` to detect it from the subdirectories' or the files' names.
    pub layout: Option<Layout>,
    /// The checksum file's name when it is not a standard one (`--sums`).
    pub sums_name: Option<String>,
    /// Of a parent of dated directories, read only the newest N.
    pub max_dirs: Option<usize>,
    /// The content id; default `<host>:<layout>:sums`.
    pub content_id: Option<String>,
    /// Signatures: off, or (any other mode) every checksum file signed by a key of its keyring.
    pub signatures: SignaturePolicy,
    /// Which items need a size.
    pub scope: SizeScope,
    /// Requests in flight at once (listings, `HEAD`s, sidecars).
    pub jobs: usize,
    /// The largest checksum file read.
    pub limits: MetadataLimits,
}

impl Default for SumsOptions {
    fn default() -> Self {
        SumsOptions {
            layout: None,
            sums_name: None,
            max_dirs: None,
            content_id: None,
            signatures: SignaturePolicy::off(),
            scope: SizeScope::all(),
            jobs: 16,
            limits: MetadataLimits::default(),
        }
    }
}

/// Where a checksum-file directory is, as a location names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumsLocation {
    /// The directory (URL or path) every item path is relative to.
    pub root: String,
    /// The checksum file the location named, if it named one.
    pub sums_file: Option<String>,
    /// The host (`cloud.debian.org`), or `local` for a directory: the start of the default
    /// content id.
    pub host: String,
    /// The directory's own name (its last component).
    pub name: String,
}

impl SumsLocation {
    /// Reads `location`: the URL or path of a checksum file (a standard name, or `sums_name`),
    /// or of a directory.
    pub fn parse(location: &str, sums_name: Option<&str>) -> SumsLocation {
        let trimmed = location.trim_end_matches('/');
        let (dir, last) = match trimmed.rsplit_once('/') {
            Some((d, l)) => (d, l),
            None => ("", trimmed),
        };
        let names_file = !location.ends_with('/')
            && (is_checksum_file_name(last) || sums_name.is_some_and(|n| n == last));
        let (root, sums_file) = if names_file {
            let root = if dir.is_empty() {
                ".".to_string()
            } else {
                format!("{dir}/")
            };
            (root, Some(last.to_string()))
        } else {
            (location.to_string(), None)
        };
        let host = url::Url::parse(&root)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "local".to_string());
        let name = root
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        SumsLocation {
            root,
            sums_file,
            host,
            name,
        }
    }
}

/// Whether `location` names a checksum file by its standard name (`…/SHA256SUMS`,
/// `…/SHA512SUMS`, `…/MD5SUMS`, `…/*-CHECKSUM`): then it is read as a checksum-file
/// directory without being asked to.
pub fn is_sums_location(location: &str) -> bool {
    !location.ends_with('/')
        && location
            .rsplit('/')
            .next()
            .is_some_and(is_checksum_file_name)
}

/// A checksum-file directory served as a stream (see the module documentation).
#[derive(Debug)]
pub struct SumsSource {
    location: SumsLocation,
    files: Arc<dyn Source>,
    layout: Layout,
    products: Products,
    index: Index,
    products_path: String,
    index_json: Bytes,
    products_json: Bytes,
    checksum_files: Vec<String>,
}

impl SumsSource {
    /// Reads the checksum files at `location` (listing with `lister`, fetching through
    /// `files`, which may include `--mirror` fallbacks) and makes the stream.
    pub async fn open(
        location: &SumsLocation,
        files: Arc<dyn Source>,
        lister: Arc<dyn DirLister>,
        options: &SumsOptions,
    ) -> Result<SumsSource> {
        let scanned = scan::scan(location, &files, lister.as_ref(), options).await?;
        let products = scanned.products;
        let content_id = products.content_id().to_string();
        let products_path = simplestreams_core::sums::products_path(&content_id);
        let index = simplestreams_core::sums::index_of_products(&products, &products_path);
        tracing::info!(
            "{}: {} image(s) in {} product(s) from {} ({} layout), as {content_id}",
            location.root,
            products.item_count(),
            products.products.len(),
            scanned.checksum_files.join(", "),
            scanned.layout.name()
        );
        Ok(SumsSource {
            location: location.clone(),
            files,
            layout: scanned.layout,
            index_json: Bytes::from(index.to_vec_pretty()),
            products_json: Bytes::from(products.to_vec_pretty()),
            products,
            index,
            products_path,
            checksum_files: scanned.checksum_files,
        })
    }

    /// [`SumsSource::open`] of a local directory or an HTTP(S) URL, with no fallbacks.
    pub async fn open_location(
        location: &str,
        options: &SumsOptions,
        http: &http_retry::HttpOptions,
    ) -> Result<SumsSource> {
        let loc = SumsLocation::parse(location, options.sums_name.as_deref());
        let files = open_source(&loc.root, http)?;
        let lister: Arc<dyn DirLister> = match local_dir(&loc.root)? {
            Some(dir) => Arc::new(LocalLister::new(dir)),
            None => Arc::new(HttpLister::new(&loc.root, http)?),
        };
        SumsSource::open(&loc, files, lister, options).await
    }

    /// The entry of the stream: [`SUMS_INDEX_PATH`].
    pub fn entry(&self) -> &'static str {
        SUMS_INDEX_PATH
    }

    /// Where it was read.
    pub fn location(&self) -> &SumsLocation {
        &self.location
    }

    /// The layout used (given or detected).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The synthesized products document.
    pub fn products(&self) -> &Products {
        &self.products
    }

    /// The synthesized index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The path of the products document (`streams/v1/<content_id>.json`).
    pub fn products_path(&self) -> &str {
        &self.products_path
    }

    /// The checksum files read (URLs or paths).
    pub fn checksum_files(&self) -> &[String] {
        &self.checksum_files
    }

    fn virtual_file(&self, path: &str) -> Option<&Bytes> {
        if path == SUMS_INDEX_PATH {
            Some(&self.index_json)
        } else if path == self.products_path {
            Some(&self.products_json)
        } else {
            None
        }
    }
}

/// A validator for synthesized bytes: the same document gives the same tag.
fn etag_of(bytes: &[u8]) -> String {
    // FNV-1a, 64 bits: enough to tell one synthesized document from the next.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("\"sums-{h:016x}-{:x}\"", bytes.len())
}

impl fmt::Display for SumsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (checksum files, {} layout)",
            self.location.root,
            self.layout.name()
        )
    }
}

#[async_trait]
impl Source for SumsSource {
    async fn get(&self, path: &str, options: GetOptions) -> Result<GetResult> {
        let Some(bytes) = self.virtual_file(path) else {
            if path.starts_with("streams/v1/") {
                // The stream is ours alone: nothing else is read below streams/v1/.
                return Err(Error::NotFound {
                    location: self.url(path),
                });
            }
            return self.files.get(path, options).await;
        };
        let etag = etag_of(bytes);
        if options
            .if_not_modified
            .as_ref()
            .is_some_and(|v| v.etag.as_deref() == Some(etag.as_str()))
        {
            return Ok(GetResult::NotModified);
        }
        let offset = usize::try_from(options.offset.unwrap_or(0))
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        Ok(GetResult::Found {
            meta: ObjectMeta {
                path: path.to_string(),
                size: Some(bytes.len() as u64),
                validators: Validators {
                    etag: Some(etag),
                    last_modified: None,
                },
                content_encoding: None,
            },
            body: byte_stream(bytes.slice(offset..)),
        })
    }

    fn url(&self, path: &str) -> String {
        self.files.url(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_name_a_checksum_file_or_a_directory() {
        let l = SumsLocation::parse(
            "https://cloud-images.ubuntu.com/releases/noble/release-20240423/SHA256SUMS",
            None,
        );
        assert_eq!(
            l.root,
            "https://cloud-images.ubuntu.com/releases/noble/release-20240423/"
        );
        assert_eq!(l.sums_file.as_deref(), Some("SHA256SUMS"));
        assert_eq!(
            (l.host.as_str(), l.name.as_str()),
            ("cloud-images.ubuntu.com", "release-20240423")
        );
        let l = SumsLocation::parse("/srv/debian/bookworm/", None);
        assert_eq!(
            (
                l.root.as_str(),
                l.sums_file,
                l.host.as_str(),
                l.name.as_str()
            ),
            ("/srv/debian/bookworm/", None, "local", "bookworm")
        );
        let l = SumsLocation::parse("/srv/in-house/sums.txt", Some("sums.txt"));
        assert_eq!(
            (l.root.as_str(), l.sums_file.as_deref()),
            ("/srv/in-house/", Some("sums.txt"))
        );
        assert!(is_sums_location(
            "http://h/x/Fedora-Cloud-41-1.4-x86_64-CHECKSUM"
        ));
        assert!(is_sums_location("d/MD5SUMS"));
        assert!(!is_sums_location("http://h/streams/v1/index.json"));
    }
}
