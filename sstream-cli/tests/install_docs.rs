//! `sstream install-docs`, the documented install step for man pages and completions: after it,
//! `man sstream-mirror` finds the page through PATH (man-db looks for `share/man` beside every
//! `bin` directory on PATH), and the pages and completions carry the flags of the binaries.

use std::process::Command;

#[test]
fn man_finds_every_tool_after_install_docs() {
    let prefix = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_sstream"))
        .args(["install-docs", "--prefix"])
        .arg(prefix.path())
        .output()
        .expect("run sstream install-docs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // As after `cargo install --root PREFIX`: PREFIX/bin on PATH.
    std::fs::create_dir_all(prefix.path().join("bin")).expect("bin");
    let path = format!("{}:/usr/bin:/bin", prefix.path().join("bin").display());
    for (tool, flag) in [
        ("sstream-mirror", "--all-checksums"),
        ("sstream-query", "--output-format"),
        ("sstream-mirror-glance", "--output-swift"),
        ("sstream", "install-docs"),
        ("sstream-sign", "--secret-key"),
    ] {
        let man = Command::new("man")
            .args(["-P", "cat", tool])
            .env_remove("MANPATH")
            .env("PATH", &path)
            .env("MANWIDTH", "200")
            .output()
            .expect("run man (Debian package man-db, installed by scripts/install-deps)");
        let page = String::from_utf8_lossy(&man.stdout);
        assert!(
            man.status.success(),
            "man {tool}: {}",
            String::from_utf8_lossy(&man.stderr)
        );
        assert!(page.contains(flag), "man {tool} lacks {flag}:\n{page}");
    }
    let bash = std::fs::read_to_string(
        prefix
            .path()
            .join("share/bash-completion/completions/sstream-mirror.bash"),
    )
    .expect("bash completion");
    assert!(bash.contains("--keyring") && bash.contains("--verify-existing"));
    for file in [
        "share/zsh/site-functions/_sstream-query",
        "share/fish/vendor_completions.d/sstream-mirror-glance.fish",
    ] {
        assert!(prefix.path().join(file).is_file(), "{file}");
    }
}
