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
    // Set once the reader has sent all it had: a channel closed without it (the reader died)
    // is an error, never a list silently cut short.
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader_finished = finished.clone();
    let reader = move || {
        let _finished = Finish(reader_finished);
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
    Box::pin(futures::stream::unfold(Some(rx), move |rx| {
        let finished = finished.clone();
        async move {
            let mut rx = rx?;
            match rx.recv().await {
                Some(batch) => Some((batch, Some(rx))),
                None if finished.load(std::sync::atomic::Ordering::Acquire) => None,
                None => Some((
                    Err(Error::Invalid(
                        "the list's reader stopped before the end of the list".into(),
                    )),
                    None,
                )),
            }
        }
    }))
}

/// Marks the reader finished when it returns (not when it unwinds from a panic).
struct Finish(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for Finish {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.0.store(true, std::sync::atomic::Ordering::Release);
        }
    }
}

/// The fields of a flat item this reads as text, by position in [`Flat::known`].
const CONTENT_ID: usize = 0;
const PRODUCT_NAME: usize = 1;
const VERSION_NAME: usize = 2;
const ITEM_NAME: usize = 3;
const PATH: usize = 4;
const FTYPE: usize = 5;
const MD5: usize = 6;
const SHA256: usize = 7;
const SHA512: usize = 8;

/// One flat item as read: the known fields apart, as text (their keys never allocated), the
/// others in order. Built straight from the JSON, without an intermediate map or value.
#[derive(Default)]
struct Flat {
    known: [Option<Text>; 9],
    size: Option<Value>,
    rest: Map,
    /// Not a JSON object.
    not_object: bool,
}

/// A known field's value as text, read straight from the JSON: a string as it is, a number
/// or boolean as [`simplestreams_core::scalar_string`] writes it; `None` when it has no string
/// form (null, a list, an object), refused later with the item's number (a syntax error after
/// it still wins).
struct Text(Option<String>);

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Text, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> std::result::Result<Text, E> {
                Ok(Text(Some(s.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> std::result::Result<Text, E> {
                Ok(Text(Some(s)))
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> std::result::Result<Text, E> {
                Ok(Text(Some(if b { "True" } else { "False" }.to_owned())))
            }
            fn visit_i64<E: serde::de::Error>(self, i: i64) -> std::result::Result<Text, E> {
                Ok(Text(Some(i.to_string())))
            }
            fn visit_u64<E: serde::de::Error>(self, u: u64) -> std::result::Result<Text, E> {
                Ok(Text(Some(u.to_string())))
            }
            // A JSON value cannot hold a number beyond `f64` (it becomes null): none either.
            fn visit_f64<E: serde::de::Error>(self, f: f64) -> std::result::Result<Text, E> {
                Ok(Text(
                    f.is_finite()
                        .then(|| simplestreams_core::python_float_repr(f)),
                ))
            }
            fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Text, E> {
                Ok(Text(None))
            }
            // Read as a JSON value would be, so that the same lists are refused for their
            // syntax or depth (ignoring them would take any depth).
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<Text, A::Error> {
                serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(|_: Value| Text(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Text, A::Error> {
                serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|_: Value| Text(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A key of a flat item.
enum Key {
    Known(usize),
    Size,
    ItemUrl,
    Other(String),
}

impl Key {
    fn known(k: &str) -> Option<Key> {
        Some(match k {
            "content_id" => Key::Known(CONTENT_ID),
            "product_name" => Key::Known(PRODUCT_NAME),
            "version_name" => Key::Known(VERSION_NAME),
            "item_name" => Key::Known(ITEM_NAME),
            "path" => Key::Known(PATH),
            "ftype" => Key::Known(FTYPE),
            "md5" => Key::Known(MD5),
            "sha256" => Key::Known(SHA256),
            "sha512" => Key::Known(SHA512),
            "size" => Key::Size,
            "item_url" => Key::ItemUrl,
            _ => return None,
        })
    }
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
                Ok(Key::known(k).unwrap_or_else(|| Key::Other(k.to_string())))
            }
            fn visit_string<E: serde::de::Error>(self, k: String) -> std::result::Result<Key, E> {
                Ok(Key::known(&k).unwrap_or(Key::Other(k)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Reads one item into a [`Flat`] (made once for the whole list: an item is not moved
/// about on its way), its other fields into a map made with room for `rest` of them.
struct FlatSeed<'a> {
    flat: &'a mut Flat,
    rest: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for FlatSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl FlatSeed<'_> {
    fn not_object<E>(self) -> std::result::Result<(), E> {
        *self.flat = Flat {
            not_object: true,
            ..Flat::default()
        };
        Ok(())
    }
}

impl<'de> serde::de::Visitor<'de> for FlatSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an item (a JSON object)")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<(), A::Error> {
        let flat = self.flat;
        flat.known = Default::default();
        flat.size = None;
        flat.rest = Map::with_capacity(self.rest);
        flat.not_object = false;
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
        Ok(())
    }
    // Anything else is refused by number, after the list is read.
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<(), A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        self.not_object()
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> std::result::Result<(), E> {
        self.not_object()
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> std::result::Result<(), E> {
        self.not_object()
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> std::result::Result<(), E> {
        self.not_object()
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> std::result::Result<(), E> {
        self.not_object()
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> std::result::Result<(), E> {
        self.not_object()
    }
    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<(), E> {
        self.not_object()
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
        sink,
        first_error: None,
        count: 0,
        rest: 0,
        flat: Flat::default(),
        dirs: Dirs::new(base),
    };
    let parsed = match std::str::from_utf8(bytes) {
        // Valid UTF-8 throughout (checked at once, far faster than string by string): its
        // strings are taken as they are. Else the same parse, which checks each string and
        // says where one is not UTF-8.
        Ok(text) => read_list(&mut items, serde_json::Deserializer::from_str(text)),
        Err(_) => read_list(&mut items, serde_json::Deserializer::from_slice(bytes)),
    };
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

/// The whole list, and nothing after it.
fn read_list<'de, R: serde_json::de::Read<'de>>(
    items: &mut Items<'_>,
    mut de: serde_json::Deserializer<R>,
) -> serde_json::Result<()> {
    serde::de::DeserializeSeed::deserialize(items, &mut de)?;
    de.end()
}

/// The list being read: items turned into images as they come.
struct Items<'a> {
    name: &'a str,
    sink: &'a mut dyn FnMut(NewImage),
    /// The first bad item; later items are still read (a syntax error after it wins).
    first_error: Option<Error>,
    count: usize,
    /// How many fields the last item's map ended with: the next one is made with that room
    /// (items of a list are much alike), so that it is neither grown nor copied.
    rest: usize,
    /// The item being read.
    flat: Flat,
    dirs: Dirs<'a>,
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
        loop {
            let seed = FlatSeed {
                flat: &mut self.flat,
                rest: self.rest,
            };
            if seq.next_element_seed(seed)?.is_none() {
                break;
            }
            self.count += 1;
            if self.first_error.is_some() {
                continue;
            }
            match flat_image(
                &mut self.flat,
                self.count,
                self.name,
                &mut self.dirs,
                &mut self.rest,
            ) {
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
struct Dirs<'a> {
    /// What items' paths are relative to.
    base: &'a Path,
    /// By the directory as items write it (the start of their `path`, up to a `/`): looked up
    /// without making its full path.
    known: std::collections::HashMap<String, bool>,
}

impl<'a> Dirs<'a> {
    fn new(base: &'a Path) -> Dirs<'a> {
        Dirs {
            base,
            known: std::collections::HashMap::new(),
        }
    }

    /// `path` under the base, if it is a file; nothing is asked about below a directory
    /// already found absent.
    fn file(&mut self, path: &str) -> Option<std::path::PathBuf> {
        // Its directories, the outermost first: the first absent one decides (a path is
        // looked up from its start, each directory on the way must be found).
        for (end, _) in path.match_indices('/') {
            let dir = &path[..end];
            // The root, or a separator doubled: no directory more than the one before.
            if dir.is_empty() || dir.ends_with('/') {
                continue;
            }
            let exists = match self.known.get(dir) {
                Some(known) => *known,
                None => {
                    let exists = self.base.join(dir).is_dir();
                    self.known.insert(dir.to_owned(), exists);
                    exists
                }
            };
            if !exists {
                return None;
            }
        }
        let file = self.base.join(path);
        file.is_file().then_some(file)
    }
}

/// One flat item (number `n`, from 1) as an image, taken out of `item`; `rest` is the room its
/// map of other fields was made with, and becomes what it needed.
fn flat_image(
    item: &mut Flat,
    n: usize,
    name: &str,
    dirs: &mut Dirs,
    rest: &mut usize,
) -> Result<NewImage> {
    // Errors name the item by its number (1-based) in the list.
    let at = |message: String| Error::Manifest {
        file: format!("{name} item"),
        line: n,
        message,
    };
    if item.not_object {
        return Err(at("not an object".into()));
    }
    let mut known = |i: usize| item.known[i].take();
    let text = |v: Option<Text>, key: &str| match v {
        None => Ok(None),
        Some(Text(Some(s))) => Ok(Some(s)),
        Some(Text(None)) => Err(at(format!("{key}: expected a string"))),
    };
    let required = |v: Option<Text>, key: &str| {
        text(v, key)?
            .filter(|v| !v.is_empty())
            .ok_or_else(|| at(format!("missing field `{key}`")))
    };
    let content_id = required(known(CONTENT_ID), "content_id")?;
    let product = required(known(PRODUCT_NAME), "product_name")?;
    let version = required(known(VERSION_NAME), "version_name")?;
    let item_name = required(known(ITEM_NAME), "item_name")?;
    let path = required(known(PATH), "path")?;
    let ftype = text(known(FTYPE), "ftype")?;
    let size = match item.size.take() {
        None => None,
        Some(v) => Some(parse_size(&v).map_err(|m| at(format!("size: {m}")))?),
    };
    let lower = |s: Option<String>| {
        s.map(|mut s| {
            // Looked at whole rather than stopping at the first upper case letter: a check
            // the compiler makes many bytes at a time, where a checksum has none.
            if s.bytes()
                .fold(false, |upper, b| upper | b.is_ascii_uppercase())
            {
                s.make_ascii_lowercase();
            }
            s
        })
    };
    let expected = Expected {
        size,
        md5: lower(text(known(MD5), "md5")?),
        sha256: lower(text(known(SHA256), "sha256")?),
        sha512: lower(text(known(SHA512), "sha512")?),
    };
    let source = match dirs.file(&path) {
        Some(local) => ImageSource::File(local),
        None if expected.size.is_some()
            && simplestreams_core::ChecksumKind::ALL
                .into_iter()
                .any(|k| expected.digest(k).is_some()) =>
        {
            ImageSource::Described
        }
        None => {
            return Err(at(format!(
                "{path}: no file at {} and no size and checksum to publish it as described",
                dirs.base.join(&path).display()
            )))
        }
    };
    // Room for the fields adding the item sets (`ftype`, `path`, `size`, the checksums
    // given), so that the map never grows: growing thousands of maps copies each twice.
    let adds = 2 + [&ftype, &expected.md5, &expected.sha256, &expected.sha512]
        .iter()
        .filter(|v| v.is_some())
        .count();
    let mut fields = std::mem::take(&mut item.rest);
    let needed = fields.len() + adds;
    if needed > *rest {
        let mut roomier = Map::with_capacity(needed);
        roomier.append(&mut fields);
        fields = roomier;
    }
    *rest = needed;
    let image = NewImage {
        source,
        content_id: Some(content_id),
        stream: None,
        datatype: None,
        product_id: Some(product),
        version_name: Some(version),
        item_name: Some(item_name),
        ftype,
        infer_ftype: false,
        fields,
        product_fields: Map::new(),
        version_fields: Map::new(),
        placement: Placement::Exact(path),
        sha512: expected.sha512.is_some(),
        expected,
    };
    image.check_fields().map_err(|e| at(e.to_string()))?;
    Ok(image)
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
        let mut dirs = Dirs::new(dir.path());
        assert_eq!(
            dirs.file("files/1/a.img"),
            Some(dir.path().join("files/1/a.img"))
        );
        assert_eq!(dirs.file("files/1/b.img"), None);
        assert_eq!(dirs.file("files/1/a.img/c"), None);
        for n in 0..100 {
            assert_eq!(dirs.file(&format!("absent/{n}/a.img")), None);
        }
        assert_eq!(dirs.known.get("absent"), Some(&false));
        assert!(
            !dirs.known.keys().any(|k| k.starts_with("absent/")),
            "nothing below an absent directory is asked about"
        );
        // An absolute path is looked for where it says, its directories likewise.
        let file = dir.path().join("files/1/a.img");
        let mut elsewhere = Dirs::new(Path::new("/nonexistent"));
        assert_eq!(elsewhere.file(file.to_str().unwrap()), Some(file.clone()));
        let absent = dir.path().join("absent/1/a.img");
        assert_eq!(elsewhere.file(absent.to_str().unwrap()), None);
        let absent_dir = dir.path().join("absent");
        assert_eq!(
            elsewhere.known.get(absent_dir.to_str().unwrap()),
            Some(&false)
        );
        // Doubled separators and `.` or `..` on the way are the file system's to resolve.
        assert_eq!(
            dirs.file("files//1/./a.img"),
            Some(dir.path().join("files//1/./a.img"))
        );
        assert_eq!(
            dirs.file("files/1/../1/a.img"),
            Some(dir.path().join("files/1/../1/a.img"))
        );
        assert_eq!(dirs.file("absent/../files/1/a.img"), None);
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
