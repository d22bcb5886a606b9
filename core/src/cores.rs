//! How many CPUs this process may run on, for everything sized per core (hashing permits, x264
//! threads, viewer threads).

use std::num::NonZeroUsize;

/// The CPUs available to the process (its affinity and cgroup quota included), at least one.
pub fn available() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}
