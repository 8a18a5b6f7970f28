//! Making clear-signed (`.sjson`) and detached (`.json.gpg`) signatures with a secret key.

use pgp::composed::{ArmorOptions, Deserializable, DetachedSignature, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{
    SecretKey, SecretSubkey, SignatureConfig, SignatureType, Subpacket, SubpacketData,
};
use pgp::types::{KeyDetails, KeyVersion, Password, SecretParams, Timestamp};

use super::cleartext::{assemble, prepare};
use super::keyring::{fingerprint_hex, key_id_hex, Candidate, Keyring};
use super::now_secs;
use super::validity::usable;
use crate::error::{Error, Result};

/// The hash of every signature we make: what GnuPG's `--personal-digest-preferences` for
/// simplestreams publishers and the `signed-cases` fixtures use.
const HASH: HashAlgorithm = HashAlgorithm::Sha512;

/// A secret key ready to sign, unlocked in memory.
///
/// Signs with the newest usable signing subkey, else the primary key (as GnuPG chooses), and
/// refuses keys that are revoked or expired.
pub struct SigningKey {
    signer: Signer,
    public: Keyring,
    fingerprint: String,
    signing_key_id: String,
    source_name: String,
}

enum Signer {
    Primary(SecretKey),
    Subkey(SecretSubkey),
}

impl std::fmt::Debug for SigningKey {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("fingerprint", &self.fingerprint)
            .field("signing_key_id", &self.signing_key_id)
            .field("source_name", &self.source_name)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads an ASCII-armored secret key (`gpg --export-secret-keys --armor`), unlocking it
    /// with `passphrase` if it is protected. `source_name` names the key in errors.
    pub fn from_armored(
        bytes: &[u8],
        passphrase: Option<&str>,
        source_name: &str,
    ) -> Result<SigningKey> {
        let err = |reason: String| Error::Key {
            source_name: source_name.to_owned(),
            reason,
        };
        let (secret, _headers) = SignedSecretKey::from_armor_single(bytes).map_err(|e| {
            err(format!(
                "not an armored OpenPGP secret key: {}",
                super::one_line(&e)
            ))
        })?;
        let public = Keyring::from_certs(vec![secret.to_public_key()], source_name);
        let cert = &public.certs[0];

        // Newest subkey first, the primary key last; the first usable one signs.
        let mut order: Vec<Option<usize>> = (0..cert.public_subkeys.len()).map(Some).collect();
        order.sort_by_key(|i| {
            std::cmp::Reverse(i.map(|i| cert.public_subkeys[i].key.created_at().as_secs()))
        });
        order.push(None);
        let now = now_secs();
        let mut reasons = Vec::new();
        let mut chosen = None;
        for subkey in order {
            let is_signing_subkey = subkey.is_none_or(|i| {
                cert.public_subkeys[i]
                    .signatures
                    .iter()
                    .any(|s| s.key_flags().sign())
            });
            if !is_signing_subkey {
                continue;
            }
            match usable(Candidate { cert, subkey }, now) {
                Ok(_) => {
                    chosen = Some(subkey);
                    break;
                }
                Err(reason) => reasons.push(reason),
            }
        }
        let Some(chosen) = chosen else {
            return Err(err(format!(
                "no usable signing key: {}",
                reasons.join("; ")
            )));
        };

        let password = Password::from(passphrase.unwrap_or(""));
        let unlock_err = |e: pgp::errors::Error, encrypted: bool| {
            if !encrypted {
                err(format!(
                    "cannot read the secret key: {}",
                    super::one_line(&e)
                ))
            } else if passphrase.is_none() {
                err(
                    "the secret key is protected by a passphrase; give it (--passphrase-file)"
                        .into(),
                )
            } else {
                err("wrong passphrase".into())
            }
        };
        let signer = match chosen {
            None => {
                let mut key = secret.primary_key.clone();
                let encrypted = matches!(key.secret_params(), SecretParams::Encrypted(_));
                key.remove_password(&password)
                    .map_err(|e| unlock_err(e, encrypted))?;
                Signer::Primary(key)
            }
            Some(i) => {
                let public_sub = &cert.public_subkeys[i].key;
                let Some(sub) = secret
                    .secret_subkeys
                    .iter()
                    .find(|s| s.key.fingerprint() == public_sub.fingerprint())
                else {
                    return Err(err(format!(
                        "the secret part of signing subkey {} is missing",
                        key_id_hex(public_sub)
                    )));
                };
                let mut key = sub.key.clone();
                let encrypted = matches!(key.secret_params(), SecretParams::Encrypted(_));
                key.remove_password(&password)
                    .map_err(|e| unlock_err(e, encrypted))?;
                Signer::Subkey(key)
            }
        };
        let signing_key_id = match &signer {
            Signer::Primary(k) => key_id_hex(k),
            Signer::Subkey(k) => key_id_hex(k),
        };
        Ok(SigningKey {
            fingerprint: fingerprint_hex(&cert.primary_key),
            signer,
            signing_key_id,
            public,
            source_name: source_name.to_owned(),
        })
    }

    /// Fingerprint of the primary key (upper-case hex).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Key ID of the key that signs (primary or subkey), 16 upper-case hex digits.
    pub fn signing_key_id(&self) -> &str {
        &self.signing_key_id
    }

    /// The public half, to verify our own signatures or to publish beside a stream.
    pub fn public_keyring(&self) -> &Keyring {
        &self.public
    }

    /// The public key, ASCII-armored, for publishing (`gpg --import`-able).
    pub fn public_key_armored(&self) -> Result<Vec<u8>> {
        self.public.certs[0]
            .to_armored_bytes(ArmorOptions::default())
            .map_err(|e| {
                self.key_err(format!(
                    "cannot export the public key: {}",
                    super::one_line(&e)
                ))
            })
    }

    fn key_err(&self, reason: String) -> Error {
        Error::Key {
            source_name: self.source_name.clone(),
            reason,
        }
    }

    fn sign(&self, typ: SignatureType, data: &[u8]) -> Result<pgp::packet::Signature> {
        let result = match &self.signer {
            Signer::Primary(k) => make_signature(k, typ, data),
            Signer::Subkey(k) => make_signature(k, typ, data),
        };
        result.map_err(|e| self.key_err(format!("signing failed: {}", super::one_line(&e))))
    }
}

/// Clear-signs `data` (SHA-512), as `gpg --clearsign` does: trailing spaces and tabs are removed
/// from every line first (they are not covered by a cleartext signature, RFC 9580 §7.2), lines
/// starting with `-` are dash-escaped, and the output uses LF line endings.
pub fn clearsign(data: &[u8], key: &SigningKey) -> Result<Vec<u8>> {
    let (signed_text, body) = prepare(data);
    let sig = key.sign(SignatureType::Text, &signed_text)?;
    let block = DetachedSignature::new(sig)
        .to_armored_bytes(ArmorOptions::default())
        .map_err(|e| {
            key.key_err(format!(
                "cannot armor the signature: {}",
                super::one_line(&e)
            ))
        })?;
    Ok(assemble(&body, &HASH.to_string(), &block))
}

/// A detached, ASCII-armored signature (SHA-512) over exactly the bytes of `data`, as
/// `gpg --armor --detach-sign` makes.
pub fn sign_detached(data: &[u8], key: &SigningKey) -> Result<Vec<u8>> {
    let sig = key.sign(SignatureType::Binary, data)?;
    DetachedSignature::new(sig)
        .to_armored_bytes(ArmorOptions::default())
        .map_err(|e| {
            key.key_err(format!(
                "cannot armor the signature: {}",
                super::one_line(&e)
            ))
        })
}

fn make_signature<K: pgp::types::SigningKey>(
    key: &K,
    typ: SignatureType,
    data: &[u8],
) -> pgp::errors::Result<pgp::packet::Signature> {
    let mut config = match key.version() {
        KeyVersion::V6 => SignatureConfig::v6(rand::thread_rng(), typ, key.algorithm(), HASH)?,
        _ => SignatureConfig::v4(typ, key.algorithm(), HASH),
    };
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::now()))?,
        Subpacket::regular(SubpacketData::IssuerFingerprint(key.fingerprint()))?,
    ];
    // Older verifiers find the key by this; RFC 9580 forbids it in v6 signatures.
    if key.version() <= KeyVersion::V4 {
        config.unhashed_subpackets = vec![Subpacket::regular(SubpacketData::IssuerKeyId(
            key.legacy_key_id(),
        ))?];
    }
    config.sign(key, &Password::empty(), data)
}
