//! Whether a key could make a given signature: self-signatures, subkey bindings, revocation
//! and expiry, following RFC 9580 §5.2.3 and §10 and GnuPG's observable behaviour.
//!
//! Policy (documented in the module docs of `openpgp`):
//! - a revoked key or subkey is refused, whatever the reason and date of the revocation;
//! - a signature made while the key was valid is accepted after the key expired, reported with
//!   `expired: true` (GnuPG: `EXPKEYSIG`, "Good signature" with a note);
//! - a signature dated after the key's expiry, or before the key's creation, is refused;
//! - a subkey must be bound by the primary key, flagged for signing and carry the subkey's
//!   back-signature; a primary key whose self-signature has key flags must have the sign flag.

use pgp::composed::SignedPublicKey;
use pgp::packet::{Signature, SignatureType, SubpacketData};
use pgp::types::{KeyDetails, Tag};

use super::keyring::{fingerprint_hex, key_id_hex, Candidate};

/// What we know about a key that is fit to have made a signature.
#[derive(Debug, Clone)]
pub(crate) struct Usable {
    pub fingerprint: String,
    pub signing_fingerprint: String,
    pub key_id: String,
    pub user_ids: Vec<String>,
    /// Seconds since the epoch, when the key (or the subkey, whichever first) expires.
    pub expires: Option<u64>,
}

/// Checks that `candidate` may have made a signature at `sig_time` (seconds since the epoch).
/// The error is a sentence for the user.
pub(crate) fn usable(candidate: Candidate<'_>, sig_time: u64) -> Result<Usable, String> {
    let cert = candidate.cert;
    let primary = &cert.primary_key;
    let user_ids = valid_user_ids(cert);
    let who = describe(cert, &user_ids);

    if cert
        .details
        .revocation_signatures
        .iter()
        .any(|s| s.verify_key(primary).is_ok())
    {
        return Err(format!("key {who} is revoked"));
    }
    let Some(self_sig) = latest_self_signature(cert) else {
        return Err(format!("key {who} has no valid self-signature"));
    };
    let mut expires = expiry(u64::from(primary.created_at().as_secs()), self_sig);

    let (created, key_id, signing_fingerprint) = match candidate.subkey {
        None => {
            if has_key_flags(self_sig) && !self_sig.key_flags().sign() {
                return Err(format!("key {who} is not marked for signing"));
            }
            (
                primary.created_at(),
                key_id_hex(primary),
                fingerprint_hex(primary),
            )
        }
        Some(i) => {
            let Some(sub) = cert.public_subkeys.get(i) else {
                return Err(format!("key {who}: subkey {i} not found"));
            };
            let sub_id = key_id_hex(&sub.key);
            let revoked = sub.signatures.iter().any(|s| {
                s.typ() == Some(SignatureType::SubkeyRevocation)
                    && s.verify_subkey_binding(primary, &sub.key).is_ok()
            });
            if revoked {
                return Err(format!("subkey {sub_id} of key {who} is revoked"));
            }
            let binding = sub
                .signatures
                .iter()
                .filter(|s| {
                    s.typ() == Some(SignatureType::SubkeyBinding)
                        && s.verify_subkey_binding(primary, &sub.key).is_ok()
                })
                .max_by_key(|s| s.created().map(|t| t.as_secs()));
            let Some(binding) = binding else {
                return Err(format!("subkey {sub_id} is not validly bound to key {who}"));
            };
            if !binding.key_flags().sign() {
                return Err(format!(
                    "subkey {sub_id} of key {who} is not marked for signing"
                ));
            }
            // The back-signature proves the subkey's owner agreed to the binding; without it
            // anyone could bind someone else's signing key to their certificate.
            let back_signed = binding
                .embedded_signature()
                .is_some_and(|back| back.verify_primary_key_binding(&sub.key, primary).is_ok());
            if !back_signed {
                return Err(format!(
                    "subkey {sub_id} of key {who} has no valid back-signature (cross-certification)"
                ));
            }
            let sub_expires = expiry(u64::from(sub.key.created_at().as_secs()), binding);
            expires = match (expires, sub_expires) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (sub.key.created_at(), sub_id, fingerprint_hex(&sub.key))
        }
    };

    if sig_time < u64::from(created.as_secs()) {
        return Err(format!(
            "the signature ({}) is older than the key {key_id} that made it ({}): clock problem or forgery",
            super::format_time(sig_time),
            super::format_time(u64::from(created.as_secs()))
        ));
    }
    if let Some(expires) = expires {
        if sig_time >= expires {
            return Err(format!(
                "the signature was made {} but key {who} expired {}",
                super::format_time(sig_time),
                super::format_time(expires)
            ));
        }
    }
    Ok(Usable {
        fingerprint: fingerprint_hex(primary),
        signing_fingerprint,
        key_id,
        user_ids,
        expires,
    })
}

/// `FINGERPRINT "first user id"`, for messages.
pub(crate) fn describe(cert: &SignedPublicKey, user_ids: &[String]) -> String {
    match user_ids.first() {
        Some(uid) => format!("{} \"{uid}\"", fingerprint_hex(&cert.primary_key)),
        None => fingerprint_hex(&cert.primary_key),
    }
}

/// User IDs with a valid self-certification and no valid self-revocation, primary first.
pub(crate) fn valid_user_ids(cert: &SignedPublicKey) -> Vec<String> {
    let primary = &cert.primary_key;
    let mut out: Vec<(bool, String)> = Vec::new();
    for user in &cert.details.users {
        let mut certified = false;
        let mut revoked = false;
        for sig in user.signatures.iter().filter(|s| issued_by(s, primary)) {
            if sig
                .verify_certification(primary, Tag::UserId, &user.id)
                .is_ok()
            {
                if sig.typ() == Some(SignatureType::CertRevocation) {
                    revoked = true;
                } else {
                    certified = true;
                }
            }
        }
        if certified && !revoked {
            out.push((
                user.is_primary(),
                String::from_utf8_lossy(user.id.id()).into_owned(),
            ));
        }
    }
    // Stable: keeps file order among non-primary IDs.
    out.sort_by_key(|(is_primary, _)| !is_primary);
    out.into_iter().map(|(_, uid)| uid).collect()
}

/// The newest valid self-signature on the primary key: a user ID certification or a direct-key
/// signature. Its key flags and expiry are the key's current ones.
fn latest_self_signature(cert: &SignedPublicKey) -> Option<&Signature> {
    let primary = &cert.primary_key;
    let certifications = cert.details.users.iter().flat_map(|user| {
        user.signatures.iter().filter(move |s| {
            s.typ() != Some(SignatureType::CertRevocation)
                && issued_by(s, primary)
                && s.verify_certification(primary, Tag::UserId, &user.id)
                    .is_ok()
        })
    });
    let direct = cert
        .details
        .direct_signatures
        .iter()
        .filter(|s| s.typ() == Some(SignatureType::Key) && s.verify_key(primary).is_ok());
    certifications
        .chain(direct)
        .max_by_key(|s| s.created().map(|t| t.as_secs()))
}

/// Whether `sig` names `key` as its issuer (or names no issuer): checking a third party's
/// certification with our key would only fail, slowly.
fn issued_by(sig: &Signature, key: &dyn KeyDetails) -> bool {
    let ids = sig.issuer_key_id();
    let fps = sig.issuer_fingerprint();
    (ids.is_empty() && fps.is_empty())
        || ids.iter().any(|id| **id == key.legacy_key_id())
        || fps.iter().any(|fp| **fp == key.fingerprint())
}

fn has_key_flags(sig: &Signature) -> bool {
    sig.config().is_some_and(|c| {
        c.hashed_subpackets()
            .any(|p| matches!(p.data, SubpacketData::KeyFlags(_)))
    })
}

/// The expiry (seconds since the epoch) a self-signature gives a key created at `created`;
/// a zero or absent key expiration time means never.
fn expiry(created: u64, sig: &Signature) -> Option<u64> {
    let secs = sig.key_expiration_time()?.as_secs();
    (secs != 0).then(|| created + u64::from(secs))
}
