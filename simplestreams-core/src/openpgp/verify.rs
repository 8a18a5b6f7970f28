//! Checking clear-signed and detached signatures against a [`Keyring`].

use chrono::{DateTime, Utc};
use pgp::composed::{Deserializable, DetachedSignature};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType};

use super::armor;
use super::cleartext::ClearSigned;
use super::keyring::Keyring;
use super::validity::{describe, usable, valid_user_ids};
use super::{format_time, now_secs};
use crate::error::{Error, Result};

/// A good clear-signed document: its payload and who signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed text, dash-escaping removed (see [`ClearSigned::payload`]): the JSON.
    pub payload: Vec<u8>,
    /// The key that made the signature.
    pub signer: SignerInfo,
}

/// Who made a good signature, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignerInfo {
    /// Fingerprint of the primary key (upper-case hex), as `gpg` prints it.
    pub fingerprint: String,
    /// Key ID (16 upper-case hex digits) of the key that signed: the primary key or a subkey.
    pub key_id: String,
    /// Fingerprint of the key that signed: the primary key's or a subkey's.
    pub signing_fingerprint: String,
    /// The key's self-certified user IDs, primary first (may be empty).
    pub user_ids: Vec<String>,
    /// When the signature was made (by the signer's clock).
    pub created: DateTime<Utc>,
    /// When the signing key expires or expired, if it does.
    pub key_expires: Option<DateTime<Utc>>,
    /// The key has expired since it made this signature: the signature is accepted (it was made
    /// while the key was valid, as GnuPG accepts it) but callers should warn.
    pub expired: bool,
    /// The signature's hash algorithm (`SHA512`, …).
    pub hash: String,
}

impl SignerInfo {
    /// The first (primary) user ID, or `""` when the key has none.
    pub fn user_id(&self) -> &str {
        self.user_ids.first().map(String::as_str).unwrap_or("")
    }
}

/// Verifies a clear-signed (`.sjson`) document and returns its payload and signer.
///
/// `file` names the document in errors. Fails with [`Error::Signature`] when the content is not
/// clear-signed, the signature is bad, its key is not in `keyring` (the error names the key ID),
/// or the key is revoked, expired before signing, or otherwise unusable; see the
/// [module documentation](super) for the policy.
pub fn verify_clearsigned(bytes: &[u8], keyring: &Keyring, file: &str) -> Result<Verified> {
    let message = ClearSigned::parse(bytes, file)?;
    let signatures = read_signatures(message.signature_block(), message.signature_line(), file)?;
    let signer = check(
        &signatures,
        &message.signed_text(),
        keyring,
        file,
        message.hash_headers(),
    )?;
    Ok(Verified {
        payload: message.payload(),
        signer,
    })
}

/// Verifies a detached signature (`X.json.gpg`, armored or binary) over `data` (`X.json`).
///
/// `file` names the signed data in errors. Same failures and policy as [`verify_clearsigned`].
pub fn verify_detached(
    data: &[u8],
    signature: &[u8],
    keyring: &Keyring,
    file: &str,
) -> Result<SignerInfo> {
    let signatures = read_signatures(signature, 1, file)?;
    check(&signatures, data, keyring, file, &[])
}

/// Reads the signature packets of `bytes` (armored or binary); `first_line` is the line number
/// of `bytes` in its file, for messages.
fn read_signatures(bytes: &[u8], first_line: usize, file: &str) -> Result<Vec<Signature>> {
    let err = |reason: String| Error::Signature {
        file: file.to_owned(),
        reason,
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(err("no signature: the signature is empty".into()));
    }
    let unreadable = |e: pgp::errors::Error| err(unreadable(bytes, first_line, &e));
    let (parsed, _headers) = DetachedSignature::from_reader_many(bytes).map_err(unreadable)?;
    let mut signatures = Vec::new();
    for sig in parsed {
        signatures.push(sig.map_err(unreadable)?.signature);
    }
    if signatures.is_empty() {
        return Err(err("no signature: no signature packet found".into()));
    }
    Ok(signatures)
}

/// Why the `pgp` crate could not read a signature, on one line: the armor's first problem and
/// its line when the armor is at fault, otherwise the packet problem in short.
fn unreadable(bytes: &[u8], first_line: usize, e: &pgp::errors::Error) -> String {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or_default();
    if bytes[start..].starts_with(b"-----") {
        if let Some((line, what)) = armor::problem(bytes) {
            return format!(
                "the signature block is not valid OpenPGP armor: line {}: {what}",
                first_line + line - 1
            );
        }
        return format!(
            "the signature block holds no readable OpenPGP signature: its data is cut short or \
             corrupt ({})",
            super::one_line(e)
        );
    }
    if bytes[start] & 0x80 == 0 {
        // Binary OpenPGP packets start with a byte with the high bit set.
        return "the signature is neither OpenPGP armor (-----BEGIN PGP SIGNATURE-----) nor \
                binary OpenPGP data"
            .into();
    }
    format!(
        "the signature is not a readable OpenPGP signature: its data is cut short or corrupt ({})",
        super::one_line(e)
    )
}

/// Accepts when one signature is good and made by a usable key; otherwise explains each.
fn check(
    signatures: &[Signature],
    data: &[u8],
    keyring: &Keyring,
    file: &str,
    hash_headers: &[String],
) -> Result<SignerInfo> {
    let now = now_secs();
    let mut reasons = Vec::new();
    for sig in signatures {
        match check_one(sig, data, keyring, hash_headers, now) {
            Ok(info) => return Ok(info),
            Err(reason) => reasons.push(reason),
        }
    }
    Err(Error::Signature {
        file: file.to_owned(),
        reason: reasons.join("; "),
    })
}

fn check_one(
    sig: &Signature,
    data: &[u8],
    keyring: &Keyring,
    hash_headers: &[String],
    now: u64,
) -> Result<SignerInfo, String> {
    if !matches!(sig.typ(), Some(SignatureType::Binary | SignatureType::Text)) {
        return Err(format!("not a document signature (type {:?})", sig.typ()));
    }
    let hash = sig.hash_alg().unwrap_or(HashAlgorithm::None);
    if matches!(hash, HashAlgorithm::None | HashAlgorithm::Md5) {
        return Err(format!("the signature uses the broken hash {hash}"));
    }
    let hash_name = hash.to_string();
    if !hash_headers.is_empty()
        && !hash_headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&hash_name))
    {
        return Err(format!(
            "the signature uses {hash_name} but the message's Hash header says {}",
            hash_headers.join(",")
        ));
    }
    let Some(created) = sig.created().map(|t| u64::from(t.as_secs())) else {
        return Err("the signature has no creation time".into());
    };

    let candidates = keyring.candidates(sig);
    if candidates.is_empty() {
        return Err(unknown_key(sig, keyring));
    }
    let mut reasons = Vec::new();
    for candidate in candidates {
        let verified = match candidate
            .subkey
            .and_then(|i| candidate.cert.public_subkeys.get(i))
        {
            Some(sub) => sig.verify(&sub.key, data),
            None => sig.verify(&candidate.cert.primary_key, data),
        };
        // The `pgp` crate's reason is an internal check (a failed hash-prefix assertion,
        // "verification error") that tells a user nothing more.
        if verified.is_err() {
            let who = describe(candidate.cert, &valid_user_ids(candidate.cert));
            reasons.push(format!(
                "BAD signature from key {who} (the text was changed after signing, the signature \
                 is corrupt, or another key made it)"
            ));
            continue;
        }
        let key = match usable(candidate, created) {
            Ok(key) => key,
            Err(reason) => {
                reasons.push(reason);
                continue;
            }
        };
        if let Some(valid_for) = sig
            .signature_expiration_time()
            .map(|d| u64::from(d.as_secs()))
        {
            if valid_for != 0 && created + valid_for <= now {
                reasons.push(format!(
                    "the signature expired {}",
                    format_time(created + valid_for)
                ));
                continue;
            }
        }
        return Ok(SignerInfo {
            fingerprint: key.fingerprint,
            key_id: key.key_id,
            signing_fingerprint: key.signing_fingerprint,
            user_ids: key.user_ids,
            created: to_datetime(created),
            key_expires: key.expires.map(to_datetime),
            expired: key.expires.is_some_and(|t| t <= now),
            hash: hash_name,
        });
    }
    Err(reasons.join("; "))
}

fn unknown_key(sig: &Signature, keyring: &Keyring) -> String {
    let ids: Vec<String> = sig.issuer_key_id().iter().map(hex::encode_upper).collect();
    let fps: Vec<String> = sig
        .issuer_fingerprint()
        .iter()
        .map(|fp| format!("{fp:X}"))
        .collect();
    let mut who = format!(
        "key ID {}",
        if ids.is_empty() {
            "(none given)".into()
        } else {
            ids.join(",")
        }
    );
    if !fps.is_empty() {
        who.push_str(&format!(" (fingerprint {})", fps.join(",")));
    }
    format!(
        "unknown key: no public key for {who} in {}",
        keyring.sources()
    )
}

fn to_datetime(secs: u64) -> DateTime<Utc> {
    i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or_default()
}
