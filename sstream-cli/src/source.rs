//! Reading metadata for the commands: where a mirror URL points, fetching a file from it, and
//! the signature policy of SPEC §6 (what must be signed, and checking it).

use std::path::{Path, PathBuf};

use std::sync::Arc;

use anyhow::Context as _;
use futures::TryStreamExt as _;
use simplestreams_core::openpgp::{self, Keyring};
use simplestreams_mirror::{local_dir, open_source, GetOptions, GetResult, HttpConfig, Source};
use tracing::{info, warn};

/// The keyring the reference uses when none is given.
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg";

/// Splits a URL naming `streams/v1/<x>.json|.sjson` into (mirror root, path), as the reference
/// does (the engine's rule, shared by every command).
pub use simplestreams_mirror::split_entry as split_mirror_url;

/// What must be signed, and the keys to check it with.
pub enum SignaturePolicy {
    /// The entry path is `.json` and no keyring was given: files are read as they are.
    Unsigned,
    /// The entry path is `.sjson`: every file read must be clear-signed; checked against the
    /// keyring unless it is `None` (`--no-verify`).
    RequireSigned(Option<Keyring>),
    /// The entry path is `.json` and a keyring was given: the `.sjson` sibling of each file is
    /// tried first and verified; the `.json` is read when there is no signed sibling.
    PreferSigned(Keyring),
}

impl SignaturePolicy {
    /// The policy for an entry path. `explicit_keyring` is whether `--keyring` was given.
    pub fn for_entry_path(
        path: &str,
        verify: bool,
        keyrings: &[PathBuf],
        explicit_keyring: bool,
    ) -> anyhow::Result<Self> {
        if path.ends_with(".sjson") {
            if !verify {
                return Ok(SignaturePolicy::RequireSigned(None));
            }
            return Ok(SignaturePolicy::RequireSigned(Some(load_keyrings(
                keyrings,
            )?)));
        }
        if verify && explicit_keyring {
            return Ok(SignaturePolicy::PreferSigned(load_keyrings(keyrings)?));
        }
        Ok(SignaturePolicy::Unsigned)
    }
}

/// The sync engine's signature policy for an entry path, as the reference decides it: a `.sjson`
/// entry is verified (against `--keyring`, else the default keyring) unless `--no-verify`.
pub fn engine_signature_policy(
    entry: &str,
    verify: bool,
    keyrings: &[PathBuf],
) -> anyhow::Result<simplestreams_mirror::SignaturePolicy> {
    let keyring = if entry.ends_with(".sjson") && verify {
        let default = [PathBuf::from(DEFAULT_KEYRING)];
        let paths = if keyrings.is_empty() {
            &default[..]
        } else {
            keyrings
        };
        Some(Arc::new(load_keyrings(paths)?))
    } else {
        None
    };
    Ok(simplestreams_mirror::SignaturePolicy { verify, keyring })
}

/// Reads and merges keyring files (binary or armored).
pub fn load_keyrings(paths: &[PathBuf]) -> anyhow::Result<Keyring> {
    let mut merged: Option<Keyring> = None;
    for path in paths {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "cannot read keyring {} (give one with --keyring, or --no-verify to skip checks)",
                path.display()
            )
        })?;
        let ring = Keyring::from_bytes(&bytes, &path.display().to_string())?;
        match &mut merged {
            Some(m) => m.merge(ring),
            None => merged = Some(ring),
        }
    }
    merged.context("no keyring given")
}

/// Reads metadata files below a mirror root, applying a [`SignaturePolicy`]. Fetching goes
/// through the mirror engine's sources (HTTP with retries and timeouts, `file://`, paths).
pub struct MetadataReader {
    mirror: String,
    policy: SignaturePolicy,
    source: Arc<dyn Source>,
    /// The mirror's directory when it is local: whole files are read in one go from there.
    local: Option<PathBuf>,
}

impl MetadataReader {
    /// A reader for `mirror` (http(s)://, file:// or a directory).
    pub fn new(mirror: &str, policy: SignaturePolicy) -> anyhow::Result<Self> {
        let source = open_source(mirror, &HttpConfig::default())?;
        Ok(MetadataReader {
            mirror: mirror.to_string(),
            policy,
            source,
            local: local_dir(mirror)?,
        })
    }

    /// The URL of an item `path`, as the reference prints it (`item_url`).
    pub fn item_url(&self, path: &str) -> String {
        join_url(&self.mirror, path)
    }

    /// Reads `path`, returning the JSON payload and the name to use in messages.
    pub async fn read(&self, path: &str) -> anyhow::Result<(Vec<u8>, String)> {
        if let SignaturePolicy::PreferSigned(keyring) = &self.policy {
            if let Some(stem) = path.strip_suffix(".json") {
                let signed = format!("{stem}.sjson");
                if let Some(bytes) = self.fetch(&signed).await? {
                    let name = self.item_url(&signed);
                    let verified = openpgp::verify_clearsigned(&bytes, keyring, &name)?;
                    log_verified(&name, &verified.signer);
                    return Ok((verified.payload, name));
                }
                info!(
                    "{}: no signed sibling {signed}; reading it unsigned",
                    self.item_url(path)
                );
            }
        }
        let name = self.item_url(path);
        let bytes = self
            .fetch(path)
            .await?
            .with_context(|| format!("{name}: not found"))?;
        match &self.policy {
            SignaturePolicy::RequireSigned(Some(keyring)) => {
                let verified = openpgp::verify_clearsigned(&bytes, keyring, &name)?;
                log_verified(&name, &verified.signer);
                Ok((verified.payload, name))
            }
            SignaturePolicy::RequireSigned(None) => {
                Ok((openpgp::strip_clearsigned(&bytes, &name)?, name))
            }
            SignaturePolicy::Unsigned | SignaturePolicy::PreferSigned(_) => Ok((bytes, name)),
        }
    }

    /// Fetches bytes; `None` when the file does not exist (HTTP 404 or no such file).
    async fn fetch(&self, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
        if let Some(dir) = &self.local {
            simplestreams_core::check_safe_path(path)?;
            let file = dir.join(path);
            let reading = file.clone();
            return match tokio::task::spawn_blocking(move || read_local(&reading)).await? {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(anyhow::anyhow!("{}: {e}", file.display())),
            };
        }
        match self.source.get(path, GetOptions::default()).await {
            Ok(GetResult::Found { meta, mut body }) => {
                // One allocation of the announced size: large products files are not copied
                // again after arriving in chunks.
                let capacity = meta.size.and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
                let mut bytes = Vec::with_capacity(capacity);
                while let Some(chunk) = body.try_next().await? {
                    bytes.extend_from_slice(&chunk);
                }
                Ok(Some(bytes))
            }
            Ok(GetResult::NotModified) => {
                anyhow::bail!("{}: unexpected 'not modified'", self.source.url(path))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Reads a whole local file into one buffer of its size: a large products file is not copied
/// again chunk by chunk as the streaming source would, and its two halves are read at once on
/// two threads (the kernel's copy and the first touch of each page of the buffer are most of
/// the reading).
fn read_local(file: &Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt as _;
    let opened = std::fs::File::open(file)?;
    let len = opened.metadata()?.len();
    let size = match usize::try_from(len) {
        Ok(size) if worth_two_threads(size) => size,
        _ => return std::fs::read(file),
    };
    let mut bytes = vec![0u8; size];
    let (first, second) = bytes.split_at_mut(size / 2);
    let offset = first.len() as u64;
    let halves = std::thread::scope(|scope| {
        let other = scope.spawn(|| opened.read_exact_at(second, offset));
        let mine = opened.read_exact_at(first, 0);
        mine.and(
            other
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the reading thread panicked"))),
        )
    });
    match halves {
        Ok(()) => Ok(bytes),
        // The file shrank meanwhile (a writer at work): read it again, whole, the plain way.
        Err(_) => std::fs::read(file),
    }
}

/// Whether reading (and parsing) `len` bytes of metadata on two threads pays for the second
/// thread: large products files, on a machine with a second core.
pub fn worth_two_threads(len: usize) -> bool {
    const LARGE: usize = 4 << 20;
    len >= LARGE && std::thread::available_parallelism().map_or(1, |n| n.get()) > 1
}

fn log_verified(name: &str, signer: &openpgp::SignerInfo) {
    if signer.expired {
        warn!(
            "{name}: good signature from an expired key {}",
            signer.fingerprint
        );
    }
    info!(
        "{name}: good signature from {} {}",
        signer.fingerprint,
        signer.user_ids.join(", ")
    );
}

/// Joins a mirror root and a path the way the reference does (plain concatenation), adding the
/// `/` that users often leave off a directory or URL.
pub fn join_url(mirror: &str, path: &str) -> String {
    if mirror.is_empty() || mirror.ends_with('/') {
        format!("{mirror}{path}")
    } else {
        format!("{mirror}/{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_the_reference() {
        assert_eq!(
            split_mirror_url("http://x/releases/streams/v1/index.sjson", None),
            ("http://x/releases/".into(), "streams/v1/index.sjson".into())
        );
        assert_eq!(
            split_mirror_url("http://x/releases/", None),
            ("http://x/releases/".into(), "streams/v1/index.sjson".into())
        );
        assert_eq!(
            split_mirror_url("/m", Some("streams/v1/a.json")),
            ("/m".into(), "streams/v1/a.json".into())
        );
        assert_eq!(join_url("/m", "a"), "/m/a");
        assert_eq!(join_url("/m/", "a"), "/m/a");
    }
}
