//! `gen-stream`: writes a large synthetic simplestreams mirror for benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use simplestreams_bench::{write_stream, GenOptions};
use simplestreams_core::openpgp::SigningKey;

/// Generate a deterministic products stream shaped like the Ubuntu cloud images one.
#[derive(Debug, Parser)]
#[command(name = "gen-stream", version)]
struct Args {
    /// Number of products (releases x architectures).
    #[arg(long, default_value_t = 2000)]
    products: usize,
    /// Versions per product.
    #[arg(long, default_value_t = 10)]
    versions: usize,
    /// Items per version.
    #[arg(long, default_value_t = 3)]
    items: usize,
    /// Seed: the same arguments and seed give byte-identical output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the item files (then sizes and checksums are real).
    #[arg(long)]
    with_files: bool,
    /// Size of each item file, with --with-files.
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 1024,
        requires = "with_files"
    )]
    file_size: u64,
    /// Also write clear-signed index.sjson and products .sjson with this armored secret key
    /// (no passphrase).
    #[arg(long, value_name = "KEY.asc")]
    sign_key: Option<PathBuf>,
    /// Where to write the mirror (created if missing).
    out_dir: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gen-stream: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let key = match &args.sign_key {
        None => None,
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let name = path.display().to_string();
            Some(SigningKey::from_armored(&bytes, None, &name).map_err(|e| e.to_string())?)
        }
    };
    let opts = GenOptions {
        products: args.products,
        versions: args.versions,
        items: args.items,
        seed: args.seed,
        with_files: args.with_files,
        file_size: args.file_size,
    };
    let (stream, written) =
        write_stream(&opts, &args.out_dir, key.as_ref()).map_err(|e| e.to_string())?;
    println!(
        "{}: {} products, {} items, {} item files, {} bytes; metadata: {}",
        args.out_dir.display(),
        stream.products.products.len(),
        stream.products.item_count(),
        written.item_files,
        written.bytes,
        written.metadata.join(", ")
    );
    Ok(())
}
