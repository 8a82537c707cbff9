//! Time: sleeping.

use std::thread;
use std::time::{Duration, Instant};

use crate::runtime::park;
use crate::runtime::worker::Worker;
use crate::runtime::{Wait, WaitGuard};

/// Suspends the caller for at least `d` (Go's `time.Sleep`). In a coroutine
/// this parks only the coroutine; on a plain thread it sleeps the thread.
pub fn sleep(d: Duration) {
    match Instant::now().checked_add(d) {
        Some(deadline) => sleep_until(deadline),
        None => sleep_forever(),
    }
}

/// Suspends the caller until `deadline`; returns at once if it has passed.
pub fn sleep_until(deadline: Instant) {
    if Worker::current_in_coroutine().is_none() {
        let now = Instant::now();
        if deadline > now {
            thread::sleep(deadline - now);
        }
        return;
    }
    let _wait = WaitGuard::set(Wait::Sleep);
    while Instant::now() < deadline {
        park::park_until(deadline);
    }
}

/// A sleep too long for an `Instant`: never returns.
fn sleep_forever() -> ! {
    let _wait = WaitGuard::set(Wait::Sleep);
    loop {
        park::park();
    }
}
