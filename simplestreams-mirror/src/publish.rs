//! Publishing metadata into a store, the way every stream we write is published: each file
//! atomically and durably (after the items it names), `.json` for clients that read only JSON
//! beside `.sjson` and `.json.gpg` when signing, the public key beside the stream, and nothing
//! rewritten that already says the same (a no-op run writes nothing; a new signature would
//! differ by its date).

use std::sync::Arc;

use bytes::Bytes;
use simplestreams_core::openpgp::{self, SigningKey};
use simplestreams_core::{
    detached_path, index_for, index_of, json_path, sjson_path, DocumentTexts,
};

use crate::error::{Error, Result};
use crate::metadata::MetadataFile;
use crate::store::{byte_stream, PutOptions, Store, StoreExt};

/// Where the armored public key of a signed stream is published, beside its metadata.
pub const PUBLIC_KEY_PATH: &str = "streams/v1/signing-key.asc";

/// Writes metadata files into a store, signed when it has a key.
#[derive(Debug, Clone)]
pub struct Publisher {
    store: Arc<dyn Store>,
    key: Option<Arc<SigningKey>>,
}

impl Publisher {
    /// A publisher into `store`, unsigned.
    pub fn new(store: Arc<dyn Store>) -> Publisher {
        Publisher { store, key: None }
    }

    /// Signs what it publishes with `key`, when given.
    pub fn signing_with(mut self, key: Option<Arc<SigningKey>>) -> Publisher {
        self.key = key;
        self
    }

    /// The store written to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether it signs.
    pub fn signs(&self) -> bool {
        self.key.is_some()
    }

    /// The path under which a document given as `path` is found by the clients of this
    /// publisher's output: `X.sjson` when it signs, else `X.json`.
    pub fn entry_path(&self, path: &str) -> String {
        if self.signs() {
            sjson_path(path)
        } else {
            json_path(path)
        }
    }

    /// Publishes a document we made (a filtered products file, an index, an image-ids
    /// stream) under the name of `path` (`X.json` or `X.sjson`): `X.json`, and when signing,
    /// `X.sjson`, `X.json.gpg` and the public key. Returns `false` when what is published
    /// already says this (and is signed by this key).
    pub async fn document(&self, path: &str, json: &[u8]) -> Result<bool> {
        self.texts(path, DocumentTexts::of(json, path)?).await
    }

    /// [`Publisher::document`] for a products document the caller made itself (so known to be
    /// valid JSON and not an index): its JSON is not parsed again.
    pub async fn products(&self, path: &str, json: Vec<u8>) -> Result<bool> {
        self.texts(path, DocumentTexts::products(json)).await
    }

    async fn texts(&self, path: &str, texts: DocumentTexts) -> Result<bool> {
        let json_at = json_path(path);
        let sjson_at = sjson_path(path);
        let same_json = self.holds(&json_at, &texts.json).await?;
        let Some(key) = &self.key else {
            if same_json {
                return Ok(false);
            }
            self.put(&json_at, texts.json).await?;
            return Ok(true);
        };
        if same_json
            && self
                .holds_signed(&sjson_at, texts.signed_text(), key)
                .await?
        {
            return Ok(false);
        }
        let files = texts.sign(key, path)?;
        self.put(&json_at, files.json).await?;
        self.put(&detached_path(path), files.detached).await?;
        self.put(&sjson_at, files.sjson).await?;
        self.publish_key(key).await?;
        Ok(true)
    }

    /// Publishes a file of a source as it was read: its bytes, byte for byte, at the path
    /// read; and when they are signed, their JSON beside them as `X.json` (an index naming
    /// `.json` files), so that clients reading only JSON find the stream too. Returns `false`
    /// when both are already there.
    pub async fn verbatim(&self, file: &MetadataFile) -> Result<bool> {
        let mut wrote = false;
        if !self.holds(&file.path, &file.raw).await? {
            self.put(&file.path, file.raw.to_vec()).await?;
            wrote = true;
        }
        if file.is_signed() {
            let json_at = json_path(&file.path);
            if json_at == file.path {
                return Err(Error::Location {
                    location: file.url.clone(),
                    message: "a signed file must be named .sjson: its JSON is published beside \
                              it as .json"
                        .into(),
                });
            }
            let json = match index_of(&file.json, &file.url)? {
                Some(index) => index_for(&index, false).to_vec_pretty(),
                None => file.json.to_vec(),
            };
            if !self.holds(&json_at, &json).await? {
                self.put(&json_at, json).await?;
                wrote = true;
            }
        }
        Ok(wrote)
    }

    /// The JSON of the document published under the name of `path` (its `.json`), if any.
    pub async fn read_json(&self, path: &str) -> Result<Option<Bytes>> {
        self.read(&json_path(path)).await
    }

    async fn read(&self, path: &str) -> Result<Option<Bytes>> {
        match self.store.get_bytes(path).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether `path` holds exactly `bytes` (up to trailing white space).
    async fn holds(&self, path: &str, bytes: &[u8]) -> Result<bool> {
        Ok(self
            .read(path)
            .await?
            .is_some_and(|b| b.trim_ascii_end() == bytes.trim_ascii_end()))
    }

    /// Whether `path` holds `text` clear-signed by `key`.
    async fn holds_signed(&self, path: &str, text: &[u8], key: &SigningKey) -> Result<bool> {
        let Some(published) = self.read(path).await? else {
            return Ok(false);
        };
        Ok(
            openpgp::verify_clearsigned(&published, key.public_keyring(), path)
                .is_ok_and(|v| v.payload.trim_ascii_end() == text.trim_ascii_end()),
        )
    }

    async fn publish_key(&self, key: &SigningKey) -> Result<()> {
        let armored = key.public_key_armored()?;
        if !self.holds(PUBLIC_KEY_PATH, &armored).await? {
            self.put(PUBLIC_KEY_PATH, armored).await?;
        }
        Ok(())
    }

    async fn put(&self, path: &str, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(path, byte_stream(bytes), PutOptions::durable())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::InMemory;

    #[tokio::test]
    async fn an_unsigned_document_is_written_once() {
        let store = InMemory::new();
        let p = Publisher::new(Arc::new(store.clone()));
        let doc = br#"{"format": "products:1.0", "content_id": "c", "products": {}}"#;
        assert!(p
            .document("streams/v1/c.sjson", doc)
            .await
            .expect("publish"));
        assert_eq!(store.paths(), ["streams/v1/c.json"]);
        assert!(!p.document("streams/v1/c.json", doc).await.expect("again"));
        assert_eq!(
            p.read_json("streams/v1/c.sjson")
                .await
                .expect("read")
                .as_deref(),
            Some(&doc[..])
        );
    }
}
