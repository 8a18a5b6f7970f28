//! Making a new signing key in-process, for publishers who have none: an OpenPGP v4 key that
//! GnuPG (`gpg`, `gpgv` 2.2 and later) and this crate's [`super::SigningKey`] accept.
//!
//! The default is an Ed25519 key in the v4 "EdDSA legacy" encoding (algorithm 22), the form
//! every GnuPG since 2.1 verifies; RSA 3072 is there for verifiers that predate it. The key is
//! a primary key that certifies and signs, with no subkey (a stream key never encrypts), and
//! no expiry; its user id is `Name <email>`.
//!
//! ```
//! use simplestreams_core::openpgp::keygen::{generate, KeyOptions};
//! use simplestreams_core::openpgp::{clearsign, verify_clearsigned, Keyring, SigningKey};
//!
//! let key = generate(&KeyOptions::new("Example Publisher", "images@example.invalid"))?;
//! let signing = SigningKey::from_armored(&key.secret_armored, None, "new.sec.asc")?;
//! let signed = clearsign(b"{}\n", &signing)?;
//! let keyring = Keyring::from_bytes(&key.public_keyring, "new.gpg")?;
//! let verified = verify_clearsigned(&signed, &keyring, "x.sjson")?;
//! assert_eq!(verified.signer.fingerprint, key.fingerprint);
//! # Ok::<(), simplestreams_core::Error>(())
//! ```

use pgp::composed::{ArmorOptions, KeyType, SecretKeyParamsBuilder, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::ser::Serialize as _;
use pgp::types::CompressionAlgorithm;

use super::keyring::fingerprint_hex;
use crate::error::{Error, Result};

/// The public-key algorithm of a new key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyAlgorithm {
    /// Ed25519, v4 "EdDSA legacy" encoding: small, fast, verified by GnuPG 2.1 and later.
    #[default]
    Ed25519,
    /// RSA with a 3072-bit modulus, for older verifiers (slower to generate: seconds).
    Rsa3072,
}

/// What to make.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyOptions {
    /// The name in the user id (`Name <email>`).
    pub name: String,
    /// The e-mail address in the user id.
    pub email: String,
    /// Protect the secret key with this passphrase (`None`: unprotected, as a key used by an
    /// unattended publisher usually is; keep the file private instead).
    pub passphrase: Option<String>,
    /// The algorithm.
    pub algorithm: KeyAlgorithm,
}

impl std::fmt::Debug for KeyOptions {
    // Never print the passphrase.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyOptions")
            .field("name", &self.name)
            .field("email", &self.email)
            .field("passphrase", &self.passphrase.as_ref().map(|_| "(set)"))
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

impl KeyOptions {
    /// An unprotected Ed25519 key for `name <email>`.
    pub fn new(name: impl Into<String>, email: impl Into<String>) -> KeyOptions {
        KeyOptions {
            name: name.into(),
            email: email.into(),
            passphrase: None,
            algorithm: KeyAlgorithm::default(),
        }
    }

    /// The user id: `Name <email>`.
    pub fn user_id(&self) -> String {
        format!("{} <{}>", self.name, self.email)
    }
}

/// A new key, as the files a publisher keeps and hands out.
#[derive(Clone)]
pub struct GeneratedKey {
    /// The secret key, ASCII-armored (`gpg --armor --export-secret-keys`), protected by the
    /// passphrase when one was given. Keep it private.
    pub secret_armored: Vec<u8>,
    /// The public key, ASCII-armored (`gpg --armor --export`): to publish.
    pub public_armored: Vec<u8>,
    /// The public key as a binary keyring (`gpg --export`): what `gpgv --keyring`, the
    /// reference's `--keyring` and `/usr/share/keyrings/*.gpg` take.
    pub public_keyring: Vec<u8>,
    /// The primary key's fingerprint, upper-case hex.
    pub fingerprint: String,
    /// The user id, `Name <email>`.
    pub user_id: String,
}

impl std::fmt::Debug for GeneratedKey {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("fingerprint", &self.fingerprint)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// Makes a new signing key (see the module). Fails on a user id that GnuPG would misread (an
/// empty name, `<` or `>` in it, an address without `@`), or an empty passphrase given.
pub fn generate(options: &KeyOptions) -> Result<GeneratedKey> {
    let user_id = options.user_id();
    let err = |reason: String| Error::Key {
        source_name: user_id.clone(),
        reason,
    };
    let name = options.name.trim();
    if name.is_empty() || name.contains(['<', '>']) || name.chars().any(char::is_control) {
        return Err(err(
            "the name must be non-empty, without '<', '>' or control characters".into(),
        ));
    }
    let email = options.email.trim();
    if !email.contains('@') || email.contains(['<', '>']) || email.chars().any(char::is_whitespace)
    {
        return Err(err(format!("{email:?} is not an e-mail address")));
    }
    if options.passphrase.as_deref() == Some("") {
        return Err(err(
            "an empty passphrase protects nothing; give none instead".into(),
        ));
    }
    let key_type = match options.algorithm {
        KeyAlgorithm::Ed25519 => KeyType::Ed25519Legacy,
        KeyAlgorithm::Rsa3072 => KeyType::Rsa(3072),
    };
    let params = SecretKeyParamsBuilder::default()
        .key_type(key_type)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(format!("{name} <{email}>"))
        .passphrase(options.passphrase.clone())
        .preferred_hash_algorithms(
            [
                HashAlgorithm::Sha512,
                HashAlgorithm::Sha384,
                HashAlgorithm::Sha256,
            ]
            .into_iter()
            .collect(),
        )
        .preferred_symmetric_algorithms(
            [SymmetricKeyAlgorithm::AES256, SymmetricKeyAlgorithm::AES128]
                .into_iter()
                .collect(),
        )
        .preferred_compression_algorithms(
            [CompressionAlgorithm::ZLIB, CompressionAlgorithm::ZIP]
                .into_iter()
                .collect(),
        )
        .build()
        .map_err(|e| err(format!("bad key parameters: {e}")))?;
    let secret: SignedSecretKey = params
        .generate(rand::thread_rng())
        .map_err(|e| err(format!("key generation failed: {}", super::one_line(&e))))?;
    let public = secret.to_public_key();
    let armor = |r: pgp::errors::Result<Vec<u8>>| {
        r.map_err(|e| err(format!("cannot export the key: {}", super::one_line(&e))))
    };
    Ok(GeneratedKey {
        secret_armored: armor(secret.to_armored_bytes(ArmorOptions::default()))?,
        public_armored: armor(public.to_armored_bytes(ArmorOptions::default()))?,
        public_keyring: armor(public.to_bytes())?,
        fingerprint: fingerprint_hex(&public.primary_key),
        user_id: format!("{name} <{email}>"),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;
    use crate::openpgp::{
        clearsign, sign_detached, verify_clearsigned, verify_detached, Keyring, SigningKey,
    };

    fn gpgv(home: &Path, keyring: &Path, files: &[&Path]) -> std::process::Output {
        Command::new("gpgv")
            .arg("--homedir")
            .arg(home)
            .arg("--keyring")
            .arg(keyring)
            .args(files)
            .output()
            .expect("gpgv (Debian package gpgv) must be installed")
    }

    /// gpgv 2.2 verifies clear-signed and detached signatures made with a generated key,
    /// against the binary keyring, for both algorithms; and it refuses a tampered file.
    #[test]
    fn gpgv_accepts_signatures_of_a_generated_key() {
        for algorithm in [KeyAlgorithm::Ed25519, KeyAlgorithm::Rsa3072] {
            let dir = tempfile::tempdir().unwrap();
            let options = KeyOptions {
                algorithm,
                ..KeyOptions::new("Test Publisher", "publisher@example.invalid")
            };
            let key = generate(&options).unwrap();
            assert_eq!(key.user_id, "Test Publisher <publisher@example.invalid>");
            let keyring = dir.path().join("publisher.gpg");
            std::fs::write(&keyring, &key.public_keyring).unwrap();
            let signing = SigningKey::from_armored(&key.secret_armored, None, "k").unwrap();
            assert_eq!(signing.fingerprint(), key.fingerprint);

            let data = b"{\"format\": \"index:1.0\", \"index\": {}}\n";
            let sjson = dir.path().join("index.sjson");
            std::fs::write(&sjson, clearsign(data, &signing).unwrap()).unwrap();
            let json = dir.path().join("index.json");
            std::fs::write(&json, data).unwrap();
            let sig = dir.path().join("index.json.gpg");
            std::fs::write(&sig, sign_detached(data, &signing).unwrap()).unwrap();

            for files in [vec![sjson.as_path()], vec![sig.as_path(), json.as_path()]] {
                let out = gpgv(dir.path(), &keyring, &files);
                assert!(
                    out.status.success(),
                    "{algorithm:?} {files:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(String::from_utf8_lossy(&out.stderr).contains(
                    "Good signature from \"Test Publisher <publisher@example.invalid>\""
                ));
            }
            std::fs::write(
                &json,
                b"{\"format\": \"index:1.0\", \"index\": {\"x\": {}}}\n",
            )
            .unwrap();
            let out = gpgv(dir.path(), &keyring, &[sig.as_path(), json.as_path()]);
            assert!(!out.status.success(), "a tampered file must fail");

            // And the armored public key reads back as the same key.
            let armored = Keyring::from_bytes(&key.public_armored, "pub.asc").unwrap();
            assert_eq!(
                armored.fingerprints(),
                std::slice::from_ref(&key.fingerprint)
            );
            let v = verify_clearsigned(&std::fs::read(&sjson).unwrap(), &armored, "s").unwrap();
            assert_eq!(v.signer.fingerprint, key.fingerprint);
            verify_detached(data, &std::fs::read(&sig).unwrap(), &armored, "j").unwrap();
        }
    }

    /// A passphrase protects the secret key: without it, or with a wrong one, it does not
    /// unlock; with it, it does.
    #[test]
    fn a_passphrase_protects_the_secret_key() {
        let options = KeyOptions {
            passphrase: Some("correct horse".into()),
            ..KeyOptions::new("P", "p@example.invalid")
        };
        let key = generate(&options).unwrap();
        let text = String::from_utf8(key.secret_armored.clone()).unwrap();
        assert!(text.starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----"));
        let missing = SigningKey::from_armored(&key.secret_armored, None, "k").unwrap_err();
        assert!(
            missing.to_string().contains("protected by a passphrase"),
            "{missing}"
        );
        let wrong = SigningKey::from_armored(&key.secret_armored, Some("nope"), "k").unwrap_err();
        assert!(wrong.to_string().contains("wrong passphrase"), "{wrong}");
        SigningKey::from_armored(&key.secret_armored, Some("correct horse"), "k").unwrap();
    }

    #[test]
    fn user_ids_gnupg_would_misread_are_refused() {
        for (name, email) in [
            ("", "a@b"),
            ("A <x>", "a@b"),
            ("A", "no-at"),
            ("A", "a b@c"),
        ] {
            assert!(
                generate(&KeyOptions::new(name, email)).is_err(),
                "{name:?} {email:?}"
            );
        }
        let empty = KeyOptions {
            passphrase: Some(String::new()),
            ..KeyOptions::new("A", "a@b")
        };
        assert!(generate(&empty).is_err());
    }
}
