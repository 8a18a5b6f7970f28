//! `products:1.0` documents: product > version > item, each level a bag of fields.

use indexmap::IndexMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::kept::{self, Entry, Named};
use crate::pretty::{self, ObjectWriter};
use crate::safe_path::check_safe_path;
use crate::tree::{join, kind_of, members, serialize_with_children, take_children, Ctx, Map};

/// The `format` of a products document.
pub const PRODUCTS_FORMAT: &str = "products:1.0";

/// Fields whose value must be a string when present on an item.
const STRING_ITEM_FIELDS: [&str; 5] = ["path", "md5", "sha256", "sha512", "ftype"];

/// A `products:1.0` document.
///
/// Every field is kept, in its original order, so that parsing then serialising gives the same
/// JSON value back. Typed accessors cover the fields with meaning.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Products {
    /// Top-level fields other than `products` (`content_id`, `format`, `datatype`, `updated`,
    /// `_aliases`, and anything else).
    pub fields: Map,
    /// The products, in file order.
    pub products: IndexMap<String, Product>,
    products_pos: Option<usize>,
}

/// One product: its fields and its versions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Product {
    /// Fields other than `versions`.
    pub fields: Map,
    /// The versions, in file order (use [`crate::sorted_versions`] for newest first).
    pub versions: IndexMap<String, Version>,
    versions_pos: Option<usize>,
}

/// One version of a product: its fields and its items.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Version {
    /// Fields other than `items`.
    pub fields: Map,
    /// The items, in file order.
    pub items: IndexMap<String, Item>,
    items_pos: Option<usize>,
}

/// One item: a file to download (`path`, `size`, checksums) or a cloud image id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Item {
    /// All fields of the item.
    pub fields: Map,
}

impl Products {
    /// An empty products document with the given content id and datatype.
    pub fn new(content_id: &str, datatype: &str) -> Products {
        let mut fields = Map::new();
        fields.insert("content_id".into(), Value::String(content_id.into()));
        fields.insert("datatype".into(), Value::String(datatype.into()));
        fields.insert("format".into(), Value::String(PRODUCTS_FORMAT.into()));
        Products {
            fields,
            products: IndexMap::new(),
            products_pos: None,
        }
    }

    /// Parses a products document. `file` names the source in errors.
    ///
    /// Checks the structure (objects where objects belong), the types of the item fields with
    /// meaning (`size` an integer or numeric string, `path` and checksums strings) and that every
    /// `path` is safe ([`crate::check_safe_path`]).
    pub fn from_slice(bytes: &[u8], file: &str) -> Result<Products> {
        let ctx = Ctx { file };
        let map = ctx.parse_object(bytes)?;
        Products::from_map(map, file)
    }

    /// Builds a products document from an already parsed JSON object.
    pub fn from_map(mut fields: Map, file: &str) -> Result<Products> {
        let ctx = Ctx { file };
        match ctx.opt_str(&fields, "format", "")? {
            Some(PRODUCTS_FORMAT) => {}
            Some(other) => {
                return Err(ctx.field_err(
                    "format",
                    format!("expected {PRODUCTS_FORMAT:?}, found {other:?}"),
                ))
            }
            None => return Err(ctx.field_err("format", "missing")),
        }
        if ctx.opt_str(&fields, "content_id", "")?.is_none() {
            return Err(ctx.field_err("content_id", "missing"));
        }
        let (children, products_pos) = take_children(&mut fields, "products");
        let mut products = IndexMap::new();
        if let Some(children) = children {
            let children = ctx.object(children, "products")?;
            products.reserve(children.len());
            for (name, value) in children {
                let p = join("products", &name);
                let product = Product::from_value(&ctx, value, &p)?;
                products.insert(name, product);
            }
        }
        Ok(Products {
            fields,
            products,
            products_pos,
        })
    }

    /// Serialises as pretty JSON (key order kept), with a final newline.
    pub fn to_vec_pretty(&self) -> Vec<u8> {
        crate::to_vec_pretty(self)
    }

    /// [`Products::to_vec_pretty`] for a document of any size: the same bytes, written into room
    /// made at once for its size (a large stream is megabytes: growing a buffer step by step
    /// copies it over and over), the products rendered on up to `threads` threads, each
    /// taking a run of them of about the same size.
    pub fn to_vec_pretty_parallel(&self, threads: usize) -> Vec<u8> {
        // Serialising our own in-memory maps cannot fail (string keys only).
        self.write_pretty_parallel(threads)
            .unwrap_or_else(|_| self.to_vec_pretty())
    }

    fn write_pretty_parallel(&self, threads: usize) -> serde_json::Result<Vec<u8>> {
        // About the bytes a pretty-printed item takes (checksums alone are 64 or more); room
        // not used is never touched.
        const PER_ITEM: usize = 512;
        let room = |p: &Product| 256 + PER_ITEM * p.item_count();
        let mut out = Vec::with_capacity(4096 + self.products.values().map(room).sum::<usize>());
        let products = Named(&self.products);
        let members = members(
            &self.fields,
            "products",
            &products,
            self.products_pos,
            self.products.is_empty(),
        );
        // An object with a key holding a lone surrogate is one raw text (kept.rs): not split.
        let split = threads > 1
            && kept::plain_keys(members.iter().map(|(k, _)| *k))
            && kept::plain_keys(self.products.keys().map(String::as_str));
        if !split {
            pretty::write_pretty(&mut out, self, 0)?;
            out.push(b'\n');
            return Ok(out);
        }
        let mut top = ObjectWriter::begin(&mut out, 0)?;
        for (key, member) in &members {
            let key = kept::wire_key(key);
            match member {
                Entry::Child(products) => {
                    let mut inner = top.object_member(&mut out, &key)?;
                    let runs = self.product_runs(threads);
                    inner.members_parallel(
                        &mut out,
                        products.0,
                        &runs,
                        room,
                        |w, out, name, p| w.member(out, &kept::wire_key(name), p),
                    )?;
                    inner.end(&mut out)?;
                }
                json => top.member(&mut out, &key, json)?,
            }
        }
        top.end(&mut out)?;
        out.push(b'\n');
        Ok(out)
    }

    /// Cuts the products into up to `parts` contiguous runs holding about the same number of
    /// items, to share work on a large document among threads: the bounds, from 0 to the
    /// number of products (an empty product counts as one item).
    pub fn product_runs(&self, parts: usize) -> Vec<usize> {
        let weights: Vec<usize> = self.products.values().map(|p| 1 + p.item_count()).collect();
        split_by_weight(&weights, parts)
    }

    /// `content_id`.
    pub fn content_id(&self) -> &str {
        self.fields
            .get("content_id")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `datatype` (`image-downloads`, `image-ids`, `content-download`, …), if given.
    pub fn datatype(&self) -> Option<&str> {
        self.fields.get("datatype").and_then(Value::as_str)
    }

    /// `updated` (an RFC 2822 date), if given.
    pub fn updated(&self) -> Option<&str> {
        self.fields.get("updated").and_then(Value::as_str)
    }

    /// Expands `_aliases` in place: wherever a field named in `_aliases` has a value listed
    /// there, the mapped fields are merged into the same object (docs/format.md, "Files and entry points"). An unknown value is an
    /// error naming the field.
    pub fn expand_aliases(&mut self, file: &str) -> Result<()> {
        let Some(Value::Object(aliases)) = self.fields.get("_aliases").cloned() else {
            return Ok(());
        };
        let ctx = Ctx { file };
        expand_map(&ctx, &mut self.fields, &aliases, "")?;
        for (pname, product) in &mut self.products {
            let ppath = join("products", pname);
            expand_map(&ctx, &mut product.fields, &aliases, &ppath)?;
            for (vname, version) in &mut product.versions {
                let vpath = join(&join(&ppath, "versions"), vname);
                expand_map(&ctx, &mut version.fields, &aliases, &vpath)?;
                for (iname, item) in &mut version.items {
                    let ipath = join(&join(&vpath, "items"), iname);
                    expand_map(&ctx, &mut item.fields, &aliases, &ipath)?;
                }
            }
        }
        Ok(())
    }

    /// Looks an item up by product, version and item name.
    pub fn item(&self, product: &str, version: &str, item: &str) -> Option<&Item> {
        self.products
            .get(product)?
            .versions
            .get(version)?
            .items
            .get(item)
    }

    /// Number of items in the document.
    pub fn item_count(&self) -> usize {
        self.products.values().map(Product::item_count).sum()
    }
}

/// `_aliases` expansion of one object (and the objects nested in its values).
fn expand_map(ctx: &Ctx<'_>, fields: &mut Map, aliases: &Map, at: &str) -> Result<()> {
    let keys: Vec<String> = fields
        .keys()
        .filter(|k| k.as_str() != "_aliases")
        .cloned()
        .collect();
    for key in keys {
        let Some(Value::Object(table)) = aliases.get(&key) else {
            continue;
        };
        let Some(Value::String(value)) = fields.get(&key) else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        match table.get(value) {
            Some(Value::Object(merge)) => {
                for (k, v) in merge {
                    fields.insert(k.clone(), v.clone());
                }
            }
            Some(other) => {
                return Err(ctx.field_err(
                    join(&join("_aliases", &key), value),
                    format!("expected an object, found {}", kind_of(other)),
                ))
            }
            None => {
                return Err(ctx.field_err(
                    join(at, &key),
                    format!("value {value:?} is not defined in _aliases.{key}"),
                ))
            }
        }
    }
    for (key, value) in fields.iter_mut() {
        if key != "_aliases" {
            expand_nested(ctx, value, aliases, &join(at, key))?;
        }
    }
    Ok(())
}

fn expand_nested(ctx: &Ctx<'_>, value: &mut Value, aliases: &Map, at: &str) -> Result<()> {
    match value {
        Value::Object(map) => expand_map(ctx, map, aliases, at),
        Value::Array(list) => {
            for (i, v) in list.iter_mut().enumerate() {
                expand_nested(ctx, v, aliases, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

impl Product {
    /// A product with no fields and no versions.
    pub fn new() -> Product {
        Product::default()
    }

    /// Number of items in the product.
    pub fn item_count(&self) -> usize {
        self.versions.values().map(|v| v.items.len()).sum()
    }

    fn from_value(ctx: &Ctx<'_>, value: Value, at: &str) -> Result<Product> {
        let mut fields = ctx.object(value, at)?;
        let (children, versions_pos) = take_children(&mut fields, "versions");
        let mut versions = IndexMap::new();
        if let Some(children) = children {
            let vp = join(at, "versions");
            let children = ctx.object(children, &vp)?;
            versions.reserve(children.len());
            for (name, value) in children {
                let p = join(&vp, &name);
                let version = Version::from_value(ctx, value, &p)?;
                versions.insert(name, version);
            }
        }
        Ok(Product {
            fields,
            versions,
            versions_pos,
        })
    }
}

impl Version {
    /// A version with no fields and no items.
    pub fn new() -> Version {
        Version::default()
    }

    fn from_value(ctx: &Ctx<'_>, value: Value, at: &str) -> Result<Version> {
        let mut fields = ctx.object(value, at)?;
        let (children, items_pos) = take_children(&mut fields, "items");
        let mut items = IndexMap::new();
        if let Some(children) = children {
            let ip = join(at, "items");
            let children = ctx.object(children, &ip)?;
            items.reserve(children.len());
            for (name, value) in children {
                let p = join(&ip, &name);
                let fields = ctx.object(value, &p)?;
                check_item(ctx, &fields, &p)?;
                items.insert(name, Item { fields });
            }
        }
        Ok(Version {
            fields,
            items,
            items_pos,
        })
    }
}

/// Type checks of the item fields that carry meaning.
fn check_item(ctx: &Ctx<'_>, fields: &Map, at: &str) -> Result<()> {
    for key in STRING_ITEM_FIELDS {
        ctx.opt_str(fields, key, at)?;
    }
    if let Some(size) = fields.get("size") {
        parse_size(size).map_err(|msg| ctx.json_err(join(at, "size"), msg))?;
    }
    if let Some(Value::String(path)) = fields.get("path") {
        if let Err(Error::UnsafePath { reason, .. }) = check_safe_path(path) {
            return Err(ctx.field_err(join(at, "path"), format!("unsafe path {path:?}: {reason}")));
        }
    }
    Ok(())
}

/// Reads a `size` field: a non-negative integer, or a string of decimal digits (seen in the wild).
pub fn parse_size(value: &Value) -> std::result::Result<u64, String> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("expected a non-negative integer, found {n}")),
        Value::String(s) if crate::is_kept(s) => {
            Err(format!("expected an integer, found {}", kind_of(value)))
        }
        Value::String(s) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("expected an integer, found string {s:?}")),
        other => Err(format!("expected an integer, found {}", kind_of(other))),
    }
}

/// Cuts `weights` into up to `parts` contiguous runs of about the same total: the bounds, from
/// 0 to `weights.len()`.
pub(crate) fn split_by_weight(weights: &[usize], parts: usize) -> Vec<usize> {
    let total: usize = weights.iter().sum();
    let parts = parts.clamp(1, weights.len().max(1));
    let mut bounds = vec![0];
    let mut sum = 0;
    for (i, pair) in weights.windows(2).enumerate() {
        if bounds.len() == parts {
            break;
        }
        sum += pair[0];
        // Scaled by `parts`: the run so far against its share, cut here when it reaches the
        // share or when taking the next one would overshoot it by more than stopping falls short.
        let (here, next, share) = (sum * parts, (sum + pair[1]) * parts, total * bounds.len());
        if here >= share || (next > share && next - share > share - here) {
            bounds.push(i + 1);
        }
    }
    bounds.push(weights.len());
    bounds
}

impl Item {
    /// A field as a string, if it is one.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    /// `path`, relative to the mirror root.
    pub fn path(&self) -> Option<&str> {
        self.get_str("path")
    }

    /// `size` in bytes (an integer or numeric string in the document).
    pub fn size(&self) -> Option<u64> {
        self.fields.get("size").and_then(|v| parse_size(v).ok())
    }
}

impl Serialize for Products {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serialize_with_children(
            serializer,
            &self.fields,
            "products",
            &self.products,
            self.products_pos,
            self.products.is_empty(),
        )
    }
}

impl Serialize for Product {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serialize_with_children(
            serializer,
            &self.fields,
            "versions",
            &self.versions,
            self.versions_pos,
            self.versions.is_empty(),
        )
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serialize_with_children(
            serializer,
            &self.fields,
            "items",
            &self.items,
            self.items_pos,
            self.items.is_empty(),
        )
    }
}

impl Serialize for Item {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        crate::tree::WireMap(&self.fields).serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{
 "datatype": "image-downloads",
 "products": {
  "com.example:p1": {
   "versions": {
    "20150915": {
     "items": {
      "item1": {"ftype": "text", "path": "p1/text.txt", "sha256": "ab", "size": 38}
     },
     "label": "release"
    }
   },
   "arch": "amd64"
  }
 },
 "format": "products:1.0",
 "content_id": "com.example:download",
 "extra": [1, 2]
}"#;

    #[test]
    fn round_trip_keeps_values_and_key_order() {
        let p = Products::from_slice(DOC.as_bytes(), "doc.json").unwrap();
        let out = serde_json::to_string(&p).unwrap();
        let original: Value = serde_json::from_str(DOC).unwrap();
        assert_eq!(out, serde_json::to_string(&original).unwrap());
        assert_eq!(p.content_id(), "com.example:download");
        assert_eq!(
            p.item("com.example:p1", "20150915", "item1")
                .unwrap()
                .size(),
            Some(38)
        );
    }

    #[test]
    fn bad_size_names_file_and_field() {
        let doc = DOC.replace("\"size\": 38", "\"size\": \"big\"");
        let err = Products::from_slice(doc.as_bytes(), "x.json")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "x.json: products.com.example:p1.versions.20150915.items.item1.size: expected an integer, found string \"big\""
        );
    }

    #[test]
    fn unsafe_path_is_refused_at_parse() {
        let doc = DOC.replace("p1/text.txt", "../../etc/passwd");
        let err = Products::from_slice(doc.as_bytes(), "x.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("items.item1.path: unsafe path"), "{err}");
    }

    #[test]
    fn wrong_format_is_refused() {
        let doc = DOC.replace("products:1.0", "index:1.0");
        let err = Products::from_slice(doc.as_bytes(), "x.json")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "x.json: format: expected \"products:1.0\", found \"index:1.0\""
        );
    }

    #[test]
    fn aliases_merge_and_unknown_value_is_an_error() {
        let doc = r#"{"format":"products:1.0","content_id":"c","_aliases":{"crsn":{"r1":{"region":"us-east-1","endpoint":"https://e"}}},
          "products":{"p":{"versions":{"v":{"items":{"i":{"crsn":"r1","id":"ami-1"}}}}}}}"#;
        let mut p = Products::from_slice(doc.as_bytes(), "a.json").unwrap();
        p.expand_aliases("a.json").unwrap();
        let item = p.item("p", "v", "i").unwrap();
        assert_eq!(item.get_str("region"), Some("us-east-1"));
        let bad = doc.replace("\"crsn\":\"r1\"", "\"crsn\":\"r9\"");
        let mut p = Products::from_slice(bad.as_bytes(), "a.json").unwrap();
        let err = p.expand_aliases("a.json").unwrap_err().to_string();
        assert_eq!(err, "a.json: products.p.versions.v.items.i.crsn: value \"r9\" is not defined in _aliases.crsn");
    }
}

#[cfg(test)]
mod round_trip_regressions {
    use super::*;

    // Found by the `document` fuzz target: absent child collections must stay absent.
    #[test]
    fn absent_children_stay_absent() {
        for doc in [
            r#"{"format":"products:1.0","content_id":"c","products":{"p":{}}}"#,
            r#"{"format":"products:1.0","content_id":"c","products":{"p":{"versions":{"v":{}}}}}"#,
            r#"{"format":"products:1.0","content_id":"c"}"#,
        ] {
            let p = Products::from_slice(doc.as_bytes(), "d").unwrap();
            assert_eq!(serde_json::to_string(&p).unwrap(), doc);
        }
    }
}

#[cfg(test)]
mod parallel_pretty {
    use super::*;

    /// What a document was written as before the parallel writer: serde_json's own pretty
    /// printer, and a newline.
    fn sequential(doc: &Products) -> String {
        let mut out = serde_json::to_vec_pretty(doc).unwrap();
        out.push(b'\n');
        String::from_utf8(out).unwrap()
    }

    fn check(text: &str) {
        let doc = Products::from_slice(text.as_bytes(), "d").unwrap_or_else(|e| panic!("{e}"));
        let expected = sequential(&doc);
        assert_eq!(String::from_utf8(doc.to_vec_pretty()).unwrap(), expected);
        for threads in [1, 2, 3, 4, 16] {
            let out = String::from_utf8(doc.to_vec_pretty_parallel(threads)).unwrap();
            assert_eq!(out, expected, "{threads} threads, from {text}");
        }
    }

    fn many(first: &str, last: &str) -> String {
        let products: Vec<String> = (0..9)
            .map(|i| {
                let versions: Vec<String> = (0..i % 4)
                    .map(|v| format!(r#""v{v}":{{"items":{{"i":{{"path":"p{i}/{v}","size":{v},"sha256":"00"}}}},"label":"x"}}"#))
                    .collect();
                format!(r#""com.example:p{i}":{{"arch":"a{i}","versions":{{{}}}}}"#, versions.join(","))
            })
            .collect();
        format!("{{{first}\"products\":{{{}}}{last}}}", products.join(","))
    }

    #[test]
    fn parts_share_the_weight() {
        assert_eq!(split_by_weight(&[], 2), [0, 0]);
        assert_eq!(split_by_weight(&[5], 2), [0, 1]);
        assert_eq!(split_by_weight(&[1, 1, 1, 1], 1), [0, 4]);
        assert_eq!(split_by_weight(&[1, 1, 1, 1], 2), [0, 2, 4]);
        assert_eq!(split_by_weight(&[10, 1, 1, 1], 2), [0, 1, 4]);
        assert_eq!(split_by_weight(&[1, 1, 1, 10], 2), [0, 3, 4]);
        assert_eq!(split_by_weight(&[1, 1, 1], 8), [0, 1, 2, 3]);
        assert_eq!(split_by_weight(&[0, 0, 0], 2), [0, 1, 3]);
    }

    #[test]
    fn products_position_is_kept() {
        check(&many(r#""format":"products:1.0","content_id":"c","#, ""));
        check(&many("", r#","format":"products:1.0","content_id":"c""#));
        check(&many(
            r#""format":"products:1.0","#,
            r#","content_id":"c","updated":"now","n":[1,{}]"#,
        ));
    }

    #[test]
    fn empty_absent_and_single_products() {
        check(r#"{"format":"products:1.0","content_id":"c"}"#);
        check(r#"{"format":"products:1.0","products":{},"content_id":"c"}"#);
        check(r#"{"format":"products:1.0","content_id":"c","products":{"p":{}}}"#);
        check(
            r#"{"format":"products:1.0","content_id":"c","products":{"p":{"versions":{}},"q":{"versions":{"v":{}}}}}"#,
        );
        let mut made = Products::new("c", "content-download");
        made.products.insert("p".into(), Product::new());
        made.products.insert("q".into(), Product::new());
        assert_eq!(
            String::from_utf8(made.to_vec_pretty_parallel(2)).unwrap(),
            sequential(&made)
        );
    }

    #[test]
    fn kept_numbers_strings_and_keys_are_written_as_read() {
        // Kept values and keys inside products, and at the top.
        check(
            r#"{"format":"products:1.0","content_id":"c","big":123456789012345678901234567890,
          "\ud800top":{"\udc00":[1e400]},"products":{"a":{"x":1},"p\ufdd0":{"versions":{"v":{"\udfffk":"-0",
          "items":{"i\ud83d":{"path":"a","size":1,"n":-1e400,"s":"\ufdd0\ud800"}}}}},"z":{"k":"\ud800"}}}"#,
        );
        check(
            r#"{"format":"products:1.0","content_id":"c","products":{"a":{"x":-1e400},"b":{"\ud800":1},"c":{"y":"\udc00"}}}"#,
        );
        // A product name holding a lone surrogate: the products object is one raw text.
        check(
            r#"{"format":"products:1.0","content_id":"c","products":{"a":{"x":1},"p\ud800":{"y":2},"z":{}}}"#,
        );
        // A top-level key holding one: the whole document is.
        check(
            r#"{"format":"products:1.0","\ud800":1,"content_id":"c","products":{"a":{"x":1},"b":{"y":2}}}"#,
        );
    }

    #[test]
    fn escapes_in_names_and_values() {
        check(
            r#"{"format":"products:1.0","content_id":"c\"\\\n","products":{"a\"b":{"t":"\u0001\t"},"\u00e9\ud83d\ude00":{"u":"/"}}}"#,
        );
    }
}
