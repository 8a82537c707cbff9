//! `sleep`: never early, from coroutines and plain threads.

use std::time::{Duration, Instant};

#[test]
fn sleep_never_returns_early() {
    goro::run(|| {
        let handles: Vec<_> = (0..500u64)
            .map(|i| {
                goro::spawn(move || {
                    let d = Duration::from_micros(200 + (i * 7919) % 30_000);
                    let start = Instant::now();
                    goro::sleep(d);
                    (start.elapsed(), d)
                })
            })
            .collect();
        for h in handles {
            let (slept, asked) = h.join().unwrap();
            assert!(slept >= asked, "slept {slept:?} < {asked:?}");
        }
    });
}

#[test]
fn sleep_until_a_past_instant_returns_at_once() {
    goro::run(|| {
        let start = Instant::now();
        goro::time::sleep_until(start - Duration::from_secs(1));
        goro::sleep(Duration::ZERO);
        assert!(start.elapsed() < Duration::from_secs(1));
    });
}

#[test]
fn sleep_parks_only_the_coroutine() {
    // On any number of workers: 10,000 sleepers at once finish in about one
    // sleep, not 10,000 of them.
    goro::run(|| {
        let start = Instant::now();
        let handles: Vec<_> = (0..10_000)
            .map(|_| goro::spawn(|| goro::sleep(Duration::from_millis(50))))
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        // Generous: 10,000 sequential sleeps would take 500 s.
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{:?}",
            start.elapsed()
        );
    });
}

#[test]
fn sleep_on_a_plain_thread_sleeps_the_thread() {
    let start = Instant::now();
    goro::sleep(Duration::from_millis(20));
    assert!(start.elapsed() >= Duration::from_millis(20));
}

mod common;

/// Go's `TestTickerStress` shape: a loop of sleeps too short to wait at all
/// still lets the other coroutines of its worker run. The other coroutine
/// has started (it waits on a channel), so on one worker nothing but this
/// worker can ever run it: started coroutines never move.
#[test]
fn short_sleeps_and_timeouts_let_others_run() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Starts a coroutine that parks on a channel, then wakes it; `spin`
    /// must let it run and set the flag.
    fn starve_with(spin: impl Fn()) {
        let state = Arc::new(AtomicU32::new(0));
        let s = state.clone();
        let (tx, rx) = goro::chan::chan::<()>(1);
        goro::spawn(move || {
            s.store(1, Ordering::SeqCst);
            rx.recv().unwrap();
            s.store(2, Ordering::SeqCst);
        });
        while state.load(Ordering::SeqCst) == 0 {
            goro::yield_now();
        }
        tx.send(()).unwrap();
        while state.load(Ordering::SeqCst) != 2 {
            spin();
        }
    }

    if common::is_child("short_sleeps_and_timeouts_let_others_run") {
        goro::run(|| {
            let ns = Duration::from_nanos(1);
            starve_with(|| goro::sleep(ns));
            let (_tx, rx) = goro::chan::chan::<()>(0);
            starve_with(|| {
                let _ = rx.recv_timeout(ns);
            });
            starve_with(|| {
                goro::select! {
                    recv(rx) -> _v => unreachable!(),
                    timeout(ns) => {}
                }
            });
        });
        return;
    }
    common::child(
        "short_sleeps_and_timeouts_let_others_run",
        &[("GORO_WORKERS", "1")],
    );
}
