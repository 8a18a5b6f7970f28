//! OpenPGP verification against real signed data: Canonical's 2016 Ubuntu streams, the
//! python-simplestreams examples signed with its (now expired) test key, and the signed-cases.

use std::path::{Path, PathBuf};
use std::process::Command;

use simplestreams_core::openpgp::{
    is_clearsigned, strip_clearsigned, verify_clearsigned, verify_detached, Keyring,
};
use simplestreams_core::{Document, Error};
use simplestreams_testutil::{fixture, reference_bin_dir};

const UBUNTU_KEY: &str = "ubuntu-2016/keys/ubuntu-cloud-image-builder-476CF100.pub.asc";

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn keyring(rel: &str) -> Keyring {
    Keyring::from_bytes(&read(&fixture(rel)), rel).unwrap()
}

/// Every file under `dir` (recursively) whose name ends with `suffix`, sorted.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                out.push(path);
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no *{suffix} under {}", dir.display());
    out
}

/// What the reference (python-simplestreams `read_signed`, unverified) parses from `path`,
/// re-serialised as JSON.
fn reference_payload(path: &Path) -> serde_json::Value {
    let python = reference_bin_dir().join("python");
    let out = Command::new(&python)
        .args([
            "-c",
            "import json, sys\nfrom simplestreams.util import read_signed\n\
             print(json.dumps(json.loads(read_signed(open(sys.argv[1]).read(), checked=False))))",
        ])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn ubuntu_2016_streams_verify_with_the_armored_key_and_match_the_reference_payload() {
    let keys = keyring(UBUNTU_KEY);
    assert_eq!(
        keys.fingerprints(),
        ["4A3CE3CD565D7EB5C810E2B97FF3F408476CF100"]
    );
    for path in files(&fixture("ubuntu-2016/streams/v1"), ".sjson") {
        let bytes = read(&path);
        assert!(is_clearsigned(&bytes));
        let name = path.to_string_lossy();
        let verified = verify_clearsigned(&bytes, &keys, &name).unwrap();
        assert_eq!(
            verified.signer.fingerprint,
            "4A3CE3CD565D7EB5C810E2B97FF3F408476CF100"
        );
        assert_eq!(verified.signer.key_id, "7FF3F408476CF100");
        assert!(
            verified
                .signer
                .user_id()
                .starts_with("Ubuntu Cloud Image Builder"),
            "{:?}",
            verified.signer
        );
        assert!(!verified.signer.expired);
        assert_eq!(verified.signer.hash, "SHA512");
        // The payload is the document, exactly as the reference reads it.
        Document::from_slice(&verified.payload, &name).unwrap();
        let ours: serde_json::Value = serde_json::from_slice(&verified.payload).unwrap();
        assert_eq!(ours, reference_payload(&path), "{name}");
        assert_eq!(strip_clearsigned(&bytes, &name).unwrap(), verified.payload);
    }
}

#[test]
fn ubuntu_2016_streams_verify_with_a_binary_keyring_made_by_gpg_dearmor() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let binary = dir.path().join("ubuntu-cloudimage-keyring.gpg");
    let status = Command::new("gpg")
        .arg("--homedir")
        .arg(dir.path())
        .arg("--output")
        .arg(&binary)
        .arg("--dearmor")
        .arg(fixture(UBUNTU_KEY))
        .status()
        .expect("gpg (package gnupg) must be installed");
    assert!(status.success());
    let bytes = read(&binary);
    assert_ne!(bytes[0] & 0x80, 0, "gpg --dearmor must give binary packets");
    let keys = Keyring::from_bytes(&bytes, "ubuntu-cloudimage-keyring.gpg").unwrap();
    assert_eq!(keys.fingerprints(), keyring(UBUNTU_KEY).fingerprints());
    let path = fixture("ubuntu-2016/streams/v1/com.ubuntu.cloud:released:download.sjson");
    let verified = verify_clearsigned(&read(&path), &keys, "download.sjson").unwrap();
    assert_eq!(
        verified.signer.fingerprint,
        "4A3CE3CD565D7EB5C810E2B97FF3F408476CF100"
    );
    assert!(verified.payload.len() > 2_000_000);
}

#[test]
fn signed_cases_valid_key_verify() {
    let keys = keyring("signed-cases/valid-key/test-signing-key.pub.asc");
    let fingerprint = keys.fingerprints().remove(0);
    for path in files(&fixture("signed-cases/valid-key"), ".sjson") {
        let name = path.to_string_lossy();
        let verified = verify_clearsigned(&read(&path), &keys, &name).unwrap();
        assert_eq!(verified.signer.fingerprint, fingerprint);
        assert!(!verified.signer.expired);
        let ours: serde_json::Value = serde_json::from_slice(&verified.payload).unwrap();
        assert_eq!(ours, reference_payload(&path), "{name}");
    }
}

#[test]
fn a_tampered_document_is_a_bad_signature() {
    let keys = keyring("signed-cases/valid-key/test-signing-key.pub.asc");
    let bytes = read(&fixture("signed-cases/tampered/download.sjson"));
    let err = verify_clearsigned(&bytes, &keys, "tampered/download.sjson").unwrap_err();
    let Error::Signature { file, reason } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(file, "tampered/download.sjson");
    assert!(reason.starts_with("BAD signature from key "), "{reason}");
    // Without checking, the (tampered) payload is still readable, as with --no-verify.
    let payload = strip_clearsigned(&bytes, "tampered").unwrap();
    assert!(String::from_utf8(payload).unwrap().contains("products:1.1"));
}

#[test]
fn a_signature_by_a_key_not_in_the_keyring_names_the_key_id() {
    let signer = keyring("signed-cases/valid-key/test-signing-key.pub.asc")
        .fingerprints()
        .remove(0);
    let key_id = &signer[signer.len() - 16..];
    let path = fixture("signed-cases/valid-key/minimal/streams/v1/index.sjson");
    let err = verify_clearsigned(&read(&path), &keyring(UBUNTU_KEY), "index.sjson").unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("index.sjson: signature: unknown key: no public key for key ID "),
        "{message}"
    );
    assert!(message.contains(key_id), "{message} should name {key_id}");
    assert!(
        message.contains(UBUNTU_KEY),
        "{message} should name the keyring"
    );
}

#[test]
fn an_expired_key_is_accepted_for_signatures_made_before_it_expired_and_reported() {
    let keys = keyring("signed-cases/expired-key/example.pub.asc");
    for path in files(&fixture("signed-cases/expired-key"), ".sjson")
        .into_iter()
        .chain(files(&fixture("python-examples-signed"), ".sjson"))
    {
        let name = path.to_string_lossy();
        let verified = verify_clearsigned(&read(&path), &keys, &name).unwrap();
        let signer = &verified.signer;
        assert!(signer.expired, "{name}: {signer:?}");
        let expires = signer.key_expires.expect("the example key has an expiry");
        assert!(signer.created < expires, "{signer:?}");
        assert!(expires < chrono::Utc::now());
        assert!(
            signer.user_id().contains("Simple Streams Test User"),
            "{signer:?}"
        );
        let ours: serde_json::Value = serde_json::from_slice(&verified.payload).unwrap();
        assert_eq!(ours, reference_payload(&path), "{name}");
    }
}

#[test]
fn detached_signatures_cover_the_unsigned_json_of_python_examples() {
    let keys = keyring("python-examples/keys/example.pub");
    let signed_dir = fixture("python-examples-signed");
    for sig_path in files(&signed_dir, ".json.gpg") {
        let rel = sig_path
            .strip_prefix(&signed_dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let json_rel = rel.trim_end_matches(".gpg");
        let data = read(&fixture(&format!("python-examples/{json_rel}")));
        let signature = read(&sig_path);
        let signer = verify_detached(&data, &signature, &keys, json_rel).unwrap();
        assert!(signer.expired);
        // One changed byte breaks it.
        let mut changed = data.clone();
        changed[0] ^= 0x20;
        let err = verify_detached(&changed, &signature, &keys, json_rel)
            .unwrap_err()
            .to_string();
        assert!(err.contains("BAD signature"), "{err}");
    }
}

#[test]
fn keyrings_hold_several_keys_in_one_file_and_merge() {
    let mut both = read(&fixture(UBUNTU_KEY));
    both.extend(read(&fixture(
        "signed-cases/valid-key/test-signing-key.pub.asc",
    )));
    let keys = Keyring::from_bytes(&both, "both.asc").unwrap();
    assert_eq!(keys.len(), 2);
    for rel in [
        "ubuntu-2016/streams/v1/index.sjson",
        "signed-cases/valid-key/minimal/streams/v1/index.sjson",
    ] {
        verify_clearsigned(&read(&fixture(rel)), &keys, rel).unwrap();
    }

    let mut merged = keyring(UBUNTU_KEY);
    merged.merge(keyring("keys/cirros-signing-8F4CE6D0.pub.asc"));
    merged.merge(keyring("keys/juju-tools-streams.canonical.com.pub.asc"));
    assert!(merged.len() >= 3);
    assert!(merged.sources().contains("juju-tools"));
    verify_clearsigned(
        &read(&fixture("ubuntu-2016/streams/v1/index.sjson")),
        &merged,
        "index",
    )
    .unwrap();
}

#[test]
fn unreadable_keys_are_key_errors_naming_the_source() {
    for (bytes, expected) in [
        (&b""[..], "empty"),
        (
            &b"{\"not\": \"a key\"}"[..],
            "neither binary OpenPGP data nor an armored",
        ),
        (&[0x99, 0x01, 0x0d, 0x04][..], "cannot read public key"),
    ] {
        let err = Keyring::from_bytes(bytes, "bad.gpg").unwrap_err();
        let Error::Key {
            source_name,
            reason,
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(source_name, "bad.gpg");
        assert!(reason.contains(expected), "{reason}");
    }
    let secret = read(&fixture("signed-cases/valid-key/test-signing-key.sec.asc"));
    let err = Keyring::from_bytes(&secret, "sec.asc")
        .unwrap_err()
        .to_string();
    assert!(err.contains("secret key"), "{err}");
}
