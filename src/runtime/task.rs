//! A coroutine's shared half: who it is, whether it is parked, and how its
//! result reaches the joiner.
//!
//! The stack and the suspended machine state live elsewhere, in the owning
//! worker's thread-local table (`worker.rs`): they are `!Send` and must never
//! cross threads. What is here is `Send + Sync` by construction: identity, a
//! few atomics, the closure before it runs and the output after it ran.

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use super::park::Waiter;
use super::{WaitReason, lock};

/// Park state: running, or queued to run.
const RUNNING: u32 = 0;
/// Park state: an unpark arrived while running; the next park returns at once.
const NOTIFIED: u32 = 1;
/// Park state: off-CPU, waiting for an unpark.
const PARKED: u32 = 2;
/// Park state: finished; unparks are ignored.
const DONE: u32 = 3;

/// Join bit: the output is written and the coroutine is finished.
const COMPLETE: u32 = 1;
/// Join bit: a joiner stored itself in `join_waiter` and wants a wakeup.
const JOIN_WAITING: u32 = 2;

/// `home` before the coroutine has started.
const UNSTARTED: u64 = u64::MAX;

/// The part of a coroutine every thread may see.
pub(crate) struct Header {
    /// Unique for the life of the process; never reused.
    pub(crate) id: u64,
    /// Set by `Builder::name`; `None` prints as `<unnamed>`.
    pub(crate) name: Option<Arc<str>>,
    /// Usable bytes of the stack the coroutine gets when it first runs.
    pub(crate) stack_size: usize,
    /// Where `spawn`, `go!` or `Builder::spawn` was called.
    pub(crate) location: &'static Location<'static>,
    /// RUNNING, NOTIFIED, PARKED or DONE. Only `park::Parker` (the coroutine
    /// itself and its worker) moves it to PARKED; anyone may unpark.
    park: AtomicU32,
    /// `worker << 32 | slot` in the owner's table once started, `UNSTARTED`
    /// before. Written once, by the starting worker, before the coroutine
    /// first runs; read by wakers, who can only reach a started coroutine.
    home: AtomicU64,
    /// Lowest address of the stack's guard page, 0 before start. Written once
    /// by the starting worker; read by the SIGSEGV handler on that thread.
    pub(crate) guard: AtomicUsize,
    /// Sequence number of the timer armed by this coroutine's current timed
    /// park, 0 when none. The timer fires only if it still matches.
    pub(crate) timer_seq: AtomicU64,
    /// COMPLETE and JOIN_WAITING bits.
    join: AtomicU32,
    /// The joiner to wake on completion; written before JOIN_WAITING is set.
    join_waiter: Mutex<Option<Waiter>>,
    /// What the coroutine is parked on, for `runtime::dump`.
    pub(crate) wait: WaitReason,
}

impl Header {
    pub(crate) fn new(
        id: u64,
        name: Option<Arc<str>>,
        stack_size: usize,
        location: &'static Location<'static>,
    ) -> Header {
        Header {
            id,
            name,
            stack_size,
            location,
            park: AtomicU32::new(RUNNING),
            home: AtomicU64::new(UNSTARTED),
            guard: AtomicUsize::new(0),
            timer_seq: AtomicU64::new(0),
            join: AtomicU32::new(0),
            join_waiter: Mutex::new(None),
            wait: WaitReason::new(),
        }
    }

    /// The name to print: the given one or `<unnamed>`, as std does.
    pub(crate) fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or("<unnamed>")
    }

    pub(crate) fn set_home(&self, worker: usize, slot: u32) {
        self.home
            .store(((worker as u64) << 32) | slot as u64, Ordering::Release);
    }

    /// `(worker, slot)` of a started coroutine.
    pub(crate) fn home(&self) -> Option<(usize, u32)> {
        let h = self.home.load(Ordering::Acquire);
        (h != UNSTARTED).then_some(((h >> 32) as usize, h as u32))
    }

    /// Consumes a pending unpark. True if there was one (the caller must not
    /// switch away).
    pub(crate) fn take_notification(&self) -> bool {
        self.park
            .compare_exchange(NOTIFIED, RUNNING, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Called by the worker after the coroutine switched away to park. False
    /// if an unpark slipped in between; the coroutine must run again.
    pub(crate) fn try_park(&self) -> bool {
        match self
            .park
            .compare_exchange(RUNNING, PARKED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(_) => {
                // NOTIFIED: consume it; the coroutine stays RUNNING.
                self.park.store(RUNNING, Ordering::Relaxed);
                false
            }
        }
    }

    /// Makes a parked coroutine runnable. Returns true if it was parked: the
    /// caller then owns the one and only duty of queueing it on its worker.
    pub(crate) fn unpark(&self) -> bool {
        let mut state = self.park.load(Ordering::Acquire);
        loop {
            let next = match state {
                RUNNING => NOTIFIED,
                PARKED => RUNNING,
                _ => return false,
            };
            match self
                .park
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return state == PARKED,
                Err(s) => state = s,
            }
        }
    }

    pub(crate) fn is_parked(&self) -> bool {
        self.park.load(Ordering::Relaxed) == PARKED
    }

    /// Marks the coroutine finished and wakes its joiner. The output must have
    /// been written before.
    pub(crate) fn complete(&self) {
        self.park.store(DONE, Ordering::Release);
        let prev = self.join.fetch_or(COMPLETE, Ordering::AcqRel);
        if prev & JOIN_WAITING != 0
            && let Some(w) = lock(&self.join_waiter).take()
        {
            w.wake();
        }
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.join.load(Ordering::Acquire) & COMPLETE != 0
    }

    /// Blocks the caller (a coroutine or a thread) until `complete`.
    pub(crate) fn wait_complete(&self) {
        if self.is_complete() {
            return;
        }
        *lock(&self.join_waiter) = Some(Waiter::current());
        if self.join.fetch_or(JOIN_WAITING, Ordering::AcqRel) & COMPLETE != 0 {
            return;
        }
        let _reason = self.wait_reason_for_join();
        while !self.is_complete() {
            super::park::park();
        }
    }

    fn wait_reason_for_join(&self) -> super::WaitGuard {
        super::WaitGuard::set(super::Wait::Join(self.id))
    }
}

/// What a worker needs of a task to start it.
pub(crate) trait Task: Send + Sync + 'static {
    fn header(&self) -> &Header;
    /// Runs the closure and stores its output, catching a panic. Called
    /// exactly once, on the coroutine's own stack.
    fn run(&self);
    /// Stores a failure instead of running (the stack could not be had).
    fn fail(&self, payload: Box<dyn Any + Send>);
}

/// What a `JoinHandle<T>` needs of a task.
pub(crate) trait Joinable<T>: Send + Sync {
    fn header(&self) -> &Header;
    /// Takes the output.
    ///
    /// # Safety
    /// Call only after `header().is_complete()` returned true, and at most
    /// once: the caller must be the task's unique joiner.
    unsafe fn take_output(&self) -> Option<thread::Result<T>>;
}

/// A task with its closure and its output slot, in one allocation.
pub(crate) struct TaskCell<F, T> {
    header: Header,
    /// The closure. Taken exactly once, by `run` or `fail`, on the worker
    /// that dequeued the task (a task sits in one queue at a time, and a
    /// dequeue is exclusive).
    body: UnsafeCell<Option<F>>,
    /// The result. Written once by `run`/`fail` before `complete` sets
    /// COMPLETE (release); read once by the unique joiner after it observed
    /// COMPLETE (acquire).
    output: UnsafeCell<Option<thread::Result<T>>>,
}

// SAFETY: `TaskCell` holds no stack and nothing thread-bound: `F` and `T` are
// `Send`, and each `UnsafeCell` is accessed by one thread at a time, as the
// field invariants above state (exclusive dequeue for `body`; the
// release/acquire COMPLETE handoff and a unique joiner for `output`).
unsafe impl<F: Send, T: Send> Sync for TaskCell<F, T> {}

impl<F, T> TaskCell<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(header: Header, f: F) -> Arc<Self> {
        Arc::new(TaskCell {
            header,
            body: UnsafeCell::new(Some(f)),
            output: UnsafeCell::new(None),
        })
    }
}

impl<F, T> Task for TaskCell<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn header(&self) -> &Header {
        &self.header
    }

    fn run(&self) {
        // SAFETY: `body` is taken exactly once, by the worker that dequeued
        // this task and started it on this stack (field invariant).
        let f = unsafe { (*self.body.get()).take() };
        let result = match f {
            Some(f) => panic::catch_unwind(AssertUnwindSafe(f)),
            None => return,
        };
        // SAFETY: written once, before `complete` publishes it (field invariant).
        unsafe { *self.output.get() = Some(result) };
    }

    fn fail(&self, payload: Box<dyn Any + Send>) {
        // SAFETY: same exclusivity as in `run`: the dequeuing worker calls
        // `fail` instead of starting the task.
        unsafe {
            drop((*self.body.get()).take());
            *self.output.get() = Some(Err(payload));
        }
    }
}

impl<F, T> Joinable<T> for TaskCell<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn header(&self) -> &Header {
        &self.header
    }

    unsafe fn take_output(&self) -> Option<thread::Result<T>> {
        // SAFETY: the caller observed COMPLETE and is the unique joiner
        // (function contract), so the writer is done and nobody else reads.
        unsafe { (*self.output.get()).take() }
    }
}
