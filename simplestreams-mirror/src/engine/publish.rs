//! Publishing metadata: verbatim (byte for byte) or a filtered view of what was mirrored.

use bytes::Bytes;
use serde_json::Value;
use simplestreams_core::{Index, Products};

use super::metadata::Fetched;
use super::plan::ProductsPlan;
use super::MetadataMode;
use crate::error::Result;
use crate::target::{ContentState, State, Target};

/// Where a filtered (unsigned) copy of `path` is published: `X.sjson` becomes `X.json`.
pub(crate) fn unsigned_path(path: &str) -> String {
    match path.strip_suffix(".sjson") {
        Some(stem) => format!("{stem}.json"),
        None => path.to_string(),
    }
}

/// The products document reduced to the items held.
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
    out
}

/// Publishes one products file; `false` when the published copy is already this one.
pub(crate) async fn products(target: &dyn Target, plan: &ProductsPlan, mode: MetadataMode) -> Result<bool> {
    match mode {
        MetadataMode::Verbatim => {
            if plan.fetched.not_modified {
                return Ok(false);
            }
            target
                .publish_products(&plan.path, plan.fetched.raw.clone())
                .await?;
        }
        MetadataMode::Filtered => {
            let doc = filtered_products(&plan.products, &plan.after);
            let path = unsigned_path(&plan.path);
            let bytes = Bytes::from(doc.to_vec_pretty());
            if target.read_published(&path).await?.as_ref() == Some(&bytes) {
                return Ok(false);
            }
            target.publish_products(&path, bytes).await?;
        }
    }
    Ok(true)
}

/// Publishes the index; `false` when the published copy is already this one.
pub(crate) async fn index(
    target: &dyn Target,
    entry: &str,
    fetched: &Fetched,
    index: &Index,
    state: &State,
    mode: MetadataMode,
) -> Result<bool> {
    match mode {
        MetadataMode::Verbatim => {
            if fetched.not_modified {
                return Ok(false);
            }
            target.publish_index(entry, fetched.raw.clone()).await?;
        }
        MetadataMode::Filtered => {
            let mut out = index.clone();
            for (cid, e) in out.index.iter_mut() {
                let Some(held) = state.content.get(cid) else {
                    continue;
                };
                if let Some(Value::String(p)) = e.fields.get_mut("path") {
                    *p = unsigned_path(p);
                }
                if e.fields.contains_key("products") {
                    let names: Vec<Value> = held.items.keys().map(|k| Value::String(k.clone())).collect();
                    e.fields.insert("products".into(), Value::Array(names));
                }
            }
            out.index.retain(|cid, _| state.content.contains_key(cid));
            let path = unsigned_path(entry);
            let bytes = Bytes::from(out.to_vec_pretty());
            if target.read_published(&path).await?.as_ref() == Some(&bytes) {
                return Ok(false);
            }
            target.publish_index(&path, bytes).await?;
        }
    }
    Ok(true)
}
