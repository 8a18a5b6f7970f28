//! Memory given back to the system when the service goes idle.
//!
//! Between passes the service needs little: its configuration, the status, the OpenStack
//! session. A pass frees what it used (parsed metadata, HTTP buffers, the arenas of the
//! blocking threads that did file I/O), but glibc's allocator keeps freed memory in its heaps
//! and returns only the top of a heap above a threshold: after a pass of 10 jobs of 100 items,
//! about 7 MB of it stayed resident until the next pass, an hour later (idle RSS 21.5 MB, 15 MB
//! once trimmed; docs/sync.md). So when the last running job ends, the free pages of every
//! arena are handed back. Settings that make glibc trim more eagerly all the time would also
//! slow the passes themselves (sstream-mirror's `keep_freed_memory` goes the other way for
//! large downloads); one trim per idle moment costs a few milliseconds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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

/// Counts the runs in progress; when the last one ends, `on_idle` is called (by default
/// [`release_freed_memory`]).
#[derive(Clone)]
pub(crate) struct Activity {
    running: Arc<AtomicUsize>,
    on_idle: Arc<dyn Fn() + Send + Sync>,
}

impl Default for Activity {
    fn default() -> Activity {
        Activity::new(release_freed_memory)
    }
}

impl Activity {
    pub(crate) fn new(on_idle: impl Fn() + Send + Sync + 'static) -> Activity {
        Activity {
            running: Arc::new(AtomicUsize::new(0)),
            on_idle: Arc::new(on_idle),
        }
    }

    /// A run starts; it ends when the guard is dropped (also when the run is cancelled).
    pub(crate) fn start(&self) -> Busy {
        self.running.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }
}

/// A run in progress (see [`Activity::start`]).
pub(crate) struct Busy(Activity);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            (self.0.on_idle)();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_released_once_when_the_last_overlapping_run_ends() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let activity = Activity::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let a = activity.start();
        let b = activity.start();
        drop(a);
        assert_eq!(calls.load(Ordering::SeqCst), 0, "one run still in progress");
        let c = activity.start();
        drop(b);
        assert_eq!(calls.load(Ordering::SeqCst), 0, "one run still in progress");
        drop(c);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        drop(activity.start());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "idle again after a lone run"
        );
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
