//! Every OpenPGP error is one short line naming the file and saying what is wrong: garbled or
//! cut armor, unreadable packets, a bad signature, a garbled key. Found by a hostile-input sweep:
//! these used to print the `pgp` crate's internals (the rest of the input as hundreds of decimal
//! bytes, `armor header Error(Error { input: [34, 115, …`; `assertion failed: (left == right)`).

use simplestreams_core::openpgp::{verify_clearsigned, verify_detached, Keyring};
use simplestreams_core::Error;
use simplestreams_testutil::fixture;

const KEY: &str = "signed-cases/valid-key/test-signing-key.pub.asc";
const SIGNED: &str = "signed-cases/valid-key/minimal/streams/v1/index.sjson";
const FILE: &str = "mirror/streams/v1/index.sjson";

fn read(rel: &str) -> Vec<u8> {
    let path = fixture(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn keys() -> Keyring {
    Keyring::from_bytes(&read(KEY), KEY).unwrap()
}

/// The signed fixture's lines, and the index of its `-----BEGIN PGP SIGNATURE-----` line.
fn signed_lines() -> (Vec<String>, usize) {
    let text = String::from_utf8(read(SIGNED)).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let begin = lines
        .iter()
        .position(|l| l == "-----BEGIN PGP SIGNATURE-----")
        .expect("a signature block");
    (lines, begin)
}

fn changed(edit: impl FnOnce(&mut Vec<String>, usize)) -> Vec<u8> {
    let (mut lines, begin) = signed_lines();
    edit(&mut lines, begin);
    (lines.join("\n") + "\n").into_bytes()
}

/// The message of a signature error on `FILE`, checked to be one short, clean line.
fn signature_error(bytes: &[u8]) -> String {
    let err = verify_clearsigned(bytes, &keys(), FILE).unwrap_err();
    assert!(matches!(err, Error::Signature { .. }), "{err:?}");
    clean_line(err.to_string())
}

fn clean_line(message: String) -> String {
    for internal in [
        "[34,",
        "input: [",
        "Error(",
        "assertion failed",
        "left == right",
        "code: ",
    ] {
        assert!(!message.contains(internal), "pgp internals in: {message}");
    }
    assert!(!message.contains('\n'), "not one line: {message}");
    assert!(
        message.len() < 300,
        "too long ({}): {message}",
        message.len()
    );
    message
}

#[test]
fn the_fixture_verifies_before_it_is_garbled() {
    verify_clearsigned(&changed(|_, _| {}), &keys(), FILE).unwrap();
}

#[test]
fn a_garbled_armor_line_names_the_file_the_line_and_the_text() {
    let bytes = changed(|lines, begin| lines[begin + 3] = "\"sjson\": \"x\",".into());
    let line = signed_lines().1 + 4;
    assert_eq!(
        signature_error(&bytes),
        format!(
            "{FILE}: signature: the signature block is not valid OpenPGP armor: line {line}: \
             not base64 (`\"sjson\": \"x\",`)"
        )
    );
    // The first data line (the pgp crate then complained about the armor footer).
    let bytes = changed(|lines, begin| lines[begin + 2] = "\"s".into());
    let message = signature_error(&bytes);
    assert!(
        message.ends_with(&format!("line {}: not base64 (`\"s`)", begin_line() + 2)),
        "{message}"
    );
}

fn begin_line() -> usize {
    signed_lines().1 + 1
}

#[test]
fn broken_armor_structure_is_one_clear_line() {
    let cases: Vec<(Vec<u8>, String)> = vec![
        // No blank line after the BEGIN line.
        (
            changed(|lines, begin| {
                lines.remove(begin + 1);
            }),
            format!(
                "line {}: no blank line between the armor headers and the data",
                begin_line() + 1
            ),
        ),
        // A header that is not one.
        (
            changed(|lines, begin| lines[begin + 1] = "Version x".into()),
            format!(
                "line {}: not an armor header (`Version x`)",
                begin_line() + 1
            ),
        ),
        // Nothing between BEGIN and END.
        (
            changed(|lines, begin| {
                let end = lines.len() - 1;
                lines.drain(begin + 1..end);
            }),
            format!("line {}: the block holds no data", begin_line() + 1),
        ),
        // A data line cut in the middle of a base64 quantum.
        (
            changed(|lines, begin| {
                let l = &mut lines[begin + 8];
                l.truncate(l.len() - 3);
                lines.remove(begin + 9);
            }),
            "the base64 data is cut short".to_string(),
        ),
    ];
    for (bytes, expected) in cases {
        let message = signature_error(&bytes);
        assert!(
            message.starts_with(&format!(
                "{FILE}: signature: the signature block is not valid OpenPGP armor: "
            )),
            "{message}"
        );
        assert!(
            message.ends_with(&expected),
            "{message} should end with {expected}"
        );
    }
}

#[test]
fn a_signature_block_cut_short_says_so_in_one_line() {
    // Whole base64 lines dropped: the armor is well formed, the packet inside is cut.
    let bytes = changed(|lines, begin| {
        let end = lines.len() - 1;
        lines.drain(begin + 4..end);
    });
    let message = signature_error(&bytes);
    assert!(
        message.starts_with(&format!(
            "{FILE}: signature: the signature block holds no readable OpenPGP signature: its \
             data is cut short or corrupt"
        )),
        "{message}"
    );
}

#[test]
fn a_bad_signature_says_what_it_means_without_pgp_internals() {
    let keys = keys();
    // The text changed after signing.
    let text = String::from_utf8(read(SIGNED)).unwrap();
    let tampered = text.replacen("\"updated\": \"", "\"updated\": \"X", 1);
    assert_ne!(tampered, text);
    let err = verify_clearsigned(tampered.as_bytes(), &keys, FILE).unwrap_err();
    let message = clean_line(err.to_string());
    assert!(
        message.starts_with(&format!("{FILE}: signature: BAD signature from key ")),
        "{message}"
    );
    assert!(
        message.ends_with(
            "(the text was changed after signing, the signature is corrupt, or another key \
             made it)"
        ),
        "{message}"
    );
    // The tampered fixture, and a signature whose bytes were changed (the armor still valid).
    let message = clean_line(
        verify_clearsigned(&read("signed-cases/tampered/download.sjson"), &keys, FILE)
            .unwrap_err()
            .to_string(),
    );
    assert!(message.contains("BAD signature from key "), "{message}");
    let flipped = changed(|lines, begin| {
        let l = &mut lines[begin + 5];
        let first = if l.starts_with('A') { "B" } else { "A" };
        l.replace_range(..1, first);
    });
    let message = signature_error(&flipped);
    assert!(message.contains("BAD signature from key "), "{message}");
}

#[test]
fn a_garbled_detached_signature_is_one_clear_line() {
    let keys = keys();
    let cases: [(&[u8], &str); 4] = [
        (
            b"\"sjson\": junk\n",
            "the signature is neither OpenPGP armor (-----BEGIN PGP SIGNATURE-----) nor binary \
             OpenPGP data",
        ),
        (
            b"-----BEGIN PGP SIGNATURE-----\n\n\"s\n-----END PGP SIGNATURE-----\n",
            "the signature block is not valid OpenPGP armor: line 3: not base64 (`\"s`)",
        ),
        (
            b"-----BEGIN PGP SIGNATURE-----\n\niQEzBAEBCgAd\n",
            "the signature block is not valid OpenPGP armor: line 3: the block has no \
             -----END PGP SIGNATURE----- line",
        ),
        (
            b"\x88\x01",
            "the signature is not a readable OpenPGP signature: its data is cut short or corrupt",
        ),
    ];
    for (signature, expected) in cases {
        let err = verify_detached(b"{}\n", signature, &keys, "x.json").unwrap_err();
        let message = clean_line(err.to_string());
        assert!(
            message.starts_with(&format!("x.json: signature: {expected}")),
            "{message}"
        );
    }
}

#[test]
fn a_garbled_public_key_is_one_clear_line() {
    let text = String::from_utf8(read(KEY)).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let data = lines.iter().position(|l| l.is_empty()).unwrap() + 2;
    lines[data] = "\"not\": \"base64\"";
    let garbled = lines.join("\n") + "\n";
    let err = Keyring::from_bytes(garbled.as_bytes(), "keys/test.asc").unwrap_err();
    let message = clean_line(err.to_string());
    assert_eq!(
        message,
        format!(
            "keys/test.asc: key: armor block 1 is not valid OpenPGP armor: line {}: not base64 \
             (`\"not\": \"base64\"`)",
            data + 1
        )
    );
}
