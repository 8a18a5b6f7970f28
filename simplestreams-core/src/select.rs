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
    // Items arrive in file order; group them per (product, version) without re-flattening.
    let mut groups: Vec<(ItemId<'a>, Vec<Selected<'a>>)> = Vec::new();
    for_each_flat_item(doc, |id, item, flat| {
        if !filters.matches(&flat) {
            return;
        }
        let sel = Selected { id, item, flat };
        match groups.last_mut() {
            Some((gid, list)) if gid.product == id.product && gid.version == id.version => {
                list.push(sel)
            }
            _ => groups.push((id, vec![sel])),
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
        let mut versions: Vec<(ItemId<'a>, Vec<Selected<'a>>)> = groups[start..end]
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
}
