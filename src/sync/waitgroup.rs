//! `WaitGroup`: wait for a set of coroutines to finish (Go's `sync.WaitGroup`).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::Wakes;
use crate::JoinHandle;
use crate::runtime::WaitingOn;
use crate::runtime::park::blocker::Blocker;
use crate::runtime::park::spin::SpinLock;
use crate::runtime::park::waitq::{Node, WaitQueue};

/// Waits for a collection of coroutines to finish.
///
/// `add` counts work to wait for, `done` counts one finished, and `wait`
/// blocks until the count is back to zero. Clones share one counter, like a
/// pointer to a Go `sync.WaitGroup`.
///
/// ```
/// use goro::sync::WaitGroup;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let wg = WaitGroup::new();
/// let hits = Arc::new(AtomicUsize::new(0));
/// for _ in 0..10 {
///     wg.add(1);
///     let (wg, hits) = (wg.clone(), hits.clone());
///     goro::go!(move || {
///         hits.fetch_add(1, Ordering::Relaxed);
///         wg.done();
///     });
/// }
/// wg.wait();
/// assert_eq!(hits.load(Ordering::Relaxed), 10);
/// ```
#[derive(Clone, Default)]
pub struct WaitGroup {
    /// The counter and waiters, shared by every clone.
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Outstanding work; never negative (`done` at zero panics instead of
    /// decrementing).
    count: AtomicI64,
    /// Blocked `wait` callers. Drained, under this lock, by the `done` that
    /// brings `count` to zero; a waiter checks `count` under the lock before
    /// linking itself, so none can miss that drain.
    waiters: SpinLock<WaitQueue<()>>,
}

impl WaitGroup {
    /// A group with a count of zero.
    pub fn new() -> WaitGroup {
        WaitGroup::default()
    }

    /// Adds `n` to the count.
    pub fn add(&self, n: usize) {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.inner.count.fetch_add(n, Ordering::SeqCst);
    }

    /// Subtracts one from the count, waking the waiters if it reaches zero.
    ///
    /// # Panics
    /// If the count is already zero: `done` was called more often than
    /// `add` counted (Go panics the same way). The count stays at zero, so
    /// waiters are not disturbed.
    pub fn done(&self) {
        let prev = self
            .inner
            .count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                (c > 0).then(|| c - 1)
            });
        match prev {
            Ok(1) => {}
            Ok(_) => return,
            Err(_) => panic!(
                "goro::sync::WaitGroup: negative WaitGroup counter (done called more often than add)"
            ),
        }
        let mut wakes = Wakes::new();
        {
            let mut q = self.inner.waiters.lock();
            while let Some(w) = q.pop_claimed() {
                wakes.push(w.finish(false));
            }
        }
        wakes.wake();
    }

    /// Adds one to the count, runs `f` in a new coroutine, and counts it
    /// done when `f` returns or panics (Go 1.25's `WaitGroup.Go`). The
    /// handle gives `f`'s result, or its panic, to whoever wants it.
    ///
    /// ```
    /// let wg = goro::sync::WaitGroup::new();
    /// let h = wg.go(|| 6 * 7);
    /// wg.wait();
    /// assert_eq!(h.join().unwrap(), 42);
    /// ```
    #[track_caller]
    pub fn go<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.add(1);
        let done = DoneOnDrop(self.clone());
        crate::spawn(move || {
            let _done = done;
            f()
        })
    }

    /// Blocks until the count is zero.
    pub fn wait(&self) {
        if self.inner.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut q = self.inner.waiters.lock();
        if self.inner.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        let blocker = Blocker::new(true);
        let node = Node::new(&blocker, 0, None);
        // SAFETY: `node` stays in this frame, unmoved, until the `done` that
        // drains the queue unlinks it and we observe DONE below.
        unsafe { q.push_back(&node) };
        drop(q);
        blocker.wait(None, WaitingOn::WaitGroup);
    }

    /// The current count (a snapshot).
    pub fn count(&self) -> usize {
        self.inner.count.load(Ordering::SeqCst).max(0) as usize
    }
}

/// Counts one task of a `WaitGroup` done when dropped, even by unwinding.
struct DoneOnDrop(
    /// The group whose count this task holds one of.
    WaitGroup,
);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        self.0.done();
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish()
    }
}
