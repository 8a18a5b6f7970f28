//! `Repo`: adding, re-adding, removing, pruning, promoting and committing, on a store in
//! memory, including the failures a publisher meets (a full disk, a crash, another key).

mod support;

use std::sync::Arc;

use serde_json::Value;
use simplestreams_core::openpgp::{verify_clearsigned, verify_detached, Keyring};
use simplestreams_core::{Index, Products};
use simplestreams_mirror::{InMemory, Store, StoreExt};
use simplestreams_publish::{
    read_json2streams, spawn_json2streams, validate_store, AddOutcome, Error, NewImage, Placement,
    Repo, RepoOptions,
};
use support::{chain, key, noble, qcow2, squashfs, tree, Faulty};

const CID: &str = "images:released:download";
const PRODUCTS: &str = "streams/v1/images:released:download.json";

fn mem() -> (InMemory, Arc<dyn Store>) {
    let store = InMemory::new();
    (store.clone(), Arc::new(store))
}

async fn products(store: &InMemory, path: &str) -> Products {
    Products::from_slice(&store.get_bytes(path).await.unwrap(), path).unwrap()
}

#[tokio::test]
async fn a_new_repo_is_published_signed_condensed_and_valid() {
    let dir = tempfile::tempdir().unwrap();
    let (store, dyn_store) = mem();
    let (generated, signing) = key("Publisher");
    let mut repo = Repo::open(dyn_store.clone(), Some(signing)).await.unwrap();
    let a = qcow2(dir.path(), "noble-amd64.img", 1, 100_000);
    let b = squashfs(dir.path(), "noble-amd64.squashfs", 2);
    let report = repo
        .add(vec![
            noble(&a, "amd64", "20240601"),
            noble(&b, "amd64", "20240601"),
        ])
        .await
        .unwrap();
    assert!(report.images.iter().all(|i| i.outcome == AddOutcome::Added));
    assert_eq!(report.images[0].item, "disk1.img");
    assert_eq!(report.images[1].item, "squashfs");
    let commit = repo.commit().await.unwrap();
    assert!(commit.signed);
    assert_eq!(commit.published, [PRODUCTS, "streams/v1/index.json"]);

    let paths = store.paths();
    for p in [
        "streams/v1/index.json",
        "streams/v1/index.sjson",
        "streams/v1/index.json.gpg",
        "streams/v1/images:released:download.sjson",
        "streams/v1/images:released:download.json.gpg",
        "streams/v1/signing-key.asc",
    ] {
        assert!(paths.contains(&p.to_string()), "{p} in {paths:?}");
    }
    let keyring = Keyring::from_bytes(&generated.public_keyring, "k.gpg").unwrap();
    for doc in ["streams/v1/index", "streams/v1/images:released:download"] {
        let sjson = store.get_bytes(&format!("{doc}.sjson")).await.unwrap();
        verify_clearsigned(&sjson, &keyring, doc).unwrap();
        let json = store.get_bytes(&format!("{doc}.json")).await.unwrap();
        let sig = store.get_bytes(&format!("{doc}.json.gpg")).await.unwrap();
        verify_detached(&json, &sig, &keyring, doc).unwrap();
    }

    // Condensed for every client: product fields on the product, label on the version, the
    // file facts on each item.
    let doc = products(&store, PRODUCTS).await;
    assert_eq!(doc.datatype(), Some("image-downloads"));
    assert!(chrono::DateTime::parse_from_rfc2822(doc.updated().unwrap()).is_ok());
    let p = &doc.products["ubuntu:noble:amd64"];
    for (k, v) in [("os", "ubuntu"), ("release", "noble"), ("arch", "amd64")] {
        assert_eq!(p.fields[k], v);
    }
    let v = &p.versions["20240601"];
    assert_eq!(v.fields["label"], "release");
    let item = &v.items["disk1.img"];
    for k in ["ftype", "path", "size", "sha256", "md5", "disk_format"] {
        assert!(item.fields.contains_key(k), "{k} on the item");
    }
    assert_eq!(item.fields["size"], 100_000);
    let path = item.fields["path"].as_str().unwrap();
    assert!(
        path.starts_with("images/") && path.ends_with(".qcow2"),
        "{path}"
    );
    assert_eq!(
        store.get_bytes(path).await.unwrap(),
        std::fs::read(&a).unwrap()
    );
    let index = Index::from_slice(
        &store.get_bytes("streams/v1/index.json").await.unwrap(),
        "i",
    )
    .unwrap();
    let entry = &index.index[CID];
    for k in ["datatype", "path", "products", "format", "updated"] {
        assert!(entry.fields.contains_key(k), "index entry has {k}");
    }
    assert_eq!(
        entry.fields["products"],
        serde_json::json!(["ubuntu:noble:amd64"])
    );

    let report = validate_store(dyn_store, Some(&keyring)).await.unwrap();
    assert!(report.is_ok(), "{:#?}", report.problems);
    assert_eq!(report.files, 2);
}

#[tokio::test]
async fn adding_the_same_file_again_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let faulty = Faulty::new(InMemory::new());
    let (_, signing) = key("P");
    let a = qcow2(dir.path(), "a.img", 1, 5000);
    for round in 0..2 {
        let mut repo = Repo::open(Arc::new(faulty.clone()), Some(signing.clone()))
            .await
            .unwrap();
        let before = tree(&faulty.inner).await;
        let writes = faulty.writes();
        let report = repo.add(vec![noble(&a, "amd64", "1")]).await.unwrap();
        let commit = repo.commit().await.unwrap();
        if round == 1 {
            assert_eq!(report.images[0].outcome, AddOutcome::Unchanged);
            assert!(!report.changed());
            assert!(commit.is_noop(), "{commit:?}");
            assert_eq!(faulty.writes(), writes, "no put, no delete");
            assert_eq!(tree(&faulty.inner).await, before);
        }
    }
}

#[tokio::test]
async fn adding_again_puts_back_a_file_deleted_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let (store, dyn_store) = mem();
    let a = qcow2(dir.path(), "a.img", 1, 5000);
    let mut repo = Repo::open(dyn_store.clone(), None).await.unwrap();
    let added = repo.add(vec![noble(&a, "amd64", "1")]).await.unwrap();
    repo.commit().await.unwrap();
    let path = &added.images[0].path;
    store.delete(path).await.unwrap();
    assert!(!validate_store(dyn_store.clone(), None)
        .await
        .unwrap()
        .is_ok());
    let mut repo = Repo::open(dyn_store.clone(), None).await.unwrap();
    let again = repo.add(vec![noble(&a, "amd64", "1")]).await.unwrap();
    assert_eq!(again.images[0].outcome, AddOutcome::Restored);
    let commit = repo.commit().await.unwrap();
    assert!(
        commit.published.is_empty(),
        "metadata unchanged: {commit:?}"
    );
    assert!(validate_store(dyn_store, None).await.unwrap().is_ok());
}

#[tokio::test]
async fn two_files_claiming_one_item_are_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let (_, store) = mem();
    let a = qcow2(dir.path(), "a.img", 1, 5000);
    let b = qcow2(dir.path(), "b.img", 2, 5000);
    // In one call.
    let mut repo = Repo::open(store.clone(), None).await.unwrap();
    let err = repo
        .add(vec![noble(&a, "amd64", "1"), noble(&b, "amd64", "1")])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("a.img") && msg.contains("b.img"), "{msg}");
    repo.abort().await.unwrap();
    // Across runs: the published item against the new file.
    let mut repo = Repo::open(store.clone(), None).await.unwrap();
    repo.add(vec![noble(&a, "amd64", "1")]).await.unwrap();
    repo.commit().await.unwrap();
    let mut repo = Repo::open(store, None).await.unwrap();
    let msg = repo
        .add(vec![noble(&b, "amd64", "1")])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("in the repository") && msg.contains("b.img"),
        "{msg}"
    );
}

#[tokio::test]
async fn an_undetectable_file_needs_an_ftype() {
    let dir = tempfile::tempdir().unwrap();
    let (store, dyn_store) = mem();
    let file = dir.path().join("kernel.efi");
    std::fs::write(&file, vec![7u8; 3000]).unwrap();
    let mut repo = Repo::open(dyn_store, None).await.unwrap();
    let err = repo
        .add(vec![noble(&file, "amd64", "1")])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownType { .. }), "{err}");
    assert!(err.to_string().contains("kernel.efi") && err.to_string().contains("--ftype"));
    let mut image = noble(&file, "amd64", "1");
    image.ftype = Some("kernel".into());
    let report = repo.add(vec![image]).await.unwrap();
    assert_eq!(report.images[0].item, "kernel");
    assert!(report.images[0].path.ends_with(".efi"));
    repo.commit().await.unwrap();
    let doc = products(&store, PRODUCTS).await;
    let item = &doc.products["ubuntu:noble:amd64"].versions["1"].items["kernel"];
    assert_eq!(item.fields["ftype"], "kernel");
    assert!(!item.fields.contains_key("disk_format"));
}

#[tokio::test]
async fn corrupt_metadata_is_refused_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let (store, dyn_store) = mem();
    let a = qcow2(dir.path(), "a.img", 1, 5000);
    let mut repo = Repo::open(dyn_store.clone(), None).await.unwrap();
    repo.add(vec![noble(&a, "amd64", "1")]).await.unwrap();
    repo.commit().await.unwrap();
    let text = String::from_utf8(store.get_bytes(PRODUCTS).await.unwrap().to_vec()).unwrap();
    let bad = text.replacen("\"size\": 5000", "\"size\": \"big\"", 1);
    assert_ne!(bad, text);
    store.put_bytes(PRODUCTS, bad.clone().into()).await.unwrap();
    let before = tree(&store).await;
    let err = Repo::open(dyn_store.clone(), None).await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(PRODUCTS), "{msg}");
    assert!(
        msg.contains("products.ubuntu:noble:amd64.versions.1.items.disk1.img.size"),
        "{msg}"
    );
    assert_eq!(tree(&store).await, before, "nothing changed");
    // Broken JSON in the index too.
    store
        .put_bytes("streams/v1/index.json", "{\"format\": ".into())
        .await
        .unwrap();
    let msg = Repo::open(dyn_store, None).await.unwrap_err().to_string();
    assert!(msg.starts_with("streams/v1/index.json: "), "{msg}");
}

#[tokio::test]
async fn a_repo_signed_by_another_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, dyn_store) = mem();
    let (_, first) = key("First");
    let (_, second) = key("Second");
    let a = qcow2(dir.path(), "a.img", 1, 5000);
    let b = qcow2(dir.path(), "b.img", 2, 5000);
    let mut repo = Repo::open(dyn_store.clone(), Some(first.clone()))
        .await
        .unwrap();
    repo.add(vec![noble(&a, "amd64", "1")]).await.unwrap();
    repo.commit().await.unwrap();
    let before = tree(&store).await;

    let err = Repo::open(dyn_store.clone(), Some(second))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SignedByAnotherKey { .. }), "{err}");
    assert!(err.to_string().contains("signed by another key"), "{err}");

    // Without a key: refused unless unsigning is allowed.
    let err = Repo::open(dyn_store.clone(), None).await.unwrap_err();
    assert!(matches!(err, Error::SignedRepo { .. }), "{err}");
    assert_eq!(tree(&store).await, before, "nothing changed");

    // The right key works.
    let mut repo = Repo::open(dyn_store.clone(), Some(first)).await.unwrap();
    repo.add(vec![noble(&b, "amd64", "2")]).await.unwrap();
    repo.commit().await.unwrap();

    // Unsigning removes every signature, so that no stale signed copy stays.
    let options = RepoOptions {
        allow_unsigning: true,
    };
    let repo = Repo::open_with(dyn_store.clone(), None, options)
        .await
        .unwrap();
    let commit = repo.commit().await.unwrap();
    assert!(!commit.signed);
    let left: Vec<String> = store
        .paths()
        .into_iter()
        .filter(|p| p.ends_with(".sjson") || p.ends_with(".gpg") || p.ends_with(".asc"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(validate_store(dyn_store, None).await.unwrap().is_ok());
}

#[tokio::test]
async fn a_full_disk_mid_add_leaves_the_previous_repo_intact() {
    let dir = tempfile::tempdir().unwrap();
    let faulty = Faulty::new(InMemory::new());
    let store: Arc<dyn Store> = Arc::new(faulty.clone());
    let (generated, signing) = key("P");
    let a = qcow2(dir.path(), "a.img", 1, 5000);
    let mut repo = Repo::open(store.clone(), Some(signing.clone()))
        .await
        .unwrap();
    repo.add(vec![noble(&a, "amd64", "1")]).await.unwrap();
    repo.commit().await.unwrap();
    let before = tree(&faulty.inner).await;

    // The second image's copy fails half way.
    let b = qcow2(dir.path(), "b.img", 2, 3 << 20);
    let c = squashfs(dir.path(), "c.squashfs", 3);
    faulty.fail_when(|p| p.ends_with(".squashfs"));
    let mut repo = Repo::open(store.clone(), Some(signing.clone()))
        .await
        .unwrap();
    let err = repo
        .add(vec![noble(&b, "amd64", "2"), noble(&c, "amd64", "2")])
        .await
        .unwrap_err();
    assert!(chain(&err).contains("No space left on device"), "{err}");
    repo.abort().await.unwrap();
    assert_eq!(
        tree(&faulty.inner).await,
        before,
        "the previous repo, whole"
    );
    let keyring = Keyring::from_bytes(&generated.public_keyring, "k").unwrap();
    let report = validate_store(store.clone(), Some(&keyring)).await.unwrap();
    assert!(report.is_ok(), "{:#?}", report.problems);

    // Even without abort (a crash), what was copied is named by nothing published, and the
    // repository still validates.
    let mut repo = Repo::open(store.clone(), Some(signing)).await.unwrap();
    let _ = repo
        .add(vec![noble(&b, "amd64", "2"), noble(&c, "amd64", "2")])
        .await
        .unwrap_err();
    drop(repo);
    let report = validate_store(store, Some(&keyring)).await.unwrap();
    assert!(report.is_ok(), "{:#?}", report.problems);
}

#[tokio::test]
async fn an_interrupted_add_leaves_a_consumable_repo_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let (generated, signing) = key("P");
    let keyring = Keyring::from_bytes(&generated.public_keyring, "k").unwrap();
    let a = qcow2(dir.path(), "a.img", 1, 5000);
    let b = qcow2(dir.path(), "b.img", 2, 5000);
    // b is a new product: the index changes too.
    let batch = || vec![noble(&a, "amd64", "1"), noble(&b, "arm64", "1")];
    // Interrupted at each write of the commit in turn, from the same repository.
    for failing in [
        "images:released:download.json",
        "images:released:download.json.gpg",
        "images:released:download.sjson",
        "index.json",
        "index.json.gpg",
        "index.sjson",
    ] {
        let faulty = Faulty::new(InMemory::new());
        let store: Arc<dyn Store> = Arc::new(faulty.clone());
        let mut repo = Repo::open(store.clone(), Some(signing.clone()))
            .await
            .unwrap();
        repo.add(vec![noble(&a, "amd64", "1")]).await.unwrap();
        repo.commit().await.unwrap();

        faulty.fail_when(move |p| p.ends_with(failing));
        let mut repo = Repo::open(store.clone(), Some(signing.clone()))
            .await
            .unwrap();
        repo.add(batch()).await.unwrap();
        let err = repo.commit().await.unwrap_err();
        assert!(chain(&err).contains("No space left"), "{failing}: {err}");
        // Consumable whatever was reached: every file named is there, and every `.sjson`
        // verifies, at worst still saying what the previous commit said. (`X.json` and its
        // detached `X.json.gpg` cannot change together: between the two puts, the old
        // signature does not match the new file.)
        let report = validate_store(store.clone(), Some(&keyring)).await.unwrap();
        let stale_only = report.problems.iter().all(|p| {
            p.message.contains("says something else")
                || (p.file.ends_with(".json.gpg") && p.message.contains("bad signature"))
                || (p.field.as_deref() == Some("index.images:released:download.products")
                    && p.message.contains("does not list ubuntu:noble:arm64"))
        });
        assert!(stale_only, "{failing}: {:#?}", report.problems);

        // A re-run completes it.
        *faulty.fail.lock().unwrap() = None;
        let mut repo = Repo::open(store.clone(), Some(signing.clone()))
            .await
            .unwrap();
        let again = repo.add(batch()).await.unwrap();
        repo.commit().await.unwrap();
        assert_eq!(again.images[0].outcome, AddOutcome::Unchanged);
        let report = validate_store(store.clone(), Some(&keyring)).await.unwrap();
        assert!(report.is_ok(), "{failing}: {:#?}", report.problems);
        let doc = products(&faulty.inner, PRODUCTS).await;
        assert_eq!(doc.products.len(), 2, "{failing}");
    }
}

#[tokio::test]
async fn remove_and_prune_delete_the_files_no_longer_named() {
    let dir = tempfile::tempdir().unwrap();
    let (store, dyn_store) = mem();
    let mut repo = Repo::open(dyn_store.clone(), None).await.unwrap();
    let mut images = Vec::new();
    for (i, v) in ["20240101", "20240301", "20240201", "9"].iter().enumerate() {
        let f = qcow2(dir.path(), &format!("{v}.img"), i as u8, 4000 + i);
        images.push(noble(&f, "amd64", v));
    }
    let arm = qcow2(dir.path(), "arm.img", 9, 4500);
    images.push(noble(&arm, "arm64", "20240101"));
    let added = repo.add(images).await.unwrap();
    repo.commit().await.unwrap();
    let path_of = |v: &str| {
        added
            .images
            .iter()
            .find(|i| i.version == v && i.product.ends_with("amd64"))
            .unwrap()
            .path
            .clone()
    };

    // Prune to two: version order is byte-wise, "9" is the newest.
    let mut repo = Repo::open(dyn_store.clone(), None).await.unwrap();
    let pruned = repo.prune(2).unwrap();
    let mut gone: Vec<String> = pruned
        .iter()
        .map(|r| format!("{} {}", r.product, r.version))
        .collect();
    gone.sort();
    assert_eq!(
        gone,
        ["ubuntu:noble:amd64 20240101", "ubuntu:noble:amd64 20240201"]
    );
    let commit = repo.commit().await.unwrap();
    for v in ["20240101", "20240201"] {
        assert!(commit.deleted.contains(&path_of(v)), "{v}: {commit:?}");
        assert!(store.head(&path_of(v)).await.unwrap().is_none());
    }
    assert!(store.head(&path_of("9")).await.unwrap().is_some());
    let doc = products(&store, PRODUCTS).await;
    let versions: Vec<&String> = doc.products["ubuntu:noble:amd64"].versions.keys().collect();
    assert_eq!(versions, ["20240301", "9"]);

    // Remove one version, then a whole product.
    let mut repo = Repo::open(dyn_store.clone(), None).await.unwrap();
    repo.remove(None, "ubuntu:noble:amd64", Some("9")).unwrap();
    assert!(matches!(
        repo.remove(None, "ubuntu:noble:amd64", Some("nope")),
        Err(Error::NotFound(_))
    ));
    repo.remove(Some("released"), "ubuntu:noble:arm64", None)
        .unwrap();
    let commit = repo.commit().await.unwrap();
    assert!(commit.deleted.contains(&path_of("9")));
    assert!(store.head(&path_of("9")).await.unwrap().is_none());
    let doc = products(&store, PRODUCTS).await;
    assert_eq!(
        doc.products.keys().collect::<Vec<_>>(),
        ["ubuntu:noble:amd64"]
    );
    let index = store.get_bytes("streams/v1/index.json").await.unwrap();
    let index: Value = serde_json::from_slice(&index).unwrap();
    assert_eq!(
        index["index"][CID]["products"],
        serde_json::json!(["ubuntu:noble:amd64"])
    );

    // Removing the last product drops the content id and its file.
    let mut repo = Repo::open(dyn_store.clone(), None).await.unwrap();
    repo.remove(None, "ubuntu:noble:amd64", None).unwrap();
    repo.commit().await.unwrap();
    let left: Vec<String> = store
        .paths()
        .into_iter()
        .filter(|p| !p.starts_with(".sstream-mirror"))
        .collect();
    assert_eq!(left, ["streams/v1/index.json"]);
    assert!(validate_store(dyn_store, None).await.unwrap().is_ok());
}

#[tokio::test]
async fn promote_copies_a_version_sharing_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let (store, dyn_store) = mem();
    let a = qcow2(dir.path(), "a.img", 1, 5000);
    let mut image = noble(&a, "amd64", "20240601");
    image.stream = Some("candidate".into());
    let mut repo = Repo::open(dyn_store.clone(), None).await.unwrap();
    let added = repo.add(vec![image]).await.unwrap();
    assert_eq!(added.images[0].content_id, "images:candidate:download");
    repo.commit().await.unwrap();
    let puts_before = store.paths().len();

    let mut repo = Repo::open(dyn_store.clone(), None).await.unwrap();
    let report = repo
        .promote("candidate", "stable", "ubuntu:noble:amd64", "20240601")
        .unwrap();
    assert_eq!(report.to_content_id, "images:stable:download");
    assert!(!report.unchanged);
    repo.commit().await.unwrap();
    // One new products file; no image file copied.
    assert_eq!(store.paths().len(), puts_before + 1);
    let stable = products(&store, "streams/v1/images:stable:download.json").await;
    let candidate = products(&store, "streams/v1/images:candidate:download.json").await;
    let item = |d: &Products| {
        d.products["ubuntu:noble:amd64"].versions["20240601"].items["disk1.img"]
            .fields
            .clone()
    };
    assert_eq!(item(&stable), item(&candidate));
    assert_eq!(stable.products["ubuntu:noble:amd64"].fields["os"], "ubuntu");

    // Again: nothing changes. Removing it from candidate keeps the shared file.
    let mut repo = Repo::open(dyn_store.clone(), None).await.unwrap();
    assert!(
        repo.promote("candidate", "stable", "ubuntu:noble:amd64", "20240601")
            .unwrap()
            .unchanged
    );
    repo.remove(Some("candidate"), "ubuntu:noble:amd64", None)
        .unwrap();
    let commit = repo.commit().await.unwrap();
    let path = added.images[0].path.clone();
    assert!(!commit.deleted.contains(&path), "still named by stable");
    assert!(store.head(&path).await.unwrap().is_some());
    assert!(validate_store(dyn_store, None).await.unwrap().is_ok());
}

#[tokio::test]
async fn the_lock_is_the_mirror_engines() {
    let (_, store) = mem();
    let held = store.lock(".sstream-mirror/lock").await.unwrap();
    let err = Repo::open(store.clone(), None).await.unwrap_err();
    assert!(err.to_string().contains("locked"), "{err}");
    drop(held);
    let repo = Repo::open(store.clone(), None).await.unwrap();
    assert!(
        Repo::open(store.clone(), None).await.is_err(),
        "one at a time"
    );
    repo.commit().await.unwrap();
    Repo::open(store, None).await.unwrap();
}

#[tokio::test]
async fn path_templates_place_files_and_never_overwrite_other_content() {
    let dir = tempfile::tempdir().unwrap();
    let (store, dyn_store) = mem();
    let template = Placement::Template("{os}/{release}/{version_name}/{arch}/{filename}".into());
    let a = qcow2(dir.path(), "disk.img", 1, 5000);
    let mut image = noble(&a, "amd64", "1");
    image.placement = template.clone();
    image.sha512 = true;
    let mut repo = Repo::open(dyn_store.clone(), None).await.unwrap();
    let added = repo.add(vec![image]).await.unwrap();
    assert_eq!(added.images[0].path, "ubuntu/noble/1/amd64/disk.img");
    repo.commit().await.unwrap();
    let doc = products(&store, PRODUCTS).await;
    let item = &doc.products["ubuntu:noble:amd64"].versions["1"].items["disk1.img"];
    assert_eq!(item.fields["sha512"].as_str().unwrap().len(), 128);

    // Another file for the same path, under another item: refused, the file left alone.
    let other_dir = tempfile::tempdir().unwrap();
    let b = qcow2(other_dir.path(), "disk.img", 2, 5000);
    let mut image = noble(&b, "amd64", "1");
    image.placement = template;
    image.item_name = Some("other".into());
    let mut repo = Repo::open(dyn_store, None).await.unwrap();
    let err = repo.add(vec![image]).await.unwrap_err();
    assert!(matches!(err, Error::PathTaken { .. }), "{err}");
    assert_eq!(
        store
            .get_bytes("ubuntu/noble/1/amd64/disk.img")
            .await
            .unwrap(),
        std::fs::read(&a).unwrap()
    );
}

#[tokio::test]
async fn json2streams_items_are_copied_or_published_as_described() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("files")).unwrap();
    std::fs::write(dir.path().join("files/a.txt"), "hello").unwrap();
    let items = dir.path().join("items.json");
    std::fs::write(
        &items,
        r#"[{"content_id": "com.example:download", "product_name": "p", "version_name": "1",
            "item_name": "a", "path": "files/a.txt", "ftype": "text", "arch": "amd64",
            "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"},
           {"content_id": "com.example:download", "product_name": "p", "version_name": "1",
            "item_name": "b", "path": "files/b.txt", "ftype": "text", "arch": "amd64",
            "size": 5, "md5": "5d41402abc4b2a76b9719d911017c592"}]"#,
    )
    .unwrap();
    let (store, dyn_store) = mem();
    let mut repo = Repo::open(dyn_store.clone(), None).await.unwrap();
    let report = repo
        .add(read_json2streams(&items, None).unwrap())
        .await
        .unwrap();
    assert_eq!(report.images[0].outcome, AddOutcome::Added);
    assert_eq!(report.images[1].outcome, AddOutcome::Described);
    repo.commit().await.unwrap();
    assert_eq!(store.get_bytes("files/a.txt").await.unwrap(), "hello");
    let doc = products(&store, "streams/v1/com.example:download.json").await;
    let a = &doc.products["p"].versions["1"].items["a"];
    assert_eq!(a.fields["md5"], "5d41402abc4b2a76b9719d911017c592");
    // b is described but not there: validate says so.
    let report = validate_store(dyn_store.clone(), None).await.unwrap();
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
    assert!(report.problems[0].message.contains("files/b.txt: missing"));
    store
        .put_bytes("files/b.txt", "hello".into())
        .await
        .unwrap();
    assert!(validate_store(dyn_store, None).await.unwrap().is_ok());

    // A given checksum that the file does not have is refused.
    std::fs::write(dir.path().join("files/a.txt"), "HELLO").unwrap();
    let (_, other) = mem();
    let mut repo = Repo::open(other, None).await.unwrap();
    let err = repo
        .add(read_json2streams(&items, None).unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("sha256 mismatch"), "{err}");
}

#[tokio::test]
async fn a_new_version_does_not_repeat_the_product_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (store, dyn_store) = mem();
    for v in ["1", "2"] {
        let f = qcow2(dir.path(), &format!("{v}.img"), v.as_bytes()[0], 5000);
        let mut repo = Repo::open(dyn_store.clone(), None).await.unwrap();
        repo.add(vec![noble(&f, "amd64", v)]).await.unwrap();
        repo.commit().await.unwrap();
    }
    let doc = products(&store, PRODUCTS).await;
    let p = &doc.products["ubuntu:noble:amd64"];
    assert_eq!(p.fields["arch"], "amd64");
    for v in p.versions.values() {
        assert_eq!(v.fields.keys().collect::<Vec<_>>(), ["label"]);
        let item = &v.items["disk1.img"];
        assert!(!item.fields.contains_key("os") && !item.fields.contains_key("arch"));
    }
    let _ = NewImage::file("unused");
}

#[tokio::test]
async fn adding_a_version_reads_no_file_already_in_the_repo() {
    let dir = tempfile::tempdir().unwrap();
    let faulty = Faulty::new(InMemory::new());
    let store: Arc<dyn Store> = Arc::new(faulty.clone());
    let (_, signing) = key("P");
    let mut images = Vec::new();
    for v in 0..20 {
        let f = qcow2(dir.path(), &format!("{v}.img"), v as u8, 3000);
        images.push(noble(&f, "amd64", &format!("{v:02}")));
    }
    let mut repo = Repo::open(store.clone(), Some(signing.clone()))
        .await
        .unwrap();
    repo.add(images).await.unwrap();
    repo.commit().await.unwrap();
    faulty.gets.lock().unwrap().clear();
    let f = qcow2(dir.path(), "new.img", 99, 3000);
    let mut repo = Repo::open(store, Some(signing)).await.unwrap();
    repo.add(vec![noble(&f, "amd64", "99")]).await.unwrap();
    repo.commit().await.unwrap();
    let gets = faulty.gets.lock().unwrap().clone();
    assert!(!gets.is_empty());
    let items: Vec<&String> = gets.iter().filter(|p| !p.starts_with("streams/")).collect();
    assert!(items.is_empty(), "item files read: {items:?}");
}

#[tokio::test]
async fn hostile_names_are_refused_and_metadata_is_never_deleted_as_an_item() {
    let dir = tempfile::tempdir().unwrap();
    let (store, dyn_store) = mem();
    let a = qcow2(dir.path(), "a.img", 1, 5000);
    let mut repo = Repo::open(dyn_store.clone(), None).await.unwrap();
    for cid in ["../x", "a/b", ".hidden", ""] {
        let mut image = noble(&a, "amd64", "1");
        image.content_id = Some(cid.into());
        let err = repo.add(vec![image]).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{cid:?}: {err}");
    }
    repo.add(vec![noble(&a, "amd64", "1")]).await.unwrap();
    repo.commit().await.unwrap();

    // A products file (edited by hand) whose item names the index as its file: removing the
    // item must not delete the index.
    let mut doc: Value = serde_json::from_slice(&store.get_bytes(PRODUCTS).await.unwrap()).unwrap();
    doc["products"]["ubuntu:noble:amd64"]["versions"]["2"] = serde_json::json!({"items": {"x": {
        "path": "streams/v1/index.json", "size": 1, "sha256": "00"}}});
    store
        .put_bytes(PRODUCTS, serde_json::to_vec(&doc).unwrap().into())
        .await
        .unwrap();
    let mut repo = Repo::open(dyn_store.clone(), None).await.unwrap();
    repo.remove(None, "ubuntu:noble:amd64", Some("2")).unwrap();
    let commit = repo.commit().await.unwrap();
    assert!(
        !commit.deleted.iter().any(|p| p.starts_with("streams/")),
        "{commit:?}"
    );
    assert!(store.head("streams/v1/index.json").await.unwrap().is_some());
    assert!(validate_store(dyn_store, None).await.unwrap().is_ok());
}

/// A flat list read while its images are added: they all arrive, in order; an error of the
/// list wins over an image that failed to add before it, as if the list were read first;
/// the files copied before are removed by `abort`, leaving the repository as it was.
#[tokio::test]
async fn a_list_read_while_added_adds_all_and_its_own_errors_win() {
    let dir = tempfile::tempdir().unwrap();
    let (store, shared) = mem();
    std::fs::create_dir_all(dir.path().join("files")).unwrap();
    let item = |n: usize, version: &str| {
        serde_json::json!({"content_id": CID, "product_name": format!("p{}", n % 7),
            "version_name": version, "item_name": format!("i{n}"), "ftype": "raw",
            "path": format!("files/{n}.img")})
    };
    // More than one batch (the reader hands images over 256 at a time).
    let mut items: Vec<Value> = Vec::new();
    for n in 0..600 {
        std::fs::write(dir.path().join(format!("files/{n}.img")), n.to_string()).unwrap();
        items.push(item(n, "1"));
    }
    let list = dir.path().join("items.json");
    std::fs::write(&list, serde_json::to_vec(&items).unwrap()).unwrap();
    let mut repo = Repo::open(shared.clone(), None).await.unwrap();
    let added = repo
        .add_batches(spawn_json2streams(&list, None))
        .await
        .unwrap();
    let names: Vec<&str> = added.images.iter().map(|i| i.item.as_str()).collect();
    let expected: Vec<String> = (0..600).map(|n| format!("i{n}")).collect();
    assert_eq!(names, expected);
    repo.commit().await.unwrap();
    let published = store.paths();

    // Item 1 claims a published item with other content (it fails to add, after item 0 was
    // copied), and item 400, in a later batch, is not an item: the list's error is the one.
    std::fs::write(dir.path().join("files/other.img"), "other").unwrap();
    let mut bad = vec![item(0, "2"), item(1, "1"), item(2, "2")];
    bad[1]["path"] = "files/other.img".into();
    bad.extend((3..400).map(|n| item(n, "2")));
    bad.push(serde_json::json!({"content_id": CID}));
    std::fs::write(&list, serde_json::to_vec(&bad).unwrap()).unwrap();
    let mut repo = Repo::open(shared.clone(), None).await.unwrap();
    let err = repo
        .add_batches(spawn_json2streams(&list, None))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("item:401: missing field `product_name`"),
        "{err}"
    );
    repo.abort().await.unwrap();
    assert_eq!(
        store.paths(),
        published,
        "the version-2 copy of item 0 removed"
    );

    // A syntax error after that conflict wins too.
    let mut text = serde_json::to_vec(&bad[..400]).unwrap();
    text.truncate(text.len() - 1);
    text.extend_from_slice(b", {\"content_id\": }]");
    std::fs::write(&list, &text).unwrap();
    let mut repo = Repo::open(shared.clone(), None).await.unwrap();
    let err = repo
        .add_batches(spawn_json2streams(&list, None))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a JSON list of items"), "{err}");
    repo.abort().await.unwrap();
    assert_eq!(store.paths(), published);

    // Without the bad item, the conflict is the error.
    bad.pop();
    std::fs::write(&list, serde_json::to_vec(&bad).unwrap()).unwrap();
    let mut repo = Repo::open(shared, None).await.unwrap();
    let err = repo
        .add_batches(spawn_json2streams(&list, None))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    repo.abort().await.unwrap();
    assert_eq!(store.paths(), published);

    // A list that cannot be read names it.
    let mut repo = Repo::open(Arc::new(InMemory::new()), None).await.unwrap();
    let missing = dir.path().join("missing.json");
    let err = repo
        .add_batches(spawn_json2streams(&missing, None))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.json"), "{err}");
}
