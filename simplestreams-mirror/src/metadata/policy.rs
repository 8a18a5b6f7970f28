//! The signature policy of every metadata read (docs/format.md, "Signatures"), in one place.

use std::path::PathBuf;
use std::sync::Arc;

use simplestreams_core::openpgp::{self, Keyring, SignerInfo};

use crate::error::{Error, Result};

/// How signatures are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMode {
    /// Files are read as named; a clear-signed one is unwrapped without being checked
    /// (`--no-verify`, or a `.json` stream read without a keyring, as the reference does).
    Off,
    /// Signed first, as Juju does: for `X.json` the signed sibling `X.sjson` is tried first and
    /// verified; a file without one is read unsigned. A signed file that fails verification is
    /// an error, never a reason to fall back.
    Prefer,
    /// Every file must be clear-signed and verify (a stream whose entry is `.sjson`).
    Require,
}

/// What must be signed, and the keys to check it with.
#[derive(Debug, Clone)]
pub struct SignaturePolicy {
    /// The mode.
    pub mode: SignatureMode,
    /// The trusted keys (needed by [`SignatureMode::Prefer`] and [`SignatureMode::Require`]).
    pub keyring: Option<Arc<Keyring>>,
}

impl Default for SignaturePolicy {
    /// Nothing is checked.
    fn default() -> Self {
        SignaturePolicy::off()
    }
}

impl SignaturePolicy {
    /// Nothing is checked.
    pub fn off() -> SignaturePolicy {
        SignaturePolicy {
            mode: SignatureMode::Off,
            keyring: None,
        }
    }

    /// Every file signed by a key of `keyring`.
    pub fn require(keyring: Arc<Keyring>) -> SignaturePolicy {
        SignaturePolicy {
            mode: SignatureMode::Require,
            keyring: Some(keyring),
        }
    }

    /// Signed siblings preferred and checked against `keyring`.
    pub fn prefer(keyring: Arc<Keyring>) -> SignaturePolicy {
        SignaturePolicy {
            mode: SignatureMode::Prefer,
            keyring: Some(keyring),
        }
    }

    /// The policy the reference tools apply to a stream entered at `entry`, so that existing
    /// scripts keep working: a `.sjson` entry requires signatures; a `.json` entry prefers
    /// them when a keyring is given (`explicit_keyring`) and is read as is otherwise;
    /// `verify == false` (`--no-verify`) turns every check off. `keyring` is asked for only
    /// when a check needs it.
    pub fn for_entry<E>(
        entry: &str,
        verify: bool,
        explicit_keyring: bool,
        keyring: impl FnOnce() -> std::result::Result<Keyring, E>,
    ) -> std::result::Result<SignaturePolicy, E> {
        if !verify {
            return Ok(SignaturePolicy::off());
        }
        if entry.ends_with(".sjson") {
            return Ok(SignaturePolicy::require(Arc::new(keyring()?)));
        }
        if explicit_keyring {
            return Ok(SignaturePolicy::prefer(Arc::new(keyring()?)));
        }
        Ok(SignaturePolicy::off())
    }

    /// The paths to try, in order, for `path`: its signed sibling first under
    /// [`SignatureMode::Prefer`].
    pub(crate) fn candidates(&self, path: &str) -> Vec<String> {
        match (self.mode, path.strip_suffix(".json")) {
            (SignatureMode::Prefer, Some(stem)) => vec![format!("{stem}.sjson"), path.to_string()],
            _ => vec![path.to_string()],
        }
    }

    /// The JSON inside `raw` (the bytes of `path` read from `url`), checked as the policy says;
    /// with the key that signed it when it was verified.
    pub fn open(&self, path: &str, url: &str, raw: &[u8]) -> Result<(Vec<u8>, Option<SignerInfo>)> {
        let signed = openpgp::is_clearsigned(raw);
        let must_verify = match self.mode {
            SignatureMode::Off => false,
            SignatureMode::Require => true,
            // A `.sjson` read under Prefer is the signed sibling: it must verify.
            SignatureMode::Prefer => signed || path.ends_with(".sjson"),
        };
        if !must_verify {
            return if signed {
                Ok((openpgp::strip_clearsigned(raw, url)?, None))
            } else {
                Ok((raw.to_vec(), None))
            };
        }
        if !signed {
            return Err(simplestreams_core::Error::Signature {
                file: url.into(),
                reason: "not clear-signed, but signatures are required (the stream's entry is \
                         .sjson; --no-verify reads it unchecked)"
                    .into(),
            }
            .into());
        }
        let Some(keyring) = &self.keyring else {
            return Err(simplestreams_core::Error::Signature {
                file: url.into(),
                reason: "no keyring to verify it with (give --keyring K, or --no-verify)".into(),
            }
            .into());
        };
        let verified = openpgp::verify_clearsigned(raw, keyring, url)?;
        let signer = verified.signer;
        if signer.expired {
            tracing::warn!(
                "{url}: good signature from {}, a key that has since expired",
                signer.fingerprint
            );
        }
        tracing::info!(
            "{url}: good signature from {} {}",
            signer.fingerprint,
            signer.user_id()
        );
        Ok((verified.payload, Some(signer)))
    }
}

/// Reads keyring files (binary, as `/usr/share/keyrings/*.gpg`, or armored) and merges them.
pub fn load_keyrings(paths: &[PathBuf]) -> Result<Keyring> {
    let mut merged = Keyring::new();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        merged.merge(Keyring::from_bytes(&bytes, &path.display().to_string())?);
    }
    if merged.is_empty() {
        return Err(Error::Location {
            location: paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            message: "no public key in the keyring".into(),
        });
    }
    Ok(merged)
}
