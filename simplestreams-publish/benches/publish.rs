//! Publishing benchmarks (run by `scripts/bench-publish`, which builds what they need):
//!
//! 1. `add-one`: adding one version to a signed repository of 10,000 versions in a
//!    directory, whose 10,000 files are real (64 KiB each): open + add + commit, for a small
//!    file (the fixed cost) and a large one, content-addressed (hashed, then copied) and
//!    with a path template (hashed while copied), beside the floor for the large file (its
//!    sha256 and md5 computed on two threads, from the page cache). The existing files are
//!    never read: were they hashed, 640 MiB would take seconds.
//! 2. `json2streams`: 10,000 flat items (described: size and sha256, no files, as the
//!    reference takes them) turned into a stream by our `sstream add --from-json2streams`
//!    against the reference's `json2streams`, wall time of each run, and in-process; beside
//!    two floors: starting the process (`sstream --version`), and in-process, reading and
//!    parsing the list plus pretty-printing and writing durably the products file published
//!    (from a parsed copy): what any tool reading this JSON and writing that JSON pays.
//!
//! Env: BENCH_VERSIONS (10000), BENCH_BIG_MIB (256), BENCH_RUNS (5), BENCH_DIR (a temporary
//! directory), SSTREAM_BIN (target/release/sstream), SSTREAM_REFERENCE_BIN
//! (.work/refvenv/bin). Arguments: the cases to run (default both).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use simplestreams_core::openpgp::keygen::{generate, KeyOptions};
use simplestreams_core::openpgp::SigningKey;
use simplestreams_core::{ChecksumKind, Expected, StreamVerifier};
use simplestreams_mirror::{LocalStore, Store};
use simplestreams_publish::{spawn_json2streams, ImageSource, NewImage, Placement, Repo};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// min / median / max of some runs.
fn spread(mut runs: Vec<Duration>) -> String {
    runs.sort();
    format!(
        "min {} median {} max {} ({} runs)",
        secs(runs[0]),
        secs(runs[runs.len() / 2]),
        secs(runs[runs.len() - 1]),
        runs.len()
    )
}

fn write_file(path: &Path, len: usize, seed: u64) {
    // Cheap pseudo-random bytes, a qcow2 header first.
    let mut bytes = Vec::with_capacity(len);
    bytes.extend_from_slice(b"QFI\xfb\x00\x00\x00\x03");
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes.truncate(len);
    std::fs::write(path, bytes).unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut v = StreamVerifier::new("x", Expected::default()).also_compute(ChecksumKind::Sha256);
    v.update(bytes).unwrap();
    v.finish().unwrap().sha256.unwrap()
}

/// sha256 and md5 of a file on two threads: what one hashing pass cannot beat.
fn hash_floor(path: &Path) -> Duration {
    let bytes = Arc::new(std::fs::read(path).unwrap());
    let start = Instant::now();
    let threads: Vec<_> = [ChecksumKind::Sha256, ChecksumKind::Md5]
        .into_iter()
        .map(|k| {
            let bytes = bytes.clone();
            std::thread::spawn(move || {
                let mut v = StreamVerifier::new("x", Expected::default()).also_compute(k);
                for chunk in bytes.chunks(1 << 20) {
                    v.update(chunk).unwrap();
                }
                v.finish().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    start.elapsed()
}

fn image(file: &Path, product: usize, version: &str) -> NewImage {
    let mut i = NewImage::file(file)
        .field("os", "ubuntu")
        .field("release", "noble")
        .field("arch", format!("arch{product}"))
        .field("label", "release");
    i.version_name = Some(version.to_string());
    i
}

async fn add_one(
    root: &Path,
    key: &Arc<SigningKey>,
    file: &Path,
    version: &str,
    placement: Placement,
) -> Duration {
    let start = Instant::now();
    let store: Arc<dyn Store> = Arc::new(LocalStore::new(root));
    let mut repo = Repo::open(store, Some(key.clone())).await.unwrap();
    let mut i = image(file, 0, version);
    i.placement = placement;
    repo.add(vec![i]).await.unwrap();
    repo.commit().await.unwrap();
    start.elapsed()
}

async fn bench_add_one(work: &Path) {
    let versions = env_usize("BENCH_VERSIONS", 10_000);
    let big_mib = env_usize("BENCH_BIG_MIB", 256);
    let runs = env_usize("BENCH_RUNS", 5).max(1);
    let products = 50.min(versions).max(1);
    let root = work.join("repo");
    let _ = std::fs::remove_dir_all(&root);
    let key = generate(&KeyOptions::new("Bench", "bench@example.invalid")).unwrap();
    let key = Arc::new(SigningKey::from_armored(&key.secret_armored, None, "bench").unwrap());

    // The repository: files written in place, items described (so that setting up does not
    // take the time of 10,000 adds), then one signed commit.
    let setup = Instant::now();
    let mut images = Vec::with_capacity(versions);
    for n in 0..versions {
        let len = 64 * 1024;
        let mut bytes = vec![(n % 251) as u8; len];
        bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
        let sha = sha256_hex(&bytes);
        let path = format!("images/{}/{sha}.qcow2", &sha[..2]);
        std::fs::create_dir_all(root.join(&path).parent().unwrap()).unwrap();
        std::fs::write(root.join(&path), &bytes).unwrap();
        let mut i = image(
            Path::new(""),
            n % products,
            &format!("2024{:06}", n / products),
        );
        i.source = ImageSource::Described;
        i.ftype = Some("disk1.img".into());
        i.placement = Placement::Exact(path);
        i.expected = Expected {
            size: Some(len as u64),
            sha256: Some(sha),
            ..Expected::default()
        };
        images.push(i);
    }
    let store: Arc<dyn Store> = Arc::new(LocalStore::new(&root));
    let mut repo = Repo::open(store, Some(key.clone())).await.unwrap();
    repo.add(images).await.unwrap();
    repo.commit().await.unwrap();
    let products_file = root.join("streams/v1/images:released:download.json");
    println!(
        "add-one: repository of {versions} versions ({products} products, one {} KiB file each), \
         products file {} KiB, set up in {}",
        64,
        std::fs::metadata(&products_file).unwrap().len() / 1024,
        secs(setup.elapsed())
    );

    let small = work.join("small.img");
    write_file(&small, 1 << 20, 1);
    let big = work.join("big.img");
    write_file(&big, big_mib << 20, 2);
    let floor: Vec<Duration> = (0..runs).map(|_| hash_floor(&big)).collect();
    println!(
        "add-one: hash floor, {big_mib} MiB (sha256 | md5 on two threads, page cache): {}",
        spread(floor)
    );

    let mut n = 0;
    for (what, file, placement) in [
        (
            "1 MiB, content-addressed",
            &small,
            Placement::ContentAddressed,
        ),
        (
            "1 MiB, path template",
            &small,
            Placement::Template("t/{version_name}/{filename}".into()),
        ),
        ("big, content-addressed", &big, Placement::ContentAddressed),
        (
            "big, path template",
            &big,
            Placement::Template("t/{version_name}/{filename}".into()),
        ),
    ] {
        let mut times = Vec::new();
        for _ in 0..runs {
            n += 1;
            // A new version each run, on a new product version (the file is the same: the
            // content-addressed copy is then shared, so remove it first to measure a copy).
            let version = format!("2099{n:06}");
            times.push(add_one(&root, &key, file, &version, placement.clone()).await);
            // Take it out again, so that every run copies.
            let store: Arc<dyn Store> = Arc::new(LocalStore::new(&root));
            let mut repo = Repo::open(store, Some(key.clone())).await.unwrap();
            repo.remove(None, "ubuntu:noble:arch0", Some(&version))
                .unwrap();
            repo.commit().await.unwrap();
        }
        let what = what.replace("big", &format!("{big_mib} MiB"));
        println!(
            "add-one: open + add one version ({what}) + signed commit: {}",
            spread(times)
        );
    }
}

fn bench_json2streams(work: &Path) {
    let count = env_usize("BENCH_VERSIONS", 10_000);
    let runs = env_usize("BENCH_RUNS", 5).max(1);
    let root = workspace_root();
    let ours = std::env::var_os("SSTREAM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/sstream"));
    let reference = std::env::var_os("SSTREAM_REFERENCE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".work/refvenv/bin"))
        .join("json2streams");
    let mut items = Vec::with_capacity(count);
    for n in 0..count {
        let product = n % 500;
        items.push(serde_json::json!({
            "content_id": "com.example:released:download",
            "product_name": format!("com.example:server:{}:amd64", product),
            "version_name": format!("2024{:06}", n / 500),
            "item_name": "disk1.img",
            "ftype": "disk1.img",
            "arch": "amd64",
            "release": format!("r{product}"),
            "path": format!("files/{n}/disk1.img"),
            "size": 1000 + n,
            "sha256": sha256_hex(&n.to_le_bytes()),
            "md5": format!("{:032x}", n),
        }));
    }
    let list = work.join("items.json");
    std::fs::write(&list, serde_json::to_vec(&items).unwrap()).unwrap();
    println!(
        "json2streams: {count} flat items ({} KiB)",
        std::fs::metadata(&list).unwrap().len() / 1024
    );

    let run = |program: &Path, args: Vec<String>, out: &Path| -> Duration {
        let _ = std::fs::remove_dir_all(out);
        // Nothing left unflushed by the run before: a durable run flushes the filesystem, and
        // would otherwise pay for writing out what the other tool left in the page cache.
        let _ = Command::new("sync").status();
        let start = Instant::now();
        let o = Command::new(program)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        let d = start.elapsed();
        assert!(
            o.status.success(),
            "{}: {}",
            program.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        d
    };
    let mut theirs = Vec::new();
    let mut durable = Vec::new();
    let mut no_fsync = Vec::new();
    let mut start_only = Vec::new();
    let (t_out, o_out) = (work.join("theirs"), work.join("ours"));
    let ours_args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = vec![
            "add".into(),
            o_out.display().to_string(),
            "--from-json2streams".into(),
            list.display().to_string(),
            "--datatype".into(),
            "content-download".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    for _ in 0..runs {
        // Paired rounds: all three see the same load.
        theirs.push(run(
            &reference,
            vec![list.display().to_string(), t_out.display().to_string()],
            &t_out,
        ));
        durable.push(run(&ours, ours_args(&[]), &o_out));
        no_fsync.push(run(&ours, ours_args(&["--no-fsync"]), &o_out));
        start_only.push(run(&ours, vec!["--version".into()], &work.join("none")));
    }
    let ratios = |mine: &[Duration]| -> String {
        let mut r: Vec<f64> = theirs
            .iter()
            .zip(mine)
            .map(|(t, m)| t.as_secs_f64() / m.as_secs_f64())
            .collect();
        r.sort_by(f64::total_cmp);
        format!(
            "{:.1}x to {:.1}x (median {:.1}x)",
            r[0],
            r[r.len() - 1],
            r[r.len() / 2]
        )
    };
    let (r_durable, r_no_fsync) = (ratios(&durable), ratios(&no_fsync));
    println!(
        "json2streams: reference json2streams (no fsync): {}",
        spread(theirs.clone())
    );
    println!(
        "json2streams: sstream add --from-json2streams (durable, the default): {}; {r_durable} faster",
        spread(durable)
    );
    println!(
        "json2streams: sstream add --from-json2streams --no-fsync: {}; {r_no_fsync} faster",
        spread(no_fsync)
    );

    // In-process, the library alone as `sstream` uses it (the list read on a thread of its own
    // while its 10,000 described items are added, then an unsigned commit), with this bench's
    // allocator (the system's; `sstream` has mimalloc).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut lib = Vec::new();
    for _ in 0..runs {
        let out = work.join("lib");
        let _ = std::fs::remove_dir_all(&out);
        let start = Instant::now();
        rt.block_on(async {
            let images = spawn_json2streams(&list, None);
            let store: Arc<dyn Store> = Arc::new(LocalStore::new(&out));
            let mut repo = Repo::open(store, None).await.unwrap();
            repo.add_batches(images).await.unwrap();
            repo.commit().await.unwrap();
        });
        lib.push(start.elapsed());
    }
    println!(
        "json2streams: in-process (parse + add + commit): {}",
        spread(lib)
    );

    // The floors.
    let published = o_out.join("streams/v1/com.example:released:download.json");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&published).unwrap()).unwrap();
    let mut floor = Vec::new();
    for _ in 0..runs {
        let out = work.join("floor.json");
        let _ = std::fs::remove_file(&out);
        let start = Instant::now();
        let items: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&list).unwrap()).unwrap();
        let mut text = serde_json::to_vec_pretty(&doc).unwrap();
        text.push(b'\n');
        let mut f = std::fs::File::create(&out).unwrap();
        std::io::Write::write_all(&mut f, &text).unwrap();
        f.sync_all().unwrap();
        floor.push(start.elapsed());
        drop(items);
    }
    println!(
        "json2streams: floor, in-process: read + parse the list, pretty-print + write + fsync \
         the products file: {}",
        spread(floor)
    );
    println!(
        "json2streams: floor, starting the process (sstream --version): {}",
        spread(start_only)
    );
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn main() {
    let cases: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |c: &str| cases.is_empty() || cases.iter().any(|a| a == c);
    let tmp;
    let work = match std::env::var_os("BENCH_DIR") {
        Some(d) => {
            std::fs::create_dir_all(&d).unwrap();
            PathBuf::from(d)
        }
        None => {
            tmp = tempfile::tempdir().unwrap();
            tmp.path().to_path_buf()
        }
    };
    if want("add-one") {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(bench_add_one(&work));
    }
    if want("json2streams") {
        bench_json2streams(&work);
    }
}
