//! Reading a checksum-file directory into a products document: which directories and checksum
//! files, their entries merged, each file placed by the layout, sidecars merged, sizes found
//! for the items in scope.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::SystemTime;

use futures::stream::{self, StreamExt, TryStreamExt};
use simplestreams_core::sums::{
    default_content_id, is_checksum_file_name, is_signature_name, merge_sidecar, parse_sidecar,
    rfc2822, sidecar_of, yyyymmdd, DirContext, DirSums, Layout, Listed, StreamBuilder, SumsError,
    SumsImage, SIDECAR_SUFFIXES, STANDARD_SUMS,
};
use simplestreams_core::{
    check_safe_path, select_ids, version_cmp, Expected, FilterSet, Products, StreamVerifier,
};

use super::list::{DirEntries, DirLister};
use super::read::read_checksum_file;
use super::{sums_err, SumsLocation, SumsOptions};
use crate::error::{Error, Result};
use crate::metadata::SignatureMode;
use crate::source::Source;
use crate::store::{collect, GetOptions, GetResult};

/// The largest sidecar file read.
const MAX_SIDECAR: u64 = 1 << 20;

/// What was read.
pub(super) struct Scanned {
    pub layout: Layout,
    pub products: Products,
    pub checksum_files: Vec<String>,
}

/// One directory to read.
#[derive(Debug, Clone)]
struct DirPlan {
    /// Below the root (`""` for the root).
    rel: String,
    /// Its own name.
    name: String,
    /// The checksum files to read in it.
    sums: Vec<String>,
    /// Whether a checksum file that is not there is skipped (names guessed without a listing).
    optional: bool,
    /// Its listing, when there is one.
    entries: Option<DirEntries>,
}

/// A directory read.
struct DirRead {
    plan: DirPlan,
    sums: DirSums,
    modified: Option<SystemTime>,
}

/// An image found, before its sidecar and size.
struct Pending {
    image: SumsImage,
    sidecar: Option<Sidecar>,
}

struct Sidecar {
    path: String,
    listed: Option<Listed>,
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

/// The checksum files of a listing: the one named, or the standard ones (strongest first)
/// and `*-CHECKSUM`.
fn sums_in(entries: &DirEntries, sums_name: Option<&str>) -> Vec<String> {
    if let Some(n) = sums_name {
        return if entries.files.contains_key(n) {
            vec![n.to_string()]
        } else {
            Vec::new()
        };
    }
    let mut out: Vec<String> = STANDARD_SUMS
        .iter()
        .filter(|n| entries.files.contains_key(**n))
        .map(|n| n.to_string())
        .collect();
    out.extend(
        entries
            .files
            .keys()
            .filter(|n| is_checksum_file_name(n) && !STANDARD_SUMS.contains(&n.as_str()))
            .cloned(),
    );
    out
}

/// Which directories to read, and the layout their names suggest (a parent of dated ones).
async fn plan_dirs(
    loc: &SumsLocation,
    lister: &dyn DirLister,
    options: &SumsOptions,
) -> Result<(Vec<DirPlan>, Option<Layout>)> {
    if let Some(f) = &loc.sums_file {
        let entries = match lister.list("").await {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::info!(
                    "{}: no directory listing ({e}): sizes by HEAD, sidecars only when listed",
                    loc.root
                );
                None
            }
        };
        let plan = DirPlan {
            rel: String::new(),
            name: loc.name.clone(),
            sums: vec![f.clone()],
            optional: false,
            entries,
        };
        return Ok((vec![plan], None));
    }
    let entries = match lister.list("").await {
        Ok(e) => e,
        Err(e) => {
            // No listing: the checksum files can still be fetched by name.
            tracing::info!(
                "{}: no directory listing ({e}); trying checksum files by name",
                loc.root
            );
            let (sums, optional) = match &options.sums_name {
                Some(n) => (vec![n.clone()], false),
                None => (STANDARD_SUMS.iter().map(|s| s.to_string()).collect(), true),
            };
            let plan = DirPlan {
                rel: String::new(),
                name: loc.name.clone(),
                sums,
                optional,
                entries: None,
            };
            return Ok((vec![plan], None));
        }
    };
    let here = sums_in(&entries, options.sums_name.as_deref());
    if !here.is_empty() {
        let plan = DirPlan {
            rel: String::new(),
            name: loc.name.clone(),
            sums: here,
            optional: false,
            entries: Some(entries),
        };
        return Ok((vec![plan], None));
    }
    // A parent: its subdirectories the layout reads are versions.
    let detected = match &options.layout {
        Some(_) => None,
        None => Layout::detect_dirs(entries.dirs.iter().map(String::as_str)),
    };
    let layout = options
        .layout
        .clone()
        .or_else(|| detected.clone())
        .unwrap_or(Layout::Plain);
    let mut dirs: Vec<String> = Vec::new();
    for d in &entries.dirs {
        if !layout.reads_dir(d) || check_safe_path(d).is_err() {
            tracing::info!(
                "{}{d}/: not a directory the {} layout reads: ignored",
                slash(&loc.root),
                layout.name()
            );
            continue;
        }
        dirs.push(d.clone());
    }
    dirs.sort_by(|a, b| version_cmp(a, b));
    if let Some(n) = options.max_dirs {
        let skip = dirs.len().saturating_sub(n);
        for d in dirs.drain(..skip) {
            tracing::info!(
                "{}{d}/: older than the newest {n} (--max-dirs): not read",
                slash(&loc.root)
            );
        }
    }
    let listed: Vec<(String, DirEntries)> = stream::iter(dirs)
        .map(|d| async move {
            let e = lister.list(&d).await?;
            Ok::<_, Error>((d, e))
        })
        .buffered(options.jobs.max(1))
        .try_collect()
        .await?;
    let mut plans = Vec::new();
    for (d, e) in listed {
        let sums = sums_in(&e, options.sums_name.as_deref());
        if sums.is_empty() {
            tracing::info!("{}{d}/: no checksum file: ignored", slash(&loc.root));
            continue;
        }
        plans.push(DirPlan {
            rel: d.clone(),
            name: d,
            sums,
            optional: false,
            entries: Some(e),
        });
    }
    if plans.is_empty() {
        return Err(sums_err(SumsError::Empty {
            location: loc.root.clone(),
            message: format!(
                "no checksum file ({}) here, nor in a subdirectory the {} layout reads",
                options.sums_name.clone().unwrap_or_else(|| {
                    "SHA512SUMS, SHA256SUMS, MD5SUMS, *-CHECKSUM; --sums \
                                         names another"
                        .into()
                }),
                layout.name()
            ),
        }));
    }
    Ok((plans, detected))
}

fn slash(root: &str) -> String {
    if root.ends_with('/') {
        root.to_string()
    } else {
        format!("{root}/")
    }
}

/// Reads the checksum files of one directory and merges them.
async fn read_dir(
    plan: DirPlan,
    files: &Arc<dyn Source>,
    options: &SumsOptions,
) -> Result<(DirRead, Vec<String>)> {
    let mut sums = DirSums::default();
    let mut modified: Option<SystemTime> = None;
    let mut read_names = Vec::new();
    for name in &plan.sums {
        let path = join(&plan.rel, name);
        let read = match read_checksum_file(files, &path, &options.signatures, options.limits).await
        {
            Ok(r) => r,
            Err(e) if plan.optional && e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        sums.add(&read.file).map_err(sums_err)?;
        let listed_at = plan
            .entries
            .as_ref()
            .and_then(|e| e.files.get(name.as_str()))
            .and_then(|s| s.modified);
        for t in [read.modified, listed_at].into_iter().flatten() {
            modified = Some(modified.map_or(t, |m| m.max(t)));
        }
        read_names.push(read.file.file.clone());
    }
    Ok((
        DirRead {
            plan,
            sums,
            modified,
        },
        read_names,
    ))
}

/// Reads everything and makes the products document.
pub(super) async fn scan(
    loc: &SumsLocation,
    files: &Arc<dyn Source>,
    lister: &dyn DirLister,
    options: &SumsOptions,
) -> Result<Scanned> {
    let (plans, dir_layout) = plan_dirs(loc, lister, options).await?;
    let jobs = options.jobs.max(1);
    let reads: Vec<(DirRead, Vec<String>)> = stream::iter(plans)
        .map(|p| read_dir(p, files, options))
        .buffered(jobs.min(8))
        .try_collect()
        .await?;
    let checksum_files: Vec<String> = reads.iter().flat_map(|(_, n)| n.clone()).collect();
    if checksum_files.is_empty() {
        return Err(sums_err(SumsError::Empty {
            location: loc.root.clone(),
            message: "no checksum file (SHA512SUMS, SHA256SUMS or MD5SUMS; --sums names another)"
                .into(),
        }));
    }
    let dirs: Vec<DirRead> = reads.into_iter().map(|(d, _)| d).collect();
    let layout = match (&options.layout, dir_layout) {
        (Some(l), _) => l.clone(),
        (None, Some(l)) => l,
        (None, None) => Layout::detect(
            dirs.iter()
                .flat_map(|d| d.sums.files.keys())
                .map(|n| n.rsplit('/').next().unwrap_or(n)),
        ),
    };
    let content_id = options
        .content_id
        .clone()
        .unwrap_or_else(|| default_content_id(&loc.host, layout.name()));
    let keyed = options.signatures.mode != SignatureMode::Off;

    let mut pending: Vec<Pending> = Vec::new();
    let mut listed_total = 0;
    let mut updated: Option<SystemTime> = None;
    for dir in &dirs {
        if let Some(t) = dir.modified {
            updated = Some(updated.map_or(t, |u| u.max(t)));
        }
        let date = dir.modified.map(yyyymmdd);
        let ctx = DirContext {
            rel: &dir.plan.rel,
            name: &dir.plan.name,
            date: date.as_deref(),
        };
        let here = dir.plan.entries.as_ref();
        let listed = &dir.sums.files;
        listed_total += listed.len();
        let present =
            |n: &str| listed.contains_key(n) || here.is_some_and(|e| e.files.contains_key(n));
        let sidecars: BTreeSet<String> = listed
            .keys()
            .flat_map(|n| SIDECAR_SUFFIXES.iter().map(move |s| format!("{n}{s}")))
            .filter(|s| present(s))
            .collect();
        let sources = dir.sums.sources.join(", ");
        for (name, l) in listed {
            let file_name = name.rsplit('/').next().unwrap_or(name);
            if sidecars.contains(name)
                || is_checksum_file_name(file_name)
                || is_signature_name(file_name)
            {
                continue;
            }
            let path = join(&dir.plan.rel, name);
            let Some(place) = layout.classify(&ctx, file_name) else {
                tracing::info!(
                    "{}{path}: listed in {sources}, but not an image of the {} layout: ignored",
                    slash(&loc.root),
                    layout.name()
                );
                continue;
            };
            let size = l.size.or_else(|| {
                here.and_then(|e| e.files.get(name.as_str()))
                    .and_then(|s| s.size)
            });
            let sidecar = SIDECAR_SUFFIXES
                .iter()
                .map(|s| format!("{name}{s}"))
                .find(|s| sidecars.contains(s))
                .map(|s| Sidecar {
                    path: join(&dir.plan.rel, &s),
                    listed: listed.get(&s).cloned(),
                });
            pending.push(Pending {
                image: SumsImage {
                    path,
                    place,
                    size,
                    digests: l
                        .digests
                        .iter()
                        .map(|(k, d)| (*k, d.digest.clone()))
                        .collect(),
                    extra: Default::default(),
                },
                sidecar,
            });
        }
        if let Some(entries) = here {
            for n in entries.files.keys() {
                let is_sidecar = sidecar_of(n).is_some_and(|img| listed.contains_key(img));
                if listed.contains_key(n)
                    || is_sidecar
                    || is_checksum_file_name(n)
                    || is_signature_name(n)
                {
                    continue;
                }
                tracing::info!(
                    "{}{}: not listed in {sources}: ignored",
                    slash(&loc.root),
                    join(&dir.plan.rel, n)
                );
            }
        }
    }

    // Sidecars, in parallel.
    let pending: Vec<Pending> = stream::iter(pending)
        .map(|p| with_sidecar(p, files, keyed))
        .buffered(jobs)
        .try_collect()
        .await?;
    let mut builder = StreamBuilder::new(&content_id, layout.name());
    for p in pending {
        builder.add(p.image).map_err(sums_err)?;
    }
    if builder.is_empty() {
        return Err(sums_err(SumsError::Empty {
            location: loc.root.clone(),
            message: format!(
                "no image: {listed_total} file(s) listed in {}, none an image of the {} layout \
                 (--layout names another, or a regex)",
                checksum_files.join(", "),
                layout.name()
            ),
        }));
    }
    find_sizes(&mut builder, loc, files, lister, options).await?;
    let products = builder.products(updated.map(rfc2822).as_deref());
    Ok(Scanned {
        layout,
        products,
        checksum_files,
    })
}

/// Reads an image's sidecar, checks it against the checksum file when listed there, and
/// keeps its fields. Under a keyring, a sidecar the signed checksum file does not vouch for
/// is not used.
async fn with_sidecar(mut p: Pending, files: &Arc<dyn Source>, keyed: bool) -> Result<Pending> {
    let Some(side) = p.sidecar.take() else {
        return Ok(p);
    };
    let url = files.url(&side.path);
    if keyed && side.listed.is_none() {
        tracing::warn!(
            "{url}: not listed in the signed checksum file, so not used (list it there to use it)"
        );
        return Ok(p);
    }
    let options = GetOptions {
        whole_up_to: Some(MAX_SIDECAR),
        ..GetOptions::default()
    };
    let bytes = match files.get(&side.path, options).await? {
        GetResult::Found { meta, body } => {
            if meta.size.is_some_and(|n| n > MAX_SIDECAR) {
                return Err(Error::TooLarge {
                    location: url,
                    limit: MAX_SIDECAR,
                });
            }
            collect(body).await?
        }
        GetResult::NotModified => {
            return Err(Error::Aborted(format!(
                "{url}: not modified to a plain request"
            )))
        }
    };
    if let Some(listed) = &side.listed {
        let expected = Expected {
            size: Some(bytes.len() as u64),
            md5: listed
                .digests
                .get(&simplestreams_core::ChecksumKind::Md5)
                .map(|d| d.digest.clone()),
            sha256: listed
                .digests
                .get(&simplestreams_core::ChecksumKind::Sha256)
                .map(|d| d.digest.clone()),
            sha512: listed
                .digests
                .get(&simplestreams_core::ChecksumKind::Sha512)
                .map(|d| d.digest.clone()),
        };
        let mut v = StreamVerifier::new(url.clone(), expected);
        v.update(&bytes)?;
        v.finish()?;
    }
    let fields = parse_sidecar(&bytes, &url).map_err(sums_err)?;
    merge_sidecar(&mut p.image.extra, &fields, &url).map_err(sums_err)?;
    Ok(p)
}

/// Finds the sizes the listing did not give, for the items in scope (a `HEAD` each over
/// HTTP). A file that is not there is said, and its item keeps no size.
async fn find_sizes(
    builder: &mut StreamBuilder,
    loc: &SumsLocation,
    files: &Arc<dyn Source>,
    lister: &dyn DirLister,
    options: &SumsOptions,
) -> Result<()> {
    let doc = builder.products(None);
    let scope = &options.scope;
    // A filter on the size itself cannot be applied before the sizes are known: then every
    // item needs one.
    let on_size = scope.filters.filters().iter().any(|f| f.key() == "size");
    let (filters, max) = if on_size {
        (FilterSet::default(), None)
    } else {
        (scope.filters.clone(), scope.max)
    };
    let needed: Vec<(String, String, String, String)> = select_ids(&doc, &filters, max)
        .into_iter()
        .filter_map(|id| {
            let item = doc.item(id.product, id.version, id.item)?;
            if item.size().is_some() {
                return None;
            }
            Some((
                id.product.to_string(),
                id.version.to_string(),
                id.item.to_string(),
                item.path()?.to_string(),
            ))
        })
        .collect();
    if needed.is_empty() {
        return Ok(());
    }
    tracing::debug!("{}: finding the size of {} file(s)", loc.root, needed.len());
    let found: Vec<_> = stream::iter(needed)
        .map(|(p, v, i, path)| async move {
            let stat = lister.stat(&path).await?;
            Ok::<_, Error>((p, v, i, path, stat))
        })
        .buffer_unordered(options.jobs.max(1))
        .try_collect()
        .await?;
    for (p, v, i, path, stat) in found {
        match stat.and_then(|s| s.size.map(|n| (s, n))) {
            Some((_, size)) => builder.set_size(&p, &v, &i, size),
            None if stat.is_some() => tracing::warn!(
                "{}: its size is not known (no Content-Length): item {p} {v} {i} cannot be \
                 verified, and will be refused",
                files.url(&path)
            ),
            None => tracing::warn!(
                "{}: listed in the checksum file, but not found: item {p} {v} {i} has no size \
                 and will fail",
                files.url(&path)
            ),
        }
    }
    Ok(())
}
