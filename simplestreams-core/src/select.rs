//! Choosing items from a products document the way a reader does: filter the flattened items,
//! drop emptied versions and products, then keep the newest `max` versions of each product.

use crate::filter::FilterSet;
use crate::flatten::{for_each_flat_item, FlatItem, ItemId};
use crate::plan::version_cmp;
use crate::products::{Item, Products};

/// One chosen item.
#[derive(Debug, Clone)]
pub struct Selected<'a> {
    /// Which item.
    pub id: ItemId<'a>,
    /// The item as written in the document.
    pub item: &'a Item,
    /// Its flattened fields.
    pub flat: FlatItem<'a>,
}

/// Selects items of `doc` passing `filters`, at most `max` versions per product (newest first,
/// counted after filtering). Order: products as in the file, versions newest first, items as in
/// the file: the order `sstream-query` prints in.
///
/// Call [`Products::expand_aliases`] first if the document may use `_aliases`.
pub fn select<'a>(doc: &'a Products, filters: &FilterSet, max: Option<usize>) -> Vec<Selected<'a>> {
    choose(doc, filters, max, |id, item, flat| Selected {
        id,
        item,
        flat,
    })
}

/// [`select`] giving only which items were chosen, in the same order: their flattened fields
/// are dropped as soon as the filters have seen them, so that a caller planning a large stream
/// (60,000 items) does not hold one map per item.
pub fn select_ids<'a>(
    doc: &'a Products,
    filters: &FilterSet,
    max: Option<usize>,
) -> Vec<ItemId<'a>> {
    choose(doc, filters, max, |id, _, _| id)
}

/// The selection itself: `keep` makes what is kept of each item passing the filters.
fn choose<'a, T>(
    doc: &'a Products,
    filters: &FilterSet,
    max: Option<usize>,
    mut keep: impl FnMut(ItemId<'a>, &'a Item, FlatItem<'a>) -> T,
) -> Vec<T> {
    // Items arrive in file order; group them per (product, version) without re-flattening.
    let mut groups: Vec<(ItemId<'a>, Vec<T>)> = Vec::new();
    for_each_flat_item(doc, |id, item, flat| {
        if !filters.matches(&flat) {
            return;
        }
        let kept = keep(id, item, flat);
        match groups.last_mut() {
            Some((gid, list)) if gid.product == id.product && gid.version == id.version => {
                list.push(kept)
            }
            _ => groups.push((id, vec![kept])),
        }
    });
    let mut out = Vec::new();
    let mut start = 0;
    while start < groups.len() {
        let product = groups[start].0.product;
        let mut end = start;
        while end < groups.len() && groups[end].0.product == product {
            end += 1;
        }
        let mut versions: Vec<(ItemId<'a>, Vec<T>)> = groups[start..end]
            .iter_mut()
            .map(|(id, v)| (*id, std::mem::take(v)))
            .collect();
        versions.sort_by(|a, b| version_cmp(b.0.version, a.0.version));
        let take = max.unwrap_or(usize::MAX);
        for (_, items) in versions.into_iter().take(take) {
            out.extend(items);
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_and_max_counts_after_filtering() {
        let doc = r#"{"format":"products:1.0","content_id":"c","products":{
          "p1":{"versions":{"1":{"items":{"a":{"ftype":"x"}}},"3":{"items":{"a":{"ftype":"y"}}},"2":{"items":{"a":{"ftype":"x"},"b":{"ftype":"x"}}}}},
          "p0":{"versions":{"9":{"items":{"a":{"ftype":"x"}}}}}}}"#;
        let p = Products::from_slice(doc.as_bytes(), "d").unwrap();
        let f = FilterSet::parse(&["ftype=x"]).unwrap();
        let got: Vec<String> = select(&p, &f, Some(1))
            .iter()
            .map(|s| format!("{}/{}/{}", s.id.product, s.id.version, s.id.item))
            .collect();
        assert_eq!(got, ["p1/2/a", "p1/2/b", "p0/9/a"]);
        let all = select(&p, &FilterSet::default(), None);
        assert_eq!(all.len(), 5);
        assert_eq!(all[0].id.version, "3");
    }

    #[test]
    fn ids_alone_are_the_same_choice_in_the_same_order() {
        let doc = r#"{"format":"products:1.0","content_id":"c","products":{
          "p1":{"arch":"amd64","versions":{"1":{"items":{"a":{"ftype":"x"}}},"3":{"items":{"a":{"ftype":"y"}}},"2":{"items":{"a":{"ftype":"x"},"b":{"ftype":"x"}}}}},
          "p0":{"arch":"arm64","versions":{"9":{"items":{"a":{"ftype":"x"}}},"10":{"items":{"z":{"ftype":"x"}}}}}}}"#;
        let p = Products::from_slice(doc.as_bytes(), "d").unwrap();
        for filters in [&[][..], &["ftype=x"], &["arch=amd64"], &["ftype~y"]] {
            let f = FilterSet::parse(filters).unwrap();
            for max in [None, Some(1), Some(2)] {
                let full: Vec<ItemId<'_>> = select(&p, &f, max).iter().map(|s| s.id).collect();
                assert_eq!(select_ids(&p, &f, max), full, "{filters:?} {max:?}");
            }
        }
    }
}
