//! Writing a generated stream as a mirror tree.

use std::path::{Path, PathBuf};

use serde_json::json;
use simplestreams_core::openpgp::{clearsign, SigningKey};

use crate::generate::{generate, GenOptions, Stream};
use crate::Error;

/// What [`write_stream`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// The metadata files, relative to the root (`streams/v1/…`).
    pub metadata: Vec<String>,
    /// How many item files.
    pub item_files: usize,
    /// Bytes written in all.
    pub bytes: u64,
}

fn write_file(root: &Path, rel: &str, body: &[u8], written: &mut Written) -> Result<(), Error> {
    let path = root.join(rel);
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: PathBuf::from(dir),
            source,
        })?;
    }
    std::fs::write(&path, body).map_err(io)?;
    written.bytes += body.len() as u64;
    Ok(())
}

/// Generates the stream of `opts` below `root`: `streams/v1/index.json`, the products file,
/// the item files if asked, and with `sign_key` also clear-signed `index.sjson` (naming the
/// `.sjson` products file) and products `.sjson`, as signed mirrors publish them.
pub fn write_stream(
    opts: &GenOptions,
    root: &Path,
    sign_key: Option<&SigningKey>,
) -> Result<(Stream, Written), Error> {
    let mut written = Written::default();
    let stream = generate(opts, |rel, body| {
        written.item_files += 1;
        write_file(root, rel, body, &mut written)
    })?;
    let products_json = stream.products.to_vec_pretty();
    let products_path = Stream::products_path();
    let documents = [
        (
            "streams/v1/index.json".to_string(),
            stream.index.to_vec_pretty(),
        ),
        (products_path.clone(), products_json.clone()),
    ];
    for (rel, body) in &documents {
        write_file(root, rel, body, &mut written)?;
        written.metadata.push(rel.clone());
    }
    if let Some(key) = sign_key {
        let signed_path = products_path.replace(".json", ".sjson");
        let mut signed_index = stream.index.clone();
        for entry in signed_index.index.values_mut() {
            entry.fields.insert("path".into(), json!(signed_path));
        }
        let signed = [
            (
                "streams/v1/index.sjson".to_string(),
                clearsign(&signed_index.to_vec_pretty(), key)?,
            ),
            (signed_path.clone(), clearsign(&products_json, key)?),
        ];
        for (rel, body) in &signed {
            write_file(root, rel, body, &mut written)?;
            written.metadata.push(rel.clone());
        }
    }
    Ok((stream, written))
}
