//! `hash-floor FILE KIND...`: the time our verifier spends hashing FILE with each checksum KIND
//! (`md5`, `sha256`, `sha512`), one kind at a time, counting only the hashing (the file is read
//! in 1 MiB blocks, as a download arrives, and the reads are not counted).
//!
//! A download that verifies a checksum cannot end before that checksum has seen every byte, so
//! this is the floor under `sstream-mirror`'s wall time for one item: `scripts/bench-mirror big`
//! prints it beside `curl -o` in each round. Prints one line per kind: `KIND SECONDS`.

use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((file, kinds)) = args.split_first() else {
        eprintln!("usage: hash-floor FILE md5|sha256|sha512...");
        return ExitCode::from(2);
    };
    for name in kinds {
        let Some(kind) = ChecksumKind::ALL.into_iter().find(|k| k.field() == name) else {
            eprintln!("hash-floor: unknown checksum kind {name:?} (md5, sha256 or sha512)");
            return ExitCode::from(2);
        };
        match hashing_time(file, kind) {
            Ok(took) => println!("{name} {:.3}", took.as_secs_f64()),
            Err(e) => {
                eprintln!("hash-floor: {file}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn hashing_time(file: &str, kind: ChecksumKind) -> std::io::Result<Duration> {
    let mut verifier = StreamVerifier::new(file, Expected::default()).also_compute(kind);
    let mut input = std::fs::File::open(file)?;
    let mut block = vec![0u8; 1 << 20];
    let mut hashing = Duration::ZERO;
    loop {
        let n = input.read(&mut block)?;
        if n == 0 {
            break;
        }
        let start = Instant::now();
        verifier
            .update(&block[..n])
            .map_err(std::io::Error::other)?;
        hashing += start.elapsed();
    }
    let start = Instant::now();
    verifier.finish().map_err(std::io::Error::other)?;
    Ok(hashing + start.elapsed())
}
