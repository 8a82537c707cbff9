//! `goro::sync::Semaphore`: never over-admits, hands permits over in
//! order, timeouts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use goro::chan::chan;
use goro::sync::Semaphore;

/// A bound on waits that must end: far above any correct run even on a
/// loaded 2-core machine, so that only a waiter that would wait forever
/// trips it.
const BOUND: Duration = Duration::from_secs(20);

#[test]
fn permits_come_and_go() {
    let sem = Semaphore::new(2);
    let a = sem.try_acquire().expect("free");
    let b = sem.acquire();
    assert_eq!(sem.available_permits(), 0);
    assert!(sem.try_acquire().is_none());
    drop(a);
    assert_eq!(sem.available_permits(), 1);
    b.forget();
    assert_eq!(sem.available_permits(), 1);
    sem.add_permits(2);
    assert_eq!(sem.available_permits(), 3);
    assert_eq!(format!("{sem:?}"), "Semaphore { permits: 3, .. }");
    sem.add_permits(usize::MAX);
    assert_eq!(sem.available_permits(), usize::MAX);
}

/// Coroutines and plain threads hammer a 3-permit semaphore; at no time
/// are more than 3 inside.
#[test]
fn never_admits_more_than_its_permits() {
    const PERMITS: usize = 3;
    let sem = Arc::new(Semaphore::new(PERMITS));
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let enter = {
        let (inside, most) = (inside.clone(), most.clone());
        move || {
            let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
            assert!(n <= PERMITS, "{n} holders of {PERMITS} permits");
            most.fetch_max(n, Ordering::Relaxed);
        }
    };
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (sem, inside, enter) = (sem.clone(), inside.clone(), enter.clone());
            std::thread::spawn(move || {
                for _ in 0..500 {
                    let _p = sem.acquire();
                    enter();
                    std::thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    let (sem2, inside2) = (sem.clone(), inside.clone());
    goro::run(move || {
        let hs: Vec<_> = (0..200)
            .map(|i| {
                let (sem, inside, enter) = (sem2.clone(), inside2.clone(), enter.clone());
                goro::go!(move || {
                    for r in 0..10 {
                        let p = if (i + r) % 3 == 0 {
                            match sem.try_acquire() {
                                Some(p) => p,
                                None => continue,
                            }
                        } else {
                            sem.acquire()
                        };
                        enter();
                        goro::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(p);
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
    assert_eq!(sem.available_permits(), PERMITS);
    assert!(most.load(Ordering::Relaxed) >= 1);
}

/// Tight cyclers that release and at once re-acquire do not keep a waiter
/// out: the released permit goes to the waiter queued first.
#[test]
fn a_waiter_is_not_starved_by_tight_cyclers() {
    goro::run(|| {
        let sem = Arc::new(Semaphore::new(2));
        let stop = Arc::new(AtomicBool::new(false));
        let cycles = Arc::new(AtomicUsize::new(0));
        let cyclers: Vec<_> = (0..2)
            .map(|_| {
                let (sem, stop, cycles) = (sem.clone(), stop.clone(), cycles.clone());
                goro::go!(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let _p = sem.acquire();
                        cycles.fetch_add(1, Ordering::Relaxed);
                        goro::yield_now();
                    }
                })
            })
            .collect();
        while cycles.load(Ordering::Relaxed) < 10 {
            goro::yield_now();
        }
        let (tx, rx) = chan::<()>(1);
        let s = sem.clone();
        goro::go!(move || {
            for _ in 0..20 {
                drop(s.acquire());
            }
            tx.send(()).unwrap();
        });
        let done = rx.recv_timeout(BOUND);
        stop.store(true, Ordering::Relaxed);
        assert!(done.is_ok(), "the waiter starved");
        for c in cyclers {
            c.join().unwrap();
        }
        assert_eq!(sem.available_permits(), 2);
    });
}

#[test]
fn acquire_timeout_never_returns_early() {
    goro::run(|| {
        let sem = Semaphore::new(0);
        for ms in [0, 1, 20] {
            let timeout = Duration::from_millis(ms);
            let t = Instant::now();
            assert!(sem.acquire_timeout(timeout).is_none());
            assert!(t.elapsed() >= timeout);
        }
        let deadline = Instant::now() + Duration::from_millis(10);
        assert!(sem.acquire_deadline(deadline).is_none());
        assert!(Instant::now() >= deadline);
    });
    // From a plain thread too.
    let sem = Semaphore::new(0);
    let t = Instant::now();
    assert!(sem.acquire_timeout(Duration::from_millis(20)).is_none());
    assert!(t.elapsed() >= Duration::from_millis(20));
}

/// A permit added while a timed waiter waits reaches it.
#[test]
fn acquire_timeout_gets_a_permit_released_in_time() {
    goro::run(|| {
        let sem = Arc::new(Semaphore::new(0));
        let s = sem.clone();
        let waiter = goro::go!(move || s.acquire_timeout(BOUND).map(|p| p.forget()).is_some());
        goro::yield_now();
        sem.add_permits(1);
        assert!(waiter.join().unwrap());
        assert_eq!(sem.available_permits(), 0);
    });
}

/// A permit added just as a timed waiter gives up is either taken by that
/// waiter or stays available: it never vanishes with a timed-out waiter.
#[test]
fn a_timed_out_waiter_never_takes_a_permit() {
    const ROUNDS: usize = 300;
    goro::run(|| {
        let sem = Arc::new(Semaphore::new(0));
        for round in 0..ROUNDS {
            let s = sem.clone();
            let timeout = Duration::from_micros((round % 20) as u64 * 50);
            let waiter = goro::go!(move || s.acquire_timeout(timeout).is_some());
            if round % 2 == 0 {
                goro::yield_now();
            }
            sem.add_permits(1);
            // A permit the waiter got went back when it dropped it.
            waiter.join().unwrap();
            assert_eq!(sem.available_permits(), 1, "round {round}");
            sem.try_acquire().expect("the permit is there").forget();
        }
    });
}
