//! `sstream sign` and `sstream verify`: publishing signed metadata (`X.sjson` clear-signed and
//! `X.json.gpg` detached, beside each `X.json`) and checking it, with OpenPGP done in-process.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::Args;
use simplestreams_core::openpgp::{
    is_clearsigned, verify_clearsigned, verify_detached, Keyring, SignerInfo,
};
use simplestreams_core::{detached_path, index_for, index_of, sjson_path, Error};
use simplestreams_mirror::{load_keyrings, LocalStore, Publisher, PUBLIC_KEY_PATH};

use crate::common::load_signing_key;

/// Sign every `streams/v1/*.json` of a stream directory: writes `X.sjson` (clear-signed) and
/// `X.json.gpg` (detached, armored) beside each `X.json`.
///
/// In the `.sjson` version of an index, paths are rewritten `.json` -> `.sjson`, so a signed
/// index never points at unsigned products; the `.json` index keeps its paths. The public key
/// is published beside them as `streams/v1/signing-key.asc`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  sstream sign --secret-key publisher.sec.asc ./mirror\n  \
                        sstream verify --keyring publisher.pub.asc ./mirror/streams/v1/*.sjson"
)]
pub struct SignArgs {
    /// ASCII-armored OpenPGP secret key (gpg --armor --export-secret-keys KEYID).
    #[arg(long, value_name = "KEY.asc")]
    pub secret_key: PathBuf,
    /// File whose first line is the secret key's passphrase.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Stream directory (the mirror root holding streams/v1/).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Check signatures: `X.sjson` (clear-signed) or `X.json` with `X.json.gpg` beside it.
///
/// Prints `good FILE key FINGERPRINT USER-ID` or `BAD FILE: REASON` per file; exits 0 only when
/// every file is good.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// OpenPGP keyring of trusted keys, binary (/usr/share/keyrings/*.gpg) or armored.
    /// Repeatable.
    #[arg(long, value_name = "KEYRING", required = true)]
    pub keyring: Vec<PathBuf>,
    /// Files to check.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// Runs `sstream sign`.
pub fn run_sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    let key = Arc::new(load_signing_key(
        &args.secret_key,
        args.passphrase_file.as_deref(),
    )?);
    let streams = args.dir.join("streams/v1");
    let files = json_files(&streams)?;
    if files.is_empty() {
        bail!("nothing to sign: no *.json in {}", streams.display());
    }
    tracing::info!(
        "signing with key {} (signing key ID {})",
        key.fingerprint(),
        key.signing_key_id()
    );
    let publisher =
        Publisher::new(Arc::new(LocalStore::new(&args.dir))).signing_with(Some(key.clone()));
    let rt = crate::common::runtime()?;
    let mut stdout = std::io::stdout().lock();
    // (signed index, path it names): checked once every file is signed.
    let mut signed_paths = Vec::new();
    for name in files {
        let rel = format!("streams/v1/{name}");
        let file = streams.join(&name);
        let bytes =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        if let Some(index) = index_of(&bytes, &file.display().to_string())? {
            let signed = index_for(&index, true);
            signed_paths.extend(
                signed
                    .index
                    .values()
                    .filter_map(|e| e.path().map(|p| (sjson_path(&rel), p.to_string()))),
            );
        }
        rt.block_on(publisher.document(&rel, &bytes))?;
        writeln!(
            stdout,
            "signed {} -> {}, {} (key {})",
            file.display(),
            file_name(&sjson_path(&rel)),
            file_name(&detached_path(&rel)),
            key.fingerprint()
        )?;
    }
    writeln!(
        stdout,
        "public key {}",
        args.dir.join(PUBLIC_KEY_PATH).display()
    )?;
    for (index, path) in signed_paths {
        if !args.dir.join(&path).is_file() {
            tracing::warn!(
                "{index} names {path}, which does not exist under {}: sign that products file too",
                args.dir.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Names of the `*.json` files directly in `dir`, sorted.
fn json_files(dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") && entry.path().is_file() {
            files.push(name);
        }
    }
    files.sort();
    Ok(files)
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Runs `sstream verify`.
pub fn run_verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let keyring = load_keyrings(&args.keyring).context("cannot read the keyring")?;
    let mut all_good = true;
    let mut stdout = std::io::stdout().lock();
    for file in &args.files {
        let name = file.display().to_string();
        match verify_file(file, &keyring) {
            Ok(signer) => {
                writeln!(
                    stdout,
                    "good {name} key {} {}",
                    signer.fingerprint,
                    signer.user_id()
                )?;
                if signer.expired {
                    let when = signer
                        .key_expires
                        .map(|t| t.to_string())
                        .unwrap_or_default();
                    tracing::warn!(
                        "{name}: key {} expired {when}; the signature was made before, on {}",
                        signer.fingerprint,
                        signer.created
                    );
                }
            }
            Err(reason) => {
                all_good = false;
                writeln!(stdout, "BAD {name}: {reason}")?;
            }
        }
    }
    Ok(if all_good {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Checks one file; the error is the reason, without the file name.
fn verify_file(file: &Path, keyring: &Keyring) -> Result<SignerInfo, String> {
    let name = file.display().to_string();
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let reason = |e: Error| match e {
        Error::Signature { reason, .. } => reason,
        other => other.to_string(),
    };
    let bytes = read(file)?;
    if is_clearsigned(&bytes) {
        return verify_clearsigned(&bytes, keyring, &name)
            .map(|v| v.signer)
            .map_err(reason);
    }
    // `X.json.gpg` given: check it against `X.json`.
    if let Some(data_path) = name.strip_suffix(".gpg") {
        let data = read(Path::new(data_path))?;
        return verify_detached(&data, &bytes, keyring, data_path).map_err(reason);
    }
    let sig_path = PathBuf::from(format!("{name}.gpg"));
    if !sig_path.is_file() {
        return Err(format!(
            "no signature: not clear-signed and no detached signature {} beside it",
            sig_path.display()
        ));
    }
    verify_detached(&bytes, &read(&sig_path)?, keyring, &name).map_err(reason)
}
