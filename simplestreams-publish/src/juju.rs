//! Juju's image and agent metadata: writing it as `juju metadata generate-image` and
//! `generate-agents` do ([`generate_image`], [`generate_agents`]), and finding what Juju would
//! find in it ([`lookup_images`], [`lookup_agents`]), following Juju's lookup rules.
//!
//! **Images** (a cloud's image ids, for `juju bootstrap --metadata-source DIR` or the model
//! setting `image-metadata-url`), below `DIR/images/`:
//! `streams/v1/index.json`, whose entry `com.ubuntu.cloud:custom` (datatype `image-ids`,
//! `cloudname` `custom`, one `clouds` entry per region) names
//! `streams/v1/com.ubuntu.cloud-released-imagemetadata.json` (whatever the stream). Products
//! `com.ubuntu.cloud[.STREAM]:server:VERSION:ARCH` (no `.STREAM` for `released`) with
//! `version` and `arch`; one version, today's date, `YYYYMMDD`; items keyed by image id
//! with `id`, `region`, `endpoint`, and `virt` and `root_store` when given. What is there is
//! merged: a record with the same product, region, virtualisation type and storage is
//! replaced.
//!
//! **Agents** (`juju-VERSION-OS-ARCH.tgz` tarballs, for `agent-metadata-url`), below
//! `DIR/tools/` (or `DIR/agent/`): tarballs are in `STREAM/`, and written are
//! `streams/v1/index2.json` (an entry `com.ubuntu.juju:STREAM:agents`, datatype
//! `content-download`, per stream that has agents), `streams/v1/index.json` (the `released`
//! entry alone, only when that stream has agents) and
//! `streams/v1/com.ubuntu.juju-STREAM-agents.json`: products `com.ubuntu.juju:OS:ARCH`, one
//! version (today), items `VERSION-OS-ARCH` with `release`, `version`, `arch`, `size`,
//! `path` (`STREAM/juju-….tgz`), `ftype` `tar.gz` and `sha256`. A `linux` tarball is listed
//! for `ubuntu`, `centos` and `genericlinux`, as Juju lists it. Agents already listed are
//! kept (the same agent with another size or sha256 is refused) unless cleaning.
//!
//! Signed with a key: every document also as `.sjson` and `.json.gpg`, the public key beside.
//!
//! **Lookup** (Juju's `simplestreams.GetMetadata`, for one source): signed first — for
//! `streams/v1/index2.sjson`, then `streams/v1/index.sjson` only when `index2` is not there,
//! verified with the keyring given (without one, Juju cannot verify them and the attempt
//! fails) — then, unless signatures are required, the same with `.json`. In the index: the
//! entries of the right datatype (and, for agents, content id), for the cloud (an entry
//! whose `clouds` has the region, compared without case and spaces, and the endpoint,
//! compared without a trailing `/`; an entry without `clouds` is for every cloud), that list
//! one of the products wanted; the first such entry's products file is read. In it, the
//! wanted products' versions newest first (by name), items for the region (compared
//! exactly), the first of each kind kept (images: by virtualisation type, architecture,
//! version, region and storage; agents: by version, OS and architecture). An attempt that
//! finds nothing is followed by the next.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};
use simplestreams_core::openpgp::{self, Keyring, SigningKey};
use simplestreams_core::{
    for_each_flat_item, json_path, sjson_path, ChecksumKind, Expected, Index, Products,
    StreamVerifier,
};
use simplestreams_mirror::hashing::{Batcher, HashingThread};
use simplestreams_mirror::{
    collect, GetOptions, GetResult, Publisher, Source, Store, StoreExt, StoreSource,
};

use crate::error::{Error, Result};

/// The content id of the image metadata Juju's `generate-image` writes.
pub const IMAGE_CONTENT_ID: &str = "com.ubuntu.cloud:custom";

/// Where the image products file is, below `DIR/images/`.
pub const IMAGE_PRODUCTS_PATH: &str = "streams/v1/com.ubuntu.cloud-released-imagemetadata.json";

/// The image index, below `DIR/images/` (Juju's image indexes are version 1: `index`, not
/// `index2`).
pub const IMAGE_INDEX_PATH: &str = "streams/v1/index.json";

/// The agent index listing every stream, below `DIR/tools/`.
pub const AGENT_INDEX2_PATH: &str = "streams/v1/index2.json";

/// The legacy agent index (the `released` stream only), below `DIR/tools/`.
pub const AGENT_INDEX_PATH: &str = "streams/v1/index.json";

/// The stream used when none is given.
pub const RELEASED: &str = "released";

/// OS names Juju makes agent products of (`ostype.IsValidOSTypeName`).
pub const AGENT_OS_NAMES: &[&str] = &[
    "ubuntu",
    "windows",
    "osx",
    "centos",
    "genericlinux",
    "opensuse",
    "kubernetes",
];

/// The content id of a stream's agents: `com.ubuntu.juju:STREAM:agents`.
pub fn agent_content_id(stream: &str) -> String {
    format!("com.ubuntu.juju:{stream}:agents")
}

/// Where a stream's agent products file is, below `DIR/tools/`.
pub fn agent_products_path(stream: &str) -> String {
    format!("streams/v1/com.ubuntu.juju-{stream}-agents.json")
}

/// The product id of an image: `com.ubuntu.cloud[.STREAM]:server:VERSION:ARCH`.
pub fn image_product_id(stream: &str, version: &str, arch: &str) -> String {
    let id_stream = if stream.is_empty() || stream == RELEASED {
        String::new()
    } else {
        format!(".{stream}")
    };
    format!("com.ubuntu.cloud{id_stream}:server:{version}:{arch}")
}

/// The version Juju takes from a base (`ubuntu@24.04` → `24.04`): its channel's track.
pub fn base_version(base: &str) -> Result<String> {
    let (os, channel) = base
        .split_once('@')
        .ok_or_else(|| Error::Invalid(format!("base {base:?}: expected OS@VERSION")))?;
    let track = channel.split('/').next().unwrap_or_default();
    if os.is_empty() || track.is_empty() {
        return Err(Error::Invalid(format!(
            "base {base:?}: expected OS@VERSION (ubuntu@24.04)"
        )));
    }
    Ok(track.to_string())
}

/// One image record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRecord {
    /// The image id in the cloud.
    pub id: String,
    /// The region.
    pub region: String,
    /// The cloud endpoint (for OpenStack, the Keystone URL of the Juju cloud definition).
    pub endpoint: String,
    /// The OS version (`24.04`).
    pub version: String,
    /// The architecture.
    pub arch: String,
    /// The stream (`released`, `daily`, …).
    pub stream: String,
    /// `virt` (`kvm`, `hvm`, `pv`, …), when given.
    pub virt: Option<String>,
    /// `root_store` (`ebs`, `instance`, …), when given.
    pub root_store: Option<String>,
}

impl ImageRecord {
    /// Its product id.
    pub fn product_id(&self) -> String {
        image_product_id(&self.stream, &self.version, &self.arch)
    }

    /// The key Juju merges records by: product, region, virtualisation type, storage.
    fn merge_key(&self) -> (String, String, Option<String>, Option<String>) {
        (
            self.product_id(),
            self.region.clone(),
            self.virt.clone(),
            self.root_store.clone(),
        )
    }
}

/// What a generator wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateReport {
    /// Documents published (their `.json` paths; with `.sjson` and `.json.gpg` when signed).
    pub published: Vec<String>,
    /// Records (images, or agent items) listed now.
    pub records: usize,
    /// Files skipped, and why.
    pub skipped: Vec<String>,
}

/// Reads a store object, `None` when missing.
async fn read_opt(store: &Arc<dyn Store>, path: &str) -> Result<Option<Bytes>> {
    match store.get_bytes(path).await {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The JSON of a document published as `X.json` (or only as `X.sjson`, read unchecked:
/// this is our own output being merged, checked when it was written).
async fn read_document(store: &Arc<dyn Store>, path: &str) -> Result<Option<Bytes>> {
    if let Some(b) = read_opt(store, &json_path(path)).await? {
        return Ok(Some(b));
    }
    match read_opt(store, &sjson_path(path)).await? {
        Some(signed) => Ok(Some(Bytes::from(
            openpgp::strip_clearsigned(&signed, &sjson_path(path))
                .map_err(|source| Error::Corrupt { source })?,
        ))),
        None => Ok(None),
    }
}

/// Refuses to rewrite a signed document without a key: Juju reads `.sjson` first, so an old
/// signed copy would hide the new one.
async fn check_signing(store: &Arc<dyn Store>, path: &str, key: bool) -> Result<()> {
    if !key && read_opt(store, &sjson_path(path)).await?.is_some() {
        return Err(Error::SignedRepo {
            file: sjson_path(path),
        });
    }
    Ok(())
}

/// JSON as Juju writes it: four spaces of indent, a final newline.
fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value
        .serialize(&mut ser)
        .expect("JSON values always serialise");
    out.push(b'\n');
    out
}

/// The first products file of `datatype` an index names, and its parsed document.
async fn products_of(
    store: &Arc<dyn Store>,
    index_path: &str,
    pick: impl Fn(&str, &simplestreams_core::IndexEntry) -> bool,
) -> Result<Vec<(String, Products)>> {
    let Some(bytes) = read_document(store, index_path).await? else {
        return Ok(Vec::new());
    };
    let index =
        Index::from_slice(&bytes, index_path).map_err(|source| Error::Corrupt { source })?;
    let mut out = Vec::new();
    for (cid, entry) in &index.index {
        if !pick(cid, entry) {
            continue;
        }
        let Some(path) = entry.path() else { continue };
        let path = json_path(path);
        let Some(bytes) = read_document(store, &path).await? else {
            continue;
        };
        let mut doc =
            Products::from_slice(&bytes, &path).map_err(|source| Error::Corrupt { source })?;
        doc.expand_aliases(&path)
            .map_err(|source| Error::Corrupt { source })?;
        out.push((cid.clone(), doc));
    }
    Ok(out)
}

/// The stream of an image product id.
fn stream_of(product: &str) -> String {
    product
        .strip_prefix("com.ubuntu.cloud")
        .and_then(|rest| rest.split(':').next())
        .and_then(|s| s.strip_prefix('.'))
        .unwrap_or(RELEASED)
        .to_string()
}

/// Image records of a products document (flattened).
fn image_records(doc: &Products) -> Vec<ImageRecord> {
    let mut out = Vec::new();
    for_each_flat_item(doc, |id, _, flat| {
        let get = |k: &str| flat.get(k).map(|v| v.to_string()).filter(|v| !v.is_empty());
        let Some(image_id) = get("id") else { return };
        out.push(ImageRecord {
            id: image_id,
            region: get("region").unwrap_or_default(),
            endpoint: get("endpoint").unwrap_or_default(),
            version: get("version").unwrap_or_default(),
            arch: get("arch").unwrap_or_default(),
            stream: stream_of(id.product),
            virt: get("virt"),
            root_store: get("root_store"),
        });
    });
    out
}

/// Today, as Juju names the one version it writes.
fn today() -> String {
    chrono::Utc::now().format("%Y%m%d").to_string()
}

/// Writes (merges) one image record into the image metadata in `store` (the `DIR/images/`
/// directory): see the module. Nothing is written when the record is already there.
pub async fn generate_image(
    store: Arc<dyn Store>,
    record: ImageRecord,
    key: Option<Arc<SigningKey>>,
) -> Result<GenerateReport> {
    for (what, value) in [
        ("image id", &record.id),
        ("region", &record.region),
        ("endpoint", &record.endpoint),
        ("version", &record.version),
        ("arch", &record.arch),
    ] {
        if value.trim().is_empty() {
            return Err(Error::Invalid(format!("an image record needs its {what}")));
        }
    }
    check_signing(&store, IMAGE_INDEX_PATH, key.is_some()).await?;
    check_signing(&store, IMAGE_PRODUCTS_PATH, key.is_some()).await?;
    let existing: Vec<ImageRecord> = products_of(&store, IMAGE_INDEX_PATH, |_, e| {
        e.get_str("datatype") == Some("image-ids")
    })
    .await?
    .iter()
    .flat_map(|(_, doc)| image_records(doc))
    .collect();
    // Juju's merge: the new record first, then those it does not replace.
    let mut records = vec![record.clone()];
    records.extend(
        existing
            .iter()
            .filter(|r| r.merge_key() != record.merge_key())
            .cloned(),
    );
    let mut report = GenerateReport {
        records: records.len(),
        ..GenerateReport::default()
    };
    let mut old_sorted = existing.clone();
    old_sorted.sort();
    let mut new_sorted = records.clone();
    new_sorted.sort();
    if old_sorted == new_sorted
        && read_document(&store, IMAGE_PRODUCTS_PATH).await?.is_some()
        && (key.is_none()
            || read_opt(&store, &sjson_path(IMAGE_INDEX_PATH))
                .await?
                .is_some())
    {
        return Ok(report);
    }

    let updated = crate::time::rfc2822_now();
    let version = today();
    // Products and items sorted, as Go writes maps.
    let mut products: BTreeMap<String, (String, String, BTreeMap<String, Value>)> = BTreeMap::new();
    for r in &records {
        let entry = products
            .entry(r.product_id())
            .or_insert_with(|| (r.version.clone(), r.arch.clone(), BTreeMap::new()));
        let mut item = serde_json::Map::new();
        item.insert("id".into(), json!(r.id));
        item.insert("region".into(), json!(r.region));
        item.insert("endpoint".into(), json!(r.endpoint));
        if let Some(v) = &r.virt {
            item.insert("virt".into(), json!(v));
        }
        if let Some(s) = &r.root_store {
            item.insert("root_store".into(), json!(s));
        }
        // Juju keys items by image id; the same id in two regions keeps both.
        let mut name = r.id.clone();
        if entry.2.contains_key(&name) {
            name = format!("{}@{}", r.id, r.region);
        }
        entry.2.insert(name, Value::Object(item));
    }
    let mut products_json = serde_json::Map::new();
    for (pid, (v, arch, items)) in &products {
        products_json.insert(
            pid.clone(),
            json!({
                "version": v,
                "arch": arch,
                "versions": { version.clone(): { "items": items } },
            }),
        );
    }
    let doc = json!({
        "products": products_json,
        "updated": updated,
        "format": "products:1.0",
        "content_id": IMAGE_CONTENT_ID,
    });
    let mut clouds: Vec<Value> = Vec::new();
    let mut regions: Vec<&str> = Vec::new();
    for r in &records {
        if !regions.contains(&r.region.as_str()) {
            regions.push(&r.region);
            clouds.push(json!({"region": r.region, "endpoint": r.endpoint}));
        }
    }
    let index = json!({
        "index": {
            IMAGE_CONTENT_ID: {
                "updated": updated,
                "format": "products:1.0",
                "datatype": "image-ids",
                "cloudname": "custom",
                "clouds": clouds,
                "path": IMAGE_PRODUCTS_PATH,
                "products": products.keys().collect::<Vec<_>>(),
            }
        },
        "updated": updated,
        "format": "index:1.0",
    });
    let publisher = Publisher::new(store.clone()).signing_with(key);
    if publisher
        .products(IMAGE_PRODUCTS_PATH, to_json(&doc))
        .await?
    {
        report.published.push(IMAGE_PRODUCTS_PATH.into());
    }
    if publisher
        .document(IMAGE_INDEX_PATH, &to_json(&index))
        .await?
    {
        report.published.push(IMAGE_INDEX_PATH.into());
    }
    Ok(report)
}

/// One agent binary listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentBinary {
    /// Juju's version (`3.5.0`).
    pub version: String,
    /// The OS it is listed for (`ubuntu`).
    pub release: String,
    /// The architecture.
    pub arch: String,
    /// Its path, relative to the tools directory (`released/juju-3.5.0-ubuntu-amd64.tgz`).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: String,
}

impl AgentBinary {
    /// Juju's name for it: `VERSION-OS-ARCH`.
    pub fn binary(&self) -> String {
        format!("{}-{}-{}", self.version, self.release, self.arch)
    }
}

/// `VERSION`, `OS` and `ARCH` of a `juju-VERSION-OS-ARCH.tgz` file name.
pub fn parse_agent_file_name(name: &str) -> Option<(String, String, String)> {
    let stem = name.strip_prefix("juju-")?.strip_suffix(".tgz")?;
    let (rest, arch) = stem.rsplit_once('-')?;
    let (version, os) = rest.rsplit_once('-')?;
    let numeric = version.split(['.', '-']).next()?;
    if version.is_empty()
        || os.is_empty()
        || arch.is_empty()
        || numeric.is_empty()
        || !numeric.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((version.into(), os.into(), arch.into()))
}

/// The OS names a tarball of `os` is listed for (Juju's `toolsReleaseAltMapping`), those
/// Juju makes products of.
fn listed_os_names(os: &str) -> Vec<String> {
    let alternatives: &[&str] = match os {
        "linux" => &["ubuntu", "centos", "genericlinux"],
        "darwin" => &["osx"],
        _ => &[],
    };
    alternatives
        .iter()
        .copied()
        .chain(std::iter::once(os))
        .filter(|o| AGENT_OS_NAMES.contains(o))
        .map(str::to_string)
        .collect()
}

/// Juju's version order: numbers first (`3.10` after `3.9`), a release after its
/// pre-releases (`3.5-beta1` before `3.5.0`).
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(v: &str) -> (Vec<u64>, Option<String>) {
        let (nums, tag) = match v.split_once('-') {
            Some((n, t)) => (n, Some(t.to_string())),
            None => (v, None),
        };
        (
            nums.split('.')
                .map(|p| p.parse::<u64>().unwrap_or(0))
                .collect(),
            tag,
        )
    }
    let (na, ta) = parts(a);
    let (nb, tb) = parts(b);
    let len = na.len().max(nb.len()).max(2);
    for i in 0..len {
        let (x, y) = (
            na.get(i).copied().unwrap_or(0),
            nb.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x.cmp(&y);
        }
    }
    match (ta, tb) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (Some(x), Some(y)) => x.cmp(&y),
    }
}

/// Agent items of a products document (flattened).
fn agent_binaries(doc: &Products) -> Vec<AgentBinary> {
    let mut out = Vec::new();
    for_each_flat_item(doc, |_, _, flat| {
        let get = |k: &str| flat.get(k).map(|v| v.to_string()).unwrap_or_default();
        out.push(AgentBinary {
            version: get("version"),
            release: get("release"),
            arch: get("arch"),
            path: get("path"),
            size: get("size").parse().unwrap_or(0),
            sha256: get("sha256"),
        });
    });
    out
}

/// Size and SHA-256 of a store object.
async fn hash_object(store: &Arc<dyn Store>, path: &str) -> Result<(u64, String)> {
    let body = match store.get(path, GetOptions::default()).await? {
        GetResult::Found { body, .. } => body,
        GetResult::NotModified => {
            return Err(Error::Invalid(format!("{path}: not modified")));
        }
    };
    let thread = HashingThread::start(
        StreamVerifier::new(path, Expected::default()).also_compute(ChecksumKind::Sha256),
    );
    let mut batcher = Batcher::default();
    let mut body = body;
    while let Some(chunk) = body.next().await {
        if let Some(batch) = batcher.push(chunk?) {
            thread.send(batch).await;
        }
    }
    thread.send(batcher.take()).await;
    let digests = thread.finish().await?.map_err(|source| Error::Content {
        file: path.to_string(),
        source,
    })?;
    Ok((digests.size, digests.sha256.unwrap_or_default()))
}

/// Lists the agent tarballs of `stream` in `store` (the `DIR/tools/` directory) and writes the
/// agent metadata (see the module), merged with what is there unless `clean`. Nothing is
/// written when it lists the same agents already.
pub async fn generate_agents(
    store: Arc<dyn Store>,
    stream: &str,
    clean: bool,
    key: Option<Arc<SigningKey>>,
) -> Result<GenerateReport> {
    if stream.is_empty() || stream.contains(['/', ':']) {
        return Err(Error::Invalid(format!(
            "stream {stream:?}: not a stream name"
        )));
    }
    let products_path = agent_products_path(stream);
    for path in [AGENT_INDEX2_PATH, AGENT_INDEX_PATH, products_path.as_str()] {
        check_signing(&store, path, key.is_some()).await?;
    }
    let mut report = GenerateReport::default();
    let mut found = Vec::new();
    let mut objects = store.list(&format!("{stream}/")).await?;
    objects.sort_by(|a, b| a.path.cmp(&b.path));
    for object in objects {
        let name = object.path.rsplit('/').next().unwrap_or_default();
        if object.path.matches('/').count() != 1 {
            continue;
        }
        let Some((version, os, arch)) = parse_agent_file_name(name) else {
            if name.ends_with(".tgz") {
                report
                    .skipped
                    .push(format!("{}: not juju-VERSION-OS-ARCH.tgz", object.path));
            }
            continue;
        };
        let releases = listed_os_names(&os);
        if releases.is_empty() {
            report.skipped.push(format!(
                "{}: Juju lists no agents for OS {os:?}",
                object.path
            ));
            continue;
        }
        let (size, sha256) = hash_object(&store, &object.path).await?;
        for release in releases {
            found.push(AgentBinary {
                version: version.clone(),
                release,
                arch: arch.clone(),
                path: object.path.clone(),
                size,
                sha256: sha256.clone(),
            });
        }
    }

    // Merge (Juju's MergeMetadata): the same binary with another size or sha256 is refused.
    let existing: Vec<AgentBinary> = if clean {
        Vec::new()
    } else {
        match read_document(&store, &products_path).await? {
            Some(bytes) => {
                let mut doc = Products::from_slice(&bytes, &products_path)
                    .map_err(|source| Error::Corrupt { source })?;
                doc.expand_aliases(&products_path)
                    .map_err(|source| Error::Corrupt { source })?;
                agent_binaries(&doc)
            }
            None => Vec::new(),
        }
    };
    let mut merged: BTreeMap<String, AgentBinary> = BTreeMap::new();
    for a in existing.iter().cloned() {
        merged.insert(a.binary(), a);
    }
    for a in found {
        if let Some(old) = merged.get(&a.binary()) {
            if old.size != 0 && (old.size != a.size || old.sha256 != a.sha256) {
                return Err(Error::Conflict {
                    item: format!("{} {}", agent_content_id(stream), a.binary()),
                    first: format!(
                        "{} (listed: size {}, sha256 {})",
                        old.path, old.size, old.sha256
                    ),
                    second: format!("{} (size {}, sha256 {})", a.path, a.size, a.sha256),
                });
            }
        }
        merged.insert(a.binary(), a);
    }
    let mut agents: Vec<AgentBinary> = merged.into_values().collect();
    agents.sort_by(|a, b| {
        compare_versions(&a.version, &b.version)
            .then_with(|| a.release.cmp(&b.release))
            .then_with(|| a.arch.cmp(&b.arch))
    });
    report.records = agents.len();

    let updated = crate::time::rfc2822_now();
    let version = today();
    let mut products: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    let mut product_fields: HashMap<String, (String, String)> = HashMap::new();
    for a in &agents {
        let pid = format!("com.ubuntu.juju:{}:{}", a.release, a.arch);
        product_fields
            .entry(pid.clone())
            .or_insert_with(|| (a.version.clone(), a.arch.clone()));
        products.entry(pid).or_default().insert(
            a.binary(),
            json!({
                "release": a.release,
                "version": a.version,
                "arch": a.arch,
                "size": a.size,
                "path": a.path,
                "ftype": "tar.gz",
                "sha256": a.sha256,
            }),
        );
    }
    let publisher = Publisher::new(store.clone()).signing_with(key);
    let content_id = agent_content_id(stream);
    if !agents.is_empty() {
        let mut products_json = serde_json::Map::new();
        for (pid, items) in &products {
            let (v, arch) = &product_fields[pid];
            let items: BTreeMap<&String, &Value> = items.iter().collect();
            products_json.insert(
                pid.clone(),
                json!({"version": v, "arch": arch, "versions": {version.clone(): {"items": items}}}),
            );
        }
        let doc = json!({
            "products": products_json,
            "updated": updated,
            "format": "products:1.0",
            "content_id": content_id,
        });
        // Unchanged (Juju's metadataUnchanged): the same document but for `updated`.
        let same = match read_document(&store, &products_path).await? {
            Some(old) => {
                let strip = |b: &[u8]| -> Option<Value> {
                    let mut v: Value = serde_json::from_slice(b).ok()?;
                    v.as_object_mut()?.remove("updated");
                    // The version (today) changes too: compare the items.
                    let products = v.get("products")?.clone();
                    let items: Vec<Value> = products
                        .as_object()?
                        .values()
                        .flat_map(|p| {
                            p.get("versions")
                                .and_then(Value::as_object)
                                .into_iter()
                                .flat_map(|vs| vs.values())
                                .filter_map(|v| v.get("items").cloned())
                        })
                        .collect();
                    Some(json!(items))
                };
                strip(&old).is_some() && strip(&old) == strip(&to_json(&doc))
            }
            None => false,
        };
        if !same && publisher.products(&products_path, to_json(&doc)).await? {
            report.published.push(products_path.clone());
        }
    }

    // The indexes: this stream's entry, the other streams' as they are.
    let mut entries: Vec<(String, Value)> = Vec::new();
    if let Some(bytes) = read_document(&store, AGENT_INDEX2_PATH).await? {
        let index = Index::from_slice(&bytes, AGENT_INDEX2_PATH)
            .map_err(|source| Error::Corrupt { source })?;
        for (cid, entry) in index.index {
            if cid != content_id {
                entries.push((cid, Value::Object(entry.fields.into_iter().collect())));
            }
        }
    }
    if !agents.is_empty() {
        let mut entry_updated = updated.clone();
        if report.published.is_empty() {
            // Unchanged products: keep the entry's date.
            if let Some(bytes) = read_document(&store, AGENT_INDEX2_PATH).await? {
                if let Ok(index) = Index::from_slice(&bytes, AGENT_INDEX2_PATH) {
                    if let Some(u) = index
                        .index
                        .get(&content_id)
                        .and_then(|e| e.get_str("updated"))
                    {
                        entry_updated = u.to_string();
                    }
                }
            }
        }
        entries.push((
            content_id.clone(),
            json!({
                "updated": entry_updated,
                "format": "products:1.0",
                "datatype": "content-download",
                "path": products_path,
                "products": products.keys().collect::<Vec<_>>(),
            }),
        ));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let write_index = |entries: &[(String, Value)]| -> Vec<u8> {
        let index: serde_json::Map<String, Value> = entries.iter().cloned().collect();
        to_json(&json!({"index": index, "updated": updated, "format": "index:1.0"}))
    };
    let index_changed = |old: Option<Bytes>, new: &[(String, Value)]| -> bool {
        let Some(old) = old else { return true };
        let Ok(old) = Index::from_slice(&old, "index") else {
            return true;
        };
        let old: Vec<(String, Value)> = old
            .index
            .into_iter()
            .map(|(k, e)| (k, Value::Object(e.fields.into_iter().collect())))
            .collect();
        old != new
    };
    if index_changed(read_document(&store, AGENT_INDEX2_PATH).await?, &entries)
        && publisher
            .document(AGENT_INDEX2_PATH, &write_index(&entries))
            .await?
    {
        report.published.push(AGENT_INDEX2_PATH.into());
    }
    let released = agent_content_id(RELEASED);
    let legacy: Vec<(String, Value)> = entries
        .iter()
        .filter(|(cid, _)| *cid == released)
        .cloned()
        .collect();
    if !legacy.is_empty()
        && index_changed(read_document(&store, AGENT_INDEX_PATH).await?, &legacy)
        && publisher
            .document(AGENT_INDEX_PATH, &write_index(&legacy))
            .await?
    {
        report.published.push(AGENT_INDEX_PATH.into());
    }
    Ok(report)
}

/// Where a lookup found its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Whether signed metadata (`.sjson`, verified) was used.
    pub signed: bool,
    /// The index read.
    pub index_url: String,
    /// The products file read.
    pub products_url: String,
}

/// What a lookup found, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup<T> {
    /// What was found, in Juju's order (newest versions first).
    pub found: Vec<T>,
    /// Where, when something was found.
    pub resolved: Option<Resolved>,
    /// Why each attempt found nothing, in order.
    pub attempts: Vec<String>,
}

/// What to look for in an index.
struct IndexQuery<'a> {
    /// Content ids the entry must have (agents), or any.
    index_ids: Option<&'a [String]>,
    datatype: &'a str,
    cloud: Option<(&'a str, &'a str)>,
    product_ids: &'a [String],
}

/// Juju's `canonicalRegionName`: no spaces, lower case.
fn canonical_region(region: &str) -> String {
    region.replace(' ', "").to_lowercase()
}

/// An endpoint with one trailing `/`.
fn canonical_endpoint(endpoint: &str) -> String {
    if endpoint.ends_with('/') {
        endpoint.to_string()
    } else {
        format!("{endpoint}/")
    }
}

/// Whether an index entry is for the cloud (Juju's `hasCloud`).
fn has_cloud(entry: &simplestreams_core::IndexEntry, region: &str, endpoint: &str) -> bool {
    let clouds = match entry.fields.get("clouds") {
        Some(Value::Array(c)) => c,
        _ => return true,
    };
    clouds.is_empty()
        || clouds.iter().any(|c| {
            let r = c.get("region").and_then(Value::as_str).unwrap_or_default();
            let e = c
                .get("endpoint")
                .and_then(Value::as_str)
                .unwrap_or_default();
            canonical_region(r) == canonical_region(region)
                && canonical_endpoint(e) == canonical_endpoint(endpoint)
        })
}

async fn fetch(source: &dyn Source, path: &str) -> Result<Option<Bytes>> {
    match source.get(path, GetOptions::default()).await {
        Ok(GetResult::Found { body, .. }) => Ok(Some(collect(body).await?)),
        Ok(GetResult::NotModified) => Ok(None),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One attempt (signed or not): the products document Juju would read, or why none.
async fn attempt(
    source: &dyn Source,
    signed: bool,
    keyring: Option<&Keyring>,
    query: &IndexQuery<'_>,
) -> Result<std::result::Result<(Products, Resolved), String>> {
    let ext = if signed { "sjson" } else { "json" };
    let mut index_path = format!("streams/v1/index2.{ext}");
    let mut raw = fetch(source, &index_path).await?;
    if raw.is_none() {
        index_path = format!("streams/v1/index.{ext}");
        raw = fetch(source, &index_path).await?;
    }
    let index_url = source.url(&index_path);
    let Some(raw) = raw else {
        return Ok(Err(format!(
            "no streams/v1/index2.{ext} nor streams/v1/index.{ext}"
        )));
    };
    let open = |raw: &[u8], path: &str| -> std::result::Result<Vec<u8>, String> {
        if !signed {
            return Ok(raw.to_vec());
        }
        let Some(keyring) = keyring else {
            return Err(format!(
                "{}: signed, and no public key to verify it with",
                source.url(path)
            ));
        };
        openpgp::verify_clearsigned(raw, keyring, path)
            .map(|v| v.payload)
            .map_err(|e| format!("{}: {e}", source.url(path)))
    };
    let json = match open(&raw, &index_path) {
        Ok(j) => j,
        Err(e) => return Ok(Err(e)),
    };
    let index = match Index::from_slice(&json, &index_url) {
        Ok(i) => i,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let candidate = index.index.iter().find(|(cid, entry)| {
        query.index_ids.is_none_or(|ids| ids.contains(cid))
            && entry.get_str("datatype") == Some(query.datatype)
            && query
                .cloud
                .is_none_or(|(region, endpoint)| has_cloud(entry, region, endpoint))
            && match entry.fields.get("products") {
                Some(Value::Array(listed)) => listed
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|p| query.product_ids.iter().any(|w| w == p)),
                _ => false,
            }
    });
    let Some((_, entry)) = candidate else {
        let cloud = match query.cloud {
            Some((r, e)) => format!(" for region {r:?} and endpoint {e:?}"),
            None => String::new(),
        };
        return Ok(Err(format!(
            "{index_url}: no {} entry{cloud} listing {}",
            query.datatype,
            query.product_ids.join(", ")
        )));
    };
    let Some(path) = entry.path() else {
        return Ok(Err(format!("{index_url}: the entry has no path")));
    };
    let products_url = source.url(path);
    let Some(raw) = fetch(source, path).await? else {
        return Ok(Err(format!("{products_url}: not found")));
    };
    let json = match open(&raw, path) {
        Ok(j) => j,
        Err(e) => return Ok(Err(e)),
    };
    let mut doc = match Products::from_slice(&json, &products_url) {
        Ok(d) => d,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if let Err(e) = doc.expand_aliases(&products_url) {
        return Ok(Err(e.to_string()));
    }
    Ok(Ok((
        doc,
        Resolved {
            signed,
            index_url,
            products_url,
        },
    )))
}

/// Juju's `GetMetadata` for one source: signed, then unsigned unless `require_signed`; each
/// attempt's items chosen by `select`, an attempt that selects nothing followed by the next.
async fn lookup<T>(
    source: &dyn Source,
    query: &IndexQuery<'_>,
    keyring: Option<&Keyring>,
    require_signed: bool,
    select: impl Fn(&Products) -> Vec<T>,
) -> Result<Lookup<T>> {
    let mut attempts = Vec::new();
    for signed in [true, false] {
        if !signed && require_signed {
            break;
        }
        match attempt(source, signed, keyring, query).await? {
            Err(why) => attempts.push(why),
            Ok((doc, resolved)) => {
                let found = select(&doc);
                if found.is_empty() {
                    attempts.push(format!("{}: no matching items", resolved.products_url));
                    continue;
                }
                return Ok(Lookup {
                    found,
                    resolved: Some(resolved),
                    attempts,
                });
            }
        }
    }
    Ok(Lookup {
        found: Vec::new(),
        resolved: None,
        attempts,
    })
}

/// Calls `f` with the flattened items of the wanted products, versions newest first (by
/// name, as Juju sorts them), items in name order.
fn wanted_items<'a>(
    doc: &'a Products,
    product_ids: &[String],
    mut f: impl FnMut(&str, &simplestreams_core::FlatItem<'a>),
) {
    for pid in product_ids {
        let Some((pid, product)) = doc.products.get_key_value(pid) else {
            continue;
        };
        let mut versions: Vec<&String> = product.versions.keys().collect();
        versions.sort_by(|a, b| b.cmp(a));
        for v in versions {
            let mut items: Vec<&String> = product.versions[v].items.keys().collect();
            items.sort();
            for i in items {
                let id = simplestreams_core::ItemId {
                    product: pid,
                    version: v,
                    item: i,
                };
                if let Some(flat) = simplestreams_core::flatten(doc, id, true) {
                    f(v, &flat);
                }
            }
        }
    }
}

/// An image Juju would find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundImage {
    /// The record.
    pub record: ImageRecord,
    /// The version (date) it was listed in.
    pub version_name: String,
}

/// What to look up images for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageQuery {
    /// The region (compared without case and spaces in the index, exactly in the items).
    pub region: String,
    /// The endpoint (compared without a trailing `/`).
    pub endpoint: String,
    /// The OS version (`24.04`).
    pub version: String,
    /// The architectures.
    pub arches: Vec<String>,
    /// The stream (`released`).
    pub stream: String,
}

/// Finds the images Juju would find for `query` at `source` (the `DIR/images/` root, or an
/// `image-metadata-url`); see the module.
pub async fn lookup_images(
    source: &dyn Source,
    query: &ImageQuery,
    keyring: Option<&Keyring>,
    require_signed: bool,
) -> Result<Lookup<FoundImage>> {
    let product_ids: Vec<String> = query
        .arches
        .iter()
        .map(|a| image_product_id(&query.stream, &query.version, a))
        .collect();
    let index_query = IndexQuery {
        index_ids: None,
        datatype: "image-ids",
        cloud: Some((&query.region, &query.endpoint)),
        product_ids: &product_ids,
    };
    lookup(source, &index_query, keyring, require_signed, |doc| {
        let mut found: Vec<FoundImage> = Vec::new();
        wanted_items(doc, &product_ids, |version_name, flat| {
            let get = |k: &str| flat.get(k).map(|v| v.to_string()).filter(|v| !v.is_empty());
            let record = ImageRecord {
                id: get("id").unwrap_or_default(),
                region: get("region").unwrap_or_default(),
                endpoint: get("endpoint").unwrap_or_default(),
                version: get("version").unwrap_or_default(),
                arch: get("arch").unwrap_or_default(),
                stream: query.stream.clone(),
                virt: get("virt"),
                root_store: get("root_store"),
            };
            if !query.region.is_empty() && query.region != record.region {
                return;
            }
            let key = |r: &ImageRecord| {
                (
                    r.virt.clone(),
                    r.arch.clone(),
                    r.version.clone(),
                    r.region.clone(),
                    r.root_store.clone(),
                )
            };
            if found.iter().any(|f| key(&f.record) == key(&record)) {
                return;
            }
            found.push(FoundImage {
                record,
                version_name: version_name.to_string(),
            });
        });
        found
    })
    .await
}

/// What to look up agents for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentQuery {
    /// The stream (`released`).
    pub stream: String,
    /// The OS names (`ubuntu`).
    pub releases: Vec<String>,
    /// The architectures.
    pub arches: Vec<String>,
    /// Exactly this version, or
    pub version: Option<String>,
    /// this major and minor version (`3.5`), or any.
    pub major_minor: Option<(u64, Option<u64>)>,
}

/// Finds the agents Juju would find for `query` at `source` (the `DIR/tools/` root, or an
/// `agent-metadata-url`), newest first; see the module.
pub async fn lookup_agents(
    source: &dyn Source,
    query: &AgentQuery,
    keyring: Option<&Keyring>,
    require_signed: bool,
) -> Result<Lookup<AgentBinary>> {
    let product_ids: Vec<String> = query
        .releases
        .iter()
        .filter(|r| AGENT_OS_NAMES.contains(&r.as_str()))
        .flat_map(|r| {
            query
                .arches
                .iter()
                .map(move |a| format!("com.ubuntu.juju:{r}:{a}"))
        })
        .collect();
    let ids = [agent_content_id(&query.stream)];
    let index_query = IndexQuery {
        index_ids: Some(&ids),
        datatype: "content-download",
        cloud: None,
        product_ids: &product_ids,
    };
    let mut result = lookup(source, &index_query, keyring, require_signed, |doc| {
        let mut found: Vec<AgentBinary> = Vec::new();
        wanted_items(doc, &product_ids, |_, flat| {
            let get = |k: &str| flat.get(k).map(|v| v.to_string()).unwrap_or_default();
            let a = AgentBinary {
                version: get("version"),
                release: get("release"),
                arch: get("arch"),
                path: get("path"),
                size: get("size").parse().unwrap_or(0),
                sha256: get("sha256"),
            };
            if !query.releases.contains(&a.release) {
                return;
            }
            if let Some(v) = &query.version {
                if compare_versions(v, &a.version) != std::cmp::Ordering::Equal {
                    return;
                }
            } else if let Some((major, minor)) = query.major_minor {
                let mut nums = a.version.split(['.', '-']).map(|p| p.parse::<u64>().ok());
                let (m, n) = (nums.next().flatten(), nums.next().flatten());
                if m != Some(major) || minor.is_some_and(|minor| n != Some(minor)) {
                    return;
                }
            }
            if found.iter().any(|f| f.binary() == a.binary()) {
                return;
            }
            found.push(a);
        });
        found
    })
    .await?;
    result
        .found
        .sort_by(|a, b| compare_versions(&b.version, &a.version));
    Ok(result)
}

/// The metadata directory below `dir` for agents: `dir/tools` when it exists, else
/// `dir/agent` when that exists, else `dir/tools`.
pub fn agents_dir(dir: &std::path::Path) -> std::path::PathBuf {
    let tools = dir.join("tools");
    let agent = dir.join("agent");
    if !tools.is_dir() && agent.is_dir() {
        agent
    } else {
        tools
    }
}

/// A source reading the store `store`.
pub fn store_source(store: Arc<dyn Store>) -> Arc<dyn Source> {
    Arc::new(StoreSource::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;
    use simplestreams_core::Map;

    #[test]
    fn names_as_juju_makes_them() {
        assert_eq!(
            image_product_id("released", "24.04", "amd64"),
            "com.ubuntu.cloud:server:24.04:amd64"
        );
        assert_eq!(
            image_product_id("daily", "24.04", "arm64"),
            "com.ubuntu.cloud.daily:server:24.04:arm64"
        );
        assert_eq!(
            stream_of("com.ubuntu.cloud.daily:server:24.04:arm64"),
            "daily"
        );
        assert_eq!(stream_of("com.ubuntu.cloud:server:24.04:arm64"), "released");
        assert_eq!(base_version("ubuntu@24.04").unwrap(), "24.04");
        assert_eq!(base_version("ubuntu@22.04/stable").unwrap(), "22.04");
        assert!(base_version("noble").is_err());
        assert_eq!(
            parse_agent_file_name("juju-3.5.0-ubuntu-amd64.tgz"),
            Some(("3.5.0".into(), "ubuntu".into(), "amd64".into()))
        );
        assert_eq!(
            parse_agent_file_name("juju-2.9-beta1-linux-arm64.tgz"),
            Some(("2.9-beta1".into(), "linux".into(), "arm64".into()))
        );
        assert_eq!(parse_agent_file_name("juju-ubuntu-amd64.tgz"), None);
        assert_eq!(
            listed_os_names("linux"),
            ["ubuntu", "centos", "genericlinux"]
        );
        assert!(listed_os_names("plan9").is_empty());
    }

    #[test]
    fn versions_sort_as_juju_sorts_them() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("3.10.0", "3.9.9"), Greater);
        assert_eq!(compare_versions("3.5-beta1", "3.5.0"), Less);
        assert_eq!(compare_versions("3.5.0", "3.5"), Equal);
        assert_eq!(compare_versions("2.9.1", "2.9.1.1"), Less);
    }

    #[test]
    fn clouds_match_as_juju_compares_them() {
        let entry: simplestreams_core::IndexEntry = simplestreams_core::IndexEntry {
            fields: serde_json::from_str::<Map>(
                r#"{"clouds": [{"region": "Region One", "endpoint": "https://k:5000/v3/"}]}"#,
            )
            .unwrap(),
        };
        assert!(has_cloud(&entry, "regionone", "https://k:5000/v3"));
        assert!(has_cloud(&entry, "REGION ONE", "https://k:5000/v3/"));
        assert!(!has_cloud(&entry, "regiontwo", "https://k:5000/v3"));
        assert!(!has_cloud(&entry, "regionone", "https://k:5000"));
        let any = simplestreams_core::IndexEntry::default();
        assert!(has_cloud(&any, "x", "y"));
    }
}
