//! Opening a stream for the commands: where a location points (a mirror root and an entry
//! path), the sources it is read from (`--mirror` fallbacks included), and the one metadata
//! reader with the signature policy the flags ask for. A directory of images with a checksum
//! file (a location naming `SHA256SUMS` & co, or `--layout`) is opened as a stream too, through
//! a `SumsSource`.

use std::sync::Arc;

use anyhow::bail;
use simplestreams_mirror::sums::{
    DirLister, HttpLister, LocalLister, SizeScope, StoreLister, SumsLocation, SumsSource,
    SUMS_INDEX_PATH,
};
use simplestreams_mirror::{split_entry, FallbackSource, MetadataReader, Source, StoreSource};

use crate::common::{HttpArgs, SumsArgs, VerifyArgs};
use crate::location::{kind, open_source, open_store_existing, Kind};

/// A stream as the flags describe it.
pub struct Stream {
    /// The mirror root, as given (for `item_url`).
    pub root: String,
    /// The entry file's path below it.
    pub entry: String,
    /// The source: the root, then each `--mirror`.
    pub source: Arc<dyn Source>,
    /// The checksum-file directory, when the stream is made from one (`source` is it).
    pub sums: Option<Arc<SumsSource>>,
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
        let source = with_fallbacks(open_source(&root, &options).await?, mirrors, http).await?;
        Ok(Stream {
            root,
            entry,
            source,
            sums: None,
        })
    }

    /// [`Stream::open`], or, when `sums` applies to `location` (a checksum file named, or
    /// `--layout`), the stream made of that checksum-file directory: its files read from the
    /// location then each `--mirror`, its signatures checked as `verify` says, the sizes of
    /// the items `scope` selects found.
    pub async fn open_with(
        location: &str,
        path: Option<&str>,
        mirrors: &[String],
        http: &HttpArgs,
        sums: &SumsArgs,
        verify: &VerifyArgs,
        scope: SizeScope,
    ) -> anyhow::Result<Stream> {
        if !sums.applies_to(location) {
            return Stream::open(location, path, mirrors, http).await;
        }
        if path.is_some() {
            bail!(
                "--path names a metadata file of a stream; {location} is read as a directory of \
                 images with a checksum file, which has none (leave out --path)"
            );
        }
        let options = sums.options(verify, http, scope)?;
        let loc = SumsLocation::parse(location, options.sums_name.as_deref());
        let http_options = http.options()?;
        let (primary, lister): (Arc<dyn Source>, Arc<dyn DirLister>) = match kind(&loc.root)? {
            Kind::Directory(dir) => (
                open_source(&loc.root, &http_options).await?,
                Arc::new(LocalLister::new(dir)),
            ),
            Kind::Http => (
                open_source(&loc.root, &http_options).await?,
                Arc::new(HttpLister::new(&loc.root, &http_options)?),
            ),
            Kind::Swift | Kind::ObjectStore => {
                let store = open_store_existing(&loc.root).await?;
                (
                    Arc::new(StoreSource::new(store.clone())),
                    Arc::new(StoreLister::new(store)),
                )
            }
        };
        let files = with_fallbacks(primary, mirrors, http).await?;
        let source = Arc::new(SumsSource::open(&loc, files, lister, &options).await?);
        Ok(Stream {
            root: loc.root.clone(),
            entry: SUMS_INDEX_PATH.to_string(),
            source: source.clone(),
            sums: Some(source),
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

/// `primary`, then each of `mirrors` when a read fails there.
async fn with_fallbacks(
    primary: Arc<dyn Source>,
    mirrors: &[String],
    http: &HttpArgs,
) -> anyhow::Result<Arc<dyn Source>> {
    if mirrors.is_empty() {
        return Ok(primary);
    }
    let options = http.options()?;
    let mut sources = vec![primary];
    for m in mirrors {
        sources.push(open_source(m, &options).await?);
    }
    Ok(Arc::new(FallbackSource::new(sources)?))
}
