//! `sstream`: see `sstream_cli::sstream_cmd`.
use std::process::ExitCode;

use clap::Parser;
use sstream_cli::{common::main_with, sstream_cmd};

// Publishing builds and frees hundreds of thousands of small maps and strings (a flat list of
// 10,000 items is about a million allocations): mimalloc serves them in less time than glibc's
// malloc, with fewer page faults (docs/publishing.md has the figures). The other tools keep
// glibc's, whose `malloc_trim` sstream-sync's idle memory relies on.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = sstream_cmd::SstreamArgs::parse();
    main_with("sstream", || sstream_cmd::run(args))
}
