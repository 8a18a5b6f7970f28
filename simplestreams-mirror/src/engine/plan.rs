//! Planning one products file: which versions to add and remove, as the items they hold.

use std::collections::{BTreeMap, HashMap};

use indexmap::IndexMap;
use simplestreams_core::{
    flatten, parse_size, plan_versions, select, Expected, FilterSet, FlatItem, ItemId, PlanLimits,
    Products,
};

use super::metadata::Fetched;
use crate::error::Result;
use crate::target::{ContentState, HeldItem, ItemKey, NewItem};

/// What one products file needs.
#[derive(Debug)]
pub(crate) struct ProductsPlan {
    pub content_id: String,
    pub path: String,
    pub fetched: Fetched,
    pub products: Products,
    /// Items of the versions to add (those passing the filters), newest version first.
    pub add: Vec<NewItem>,
    /// Items of the versions to remove.
    pub remove: Vec<(ItemKey, HeldItem)>,
    /// What the target holds for this content id once the plan is carried out.
    pub after: ContentState,
}

fn expected_of(flat: &FlatItem<'_>) -> Expected {
    let get = |k: &str| {
        flat.get(k)
            .filter(|s| !s.is_empty())
            .map(|s| s.to_ascii_lowercase())
    };
    Expected {
        size: flat
            .get("size")
            .and_then(|s| parse_size(&serde_json::Value::String(s.to_string())).ok()),
        md5: get("md5"),
        sha256: get("sha256"),
        sha512: get("sha512"),
    }
}

/// Plans one products file against what the target holds for it.
pub(crate) fn plan_products(
    content_id: Option<&str>,
    path: &str,
    fetched: Fetched,
    products: Products,
    held: Option<&ContentState>,
    filters: &FilterSet,
    limits: PlanLimits,
) -> Result<ProductsPlan> {
    let content_id = content_id
        .unwrap_or_else(|| products.content_id())
        .to_string();
    let empty = BTreeMap::new();
    let held_items = held.map(|c| &c.items).unwrap_or(&empty);

    // Source versions passing the filters, per product, in file order; and their items.
    let chosen = select(&products, filters, None);
    let mut by_product: IndexMap<&str, IndexMap<&str, Vec<&simplestreams_core::Selected<'_>>>> =
        IndexMap::new();
    for sel in &chosen {
        by_product
            .entry(sel.id.product)
            .or_default()
            .entry(sel.id.version)
            .or_default()
            .push(sel);
    }
    // Only products with items passing the filters are planned: a product held but absent from
    // the filtered source is left as it is (the reference does the same; deleting it would
    // empty a mirror whenever its filters change or upstream drops a product by mistake).
    let names: Vec<&str> = by_product.keys().copied().collect();

    let mut after = ContentState {
        path: path.to_string(),
        items: held_items.clone(),
    };
    let mut add = Vec::new();
    let mut remove = Vec::new();
    let key = |product: &str, version: &str, item: &str| ItemKey {
        content_id: content_id.clone(),
        product: product.to_string(),
        version: version.to_string(),
        item: item.to_string(),
    };
    for product in names {
        let source: Vec<&str> = by_product
            .get(product)
            .map(|v| v.keys().copied().collect())
            .unwrap_or_default();
        let target: Vec<&str> = held_items
            .get(product)
            .map(|v| v.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let plan = plan_versions(&source, &target, limits, |_| true)?;
        for version in &plan.remove {
            let Some(items) = after
                .items
                .get_mut(product)
                .and_then(|versions| versions.remove(version))
            else {
                continue;
            };
            for (item, h) in items {
                remove.push((key(product, version, &item), h));
            }
        }
        for version in &plan.add {
            let Some(sels) = by_product
                .get(product)
                .and_then(|v| v.get(version.as_str()))
            else {
                continue;
            };
            for sel in sels {
                let id = ItemId {
                    product: sel.id.product,
                    version: sel.id.version,
                    item: sel.id.item,
                };
                let fields = flatten(&products, id, false)
                    .map(|f| {
                        f.into_iter()
                            .map(|(k, v)| (k.to_string(), v.into_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let new = NewItem {
                    key: key(product, version, sel.id.item),
                    path: sel.flat.get("path").map(|p| p.to_string()),
                    expected: expected_of(&sel.flat),
                    fields,
                };
                after
                    .items
                    .entry(product.to_string())
                    .or_default()
                    .entry(version.clone())
                    .or_default()
                    .insert(sel.id.item.to_string(), new.held());
                add.push(new);
            }
        }
        if after.items.get(product).is_some_and(BTreeMap::is_empty) {
            after.items.remove(product);
        }
    }
    Ok(ProductsPlan {
        content_id,
        path: path.to_string(),
        fetched,
        products,
        add,
        remove,
        after,
    })
}

/// The paths added items would share with items already kept, with equal content: those need
/// no download.
pub(crate) fn kept_paths(plans: &[ProductsPlan]) -> HashMap<String, HeldItem> {
    let mut kept = HashMap::new();
    for plan in plans {
        let adding: std::collections::HashSet<&ItemKey> = plan.add.iter().map(|n| &n.key).collect();
        for (product, versions) in &plan.after.items {
            for (version, items) in versions {
                for (item, held) in items {
                    let Some(path) = &held.path else { continue };
                    let k = ItemKey {
                        content_id: plan.content_id.clone(),
                        product: product.clone(),
                        version: version.clone(),
                        item: item.clone(),
                    };
                    if !adding.contains(&k) {
                        kept.insert(path.clone(), held.clone());
                    }
                }
            }
        }
    }
    kept
}
