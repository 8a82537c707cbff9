//! A coroutine's park state: the handshake between a coroutine that parks
//! and whoever unparks it, so that no wakeup is lost.
//!
//! The coroutine switches back to its worker first, and only then does the
//! worker move it RUNNING -> PARKED (`try_park`). An unpark that arrives
//! before that (RUNNING -> NOTIFIED) makes `try_park` fail, and the
//! coroutine runs again and re-checks its condition. An unpark of a PARKED
//! coroutine moves it to RUNNING and tells its caller to queue it: exactly
//! one unparker gets that duty. Every transition is a read-modify-write
//! with acquire and release, so what an unparker wrote before its unpark
//! is visible to the coroutine when it re-checks. The loom model
//! `loom_models::park_and_unpark_lose_no_wakeup` explores it.

use std::sync::atomic::Ordering;

use crate::loom::AtomicU32;

/// Running, or queued to run.
const RUNNING: u32 = 0;
/// An unpark arrived while running; the next park returns at once.
const NOTIFIED: u32 = 1;
/// Off-CPU, waiting for an unpark.
const PARKED: u32 = 2;
/// Finished; unparks are ignored.
const DONE: u32 = 3;

/// RUNNING, NOTIFIED, PARKED or DONE. Only the coroutine's own worker
/// moves it to PARKED or DONE; anyone may unpark.
pub(crate) struct ParkState(AtomicU32);

impl ParkState {
    pub(crate) fn new() -> ParkState {
        ParkState(AtomicU32::new(RUNNING))
    }

    /// Consumes a pending unpark. True if there was one (the caller must not
    /// switch away).
    #[inline]
    pub(crate) fn take_notification(&self) -> bool {
        // Load first: a failed compare-and-swap still costs a locked op.
        self.0.load(Ordering::Relaxed) == NOTIFIED
            && self
                .0
                .compare_exchange(NOTIFIED, RUNNING, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Called by the worker after the coroutine switched away to park. False
    /// if an unpark slipped in between; the coroutine must run again.
    #[inline]
    pub(crate) fn try_park(&self) -> bool {
        match self
            .0
            .compare_exchange(RUNNING, PARKED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(_) => {
                // NOTIFIED: consume it; the coroutine stays RUNNING. A swap,
                // not a store: it reads the latest notification, so that
                // what its unparker wrote before is visible when the
                // coroutine runs again and re-checks its condition.
                self.0.swap(RUNNING, Ordering::Acquire);
                false
            }
        }
    }

    /// Makes a parked coroutine runnable. Returns true if it was parked: the
    /// caller then owns the one and only duty of queueing it on its worker.
    #[inline]
    pub(crate) fn unpark(&self) -> bool {
        let mut state = self.0.load(Ordering::Acquire);
        loop {
            let next = match state {
                RUNNING => NOTIFIED,
                PARKED => RUNNING,
                // Already notified: write it again all the same. Returning
                // after a mere load would not publish the caller's earlier
                // writes (the condition the coroutine will re-check) to
                // whoever consumes the notification: the coroutine could
                // consume it, miss the condition and park for good.
                NOTIFIED => NOTIFIED,
                _ => return false,
            };
            match self
                .0
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return state == PARKED,
                Err(s) => state = s,
            }
        }
    }

    pub(crate) fn is_parked(&self) -> bool {
        self.0.load(Ordering::Relaxed) == PARKED
    }

    /// The coroutine has finished: later unparks do nothing.
    pub(crate) fn finish(&self) {
        self.0.store(DONE, Ordering::Release);
    }
}
