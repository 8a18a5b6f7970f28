//! Reading metadata files: from any source, size-capped, `Content-Encoding` decoded, signatures
//! checked by the policy, conditionally when the caller holds a copy.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;
use simplestreams_core::openpgp::SignerInfo;

use super::decode::decode_body;
use super::policy::SignaturePolicy;
use crate::error::{Error, Result};
use crate::source::Source;
use crate::store::{GetOptions, GetResult, Validators};

/// Limits on what a metadata read accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataLimits {
    /// The largest metadata file read, in bytes, before and after decoding. Default 256 MiB:
    /// Ubuntu's largest products file is about 30 MB; a file far larger is an attack or a
    /// mistake, and would otherwise be held whole in memory.
    pub max_size: u64,
}

impl Default for MetadataLimits {
    fn default() -> Self {
        MetadataLimits {
            max_size: 256 << 20,
        }
    }
}

/// A metadata file as read.
#[derive(Debug, Clone)]
pub struct MetadataFile {
    /// The path read: the one asked for, or its signed sibling.
    pub path: String,
    /// Its URL, for messages.
    pub url: String,
    /// The bytes as served (a signed file byte for byte, after any `Content-Encoding`).
    pub raw: Bytes,
    /// The JSON (the payload of a signed file).
    pub json: Bytes,
    /// Who signed it, when it was verified.
    pub signer: Option<SignerInfo>,
    /// Validators for a later conditional read.
    pub validators: Validators,
}

impl MetadataFile {
    /// Whether the bytes read are a signed file.
    pub fn is_signed(&self) -> bool {
        simplestreams_core::is_clearsigned(&self.raw)
    }
}

/// The answer to [`MetadataReader::read_if_changed`].
#[derive(Debug)]
pub enum Fetched {
    /// The file, read.
    File(Box<MetadataFile>),
    /// The source still has the copy these validators describe, at `path`.
    NotModified {
        /// The path whose validators matched.
        path: String,
        /// Those validators.
        validators: Validators,
    },
}

/// Reads the metadata of one stream: every tool goes through it, so that signatures, sizes
/// and encodings are handled the same everywhere.
#[derive(Debug, Clone)]
pub struct MetadataReader {
    source: Arc<dyn Source>,
    policy: SignaturePolicy,
    limits: MetadataLimits,
}

impl MetadataReader {
    /// A reader of `source` under `policy`, with the default limits.
    pub fn new(source: Arc<dyn Source>, policy: SignaturePolicy) -> MetadataReader {
        MetadataReader {
            source,
            policy,
            limits: MetadataLimits::default(),
        }
    }

    /// With other limits.
    pub fn with_limits(mut self, limits: MetadataLimits) -> MetadataReader {
        self.limits = limits;
        self
    }

    /// The source read.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// The signature policy.
    pub fn policy(&self) -> &SignaturePolicy {
        &self.policy
    }

    /// Reads `path` (or, under [`super::SignatureMode::Prefer`], its signed sibling first).
    pub async fn read(&self, path: &str) -> Result<MetadataFile> {
        match self.read_if_changed(path, |_| None).await? {
            Fetched::File(f) => Ok(*f),
            Fetched::NotModified { path, .. } => Err(Error::Aborted(format!(
                "{}: not modified without a conditional request",
                self.source.url(&path)
            ))),
        }
    }

    /// Reads `path` unless the source still has the copy that `known(path read)` describes.
    pub async fn read_if_changed(
        &self,
        path: &str,
        known: impl Fn(&str) -> Option<Validators>,
    ) -> Result<Fetched> {
        let candidates = self.policy.candidates(path);
        let last = candidates.len() - 1;
        for (i, candidate) in candidates.iter().enumerate() {
            let validators = known(candidate).filter(|v| !v.is_empty());
            let options = GetOptions {
                if_not_modified: validators.clone(),
                whole_up_to: Some(self.limits.max_size),
                ..GetOptions::default()
            };
            let url = self.source.url(candidate);
            match self.source.get(candidate, options).await {
                Ok(GetResult::NotModified) => {
                    return Ok(Fetched::NotModified {
                        path: candidate.clone(),
                        validators: validators.unwrap_or_default(),
                    })
                }
                Ok(GetResult::Found { meta, body }) => {
                    let raw = collect_capped(body, meta.size, &url, self.limits.max_size).await?;
                    let raw = decode_body(
                        raw,
                        meta.content_encoding.as_deref(),
                        &url,
                        self.limits.max_size,
                    )?;
                    return self
                        .open(candidate, raw, meta.validators)
                        .map(|f| Fetched::File(Box::new(f)));
                }
                Err(e) if e.is_not_found() && i < last => {
                    tracing::info!("{url}: not found; reading {} instead", candidates[i + 1]);
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::NotFound {
            location: self.source.url(path),
        })
    }

    /// Applies the policy to bytes of `path` obtained elsewhere (a copy already published).
    pub fn open(&self, path: &str, raw: Bytes, validators: Validators) -> Result<MetadataFile> {
        let url = self.source.url(path);
        let (json, signer) = self.policy.open(path, &url, &raw)?;
        // An unsigned file is its own JSON: shared, not copied (a products file can be 30 MB).
        let json = if signer.is_none() && json.len() == raw.len() && *json == *raw {
            raw.clone()
        } else {
            Bytes::from(json)
        };
        Ok(MetadataFile {
            path: path.to_string(),
            url,
            raw,
            json,
            signer,
            validators,
        })
    }
}

/// Collects a body, failing as soon as it passes `max` bytes.
async fn collect_capped(
    mut body: crate::store::ByteStream,
    announced: Option<u64>,
    url: &str,
    max: u64,
) -> Result<Bytes> {
    let too_large = || Error::TooLarge {
        location: url.to_string(),
        limit: max,
    };
    if announced.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let capacity = announced.and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
    let mut buf = BytesMut::with_capacity(capacity);
    let mut first: Option<Bytes> = None;
    while let Some(chunk) = body.try_next().await? {
        if (buf.len() + first.as_ref().map_or(0, Bytes::len) + chunk.len()) as u64 > max {
            return Err(too_large());
        }
        // A body in one chunk (a local file, memory) is kept as it is, without a copy.
        if buf.is_empty() && first.is_none() {
            first = Some(chunk);
            continue;
        }
        if let Some(f) = first.take() {
            buf.extend_from_slice(&f);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(match first {
        Some(f) => f,
        None => buf.freeze(),
    })
}
