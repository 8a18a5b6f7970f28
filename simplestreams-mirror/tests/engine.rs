//! The sync engine against in-memory stores: plans, publication order, failures, state.

mod common;

use std::sync::Arc;

use common::{content, products_doc, put_stream, Op, Recording};
use serde_json::json;
use simplestreams_core::{ChecksumKind, ChecksumPolicy, PlanLimits};
use simplestreams_mirror::{
    Error, InMemory, MetadataMode, Mirror, Store, StoreExt, StoreSource, SyncOptions, Target,
};

fn options(max: Option<usize>, metadata: MetadataMode) -> SyncOptions {
    SyncOptions {
        limits: PlanLimits { max, keep: false },
        metadata,
        ..SyncOptions::default()
    }
}

/// A sync into `target`, publishing into it too.
fn mirror(upstream: &InMemory, target: Arc<Recording>, o: SyncOptions) -> Mirror {
    Mirror::new(
        Arc::new(StoreSource::new(Arc::new(upstream.clone()))),
        target.clone(),
        o,
    )
    .publishing_to(target)
}

fn files(store: &InMemory) -> Vec<String> {
    store
        .paths()
        .into_iter()
        .filter(|p| p.starts_with("files/"))
        .collect()
}

#[tokio::test]
async fn publication_order_is_items_products_index_state_then_deletions() {
    let up = InMemory::new();
    put_stream(&up, &[("c1", products_doc("c1", &["p"], &["1", "2"]))]).await;
    let out = InMemory::new();
    let t = Recording::new(out.clone());
    let r = mirror(&up, t.clone(), options(Some(1), MetadataMode::Filtered))
        .run()
        .await
        .unwrap();
    assert!(r.is_success(), "{:?}", r.errors);
    let ops = t.take_ops();
    let mut expected: Vec<Op> = vec![];
    let (first, rest) = ops.split_at(2);
    let mut inserted: Vec<Op> = first.to_vec();
    inserted.sort_by_key(|o| format!("{o:?}"));
    expected.push(Op::Insert("files/p/2/a".into()));
    expected.push(Op::Insert("files/p/2/b".into()));
    assert_eq!(inserted, expected);
    assert_eq!(
        rest,
        [
            Op::Products("streams/v1/c1.json".into()),
            Op::Index("streams/v1/index.json".into()),
            Op::SaveState
        ]
    );

    // A new version arrives: version 1 is not held; 2 goes, 3 comes; deletion comes last.
    // (product q is new, so the filtered index changes too).
    put_stream(&up, &[("c1", products_doc("c1", &["p", "q"], &["2", "3"]))]).await;
    let r = mirror(&up, t.clone(), options(Some(1), MetadataMode::Filtered))
        .run()
        .await
        .unwrap();
    assert!(r.is_success(), "{:?}", r.errors);
    let ops = t.take_ops();
    let pos = |op: &Op| {
        ops.iter()
            .position(|o| o == op)
            .unwrap_or_else(|| panic!("{op:?} not in {ops:?}"))
    };
    assert!(
        pos(&Op::Insert("files/p/3/a".into())) < pos(&Op::Products("streams/v1/c1.json".into()))
    );
    assert!(
        pos(&Op::Products("streams/v1/c1.json".into()))
            < pos(&Op::Index("streams/v1/index.json".into()))
    );
    assert!(pos(&Op::Index("streams/v1/index.json".into())) < pos(&Op::SaveState));
    assert!(pos(&Op::SaveState) < pos(&Op::Remove("files/p/2/a".into())));
    assert_eq!(
        files(&out),
        ["files/p/3/a", "files/p/3/b", "files/q/3/a", "files/q/3/b"]
    );
}

#[tokio::test]
async fn state_is_written_once_per_run() {
    let up = InMemory::new();
    put_stream(
        &up,
        &[
            ("c1", products_doc("c1", &["p", "q"], &["1", "2", "3"])),
            ("c2", products_doc("c2", &["r"], &["1"])),
        ],
    )
    .await;
    let t = Recording::new(InMemory::new());
    for max in [None, Some(2), Some(1), Some(1)] {
        mirror(&up, t.clone(), options(max, MetadataMode::Verbatim))
            .run()
            .await
            .unwrap();
        let saves = t
            .take_ops()
            .into_iter()
            .filter(|o| *o == Op::SaveState)
            .count();
        assert!(saves <= 1, "state saved {saves} times in one run");
    }
}

#[tokio::test]
async fn noop_rerun_downloads_and_writes_nothing() {
    let up = InMemory::new();
    put_stream(&up, &[("c1", products_doc("c1", &["p"], &["1", "2"]))]).await;
    let t = Recording::new(InMemory::new());
    mirror(&up, t.clone(), options(None, MetadataMode::Verbatim))
        .run()
        .await
        .unwrap();
    t.take_ops();
    let r = mirror(&up, t.clone(), options(None, MetadataMode::Verbatim))
        .run()
        .await
        .unwrap();
    assert!(r.is_success());
    assert_eq!((r.downloaded, r.removed), (0, 0));
    assert_eq!(t.take_ops(), [], "a no-op run writes nothing");
}

#[tokio::test]
async fn every_checksum_failure_mode_is_caught() {
    let good = content("p", "1", "a");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "size + 1 (appended byte)",
            [good.clone(), b"!".to_vec()].concat(),
            "size mismatch",
        ),
        (
            "truncated",
            good[..good.len() - 1].to_vec(),
            "size mismatch",
        ),
        (
            "same size, other content",
            good.iter().map(|b| b ^ 1).collect(),
            "sha256 mismatch",
        ),
    ];
    for (what, served, message) in cases {
        let up = InMemory::new();
        put_stream(&up, &[("c1", products_doc("c1", &["p"], &["1"]))]).await;
        up.put_bytes("files/p/1/a", served.into()).await.unwrap();
        let out = InMemory::new();
        let r = mirror(
            &up,
            Recording::new(out.clone()),
            options(None, MetadataMode::Verbatim),
        )
        .run()
        .await
        .unwrap();
        assert!(!r.is_success(), "{what}: must fail");
        let err = r.errors[0].to_string();
        assert!(
            err.contains("c1 p 1 a") && err.contains("files/p/1/a") && err.contains(message),
            "{what}: {err}"
        );
        assert!(
            out.head("files/p/1/a").await.unwrap().is_none(),
            "{what}: the bad item must not appear"
        );
        assert!(
            out.head("streams/v1/c1.json").await.unwrap().is_none(),
            "{what}: its products file is not published"
        );
    }
    // With every checksum verified (--all-checksums), a single wrong one among good ones is
    // named.
    let up = InMemory::new();
    let mut doc = products_doc("c1", &["p"], &["1"]);
    doc["products"]["p"]["versions"]["1"]["items"]["a"]["md5"] = json!("0".repeat(32));
    put_stream(&up, &[("c1", doc)]).await;
    let r = mirror(
        &up,
        Recording::new(InMemory::new()),
        SyncOptions {
            checksums: ChecksumPolicy::All,
            ..options(None, MetadataMode::Verbatim)
        },
    )
    .run()
    .await
    .unwrap();
    match &r.errors[..] {
        [Error::Verify { source, .. }] => assert!(matches!(
            **source,
            simplestreams_core::Error::Checksum {
                kind: ChecksumKind::Md5,
                ..
            }
        )),
        other => panic!("{other:?}"),
    }
    // Items with a path but no checksum, or no size, cannot be verified: refused.
    for field in ["size", "checksums"] {
        let up = InMemory::new();
        let mut doc = products_doc("c1", &["p"], &["1"]);
        let item = doc["products"]["p"]["versions"]["1"]["items"]["a"]
            .as_object_mut()
            .unwrap();
        if field == "size" {
            item.remove("size");
        } else {
            item.remove("md5");
            item.remove("sha256");
        }
        put_stream(&up, &[("c1", doc)]).await;
        let out = InMemory::new();
        let r = mirror(
            &up,
            Recording::new(out.clone()),
            options(None, MetadataMode::Verbatim),
        )
        .run()
        .await
        .unwrap();
        assert!(
            r.errors
                .iter()
                .any(|e| e.to_string().contains("cannot verify")),
            "{field} removed: {:?}",
            r.errors
        );
        assert!(out.head("files/p/1/a").await.unwrap().is_none());
    }
}

#[tokio::test]
async fn a_bad_item_fails_only_its_products_file_and_the_previous_mirror_stays() {
    let up = InMemory::new();
    put_stream(
        &up,
        &[
            ("c1", products_doc("c1", &["p"], &["1"])),
            ("c2", products_doc("c2", &["q"], &["1"])),
        ],
    )
    .await;
    let out = InMemory::new();
    let t = Recording::new(out.clone());
    assert!(
        mirror(&up, t.clone(), options(Some(1), MetadataMode::Verbatim))
            .run()
            .await
            .unwrap()
            .is_success()
    );
    let old_c1 = out.get_bytes("streams/v1/c1.json").await.unwrap();
    let old_index = out.get_bytes("streams/v1/index.json").await.unwrap();

    // Version 2 of both; one item of c1 is corrupt upstream.
    put_stream(
        &up,
        &[
            ("c1", products_doc("c1", &["p"], &["1", "2"])),
            ("c2", products_doc("c2", &["q"], &["1", "2"])),
        ],
    )
    .await;
    up.put_bytes("files/p/2/a", "corrupt".into()).await.unwrap();
    let r = mirror(&up, t.clone(), options(Some(1), MetadataMode::Verbatim))
        .run()
        .await
        .unwrap();
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert!(out.head("files/p/2/a").await.unwrap().is_none());
    // c1: previous products file and items intact; c2 completed.
    assert_eq!(out.get_bytes("streams/v1/c1.json").await.unwrap(), old_c1);
    assert_eq!(
        out.get_bytes("files/p/1/a").await.unwrap(),
        content("p", "1", "a")
    );
    assert_eq!(r.products_published, ["streams/v1/c2.json"]);
    assert!(
        out.head("files/q/1/a").await.unwrap().is_none(),
        "c2 pruned to --max 1"
    );
    assert_eq!(
        out.get_bytes("files/q/2/a").await.unwrap(),
        content("q", "2", "a")
    );
    // The index is not replaced while a products file it names failed.
    assert_eq!(
        out.get_bytes("streams/v1/index.json").await.unwrap(),
        old_index
    );

    // Upstream fixed: the next run completes c1.
    up.put_bytes("files/p/2/a", content("p", "2", "a").into())
        .await
        .unwrap();
    let r = mirror(&up, t.clone(), options(Some(1), MetadataMode::Verbatim))
        .run()
        .await
        .unwrap();
    assert!(r.is_success(), "{:?}", r.errors);
    assert_eq!(
        files(&out),
        ["files/p/2/a", "files/p/2/b", "files/q/2/a", "files/q/2/b"]
    );
}

#[tokio::test]
async fn shared_paths_are_deleted_only_when_no_kept_item_refers_to_them() {
    let up = InMemory::new();
    let mut doc = products_doc("c1", &["p"], &["1"]);
    // Version "2" reuses the files of version "1", as foocloud's "samepaths" does.
    let v1 = doc["products"]["p"]["versions"]["1"].clone();
    doc["products"]["p"]["versions"]["2"] = v1;
    put_stream(&up, &[("c1", doc.clone())]).await;
    for i in ["a", "b"] {
        // put_stream wrote version 2's content under the shared path; put version 1's back.
        up.put_bytes(&format!("files/p/1/{i}"), content("p", "1", i).into())
            .await
            .unwrap();
    }
    let out = InMemory::new();
    let t = Recording::new(out.clone());
    let r = mirror(&up, t.clone(), options(None, MetadataMode::Filtered))
        .run()
        .await
        .unwrap();
    assert!(r.is_success(), "{:?}", r.errors);
    assert_eq!(r.downloaded, 2, "a shared path is downloaded once");
    // Version 1 leaves the source: its files are still used by version 2.
    doc["products"]["p"]["versions"]
        .as_object_mut()
        .unwrap()
        .remove("1");
    up.put_bytes(
        "streams/v1/c1.json",
        serde_json::to_vec(&doc).unwrap().into(),
    )
    .await
    .unwrap();
    let r = mirror(&up, t.clone(), options(None, MetadataMode::Filtered))
        .run()
        .await
        .unwrap();
    assert!(r.is_success(), "{:?}", r.errors);
    assert_eq!(files(&out), ["files/p/1/a", "files/p/1/b"]);
    // Version 2 goes too: now nothing refers to them.
    doc["products"]["p"]["versions"]["3"] =
        products_doc("c1", &["p"], &["3"])["products"]["p"]["versions"]["3"].clone();
    doc["products"]["p"]["versions"]
        .as_object_mut()
        .unwrap()
        .remove("2");
    up.put_bytes(
        "streams/v1/c1.json",
        serde_json::to_vec(&doc).unwrap().into(),
    )
    .await
    .unwrap();
    up.put_bytes("files/p/3/a", content("p", "3", "a").into())
        .await
        .unwrap();
    up.put_bytes("files/p/3/b", content("p", "3", "b").into())
        .await
        .unwrap();
    let r = mirror(&up, t.clone(), options(None, MetadataMode::Filtered))
        .run()
        .await
        .unwrap();
    assert!(r.is_success(), "{:?}", r.errors);
    assert_eq!(files(&out), ["files/p/3/a", "files/p/3/b"]);
}

#[tokio::test]
async fn unsafe_paths_are_refused_before_any_write() {
    for bad in ["../escape", "/etc/passwd", "files/../../x"] {
        let up = InMemory::new();
        let mut doc = products_doc("c1", &["p"], &["1"]);
        doc["products"]["p"]["versions"]["1"]["items"]["a"]["path"] = json!(bad);
        // Bypass put_stream (it would store the bad path): write metadata only.
        up.put_bytes("streams/v1/index.json", serde_json::to_vec(&json!({"format": "index:1.0", "index": {"c1": {"format": "products:1.0", "path": "streams/v1/c1.json"}}})).unwrap().into()).await.unwrap();
        up.put_bytes(
            "streams/v1/c1.json",
            serde_json::to_vec(&doc).unwrap().into(),
        )
        .await
        .unwrap();
        let out = InMemory::new();
        let r = mirror(
            &up,
            Recording::new(out.clone()),
            options(None, MetadataMode::Verbatim),
        )
        .run()
        .await
        .unwrap();
        assert!(!r.is_success());
        let err = r.errors[0].to_string();
        assert!(
            err.contains("unsafe path") && err.contains(&format!("{bad:?}")),
            "{err}"
        );
        assert!(
            out.paths()
                .iter()
                .all(|p| p.starts_with(".sstream-mirror/")),
            "{bad}: wrote {:?}",
            out.paths()
        );
    }
}

#[tokio::test]
async fn a_second_sync_into_the_same_target_is_refused_while_one_runs() {
    let up = InMemory::new();
    put_stream(&up, &[("c1", products_doc("c1", &["p"], &["1"]))]).await;
    let out = InMemory::new();
    let t = Recording::new(out.clone());
    let held = Target::lock(&*t).await.unwrap();
    let err = mirror(&up, t.clone(), options(None, MetadataMode::Verbatim))
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(
        out.paths().is_empty(),
        "the refused sync wrote {:?}",
        out.paths()
    );
    drop(held);
    assert!(mirror(&up, t, options(None, MetadataMode::Verbatim))
        .run()
        .await
        .unwrap()
        .is_success());
}

#[tokio::test]
async fn dry_run_plans_without_writing() {
    let up = InMemory::new();
    put_stream(&up, &[("c1", products_doc("c1", &["p"], &["1", "2", "3"]))]).await;
    let out = InMemory::new();
    let lines = mirror(
        &up,
        Recording::new(out.clone()),
        options(Some(2), MetadataMode::Verbatim),
    )
    .plan()
    .await
    .unwrap();
    let shown: Vec<String> = lines
        .iter()
        .map(|l| format!("{} {} {}", l.op, l.key, l.path))
        .collect();
    assert_eq!(
        shown,
        [
            "+ c1 p 3 a files/p/3/a",
            "+ c1 p 3 b files/p/3/b",
            "+ c1 p 2 a files/p/2/a",
            "+ c1 p 2 b files/p/2/b"
        ]
    );
    assert!(out.paths().is_empty());
}
