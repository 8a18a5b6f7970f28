//! Reading one checksum file under the signature policy: as a `.sjson` is, a clear-signed
//! checksum file (Fedora's `*-CHECKSUM`) is verified in place; otherwise a detached signature
//! beside it (`SHA256SUMS.gpg` as Ubuntu publishes it, `.sign`, `.asc`) is. When the policy
//! checks signatures (a keyring was given), one of the two is required.

use std::time::SystemTime;

use simplestreams_core::openpgp;
use simplestreams_core::sums::{
    looks_like_html, payload_first_line, ChecksumFile, SumsError, SIGNATURE_SUFFIXES,
};

use super::sums_err;
use crate::error::{Error, Result};
use crate::metadata::{MetadataLimits, MetadataReader, SignatureMode, SignaturePolicy};
use crate::source::Source;

/// A checksum file as read.
#[derive(Debug, Clone)]
pub(crate) struct ReadSums {
    /// Its entries.
    pub file: ChecksumFile,
    /// Its `Last-Modified`, when the source said.
    pub modified: Option<SystemTime>,
}

/// Reads the checksum file at `path` (its file name is the last component) from `files`.
pub(crate) async fn read_checksum_file(
    files: &std::sync::Arc<dyn Source>,
    path: &str,
    policy: &SignaturePolicy,
    limits: MetadataLimits,
) -> Result<ReadSums> {
    // Read as it is (decoded, size-capped); the checks are ours.
    let reader = MetadataReader::new(files.clone(), SignaturePolicy::off()).with_limits(limits);
    let raw_file = reader.read(path).await?;
    let url = raw_file.url.clone();
    let raw = raw_file.raw;
    if looks_like_html(&raw) {
        return Err(sums_err(SumsError::Html { file: url }));
    }
    let modified = raw_file
        .validators
        .last_modified
        .as_deref()
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v.trim()).ok())
        .map(SystemTime::from);
    let name = path.rsplit('/').next().unwrap_or(path);
    let keyring = match policy.mode {
        SignatureMode::Off => None,
        _ => Some(policy.keyring.clone().ok_or_else(|| {
            Error::from(simplestreams_core::Error::Signature {
                file: url.clone(),
                reason: "no keyring to verify it with (give --keyring K, or --no-verify)".into(),
            })
        })?),
    };
    let clearsigned = openpgp::is_clearsigned(&raw);
    let first_line = payload_first_line(&raw);
    let (payload, signer) = match (&keyring, clearsigned) {
        (None, true) => {
            tracing::info!("{url}: signature not checked (no --keyring)");
            (openpgp::strip_clearsigned(&raw, &url)?, None)
        }
        (None, false) => (raw.to_vec(), None),
        (Some(k), true) => {
            let v = openpgp::verify_clearsigned(&raw, k, &url)?;
            (v.payload, Some(v.signer))
        }
        (Some(k), false) => {
            let mut found = None;
            for suffix in SIGNATURE_SUFFIXES {
                let sig_path = format!("{path}{suffix}");
                match reader.read(&sig_path).await {
                    Ok(sig) => {
                        let signer = openpgp::verify_detached(&raw, &sig.raw, k, &url)?;
                        found = Some(signer);
                        break;
                    }
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => return Err(e),
                }
            }
            let Some(signer) = found else {
                return Err(simplestreams_core::Error::Signature {
                    file: url,
                    reason: format!(
                        "not signed: not clear-signed, and no {name}.gpg, {name}.sign or \
                         {name}.asc beside it, but --keyring requires a signature \
                         (--no-verify reads it unchecked)"
                    ),
                }
                .into());
            };
            (raw.to_vec(), Some(signer))
        }
    };
    if let Some(s) = &signer {
        if s.expired {
            tracing::warn!(
                "{url}: good signature from {}, a key that has since expired",
                s.fingerprint
            );
        }
        tracing::info!(
            "{url}: good signature from {} {}",
            s.fingerprint,
            s.user_id()
        );
    }
    let file = ChecksumFile::parse(&payload, name, &url, first_line).map_err(sums_err)?;
    Ok(ReadSums { file, modified })
}
