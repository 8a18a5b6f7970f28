//! [`validate`]: everything a consumer of a stream relies on, checked the way a consumer
//! would, from a store or over HTTP. Each problem names its file and, where there is one,
//! its JSON field.
//!
//! Checked:
//! - every metadata file parses (format, structure, field types), with no duplicate keys in
//!   a JSON object (parsers disagree on which one wins);
//! - the index: each entry has a `format`, a safe `path` naming a file that exists, a
//!   `datatype` the file agrees with, a `products` list equal to the file's products, and
//!   dates (`updated`) in RFC 2822;
//! - items by datatype: `image-downloads` and `content-download` items have a `path`, a
//!   `size` and a checksum (well-formed hex); `image-ids` items an `id`, a `region` and an
//!   `endpoint`; paths are safe for a mirror ([`simplestreams_mirror::check_mirror_path`]);
//! - no path named twice with different size or checksums;
//! - every file: present, with its size and every checksum given (each distinct path
//!   hashed once);
//! - signatures: every `.sjson` and `.json.gpg` present verifies, and an `.sjson` says
//!   what its `.json` says; with a keyring, against it, and every document must be signed;
//!   without, against the key published beside the stream (`streams/v1/signing-key.asc`),
//!   which shows they are intact, not who made them.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use simplestreams_core::openpgp::{verify_clearsigned, verify_detached, Keyring};
use simplestreams_core::{
    detached_path, for_each_flat_item, index_for, json_path, sjson_path, ChecksumKind, Expected,
    Index, Products, StreamVerifier, INDEX_FORMAT, PRODUCTS_FORMAT,
};
use simplestreams_mirror::hashing::{Batcher, HashingThread};
use simplestreams_mirror::{
    check_mirror_path, GetOptions, GetResult, MetadataReader, SignaturePolicy, Source, Store,
    StoreSource, PUBLIC_KEY_PATH,
};

use crate::error::Result;
use crate::repo::INDEX_PATH;

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file it is in (metadata path, relative to the stream root).
    pub file: String,
    /// The JSON field (`index.X.path`, `products.P.versions.V.items.I.size`), if any.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: {field}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// What [`validate`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Problems, in the order found.
    pub problems: Vec<Problem>,
    /// Remarks that are not problems (signatures that could not be checked, …).
    pub notes: Vec<String>,
    /// Metadata documents read.
    pub documents: usize,
    /// Items checked.
    pub items: usize,
    /// Distinct files hashed.
    pub files: usize,
    /// Bytes hashed.
    pub bytes: u64,
}

impl Report {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, file: &str, field: Option<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            file: file.to_string(),
            field,
            message: message.into(),
        });
    }

    fn core(&mut self, file: &str, e: simplestreams_core::Error) {
        match e {
            simplestreams_core::Error::Json {
                json_path, message, ..
            }
            | simplestreams_core::Error::Field {
                json_path, message, ..
            } => self.problem(file, Some(json_path), message),
            other => self.problem(file, None, other.to_string()),
        }
    }
}

/// Validates the stream in `store` (see the module).
pub async fn validate_store(store: Arc<dyn Store>, keyring: Option<&Keyring>) -> Result<Report> {
    validate(Arc::new(StoreSource::new(store)), keyring).await
}

/// Validates the stream at `source` (a store, a directory, an HTTP mirror; see the module).
/// `keyring`: the keys that must have signed every document. Errors are for the source
/// failing (not for problems of the stream, which the report lists).
pub async fn validate(source: Arc<dyn Source>, keyring: Option<&Keyring>) -> Result<Report> {
    let mut v = Validator {
        reader: MetadataReader::new(source.clone(), SignaturePolicy::off()),
        source,
        report: Report::default(),
        keyring: keyring.cloned(),
        required: keyring.is_some(),
        published_key: false,
    };
    v.run().await?;
    Ok(v.report)
}

/// A metadata document's files.
struct Doc {
    /// The JSON to check: the `.json`, or the `.sjson`'s payload.
    json: Bytes,
    /// Where `json` came from.
    file: String,
}

struct Validator {
    source: Arc<dyn Source>,
    reader: MetadataReader,
    report: Report,
    keyring: Option<Keyring>,
    required: bool,
    published_key: bool,
}

/// What a path holds, by the first item naming it.
struct Named {
    expected: Expected,
    file: String,
    field: String,
}

impl Validator {
    async fn read(&self, path: &str) -> Result<Option<simplestreams_mirror::MetadataFile>> {
        match self.reader.read(path).await {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn run(&mut self) -> Result<()> {
        if self.keyring.is_none() {
            if let Some(key) = self.read(PUBLIC_KEY_PATH).await? {
                match Keyring::from_bytes(&key.raw, PUBLIC_KEY_PATH) {
                    Ok(k) => {
                        self.keyring = Some(k);
                        self.published_key = true;
                    }
                    Err(e) => self.report.problem(PUBLIC_KEY_PATH, None, e.to_string()),
                }
            }
        }
        let Some(index_doc) = self.document(INDEX_PATH, true).await? else {
            self.report.problem(
                INDEX_PATH,
                None,
                "no index (neither index.json nor index.sjson)",
            );
            return Ok(());
        };
        let index = match Index::from_slice(&index_doc.json, &index_doc.file) {
            Ok(i) => i,
            Err(e) => {
                self.report.core(&index_doc.file, e);
                return Ok(());
            }
        };
        self.check_updated(&index_doc.file, "updated", index.updated());
        let mut named: BTreeMap<String, Named> = BTreeMap::new();
        for (cid, entry) in &index.index {
            let at = |k: &str| Some(format!("index.{cid}.{k}"));
            let Some(format) = entry.format() else {
                self.report.problem(
                    &index_doc.file,
                    at("format"),
                    "missing (readers skip an entry without one)",
                );
                continue;
            };
            if format == INDEX_FORMAT {
                self.report
                    .notes
                    .push(format!("{cid}: a nested index, not followed"));
                continue;
            }
            if format != PRODUCTS_FORMAT {
                self.report.problem(
                    &index_doc.file,
                    at("format"),
                    format!("unknown format {format:?}"),
                );
                continue;
            }
            let Some(path) = entry.path() else {
                self.report.problem(&index_doc.file, at("path"), "missing");
                continue;
            };
            if let Err(e) = check_mirror_path(path) {
                self.report
                    .problem(&index_doc.file, at("path"), e.to_string());
                continue;
            }
            if entry.get_str("datatype").is_none() {
                self.report.problem(
                    &index_doc.file,
                    at("datatype"),
                    "missing (LXD and Incus read only entries of datatype image-downloads)",
                );
            }
            self.check_updated(
                &index_doc.file,
                &format!("index.{cid}.updated"),
                entry.get_str("updated"),
            );
            let Some(doc) = self.document(&json_path(path), false).await? else {
                self.report.problem(
                    &index_doc.file,
                    at("path"),
                    format!("names {path}, which is not there"),
                );
                continue;
            };
            let products = match Products::from_slice(&doc.json, &doc.file) {
                Ok(p) => p,
                Err(e) => {
                    self.report.core(&doc.file, e);
                    continue;
                }
            };
            if products.content_id() != cid {
                self.report.problem(
                    &doc.file,
                    Some("content_id".into()),
                    format!(
                        "{:?}, but the index lists it as {cid:?}",
                        products.content_id()
                    ),
                );
            }
            if let (Some(a), Some(b)) = (entry.get_str("datatype"), products.datatype()) {
                if a != b {
                    self.report.problem(
                        &doc.file,
                        Some("datatype".into()),
                        format!("{b:?}, but the index says {a:?}"),
                    );
                }
            }
            self.check_updated(&doc.file, "updated", products.updated());
            self.check_listed(
                &index_doc.file,
                cid,
                entry.fields.get("products"),
                &products,
            );
            self.check_items(&doc.file, &products, &mut named);
        }
        self.check_files(named).await?;
        Ok(())
    }

    /// Reads a document (`path` is its `.json` path), checking its signatures.
    async fn document(&mut self, path: &str, is_index: bool) -> Result<Option<Doc>> {
        let json = self.read(path).await?;
        let signed = self.read(&sjson_path(path)).await?;
        let detached = self.read(&detached_path(path)).await?;
        let doc = match (&json, &signed) {
            (Some(j), _) => Doc {
                json: j.raw.clone(),
                file: path.to_string(),
            },
            (None, Some(s)) => Doc {
                json: s.json.clone(),
                file: sjson_path(path),
            },
            (None, None) => return Ok(None),
        };
        self.report.documents += 1;
        let dups = duplicate_keys(&doc.json);
        for d in dups {
            self.report.problem(
                &doc.file,
                Some(d),
                "duplicate key (readers disagree on which wins)",
            );
        }
        let keyring = self.keyring.clone();
        if let Some(s) = &signed {
            let file = sjson_path(path);
            match &keyring {
                Some(k) => match verify_clearsigned(&s.raw, k, &file) {
                    Ok(v) => {
                        if let Some(j) = &json {
                            if !same_payload(&j.raw, &v.payload, is_index) {
                                self.report.problem(
                                    &file,
                                    None,
                                    format!("says something else than {path}"),
                                );
                            }
                        }
                    }
                    Err(e) => {
                        self.report
                            .problem(&file, None, bad_signature(e, self.published_key))
                    }
                },
                None => self.report.notes.push(format!(
                    "{file}: signature not checked (no keyring given, no {PUBLIC_KEY_PATH})"
                )),
            }
        } else if self.required {
            self.report.problem(
                &sjson_path(path),
                None,
                "missing: the document is not signed",
            );
        }
        if let (Some(d), Some(j), Some(k)) = (&detached, &json, &keyring) {
            let file = detached_path(path);
            if let Err(e) = verify_detached(&j.raw, &d.raw, k, path) {
                self.report
                    .problem(&file, None, bad_signature(e, self.published_key));
            }
        }
        Ok(Some(doc))
    }

    fn check_updated(&mut self, file: &str, field: &str, updated: Option<&str>) {
        if let Some(u) = updated {
            if chrono::DateTime::parse_from_rfc2822(u).is_err() {
                self.report.problem(
                    file,
                    Some(field.to_string()),
                    format!("{u:?} is not an RFC 2822 date"),
                );
            }
        }
    }

    /// The index entry's `products` against the file's.
    fn check_listed(&mut self, file: &str, cid: &str, listed: Option<&Value>, doc: &Products) {
        let field = Some(format!("index.{cid}.products"));
        let Some(Value::Array(listed)) = listed else {
            self.report.problem(
                file,
                field,
                "missing (LXD and Incus skip an entry without products)",
            );
            return;
        };
        let listed: HashSet<&str> = listed.iter().filter_map(Value::as_str).collect();
        let actual: HashSet<&str> = doc.products.keys().map(String::as_str).collect();
        let mut missing: Vec<&&str> = actual.difference(&listed).collect();
        let mut extra: Vec<&&str> = listed.difference(&actual).collect();
        missing.sort();
        extra.sort();
        if !missing.is_empty() {
            self.report.problem(
                file,
                field.clone(),
                format!("does not list {}", join(&missing)),
            );
        }
        if !extra.is_empty() {
            self.report.problem(
                file,
                field,
                format!("lists {}, which the file does not have", join(&extra)),
            );
        }
    }

    fn check_items(&mut self, file: &str, doc: &Products, named: &mut BTreeMap<String, Named>) {
        let datatype = doc.datatype().unwrap_or("").to_string();
        let report = &mut self.report;
        for_each_flat_item(doc, |id, _, flat| {
            report.items += 1;
            let field = format!(
                "products.{}.versions.{}.items.{}",
                id.product, id.version, id.item
            );
            let get = |k: &str| flat.get(k).map(|v| v.to_string()).filter(|v| !v.is_empty());
            let missing = |k: &str, report: &mut Report| {
                if get(k).is_none() {
                    report.problem(file, Some(format!("{field}.{k}")), "missing");
                }
            };
            if datatype == "image-ids" {
                for k in ["id", "region", "endpoint"] {
                    missing(k, report);
                }
            } else {
                missing("path", report);
                missing("size", report);
                let mut expected = Expected::default();
                for kind in ChecksumKind::ALL {
                    if let Some(v) = get(kind.field()) {
                        let ok =
                            v.len() == kind.hex_len() && v.bytes().all(|b| b.is_ascii_hexdigit());
                        if !ok {
                            report.problem(
                                file,
                                Some(format!("{field}.{kind}")),
                                format!("{v:?} is not a {kind} (hex, {} digits)", kind.hex_len()),
                            );
                        }
                        let v = Some(v.to_ascii_lowercase());
                        match kind {
                            ChecksumKind::Md5 => expected.md5 = v,
                            ChecksumKind::Sha256 => expected.sha256 = v,
                            ChecksumKind::Sha512 => expected.sha512 = v,
                        }
                    }
                }
                if expected.kinds().is_empty() {
                    report.problem(
                        file,
                        Some(field.clone()),
                        "no checksum (sha256, sha512 or md5): it cannot be verified",
                    );
                }
                expected.size = get("size").and_then(|s| s.parse().ok());
                if let Some(path) = get("path") {
                    if let Err(e) = check_mirror_path(&path) {
                        report.problem(file, Some(format!("{field}.path")), e.to_string());
                        return;
                    }
                    match named.get(&path) {
                        Some(first) if !same_content(&first.expected, &expected) => {
                            report.problem(
                                file,
                                Some(format!("{field}.path")),
                                format!(
                                    "{path} is also named by {}: {} with other size or checksums",
                                    first.file, first.field
                                ),
                            );
                        }
                        Some(_) => {}
                        None => {
                            named.insert(
                                path,
                                Named {
                                    expected,
                                    file: file.to_string(),
                                    field: field.clone(),
                                },
                            );
                        }
                    }
                }
            }
        });
    }

    /// Hashes every file named.
    async fn check_files(&mut self, named: BTreeMap<String, Named>) -> Result<()> {
        for (path, n) in named {
            let field = Some(n.field.clone());
            let found = self.source.get(&path, GetOptions::default()).await;
            let body = match found {
                Ok(GetResult::Found { body, .. }) => body,
                Ok(GetResult::NotModified) => continue,
                Err(e) if e.is_not_found() => {
                    self.report
                        .problem(&n.file, field, format!("{path}: missing"));
                    continue;
                }
                Err(e) => {
                    self.report.problem(&n.file, field, format!("{path}: {e}"));
                    continue;
                }
            };
            let verdict = hash(body, &path, n.expected).await?;
            self.report.files += 1;
            match verdict {
                Ok(size) => self.report.bytes += size,
                Err(e) => self.report.problem(&n.file, field, e),
            }
        }
        Ok(())
    }
}

/// Streams a body through a verifier: the bytes hashed, or what failed.
async fn hash(
    mut body: simplestreams_mirror::ByteStream,
    path: &str,
    expected: Expected,
) -> Result<std::result::Result<u64, String>> {
    let thread = HashingThread::start(StreamVerifier::new(path, expected));
    let mut batcher = Batcher::default();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => {
                if let Some(batch) = batcher.push(c) {
                    thread.send(batch).await;
                }
            }
            Err(e) => return Ok(Err(format!("{path}: {e}"))),
        }
    }
    thread.send(batcher.take()).await;
    Ok(thread
        .finish()
        .await?
        .map(|d| d.size)
        .map_err(|e| e.to_string()))
}

fn same_content(a: &Expected, b: &Expected) -> bool {
    a.size == b.size
        && ChecksumKind::ALL
            .into_iter()
            .all(|k| match (a.digest(k), b.digest(k)) {
                (Some(x), Some(y)) => x == y,
                _ => true,
            })
}

/// Whether a `.sjson`'s payload says what the `.json` says (an index's `.sjson` names the
/// `.sjson` products files).
fn same_payload(json: &[u8], payload: &[u8], is_index: bool) -> bool {
    if is_index {
        let (Ok(a), Ok(b)) = (
            Index::from_slice(json, "json"),
            Index::from_slice(payload, "sjson"),
        ) else {
            return false;
        };
        return index_for(&a, true) == index_for(&b, true);
    }
    let a: std::result::Result<Value, _> = serde_json::from_slice(json);
    let b: std::result::Result<Value, _> = serde_json::from_slice(payload);
    matches!((a, b), (Ok(a), Ok(b)) if a == b)
}

fn bad_signature(e: simplestreams_core::Error, published_key: bool) -> String {
    let reason = match e {
        simplestreams_core::Error::Signature { reason, .. } => reason,
        other => other.to_string(),
    };
    if published_key {
        format!("bad signature (checked against {PUBLIC_KEY_PATH}): {reason}")
    } else {
        format!("bad signature: {reason}")
    }
}

fn join(items: &[&&str]) -> String {
    items.iter().map(|s| **s).collect::<Vec<_>>().join(", ")
}

/// JSON paths of keys that appear twice in one object.
fn duplicate_keys(bytes: &[u8]) -> Vec<String> {
    let dups = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let _ = Walk {
        path: String::new(),
        dups: &dups,
    }
    .deserialize(&mut de);
    dups.into_inner()
}

struct Walk<'a> {
    path: String,
    dups: &'a RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                self.dups.borrow_mut().push(path.clone());
            }
            map.next_value_seed(Walk {
                path,
                dups: self.dups,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(Walk {
                path: format!("{}[{i}]", self.path),
                dups: self.dups,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn duplicate_keys_are_found_with_their_path() {
        let json = br#"{"products": {"p": {"versions": {"1": {}, "1": {"items": {"a": 1, "a": 2}}}}}, "x": [{"k": 1, "k": 2}]}"#;
        assert_eq!(
            super::duplicate_keys(json),
            [
                "products.p.versions.1",
                "products.p.versions.1.items.a",
                "x[0].k"
            ]
        );
    }
}
