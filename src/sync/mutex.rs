//! `Mutex`: mutual exclusion that parks only the coroutine (Go's
//! `sync.Mutex`, with std's guard-shaped API).
//!
//! # Design
//!
//! One state word and a FIFO of blocked lockers, as in Go:
//!
//! - `LOCKED`: someone holds the lock.
//! - `WOKEN`: an unlocker woke a waiter that is now competing for the lock;
//!   until it clears the bit (by taking the lock or queueing again), no
//!   unlocker wakes another, so one release wakes at most one waiter.
//! - `STARVING`: starvation mode (below).
//! - `WAITERS`: the queue is not empty.
//!
//! Uncontended, `lock` and `unlock` are one compare-and-swap each (0 to
//! `LOCKED` and back). Any other bit sends them to the slow path.
//!
//! **Normal mode.** An unlocker with waiters releases the lock and wakes the
//! oldest waiter, which then competes with newcomers (which may barge in:
//! they are already running, so this gives the best throughput). A woken
//! waiter that loses queues again at the *front*, keeping its turn.
//!
//! **Starvation mode.** A woken waiter that loses after waiting more than
//! 1 ms in total sets `STARVING` as it queues again. From then on an unlocker
//! does not release the lock: it hands it, still `LOCKED`, to the oldest
//! waiter, so newcomers find it taken and queue at the tail. The mode ends
//! when the waiter handed the lock is the last one, or waited less than
//! 1 ms. So nobody waits forever, as long as holders unlock.
//!
//! # Invariants
//!
//! - `WAITERS` and `STARVING` change only under the queue's lock;
//!   `WAITERS` is set exactly when the queue is non-empty, and `STARVING`
//!   implies `WAITERS` and `LOCKED`, whenever that lock is free.
//! - `WOKEN` is set only by an unlocker (holding `LOCKED` and the queue's
//!   lock) and cleared only by the waiter it woke.
//! - Without the queue's lock, the state changes only by taking a free lock
//!   or by the fast unlock from exactly `LOCKED`. So while one holds
//!   `LOCKED` *and* the queue's lock, nobody else changes the state.
//! - A locker that will park registers (`WAITERS`) under the queue's lock,
//!   by a compare-and-swap from a value it saw `LOCKED` in, so the lock is
//!   held at that instant; the holder's unlock then fails its fast path and
//!   takes the queue's lock after it: no wakeup is lost.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::runtime::WaitingOn;
use crate::runtime::park::blocker::{Blocker, Wake};
use crate::runtime::park::spin::SpinLock;
use crate::runtime::park::waitq::{Node, WaitQueue};

/// Someone holds the lock.
const LOCKED: usize = 1;
/// A woken waiter is competing for the lock; unlockers wake nobody else.
const WOKEN: usize = 2;
/// Starvation mode: unlock hands the lock to the oldest waiter.
const STARVING: usize = 4;
/// The wait queue is non-empty.
const WAITERS: usize = 8;

/// A waiter that has waited this long switches the mutex to starvation
/// mode: Go's threshold, long enough that barging wins in normal use and
/// short enough that tail latency stays bounded.
const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);

/// What a queued locker's node carries.
enum Ticket {
    /// Waiting since this instant (its first time in the queue).
    Waiting(Instant),
    /// The unlocker handed the lock over: the waiter holds it.
    Handoff,
}

/// The lock without the data: the state word and the wait queue.
struct RawMutex {
    /// `LOCKED | WOKEN | STARVING | WAITERS`; see the module docs for who
    /// may change which bit.
    state: AtomicUsize,
    /// Blocked lockers.
    queue: SpinLock<Waiters>,
}

struct Waiters {
    /// Blocked lockers, oldest first (a woken waiter that lost goes back to
    /// the front). Every node's blocker is exclusive and never times out,
    /// so no node is ever stale.
    nodes: WaitQueue<Ticket>,
    /// How many nodes `nodes` links.
    len: usize,
}

impl RawMutex {
    const fn new() -> RawMutex {
        RawMutex {
            state: AtomicUsize::new(0),
            queue: SpinLock::new(Waiters {
                nodes: WaitQueue::new(),
                len: 0,
            }),
        }
    }

    #[inline]
    fn lock(&self) {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
    }

    /// Takes the lock if it is free. In starvation mode it never is: the
    /// lock passes from holder to waiter without being released.
    #[inline]
    fn try_lock(&self) -> bool {
        self.try_acquire(&mut self.state.load(Ordering::Relaxed), 0)
    }

    /// Sets `LOCKED` (clearing the bits in `clear`) while it is unset,
    /// starting from the guess `*s`. On failure `*s` is the state last seen,
    /// which has `LOCKED`: a compare-and-swap from it can only succeed
    /// while the lock is held, never after an unlock and relock brought the
    /// word back to an older, unlocked value.
    fn try_acquire(&self, s: &mut usize, clear: usize) -> bool {
        while *s & LOCKED == 0 {
            match self.state.compare_exchange_weak(
                *s,
                (*s | LOCKED) & !clear,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => *s = now,
            }
        }
        false
    }

    #[cold]
    fn lock_slow(&self) {
        // When this locker first queued; set once, for the 1 ms rule.
        let mut since: Option<Instant> = None;
        // Whether an unlocker woke us (and set WOKEN on our behalf).
        let mut woken = false;
        loop {
            let clear = if woken { WOKEN } else { 0 };
            if self.try_acquire(&mut self.state.load(Ordering::Relaxed), clear) {
                return;
            }
            let first = *since.get_or_insert_with(Instant::now);
            let starving = woken && first.elapsed() > STARVATION_THRESHOLD;
            let blocker = Blocker::new(true);
            let node = Node::new(&blocker, 0, Some(Ticket::Waiting(first)));
            {
                let mut q = self.queue.lock();
                let mut s = self.state.load(Ordering::Relaxed);
                loop {
                    if self.try_acquire(&mut s, clear) {
                        return;
                    }
                    // LOCKED is set: register as a waiter, so that its
                    // unlock takes the slow path and finds us queued.
                    let mut new = (s | WAITERS) & !clear;
                    if starving {
                        new |= STARVING;
                    }
                    match self.state.compare_exchange_weak(
                        s,
                        new,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => break,
                        Err(now) => s = now,
                    }
                }
                // SAFETY: `node` stays in this frame, unmoved, until an
                // unlocker unlinks it and we observe its blocker DONE below.
                unsafe {
                    if woken {
                        q.nodes.push_front(&node);
                    } else {
                        q.nodes.push_back(&node);
                    }
                }
                q.len += 1;
            }
            blocker.wait(None, WaitingOn::Mutex);
            // SAFETY: DONE was observed: the unlocker is done with the node.
            if let Some(Ticket::Handoff) = unsafe { node.take() } {
                return;
            }
            woken = true;
        }
    }

    /// Releases the lock.
    ///
    /// # Safety
    /// The caller must hold the lock (any coroutine or thread may release
    /// it, as in Go, but only once per acquisition).
    #[inline]
    unsafe fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow();
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let mut s = self.state.load(Ordering::Relaxed);
        // Nobody to wake (no waiters, or a woken one is already competing):
        // release without the queue's lock.
        while s & STARVING == 0 && (s & WAITERS == 0 || s & WOKEN != 0) {
            match self.state.compare_exchange_weak(
                s,
                s & !LOCKED,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => s = now,
            }
        }
        let wake = {
            let mut q = self.queue.lock();
            self.unlock_queued(&mut q)
        };
        wake.wake();
    }

    /// Releases or hands over the lock, holding `LOCKED` and the queue's
    /// lock (so the state is ours alone to change). Returns the wakeup.
    fn unlock_queued(&self, q: &mut Waiters) -> Wake {
        let s = self.state.load(Ordering::Relaxed);
        let starving = s & STARVING != 0;
        if !starving && s & WOKEN != 0 {
            self.state.fetch_and(!LOCKED, Ordering::Release);
            return Wake::Done;
        }
        let Some(mut next) = q.nodes.pop_claimed() else {
            // WAITERS (and so STARVING) track the queue; clear all anyway.
            self.state
                .fetch_and(!(LOCKED | WAITERS | STARVING), Ordering::Release);
            return Wake::Done;
        };
        q.len -= 1;
        let last = if q.len == 0 { WAITERS } else { 0 };
        if starving {
            let brief = matches!(
                next.take(),
                Some(Ticket::Waiting(t)) if t.elapsed() < STARVATION_THRESHOLD
            );
            let leave = if last != 0 || brief { STARVING } else { 0 };
            // LOCKED stays set: the lock passes to `next`. Its blocker's
            // release/acquire orders our critical section before its own.
            self.state.fetch_and(!(last | leave), Ordering::Relaxed);
            next.put(Ticket::Handoff);
        } else {
            // Release the lock and mark `next` as the woken competitor.
            let _ = self
                .state
                .fetch_update(Ordering::Release, Ordering::Relaxed, |s| {
                    Some((s & !(LOCKED | last)) | WOKEN)
                });
        }
        next.finish(false)
    }

    /// Whether the lock is held now (a snapshot).
    fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }
}

/// A mutual-exclusion lock protecting a `T` (Go's `sync.Mutex`, shaped like
/// `std::sync::Mutex`).
///
/// `lock` parks the calling coroutine while another holds the lock, and
/// blocks the calling thread outside the runtime. Waiters are served in
/// FIFO order with Go's starvation rule: a waiter that has waited more than
/// 1 ms gets the lock handed over, so none waits forever.
///
/// There is no poisoning, as in Go: a panic while holding the guard
/// unlocks the mutex on unwinding and the next locker sees the data as the
/// panicking code left it.
///
/// ```
/// use goro::sync::Mutex;
/// use std::sync::Arc;
///
/// let counter = Arc::new(Mutex::new(0));
/// let handles: Vec<_> = (0..10)
///     .map(|_| {
///         let counter = counter.clone();
///         goro::go!(move || *counter.lock() += 1)
///     })
///     .collect();
/// for h in handles {
///     h.join().unwrap();
/// }
/// assert_eq!(*counter.lock(), 10);
/// ```
pub struct Mutex<T: ?Sized> {
    /// The lock; whoever holds it has exclusive access to `data`.
    raw: RawMutex,
    /// Reached only through a guard (or `&mut self`).
    data: UnsafeCell<T>,
}

// SAFETY: the mutex owns a `T`; moving it moves the `T`.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: the lock gives one party at a time `&mut T`, which may be another
// thread's: that needs `T: Send`, and no more, as for std's `Mutex`.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            raw: RawMutex::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex and returns the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Takes the lock, parking the caller while another holds it.
    ///
    /// Not reentrant: locking a mutex the caller already holds waits
    /// forever.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock();
        MutexGuard::new(self)
    }

    /// Takes the lock if that needs no waiting.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.raw.try_lock().then(|| MutexGuard::new(self))
    }

    /// Whether the mutex is locked now (a snapshot, for diagnostics).
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// The value, through exclusive access (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Holds a `Mutex` locked; unlocks it when dropped. Dereferences to the
/// protected value.
///
/// Unlike std's, the guard may be sent to another coroutine or thread and
/// dropped there (Go lets any goroutine unlock a mutex).
#[must_use = "the mutex unlocks as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    /// The locked mutex; this guard is its holder until dropped.
    pub(super) mutex: &'a Mutex<T>,
    /// The guard hands out `&mut T`: `Send` needs `T: Send`, `Sync` needs
    /// `T: Sync`.
    _data: PhantomData<&'a mut T>,
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// A guard for `mutex`, which the caller has just locked.
    fn new(mutex: &'a Mutex<T>) -> MutexGuard<'a, T> {
        MutexGuard {
            mutex,
            _data: PhantomData,
        }
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while its holder has the lock.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while its holder has the lock, and
        // `&mut self` makes this the only reference through it.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: a guard stands for one acquisition, released once here.
        unsafe { self.mutex.raw.unlock() };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
