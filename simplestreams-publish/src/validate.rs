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
//!   which shows they are intact, not who made them;
//! - LXD and Incus images (versions with an `lxd.tar.xz` or `incus.tar.xz` item), as LXD reads
//!   them, literally: an `image-downloads` index entry, a product `arch` LXD knows, version
//!   names starting with a date, `ftype`, `path`, `sha256` and `size` on the items
//!   themselves, a `combined_*` fingerprint on the metadata item for every root file system,
//!   and that fingerprint equal to the SHA-256 of the metadata tarball followed by the root
//!   file system (computed while each file is hashed anyway);
//! - MAAS boot resources (`image-ids` products files whose items have a `path`), as MAAS
//!   reads them: the product fields MAAS 3.8 requires on the product, the items a boot or
//!   custom image needs (`manifest` included), `:v3:` in the name of a boot product, `updated`
//!   on every document.

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
use simplestreams_mirror::hashing::Batcher;
use simplestreams_mirror::{
    check_mirror_path, GetOptions, GetResult, MetadataReader, SignaturePolicy, Source, Store,
    StoreSource, PUBLIC_KEY_PATH,
};

use crate::error::Result;
use crate::lxd::{combined_fields, is_lxd_version_name, lxd_architecture, INCUS_META, LXD_META};
use crate::maas::{has_v3, CUSTOM_ROOT_FTYPES, MAAS_FTYPES};
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

/// An LXD fingerprint to check: `meta` followed by `root` must hash to `expected`.
struct Combined {
    meta: String,
    root: String,
    expected: String,
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
        let mut combined: Vec<Combined> = Vec::new();
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
            self.check_items(&doc.file, &products, entry.get_str("datatype"), &mut named);
            self.check_lxd(
                &doc.file,
                &index_doc.file,
                cid,
                entry,
                &products,
                &mut combined,
            );
            self.check_maas(&doc.file, &index_doc.file, cid, entry, &products);
        }
        self.check_files(named, combined).await?;
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

    /// `index_datatype`: the index entry's, for a products file without one (Juju's).
    fn check_items(
        &mut self,
        file: &str,
        doc: &Products,
        index_datatype: Option<&str>,
        named: &mut BTreeMap<String, Named>,
    ) {
        let datatype = doc.datatype().or(index_datatype).unwrap_or("").to_string();
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
            // MAAS's boot resources are files in an image-ids stream.
            if datatype == "image-ids" && get("path").is_none() {
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

    /// Hashes every file named, and checks LXD's fingerprints on the way: the metadata
    /// tarballs first, their hash states then seeding the hashes of the root file systems.
    async fn check_files(
        &mut self,
        named: BTreeMap<String, Named>,
        combined: Vec<Combined>,
    ) -> Result<()> {
        let metas: HashSet<&str> = combined.iter().map(|c| c.meta.as_str()).collect();
        let (first, rest): (Vec<_>, Vec<_>) = named
            .iter()
            .partition(|(path, _)| metas.contains(path.as_str()));
        let mut states: BTreeMap<String, StreamVerifier> = BTreeMap::new();
        for (path, n) in first.into_iter().chain(rest) {
            let jobs: Vec<&Combined> = combined.iter().filter(|c| &c.root == path).collect();
            let mut taps: Vec<StreamVerifier> = Vec::new();
            if metas.contains(path.as_str()) {
                taps.push(sha256_state());
            }
            let seeded: Vec<&Combined> = jobs
                .into_iter()
                .filter(|c| states.contains_key(&c.meta))
                .collect();
            taps.extend(seeded.iter().map(|c| states[&c.meta].clone()));
            let field = Some(n.field.clone());
            let found = self.source.get(path, GetOptions::default()).await;
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
            let (verdict, mut taps) = hash(body, path, n.expected.clone(), taps).await?;
            self.report.files += 1;
            match verdict {
                Ok(size) => self.report.bytes += size,
                Err(e) => {
                    self.report.problem(&n.file, field, e);
                    continue;
                }
            }
            if metas.contains(path.as_str()) && !taps.is_empty() {
                states.insert(path.clone(), taps.remove(0));
            }
            for (job, tap) in seeded.into_iter().zip(taps) {
                let actual = tap.finish().ok().and_then(|d| d.sha256).unwrap_or_default();
                if !actual.eq_ignore_ascii_case(&job.expected) {
                    self.report.problem(
                        &job.file,
                        Some(job.field.clone()),
                        format!(
                            "{} is not the SHA-256 of {} followed by {} ({actual}): LXD 6.8 \
                             and later refuse the image, older LXD give it a wrong fingerprint",
                            job.expected, job.meta, job.root
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// LXD's reading of a products file (see the module): only versions with a metadata item.
    fn check_lxd(
        &mut self,
        file: &str,
        index_file: &str,
        cid: &str,
        entry: &simplestreams_core::IndexEntry,
        doc: &Products,
        combined: &mut Vec<Combined>,
    ) {
        let is_meta = |i: &simplestreams_core::Item| {
            matches!(
                i.fields.get("ftype").and_then(Value::as_str),
                Some(LXD_META | INCUS_META)
            )
        };
        let mut lxd = false;
        for (pname, product) in &doc.products {
            if !product
                .versions
                .values()
                .any(|v| v.items.values().any(is_meta))
            {
                continue;
            }
            lxd = true;
            let at = |k: &str| Some(format!("products.{pname}.{k}"));
            let literal = |k: &str| product.fields.get(k).and_then(Value::as_str);
            match literal("arch") {
                None => self.report.problem(
                    file,
                    at("arch"),
                    "missing on the product, where LXD reads it (LXD skips the product)",
                ),
                Some(a) if lxd_architecture(a).is_none() => self.report.problem(
                    file,
                    at("arch"),
                    format!("{a:?} is not an architecture LXD knows (LXD skips the product)"),
                ),
                Some(_) => {}
            }
            for k in ["os", "release", "release_title"] {
                if literal(k).is_none() {
                    self.report.notes.push(format!(
                        "{file}: products.{pname}.{k}: missing on the product, where LXD reads \
                         it (its image description lacks it)"
                    ));
                }
            }
            if let Some(aliases) = literal("aliases") {
                for a in aliases.split(',') {
                    if a.is_empty() || a.trim() != a {
                        self.report.problem(
                            file,
                            at("aliases"),
                            format!("alias {a:?}: LXD splits at commas and keeps spaces"),
                        );
                    }
                }
            }
            for (vname, version) in &product.versions {
                let metas: Vec<(&String, &simplestreams_core::Item)> =
                    version.items.iter().filter(|(_, i)| is_meta(i)).collect();
                if metas.is_empty() {
                    continue;
                }
                let vat = |k: &str| format!("products.{pname}.versions.{vname}.{k}");
                if !is_lxd_version_name(vname) {
                    self.report.problem(
                        file,
                        Some(format!("products.{pname}.versions.{vname}")),
                        "LXD skips a version whose name does not start with a date (YYYYMMDD)",
                    );
                }
                let roots: Vec<(&String, &simplestreams_core::Item, &str)> = version
                    .items
                    .iter()
                    .filter_map(|(n, i)| {
                        let f = i.fields.get("ftype").and_then(Value::as_str)?;
                        combined_fields(f).map(|_| (n, i, f))
                    })
                    .collect();
                if roots.is_empty() {
                    self.report.problem(
                        file,
                        Some(vat("items")),
                        "a metadata item without a root file system (squashfs, disk-kvm.img, \
                         root.tar.xz): LXD makes no image of it",
                    );
                }
                for (iname, item) in metas
                    .iter()
                    .copied()
                    .chain(roots.iter().map(|(n, i, _)| (*n, *i)))
                {
                    for k in ["ftype", "path", "sha256", "size"] {
                        if !item.fields.contains_key(k) {
                            self.report.problem(
                                file,
                                Some(vat(&format!("items.{iname}.{k}"))),
                                "missing on the item, where LXD reads it (LXD reads no \
                                 inherited field)",
                            );
                        }
                    }
                }
                for (mname, meta) in &metas {
                    let Some(meta_path) = meta.fields.get("path").and_then(Value::as_str) else {
                        continue;
                    };
                    for (_, root, ftype) in &roots {
                        let field = combined_fields(ftype).and_then(|f| f.first()).copied();
                        let Some(field) = field else { continue };
                        let value = meta.fields.get(field).and_then(Value::as_str);
                        // LXD reads combined_sha256 when combined_rootxz_sha256 is empty.
                        let value = match value {
                            Some(v) if !v.is_empty() => Some(v),
                            _ if *ftype == "root.tar.xz" => {
                                meta.fields.get("combined_sha256").and_then(Value::as_str)
                            }
                            other => other,
                        };
                        let at = vat(&format!("items.{mname}.{field}"));
                        match value {
                            None | Some("") => self.report.problem(
                                file,
                                Some(at),
                                format!(
                                    "missing: LXD finds no fingerprint for the {ftype} image \
                                     and skips it"
                                ),
                            ),
                            Some(v)
                                if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) =>
                            {
                                self.report.problem(
                                    file,
                                    Some(at),
                                    format!("{v:?} is not a sha256 (hex, 64 digits)"),
                                )
                            }
                            Some(v) => {
                                if let Some(root_path) =
                                    root.fields.get("path").and_then(Value::as_str)
                                {
                                    combined.push(Combined {
                                        meta: meta_path.to_string(),
                                        root: root_path.to_string(),
                                        expected: v.to_ascii_lowercase(),
                                        file: file.to_string(),
                                        field: at,
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
        if lxd {
            if entry.get_str("datatype") != Some("image-downloads") {
                self.report.problem(
                    index_file,
                    Some(format!("index.{cid}.datatype")),
                    "LXD and Incus read only entries of datatype image-downloads",
                );
            }
            if doc.datatype() != Some("image-downloads") {
                self.report.problem(
                    file,
                    Some("datatype".into()),
                    "LXD and Incus read only products files of datatype image-downloads",
                );
            }
        }
    }

    /// MAAS's reading of a products file of boot resources (see the module).
    fn check_maas(
        &mut self,
        file: &str,
        index_file: &str,
        cid: &str,
        entry: &simplestreams_core::IndexEntry,
        doc: &Products,
    ) {
        if doc.datatype() != Some("image-ids") {
            return;
        }
        let has_files = doc.products.values().any(|p| {
            p.versions
                .values()
                .any(|v| v.items.values().any(|i| i.fields.contains_key("path")))
        });
        if !has_files {
            return;
        }
        if entry.get_str("updated").is_none() {
            self.report.problem(
                index_file,
                Some(format!("index.{cid}.updated")),
                "missing (MAAS 3.8 refuses an index entry without it)",
            );
        }
        if doc.updated().is_none() {
            self.report.problem(
                file,
                Some("updated".into()),
                "missing (MAAS 3.8 refuses a products file without it)",
            );
        }
        for (pname, product) in &doc.products {
            let at = |k: &str| Some(format!("products.{pname}.{k}"));
            for k in [
                "arch",
                "label",
                "os",
                "release",
                "release_title",
                "subarch",
                "subarches",
                "version",
            ] {
                if !product.fields.get(k).is_some_and(Value::is_string) {
                    self.report.problem(
                        file,
                        at(k),
                        "missing on the product, where MAAS 3.8 reads it (older MAAS fail \
                         without arch, release, label or os)",
                    );
                }
            }
            if let Some(eol) = product.fields.get("support_eol").and_then(Value::as_str) {
                if chrono::NaiveDate::parse_from_str(eol, "%Y-%m-%d").is_err() {
                    self.report.problem(
                        file,
                        at("support_eol"),
                        format!("{eol:?} is not a date, YYYY-MM-DD"),
                    );
                }
            }
            for (vname, version) in &product.versions {
                let vat = |k: &str| Some(format!("products.{pname}.versions.{vname}.{k}"));
                let has = |k: &str| version.items.contains_key(k);
                let boot = has("boot-kernel") || has("boot-initrd");
                if boot {
                    if !has_v3(pname) {
                        self.report.problem(
                            file,
                            Some(format!("products.{pname}")),
                            "MAAS imports a boot image only from a product whose name has :v3:",
                        );
                    }
                    for k in ["boot-kernel", "boot-initrd", "manifest"] {
                        if !has(k) {
                            self.report.problem(
                                file,
                                vat(&format!("items.{k}")),
                                "missing: MAAS 3.8 refuses a boot image without it",
                            );
                        }
                    }
                    if !has("squashfs") && !has("root-image.gz") {
                        self.report.problem(
                            file,
                            vat("items.squashfs"),
                            "missing: a boot image needs squashfs (or root-image.gz)",
                        );
                    }
                } else {
                    let roots: Vec<&String> = version
                        .items
                        .keys()
                        .filter(|k| CUSTOM_ROOT_FTYPES.contains(&k.as_str()))
                        .collect();
                    if roots.is_empty() {
                        self.report.problem(
                            file,
                            vat("items"),
                            "neither a boot image (boot-kernel, boot-initrd, squashfs) nor a \
                             custom one (root-tgz, root-dd)",
                        );
                    } else if !has("root-tgz") {
                        self.report.notes.push(format!(
                            "{file}: products.{pname}.versions.{vname}: MAAS 3.8 reads single-file \
                             images only as root-tgz"
                        ));
                    }
                    if !has("manifest") {
                        self.report.problem(
                            file,
                            vat("items.manifest"),
                            "missing: MAAS 3.8 refuses an image without it",
                        );
                    }
                }
                for (iname, item) in &version.items {
                    for k in ["ftype", "path", "sha256", "size"] {
                        if !item.fields.contains_key(k) {
                            self.report.problem(
                                file,
                                vat(&format!("items.{iname}.{k}")),
                                "missing on the item, where MAAS 3.8 reads it",
                            );
                        }
                    }
                    if let Some(f) = item.fields.get("ftype").and_then(Value::as_str) {
                        if !MAAS_FTYPES.contains(&f) {
                            self.report.notes.push(format!(
                                "{file}: products.{pname}.versions.{vname}.items.{iname}: MAAS \
                                 skips ftype {f:?}"
                            ));
                        }
                    }
                }
            }
        }
    }
}

/// A new SHA-256 state.
fn sha256_state() -> StreamVerifier {
    StreamVerifier::new("combined", Expected::default()).also_compute(ChecksumKind::Sha256)
}

/// Streams a body through a verifier and taps, on a thread of their own: the bytes hashed (or
/// what failed), and the taps' states after them.
async fn hash(
    mut body: simplestreams_mirror::ByteStream,
    path: &str,
    expected: Expected,
    taps: Vec<StreamVerifier>,
) -> Result<(std::result::Result<u64, String>, Vec<StreamVerifier>)> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(2);
    let mut verifier = StreamVerifier::new(path, expected);
    let thread = tokio::task::spawn_blocking(move || {
        let mut taps = taps;
        let mut failed = None;
        while let Some(batch) = rx.blocking_recv() {
            for chunk in batch {
                if failed.is_none() {
                    if let Err(e) = verifier.update(&chunk) {
                        failed = Some(e);
                    }
                }
                for t in &mut taps {
                    let _ = t.update(&chunk);
                }
            }
        }
        let verdict = match failed {
            Some(e) => Err(e.to_string()),
            None => verifier.finish().map(|d| d.size).map_err(|e| e.to_string()),
        };
        (verdict, taps)
    });
    let mut batcher = Batcher::default();
    let mut read_error = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => {
                if let Some(batch) = batcher.push(c) {
                    if tx.send(batch).await.is_err() {
                        break;
                    }
                }
            }
            Err(e) => {
                read_error = Some(format!("{path}: {e}"));
                break;
            }
        }
    }
    let _ = tx.send(batcher.take()).await;
    drop(tx);
    let (verdict, taps) = thread
        .await
        .map_err(|e| crate::Error::Invalid(format!("hashing task failed: {e}")))?;
    Ok(match read_error {
        Some(e) => (Err(e), Vec::new()),
        None => (verdict, taps),
    })
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
