//! `goro::block_on`: run a `Future` to completion from a coroutine, with or
//! without a bound.
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
//! The bounded forms park with a timeout (a deadline) or registered with
//! their context (a cancellation), and check their bound after every poll:
//! a future that is never woken still gives its caller back. The future
//! lives in the caller's frame, so when the bound fires it is dropped there,
//! in the coroutine, like any local.
//!
//! Futures that need a specific reactor still need it running somewhere.
//! With the `tokio` feature, `block_on` provides tokio's (see `tokio.rs`);
//! without it, `block_on` is an executor, not a reactor.

#[cfg(feature = "tokio")]
mod tokio;

use std::cell::Cell;
use std::convert::Infallible;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crate::context::{self, Context, ContextError};
use crate::runtime::park::{self, Waiter};
use crate::runtime::time::clock::Clock;
use crate::runtime::{WaitGuard, WaitingOn};
use crate::time::deadline_after;

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

/// The error of `block_on_timeout` and `block_on_deadline`: the future was
/// not ready in time, and has been dropped.
///
/// Converts into an `io::Error` of kind `TimedOut`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("future not ready before its deadline")
    }
}

impl Error for Elapsed {}

impl From<Elapsed> for io::Error {
    fn from(e: Elapsed) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, e)
    }
}

/// Runs `future` to completion and returns its output, parking the calling
/// coroutine while the future is pending (its waker unparks it). Other
/// coroutines keep running meanwhile. On a plain thread, parks the thread.
///
/// A panic in the future's `poll` resumes in the caller. A coroutine parked
/// here shows in `runtime::dump` as waiting on a future
/// (`WaitingOn::Future`), or on the fd whose readiness a goro socket's
/// pending poll asked for (`WaitingOn::Read(fd)`, `WaitingOn::Write(fd)`).
///
/// A future waiting on a goro socket (`poll_read_ready`, `readable`, the
/// tokio I/O traits) parks its coroutine in goro's own netpoller: its waker
/// waits on the socket's poll descriptor and the worker's poller wakes it,
/// with no other runtime and no other thread involved.
///
/// With the crate's `tokio` feature, the future may use tokio's reactor and
/// timer (`tokio::net`, `tokio::time`, `tokio::spawn`, and crates built on
/// them): a tokio runtime driven by a thread of its own starts on first use
/// and is entered while the future is polled. Values that need a tokio
/// runtime when they are *created*, such as `tokio::time::sleep(d)`, must
/// therefore be created inside the future: write
/// `goro::block_on(async { tokio::time::sleep(d).await })`.
///
/// ```
/// async fn double(x: u32) -> u32 {
///     x * 2
/// }
/// let v = goro::run(|| goro::block_on(async { double(20).await + 2 }));
/// assert_eq!(v, 42);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    match drive(future, None, || None::<Infallible>) {
        Ok(v) => v,
        Err(never) => match never {},
    }
}

/// `block_on` that gives up after `timeout`: returns `Err(Elapsed)` if the
/// future is not ready by then, having dropped it (in the caller). A
/// future that is ready on its first poll succeeds even with a zero
/// timeout.
///
/// ```
/// use std::time::Duration;
///
/// goro::run(|| {
///     let never = std::future::pending::<()>();
///     let err = goro::block_on_timeout(never, Duration::from_millis(10)).unwrap_err();
///     assert_eq!(std::io::Error::from(err).kind(), std::io::ErrorKind::TimedOut);
///     assert_eq!(goro::block_on_timeout(async { 7 }, Duration::ZERO), Ok(7));
/// });
/// ```
pub fn block_on_timeout<F: Future>(future: F, timeout: Duration) -> Result<F::Output, Elapsed> {
    block_on_deadline(future, deadline_after(timeout))
}

/// `block_on` that gives up at `deadline`: returns `Err(Elapsed)` if the
/// future is not ready by then, having dropped it (in the caller). The
/// future is polled at least once, however early the deadline.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// goro::run(|| {
///     let deadline = Instant::now() + Duration::from_millis(10);
///     assert!(goro::block_on_deadline(std::future::pending::<()>(), deadline).is_err());
///     assert!(Instant::now() >= deadline);
/// });
/// ```
pub fn block_on_deadline<F: Future>(future: F, deadline: Instant) -> Result<F::Output, Elapsed> {
    drive(future, Some(deadline), || {
        (crate::time::now() >= deadline).then_some(Elapsed(()))
    })
}

/// `block_on` bounded by a context: returns `Err` with the context's error
/// as soon as it is done (cancelled, or past its deadline) while the future
/// is pending, having dropped the future (in the caller). The future is
/// polled at least once, even if the context is already done.
///
/// ```
/// use goro::context::{self, Context, ContextError};
///
/// goro::run(|| {
///     let (ctx, cancel) = context::with_cancel(&Context::background());
///     goro::go!(move || cancel.cancel());
///     let res = goro::block_on_context(&ctx, std::future::pending::<()>());
///     assert_eq!(res, Err(ContextError::Cancelled));
/// });
/// ```
pub fn block_on_context<F: Future>(ctx: &Context, future: F) -> Result<F::Output, ContextError> {
    // Registered before the first check of `err`, so a cancellation after
    // that check finds the caller to wake.
    let waiter = Waiter::current();
    let wake_on_done = context::after_func(ctx, move || waiter.wake_by_ref());
    let result = drive(future, ctx.deadline(), || ctx.err());
    wake_on_done.stop();
    result
}

thread_local! {
    /// What the future `drive` polls on this thread waits on, as a goro
    /// socket it polled reported it (`note_wait`): `Some` only during such
    /// a poll.
    static POLL_WAIT: Cell<Option<WaitingOn>> = const { Cell::new(None) };
}

/// Called by a goro socket whose readiness poll is pending (or a goro
/// sleep of `goro::hyper::Timer`): if `block_on` is polling on this
/// thread, its coroutine shows in dumps as waiting on `why` (a read or
/// write of that fd, a sleep) rather than on a future. If a poll
/// parks inside and another coroutine of the worker polls meanwhile, a
/// reason may be lost (the dump then says "future"), never misplaced on a
/// coroutine outside `block_on`.
pub(crate) fn note_wait(why: WaitingOn) {
    POLL_WAIT.with(|c| match c.get() {
        // A wait on the outside world (an fd) outranks a sleep: the
        // coroutine is not durably blocked while it waits on both.
        Some(cur) if why.is_io() || cur == WaitingOn::Future => c.set(Some(why)),
        _ => {}
    });
}

/// `POLL_WAIT` set for one poll; cleared when dropped, even by a panic in
/// the poll.
struct Noting(());

impl Noting {
    fn start() -> Noting {
        POLL_WAIT.set(Some(WaitingOn::Future));
        Noting(())
    }

    /// What the poll waits on, as noted.
    fn finish(self) -> WaitingOn {
        POLL_WAIT.get().unwrap_or(WaitingOn::Future)
    }
}

impl Drop for Noting {
    fn drop(&mut self) {
        POLL_WAIT.set(None);
    }
}

/// Polls `future` until it is ready, or until `gave_up` (asked after every
/// pending poll) returns an error. Between polls, parks until woken or
/// until `deadline`.
fn drive<F: Future, E>(
    future: F,
    deadline: Option<Instant>,
    mut gave_up: impl FnMut() -> Option<E>,
) -> Result<F::Output, E> {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unparker {
        waiter: Waiter::current(),
    }));
    let mut cx = TaskContext::from_waker(&waker);
    loop {
        let (polled, why) = {
            let noting = Noting::start();
            let polled = poll(future.as_mut(), &mut cx);
            (polled, noting.finish())
        };
        if let Poll::Ready(v) = polled {
            return Ok(v);
        }
        if let Some(e) = gave_up() {
            return Err(e);
        }
        // Set per park, not per call: a poll that blocks in goro records
        // its own reason and clears it.
        let _wait = WaitGuard::set(why);
        // Returns on a wake (possibly one that came during the poll), at
        // the deadline, or spuriously; either way, polling again is allowed.
        match deadline {
            Some(d) => park::park_until(d, Clock::Caller),
            None => park::park(),
        }
    }
}

/// One poll of the future, inside tokio's runtime context with the `tokio`
/// feature.
fn poll<F: Future>(future: Pin<&mut F>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
    #[cfg(feature = "tokio")]
    let _entered = tokio::enter();
    future.poll(cx)
}
