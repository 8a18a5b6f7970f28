//! The reference's `json2streams` input: a JSON list of flat items, each with `content_id`,
//! `product_name`, `version_name`, `item_name`, `path` and any other fields, turned into
//! [`NewImage`]s.
//!
//! As the reference does, `item_url` is dropped, `size` may be a number or a numeric string,
//! every other key stays on the item, and no `ftype` is invented (items say what they are).
//! The item's `path` is where its file goes in the repository, and where its local file is
//! looked for, relative to the JSON file's directory (or a base directory given):
//!
//! - the local file exists: it is copied into the repository at `path`, hashed while copied;
//!   a `size`, `sha256`, `md5` or `sha512` the item gives must match it;
//! - it does not, and the item gives its `size` and a checksum: the item is published as
//!   described, nothing copied (the reference never reads files: it writes metadata for
//!   files already in place); `validate` then checks the file at `path`;
//! - else the item is refused, naming it.
//!
//! Differences from the reference: a products file this creates has datatype
//! `image-downloads` (what LXD and MAAS read; the reference writes `content-download`), and
//! `--juju-format` file naming is not offered.

use std::path::Path;

use serde_json::Value;
use simplestreams_core::{parse_size, Expected, Map};

use crate::error::{Error, Result};
use crate::image::{ImageSource, NewImage, Placement};

/// Reads a flat item list; local files are looked for relative to `base` (default: the
/// JSON file's directory).
pub fn read_json2streams(path: &Path, base: Option<&Path>) -> Result<Vec<NewImage>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_json2streams(&bytes, &path.display().to_string(), base_of(path, base))
}

fn base_of<'a>(path: &'a Path, base: Option<&'a Path>) -> &'a Path {
    base.unwrap_or_else(|| path.parent().unwrap_or(Path::new(".")))
}

/// Images handed over in batches as a list is read (see [`spawn_json2streams`]).
pub type ImageBatches = futures::stream::BoxStream<'static, Result<Vec<NewImage>>>;

/// How many images go over at a time: enough that handing over costs nothing next to
/// making them, few enough that adding starts at once.
const BATCH: usize = 256;

/// [`read_json2streams`] on a thread of its own: the images come in batches as they are read,
/// so that [`Repo::add_batches`](crate::Repo::add_batches) adds them while the rest of the list
/// is parsed (on two cores, a list of thousands of items is read in the time it takes to add
/// it). Errors are as [`read_json2streams`]'s, and come last: after a bad item no more images
/// are sent, and the list is still read to its end, since a syntax error after it wins.
pub fn spawn_json2streams(path: &Path, base: Option<&Path>) -> ImageBatches {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<NewImage>>>(64);
    let (path, base) = (path.to_path_buf(), base_of(path, base).to_path_buf());
    let reader = move || {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                let _ = tx.blocking_send(Err(Error::io(&path, e)));
                return;
            }
        };
        let mut batch = Vec::with_capacity(BATCH);
        let mut send = |image: Option<NewImage>| {
            if let Some(image) = image {
                batch.push(image);
                if batch.len() < BATCH {
                    return;
                }
            }
            if !batch.is_empty() {
                // A receiver gone (its caller stopped) needs nothing more.
                let _ =
                    tx.blocking_send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))));
            }
        };
        let name = path.display().to_string();
        let result = read_items(&bytes, &name, &base, &mut |image| send(Some(image)));
        match result {
            Ok(()) => send(None),
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("json2streams".into())
        .spawn(reader)
    {
        return Box::pin(futures::stream::once(async move {
            Err(Error::Invalid(format!(
                "cannot start reading the list: {e}"
            )))
        }));
    }
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|batch| (batch, rx))
    }))
}

/// The fields of a flat item this reads, by position in [`Flat::known`].
const KNOWN: [&str; 9] = [
    "content_id",
    "product_name",
    "version_name",
    "item_name",
    "path",
    "ftype",
    "md5",
    "sha256",
    "sha512",
];

/// One flat item as read: the known fields apart (their keys never allocated), the others
/// in order. Built straight from the JSON, without an intermediate map.
#[derive(Default)]
struct Flat {
    known: [Option<Value>; 9],
    size: Option<Value>,
    rest: Map,
    /// Not a JSON object.
    not_object: bool,
}

/// A key of a flat item.
enum Key {
    Known(usize),
    Size,
    ItemUrl,
    Other(String),
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Key, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: serde::de::Error>(self, k: &str) -> std::result::Result<Key, E> {
                Ok(match k {
                    "size" => Key::Size,
                    "item_url" => Key::ItemUrl,
                    _ => match KNOWN.iter().position(|n| *n == k) {
                        Some(i) => Key::Known(i),
                        None => Key::Other(k.to_string()),
                    },
                })
            }
            fn visit_string<E: serde::de::Error>(self, k: String) -> std::result::Result<Key, E> {
                match self.visit_str::<E>(&k)? {
                    Key::Other(_) => Ok(Key::Other(k)),
                    other => Ok(other),
                }
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> serde::Deserialize<'de> for Flat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Flat, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Flat;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an item (a JSON object)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Flat, A::Error> {
                let mut flat = Flat::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        // A key given twice: the last wins, as in the reference.
                        Key::Known(i) => flat.known[i] = Some(map.next_value()?),
                        Key::Size => flat.size = Some(map.next_value()?),
                        Key::ItemUrl => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                        Key::Other(k) => {
                            let v: Value = map.next_value()?;
                            flat.rest.insert(k, v);
                        }
                    }
                }
                Ok(flat)
            }
            // Anything else is refused by number, after the list is read.
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Flat, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Flat {
                    not_object: true,
                    ..Flat::default()
                })
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> std::result::Result<Flat, E> {
                Ok(Flat {
                    not_object: true,
                    ..Flat::default()
                })
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> std::result::Result<Flat, E> {
                self.visit_str("")
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> std::result::Result<Flat, E> {
                self.visit_str("")
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> std::result::Result<Flat, E> {
                self.visit_str("")
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> std::result::Result<Flat, E> {
                self.visit_str("")
            }
            fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Flat, E> {
                self.visit_str("")
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses a flat item list (see the module); `name` names it in errors.
///
/// Each item becomes a [`NewImage`] as soon as it is read (no list of parsed items is held
/// in between). A JSON syntax error anywhere wins over a bad item, as if the whole list were
/// read first; otherwise the first bad item is refused, by its number.
pub fn parse_json2streams(bytes: &[u8], name: &str, base: &Path) -> Result<Vec<NewImage>> {
    // Room for the images at once: growing a list of thousands of large structs copies it
    // over and over. A flat item takes a few hundred bytes of JSON (checksums alone are 64);
    // room not used is never touched, so an overestimate costs no memory.
    let mut images = Vec::with_capacity(bytes.len() / 256);
    read_items(bytes, name, base, &mut |image| images.push(image))?;
    Ok(images)
}

/// Reads the list, handing each image to `sink` as it is made, until the first bad item
/// (whose error is returned once the list is read to its end, unless a syntax error wins).
fn read_items(bytes: &[u8], name: &str, base: &Path, sink: &mut dyn FnMut(NewImage)) -> Result<()> {
    let mut items = Items {
        name,
        base,
        sink,
        first_error: None,
        count: 0,
        dirs: Dirs::default(),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed =
        serde::de::DeserializeSeed::deserialize(&mut items, &mut de).and_then(|()| de.end());
    if let Err(e) = parsed {
        return Err(Error::Manifest {
            file: name.to_string(),
            line: e.line(),
            message: format!("not a JSON list of items: {e}"),
        });
    }
    match items.first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The list being read: items turned into images as they come.
struct Items<'a> {
    name: &'a str,
    base: &'a Path,
    sink: &'a mut dyn FnMut(NewImage),
    /// The first bad item; later items are still read (a syntax error after it wins).
    first_error: Option<Error>,
    count: usize,
    dirs: Dirs,
}

impl<'de> serde::de::DeserializeSeed<'de> for &mut Items<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for &mut Items<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a sequence")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<(), A::Error> {
        while let Some(item) = seq.next_element::<Flat>()? {
            self.count += 1;
            if self.first_error.is_some() {
                continue;
            }
            match flat_image(item, self.count, self.name, self.base, &mut self.dirs) {
                Ok(image) => (self.sink)(image),
                Err(e) => self.first_error = Some(e),
            }
        }
        Ok(())
    }
}

/// Which directories exist, asked once each: items whose files are absent all sit in a few
/// absent directories (thousands of items, one `stat` each otherwise). A file cannot be in a
/// directory that does not exist, nor below one.
#[derive(Default)]
struct Dirs {
    /// By the directory's path as written (keyed by its bytes: hashing a `Path` walks its
    /// components).
    known: std::collections::HashMap<std::ffi::OsString, bool>,
}

impl Dirs {
    /// Whether `path` is a file, without asking about anything below a directory already
    /// found absent.
    fn is_file(&mut self, path: &Path) -> bool {
        // Its directories, the outermost first: the first absent one decides.
        let mut dirs: Vec<&Path> = path
            .ancestors()
            .skip(1)
            .filter(|d| !d.as_os_str().is_empty())
            .collect();
        dirs.reverse();
        for dir in dirs {
            let exists = match self.known.get(dir.as_os_str()) {
                Some(known) => *known,
                None => {
                    let exists = dir.is_dir();
                    self.known.insert(dir.as_os_str().to_owned(), exists);
                    exists
                }
            };
            if !exists {
                return false;
            }
        }
        path.is_file()
    }
}

/// One flat item (number `n`, from 1) as an image.
fn flat_image(item: Flat, n: usize, name: &str, base: &Path, dirs: &mut Dirs) -> Result<NewImage> {
    // Errors name the item by its number (1-based) in the list.
    let at = |message: String| Error::Manifest {
        file: format!("{name} item"),
        line: n,
        message,
    };
    if item.not_object {
        return Err(at("not an object".into()));
    }
    let Flat {
        known, size, rest, ..
    } = item;
    let [content_id, product, version, item_name, path, ftype, md5, sha256, sha512] =
        known.map(|v| v.map(as_string));
    let text = |v: Option<std::result::Result<String, ()>>, key: &str| {
        v.transpose()
            .map_err(|()| at(format!("{key}: expected a string")))
    };
    let required = |v: Option<std::result::Result<String, ()>>, key: &str| {
        text(v, key)?
            .filter(|v| !v.is_empty())
            .ok_or_else(|| at(format!("missing field `{key}`")))
    };
    let content_id = required(content_id, "content_id")?;
    let product = required(product, "product_name")?;
    let version = required(version, "version_name")?;
    let item_name = required(item_name, "item_name")?;
    let path = required(path, "path")?;
    let ftype = text(ftype, "ftype")?;
    let size = match size {
        None => None,
        Some(v) => Some(parse_size(&v).map_err(|m| at(format!("size: {m}")))?),
    };
    let lower = |s: Option<String>| {
        s.map(|mut s| {
            s.make_ascii_lowercase();
            s
        })
    };
    let expected = Expected {
        size,
        md5: lower(text(md5, "md5")?),
        sha256: lower(text(sha256, "sha256")?),
        sha512: lower(text(sha512, "sha512")?),
    };
    let local = base.join(&path);
    let source = if dirs.is_file(&local) {
        ImageSource::File(local)
    } else if expected.size.is_some() && !expected.kinds().is_empty() {
        ImageSource::Described
    } else {
        return Err(at(format!(
            "{path}: no file at {} and no size and checksum to publish it as described",
            local.display()
        )));
    };
    let sha512 = expected.sha512.is_some();
    let mut image = NewImage::file("");
    image.source = source;
    image.content_id = Some(content_id);
    image.product_id = Some(product);
    image.version_name = Some(version);
    image.item_name = Some(item_name);
    image.ftype = ftype;
    image.infer_ftype = false;
    image.placement = Placement::Exact(path);
    image.expected = expected;
    image.sha512 = sha512;
    // Made with room for the fields adding the item sets (`ftype`, `path`, `size`, the
    // checksums given), so that it never grows: growing thousands of maps copies each twice.
    let e = &image.expected;
    let adds = 2 + [&image.ftype, &e.md5, &e.sha256, &e.sha512]
        .iter()
        .filter(|v| v.is_some())
        .count();
    let mut fields = Map::with_capacity(rest.len() + adds);
    fields.extend(rest);
    image.fields = fields;
    image.check_fields().map_err(|e| at(e.to_string()))?;
    Ok(image)
}

/// A scalar field as a string.
fn as_string(value: Value) -> std::result::Result<String, ()> {
    match value {
        Value::String(s) => Ok(s),
        other => simplestreams_core::scalar_string(&other)
            .map(|s| s.into_owned())
            .ok_or(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_items_become_images() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("files")).unwrap();
        std::fs::write(dir.path().join("files/a.txt"), "hello").unwrap();
        let text = r#"[
          {"content_id": "c", "product_name": "p", "version_name": "1", "item_name": "a",
           "path": "files/a.txt", "item_url": "http://x", "arch": "amd64", "ftype": "text"},
          {"content_id": "c", "product_name": "p", "version_name": "1", "item_name": "b",
           "path": "files/b.txt", "size": "27", "sha256": "AB", "count": 3}
        ]"#;
        let images = parse_json2streams(text.as_bytes(), "items.json", dir.path()).unwrap();
        assert_eq!(
            images[0].source,
            ImageSource::File(dir.path().join("files/a.txt"))
        );
        assert_eq!(images[0].ftype.as_deref(), Some("text"));
        assert!(!images[0].fields.contains_key("item_url"));
        assert_eq!(images[0].fields["arch"], "amd64");
        assert_eq!(images[1].source, ImageSource::Described);
        assert_eq!(images[1].expected.size, Some(27));
        assert_eq!(images[1].expected.sha256.as_deref(), Some("ab"));
        assert_eq!(images[1].fields["count"], 3, "other values as given");
        assert_eq!(images[1].placement, Placement::Exact("files/b.txt".into()));
    }

    #[test]
    fn a_syntax_error_wins_over_a_bad_item_before_it() {
        let text = r#"[{"content_id": "c"}, {"content_id": "#;
        let err = parse_json2streams(text.as_bytes(), "i.json", Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("i.json:1: not a JSON list of items"),
            "{err}"
        );
        let err = parse_json2streams(b"{}", "i.json", Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a sequence"), "{err}");
    }

    #[test]
    fn an_absent_directory_is_asked_about_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("files/1")).unwrap();
        std::fs::write(dir.path().join("files/1/a.img"), "x").unwrap();
        let mut dirs = Dirs::default();
        assert!(dirs.is_file(&dir.path().join("files/1/a.img")));
        assert!(!dirs.is_file(&dir.path().join("files/1/b.img")));
        assert!(!dirs.is_file(&dir.path().join("files/1/a.img/c")));
        for n in 0..100 {
            assert!(!dirs.is_file(&dir.path().join(format!("absent/{n}/a.img"))));
        }
        let absent = dir.path().join("absent");
        assert_eq!(dirs.known.get(absent.as_os_str()), Some(&false));
        assert!(
            !dirs
                .known
                .keys()
                .any(|k| Path::new(k).starts_with(&absent) && k != &absent),
            "nothing below an absent directory is asked about"
        );
    }

    #[test]
    fn items_without_a_file_or_a_description_are_refused_by_number() {
        let text = r#"[{"content_id": "c", "product_name": "p", "version_name": "1",
            "item_name": "a", "path": "nowhere.img"},
            {"content_id": "c"}]"#;
        let err = parse_json2streams(text.as_bytes(), "i.json", Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("i.json item:1: nowhere.img: no file"),
            "{err}"
        );
        let text = r#"[{"content_id": "c"}]"#;
        let err = parse_json2streams(text.as_bytes(), "i.json", Path::new("/"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "i.json item:1: missing field `product_name`");
    }
}
