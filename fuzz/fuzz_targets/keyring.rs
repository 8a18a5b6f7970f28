//! Any bytes as key material or a detached signature: reading public keys (binary or armored),
//! secret keys, and checking a detached signature never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simplestreams_core::openpgp::{verify_detached, Keyring, SigningKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(keys) = Keyring::from_bytes(data, "fuzz.gpg") {
        assert_eq!(keys.fingerprints().len(), keys.len());
        let _ = keys.sources();
        let _ = verify_detached(b"{}\n", data, &keys, "fuzz.json.gpg");
    }
    let _ = verify_detached(b"{}\n", data, &Keyring::new(), "fuzz.json.gpg");
    let _ = SigningKey::from_armored(data, None, "fuzz.asc");
});
