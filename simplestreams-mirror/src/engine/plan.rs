//! Planning one products file: which versions to add and remove, as the items they hold.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use indexmap::IndexMap;
use simplestreams_core::{
    flatten, parse_size, plan_versions, scalar_string, select_ids, Expected, FilterSet, ItemId,
    PlanLimits, Products,
};

use super::read::Read;
use crate::error::Result;
use crate::target::{check_mirror_path, ContentState, HeldItem, ItemKey, NewItem};

/// What one products file needs.
#[derive(Debug)]
pub(crate) struct ProductsPlan {
    pub content_id: String,
    pub path: String,
    pub read: Read,
    pub products: Products,
    /// Items of the versions to add (those passing the filters), newest version first.
    pub add: Vec<NewItem>,
    /// Items held and kept, to verify again (`verify_existing`).
    pub verify: Vec<NewItem>,
    /// Items of the versions to remove.
    pub remove: Vec<(ItemKey, HeldItem)>,
    /// What the target holds for this content id once the plan is carried out.
    pub after: ContentState,
}

impl ProductsPlan {
    /// `item` as the target holds it when it was stored decompressed: its raw file, with the
    /// raw size and sha256 recorded; `None` for an item stored as published.
    pub fn held_as_stored(&self, item: &NewItem) -> Option<NewItem> {
        let k = &item.key;
        let stored = self
            .after
            .items
            .get(&k.product)?
            .get(&k.version)?
            .get(&k.item)?
            .stored
            .as_ref()?;
        Some(NewItem {
            path: Some(stored.path.clone()),
            expected: stored.expected(),
            ..item.clone()
        })
    }
}

/// Size and checksums of an item, given how to look up its effective fields.
fn expected_of(lookup: impl Fn(&str) -> Option<String>) -> Expected {
    let get = |k: &str| {
        lookup(k)
            .filter(|s| !s.is_empty())
            .map(|s| s.to_ascii_lowercase())
    };
    Expected {
        size: lookup("size").and_then(|s| parse_size(&serde_json::Value::String(s)).ok()),
        md5: get("md5"),
        sha256: get("sha256"),
        sha512: get("sha512"),
    }
}

/// The item `id` of `products` as the engine adds it: its effective fields (product, version
/// and item levels; the top level left out), path, size and checksums. A path, wherever it was
/// inherited from (an `_aliases` value, a product), is checked like one given on the item.
fn new_item(products: &Products, id: ItemId<'_>, key: ItemKey) -> Result<NewItem> {
    let fields: IndexMap<String, String> = flatten(products, id, false)
        .map(|f| {
            f.into_iter()
                .map(|(k, v)| (k.to_string(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    // The item's effective value of a field: from the levels below the top as flattened, else
    // from the top level (what `flatten(.., true)` would give).
    let lookup = |k: &str| {
        fields.get(k).cloned().or_else(|| {
            products
                .fields
                .get(k)
                .and_then(scalar_string)
                .map(Cow::into_owned)
        })
    };
    let path = lookup("path");
    if let Some(p) = &path {
        check_mirror_path(p).map_err(|e| crate::error::Error::Verify {
            item: key.to_string(),
            url: p.clone(),
            source: Box::new(simplestreams_core::Error::Unverifiable {
                item: key.to_string(),
                message: e.to_string(),
            }),
        })?;
    }
    Ok(NewItem {
        key,
        path,
        expected: expected_of(lookup),
        fields,
        decompress: None,
    })
}

/// Plans one products file against what the target holds for it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_products(
    content_id: Option<&str>,
    path: &str,
    read: Read,
    products: Products,
    held: Option<&ContentState>,
    filters: &FilterSet,
    limits: PlanLimits,
    verify_existing: bool,
) -> Result<ProductsPlan> {
    let content_id = content_id
        .unwrap_or_else(|| products.content_id())
        .to_string();
    let empty = BTreeMap::new();
    let held_items = held.map(|c| &c.items).unwrap_or(&empty);

    // Source versions passing the filters, per product, in file order; and their items. Only
    // which items: their fields are flattened again, one item at a time, when one is added.
    let chosen = select_ids(&products, filters, None);
    let mut by_product: IndexMap<&str, IndexMap<&str, Vec<ItemId<'_>>>> = IndexMap::new();
    for id in chosen {
        by_product
            .entry(id.product)
            .or_default()
            .entry(id.version)
            .or_default()
            .push(id);
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
    let mut verify = Vec::new();
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
            for &id in sels {
                let new = new_item(&products, id, key(product, version, id.item))?;
                after
                    .items
                    .entry(product.to_string())
                    .or_default()
                    .entry(version.clone())
                    .or_default()
                    .insert(id.item.to_string(), new.held());
                add.push(new);
            }
        }
        if after.items.get(product).is_some_and(BTreeMap::is_empty) {
            after.items.remove(product);
        }
        if verify_existing {
            // Versions held and kept that the source still describes.
            let kept = target
                .iter()
                .filter(|v| !plan.remove.iter().any(|r| r == *v));
            for version in kept {
                let Some(sels) = by_product.get(product).and_then(|v| v.get(*version)) else {
                    continue;
                };
                for &id in sels {
                    let n = new_item(&products, id, key(product, version, id.item))?;
                    if n.path.is_some() {
                        verify.push(n);
                    }
                }
            }
        }
    }
    Ok(ProductsPlan {
        content_id,
        path: path.to_string(),
        read,
        products,
        add,
        verify,
        remove,
        after,
    })
}

/// An item kept by a plan, and what it holds.
pub(crate) struct Kept {
    pub key: ItemKey,
    pub held: HeldItem,
}

/// The paths of the items every plan keeps (not those it adds): an added item with the same
/// path and content needs no download, and one with other content must not replace it.
pub(crate) fn kept_paths(plans: &[ProductsPlan]) -> HashMap<String, Kept> {
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
                        kept.insert(
                            path.clone(),
                            Kept {
                                key: k,
                                held: held.clone(),
                            },
                        );
                    }
                }
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn read() -> Read {
        Read {
            file: crate::metadata::MetadataFile {
                path: "streams/v1/p.json".into(),
                url: "memory:streams/v1/p.json".into(),
                raw: Bytes::new(),
                json: Bytes::new(),
                signer: None,
                validators: Default::default(),
            },
            not_modified: false,
        }
    }

    #[test]
    fn an_added_item_takes_path_size_and_checksums_from_whichever_level_gives_them() {
        let doc = r#"{"format": "products:1.0", "content_id": "c", "md5": "AA", "sha512": "top",
          "products": {"p": {"arch": "amd64", "md5": "bb", "versions": {
            "1": {"size": "42", "items": {"disk": {"path": "p/1/disk.img", "sha256": "CC"},
                                          "root": {"path": "p/1/root.tar", "md5": "dd", "size": 7}}}}}}}"#;
        let products = Products::from_slice(doc.as_bytes(), "p.json").expect("products");
        let plan = plan_products(
            None,
            "streams/v1/p.json",
            read(),
            products,
            None,
            &FilterSet::parse(&["arch=amd64"]).expect("filters"),
            PlanLimits::default(),
            false,
        )
        .expect("plan");
        let by_item: HashMap<&str, &NewItem> =
            plan.add.iter().map(|n| (n.key.item.as_str(), n)).collect();

        let disk = by_item["disk"];
        assert_eq!(disk.path.as_deref(), Some("p/1/disk.img"));
        assert_eq!(
            disk.expected,
            Expected {
                size: Some(42),
                md5: Some("bb".into()),
                sha256: Some("cc".into()),
                sha512: Some("top".into()),
            },
            "size from the version, md5 from the product over the top, sha512 from the top"
        );
        let root = by_item["root"];
        assert_eq!(root.path.as_deref(), Some("p/1/root.tar"));
        assert_eq!(
            (root.expected.size, root.expected.md5.as_deref()),
            (Some(7), Some("dd"))
        );

        // The fields a target describes an item with leave the top level out.
        assert_eq!(disk.fields.get("size").map(String::as_str), Some("42"));
        assert_eq!(disk.fields.get("md5").map(String::as_str), Some("bb"));
        assert!(!disk.fields.contains_key("sha512") && !disk.fields.contains_key("content_id"));
        assert_eq!(plan.after.items["p"]["1"].len(), 2);
    }
}
