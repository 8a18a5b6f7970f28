//! `LocalStore` in a directory where someone planted links: a put, a delete or a lock never
//! writes, creates or removes anything outside the store's root, and the store still keeps
//! its contract (temporary files hidden, conformance suite) with its fresh temporary names.
//!
//! Each test plants its links, runs the store, then compares a second directory ("outside",
//! where the links point) with what it held before.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use simplestreams_mirror::{
    byte_stream, testkit, Error, InMemory, LocalStore, Mirror, PutOptions, Store, StoreExt,
    StoreSource, StoreTarget, SyncOptions, Target,
};

/// Everything below `dir`: files with their bytes, directories as `DIR`, links as `-> target`,
/// without following links.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let p = entry.expect("entry").path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let md = std::fs::symlink_metadata(&p).expect("lstat");
            let what = if md.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else if md.is_dir() {
                stack.push(p);
                "DIR".to_string()
            } else {
                String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned()
            };
            out.insert(rel, what);
        }
    }
    out
}

/// A store root and an "outside" directory holding one precious file.
struct Planted {
    root: tempfile::TempDir,
    outside: tempfile::TempDir,
}

impl Planted {
    fn new() -> Planted {
        let p = Planted {
            root: tempfile::tempdir().unwrap(),
            outside: tempfile::tempdir().unwrap(),
        };
        std::fs::write(p.victim(), "precious").unwrap();
        p
    }

    fn victim(&self) -> std::path::PathBuf {
        self.outside.path().join("victim")
    }

    fn store(&self) -> LocalStore {
        LocalStore::new(self.root.path())
    }

    /// A symbolic link at `rel` below the root, pointing to `target` below "outside".
    fn plant(&self, rel: &str, target: &str) {
        let at = self.root.path().join(rel);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        symlink(self.outside.path().join(target), at).unwrap();
    }

    /// "outside" holds exactly the precious file, untouched.
    fn assert_outside_untouched(&self) {
        let expected = BTreeMap::from([("victim".to_string(), "precious".to_string())]);
        assert_eq!(
            snapshot(self.outside.path()),
            expected,
            "something outside the store's root was written, created or removed"
        );
    }
}

#[tokio::test]
async fn a_link_planted_at_the_old_temporary_name_is_not_written_through() {
    let p = Planted::new();
    let store = p.store();
    // A first put into the directory, so that the links below are planted after the store
    // cleared it of stale temporary files: they stay, and only how temporary files are
    // created keeps the bytes inside.
    store.put_bytes("a/first", "first".into()).await.unwrap();
    // The temporary names earlier versions used, fixed and predictable: one link to an
    // existing file, one dangling link that a create would have made a new file.
    p.plant("a/.b.part", "victim");
    p.plant("a/.c.part", "created");
    for (path, body) in [("a/b", "new b"), ("a/c", "new c")] {
        for durable in [false, true] {
            store
                .put(
                    path,
                    byte_stream(body),
                    PutOptions {
                        durable,
                        ..PutOptions::default()
                    },
                )
                .await
                .expect("put");
        }
    }
    p.assert_outside_untouched();
    for (path, body) in [("a/b", "new b"), ("a/c", "new c")] {
        let file = p.root.path().join(path);
        assert!(
            !std::fs::symlink_metadata(&file)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{path} is a plain file, not the planted link renamed into place"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), body);
    }
    assert!(
        std::fs::symlink_metadata(p.root.path().join("a/.b.part"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the planted link was left alone, neither followed nor reused"
    );
}

#[tokio::test]
async fn a_put_through_a_parent_directory_linked_outside_the_root_is_refused() {
    let p = Planted::new();
    // The link is the item's directory, or a directory above it.
    p.plant("files", "");
    let store = p.store();
    for path in ["files/new.img", "files/deeper/new.img", "files/victim"] {
        let err = store
            .put(path, byte_stream("payload"), PutOptions::default())
            .await
            .expect_err("a put through a link leading outside must be refused")
            .to_string();
        let link = p.root.path().join("files").display().to_string();
        assert!(
            err.contains(&link) && err.contains("symbolic link") && err.contains("outside"),
            "the error names the link and why: {err}"
        );
    }
    p.assert_outside_untouched();
}

#[tokio::test]
async fn a_delete_through_a_parent_directory_linked_outside_the_root_is_refused() {
    let p = Planted::new();
    p.plant("files", "");
    let err = p
        .store()
        .delete("files/victim")
        .await
        .expect_err("a delete through a link leading outside must be refused");
    assert!(err.to_string().contains("outside"), "{err}");
    p.assert_outside_untouched();
}

#[tokio::test]
async fn a_parent_directory_linked_inside_the_root_is_followed() {
    let p = Planted::new();
    let store = p.store();
    store.put_bytes("real/x", "x".into()).await.expect("put");
    symlink(p.root.path().join("real"), p.root.path().join("alias")).unwrap();
    store
        .put_bytes("alias/y", "y".into())
        .await
        .expect("a link to a directory inside the root is fine");
    assert_eq!(
        std::fs::read_to_string(p.root.path().join("real/y")).unwrap(),
        "y"
    );
    assert_eq!(store.get_bytes("alias/y").await.unwrap(), "y");
    p.assert_outside_untouched();
}

#[tokio::test]
async fn a_root_that_is_itself_a_link_still_conforms() {
    let real = tempfile::tempdir().unwrap();
    let holder = tempfile::tempdir().unwrap();
    let link = holder.path().join("mirror");
    symlink(real.path(), &link).unwrap();
    testkit::store_conformance(&LocalStore::new(&link)).await;
}

#[tokio::test]
async fn a_lock_file_that_is_a_link_is_refused_and_its_target_untouched() {
    for target in ["victim", "created"] {
        let p = Planted::new();
        p.plant(".sstream-mirror/lock", target);
        let target_store = StoreTarget::new(Arc::new(p.store()));
        let err = target_store
            .lock()
            .await
            .expect_err("a linked lock must be refused")
            .to_string();
        assert!(
            err.contains(".sstream-mirror/lock") && err.contains("symbolic link"),
            "the error names the lock and says why: {err}"
        );
        p.assert_outside_untouched();
    }
}

#[tokio::test]
async fn a_lock_file_with_another_hard_link_is_refused_and_left_untouched() {
    let p = Planted::new();
    std::fs::create_dir_all(p.root.path().join(".sstream-mirror")).unwrap();
    // Both temporary directories live in the same filesystem, as a hard link needs.
    std::fs::hard_link(p.victim(), p.root.path().join(".sstream-mirror/lock")).unwrap();
    let err = StoreTarget::new(Arc::new(p.store()))
        .lock()
        .await
        .expect_err("a lock hard-linked elsewhere must be refused")
        .to_string();
    assert!(err.contains("hard"), "{err}");
    p.assert_outside_untouched();
}

#[tokio::test]
async fn the_state_directory_linked_outside_the_root_is_refused_for_lock_and_state() {
    let p = Planted::new();
    p.plant(".sstream-mirror", "");
    let target = StoreTarget::new(Arc::new(p.store()));
    let err = target.lock().await.expect_err("lock refused").to_string();
    assert!(err.contains("outside"), "{err}");
    let err = target
        .save_state(&Default::default())
        .await
        .expect_err("state refused")
        .to_string();
    assert!(err.contains("outside"), "{err}");
    p.assert_outside_untouched();
}

#[tokio::test]
async fn a_mirror_into_a_directory_with_a_planted_link_fails_that_item_and_writes_nothing_outside()
{
    let p = Planted::new();
    p.plant("files", "");
    let upstream = InMemory::new();
    let doc = json!({"format": "products:1.0", "content_id": "c", "products": {"p": {
        "versions": {"1": {"items": {"i": {"path": "files/i.img", "size": 5,
        "md5": "5d41402abc4b2a76b9719d911017c592"}}}}}}});
    upstream
        .put_bytes(
            "streams/v1/c.json",
            serde_json::to_vec(&doc).unwrap().into(),
        )
        .await
        .unwrap();
    upstream
        .put_bytes("files/i.img", "hello".into())
        .await
        .unwrap();
    let report = Mirror::to_store(
        Arc::new(StoreSource::new(Arc::new(upstream))),
        Arc::new(p.store()),
        SyncOptions {
            entry: "streams/v1/c.json".into(),
            ..SyncOptions::default()
        },
    )
    .run()
    .await
    .expect("the run itself goes on");
    assert!(!report.is_success(), "the item must fail");
    let errors: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("c p 1 i") && e.contains("outside")),
        "the item's error says why: {errors:?}"
    );
    assert!(
        !p.root.path().join("streams/v1/c.json").exists(),
        "its products file is not published"
    );
    p.assert_outside_untouched();
}

#[tokio::test]
async fn temporary_files_have_fresh_names_stay_hidden_and_crash_leftovers_are_removed() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a");
    std::fs::create_dir_all(&dir).unwrap();
    // What a process killed in the middle of puts leaves: a temporary file of this version,
    // and one of the fixed name earlier versions used.
    std::fs::write(dir.join(".b.Xy12AbCd.part"), "half").unwrap();
    std::fs::write(dir.join(".b.part"), "half").unwrap();
    let store = LocalStore::new(root.path());
    assert!(
        store.list("").await.unwrap().is_empty(),
        "temporary files are not objects"
    );

    // A put in flight: its temporary file has a new random name, and is not listed.
    let (tx, rx) = futures::channel::mpsc::unbounded::<simplestreams_mirror::Result<Bytes>>();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { store.put("a/b", rx.boxed(), PutOptions::durable()).await })
    };
    tx.unbounded_send(Ok(Bytes::from_static(b"whole"))).unwrap();
    let waiting_since = std::time::Instant::now();
    let temp = loop {
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let fresh: Vec<&String> = names
            .iter()
            .filter(|n| n.starts_with(".b.") && n.ends_with(".part"))
            .filter(|n| *n != ".b.Xy12AbCd.part" && *n != ".b.part")
            .collect();
        if let Some(t) = fresh.first() {
            break (*t).clone();
        }
        assert!(
            waiting_since.elapsed() < std::time::Duration::from_secs(10),
            "no fresh temporary name for a/b appeared while its put was in flight: {names:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    let tag = &temp[".b.".len()..temp.len() - ".part".len()];
    assert!(
        tag.len() >= 6 && tag.chars().all(|c| c.is_ascii_alphanumeric()),
        "a random part in the temporary name: {temp}"
    );
    assert!(
        store.list("").await.unwrap().is_empty(),
        "an object being written is not listed"
    );
    drop(tx);
    // Closing the channel ends the body cleanly: the object is published.
    writer.await.unwrap().expect("put");

    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["b"], "leftovers removed, nothing temporary left");
    assert_eq!(store.get_bytes("a/b").await.unwrap(), "whole");
    let listed: Vec<String> = store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.path)
        .collect();
    assert_eq!(listed, ["a/b"]);
}

#[tokio::test]
async fn a_failed_put_leaves_no_temporary_file() {
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path());
    let body = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"part")),
        Err(Error::Aborted("verification failed".into())),
    ])
    .boxed();
    assert!(store.put("a/b", body, PutOptions::default()).await.is_err());
    let names: Vec<String> = std::fs::read_dir(root.path().join("a"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

/// Two writers in one directory (two processes, say two Glance syncs keeping their state in
/// the same place): the first put of each sweeps leftovers, and must not take the other's
/// temporary file while its put is running (the other's rename would then fail, not found).
#[tokio::test]
async fn a_temporary_file_being_written_elsewhere_is_not_swept_but_a_leftover_is() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a");
    std::fs::create_dir_all(&dir).unwrap();
    // A put running elsewhere holds the lock of its temporary file; a leftover holds none.
    let live = dir.join(".c.Ab12Cd.part");
    let writer = std::fs::File::create(&live).unwrap();
    // SAFETY: flock on the descriptor `writer` owns.
    let locked = unsafe {
        libc::flock(
            std::os::unix::io::AsRawFd::as_raw_fd(&writer),
            libc::LOCK_EX,
        )
    };
    assert_eq!(locked, 0);
    let leftover = dir.join(".d.Ef34Gh.part");
    std::fs::write(&leftover, "half").unwrap();

    let store = LocalStore::new(root.path());
    store
        .put_bytes("a/b", Bytes::from_static(b"whole"))
        .await
        .unwrap();
    assert!(live.exists(), "the file of a put in flight is kept");
    assert!(!leftover.exists(), "a leftover is removed");

    // Once that put is gone (killed: its lock is released), the next store's sweep takes it.
    drop(writer);
    LocalStore::new(root.path())
        .put_bytes("a/e", Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert!(!live.exists(), "a leftover once its writer is gone");
}
