//! `goro::block_on`: futures woken from threads and coroutines, a channel
//! built on wakers, async fn chains, stale wakes, and other coroutines
//! running while one waits; the bounded forms (timeout, deadline, context)
//! and what a dump shows of a coroutine in `block_on`.

use goro::context::{self, ContextError};
use goro::runtime::{CoroutineState, WaitingOn};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

/// Who completed a `Gate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpenedBy {
    Opener,
    Watchdog,
}

/// A hand-written future: pending until `open` is called, then ready with
/// who opened it. Keeps every waker it was polled with, also after opening.
#[derive(Clone, Default)]
struct Gate {
    state: Arc<Mutex<GateState>>,
}

#[derive(Default)]
struct GateState {
    opened: Option<OpenedBy>,
    wakers: Vec<Waker>,
    polls: usize,
}

impl Gate {
    fn open(&self, by: OpenedBy) {
        let wakers = {
            let mut st = self.state.lock().unwrap();
            st.opened.get_or_insert(by);
            st.wakers.clone()
        };
        for w in wakers {
            w.wake();
        }
    }

    fn wait(&self) -> GateWait {
        GateWait { gate: self.clone() }
    }

    fn last_waker(&self) -> Option<Waker> {
        self.state.lock().unwrap().wakers.last().cloned()
    }
}

struct GateWait {
    gate: Gate,
}

impl Future for GateWait {
    type Output = OpenedBy;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<OpenedBy> {
        let mut st = self.gate.state.lock().unwrap();
        st.polls += 1;
        match st.opened {
            Some(by) => Poll::Ready(by),
            None => {
                st.wakers.push(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A gate that a new coroutine opens after `d`.
fn opened_by_a_coroutine_after(d: Duration) -> Gate {
    let gate = Gate::default();
    let opener = gate.clone();
    goro::go!(move || {
        goro::sleep(d);
        opener.open(OpenedBy::Opener);
    });
    gate
}

/// Opens `gate` as the watchdog after `after`, from a plain thread, so that
/// a test whose waker never works fails instead of hanging.
fn watchdog(gate: &Gate, after: Duration) {
    let gate = gate.clone();
    thread::spawn(move || {
        thread::sleep(after);
        gate.open(OpenedBy::Watchdog);
    });
}

#[test]
fn ready_future() {
    assert_eq!(goro::run(|| goro::block_on(async { 6 * 7 })), 42);
}

#[test]
fn woken_from_a_plain_thread() {
    let by = goro::run(|| {
        let gate = Gate::default();
        let opener = gate.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            opener.open(OpenedBy::Opener);
        });
        watchdog(&gate, Duration::from_secs(10));
        goro::block_on(gate.wait())
    });
    assert_eq!(by, OpenedBy::Opener);
}

#[test]
fn woken_from_a_coroutine() {
    let (by, polls) = goro::run(|| {
        let gate = opened_by_a_coroutine_after(Duration::from_millis(20));
        watchdog(&gate, Duration::from_secs(10));
        let by = goro::block_on(gate.wait());
        let polls = gate.state.lock().unwrap().polls;
        (by, polls)
    });
    assert_eq!(by, OpenedBy::Opener);
    // Parked between polls rather than spinning: one pending poll, one
    // ready poll, and at most a few more for spurious wakeups.
    assert!((2..=5).contains(&polls), "{polls} polls");
}

#[test]
fn from_a_plain_thread() {
    let gate = Gate::default();
    let opener = gate.clone();
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        opener.open(OpenedBy::Opener);
    });
    watchdog(&gate, Duration::from_secs(10));
    assert_eq!(goro::block_on(gate.wait()), OpenedBy::Opener);
}

/// A minimal async channel: a queue and the waker of a pending receiver.
struct AsyncChan<T> {
    state: Mutex<(VecDeque<T>, Option<Waker>, bool)>,
}

impl<T> AsyncChan<T> {
    fn new() -> Arc<Self> {
        Arc::new(AsyncChan {
            state: Mutex::new((VecDeque::new(), None, false)),
        })
    }

    fn send(&self, v: T) {
        let waker = {
            let mut st = self.state.lock().unwrap();
            st.0.push_back(v);
            st.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn close(&self) {
        let waker = {
            let mut st = self.state.lock().unwrap();
            st.2 = true;
            st.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Resolves to the next value, or `None` once closed and empty.
    fn recv(self: &Arc<Self>) -> impl Future<Output = Option<T>> + '_ {
        std::future::poll_fn(move |cx| {
            let mut st = self.state.lock().unwrap();
            match st.0.pop_front() {
                Some(v) => Poll::Ready(Some(v)),
                None if st.2 => Poll::Ready(None),
                None => {
                    st.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }
}

#[test]
fn channel_future_fed_by_a_coroutine() {
    let sum = goro::run(|| {
        let ch = AsyncChan::new();
        let tx = ch.clone();
        goro::go!(move || {
            for i in 1..=100u64 {
                tx.send(i);
                if i % 10 == 0 {
                    goro::sleep(Duration::from_millis(1));
                }
            }
            tx.close();
        });
        goro::block_on(async {
            let mut sum = 0;
            while let Some(v) = ch.recv().await {
                sum += v;
            }
            sum
        })
    });
    assert_eq!(sum, 5050);
}

/// Pending once, waking itself at once: a future that yields to its
/// executor.
fn yield_once() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

async fn leaf(x: u64) -> u64 {
    yield_once().await;
    x + 1
}

async fn middle(x: u64) -> u64 {
    let a = leaf(x).await;
    let b = leaf(a).await;
    a + b
}

#[test]
fn async_fn_chain() {
    // leaf(1) = 2, leaf(2) = 3, so middle(1) = 5; leaf(5) = 6; three
    // self-woken yields on the way.
    let v = goro::run(|| goro::block_on(async { middle(1).await + leaf(5).await }));
    assert_eq!(v, 5 + 6);
}

#[test]
fn panic_in_poll_reaches_the_caller() {
    let caught = goro::run(|| {
        std::panic::catch_unwind(|| {
            goro::block_on(async {
                yield_once().await;
                panic!("bad future")
            })
        })
        .is_err()
    });
    assert!(caught);
}

/// Many coroutines, more than there are workers, wait in `block_on` for a
/// gate that only a coroutine spawned after them opens: it can run only if
/// the waiting ones left their workers free.
#[test]
fn other_coroutines_run_while_one_waits() {
    let results = goro::run(|| {
        let waiters = 4 * goro::runtime::num_workers();
        let gate = Gate::default();
        let entered = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..waiters)
            .map(|_| {
                let (gate, entered) = (gate.clone(), entered.clone());
                goro::go!(move || {
                    entered.fetch_add(1, Ordering::SeqCst);
                    goro::block_on(gate.wait())
                })
            })
            .collect();
        let opener = {
            let (gate, entered) = (gate.clone(), entered.clone());
            goro::go!(move || {
                while entered.load(Ordering::SeqCst) < waiters {
                    goro::sleep(Duration::from_millis(1));
                }
                // Let the last ones reach their park.
                goro::sleep(Duration::from_millis(10));
                gate.open(OpenedBy::Opener);
            })
        };
        watchdog(&gate, Duration::from_secs(10));
        opener.join().unwrap();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert!(
        results.iter().all(|&by| by == OpenedBy::Opener),
        "{results:?}"
    );
}

/// Wakes that arrive after `block_on` returned, or after its coroutine
/// ended, are harmless: later sleeps still last as long as asked.
#[test]
fn stale_wakes_are_harmless() {
    let waker = goro::run(|| {
        let gate = opened_by_a_coroutine_after(Duration::from_millis(10));
        watchdog(&gate, Duration::from_secs(10));
        assert_eq!(goro::block_on(gate.wait()), OpenedBy::Opener);
        let waker = gate.last_waker().expect("block_on parked at least once");
        let start = Instant::now();
        waker.wake_by_ref();
        // A clone woken by value, as executors often do.
        let clone = waker.clone();
        clone.wake();
        goro::sleep(Duration::from_millis(20));
        assert!(start.elapsed() >= Duration::from_millis(20));
        // A waker from a coroutine that has finished.
        let gate2 = Gate::default();
        let waiter = {
            let gate2 = gate2.clone();
            goro::go!(move || goro::block_on(gate2.wait()))
        };
        while gate2.last_waker().is_none() {
            goro::sleep(Duration::from_millis(1));
        }
        gate2.open(OpenedBy::Opener);
        waiter.join().unwrap();
        gate2.last_waker()
    });
    // The coroutine is gone; waking it does nothing.
    waker.expect("the coroutine parked in block_on").wake();
    assert_eq!(goro::run(|| goro::block_on(async { 1 })), 1);
}

/// Where a future was dropped: the coroutine (by id) or plain thread it was
/// dropped on, recorded by its destructor.
#[derive(Clone, Default)]
struct DropSpy {
    dropped_in: Arc<Mutex<Option<Option<goro::CoroutineId>>>>,
}

impl DropSpy {
    /// A future that is never ready and reports its drop to this spy.
    fn pending(&self) -> impl Future<Output = ()> + use<> {
        struct Spied(DropSpy);
        impl Drop for Spied {
            fn drop(&mut self) {
                *self.0.dropped_in.lock().unwrap() = Some(goro::current().map(|c| c.id()));
            }
        }
        let spied = Spied(self.clone());
        std::future::poll_fn(move |_| {
            let _keep = &spied;
            Poll::Pending
        })
    }

    fn dropped_in(&self) -> Option<Option<goro::CoroutineId>> {
        *self.dropped_in.lock().unwrap()
    }
}

/// A future that is never ready but wakes itself on every poll, so its
/// caller never stays parked: the bound must still be checked.
fn busy_pending() -> impl Future<Output = ()> {
    std::future::poll_fn(|cx| {
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

#[test]
fn timeout_gives_up_and_drops_the_future_in_the_coroutine() {
    goro::run(|| {
        let spy = DropSpy::default();
        let me = goro::current().unwrap().id();
        let start = Instant::now();
        let err = goro::block_on_timeout(spy.pending(), Duration::from_millis(20)).unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(spy.dropped_in(), Some(Some(me)));
        assert_eq!(err.to_string(), "future not ready before its deadline");
        let io = std::io::Error::from(err);
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
    });
}

#[test]
fn timeout_returns_the_output_of_a_future_ready_in_time() {
    let by = goro::run(|| {
        let gate = opened_by_a_coroutine_after(Duration::from_millis(10));
        goro::block_on_timeout(gate.wait(), Duration::from_secs(60))
    });
    assert_eq!(by, Ok(OpenedBy::Opener));
}

#[test]
fn a_past_deadline_still_polls_once() {
    goro::run(|| {
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(goro::block_on_deadline(async { 5 }, past), Ok(5));
        assert_eq!(goro::block_on_timeout(async { 6 }, Duration::ZERO), Ok(6));
        assert!(goro::block_on_deadline(std::future::pending::<()>(), past).is_err());
    });
}

#[test]
fn a_future_that_keeps_waking_itself_still_times_out() {
    goro::run(|| {
        assert!(goro::block_on_timeout(busy_pending(), Duration::from_millis(20)).is_err());
        let (ctx, _cancel) =
            context::with_timeout(&context::Context::background(), Duration::from_millis(20));
        assert_eq!(
            goro::block_on_context(&ctx, busy_pending()),
            Err(ContextError::DeadlineExceeded)
        );
    });
}

#[test]
fn timeout_on_a_plain_thread() {
    let spy = DropSpy::default();
    assert!(goro::block_on_timeout(spy.pending(), Duration::from_millis(10)).is_err());
    assert_eq!(spy.dropped_in(), Some(None));
}

#[test]
fn context_cancelled_by_another_coroutine() {
    goro::run(|| {
        let spy = DropSpy::default();
        let me = goro::current().unwrap().id();
        let (ctx, cancel) = context::with_cancel(&context::Context::background());
        goro::go!(move || {
            goro::sleep(Duration::from_millis(10));
            cancel.cancel();
        });
        assert_eq!(
            goro::block_on_context(&ctx, spy.pending()),
            Err(ContextError::Cancelled)
        );
        assert_eq!(spy.dropped_in(), Some(Some(me)));
    });
}

#[test]
fn context_cancelled_through_its_parent_from_a_plain_thread() {
    let res = goro::run(|| {
        let (parent, cancel) = context::with_cancel(&context::Context::background());
        let (child, _cancel_child) = context::with_cancel(&parent);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            cancel.cancel();
        });
        goro::block_on_context(&child, std::future::pending::<()>())
    });
    assert_eq!(res, Err(ContextError::Cancelled));
}

#[test]
fn context_deadline_bounds_the_wait() {
    goro::run(|| {
        let (ctx, _cancel) =
            context::with_timeout(&context::Context::background(), Duration::from_millis(20));
        let deadline = ctx.deadline().unwrap();
        assert_eq!(
            goro::block_on_context(&ctx, std::future::pending::<()>()),
            Err(ContextError::DeadlineExceeded)
        );
        assert!(Instant::now() >= deadline);
    });
}

#[test]
fn context_done_before_the_call() {
    goro::run(|| {
        let (ctx, cancel) = context::with_cancel(&context::Context::background());
        cancel.cancel();
        // Polled once all the same: a ready future succeeds.
        assert_eq!(goro::block_on_context(&ctx, async { 3 }), Ok(3));
        assert_eq!(
            goro::block_on_context(&ctx, std::future::pending::<()>()),
            Err(ContextError::Cancelled)
        );
    });
}

#[test]
fn context_not_done_lets_the_future_finish() {
    let res = goro::run(|| {
        let (ctx, cancel) = context::with_cancel(&context::Context::background());
        let gate = opened_by_a_coroutine_after(Duration::from_millis(10));
        watchdog(&gate, Duration::from_secs(10));
        let res = goro::block_on_context(&ctx, gate.wait());
        // Cancelling after the call wakes nobody and changes nothing.
        cancel.cancel();
        assert_eq!(
            goro::block_on_context(&context::Context::background(), async { 1 }),
            Ok(1)
        );
        res
    });
    assert_eq!(res, Ok(OpenedBy::Opener));
}

/// A coroutine in `block_on`, bounded or not, shows in a dump as parked on
/// a future, with how long.
#[test]
fn dump_shows_a_coroutine_waiting_on_a_future() {
    goro::run(|| {
        let gate = Gate::default();
        let plain = {
            let gate = gate.clone();
            goro::Builder::new()
                .name("on-future")
                .spawn(move || goro::block_on(gate.wait()))
                .unwrap()
        };
        let bounded = {
            let gate = gate.clone();
            goro::Builder::new()
                .name("on-future-bounded")
                .spawn(move || goro::block_on_timeout(gate.wait(), Duration::from_secs(60)))
                .unwrap()
        };
        watchdog(&gate, Duration::from_secs(10));
        // Both have parked once each has polled once.
        while gate.state.lock().unwrap().polls < 2 {
            goro::sleep(Duration::from_millis(1));
        }
        let d = loop {
            let d = goro::runtime::dump();
            let parked = d
                .coroutines
                .iter()
                .filter(|c| {
                    c.name
                        .as_deref()
                        .is_some_and(|n| n.starts_with("on-future"))
                })
                .filter(|c| c.state == CoroutineState::Parked)
                .count();
            if parked == 2 {
                break d;
            }
            goro::sleep(Duration::from_millis(1));
        };
        for name in ["on-future", "on-future-bounded"] {
            let c = d
                .coroutines
                .iter()
                .find(|c| c.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("{name} missing from\n{d}"));
            assert_eq!(c.waiting_on, Some(WaitingOn::Future), "{d}");
            assert!(c.for_how_long.is_some(), "{d}");
        }
        let text = d.to_string();
        assert!(text.contains("'on-future' [parked: future"), "{text}");
        gate.open(OpenedBy::Opener);
        assert_eq!(plain.join().unwrap(), OpenedBy::Opener);
        assert_eq!(bounded.join().unwrap(), Ok(OpenedBy::Opener));
    });
}
