//! With the `hyper` feature: hyper's runtime traits on goro.
//!
//! hyper 1 asks its user for a timer (`hyper::rt::Timer`: header-read
//! timeouts, keep-alive) and, for HTTP/2, an executor
//! (`hyper::rt::Executor`) for the tasks a connection spawns. `Timer` runs
//! hyper's sleeps on goro's timers, on the caller's clock (so inside
//! `goro::synctest::run` they follow the virtual clock), and `Executor`
//! runs each future in a coroutine of its own under `goro::block_on`. The
//! connection itself is served over a goro socket through
//! `hyper_util::rt::TokioIo`, since goro's streams implement tokio's I/O
//! traits on goro's own netpoller (no tokio runtime, no thread):
//!
//! ```ignore
//! use hyper_util::rt::TokioIo;
//!
//! let ln = goro::net::TcpListener::bind("127.0.0.1:8080")?;
//! loop {
//!     let (conn, _) = ln.accept()?;
//!     goro::go!(move || {
//!         let svc = hyper::service::service_fn(handle);
//!         let http = hyper::server::conn::http1::Builder::new()
//!             .timer(goro::hyper::Timer)
//!             .serve_connection(TokioIo::new(conn), svc);
//!         let _ = goro::block_on(http);
//!     });
//! }
//! ```
//!
//! `examples/hyper.rs` is the whole server, with graceful shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::runtime::WaitingOn;
use crate::runtime::time::timer::{CallbackTimer, call_at};

/// `hyper::rt::Timer` on goro's timers. Set it on every connection builder
/// (`http1::Builder::timer`): without one, hyper's header-read timeout
/// panics or warns.
///
/// Its sleeps fire at their deadline on the caller's clock (a bubble's
/// virtual clock inside `goro::synctest::run`), and `now` reads that clock.
/// A coroutine in `block_on` whose future waits only on such a sleep counts
/// as sleeping (durably blocked, for a bubble).
#[derive(Clone, Copy, Debug, Default)]
pub struct Timer;

impl hyper::rt::Timer for Timer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(crate::time::deadline_after(duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep {
            deadline,
            shared: Arc::new(SleepShared {
                fired: AtomicBool::new(false),
                waker: Mutex::new(None),
            }),
            timer: None,
        })
    }

    fn now(&self) -> Instant {
        crate::time::now()
    }
}

/// What a `Sleep` shares with its timer's callback.
struct SleepShared {
    /// Set by the callback when the deadline came.
    fired: AtomicBool,
    /// The waker of the task that polled last; taken and woken by the
    /// callback.
    waker: Mutex<Option<Waker>>,
}

/// A sleep of `Timer`: a goro timer armed at the first pending poll, that
/// wakes the task polling it.
struct Sleep {
    /// When it is done, on the clock of the task that made it.
    deadline: Instant,
    /// Shared with the timer's callback.
    shared: Arc<SleepShared>,
    /// The armed timer: `Some` from the first pending poll; cancelled on
    /// drop.
    timer: Option<CallbackTimer>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shared.fired.load(Ordering::Acquire) || crate::time::now() >= self.deadline {
            return Poll::Ready(());
        }
        {
            let mut w = self
                .shared
                .waker
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match &mut *w {
                Some(w) => w.clone_from(cx.waker()),
                None => *w = Some(cx.waker().clone()),
            }
        }
        if self.timer.is_none() {
            let shared = self.shared.clone();
            self.timer = Some(call_at(
                self.deadline,
                Box::new(move || {
                    shared.fired.store(true, Ordering::Release);
                    let w = shared
                        .waker
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take();
                    if let Some(w) = w {
                        crate::runtime::park::wake_task(w);
                    }
                }),
            ));
        }
        // The callback may have fired before the waker was in place.
        if self.shared.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        crate::block_on::note_wait(WaitingOn::Sleep);
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(t) = self.timer.take() {
            t.cancel();
        }
    }
}

impl hyper::rt::Sleep for Sleep {}

/// `hyper::rt::Executor` on goro: each future runs in a coroutine of its
/// own, under `goro::block_on` (HTTP/2 spawns one per stream). A panic in
/// the future ends its coroutine only, as a panic in any coroutine does.
#[derive(Clone, Copy, Debug, Default)]
pub struct Executor;

impl<F> hyper::rt::Executor<F> for Executor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        crate::spawn(move || {
            crate::block_on(future);
        });
    }
}
