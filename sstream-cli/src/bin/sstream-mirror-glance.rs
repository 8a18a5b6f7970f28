//! `sstream-mirror-glance`: see `sstream_cli::mirror_glance_cmd`.
use std::process::ExitCode;

use clap::Parser;
use sstream_cli::{common::main_with, mirror_glance_cmd};

fn main() -> ExitCode {
    let args = mirror_glance_cmd::MirrorGlanceArgs::parse();
    main_with("sstream-mirror-glance", || mirror_glance_cmd::run(args))
}
