//! User values the runtime holds: dropped only where user code may run.
//!
//! A `Drop` is user code: it may panic, lock a `goro::sync::Mutex` held by
//! a parked coroutine, or block. On a worker's scheduler stack or on the
//! monitor, a panic would take the thread down and a park would block the
//! whole thread (every coroutine it serves). Values that the runtime keeps
//! and may release there — an `after_func` function held by a timer entry,
//! a context's values held by its deadline — live in a `UserValue`, whose
//! last drop on such a stack moves the value into a new coroutine and drops
//! it there, where a panic is caught and reported and a park parks only
//! that coroutine.

use std::mem::ManuallyDrop;
use std::ops::Deref;

use crate::runtime::Runtime;
use crate::runtime::scheduler::thread::on_scheduler_stack;
use crate::runtime::task::spawn::spawn_detached;

/// A user value held by the runtime (see the module doc).
pub(crate) struct UserValue<T: Send + 'static> {
    /// Dropped in `Drop::drop`, exactly once, in place or in a coroutine.
    value: ManuallyDrop<T>,
}

impl<T: Send + 'static> UserValue<T> {
    pub(crate) fn new(value: T) -> UserValue<T> {
        UserValue {
            value: ManuallyDrop::new(value),
        }
    }
}

impl<T: Send + 'static> Deref for UserValue<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Send + 'static> Drop for UserValue<T> {
    fn drop(&mut self) {
        if on_scheduler_stack() {
            // SAFETY: `drop` runs once and `value` is not used after this.
            let value = unsafe { ManuallyDrop::take(&mut self.value) };
            spawn_detached(Runtime::get(), None, move || drop(value));
        } else {
            // SAFETY: as above.
            unsafe { ManuallyDrop::drop(&mut self.value) }
        }
    }
}
