//! Building a [`ProductsView`] in one pass over the input.
//!
//! The input is checked as UTF-8 once, then walked with the [`Cursor`], which gives plain
//! strings and integers as spans of the input; each becomes a [`Text`]. The walk carries the
//! builder down the levels so that every field lands in its level's one array: no allocation
//! per item.

use std::ops::Range;

use super::scan::{Cursor, Str, Value};
use super::{Field, Node, ProductsView, Text, OWNED};
use crate::products::PRODUCTS_FORMAT;
use crate::safe_path::check_safe_path;

/// Item fields whose value must be a string or null (`size`: a number or numeric string).
const STRING_FIELDS: [&str; 5] = ["path", "md5", "sha256", "sha512", "ftype"];

/// `True` and `False` (Python's spelling, as flattening gives booleans) open the own text.
pub(super) const BOOLEANS: &str = "TrueFalse";
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
        let input = checked_input(bytes)?;
        let mut builder = Builder::new(input);
        let mut cursor = Cursor::new(input);
        builder.level(&mut cursor, Level::Top, None)?;
        if !cursor.at_end() {
            return None;
        }
        builder.finish()
    }
}

/// The input as text, if the view can take it.
pub(super) fn checked_input(bytes: &[u8]) -> Option<&str> {
    let input = std::str::from_utf8(bytes).ok()?;
    // Spans are 31-bit offsets; a products file is megabytes, not gigabytes.
    (input.len() < OWNED as usize).then_some(input)
}

/// Where a second thread reads the rest of the `products` object from (see `split.rs`): when
/// the first thread reaches `at` between two products, it takes the other's work instead of
/// reading on.
pub(super) struct Split<'s, 'a> {
    pub(super) at: usize,
    pub(super) other: Option<std::thread::ScopedJoinHandle<'s, Option<(Builder<'a>, usize)>>>,
}

/// The view being built, and whether the document turned out to need the model.
pub(super) struct Builder<'a> {
    pub(super) view: ProductsView<'a>,
    pub(super) needs_model: bool,
}

impl<'a> Builder<'a> {
    pub(super) fn new(input: &'a str) -> Builder<'a> {
        Builder {
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
        }
    }

    /// The view, after the document-wide checks.
    pub(super) fn finish(self) -> Option<ProductsView<'a>> {
        let view = self.view;
        if self.needs_model
            || view.own.len() >= OWNED as usize
            || view.lookup(&view.top, "format") != Some(PRODUCTS_FORMAT)
            || view.lookup(&view.top, "content_id").is_none()
        {
            return None;
        }
        Some(view)
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

    pub(super) fn nodes(&mut self, level: Level) -> &mut Vec<Node> {
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
pub(super) enum Level {
    Top,
    Product,
    Version,
    Item,
}

impl Level {
    /// How deep this level's object is in the document (the top object is 1, its `products`
    /// object 2, and so on).
    fn depth(self) -> usize {
        match self {
            Level::Top => 1,
            Level::Product => 3,
            Level::Version => 5,
            Level::Item => 7,
        }
    }

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

impl<'a> Builder<'a> {
    pub(super) fn text(&mut self, s: Str) -> Text {
        match s {
            Str::Plain(start, end) => self.span(start, end),
            Str::Escaped(text) => self.owned(&text),
        }
    }

    /// `input[start..end]` as a [`Text`] (the input is under 2 GiB: `parse` checked).
    fn span(&self, start: usize, end: usize) -> Text {
        Text {
            start: start as u32,
            len: (end - start) as u32,
        }
    }

    fn scalar(&mut self, value: Value) -> Scalar {
        match value {
            Value::Str(s) => Scalar::Str(self.text(s)),
            Value::PlainInt(start, end) => Scalar::Other(self.span(start, end)),
            Value::Number(text) => Scalar::Other(self.owned(&text)),
            Value::Bool(true) => Scalar::Other(TRUE),
            Value::Bool(false) => Scalar::Other(FALSE),
            Value::Null => Scalar::Null,
            Value::Compound => Scalar::Compound,
        }
    }

    /// Reads one level's object (the document, a product, a version or an item): its fields go
    /// to the level's array, its children to the next level's. Gives the ranges of both.
    pub(super) fn level(
        &mut self,
        cursor: &mut Cursor<'_>,
        level: Level,
        mut split: Option<&mut Split<'_, 'a>>,
    ) -> Option<(Range<u32>, Range<u32>)> {
        let first_field = self.fields(level).len();
        let mut children: Option<Range<u32>> = None;
        let mut more = cursor.open_object()?;
        while more {
            let key = cursor.string()?;
            let key = self.text(key);
            cursor.expect(b':')?;
            match level.children() {
                Some((child_key, child_level)) if self.view.text(key) == child_key => {
                    // Given twice: the model keeps the last; the view would keep both.
                    self.needs_model |= children.is_some();
                    let start = self.nodes(child_level).len();
                    self.children(cursor, child_level, split.take())?;
                    children = Some(index(start)..index(self.nodes(child_level).len()));
                }
                _ => {
                    let value = cursor.value(level.depth())?;
                    let value = self.scalar(value);
                    self.field(level, first_field, key, value);
                }
            }
            more = cursor.next_or_close(b'}')?;
        }
        let fields = index(first_field)..index(self.fields(level).len());
        Some((fields, children.unwrap_or(0..0)))
    }

    /// Reads the children of a level: an object of name -> level object.
    fn children(
        &mut self,
        cursor: &mut Cursor<'_>,
        level: Level,
        mut split: Option<&mut Split<'_, 'a>>,
    ) -> Option<()> {
        let first = self.nodes(level).len();
        let mut more = cursor.open_object()?;
        while more {
            if let Some(split) = split.as_deref_mut() {
                cursor.peek()?;
                if cursor.position() == split.at {
                    // The other thread read from here to the end of this object.
                    let (other, end) = split.other.take()?.join().ok()??;
                    self.absorb(other);
                    cursor.set_position(end);
                    break;
                }
            }
            let name = cursor.string()?;
            let name = self.text(name);
            cursor.expect(b':')?;
            let (fields, children) = self.level(cursor, level, None)?;
            self.nodes(level).push(Node {
                name,
                fields,
                children,
            });
            more = cursor.next_or_close(b'}')?;
        }
        let view = &self.view;
        self.needs_model |= view.has_duplicate_names(&view.level_nodes(level)[first..]);
        Some(())
    }

    /// Keeps one field, after the checks the model makes, so that the view never accepts what
    /// the model refuses: `_aliases` (which the view does not expand), the type of `format`,
    /// `content_id` and the typed item fields, a safe `path`, a `size` that is a non-negative
    /// integer.
    fn field(&mut self, level: Level, first_field: usize, key: Text, value: Scalar) {
        let view = &self.view;
        let name = view.text(key);
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
                            || (matches!(value, Scalar::Compound) && STRING_FIELDS.contains(&name))
                    }
                    _ => false,
                };
                refused
                    || view
                        .lookup(&view.level_fields(level)[first_field..], name)
                        .is_some()
            }
        };
        self.needs_model |= needs_model;
        if let Scalar::Str(value) | Scalar::Other(value) = value {
            self.fields(level).push(Field { key, value });
        }
    }
}

/// An array index as the view stores it; past `u32` (billions of fields) the view gives up.
fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}
