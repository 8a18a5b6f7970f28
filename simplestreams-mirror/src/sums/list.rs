//! What a checksum-file directory holds, and how large each file is: checksum files give no
//! sizes, and the engine refuses an item without one. A local directory is read with
//! `read_dir` (sizes and dates included); an HTTP directory through its HTML listing (links
//! only) and a `HEAD` per file; any other store through its own listing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use http_retry::{Failure, HttpOptions, Replay, RetryConfig};
use reqwest::header;
use reqwest::StatusCode;
use simplestreams_core::sums::{looks_like_html, parse_listing};
use url::Url;

use crate::error::{Error, Result};
use crate::store::Store;

/// What is known of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStat {
    /// Its size in bytes, when known.
    pub size: Option<u64>,
    /// When it was last modified, when known.
    pub modified: Option<SystemTime>,
}

/// The entries directly in one directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirEntries {
    /// Files by name (what is known of each: nothing from an HTML listing).
    pub files: BTreeMap<String, FileStat>,
    /// Subdirectory names.
    pub dirs: Vec<String>,
}

/// Lists directories and finds file sizes below a root; every path is relative to it, `/`
/// separated, `""` the root itself.
#[async_trait]
pub trait DirLister: Send + Sync + fmt::Debug + 'static {
    /// The entries directly in `dir`. A directory that is not there is [`Error::NotFound`].
    async fn list(&self, dir: &str) -> Result<DirEntries>;

    /// What is known of the file at `path`, `None` when it is not there.
    async fn stat(&self, path: &str) -> Result<Option<FileStat>>;

    /// Whether [`DirLister::list`] gives every file's exact size (no `stat` needed).
    fn lists_sizes(&self) -> bool;
}

/// A local directory.
#[derive(Debug, Clone)]
pub struct LocalLister {
    root: PathBuf,
}

impl LocalLister {
    /// Lists below `root`.
    pub fn new(root: impl Into<PathBuf>) -> LocalLister {
        LocalLister { root: root.into() }
    }

    fn path(&self, rel: &str) -> Result<PathBuf> {
        if rel.is_empty() {
            return Ok(self.root.clone());
        }
        simplestreams_core::check_safe_path(rel)?;
        Ok(self.root.join(rel))
    }
}

fn stat_of(md: &std::fs::Metadata) -> FileStat {
    FileStat {
        size: Some(md.len()),
        modified: md.modified().ok(),
    }
}

#[async_trait]
impl DirLister for LocalLister {
    async fn list(&self, dir: &str) -> Result<DirEntries> {
        let path = self.path(dir)?;
        tokio::task::spawn_blocking(move || {
            let mut out = DirEntries::default();
            let entries = std::fs::read_dir(&path).map_err(|e| Error::io(&path, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(&path, e))?;
                let Ok(name) = entry.file_name().into_string() else {
                    tracing::info!("{}: not a UTF-8 name: ignored", entry.path().display());
                    continue;
                };
                // Symbolic links are followed (mirrors link `latest` and `release` to a dated
                // directory); a dangling one is nothing.
                let Ok(md) = std::fs::metadata(entry.path()) else {
                    continue;
                };
                if md.is_dir() {
                    out.dirs.push(name);
                } else if md.is_file() {
                    out.files.insert(name, stat_of(&md));
                }
            }
            out.dirs.sort();
            Ok(out)
        })
        .await
        .map_err(|e| Error::Aborted(format!("listing task failed: {e}")))?
    }

    async fn stat(&self, path: &str) -> Result<Option<FileStat>> {
        let file = self.path(path)?;
        match tokio::fs::metadata(&file).await {
            Ok(md) if md.is_file() => Ok(Some(stat_of(&md))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(file, e)),
        }
    }

    fn lists_sizes(&self) -> bool {
        true
    }
}

/// An HTTP(S) directory: listings from the server's HTML index pages (nginx `autoindex`,
/// Apache, `python3 -m http.server`), sizes and dates from `HEAD`, both through the
/// workspace's retry layer.
#[derive(Debug, Clone)]
pub struct HttpLister {
    base: Url,
    client: reqwest::Client,
    retry: RetryConfig,
}

/// The largest directory listing page read.
const MAX_LISTING: usize = 64 << 20;

impl HttpLister {
    /// Lists below `location` (`http://host/path/`), with its own client.
    pub fn new(location: &str, options: &HttpOptions) -> Result<HttpLister> {
        let client = options
            .client()
            .map_err(|e| Error::transport(location, "cannot build the HTTP client", e))?;
        HttpLister::with_client(location, client, options.retry)
    }

    /// Lists below `location` with an existing client.
    pub fn with_client(
        location: &str,
        client: reqwest::Client,
        retry: RetryConfig,
    ) -> Result<HttpLister> {
        let base = crate::source::http::base_url(location)?;
        Ok(HttpLister {
            base,
            client,
            retry,
        })
    }

    /// The URL of `rel` below the base; with a trailing `/` for a directory.
    fn url(&self, rel: &str, dir: bool) -> Result<Url> {
        let mut url = self.base.clone();
        if rel.is_empty() {
            return Ok(url);
        }
        simplestreams_core::check_safe_path(rel)?;
        {
            let mut segments = url.path_segments_mut().map_err(|()| Error::Location {
                location: self.base.to_string(),
                message: "not a base URL".into(),
            })?;
            segments.pop_if_empty();
            segments.extend(rel.split('/'));
            if dir {
                segments.push("");
            }
        }
        Ok(url)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &Url,
        range: bool,
    ) -> Result<Option<reqwest::Response>> {
        // 405 and 501: a server that does not do HEAD; the caller asks another way.
        let accept = |s: StatusCode| {
            s.is_success()
                || matches!(
                    s,
                    StatusCode::NOT_FOUND
                        | StatusCode::GONE
                        | StatusCode::METHOD_NOT_ALLOWED
                        | StatusCode::NOT_IMPLEMENTED
                )
        };
        let outcome = http_retry::send(&self.retry, Replay::IDEMPOTENT, accept, |_| {
            let req = self.client.request(method.clone(), url.clone());
            if range {
                req.header(header::RANGE, "bytes=0-0")
            } else {
                req
            }
        })
        .await;
        match outcome {
            Ok(r) if r.status() == StatusCode::NOT_FOUND || r.status() == StatusCode::GONE => {
                Ok(None)
            }
            Ok(r) => Ok(Some(r)),
            Err(Failure::Status { response, attempts }) => Err(Error::Http {
                url: url.to_string(),
                status: response.status().as_u16(),
                message: if attempts > 1 {
                    format!("after {attempts} attempts")
                } else {
                    String::new()
                },
            }),
            Err(Failure::Transport { source, attempts }) => Err(Error::transport(
                url.as_str(),
                if attempts > 1 {
                    format!("no answer after {attempts} attempts")
                } else {
                    "no answer".into()
                },
                source.without_url(),
            )),
        }
    }
}

fn http_date(headers: &header::HeaderMap) -> Option<SystemTime> {
    let v = headers.get(header::LAST_MODIFIED)?.to_str().ok()?;
    chrono::DateTime::parse_from_rfc2822(v.trim())
        .ok()
        .map(SystemTime::from)
}

#[async_trait]
impl DirLister for HttpLister {
    async fn list(&self, dir: &str) -> Result<DirEntries> {
        let url = self.url(dir, true)?;
        let Some(resp) = self
            .send(reqwest::Method::GET, &url, false)
            .await?
            .filter(|r| r.status().is_success())
        else {
            return Err(Error::NotFound {
                location: url.to_string(),
            });
        };
        let too_large = || Error::TooLarge {
            location: url.to_string(),
            limit: MAX_LISTING as u64,
        };
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_LISTING as u64)
        {
            return Err(too_large());
        }
        let mut resp = resp;
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| Error::transport(url.as_str(), "listing cut off", e.without_url()))?
        {
            if body.len() + chunk.len() > MAX_LISTING {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        if !looks_like_html(&body) {
            return Err(Error::Location {
                location: url.to_string(),
                message: "not an HTML directory listing".into(),
            });
        }
        let listing = parse_listing(&String::from_utf8_lossy(&body), url.path());
        let mut out = DirEntries {
            dirs: listing.dirs,
            ..DirEntries::default()
        };
        out.dirs.sort();
        for f in listing.files {
            out.files.insert(f, FileStat::default());
        }
        Ok(out)
    }

    async fn stat(&self, path: &str) -> Result<Option<FileStat>> {
        let url = self.url(path, false)?;
        let Some(resp) = self.send(reqwest::Method::HEAD, &url, false).await? else {
            return Ok(None);
        };
        let headers = resp.headers();
        // The header itself: a HEAD response has no body to take a length from.
        let size = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .filter(|_| resp.status().is_success());
        let modified = http_date(headers);
        if size.is_some() {
            return Ok(Some(FileStat { size, modified }));
        }
        // No HEAD (405, 501), or no length to it: the first byte, whose Content-Range gives
        // the whole size.
        let Some(resp) = self.send(reqwest::Method::GET, &url, true).await? else {
            return Ok(None);
        };
        let size = match resp.status() {
            StatusCode::PARTIAL_CONTENT => resp
                .headers()
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit_once('/'))
                .and_then(|(_, total)| total.trim().parse().ok()),
            s if s.is_success() => resp.content_length(),
            _ => None,
        };
        Ok(Some(FileStat {
            size,
            modified: modified.or_else(|| http_date(resp.headers())),
        }))
    }

    fn lists_sizes(&self) -> bool {
        false
    }
}

/// Any [`Store`] (Swift, an object store): its listing of a prefix, sizes included.
#[derive(Debug, Clone)]
pub struct StoreLister {
    store: Arc<dyn Store>,
}

impl StoreLister {
    /// Lists `store`.
    pub fn new(store: Arc<dyn Store>) -> StoreLister {
        StoreLister { store }
    }
}

#[async_trait]
impl DirLister for StoreLister {
    async fn list(&self, dir: &str) -> Result<DirEntries> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out = DirEntries::default();
        for meta in self.store.list(&prefix).await? {
            let Some(rest) = meta.path.strip_prefix(&prefix) else {
                continue;
            };
            match rest.split_once('/') {
                Some((d, _)) => {
                    if !out.dirs.iter().any(|x| x == d) {
                        out.dirs.push(d.to_string());
                    }
                }
                None => {
                    out.files.insert(
                        rest.to_string(),
                        FileStat {
                            size: meta.size,
                            modified: None,
                        },
                    );
                }
            }
        }
        out.dirs.sort();
        Ok(out)
    }

    async fn stat(&self, path: &str) -> Result<Option<FileStat>> {
        Ok(self.store.head(path).await?.map(|m| FileStat {
            size: m.size,
            modified: None,
        }))
    }

    fn lists_sizes(&self) -> bool {
        true
    }
}
