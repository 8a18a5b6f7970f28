//! Which metadata files a sync reads: exactly the paths the index names, as the reference does.

mod common;

use std::sync::Arc;

use common::{products_doc, put_stream};
use simplestreams_mirror::{InMemory, Mirror, StoreExt, StoreSource, SyncOptions};

/// The reference `sstream-mirror` reads the path an index entry gives and nothing else: it does
/// not look for a signed `.sjson` sibling of a `.json` entry (unlike `sstream-query`, which
/// prefers one). A mirror must hold what the named file describes, so that both tools mirror
/// the same items from the same stream.
#[tokio::test]
async fn a_json_index_entry_is_read_as_named_not_its_sjson_sibling() {
    let up = InMemory::new();
    put_stream(&up, &[("c1", products_doc("c1", &["p"], &["1"]))]).await;
    // A sibling describing something else: reading it instead would mirror product q.
    let sibling = serde_json::to_vec(&products_doc("c1", &["q"], &["1"])).unwrap();
    up.put_bytes("streams/v1/c1.sjson", sibling.into())
        .await
        .unwrap();

    let out = InMemory::new();
    let report = Mirror::to_store(
        Arc::new(StoreSource::new(Arc::new(up.clone()))),
        Arc::new(out.clone()),
        SyncOptions::default(),
    )
    .run()
    .await
    .unwrap();
    assert!(report.is_success(), "{:?}", report.errors);

    let held: Vec<String> = out
        .paths()
        .into_iter()
        .filter(|p| !p.starts_with(".sstream-mirror/"))
        .collect();
    assert_eq!(
        held,
        [
            "files/p/1/a",
            "files/p/1/b",
            "streams/v1/c1.json",
            "streams/v1/index.json"
        ]
    );
    assert_eq!(
        out.get_bytes("streams/v1/c1.json").await.unwrap(),
        up.get_bytes("streams/v1/c1.json").await.unwrap(),
        "the named file is published byte for byte"
    );
}
