//! Park and unpark: the one blocking primitive under join, sleep, channels,
//! sync and I/O.
//!
//! A coroutine parks by switching back to its worker, which then marks it
//! PARKED; an unpark that arrives before that mark is remembered (NOTIFIED)
//! and makes the park return at once, so no wakeup is lost. A plain thread
//! parks with `std::thread::park`, which has the same token semantics.
//!
//! Parks may return spuriously (a stale timer, a stale token): every caller
//! re-checks its own condition in a loop.

pub(crate) mod blocker;
pub(crate) mod oneshot;
pub(crate) mod spin;
pub(crate) mod state;
pub(crate) mod wait;
pub(crate) mod waitq;

use std::panic::{self, AssertUnwindSafe};
use std::task::Waker;
use std::thread::{self, Thread};
use std::time::Instant;

use crate::runtime::diag::trace;
use crate::runtime::scheduler::worker::{self, Worker};
use crate::runtime::task::header::{Header, TaskRef};
use crate::runtime::time::clock::Clock;

/// Wakes an async task through its `Waker`, which is the task's executor's
/// code: it runs where readiness is found, often on a worker's scheduler
/// stack (a poller's dispatch, a timer callback) or the monitor's. A panic
/// there would take the thread, and every coroutine it serves, down; so it
/// is caught here and goes no further (the panic hook has reported it).
/// Its payload is leaked, as `drop_here` leaks one: dropping it could
/// panic again.
pub(crate) fn wake_task(w: Waker) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| w.wake())) {
        std::mem::forget(payload);
    }
}

/// Who to wake: a coroutine or a plain thread.
#[derive(Clone)]
pub(crate) enum Waiter {
    Coroutine(TaskRef),
    Thread(Thread),
}

impl Waiter {
    /// The caller: the running coroutine, or else the current thread.
    pub(crate) fn current() -> Waiter {
        match Worker::running_task() {
            Some(task) => Waiter::Coroutine(task),
            None => Waiter::Thread(thread::current()),
        }
    }

    pub(crate) fn wake_by_ref(&self) {
        match self {
            Waiter::Coroutine(task) => unpark(task.header()),
            Waiter::Thread(t) => t.unpark(),
        }
    }
}

/// Unparks a coroutine: queues it on its own worker if it was parked.
#[inline]
pub(crate) fn unpark(header: &Header) {
    if header.unpark()
        && let Some((w, slot)) = header.home()
    {
        if trace::enabled() {
            trace::record(trace::Kind::Wake, w as u64, header.id, trace::running_id());
        }
        worker::schedule(w, slot);
    }
}

/// Parks the caller until unparked (or spuriously).
#[inline]
pub(crate) fn park() {
    match Worker::current_in_coroutine() {
        Some(w) => w.park_running(),
        None => {
            forbid_on_scheduler();
            thread::park()
        }
    }
}

/// Lets the other runnable coroutines of the caller's worker run first; a
/// plain thread goes on at once.
pub(crate) fn yield_coroutine() {
    if let Some(w) = Worker::current_in_coroutine() {
        w.yield_running();
    }
}

/// A worker's or the monitor's own stack never blocks on a goro primitive:
/// it would stop every coroutine the thread serves, for good if the event
/// it waits for needs one of them. Code there runs no user code (see
/// `task/user_value.rs`), so reaching this is a bug in goro: make it loud (the
/// runtime thread aborts the process with this message) rather than hang.
#[cold]
fn forbid_on_scheduler() {
    if crate::runtime::scheduler::thread::on_scheduler_stack() {
        panic!("goro: a runtime thread tried to block on a goro primitive outside any coroutine");
    }
}

/// Parks the caller until unparked or until `deadline` on `clock` (or
/// spuriously). A plain thread is in no bubble: its clock is real time.
pub(crate) fn park_until(deadline: Instant, clock: Clock) {
    match Worker::current_in_coroutine() {
        Some(w) => w.park_running_until(deadline, clock),
        None => {
            forbid_on_scheduler();
            let now = Instant::now();
            if deadline > now {
                thread::park_timeout(deadline - now);
            }
        }
    }
}
