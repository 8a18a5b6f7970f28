//! What the engine publishes: the source's files verbatim, or a filtered view of what was
//! mirrored; written by the one [`Publisher`].

use serde_json::Value;
use simplestreams_core::{Index, Products};

use super::plan::ProductsPlan;
use super::read::Read;
use super::MetadataMode;
use crate::error::Result;
use crate::publish::Publisher;
use crate::target::{ContentState, State};

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
pub(super) async fn products(
    publisher: &Publisher,
    plan: &ProductsPlan,
    mode: MetadataMode,
) -> Result<bool> {
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
