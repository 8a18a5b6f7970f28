//! `sstream sign` and `sstream verify`: publishing signed metadata (`X.sjson` clear-signed and
//! `X.json.gpg` detached, beside each `X.json`) and checking it, with OpenPGP done in-process.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::Args;
use simplestreams_core::openpgp::{
    clearsign, is_clearsigned, sign_detached, verify_clearsigned, verify_detached, Keyring,
    SignerInfo, SigningKey,
};
use simplestreams_core::{Document, Error};

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

/// Where `sstream sign` publishes the armored public key, relative to the stream directory.
pub const PUBLIC_KEY_FILE: &str = "streams/v1/signing-key.asc";

/// Runs `sstream sign`.
pub fn run_sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    let key = load_signing_key(&args.secret_key, args.passphrase_file.as_deref())?;
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
    let mut stdout = std::io::stdout().lock();
    // (signed index, path it names): checked once every file is signed.
    let mut signed_paths = Vec::new();
    for json in files {
        let (sjson, gpg, pointed_at) = sign_one(&json, &key)?;
        signed_paths.extend(pointed_at.into_iter().map(|p| (sjson.clone(), p)));
        writeln!(
            stdout,
            "signed {} -> {}, {} (key {})",
            json.display(),
            file_name(&sjson),
            file_name(&gpg),
            key.fingerprint()
        )?;
    }
    // Consumers need the public key to verify: publish it beside the stream (SPEC §6).
    let public = args.dir.join(PUBLIC_KEY_FILE);
    write_atomically(&public, &key.public_key_armored()?)?;
    writeln!(stdout, "public key {}", public.display())?;
    for (index, path) in signed_paths {
        if !args.dir.join(&path).is_file() {
            tracing::warn!(
                "{} names {path}, which does not exist under {}: sign that products file too",
                index.display(),
                args.dir.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load_signing_key(path: &Path, passphrase_file: Option<&Path>) -> anyhow::Result<SigningKey> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read secret key {}", path.display()))?;
    let passphrase = match passphrase_file {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read passphrase file {}", p.display()))?;
            // Like gpg --passphrase-file: the first line, without its line ending.
            Some(text.lines().next().unwrap_or_default().to_owned())
        }
        None => None,
    };
    Ok(SigningKey::from_armored(
        &bytes,
        passphrase.as_deref(),
        &path.display().to_string(),
    )?)
}

/// `*.json` files directly in `dir`, sorted.
fn json_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "json") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Signs one `X.json`, returning the paths of `X.sjson` and `X.json.gpg`, and, for an index,
/// the (rewritten) paths its signed version names.
fn sign_one(json: &Path, key: &SigningKey) -> anyhow::Result<(PathBuf, PathBuf, Vec<String>)> {
    let name = json.display().to_string();
    let bytes = std::fs::read(json).with_context(|| format!("cannot read {name}"))?;
    // Parsing first refuses to publish a broken document under a good signature.
    let mut pointed_at = Vec::new();
    let clear_text = match Document::from_slice(&bytes, &name)? {
        Document::Index(mut index) => {
            for entry in index.index.values_mut() {
                if let Some(serde_json::Value::String(path)) = entry.fields.get_mut("path") {
                    if let Some(stem) = path.strip_suffix(".json") {
                        *path = format!("{stem}.sjson");
                    }
                    pointed_at.push(path.clone());
                }
            }
            index.to_vec_pretty()
        }
        Document::Products(_) | Document::Mirrors(_) => bytes.clone(),
    };
    let sjson = json.with_extension("sjson");
    let gpg = PathBuf::from(format!("{}.gpg", json.display()));
    let signed = clearsign(&clear_text, key)?;
    let detached = sign_detached(&bytes, key)?;
    // Check our own output before publishing it.
    verify_clearsigned(&signed, key.public_keyring(), &sjson.display().to_string())?;
    verify_detached(&bytes, &detached, key.public_keyring(), &name)?;
    write_atomically(&sjson, &signed)?;
    write_atomically(&gpg, &detached)?;
    Ok((sjson, gpg, pointed_at))
}

/// Writes to a temporary file in the same directory, then renames it over `path`, so readers
/// never see a partial file.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = PathBuf::from(format!("{}.tmp-{}", path.display(), std::process::id()));
    let result = std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs `sstream verify`.
pub fn run_verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let mut keyring = Keyring::new();
    for path in &args.keyring {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read keyring {}", path.display()))?;
        keyring.merge(Keyring::from_bytes(&bytes, &path.display().to_string())?);
    }
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
