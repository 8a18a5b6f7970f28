//! Shared by the Glance target tests: a small stream written to a directory, and a test bed
//! context (sessions from the environment, a content id of the test's own, its images).

#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use glance_target::properties::ImageSettings;
use glance_target::{
    CloudConfig, GlanceClient, GlanceEvent, GlanceTarget, GlanceTargetOptions, Image, Session,
};
use md5::Md5;
use serde_json::json;
use sha2::{Digest, Sha256, Sha512};
use simplestreams_core::PlanLimits;
use simplestreams_core::{Item, Product, Products, Version};
use simplestreams_mirror::{LocalStore, Mirror, Report, StoreSource, SyncOptions};

pub const SOURCE_CID: &str = "org.example.test:download";

/// One item of a test stream.
pub struct Spec<'a> {
    pub arch: &'a str,
    pub version: &'a str,
    pub ftype: &'a str,
}

pub fn image_bytes(arch: &str, version: &str, ftype: &str) -> Vec<u8> {
    format!("{arch}/{version}/{ftype}|").repeat(97).into_bytes()
}

/// Writes a products file (`streams/v1/products.json`) and its items under `dir`. Products are
/// `org.example:1.0:ARCH` with `os`, `version`, `arch`; versions carry a `pubname`.
/// `tamper` names a version whose items get a wrong sha256.
pub fn write_stream(dir: &Path, specs: &[Spec<'_>], tamper: Option<&str>) {
    write_stream_tampered(dir, specs, tamper.map(|v| (v, "sha256")));
}

/// [`write_stream`], with `tamper = (version, checksum field)`: that version's items get a wrong
/// checksum of that kind (`md5`, `sha256` or `sha512`), the others right.
pub fn write_stream_tampered(dir: &Path, specs: &[Spec<'_>], tamper: Option<(&str, &str)>) {
    let mut doc = Products::new(SOURCE_CID, "image-downloads");
    for s in specs {
        let pname = format!("org.example:1.0:{}", s.arch);
        let product = doc.products.entry(pname).or_insert_with(|| {
            let mut p = Product::new();
            p.fields.insert("os".into(), json!("demo"));
            p.fields.insert("version".into(), json!("1.0"));
            p.fields.insert("release".into(), json!("alpha"));
            p.fields.insert("arch".into(), json!(s.arch));
            p
        });
        let version = product
            .versions
            .entry(s.version.to_string())
            .or_insert_with(|| {
                let mut v = Version::new();
                v.fields.insert(
                    "pubname".into(),
                    json!(format!("demo-alpha-{}-{}", s.version, s.arch)),
                );
                v
            });
        let bytes = image_bytes(s.arch, s.version, s.ftype);
        let path = format!("images/{}/{}/{}", s.arch, s.version, s.ftype);
        let file = dir.join(&path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, &bytes).expect("write item");
        let mut item = Item::default();
        for (k, v) in [
            ("ftype", json!(s.ftype)),
            ("path", json!(path)),
            ("size", json!(bytes.len())),
            ("md5", json!(hex::encode(Md5::digest(&bytes)))),
            ("sha256", json!(hex::encode(Sha256::digest(&bytes)))),
            ("sha512", json!(hex::encode(Sha512::digest(&bytes)))),
        ] {
            item.fields.insert(k.into(), v);
        }
        if let Some((_, field)) = tamper.filter(|(v, _)| *v == s.version) {
            let len = item.get_str(field).map_or(64, str::len);
            item.fields.insert(field.into(), json!("0".repeat(len)));
        }
        version.items.insert(s.ftype.to_string(), item);
    }
    let out = dir.join("streams/v1/products.json");
    std::fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
    std::fs::write(out, doc.to_vec_pretty()).expect("write products");
}

/// A test's view of the test bed: the admin session, its project, and a content id no other
/// test (or engineer) uses.
pub struct Bed {
    pub session: Session,
    pub glance: GlanceClient,
    pub project: String,
    pub content_id: String,
    pub events: Arc<Mutex<Vec<GlanceEvent>>>,
}

impl Bed {
    pub async fn new(test: &str) -> Bed {
        let session = Session::from_env().expect("OS_* variables of the test bed");
        let project = session
            .token()
            .await
            .expect("token")
            .project_id
            .expect("project-scoped token");
        let glance = GlanceClient::new(&session).await.expect("glance endpoint");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Bed {
            session,
            glance,
            project,
            content_id: format!("test.{test}.{}.{nanos}", std::process::id()),
            events: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The demo user's session (another project).
    pub fn demo_session() -> Session {
        let path = std::env::var("OS_CLIENT_CONFIG_FILE").expect("OS_CLIENT_CONFIG_FILE");
        let config =
            CloudConfig::from_clouds_yaml(Path::new(&path), "testbed-demo").expect("demo cloud");
        Session::new(config).expect("demo session")
    }

    pub fn settings(&self) -> ImageSettings {
        ImageSettings {
            content_id: self.content_id.clone(),
            ..ImageSettings::default()
        }
    }

    pub fn target(&self, settings: ImageSettings) -> Arc<GlanceTarget> {
        let events = self.events.clone();
        Arc::new(GlanceTarget::new(
            self.glance.clone(),
            self.project.clone(),
            GlanceTargetOptions {
                settings,
                visibility: "private".into(),
                events: Arc::new(move |e| {
                    if let Ok(mut v) = events.lock() {
                        v.push(e.clone());
                    }
                }),
                ..GlanceTargetOptions::default()
            },
        ))
    }

    pub fn take_events(&self) -> Vec<GlanceEvent> {
        std::mem::take(&mut *self.events.lock().expect("events"))
    }

    /// Every image of our project with our content id, any status.
    pub async fn ours(&self) -> Vec<Image> {
        self.target(self.settings())
            .our_images()
            .await
            .expect("list")
    }

    /// Deletes every image carrying our content id in our project.
    pub async fn clean(&self) {
        for i in self.ours().await {
            let _ = self.glance.delete(&i.id).await;
        }
    }
}

/// Runs one sync of the stream in `dir` into `target`.
pub async fn sync(dir: &Path, target: Arc<GlanceTarget>, max: Option<usize>) -> Report {
    let source = Arc::new(StoreSource::new(Arc::new(LocalStore::new(dir))));
    let options = SyncOptions {
        entry: "streams/v1/products.json".into(),
        limits: PlanLimits { max, keep: false },
        ..SyncOptions::default()
    };
    Mirror::new(source, target, options)
        .run()
        .await
        .expect("sync runs")
}

pub fn created(events: &[GlanceEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, GlanceEvent::Created { .. }))
        .count()
}
