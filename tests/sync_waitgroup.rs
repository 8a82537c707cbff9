//! `goro::sync::WaitGroup`: counts, `go`, many coroutines, misuse panics.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use goro::sync::WaitGroup;

#[test]
fn waits_for_100k_coroutines() {
    const N: usize = 100_000;
    goro::run(|| {
        let wg = WaitGroup::new();
        let hits = Arc::new(AtomicUsize::new(0));
        for i in 0..N {
            let hits = hits.clone();
            if i % 2 == 0 {
                wg.go(move || {
                    hits.fetch_add(1, Ordering::Relaxed);
                });
            } else {
                wg.add(1);
                let wg = wg.clone();
                goro::go!(move || {
                    hits.fetch_add(1, Ordering::Relaxed);
                    wg.done();
                });
            }
        }
        wg.wait();
        assert_eq!(hits.load(Ordering::Relaxed), N);
        assert_eq!(wg.count(), 0);
    });
}

#[test]
#[should_panic(expected = "negative WaitGroup counter")]
fn done_below_zero_panics() {
    let wg = WaitGroup::new();
    wg.add(1);
    wg.done();
    wg.done();
}

/// In a coroutine, the panic reaches its joiner; the count stays at zero
/// and a waiter is not disturbed.
#[test]
fn done_below_zero_panics_in_a_coroutine_and_leaves_zero() {
    goro::run(|| {
        let wg = WaitGroup::new();
        let w = wg.clone();
        let err = goro::go!(move || w.done()).join().unwrap_err();
        assert!(err.is_panic());
        let msg = err.to_string();
        assert!(msg.contains("negative WaitGroup counter"), "{msg:?}");
        assert_eq!(wg.count(), 0);
        wg.wait();
    });
}

/// `go` counts the task done even when it panics, and its handle carries
/// the result or the panic.
#[test]
fn go_counts_done_on_return_and_on_panic() {
    goro::run(|| {
        let wg = WaitGroup::new();
        let ok = wg.go(|| 6 * 7);
        let bad = wg.go(|| -> u8 { panic!("task failed") });
        wg.wait();
        assert_eq!(ok.join().unwrap(), 42);
        assert!(bad.join().is_err());
        assert_eq!(wg.count(), 0);
    });
}

/// Plain threads and coroutines wait on one group at once; all are
/// released by the last `done`, and the group is reusable.
#[test]
fn threads_and_coroutines_wait_together() {
    let wg = WaitGroup::new();
    let released = Arc::new(AtomicUsize::new(0));
    for _round in 0..3 {
        released.store(0, Ordering::SeqCst);
        wg.add(2);
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (wg, released) = (wg.clone(), released.clone());
                std::thread::spawn(move || {
                    wg.wait();
                    released.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        let (wg2, released2) = (wg.clone(), released.clone());
        goro::run(move || {
            let waiters: Vec<_> = (0..10)
                .map(|_| {
                    let (wg, released) = (wg2.clone(), released2.clone());
                    goro::go!(move || {
                        wg.wait();
                        released.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            for _ in 0..10 {
                goro::yield_now();
            }
            assert_eq!(released2.load(Ordering::SeqCst), 0);
            wg2.done();
            goro::yield_now();
            assert_eq!(released2.load(Ordering::SeqCst), 0);
            wg2.done();
            for w in waiters {
                w.join().unwrap();
            }
        });
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(released.load(Ordering::SeqCst), 12);
    }
}
