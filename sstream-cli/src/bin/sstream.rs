//! `sstream`: see `sstream_cli::sstream_cmd`.
use std::process::ExitCode;

use clap::Parser;
use sstream_cli::{common::main_with, sstream_cmd};

fn main() -> ExitCode {
    let args = sstream_cmd::SstreamArgs::parse();
    main_with("sstream", || sstream_cmd::run(args))
}
