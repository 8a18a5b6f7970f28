//! Building the documents: an `index:1.0` and one `products:1.0` shaped like the Ubuntu cloud
//! images stream, and (optionally) the item files with their true size and checksums.

use chrono::{Duration, NaiveDate};
use md5::{Digest as _, Md5};
use serde_json::{json, Value};
use sha2::Sha256;
use simplestreams_core::{Index, IndexEntry, Item, Product, Products, Version};

use crate::rng::SplitMix;
use crate::shape::{file_types, release, FileType, ARCHES};

/// The content id of the generated products file.
pub const CONTENT_ID: &str = "com.example.cloud:released:download";

/// The `updated` stamp of every generated document: fixed, so output depends on the seed only.
const UPDATED: &str = "Fri, 04 Nov 2016 03:33:58 +0000";

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenOptions {
    /// Number of products (one per release and architecture).
    pub products: usize,
    /// Versions per product.
    pub versions: usize,
    /// Items per version.
    pub items: usize,
    /// Seed: the same options give byte-identical output.
    pub seed: u64,
    /// Whether to make the item files too (then `size` and the checksums are the real ones).
    pub with_files: bool,
    /// Size of each item file when `with_files` is set.
    pub file_size: u64,
}

impl Default for GenOptions {
    fn default() -> GenOptions {
        GenOptions {
            products: 2000,
            versions: 10,
            items: 3,
            seed: 1,
            with_files: false,
            file_size: 1024,
        }
    }
}

/// The generated stream.
#[derive(Debug, Clone)]
pub struct Stream {
    /// `streams/v1/index.json`.
    pub index: Index,
    /// The products document, at [`Stream::products_path`].
    pub products: Products,
}

impl Stream {
    /// Where the products file goes, relative to the mirror root.
    pub fn products_path() -> String {
        format!("streams/v1/{CONTENT_ID}.json")
    }
}

/// The deterministic content of one item file: a line naming it, then pseudo-random bytes.
pub fn file_content(seed: u64, path: &str, size: u64) -> Vec<u8> {
    let path_hash = path
        .bytes()
        .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b));
    let mut rng = SplitMix::new(&[seed, path_hash, 0xf11e]);
    let len = usize::try_from(size).unwrap_or(usize::MAX);
    let mut body = format!("synthetic simplestreams item {path}\n").into_bytes();
    if body.len() < len {
        let start = body.len();
        body.resize(len, 0);
        rng.fill(&mut body[start..]);
    }
    body.truncate(len);
    body
}

/// Generates the stream, handing each item file (path relative to the root, content) to
/// `sink` when `opts.with_files` is set.
pub fn generate<E>(
    opts: &GenOptions,
    mut sink: impl FnMut(&str, &[u8]) -> Result<(), E>,
) -> Result<Stream, E> {
    let mut products = Products::new(CONTENT_ID, "image-downloads");
    products
        .fields
        .insert("license".into(), json!("http://www.example.com/license"));
    products.fields.insert("updated".into(), json!(UPDATED));
    let kinds = file_types(opts.items);
    let mut made: Vec<(String, Product)> = Vec::with_capacity(opts.products);
    for n in 0..opts.products {
        made.push(product(opts, n, &kinds, &mut sink)?);
    }
    // The real stream lists products in key order (the publisher sorts keys).
    made.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<Value> = made.iter().map(|(name, _)| json!(name)).collect();
    products.products.extend(made);

    let mut index = Index::new();
    index.fields.insert("updated".into(), json!(UPDATED));
    let mut entry = IndexEntry::default();
    entry
        .fields
        .insert("datatype".into(), json!("image-downloads"));
    entry.fields.insert("format".into(), json!("products:1.0"));
    entry
        .fields
        .insert("path".into(), json!(Stream::products_path()));
    entry.fields.insert("products".into(), Value::Array(names));
    entry.fields.insert("updated".into(), json!(UPDATED));
    index.index.insert(CONTENT_ID.to_string(), entry);
    Ok(Stream { index, products })
}

/// Product `n`: release `n / 8` on architecture `n % 8`.
fn product<E>(
    opts: &GenOptions,
    n: usize,
    kinds: &[(String, FileType)],
    sink: &mut impl FnMut(&str, &[u8]) -> Result<(), E>,
) -> Result<(String, Product), E> {
    let rel = release(n / ARCHES.len());
    let arch = ARCHES[n % ARCHES.len()];
    let mut rng = SplitMix::new(&[opts.seed, n as u64]);
    let mut p = Product::new();
    let initial = rel
        .name
        .chars()
        .next()
        .map(String::from)
        .unwrap_or_default();
    let fields = [
        (
            "aliases",
            json!(format!("{},{initial},{}", rel.version, rel.name)),
        ),
        ("arch", json!(arch)),
        ("os", json!("ubuntu")),
        ("release", json!(rel.name)),
        ("release_codename", json!(rel.codename)),
        ("release_title", json!(rel.version)),
        ("support_eol", json!(format!("{}-04-30", rel.year + 5))),
        ("supported", json!(rng.chance(80))),
        ("version", json!(rel.version)),
    ];
    for (key, value) in fields {
        p.fields.insert(key.into(), value);
    }
    // Serials every two weeks from the release date, a few days' jitter, sometimes a respin
    // (".1"), as in the real stream; two weeks apart with under a week of jitter keeps them unique.
    let month = if rel.version.ends_with(".04") { 4 } else { 10 };
    let start = NaiveDate::from_ymd_opt(rel.year, month, 20).unwrap_or_default();
    for k in 0..opts.versions {
        let day = start + Duration::days(14 * k as i64 + rng.below(6) as i64);
        let respin = if rng.chance(10) { ".1" } else { "" };
        let serial = format!("{}{respin}", day.format("%Y%m%d"));
        let mut v = Version::new();
        v.fields.insert(
            "label".into(),
            json!(if rng.chance(90) { "release" } else { "beta" }),
        );
        v.fields.insert(
            "pubname".into(),
            json!(format!(
                "ubuntu-{}-{}-{arch}-server-{serial}",
                rel.name, rel.version
            )),
        );
        let dir = format!("server/releases/{}/release-{serial}", rel.name);
        let base = format!("ubuntu-{}-server-cloudimg-{arch}", rel.version);
        for (name, kind) in kinds {
            let path = format!("{dir}/{base}{}", kind.suffix);
            let item = if opts.with_files {
                let body = file_content(opts.seed, &path, opts.file_size);
                sink(&path, &body)?;
                item_fields(
                    name,
                    &path,
                    opts.file_size,
                    &hex::encode(Md5::digest(&body)),
                    &hex::encode(Sha256::digest(&body)),
                )
            } else {
                // Sizes around the real ones (+-25%) and random checksums: metadata-only runs.
                let size = kind.typical_size * 3 / 4 + rng.below(kind.typical_size / 2 + 1);
                item_fields(name, &path, size, &rng.hex(32), &rng.hex(64))
            };
            v.items.insert(name.clone(), item);
        }
        p.versions.insert(serial, v);
    }
    Ok((
        format!("com.example.cloud:server:{}:{arch}", rel.version),
        p,
    ))
}

fn item_fields(ftype: &str, path: &str, size: u64, md5: &str, sha256: &str) -> Item {
    let mut item = Item::default();
    for (key, value) in [
        ("ftype", json!(ftype)),
        ("md5", json!(md5)),
        ("path", json!(path)),
        ("sha256", json!(sha256)),
        ("size", json!(size)),
    ] {
        item.fields.insert(key.into(), value);
    }
    item
}
