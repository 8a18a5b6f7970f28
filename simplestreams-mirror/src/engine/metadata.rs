//! Reading metadata files: conditional fetches, and the signature policy (SPEC §6).

use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::source::Source;
use crate::store::{collect, GetOptions, GetResult, Validators};
use crate::target::{State, Target};

/// Checks OpenPGP clear-signed metadata. Implemented over the core's OpenPGP module by callers
/// that have a keyring.
pub trait SignatureVerifier: Send + Sync + Debug {
    /// Verifies a clear-signed document; answers its content and who signed it
    /// (a key id or fingerprint, for `-v` output).
    fn verify_clearsigned(&self, file: &str, bytes: &[u8]) -> Result<(Vec<u8>, String)>;
}

/// How signatures are handled, as the reference does by default: when the entry path is a
/// `.sjson`, every file read must be clear-signed and is verified (unless `verify` is off);
/// a `.json` entry is read as is (a clear-signed file found there is unwrapped unverified).
#[derive(Debug, Clone)]
pub struct SignaturePolicy {
    /// Verify signatures (`--no-verify`/`-U` turns it off).
    pub verify: bool,
    /// The verifier built from `--keyring`.
    pub verifier: Option<Arc<dyn SignatureVerifier>>,
}

impl Default for SignaturePolicy {
    fn default() -> Self {
        SignaturePolicy {
            verify: true,
            verifier: None,
        }
    }
}

impl SignaturePolicy {
    /// The JSON inside a metadata file, checking its signature as the policy says.
    pub fn open(&self, file: &str, raw: &[u8], signed_stream: bool) -> Result<Vec<u8>> {
        let is_signed = super::clearsign::is_clearsigned(raw);
        if !signed_stream {
            return match is_signed {
                true => super::clearsign::strip(file, raw),
                false => Ok(raw.to_vec()),
            };
        }
        if !is_signed {
            return Err(simplestreams_core::Error::Signature {
                file: file.into(),
                reason: "not clear-signed, but the stream is read as signed (its entry is .sjson)"
                    .into(),
            }
            .into());
        }
        if !self.verify {
            return super::clearsign::strip(file, raw);
        }
        let Some(verifier) = &self.verifier else {
            return Err(simplestreams_core::Error::Signature {
                file: file.into(),
                reason: "no keyring to verify it with (give --keyring K, or --no-verify)".into(),
            }
            .into());
        };
        let (content, signer) = verifier.verify_clearsigned(file, raw)?;
        tracing::info!("{file}: signature verified, made by {signer}");
        Ok(content)
    }
}

/// A metadata file as fetched.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    /// The bytes as served (signed files byte for byte).
    pub raw: Bytes,
    /// Validators for the next run's conditional request.
    pub validators: Validators,
    /// The server said "not modified": `raw` is the copy already published.
    pub not_modified: bool,
}

/// Fetches a metadata file, conditionally when the target already publishes the copy that the
/// stored validators describe.
pub(crate) async fn fetch(
    source: &dyn Source,
    target: &dyn Target,
    state: &State,
    path: &str,
    conditional: bool,
) -> Result<Fetched> {
    let mut published = None;
    let mut options = GetOptions::default();
    if conditional {
        if let Some(v) = state.validators.get(path).filter(|v| !v.is_empty()) {
            published = target.read_published(path).await?;
            if published.is_some() {
                options.if_not_modified = Some(v.clone());
            }
        }
    }
    match source.get(path, options).await? {
        GetResult::NotModified => match published {
            Some(raw) => Ok(Fetched {
                raw,
                validators: state.validators.get(path).cloned().unwrap_or_default(),
                not_modified: true,
            }),
            None => Err(Error::Aborted(format!(
                "{}: not modified, but no published copy",
                source.url(path)
            ))),
        },
        GetResult::Found { meta, body } => Ok(Fetched {
            raw: collect(body).await?,
            validators: meta.validators,
            not_modified: false,
        }),
    }
}
