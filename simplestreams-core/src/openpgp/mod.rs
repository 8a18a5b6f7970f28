//! OpenPGP: verifying and making clear-signed (`.sjson`) and detached (`.json.gpg`) signatures,
//! in-process (the `pgp` crate), interoperable with GnuPG in both directions.
//!
//! - [`Keyring::from_bytes`] reads public keys: binary (`/usr/share/keyrings/*.gpg`,
//!   `gpg --export`) or armored, several keys per file; [`Keyring::merge`] combines files.
//! - [`verify_clearsigned`] checks an `.sjson` document and returns its [`Verified`] payload (the
//!   JSON) and [`SignerInfo`]; [`verify_detached`] checks `X.json.gpg` over `X.json`.
//! - [`is_clearsigned`], [`strip_clearsigned`] (the payload unverified, for `--no-verify`) and
//!   [`ClearSigned::parse`] (framing only, never panics) do no cryptography.
//! - [`SigningKey::from_armored`], [`clearsign`] and [`sign_detached`] make signatures that
//!   `gpgv` accepts (SHA-512).
//!
//! # Policy
//! - **Subkeys**: a signature by a subkey is accepted when the subkey is bound to its primary
//!   key, flagged for signing and cross-certified (back-signature), as GnuPG requires.
//! - **Revoked** keys and subkeys are refused, whenever and why ever they were revoked.
//! - **Expired** keys: a signature made while the key was valid is accepted, and reported with
//!   [`SignerInfo::expired`] set so callers can warn (GnuPG does the same: "Good signature",
//!   status `EXPKEYSIG`). A signature dated at or after the key's expiry, or before the key
//!   existed, is refused. Signature dates come from the signer's clock, so this protects against
//!   honest mistakes, not against a thief of an expired key who backdates signatures; revoke
//!   keys that may be compromised.
//! - **Weak hashes**: MD5 signatures are refused (GnuPG refuses them too).
//! - **Cleartext**: only `Hash` armor headers are allowed and must name the signature's hash;
//!   unescaped lines starting with `-` and data after the signature block are refused, so the
//!   payload is always exactly the text that was verified.
//!
//! ```
//! use simplestreams_core::openpgp::{is_clearsigned, strip_clearsigned, Keyring, verify_clearsigned};
//!
//! let doc = b"{\"format\": \"index:1.0\"}\n";
//! assert!(!is_clearsigned(doc));
//! // Nothing verifies against an empty keyring, and unsigned content is refused.
//! let err = verify_clearsigned(doc, &Keyring::new(), "index.sjson").unwrap_err();
//! assert!(err.to_string().starts_with("index.sjson: signature: no signature"));
//! assert!(strip_clearsigned(doc, "index.sjson").is_err());
//! ```

mod armor;
mod cleartext;
pub mod keygen;
mod keyring;
mod sign;
mod validity;
mod verify;

pub use cleartext::{is_clearsigned, strip_clearsigned, ClearSigned};
pub use keyring::Keyring;
pub use sign::{clearsign, sign_detached, SigningKey};
pub use verify::{verify_clearsigned, verify_detached, SignerInfo, Verified};

/// Seconds since the Unix epoch, now (0 if the clock is before 1970).
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An error of the `pgp` crate as a short line: some of its messages span several lines, and
/// some carry parser internals that mean nothing to a user: a nom error listing the rest of the
/// input as decimal bytes (`armor header Error(Error { input: [34, 115, …], code: Tag })`), an
/// assertion's operands (`assertion failed: `(left == right)` left: `[27, 98]`, right: …`).
/// Those are left out, and what remains is cut at 160 characters.
fn one_line(e: &impl std::fmt::Display) -> String {
    let mut text = e
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(start) = text.find("assertion failed") {
        // The operands end at the last backquote; the words after it say what was checked.
        let end = text[start..]
            .rfind('`')
            .map_or(text.len(), |i| start + i + 1);
        let after = text[end..].trim_start_matches([':', ',', ' ']).to_owned();
        text.replace_range(start.., &after);
    }
    if let Some(cut) = ["Error(Error", "Error {", "input: ["]
        .iter()
        .filter_map(|marker| text.find(marker))
        .min()
    {
        text.truncate(cut);
    }
    let text = text.trim_end_matches([':', ',', '(', ' ']);
    let mut short: String = text.chars().take(160).collect();
    if text.chars().count() > 160 {
        short.push('…');
    }
    if short.is_empty() {
        short.push_str("no details");
    }
    short
}

/// `2023-02-24 13:05:00 UTC`, for messages.
fn format_time(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{secs} seconds after 1970"))
}
