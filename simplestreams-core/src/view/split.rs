//! Reading a large products document on two threads.
//!
//! Products are independent of each other, so the `products` object can be read in two halves
//! at once, if only the second half's start is known. It is guessed: in a pretty-printed
//! document every product name starts a line at the same indentation as the first one, after
//! the `},` that ends the product before it. A second thread reads products from the first such
//! line past the middle of the input to the end of the `products` object. The first thread reads
//! from the start as usual and, if it arrives at that very byte between two products, takes the
//! second thread's work and goes on after it. Arriving there proves the guess: the reading state
//! at a member boundary of `products` is the same whichever thread reached it, so the result is
//! exactly the one-thread result. If it never arrives there (the guess was inside a string, or
//! at another level), it reads on alone and the second thread's work is dropped.

use super::parse::{checked_input, Builder, Level, Split, BOOLEANS};
use super::scan::{Cursor, Str};
use super::{Field, Node, ProductsView, Text, OWNED};

impl<'a> ProductsView<'a> {
    /// [`ProductsView::parse`] on two threads (see the module docs); the same result, in about
    /// 60 % of the time for a large document on an idle second core. Falls back to one thread
    /// when the document gives no place to split (not pretty-printed, or too small).
    pub fn parse_on_two_threads(bytes: &'a [u8]) -> Option<ProductsView<'a>> {
        let input = checked_input(bytes)?;
        let Some(at) = find_split(input) else {
            return ProductsView::parse(bytes);
        };
        std::thread::scope(|scope| {
            let other = scope.spawn(move || products_from(input, at));
            let mut split = Split {
                at,
                other: Some(other),
            };
            let mut builder = Builder::new(input);
            let mut cursor = Cursor::new(input);
            builder.level(&mut cursor, Level::Top, Some(&mut split))?;
            if !cursor.at_end() {
                return None;
            }
            builder.finish()
        })
    }
}

/// Where the second half of the `products` object probably starts (see the module docs).
pub(super) fn find_split(input: &str) -> Option<usize> {
    let bytes = input.as_bytes();
    let mut cursor = Cursor::new(input);
    if !cursor.open_object()? {
        return None;
    }
    // The top-level members up to `products`.
    loop {
        let is_products = match cursor.string()? {
            Str::Plain(start, end) => &input[start..end] == "products",
            Str::Escaped(text) => text == "products",
        };
        cursor.expect(b':')?;
        if is_products {
            break;
        }
        cursor.value(1)?;
        if !cursor.next_or_close(b'}')? {
            return None;
        }
    }
    if !cursor.open_object()? {
        return None;
    }
    cursor.peek()?;
    let first = cursor.position();
    let line_start = bytes[..first].iter().rposition(|&b| b == b'\n')? + 1;
    let indent = &bytes[line_start..first];
    if !indent.iter().all(|&b| b == b' ' || b == b'\t') {
        return None;
    }
    let mut pattern = Vec::with_capacity(indent.len() + 2);
    pattern.push(b'\n');
    pattern.extend_from_slice(indent);
    pattern.push(b'"');
    let middle = first.max(bytes.len() / 2);
    memchr::memmem::find_iter(bytes.get(middle..)?, &pattern)
        .take(64)
        .map(|hit| middle + hit)
        .find(|&newline| {
            // The line before ends the previous product: `},` (whitespace aside).
            let before = bytes[..newline]
                .iter()
                .rev()
                .copied()
                .filter(|b| !matches!(b, b' ' | b'\t' | b'\r'))
                .take(2)
                .collect::<Vec<u8>>();
            before == [b',', b'}']
        })
        .map(|newline| newline + pattern.len() - 1)
}

/// Reads products from byte `at` (a product name) to the end of the `products` object, giving
/// what was read and the offset just past the object's `}`.
fn products_from(input: &str, at: usize) -> Option<(Builder<'_>, usize)> {
    let mut builder = Builder::new(input);
    let mut cursor = Cursor::at(input, at);
    loop {
        let name = cursor.string()?;
        let name = builder.text(name);
        cursor.expect(b':')?;
        let (fields, children) = builder.level(&mut cursor, Level::Product, None)?;
        builder.nodes(Level::Product).push(Node {
            name,
            fields,
            children,
        });
        if !cursor.next_or_close(b'}')? {
            return Some((builder, cursor.position()));
        }
    }
}

impl Builder<'_> {
    /// Appends the products another builder read (over the same input) after this one's,
    /// moving its indices and its own text along.
    pub(super) fn absorb(&mut self, other: Builder<'_>) {
        let mine = &mut self.view;
        let theirs = other.view;
        // Their own text after the booleans goes after ours; `True` and `False` stay put.
        let shift = mine.own.len() - BOOLEANS.len();
        mine.own.push_str(&theirs.own[BOOLEANS.len()..]);
        let text = |t: Text| {
            let own_offset = t.start & !OWNED;
            if t.start & OWNED != 0 && own_offset as usize >= BOOLEANS.len() {
                Text {
                    start: OWNED | (own_offset + shift as u32),
                    len: t.len,
                }
            } else {
                t
            }
        };
        let field = |f: &Field| Field {
            key: text(f.key),
            value: text(f.value),
        };
        let moved = |node: &Node, fields: usize, children: usize| Node {
            name: text(node.name),
            fields: node.fields.start + fields as u32..node.fields.end + fields as u32,
            children: node.children.start + children as u32..node.children.end + children as u32,
        };
        let (pf, vf, itf) = (
            mine.product_fields.len(),
            mine.version_fields.len(),
            mine.item_fields.len(),
        );
        let (nv, ni) = (mine.versions.len(), mine.items.len());
        mine.product_fields
            .extend(theirs.product_fields.iter().map(field));
        mine.version_fields
            .extend(theirs.version_fields.iter().map(field));
        mine.item_fields
            .extend(theirs.item_fields.iter().map(field));
        mine.products
            .extend(theirs.products.iter().map(|n| moved(n, pf, nv)));
        mine.versions
            .extend(theirs.versions.iter().map(|n| moved(n, vf, ni)));
        mine.items.extend(theirs.items.iter().map(|n| Node {
            children: 0..0,
            ..moved(n, itf, 0)
        }));
        self.needs_model |= other.needs_model;
    }
}
