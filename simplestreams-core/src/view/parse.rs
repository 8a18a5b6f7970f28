//! Building a [`ProductsView`] in one pass of serde_json over the input.
//!
//! The input is checked as UTF-8 once, then read with `serde_json::Deserializer::from_str`,
//! which hands out unescaped strings as slices of the input without checking them again; each
//! becomes a [`Text`] span. Seeds carry the builder down the levels so that every field lands in
//! its level's one array: no allocation per item.

use std::fmt;
use std::ops::Range;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Field, Node, ProductsView, Text, OWNED};
use crate::products::PRODUCTS_FORMAT;
use crate::safe_path::check_safe_path;
use crate::tree::python_float_repr;

/// Item fields whose value must be a string or null (`size`: a number or numeric string).
const STRING_FIELDS: [&str; 5] = ["path", "md5", "sha256", "sha512", "ftype"];

/// `True` and `False` (Python's spelling, as flattening gives booleans) open the own text.
const BOOLEANS: &str = "TrueFalse";
const TRUE: Text = Text {
    start: OWNED,
    len: 4,
};
const FALSE: Text = Text {
    start: OWNED | 4,
    len: 5,
};

impl<'a> ProductsView<'a> {
    /// Parses `bytes` as a products document, or `None` when the full model is needed (see the
    /// module docs): `None` is never a verdict on the document, only a request for the slow path.
    pub fn parse(bytes: &'a [u8]) -> Option<ProductsView<'a>> {
        let input = std::str::from_utf8(bytes).ok()?;
        // Spans are 31-bit offsets; a products file is megabytes, not gigabytes.
        if input.len() >= OWNED as usize {
            return None;
        }
        let mut builder = Builder {
            base: input.as_ptr() as usize,
            view: ProductsView {
                input,
                own: String::from(BOOLEANS),
                top: Vec::new(),
                product_fields: Vec::new(),
                version_fields: Vec::new(),
                item_fields: Vec::new(),
                products: Vec::new(),
                versions: Vec::new(),
                items: Vec::new(),
            },
            needs_model: false,
        };
        let mut de = serde_json::Deserializer::from_str(input);
        LevelSeed {
            b: &mut builder,
            level: Level::Top,
        }
        .deserialize(&mut de)
        .ok()?;
        de.end().ok()?;
        let view = builder.view;
        if builder.needs_model
            || view.own.len() >= OWNED as usize
            || view.lookup(&view.top, "format") != Some(PRODUCTS_FORMAT)
            || view.lookup(&view.top, "content_id").is_none()
        {
            return None;
        }
        Some(view)
    }
}

/// The view being built, and whether the document turned out to need the model.
struct Builder<'a> {
    /// Address of the input, to turn borrowed strings into offsets.
    base: usize,
    view: ProductsView<'a>,
    needs_model: bool,
}

impl<'a> Builder<'a> {
    /// A string borrowed from the input (a slice of it: serde_json's `visit_borrowed_str`).
    fn borrowed(&mut self, s: &'a str) -> Text {
        let offset = (s.as_ptr() as usize).wrapping_sub(self.base);
        match (u32::try_from(offset), u32::try_from(s.len())) {
            (Ok(start), Ok(len)) if offset + s.len() <= self.view.input.len() => {
                Text { start, len }
            }
            // Not a slice of the input after all: keep a copy.
            _ => self.owned(s),
        }
    }

    /// A string kept in the view's own text.
    fn owned(&mut self, s: &str) -> Text {
        let start = self.view.own.len();
        self.view.own.push_str(s);
        self.own_span(start)
    }

    /// The text appended to the own buffer since `start`.
    fn own_span(&mut self, start: usize) -> Text {
        let len = self.view.own.len() - start;
        match (u32::try_from(start), u32::try_from(len)) {
            (Ok(start), Ok(len)) if start < OWNED => Text {
                start: start | OWNED,
                len,
            },
            // Past 2 GiB of escaped text: `parse` sees the length and gives up.
            _ => Text {
                start: OWNED,
                len: 0,
            },
        }
    }

    fn fields(&mut self, level: Level) -> &mut Vec<Field> {
        match level {
            Level::Top => &mut self.view.top,
            Level::Product => &mut self.view.product_fields,
            Level::Version => &mut self.view.version_fields,
            Level::Item => &mut self.view.item_fields,
        }
    }

    fn nodes(&mut self, level: Level) -> &mut Vec<Node> {
        match level {
            // The top level is not a node.
            Level::Top | Level::Product => &mut self.view.products,
            Level::Version => &mut self.view.versions,
            Level::Item => &mut self.view.items,
        }
    }
}

impl ProductsView<'_> {
    fn level_fields(&self, level: Level) -> &[Field] {
        match level {
            Level::Top => &self.top,
            Level::Product => &self.product_fields,
            Level::Version => &self.version_fields,
            Level::Item => &self.item_fields,
        }
    }

    fn level_nodes(&self, level: Level) -> &[Node] {
        match level {
            Level::Top | Level::Product => &self.products,
            Level::Version => &self.versions,
            Level::Item => &self.items,
        }
    }

    /// Whether two of `nodes` have the same name (the model keeps only the last of them).
    fn has_duplicate_names(&self, nodes: &[Node]) -> bool {
        if nodes.len() <= 16 {
            return nodes.iter().enumerate().any(|(i, a)| {
                nodes[..i]
                    .iter()
                    .any(|b| self.text(a.name) == self.text(b.name))
            });
        }
        let mut seen = std::collections::HashSet::with_capacity(nodes.len());
        !nodes.iter().all(|n| seen.insert(self.text(n.name)))
    }
}

/// Which level a map is, and so which key holds its children.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Top,
    Product,
    Version,
    Item,
}

impl Level {
    fn children(self) -> Option<(&'static str, Level)> {
        match self {
            Level::Top => Some(("products", Level::Product)),
            Level::Product => Some(("versions", Level::Version)),
            Level::Version => Some(("items", Level::Item)),
            Level::Item => None,
        }
    }
}

/// A field value as the view sees it.
enum Scalar {
    /// A JSON string.
    Str(Text),
    /// A number or boolean, as the string flattening gives it.
    Other(Text),
    /// `null`: not a field for flattening.
    Null,
    /// A list or object: not a field for flattening either.
    Compound,
}

/// Reads a key or a name.
struct TextSeed<'b, 'a>(&'b mut Builder<'a>);

impl<'de> DeserializeSeed<'de> for TextSeed<'_, 'de> {
    type Value = Text;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Text, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for TextSeed<'_, 'de> {
    type Value = Text;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text, E> {
        Ok(self.0.borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Text, E> {
        Ok(self.0.owned(v))
    }
}

/// Reads a field value.
struct ScalarSeed<'b, 'a>(&'b mut Builder<'a>);

impl<'de> DeserializeSeed<'de> for ScalarSeed<'_, 'de> {
    type Value = Scalar;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(self)
    }
}

impl ScalarSeed<'_, '_> {
    /// Writes a number's string form into the own text.
    fn number(self, v: impl itoa::Integer) -> Scalar {
        let b = self.0;
        let start = b.view.own.len();
        b.view.own.push_str(itoa::Buffer::new().format(v));
        Scalar::Other(b.own_span(start))
    }
}

impl<'de> Visitor<'de> for ScalarSeed<'_, 'de> {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar, E> {
        Ok(Scalar::Str(self.0.borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(self.0.owned(v)))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Other(if v { TRUE } else { FALSE }))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
        Ok(self.number(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
        Ok(self.number(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Other(self.0.owned(&python_float_repr(v))))
    }
    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Compound)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Compound)
    }
}

/// Reads one level's map (the document, a product, a version or an item): its fields go to the
/// level's array, its children to the next level's. Gives the ranges of both.
struct LevelSeed<'b, 'a> {
    b: &'b mut Builder<'a>,
    level: Level,
}

impl<'de> DeserializeSeed<'de> for LevelSeed<'_, 'de> {
    type Value = (Range<u32>, Range<u32>);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LevelSeed<'_, 'de> {
    type Value = (Range<u32>, Range<u32>);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let LevelSeed { b, level } = self;
        let first_field = b.fields(level).len();
        let mut children: Option<Range<u32>> = None;
        while let Some(key) = map.next_key_seed(TextSeed(b))? {
            if let Some((child_key, child_level)) = level.children() {
                if b.view.text(key) == child_key {
                    // Given twice: the model keeps the last; the view would keep both.
                    b.needs_model |= children.is_some();
                    let start = b.nodes(child_level).len();
                    map.next_value_seed(ChildrenSeed {
                        b,
                        level: child_level,
                    })?;
                    children = Some(index(start)..index(b.nodes(child_level).len()));
                    continue;
                }
            }
            let value = map.next_value_seed(ScalarSeed(b))?;
            let view = &b.view;
            let name = view.text(key);
            // What the model checks, so that the view never accepts what the model refuses:
            // `_aliases` (which the view does not expand), the type of `format`, `content_id` and
            // the typed item fields, a safe `path`, a `size` that is a non-negative integer.
            let needs_model = match value {
                Scalar::Str(v) => match level {
                    Level::Top => name == "_aliases",
                    Level::Item => match name {
                        "path" => check_safe_path(view.text(v)).is_err(),
                        "size" => view.text(v).trim().parse::<u64>().is_err(),
                        _ => false,
                    },
                    _ => false,
                },
                // A number or boolean where the model wants a string or an integer.
                Scalar::Other(v) => match level {
                    Level::Top => matches!(name, "_aliases" | "format" | "content_id"),
                    Level::Item if name == "size" => view.text(v).parse::<u64>().is_err(),
                    Level::Item => STRING_FIELDS.contains(&name),
                    _ => false,
                },
                // Not a flattened field, but it may hide an earlier value of the same key (the
                // model keeps the last); null is allowed only for the string fields.
                Scalar::Null | Scalar::Compound => {
                    let refused = match level {
                        Level::Top => matches!(name, "_aliases" | "format" | "content_id"),
                        Level::Item => {
                            name == "size"
                                || (matches!(value, Scalar::Compound)
                                    && STRING_FIELDS.contains(&name))
                        }
                        _ => false,
                    };
                    refused
                        || view
                            .lookup(&view.level_fields(level)[first_field..], name)
                            .is_some()
                }
            };
            b.needs_model |= needs_model;
            if let Scalar::Str(value) | Scalar::Other(value) = value {
                b.fields(level).push(Field { key, value });
            }
        }
        let fields = index(first_field)..index(b.fields(level).len());
        Ok((fields, children.unwrap_or(0..0)))
    }
}

/// An array index as the view stores it; past `u32` (billions of fields) the view gives up.
fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Reads the children of a level: an object of name -> level map.
struct ChildrenSeed<'b, 'a> {
    b: &'b mut Builder<'a>,
    level: Level,
}

impl<'de> DeserializeSeed<'de> for ChildrenSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ChildrenSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ChildrenSeed { b, level } = self;
        let first = b.nodes(level).len();
        while let Some(name) = map.next_key_seed(TextSeed(b))? {
            let (fields, children) = map.next_value_seed(LevelSeed { b, level })?;
            b.nodes(level).push(Node {
                name,
                fields,
                children,
            });
        }
        let view = &b.view;
        b.needs_model |= view.has_duplicate_names(&view.level_nodes(level)[first..]);
        Ok(())
    }
}
