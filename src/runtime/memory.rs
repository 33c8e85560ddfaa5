//! Giving memory back to the system after a peak (a crowd of chat sockets closing, a burst of
//! logins whose Argon2 hashes take 19 MiB each).
//!
//! glibc's malloc keeps what is freed in its arenas for reuse, and its mmap threshold grows to
//! the size of the largest block freed (up to 32 MiB), after which even large buffers come from
//! the arenas. Left alone, a server that once held 5,000 sockets kept ~150 MB it no longer used,
//! and one that hashed passwords on many blocking threads kept ~600 MB. Two measures:
//!
//! - [`configure_allocator`] fixes the mmap threshold at 1 MiB, so large buffers (an Argon2
//!   hash's memory) are mapped on their own and unmapped as soon as they are freed;
//! - [`trim_periodically`] asks glibc to give back the free pages of its arenas
//!   (`malloc_trim(0)`) whenever more than [`TRIM_ABOVE_FREE_BYTES`] lie free in them, checked
//!   every `ONAIR_MEMORY_TRIM_INTERVAL_MS` (default 5 s; 0: never).
//!
//! An allocator that purges by itself (mimalloc 0.1.52 with `MIMALLOC_PURGE_DELAY=0`) was
//! measured first and kept its peak after 5,000 sockets closed (71 → 146 MiB, docs/performance.md).
//! On other platforms both are no-ops.

use std::time::Duration;

/// Free bytes in the arenas above which a trim is worth its cost (8 MiB).
pub const TRIM_ABOVE_FREE_BYTES: usize = 8 << 20;

/// Allocations of at least this many bytes are mapped on their own (1 MiB).
pub const MMAP_THRESHOLD_BYTES: usize = 1 << 20;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD_BYTES`] (which also turns off its growth).
/// Call once, early in `main`.
pub fn configure_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a tunable of the process's allocator.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES as libc::c_int);
    }
}

/// Bytes the allocator holds free in its arenas (glibc's `mallinfo2().fordblks`); 0 elsewhere.
pub fn free_in_arenas() -> usize {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    unsafe {
        libc::mallinfo2().fordblks
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    0
}

/// Gives the arenas' free pages back to the system; returns the bytes the arenas held free before.
pub fn trim() -> usize {
    let free = free_in_arenas();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
    free
}

/// Every `interval`, trims the allocator when more than [`TRIM_ABOVE_FREE_BYTES`] lie free in its
/// arenas (on a blocking thread: a trim walks every arena). Counts the bytes it found free in
/// `onair_memory_trimmed_bytes_total`. Runs until dropped.
pub async fn trim_periodically(interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if free_in_arenas() <= TRIM_ABOVE_FREE_BYTES {
            continue;
        }
        if let Ok(freed) = tokio::task::spawn_blocking(trim).await {
            metrics::counter!("onair_memory_trimmed_bytes_total").increment(freed as u64);
            tracing::debug!(freed, "memory given back to the system");
        }
    }
}
