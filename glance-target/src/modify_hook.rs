//! `--modify-hook`: the one case where an image goes through a temporary file. The verified
//! bytes are written to it, the hook command changes it in place, and the result is uploaded.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};
use simplestreams_mirror::{ByteStream, Error, NewItem};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A temporary image file after the hook ran: its size and md5.
#[derive(Debug)]
pub(crate) struct Modified {
    pub path: PathBuf,
    pub size: u64,
    pub md5: String,
}

const CHUNK: usize = 1 << 20;

impl Modified {
    /// The file's bytes, in chunks.
    pub async fn stream(&self) -> Result<ByteStream, Error> {
        let file = tokio::fs::File::open(&self.path)
            .await
            .map_err(|source| Error::Io {
                path: self.path.clone(),
                source,
            })?;
        let path = self.path.clone();
        Ok(stream::unfold(Some(file), move |f| {
            let path = path.clone();
            async move {
                let mut f = f?;
                let mut buf = vec![0u8; CHUNK];
                match f.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(Bytes::from(buf)), Some(f)))
                    }
                    Err(source) => Some((Err(Error::Io { path, source }), None)),
                }
            }
        })
        .boxed())
    }

    /// Deletes the file.
    pub async fn remove(self) {
        let _ = tokio::fs::remove_file(&self.path).await;
    }
}

fn temp_path() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "sstream-glance-{}-{}.img",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Writes `body` (already verified as it streams) to a temporary file, runs `cmd` on it as the
/// reference does (the item's fields, `IMAGE_PATH` and `FIELDS` in the environment), and
/// measures the result. The file is removed on failure.
pub(crate) async fn run_modify_hook(
    cmd: &[String],
    item: &NewItem,
    mut body: ByteStream,
) -> Result<Modified, Error> {
    let path = temp_path();
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let result = async {
        let mut f = tokio::fs::File::create(&path).await.map_err(io)?;
        while let Some(chunk) = body.next().await {
            f.write_all(&chunk?).await.map_err(io)?;
        }
        f.flush().await.map_err(io)?;
        drop(f);

        let Some((program, args)) = cmd.split_first() else {
            return Err(Error::Aborted("--modify-hook is empty".into()));
        };
        let mut names: Vec<&str> = item.fields.keys().map(String::as_str).collect();
        names.push("IMAGE_PATH");
        let status = tokio::process::Command::new(program)
            .args(args)
            .envs(item.fields.iter())
            .env("IMAGE_PATH", &path)
            .env("FIELDS", names.join(" "))
            .status()
            .await
            .map_err(|source| Error::Io {
                path: PathBuf::from(program),
                source,
            })?;
        if !status.success() {
            return Err(Error::Aborted(format!(
                "modify hook {:?} failed ({status}) on {}",
                cmd.join(" "),
                item.key
            )));
        }

        let mut v = StreamVerifier::new("", Expected::default()).also_compute(ChecksumKind::Md5);
        let mut f = tokio::fs::File::open(&path).await.map_err(io)?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = f.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                break;
            }
            // No expectation is set, so updating cannot fail.
            let _ = v.update(&buf[..n]);
        }
        let d = v.finish()?;
        Ok(Modified {
            path: path.clone(),
            size: d.size,
            md5: d.md5.unwrap_or_default(),
        })
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&path).await;
    }
    result
}
