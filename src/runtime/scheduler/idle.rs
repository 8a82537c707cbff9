//! Which workers are asleep or looking for work, and waking one when work
//! that any worker could run appears (Go's `wakep`).
//!
//! A worker out of work first looks elsewhere once, counted in
//! `num_spinning` ("spinning", as Go calls a worker that searches), then
//! sleeps in its poller, listed in `sleepers`. New stealable work wakes a
//! sleeper only when nobody is spinning (a spinner will find it) and
//! somebody sleeps; the woken worker is counted as spinning on its behalf,
//! so a burst of spawns wakes one worker, not one per spawn. When the last
//! spinner finds work and stealable work is left, it wakes another, so
//! that work fans out across idle workers one at a time.
//!
//! No wakeup is lost. Both halves of the protocol are here:
//! - the sleeper (`prepare_to_sleep`): stops spinning, sets its SLEEPING
//!   state, lists itself, and only then (the worker, after this returns)
//!   looks at every queue once more before it waits in its poller;
//! - the producer: publishes its work (a push, then a SeqCst fence), then
//!   reads the counters here (`wake_one`) or a worker's `SleepState`
//!   (`notify`).
//!
//! All of it SeqCst, so either the producer sees the sleeper listed and
//! SLEEPING, or the sleeper's last look sees the work.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use crate::loom::{AtomicU8, AtomicUsize, Mutex, MutexGuard, fence};

/// `SleepState` values.
const AWAKE: u8 = 0;
const SLEEPING: u8 = 1;
const NOTIFIED: u8 = 2;

/// Whether one worker sleeps in its poller: AWAKE, SLEEPING, or NOTIFIED
/// (a waker has written its eventfd since it went to sleep). Wakers write
/// the eventfd only on the SLEEPING -> NOTIFIED transition, so a sleeping
/// worker is woken once however many wakers find it.
pub(crate) struct SleepState(AtomicU8);

impl SleepState {
    pub(crate) fn new() -> SleepState {
        SleepState(AtomicU8::new(AWAKE))
    }

    /// Moves SLEEPING to NOTIFIED. True if the caller must now wake the
    /// worker's poller.
    pub(crate) fn notify(&self) -> bool {
        self.0.load(Ordering::SeqCst) == SLEEPING
            && self
                .0
                .compare_exchange(SLEEPING, NOTIFIED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    pub(crate) fn is_awake(&self) -> bool {
        self.0.load(Ordering::SeqCst) == AWAKE
    }

    /// `is_awake` as a hint only (a thief choosing a victim), with no
    /// ordering.
    pub(crate) fn looks_awake(&self) -> bool {
        self.0.load(Ordering::Relaxed) == AWAKE
    }
}

/// A worker as `wake_one` sees it: something to wake by index.
pub(crate) trait Sleeper {
    /// Wakes it if it sleeps (`SleepState::notify`, then its poller).
    fn notify(&self);
}

/// Which workers sleep and how many look for work.
pub(crate) struct IdleSet {
    /// Indices of workers asleep in their poller. A worker removed from here
    /// by `wake_one` has been counted in `num_spinning` for it.
    sleepers: Mutex<Vec<usize>>,
    /// `sleepers.len()`, readable without the lock.
    num_sleeping: AtomicUsize,
    /// Workers awake and looking for work.
    num_spinning: AtomicUsize,
}

impl IdleSet {
    pub(crate) fn new(workers: usize) -> IdleSet {
        IdleSet {
            sleepers: Mutex::new(Vec::with_capacity(workers)),
            num_sleeping: AtomicUsize::new(0),
            num_spinning: AtomicUsize::new(0),
        }
    }

    /// Wakes one sleeping worker, if none is spinning, to look for work.
    pub(crate) fn wake_one(&self, workers: &[impl Sleeper]) {
        if self.num_spinning.load(Ordering::SeqCst) != 0
            || self.num_sleeping.load(Ordering::SeqCst) == 0
        {
            return;
        }
        if self
            .num_spinning
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        let woken = {
            let mut s = self.sleepers();
            let w = s.pop();
            self.num_sleeping.store(s.len(), Ordering::SeqCst);
            w
        };
        match woken {
            Some(i) => workers[i].notify(),
            None => {
                self.num_spinning.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    pub(crate) fn start_spinning(&self) {
        self.num_spinning.fetch_add(1, Ordering::SeqCst);
    }

    /// A spinner stops. Returns true if it was the last one.
    pub(crate) fn stop_spinning(&self) -> bool {
        self.num_spinning.fetch_sub(1, Ordering::SeqCst) == 1
    }

    /// The sleeper's half, for spinning worker `index` out of work: stops
    /// spinning, marks it SLEEPING and lists it, in that order. The worker
    /// must then look at every queue once more before it waits, and call
    /// `back_from_sleep` whether it waited or not.
    pub(crate) fn prepare_to_sleep(&self, index: usize, state: &SleepState) {
        self.stop_spinning();
        state.0.store(SLEEPING, Ordering::SeqCst);
        let mut s = self.sleepers();
        s.push(index);
        self.num_sleeping.store(s.len(), Ordering::SeqCst);
        drop(s);
        fence(Ordering::SeqCst);
    }

    /// Worker `index` is back from sleep (or from almost sleeping): AWAKE
    /// and off the sleeper list. True if `wake_one` took it off the list
    /// first, and so counted it as spinning on its behalf.
    pub(crate) fn back_from_sleep(&self, index: usize, state: &SleepState) -> bool {
        state.0.store(AWAKE, Ordering::SeqCst);
        let mut s = self.sleepers();
        match s.iter().position(|&i| i == index) {
            Some(pos) => {
                s.swap_remove(pos);
                self.num_sleeping.store(s.len(), Ordering::SeqCst);
                false
            }
            None => true,
        }
    }

    fn sleepers(&self) -> MutexGuard<'_, Vec<usize>> {
        // Nothing panics under this lock; a poisoned one is still consistent.
        self.sleepers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
