//! `goro::sync::Condvar`: notifications under a `goro::sync::Mutex`, no
//! lost wakeups, timeouts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::chan::chan;
use goro::sync::{Condvar, Mutex};

/// A bound on waits that must end: far above any correct run even on a
/// loaded 2-core machine, so that only a lost wakeup trips it.
const BOUND: Duration = Duration::from_secs(20);

type Shared<T> = Arc<(Mutex<T>, Condvar)>;

fn shared<T>(v: T) -> Shared<T> {
    Arc::new((Mutex::new(v), Condvar::new()))
}

/// Two parties take turns through one condvar, many times over: a lost
/// wakeup would leave both waiting forever. One side is a plain thread.
#[test]
fn ping_pong_between_a_thread_and_a_coroutine_loses_no_wakeup() {
    const ROUNDS: usize = 5_000;
    let turn = shared(0usize);
    let t2 = turn.clone();
    let thread = std::thread::spawn(move || {
        let (m, cv) = &*t2;
        for i in 0..ROUNDS {
            let mut g = cv.wait_while(m.lock(), |t| *t != 2 * i + 1);
            *g += 1;
            cv.notify_one();
        }
    });
    goro::run(move || {
        let (done_tx, done_rx) = chan::<()>(1);
        let turn2 = turn.clone();
        goro::go!(move || {
            let (m, cv) = &*turn2;
            for i in 0..ROUNDS {
                let mut g = cv.wait_while(m.lock(), |t| *t != 2 * i);
                *g += 1;
                cv.notify_one();
            }
            done_tx.send(()).unwrap();
        });
        assert!(done_rx.recv_timeout(BOUND).is_ok(), "a wakeup was lost");
        let (m, cv) = &*turn;
        let g = cv.wait_while(m.lock(), |t| *t != 2 * ROUNDS);
        assert_eq!(*g, 2 * ROUNDS);
    });
    thread.join().unwrap();
}

/// Many coroutines ping-pong in pairs over one shared condvar with
/// `notify_all`, so wakeups race with waiters registering.
#[test]
fn racing_waiters_and_notifiers_lose_no_wakeup() {
    const PAIRS: usize = 20;
    const ROUNDS: usize = 200;
    goro::run(|| {
        let state = shared(vec![0usize; PAIRS]);
        let (done_tx, done_rx) = chan::<()>(2 * PAIRS);
        for p in 0..PAIRS {
            for side in 0..2 {
                let (state, done_tx) = (state.clone(), done_tx.clone());
                goro::go!(move || {
                    let (m, cv) = &*state;
                    for i in 0..ROUNDS {
                        let mut g = cv.wait_while(m.lock(), |v| v[p] != 2 * i + side);
                        g[p] += 1;
                        drop(g);
                        cv.notify_all();
                    }
                    done_tx.send(()).unwrap();
                });
            }
        }
        for _ in 0..2 * PAIRS {
            assert!(done_rx.recv_timeout(BOUND).is_ok(), "a wakeup was lost");
        }
    });
}

/// `notify_all` wakes every waiter; `notify_one` with nobody waiting is a
/// no-op that nobody later consumes.
#[test]
fn notify_all_wakes_every_waiter() {
    const WAITERS: usize = 50;
    goro::run(|| {
        let state = shared((0usize, false));
        state.1.notify_one();
        let hs: Vec<_> = (0..WAITERS)
            .map(|_| {
                let state = state.clone();
                goro::go!(move || {
                    let (m, cv) = &*state;
                    let mut g = m.lock();
                    g.0 += 1;
                    let g = cv.wait_while(g, |s| !s.1);
                    assert!(g.1);
                })
            })
            .collect();
        let (m, cv) = &*state;
        // All have registered once the count is full: each counted itself
        // and queued before releasing the mutex.
        let mut g = m.lock();
        while g.0 < WAITERS {
            drop(g);
            goro::yield_now();
            g = m.lock();
        }
        g.1 = true;
        drop(g);
        cv.notify_all();
        for h in hs {
            h.join().unwrap();
        }
    });
}

/// A timed wait with nobody notifying times out, and not early.
#[test]
fn wait_timeout_times_out_never_early() {
    goro::run(|| {
        let (m, cv) = &*shared(());
        for ms in [0, 1, 20] {
            let timeout = Duration::from_millis(ms);
            let t = Instant::now();
            let (_g, r) = cv.wait_timeout(m.lock(), timeout);
            assert!(r.timed_out());
            assert!(t.elapsed() >= timeout);
        }
        let t = Instant::now();
        let (g, r) = cv.wait_timeout_while(m.lock(), Duration::from_millis(20), |_| true);
        assert!(r.timed_out());
        assert!(t.elapsed() >= Duration::from_millis(20));
        drop(g);
        let (_g, r) = cv.wait_timeout_while(m.lock(), Duration::from_secs(60), |_| false);
        assert!(!r.timed_out());
    });
    // From a plain thread too.
    let (m, cv) = &*shared(());
    let t = Instant::now();
    let (_g, r) = cv.wait_timeout(m.lock(), Duration::from_millis(20));
    assert!(r.timed_out() && t.elapsed() >= Duration::from_millis(20));
}

/// A notification racing a timeout is either taken by the timed waiter
/// (which then reports no timeout) or passed on to the next waiter; it is
/// never swallowed by a waiter that reports a timeout.
#[test]
fn a_timed_out_waiter_never_swallows_a_notification() {
    const ROUNDS: usize = 200;
    goro::run(|| {
        for round in 0..ROUNDS {
            let state = shared(0usize);
            let (timed_tx, timed_rx) = chan::<bool>(1);
            let (plain_tx, plain_rx) = chan::<()>(1);
            let s = state.clone();
            goro::go!(move || {
                let (m, cv) = &*s;
                let mut g = m.lock();
                *g += 1;
                let timeout = Duration::from_micros((round % 20) as u64 * 50);
                let (_g, r) = cv.wait_timeout(g, timeout);
                timed_tx.send(r.timed_out()).unwrap();
            });
            let s = state.clone();
            goro::go!(move || {
                let (m, cv) = &*s;
                let mut g = m.lock();
                *g += 1;
                drop(cv.wait(g));
                plain_tx.send(()).unwrap();
            });
            let (m, cv) = &*state;
            // Wait until both have registered (they do so before unlocking).
            let mut g = m.lock();
            while *g < 2 {
                drop(g);
                goro::yield_now();
                g = m.lock();
            }
            drop(g);
            if round % 3 == 0 {
                goro::yield_now();
            }
            cv.notify_one();
            let timed_out = timed_rx.recv().unwrap();
            if !timed_out {
                // The timed waiter took the notification: the plain one
                // still waits for its own.
                cv.notify_one();
            }
            assert!(
                plain_rx.recv_timeout(BOUND).is_ok(),
                "round {round}: a notification was lost (timed waiter timed out: {timed_out})"
            );
        }
    });
}
