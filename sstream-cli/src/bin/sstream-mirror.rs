//! `sstream-mirror`: see `sstream_cli::mirror_cmd`.
use std::process::ExitCode;

use clap::Parser;
use sstream_cli::{common::main_with, mirror_cmd};

fn main() -> ExitCode {
    let args = mirror_cmd::MirrorArgs::parse();
    main_with("sstream-mirror", || mirror_cmd::run(args))
}
