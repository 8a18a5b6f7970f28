//! `sstream key generate`: a signing key for a stream, made in-process (no GnuPG needed),
//! written as the three files a publisher keeps and hands out.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use simplestreams_core::openpgp::keygen::{generate, KeyAlgorithm, KeyOptions};

/// Manage stream signing keys.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: KeyCommand,
}

/// The `key` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make an OpenPGP signing key (Ed25519, or RSA 3072 with --rsa), written to DIR as
    /// NAME.sec.asc (the secret key, mode 0600: for --signing-key), NAME.pub.asc (the
    /// public key, armored) and NAME.gpg (the public key as a binary keyring: for
    /// `gpgv --keyring`, the reference's --keyring, /usr/share/keyrings/). Existing files
    /// are never overwritten.
    Generate(GenerateArgs),
}

/// `sstream key generate`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
    sstream key generate keys --name publisher --email images@example.com\n  \
    sstream add ./repo image.qcow2 --os ubuntu --release noble --arch amd64 \\\n    \
    --signing-key keys/publisher.sec.asc\n  \
    gpgv --keyring \"$PWD/keys/publisher.gpg\" ./repo/streams/v1/index.sjson")]
pub struct GenerateArgs {
    /// Directory to write the key files to (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The name in the key's user id, and of the files (characters other than letters,
    /// digits, '.', '_' and '-' become '-' in file names).
    #[arg(long, default_value = "publisher")]
    pub name: String,
    /// The e-mail address in the key's user id (default: FILE-NAME@localhost).
    #[arg(long)]
    pub email: Option<String>,
    /// Protect the secret key with the passphrase on this file's first line (default: no
    /// passphrase, as an unattended publisher's key usually has; keep the file private).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// RSA 3072 instead of Ed25519 (for verifiers older than GnuPG 2.1).
    #[arg(long)]
    pub rsa: bool,
}

/// The file name stem for a key name.
fn stem(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Creates `path` with `bytes`, failing if it exists.
fn create_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Runs `sstream key`.
pub fn run(args: KeyArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        KeyCommand::Generate(a) => run_generate(a),
    }
}

fn run_generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let stem = stem(&args.name);
    if stem.is_empty() || stem.starts_with('.') {
        bail!("--name {:?} makes no file name", args.name);
    }
    let passphrase = match &args.passphrase_file {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read passphrase file {}", p.display()))?;
            let first = text.lines().next().unwrap_or_default().to_owned();
            if first.is_empty() {
                bail!("{}: the passphrase (its first line) is empty", p.display());
            }
            Some(first)
        }
        None => None,
    };
    let files = [
        args.dir.join(format!("{stem}.sec.asc")),
        args.dir.join(format!("{stem}.pub.asc")),
        args.dir.join(format!("{stem}.gpg")),
    ];
    for f in &files {
        if f.exists() || f.is_symlink() {
            bail!("{} exists; refusing to overwrite a key", f.display());
        }
    }
    let options = KeyOptions {
        name: args.name.trim().to_owned(),
        email: args
            .email
            .clone()
            .unwrap_or_else(|| format!("{stem}@localhost")),
        passphrase,
        algorithm: if args.rsa {
            KeyAlgorithm::Rsa3072
        } else {
            KeyAlgorithm::Ed25519
        },
    };
    let key = generate(&options)?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    create_new(&files[0], &key.secret_armored, 0o600)?;
    create_new(&files[1], &key.public_armored, 0o644)?;
    create_new(&files[2], &key.public_keyring, 0o644)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "key {} {}", key.fingerprint, key.user_id)?;
    writeln!(out, "secret key {} (keep it private)", files[0].display())?;
    writeln!(out, "public key {}", files[1].display())?;
    writeln!(out, "keyring {}", files[2].display())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(super::stem("Example Publisher"), "Example-Publisher");
        assert_eq!(super::stem("a/../b"), "a-..-b");
        assert_eq!(super::stem("pub_1.x"), "pub_1.x");
    }
}
