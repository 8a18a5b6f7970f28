//! `sstream`: tools for stream publishers and operators, one subcommand each.
//!
//! Each subcommand's arguments and code live in a module of this crate; add a variant to
//! [`Command`] and a match arm in [`run`] for a new one.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::common::LogArgs;
use crate::{catalog_cmd, docs_cmd, images_cmd, sign_cmd, store_cmd};

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
}

/// Runs `sstream`.
pub fn run(args: SstreamArgs) -> anyhow::Result<ExitCode> {
    args.log.init()?;
    match args.command {
        Command::Sign(a) => sign_cmd::run_sign(a),
        Command::Verify(a) => sign_cmd::run_verify(a),
        Command::GlanceImages(a) => images_cmd::run(a),
        Command::Ls(a) => store_cmd::run_ls(a),
        Command::Unlock(a) => store_cmd::run_unlock(a),
        Command::ProductStreams(a) => catalog_cmd::run(a),
        Command::InstallDocs(a) => docs_cmd::run(a),
    }
}
