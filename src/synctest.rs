//! Virtual time for tests (Go's `testing/synctest`, tokio's
//! `start_paused`).
//!
//! `run(f)` runs `f` in a new coroutine inside a **bubble**: that coroutine
//! and every coroutine spawned from inside the bubble (by `spawn`, `go!`,
//! `after_func`, a context's `after_func`) are its members, and they share
//! a virtual clock. The clock stands still while any member can run, and
//! when every member is blocked it jumps straight to the next timer of the
//! bubble. A test of a 30-second timeout takes microseconds, and sees the
//! same instants every run.
//!
//! ```
//! use std::time::Duration;
//!
//! use goro::context::{self, Context, ContextError};
//!
//! goro::synctest::run(|| {
//!     let start = goro::time::now();
//!     let (ctx, _cancel) = context::with_timeout(&Context::background(), Duration::from_secs(30));
//!     let worker = goro::go!(move || {
//!         goro::select! {
//!             recv(ctx.done()) -> _ => ctx.err(),
//!             timeout(Duration::from_secs(60)) => None,
//!         }
//!     });
//!     assert_eq!(worker.join().unwrap(), Some(ContextError::DeadlineExceeded));
//!     // Exactly 30 virtual seconds, however long the machine took.
//!     assert_eq!(goro::time::now() - start, Duration::from_secs(30));
//! });
//! ```
//!
//! # What follows the virtual clock
//!
//! Inside a bubble, `goro::time::now()` reads the virtual clock (an
//! ordinary `Instant`: the bubble's real start plus virtual time since),
//! and so does every timeout goro computes: `sleep`, `after`, `Timer`,
//! `Ticker`, `after_func`, context deadlines and timeouts, channel
//! `send_timeout`/`recv_timeout`, `select!`'s `timeout` arm, the timeouts
//! of `goro::sync` and of `block_on_timeout`. Deadlines given as an
//! `Instant` should be computed from `goro::time::now()`:
//! `std::time::Instant::now()` keeps reading real time.
//!
//! **Socket deadlines stay on real time**, in a bubble as outside
//! (`set_read_timeout`, `set_deadline`, `dial_timeout`): a socket waits on
//! the outside world, which keeps real time.
//!
//! # When the clock moves
//!
//! Only when every member is *durably* blocked: parked on something only
//! another member or a timer can end, as Go defines it: a channel, a
//! `select!`, a `goro::sync` primitive, a `join`, a sleep or timer. A
//! member waiting on the outside world (a socket, `goro::blocking`, a file,
//! a future in `block_on`) is not durably blocked, so time stands still
//! until that wait ends; its own timeout, except a socket deadline, is on
//! the virtual clock too, and so cannot fire while it waits.
//!
//! The bubble cannot see who else may wake its members: a member blocked
//! on a channel that only a thread or coroutine outside the bubble sends
//! on counts as durably blocked, so the clock may jump, or the bubble be
//! declared deadlocked, before that send. Keep what a bubble waits on in
//! the bubble. Timers and contexts read the clock of whoever arms or
//! checks them, so a bubble's timers and contexts are for its members: a
//! coroutine outside that resets one arms it on real time.
//!
//! An entry armed for an instant that has already come (`Timer::new(0)`,
//! `after_func(Duration::ZERO, f)`, a reset to now) fires at once, while
//! its armer runs on, as in Go: the timer's channel is ready when `new`
//! returns. Timers due at the same instant fire in random order, as in Go:
//! a test that passes only in one order has a race it does not see.
//!
//! # Waiting for the others
//!
//! `wait()` (Go's `synctest.Wait`) parks its caller until every *other*
//! member is durably blocked or finished, and every timer due now has
//! fired, without moving the clock: the way to let the coroutines a test
//! started reach their next blocking point before checking what they did.
//!
//! # The end of a bubble
//!
//! `run` returns once every member has finished, not just the root. Time
//! stops when the root returns, as in Go: members still running may go on
//! and finish, but one that then blocks on time (a sleep, a ticker that
//! nobody stops) never wakes, and `run` panics, saying how many are left.
//! While the root runs, a ticker still running while every member is
//! blocked on something else races the clock ahead, waking nobody; after a
//! million such ticks in a row `run` treats the bubble as deadlocked (they
//! would otherwise hold a worker thread for good). Timers still pending at
//! the end never fire. If every member left is durably blocked and no
//! timer is pending, nothing can wake them: `run` panics with a message
//! saying how many are stuck. Those coroutines stay parked, with their
//! stacks, for the life of the process, as a deadlocked goroutine does.

use std::panic::Location;
use std::sync::Arc;

use crate::JoinHandle;
use crate::runtime::park::oneshot;
use crate::runtime::scheduler::worker::Worker;
use crate::runtime::task::spawn::{Membership, spawn_in};
use crate::runtime::time::bubble::{self, Bubble, End};
use crate::runtime::{Runtime, WaitingOn};

/// Runs `f` in a new coroutine in a new bubble with its own virtual clock,
/// waits for it and every coroutine it spawned to finish, and returns `f`'s
/// result (see the module doc). Called from a plain thread, it blocks the
/// thread; from a coroutine, it parks it. Bubbles in parallel (tests of
/// one binary run on parallel threads) have separate clocks.
///
/// # Panics
/// - With `f`'s panic, if `f` panics.
/// - If every coroutine of the bubble is blocked and no timer can wake
///   one: "goro: synctest: deadlock: all N coroutines in the bubble are
///   blocked", or, once `f` has returned (time has stopped then, so a
///   timer wakes no one), "goro: synctest: the bubble's root returned,
///   but N coroutines in it remain blocked".
/// - If called from inside a bubble: bubbles do not nest.
/// - If the runtime has to start and cannot.
#[track_caller]
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if bubble::current().is_some() {
        panic!("goro::synctest::run: called from inside a bubble; bubbles do not nest");
    }
    let rt = Runtime::get();
    let (tx, rx) = oneshot::new::<End>();
    let root = JoinHandle::from(spawn_in(
        rt,
        Membership::Of(Arc::new(Bubble::new(tx))),
        Some(Arc::new(String::from("synctest"))),
        rt.stack_size,
        Location::caller(),
        move || {
            let _stop_time = RootReturns;
            f()
        },
    ));
    // The bubble holds the sender until it ends, and then sends.
    let end = rx
        .recv(WaitingOn::Join(root.coroutine().id()))
        .unwrap_or(End::Finished);
    match end {
        End::Finished => root.join().unwrap_or_else(|e| e.resume()),
        End::Deadlock { blocked } if root.is_finished() => {
            // A panic of the root explains more than what it left behind.
            root.join().unwrap_or_else(|e| e.resume());
            panic!(
                "goro: synctest: the bubble's root returned, but {blocked} coroutines in it remain blocked"
            );
        }
        End::Deadlock { blocked } => {
            panic!("goro: synctest: deadlock: all {blocked} coroutines in the bubble are blocked")
        }
    }
}

/// Stops its bubble's clock when dropped: on the root's return or panic.
struct RootReturns;

impl Drop for RootReturns {
    fn drop(&mut self) {
        // On the root's own stack, so the caller's bubble is the root's.
        if let Some(b) = bubble::current() {
            b.root_returned();
        }
    }
}

/// Waits until every other coroutine of the caller's bubble is durably
/// blocked or finished, and every timer due now has fired (Go's
/// `synctest.Wait`). The clock does not move: `wait` lets the coroutines a
/// test started reach their next blocking point, so that the test can then
/// check what they did.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// goro::synctest::run(|| {
///     let (tx, rx) = goro::chan::chan::<u32>(0);
///     let got = Arc::new(AtomicBool::new(false));
///     let g = got.clone();
///     goro::go!(move || {
///         rx.recv().unwrap();
///         g.store(true, Ordering::SeqCst);
///     });
///     goro::synctest::wait(); // the receiver is parked in `recv`
///     assert!(!got.load(Ordering::SeqCst));
///     tx.send(1).unwrap();
///     goro::synctest::wait(); // and now it has finished
///     assert!(got.load(Ordering::SeqCst));
/// });
/// ```
///
/// # Panics
/// - If called from outside a bubble (a plain thread, or a coroutine not
///   started by `run` or by one of its members), as Go's does.
/// - If another coroutine of the same bubble is in `wait`, as Go's does.
pub fn wait() {
    let member = Worker::running_task().and_then(|t| t.header().bubble().cloned().map(|b| (b, t)));
    match member {
        Some((b, me)) => b.wait(me),
        None => panic!("goro::synctest::wait: called outside a bubble"),
    }
}
