//! Checksum-file directories read as a stream: the images half the world publishes as a
//! directory with a `SHA256SUMS` (Ubuntu), `SHA512SUMS` (Debian), `*-CHECKSUM` (Fedora) or
//! `MD5SUMS` file instead of simplestreams metadata. No I/O: the caller (the mirror crate's
//! `SumsSource`) lists directories, fetches files, checks signatures and hands the bytes here.
//!
//! - [`ChecksumFile::parse`]: GNU and BSD checksum lines, Fedora's size comments; a line that
//!   does not parse, a name that leaves the directory, an HTML page served instead: refused,
//!   naming the file and line.
//! - [`parse_listing`]: the links of an HTML directory listing (nginx, Apache, Python).
//! - [`Layout`]: file name (and directory) → product, version, item and the fields of
//!   Canonical's streams (`debian`, `ubuntu`, `fedora`, `plain`, or a regex with named groups).
//! - [`parse_sidecar`] / [`merge_sidecar`]: `<image>.properties` / `<image>.json` fields.
//! - [`DirSums`] merges a directory's checksum files; [`StreamBuilder`] makes the `products:1.0`
//!   document, and [`index_of_products`] the index naming it.
//!
//! ```
//! use simplestreams_core::sums::{ChecksumFile, DirContext, DirSums, Layout, StreamBuilder, SumsImage};
//!
//! let text = "SHA256 (Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2) = \
//!     5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\n";
//! let sums = ChecksumFile::parse(text.as_bytes(), "Fedora-Cloud-41-1.4-x86_64-CHECKSUM", "CHECKSUM", 1)?;
//! let mut dir = DirSums::default();
//! dir.add(&sums)?;
//! let layout = Layout::detect(dir.files.keys().map(String::as_str));
//! let here = DirContext { rel: "", name: "images", date: None };
//! let mut stream = StreamBuilder::new("example:fedora:sums", layout.name());
//! for (name, listed) in &dir.files {
//!     let place = layout.classify(&here, name).expect("a Fedora image");
//!     stream.add(SumsImage {
//!         path: name.clone(),
//!         place,
//!         size: Some(571342848),
//!         digests: listed.digests.iter().map(|(k, d)| (*k, d.digest.clone())).collect(),
//!         extra: Default::default(),
//!     })?;
//! }
//! let doc = stream.products(None);
//! let product = &doc.products["org.fedoraproject.cloud:cloud-base-generic:41:amd64"];
//! assert_eq!(product.fields["os"], "fedora");
//! assert!(product.versions["1.4"].items.contains_key("disk1.img"));
//! # Ok::<(), simplestreams_core::sums::SumsError>(())
//! ```

mod build;
mod distro;
mod error;
mod layout;
mod listing;
mod parse;
mod sidecar;

pub use build::{
    default_content_id, index_of_products, products_path, rfc2822, yyyymmdd, DigestAt, DirSums,
    Listed, StreamBuilder, SumsImage, SUMS_DATATYPE, SUMS_STICKY,
};
pub use distro::{
    debian_codename, ftype_for_extension, normalise_arch, split_extension, ubuntu_release,
    UbuntuRelease, ARCH_WORDS, DEBIAN_RELEASES, UBUNTU_RELEASES,
};
pub use error::{Conflict, Duplicate, SumsError};
pub use layout::{Classified, CustomLayout, DirContext, Layout};
pub use listing::{parse_listing, Listing};
pub use parse::{
    is_checksum_file_name, is_signature_name, kind_from_file_name, looks_like_html,
    payload_first_line, ChecksumFile, SumsEntry, SIGNATURE_SUFFIXES, STANDARD_SUMS,
};
pub use sidecar::{
    merge_sidecar, parse_json_sidecar, parse_properties, parse_sidecar, sidecar_of, RESERVED_KEYS,
    SIDECAR_SUFFIXES,
};
