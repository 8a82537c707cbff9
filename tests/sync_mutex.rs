//! `goro::sync::Mutex`: mutual exclusion, fairness, coroutines and threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use goro::chan::chan;
use goro::sync::Mutex;

/// A bound on waits that must end: far above any correct run even on a
/// loaded 2-core machine, so that only a waiter that would wait forever
/// (a lost wakeup, starvation) trips it.
const BOUND: Duration = Duration::from_secs(20);

#[test]
fn api_shaped_like_std() {
    goro::run(|| {
        let m = Mutex::new(vec![1]);
        m.lock().push(2);
        {
            let g = m.lock();
            assert!(m.is_locked());
            assert!(m.try_lock().is_none());
            assert_eq!(format!("{m:?}"), "Mutex { data: <locked>, .. }");
            assert_eq!(format!("{g:?}"), "[1, 2]");
        }
        assert!(!m.is_locked());
        assert_eq!(format!("{m:?}"), "Mutex { data: [1, 2], .. }");
        m.try_lock().expect("free").push(3);
        let mut m = m;
        m.get_mut().push(4);
        assert_eq!(m.into_inner(), [1, 2, 3, 4]);
        assert_eq!(*Mutex::<u8>::default().lock(), 0);
        assert_eq!(*Mutex::from("x").lock(), "x");
    });
}

#[test]
fn const_new_makes_a_static() {
    static M: Mutex<u32> = Mutex::new(7);
    *M.lock() += 1;
    assert_eq!(goro::run(|| *M.lock()), 8);
}

/// 1,000 coroutines contend, each checking that it is alone inside; every
/// lock is timed and the longest wait must stay bounded.
#[test]
fn thousand_coroutines_keep_the_invariant_and_nobody_waits_forever() {
    const COROUTINES: usize = 1000;
    const ROUNDS: usize = 20;
    goro::run(|| {
        let m = Arc::new(Mutex::new(0usize));
        let inside = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..COROUTINES)
            .map(|i| {
                let (m, inside) = (m.clone(), inside.clone());
                goro::go!(move || {
                    let mut longest = Duration::ZERO;
                    for r in 0..ROUNDS {
                        let t = Instant::now();
                        let mut g = m.lock();
                        longest = longest.max(t.elapsed());
                        assert!(!inside.swap(true, Ordering::Relaxed), "two holders");
                        let v = *g;
                        if (i + r) % 7 == 0 {
                            // Parked holders make others queue.
                            goro::yield_now();
                        }
                        *g = v + 1;
                        inside.store(false, Ordering::Relaxed);
                    }
                    longest
                })
            })
            .collect();
        let longest = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap();
        assert_eq!(*m.lock(), COROUTINES * ROUNDS);
        assert!(longest < BOUND, "a locker waited {longest:?}");
    });
}

/// A holder that re-locks at once after each unlock, yielding inside so
/// that the waiter queues: in normal mode the woken waiter finds the lock
/// taken again, every time when both share a worker. Only starvation mode's
/// handoff (after 1 ms) lets the waiter through each round.
#[test]
fn a_starving_waiter_gets_the_lock_from_a_tight_relocker() {
    const ROUNDS: usize = 50;
    goro::run(|| {
        let m = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = chan::<()>(1);
        let relocker = {
            let (m, stop) = (m.clone(), stop.clone());
            goro::go!(move || {
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut g = m.lock();
                    g.push(false);
                    if rounds == 0 {
                        started_tx.send(()).unwrap();
                    }
                    goro::yield_now();
                    drop(g);
                    rounds += 1;
                }
                rounds
            })
        };
        started_rx.recv().unwrap();
        let (done_tx, done_rx) = chan::<()>(1);
        let waiter = {
            let m = m.clone();
            goro::go!(move || {
                for _ in 0..ROUNDS {
                    m.lock().push(true);
                }
                done_tx.send(()).unwrap();
            })
        };
        let done = done_rx.recv_timeout(BOUND);
        stop.store(true, Ordering::Relaxed);
        assert!(done.is_ok(), "the waiter starved behind the re-locker");
        waiter.join().unwrap();
        assert!(relocker.join().unwrap() > 0);
        assert_eq!(m.lock().iter().filter(|&&w| w).count(), ROUNDS);
    });
}

/// Waiters park: with more blocked lockers than worker threads, other
/// coroutines still run.
#[test]
fn lock_parks_only_the_coroutine() {
    goro::run(|| {
        let m = Arc::new(Mutex::new(0));
        let held = m.lock();
        let blocked = 4 * goro::runtime::num_workers();
        let (tx, rx) = chan::<()>(0);
        let waiters: Vec<_> = (0..blocked)
            .map(|_| {
                let (m, tx) = (m.clone(), tx.clone());
                goro::go!(move || {
                    tx.send(()).unwrap();
                    *m.lock() += 1;
                })
            })
            .collect();
        for _ in 0..blocked {
            rx.recv().unwrap();
        }
        // Every waiter is in (or about to enter) `lock`; a fresh coroutine
        // must still get a worker.
        let (ping_tx, ping_rx) = chan::<u8>(0);
        goro::go!(move || ping_tx.send(1).unwrap());
        assert_eq!(ping_rx.recv_timeout(BOUND), Ok(1));
        drop(held);
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(*m.lock(), blocked);
    });
}

/// Plain threads and coroutines lock the same mutex at once.
#[test]
fn threads_and_coroutines_share_a_mutex() {
    const EACH: usize = 2000;
    let m = Arc::new(Mutex::new(0usize));
    let inside = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (m, inside) = (m.clone(), inside.clone());
            std::thread::spawn(move || {
                for _ in 0..EACH {
                    let mut g = m.lock();
                    assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0);
                    *g += 1;
                    inside.fetch_sub(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let (m2, inside2) = (m.clone(), inside.clone());
    goro::run(move || {
        let hs: Vec<_> = (0..20)
            .map(|i| {
                let (m, inside) = (m2.clone(), inside2.clone());
                goro::go!(move || {
                    for r in 0..EACH / 10 {
                        let mut g = m.lock();
                        assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0);
                        if (i + r) % 5 == 0 {
                            goro::yield_now();
                        }
                        *g += 1;
                        inside.fetch_sub(1, Ordering::Relaxed);
                    }
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
    assert_eq!(*m.lock(), 3 * EACH + 20 * (EACH / 10));
}

/// No poisoning: a panic while holding the guard unlocks the mutex, and the
/// next holder sees the data as it was left.
#[test]
fn a_panicking_holder_unlocks_without_poisoning() {
    goro::run(|| {
        let m = Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let r = goro::go!(move || {
            let mut g = m2.lock();
            *g = 2;
            panic!("holder panics");
        })
        .join();
        assert!(r.is_err());
        assert!(!m.is_locked());
        assert_eq!(*m.lock(), 2);
    });
}

/// A guard may be dropped by another coroutine, which unlocks the mutex (as
/// Go lets any goroutine unlock).
#[test]
fn a_guard_can_be_released_by_another_coroutine() {
    static M: Mutex<u32> = Mutex::new(0);
    goro::run(|| {
        let mut g = M.lock();
        *g = 5;
        goro::go!(move || drop(g)).join().unwrap();
        assert_eq!(*M.try_lock().expect("released elsewhere"), 5);
    });
}
