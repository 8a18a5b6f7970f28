//! `sstream install-docs`: man pages and shell completions, generated from the same clap
//! definitions that parse the flags, so they can never disagree with `--help`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

/// Where the docs go, below a prefix.
#[derive(Debug, Args)]
pub struct InstallDocsArgs {
    /// Install below this prefix: PREFIX/share/man/man1, and the completion directories of
    /// bash, zsh and fish below PREFIX/share. `man` finds pages below the prefix of any
    /// directory on PATH, so ~/.local (with ~/.local/bin on PATH) works without MANPATH.
    #[arg(long, value_name = "PREFIX", default_value = "~/.local")]
    pub prefix: String,
}

/// Every tool of the project, as clap knows it.
pub fn commands() -> Vec<clap::Command> {
    vec![
        crate::query_cmd::QueryArgs::command(),
        crate::mirror_cmd::MirrorArgs::command(),
        crate::mirror_glance_cmd::MirrorGlanceArgs::command(),
        crate::sstream_cmd::SstreamArgs::command(),
        crate::sync_cmd::SstreamSyncArgs::command(),
    ]
}

/// Writes the man pages (one per tool, and one per `sstream` subcommand, as
/// `sstream-sign.1` …) and completions below `prefix`; returns the files written.
pub fn install(prefix: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let man = prefix.join("share/man/man1");
    std::fs::create_dir_all(&man).with_context(|| format!("cannot create {}", man.display()))?;
    let mut written = Vec::new();
    for cmd in commands() {
        let cmd = cmd.version(env!("CARGO_PKG_VERSION"));
        clap_mangen::generate_to(cmd.clone(), &man)
            .with_context(|| format!("cannot write man pages into {}", man.display()))?;
        written.push(man.join(format!("{}.1", cmd.get_name())));
        for (shell, dir) in [
            (Shell::Bash, "share/bash-completion/completions"),
            (Shell::Zsh, "share/zsh/site-functions"),
            (Shell::Fish, "share/fish/vendor_completions.d"),
        ] {
            let dir = prefix.join(dir);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let mut cmd = cmd.clone();
            let name = cmd.get_name().to_string();
            let file = clap_complete::generate_to(shell, &mut cmd, name, &dir)
                .with_context(|| format!("cannot write completions into {}", dir.display()))?;
            written.push(file);
        }
    }
    Ok(written)
}

/// Runs `sstream install-docs`.
pub fn run(args: InstallDocsArgs) -> anyhow::Result<ExitCode> {
    let prefix = match args.prefix.strip_prefix("~/") {
        Some(rest) => {
            PathBuf::from(std::env::var_os("HOME").context("~ in --prefix, but HOME is not set")?)
                .join(rest)
        }
        None => PathBuf::from(&args.prefix),
    };
    for file in install(&prefix)? {
        println!("{}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}
