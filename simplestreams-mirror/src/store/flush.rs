//! Getting written files onto stable storage: the flushes of a durable put, and the early
//! start of a large file's disk writes.

use std::path::Path;

use crate::error::{Error, Result};

/// Starts the disk writes of a large file while it is still being received, so that the flush
/// that makes it durable (the `syncfs` before the metadata naming it is published) finds little
/// left to write: the disk works in parallel with the network instead of after it.
#[derive(Default)]
pub(super) struct EarlyWriteback {
    /// Bytes written to the file so far.
    written: u64,
    /// Bytes whose write-out was started.
    started: u64,
    /// The kernel refused once (a filesystem without it): do not ask again.
    off: bool,
}

impl EarlyWriteback {
    /// Bytes between two requests: large enough to be few, small enough that the disk starts early.
    const STEP: u64 = 4 << 20;

    pub(super) fn wrote(&mut self, f: &std::fs::File, n: u64) {
        self.written += n;
        if self.written - self.started >= Self::STEP {
            self.start(f);
        }
    }

    /// The file is complete: a large one (whose writes already started) starts its tail too.
    pub(super) fn end(&mut self, f: &std::fs::File) {
        if self.started > 0 && self.written > self.started {
            self.start(f);
        }
    }

    fn start(&mut self, f: &std::fs::File) {
        if self.off {
            return;
        }
        if let Err(e) = start_writeback(f, self.started, self.written - self.started) {
            // Only an optimisation: the final flush still makes everything durable.
            tracing::debug!("early write-back unavailable: {e}");
            self.off = true;
        }
        self.started = self.written;
    }
}

#[cfg(target_os = "linux")]
fn start_writeback(f: &std::fs::File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Ok(());
    };
    // SAFETY: sync_file_range on a file descriptor we own; no memory is passed. With only
    // SYNC_FILE_RANGE_WRITE it starts the writes and does not wait for them.
    let rc =
        unsafe { libc::sync_file_range(f.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_f: &std::fs::File, _offset: u64, _len: u64) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Flushes a directory, so that a rename in it is durable.
pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

#[cfg(target_os = "linux")]
pub(super) fn sync_filesystem(f: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs on a file descriptor we own; no memory is passed.
    let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn sync_filesystem(_f: &std::fs::File) -> std::io::Result<()> {
    // No syncfs: a global sync does the same, more broadly.
    #[cfg(unix)]
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe {
        libc::sync()
    };
    Ok(())
}
