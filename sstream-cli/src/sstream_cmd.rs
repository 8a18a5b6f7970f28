//! `sstream`: tools for stream publishers and operators, one subcommand each.
//!
//! Each subcommand's arguments and code live in a module of this crate; add a variant to
//! [`Command`] and a match arm in [`run`] for a new one.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::common::LogArgs;
use crate::{
    catalog_cmd, convert_cmd, docs_cmd, images_cmd, juju_cmd, key_cmd, publish_cmd, sign_cmd,
    store_cmd,
};

/// Tools for simplestreams publishers and operators.
#[derive(Debug, Parser)]
#[command(name = "sstream", version)]
pub struct SstreamArgs {
    /// Logging flags.
    #[command(flatten)]
    pub log: LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add image files to a stream repository (created if new) and publish it, signed with
    /// --signing-key.
    Add(Box<publish_cmd::AddArgs>),
    /// Remove a product, or one version of it, and the files nothing names any more.
    Remove(publish_cmd::RemoveArgs),
    /// Keep the newest N versions of every product; delete the others and their files.
    Prune(publish_cmd::PruneArgs),
    /// Copy a version from one stream to another (candidate to stable), sharing its files.
    Promote(publish_cmd::PromoteArgs),
    /// Check a stream: metadata, paths, every file's size and checksums, every signature.
    Validate(publish_cmd::ValidateArgs),
    /// Make a signing key for a stream (sstream key generate DIR).
    Key(key_cmd::KeyArgs),
    /// Juju's image and agent metadata: generate-image, generate-agents, validate-images,
    /// validate-agents (as `juju metadata` does).
    Juju(juju_cmd::JujuArgs),
    /// Sign a stream: X.sjson and X.json.gpg beside every streams/v1/X.json.
    Sign(sign_cmd::SignArgs),
    /// Check the signatures of .sjson files, or of X.json files against X.json.gpg.
    Verify(sign_cmd::VerifyArgs),
    /// List our project's images in Glance with the properties sstream-mirror-glance sets.
    GlanceImages(images_cmd::GlanceImagesArgs),
    /// List the objects of a store (a directory, swift://, s3://).
    Ls(store_cmd::LsArgs),
    /// Break the lock a killed sync left in a Swift container or an object store.
    Unlock(store_cmd::UnlockArgs),
    /// Announce a published image-ids stream in Keystone (product-streams), for Juju.
    ProductStreams(catalog_cmd::ProductStreamsArgs),
    /// Write the man pages and shell completions of every sstream tool.
    InstallDocs(docs_cmd::InstallDocsArgs),
    /// Write a directory of images with a checksum file (SHA256SUMS & co) as a simplestreams
    /// tree (metadata; the files too with --with-files).
    Convert(Box<convert_cmd::ConvertArgs>),
}

/// Runs `sstream`.
pub fn run(args: SstreamArgs) -> anyhow::Result<ExitCode> {
    args.log.init()?;
    match args.command {
        Command::Add(a) => publish_cmd::run_add(*a),
        Command::Remove(a) => publish_cmd::run_remove(a),
        Command::Prune(a) => publish_cmd::run_prune(a),
        Command::Promote(a) => publish_cmd::run_promote(a),
        Command::Validate(a) => publish_cmd::run_validate(a),
        Command::Key(a) => key_cmd::run(a),
        Command::Juju(a) => juju_cmd::run(a),
        Command::Sign(a) => sign_cmd::run_sign(a),
        Command::Verify(a) => sign_cmd::run_verify(a),
        Command::GlanceImages(a) => images_cmd::run(a),
        Command::Ls(a) => store_cmd::run_ls(a),
        Command::Unlock(a) => store_cmd::run_unlock(a),
        Command::ProductStreams(a) => catalog_cmd::run(a),
        Command::InstallDocs(a) => docs_cmd::run(a),
        Command::Convert(a) => convert_cmd::run(*a),
    }
}
