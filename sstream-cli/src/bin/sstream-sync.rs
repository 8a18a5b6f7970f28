//! `sstream-sync`: see `sstream_cli::sync_cmd`.
use std::process::ExitCode;

use clap::Parser;
use sstream_cli::{common::main_with, sync_cmd};

fn main() -> ExitCode {
    let args = sync_cmd::SstreamSyncArgs::parse();
    main_with("sstream-sync", || sync_cmd::run(args))
}
