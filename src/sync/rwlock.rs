//! `RwLock`: many readers or one writer, parking only the coroutine (Go's
//! `sync.RWMutex`, with std's guard-shaped API).
//!
//! # Design
//!
//! One state word — a reader count, `WRITER` and `WAITERS` — and two FIFOs
//! of blocked lockers, readers and writers, under one spin lock.
//!
//! Uncontended, every operation is one compare-and-swap or fetch-sub: a
//! reader adds itself while there is no writer and nobody waits; a writer
//! goes from 0 to `WRITER`.
//!
//! **Policy: phase-fair hand-over, always.** Once anyone waits, newcomers
//! queue (so a waiting writer blocks new readers), and the lock passes in
//! turns by direct hand-over, never by barging:
//! - when the last reader leaves, the oldest waiting writer gets the lock;
//! - when a writer leaves, *every* waiting reader gets it if any waits
//!   (Go hands read access to all blocked readers the same way), else the
//!   oldest waiting writer does.
//!
//! Hence nobody waits forever: a waiting reader gets in when the current
//! writer leaves; a waiting writer has finitely many writers ahead of it,
//! and between two of them only the readers that queued before the
//! previous writer left (read phases cannot grow while writers wait).
//! Go's mutex-style barging plus 1 ms starvation switch buys throughput for
//! a hot exclusive lock; a read-write lock is contended mostly in mixed
//! phases, where Go too hands over, so we keep the one simpler rule.
//!
//! # Invariants
//!
//! - `WAITERS` changes only under the queues' lock and is set exactly when a
//!   queue is non-empty, whenever that lock is free.
//! - With `WAITERS` set, no fast path succeeds except a reader's release
//!   (a fetch-sub); every acquisition and a writer's release go through the
//!   queues' lock. A release that may have to hand over — the last reader
//!   with `WAITERS` set, or a writer — takes that lock after it, and the
//!   hand-over looks at the state then, so none is lost.
//! - Blocked readers exist only while a writer holds the lock or writers
//!   wait; both queues' nodes have exclusive blockers and no timeouts.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Wakes;
use crate::runtime::WaitingOn;
use crate::runtime::park::blocker::Blocker;
use crate::runtime::park::spin::SpinLock;
use crate::runtime::park::waitq::{Node, WaitQueue};

/// A writer holds the lock.
const WRITER: usize = 1;
/// A queue is non-empty.
const WAITERS: usize = 2;
/// One reader, in the count that fills the rest of the word.
const READER: usize = 4;
/// Most readers at once; more would overflow the count.
const MAX_READERS: usize = usize::MAX / READER;

/// The lockers blocked on one `RwLock`.
struct Queues {
    /// Blocked readers, oldest first; admitted all together.
    readers: WaitQueue<()>,
    /// Blocked writers, oldest first; admitted one at a time.
    writers: WaitQueue<()>,
}

impl Queues {
    fn is_empty(&self) -> bool {
        self.readers.is_empty() && self.writers.is_empty()
    }

    /// Unlinks every blocked reader; returns their count in state units.
    fn admit_readers(&mut self, wakes: &mut Wakes) -> usize {
        let mut admit = 0;
        while let Some(r) = self.readers.pop_claimed() {
            admit += READER;
            wakes.push(r.finish(false));
        }
        admit
    }

    /// Unlinks the oldest blocked writer; returns `WRITER`, or 0 if none.
    fn admit_writer(&mut self, wakes: &mut Wakes) -> usize {
        match self.writers.pop_claimed() {
            Some(w) => {
                wakes.push(w.finish(false));
                WRITER
            }
            None => 0,
        }
    }
}

/// A reader-writer lock protecting a `T` (Go's `sync.RWMutex`, shaped like
/// `std::sync::RwLock`).
///
/// Any number of readers, or one writer, hold it at a time. A blocked
/// `read` or `write` parks the calling coroutine (or blocks the calling
/// thread outside the runtime). Once a writer waits, new readers wait
/// behind it, and waiters are handed the lock in turns, so neither readers
/// nor writers starve. Not reentrant: a reader that reads again while a
/// writer waits deadlocks, as in Go. No poisoning.
///
/// ```
/// use goro::sync::RwLock;
///
/// let lock = RwLock::new(vec![1, 2]);
/// {
///     let a = lock.read();
///     let b = lock.read();
///     assert_eq!(a.len() + b.len(), 4);
/// }
/// lock.write().push(3);
/// assert_eq!(*lock.read(), [1, 2, 3]);
/// ```
pub struct RwLock<T: ?Sized> {
    /// `WRITER | WAITERS | readers * READER`; see the module docs for who
    /// may change what. Readers hold shared access to `data`, a writer
    /// exclusive access.
    state: AtomicUsize,
    /// Blocked readers and writers.
    queues: SpinLock<Queues>,
    /// Reached only through guards (or `&mut self`).
    data: UnsafeCell<T>,
}

// SAFETY: the lock owns a `T`; moving it moves the `T`.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: readers on several threads share `&T` (needs `T: Sync`); a writer
// gets `&mut T` on any thread (needs `T: Send`). As std's `RwLock`.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            state: AtomicUsize::new(0),
            queues: SpinLock::new(Queues {
                readers: WaitQueue::new(),
                writers: WaitQueue::new(),
            }),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock and returns the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Takes shared read access, parking while a writer holds or waits for
    /// the lock.
    ///
    /// # Panics
    /// If `usize::MAX / 4` read guards are alive at once (only reachable by
    /// leaking guards).
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        if !self.try_read_fast() {
            self.read_slow();
        }
        RwLockReadGuard {
            lock: self,
            _data: PhantomData,
        }
    }

    /// Takes read access if that needs no waiting: no writer holds the lock
    /// and none waits.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.try_read_fast().then(|| RwLockReadGuard {
            lock: self,
            _data: PhantomData,
        })
    }

    /// Takes exclusive write access, parking while anyone holds the lock.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        if !self.try_write_fast() {
            self.write_slow();
        }
        RwLockWriteGuard {
            lock: self,
            _data: PhantomData,
        }
    }

    /// Takes write access if that needs no waiting.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.try_write_fast().then(|| RwLockWriteGuard {
            lock: self,
            _data: PhantomData,
        })
    }

    /// The value, through exclusive access (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn try_read_fast(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & (WRITER | WAITERS) == 0 {
            check_readers(s);
            match self.state.compare_exchange_weak(
                s,
                s + READER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
        false
    }

    fn try_write_fast(&self) -> bool {
        self.state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[cold]
    fn read_slow(&self) {
        self.lock_slow(false);
    }

    #[cold]
    fn write_slow(&self) {
        self.lock_slow(true);
    }

    /// Takes the lock for a writer or a reader, or queues and waits to be
    /// handed it.
    fn lock_slow(&self, writer: bool) {
        let blocker = Blocker::new(true);
        let node = Node::new(&blocker, 0, None);
        {
            let mut q = self.queues.lock();
            let mut s = self.state.load(Ordering::Relaxed);
            loop {
                // `WAITERS` is exact under the queues' lock, so these are the
                // fast paths' conditions: nobody queued, and no writer (and,
                // for a writer, no reader) holds the lock.
                let (new, admitted) = if writer && s == 0 {
                    (WRITER, true)
                } else if !writer && s & (WRITER | WAITERS) == 0 {
                    check_readers(s);
                    (s + READER, true)
                } else {
                    (s | WAITERS, false)
                };
                match self
                    .state
                    .compare_exchange_weak(s, new, Ordering::Acquire, Ordering::Relaxed)
                {
                    Ok(_) if admitted => return,
                    Ok(_) => break,
                    Err(now) => s = now,
                }
            }
            let queue = if writer {
                &mut q.writers
            } else {
                &mut q.readers
            };
            // SAFETY: `node` stays in this frame, unmoved, until a hand-over
            // unlinks it and we observe its blocker DONE below.
            unsafe { queue.push_back(&node) };
        }
        // DONE means admitted: the hand-over counted us in the state.
        blocker.wait(None, WaitingOn::RwLock);
    }

    fn read_unlock(&self) {
        let s = self.state.fetch_sub(READER, Ordering::Release) - READER;
        // The last reader out, with someone queued: hand over.
        if s == WAITERS {
            self.hand_over(0);
        }
    }

    fn write_unlock(&self) {
        if self
            .state
            .compare_exchange(WRITER, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.hand_over(WRITER);
        }
    }

    /// Releases the lock to the waiters. `releasing` is `WRITER` when a
    /// writer leaves (it still holds its bit), 0 when the last reader has
    /// left (it already counted itself out).
    ///
    /// After a writer: every blocked reader, if any, else the oldest blocked
    /// writer. After the readers: the oldest blocked writer, if any (blocked
    /// readers only exist behind one), else the readers.
    #[cold]
    fn hand_over(&self, releasing: usize) {
        let mut wakes = Wakes::new();
        {
            let mut q = self.queues.lock();
            let s = self.state.load(Ordering::Acquire);
            if s != releasing | WAITERS {
                // Nobody queued, or (after the last reader) the lock was
                // taken again, and its holder's release will hand over.
                if releasing != 0 {
                    self.state.fetch_and(!releasing, Ordering::Release);
                }
                return;
            }
            // The side that waited for the one leaving goes first.
            let admit = if releasing == WRITER {
                match q.admit_readers(&mut wakes) {
                    0 => q.admit_writer(&mut wakes),
                    n => n,
                }
            } else {
                match q.admit_writer(&mut wakes) {
                    0 => q.admit_readers(&mut wakes),
                    n => n,
                }
            };
            let waiters = if q.is_empty() { 0 } else { WAITERS };
            // We hold the queues' lock and the lock is ours to give (our
            // WRITER bit, or no holder at all), so nobody else can change
            // the state now: `s` is still current.
            self.state.store(admit | waiters, Ordering::Release);
        }
        wakes.wake();
    }
}

/// Panics if one more reader would overflow the count in state `s`.
fn check_readers(s: usize) {
    if s / READER >= MAX_READERS {
        panic!("goro::sync::RwLock: too many read guards alive at once");
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> RwLock<T> {
        RwLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Shared read access to an `RwLock`; released when dropped.
#[must_use = "the read lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    /// The lock, in which this guard counts as one reader until dropped.
    lock: &'a RwLock<T>,
    /// The guard hands out `&T`: it is `Send` and `Sync` as `&T` is.
    _data: PhantomData<&'a T>,
}

/// Exclusive write access to an `RwLock`; released when dropped.
#[must_use = "the write lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    /// The lock, whose `WRITER` bit this guard owns until dropped.
    lock: &'a RwLock<T>,
    /// The guard hands out `&mut T`: `Send` needs `T: Send`, `Sync` needs
    /// `T: Sync`.
    _data: PhantomData<&'a mut T>,
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: while a read guard lives, no writer holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.read_unlock();
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write guard is the lock's only holder.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write guard is the lock's only holder, and `&mut self`
        // makes this the only reference through it.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
