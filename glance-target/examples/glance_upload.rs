//! Upload speed and memory of `GlanceClient::upload` (docs/testbed.md has the figures).
//!
//! ```sh
//! source "$(scripts/openstack-testbed openrc)"
//! cargo run --release -p glance-target --example glance_upload -- 1024   # MiB
//! ```
//!
//! Creates an image, streams MIB mebibytes of generated data into it in 1 MiB chunks (no file:
//! the source costs nothing), prints the time and the process's peak resident memory, checks
//! Glance's size, and deletes the image.

use std::time::Instant;

use bytes::Bytes;
use futures::stream;
use glance_target::{GlanceClient, NewImage, Session};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(256);
    let session = Session::from_env()?;
    let glance = GlanceClient::new(&session).await?;
    let image = glance
        .create(&NewImage::new("upload-bench", "raw", "bare"))
        .await?;

    // One 1 MiB chunk, shared by every item of the stream: `Bytes` clones are free.
    let chunk = Bytes::from(
        (0..1u32 << 20)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let chunks = stream::iter((0..mib).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let size = (mib as u64) << 20;

    let start = Instant::now();
    let result = glance.upload(&image.id, chunks, Some(size)).await;
    let secs = start.elapsed().as_secs_f64();
    let uploaded = glance.get(&image.id).await?;
    glance.delete(&image.id).await?;
    result?;
    if uploaded.size != Some(size) {
        return Err(format!("Glance reports size {:?}, sent {size}", uploaded.size).into());
    }
    println!(
        "uploaded {mib} MiB in {secs:.2} s ({:.0} MiB/s); peak RSS {} MB",
        mib as f64 / secs,
        peak_rss_mb().unwrap_or(0)
    );
    Ok(())
}

/// VmHWM of /proc/self/status, in MB.
fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}
