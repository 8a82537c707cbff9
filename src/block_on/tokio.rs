//! With the `tokio` feature: tokio's reactor and timer for the futures that
//! `block_on` polls.
//!
//! tokio's sockets and timers register with the runtime found in a
//! thread-local context when they are created or first polled, and that
//! runtime's driver must be turned by some thread for them ever to be
//! woken. goro's workers cannot turn it (they block in their own poller),
//! so the driver gets a thread of its own: a current-thread runtime, started
//! on first use, whose thread blocks in `Runtime::block_on` on a future that
//! never completes. That call parks in the driver (epoll and the timer
//! wheel) whenever it has no task to run, and runs the tasks the futures
//! `tokio::spawn` (hyper's connection tasks, for instance). A timer or
//! socket registered from a goro worker wakes that thread through the
//! driver's own waker.
//!
//! The runtime is entered (`Handle::enter`) only while `block_on` polls.
//! tokio's enter guards live in a thread-local stack and must be dropped in
//! the reverse order they were taken; a guard held per poll would break
//! that when a poll parks in goro (a future calling a goro channel, say)
//! and another coroutine on the same worker polls meanwhile. So each thread
//! holds at most one guard of ours, taken by the first poll in progress on
//! that thread and dropped by the last one to end: coroutines on a worker
//! share it instead of stacking theirs. No guard of ours outlives the
//! polls on its thread, and the runtime context is never left set between
//! them.

use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::sync::OnceLock;
use std::thread;

use ::tokio::runtime::{Builder, EnterGuard, Handle};

thread_local! {
    /// Polls in progress on this thread (across its coroutines) that need
    /// the runtime entered; `GUARD` is set exactly while this is nonzero.
    static POLLS: Cell<usize> = const { Cell::new(0) };
    /// This thread's entry into the runtime. `ManuallyDrop` so that the
    /// thread-local has no destructor: a thread that exits while one of
    /// its coroutines is parked inside a poll leaks the entry rather than
    /// dropping it out of order in tokio's own thread-local teardown.
    static GUARD: Cell<Option<ManuallyDrop<EnterGuard<'static>>>> = const { Cell::new(None) };
}

/// The runtime's handle, starting the runtime and its driver thread on
/// first use.
///
/// Panics if the runtime cannot be built (no epoll instance or eventfd:
/// file descriptors exhausted) or its thread cannot be spawned: a future
/// needing tokio cannot run without them, and `block_on` has no error to
/// return.
fn handle() -> &'static Handle {
    static HANDLE: OnceLock<Handle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let rt = Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .thread_name("goro-tokio-blocking")
            .build()
            .unwrap_or_else(|e| panic!("goro: cannot start the tokio runtime: {e}"));
        let handle = rt.handle().clone();
        thread::Builder::new()
            .name("goro-tokio".into())
            .spawn(move || rt.block_on(std::future::pending::<()>()))
            .unwrap_or_else(|e| panic!("goro: cannot spawn the tokio driver thread: {e}"));
        handle
    })
}

/// Keeps the runtime entered on this thread while it lives.
pub(super) struct Entered {
    /// `!Send`: it must be dropped on the thread whose count it holds.
    _thread_bound: PhantomData<*const ()>,
}

/// Enters the runtime on this thread, unless a poll in progress here
/// already has.
pub(super) fn enter() -> Entered {
    let polls = POLLS.get();
    if polls == 0 {
        GUARD.set(Some(ManuallyDrop::new(handle().enter())));
    }
    POLLS.set(polls + 1);
    Entered {
        _thread_bound: PhantomData,
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let polls = POLLS.get() - 1;
        POLLS.set(polls);
        if polls == 0
            && let Some(guard) = GUARD.take()
        {
            drop(ManuallyDrop::into_inner(guard));
        }
    }
}
