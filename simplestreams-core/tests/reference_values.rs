//! Values Python's `json` reads but serde_json refuses or changes (a number beyond `f64`, an
//! integer beyond 64 bits, `-0`, a lone surrogate) are read as the reference reads them: the same
//! strings from `-o '%(key)s'`, and, through our `sstream-query` when it is built, the same
//! `repr`, `--json` and `--pretty` output byte for byte. Found by a hostile-input sweep: one such
//! value anywhere made the whole file unreadable, or printed a big integer as a float.

use std::path::Path;
use std::process::{Command, Output};

use simplestreams_core::{lossy_text, scalar_string, select, FilterSet, Products};
use simplestreams_testutil::{reference_bin, workspace_root};

/// An item with the unusual values in extra fields (the fields with meaning stay ordinary).
const PRODUCTS: &str = r#"{"format": "products:1.0", "content_id": "com.example:download",
 "products": {"com.example:demo": {"arch": "amd64", "versions": {
   "20240101": {"items": {"disk1.img": {"ftype": "disk1.img", "path": "demo/disk1.img",
     "size": 5, "build": 1e400, "neg": -1E+400, "big": 123456789012345678901234567890,
     "nbig": -123456789012345678901234567890, "u64": 18446744073709551616, "zero": -0,
     "huge": HUGE, "note": "a\ud800b", "pair": "\ud83d\ude00\udc00", "mark": "\ufdd0x",
     "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}}}}}}}"#;

const INDEX: &str = r#"{"format": "index:1.0", "index": {"com.example:download": {
 "format": "products:1.0", "path": "streams/v1/download.json", "products": ["com.example:demo"]}}}"#;

/// The keys whose values print with `%(key)s` in the reference (a lone surrogate makes Python's
/// print fail, so `note` and `pair` are compared through `repr` and JSON only).
const PRINTABLE: [&str; 8] = ["build", "neg", "big", "nbig", "u64", "zero", "huge", "mark"];

fn products_text() -> String {
    PRODUCTS.replace("HUGE", &"7".repeat(400))
}

fn write_stream(dir: &Path) -> String {
    let v1 = dir.join("streams/v1");
    std::fs::create_dir_all(&v1).expect("mkdir");
    std::fs::write(v1.join("download.json"), products_text()).expect("write products");
    std::fs::write(v1.join("index.json"), INDEX).expect("write index");
    v1.join("index.json").display().to_string()
}

fn run(program: &Path, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn unusual_numbers_print_as_the_reference_prints_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = write_stream(dir.path());
    let template: Vec<String> = PRINTABLE.iter().map(|k| format!("%({k})s")).collect();
    let template = template.join("|");
    let reference = run(&reference_bin("sstream-query"), &["-o", &template, &index]);
    let expected = String::from_utf8(reference.stdout).expect("UTF-8");

    let doc = products_text();
    let products = Products::from_slice(doc.as_bytes(), "download.json").expect("we read it too");
    let chosen = select(&products, &FilterSet::default(), None);
    assert_eq!(chosen.len(), 1);
    // A printer decodes the kept form of a string (here the `mark` string, which starts with
    // U+FDD0); `lossy_text` does, exactly when there is no lone surrogate.
    let ours: Vec<String> = PRINTABLE
        .iter()
        .map(|k| lossy_text(&chosen[0].flat[*k]).into_owned())
        .collect();
    assert_eq!(format!("{}\n", ours.join("|")), expected);
    // Spelled out, so that the test says what the reference does.
    assert!(expected.starts_with(
        "inf|-inf|123456789012345678901234567890|-123456789012345678901234567890|\
         18446744073709551616|0|777"
    ));
    // The values themselves, straight from the model.
    let item = &chosen[0].item.fields;
    assert_eq!(scalar_string(&item["build"]).as_deref(), Some("inf"));
    assert_eq!(
        scalar_string(&item["big"]).as_deref(),
        Some("123456789012345678901234567890")
    );
}

#[test]
fn unusual_values_print_byte_for_byte_as_the_reference_when_sstream_query_is_built() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = write_stream(dir.path());
    let ours = workspace_root().join("target/debug/sstream-query");
    for format in [&[][..], &["--json"], &["--pretty"]] {
        let mut args: Vec<&str> = format.to_vec();
        args.push(&index);
        let expected = run(&reference_bin("sstream-query"), &args).stdout;
        let text = String::from_utf8_lossy(&expected);
        // What Python writes for a lone surrogate: an escape, in repr as in JSON.
        assert!(text.contains("a\\ud800b"), "{text}");
        assert!(text.contains("\\udc00"), "{text}");
        if !ours.is_file() {
            // Not built (only this crate's tests were): the flattened values are checked above.
            continue;
        }
        let got = run(&ours, &args).stdout;
        assert_eq!(
            String::from_utf8_lossy(&got),
            text,
            "sstream-query {format:?} differs from the reference"
        );
    }
}
