//! `gen-sums [--images N] [--dirs D] [--size BYTES] OUT`: a Debian-like checksum-file tree for
//! `scripts/bench-sums`: D dated directories (`OUT/<YYYYMMDD-NNNN>/`, or OUT itself when
//! D is 0) each holding N small fake images named as Debian names them
//! (`debian-12-v0001-amd64-<build>.qcow2`, one variant per image so every name is distinct)
//! and a `SHA512SUMS` listing them. Deterministic: the same arguments write the same bytes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sha2::{Digest, Sha512};

struct Args {
    images: usize,
    dirs: usize,
    size: usize,
    out: PathBuf,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        images: 500,
        dirs: 0,
        size: 1024,
        out: PathBuf::new(),
    };
    let mut it = std::env::args().skip(1);
    let mut out = None;
    while let Some(a) = it.next() {
        let mut num = |flag: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{flag} takes a number"))
        };
        match a.as_str() {
            "--images" => args.images = num("--images")?,
            "--dirs" => args.dirs = num("--dirs")?,
            "--size" => args.size = num("--size")?,
            s if s.starts_with('-') => return Err(format!("unknown flag {s}")),
            s => out = Some(PathBuf::from(s)),
        }
    }
    args.out = out.ok_or("usage: gen-sums [--images N] [--dirs D] [--size BYTES] OUT")?;
    Ok(args)
}

fn write_dir(dir: &Path, build: &str, images: usize, size: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut sums = String::new();
    for i in 0..images {
        let name = format!("debian-12-v{i:04}-amd64-{build}.qcow2");
        let mut data = format!("{name}\n").into_bytes();
        data.resize(size.max(data.len()), b'.');
        std::fs::write(dir.join(&name), &data)?;
        sums.push_str(&format!("{}  {name}\n", hex::encode(Sha512::digest(&data))));
    }
    std::fs::write(dir.join("SHA512SUMS"), sums)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gen-sums: {e}");
            return ExitCode::from(2);
        }
    };
    let result = if args.dirs == 0 {
        write_dir(&args.out, "20240211-1651", args.images, args.size)
    } else {
        (0..args.dirs).try_for_each(|d| {
            let build = format!("2024{:02}{:02}-{:04}", 1 + d / 28 % 12, 1 + d % 28, d);
            write_dir(&args.out.join(&build), &build, args.images, args.size)
        })
    };
    match result {
        Ok(()) => {
            println!("{}", args.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-sums: {}: {e}", args.out.display());
            ExitCode::FAILURE
        }
    }
}
