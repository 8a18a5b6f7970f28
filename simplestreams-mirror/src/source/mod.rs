//! Where a stream is read from: HTTP(S) mirrors, local directories, and fallbacks between them.

use std::fmt::{self, Debug, Display};
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use http_retry::HttpOptions;

use crate::error::{Error, Result};
use crate::store::{GetOptions, GetResult, LocalStore, Store};

pub(crate) mod http;
mod request;
mod resume;

pub use http::HttpSource;

/// Read access to a mirror: every path is relative to the mirror root.
#[async_trait]
pub trait Source: Send + Sync + Debug + Display + 'static {
    /// Reads `path` (from an offset, conditionally). A missing object is [`Error::NotFound`].
    async fn get(&self, path: &str, options: GetOptions) -> Result<GetResult>;

    /// The URL (or file path) `path` is read from, for messages.
    fn url(&self, path: &str) -> String;
}

/// Reads a [`Store`] (a local directory, memory) as a source.
#[derive(Debug, Clone)]
pub struct StoreSource {
    store: Arc<dyn Store>,
}

impl StoreSource {
    /// Wraps a store.
    pub fn new(store: Arc<dyn Store>) -> StoreSource {
        StoreSource { store }
    }
}

impl Display for StoreSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Display::fmt(&self.store, f)
    }
}

#[async_trait]
impl Source for StoreSource {
    async fn get(&self, path: &str, options: GetOptions) -> Result<GetResult> {
        self.store.get(path, options).await
    }

    fn url(&self, path: &str) -> String {
        let root = self.store.to_string();
        if root.is_empty() || root.ends_with('/') || root.ends_with(':') {
            format!("{root}{path}")
        } else {
            format!("{root}/{path}")
        }
    }
}

/// A primary source and `--mirror` fallbacks: each read tries them in order, moving on when one
/// answers "not found" or fails (after its own retries).
#[derive(Debug)]
pub struct FallbackSource {
    sources: Vec<Arc<dyn Source>>,
}

impl FallbackSource {
    /// `sources[0]` is tried first. An empty list is refused.
    pub fn new(sources: Vec<Arc<dyn Source>>) -> Result<FallbackSource> {
        if sources.is_empty() {
            return Err(Error::Location {
                location: String::new(),
                message: "no source given".into(),
            });
        }
        Ok(FallbackSource { sources })
    }
}

impl Display for FallbackSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Display::fmt(&self.sources[0], f)
    }
}

#[async_trait]
impl Source for FallbackSource {
    async fn get(&self, path: &str, options: GetOptions) -> Result<GetResult> {
        let mut first_err = None;
        for source in &self.sources {
            match source.get(path, options.clone()).await {
                Ok(found) => return Ok(found),
                Err(e) => {
                    tracing::info!("{e}; trying the next mirror");
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or_else(|| Error::NotFound {
            location: self.url(path),
        }))
    }

    fn url(&self, path: &str) -> String {
        self.sources[0].url(path)
    }
}

/// Opens a mirror root given as `http(s)://…`, `file://…` or a plain directory path.
pub fn open_source(location: &str, http: &HttpOptions) -> Result<Arc<dyn Source>> {
    match local_dir(location)? {
        Some(dir) => Ok(Arc::new(StoreSource::new(Arc::new(LocalStore::new(dir))))),
        None => Ok(Arc::new(HttpSource::new(location, http)?)),
    }
}

/// The directory a source location names (`file://` URL or plain path), or `None` for
/// `http(s)://`; other schemes are refused. Lets a caller that wants a whole local file read it
/// in one go rather than as a stream.
pub fn local_dir(location: &str) -> Result<Option<PathBuf>> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Ok(None);
    }
    let dir = if location.starts_with("file://") {
        let url = url::Url::parse(location).map_err(|e| Error::Location {
            location: location.into(),
            message: e.to_string(),
        })?;
        url.to_file_path().map_err(|()| Error::Location {
            location: location.into(),
            message: "not a local file URL".into(),
        })?
    } else if location.contains("://") {
        return Err(Error::Location {
            location: location.into(),
            message: "unsupported scheme (use http://, https://, file:// or a path)".into(),
        });
    } else {
        PathBuf::from(location)
    };
    Ok(Some(dir))
}

/// Splits a source location into a mirror root and the path of the entry file, as the reference
/// does: `…/streams/v1/X.json` or `.sjson` splits there, else the entry is
/// `streams/v1/index.sjson`. An explicit `path` (`--path`) wins.
pub fn split_entry(location: &str, path: Option<&str>) -> (String, String) {
    if let Some(p) = path {
        return (location.to_string(), p.to_string());
    }
    if let Some(pos) = location.find("streams/v1/") {
        let rest = &location[pos..];
        if rest.ends_with(".json") || rest.ends_with(".sjson") {
            return (location[..pos].to_string(), rest.to_string());
        }
    }
    (location.to_string(), "streams/v1/index.sjson".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_split_matches_the_reference() {
        assert_eq!(
            split_entry("http://h/x/streams/v1/index.json", None),
            ("http://h/x/".into(), "streams/v1/index.json".into())
        );
        assert_eq!(
            split_entry("/m", None),
            ("/m".into(), "streams/v1/index.sjson".into())
        );
        assert_eq!(
            split_entry("/m", Some("streams/v1/p.json")),
            ("/m".into(), "streams/v1/p.json".into())
        );
    }
}
