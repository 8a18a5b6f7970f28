//! Mirrors the newest version of the items passing some filters from a stream (a URL or a
//! directory) into a local directory: the library behind `sstream-mirror`, in a page.
//!
//! ```text
//! cargo run -p simplestreams-examples --example mirror_filter -- \
//!     testdata/python-examples/foocloud/streams/v1/index.json /tmp/foo-mirror \
//!     arch=amd64 'ftype~disk'
//! ```
//!
//! Run it twice: the second run downloads nothing. Every item is verified (size and every
//! checksum) while it streams, written to a temporary name and renamed; metadata is published
//! only after the items it names, and old items are deleted last.

use std::sync::Arc;

use anyhow::Context as _;
use simplestreams_core::{FilterSet, PlanLimits};
use simplestreams_mirror::{
    open_source, split_entry, HttpOptions, LocalStore, Mirror, StoreTarget, SyncOptions,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: mirror_filter SOURCE_URL_OR_DIR OUTPUT_DIR [FILTERS...]";
    let source = args.next().context(usage)?;
    let output = args.next().context(usage)?;
    let filters: Vec<String> = args.collect();

    // "…/streams/v1/index.json" splits into the mirror root and the entry file.
    let (root, entry) = split_entry(&source, None);
    let options = SyncOptions {
        entry,
        filters: FilterSet::parse(&filters)?,
        limits: PlanLimits {
            max: Some(1),
            keep: false,
        },
        jobs: 4,
        ..SyncOptions::default()
    };
    let source = open_source(&root, &HttpOptions::default())?;
    let target = Arc::new(StoreTarget::new(Arc::new(LocalStore::new(&output))));

    let mirror = Mirror::new(source, target, options);
    for line in mirror.plan().await? {
        println!(
            "{} {} {} ({} bytes)",
            line.op,
            line.key,
            line.path,
            line.size.unwrap_or(0)
        );
    }
    let report = mirror.run().await?;
    println!(
        "{} downloaded ({} bytes), {} removed, {} products file(s) published",
        report.downloaded,
        report.bytes,
        report.removed,
        report.products_published.len()
    );
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    anyhow::ensure!(report.is_success(), "{} error(s)", report.errors.len());
    Ok(())
}
