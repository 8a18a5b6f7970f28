//! Condensing: the inverse of flattening, used by writers (docs/format.md, "Inheritance"). A key that every child
//! carries with the same string value moves up one level, unless it is "sticky" (kept on
//! items because readers look for it there: `path`, checksums, `size`, image `id`, …).

use serde_json::Value;

use crate::products::Products;
use crate::tree::Map;

/// Sticky keys of `image-downloads` / `content-download` streams.
pub const DOWNLOAD_STICKY: &[&str] = &["path", "sha256", "md5", "size", "mirrors"];

/// Sticky keys of `image-ids` streams (as the reference Glance mirror writes them).
pub const IMAGE_IDS_STICKY: &[&str] = &[
    "ftype", "md5", "sha256", "size", "name", "id", "endpoint", "region",
];

/// How far keys may move up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CondenseTop {
    /// Items → versions → products (the reference's default).
    Products,
    /// Also products → the document's top level.
    Document,
}

/// Condenses `doc` in place: first items into their version, then versions into their
/// product, then (with [`CondenseTop::Document`]) products into the top level.
pub fn condense(doc: &mut Products, sticky: &[&str], top: CondenseTop) {
    for product in doc.products.values_mut() {
        for version in product.versions.values_mut() {
            let children: Vec<&mut Map> =
                version.items.values_mut().map(|i| &mut i.fields).collect();
            move_dups(children, &mut version.fields, sticky);
        }
        let children: Vec<&mut Map> = product
            .versions
            .values_mut()
            .map(|v| &mut v.fields)
            .collect();
        move_dups(children, &mut product.fields, sticky);
    }
    if top == CondenseTop::Document {
        let children: Vec<&mut Map> = doc.products.values_mut().map(|p| &mut p.fields).collect();
        move_dups(children, &mut doc.fields, sticky);
    }
}

/// Moves to `parent` every non-sticky key that all `children` have with one string value that
/// `parent` does not contradict; keys join the parent in the first child's order.
fn move_dups(mut children: Vec<&mut Map>, parent: &mut Map, sticky: &[&str]) {
    let Some(first) = children.first() else {
        return;
    };
    let moving: Vec<(String, Value)> = first
        .iter()
        .filter(|(k, v)| {
            let Value::String(s) = v else { return false };
            !sticky.contains(&k.as_str())
                && parent.get(k.as_str()).is_none_or(|p| p.as_str() == Some(s))
                && children
                    .iter()
                    .all(|c| c.get(k.as_str()).and_then(Value::as_str) == Some(s))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for child in children.iter_mut() {
        for (k, _) in &moving {
            child.shift_remove(k);
        }
    }
    for (k, v) in moving {
        parent.insert(k, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten::for_each_flat_item;

    const DOC: &str = r#"{"format":"products:1.0","content_id":"c","products":{
      "p1":{"versions":{
        "1":{"items":{"a":{"arch":"amd64","ftype":"disk1.img","path":"x/1a","size":1,"sha256":"00"},
                      "b":{"arch":"amd64","ftype":"root.tar.gz","path":"x/1b","size":1,"sha256":"00"}}},
        "2":{"items":{"a":{"arch":"amd64","ftype":"disk1.img","path":"x/2a","size":2,"sha256":"00"}}}}},
      "p2":{"versions":{"1":{"items":{"a":{"arch":"i386","ftype":"disk1.img","path":"y","size":3,"sha256":"00"}}}}}}}"#;

    fn flat_view(doc: &Products) -> Vec<Vec<(String, String)>> {
        let mut all = Vec::new();
        for_each_flat_item(doc, |_, _, f| {
            let mut v: Vec<(String, String)> = f
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            v.sort();
            all.push(v);
        });
        all
    }

    #[test]
    fn condensing_keeps_every_flattened_item_and_sticky_keys() {
        let original = Products::from_slice(DOC.as_bytes(), "d").unwrap();
        let mut doc = original.clone();
        condense(&mut doc, DOWNLOAD_STICKY, CondenseTop::Document);
        assert_eq!(flat_view(&doc), flat_view(&original));
        let p1 = &doc.products["p1"];
        assert_eq!(p1.fields.get("arch").and_then(Value::as_str), Some("amd64"));
        // ftype differs inside p1 version 1, so it stays on those items and cannot reach the top.
        assert!(!doc.fields.contains_key("ftype"));
        assert_eq!(
            doc.products["p2"]
                .fields
                .get("ftype")
                .and_then(Value::as_str),
            Some("disk1.img")
        );
        assert!(p1.versions["1"].items["b"].fields.contains_key("ftype"));
        let item = &p1.versions["1"].items["a"];
        for key in ["path", "size", "sha256"] {
            assert!(
                item.fields.contains_key(key),
                "sticky {key} stays on the item"
            );
        }
        assert!(!item.fields.contains_key("arch"));
    }
}
