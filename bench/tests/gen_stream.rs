//! gen-stream: shaped like the real Ubuntu stream, valid, deterministic, with true checksums
//! and good signatures.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use simplestreams_bench::{write_stream, GenOptions, Stream, CONTENT_ID};
use simplestreams_core::openpgp::{strip_clearsigned, verify_clearsigned, Keyring, SigningKey};
use simplestreams_core::{Expected, Index, Products, StreamVerifier};
use simplestreams_testutil::fixture;

fn small(with_files: bool) -> GenOptions {
    GenOptions {
        products: 20,
        versions: 3,
        items: 4,
        seed: 7,
        with_files,
        file_size: 300,
    }
}

fn read(root: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every file below `root`, relative path and content, sorted.
fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .expect("below root")
                    .display()
                    .to_string();
                out.push((rel, std::fs::read(&path).expect("read")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_stream() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    write_stream(&small(true), a.path(), None).expect("write a");
    write_stream(&small(true), b.path(), None).expect("write b");
    write_stream(
        &GenOptions {
            seed: 8,
            ..small(true)
        },
        c.path(),
        None,
    )
    .expect("write c");
    let tree_a = tree(a.path());
    assert_eq!(tree_a.len(), 2 + 20 * 3 * 4);
    assert_eq!(tree_a, tree(b.path()));
    let products = Stream::products_path();
    assert_ne!(read(a.path(), &products), read(c.path(), &products));
}

#[test]
fn documents_parse_and_the_index_names_every_product() {
    let dir = tempfile::tempdir().unwrap();
    let (stream, written) = write_stream(&small(false), dir.path(), None).expect("write");
    assert_eq!(written.item_files, 0);
    let index = Index::from_slice(&read(dir.path(), "streams/v1/index.json"), "index.json")
        .expect("index parses");
    let entry = &index.index[CONTENT_ID];
    assert_eq!(entry.fields["path"], Stream::products_path());
    let products_bytes = read(dir.path(), &Stream::products_path());
    let products = Products::from_slice(&products_bytes, "products").expect("products parse");
    assert!(
        products.to_vec_pretty() == stream.products.to_vec_pretty(),
        "the file is not the stream generated"
    );
    assert_eq!(products.products.len(), 20);
    assert_eq!(products.item_count(), 20 * 3 * 4);
    let listed: Vec<&str> = entry.fields["products"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let keys: Vec<&str> = products.products.keys().map(String::as_str).collect();
    assert_eq!(listed, keys);
    let unique_paths: BTreeSet<&str> = products
        .products
        .values()
        .flat_map(|p| p.versions.values())
        .flat_map(|v| v.items.values())
        .filter_map(|i| i.path())
        .collect();
    assert_eq!(unique_paths.len(), 20 * 3 * 4, "item paths collide");
}

#[test]
fn item_files_have_the_announced_size_and_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let (stream, written) = write_stream(&small(true), dir.path(), None).expect("write");
    assert_eq!(written.item_files, 20 * 3 * 4);
    for product in stream.products.products.values() {
        for version in product.versions.values() {
            for (name, item) in &version.items {
                let path = item.path().expect("a path");
                let expected = Expected::from_item(item);
                assert_eq!(expected.size, Some(300));
                assert!(expected.md5.is_some() && expected.sha256.is_some());
                let mut verifier = StreamVerifier::new(name.clone(), expected);
                verifier.update(&read(dir.path(), path)).expect("update");
                verifier.finish().unwrap_or_else(|e| panic!("{path}: {e}"));
            }
        }
    }
}

/// Field names at each level of a products document.
fn field_names(p: &Products) -> [BTreeSet<String>; 3] {
    let mut sets: [BTreeSet<String>; 3] = Default::default();
    for product in p.products.values() {
        sets[0].extend(product.fields.keys().cloned());
        for version in product.versions.values() {
            sets[1].extend(version.fields.keys().cloned());
            for item in version.items.values() {
                sets[2].extend(item.fields.keys().cloned());
            }
        }
    }
    sets
}

#[test]
fn fields_are_those_of_the_real_ubuntu_stream() {
    let real_path = fixture("ubuntu-2016/streams/v1/com.ubuntu.cloud:released:download.sjson");
    let real_bytes = std::fs::read(&real_path).expect("the Ubuntu fixture");
    let payload = strip_clearsigned(&real_bytes, "ubuntu").expect("clear-signed");
    let real = Products::from_slice(&payload, "ubuntu").expect("parses");
    let ours = simplestreams_bench::generate(
        &GenOptions {
            items: 8,
            ..small(false)
        },
        |_, _| Ok::<(), ()>(()),
    )
    .expect("generate")
    .products;
    let (real_fields, our_fields) = (field_names(&real), field_names(&ours));
    for level in 0..3 {
        let extra: Vec<&String> = our_fields[level].difference(&real_fields[level]).collect();
        assert!(
            extra.is_empty(),
            "level {level}: fields the real stream does not have: {extra:?}"
        );
    }
    for required in [
        "arch",
        "os",
        "release",
        "version",
        "release_title",
        "aliases",
    ] {
        assert!(our_fields[0].contains(required), "{required}");
    }
    let real_ftypes: BTreeSet<&str> = real
        .products
        .values()
        .flat_map(|p| p.versions.values())
        .flat_map(|v| v.items.values())
        .filter_map(|i| i.get_str("ftype"))
        .collect();
    let our_ftypes: BTreeSet<&str> = ours
        .products
        .values()
        .flat_map(|p| p.versions.values())
        .flat_map(|v| v.items.values())
        .filter_map(|i| i.get_str("ftype"))
        .collect();
    let invented: Vec<&&str> = our_ftypes
        .iter()
        .filter(|f| !real_ftypes.contains(**f) && **f != "root.tar.xz")
        .collect();
    assert!(
        invented.is_empty(),
        "ftypes the real stream does not have: {invented:?}"
    );
}

#[test]
fn signed_copies_verify_and_carry_the_same_documents() {
    let key_path = fixture("signed-cases/valid-key/test-signing-key.sec.asc");
    let key = SigningKey::from_armored(&std::fs::read(&key_path).unwrap(), None, "test key")
        .expect("key");
    let dir = tempfile::tempdir().unwrap();
    write_stream(&small(false), dir.path(), Some(&key)).expect("write");
    let signed_products = Stream::products_path().replace(".json", ".sjson");
    let verified = verify_clearsigned(
        &read(dir.path(), &signed_products),
        key.public_keyring(),
        "p.sjson",
    )
    .expect("good signature");
    assert_eq!(verified.payload, read(dir.path(), &Stream::products_path()));
    let index = verify_clearsigned(
        &read(dir.path(), "streams/v1/index.sjson"),
        key.public_keyring(),
        "i.sjson",
    )
    .expect("good");
    let index = Index::from_slice(&index.payload, "index.sjson").expect("parses");
    assert_eq!(index.index[CONTENT_ID].fields["path"], signed_products);
    assert!(verify_clearsigned(
        &read(dir.path(), "streams/v1/index.sjson"),
        &Keyring::new(),
        "i.sjson"
    )
    .is_err());
}

#[test]
fn the_command_line_writes_a_mirror_and_names_a_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mirror");
    let status = Command::new(env!("CARGO_BIN_EXE_gen-stream"))
        .args([
            "--products",
            "9",
            "--versions",
            "2",
            "--items",
            "1",
            "--with-files",
            "--file-size",
            "10",
        ])
        .arg(&out)
        .output()
        .expect("run gen-stream");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(String::from_utf8_lossy(&status.stdout).contains("9 products, 18 items, 18 item files"));
    let products =
        Products::from_slice(&read(&out, &Stream::products_path()), "p").expect("parses");
    assert_eq!(products.item_count(), 18);
    let bad = Command::new(env!("CARGO_BIN_EXE_gen-stream"))
        .arg("--sign-key")
        .arg(dir.path().join("missing.asc"))
        .arg(&out)
        .output()
        .expect("run gen-stream");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("missing.asc"));
}
