//! `validate`: a good repository passes, and each kind of damage is reported with its file
//! and field.

mod support;

use std::sync::Arc;

use serde_json::{json, Value};
use simplestreams_core::openpgp::Keyring;
use simplestreams_mirror::{InMemory, Store, StoreExt};
use simplestreams_publish::{validate_store, Problem, Repo};
use support::{key, noble, qcow2};

const PRODUCTS: &str = "streams/v1/images:released:download.json";
const ITEM: &str = "products.ubuntu:noble:amd64.versions.1.items.disk1.img";

/// A repository of two images (amd64 and arm64, version 1), signed when `signing`.
async fn repo(signed: bool) -> (InMemory, Option<Keyring>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = InMemory::new();
    let (generated, signing) = key("P");
    let mut repo = Repo::open(Arc::new(store.clone()), signed.then_some(signing))
        .await
        .unwrap();
    let a = qcow2(dir.path(), "a.img", 1, 5000);
    let b = qcow2(dir.path(), "b.img", 2, 6000);
    repo.add(vec![noble(&a, "amd64", "1"), noble(&b, "arm64", "1")])
        .await
        .unwrap();
    repo.commit().await.unwrap();
    let keyring = Keyring::from_bytes(&generated.public_keyring, "k").unwrap();
    (store, signed.then_some(keyring), dir)
}

async fn problems(store: &InMemory, keyring: Option<&Keyring>) -> Vec<Problem> {
    let store: Arc<dyn Store> = Arc::new(store.clone());
    validate_store(store, keyring).await.unwrap().problems
}

async fn json_of(store: &InMemory, path: &str) -> Value {
    serde_json::from_slice(&store.get_bytes(path).await.unwrap()).unwrap()
}

async fn put_json(store: &InMemory, path: &str, value: &Value) {
    store
        .put_bytes(path, serde_json::to_vec_pretty(value).unwrap().into())
        .await
        .unwrap();
}

async fn item_path(store: &InMemory) -> String {
    let doc = json_of(store, PRODUCTS).await;
    doc["products"]["ubuntu:noble:amd64"]["versions"]["1"]["items"]["disk1.img"]["path"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Asserts exactly one problem, in `file` at `field`, whose message contains `text`.
fn only(problems: &[Problem], file: &str, field: Option<&str>, text: &str) {
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = &problems[0];
    assert_eq!(p.file, file, "{p}");
    assert_eq!(p.field.as_deref(), field, "{p}");
    assert!(p.message.contains(text), "{p}");
}

#[tokio::test]
async fn a_good_repository_has_no_problem_signed_or_not() {
    for signed in [false, true] {
        let (store, keyring, _dir) = repo(signed).await;
        let s: Arc<dyn Store> = Arc::new(store.clone());
        let report = validate_store(s, keyring.as_ref()).await.unwrap();
        assert!(report.is_ok(), "{:#?}", report.problems);
        assert_eq!((report.items, report.files, report.bytes), (2, 2, 11_000));
    }
}

#[tokio::test]
async fn a_missing_file_is_found() {
    let (store, _, _dir) = repo(false).await;
    let path = item_path(&store).await;
    store.delete(&path).await.unwrap();
    only(
        &problems(&store, None).await,
        PRODUCTS,
        Some(ITEM),
        &format!("{path}: missing"),
    );
}

#[tokio::test]
async fn a_file_of_the_wrong_size_is_found() {
    let (store, _, _dir) = repo(false).await;
    let path = item_path(&store).await;
    store
        .put_bytes(&path, vec![0u8; 4999].into())
        .await
        .unwrap();
    only(
        &problems(&store, None).await,
        PRODUCTS,
        Some(ITEM),
        "size mismatch",
    );
}

#[tokio::test]
async fn a_file_with_the_wrong_sha256_is_found() {
    let (store, _, _dir) = repo(false).await;
    let path = item_path(&store).await;
    let mut bytes = store.get_bytes(&path).await.unwrap().to_vec();
    bytes[100] ^= 1;
    store.put_bytes(&path, bytes.into()).await.unwrap();
    only(
        &problems(&store, None).await,
        PRODUCTS,
        Some(ITEM),
        "sha256 mismatch",
    );
}

#[tokio::test]
async fn a_bad_signature_is_found() {
    let (store, keyring, _dir) = repo(true).await;
    let sjson = "streams/v1/images:released:download.sjson";
    let text = String::from_utf8(store.get_bytes(sjson).await.unwrap().to_vec()).unwrap();
    let tampered = text.replacen("\"arch\": \"amd64\"", "\"arch\": \"amd65\"", 1);
    assert_ne!(tampered, text);
    store.put_bytes(sjson, tampered.into()).await.unwrap();
    only(
        &problems(&store, keyring.as_ref()).await,
        sjson,
        None,
        "bad signature",
    );
    // Without a keyring, against the key published beside the stream.
    only(
        &problems(&store, None).await,
        sjson,
        None,
        "signing-key.asc",
    );
    // A detached signature that does not match.
    let (store, keyring, _dir) = repo(true).await;
    let gpg = "streams/v1/index.json.gpg";
    let other = store
        .get_bytes("streams/v1/images:released:download.json.gpg")
        .await
        .unwrap();
    store.put_bytes(gpg, other).await.unwrap();
    only(
        &problems(&store, keyring.as_ref()).await,
        gpg,
        None,
        "bad signature",
    );
}

#[tokio::test]
async fn unsigned_documents_are_found_when_a_keyring_is_given() {
    let (store, _, _dir) = repo(false).await;
    let (generated, _) = key("Q");
    let keyring = Keyring::from_bytes(&generated.public_keyring, "k").unwrap();
    let found = problems(&store, Some(&keyring)).await;
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found.iter().all(|p| p.message.contains("not signed")));
}

#[tokio::test]
async fn unsafe_paths_are_found() {
    // Escaping the root: the products file does not even parse as a stream.
    let (store, _, _dir) = repo(false).await;
    let mut doc = json_of(&store, PRODUCTS).await;
    let item = &mut doc["products"]["ubuntu:noble:amd64"]["versions"]["1"]["items"]["disk1.img"];
    item["path"] = json!("../../etc/passwd");
    put_json(&store, PRODUCTS, &doc).await;
    only(
        &problems(&store, None).await,
        PRODUCTS,
        Some(&format!("{ITEM}.path")),
        "unsafe path",
    );
    // Into the mirror engine's private state.
    let item = &mut doc["products"]["ubuntu:noble:amd64"]["versions"]["1"]["items"]["disk1.img"];
    item["path"] = json!(".sstream-mirror/state.json");
    put_json(&store, PRODUCTS, &doc).await;
    only(
        &problems(&store, None).await,
        PRODUCTS,
        Some(&format!("{ITEM}.path")),
        ".sstream-mirror",
    );
}

#[tokio::test]
async fn duplicate_ids_are_found() {
    let (store, _, _dir) = repo(false).await;
    let text = String::from_utf8(store.get_bytes(PRODUCTS).await.unwrap().to_vec()).unwrap();
    // The arm64 product a second time under the amd64 name.
    let dup = text.replacen("\"ubuntu:noble:arm64\"", "\"ubuntu:noble:amd64\"", 1);
    store.put_bytes(PRODUCTS, dup.into()).await.unwrap();
    let found = problems(&store, None).await;
    assert!(
        found.iter().any(|p| p.file == PRODUCTS
            && p.field.as_deref() == Some("products.ubuntu:noble:amd64")
            && p.message.contains("duplicate key")),
        "{found:#?}"
    );
}

#[tokio::test]
async fn one_path_with_two_contents_is_found() {
    let (store, _, _dir) = repo(false).await;
    let mut doc = json_of(&store, PRODUCTS).await;
    let amd = item_path(&store).await;
    let arm = &mut doc["products"]["ubuntu:noble:arm64"]["versions"]["1"]["items"]["disk1.img"];
    arm["path"] = json!(amd);
    put_json(&store, PRODUCTS, &doc).await;
    let found = problems(&store, None).await;
    assert!(
        found.iter().any(|p| p.message.contains("also named by")
            && p.message.contains("with other size or checksums")),
        "{found:#?}"
    );
}

#[tokio::test]
async fn missing_required_fields_are_found_by_datatype() {
    let (store, _, _dir) = repo(false).await;
    let mut doc = json_of(&store, PRODUCTS).await;
    let item = &mut doc["products"]["ubuntu:noble:amd64"]["versions"]["1"]["items"]["disk1.img"];
    let obj = item.as_object_mut().unwrap();
    obj.remove("size");
    obj.remove("sha256");
    obj.remove("md5");
    put_json(&store, PRODUCTS, &doc).await;
    let found = problems(&store, None).await;
    let fields: Vec<String> = found.iter().filter_map(|p| p.field.clone()).collect();
    assert!(fields.contains(&format!("{ITEM}.size")), "{found:#?}");
    assert!(
        found
            .iter()
            .any(|p| p.field.as_deref() == Some(ITEM) && p.message.contains("no checksum")),
        "{found:#?}"
    );

    // image-ids items need id, region and endpoint.
    doc["datatype"] = json!("image-ids");
    let item = &mut doc["products"]["ubuntu:noble:amd64"]["versions"]["1"]["items"]["disk1.img"];
    *item = json!({"id": "ami-1", "region": "r1"});
    put_json(&store, PRODUCTS, &doc).await;
    let mut index = json_of(&store, "streams/v1/index.json").await;
    index["index"]["images:released:download"]["datatype"] = json!("image-ids");
    put_json(&store, "streams/v1/index.json", &index).await;
    let found = problems(&store, None).await;
    assert!(
        found
            .iter()
            .any(|p| p.field.as_deref() == Some(&format!("{ITEM}.endpoint"))),
        "{found:#?}"
    );
    assert!(!found
        .iter()
        .any(|p| p.field.as_deref() == Some(&format!("{ITEM}.id"))));
}

#[tokio::test]
async fn index_entries_are_checked_against_their_files() {
    let (store, _, _dir) = repo(false).await;
    let mut index = json_of(&store, "streams/v1/index.json").await;
    let entry = &mut index["index"]["images:released:download"];
    entry["products"] = json!(["ubuntu:noble:amd64", "ubuntu:noble:riscv64"]);
    entry["updated"] = json!("yesterday");
    put_json(&store, "streams/v1/index.json", &index).await;
    let found = problems(&store, None).await;
    let messages: Vec<String> = found.iter().map(|p| p.to_string()).collect();
    assert_eq!(found.len(), 3, "{messages:#?}");
    let field = "index.images:released:download.products";
    assert!(messages
        .iter()
        .any(|m| m.contains(field) && m.contains("does not list ubuntu:noble:arm64")));
    assert!(messages
        .iter()
        .any(|m| m.contains(field) && m.contains("lists ubuntu:noble:riscv64")));
    assert!(messages
        .iter()
        .any(|m| m.contains("updated") && m.contains("RFC 2822")));

    // An entry naming a file that is not there.
    store.delete(PRODUCTS).await.unwrap();
    let found = problems(&store, None).await;
    assert!(
        found.iter().any(
            |p| p.field.as_deref() == Some("index.images:released:download.path")
                && p.message.contains("which is not there")
        ),
        "{found:#?}"
    );
}
