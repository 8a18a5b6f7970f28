//! Publishing metadata: verbatim (byte for byte) or a filtered view of what was mirrored.

use bytes::Bytes;
use serde_json::Value;
use simplestreams_core::openpgp::{self, SigningKey};
use simplestreams_core::{Index, Products};

use super::metadata::Fetched;
use super::plan::ProductsPlan;
use super::MetadataMode;
use crate::error::Result;
use crate::target::{ContentState, State, Target};

/// Where a filtered copy of `path` is published: `X.sjson` becomes `X.json` when unsigned, and
/// `X.json` becomes `X.sjson` when signed, so that a signed index never names unsigned files.
pub(crate) fn filtered_path(path: &str, signed: bool) -> String {
    match (
        signed,
        path.strip_suffix(".sjson"),
        path.strip_suffix(".json"),
    ) {
        (false, Some(stem), _) => format!("{stem}.json"),
        (true, None, Some(stem)) => format!("{stem}.sjson"),
        _ => path.to_string(),
    }
}

/// Whether the published copy at `path` already carries this JSON (signed or not): then it is
/// not rewritten, so that a no-op run writes nothing (a new signature would differ by its date).
async fn unchanged(target: &dyn Target, path: &str, json: &[u8]) -> Result<bool> {
    let Some(published) = target.read_published(path).await? else {
        return Ok(false);
    };
    let payload = if openpgp::is_clearsigned(&published) {
        match openpgp::strip_clearsigned(&published, path) {
            Ok(p) => p,
            Err(_) => return Ok(false),
        }
    } else {
        published.to_vec()
    };
    Ok(payload.trim_ascii_end() == json.trim_ascii_end())
}

/// The JSON, clear-signed when a key is given.
fn maybe_sign(json: Vec<u8>, key: Option<&SigningKey>) -> Result<Bytes> {
    Ok(Bytes::from(match key {
        Some(key) => openpgp::clearsign(&json, key)?,
        None => json,
    }))
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
pub(crate) async fn products(
    target: &dyn Target,
    plan: &ProductsPlan,
    mode: MetadataMode,
    key: Option<&SigningKey>,
) -> Result<bool> {
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
            let path = filtered_path(&plan.path, key.is_some());
            let json = doc.to_vec_pretty();
            if unchanged(target, &path, &json).await? {
                return Ok(false);
            }
            target
                .publish_products(&path, maybe_sign(json, key)?)
                .await?;
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
    key: Option<&SigningKey>,
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
                    *p = filtered_path(p, key.is_some());
                }
                if e.fields.contains_key("products") {
                    let names: Vec<Value> = held
                        .items
                        .keys()
                        .map(|k| Value::String(k.clone()))
                        .collect();
                    e.fields.insert("products".into(), Value::Array(names));
                }
            }
            out.index.retain(|cid, _| state.content.contains_key(cid));
            let path = filtered_path(entry, key.is_some());
            let json = out.to_vec_pretty();
            if unchanged(target, &path, &json).await? {
                return Ok(false);
            }
            target.publish_index(&path, maybe_sign(json, key)?).await?;
        }
    }
    Ok(true)
}
