//! The items of a stream that pass filters, as `sstream-query` prints them: every products
//! file the entry leads to, in index order, each item flattened, at most `max` versions per
//! product (counted after filtering). Metadata is read through the [`MetadataReader`], so
//! signatures, size limits and encodings are handled as everywhere else.

use simplestreams_core::{check_safe_path, select, Document, FilterSet, FlatItem, ProductsView};

use crate::error::{Error, Result};
use crate::metadata::MetadataReader;

/// How deep indexes may lead to other indexes before the stream is refused as a loop or a
/// maze (real streams have one index; Juju's index2 names at most one more level).
pub const MAX_INDEX_DEPTH: usize = 8;

/// A query: filters and `--max`.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Items must pass every filter.
    pub filters: FilterSet,
    /// At most this many versions of each product, newest first.
    pub max: Option<usize>,
}

impl Query {
    /// A query with these filters and `max`.
    pub fn new(filters: FilterSet, max: Option<usize>) -> Query {
        Query { filters, max }
    }

    /// Reads `entry` and everything it leads to, calling `emit` with each item chosen, file by
    /// file. An index that leads back to a file already read, or deeper than
    /// [`MAX_INDEX_DEPTH`], is refused; so is an item whose effective `path` is unsafe,
    /// wherever it inherited it from.
    pub async fn run(
        &self,
        reader: &MetadataReader,
        entry: &str,
        mut emit: impl FnMut(FlatItem<'_>) -> Result<()>,
    ) -> Result<()> {
        // Depth-first in file order: children are pushed in reverse, each with the chain of
        // indexes that led to it (a file may be named twice, as the reference allows; only a
        // file among its own ancestors is a loop).
        let mut pending: Vec<(String, Vec<String>)> = vec![(entry.to_string(), Vec::new())];
        while let Some((path, chain)) = pending.pop() {
            let depth = chain.len();
            if chain.contains(&path) {
                return Err(Error::Location {
                    location: reader.source().url(&path),
                    message: "named again by an index that it leads to: the stream loops".into(),
                });
            }
            if depth > MAX_INDEX_DEPTH {
                return Err(Error::Location {
                    location: reader.source().url(&path),
                    message: format!(
                        "more than {MAX_INDEX_DEPTH} indexes deep: refusing to follow further"
                    ),
                });
            }
            let file = reader.read(&path).await?;
            let name = file.url.clone();
            // Most products files take the zero-copy view; the rest (an index, `_aliases`,
            // anything unusual) the full model, which also words any error precisely.
            if let Some(view) = parse_view(&file.json) {
                let mut result = Ok(());
                view.select(&self.filters, self.max, |p, v, i, flat| {
                    if result.is_ok() {
                        result = checked(&name, (p, v, i), flat).and_then(&mut emit);
                    }
                });
                // Freeing a large view piece by piece costs more than what it did; a query is
                // short-lived, so its memory is left to the end of the process.
                std::mem::forget(view);
                result?;
                continue;
            }
            match Document::from_slice(&file.json, &name)? {
                Document::Index(index) => {
                    let mut below = chain.clone();
                    below.push(path.clone());
                    let children: Vec<(String, Vec<String>)> = index
                        .index
                        .values()
                        .filter(|e| e.is_followed())
                        .filter_map(|e| e.path().map(|p| (p.to_string(), below.clone())))
                        .collect();
                    pending.extend(children.into_iter().rev());
                }
                Document::Products(mut products) => {
                    products.expand_aliases(&name)?;
                    for sel in select(&products, &self.filters, self.max) {
                        let id = (sel.id.product, sel.id.version, sel.id.item);
                        emit(checked(&name, id, sel.flat)?)?;
                    }
                }
                Document::Mirrors(_) => {
                    return Err(Error::Location {
                        location: name,
                        message: "a mirrors:1.0 file has no items to query".into(),
                    })
                }
            }
        }
        Ok(())
    }
}

/// The item, once its effective `path` is known to be safe.
fn checked<'a>(file: &str, id: (&str, &str, &str), flat: FlatItem<'a>) -> Result<FlatItem<'a>> {
    if let Some(path) = flat.get("path") {
        check_safe_path(path).map_err(|e| Error::Location {
            location: file.to_string(),
            message: format!("item {} {} {}: {e}", id.0, id.1, id.2),
        })?;
    }
    Ok(flat)
}

/// The fast reading of a products file: large files on two threads when there is a second
/// core (the same result, sooner).
fn parse_view(bytes: &[u8]) -> Option<ProductsView<'_>> {
    if worth_two_threads(bytes.len()) {
        ProductsView::parse_on_two_threads(bytes)
    } else {
        ProductsView::parse(bytes)
    }
}

/// Whether reading (and parsing) `len` bytes of metadata on two threads pays for the second
/// thread: large products files, on a machine with a second core.
pub fn worth_two_threads(len: usize) -> bool {
    const LARGE: usize = 4 << 20;
    len >= LARGE && std::thread::available_parallelism().map_or(1, |n| n.get()) > 1
}
