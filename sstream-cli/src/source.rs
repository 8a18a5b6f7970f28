//! Opening a stream for the commands: where a location points (a mirror root and an entry
//! path), the sources it is read from (`--mirror` fallbacks included), and the one metadata
//! reader with the signature policy the flags ask for.

use std::sync::Arc;

use simplestreams_mirror::{split_entry, FallbackSource, MetadataReader, Source};

use crate::common::{HttpArgs, VerifyArgs};
use crate::location::open_source;

/// A stream as the flags describe it.
pub struct Stream {
    /// The mirror root, as given (for `item_url`).
    pub root: String,
    /// The entry file's path below it.
    pub entry: String,
    /// The source: the root, then each `--mirror`.
    pub source: Arc<dyn Source>,
}

impl Stream {
    /// Opens `location` (a mirror root, or the URL of an index or products file; `path`
    /// overrides the entry), with `mirrors` as fallbacks.
    pub async fn open(
        location: &str,
        path: Option<&str>,
        mirrors: &[String],
        http: &HttpArgs,
    ) -> anyhow::Result<Stream> {
        let options = http.options()?;
        let (root, entry) = split_entry(location, path);
        let mut sources: Vec<Arc<dyn Source>> = vec![open_source(&root, &options).await?];
        for m in mirrors {
            sources.push(open_source(m, &options).await?);
        }
        let source: Arc<dyn Source> = if sources.len() == 1 {
            sources.remove(0)
        } else {
            Arc::new(FallbackSource::new(sources)?)
        };
        Ok(Stream {
            root,
            entry,
            source,
        })
    }

    /// The metadata reader of this stream under the signature policy of `verify`.
    pub fn reader(&self, verify: &VerifyArgs, http: &HttpArgs) -> anyhow::Result<MetadataReader> {
        Ok(
            MetadataReader::new(self.source.clone(), verify.policy(&self.entry)?)
                .with_limits(http.metadata_limits()?),
        )
    }
}
