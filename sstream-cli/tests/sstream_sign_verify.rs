//! `sstream sign` and `sstream verify` on a stream directory, checked with our verify, with
//! GnuPG's `gpgv`, and with the Python reference's `sstream-query --keyring` (which runs gpgv).
//!
//! Needs `gpg`, `gpgv` and `gpgconf` (Debian packages `gnupg` and `gpgv`) and the reference.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use simplestreams_testutil::{fixture, reference_bin};

const ITEM_FORMAT: &str = "%(content_id)s %(product_name)s %(version_name)s %(item_name)s";

/// A throw-away GnuPG home with one key; its agent is stopped on drop.
struct Gpg {
    home: tempfile::TempDir,
    fpr: String,
}

impl Gpg {
    fn with_key(passphrase: &str) -> Gpg {
        let home = tempfile::Builder::new().prefix("gpg").tempdir().unwrap();
        std::fs::set_permissions(
            home.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let mut gpg = Gpg {
            home,
            fpr: String::new(),
        };
        let uid = "Publisher <publisher@example.invalid>";
        gpg.gpg(&[
            "--passphrase",
            passphrase,
            "--quick-gen-key",
            uid,
            "rsa2048",
            "sign",
            "never",
        ]);
        let listing = text(&gpg.gpg(&["--with-colons", "--list-keys", uid]).stdout);
        gpg.fpr = listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .map(|l| l.trim_matches(':').to_owned())
            .expect("a fingerprint");
        gpg
    }

    fn gpg(&self, args: &[&str]) -> Output {
        let out = Command::new("gpg")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--batch", "--no-tty", "--pinentry-mode", "loopback"])
            .args(args)
            .output()
            .expect("gpg (package gnupg) must be installed");
        assert!(out.status.success(), "gpg {args:?}: {}", text(&out.stderr));
        out
    }

    /// Writes the armored secret key and a binary public keyring; returns their paths.
    fn export(&self, passphrase: &str) -> (PathBuf, PathBuf) {
        let secret = self.home.path().join("publisher.sec.asc");
        std::fs::write(
            &secret,
            self.gpg(&[
                "--passphrase",
                passphrase,
                "--armor",
                "--export-secret-keys",
                &self.fpr,
            ])
            .stdout,
        )
        .unwrap();
        let keyring = self.home.path().join("publisher.gpg");
        std::fs::write(&keyring, self.gpg(&["--export", &self.fpr]).stdout).unwrap();
        (secret, keyring)
    }

    fn gpgv(&self, keyring: &Path, files: &[&Path]) -> Output {
        Command::new("gpgv")
            .arg("--homedir")
            .arg(self.home.path())
            .arg("--keyring")
            .arg(keyring)
            .args(files)
            .output()
            .expect("gpgv (package gpgv) must be installed")
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "all"])
            .status();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn sstream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sstream"))
        .args(args)
        .output()
        .expect("run sstream")
}

fn reference_query(args: &[&str]) -> Output {
    Command::new(reference_bin("sstream-query"))
        .args(args)
        .output()
        .expect("run reference sstream-query")
}

/// A stream directory: the python-simplestreams `foocloud` example (an index and two products
/// files), copied into a temporary directory.
fn make_stream() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let streams = dir.path().join("streams/v1");
    std::fs::create_dir_all(&streams).unwrap();
    let source = fixture("python-examples/foocloud/streams/v1");
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, streams.join(path.file_name().unwrap())).unwrap();
    }
    dir
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn signed_streams_verify_with_us_gpgv_and_the_reference() {
    let gpg = Gpg::with_key("");
    let (secret, keyring) = gpg.export("");
    let stream = make_stream();
    let v1 = stream.path().join("streams/v1");
    let index_json_before = std::fs::read(v1.join("index.json")).unwrap();

    let out = sstream(&["sign", "--secret-key", s(&secret), s(stream.path())]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    // The public key is published beside the stream, and consumers can verify with it.
    let published = v1.join("signing-key.asc");
    assert!(
        stdout.contains(&format!("public key {}", published.display())),
        "{stdout}"
    );
    let out = sstream(&[
        "verify",
        "--keyring",
        s(&published),
        s(&v1.join("index.sjson")),
    ]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        stdout.contains(&format!(
            "index.json -> index.sjson, index.json.gpg (key {})",
            gpg.fpr
        )),
        "{stdout}"
    );

    // The .json index keeps its .json paths; the .sjson one points at signed products only.
    assert_eq!(
        std::fs::read(v1.join("index.json")).unwrap(),
        index_json_before
    );
    let signed_index = text(&std::fs::read(v1.join("index.sjson")).unwrap());
    assert!(signed_index
        .contains("\"path\": \"streams/v1/com.example.foovendor:released:download.sjson\""));
    assert!(!signed_index.contains(".json\""), "{signed_index}");

    let mut files: Vec<PathBuf> = Vec::new();
    for name in [
        "index",
        "com.example.foovendor:released:aws",
        "com.example.foovendor:released:download",
    ] {
        let (json, sjson, sig) = (
            v1.join(format!("{name}.json")),
            v1.join(format!("{name}.sjson")),
            v1.join(format!("{name}.json.gpg")),
        );
        for (args, what) in [
            (vec![sjson.as_path()], "clear-signed"),
            (vec![sig.as_path(), json.as_path()], "detached"),
        ] {
            let out = gpg.gpgv(&keyring, &args);
            assert!(
                out.status.success(),
                "gpgv {what} {name}: {}",
                text(&out.stderr)
            );
        }
        files.extend([sjson, json]);
    }

    let mut args = vec!["verify", "--keyring", s(&keyring)];
    args.extend(files.iter().map(|f| s(f)));
    let out = sstream(&args);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    for file in &files {
        let line = format!(
            "good {} key {} Publisher <publisher@example.invalid>",
            file.display(),
            gpg.fpr
        );
        assert!(
            stdout.lines().any(|l| l == line),
            "{line:?} not in:\n{stdout}"
        );
    }

    // The reference follows the signed index, checking each file with gpgv and our keyring,
    // and lists the same items as from the unsigned stream.
    let signed = reference_query(&[
        "--keyring",
        s(&keyring),
        "-o",
        ITEM_FORMAT,
        s(&v1.join("index.sjson")),
    ]);
    assert!(
        signed.status.success(),
        "reference: {}",
        text(&signed.stderr)
    );
    let unsigned = reference_query(&["-o", ITEM_FORMAT, s(&v1.join("index.json"))]);
    assert!(
        unsigned.status.success(),
        "reference: {}",
        text(&unsigned.stderr)
    );
    assert!(
        text(&signed.stdout).lines().count() >= 12,
        "{}",
        text(&signed.stdout)
    );
    assert_eq!(text(&signed.stdout), text(&unsigned.stdout));
}

#[test]
fn verify_reports_bad_and_unknown_signatures_and_fails() {
    let gpg = Gpg::with_key("");
    let (secret, keyring) = gpg.export("");
    let stream = make_stream();
    let v1 = stream.path().join("streams/v1");
    assert!(
        sstream(&["sign", "--secret-key", s(&secret), s(stream.path())])
            .status
            .success()
    );

    let download = v1.join("com.example.foovendor:released:download.sjson");
    let tampered =
        text(&std::fs::read(&download).unwrap()).replacen("products:1.0", "products:1.1", 1);
    std::fs::write(&download, tampered).unwrap();
    let aws_json = v1.join("com.example.foovendor:released:aws.json");
    std::fs::remove_file(v1.join("com.example.foovendor:released:aws.json.gpg")).unwrap();
    let index = v1.join("index.sjson");

    let out = sstream(&[
        "verify",
        "--keyring",
        s(&keyring),
        s(&index),
        s(&download),
        s(&aws_json),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("good {} key {}", index.display(), gpg.fpr)),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "BAD {}: BAD signature from key {}",
            download.display(),
            gpg.fpr
        )),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with(&format!("BAD {}: no signature", aws_json.display())),
        "{lines:?}"
    );
    // The reference refuses the tampered file as well.
    let reference = reference_query(&["--keyring", s(&keyring), s(&index)]);
    assert!(!reference.status.success());

    // Signed by a key that is not in the keyring: the error names the key ID.
    let other = fixture("ubuntu-2016/keys/ubuntu-cloud-image-builder-476CF100.pub.asc");
    let out = sstream(&["verify", "--keyring", s(&other), s(&index)]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("unknown key: no public key for key ID"),
        "{stdout}"
    );
    assert!(stdout.contains(&gpg.fpr[gpg.fpr.len() - 16..]), "{stdout}");
}

#[test]
fn sign_takes_the_passphrase_from_a_file() {
    let gpg = Gpg::with_key("correct horse");
    let (secret, keyring) = gpg.export("correct horse");
    let stream = make_stream();

    let out = sstream(&["sign", "--secret-key", s(&secret), s(stream.path())]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("sstream: error: ") && stderr.contains("passphrase"),
        "{stderr}"
    );
    assert!(!stream.path().join("streams/v1/index.sjson").exists());

    let pass = stream.path().join("pass.txt");
    std::fs::write(&pass, "correct horse\n").unwrap();
    let out = sstream(&[
        "sign",
        "--secret-key",
        s(&secret),
        "--passphrase-file",
        s(&pass),
        s(stream.path()),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let index = stream.path().join("streams/v1/index.sjson");
    assert!(gpg.gpgv(&keyring, &[&index]).status.success());
}

#[test]
fn sign_warns_when_a_signed_index_names_a_file_that_is_not_there() {
    let gpg = Gpg::with_key("");
    let (secret, _keyring) = gpg.export("");
    let stream = make_stream();
    std::fs::remove_file(
        stream
            .path()
            .join("streams/v1/com.example.foovendor:released:aws.json"),
    )
    .unwrap();

    let out = sstream(&["sign", "--secret-key", s(&secret), s(stream.path())]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "names streams/v1/com.example.foovendor:released:aws.sjson, which does not exist"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("download.sjson, which"), "{stderr}");
}
