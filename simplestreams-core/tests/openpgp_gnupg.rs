//! Interoperability with real GnuPG in both directions: our signatures verify with `gpgv` and
//! `gpg --verify`, GnuPG's verify with us; subkeys, passphrases, revocation and expiry.
//!
//! Needs `gpg`, `gpgv` and `gpgconf` (Debian packages `gnupg` and `gpgv`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use pgp::composed::{ArmorOptions, Deserializable, DetachedSignature, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::types::{KeyDetails, Password, Timestamp};
use simplestreams_core::openpgp::{
    clearsign, sign_detached, verify_clearsigned, verify_detached, Keyring, SigningKey,
};

/// Trailing spaces and tabs, lines starting with `-` (dash escaping), an escaped-looking line,
/// a `From ` line, a CR LF line and an empty line: everything clear-signing must get right.
const CONTENT: &[u8] =
    b"{\n  \"a\": 1,   \n\t\"b\": \"x\"\t\n-----BEGIN PGP SIGNATURE-----\n- not escaped yet\nFrom here\r\n\n-\n}\n";
/// `CONTENT` as a verifier returns it: trailing whitespace removed, LF line endings.
const PAYLOAD: &[u8] =
    b"{\n  \"a\": 1,\n\t\"b\": \"x\"\n-----BEGIN PGP SIGNATURE-----\n- not escaped yet\nFrom here\n\n-\n}\n";

/// A throw-away GnuPG home; its agent is stopped on drop.
struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        let home = tempfile::Builder::new().prefix("gpg").tempdir().unwrap();
        std::fs::set_permissions(
            home.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        Gpg { home }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.arg("--homedir").arg(self.home.path());
        cmd
    }

    /// Runs `gpg --batch ARGS` (stdin from `input`), asserting success.
    fn gpg(&self, args: &[&str], input: Option<&[u8]>) -> Output {
        let out = self.try_gpg(args, input);
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn try_gpg(&self, args: &[&str], input: Option<&[u8]>) -> Output {
        let mut cmd = self.command("gpg");
        cmd.args(["--batch", "--no-tty", "--pinentry-mode", "loopback"])
            .args(args);
        run(cmd, input)
    }

    /// Generates a key, returning its fingerprint. `extra` goes before the command (e.g. a
    /// faked clock); `usage` and `expire` as for `--quick-gen-key`.
    fn gen_key(
        &self,
        uid: &str,
        algo: &str,
        usage: &str,
        expire: &str,
        passphrase: &str,
        extra: &[&str],
    ) -> String {
        let mut args = extra.to_vec();
        args.extend([
            "--passphrase",
            passphrase,
            "--quick-gen-key",
            uid,
            algo,
            usage,
            expire,
        ]);
        self.gpg(&args, None);
        self.fingerprint(uid)
    }

    fn fingerprint(&self, uid: &str) -> String {
        self.fingerprints(uid).remove(0)
    }

    /// Fingerprints of the primary key and then its subkeys.
    fn fingerprints(&self, uid: &str) -> Vec<String> {
        let out = self.gpg(&["--with-colons", "--list-keys", uid], None);
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("fpr:"))
            .map(|l| l.trim_matches(':').to_owned())
            .collect()
    }

    fn export_secret(&self, fpr: &str, passphrase: &str) -> Vec<u8> {
        self.gpg(
            &[
                "--passphrase",
                passphrase,
                "--armor",
                "--export-secret-keys",
                fpr,
            ],
            None,
        )
        .stdout
    }

    /// A binary keyring (`gpg --export`), as `gpgv --keyring` and the reference take.
    fn export_keyring(&self, fpr: &str) -> PathBuf {
        let path = self.path(&format!("{fpr}.gpg"));
        let out = self.gpg(&["--export", fpr], None);
        std::fs::write(&path, &out.stdout).unwrap();
        path
    }

    /// `gpgv --keyring K ARGS`: the verifier the reference uses.
    fn gpgv(&self, keyring: &Path, args: &[&Path]) -> Output {
        let mut cmd = self.command("gpgv");
        cmd.arg("--keyring").arg(keyring).args(args);
        run(cmd, None)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = self.command("gpgconf").args(["--kill", "all"]).status();
    }
}

fn run(mut cmd: Command, input: Option<&[u8]>) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (install gnupg and gpgv)"));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.unwrap_or_default()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn assert_gpgv_good(gpg: &Gpg, keyring: &Path, args: &[&Path], fpr: &str) {
    let out = gpg.gpgv(keyring, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "gpgv {args:?}: {stderr}");
    assert!(stderr.contains("Good signature"), "{stderr}");
    assert!(
        stderr.contains(&fpr[fpr.len() - 16..]),
        "{stderr} should name {fpr}"
    );
}

#[test]
fn our_signatures_verify_with_gpgv_and_gpg_and_with_us() {
    let gpg = Gpg::new();
    let fpr = gpg.gen_key(
        "Ours <ours@example.invalid>",
        "ed25519",
        "sign",
        "never",
        "",
        &[],
    );
    let key = SigningKey::from_armored(&gpg.export_secret(&fpr, ""), None, "ours.sec.asc").unwrap();
    assert_eq!(key.fingerprint(), fpr);
    let keyring_path = gpg.export_keyring(&fpr);
    let keyring = Keyring::from_bytes(&std::fs::read(&keyring_path).unwrap(), "ours.gpg").unwrap();

    let signed = clearsign(CONTENT, &key).unwrap();
    let text = String::from_utf8(signed.clone()).unwrap();
    assert!(
        text.starts_with("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n{\n"),
        "{text}"
    );
    assert!(
        text.contains("\n- -----BEGIN PGP SIGNATURE-----\n- - not escaped yet\n"),
        "{text}"
    );
    let sjson = gpg.write("doc.sjson", &signed);
    assert_gpgv_good(&gpg, &keyring_path, &[&sjson], &fpr);
    let out = gpg.gpg(&["--verify", sjson.to_str().unwrap()], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Good signature"));
    // What GnuPG extracts is what we return, after the trailing whitespace it ignores.
    let extracted = gpg
        .gpg(&["--decrypt", sjson.to_str().unwrap()], None)
        .stdout;
    assert_eq!(
        String::from_utf8_lossy(&extracted),
        String::from_utf8_lossy(PAYLOAD)
    );

    let verified = verify_clearsigned(&signed, &keyring, "doc.sjson").unwrap();
    assert_eq!(verified.payload, PAYLOAD);
    assert_eq!(verified.signer.fingerprint, fpr);
    assert_eq!(verified.signer.user_ids, ["Ours <ours@example.invalid>"]);

    let detached = sign_detached(CONTENT, &key).unwrap();
    assert!(detached.starts_with(b"-----BEGIN PGP SIGNATURE-----"));
    let data = gpg.write("doc.json", CONTENT);
    let sig = gpg.write("doc.json.gpg", &detached);
    assert_gpgv_good(&gpg, &keyring_path, &[&sig, &data], &fpr);
    verify_detached(CONTENT, &detached, &keyring, "doc.json").unwrap();
    // A detached signature covers the exact bytes, trailing whitespace included.
    let mut changed = CONTENT.to_vec();
    changed.insert(1, b' ');
    assert!(verify_detached(&changed, &detached, &keyring, "doc.json").is_err());
    let changed_path = gpg.write("changed.json", &changed);
    assert!(!gpg
        .gpgv(&keyring_path, &[&sig, &changed_path])
        .status
        .success());
}

#[test]
fn gnupg_signatures_verify_with_us() {
    let gpg = Gpg::new();
    let fpr = gpg.gen_key(
        "Theirs <theirs@example.invalid>",
        "rsa2048",
        "sign",
        "never",
        "",
        &[],
    );
    let keyring_path = gpg.export_keyring(&fpr);
    let keyring =
        Keyring::from_bytes(&std::fs::read(&keyring_path).unwrap(), "theirs.gpg").unwrap();
    let data = gpg.write("doc.json", CONTENT);
    let data_arg = data.to_str().unwrap();

    for digest in ["SHA512", "SHA256", "SHA1"] {
        let signed = gpg
            .gpg(
                &[
                    "--digest-algo",
                    digest,
                    "--clearsign",
                    "--output",
                    "-",
                    data_arg,
                ],
                None,
            )
            .stdout;
        let verified = verify_clearsigned(&signed, &keyring, "doc.sjson").unwrap();
        assert_eq!(verified.payload, PAYLOAD, "{digest}");
        assert_eq!(verified.signer.hash, digest);
        assert_eq!(verified.signer.fingerprint, fpr);

        // A Hash header that does not match the signature is refused, as GnuPG does.
        let lie = String::from_utf8(signed).unwrap().replacen(
            &format!("Hash: {digest}"),
            "Hash: SHA384",
            1,
        );
        let err = verify_clearsigned(lie.as_bytes(), &keyring, "doc.sjson")
            .unwrap_err()
            .to_string();
        assert!(err.contains("Hash header says SHA384"), "{err}");
        assert!(!gpg
            .gpgv(&keyring_path, &[&gpg.write("lie.sjson", lie.as_bytes())])
            .status
            .success());
    }

    let binary_sig = gpg
        .gpg(&["--detach-sign", "--output", "-", data_arg], None)
        .stdout;
    assert_eq!(binary_sig[0] & 0x80, 0x80, "binary signature expected");
    verify_detached(CONTENT, &binary_sig, &keyring, "doc.json").unwrap();
    let armored_sig = gpg
        .gpg(
            &["--armor", "--detach-sign", "--output", "-", data_arg],
            None,
        )
        .stdout;
    let signer = verify_detached(CONTENT, &armored_sig, &keyring, "doc.json").unwrap();
    assert_eq!(signer.fingerprint, fpr);
    assert!(!signer.expired);
}

#[test]
fn a_passphrase_protected_key_signs_only_with_its_passphrase() {
    let gpg = Gpg::new();
    let fpr = gpg.gen_key(
        "Locked <locked@example.invalid>",
        "rsa2048",
        "sign",
        "never",
        "s3cret pass",
        &[],
    );
    let secret = gpg.export_secret(&fpr, "s3cret pass");

    let err = SigningKey::from_armored(&secret, None, "locked.asc")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("locked.asc: key: "), "{err}");
    assert!(err.contains("protected by a passphrase"), "{err}");
    let err = SigningKey::from_armored(&secret, Some("wrong"), "locked.asc")
        .unwrap_err()
        .to_string();
    assert!(err.contains("wrong passphrase"), "{err}");

    let key = SigningKey::from_armored(&secret, Some("s3cret pass"), "locked.asc").unwrap();
    let signed = gpg.write("doc.sjson", &clearsign(CONTENT, &key).unwrap());
    assert_gpgv_good(&gpg, &gpg.export_keyring(&fpr), &[&signed], &fpr);
}

#[test]
fn signatures_by_a_signing_subkey_verify_both_ways() {
    let gpg = Gpg::new();
    let uid = "Sub <sub@example.invalid>";
    let fpr = gpg.gen_key(uid, "ed25519", "cert", "never", "", &[]);
    gpg.gpg(
        &[
            "--passphrase",
            "",
            "--quick-add-key",
            &fpr,
            "rsa2048",
            "sign",
            "never",
        ],
        None,
    );
    let fprs = gpg.fingerprints(uid);
    assert_eq!(fprs.len(), 2, "{fprs:?}");
    let subkey_id = &fprs[1][fprs[1].len() - 16..];
    let keyring_path = gpg.export_keyring(&fpr);
    let keyring = Keyring::from_bytes(&std::fs::read(&keyring_path).unwrap(), "sub.gpg").unwrap();

    // GnuPG signs with the subkey; we find it and report both keys.
    let data = gpg.write("doc.json", CONTENT);
    let signed = gpg
        .gpg(
            &[
                "-u",
                &fpr,
                "--clearsign",
                "--output",
                "-",
                data.to_str().unwrap(),
            ],
            None,
        )
        .stdout;
    let verified = verify_clearsigned(&signed, &keyring, "doc.sjson").unwrap();
    assert_eq!(verified.signer.fingerprint, fpr);
    assert_eq!(verified.signer.key_id, subkey_id);
    assert_eq!(verified.signer.signing_fingerprint, fprs[1]);

    // We sign with the subkey too (the primary key may only certify), and gpgv agrees.
    let key = SigningKey::from_armored(&gpg.export_secret(&fpr, ""), None, "sub.asc").unwrap();
    assert_eq!(key.signing_key_id(), subkey_id);
    let ours = gpg.write("ours.sjson", &clearsign(CONTENT, &key).unwrap());
    assert_gpgv_good(&gpg, &keyring_path, &[&ours], &fprs[1]);
}

#[test]
fn a_revoked_subkey_is_refused() {
    let gpg = Gpg::new();
    let uid = "Subrev <subrev@example.invalid>";
    let fpr = gpg.gen_key(uid, "ed25519", "cert", "never", "", &[]);
    gpg.gpg(
        &[
            "--passphrase",
            "",
            "--quick-add-key",
            &fpr,
            "ed25519",
            "sign",
            "never",
        ],
        None,
    );
    let data = gpg.write("doc.json", CONTENT);
    let signed = gpg
        .gpg(
            &[
                "-u",
                &fpr,
                "--clearsign",
                "--output",
                "-",
                data.to_str().unwrap(),
            ],
            None,
        )
        .stdout;
    let subkey = gpg.fingerprints(uid).remove(1);

    // gpg --edit-key: select subkey 1, revoke it (reason 0, no description), save.
    let script = b"key 1\nrevkey\ny\n0\n\ny\nsave\n";
    gpg.gpg(
        &["--passphrase", "", "--command-fd", "0", "--edit-key", &fpr],
        Some(script),
    );
    let keyring =
        Keyring::from_bytes(&std::fs::read(gpg.export_keyring(&fpr)).unwrap(), "k").unwrap();
    let err = verify_clearsigned(&signed, &keyring, "doc.sjson")
        .unwrap_err()
        .to_string();
    let key_id = &subkey[subkey.len() - 16..];
    assert!(
        err.contains(&format!("subkey {key_id} of key {fpr}")) && err.ends_with("is revoked"),
        "{err}"
    );

    // Nothing is left to sign with: the primary key may only certify.
    let err = SigningKey::from_armored(&gpg.export_secret(&fpr, ""), None, "subrev.asc")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no usable signing key"), "{err}");
}

#[test]
fn a_revoked_key_is_refused() {
    let gpg = Gpg::new();
    let fpr = gpg.gen_key(
        "Revoked <revoked@example.invalid>",
        "ed25519",
        "sign",
        "never",
        "",
        &[],
    );
    let secret = gpg.export_secret(&fpr, "");
    let data = gpg.write("doc.json", CONTENT);
    let signed = gpg
        .gpg(
            &["--clearsign", "--output", "-", data.to_str().unwrap()],
            None,
        )
        .stdout;
    let before =
        Keyring::from_bytes(&std::fs::read(gpg.export_keyring(&fpr)).unwrap(), "k").unwrap();
    verify_clearsigned(&signed, &before, "doc.sjson").unwrap();

    // GnuPG writes a revocation certificate at key generation; importing it revokes the key.
    let cert = std::fs::read_to_string(gpg.path(&format!("openpgp-revocs.d/{fpr}.rev"))).unwrap();
    let cert = cert.replace(
        ":-----BEGIN PGP PUBLIC KEY BLOCK-----",
        "-----BEGIN PGP PUBLIC KEY BLOCK-----",
    );
    gpg.gpg(&["--import"], Some(cert.as_bytes()));
    let revoked =
        Keyring::from_bytes(&std::fs::read(gpg.export_keyring(&fpr)).unwrap(), "k").unwrap();
    let err = verify_clearsigned(&signed, &revoked, "doc.sjson")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "key {fpr} \"Revoked <revoked@example.invalid>\" is revoked"
        )),
        "{err}"
    );

    let both = gpg.export_secret(&fpr, "");
    assert_ne!(both, secret, "the export should now carry the revocation");
    let err = SigningKey::from_armored(&both, None, "revoked.asc")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no usable signing key") && err.contains("revoked"),
        "{err}"
    );
}

#[test]
fn expired_keys_sign_nothing_new_and_old_signatures_stay_good() {
    let gpg = Gpg::new();
    // Made on 2020-01-01, valid for one day.
    let clock = ["--faked-system-time", "20200101T000000"];
    let fpr = gpg.gen_key(
        "Expired <expired@example.invalid>",
        "rsa2048",
        "sign",
        "1d",
        "",
        &clock,
    );
    let keyring_path = gpg.export_keyring(&fpr);
    let keyring =
        Keyring::from_bytes(&std::fs::read(&keyring_path).unwrap(), "expired.gpg").unwrap();
    let data = gpg.write("doc.json", CONTENT);

    let in_time = ["--faked-system-time", "20200101T120000"];
    let mut args = in_time.to_vec();
    args.extend(["--clearsign", "--output", "-", data.to_str().unwrap()]);
    let signed = gpg.gpg(&args, None).stdout;
    let verified = verify_clearsigned(&signed, &keyring, "doc.sjson").unwrap();
    assert!(verified.signer.expired);
    assert_eq!(
        verified.signer.key_expires.unwrap().to_rfc3339(),
        "2020-01-02T00:00:00+00:00"
    );
    // gpgv agrees it is a good signature by an expired key.
    let out = gpg.gpgv(&keyring_path, &[&gpg.write("doc.sjson", &signed)]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Good signature"));

    // A signature dated after the expiry (GnuPG will not make one; the pgp crate will).
    let secret = gpg.export_secret(&fpr, "");
    let after = signature_at(&secret, 1_580_000_000, CONTENT); // 2020-01-26
    let err = verify_detached(CONTENT, &after, &keyring, "doc.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("but key") && err.contains("expired 2020-01-02 00:00:00 UTC"),
        "{err}"
    );
    // And one dated before the key existed.
    let before = signature_at(&secret, 1_500_000_000, CONTENT); // 2017
    let err = verify_detached(CONTENT, &before, &keyring, "doc.json")
        .unwrap_err()
        .to_string();
    assert!(err.contains("is older than the key"), "{err}");
    // Still within the validity period: accepted, and reported as expired.
    let during = signature_at(&secret, 1_577_840_000, CONTENT);
    assert!(
        verify_detached(CONTENT, &during, &keyring, "doc.json")
            .unwrap()
            .expired
    );

    let err = SigningKey::from_armored(&secret, None, "expired.asc")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no usable signing key") && err.contains("expired"),
        "{err}"
    );
}

/// A detached binary signature over `data` by the primary key of `secret`, claiming to be made
/// at `secs` since the epoch.
fn signature_at(secret: &[u8], secs: u32, data: &[u8]) -> Vec<u8> {
    let (key, _) = SignedSecretKey::from_armor_single(secret).unwrap();
    let mut config = SignatureConfig::v4(
        SignatureType::Binary,
        key.primary_key.algorithm(),
        HashAlgorithm::Sha256,
    );
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
            secs,
        )))
        .unwrap(),
        Subpacket::regular(SubpacketData::IssuerFingerprint(
            key.primary_key.fingerprint(),
        ))
        .unwrap(),
    ];
    let sig = config
        .sign(&key.primary_key, &Password::empty(), data)
        .unwrap();
    DetachedSignature::new(sig)
        .to_armored_bytes(ArmorOptions::default())
        .unwrap()
}
