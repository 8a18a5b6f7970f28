//! The query's fast path, [`ProductsView`] (on one thread and on two), must select exactly what the full model selects, on
//! every real products file in the fixtures (signed ones unwrapped), for a set of filters that
//! touch every level.

use std::path::{Path, PathBuf};

use simplestreams_core::{select, strip_clearsigned, FilterSet, Products, ProductsView};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("json" | "sjson")
        ) {
            out.push(path);
        }
    }
}

#[test]
fn view_selects_like_the_model_on_every_fixture() {
    let mut all = Vec::new();
    files(&simplestreams_testutil::fixtures_dir(), &mut all);
    let filter_sets: [&[&str]; 6] = [
        &[],
        &["arch=amd64"],
        &[
            "ftype~(disk1.img|disk.img|root.tar.xz)",
            "arch~(amd64|x86_64)",
        ],
        &["release~(xenial|trusty)", "version_name~^2016"],
        &["item_name!=manifest", "content_id~cloud"],
        &["product_name~server", "label=release"],
    ];
    let mut compared = 0;
    for path in &all {
        let raw = std::fs::read(path).expect("fixture");
        let name = path.display().to_string();
        let bytes = if path.extension().is_some_and(|e| e == "sjson") {
            match strip_clearsigned(&raw, &name) {
                Ok(payload) => payload,
                // The tampered and malformed signature cases.
                Err(_) => continue,
            }
        } else {
            raw
        };
        let Ok(mut model) = Products::from_slice(&bytes, &name) else {
            // An index, a mirrors file, or a deliberately broken case: the view must not accept
            // what the model refuses.
            if serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("format").cloned())
                == Some("products:1.0".into())
            {
                assert!(ProductsView::parse(&bytes).is_none(), "{name}");
            }
            continue;
        };
        if model.expand_aliases(&name).is_err() {
            continue;
        }
        let Some(view) = ProductsView::parse(&bytes) else {
            // Only documents with aliases take the model's path.
            assert!(
                bytes.windows(10).any(|w| w == b"\"_aliases\""),
                "{name}: the view refused an ordinary document"
            );
            continue;
        };
        assert_eq!(view.item_count(), model.item_count(), "{name}");
        let two = ProductsView::parse_on_two_threads(&bytes).expect("two threads accept it too");
        for filters in filter_sets {
            let parsed = FilterSet::parse(filters).expect("filters");
            for max in [None, Some(1), Some(3)] {
                let expected: Vec<String> = select(&model, &parsed, max)
                    .iter()
                    .map(|s| format!("{:?}", s.flat))
                    .collect();
                let mut got = Vec::new();
                view.select(&parsed, max, |_, _, _, flat| got.push(format!("{flat:?}")));
                assert_eq!(got, expected, "{name} {filters:?} max {max:?}");
                let mut two_got = Vec::new();
                two.select(&parsed, max, |_, _, _, flat| {
                    two_got.push(format!("{flat:?}"))
                });
                assert_eq!(
                    two_got, expected,
                    "{name} {filters:?} max {max:?}, two threads"
                );
            }
        }
        compared += 1;
    }
    eprintln!("compared {compared} products files");
    assert!(compared >= 15, "only {compared} products files compared");
}
