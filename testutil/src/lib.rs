//! Helpers for this workspace's tests: where the test data (`testdata/`), the reference tool
//! (PyPI `python-simplestreams`, installed by `scripts/install-deps`) and the workspace are.
//!
//! Tests never skip when something is missing: they fail with a message saying how to get it.
#![deny(missing_docs)]

pub mod http_server;

use std::path::{Path, PathBuf};

/// The workspace root (the directory holding the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The test data: `testdata/` in the workspace (where each file comes from:
/// `testdata/SOURCES.md`). `$SSTREAM_FIXTURES` may name another directory with the same layout;
/// it is used only when it is an existing directory, so a stale setting cannot break the tests.
///
/// # Panics
/// When the directory is absent, with a message saying where it was looked for.
pub fn fixtures_dir() -> PathBuf {
    let dir = std::env::var_os("SSTREAM_FIXTURES")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| workspace_root().join("testdata"));
    assert!(
        dir.is_dir(),
        "test data not found at {}: it is testdata/ in the checkout; restore it with \
         `git checkout -- testdata`",
        dir.display()
    );
    dir
}

/// A path below the fixtures directory.
pub fn fixture(rel: &str) -> PathBuf {
    fixtures_dir().join(rel)
}

/// The directory of the reference tool's executables (`sstream-query`, `sstream-mirror`, …):
/// `$SSTREAM_REFERENCE_BIN`, else `.work/refvenv/bin` in the workspace.
///
/// # Panics
/// When it is not installed, saying how to install it.
pub fn reference_bin_dir() -> PathBuf {
    let dir = std::env::var_os("SSTREAM_REFERENCE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".work/refvenv/bin"));
    assert!(
        dir.join("sstream-query").is_file(),
        "the reference python-simplestreams is not installed at {}: run scripts/install-deps \
         (or set SSTREAM_REFERENCE_BIN)",
        dir.display()
    );
    dir
}

/// The path of one reference executable.
pub fn reference_bin(name: &str) -> PathBuf {
    reference_bin_dir().join(name)
}

/// Every regular file below `dir`, as relative path → bytes, leaving out paths that start with
/// any of `skip` (tools' private state directories). Tests compare mirrors with it.
///
/// # Panics
/// When a file cannot be read.
pub fn dir_tree(dir: &Path, skip: &[&str]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("read a directory entry").path();
            let rel = path
                .strip_prefix(dir)
                .expect("entry below its directory")
                .to_string_lossy()
                .into_owned();
            if skip.iter().any(|s| rel.starts_with(s)) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {rel}: {e}"));
                out.insert(rel, bytes);
            }
        }
    }
    out
}
