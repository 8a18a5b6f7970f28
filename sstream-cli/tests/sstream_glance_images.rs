//! `sstream glance-images` against the test bed: our project's images with the properties a
//! sync sets, filtered by content id, and nothing of another content id.

use std::process::Command;

use bytes::Bytes;
use glance_target::{GlanceClient, NewImage, Session};

mod common;
use common::unique;

#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn lists_our_images_with_their_sync_properties() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (ours, other) = (unique("ours"), unique("other"));
    let (id_ours, id_other) = rt.block_on(async {
        let session = Session::from_env().expect("OS_* variables");
        let glance = GlanceClient::new(&session).await.expect("glance");
        let mut ids = Vec::new();
        for (cid, name) in [(&ours, "demo-ours"), (&other, "demo-other")] {
            let image = NewImage::new(name, "qcow2", "bare")
                .with_property("content_id", cid.as_str())
                .with_property("product_name", "org.example:1.0:amd64")
                .with_property("version_name", "20261115")
                .with_property("item_name", "disk1.img")
                .with_property("architecture", "x86_64")
                .with_property("os_version", "1.0");
            let created = glance.create(&image).await.expect("create");
            glance
                .upload_bytes(&created.id, Bytes::from_static(b"image bytes"))
                .await
                .expect("upload");
            ids.push(created.id);
        }
        (ids[0].clone(), ids[1].clone())
    });

    let out = Command::new(env!("CARGO_BIN_EXE_sstream"))
        .args(["glance-images", "--long", "--content-id", &ours])
        .output()
        .expect("run sstream");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let cleanup = || {
        rt.block_on(async {
            let session = Session::from_env().expect("OS_* variables");
            let glance = GlanceClient::new(&session).await.expect("glance");
            for id in [&id_ours, &id_other] {
                let _ = glance.delete(id).await;
            }
        })
    };
    cleanup();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&id_ours))
        .unwrap_or_else(|| panic!("{stdout}"));
    for expected in [
        "active",
        "11",
        "org.example:1.0:amd64",
        "20261115",
        "disk1.img",
        "1.0",
        "x86_64",
        "demo-ours",
    ] {
        assert!(line.contains(expected), "{expected} not in {line:?}");
    }
    assert!(
        stdout.contains(&format!("    content_id={ours}")),
        "{stdout}"
    );
    assert!(
        !stdout.contains(&id_other),
        "another content id was listed:\n{stdout}"
    );
}
