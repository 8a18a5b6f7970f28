//! The output stream: an `image-ids` products file describing the images a cloud holds, and
//! its entry in an index, as Juju reads them (docs/format.md, "Glance property contract"). Built from the images themselves once
//! per run, condensed with the image-ids sticky keys, and published by the engine's
//! [`Publisher`] into any store (a directory, Swift, S3), signed when it has a key.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use simplestreams_core::{
    condense, CondenseTop, Index, IndexEntry, Item, Product, Products, Version, IMAGE_IDS_STICKY,
};
use simplestreams_mirror::Publisher;

use crate::glance::Image;
use crate::properties::{hypervisor_type, virt_type};

/// Where the images are and whose they are: what every item of the stream says about the cloud.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudInfo {
    /// The content id of the stream (`--content-id`, region substituted).
    pub content_id: String,
    /// `--cloud-name`.
    pub cloud_name: String,
    /// The region of the images.
    pub region: String,
    /// The cloud's identity endpoint (`OS_AUTH_URL`), which Juju matches.
    pub endpoint: String,
    /// The project owning the images.
    pub owner_id: String,
    /// Add `virt` (`kvm`, `lxd`) from the ftype (`--hypervisor-mapping`).
    pub hypervisor_mapping: bool,
}

/// Path of the products file of `content_id`, relative to the stream root.
pub fn products_path(content_id: &str) -> String {
    format!("streams/v1/{content_id}.json")
}

/// The current time as simplestreams writes it (RFC 2822, UTC).
pub fn timestamp() -> String {
    chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

/// The item describing one image: the stream fields it was made from (its
/// `simplestreams_metadata`), then what the cloud says: `id`, `name`, `region`, `endpoint`,
/// `owner_id`, and the `md5` and `size` Glance computed.
fn item_of(image: &Image, cloud: &CloudInfo) -> Item {
    let mut fields: BTreeMap<String, Value> = BTreeMap::new();
    if let Some(Ok(Value::Object(meta))) = image
        .property("simplestreams_metadata")
        .map(serde_json::from_str::<Value>)
    {
        fields.extend(meta);
    }
    if cloud.hypervisor_mapping {
        let virt = fields
            .get("ftype")
            .and_then(Value::as_str)
            .and_then(hypervisor_type)
            .and_then(virt_type);
        if let Some(v) = virt {
            fields.insert("virt".into(), json!(v));
        }
    }
    fields.insert("id".into(), json!(image.id));
    fields.insert("name".into(), json!(image.name.clone().unwrap_or_default()));
    fields.insert("region".into(), json!(cloud.region));
    fields.insert("endpoint".into(), json!(cloud.endpoint));
    fields.insert("owner_id".into(), json!(cloud.owner_id));
    if let Some(md5) = &image.checksum {
        fields.insert("md5".into(), json!(md5));
    }
    if let Some(size) = image.size {
        fields.insert("size".into(), json!(size.to_string()));
    }
    Item {
        fields: fields.into_iter().collect(),
    }
}

/// The image-ids products document of `images` (images of ours, active), condensed.
/// `updated` is the time of writing.
pub fn image_ids_products(images: &[Image], cloud: &CloudInfo, updated: &str) -> Products {
    let mut doc = Products::new(&cloud.content_id, "image-ids");
    doc.fields.insert("updated".into(), json!(updated));
    let mut tree: BTreeMap<&str, BTreeMap<&str, BTreeMap<&str, &Image>>> = BTreeMap::new();
    for image in images {
        let (Some(p), Some(v), Some(i)) = (
            image.property("product_name"),
            image.property("version_name"),
            image.property("item_name"),
        ) else {
            continue;
        };
        tree.entry(p)
            .or_default()
            .entry(v)
            .or_default()
            .insert(i, image);
    }
    for (pname, versions) in tree {
        let mut product = Product::new();
        for (vname, items) in versions {
            let mut version = Version::new();
            for (iname, image) in items {
                version
                    .items
                    .insert(iname.to_string(), item_of(image, cloud));
            }
            product.versions.insert(vname.to_string(), version);
        }
        doc.products.insert(pname.to_string(), product);
    }
    condense(&mut doc, IMAGE_IDS_STICKY, CondenseTop::Products);
    doc
}

/// The index entry naming the products file of `doc`.
pub fn index_entry(doc: &Products, cloud: &CloudInfo, updated: &str) -> IndexEntry {
    let mut e = IndexEntry::default();
    let names: Vec<Value> = doc.products.keys().map(|k| json!(k)).collect();
    for (k, v) in [
        ("updated", json!(updated)),
        ("datatype", json!("image-ids")),
        (
            "clouds",
            json!([{"region": cloud.region, "endpoint": cloud.endpoint}]),
        ),
        ("cloudname", json!(cloud.cloud_name)),
        ("path", json!(products_path(&cloud.content_id))),
        ("products", Value::Array(names)),
        ("format", json!("products:1.0")),
    ] {
        e.fields.insert(k.into(), v);
    }
    e
}

/// The index path of an image-ids stream.
pub const INDEX_PATH: &str = "streams/v1/index.json";

/// Publishes the stream of `images` with `publisher`: `streams/v1/<content_id>.json`, then
/// the index with this content id's entry added or replaced (other entries kept). When the
/// images are the same as what is published, nothing is written, not even a new `updated`:
/// a no-op sync stays a no-op for the stream's readers too. Returns whether anything was
/// written.
pub async fn publish_image_ids(
    publisher: &Publisher,
    images: &[Image],
    cloud: &CloudInfo,
) -> simplestreams_mirror::Result<bool> {
    let path = products_path(&cloud.content_id);
    let updated = timestamp();
    let doc = image_ids_products(images, cloud, &updated);
    let index_url = format!("{}/{INDEX_PATH}", publisher.store());
    let mut index = match publisher.read_json(INDEX_PATH).await? {
        Some(bytes) => match Index::from_slice(&bytes, &index_url) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!("{e}; writing a new index");
                Index::new()
            }
        },
        None => Index::new(),
    };
    let published = publisher.read_json(&path).await?;
    let same = published
        .as_deref()
        .and_then(|b| Products::from_slice(b, &path).ok())
        .is_some_and(|old| same_but_updated(&old, &doc))
        && index
            .index
            .get(&cloud.content_id)
            .is_some_and(|e| same_entry(e, &index_entry(&doc, cloud, &updated)));
    if same {
        return Ok(false);
    }
    publisher.products(&path, doc.to_vec_pretty()).await?;
    index.fields.insert("updated".into(), json!(updated));
    index
        .index
        .insert(cloud.content_id.clone(), index_entry(&doc, cloud, &updated));
    publisher
        .document(INDEX_PATH, &index.to_vec_pretty())
        .await?;
    Ok(true)
}

/// Whether two image-ids documents say the same, apart from when they were written (compared
/// as JSON values: a parsed document remembers where its keys stood, a built one does not).
fn same_but_updated(a: &Products, b: &Products) -> bool {
    let strip = |p: &Products| {
        let mut v = serde_json::to_value(p).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.shift_remove("updated");
        }
        v
    };
    strip(a) == strip(b)
}

fn same_entry(a: &IndexEntry, b: &IndexEntry) -> bool {
    let strip = |e: &IndexEntry| {
        let mut e = e.clone();
        e.fields.shift_remove("updated");
        e
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use simplestreams_core::{flatten, ItemId};
    use simplestreams_mirror::LocalStore;

    fn image(id: &str, product: &str, version: &str, item: &str, arch: &str) -> Image {
        let meta = format!(
            "{{\"arch\": \"{arch}\", \"ftype\": \"{item}\", \"md5\": \"m-{id}\", \"os\": \"ubuntu\", \
             \"release\": \"noble\", \"sha256\": \"s-{id}\", \"size\": \"3\", \"version\": \"24.04\"}}"
        );
        serde_json::from_value(json!({
            "id": id, "name": format!("n-{id}"), "status": "active", "owner": "proj",
            "size": 3, "checksum": format!("m-{id}"),
            "content_id": "auto.sync", "source_content_id": "src",
            "product_name": product, "version_name": version, "item_name": item,
            "simplestreams_metadata": meta,
        }))
        .expect("image")
    }

    fn cloud() -> CloudInfo {
        CloudInfo {
            content_id: "auto.sync".into(),
            cloud_name: "testcloud".into(),
            region: "RegionOne".into(),
            endpoint: "http://127.0.0.1:5000/v3".into(),
            owner_id: "proj".into(),
            hypervisor_mapping: true,
        }
    }

    #[test]
    fn products_hold_every_image_with_sticky_keys_on_items() {
        let images = [
            image("a", "p:amd64", "20240101", "disk1.img", "amd64"),
            image("b", "p:amd64", "20240201", "disk1.img", "amd64"),
            image("c", "p:arm64", "20240201", "disk1.img", "arm64"),
        ];
        let doc = image_ids_products(&images, &cloud(), "Sun, 22 Nov 2026 00:00:00 +0000");
        assert_eq!(doc.datatype(), Some("image-ids"));
        assert_eq!(doc.content_id(), "auto.sync");
        assert_eq!(doc.item_count(), 3);
        let item = doc.item("p:amd64", "20240201", "disk1.img").expect("item");
        for k in IMAGE_IDS_STICKY {
            assert!(item.fields.contains_key(*k), "{k} stays on the item");
        }
        assert_eq!(item.fields["id"], "b");
        // Shared non-sticky fields moved up, and flattening gives them back.
        let product = &doc.products["p:amd64"];
        assert_eq!(product.fields.get("arch"), Some(&json!("amd64")));
        assert!(!item.fields.contains_key("arch"));
        let flat = flatten(
            &doc,
            ItemId {
                product: "p:amd64",
                version: "20240201",
                item: "disk1.img",
            },
            true,
        )
        .expect("flat");
        assert_eq!(flat["arch"], "amd64");
        assert_eq!(flat["virt"], "kvm");
        assert_eq!(flat["owner_id"], "proj");
        assert_eq!(flat["region"], "RegionOne");
        assert_eq!(flat["endpoint"], "http://127.0.0.1:5000/v3");
        assert_eq!(flat["name"], "n-b");
    }

    #[test]
    fn images_without_identity_are_left_out() {
        let mut stray = image("x", "p", "1", "disk1.img", "amd64");
        stray.properties.remove("version_name");
        let doc = image_ids_products(&[stray], &cloud(), "now");
        assert_eq!(doc.item_count(), 0);
    }

    #[tokio::test]
    async fn writing_keeps_other_index_entries_and_replaces_ours() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index_path = dir.path().join("streams/v1/index.json");
        std::fs::create_dir_all(index_path.parent().expect("parent")).expect("mkdir");
        std::fs::write(
            &index_path,
            r#"{"format": "index:1.0", "index": {"other": {"format": "products:1.0",
              "path": "streams/v1/other.json", "datatype": "image-ids"},
              "auto.sync": {"format": "products:1.0", "path": "streams/v1/old.json"}}}"#,
        )
        .expect("write");
        let images = [image("a", "p:amd64", "1", "disk1.img", "amd64")];
        let publisher = Publisher::new(std::sync::Arc::new(LocalStore::new(dir.path())));
        assert!(publish_image_ids(&publisher, &images, &cloud())
            .await
            .expect("write"));
        let index_bytes = std::fs::read(&index_path).expect("read");
        assert!(
            !publish_image_ids(&publisher, &images, &cloud())
                .await
                .expect("again"),
            "the same images: nothing written"
        );
        assert_eq!(std::fs::read(&index_path).expect("read"), index_bytes);

        let index =
            Index::from_slice(&std::fs::read(&index_path).expect("read"), "index").expect("index");
        assert!(index.index.contains_key("other"));
        let ours = &index.index["auto.sync"];
        assert_eq!(ours.path(), Some("streams/v1/auto.sync.json"));
        assert_eq!(ours.get_str("cloudname"), Some("testcloud"));
        assert_eq!(ours.get_str("datatype"), Some("image-ids"));
        assert_eq!(
            ours.fields["clouds"],
            json!([{"region": "RegionOne", "endpoint": "http://127.0.0.1:5000/v3"}])
        );
        assert_eq!(ours.fields["products"], json!(["p:amd64"]));
        let products = Products::from_slice(
            &std::fs::read(dir.path().join("streams/v1/auto.sync.json")).expect("read"),
            "products",
        )
        .expect("products");
        assert_eq!(products.item_count(), 1);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("streams/v1"))
            .expect("ls")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "no temporary files left");
    }
}
