//! Public keys to verify with: reading keyrings (binary or armored) and finding the key that
//! made a signature.

use std::io::BufReader;

use pgp::composed::{Deserializable, SignedPublicKey, SignedSecretKey};
use pgp::packet::{Packet, PacketParser, Signature};
use pgp::types::KeyDetails;

use crate::error::{Error, Result};

/// A set of OpenPGP public keys (certificates) trusted to sign streams.
///
/// Built from the bytes of key files: binary OpenPGP packets as in `/usr/share/keyrings/*.gpg`
/// or `gpg --export` output (GnuPG trust packets are skipped), or ASCII-armored keys, several
/// keys or several armor blocks in one file. GnuPG's keybox format (`.kbx`) is not read; export
/// from it with `gpg --export`. The crate does no file I/O: callers read the files.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    pub(crate) certs: Vec<SignedPublicKey>,
    sources: Vec<String>,
}

impl Keyring {
    /// An empty keyring: nothing verifies against it.
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Reads one or more public keys. `source_name` (a path, usually) names the keys in errors.
    ///
    /// Fails when the bytes hold no public key, when a key cannot be parsed, or when they hold
    /// a secret key (give the public half: `gpg --export KEYID`).
    pub fn from_bytes(bytes: &[u8], source_name: &str) -> Result<Keyring> {
        let err = |reason: String| Error::Key {
            source_name: source_name.to_owned(),
            reason,
        };
        let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
        let certs = match start.map(|i| bytes[i]) {
            None => return Err(err("empty: no public key".into())),
            // The first octet of a binary packet has its high bit set; armor starts with '-'.
            Some(first) if first & 0x80 != 0 => parse_binary(bytes).map_err(err)?,
            Some(_) => parse_armored(bytes).map_err(err)?,
        };
        if certs.is_empty() {
            return Err(err("no public key found".into()));
        }
        Ok(Keyring {
            certs,
            sources: vec![source_name.to_owned()],
        })
    }

    /// Adds the keys of `other` (as `gpgv --keyring A --keyring B` uses both).
    pub fn merge(&mut self, other: Keyring) {
        self.certs.extend(other.certs);
        self.sources.extend(other.sources);
    }

    /// Number of keys (certificates, each with its subkeys).
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Whether there is no key at all.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// The primary key fingerprints, upper-case hex, in the order read.
    pub fn fingerprints(&self) -> Vec<String> {
        self.certs.iter().map(|c| fingerprint_hex(c)).collect()
    }

    /// Where the keys came from, for messages (`"a.gpg, b.asc"`).
    pub fn sources(&self) -> String {
        if self.sources.is_empty() {
            "(empty keyring)".into()
        } else {
            self.sources.join(", ")
        }
    }

    pub(crate) fn from_certs(certs: Vec<SignedPublicKey>, source_name: &str) -> Keyring {
        Keyring {
            certs,
            sources: vec![source_name.to_owned()],
        }
    }

    /// The keys a signature names as its issuer, by fingerprint or key id; every key when the
    /// signature names none (then the cryptographic check decides).
    pub(crate) fn candidates<'k>(&'k self, sig: &Signature) -> Vec<Candidate<'k>> {
        let ids = sig.issuer_key_id();
        let fps = sig.issuer_fingerprint();
        let named = |k: &dyn KeyDetails| {
            (ids.is_empty() && fps.is_empty())
                || ids.iter().any(|id| **id == k.legacy_key_id())
                || fps.iter().any(|fp| **fp == k.fingerprint())
        };
        let mut out = Vec::new();
        for cert in &self.certs {
            if named(&cert.primary_key) {
                out.push(Candidate { cert, subkey: None });
            }
            for (i, sub) in cert.public_subkeys.iter().enumerate() {
                if named(&sub.key) {
                    out.push(Candidate {
                        cert,
                        subkey: Some(i),
                    });
                }
            }
        }
        out
    }
}

/// A key (primary or subkey) that may have made a signature.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate<'k> {
    pub cert: &'k SignedPublicKey,
    /// Index into `cert.public_subkeys`, or `None` for the primary key.
    pub subkey: Option<usize>,
}

pub(crate) fn fingerprint_hex(key: &dyn KeyDetails) -> String {
    format!("{:X}", key.fingerprint())
}

pub(crate) fn key_id_hex(key: &dyn KeyDetails) -> String {
    hex::encode_upper(key.legacy_key_id())
}

fn parse_binary(bytes: &[u8]) -> Result<Vec<SignedPublicKey>, String> {
    // GnuPG keyrings interleave trust packets, which would end a key early in the parser;
    // marker and padding packets carry nothing. Unsupported packets (old versions, unknown
    // non-critical types) are skipped, as GnuPG does.
    let packets = PacketParser::new(BufReader::new(bytes))
        .filter(|p| {
            !matches!(
                p,
                Ok(Packet::Trust(_) | Packet::Marker(_) | Packet::Padding(_))
                    | Err(pgp::errors::Error::Unsupported { .. })
            )
        })
        .peekable();
    let mut certs = Vec::new();
    for cert in SignedPublicKey::from_packets(packets) {
        certs.push(cert.map_err(|e| {
            format!(
                "cannot read public key {}: {}",
                certs.len() + 1,
                super::one_line(&e)
            )
        })?);
    }
    if certs.is_empty() && starts_secret_key(bytes) {
        return Err(secret_key_given());
    }
    Ok(certs)
}

fn starts_secret_key(bytes: &[u8]) -> bool {
    let mut packets = PacketParser::new(BufReader::new(bytes));
    matches!(packets.next(), Some(Ok(Packet::SecretKey(_))))
}

fn secret_key_given() -> String {
    "this is a secret key; give the public key (gpg --export KEYID) instead".into()
}

fn parse_armored(bytes: &[u8]) -> Result<Vec<SignedPublicKey>, String> {
    const BEGIN: &[u8] = b"-----BEGIN PGP ";
    let mut certs = Vec::new();
    let starts: Vec<usize> = (0..bytes.len())
        .filter(|&i| bytes[i..].starts_with(BEGIN))
        .collect();
    if starts.is_empty() {
        return Err("neither binary OpenPGP data nor an armored PGP PUBLIC KEY BLOCK".into());
    }
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(bytes.len());
        let block = &bytes[start..end];
        if block.starts_with(b"-----BEGIN PGP PRIVATE KEY BLOCK-----") {
            // Say what is wrong rather than "unexpected block type".
            if SignedSecretKey::from_armor_single(block).is_ok() {
                return Err(secret_key_given());
            }
        }
        let (keys, _headers) = SignedPublicKey::from_armor_many(block).map_err(|e| {
            match super::armor::problem(block) {
                Some((line, what)) => format!(
                    "armor block {} is not valid OpenPGP armor: line {}: {what}",
                    n + 1,
                    super::armor::line_of(bytes, start) + line - 1
                ),
                None => format!("armor block {}: {}", n + 1, super::one_line(&e)),
            }
        })?;
        for key in keys {
            certs.push(key.map_err(|e| {
                format!(
                    "armor block {}: cannot read public key: {}",
                    n + 1,
                    super::one_line(&e)
                )
            })?);
        }
    }
    Ok(certs)
}
