//! A read-only, zero-copy view of a products document, for queries over large streams.
//!
//! [`Products`](crate::Products) keeps every field as an owned JSON value so that documents
//! round-trip and can be edited; for a 25 MB stream that is over a million allocations. A query
//! needs far less: the scalar fields of each level, as the strings flattening gives them. This
//! view borrows those strings from the input buffer (only escaped strings and numbers are
//! copied), skips lists and objects, and filters items by looking keys up level by level, so
//! that only the items that pass are ever flattened.
//!
//! It covers the common case only. [`ProductsView::parse`] returns `None` when the document
//! needs the full model: `_aliases` (which rewrite fields), a field of the wrong type, an unsafe
//! `path`, or anything else unusual; callers then use [`crate::Document::from_slice`], which
//! also gives the precise error.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::filter::FilterSet;
use crate::flatten::FlatItem;
use crate::plan::version_cmp;
use crate::products::PRODUCTS_FORMAT;
use crate::safe_path::check_safe_path;
use crate::tree::python_float_repr;

/// Scalar fields of one level, as (key, string form) in file order.
pub type ViewFields<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// A products document as borrowed scalar fields per level.
#[derive(Debug, Default)]
pub struct ProductsView<'a> {
    /// Top-level scalar fields.
    pub fields: ViewFields<'a>,
    /// Products in file order.
    pub products: Vec<(Cow<'a, str>, ProductView<'a>)>,
    /// The document has `_aliases`, or a field the view cannot vouch for: use the full model.
    needs_model: bool,
}

/// One product of a [`ProductsView`].
#[derive(Debug, Default)]
pub struct ProductView<'a> {
    /// Scalar fields.
    pub fields: ViewFields<'a>,
    /// Versions in file order.
    pub versions: Vec<(Cow<'a, str>, VersionView<'a>)>,
}

/// One version of a [`ProductView`].
#[derive(Debug, Default)]
pub struct VersionView<'a> {
    /// Scalar fields.
    pub fields: ViewFields<'a>,
    /// Items in file order, each with its scalar fields.
    pub items: Vec<(Cow<'a, str>, ViewFields<'a>)>,
}

impl<'a> ProductsView<'a> {
    /// Parses `bytes` as a products document, or `None` when the full model is needed (see the
    /// module docs): `None` is never a verdict on the document, only a request for the slow path.
    pub fn parse(bytes: &'a [u8]) -> Option<ProductsView<'a>> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let view = ProductsView::deserialize(&mut de).ok()?;
        de.end().ok()?;
        if view.needs_model
            || view.get("format") != Some(PRODUCTS_FORMAT)
            || view.get("content_id").is_none()
        {
            return None;
        }
        view.items_are_sound().then_some(view)
    }

    fn get(&self, key: &str) -> Option<&str> {
        lookup(&self.fields, key)
    }

    /// The checks `Products::from_slice` makes on items, so that the view never accepts what the
    /// model refuses: a safe `path`, a numeric `size`.
    fn items_are_sound(&self) -> bool {
        self.products
            .iter()
            .flat_map(|(_, p)| &p.versions)
            .flat_map(|(_, v)| &v.items)
            .all(|(_, fields)| {
                fields.iter().all(|(k, v)| match k.as_ref() {
                    "path" => check_safe_path(v).is_ok(),
                    "size" => v.trim().parse::<u64>().is_ok(),
                    _ => true,
                })
            })
    }

    /// Selects items exactly as [`crate::select`] does on the full model (same items, same
    /// order, same flattened fields), calling `f` for each with (product, version, item, fields).
    pub fn select(
        &self,
        filters: &FilterSet,
        max: Option<usize>,
        mut f: impl FnMut(&str, &str, &str, FlatItem<'_>),
    ) {
        for (pname, product) in &self.products {
            // Versions that keep at least one item, newest first, at most `max`.
            let mut versions: Vec<(&str, Vec<usize>)> = product
                .versions
                .iter()
                .filter_map(|(vname, version)| {
                    let passing: Vec<usize> = (0..version.items.len())
                        .filter(|&i| {
                            let levels = Levels {
                                doc: self,
                                product: (pname, product),
                                version: (vname, version),
                                item: i,
                            };
                            filters
                                .filters()
                                .iter()
                                .all(|flt| flt.matches_value(levels.get(flt.key()).unwrap_or("")))
                        })
                        .collect();
                    (!passing.is_empty()).then_some((vname.as_ref(), passing))
                })
                .collect();
            versions.sort_by(|a, b| version_cmp(b.0, a.0));
            versions.truncate(max.unwrap_or(usize::MAX));
            for (vname, passing) in versions {
                // `vname` came from this product's versions; the lookup cannot miss.
                let Some((vkey, version)) = product.versions.iter().find(|(n, _)| n == vname)
                else {
                    continue;
                };
                for i in passing {
                    let (iname, ifields) = &version.items[i];
                    let mut flat = FlatItem::new();
                    add(&mut flat, &self.fields);
                    add(&mut flat, &product.fields);
                    flat.insert("product_name", Cow::Borrowed(pname.as_ref()));
                    add(&mut flat, &version.fields);
                    flat.insert("version_name", Cow::Borrowed(vkey.as_ref()));
                    add(&mut flat, ifields);
                    flat.insert("item_name", Cow::Borrowed(iname.as_ref()));
                    f(pname, vkey, iname, flat);
                }
            }
        }
    }
}

fn add<'f>(flat: &mut FlatItem<'f>, fields: &'f ViewFields<'_>) {
    for (k, v) in fields {
        flat.insert(k.as_ref(), Cow::Borrowed(v.as_ref()));
    }
}

/// The last value of `key` in a level (JSON's last duplicate wins, as in the full model).
fn lookup<'f>(fields: &'f ViewFields<'_>, key: &str) -> Option<&'f str> {
    fields
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_ref())
}

/// An item with its ancestors: looks a key up the way flattening would resolve it.
struct Levels<'v, 'a> {
    doc: &'v ProductsView<'a>,
    product: (&'v Cow<'a, str>, &'v ProductView<'a>),
    version: (&'v Cow<'a, str>, &'v VersionView<'a>),
    item: usize,
}

impl<'v> Levels<'v, '_> {
    fn get(&self, key: &str) -> Option<&'v str> {
        let (iname, ifields) = &self.version.1.items[self.item];
        if key == "item_name" {
            return Some(iname);
        }
        if let Some(v) = lookup(ifields, key) {
            return Some(v);
        }
        if key == "version_name" {
            return Some(self.version.0);
        }
        if let Some(v) = lookup(&self.version.1.fields, key) {
            return Some(v);
        }
        if key == "product_name" {
            return Some(self.product.0);
        }
        lookup(&self.product.1.fields, key).or_else(|| lookup(&self.doc.fields, key))
    }
}

// ---- deserialisation -------------------------------------------------------------------------

/// A field value: its scalar string form, `None` for lists, objects and null (never inherited).
struct Scalar<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(v))))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Borrowed(if v {
                    "True"
                } else {
                    "False"
                }))))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(python_float_repr(v)))))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Which level a map is, and so which key holds its children.
#[derive(Clone, Copy)]
enum Level {
    Top,
    Product,
    Version,
    Item,
}

/// What one level's map holds: its scalar fields, its children, and whether it needs the model.
#[derive(Default)]
struct LevelData<'a> {
    fields: ViewFields<'a>,
    products: Vec<(Cow<'a, str>, ProductView<'a>)>,
    versions: Vec<(Cow<'a, str>, VersionView<'a>)>,
    items: Vec<(Cow<'a, str>, ViewFields<'a>)>,
    needs_model: bool,
}

/// Item fields whose value must be a string (`size`: a number or numeric string).
const STRING_FIELDS: [&str; 5] = ["path", "md5", "sha256", "sha512", "ftype"];

struct LevelSeed(Level);

impl<'de> DeserializeSeed<'de> for LevelSeed {
    type Value = LevelData<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(LevelVisitor(self.0))
    }
}

struct LevelVisitor(Level);

impl<'de> Visitor<'de> for LevelVisitor {
    type Value = LevelData<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Items carry 5 to 10 fields: start there rather than growing 1, 2, 4, 8.
        let mut data = LevelData {
            fields: Vec::with_capacity(8),
            ..LevelData::default()
        };
        let children = match self.0 {
            Level::Top => Some(("products", Level::Product)),
            Level::Product => Some(("versions", Level::Version)),
            Level::Version => Some(("items", Level::Item)),
            Level::Item => None,
        };
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if let Some((child_key, child_level)) = children {
                if key == child_key {
                    let list = map.next_value_seed(ChildrenSeed(child_level))?;
                    for (name, child) in list {
                        data.needs_model |= child.needs_model;
                        match child_level {
                            Level::Product => data.products.push((
                                name,
                                ProductView {
                                    fields: child.fields,
                                    versions: child.versions,
                                },
                            )),
                            Level::Version => data.versions.push((
                                name,
                                VersionView {
                                    fields: child.fields,
                                    items: child.items,
                                },
                            )),
                            Level::Item => data.items.push((name, child.fields)),
                            Level::Top => {}
                        }
                    }
                    continue;
                }
            }
            if matches!(self.0, Level::Top) && key == "_aliases" {
                data.needs_model = true;
            }
            let Scalar(value) = map.next_value::<Scalar<'de>>()?;
            match value {
                Some(v) => data.fields.push((key, v)),
                // A typed item field that is not a scalar: the model reports it precisely.
                None if matches!(self.0, Level::Item)
                    && (key == "size" || STRING_FIELDS.contains(&key.as_ref())) =>
                {
                    data.needs_model = true
                }
                None => {}
            }
        }
        if matches!(self.0, Level::Item) {
            // Numbers and booleans where strings belong: let the model say so.
            data.needs_model |= data.fields.iter().any(|(k, v)| {
                STRING_FIELDS.contains(&k.as_ref())
                    && matches!(v, Cow::Owned(_))
                    && v.parse::<f64>().is_ok()
            });
        }
        Ok(data)
    }
}

/// The children of a level: an object of name → level map.
struct ChildrenSeed(Level);

impl<'de> DeserializeSeed<'de> for ChildrenSeed {
    type Value = Vec<(Cow<'de, str>, LevelData<'de>)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V(Level);
        impl<'de> Visitor<'de> for V {
            type Value = Vec<(Cow<'de, str>, LevelData<'de>)>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(name) = map.next_key::<Cow<'de, str>>()? {
                    out.push((name, map.next_value_seed(LevelSeed(self.0))?));
                }
                Ok(out)
            }
        }
        d.deserialize_map(V(self.0))
    }
}

impl<'de> Deserialize<'de> for ProductsView<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let data = LevelSeed(Level::Top).deserialize(d)?;
        Ok(ProductsView {
            fields: data.fields,
            products: data.products,
            needs_model: data.needs_model,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{select, Products};

    fn both(doc: &str, filters: &[&str], max: Option<usize>) -> (Vec<String>, Vec<String>) {
        let filters = FilterSet::parse(filters).unwrap();
        let model = Products::from_slice(doc.as_bytes(), "d").unwrap();
        let from_model: Vec<String> = select(&model, &filters, max)
            .iter()
            .map(|s| format!("{:?}", s.flat))
            .collect();
        let view = ProductsView::parse(doc.as_bytes()).expect("view");
        let mut from_view = Vec::new();
        view.select(&filters, max, |_, _, _, flat| {
            from_view.push(format!("{flat:?}"))
        });
        (from_model, from_view)
    }

    const DOC: &str = r#"{"format":"products:1.0","content_id":"c","ftype":"top","n":1.5,"list":[1,{"a":2}],
      "products":{
        "p1":{"arch":"amd64","versions":{
          "1":{"items":{"a":{"ftype":"x","size":10,"path":"f/a"}}},
          "3":{"label":"beta","items":{"a":{"ftype":"y","size":"11","ok":true}}},
          "2":{"items":{"a":{"ftype":"x"},"b":{"ftype":"x","item_name":"shadow","product_name":"mine"}}}}},
        "p0":{"versions":{"9":{"items":{"a":{"ftype":"x","esc":"t\u00e9\"x"}}}}}}}"#;

    #[test]
    fn view_selects_exactly_like_the_model() {
        for (filters, max) in [
            (&[][..], None),
            (&["ftype=x"][..], Some(1)),
            (&["ftype!=x"][..], None),
            (&["product_name~p", "version_name~^[12]$"][..], Some(5)),
            (&["item_name=b"][..], None),
            (&["n=1.5", "ok=True"][..], None),
            (&["arch="][..], None),
        ] {
            let (model, view) = both(DOC, filters, max);
            assert_eq!(model, view, "{filters:?} {max:?}");
        }
    }

    #[test]
    fn unusual_documents_ask_for_the_model() {
        let cases = [
            DOC.replace(
                "\"content_id\":\"c\",",
                "\"_aliases\":{},\"content_id\":\"c\",",
            ),
            DOC.replace("\"size\":10", "\"size\":[10]"),
            DOC.replace("\"size\":10", "\"size\":\"ten\""),
            DOC.replace("\"path\":\"f/a\"", "\"path\":\"../a\""),
            DOC.replace("\"path\":\"f/a\"", "\"path\":5"),
            DOC.replace("products:1.0", "index:1.0"),
            DOC.replace("\"products\":{", "\"products\":["),
            DOC.to_string() + "x",
        ];
        for doc in cases {
            assert!(ProductsView::parse(doc.as_bytes()).is_none(), "{doc}");
        }
        assert!(ProductsView::parse(DOC.as_bytes()).is_some());
    }
}
