//! `sstream convert SOURCE OUT`: a directory of images with a checksum file (Debian's, Ubuntu's,
//! Fedora's, an in-house one) written as a real simplestreams tree: the stream `SumsSource`
//! makes of it, published through the one `Publisher` (`.json`, and signed `.sjson` +
//! `.json.gpg` + the public key with `--signing-key`). The images are not copied unless
//! `--with-files`, which mirrors them (verified as they stream) beside the metadata.
//!
//! Item paths are relative to the source's directory: without `--with-files`, serve OUT's
//! `streams/` from that same directory (write OUT into it), so that the paths resolve.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use simplestreams_core::{FilterSet, PlanLimits};
use simplestreams_mirror::sums::{SizeScope, SUMS_INDEX_PATH};
use simplestreams_mirror::{MetadataMode, Mirror, Publisher, SyncOptions};

use crate::common::{error_message, load_signing_key, HttpArgs, SumsArgs, SyncArgs, VerifyArgs};
use crate::location::{open_store, StoreArgs};
use crate::source::Stream;

/// `sstream convert`.
#[derive(Debug, Args)]
#[command(
    after_help = "SOURCE is a checksum file (…/SHA256SUMS, …/SHA512SUMS, …/MD5SUMS, \
                  …/*-CHECKSUM) or a directory holding one (or a parent of dated directories \
                  holding one each); --layout says how file names map to products (default: \
                  detected).\n\nExample:\n  sstream convert --signing-key key.asc \
                  https://cloud.debian.org/images/cloud/bookworm/ --max-dirs 2 /srv/debian-stream"
)]
pub struct ConvertArgs {
    /// Sign the metadata with this armored secret key (.sjson and .json.gpg beside each
    /// .json, the public key as streams/v1/signing-key.asc). The passphrase, if any, is read
    /// from $SSTREAM_SIGNING_PASSPHRASE.
    #[arg(long, value_name = "KEYFILE")]
    pub signing_key: Option<PathBuf>,
    /// Copy the image files too (each verified against its checksum as it streams), so that
    /// OUT is a complete mirror.
    #[arg(long)]
    pub with_files: bool,
    /// With --with-files: parallel downloads.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 4)]
    pub jobs: usize,
    /// Checksum-file directory flags.
    #[command(flatten)]
    pub sums: SumsArgs,
    /// Signature flags (of the checksum files).
    #[command(flatten)]
    pub verify: VerifyArgs,
    /// Verification flags (with --with-files).
    #[command(flatten)]
    pub sync: SyncArgs,
    /// Network flags.
    #[command(flatten)]
    pub http: HttpArgs,
    /// Storage flags.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The checksum file, or the directory (http(s)://, file://, a path, swift://, s3://).
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// Where to write the stream: a directory, swift://CONTAINER/PREFIX or s3://BUCKET/PREFIX.
    #[arg(value_name = "OUT")]
    pub out: String,
    /// Item filters (KEY=VALUE, KEY!=VALUE, KEY~REGEX, KEY!~REGEX): only what passes is
    /// written.
    #[arg(value_name = "FILTERS")]
    pub filters: Vec<String>,
}

/// Runs `sstream convert`.
pub fn run(mut args: ConvertArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.jobs > 0, "--jobs must be at least 1");
    // The source is a checksum-file directory whatever its name: detect the layout unless told.
    args.sums.layout.get_or_insert_with(|| "auto".into());
    let filters = FilterSet::parse(&args.filters)?;
    let signing_key = match &args.signing_key {
        Some(path) => Some(Arc::new(load_signing_key(path, None)?)),
        None => None,
    };
    let rt = crate::common::runtime()?;
    let scope = SizeScope {
        filters: filters.clone(),
        max: None,
    };
    let stream = rt.block_on(Stream::open_with(
        &args.source,
        None,
        &[],
        &args.http,
        &args.sums,
        &args.verify,
        scope,
    ))?;
    let sums = stream
        .sums
        .clone()
        .context("the source was not read as a checksum-file directory")?;
    let store = rt.block_on(open_store(&args.out, &args.store))?;

    if args.with_files {
        let options = SyncOptions {
            entry: SUMS_INDEX_PATH.into(),
            filters,
            limits: PlanLimits::default(),
            item_download: true,
            jobs: args.jobs,
            metadata: MetadataMode::Filtered,
            signatures: None,
            metadata_limits: args.http.metadata_limits()?,
            signing_key,
            checksums: args.sync.checksums(),
            freshness: args.sync.freshness(),
            verify_existing: args.sync.verify_existing,
            decompress: None,
        };
        let report = rt
            .block_on(Mirror::to_store(stream.source.clone(), store, options).run())
            .with_context(|| format!("cannot convert {} into {}", args.source, args.out))?;
        eprintln!(
            "sstream convert: {} file(s) copied, {} already present; {} products file(s){} written",
            report.downloaded,
            report.present,
            report.products_published.len(),
            if report.index_published {
                " and the index"
            } else {
                ""
            }
        );
        for e in &report.errors {
            eprintln!("{}", error_message("sstream convert", e));
        }
        return Ok(if report.is_success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }

    let mut products = sums.products().clone();
    if !filters.is_empty() {
        let keep: std::collections::HashSet<(String, String, String)> =
            simplestreams_core::select_ids(&products, &filters, None)
                .into_iter()
                .map(|id| (id.product.into(), id.version.into(), id.item.into()))
                .collect();
        products.products.retain(|p, product| {
            product.versions.retain(|v, version| {
                version
                    .items
                    .retain(|i, _| keep.contains(&(p.clone(), v.clone(), i.clone())));
                !version.items.is_empty()
            });
            !product.versions.is_empty()
        });
    }
    let index = simplestreams_core::sums::index_of_products(&products, sums.products_path());
    let publisher = Publisher::new(store).signing_with(signing_key);
    let wrote = rt
        .block_on(async {
            let p = publisher
                .products(sums.products_path(), products.to_vec_pretty())
                .await?;
            let i = publisher
                .document(SUMS_INDEX_PATH, &index.to_vec_pretty())
                .await?;
            Ok::<_, simplestreams_mirror::Error>(p || i)
        })
        .with_context(|| format!("cannot write the stream into {}", args.out))?;
    eprintln!(
        "sstream convert: {} item(s) in {} product(s) as {}{}; {}",
        products.item_count(),
        products.products.len(),
        publisher.entry_path(SUMS_INDEX_PATH),
        if publisher.signs() { " (signed)" } else { "" },
        if wrote { "written" } else { "unchanged" }
    );
    Ok(ExitCode::SUCCESS)
}
