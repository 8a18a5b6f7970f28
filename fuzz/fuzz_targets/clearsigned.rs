//! Any bytes as a clear-signed (`.sjson`) document: framing, stripping and verification never
//! panic, and a document that verifies has the payload `strip_clearsigned` gives.
//!
//! Keys come from `$SSTREAM_FUZZ_KEYRING` (a key file; scripts/fuzz-smoke sets it to the test
//! and Ubuntu keys) so that seeds with real signatures reach the cryptography.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use simplestreams_core::openpgp::{
    is_clearsigned, strip_clearsigned, verify_clearsigned, ClearSigned, Keyring,
};

fn keyring() -> &'static Keyring {
    static KEYS: OnceLock<Keyring> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys = Keyring::new();
        for path in std::env::var("SSTREAM_FUZZ_KEYRING").unwrap_or_default().split(':') {
            if let Ok(bytes) = std::fs::read(path) {
                if let Ok(more) = Keyring::from_bytes(&bytes, path) {
                    keys.merge(more);
                }
            }
        }
        keys
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = is_clearsigned(data);
    if let Ok(message) = ClearSigned::parse(data, "fuzz.sjson") {
        let _ = message.hash_headers();
        let _ = message.signature_block();
        let _ = message.signed_text();
        let _ = message.payload();
    }
    let stripped = strip_clearsigned(data, "fuzz.sjson");
    if let Ok(verified) = verify_clearsigned(data, keyring(), "fuzz.sjson") {
        match stripped {
            Ok(payload) => assert_eq!(payload, verified.payload, "verified and stripped payloads differ"),
            Err(e) => panic!("verifies but does not strip: {e}"),
        }
    }
});
