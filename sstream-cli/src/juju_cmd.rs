//! `sstream juju`: Juju's image and agent metadata, written as `juju metadata generate-image`
//! and `generate-agents` write it (Juju's file names and fields, merged with what is there,
//! signed with a key), and `validate-images` / `validate-agents`, which replay Juju's lookup
//! and print what Juju would find. The logic is `simplestreams_publish::juju`'s.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use simplestreams_core::openpgp::{Keyring, SigningKey};
use simplestreams_mirror::{load_keyrings, LocalStore, Store};
use simplestreams_publish::juju::{
    agents_dir, base_version, generate_agents, generate_image, lookup_agents, lookup_images,
    store_source, AgentQuery, GenerateReport, ImageQuery, ImageRecord, Lookup, RELEASED,
};

use crate::common::{load_signing_key, runtime};

/// Juju's image and agent metadata.
#[derive(Debug, Args)]
pub struct JujuArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: JujuCommand,
}

/// The `juju` subcommands.
#[derive(Debug, Subcommand)]
pub enum JujuCommand {
    /// Add an image id to DIR/images/ (juju metadata generate-image): streams/v1/index.json
    /// and com.ubuntu.cloud-released-imagemetadata.json, content id com.ubuntu.cloud:custom,
    /// merged with what is there.
    GenerateImage(GenerateImageArgs),
    /// List the agent tarballs DIR/tools/STREAM/juju-VERSION-OS-ARCH.tgz (or DIR/agent/…)
    /// in agent metadata (juju metadata generate-agents): streams/v1/index2.json, index.json
    /// and com.ubuntu.juju-STREAM-agents.json.
    GenerateAgents(GenerateAgentsArgs),
    /// Print the image ids Juju would find in DIR/images/ for a region, endpoint, base and
    /// architecture (juju metadata validate-images); exit 1 when it would find none.
    ValidateImages(ValidateImagesArgs),
    /// Print the agents Juju would find in DIR/tools/ (or DIR/agent/) (juju metadata
    /// validate-agents); exit 1 when it would find none.
    ValidateAgents(ValidateAgentsArgs),
}

/// `--signing-key`, `--passphrase-file`.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Signing")]
pub struct JujuSigningArgs {
    /// ASCII-armored OpenPGP secret key to sign with: every document also as X.sjson and
    /// X.json.gpg, the public key as streams/v1/signing-key.asc (Juju reads .sjson first,
    /// verified with the key it is given). Metadata signed before must be signed again.
    #[arg(long, value_name = "KEY.asc")]
    pub signing_key: Option<PathBuf>,
    /// File whose first line is the secret key's passphrase (default:
    /// $SSTREAM_SIGNING_PASSPHRASE, if set).
    #[arg(long, value_name = "FILE", requires = "signing_key")]
    pub passphrase_file: Option<PathBuf>,
}

impl JujuSigningArgs {
    fn key(&self) -> anyhow::Result<Option<Arc<SigningKey>>> {
        Ok(match &self.signing_key {
            Some(p) => Some(Arc::new(load_signing_key(
                p,
                self.passphrase_file.as_deref(),
            )?)),
            None => None,
        })
    }
}

/// `sstream juju generate-image`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
    sstream juju generate-image -d ./metadata -i 0f1e2d3c-… -r RegionOne \\\n    \
    -u https://keystone.example:5000/v3 --base ubuntu@24.04 -a amd64\n  \
    juju bootstrap --metadata-source ./metadata …")]
pub struct GenerateImageArgs {
    /// The metadata directory (files go to DIR/images/).
    #[arg(short = 'd', long = "dir", value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// The image id in the cloud.
    #[arg(short = 'i', long = "image-id", value_name = "ID")]
    pub image_id: String,
    /// The cloud region.
    #[arg(short = 'r', long = "region")]
    pub region: String,
    /// The cloud endpoint (for OpenStack, the Keystone URL of the Juju cloud definition).
    #[arg(short = 'u', long = "endpoint", value_name = "URL")]
    pub endpoint: String,
    /// The image's base, OS@VERSION (ubuntu@24.04): its version goes in the product id.
    #[arg(long, value_name = "OS@VERSION")]
    pub base: String,
    /// The architecture.
    #[arg(short = 'a', long = "arch", default_value = "amd64")]
    pub arch: String,
    /// The stream (released, daily, …).
    #[arg(long, default_value = RELEASED)]
    pub stream: String,
    /// The virtualisation type (`virt`: kvm, hvm, pv, …).
    #[arg(long = "virt-type", value_name = "TYPE")]
    pub virt_type: Option<String>,
    /// The root storage type (`root_store`: ebs, instance, …).
    #[arg(long = "storage-type", value_name = "TYPE")]
    pub storage_type: Option<String>,
    /// Signing flags.
    #[command(flatten)]
    pub signing: JujuSigningArgs,
}

/// `sstream juju generate-agents`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
    cp juju-3.5.0-ubuntu-amd64.tgz ./metadata/tools/released/\n  \
    sstream juju generate-agents -d ./metadata\n  \
    juju bootstrap --metadata-source ./metadata …")]
pub struct GenerateAgentsArgs {
    /// The metadata directory: tarballs are in DIR/tools/STREAM/ (DIR/agent/STREAM/ is used
    /// when DIR/tools/ does not exist), metadata goes beside them.
    #[arg(short = 'd', long = "dir", value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// The stream.
    #[arg(long, default_value = RELEASED)]
    pub stream: String,
    /// Forget the agents listed before: list only the tarballs there now.
    #[arg(long)]
    pub clean: bool,
    /// Signing flags.
    #[command(flatten)]
    pub signing: JujuSigningArgs,
}

/// `--keyring`, `--require-signed`.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Signatures")]
pub struct LookupSigningArgs {
    /// The public key(s) Juju is given to verify .sjson files (binary or armored; the
    /// publisher's NAME.gpg). Without one, signed files cannot be verified and, as in Juju,
    /// the unsigned .json files are read. Repeatable.
    #[arg(long, value_name = "KEYRING")]
    pub keyring: Vec<PathBuf>,
    /// Read only signed metadata (a source Juju requires signed, as its official ones).
    #[arg(long)]
    pub require_signed: bool,
}

impl LookupSigningArgs {
    fn keyring(&self) -> anyhow::Result<Option<Keyring>> {
        if self.keyring.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            load_keyrings(&self.keyring).context("cannot read the keyring")?,
        ))
    }
}

/// `sstream juju validate-images`.
#[derive(Debug, Args)]
pub struct ValidateImagesArgs {
    /// The metadata directory (read: DIR/images/).
    #[arg(short = 'd', long = "dir", value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// The cloud region.
    #[arg(short = 'r', long = "region")]
    pub region: String,
    /// The cloud endpoint.
    #[arg(short = 'u', long = "endpoint", value_name = "URL")]
    pub endpoint: String,
    /// The base, OS@VERSION (ubuntu@24.04).
    #[arg(long, value_name = "OS@VERSION")]
    pub base: String,
    /// The architecture. Repeatable.
    #[arg(short = 'a', long = "arch", default_value = "amd64")]
    pub arch: Vec<String>,
    /// The stream.
    #[arg(long, default_value = RELEASED)]
    pub stream: String,
    /// Signature flags.
    #[command(flatten)]
    pub signing: LookupSigningArgs,
}

/// `sstream juju validate-agents`.
#[derive(Debug, Args)]
pub struct ValidateAgentsArgs {
    /// The metadata directory (read: DIR/tools/, or DIR/agent/ when there is no DIR/tools/).
    #[arg(short = 'd', long = "dir", value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// The stream.
    #[arg(long, default_value = RELEASED)]
    pub stream: String,
    /// The OS (ubuntu, centos, …). Repeatable.
    #[arg(long = "os", default_value = "ubuntu")]
    pub os: Vec<String>,
    /// The architecture. Repeatable.
    #[arg(short = 'a', long = "arch", default_value = "amd64")]
    pub arch: Vec<String>,
    /// Exactly this agent version (3.5.0).
    #[arg(long = "agent-version", value_name = "VERSION")]
    pub agent_version: Option<String>,
    /// Agents of this major[.minor] version (3 or 3.5).
    #[arg(
        long = "majorminor-version",
        value_name = "MAJOR[.MINOR]",
        conflicts_with = "agent_version"
    )]
    pub majorminor_version: Option<String>,
    /// Signature flags.
    #[command(flatten)]
    pub signing: LookupSigningArgs,
}

/// Runs `sstream juju`.
pub fn run(args: JujuArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        JujuCommand::GenerateImage(a) => run_generate_image(a),
        JujuCommand::GenerateAgents(a) => run_generate_agents(a),
        JujuCommand::ValidateImages(a) => run_validate_images(a),
        JujuCommand::ValidateAgents(a) => run_validate_agents(a),
    }
}

fn store(dir: &Path) -> Arc<dyn Store> {
    Arc::new(LocalStore::new(dir))
}

fn print_generated(what: &Path, report: &GenerateReport) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for s in &report.skipped {
        writeln!(out, "skipped {s}")?;
    }
    for p in &report.published {
        writeln!(out, "published {}", what.join(p).display())?;
    }
    if report.published.is_empty() {
        writeln!(out, "nothing changed ({} records)", report.records)?;
    }
    Ok(())
}

fn run_generate_image(args: GenerateImageArgs) -> anyhow::Result<ExitCode> {
    let key = args.signing.key()?;
    let record = ImageRecord {
        id: args.image_id,
        region: args.region,
        endpoint: args.endpoint,
        version: base_version(&args.base)?,
        arch: args.arch,
        stream: args.stream,
        virt: args.virt_type,
        root_store: args.storage_type,
    };
    let images = args.dir.join("images");
    let report = runtime()?
        .block_on(generate_image(store(&images), record, key))
        .with_context(|| format!("cannot write the image metadata in {}", images.display()))?;
    print_generated(&images, &report)?;
    Ok(ExitCode::SUCCESS)
}

fn run_generate_agents(args: GenerateAgentsArgs) -> anyhow::Result<ExitCode> {
    let key = args.signing.key()?;
    let tools = agents_dir(&args.dir);
    if !tools.join(&args.stream).is_dir() {
        bail!(
            "{}: no such directory (agent tarballs go in DIR/tools/STREAM/juju-VERSION-OS-ARCH.tgz)",
            tools.join(&args.stream).display()
        );
    }
    let report = runtime()?
        .block_on(generate_agents(
            store(&tools),
            &args.stream,
            args.clean,
            key,
        ))
        .with_context(|| format!("cannot write the agent metadata in {}", tools.display()))?;
    print_generated(&tools, &report)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints how a lookup resolved (as Juju's `Resolve Metadata`), or why it found nothing.
fn print_resolution<T>(lookup: &Lookup<T>, source: &Path, out: &mut impl std::io::Write) {
    if let Some(r) = &lookup.resolved {
        let _ = writeln!(out, "Resolve Metadata:");
        let _ = writeln!(out, "  source: {}", source.display());
        let _ = writeln!(out, "  signed: {}", r.signed);
        let _ = writeln!(out, "  indexURL: {}", r.index_url);
        let _ = writeln!(out, "  productsURL: {}", r.products_url);
    }
}

fn run_validate_images(args: ValidateImagesArgs) -> anyhow::Result<ExitCode> {
    let keyring = args.signing.keyring()?;
    let images = args.dir.join("images");
    if !images.is_dir() {
        bail!("{}: no such directory", images.display());
    }
    let query = ImageQuery {
        region: args.region.clone(),
        endpoint: args.endpoint.clone(),
        version: base_version(&args.base)?,
        arches: args.arch.clone(),
        stream: args.stream.clone(),
    };
    let source = store_source(store(&images));
    let lookup = runtime()?.block_on(lookup_images(
        source.as_ref(),
        &query,
        keyring.as_ref(),
        args.signing.require_signed,
    ))?;
    let mut out = std::io::stdout().lock();
    if lookup.found.is_empty() {
        let mut err = std::io::stderr().lock();
        writeln!(
            err,
            "no matching image ids for region {} using sources: {}",
            args.region,
            images.display()
        )?;
        for a in &lookup.attempts {
            writeln!(err, "  {a}")?;
        }
        return Ok(ExitCode::FAILURE);
    }
    writeln!(out, "ImageIds:")?;
    for f in &lookup.found {
        let mut extra = Vec::new();
        if let Some(v) = &f.record.virt {
            extra.push(format!("virt {v}"));
        }
        if let Some(s) = &f.record.root_store {
            extra.push(format!("root_store {s}"));
        }
        extra.push(format!("arch {}", f.record.arch));
        extra.push(format!("listed {}", f.version_name));
        writeln!(out, "- {}  # {}", f.record.id, extra.join(", "))?;
    }
    writeln!(out, "Region: {}", args.region)?;
    print_resolution(&lookup, &images, &mut out);
    Ok(ExitCode::SUCCESS)
}

fn run_validate_agents(args: ValidateAgentsArgs) -> anyhow::Result<ExitCode> {
    let keyring = args.signing.keyring()?;
    let tools = agents_dir(&args.dir);
    if !tools.is_dir() {
        bail!("{}: no such directory", tools.display());
    }
    let major_minor = match &args.majorminor_version {
        Some(mm) => {
            let mut parts = mm.split('.');
            let major = parts
                .next()
                .and_then(|p| p.parse::<u64>().ok())
                .with_context(|| format!("--majorminor-version {mm:?}: expected MAJOR[.MINOR]"))?;
            let minor = match parts.next() {
                Some(p) => Some(p.parse::<u64>().with_context(|| {
                    format!("--majorminor-version {mm:?}: expected MAJOR[.MINOR]")
                })?),
                None => None,
            };
            Some((major, minor))
        }
        None => None,
    };
    let query = AgentQuery {
        stream: args.stream.clone(),
        releases: args.os.clone(),
        arches: args.arch.clone(),
        version: args.agent_version.clone(),
        major_minor,
    };
    let source = store_source(store(&tools));
    let lookup = runtime()?.block_on(lookup_agents(
        source.as_ref(),
        &query,
        keyring.as_ref(),
        args.signing.require_signed,
    ))?;
    let mut out = std::io::stdout().lock();
    if lookup.found.is_empty() {
        let mut err = std::io::stderr().lock();
        writeln!(
            err,
            "no matching agent binaries for {} {} in stream {} using sources: {}",
            args.os.join(","),
            args.arch.join(","),
            args.stream,
            tools.display()
        )?;
        for a in &lookup.attempts {
            writeln!(err, "  {a}")?;
        }
        return Ok(ExitCode::FAILURE);
    }
    writeln!(out, "Matching Agent Binaries Versions:")?;
    for a in &lookup.found {
        writeln!(out, "- {}  # {} ({} bytes)", a.binary(), a.path, a.size)?;
    }
    print_resolution(&lookup, &tools, &mut out);
    Ok(ExitCode::SUCCESS)
}
