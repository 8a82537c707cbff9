//! `Semaphore`: a counted set of permits, handed out in FIFO order (Go's
//! `golang.org/x/sync/semaphore` with a weight of one, or a buffered
//! channel used as a semaphore).
//!
//! # Design
//!
//! A permit count and a FIFO of blocked acquirers under one spin lock.
//! Whoever returns permits hands them straight to the oldest waiters, so a
//! permit is never up for grabs while someone waits: newcomers cannot
//! overtake, and nobody starves.
//!
//! A waiter with a timeout races the releasers through its blocker: either
//! a releaser claims it first and the permit is its (even if the deadline
//! has passed by the time it looks), or its timeout cancels it, releasers
//! skip its node, and the permit goes to the next waiter. So a timed-out
//! waiter never takes a permit with it.

use std::fmt;
use std::time::{Duration, Instant};

use super::Wakes;
use crate::runtime::WaitingOn;
use crate::runtime::park::blocker::{Blocker, Outcome};
use crate::runtime::park::spin::SpinLock;
use crate::runtime::park::waitq::{Node, WaitQueue};

/// A semaphore: `acquire` takes one of a number of permits, parking the
/// caller while none is free; dropping the permit returns it.
///
/// Permits go to waiters first come, first served. Blocking calls park
/// only the calling coroutine (or block the calling thread outside the
/// runtime).
///
/// ```
/// use goro::sync::{Semaphore, WaitGroup};
/// use std::sync::Arc;
///
/// // At most 2 of the 10 coroutines work at once.
/// let sem = Arc::new(Semaphore::new(2));
/// let wg = WaitGroup::new();
/// for _ in 0..10 {
///     let sem = sem.clone();
///     wg.go(move || {
///         let _permit = sem.acquire();
///         goro::yield_now();
///     });
/// }
/// wg.wait();
/// assert_eq!(sem.available_permits(), 2);
/// ```
pub struct Semaphore {
    /// Free permits and blocked acquirers.
    state: SpinLock<State>,
}

struct State {
    /// Free permits. Never positive while `waiters` holds a live node:
    /// whoever adds permits first hands them to the waiters.
    permits: usize,
    /// Blocked acquirers, oldest first. A node whose blocker timed out may
    /// linger until its owner removes it; releasers skip it.
    waiters: WaitQueue<()>,
}

impl Semaphore {
    /// A semaphore with `permits` free permits.
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: SpinLock::new(State {
                permits,
                waiters: WaitQueue::new(),
            }),
        }
    }

    /// Takes a permit, parking the caller until one is free.
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        // Without a deadline, `take` returns only with a permit.
        self.take(None);
        SemaphorePermit { sem: self }
    }

    /// Takes a permit if one is free and nobody waits for it.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        let mut st = self.state.lock();
        st.take_free().then(|| SemaphorePermit { sem: self })
    }

    /// Takes a permit, waiting at most `timeout`; `None` if none came in
    /// time (never before `timeout` has elapsed).
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        self.take(crate::time::now().checked_add(timeout))
            .then(|| SemaphorePermit { sem: self })
    }

    /// Takes a permit, waiting at most until `deadline`.
    pub fn acquire_deadline(&self, deadline: Instant) -> Option<SemaphorePermit<'_>> {
        self.take(Some(deadline))
            .then(|| SemaphorePermit { sem: self })
    }

    /// Adds `n` permits (for example to return permits given up with
    /// `SemaphorePermit::forget`), waking as many waiters. The count
    /// saturates at `usize::MAX`.
    pub fn add_permits(&self, n: usize) {
        let mut wakes = Wakes::new();
        {
            let mut guard = self.state.lock();
            let st = &mut *guard;
            st.permits = st.permits.saturating_add(n);
            while st.permits > 0 {
                let Some(w) = st.waiters.pop_claimed() else {
                    break;
                };
                st.permits -= 1;
                wakes.push(w.finish(false));
            }
        }
        wakes.wake();
    }

    /// Free permits now (a snapshot).
    pub fn available_permits(&self) -> usize {
        self.state.lock().permits
    }

    /// Takes a permit for the caller, who must then own it (as a
    /// `SemaphorePermit`); false if `deadline` passed first.
    fn take(&self, deadline: Option<Instant>) -> bool {
        let mut st = self.state.lock();
        if st.take_free() {
            return true;
        }
        let blocker = Blocker::new(deadline.is_none());
        let node = Node::new(&blocker, 0, None);
        // SAFETY: `node` stays in this frame, unmoved, until a releaser
        // unlinks it (and DONE is observed below) or we remove it ourselves.
        unsafe { st.waiters.push_back(&node) };
        drop(st);
        match blocker.wait(deadline, WaitingOn::Semaphore) {
            // A releaser handed us its permit.
            Outcome::Done { .. } => true,
            Outcome::TimedOut => {
                self.state.lock().waiters.remove(&node);
                false
            }
        }
    }
}

impl State {
    /// Takes a free permit if there is one. Free permits imply no live
    /// waiter, so this never overtakes one.
    fn take_free(&mut self) -> bool {
        let free = self.permits > 0;
        if free {
            self.permits -= 1;
        }
        free
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("permits", &self.available_permits())
            .finish_non_exhaustive()
    }
}

/// One permit of a `Semaphore`; returned to it when dropped.
#[must_use = "the permit is returned as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    /// The semaphore this permit came from and goes back to.
    sem: &'a Semaphore,
}

impl SemaphorePermit<'_> {
    /// Gives the permit up without returning it: the semaphore has one
    /// permit fewer until `add_permits` puts one back.
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.add_permits(1);
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}
