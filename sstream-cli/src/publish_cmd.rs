//! `sstream add`, `remove`, `prune`, `promote` and `validate`: building, maintaining,
//! signing and checking a stream of one's own images in any store. The logic is the
//! `simplestreams-publish` crate's; this parses flags and prints.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::Args;
use serde_json::Value;
use simplestreams_mirror::{load_keyrings, split_entry};
use simplestreams_publish::{
    read_json2streams, read_manifest, validate, AddOutcome, CommitReport, NewImage, Placement,
    Repo, RepoOptions, VersionRef,
};

use crate::common::{human, load_signing_key, runtime, HttpArgs};
use crate::location::{open_source, open_store, StoreArgs};

/// `--signing-key`, `--passphrase-file`, `--allow-unsigning`: how a changed repository is
/// signed.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Signing")]
pub struct SigningArgs {
    /// ASCII-armored OpenPGP secret key (`sstream key generate`, or `gpg --armor
    /// --export-secret-keys`) to sign with: every changed document gets X.sjson and
    /// X.json.gpg beside X.json, an unsigned repository is signed whole, and the public key is
    /// published as streams/v1/signing-key.asc. A repository signed by another key is refused.
    #[arg(long, value_name = "KEY.asc")]
    pub signing_key: Option<PathBuf>,
    /// File whose first line is the secret key's passphrase (default:
    /// $SSTREAM_SIGNING_PASSPHRASE, if set).
    #[arg(long, value_name = "FILE", requires = "signing_key")]
    pub passphrase_file: Option<PathBuf>,
    /// Change a signed repository without its key: its signatures are removed, leaving it
    /// unsigned (without this, a signed repository is refused without its key).
    #[arg(long, conflicts_with = "signing_key")]
    pub allow_unsigning: bool,
}

/// The image flags of `sstream add` (for FILE arguments; a manifest has its own keys).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Image")]
pub struct ImageArgs {
    /// The `os` field (ubuntu, centos, …).
    #[arg(long)]
    pub os: Option<String>,
    /// The `release` field (noble, 9, …).
    #[arg(long)]
    pub release: Option<String>,
    /// The `arch` field (amd64, arm64, …).
    #[arg(long)]
    pub arch: Option<String>,
    /// The `version` field (24.04, …).
    #[arg(long)]
    pub version: Option<String>,
    /// The version name (default: the file's modification date, YYYYMMDD).
    #[arg(long, value_name = "NAME")]
    pub version_name: Option<String>,
    /// The item's ftype (default: from the file's content: disk1.img for qcow2, squashfs,
    /// root.tar.xz, lxd.tar.xz, vmdk, iso, …; required for a file of no known type).
    #[arg(long)]
    pub ftype: Option<String>,
    /// The product id (default: OS:RELEASE:ARCH, with :VARIANT when --field variant=… is
    /// given).
    #[arg(long, value_name = "ID")]
    pub product_id: Option<String>,
    /// The content id (products file) (default: the repository's content id for --stream,
    /// else images:STREAM:download).
    #[arg(long, value_name = "ID", conflicts_with = "stream")]
    pub content_id: Option<String>,
    /// The stream name: picks the content id (see --content-id) (default: released).
    #[arg(long, value_name = "NAME")]
    pub stream: Option<String>,
    /// The item name (default: the ftype).
    #[arg(long, value_name = "NAME")]
    pub item: Option<String>,
    /// An alias (LXD's `aliases`, comma-joined). Repeatable.
    #[arg(long, value_name = "ALIAS")]
    pub alias: Vec<String>,
    /// The version's `label` (release, beta, daily, …).
    #[arg(long)]
    pub label: Option<String>,
    /// Any other field, KEY=VALUE. Repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub field: Vec<String>,
    /// Where files go in the repository, e.g. '{os}/{release}/{version_name}/{arch}/{filename}'
    /// ({KEY}: any field, ftype, content_id, product_name, version_name, item_name,
    /// filename, ext, sha256) (default: images/XX/SHA256.EXT, XX the sha256's first two digits).
    #[arg(long, value_name = "TEMPLATE")]
    pub path_template: Option<String>,
    /// Also record each file's sha512.
    #[arg(long)]
    pub sha512: bool,
}

impl ImageArgs {
    fn is_empty(&self) -> bool {
        let ImageArgs {
            os,
            release,
            arch,
            version,
            version_name,
            ftype,
            product_id,
            content_id,
            stream,
            item,
            alias,
            label,
            field,
            path_template,
            sha512,
        } = self;
        [
            os,
            release,
            arch,
            version,
            version_name,
            ftype,
            product_id,
            content_id,
            stream,
            item,
            label,
            path_template,
        ]
        .iter()
        .all(|o| o.is_none())
            && alias.is_empty()
            && field.is_empty()
            && !sha512
    }

    fn image(&self, file: &Path) -> anyhow::Result<NewImage> {
        let mut image = NewImage::file(file);
        image.content_id = self.content_id.clone();
        image.stream = self.stream.clone();
        image.product_id = self.product_id.clone();
        image.version_name = self.version_name.clone();
        image.item_name = self.item.clone();
        image.ftype = self.ftype.clone();
        image.sha512 = self.sha512;
        if let Some(t) = &self.path_template {
            image.placement = Placement::Template(t.clone());
        }
        for (key, value) in [
            ("os", &self.os),
            ("release", &self.release),
            ("arch", &self.arch),
            ("version", &self.version),
            ("label", &self.label),
        ] {
            if let Some(v) = value {
                image.fields.insert(key.into(), Value::String(v.clone()));
            }
        }
        if !self.alias.is_empty() {
            image
                .fields
                .insert("aliases".into(), Value::String(self.alias.join(",")));
        }
        for kv in &self.field {
            let Some((k, v)) = kv.split_once('=').filter(|(k, _)| !k.is_empty()) else {
                bail!("--field {kv:?}: expected KEY=VALUE");
            };
            image.fields.insert(k.into(), Value::String(v.into()));
        }
        Ok(image)
    }
}

/// Add image files to a stream repository (created if new) and publish it.
///
/// Each file is copied into the repository (content-addressed by default), with its size,
/// sha256 and md5 computed as it streams and its type told from its content. Items keep
/// path, size, checksums and ftype; fields every item of a version or product shares move
/// up to it. The index and every changed products file are published (signed with
/// --signing-key), then files nothing names any more are deleted. Adding a file that is
/// already there changes nothing; two different files for one item are refused.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sstream key generate keys --name publisher\n  \
    sstream add ./repo noble-amd64.qcow2 --os ubuntu --release noble --arch amd64 \\\n    \
    --signing-key keys/publisher.sec.asc\n  \
    sstream add ./repo --manifest images.yaml --signing-key keys/publisher.sec.asc\n  \
    sstream add ./repo --from-json2streams items.json")]
pub struct AddArgs {
    /// The repository: a directory, or swift://CONTAINER/PREFIX.
    #[arg(value_name = "REPO")]
    pub repo: String,
    /// Image files to add (all with the image flags below).
    #[arg(value_name = "FILE", required_unless_present_any = ["manifest", "from_json2streams"])]
    pub files: Vec<PathBuf>,
    /// Read the images from a YAML manifest instead of FILE arguments: `images:`, a list of
    /// maps with `file` (relative to the manifest) and the image flags' names (os, release,
    /// arch, version-name, alias: [..], field: {K: V}, …), and optional `defaults:` for all
    /// (the format: simplestreams_publish::manifest). Unknown keys are refused.
    #[arg(long, value_name = "FILE.yaml", conflicts_with_all = ["files", "from_json2streams"])]
    pub manifest: Option<PathBuf>,
    /// Read the items from a flat JSON item list, as the reference's json2streams takes:
    /// each item's file is `path` below the list's directory (or --base-dir); an item whose
    /// file is absent but which gives size and a checksum is published as described.
    #[arg(long, value_name = "FILE.json", conflicts_with = "files")]
    pub from_json2streams: Option<PathBuf>,
    /// With --from-json2streams: where the items' files are (default: the list's directory).
    #[arg(long, value_name = "DIR", requires = "from_json2streams")]
    pub base_dir: Option<PathBuf>,
    /// The datatype of a products file this creates (default: image-downloads).
    #[arg(long, value_name = "TYPE")]
    pub datatype: Option<String>,
    /// Image flags.
    #[command(flatten)]
    pub image: ImageArgs,
    /// Signing flags.
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Storage flags.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Remove a product, or one version of it, and delete the files nothing names any more.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The repository: a directory, or swift://CONTAINER/PREFIX.
    #[arg(value_name = "REPO")]
    pub repo: String,
    /// The product id.
    #[arg(value_name = "PRODUCT")]
    pub product: String,
    /// The version name (default: every version, and the product).
    #[arg(value_name = "VERSION")]
    pub version: Option<String>,
    /// The content id or stream name holding the product (default: the only one that has
    /// it).
    #[arg(long, value_name = "ID|STREAM")]
    pub stream: Option<String>,
    /// Signing flags.
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Storage flags.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Keep the newest N versions of every product (by version name order, the greatest
/// newest) and delete the files of the others.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The repository: a directory, or swift://CONTAINER/PREFIX.
    #[arg(value_name = "REPO")]
    pub repo: String,
    /// Versions kept per product (at least 1).
    #[arg(long, value_name = "N")]
    pub keep: usize,
    /// Signing flags.
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Storage flags.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Copy a version from one stream to another (candidate to stable): the same items in
/// the other products file, their files shared, not copied.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
    sstream promote ./repo --from candidate --to stable ubuntu:noble:amd64 20240601")]
pub struct PromoteArgs {
    /// The repository: a directory, or swift://CONTAINER/PREFIX.
    #[arg(value_name = "REPO")]
    pub repo: String,
    /// The stream name (or content id) the version is in.
    #[arg(long, value_name = "STREAM")]
    pub from: String,
    /// The stream name (or content id) to add it to: a new stream's content id is the
    /// --from one with its stream part replaced (X:candidate:Y → X:stable:Y).
    #[arg(long, value_name = "STREAM")]
    pub to: String,
    /// The product id.
    #[arg(value_name = "PRODUCT")]
    pub product: String,
    /// The version name.
    #[arg(value_name = "VERSION")]
    pub version: String,
    /// Signing flags.
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Storage flags.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Check a stream as its consumers rely on it: metadata format and required fields, path
/// safety, duplicate ids, colliding paths, the index against its files, every file's size
/// and checksums (each file is read and hashed), every signature.
///
/// Prints one line per problem (`FILE: FIELD: MESSAGE`) and exits 1 if there is any.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The stream's root: a directory, http(s):// URL, or swift://CONTAINER/PREFIX (a URL
    /// to its streams/v1/index.json is taken too).
    #[arg(value_name = "REPO_OR_URL")]
    pub location: String,
    /// Keyring (binary or armored) whose keys must have signed every document (each must
    /// then have a good X.sjson). Without it, signatures present are checked against the
    /// key published beside the stream (streams/v1/signing-key.asc). Repeatable.
    #[arg(long, value_name = "KEYRING")]
    pub keyring: Vec<PathBuf>,
    /// Network flags.
    #[command(flatten)]
    pub http: HttpArgs,
}

/// Opens the repository at `location` with the signing flags.
async fn open_repo(
    location: &str,
    signing: &SigningArgs,
    store: &StoreArgs,
) -> anyhow::Result<Repo> {
    let key = match &signing.signing_key {
        Some(path) => Some(Arc::new(load_signing_key(
            path,
            signing.passphrase_file.as_deref(),
        )?)),
        None => None,
    };
    let store = open_store(location, store).await?;
    let options = RepoOptions {
        allow_unsigning: signing.allow_unsigning,
    };
    Repo::open_with(store, key, options)
        .await
        .with_context(|| format!("cannot open the repository {location}"))
}

/// Publishes, printing what was written and deleted.
async fn commit(repo: Repo, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let report: CommitReport = repo.commit().await?;
    for doc in &report.published {
        writeln!(
            out,
            "published {doc}{}",
            if report.signed { " (signed)" } else { "" }
        )?;
    }
    for path in &report.deleted {
        writeln!(out, "deleted {path}")?;
    }
    if report.is_noop() {
        writeln!(out, "nothing changed")?;
    }
    Ok(())
}

/// Runs `sstream add`.
pub fn run_add(args: AddArgs) -> anyhow::Result<ExitCode> {
    if (args.manifest.is_some() || args.from_json2streams.is_some()) && !args.image.is_empty() {
        bail!("the image flags apply to FILE arguments; a manifest gives its own (and defaults)");
    }
    let mut images = if let Some(manifest) = &args.manifest {
        read_manifest(manifest)?
    } else if let Some(list) = &args.from_json2streams {
        read_json2streams(list, args.base_dir.as_deref())?
    } else {
        args.files
            .iter()
            .map(|f| args.image.image(f))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    if let Some(datatype) = &args.datatype {
        for image in &mut images {
            image.datatype = Some(datatype.clone());
        }
    }
    let rt = runtime()?;
    rt.block_on(async {
        let mut repo = open_repo(&args.repo, &args.signing, &args.store).await?;
        // Buffered: a flat list adds thousands of lines.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let report = match repo.add(images).await {
            Ok(r) => r,
            Err(e) => {
                if let Err(cleanup) = repo.abort().await {
                    tracing::warn!("cannot remove the files copied before the failure: {cleanup}");
                }
                return Err(e.into());
            }
        };
        for i in &report.images {
            let what = match i.outcome {
                AddOutcome::Added => "added",
                AddOutcome::Shared => "added (file shared)",
                AddOutcome::Described => "added (as described, not copied)",
                AddOutcome::Unchanged => "unchanged",
                AddOutcome::Restored => "unchanged (its missing file put back)",
            };
            writeln!(
                out,
                "{what} {} {} {} {} {} ({})",
                i.content_id,
                i.product,
                i.version,
                i.item,
                i.path,
                human(i.size)
            )?;
        }
        out.flush()?;
        commit(repo, &mut out).await?;
        out.flush()?;
        Ok(ExitCode::SUCCESS)
    })
}

fn print_versions(
    verb: &str,
    versions: &[VersionRef],
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    for v in versions {
        writeln!(out, "{verb} {} {} {}", v.content_id, v.product, v.version)?;
    }
    Ok(())
}

/// Runs `sstream remove`.
pub fn run_remove(args: RemoveArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut repo = open_repo(&args.repo, &args.signing, &args.store).await?;
        let removed = repo.remove(
            args.stream.as_deref(),
            &args.product,
            args.version.as_deref(),
        )?;
        let mut out = std::io::stdout().lock();
        print_versions("removed", &removed, &mut out)?;
        commit(repo, &mut out).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `sstream prune`.
pub fn run_prune(args: PruneArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut repo = open_repo(&args.repo, &args.signing, &args.store).await?;
        let removed = repo.prune(args.keep)?;
        let mut out = std::io::stdout().lock();
        print_versions("removed", &removed, &mut out)?;
        commit(repo, &mut out).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `sstream promote`.
pub fn run_promote(args: PromoteArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut repo = open_repo(&args.repo, &args.signing, &args.store).await?;
        let r = repo.promote(&args.from, &args.to, &args.product, &args.version)?;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{} {} {} {} -> {} ({} items)",
            if r.unchanged {
                "already promoted"
            } else {
                "promoted"
            },
            r.from.content_id,
            r.from.product,
            r.from.version,
            r.to_content_id,
            r.items
        )?;
        commit(repo, &mut out).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `sstream validate`.
pub fn run_validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let keyring = if args.keyring.is_empty() {
        None
    } else {
        Some(load_keyrings(&args.keyring).context("cannot read the keyring")?)
    };
    let root = match args.location.find("streams/v1/") {
        Some(_) => split_entry(&args.location, None).0,
        None => args.location.clone(),
    };
    let root = if root.is_empty() {
        ".".to_string()
    } else {
        root
    };
    let http = args.http.options()?;
    runtime()?.block_on(async {
        let source = open_source(&root, &http).await?;
        let report = validate(source, keyring.as_ref()).await?;
        let mut out = std::io::stdout().lock();
        for p in &report.problems {
            writeln!(out, "{p}")?;
        }
        for n in &report.notes {
            tracing::warn!("{n}");
        }
        let summary = format!(
            "{} documents, {} items, {} files ({}) checked",
            report.documents,
            report.items,
            report.files,
            human(report.bytes)
        );
        if report.is_ok() {
            writeln!(out, "ok: {summary}")?;
            Ok(ExitCode::SUCCESS)
        } else {
            writeln!(out, "{} problems: {summary}", report.problems.len())?;
            Ok(ExitCode::FAILURE)
        }
    })
}
