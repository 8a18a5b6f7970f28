//! Where a command reads or writes, from a location as a user gives it: a directory (or
//! `file://`), an HTTP(S) mirror (read only), a Swift container and prefix
//! (`swift://CONTAINER/PREFIX`, with the `OS_*` credentials), or an object store URL
//! (`s3://BUCKET/PREFIX` with the `AWS_*` variables, and what else `object_store` parses).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use object_store_target::{open_url_with, ObjectStoreAdapter, OpenOptions};
use simplestreams_mirror::{
    local_dir, open_source as open_http_or_dir, HttpOptions, LocalStore, Source, Store, StoreSource,
};
use swift_target::{Session, SwiftClient, SwiftStore, SwiftStoreOptions};

/// How stores are written: the flags of the tools that write one.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Storage")]
pub struct StoreArgs {
    /// Do not flush written files to stable storage (fsync): faster on slow disks; a killed
    /// run is still safe, but a power cut may lose the last files written (directories only).
    #[arg(long)]
    pub no_fsync: bool,
    /// Large objects whose md5 the stream does not publish go to Swift as Static Large Objects
    /// in segments of this many MiB (default 5120, the most Swift takes in one PUT), and to S3
    /// as multipart uploads in parts of this size (default 16, at least 5). Swift segments up
    /// to 20 MiB are held in memory (at most 40 MiB of them) and resent alone when they fail;
    /// larger ones are streamed, and a failed one fails the item. S3 parts are held (at most
    /// 48 MiB of them). Items whose md5 is published go whole, streamed, to both.
    #[arg(long, value_name = "MIB")]
    pub segment_size: Option<u64>,
    /// Make a Swift container readable by anyone (`.r:*,.rlistings`), as a public mirror
    /// needs; its private `_segments` container never is.
    #[arg(long)]
    pub public: bool,
}

/// What kind of location a string names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A local directory.
    Directory(PathBuf),
    /// `http://` or `https://`: read only.
    Http,
    /// `swift://CONTAINER/PREFIX`.
    Swift,
    /// Another URL scheme: an object store.
    ObjectStore,
}

/// The kind of `location`.
pub fn kind(location: &str) -> anyhow::Result<Kind> {
    if location.starts_with("swift://") {
        return Ok(Kind::Swift);
    }
    if location.starts_with("http://") || location.starts_with("https://") {
        return Ok(Kind::Http);
    }
    if let Some((scheme, _)) = location.split_once("://") {
        if scheme != "file" {
            return Ok(Kind::ObjectStore);
        }
    }
    match local_dir(location)? {
        Some(dir) => Ok(Kind::Directory(dir)),
        None => bail!("{location}: not a location this tool understands"),
    }
}

async fn swift_client() -> anyhow::Result<SwiftClient> {
    let session = Session::from_env().context("swift:// needs OpenStack credentials (OS_*)")?;
    SwiftClient::new(&session)
        .await
        .context("cannot find the object-store endpoint")
}

/// The store at `location`, to write into (a Swift container is created when missing).
pub async fn open_store(location: &str, args: &StoreArgs) -> anyhow::Result<Arc<dyn Store>> {
    match kind(location)? {
        Kind::Directory(dir) => Ok(Arc::new(LocalStore::new(dir).with_fsync(!args.no_fsync))),
        Kind::Http => bail!("{location}: an HTTP mirror can be read, not written; give a directory, swift:// or s3://"),
        Kind::Swift => Ok(Arc::new(
            SwiftStore::from_url(swift_client().await?, location, swift_options(args)?, true)
                .await?,
        )),
        Kind::ObjectStore => Ok(Arc::new(object_store_at(location, args)?)),
    }
}

/// S3's part size without `--segment-size`, in MiB: two parts in flight with the one filling.
pub const DEFAULT_PART_MIB: u64 = 16;

/// `--segment-size` in bytes, or `default_mib` MiB.
fn segment_bytes(args: &StoreArgs, default_mib: u64) -> anyhow::Result<u64> {
    let mib = args.segment_size.unwrap_or(default_mib);
    anyhow::ensure!(mib > 0, "--segment-size must be at least 1 (MiB)");
    Ok(mib.saturating_mul(1 << 20))
}

/// The object store a URL names (`s3://` with the `AWS_*` variables, …), with parts of
/// `--segment-size` for large objects.
pub fn object_store_at(location: &str, args: &StoreArgs) -> anyhow::Result<ObjectStoreAdapter> {
    let options = OpenOptions {
        part_size: usize::try_from(segment_bytes(args, DEFAULT_PART_MIB)?).unwrap_or(usize::MAX),
        ..OpenOptions::default()
    };
    Ok(open_url_with(location, &options)?)
}

/// The store at `location` as it is, to read or list (nothing is created).
pub async fn open_store_existing(location: &str) -> anyhow::Result<Arc<dyn Store>> {
    match kind(location)? {
        Kind::Directory(dir) => Ok(Arc::new(LocalStore::new(dir))),
        Kind::Http => bail!("{location}: an HTTP mirror is not a store"),
        Kind::Swift => Ok(Arc::new(
            SwiftStore::from_url(
                swift_client().await?,
                location,
                SwiftStoreOptions::default(),
                false,
            )
            .await?,
        )),
        Kind::ObjectStore => Ok(Arc::new(object_store_at(location, &StoreArgs::default())?)),
    }
}

fn swift_options(args: &StoreArgs) -> anyhow::Result<SwiftStoreOptions> {
    Ok(SwiftStoreOptions {
        segment_size: segment_bytes(args, swift_target::DEFAULT_SEGMENT_SIZE >> 20)?,
        public_read: args.public,
        ..SwiftStoreOptions::default()
    })
}

/// The source at `location`, to read from (nothing is created).
pub async fn open_source(location: &str, http: &HttpOptions) -> anyhow::Result<Arc<dyn Source>> {
    match kind(location)? {
        Kind::Directory(_) | Kind::Http => Ok(open_http_or_dir(location, http)?),
        Kind::Swift | Kind::ObjectStore => Ok(Arc::new(StoreSource::new(
            open_store_existing(location).await?,
        ))),
    }
}
