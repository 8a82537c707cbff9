//! Cache prefetch hints for memory another core wrote last.
//!
//! A task cell crosses cores twice in its life: the spawner writes it and a
//! thief runs it; the thief frees it and a spawner reuses it. Each crossing
//! is a miss that stalls the core at first touch. Both ends know the next
//! cell they will touch well before they touch it, so they ask for it early.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{_MM_HINT_ET0, _MM_HINT_T0, _mm_prefetch};

/// Bytes fetched per hint.
const LINE: usize = 64;

/// Asks the CPU to fetch `bytes` at `p` for reading.
#[inline]
pub(crate) fn read(p: *const u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    fetch::<_MM_HINT_T0>(p, bytes);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, bytes);
}

/// Asks the CPU to fetch `bytes` at `p` for writing (exclusive, so the
/// first store does not wait for other cores to let go).
#[inline]
pub(crate) fn write(p: *const u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    fetch::<_MM_HINT_ET0>(p, bytes);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, bytes);
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn fetch<const HINT: i32>(p: *const u8, bytes: usize) {
    for off in (0..bytes).step_by(LINE) {
        // SAFETY: a prefetch is a hint: it has no architectural effect and
        // cannot fault, whatever the address.
        unsafe { _mm_prefetch::<HINT>(p.wrapping_add(off).cast()) };
    }
}
