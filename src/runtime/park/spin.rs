//! A test-and-set lock for the runtime's short critical sections.
//!
//! Channel and sync-primitive state is guarded for a handful of queue
//! operations at a time. std's `Mutex` costs two atomic read-modify-writes a
//! section (lock, and unlock to look for sleepers); this lock costs one
//! (unlock is a plain release store), which a ping-pong round trip pays four
//! times. Waiters spin briefly, then yield their thread, so a holder that the
//! OS preempted gets the CPU back.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// Spins between two attempts, before yielding the thread.
const SPINS_BEFORE_YIELD: u32 = 64;

pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    /// Accessed only by the holder of `locked`.
    value: UnsafeCell<T>,
}

// SAFETY: `value` is only reached through a guard or between `lock_raw` and
// `unlock_raw`, i.e. by the one holder of `locked`; acquire/release on
// `locked` orders the accesses. `T: Send` because the value moves between
// the threads that take the lock.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: owning the lock is owning a `T`.
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub(crate) const fn new(value: T) -> SpinLock<T> {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        self.lock_raw();
        SpinGuard { lock: self }
    }

    /// Takes the lock without a guard; pair it with `unlock_raw`. For code
    /// that holds several locks at once (select).
    #[inline]
    pub(crate) fn lock_raw(&self) {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            let mut spins = 0;
            while self.locked.load(Ordering::Relaxed) {
                if spins < SPINS_BEFORE_YIELD {
                    std::hint::spin_loop();
                    spins += 1;
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Releases a lock taken with `lock_raw`.
    ///
    /// # Safety
    /// The caller must hold the lock, taken with `lock_raw`, and must not use
    /// any reference obtained through `get_raw` afterwards.
    pub(crate) unsafe fn unlock_raw(&self) {
        self.locked.store(false, Ordering::Release);
    }

    /// The value, for a holder of a raw lock.
    ///
    /// # Safety
    /// The caller must hold the lock (`lock_raw`) for as long as it uses the
    /// reference, and must not hold another reference to the value.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn get_raw(&self) -> &mut T {
        // SAFETY: exclusive access by the lock holder (caller contract).
        unsafe { &mut *self.value.get() }
    }
}

impl<T: Default> Default for SpinLock<T> {
    fn default() -> Self {
        SpinLock::new(T::default())
    }
}

pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while its holder has the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while its holder has the lock, and
        // `&mut self` makes this the only reference through it.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}
