//! Inheritance: the effective fields of an item (docs/format.md, "Inheritance").
//!
//! An item's effective fields are the scalar fields of the document, its product, its version
//! and the item itself, deeper levels winning, plus `product_name`, `version_name` and
//! `item_name`. Only scalars inherit; numbers and booleans take the string form the reference
//! gives them (`size` → `"60"`, `true` → `"True"`). Key order follows the reference exactly:
//! a key keeps the position where it first appeared.

use std::borrow::Cow;

use indexmap::IndexMap;

use crate::products::{Item, Products};
use crate::tree::{scalar_string, Map};

/// The flattened fields of one item, borrowing from the document where it can.
pub type FlatItem<'a> = IndexMap<&'a str, Cow<'a, str>>;

/// Identifies one item of a products document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ItemId<'a> {
    /// Product name.
    pub product: &'a str,
    /// Version name.
    pub version: &'a str,
    /// Item name.
    pub item: &'a str,
}

fn add_scalars<'a>(flat: &mut FlatItem<'a>, fields: &'a Map) {
    for (k, v) in fields {
        if let Some(s) = scalar_string(v) {
            flat.insert(k.as_str(), s);
        }
    }
}

/// Flattens one item. `include_top` adds the document's own top-level fields (the reference's
/// `products_exdata(include_top=True)`); Glance's `simplestreams_metadata` leaves them out.
pub fn flatten<'a>(doc: &'a Products, id: ItemId<'a>, include_top: bool) -> Option<FlatItem<'a>> {
    let product = doc.products.get(id.product)?;
    let version = product.versions.get(id.version)?;
    let item = version.items.get(id.item)?;
    let mut flat = FlatItem::new();
    if include_top {
        add_scalars(&mut flat, &doc.fields);
    }
    add_scalars(&mut flat, &product.fields);
    flat.insert("product_name", Cow::Borrowed(id.product));
    add_scalars(&mut flat, &version.fields);
    flat.insert("version_name", Cow::Borrowed(id.version));
    add_scalars(&mut flat, &item.fields);
    flat.insert("item_name", Cow::Borrowed(id.item));
    Some(flat)
}

/// Calls `f` for every item of `doc` in file order with its flattened fields. Shares the work of
/// flattening the outer levels between the items below them.
pub fn for_each_flat_item<'a>(
    doc: &'a Products,
    mut f: impl FnMut(ItemId<'a>, &'a Item, FlatItem<'a>),
) {
    let mut top = FlatItem::new();
    add_scalars(&mut top, &doc.fields);
    for (pname, product) in &doc.products {
        let mut pflat = top.clone();
        add_scalars(&mut pflat, &product.fields);
        pflat.insert("product_name", Cow::Borrowed(pname.as_str()));
        for (vname, version) in &product.versions {
            let mut vflat = pflat.clone();
            add_scalars(&mut vflat, &version.fields);
            vflat.insert("version_name", Cow::Borrowed(vname.as_str()));
            for (iname, item) in &version.items {
                let mut iflat = vflat.clone();
                add_scalars(&mut iflat, &item.fields);
                iflat.insert("item_name", Cow::Borrowed(iname.as_str()));
                let id = ItemId {
                    product: pname,
                    version: vname,
                    item: iname,
                };
                f(id, item, iflat);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deeper_wins_and_order_is_first_appearance() {
        let doc = r#"{"format":"products:1.0","content_id":"c","ftype":"top","products":{"p":{"arch":"amd64",
          "versions":{"v":{"label":"beta","items":{"i":{"ftype":"disk1.img","size":60,"list":[1]}}}}}}}"#;
        let p = Products::from_slice(doc.as_bytes(), "d").unwrap();
        let id = ItemId {
            product: "p",
            version: "v",
            item: "i",
        };
        let flat = flatten(&p, id, true).unwrap();
        let keys: Vec<&str> = flat.keys().copied().collect();
        assert_eq!(
            keys,
            [
                "format",
                "content_id",
                "ftype",
                "arch",
                "product_name",
                "label",
                "version_name",
                "size",
                "item_name"
            ]
        );
        assert_eq!(flat["ftype"], "disk1.img");
        assert_eq!(flat["size"], "60");
        assert!(!flat.contains_key("list"));
        let no_top = flatten(&p, id, false).unwrap();
        assert!(!no_top.contains_key("content_id"));
        let mut seen = Vec::new();
        for_each_flat_item(&p, |id, _, f| seen.push((id.item.to_string(), f.len())));
        assert_eq!(seen, [("i".to_string(), flat.len())]);
    }
}
