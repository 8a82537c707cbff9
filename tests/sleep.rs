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
