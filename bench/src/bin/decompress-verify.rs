//! `decompress-verify FILE SHA256`: what the library does with a compressed image, timed by
//! `scripts/bench-sums`: FILE (`.gz`, `.xz`, `.bz2`, `.zst`) is streamed from disk, its
//! compressed bytes verified against SHA256 as published, and decompressed with the raw bytes'
//! size and sha256 computed in the same pass. Prints `SIZE SHA256 DISK_FORMAT` of the raw bytes.

use std::path::Path;
use std::process::ExitCode;

use futures::StreamExt;
use simplestreams_core::Expected;
use simplestreams_mirror::decompress::{verify_and_decompress, Compression, DecompressOptions};
use simplestreams_mirror::{GetOptions, GetResult, LocalStore, Store};

async fn run(file: &str, sha256: &str) -> Result<String, String> {
    let path = Path::new(file);
    let compression = Compression::from_name(file)
        .ok_or_else(|| format!("{file}: not .gz, .xz, .bz2 or .zst"))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{file}: not a file name"))?;
    let store = LocalStore::new(dir);
    let GetResult::Found { meta, body } = store
        .get(name, GetOptions::default())
        .await
        .map_err(|e| e.to_string())?
    else {
        return Err(format!("{file}: not read"));
    };
    let published = Expected {
        size: meta.size,
        sha256: Some(sha256.to_string()),
        ..Expected::default()
    };
    let (mut raw, handle) = verify_and_decompress(
        body,
        name,
        file,
        published,
        compression,
        DecompressOptions::default(),
    );
    while let Some(chunk) = raw.next().await {
        chunk.map_err(|e| e.to_string())?;
    }
    let done = handle.get().ok_or_else(|| format!("{file}: no result"))?;
    Ok(format!(
        "{} {} {}",
        done.size,
        done.sha256,
        done.disk_format()
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, sha256] = args.as_slice() else {
        eprintln!("usage: decompress-verify FILE SHA256");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("decompress-verify: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(file, sha256)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("decompress-verify: {e}");
            ExitCode::FAILURE
        }
    }
}
