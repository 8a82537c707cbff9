//! `Condvar`: wait for a condition under a `goro::sync::Mutex` (Go's
//! `sync.Cond`, with std's API).
//!
//! # Design
//!
//! A FIFO of waiters under a spin lock. `wait` links its node *before* it
//! releases the mutex, so a `notify` that follows any change the waiter
//! could have missed finds it queued: no wakeup is lost. `notify_one` wakes
//! the oldest waiter, `notify_all` every waiter queued at that moment.
//!
//! A waiter with a timeout races the notifiers through its blocker: either a
//! notifier claims it first (the wait reports a notification, even if the
//! deadline has passed by the time it looks) or its timeout cancels it, and
//! then notifiers skip its node and the notification goes to the next
//! waiter. So a timed-out waiter never swallows a notification.

use std::fmt;
use std::time::{Duration, Instant};

use super::Wakes;
use super::mutex::MutexGuard;
use crate::runtime::WaitingOn;
use crate::runtime::park::blocker::{Blocker, Outcome};
use crate::runtime::park::spin::SpinLock;
use crate::runtime::park::waitq::{Node, WaitQueue};

/// A condition variable: coroutines park in `wait` until another calls
/// `notify_one` or `notify_all`.
///
/// Use it with `goro::sync::Mutex`; it parks only the calling coroutine
/// (or blocks the calling thread outside the runtime). goro's condvar does
/// not wake spuriously, but check the condition in a loop all the same (or
/// use `wait_while`): another party may change it between the notify and
/// the waiter's relock.
///
/// ```
/// use goro::sync::{Condvar, Mutex};
/// use std::sync::Arc;
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let pair2 = pair.clone();
/// goro::go!(move || {
///     let (ready, cv) = &*pair2;
///     *ready.lock() = true;
///     cv.notify_one();
/// });
/// let (ready, cv) = &*pair;
/// let guard = cv.wait_while(ready.lock(), |ready| !*ready);
/// assert!(*guard);
/// ```
pub struct Condvar {
    /// Waiters, oldest first. A node whose blocker timed out may linger
    /// until its owner removes it; notifiers skip it.
    waiters: SpinLock<WaitQueue<()>>,
}

/// Whether a timed wait returned because its time ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitTimeoutResult(
    /// Whether the time ran out (and no notification came).
    bool,
);

impl WaitTimeoutResult {
    /// True if the wait ended by timeout rather than by a notification.
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    /// A condition variable with no waiters.
    pub const fn new() -> Condvar {
        Condvar {
            waiters: SpinLock::new(WaitQueue::new()),
        }
    }

    /// Releases the guard's mutex, parks until notified, then relocks the
    /// mutex and returns its guard.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_until(guard, None).0
    }

    /// Waits while `condition` holds, checking it under the lock before
    /// each wait; returns the guard once it is false.
    pub fn wait_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> MutexGuard<'a, T>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// As `wait`, but for at most `timeout`. Never reports a timeout before
    /// `timeout` has elapsed.
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        self.wait_until(guard, crate::time::now().checked_add(timeout))
    }

    /// As `wait_while`, but for at most `timeout` in total. The result says
    /// whether the time ran out with the condition still true.
    pub fn wait_timeout_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: F,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult)
    where
        F: FnMut(&mut T) -> bool,
    {
        let deadline = crate::time::now().checked_add(timeout);
        while condition(&mut *guard) {
            let (g, res) = self.wait_until(guard, deadline);
            guard = g;
            if res.timed_out() {
                let still = condition(&mut *guard);
                return (guard, WaitTimeoutResult(still));
            }
        }
        (guard, WaitTimeoutResult(false))
    }

    /// Wakes the oldest waiter, if any.
    pub fn notify_one(&self) {
        let wake = {
            let mut q = self.waiters.lock();
            q.pop_claimed().map(|w| w.finish(false))
        };
        if let Some(w) = wake {
            w.wake();
        }
    }

    /// Wakes every waiter queued now.
    pub fn notify_all(&self) {
        let mut wakes = Wakes::new();
        {
            let mut q = self.waiters.lock();
            while let Some(w) = q.pop_claimed() {
                wakes.push(w.finish(false));
            }
        }
        wakes.wake();
    }

    /// The wait behind every public form; `None` waits without a deadline.
    fn wait_until<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let mutex = guard.mutex;
        let blocker = Blocker::new(deadline.is_none());
        let node = Node::new(&blocker, 0, None);
        // SAFETY: `node` stays in this frame, unmoved, until a notifier
        // unlinks it (and DONE is observed below) or we remove it ourselves.
        unsafe { self.waiters.lock().push_back(&node) };
        // Queued first, then unlocked: a notify after this finds us.
        drop(guard);
        let outcome = blocker.wait(deadline, WaitingOn::Condvar);
        let timed_out = outcome == Outcome::TimedOut;
        if timed_out {
            self.waiters.lock().remove(&node);
        }
        (mutex.lock(), WaitTimeoutResult(timed_out))
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
