//! A read-only, compact view of a products document, for queries over large streams.
//!
//! [`Products`](crate::Products) keeps every field as an owned JSON value so that documents
//! round-trip and can be edited; for a 25 MB stream that is over a million allocations. A query
//! needs far less: the scalar fields of each level, as the strings flattening gives them. This
//! view keeps each string as a span of the input (only escaped strings and the text of numbers
//! and booleans are written into one side buffer), keeps each level's fields in one array per
//! level, skips lists and objects, and filters items by looking keys up level by level, so that
//! only the items that pass are ever flattened. A 25.7 MB file with 60,000 items costs a few
//! dozen allocations and about a fifth of its size on top of the input.
//!
//! It covers the common case only. [`ProductsView::parse`] returns `None` when the document
//! needs the full model: `_aliases` (which rewrite fields), a field of the wrong type, an unsafe
//! `path`, a name given twice, or anything else unusual; callers then use
//! [`crate::Document::from_slice`], which also gives the precise error.

mod parse;
mod scan;
mod split;

use std::borrow::Cow;
use std::ops::Range;

use crate::filter::FilterSet;
use crate::flatten::FlatItem;
use crate::plan::version_cmp;

/// A string of the view: a span of the input, or of the view's own text when its top bit is set.
///
/// Two `u32`s rather than a `&str` or `Cow<str>` (16 and 24 bytes): there are about five per
/// item, and the view's size is most of the query's memory beyond the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Text {
    start: u32,
    len: u32,
}

/// Marks a [`Text`] that lives in [`ProductsView::own`] rather than in the input.
const OWNED: u32 = 1 << 31;

/// One scalar field of a level.
#[derive(Debug, Clone, Copy)]
struct Field {
    key: Text,
    value: Text,
}

/// A product, version or item: its name, its fields (a range of its level's field array) and its
/// children (a range of the next level's node array; empty for items).
#[derive(Debug, Clone)]
struct Node {
    name: Text,
    fields: Range<u32>,
    children: Range<u32>,
}

/// A products document as spans of scalar fields per level.
#[derive(Debug)]
pub struct ProductsView<'a> {
    input: &'a str,
    /// Escaped strings, and numbers and booleans as the strings flattening gives them.
    own: String,
    top: Vec<Field>,
    product_fields: Vec<Field>,
    version_fields: Vec<Field>,
    item_fields: Vec<Field>,
    products: Vec<Node>,
    versions: Vec<Node>,
    items: Vec<Node>,
}

/// One filter key's value as resolved at some level (`None`: not set there nor above).
type Resolved<'v> = Option<&'v str>;

impl<'a> ProductsView<'a> {
    /// The string a [`Text`] stands for.
    fn text(&self, t: Text) -> &str {
        let (source, start) = if t.start & OWNED != 0 {
            (self.own.as_str(), t.start & !OWNED)
        } else {
            (self.input, t.start)
        };
        let (start, len) = (start as usize, t.len as usize);
        // Texts are made by the parser from spans of these very strings, on char boundaries.
        source.get(start..start + len).unwrap_or_default()
    }

    /// The last value of `key` among `fields` (JSON's last duplicate wins, as in the model).
    fn lookup(&self, fields: &[Field], key: &str) -> Resolved<'_> {
        fields
            .iter()
            .rev()
            // The length first: most keys differ in it, and it needs no look at the text.
            .find(|f| f.key.len as usize == key.len() && self.text(f.key) == key)
            .map(|f| self.text(f.value))
    }

    fn fields_of<'v>(all: &'v [Field], node: &Node) -> &'v [Field] {
        all.get(node.fields.start as usize..node.fields.end as usize)
            .unwrap_or_default()
    }

    fn children<'v>(all: &'v [Node], node: &Node) -> &'v [Node] {
        all.get(node.children.start as usize..node.children.end as usize)
            .unwrap_or_default()
    }

    /// The number of items in the document.
    pub fn item_count(&self) -> usize {
        self.items.len()
    }

    /// Selects items exactly as [`crate::select`] does on the full model (same items, same
    /// order, same flattened fields), calling `f` for each with (product, version, item, fields).
    pub fn select(
        &self,
        filters: &FilterSet,
        max: Option<usize>,
        mut f: impl FnMut(&str, &str, &str, FlatItem<'_>),
    ) {
        let filters = filters.filters();
        // Each filter's value at the product, then version level, resolved once per node rather
        // than once per item (a key is looked up item -> version -> product -> top, as
        // flattening would resolve it).
        let mut at_product: Vec<Resolved<'_>> = vec![None; filters.len()];
        let mut at_version: Vec<Resolved<'_>> = vec![None; filters.len()];
        // (version name, version, range of `chosen`) for the versions that keep an item.
        let mut passing: Vec<(&str, &Node, Range<usize>)> = Vec::new();
        let mut chosen: Vec<&Node> = Vec::new();
        for product in &self.products {
            let pname = self.text(product.name);
            let pfields = Self::fields_of(&self.product_fields, product);
            for (slot, flt) in at_product.iter_mut().zip(filters) {
                *slot = if flt.key() == "product_name" {
                    Some(pname)
                } else {
                    self.lookup(pfields, flt.key())
                        .or_else(|| self.lookup(&self.top, flt.key()))
                };
            }
            // Versions that keep at least one item (their passing items in `chosen`), newest
            // first, at most `max`.
            passing.clear();
            chosen.clear();
            for version in Self::children(&self.versions, product) {
                let vname = self.text(version.name);
                let vfields = Self::fields_of(&self.version_fields, version);
                for ((slot, above), flt) in at_version.iter_mut().zip(&at_product).zip(filters) {
                    *slot = if flt.key() == "version_name" {
                        Some(vname)
                    } else {
                        self.lookup(vfields, flt.key()).or(*above)
                    };
                }
                let from = chosen.len();
                for item in Self::children(&self.items, version) {
                    let ifields = Self::fields_of(&self.item_fields, item);
                    let pass = filters.iter().zip(&at_version).all(|(flt, above)| {
                        let value = if flt.key() == "item_name" {
                            Some(self.text(item.name))
                        } else {
                            self.lookup(ifields, flt.key()).or(*above)
                        };
                        flt.matches_value(value.unwrap_or(""))
                    });
                    if pass {
                        chosen.push(item);
                    }
                }
                if chosen.len() > from {
                    passing.push((vname, version, from..chosen.len()));
                }
            }
            passing.sort_by(|a, b| version_cmp(b.0, a.0));
            passing.truncate(max.unwrap_or(usize::MAX));
            for (_, version, run) in &passing {
                for item in &chosen[run.clone()] {
                    self.emit(product, version, item, &mut f);
                }
            }
        }
    }

    /// Flattens one item and hands it to `f`: the same keys, values and order as
    /// [`crate::flatten`] gives on the model.
    fn emit(
        &self,
        product: &Node,
        version: &Node,
        item: &Node,
        f: &mut impl FnMut(&str, &str, &str, FlatItem<'_>),
    ) {
        let (pname, vname, iname) = (
            self.text(product.name),
            self.text(version.name),
            self.text(item.name),
        );
        let mut flat = FlatItem::new();
        self.add(&mut flat, &self.top);
        self.add(&mut flat, Self::fields_of(&self.product_fields, product));
        flat.insert("product_name", Cow::Borrowed(pname));
        self.add(&mut flat, Self::fields_of(&self.version_fields, version));
        flat.insert("version_name", Cow::Borrowed(vname));
        self.add(&mut flat, Self::fields_of(&self.item_fields, item));
        flat.insert("item_name", Cow::Borrowed(iname));
        f(pname, vname, iname, flat);
    }

    fn add<'v>(&'v self, flat: &mut FlatItem<'v>, fields: &[Field]) {
        for field in fields {
            flat.insert(self.text(field.key), Cow::Borrowed(self.text(field.value)));
        }
    }
}

#[cfg(test)]
mod tests;
