//! The runtime's clocks: the caller's clock (`now`: its bubble's virtual
//! time inside a `synctest` bubble, else real time), which clock a deadline
//! is on (`Clock`), and instants as nanoseconds, so that they fit in an
//! atomic.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::runtime::park::wait::WaitingOn;
use crate::runtime::time::bubble;

/// The zero of `nanos`: fixed at first use, before any timer exists.
static EPOCH: OnceLock<Instant> = OnceLock::new();

pub(crate) fn init() {
    EPOCH.get_or_init(Instant::now);
    set_coarse(Instant::now());
}

/// `t` as nanoseconds since the epoch; instants before it map to 0.
pub(crate) fn nanos(t: Instant) -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    t.saturating_duration_since(epoch)
        .as_nanos()
        .min(u64::MAX as u128 - 1) as u64
}

/// The instant `n` nanoseconds after the epoch.
pub(crate) fn instant(n: u64) -> Instant {
    let epoch = *EPOCH.get_or_init(Instant::now);
    epoch
        .checked_add(std::time::Duration::from_nanos(n))
        .unwrap_or(epoch)
}

pub(crate) fn now_nanos() -> u64 {
    nanos(Instant::now())
}

/// `now_nanos` as of the monitor's last look (within about 10 ms while the
/// runtime is busy): for dumps, which say how long coroutines wait, without
/// reading the clock on every park.
static COARSE: AtomicU64 = AtomicU64::new(0);

/// Refreshes the coarse clock. Never 0, which means "not set".
pub(crate) fn set_coarse(now: Instant) {
    COARSE.store(nanos(now).max(1), Ordering::Relaxed);
}

pub(crate) fn coarse_now() -> u64 {
    COARSE.load(Ordering::Relaxed)
}

/// The caller's clock: its bubble's virtual now, else real time.
#[inline]
pub(crate) fn now() -> Instant {
    bubble::with_current(|b| b.map_or_else(Instant::now, |b| b.now()))
}

/// The clock a deadline is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Clock {
    /// The caller's: its bubble's for a member, else real time.
    Caller,
    /// Real time, even in a bubble: socket deadlines, which outlive any
    /// one call and wait on the outside world.
    Real,
}

impl Clock {
    /// The clock for a wait on `why`.
    pub(crate) fn for_wait(why: WaitingOn) -> Clock {
        if why.is_io() {
            Clock::Real
        } else {
            Clock::Caller
        }
    }

    pub(crate) fn now(self) -> Instant {
        match self {
            Clock::Caller => now(),
            Clock::Real => Instant::now(),
        }
    }
}
