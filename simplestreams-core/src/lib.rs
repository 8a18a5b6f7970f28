//! # simplestreams-core
//!
//! The simplestreams data model and the rules every reader and writer of it must follow: typed
//! `index:1.0`, `products:1.0` and `mirrors:1.0` documents that round-trip losslessly, `_aliases`
//! expansion, inheritance (flattening), filters, version ordering and the per-product sync plan,
//! streaming checksum verification, path safety, and OpenPGP signatures. It does no I/O: callers
//! hand it bytes.
//!
//! The main types:
//! - [`Products`] (product > [`Version`] > [`Item`]) and [`Index`], parsed with `from_slice`,
//!   whose errors name the file and the JSON path of the bad field;
//! - [`FilterSet`] and [`select`], which pick items as `sstream-query` does;
//! - [`plan_versions`], the add/remove plan of a sync with `--max` and `--keep`;
//! - [`StreamVerifier`], fed bytes once, checking size and every checksum;
//! - [`check_safe_path`], refusing paths that would escape a mirror.
//!
//! ```
//! use simplestreams_core::{select, FilterSet, Products};
//!
//! let doc = br#"{"format": "products:1.0", "content_id": "com.example:download",
//!   "products": {"com.example:demo": {"arch": "amd64", "versions": {
//!     "20240101": {"items": {"disk1.img": {"ftype": "disk1.img", "path": "demo/disk1.img",
//!       "size": 5, "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}}}}}}}"#;
//! let products = Products::from_slice(doc, "download.json")?;
//! let filters = FilterSet::parse(&["arch=amd64", "ftype~disk"])?;
//! let chosen = select(&products, &filters, Some(1));
//! assert_eq!(chosen.len(), 1);
//! assert_eq!(chosen[0].flat["path"], "demo/disk1.img");
//! assert_eq!(chosen[0].flat["size"], "5"); // numbers read as strings, like the reference
//! # Ok::<(), simplestreams_core::Error>(())
//! ```
#![deny(missing_docs)]

mod checksum;
mod condense;
mod error;
pub mod filetype;
mod filter;
mod flatten;
mod index;
mod kept;
mod mirrors;
pub mod openpgp;
mod plan;
mod pretty;
mod products;
mod python;
mod safe_path;
mod select;
mod stream_files;
pub mod sums;
mod tree;
mod view;

pub use checksum::{ChecksumPolicy, Digests, Expected, StreamVerifier};
pub use condense::{condense, CondenseTop, DOWNLOAD_STICKY, IMAGE_IDS_STICKY};
pub use error::{ChecksumKind, Error, Result};
pub use filter::{Filter, FilterOp, FilterSet};
pub use flatten::{flatten, for_each_flat_item, FlatItem, ItemId};
pub use index::{Index, IndexEntry, INDEX_FORMAT};
pub use kept::{is_kept, lossy_text, py_chars, PyChar, KEPT_TEXT_PREFIX, MARK};
pub use mirrors::{MirrorLocation, Mirrors, MIRRORS_FORMAT};
pub use openpgp::{
    clearsign, is_clearsigned, sign_detached, strip_clearsigned, verify_clearsigned,
    verify_detached, ClearSigned, Keyring, SignerInfo, SigningKey, Verified,
};
pub use plan::{plan_versions, sorted_versions, version_cmp, PlanLimits, VersionPlan};
pub use pretty::to_vec_pretty;
pub use products::{parse_size, Item, Product, Products, Version, PRODUCTS_FORMAT};
pub use python::write_python_json_string;
pub use safe_path::check_safe_path;
pub use select::{select, select_ids, Selected};
pub use stream_files::{
    detached_path, index_for, index_of, json_path, sign_document, sjson_path, DocumentTexts,
    SignedFiles,
};
pub use tree::{python_float_repr, scalar_string, Map};
pub use view::ProductsView;

/// A parsed simplestreams document of any format.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    /// `index:1.0`
    Index(Index),
    /// `products:1.0`
    Products(Products),
    /// `mirrors:1.0`
    Mirrors(Mirrors),
}

impl Document {
    /// Parses bytes, dispatching on the `format` field. `file` names the source in errors.
    pub fn from_slice(bytes: &[u8], file: &str) -> Result<Document> {
        let ctx = tree::Ctx { file };
        let map = ctx.parse_object(bytes)?;
        match ctx.opt_str(&map, "format", "")? {
            Some(INDEX_FORMAT) => Ok(Document::Index(Index::from_map(map, file)?)),
            Some(PRODUCTS_FORMAT) => Ok(Document::Products(Products::from_map(map, file)?)),
            Some(MIRRORS_FORMAT) => Ok(Document::Mirrors(Mirrors::from_map(map, file)?)),
            Some(other) => Err(ctx.field_err("format", format!("unknown format {other:?}"))),
            None => Err(ctx.field_err("format", "missing")),
        }
    }
}
