//! Big, short-lived buffers (argon2's working memory, a storage upload's chunk), allocated so that
//! freeing them leaves glibc's malloc as it was for everything else in the process.
//!
//! Why: glibc serves a large request with its own `mmap`, and when such a block is freed it raises
//! its mmap threshold to that block's size and its trim threshold to twice that, so that a program
//! that frees big blocks often gets them from its heap next time. It does so for blocks up to
//! 32 MiB (`DEFAULT_MMAP_THRESHOLD_MAX` on 64-bit); freeing a larger one changes nothing. One 19 MiB
//! password hash (the warm-up at start is one) left every malloc arena — one per busy thread, up
//! to 16 on two cores, and the ladder's threads keep several busy — free to keep up to 38 MiB it no
//! longer used, where it otherwise returns all but 128 KiB. Measured: the server idled at 69 MB
//! instead of 33 and peaked at 188 MB instead of 146 MB in the live ladder (docs/performance.md §4).
//! A buffer from here reserves more than 32 MiB of address space; only the part in use is ever
//! written, so only that part is resident.

/// Just over glibc's ceiling for adjusting its thresholds.
const RESERVED_BYTES: usize = 32 * 1024 * 1024 + 4096;

/// `len` copies of `value`, in an allocation of at least [`RESERVED_BYTES`].
pub fn transient_buffer<T: Clone>(len: usize, value: T) -> Vec<T> {
    let reserved = RESERVED_BYTES.div_ceil(std::mem::size_of::<T>().max(1));
    let mut buffer = Vec::with_capacity(len.max(reserved));
    buffer.resize(len, value);
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_what_was_asked_in_a_reservation_past_the_ceiling() {
        let buffer = transient_buffer(19 * 1024, [0u64; 128]);
        assert_eq!(buffer.len(), 19 * 1024);
        assert!(buffer.capacity() * std::mem::size_of::<[u64; 128]>() > 32 * 1024 * 1024);
        let bytes = transient_buffer(100, 7u8);
        assert_eq!(bytes, vec![7u8; 100]);
        assert!(bytes.capacity() > 32 * 1024 * 1024);
    }
}
