//! `sstream ls` and `sstream unlock`: looking at a store (a directory, Swift, an object
//! store) as the mirror tools see it, and breaking the lock a killed sync left in one.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use simplestreams_mirror::{StoreExt, STATE_DIR};

use crate::common::human;
use crate::location::{kind, object_store_at, open_store, open_store_existing, Kind, StoreArgs};

/// List the objects of a store: a directory, swift://CONTAINER/PREFIX or s3://BUCKET/PREFIX.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Show sizes for people (1.5 GiB) and the ETag of each object.
    #[arg(short, long)]
    pub long: bool,
    /// The store.
    #[arg(value_name = "URL")]
    pub location: String,
    /// Only objects below this path (e.g. streams/v1/).
    #[arg(value_name = "PREFIX", default_value = "")]
    pub prefix: String,
}

/// Break the lock a killed sync left in a Swift container or an object store.
///
/// A directory's lock is a kernel lock that goes away with its holder, so only remote stores
/// can be left locked. Check first that no sync of that store is running.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The store: swift://CONTAINER/PREFIX or s3://BUCKET/PREFIX.
    #[arg(value_name = "URL")]
    pub location: String,
}

/// The engine's lock, below a store's root.
const LOCK: &str = ".sstream-mirror/lock";

/// Runs `sstream ls`.
pub fn run_ls(args: LsArgs) -> anyhow::Result<ExitCode> {
    let rt = crate::common::runtime()?;
    let listed = rt.block_on(async {
        if kind(&args.location)? == Kind::Http {
            anyhow::bail!(
                "{}: an HTTP server cannot be listed; give a directory, swift:// or s3://",
                args.location
            );
        }
        // Listing must not create what it lists.
        let store = open_store_existing(&args.location).await?;
        Ok(store.list(&args.prefix).await?)
    })?;
    let mut rows: Vec<_> = listed
        .into_iter()
        .filter(|m| m.path.split('/').next() != Some(STATE_DIR))
        .collect();
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = std::io::stdout().lock();
    for m in &rows {
        let size = m.size.unwrap_or(0);
        if args.long {
            writeln!(
                out,
                "{:>10}  {:<34}  {}",
                human(size),
                m.validators.etag.as_deref().unwrap_or("-"),
                m.path
            )?;
        } else {
            writeln!(out, "{size:>12}  {}", m.path)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `sstream unlock`.
pub fn run_unlock(args: UnlockArgs) -> anyhow::Result<ExitCode> {
    if let Kind::Directory(dir) = kind(&args.location)? {
        anyhow::bail!(
            "{}: a directory's lock is released when the sync holding it exits; there is \
             nothing to break",
            dir.display()
        );
    }
    let rt = crate::common::runtime()?;
    if kind(&args.location)? == Kind::ObjectStore {
        // A lock there may be a set of claims (stores without conditional create).
        let store = object_store_at(&args.location, &StoreArgs::default())?;
        let n = rt.block_on(store.break_lock(LOCK))?;
        match n {
            0 => println!("{} is not locked", args.location),
            _ => println!("unlocked {} ({n} lock object(s) deleted)", args.location),
        }
        return Ok(ExitCode::SUCCESS);
    }
    rt.block_on(async {
        let store = open_store(&args.location, &StoreArgs::default()).await?;
        let holder = store.get_bytes(LOCK).await;
        match holder {
            Ok(bytes) => {
                store
                    .delete_if_present(LOCK)
                    .await
                    .with_context(|| format!("cannot delete the lock of {}", args.location))?;
                println!(
                    "unlocked {} (it was held by {})",
                    args.location,
                    String::from_utf8_lossy(&bytes).trim()
                );
            }
            Err(e) if e.is_not_found() => println!("{} is not locked", args.location),
            Err(e) => return Err(e.into()),
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
