//! `query-phases FILE [FILTERS...]`: where a query's time goes, phase by phase, on one products
//! file (unsigned JSON): reading, a bare JSON scan (the floor for any parser), the generic
//! `serde_json::Value` tree, the query's `ProductsView`, `Document::from_slice`, `select`, flattening every item, and
//! dropping the document. A profiling aid for docs/benchmarks.md, not a test.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use simplestreams_core::{for_each_flat_item, select, Document, FilterSet};

fn timed<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    report(label, start.elapsed());
    out
}

fn report(label: &str, took: Duration) {
    println!("{label:<36} {:>9.1} ms", took.as_secs_f64() * 1000.0);
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((file, filters)) = args.split_first() else {
        eprintln!("usage: query-phases PRODUCTS.json [FILTERS...]");
        return ExitCode::from(2);
    };
    let bytes = match timed("read file", || std::fs::read(file)) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("query-phases: {file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{:<36} {:>9.1} MB", "size", bytes.len() as f64 / 1e6);
    let filters = match FilterSet::parse(filters) {
        Ok(filters) => filters,
        Err(e) => {
            eprintln!("query-phases: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = timed("scan only (serde IgnoredAny)", || {
        serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok()
    });
    // The query's own path, best of five (the machine is shared).
    let mut best = Duration::MAX;
    let mut parsed = None;
    for _ in 0..5 {
        let start = Instant::now();
        parsed = simplestreams_core::ProductsView::parse(&bytes);
        best = best.min(start.elapsed());
    }
    report("ProductsView::parse, best of 5", best);
    let mut best_two = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let two = simplestreams_core::ProductsView::parse_on_two_threads(&bytes);
        best_two = best_two.min(start.elapsed());
        drop(two);
    }
    report("  the same on two threads, best of 5", best_two);
    if let Some(view) = parsed {
        let mut chosen = 0usize;
        timed("ProductsView select", || {
            view.select(&filters, None, |_, _, _, _| chosen += 1)
        });
        println!("{:<36} {:>9}", "view items selected", chosen);
        timed("drop the view", || drop(view));
    } else {
        println!("ProductsView::parse: this file needs the full model");
    }
    let value = timed("serde_json::Value tree", || {
        serde_json::from_slice::<serde_json::Value>(&bytes)
    });
    timed("drop the Value tree", || drop(value));
    let doc = match timed("Document::from_slice (Value + model)", || {
        Document::from_slice(&bytes, file)
    }) {
        Ok(Document::Products(products)) => products,
        Ok(_) => {
            eprintln!("query-phases: {file}: not a products document");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("query-phases: {e}");
            return ExitCode::FAILURE;
        }
    };
    let chosen = timed("select (flatten + filter)", || {
        select(&doc, &filters, None).len()
    });
    let mut fields = 0usize;
    timed("for_each_flat_item, every item", || {
        for_each_flat_item(&doc, |_, _, flat| fields += flat.len())
    });
    timed("drop the document", || drop(doc));
    println!(
        "{:<36} {:>9} ({} flat fields in all)",
        "items selected", chosen, fields
    );
    ExitCode::SUCCESS
}
