//! `sstream-query`: see `sstream_cli::query_cmd`.
use std::process::ExitCode;

use clap::Parser;
use sstream_cli::{common::main_with, query_cmd};

fn main() -> ExitCode {
    let args = query_cmd::QueryArgs::parse();
    main_with("sstream-query", || query_cmd::run(args))
}
