//! Instants as nanoseconds, so that they fit in an atomic.

use std::sync::OnceLock;
use std::time::Instant;

/// The zero of `nanos`: fixed at first use, before any timer exists.
static EPOCH: OnceLock<Instant> = OnceLock::new();

pub(crate) fn init() {
    EPOCH.get_or_init(Instant::now);
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
