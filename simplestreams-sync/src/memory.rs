//! Memory given back to the system when the service goes idle.
//!
//! Between passes the service needs little: its configuration, the status, the OpenStack
//! session. A pass frees what it used (parsed metadata, HTTP buffers, the arenas of the
//! blocking threads that did file I/O), but glibc's allocator keeps freed memory in its heaps
//! and returns only the top of a heap above a threshold: after a pass of 10 jobs of 100 items,
//! about 7 MB of it stayed resident until the next pass, an hour later (idle RSS 21.5 MB, 15 MB
//! once trimmed; docs/sync.md). So when the last running job ends, the free pages of every
//! arena are handed back, and again once the runtime's idle blocking threads have ended.
//! Settings that make glibc trim eagerly all the time would also slow the passes themselves
//! (sstream-mirror's `keep_freed_memory` goes the other way, for large downloads); two trims
//! per idle moment cost a few milliseconds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// How long the blocking threads of `sstream-sync`'s runtime outlive their last task (tokio's
/// default is 10 s). Each pass of 10 jobs leaves dozens of them (file I/O, hashing), and each
/// keeps a thread cache of freed blocks that goes back to the allocator only when it exits.
pub const BLOCKING_THREAD_KEEP_ALIVE: Duration = Duration::from_secs(1);

/// Hands the memory the allocator holds free back to the system (glibc's `malloc_trim(0)`:
/// every arena, not only the top of each heap). A no-op where that is not available.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the allocator's own locks and only returns free pages to the
    // kernel; it may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Counts the runs in progress and tells when the last one has ended.
#[derive(Clone, Default)]
pub(crate) struct Activity {
    running: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

impl Activity {
    /// A run starts; it ends when the guard is dropped (also when the run is cancelled).
    pub(crate) fn start(&self) -> Busy {
        self.running.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// Whether no run is in progress.
    pub(crate) fn is_idle(&self) -> bool {
        self.running.load(Ordering::Acquire) == 0
    }

    /// Completes once after each moment the last run in progress ended (also one that ended
    /// before this was called and not yet waited for).
    pub(crate) async fn became_idle(&self) {
        self.idle.notified().await
    }
}

/// A run in progress (see [`Activity::start`]).
pub(crate) struct Busy(Activity);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_one();
        }
    }
}

/// Each time the service goes idle, hands freed memory back to the system: at once, and again
/// once the blocking threads have outlived their keep-alive and ended (their thread caches are
/// freed only then), if no run started meanwhile.
pub(crate) async fn release_when_idle(activity: Activity) {
    loop {
        activity.became_idle().await;
        release_freed_memory();
        tokio::time::sleep(BLOCKING_THREAD_KEEP_ALIVE + Duration::from_millis(500)).await;
        if activity.is_idle() {
            release_freed_memory();
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt as _;

    use super::*;

    #[test]
    fn idle_is_told_once_when_the_last_overlapping_run_ends() {
        let activity = Activity::default();
        assert!(activity.is_idle());
        let a = activity.start();
        let b = activity.start();
        drop(a);
        assert!(!activity.is_idle());
        assert!(
            activity.became_idle().now_or_never().is_none(),
            "b still runs"
        );
        let c = activity.start();
        drop(b);
        assert!(
            activity.became_idle().now_or_never().is_none(),
            "c still runs"
        );
        drop(c);
        assert!(activity.is_idle());
        assert!(activity.became_idle().now_or_never().is_some());
        assert!(
            activity.became_idle().now_or_never().is_none(),
            "one notice per idle moment"
        );
        drop(activity.start());
        assert!(activity.became_idle().now_or_never().is_some());
    }

    #[test]
    fn releasing_memory_leaves_live_allocations_intact() {
        let kept: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 64 * 1024]).collect();
        let freed: Vec<Vec<u8>> = (0..64).map(|_| vec![0xAB; 64 * 1024]).collect();
        drop(freed);
        release_freed_memory();
        for (i, v) in kept.iter().enumerate() {
            assert!(v.iter().all(|b| *b == i as u8));
        }
    }
}
