//! Where fields sit in a products file we write: condensed, as the reference writes streams
//! (a key every child shares with one string value moves up a level), but with the keys
//! clients read at a fixed level kept there, since LXD, Incus and MAAS 3.8 read fields only
//! where they expect them, without inheritance:
//!
//! - on items: `path`, `size`, the checksums, `ftype`, `mirrors`, `disk_format`,
//!   `delta_base` and LXD's `combined_*` hashes ([`ITEM_STICKY`]);
//! - on versions: `label` and `pubname` ([`VERSION_STICKY`]);
//! - on products, what every version shares: `os`, `release`, `arch`, `aliases`, ….
//!
//! Before condensing, a field that repeats what an item or version inherits anyway is
//! dropped, so that a version added to an existing product does not carry the product's
//! fields again. The flattened view of every item (what `sstream-query` prints) is unchanged.

use std::sync::Mutex;

use indexmap::map::Slice;
use serde_json::Value;
use simplestreams_core::{Map, Product, Products};

use crate::image::describes_file;

/// Keys kept on items.
pub const ITEM_STICKY: &[&str] = &[
    "path",
    "size",
    "md5",
    "sha256",
    "sha512",
    "mirrors",
    "ftype",
    "disk_format",
    "delta_base",
];

/// Keys kept on versions (not moved up to the product).
pub const VERSION_STICKY: &[&str] = &["label", "pubname"];

// `match` rather than a search of the lists: asked for every field of every item (tens of
// thousands of times for a large stream); `sticky_matches_the_lists` keeps them in step.
fn item_sticky(key: &str) -> bool {
    describes_file(key)
        || matches!(key, "mirrors" | "disk_format" | "delta_base")
        || key.starts_with("combined_")
}

fn version_sticky(key: &str) -> bool {
    matches!(key, "label" | "pubname") || item_sticky(key)
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// Drops redundant fields, then condenses (see the module): items → version, then versions
/// → product. One walk over the items: each version is done while its items are at hand (a
/// stream of thousands of items is memory-bound: a second walk costs as much as the first).
///
/// Products are independent of each other (each reads only itself and the top-level fields):
/// with `threads` above one they are shared out among that many threads, in runs of about the
/// same number of items.
pub fn normalize(doc: &mut Products, threads: usize) {
    let bounds = if threads > 1 {
        doc.product_runs(threads)
    } else {
        vec![0, doc.products.len()]
    };
    let top = &doc.fields;
    let mut rest = doc.products.as_mut_slice();
    let mut runs = Vec::with_capacity(bounds.len());
    for pair in bounds.windows(2) {
        let (run, after) = rest.split_at_mut(pair[1] - pair[0]);
        runs.push(Mutex::new(Some(run)));
        rest = after;
    }
    // Whoever takes a run first normalizes it: its thread, or this one once done with the
    // first run (when a thread could not be started, or has not started yet).
    let take_and_do = |slot: &Mutex<Option<&mut Slice<String, Product>>>| {
        let run = slot.lock().map(|mut s| s.take()).unwrap_or_default();
        if let Some(run) = run {
            run.values_mut().for_each(|p| normalize_product(top, p));
        }
    };
    std::thread::scope(|scope| {
        for slot in runs.iter().skip(1) {
            let spawned = std::thread::Builder::new()
                .name("normalize".into())
                .spawn_scoped(scope, || take_and_do(slot));
            if let Err(e) = spawned {
                tracing::debug!("normalizing on fewer threads: {e}");
            }
        }
        runs.iter().for_each(take_and_do);
    });
}

fn normalize_product(top: &Map, product: &mut Product) {
    let pfields = &product.fields;
    let above_version = |k: &str| pfields.get(k).or_else(|| top.get(k));
    for version in product.versions.values_mut() {
        // The version's redundant fields first: what its items inherit stays the same (a
        // field dropped from the version held what it now inherits from above).
        version
            .fields
            .retain(|k, v| version_sticky(k) || !is_scalar(v) || above_version(k) != Some(v));
        if version.items.len() == 1 {
            // Most versions hold one item: dropped and moved up in one filtering.
            if let Some(item) = version.items.values_mut().next() {
                strip_and_move_one(&mut item.fields, &mut version.fields, &above_version);
            }
            continue;
        }
        let vfields = &version.fields;
        for item in version.items.values_mut() {
            item.fields.retain(|k, v| {
                item_sticky(k)
                    || !is_scalar(v)
                    || vfields.get(k.as_str()).or_else(|| above_version(k)) != Some(v)
            });
        }
        let children: Vec<&mut Map> = version.items.values_mut().map(|i| &mut i.fields).collect();
        move_shared(children, &mut version.fields, item_sticky);
    }
    let children: Vec<&mut Map> = product
        .versions
        .values_mut()
        .map(|v| &mut v.fields)
        .collect();
    move_shared(children, &mut product.fields, version_sticky);
}

/// For the one item of a version (`parent`): drops the scalar fields it inherits anyway (from
/// `parent` or `above`), then moves up the ones [`move_from_one`] moves. The same as dropping
/// first and moving after: each key is looked at once, and moving a key changes nothing
/// another key is compared with.
fn strip_and_move_one<'a>(
    child: &mut Map,
    parent: &mut Map,
    above: &impl Fn(&str) -> Option<&'a Value>,
) {
    child.retain(|k, v| {
        if item_sticky(k) {
            return true;
        }
        let here = parent.get(k.as_str());
        if is_scalar(v) && here.or_else(|| above(k)) == Some(&*v) {
            return false;
        }
        let moves = match &*v {
            Value::String(s) => here.is_none_or(|p| p.as_str() == Some(s.as_str())),
            _ => false,
        };
        if moves {
            parent.insert(k.clone(), std::mem::take(v));
        }
        !moves
    });
}

/// [`move_shared`] for one child: every key it may give up moves, its value moved rather than
/// copied, and the child's map kept (filtered in place: no new map, no key hashed again).
fn move_from_one(child: &mut Map, parent: &mut Map, sticky: fn(&str) -> bool) {
    child.retain(|k, v| {
        let moves = match &*v {
            Value::String(s) => {
                !sticky(k) && parent.get(k).is_none_or(|p| p.as_str() == Some(s.as_str()))
            }
            _ => false,
        };
        if moves {
            parent.insert(k.clone(), std::mem::take(v));
        }
        !moves
    });
}

/// Moves to `parent` every key that is not `sticky` and that all `children` have with one
/// string value that `parent` does not contradict (as the reference's condensing does).
fn move_shared(mut children: Vec<&mut Map>, parent: &mut Map, sticky: fn(&str) -> bool) {
    let Some((first, rest)) = children.split_first_mut() else {
        return;
    };
    if rest.is_empty() {
        move_from_one(first, parent, sticky);
        return;
    }
    let moving: Vec<String> = first
        .iter()
        .filter(|(k, v)| {
            let Value::String(s) = v else { return false };
            !sticky(k)
                && parent.get(k.as_str()).is_none_or(|p| p.as_str() == Some(s))
                && rest
                    .iter()
                    .all(|c| c.get(k.as_str()).and_then(Value::as_str) == Some(s))
        })
        .map(|(k, _)| k.clone())
        .collect();
    for key in moving {
        for child in rest.iter_mut() {
            child.shift_remove(&key);
        }
        if let Some(value) = first.shift_remove(&key) {
            parent.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use simplestreams_core::{for_each_flat_item, Products};

    use super::*;

    fn flat(doc: &Products) -> Vec<Vec<(String, String)>> {
        let mut all = Vec::new();
        for_each_flat_item(doc, |_, _, f| {
            let mut v: Vec<(String, String)> = f
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            v.sort();
            all.push(v);
        });
        all
    }

    #[test]
    fn normalizing_keeps_the_flat_view_and_the_levels_clients_read() {
        let text = r#"{"format":"products:1.0","content_id":"c","products":{
          "p":{"os":"ubuntu","versions":{
            "1":{"label":"release","items":{"a":{"os":"ubuntu","arch":"amd64","label":"release","ftype":"disk1.img","path":"x/1a","size":1,"sha256":"00","combined_squashfs_sha256":"11"}}},
            "2":{"items":{"a":{"os":"ubuntu","arch":"amd64","label":"release","ftype":"disk1.img","path":"x/2a","size":2,"sha256":"00"},
                          "b":{"os":"ubuntu","arch":"amd64","label":"release","ftype":"squashfs","path":"x/2b","size":2,"sha256":"00"}}}}}}}"#;
        let original = Products::from_slice(text.as_bytes(), "d").unwrap();
        let mut doc = original.clone();
        normalize(&mut doc, 1);
        assert_eq!(flat(&doc), flat(&original));
        let p = &doc.products["p"];
        assert_eq!(p.fields["arch"], "amd64", "shared by every version");
        for v in p.versions.values() {
            assert_eq!(v.fields["label"], "release", "label stays on versions");
            for item in v.items.values() {
                for key in ["ftype", "path", "size", "sha256"] {
                    assert!(item.fields.contains_key(key), "{key} stays on items");
                }
                assert!(!item.fields.contains_key("os"), "inherited, dropped");
            }
        }
        assert!(p.versions["1"].items["a"]
            .fields
            .contains_key("combined_squashfs_sha256"));
        assert!(!p.fields.contains_key("label"));
    }

    #[test]
    fn sticky_matches_the_lists() {
        for key in ITEM_STICKY {
            assert!(item_sticky(key) && version_sticky(key), "{key}");
        }
        for key in VERSION_STICKY {
            assert!(version_sticky(key) && !item_sticky(key), "{key}");
        }
        assert!(item_sticky("combined_squashfs_sha256"));
        for key in [
            "os", "arch", "release", "item_url", "pat", "sizes", "label_",
        ] {
            assert!(!version_sticky(key), "{key}");
        }
    }

    #[test]
    fn a_one_item_version_drops_and_moves_up_in_one_go() {
        let text = r#"{"format":"products:1.0","content_id":"c","products":{
          "p":{"os":"ubuntu","versions":{
            "1":{"os":"ubuntu","items":{"a":{"os":"ubuntu","arch":"amd64","release":"r","path":"a","size":1,"sha256":"00"}}},
            "2":{"release":"q","items":{"a":{"release":"s","arch":"amd64","n":3,"path":"b","size":1,"sha256":"00"}}}}}}}"#;
        let original = Products::from_slice(text.as_bytes(), "d").unwrap();
        let mut doc = original.clone();
        normalize(&mut doc, 1);
        assert_eq!(flat(&doc), flat(&original));
        let p = &doc.products["p"];
        assert_eq!(p.fields["arch"], "amd64", "moved up twice");
        let (one, two) = (&p.versions["1"], &p.versions["2"]);
        assert!(!one.fields.contains_key("os"), "inherited, dropped");
        assert!(
            !one.items["a"].fields.contains_key("os"),
            "inherited, dropped"
        );
        assert_eq!(one.fields["release"], "r", "moved up to its version");
        assert_eq!(two.fields["release"], "q");
        assert_eq!(two.items["a"].fields["release"], "s", "contradicts: stays");
        assert_eq!(two.items["a"].fields["n"], 3, "not a string: stays");
    }

    #[test]
    fn a_different_value_stays_below_and_wins() {
        let text = r#"{"format":"products:1.0","content_id":"c","products":{
          "p":{"os":"ubuntu","versions":{"1":{"items":{"a":{"os":"centos","path":"a","size":1,"sha256":"00"}}},
                                         "2":{"items":{"a":{"path":"b","size":1,"sha256":"00"}}}}}}}"#;
        let original = Products::from_slice(text.as_bytes(), "d").unwrap();
        let mut doc = original.clone();
        normalize(&mut doc, 1);
        assert_eq!(flat(&doc), flat(&original));
        assert_eq!(doc.products["p"].versions["1"].fields["os"], "centos");
    }

    #[test]
    fn normalizing_on_threads_gives_the_same_document() {
        let products: Vec<String> = (0..13)
            .map(|p| {
                let versions: Vec<String> = (0..p % 5)
                    .map(|v| {
                        let items: Vec<String> = (0..1 + v % 3)
                            .map(|i| format!(r#""i{i}":{{"os":"ubuntu","arch":"a{p}","release":"r{v}","path":"{p}/{v}/{i}","size":1,"sha256":"00"}}"#))
                            .collect();
                        format!(r#""{v}":{{"label":"l","items":{{{}}}}}"#, items.join(","))
                    })
                    .collect();
                format!(r#""p{p}":{{"os":"ubuntu","versions":{{{}}}}}"#, versions.join(","))
            })
            .collect();
        let text = format!(
            r#"{{"format":"products:1.0","content_id":"c","os":"ubuntu","products":{{{}}}}}"#,
            products.join(",")
        );
        let original = Products::from_slice(text.as_bytes(), "d").unwrap();
        let mut one = original.clone();
        normalize(&mut one, 1);
        assert_ne!(one, original, "something to do");
        for threads in [2, 3, 8, 64] {
            let mut many = original.clone();
            normalize(&mut many, threads);
            assert_eq!(many, one, "{threads} threads");
        }
    }
}
