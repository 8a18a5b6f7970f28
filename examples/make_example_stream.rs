//! Builds the project's small example stream: a few tiny "images" of two products, three
//! versions each, with an index and a products file, using the `simplestreams-core` model.
//!
//! ```text
//! cargo run -p simplestreams-examples --example make_example_stream -- OUT_DIR
//! ```
//!
//! `scripts/make-example-stream` runs it, then signs the result with a test key it generates.
//! The image bytes are deterministic, so the checksums are the same on every machine.

use std::path::Path;

use anyhow::Context as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use simplestreams_core::{
    condense, CondenseTop, Index, IndexEntry, Item, Product, Products, Version, DOWNLOAD_STICKY,
};

const CONTENT_ID: &str = "org.example.demo:released:download";
const UPDATED: &str = "Sun, 22 Nov 2026 00:00:00 +0000";

fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .context("usage: make_example_stream OUT_DIR")?;
    let out = Path::new(&out);
    let mut products = Products::new(CONTENT_ID, "image-downloads");
    products.fields.insert("updated".into(), json!(UPDATED));
    for (release, version) in [("alpha", "1.0"), ("beta", "2.0")] {
        for arch in ["amd64", "arm64"] {
            let name = format!("org.example.demo:{version}:{arch}");
            let mut product = Product::new();
            for (k, v) in [
                ("os", "demo-os"),
                ("release", release),
                ("version", version),
                ("arch", arch),
            ] {
                product.fields.insert(k.into(), json!(v));
            }
            for serial in ["20261101", "20261108", "20261115"] {
                let mut v = Version::new();
                v.fields.insert("label".into(), json!("release"));
                v.fields.insert(
                    "pubname".into(),
                    json!(format!("demo-{release}-{serial}-{arch}")),
                );
                for ftype in ["disk1.img", "root.tar.xz"] {
                    let path = format!("images/{release}/{serial}/demo-{release}-{arch}-{ftype}");
                    let bytes = image_bytes(&path);
                    write(&out.join(&path), &bytes)?;
                    let mut item = Item::default();
                    item.fields.insert("ftype".into(), json!(ftype));
                    item.fields.insert("path".into(), json!(path));
                    item.fields.insert("size".into(), json!(bytes.len()));
                    item.fields
                        .insert("sha256".into(), json!(hex(&Sha256::digest(&bytes))));
                    item.fields.insert(
                        "md5".into(),
                        json!(format!("{:x}", md5::Md5::digest(&bytes))),
                    );
                    v.items.insert(ftype.into(), item);
                }
                product.versions.insert(serial.into(), v);
            }
            products.products.insert(name, product);
        }
    }
    condense(&mut products, DOWNLOAD_STICKY, CondenseTop::Products);
    let products_path = format!("streams/v1/{CONTENT_ID}.json");
    write(&out.join(&products_path), &products.to_vec_pretty())?;

    let mut index = Index::new();
    index.fields.insert("updated".into(), json!(UPDATED));
    let mut entry = IndexEntry::default();
    entry
        .fields
        .insert("datatype".into(), json!("image-downloads"));
    entry.fields.insert("path".into(), json!(products_path));
    entry.fields.insert("format".into(), json!("products:1.0"));
    entry.fields.insert("updated".into(), json!(UPDATED));
    let names: Vec<Value> = products.products.keys().map(|k| json!(k)).collect();
    entry.fields.insert("products".into(), Value::Array(names));
    index.index.insert(CONTENT_ID.into(), entry);
    write(&out.join("streams/v1/index.json"), &index.to_vec_pretty())?;
    println!(
        "wrote {} items under {}",
        products.item_count(),
        out.display()
    );
    Ok(())
}

/// A few KiB of bytes that depend only on the path (a tiny xorshift stream).
fn image_bytes(path: &str) -> Vec<u8> {
    let mut state = path.bytes().fold(0x9E37_79B9_7F4A_7C15u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01B3)
    });
    let len = 4096 + (state % 4096) as usize;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}
