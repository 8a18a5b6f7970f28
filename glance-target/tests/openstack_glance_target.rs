//! The Glance target against the real test bed (`scripts/test` runs these): the property
//! contract, upload checks, crash recovery, `--max`, images not ours, and `latest`.

mod openstack_glance_common;

use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use glance_target::properties::{disk_format, glance_properties, image_name};
use glance_target::{GlanceEvent, Image, NewImage, PatchOp};
use indexmap::IndexMap;
use openstack_glance_common::{
    created, image_bytes, sync, write_stream, write_stream_tampered, Bed, Spec, SOURCE_CID,
};
use simplestreams_core::Expected;
use simplestreams_mirror::testkit::{self, TargetCapabilities};
use simplestreams_mirror::{ItemKey, NewItem, Target};

const BED: &str = "needs the OpenStack test bed (scripts/test runs it)";

fn specs<'a>(arches: &[&'a str], versions: &[&'a str]) -> Vec<Spec<'a>> {
    let mut out = Vec::new();
    for arch in arches {
        for version in versions {
            out.push(Spec {
                arch,
                version,
                ftype: "disk1.img",
            });
        }
    }
    out
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn sync_uploads_images_with_the_reference_properties_then_is_a_no_op() {
    let _ = BED;
    let bed = Bed::new("props").await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_stream(dir.path(), &specs(&["amd64", "arm64"], &["20240101"]), None);
    let mut settings = bed.settings();
    settings.name_prefix = "pfx/".into();
    settings.hypervisor_mapping = true;
    settings.custom_properties = vec![("extra".into(), "a=b".into())];

    let report = sync(dir.path(), bed.target(settings.clone()), None).await;
    assert!(report.is_success(), "{:?}", report.errors);
    assert_eq!(created(&bed.take_events()), 2);

    let images = bed.ours().await;
    assert_eq!(images.len(), 2);
    let arm = images
        .iter()
        .find(|i| i.property("product_name") == Some("org.example:1.0:arm64"))
        .expect("arm64 image");
    assert_eq!(arm.status, "active");
    assert_eq!(arm.owner.as_deref(), Some(bed.project.as_str()));
    assert_eq!(
        arm.name.as_deref(),
        Some("pfx/demo-alpha-20240101-arm64-disk1.img")
    );
    assert_eq!(arm.disk_format.as_deref(), Some("qcow2"));
    assert_eq!(arm.container_format.as_deref(), Some("bare"));
    assert_eq!(arm.visibility.as_deref(), Some("private"));
    let bytes = image_bytes("arm64", "20240101", "disk1.img");
    assert_eq!(arm.size, Some(bytes.len() as u64));
    for (k, v) in [
        ("content_id", bed.content_id.as_str()),
        ("source_content_id", SOURCE_CID),
        ("version_name", "20240101"),
        ("item_name", "disk1.img"),
        ("os_distro", "demo"),
        ("os_version", "1.0"),
        ("architecture", "aarch64"),
        ("hypervisor_type", "qemu"),
        ("extra", "a=b"),
    ] {
        assert_eq!(arm.property(k), Some(v), "{k}");
    }
    let meta: serde_json::Value =
        serde_json::from_str(arm.property("simplestreams_metadata").expect("metadata"))
            .expect("metadata is JSON");
    assert_eq!(meta["arch"], "arm64");
    assert_eq!(meta["pubname"], "demo-alpha-20240101-arm64");
    assert!(meta.get("path").is_none() && meta.get("product_name").is_none());
    let data = bed.glance.download(&arm.id).await.expect("download");
    assert_eq!(&data.bytes().await.expect("bytes")[..], &bytes[..]);

    let again = sync(dir.path(), bed.target(settings), None).await;
    assert!(again.is_success(), "{:?}", again.errors);
    assert_eq!(again.downloaded, 0);
    assert!(bed.take_events().is_empty(), "a second run changes nothing");
    assert_eq!(bed.ours().await.len(), 2);
    bed.clean().await;
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn a_bad_item_fails_alone_and_leaves_no_image() {
    let bed = Bed::new("bad").await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_stream(
        dir.path(),
        &specs(&["amd64"], &["20240101", "20240102"]),
        Some("20240102"),
    );
    let report = sync(dir.path(), bed.target(bed.settings()), None).await;
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    let msg = report.errors[0].to_string();
    assert!(msg.contains("20240102") && msg.contains("sha256"), "{msg}");
    let images = bed.ours().await;
    assert_eq!(
        images.len(),
        1,
        "only the good image, nothing left of the bad one"
    );
    assert_eq!(images[0].property("version_name"), Some("20240101"));
    assert_eq!(images[0].status, "active");
    bed.clean().await;
}

/// The engine leaves the md5 to Glance (it computes it as it stores the bytes): a stream's wrong
/// md5 is caught by comparing Glance's `checksum`, the image deleted, and the item alone fails.
#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn a_wrong_md5_is_caught_by_glance_s_checksum_and_fails_the_item_alone() {
    let bed = Bed::new("md5").await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_stream_tampered(
        dir.path(),
        &specs(&["amd64"], &["20240101", "20240102"]),
        Some(("20240102", "md5")),
    );
    let report = sync(dir.path(), bed.target(bed.settings()), None).await;
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    let msg = report.errors[0].to_string();
    assert!(
        msg.contains("20240102") && msg.contains("checksum (md5)") && msg.contains("deleted"),
        "{msg}"
    );
    let images = bed.ours().await;
    assert_eq!(images.len(), 1, "nothing left of the bad image: {images:?}");
    assert_eq!(images[0].property("version_name"), Some("20240101"));
    assert_eq!(images[0].status, "active");
    bed.clean().await;
}

fn new_item(bed: &Bed, version: &str, bytes: &[u8], expected: Expected) -> NewItem {
    let mut fields = IndexMap::new();
    for (k, v) in [
        ("product_name", "org.example:1.0:amd64"),
        ("version_name", version),
        ("item_name", "disk1.img"),
        ("arch", "amd64"),
        ("ftype", "disk1.img"),
    ] {
        fields.insert(k.to_string(), v.to_string());
    }
    let _ = (bed, bytes);
    NewItem {
        key: ItemKey {
            content_id: SOURCE_CID.into(),
            product: "org.example:1.0:amd64".into(),
            version: version.into(),
            item: "disk1.img".into(),
        },
        path: Some(format!("images/{version}/disk1.img")),
        expected,
        fields,
        decompress: None,
    }
}

fn body(bytes: &[u8]) -> simplestreams_mirror::ByteStream {
    simplestreams_mirror::byte_stream(Bytes::copy_from_slice(bytes))
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn glance_md5_or_sha512_differing_from_the_stream_deletes_the_image() {
    let bed = Bed::new("checks").await;
    let target = bed.target(bed.settings());
    let bytes = b"the bytes Glance receives".to_vec();
    let good = Expected {
        size: Some(bytes.len() as u64),
        md5: Some(format!("{:x}", <md5::Md5 as sha2::Digest>::digest(&bytes))),
        ..Expected::default()
    };
    // The body is not verified here (no engine): only Glance's own figures can catch these.
    let wrong_md5 = Expected {
        md5: Some("0".repeat(32)),
        ..good.clone()
    };
    let wrong_sha512 = Expected {
        sha512: Some("0".repeat(128)),
        ..good.clone()
    };
    for (version, expected, what) in [
        ("1", wrong_md5, "checksum (md5)"),
        ("2", wrong_sha512, "os_hash_value (sha512)"),
    ] {
        let item = new_item(&bed, version, &bytes, expected);
        let err = target
            .insert_item(&item, body(&bytes))
            .await
            .expect_err("mismatch must fail");
        assert!(err.to_string().contains(what), "{err}");
    }
    assert!(
        bed.ours().await.is_empty(),
        "mismatching images are deleted"
    );

    let item = new_item(&bed, "3", &bytes, good.clone());
    target
        .insert_item(&item, body(&bytes))
        .await
        .expect("good upload");
    assert!(target.has_content(&item).await.expect("has_content"));
    assert_eq!(bed.ours().await.len(), 1);

    // A stream without md5 (MAAS gives only sha256): Glance's checksum is compared with our
    // own md5 of the bytes sent.
    let md5 = good.md5.clone();
    let sha256_only = Expected {
        md5: None,
        sha256: Some(format!(
            "{:x}",
            <sha2::Sha256 as sha2::Digest>::digest(&bytes)
        )),
        ..good
    };
    let item = new_item(&bed, "4", &bytes, sha256_only);
    target
        .insert_item(&item, body(&bytes))
        .await
        .expect("upload without md5 in the stream");
    let images = bed.ours().await;
    let image = images
        .iter()
        .find(|i| i.property("version_name") == Some("4"))
        .expect("image of version 4");
    assert_eq!(image.checksum, md5);
    bed.clean().await;
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn an_interrupted_upload_is_cleaned_up_and_not_duplicated() {
    let bed = Bed::new("crash").await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_stream(dir.path(), &specs(&["amd64"], &["20240101"]), None);
    let target = bed.target(bed.settings());

    // A sync killed mid-upload: the image exists with our properties, its data never ends.
    let bytes = image_bytes("amd64", "20240101", "disk1.img");
    let item = new_item(
        &bed,
        "20240101",
        &bytes,
        Expected {
            size: Some(bytes.len() as u64),
            ..Expected::default()
        },
    );
    let first = bytes[..100].to_vec();
    let endless = stream::iter(vec![Ok::<_, simplestreams_mirror::Error>(Bytes::from(
        first,
    ))])
    .chain(stream::pending());
    let t2 = target.clone();
    let upload = tokio::spawn(async move {
        let _ = t2.insert_item(&item, Box::pin(endless)).await;
    });
    let mut seen = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(i) = bed.ours().await.into_iter().find(|i| i.status == "saving") {
            seen = Some(i.id);
            break;
        }
    }
    upload.abort();
    let stale = seen.expect("the interrupted image is saving");
    // Another tool's unfinished image (no properties) is not ours and is left alone.
    let foreign = bed
        .glance
        .create(&NewImage::new("foreign-queued", "qcow2", "bare"))
        .await
        .expect("create");

    let report = sync(dir.path(), target, None).await;
    assert!(report.is_success(), "{:?}", report.errors);
    let events = bed.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, GlanceEvent::CleanedUp { id, .. } if *id == stale)),
        "{events:?}"
    );
    let images = bed.ours().await;
    assert_eq!(images.len(), 1, "one image, no duplicate: {images:?}");
    assert_eq!(images[0].status, "active");
    assert_ne!(images[0].id, stale);
    let f = bed
        .glance
        .get(&foreign.id)
        .await
        .expect("foreign image still there");
    assert_eq!(f.status, "queued");
    bed.glance
        .delete(&foreign.id)
        .await
        .expect("delete foreign");
    bed.clean().await;
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn max_deletes_exactly_the_versions_that_fell_out_and_nothing_not_ours() {
    let bed = Bed::new("max").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let versions = ["20240101", "20240102", "20240103"];
    write_stream(dir.path(), &specs(&["amd64"], &versions), None);
    let report = sync(dir.path(), bed.target(bed.settings()), Some(2)).await;
    assert!(report.is_success(), "{:?}", report.errors);
    let mut kept: Vec<String> = bed
        .ours()
        .await
        .iter()
        .filter_map(|i| i.property("version_name").map(str::to_string))
        .collect();
    kept.sort();
    assert_eq!(kept, ["20240102", "20240103"]);
    let doomed = bed
        .ours()
        .await
        .into_iter()
        .find(|i| i.property("version_name") == Some("20240102"))
        .expect("20240102");
    let name = doomed.name.clone().expect("name");

    // Look-alikes: same name and content id but another project; same name in our project
    // without the identity properties; same properties but another content id.
    let mut twin = NewImage::new(name.clone(), "qcow2", "bare");
    for k in [
        "content_id",
        "source_content_id",
        "product_name",
        "version_name",
        "item_name",
    ] {
        if let Some(v) = doomed.property(k) {
            twin.properties.insert(k.into(), v.into());
        }
    }
    let demo = glance_target::GlanceClient::new(&Bed::demo_session())
        .await
        .expect("demo glance");
    let other_project = demo.create(&twin).await.expect("demo image");
    demo.upload_bytes(&other_project.id, Bytes::from_static(b"x"))
        .await
        .expect("upload");
    let mut no_identity = NewImage::new(name.clone(), "qcow2", "bare");
    no_identity
        .properties
        .insert("content_id".into(), bed.content_id.clone());
    let no_identity = bed.glance.create(&no_identity).await.expect("create");
    bed.glance
        .upload_bytes(&no_identity.id, Bytes::from_static(b"y"))
        .await
        .expect("upload");
    let mut other_cid = twin.clone();
    other_cid
        .properties
        .insert("content_id".into(), format!("{}-other", bed.content_id));
    let other_cid = bed.glance.create(&other_cid).await.expect("create");
    bed.glance
        .upload_bytes(&other_cid.id, Bytes::from_static(b"z"))
        .await
        .expect("upload");
    bed.take_events();

    let report = sync(dir.path(), bed.target(bed.settings()), Some(1)).await;
    assert!(report.is_success(), "{:?}", report.errors);
    assert_eq!(report.removed, 1);
    let events = bed.take_events();
    assert_eq!(
        events,
        vec![GlanceEvent::Removing {
            id: doomed.id.clone(),
            name
        }]
    );
    let left: Vec<_> = bed
        .ours()
        .await
        .into_iter()
        .filter(|i| i.status == "active" && i.property("source_content_id").is_some())
        .collect();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].property("version_name"), Some("20240103"));
    for (client, id) in [
        (&demo, &other_project.id),
        (&bed.glance, &no_identity.id),
        (&bed.glance, &other_cid.id),
    ] {
        let i = client.get(id).await.expect("look-alike untouched");
        assert_eq!(i.status, "active");
        client.delete(id).await.expect("delete look-alike");
    }
    bed.clean().await;
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn set_latest_leaves_one_latest_per_os_version_and_architecture() {
    let bed = Bed::new("latest").await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_stream(
        dir.path(),
        &specs(&["amd64", "arm64"], &["20240101", "20240102"]),
        None,
    );
    let target = bed.target(bed.settings());
    assert!(sync(dir.path(), target.clone(), None).await.is_success());
    // An older image marked latest, as the reference leaves it after uploading old versions last.
    let old = bed
        .ours()
        .await
        .into_iter()
        .find(|i| {
            i.property("version_name") == Some("20240101")
                && i.property("architecture") == Some("x86_64")
        })
        .expect("old amd64");
    bed.glance
        .update(&old.id, &[PatchOp::set("latest", "true")])
        .await
        .expect("patch");
    target.finish(true, None).await.expect("finish");

    let images = bed.ours().await;
    let latest: Vec<(&str, &str)> = images
        .iter()
        .filter(|i| i.property("latest") == Some("true"))
        .map(|i| {
            (
                i.property("architecture").unwrap_or(""),
                i.property("version_name").unwrap_or(""),
            )
        })
        .collect();
    let mut latest = latest;
    latest.sort();
    assert_eq!(latest, [("aarch64", "20240102"), ("x86_64", "20240102")]);
    assert!(
        images
            .iter()
            .filter(|i| i.property("version_name") == Some("20240101"))
            .all(|i| !i.properties.contains_key("latest")),
        "moved off older images"
    );
    bed.clean().await;
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn modify_hook_output_is_uploaded_raw_through_the_import_flow() {
    use std::os::unix::fs::PermissionsExt;
    let bed = Bed::new("hook").await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_stream(dir.path(), &specs(&["amd64"], &["20240101"]), None);
    let hook = dir.path().join("hook.sh");
    std::fs::write(
        &hook,
        "#!/bin/sh\nprintf 'HOOKED %s %s' \"$item_name\" \"$arch\" >> \"$IMAGE_PATH\"\n",
    )
    .expect("write hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut settings = bed.settings();
    settings.import_conversion = true;
    let target = std::sync::Arc::new(glance_target::GlanceTarget::new(
        bed.glance.clone(),
        bed.project.clone(),
        glance_target::GlanceTargetOptions {
            settings,
            visibility: "private".into(),
            modify_hook: Some(vec![hook.to_string_lossy().into_owned()]),
            ..glance_target::GlanceTargetOptions::default()
        },
    ));
    let report = sync(dir.path(), target, None).await;
    assert!(report.is_success(), "{:?}", report.errors);
    let images = bed.ours().await;
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].disk_format.as_deref(), Some("raw"));
    let mut expected = image_bytes("amd64", "20240101", "disk1.img");
    expected.extend_from_slice(b"HOOKED disk1.img amd64");
    let data = bed.glance.download(&images[0].id).await.expect("download");
    assert_eq!(&data.bytes().await.expect("bytes")[..], &expected[..]);
    bed.clean().await;
}

/// The shared target conformance suite, for what a service target keeps (its state is what
/// Glance holds): verified inserts only, a failed one leaves nothing, removal, the lock.
#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn glance_target_passes_the_shared_target_conformance_suite() {
    let bed = Bed::new("conformance").await;
    let target = bed.target(bed.settings());
    testkit::target_conformance(target.as_ref(), TargetCapabilities::SERVICE).await;
    let left = bed.ours().await;
    assert!(left.is_empty(), "the suite leaves no image: {left:?}");
    bed.clean().await;
}

/// An image of ours as a sync stopped between the upload and its check leaves it: created as
/// the target creates images (name, formats, identity properties and `simplestreams_metadata`
/// from the item's fields, marked `simplestreams_unverified`), its bytes uploaded, `active`.
/// The stream said `size` and `md5` (none when `None`).
async fn unverified_image(
    bed: &Bed,
    version: &str,
    bytes: &[u8],
    size: usize,
    md5: Option<&str>,
) -> Image {
    let size = size.to_string();
    let mut fields: IndexMap<String, String> = [
        ("product_name", "org.example:1.0:amd64"),
        ("version_name", version),
        ("item_name", "disk1.img"),
        ("os", "demo"),
        ("version", "1.0"),
        ("arch", "amd64"),
        ("ftype", "disk1.img"),
        ("pubname", "demo-alpha-unverified-amd64"),
        ("size", size.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(md5) = md5 {
        fields.insert("md5".into(), md5.into());
    }
    let settings = bed.settings();
    let mut new = NewImage::new(
        format!("{}-{version}", image_name(&fields, "")),
        disk_format(&fields, &settings),
        "bare",
    )
    .with_visibility("private");
    new.properties = glance_properties(&fields, SOURCE_CID, &settings);
    new.properties
        .insert("simplestreams_unverified".into(), "true".into());
    let image = bed.glance.create(&new).await.expect("create");
    bed.glance
        .upload_bytes(&image.id, Bytes::copy_from_slice(bytes))
        .await
        .expect("upload");
    let image = bed.glance.get(&image.id).await.expect("get");
    assert_eq!(image.status, "active");
    assert_eq!(image.property("simplestreams_unverified"), Some("true"));
    image
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn an_unverified_image_is_never_held_and_the_next_lock_keeps_it_only_if_it_matches_its_stream(
) {
    let bed = Bed::new("unverified").await;
    let target = bed.target(bed.settings());
    let bytes = b"uploaded, then the sync stopped before checking it".to_vec();
    let md5 = format!("{:x}", <md5::Md5 as sha2::Digest>::digest(&bytes));
    let n = bytes.len();
    let good = unverified_image(&bed, "1", &bytes, n, Some(&md5)).await;
    let wrong_md5 = unverified_image(&bed, "2", &bytes, n, Some(&"0".repeat(32))).await;
    let wrong_size = unverified_image(&bed, "3", &bytes, n + 1, Some(&md5)).await;
    let no_md5 = unverified_image(&bed, "4", &bytes, n, None).await;

    let held = target.held_images().await.expect("held images");
    assert!(
        held.is_empty(),
        "an unverified image is never held: {held:?}"
    );
    let state = target.load_state().await.expect("load_state");
    assert!(
        state.content.values().all(|c| c.items.is_empty()),
        "nor in the state: {state:?}"
    );

    // The next sync's lock settles them.
    target.lock().await.expect("lock").release().await;
    let images = bed.ours().await;
    let ids: Vec<&str> = images.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        [good.id.as_str()],
        "only the image matching its stream is kept"
    );
    assert_eq!(images[0].status, "active");
    assert_eq!(
        images[0].property("simplestreams_unverified"),
        None,
        "its marker is removed"
    );
    let held: Vec<String> = target
        .held_images()
        .await
        .expect("held images")
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(held, [good.id.as_str()], "held once checked");
    let mut cleaned: Vec<String> = bed
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            GlanceEvent::CleanedUp { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    cleaned.sort();
    let mut want = vec![wrong_md5.id, wrong_size.id, no_md5.id];
    want.sort();
    assert_eq!(cleaned, want, "the others are deleted, and reported");
    bed.clean().await;
}
