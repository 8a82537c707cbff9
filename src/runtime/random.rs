//! A cheap per-thread pseudo-random sequence: the order in which `select`
//! polls its arms and in which a bubble fires timers due at one instant.

use std::cell::Cell;

use crate::runtime::time::clock::now_nanos;

thread_local! {
    /// xorshift state for arm order; seeded per thread from its stack address
    /// and the clock, so threads do not share a sequence.
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// A pseudo-random number from this thread's xorshift sequence: cheap,
/// not for anything that must be unpredictable.
pub(crate) fn random() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        if x == 0 {
            let local = 0u8;
            x = (std::ptr::from_ref(&local) as u64) ^ (now_nanos().rotate_left(32)) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x
    })
}
