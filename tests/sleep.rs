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
/// still lets the other coroutines of its worker run (started coroutines
/// never move, so on one worker nothing else could set the flag).
#[test]
fn short_sleeps_and_timeouts_let_others_run() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    if common::is_child("short_sleeps_and_timeouts_let_others_run") {
        goro::run(|| {
            let flag = Arc::new(AtomicBool::new(false));
            let f = flag.clone();
            goro::spawn(move || f.store(true, Ordering::SeqCst));
            while !flag.load(Ordering::SeqCst) {
                goro::sleep(Duration::from_nanos(1));
            }

            let (_tx, rx) = goro::chan::chan::<()>(0);
            flag.store(false, Ordering::SeqCst);
            let f = flag.clone();
            goro::spawn(move || f.store(true, Ordering::SeqCst));
            while !flag.load(Ordering::SeqCst) {
                let _ = rx.recv_timeout(Duration::from_nanos(1));
            }

            flag.store(false, Ordering::SeqCst);
            let f = flag.clone();
            goro::spawn(move || f.store(true, Ordering::SeqCst));
            while !flag.load(Ordering::SeqCst) {
                goro::select! {
                    recv(rx) -> _v => unreachable!(),
                    timeout(Duration::from_nanos(1)) => {}
                }
            }
        });
        return;
    }
    common::child(
        "short_sleeps_and_timeouts_let_others_run",
        &[("GORO_WORKERS", "1")],
    );
}
