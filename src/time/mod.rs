//! Time: sleeping, timers and tickers (Go's `time`).
//!
//! - `sleep`, `sleep_until`: park the caller.
//! - `after(d)`: a channel that receives the instant once, `d` from now.
//! - `Timer`: `after` that can be stopped and reset.
//! - `Ticker`, `tick(d)`: a channel that receives the instant every period,
//!   dropping ticks that a slow receiver has not made room for.
//! - `after_func(d, f)`: runs `f` in a new coroutine `d` from now; the
//!   returned `FuncTimer` can stop or reset it.
//! - `now()`: the caller's clock, virtual in a `goro::synctest` bubble.
//!
//! # Design
//!
//! No timer thread: every timer is an entry on a worker's timer heap
//! (`runtime::timer::call_at`), armed on the caller's worker, or on some
//! worker when the caller is a plain thread (which starts the runtime if
//! needed). Workers fire due entries between coroutines and sleep no longer
//! than their earliest entry, so a timer fires within a fraction of a
//! millisecond of its instant unless its worker is held by a coroutine that
//! does not block. A firing only sends without waiting (`try_send`) or
//! spawns: it never runs user code on the worker's own stack.
//!
//! Stopping a timer, or dropping every receiver of its channel, cancels its
//! heap entry, which the heap sweeps soon after (see `alarm.rs` and
//! `runtime/time/timer.rs`): a stopped timer does not hold memory until its
//! deadline. Timer and ticker channels hold
//! one value and are never closed, as in Go; since Go 1.23, and here, `stop`
//! and `reset` also take back a value delivered but not yet received, so
//! that no stale instant is received after they return.
//!
//! Durations too long for an `Instant` (`Duration::MAX`) mean a deadline
//! that never comes in practice: a century from now.

mod alarm;
pub(crate) mod format;
mod ticker;
mod timer;

use std::thread;
use std::time::{Duration, Instant};

use crate::chan::Receiver;
use crate::runtime::park;
use crate::runtime::scheduler::worker::Worker;
use crate::runtime::time::clock::{self, Clock};
use crate::runtime::{WaitGuard, WaitingOn};

pub use ticker::{Ticker, tick};
pub use timer::{FuncTimer, Timer, after_func};

/// Stands in for a deadline past the end of `Instant`'s range.
const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The current instant on the caller's clock: real time
/// (`std::time::Instant::now()`), except in a coroutine of a
/// `goro::synctest` bubble, where it is the bubble's virtual time, which
/// moves only when every coroutine of the bubble is blocked. Deadlines and
/// timers computed from it (and every timeout goro computes itself) follow
/// the same clock.
///
/// ```
/// use std::time::Duration;
///
/// let elapsed = goro::synctest::run(|| {
///     let start = goro::time::now();
///     goro::time::sleep(Duration::from_secs(3600));
///     goro::time::now() - start
/// });
/// assert_eq!(elapsed, Duration::from_secs(3600));
/// ```
pub fn now() -> Instant {
    clock::now()
}

/// `d` from now on the caller's clock, or a century from now if that
/// cannot be represented.
pub(crate) fn deadline_after(d: Duration) -> Instant {
    let now = now();
    // The last fallback is unreachable where `Instant` spans centuries
    // around boot, as it does on every platform goro supports.
    now.checked_add(d)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

/// Suspends the caller for at least `d` (Go's `time.Sleep`). In a coroutine
/// this parks only the coroutine; on a plain thread it sleeps the thread.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// goro::run(|| goro::time::sleep(Duration::from_millis(10)));
/// assert!(start.elapsed() >= Duration::from_millis(10));
/// ```
///
/// A positive `d` always goes through the scheduler, as Go's does, even if
/// it has passed by the time the clock is read: a loop of short sleeps lets
/// the other coroutines of its worker run.
pub fn sleep(d: Duration) {
    if d.is_zero() {
        return;
    }
    match now().checked_add(d) {
        Some(deadline) => sleep_deadline(deadline, true),
        None => sleep_forever(),
    }
}

/// Suspends the caller until `deadline` on the caller's clock (see
/// `now`); returns at once if it has passed.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let deadline = Instant::now() + Duration::from_millis(10);
/// goro::run(move || goro::time::sleep_until(deadline));
/// assert!(Instant::now() >= deadline);
/// ```
pub fn sleep_until(deadline: Instant) {
    sleep_deadline(deadline, false);
}

/// Sleeps until `deadline`; with `at_least_once`, a coroutine goes through
/// the scheduler even if the deadline has passed.
fn sleep_deadline(deadline: Instant, at_least_once: bool) {
    if Worker::current_in_coroutine().is_none() {
        let now = Instant::now();
        if deadline > now {
            thread::sleep(deadline - now);
        }
        return;
    }
    let _wait = WaitGuard::set(WaitingOn::Sleep);
    if at_least_once && now() >= deadline {
        park::yield_coroutine();
        return;
    }
    while now() < deadline {
        park::park_until(deadline, Clock::Caller);
    }
}

/// A sleep too long for an `Instant`: never returns.
fn sleep_forever() -> ! {
    let _wait = WaitGuard::set(WaitingOn::Sleep);
    loop {
        park::park();
    }
}

/// A channel that receives the current instant once, at least `d` from now
/// (Go's `time.After`). It holds one value and is never closed: a second
/// receive waits for ever. Use a `Timer` to be able to stop it; dropping
/// the channel (a `select!` arm that lost) stops it too and frees it at
/// once, as Go 1.23 does.
///
/// ```
/// use std::time::Duration;
///
/// goro::run(|| {
///     let (_tx, rx) = goro::chan::chan::<u32>(0);
///     goro::select! {
///         recv(rx) -> _v => panic!("nothing is ever sent"),
///         recv(goro::time::after(Duration::from_millis(10))) -> t => assert!(t.is_ok()),
///     }
/// });
/// ```
pub fn after(d: Duration) -> Receiver<Instant> {
    // The heap entry keeps the alarm alive until it fires, or until the
    // receiver drops and stops it.
    let (_alarm, rx) = alarm::instant_alarm(deadline_after(d), None);
    rx
}
