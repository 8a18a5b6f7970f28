//! Reading metadata files: conditional fetches, and the signature policy (SPEC §6).

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use simplestreams_core::openpgp::{self, Keyring};

use crate::error::{Error, Result};
use crate::source::Source;
use crate::store::{collect, GetOptions, GetResult, Validators};
use crate::target::{State, Target};

/// How signatures are handled, as the reference does by default: when the entry path is a
/// `.sjson`, every file read must be clear-signed and is verified against `keyring` (unless
/// `verify` is off, `--no-verify`); a `.json` entry is read as is (a clear-signed file met there
/// is unwrapped, unverified).
#[derive(Debug, Clone)]
pub struct SignaturePolicy {
    /// Verify signatures (`--no-verify`/`-U` turns it off).
    pub verify: bool,
    /// The keys to verify with (`--keyring`).
    pub keyring: Option<Arc<Keyring>>,
}

impl Default for SignaturePolicy {
    fn default() -> Self {
        SignaturePolicy {
            verify: true,
            keyring: None,
        }
    }
}

impl SignaturePolicy {
    /// The JSON inside a metadata file, checking its signature as the policy says.
    pub fn open(&self, file: &str, raw: &[u8], signed_stream: bool) -> Result<Vec<u8>> {
        self.payload(file, raw, signed_stream).map(Cow::into_owned)
    }

    /// [`SignaturePolicy::open`] without copying: an unsigned file read as unsigned is its own
    /// JSON, shared rather than copied (a products file of 60,000 items is 26 MB).
    pub(crate) fn open_shared(
        &self,
        file: &str,
        raw: &Bytes,
        signed_stream: bool,
    ) -> Result<Bytes> {
        Ok(match self.payload(file, raw, signed_stream)? {
            Cow::Borrowed(_) => raw.clone(),
            Cow::Owned(json) => Bytes::from(json),
        })
    }

    /// The policy itself: borrowed when the file is its own payload (unsigned, read as such).
    fn payload<'r>(&self, file: &str, raw: &'r [u8], signed_stream: bool) -> Result<Cow<'r, [u8]>> {
        let is_signed = openpgp::is_clearsigned(raw);
        if !signed_stream {
            return match is_signed {
                true => Ok(Cow::Owned(openpgp::strip_clearsigned(raw, file)?)),
                false => Ok(Cow::Borrowed(raw)),
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
            return Ok(Cow::Owned(openpgp::strip_clearsigned(raw, file)?));
        }
        let Some(keyring) = &self.keyring else {
            return Err(simplestreams_core::Error::Signature {
                file: file.into(),
                reason: "no keyring to verify it with (give --keyring K, or --no-verify)".into(),
            }
            .into());
        };
        let verified = openpgp::verify_clearsigned(raw, keyring, file)?;
        let signer = &verified.signer;
        if signer.expired {
            tracing::warn!(
                "{file}: good signature from {}, a key that has since expired",
                signer.fingerprint
            );
        }
        tracing::info!(
            "{file}: good signature from {} {}",
            signer.fingerprint,
            signer.user_id()
        );
        Ok(Cow::Owned(verified.payload))
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
