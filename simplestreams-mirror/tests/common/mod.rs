//! Helpers for the engine tests: streams built in memory, and a target that records what the
//! engine asks of it.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{json, Value};
use simplestreams_mirror::{
    byte_stream, collect, ByteStream, GetOptions, GetResult, HeldItem, InMemory, ItemKey, NewItem,
    ObjectMeta, PutOptions, Result, State, Store, StoreExt, StoreLock, StoreTarget, Target,
};

pub fn md5_hex(data: &[u8]) -> String {
    use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};
    let mut v = StreamVerifier::new("", Expected::default()).also_compute(ChecksumKind::Md5);
    v.update(data).unwrap();
    v.finish().unwrap().md5.unwrap()
}

pub fn sha256_hex(data: &[u8]) -> String {
    use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};
    let mut v = StreamVerifier::new("", Expected::default()).also_compute(ChecksumKind::Sha256);
    v.update(data).unwrap();
    v.finish().unwrap().sha256.unwrap()
}

/// Content of an item file.
pub fn content(product: &str, version: &str, item: &str) -> Vec<u8> {
    format!("{product}/{version}/{item} content\n").into_bytes()
}

/// A products document: `versions` of each product, items `a` and `b`, paths
/// `files/P/V/I`, with size, md5 and sha256.
pub fn products_doc(content_id: &str, products: &[&str], versions: &[&str]) -> Value {
    let mut ps = serde_json::Map::new();
    for p in products {
        let mut vs = serde_json::Map::new();
        for v in versions {
            let mut items = serde_json::Map::new();
            for i in ["a", "b"] {
                let c = content(p, v, i);
                items.insert(
                    i.into(),
                    json!({"path": format!("files/{p}/{v}/{i}"), "size": c.len(), "md5": md5_hex(&c), "sha256": sha256_hex(&c), "ftype": i}),
                );
            }
            vs.insert((*v).into(), json!({ "items": items }));
        }
        ps.insert((*p).into(), json!({"arch": "amd64", "versions": vs}));
    }
    json!({"format": "products:1.0", "content_id": content_id, "datatype": "image-downloads", "products": ps})
}

/// Puts a stream into `store`: an index naming one products file per content id, and every
/// item file (correct content).
pub async fn put_stream(store: &InMemory, contents: &[(&str, Value)]) {
    let mut index = serde_json::Map::new();
    for (cid, doc) in contents {
        let path = format!("streams/v1/{cid}.json");
        let names: Vec<&String> = doc["products"].as_object().unwrap().keys().collect();
        index.insert(
            (*cid).into(),
            json!({"format": "products:1.0", "path": path, "products": names}),
        );
        store
            .put_bytes(&path, serde_json::to_vec_pretty(doc).unwrap().into())
            .await
            .unwrap();
        for (p, pv) in doc["products"].as_object().unwrap() {
            for (v, vv) in pv["versions"].as_object().unwrap() {
                for (i, iv) in vv["items"].as_object().unwrap() {
                    if let Some(path) = iv["path"].as_str() {
                        store
                            .put_bytes(path, content(p, v, i).into())
                            .await
                            .unwrap();
                    }
                }
            }
        }
    }
    let index = json!({"format": "index:1.0", "index": index});
    store
        .put_bytes(
            "streams/v1/index.json",
            serde_json::to_vec_pretty(&index).unwrap().into(),
        )
        .await
        .unwrap();
}

/// One call the engine made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Insert(String),
    InsertFailed(String),
    Remove(String),
    Products(String),
    Index(String),
    SaveState,
}

/// A [`StoreTarget`] that logs every call, and the store metadata is published into, which logs
/// each publication and checks that every path the published metadata (filtered view) names
/// exists.
#[derive(Debug)]
pub struct Recording {
    pub inner: StoreTarget,
    pub store: InMemory,
    pub ops: Mutex<Vec<Op>>,
}

impl std::fmt::Display for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("recording")
    }
}

impl Recording {
    pub fn new(store: InMemory) -> Arc<Recording> {
        Arc::new(Recording {
            inner: StoreTarget::new(Arc::new(store.clone())),
            store,
            ops: Mutex::new(Vec::new()),
        })
    }

    pub fn take_ops(&self) -> Vec<Op> {
        std::mem::take(&mut *self.ops.lock().unwrap())
    }

    fn log(&self, op: Op) {
        self.ops.lock().unwrap().push(op);
    }
}

#[async_trait]
impl Target for Recording {
    async fn lock(&self) -> Result<StoreLock> {
        self.inner.lock().await
    }
    async fn load_state(&self) -> Result<State> {
        self.inner.load_state().await
    }
    async fn save_state(&self, state: &State) -> Result<()> {
        self.log(Op::SaveState);
        self.inner.save_state(state).await
    }
    async fn has_content(&self, item: &NewItem) -> Result<bool> {
        self.inner.has_content(item).await
    }
    async fn insert_item(&self, item: &NewItem, body: ByteStream) -> Result<()> {
        let r = self.inner.insert_item(item, body).await;
        let path = item.path.clone().unwrap_or_default();
        self.log(if r.is_ok() {
            Op::Insert(path)
        } else {
            Op::InsertFailed(path)
        });
        r
    }
    async fn remove_item(&self, key: &ItemKey, held: &HeldItem) -> Result<()> {
        self.log(Op::Remove(held.path.clone().unwrap_or_default()));
        self.inner.remove_item(key, held).await
    }
}

/// The store side: metadata puts (below `streams/`) are logged as publications.
#[async_trait]
impl Store for Recording {
    async fn get(&self, path: &str, options: GetOptions) -> Result<GetResult> {
        self.store.get(path, options).await
    }
    async fn head(&self, path: &str) -> Result<Option<ObjectMeta>> {
        self.store.head(path).await
    }
    async fn put(&self, path: &str, body: ByteStream, options: PutOptions) -> Result<ObjectMeta> {
        if !path.starts_with("streams/") {
            return self.store.put(path, body, options).await;
        }
        let bytes = collect(body).await?;
        if path
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with("index."))
        {
            self.log(Op::Index(path.into()));
        } else if path.ends_with(".json") || path.ends_with(".sjson") {
            if let Ok(json) = strip(&bytes) {
                self.check_named_paths_exist(&json).await;
            }
            self.log(Op::Products(path.into()));
        }
        self.store.put(path, byte_stream(bytes), options).await
    }
    async fn delete(&self, path: &str) -> Result<()> {
        self.store.delete(path).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.store.list(prefix).await
    }
    async fn lock(&self, name: &str) -> Result<StoreLock> {
        self.store.lock(name).await
    }
}

/// The JSON of a metadata file, signed or not.
fn strip(bytes: &[u8]) -> std::result::Result<Vec<u8>, simplestreams_core::Error> {
    if simplestreams_core::is_clearsigned(bytes) {
        simplestreams_core::strip_clearsigned(bytes, "published")
    } else {
        Ok(bytes.to_vec())
    }
}

impl Recording {
    /// Every item path a products file about to be published names is already in the store.
    async fn check_named_paths_exist(&self, bytes: &[u8]) {
        let doc: Value = serde_json::from_slice(bytes).unwrap();
        for pv in doc["products"].as_object().unwrap().values() {
            for vv in pv["versions"].as_object().unwrap().values() {
                for iv in vv["items"].as_object().unwrap().values() {
                    if let Some(path) = iv["path"].as_str() {
                        let present = self.store.get_bytes(path).await.is_ok();
                        assert!(
                            present,
                            "metadata about to be published names missing {path}"
                        );
                    }
                }
            }
        }
    }
}
