//! Coroutine-aware synchronization: Go's `sync` package, with std's API
//! shapes.
//!
//! Every blocking call parks only the calling coroutine, never its worker
//! thread, and blocks the calling thread when called outside the runtime;
//! coroutines and plain threads can share one primitive. Unlike
//! `std::sync`'s blocking types, these never stall a worker (which would
//! stall every coroutine queued on it).
//!
//! All are built the same way (see `docs/internals.md`): a spin lock over a
//! FIFO of blocked parties, each a node on its own stack, woken by whoever
//! completes its wait. Waiters are served in order, so none waits forever;
//! `Mutex` lets newcomers barge in until a waiter has waited 1 ms, as Go's
//! does. Locks have no poisoning, as in Go.
//!
//! - [`Mutex`], [`RwLock`]: locks with guards.
//! - [`Condvar`]: wait for a condition under a `Mutex`.
//! - [`WaitGroup`]: wait for a set of coroutines to finish.
//! - [`ErrGroup`]: coroutines on parts of one task; the first error ends
//!   it (Go's `errgroup`).
//! - [`Once`], [`OnceLock`]: one-time initialization.
//! - [`Semaphore`]: a limited number of permits.
//! - [`Barrier`]: wait until `n` parties arrive.

mod barrier;
mod condvar;
mod errgroup;
mod mutex;
mod once;
mod rwlock;
mod semaphore;
mod waitgroup;

pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use errgroup::ErrGroup;
pub use mutex::{Mutex, MutexGuard};
pub use once::{Once, OnceLock};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Semaphore, SemaphorePermit};
pub use waitgroup::WaitGroup;

use crate::runtime::park::blocker::Wake;

/// Wakeups collected under a primitive's lock, performed after it is
/// released. The first is kept inline, as most releases wake one waiter.
struct Wakes {
    /// The first wakeup pushed, if any.
    first: Option<Wake>,
    /// Every later one, in order; empty (unallocated) for single wakeups.
    rest: Vec<Wake>,
}

impl Wakes {
    fn new() -> Wakes {
        Wakes {
            first: None,
            rest: Vec::new(),
        }
    }

    fn push(&mut self, w: Wake) {
        match self.first {
            None => self.first = Some(w),
            Some(_) => self.rest.push(w),
        }
    }

    /// Performs every wakeup; call with no lock held.
    fn wake(self) {
        for w in self.first.into_iter().chain(self.rest) {
            w.wake();
        }
    }
}
