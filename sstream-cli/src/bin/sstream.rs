//! `sstream`: tools for stream publishers, one subcommand each (`sign`, `verify`, …).
//!
//! Each subcommand's arguments and code live in a module of `sstream_cli`; add a variant to
//! [`Command`] and a match arm in `main` for a new one.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sstream_cli::common::{init_logging, main_with};
use sstream_cli::{images_cmd, sign_cmd};

/// Tools for simplestreams publishers.
#[derive(Debug, Parser)]
#[command(name = "sstream", version)]
struct Cli {
    /// More output on stderr (-v: info, -vv: debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Write log messages to this file instead of stderr.
    #[arg(long, value_name = "FILE", global = true)]
    log_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign a stream: X.sjson and X.json.gpg beside every streams/v1/X.json.
    Sign(sign_cmd::SignArgs),
    /// Check the signatures of .sjson files, or of X.json files against X.json.gpg.
    Verify(sign_cmd::VerifyArgs),
    /// List our project's images in Glance with the properties sstream-mirror-glance sets.
    GlanceImages(images_cmd::GlanceImagesArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    main_with("sstream", || {
        init_logging(cli.verbose, cli.log_file.as_deref())?;
        match cli.command {
            Command::Sign(args) => sign_cmd::run_sign(args),
            Command::Verify(args) => sign_cmd::run_verify(args),
            Command::GlanceImages(args) => images_cmd::run(args),
        }
    })
}
