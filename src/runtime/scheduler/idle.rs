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
//! No wakeup is lost: a worker going to sleep first sets its SLEEPING state,
//! then lists itself, then looks at every queue once more (all SeqCst), while
//! a producer publishes its work before it reads the counters here.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::runtime::lock;
use crate::runtime::scheduler::worker::WorkerShared;

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
    pub(crate) fn wake_one(&self, workers: &[WorkerShared]) {
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
            let mut s = lock(&self.sleepers);
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

    pub(crate) fn add_sleeper(&self, index: usize) {
        let mut s = lock(&self.sleepers);
        s.push(index);
        self.num_sleeping.store(s.len(), Ordering::SeqCst);
    }

    /// Takes a worker off the sleeper list. False if `wake_one` already did,
    /// in which case the worker is now counted as spinning.
    pub(crate) fn remove_sleeper(&self, index: usize) -> bool {
        let mut s = lock(&self.sleepers);
        match s.iter().position(|&i| i == index) {
            Some(pos) => {
                s.swap_remove(pos);
                self.num_sleeping.store(s.len(), Ordering::SeqCst);
                true
            }
            None => false,
        }
    }
}
