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
use simplestreams_publish::lxd::combined_fields;
use simplestreams_publish::maas::MAAS_FTYPES;
use simplestreams_publish::{
    read_manifest_images, spawn_json2streams, validate, AddOutcome, AddReport, CommitReport,
    ImageBatches, LxdImage, LxdRoot, MaasImage, ManifestImage, NewImage, Placement, Repo,
    RepoOptions, VersionRef,
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

/// The flavour flags of `sstream add`: LXD/Incus images and MAAS boot resources.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Flavours")]
pub struct FlavourArgs {
    /// Publish an LXD image: this is its metadata tarball (lxd.tar.xz), the FILE arguments
    /// are its root file systems (a squashfs: a container; a qcow2 disk-kvm.img: a virtual
    /// machine; a root.tar.xz), told apart by content or given as FTYPE=FILE. The product is
    /// OS:RELEASE:VARIANT:ARCH, the version YYYYMMDD_HHMM (the tarball's modification time),
    /// the fingerprints (combined_*_sha256: sha256 of the tarball followed by the root file
    /// system) go on the metadata item; fields sit where LXD reads them, never condensed.
    /// Needs --os, --release and --arch.
    #[arg(long, value_name = "META.tar.xz", conflicts_with_all = ["manifest", "from_json2streams", "maas"])]
    pub lxd: Option<PathBuf>,
    /// With --lxd: also publish the metadata as an incus.tar.xz item (the same file), which
    /// Incus reads (LXD reads only lxd.tar.xz).
    #[arg(long, requires = "lxd")]
    pub incus: bool,
    /// Publish a MAAS boot resource: the FILE arguments are FTYPE=FILE, boot-kernel=,
    /// boot-initrd=, squashfs= and manifest= for a boot image (product
    /// PREFIX:v3:boot:VERSION:ARCH:SUBARCH), or root-tgz= (or root-dd=) and manifest= for a
    /// custom image (os custom, product PREFIX:OS-bases:RELEASE:ARCH). Stream `stable` by
    /// default, content id PREFIX:STREAM:v3:download, datatype image-ids, as images.maas.io.
    /// Needs --release and --arch.
    #[arg(long, conflicts_with_all = ["manifest", "from_json2streams"])]
    pub maas: bool,
    /// LXD: the `variant` (default: default).
    #[arg(long)]
    pub variant: Option<String>,
    /// LXD, MAAS: the `release_title` ("24.04 LTS"; default: the release (LXD), the version
    /// (MAAS)).
    #[arg(long, value_name = "TITLE")]
    pub release_title: Option<String>,
    /// LXD: a `requirements` entry, KEY=VALUE (secureboot=false, nesting=true, cgroup=v1).
    /// Repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub requirement: Vec<String>,
    /// MAAS: the `subarch` (default: ga-VERSION for a boot image, generic for a custom one).
    #[arg(long)]
    pub subarch: Option<String>,
    /// MAAS: the `subarches` the kernel boots, comma-separated (default: generic,SUBARCH).
    #[arg(long)]
    pub subarches: Option<String>,
    /// MAAS: the kernel flavour, `kflavor` (default: generic).
    #[arg(long)]
    pub kflavor: Option<String>,
    /// MAAS: the kernel's release, `krel` (default: the release).
    #[arg(long)]
    pub krel: Option<String>,
    /// MAAS: the `release_codename` ("Noble Numbat"; default: the release).
    #[arg(long, value_name = "NAME")]
    pub release_codename: Option<String>,
    /// MAAS: the `support_eol`, YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub support_eol: Option<String>,
    /// MAAS: the kernel's package (`kpackage` on the boot-kernel item).
    #[arg(long, value_name = "PACKAGE")]
    pub kpackage: Option<String>,
    /// MAAS: the first part of content and product ids (default: images).
    #[arg(long, value_name = "PREFIX")]
    pub content_prefix: Option<String>,
}

impl FlavourArgs {
    fn is_empty(&self) -> bool {
        self.lxd.is_none()
            && !self.maas
            && [
                &self.variant,
                &self.release_title,
                &self.subarch,
                &self.subarches,
                &self.kflavor,
                &self.krel,
                &self.release_codename,
                &self.support_eol,
                &self.kpackage,
                &self.content_prefix,
            ]
            .iter()
            .all(|o| o.is_none())
            && self.requirement.is_empty()
    }
}

/// `FTYPE=FILE`, when the argument has that form with a known ftype.
fn ftype_file(arg: &Path, known: impl Fn(&str) -> bool) -> Option<(String, PathBuf)> {
    let text = arg.to_str()?;
    let (ftype, file) = text.split_once('=')?;
    (known(ftype) && !file.is_empty()).then(|| (ftype.to_string(), PathBuf::from(file)))
}

/// Fields given as --field, as a map.
fn field_map(fields: &[String]) -> anyhow::Result<simplestreams_core::Map> {
    let mut out = simplestreams_core::Map::new();
    for kv in fields {
        let Some((k, v)) = kv.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            bail!("{kv:?}: expected KEY=VALUE");
        };
        out.insert(k.into(), Value::String(v.into()));
    }
    Ok(out)
}

impl AddArgs {
    /// The image flags that make no sense for a flavour.
    fn refuse_item_flags(&self, flavour: &str) -> anyhow::Result<()> {
        if self.image.ftype.is_some() || self.image.item.is_some() {
            bail!("--ftype and --item do not apply to --{flavour}: items are named by their ftype");
        }
        Ok(())
    }

    fn lxd_image(&self, meta: &Path) -> anyhow::Result<LxdImage> {
        self.refuse_item_flags("lxd")?;
        if self
            .datatype
            .as_deref()
            .is_some_and(|d| d != "image-downloads")
        {
            bail!("--lxd: LXD reads only streams of datatype image-downloads");
        }
        let i = &self.image;
        let f = &self.flavour;
        let need = |v: &Option<String>, flag: &str| {
            v.clone().with_context(|| format!("--lxd needs --{flag}"))
        };
        let mut image = LxdImage::new(
            meta,
            need(&i.os, "os")?,
            need(&i.release, "release")?,
            need(&i.arch, "arch")?,
        );
        for file in &self.files {
            image
                .roots
                .push(match ftype_file(file, |f| combined_fields(f).is_some()) {
                    Some((ftype, file)) => LxdRoot {
                        file,
                        ftype: Some(ftype),
                    },
                    None => LxdRoot {
                        file: file.clone(),
                        ftype: None,
                    },
                });
        }
        image.incus = f.incus;
        image.variant = f.variant.clone();
        image.release_title = f.release_title.clone();
        image.aliases = i.alias.clone();
        image.label = i.label.clone();
        for kv in &f.requirement {
            let Some((k, v)) = kv.split_once('=').filter(|(k, _)| !k.is_empty()) else {
                bail!("--requirement {kv:?}: expected KEY=VALUE");
            };
            image.requirements.insert(k.into(), Value::String(v.into()));
        }
        image.product_fields = field_map(&i.field).context("--field")?;
        if let Some(v) = &i.version {
            image
                .product_fields
                .insert("version".into(), Value::String(v.clone()));
        }
        image.product_id = i.product_id.clone();
        image.version_name = i.version_name.clone();
        image.content_id = i.content_id.clone();
        image.stream = i.stream.clone();
        if let Some(t) = &i.path_template {
            image.placement = Placement::Template(t.clone());
        }
        image.sha512 = i.sha512;
        Ok(image)
    }

    fn maas_image(&self) -> anyhow::Result<MaasImage> {
        self.refuse_item_flags("maas")?;
        if self.datatype.as_deref().is_some_and(|d| d != "image-ids") {
            bail!("--maas: MAAS boot resources are published as datatype image-ids");
        }
        let i = &self.image;
        let f = &self.flavour;
        if !i.alias.is_empty() || f.variant.is_some() || !f.requirement.is_empty() || f.incus {
            bail!("--alias, --variant, --requirement and --incus are for --lxd images");
        }
        let mut files = Vec::new();
        for file in &self.files {
            let Some(pair) = ftype_file(file, |f| MAAS_FTYPES.contains(&f)) else {
                bail!(
                    "--maas: {}: give each file as FTYPE=FILE, FTYPE one of {}",
                    file.display(),
                    MAAS_FTYPES.join(", ")
                );
            };
            files.push(pair);
        }
        let need = |v: &Option<String>, flag: &str| {
            v.clone().with_context(|| format!("--maas needs --{flag}"))
        };
        let mut image = MaasImage::new(need(&i.release, "release")?, need(&i.arch, "arch")?, files);
        image.os = i.os.clone();
        image.version = i.version.clone();
        image.label = i.label.clone();
        image.subarch = f.subarch.clone();
        image.subarches = f.subarches.clone();
        image.kflavor = f.kflavor.clone();
        image.krel = f.krel.clone();
        image.release_title = f.release_title.clone();
        image.release_codename = f.release_codename.clone();
        image.support_eol = f.support_eol.clone();
        image.kpackage = f.kpackage.clone();
        image.content_prefix = f.content_prefix.clone();
        image.product_fields = field_map(&i.field).context("--field")?;
        image.content_id = i.content_id.clone();
        image.stream = i.stream.clone();
        image.product_id = i.product_id.clone();
        image.version_name = i.version_name.clone();
        if let Some(t) = &i.path_template {
            image.placement = Placement::Template(t.clone());
        }
        image.sha512 = i.sha512;
        if !image.files.iter().any(|(f, _)| f == "manifest") {
            tracing::warn!(
                "no manifest=FILE: MAAS 3.8 and later refuse a boot source whose images have no \
                 manifest item (a package list; an empty file will do)"
            );
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
    sstream add ./repo --from-json2streams items.json\n  \
    sstream add ./repo --lxd lxd.tar.xz rootfs.squashfs disk.qcow2 --incus --os ubuntu \\\n    \
    --release noble --release-title '24.04 LTS' --arch amd64 --alias ubuntu/24.04\n  \
    sstream add ./repo --maas boot-kernel=vmlinuz boot-initrd=initrd squashfs=root.squashfs \\\n    \
    manifest=root.manifest --release noble --version 24.04 --arch amd64")]
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
    /// Flavour flags (LXD/Incus, MAAS).
    #[command(flatten)]
    pub flavour: FlavourArgs,
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

/// What `sstream add` adds, by flavour.
enum Batch {
    Generic(Vec<NewImage>),
    /// A json2streams list, to be read while added.
    List(PathBuf),
    /// That list being read.
    Spawned(ImageBatches),
    Lxd(Vec<LxdImage>),
    Maas(Vec<MaasImage>),
}

/// Runs `sstream add`.
pub fn run_add(args: AddArgs) -> anyhow::Result<ExitCode> {
    let from_list = args.manifest.is_some() || args.from_json2streams.is_some();
    if from_list && (!args.image.is_empty() || !args.flavour.is_empty()) {
        bail!("the image flags apply to FILE arguments; a manifest gives its own (and defaults)");
    }
    if args.lxd_or_maas_flags_without_flavour() {
        bail!(
            "the LXD and MAAS flags (--variant, --requirement, --subarch, …) need --lxd or --maas"
        );
    }
    let mut batches = Vec::new();
    if let Some(manifest) = &args.manifest {
        for image in read_manifest_images(manifest)? {
            match (image, batches.last_mut()) {
                (ManifestImage::Generic(i), Some(Batch::Generic(v))) => v.push(i),
                (ManifestImage::Lxd(i), Some(Batch::Lxd(v))) => v.push(i),
                (ManifestImage::Maas(i), Some(Batch::Maas(v))) => v.push(i),
                (ManifestImage::Generic(i), _) => batches.push(Batch::Generic(vec![i])),
                (ManifestImage::Lxd(i), _) => batches.push(Batch::Lxd(vec![i])),
                (ManifestImage::Maas(i), _) => batches.push(Batch::Maas(vec![i])),
            }
        }
    } else if let Some(list) = &args.from_json2streams {
        // Read on a thread of its own while the images are added (started below, before the
        // repository is opened).
        batches.push(Batch::List(list.clone()));
    } else if let Some(meta) = &args.flavour.lxd {
        batches.push(Batch::Lxd(vec![args.lxd_image(meta)?]));
    } else if args.flavour.maas {
        batches.push(Batch::Maas(vec![args.maas_image()?]));
    } else {
        batches.push(Batch::Generic(
            args.files
                .iter()
                .map(|f| args.image.image(f))
                .collect::<anyhow::Result<Vec<_>>>()?,
        ));
    }
    if let Some(datatype) = &args.datatype {
        for batch in &mut batches {
            if let Batch::Generic(images) = batch {
                for image in images {
                    image.datatype = Some(datatype.clone());
                }
            }
        }
    }
    let many = batches.iter().map(Batch::len).sum::<usize>() > 1_000;
    use futures::StreamExt as _;
    let datatype = args.datatype.clone();
    let batches = batches.into_iter().map(|batch| match batch {
        Batch::List(list) => {
            let images = spawn_json2streams(&list, args.base_dir.as_deref());
            let datatype = datatype.clone();
            Batch::Spawned(Box::pin(images.map(move |batch| {
                let mut images = batch?;
                if let Some(datatype) = &datatype {
                    for image in &mut images {
                        image.datatype = Some(datatype.clone());
                    }
                }
                Ok(images)
            })))
        }
        other => other,
    });
    // Spawned now: the list is read while the repository opens.
    let batches: Vec<Batch> = batches.collect();
    let rt = runtime()?;
    rt.block_on(async {
        let mut repo = open_repo(&args.repo, &args.signing, &args.store).await?;
        // Buffered: a flat list adds thousands of lines.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for batch in batches {
            let added = match batch {
                Batch::Generic(images) => repo.add(images).await,
                Batch::List(_) => unreachable!("lists are spawned above"),
                Batch::Spawned(images) => repo.add_batches(images).await,
                Batch::Lxd(images) => match repo.add_lxd(images).await {
                    Ok(r) => {
                        for f in &r.fingerprints {
                            writeln!(
                                out,
                                "fingerprint {} {} {} {} {}",
                                f.content_id, f.product, f.version, f.root_ftype, f.fingerprint
                            )?;
                        }
                        Ok(r.images)
                    }
                    Err(e) => Err(e),
                },
                Batch::Maas(images) => repo.add_maas(images).await,
            };
            let report = match added {
                Ok(r) => r,
                Err(e) => {
                    if let Err(cleanup) = repo.abort().await {
                        tracing::warn!(
                            "cannot remove the files copied before the failure: {cleanup}"
                        );
                    }
                    return Err(e.into());
                }
            };
            print_added(&report, &mut out)?;
            if many {
                // Tens of thousands of strings, freed by the process's exit in no time rather
                // than one by one.
                std::mem::forget(report);
            }
        }
        out.flush()?;
        commit(repo, &mut out).await?;
        out.flush()?;
        Ok(ExitCode::SUCCESS)
    })
}

impl Batch {
    fn len(&self) -> usize {
        match self {
            Batch::Generic(v) => v.len(),
            // A flat list is usually thousands of items: by its size (a few hundred bytes
            // an item).
            Batch::List(path) => std::fs::metadata(path).map_or(0, |m| m.len() as usize / 256),
            Batch::Spawned(_) => 0,
            Batch::Lxd(v) => v.len(),
            Batch::Maas(v) => v.len(),
        }
    }
}

impl AddArgs {
    fn lxd_or_maas_flags_without_flavour(&self) -> bool {
        self.flavour.lxd.is_none() && !self.flavour.maas && !self.flavour.is_empty()
    }
}

fn print_added(report: &AddReport, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    for i in &report.images {
        let what = match i.outcome {
            AddOutcome::Added => "added",
            AddOutcome::Shared => "added (file shared)",
            AddOutcome::Described => "added (as described, not copied)",
            AddOutcome::Unchanged => "unchanged",
            AddOutcome::Restored => "unchanged (its missing file put back)",
        };
        // Pieces written as they are (a flat list prints thousands of lines: formatting each
        // through `write!` costs more than the rest of printing).
        let size = human(i.size);
        for piece in [
            what,
            " ",
            &i.content_id,
            " ",
            &i.product,
            " ",
            &i.version,
            " ",
            &i.item,
            " ",
            &i.path,
            " (",
            &size,
            ")\n",
        ] {
            out.write_all(piece.as_bytes())?;
        }
    }
    Ok(())
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
