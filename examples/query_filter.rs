//! Reads a products file, applies filters as `sstream-query` does, and prints the newest
//! matching item of each product: the library behind `sstream-query`, in twenty lines.
//!
//! ```text
//! cargo run -p simplestreams-examples --example query_filter -- \
//!     testdata/python-examples/foocloud/streams/v1/com.example.foovendor:released:download.json \
//!     arch=amd64 'ftype~disk'
//! ```

use anyhow::Context as _;
use simplestreams_core::{select, FilterSet, Products};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .context("usage: query_filter PRODUCTS_FILE [FILTERS...]")?;
    let filters: Vec<String> = args.collect();

    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {file}"))?;
    let mut products = Products::from_slice(&bytes, &file)?;
    // `_aliases` must be expanded before items are flattened (Juju streams use them).
    products.expand_aliases(&file)?;
    let filters = FilterSet::parse(&filters)?;

    for chosen in select(&products, &filters, Some(1)) {
        let flat = &chosen.flat;
        let path = flat.get("path").map(|p| p.as_ref()).unwrap_or("-");
        println!(
            "{} {} {} {}",
            chosen.id.product, chosen.id.version, chosen.id.item, path
        );
    }
    Ok(())
}
