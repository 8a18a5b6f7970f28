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

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_t` of mimalloc.h, v3; not
/// among libmimalloc-sys's named constants).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // sstream's commands hold little memory for long: freed memory need not go back to the
    // system as they run, nor page by page at exit (3-5 ms of `madvise` after a 10,000-item
    // list), which the process's exit does at once.
    // SAFETY: sets an option before this process allocates on any other thread.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    let args = sstream_cmd::SstreamArgs::parse();
    main_with("sstream", || sstream_cmd::run(args))
}
