//! Benchmark tooling for simplestreams-rs.
//!
//! [`generate`] builds a large stream shaped like the Ubuntu cloud images one (products with
//! `arch`/`os`/`release`/`version`…, versions with `label`/`pubname`, items with
//! `ftype`/`path`/`size`/`md5`/`sha256`), deterministic for a seed; [`write_stream`] writes it as
//! a mirror (`streams/v1/index.json`, the products file, optionally the item files and
//! clear-signed `.sjson` copies). The `gen-stream` binary is the command-line front end.
//!
//! ```
//! use simplestreams_bench::{generate, GenOptions};
//!
//! let opts = GenOptions { products: 16, versions: 2, items: 3, ..GenOptions::default() };
//! let stream = generate(&opts, |_, _| Ok::<(), std::io::Error>(()))?;
//! assert_eq!(stream.products.products.len(), 16);
//! assert_eq!(stream.products.item_count(), 16 * 2 * 3);
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(missing_docs)]

mod generate;
mod rng;
mod shape;
mod write;

use std::path::PathBuf;

pub use generate::{file_content, generate, GenOptions, Stream, CONTENT_ID};
pub use write::{write_stream, Written};

/// What can go wrong writing a stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Reading the signing key or signing.
    #[error(transparent)]
    Core(#[from] simplestreams_core::Error),
}
