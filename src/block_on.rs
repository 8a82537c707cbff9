//! `goro::block_on`: run a `Future` to completion from a coroutine.
//!
//! Runtime-agnostic async code (a future that only needs its `Waker`
//! called) can be driven from goro's blocking style without an async
//! executor: `block_on` polls the future on the caller's stack and, while it
//! is pending, parks the caller. The future's waker unparks it.
//!
//! The waker is a `Waiter` (the calling coroutine, or the calling plain
//! thread) behind an `Arc`, so it is `Send + Sync`, cheap to clone and
//! outlives the call harmlessly. Park's token semantics make the protocol
//! race-free: a wake that comes between a `Pending` poll and the park leaves
//! a token that makes the park return at once, so no wake is lost. A wake
//! that comes after `block_on` returned leaves at most a stale token, which
//! later parks treat as a spurious wakeup (every park loops on its own
//! condition); one that comes after the coroutine finished does nothing.
//!
//! Futures that need a specific reactor (tokio's sockets and timers, for
//! instance) still need that reactor running somewhere; `block_on` is an
//! executor, not a reactor.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::runtime::park::{self, Waiter};

/// Wakes the coroutine or thread blocked in `block_on`.
struct Unparker {
    /// The caller of `block_on`; waking it makes its park return.
    waiter: Waiter,
}

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.waiter.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.waiter.wake_by_ref();
    }
}

/// Runs `future` to completion and returns its output, parking the calling
/// coroutine while the future is pending (its waker unparks it). Other
/// coroutines keep running meanwhile. On a plain thread, parks the thread.
///
/// A panic in the future's `poll` resumes in the caller.
///
/// ```
/// async fn double(x: u32) -> u32 {
///     x * 2
/// }
/// let v = goro::run(|| goro::block_on(async { double(20).await + 2 }));
/// assert_eq!(v, 42);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unparker {
        waiter: Waiter::current(),
    }));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        // Returns on a wake (possibly one that came during the poll) or
        // spuriously; either way, polling again is allowed.
        park::park();
    }
}
