//! # simplestreams-publish
//!
//! Publishing a stream of your own images: build it, keep it up to date, sign it and check
//! it, in any [`Store`](simplestreams_mirror::Store) (a directory, Swift, memory). This is the
//! logic behind `sstream add`, `remove`, `prune`, `promote` and `validate`.
//!
//! - [`Repo`] opens a repository under the store's lock (the sync engine's, so that a mirror
//!   sync and a publish never interleave), refusing corrupt metadata and signatures by
//!   another key; [`Repo::add`] copies image files in (hashed while they stream, their type
//!   told from their content), [`Repo::remove`], [`Repo::prune`] and [`Repo::promote`] edit
//!   versions, and [`Repo::commit`] publishes the products files, then the index (signed
//!   with `.sjson`, `.json.gpg` and the public key when a key is given), then deletes the
//!   files nothing names any more. A failure leaves the previous repository intact.
//! - [`NewImage`] is one image and its place; [`image`] documents the defaults.
//!   [`read_manifest`] reads many from YAML ([`manifest`] has the format), and
//!   [`read_json2streams`] from the reference's flat item list ([`json2streams`] says how).
//! - [`validate()`] checks a stream as its consumers rely on it and lists every problem with
//!   its file and field.
//! - Keys: `simplestreams_core::openpgp::keygen::generate` makes a signing key.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use simplestreams_mirror::InMemory;
//! use simplestreams_publish::{validate_store, NewImage, Repo};
//!
//! // A qcow2 image (its magic bytes are enough to tell its type).
//! let dir = tempfile::tempdir()?;
//! let file = dir.path().join("noble-amd64.img");
//! std::fs::write(&file, b"QFI\xfb\x00\x00\x00\x03 an image")?;
//!
//! let store = InMemory::new();
//! let mut repo = Repo::open(Arc::new(store.clone()), None).await?;
//! let image = NewImage::file(&file)
//!     .field("os", "ubuntu")
//!     .field("release", "noble")
//!     .field("arch", "amd64");
//! let added = repo.add(vec![image]).await?;
//! assert_eq!(added.images[0].product, "ubuntu:noble:amd64");
//! assert_eq!(added.images[0].item, "disk1.img"); // the ftype of a qcow2 image
//! repo.commit().await?;
//!
//! let paths = store.paths();
//! assert!(paths.contains(&"streams/v1/index.json".to_string()));
//! assert!(paths.contains(&"streams/v1/images:released:download.json".to_string()));
//! assert!(paths.iter().any(|p| p.starts_with("images/") && p.ends_with(".qcow2")));
//! let report = validate_store(Arc::new(store), None).await?;
//! assert!(report.is_ok(), "{:?}", report.problems);
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```
#![deny(missing_docs)]

mod add;
mod edit;
mod error;
mod files;
pub mod image;
pub mod json2streams;
pub mod juju;
pub mod layout;
pub mod lxd;
pub mod maas;
pub mod manifest;
mod repo;
pub mod time;
mod validate;

pub use add::{AddOutcome, AddReport, AddedImage};
pub use edit::PromoteReport;
pub use error::{Error, Result};
pub use image::{default_content_id, ImageSource, NewImage, Placement};
pub use json2streams::{parse_json2streams, read_json2streams, spawn_json2streams, ImageBatches};
pub use lxd::{LxdAddReport, LxdFingerprint, LxdImage, LxdRoot};
pub use maas::{MaasImage, MaasKind};
pub use manifest::{
    parse_manifest, parse_manifest_images, read_manifest, read_manifest_images, ManifestImage,
};
pub use repo::{lock_path, CommitReport, Repo, RepoOptions, VersionRef, INDEX_PATH};
pub use validate::{validate, validate_store, Problem, Report};
