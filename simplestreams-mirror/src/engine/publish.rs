//! What the engine publishes: the source's files verbatim, or a filtered view of what was
//! mirrored; written by the one [`Publisher`].

use serde_json::Value;
use simplestreams_core::{Index, Products};

use super::plan::ProductsPlan;
use super::read::Read;
use super::MetadataMode;
use crate::decompress::{decompressed_ftype, image_compression};
use crate::error::{Error, Result};
use crate::publish::Publisher;
use crate::target::{ContentState, State};

/// The products document reduced to the items held; items stored decompressed are described
/// as stored.
fn filtered_products(products: &Products, held: &ContentState) -> Products {
    let mut out = products.clone();
    out.products.retain(|pname, product| {
        let Some(hv) = held.items.get(pname) else {
            return false;
        };
        product.versions.retain(|vname, version| {
            let Some(hi) = hv.get(vname) else {
                return false;
            };
            version.items.retain(|iname, _| hi.contains_key(iname));
            !version.items.is_empty()
        });
        !product.versions.is_empty()
    });
    if holds_stored(held) {
        describe_as_stored(&mut out, held);
    }
    out
}

/// Whether any item of `held` was stored decompressed.
fn holds_stored(held: &ContentState) -> bool {
    held.items
        .values()
        .flat_map(|v| v.values())
        .flat_map(|i| i.values())
        .any(|h| h.stored.is_some())
}

/// Checksums an item stored decompressed no longer has: only the raw sha256 is known.
const DROPPED: [&str; 2] = ["md5", "sha512"];

/// Rewrites the items stored decompressed: the raw file's path, size and sha256, the ftype of
/// the raw content, and no md5 or sha512 (those published are of the compressed file). An md5
/// or sha512 inherited from above an item (the version, product or top level) is first moved
/// down onto every item, or the raw file would inherit the compressed file's checksum.
fn describe_as_stored(out: &mut Products, held: &ContentState) {
    for key in DROPPED {
        let inherited = out.fields.contains_key(key)
            || out.products.values().any(|p| {
                p.fields.contains_key(key)
                    || p.versions.values().any(|v| v.fields.contains_key(key))
            });
        if !inherited {
            continue;
        }
        let top = out.fields.remove(key);
        for product in out.products.values_mut() {
            let from_product = product.fields.remove(key).or_else(|| top.clone());
            for version in product.versions.values_mut() {
                let from_version = version.fields.remove(key).or_else(|| from_product.clone());
                let Some(value) = from_version else { continue };
                for item in version.items.values_mut() {
                    item.fields.entry(key).or_insert_with(|| value.clone());
                }
            }
        }
    }
    let top_ftype = out.fields.get("ftype").cloned();
    for (pname, product) in out.products.iter_mut() {
        for (vname, version) in product.versions.iter_mut() {
            // The ftype an item inherits, if it gives none: rewritten on the item itself.
            let inherited_ftype = version
                .fields
                .get("ftype")
                .or_else(|| product.fields.get("ftype"))
                .or(top_ftype.as_ref())
                .and_then(Value::as_str)
                .map(str::to_string);
            for (iname, item) in version.items.iter_mut() {
                let Some(h) = held.items.get(pname).and_then(|v| v.get(vname)?.get(iname)) else {
                    continue;
                };
                let (Some(stored), Some(published)) = (&h.stored, &h.path) else {
                    continue;
                };
                let f = &mut item.fields;
                f.insert("path".into(), Value::String(stored.path.clone()));
                f.insert("size".into(), Value::from(stored.size));
                f.insert("sha256".into(), Value::String(stored.sha256.clone()));
                for key in DROPPED {
                    f.remove(key);
                }
                let compression = image_compression(published);
                let ftype = match f.get("ftype") {
                    Some(v) => v.as_str().map(str::to_string),
                    None => inherited_ftype.clone(),
                };
                if let (Some(c), Some(ftype)) = (compression, ftype) {
                    f.insert("ftype".into(), Value::String(decompressed_ftype(&ftype, c)));
                }
            }
        }
    }
}

/// Publishes one products file; `false` when the published copy is already this one.
pub(super) async fn products(
    publisher: &Publisher,
    plan: &ProductsPlan,
    mode: MetadataMode,
) -> Result<bool> {
    if mode == MetadataMode::Verbatim && holds_stored(&plan.after) {
        return Err(Error::Location {
            location: plan.path.clone(),
            message: "the mirror holds images of it stored decompressed (--decompress): the \
                      source's file, naming them compressed, cannot be published as it is; \
                      mirror with --decompress"
                .into(),
        });
    }
    match mode {
        MetadataMode::Verbatim if plan.read.not_modified => Ok(false),
        MetadataMode::Verbatim => publisher.verbatim(&plan.read.file).await,
        MetadataMode::Filtered => {
            let doc = filtered_products(&plan.products, &plan.after);
            publisher.products(&plan.path, doc.to_vec_pretty()).await
        }
    }
}

/// Publishes the index; `false` when the published copy is already this one.
pub(super) async fn index(
    publisher: &Publisher,
    entry: &str,
    read: &Read,
    index: &Index,
    state: &State,
    mode: MetadataMode,
) -> Result<bool> {
    match mode {
        MetadataMode::Verbatim if read.not_modified => Ok(false),
        MetadataMode::Verbatim => publisher.verbatim(&read.file).await,
        MetadataMode::Filtered => {
            let mut out = index.clone();
            out.index.retain(|cid, _| state.content.contains_key(cid));
            for (cid, e) in out.index.iter_mut() {
                let Some(held) = state.content.get(cid) else {
                    continue;
                };
                if e.fields.contains_key("products") {
                    let names: Vec<Value> = held
                        .items
                        .keys()
                        .map(|k| Value::String(k.clone()))
                        .collect();
                    e.fields.insert("products".into(), Value::Array(names));
                }
            }
            publisher.document(entry, &out.to_vec_pretty()).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{HeldItem, StoredAs};

    #[test]
    fn an_image_stored_raw_gets_the_raw_ftype_even_when_it_inherits_the_compressed_one() {
        let doc = r#"{"format": "products:1.0", "content_id": "c", "products": {"p": {
            "versions": {"1": {"ftype": "qcow2.xz", "md5": "aa", "items": {
              "disk": {"path": "d/disk.qcow2.xz", "size": 10, "sha256": "cc"},
              "other": {"path": "d/other.qcow2.xz", "size": 20, "sha256": "dd"}}}}}}}"#;
        let products = Products::from_slice(doc.as_bytes(), "p.json").expect("products");
        let mut held = ContentState::default();
        let items = held
            .items
            .entry("p".into())
            .or_default()
            .entry("1".into())
            .or_default();
        items.insert(
            "disk".into(),
            HeldItem {
                path: Some("d/disk.qcow2.xz".into()),
                stored: Some(StoredAs {
                    path: "d/disk.qcow2".into(),
                    size: 99,
                    sha256: "ee".into(),
                }),
                ..HeldItem::default()
            },
        );
        items.insert(
            "other".into(),
            HeldItem {
                path: Some("d/other.qcow2.xz".into()),
                ..HeldItem::default()
            },
        );
        let out = filtered_products(&products, &held);
        let version = &out.products["p"].versions["1"];
        let disk = &version.items["disk"].fields;
        assert_eq!(disk["ftype"], "disk1.img");
        assert_eq!(disk["path"], "d/disk.qcow2");
        assert_eq!(
            (disk["size"].as_u64(), disk["sha256"].as_str()),
            (Some(99), Some("ee"))
        );
        assert!(!disk.contains_key("md5"), "{disk:?}");
        // The item kept as published still inherits its ftype, and gets the version's md5.
        let other = &version.items["other"].fields;
        assert!(!other.contains_key("ftype"), "{other:?}");
        assert_eq!(other["md5"], "aa");
        assert_eq!(version.fields["ftype"], "qcow2.xz");
        assert!(!version.fields.contains_key("md5"));
    }
}
