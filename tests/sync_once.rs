//! `goro::sync::Once` and `OnceLock`: exactly one run, parked concurrent
//! callers, panic rules.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use goro::chan::chan;
use goro::sync::{Once, OnceLock};

/// A bound on waits that must end: far above any correct run even on a
/// loaded 2-core machine, so that only a caller that would wait forever
/// trips it.
const BOUND: Duration = Duration::from_secs(20);

/// Coroutines and plain threads call at once; the closure parks inside so
/// that they pile up. It runs once, and every caller returns after it
/// finished, seeing its effect.
#[test]
fn runs_exactly_once_with_concurrent_callers_from_threads_and_coroutines() {
    static ONCE: Once = Once::new();
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static EFFECT: AtomicUsize = AtomicUsize::new(0);
    fn init() {
        RUNS.fetch_add(1, Ordering::Relaxed);
        goro::time::sleep(Duration::from_millis(20));
        EFFECT.store(42, Ordering::Relaxed);
    }
    let threads: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(|| {
                ONCE.call_once(init);
                assert_eq!(EFFECT.load(Ordering::Relaxed), 42);
            })
        })
        .collect();
    goro::run(|| {
        let hs: Vec<_> = (0..100)
            .map(|_| {
                goro::go!(|| {
                    ONCE.call_once(init);
                    assert_eq!(EFFECT.load(Ordering::Relaxed), 42);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(RUNS.load(Ordering::Relaxed), 1);
    assert!(ONCE.is_completed());
}

/// Go's rule: a panicking closure completes the `Once`; callers parked
/// meanwhile return without running theirs, and so do later ones.
#[test]
fn a_panicking_closure_completes_the_once_and_releases_waiters() {
    goro::run(|| {
        let once = Arc::new(Once::new());
        let ran_after = Arc::new(AtomicUsize::new(0));
        let (go_tx, go_rx) = chan::<()>(0);
        let (entered_tx, entered_rx) = chan::<()>(0);
        let runner = {
            let once = once.clone();
            goro::go!(move || {
                once.call_once(|| {
                    entered_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    panic!("init failed");
                })
            })
        };
        entered_rx.recv().unwrap();
        let waiters: Vec<_> = (0..10)
            .map(|_| {
                let (once, ran_after) = (once.clone(), ran_after.clone());
                goro::go!(move || once.call_once(|| {
                    ran_after.fetch_add(1, Ordering::Relaxed);
                }))
            })
            .collect();
        for _ in 0..20 {
            goro::yield_now();
        }
        assert!(!once.is_completed());
        go_tx.send(()).unwrap();
        assert!(runner.join().is_err());
        for w in waiters {
            w.join().unwrap();
        }
        assert!(once.is_completed());
        once.call_once(|| {
            ran_after.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(ran_after.load(Ordering::Relaxed), 0);
    });
}

#[test]
fn once_lock_initializes_once_for_concurrent_callers() {
    static CELL: OnceLock<String> = OnceLock::new();
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    goro::run(|| {
        assert!(CELL.get().is_none());
        let hs: Vec<_> = (0..50)
            .map(|i| {
                goro::go!(move || {
                    CELL.get_or_init(|| {
                        RUNS.fetch_add(1, Ordering::Relaxed);
                        goro::yield_now();
                        format!("made by {i}")
                    })
                    .clone()
                })
            })
            .collect();
        let values: Vec<String> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(values.iter().all(|v| v == &values[0]));
        assert_eq!(CELL.get(), Some(&values[0]));
        assert_eq!(CELL.set("late".into()), Err("late".into()));
    });
    assert_eq!(RUNS.load(Ordering::Relaxed), 1);
}

/// std's rule for `OnceLock`: a panicking initializer leaves the cell
/// empty; a caller parked behind it then runs its own initializer.
#[test]
fn once_lock_stays_empty_after_a_panicking_initializer() {
    goro::run(|| {
        let cell = Arc::new(OnceLock::<u32>::new());
        let (go_tx, go_rx) = chan::<()>(0);
        let (entered_tx, entered_rx) = chan::<()>(0);
        let failing = {
            let cell = cell.clone();
            goro::go!(move || {
                cell.get_or_init(|| {
                    entered_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    panic!("init failed");
                });
            })
        };
        entered_rx.recv().unwrap();
        let (parked_tx, parked_rx) = chan::<u32>(1);
        {
            let cell = cell.clone();
            goro::go!(move || parked_tx.send(*cell.get_or_init(|| 7)).unwrap());
        }
        // Give it time to park behind the running initializer.
        for _ in 0..20 {
            goro::yield_now();
        }
        go_tx.send(()).unwrap();
        assert!(failing.join().is_err());
        assert_eq!(parked_rx.recv_timeout(BOUND), Ok(7));
        assert_eq!(cell.get(), Some(&7));
    });
    let cell = OnceLock::new();
    let r = catch_unwind(AssertUnwindSafe(|| {
        cell.get_or_init(|| -> u8 { panic!("no") });
    }));
    assert!(r.is_err() && cell.get().is_none());
    assert_eq!(cell.set(1), Ok(()));
}

#[test]
fn once_lock_take_into_inner_and_drop() {
    let mut cell = OnceLock::from(vec![1]);
    assert_eq!(cell.get_mut().map(|v| v.len()), Some(1));
    assert_eq!(format!("{cell:?}"), "OnceLock([1])");
    assert_eq!(cell.take(), Some(vec![1]));
    assert!(cell.get().is_none());
    assert_eq!(format!("{cell:?}"), "OnceLock(<uninit>)");
    assert_eq!(cell.set(vec![2]), Ok(()));
    assert_eq!(cell.into_inner(), Some(vec![2]));
    // Dropping a full cell drops its value exactly once.
    let token = Arc::new(());
    drop(OnceLock::from(token.clone()));
    assert_eq!(Arc::strong_count(&token), 1);
}
