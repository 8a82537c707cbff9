//! `goro::sync::RwLock`: shared and exclusive access, writer priority over
//! new readers, coroutines and threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use goro::chan::chan;
use goro::sync::{Barrier, Mutex, RwLock};

/// A bound on waits that must end: far above any correct run even on a
/// loaded 2-core machine, so that only a waiter that would wait forever
/// trips it.
const BOUND: Duration = Duration::from_secs(20);

#[test]
fn api_shaped_like_std() {
    goro::run(|| {
        let l = RwLock::new(vec![1]);
        {
            let a = l.read();
            let b = l.try_read().expect("readers share");
            assert!(l.try_write().is_none());
            assert_eq!(a.len() + b.len(), 2);
            assert_eq!(format!("{l:?}"), "RwLock { data: [1], .. }");
        }
        {
            let mut w = l.write();
            w.push(2);
            assert!(l.try_read().is_none());
            assert!(l.try_write().is_none());
            assert_eq!(format!("{l:?}"), "RwLock { data: <locked>, .. }");
        }
        l.try_write().expect("free").push(3);
        let mut l = l;
        l.get_mut().push(4);
        assert_eq!(l.into_inner(), [1, 2, 3, 4]);
        assert_eq!(*RwLock::<u8>::default().read(), 0);
        assert_eq!(*RwLock::from(5).write(), 5);
    });
}

/// Readers hold the lock at the same time: each waits at a barrier for all
/// the others while holding its read guard.
#[test]
fn readers_share_the_lock() {
    const READERS: usize = 8;
    goro::run(|| {
        let l = Arc::new(RwLock::new(()));
        let b = Arc::new(Barrier::new(READERS));
        let hs: Vec<_> = (0..READERS)
            .map(|_| {
                let (l, b) = (l.clone(), b.clone());
                goro::go!(move || {
                    let _r = l.read();
                    b.wait();
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
}

/// Once a writer waits, new readers wait behind it, and it gets the lock
/// before them when the current readers leave.
#[test]
fn a_waiting_writer_blocks_new_readers() {
    goro::run(|| {
        let l = Arc::new(RwLock::new(()));
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = l.read();
        let writer = {
            let (l, order) = (l.clone(), order.clone());
            goro::go!(move || {
                let _w = l.write();
                order.lock().push("writer");
            })
        };
        // `try_read` fails exactly once a writer is queued.
        let since = Instant::now();
        while l.try_read().is_some() {
            assert!(
                since.elapsed() < BOUND,
                "a queued writer did not stop new readers"
            );
            goro::yield_now();
        }
        let late_reader_in = Arc::new(AtomicBool::new(false));
        let reader = {
            let (l, order, flag) = (l.clone(), order.clone(), late_reader_in.clone());
            goro::go!(move || {
                let _r = l.read();
                flag.store(true, Ordering::Relaxed);
                order.lock().push("reader");
            })
        };
        for _ in 0..100 {
            goro::yield_now();
        }
        assert!(!late_reader_in.load(Ordering::Relaxed));
        drop(first);
        writer.join().unwrap();
        reader.join().unwrap();
        assert_eq!(*order.lock(), ["writer", "reader"]);
    });
}

/// Readers that overlap without pause never leave the lock free, yet a
/// writer gets in.
#[test]
fn a_stream_of_readers_does_not_starve_a_writer() {
    const READERS: usize = 4;
    goro::run(|| {
        let l = Arc::new(RwLock::new(0u64));
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let (l, stop, reads) = (l.clone(), stop.clone(), reads.clone());
                goro::go!(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let _r = l.read();
                        reads.fetch_add(1, Ordering::Relaxed);
                        goro::yield_now();
                    }
                })
            })
            .collect();
        while reads.load(Ordering::Relaxed) < 100 {
            goro::yield_now();
        }
        let (tx, rx) = chan::<()>(1);
        let writer = {
            let l = l.clone();
            goro::go!(move || {
                for _ in 0..10 {
                    *l.write() += 1;
                }
                tx.send(()).unwrap();
            })
        };
        let done = rx.recv_timeout(BOUND);
        stop.store(true, Ordering::Relaxed);
        assert!(done.is_ok(), "the writer starved");
        writer.join().unwrap();
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(*l.read(), 10);
    });
}

/// Writers keep two fields equal, stepping through an unequal state with a
/// yield in between; readers never see it. Coroutines and plain threads mix.
#[test]
fn readers_never_see_a_write_in_progress_from_threads_and_coroutines() {
    const ROUNDS: usize = 300;
    let l = Arc::new(RwLock::new((0usize, 0usize)));
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let l = l.clone();
            std::thread::spawn(move || {
                for _ in 0..ROUNDS {
                    if t == 0 {
                        let mut w = l.write();
                        w.0 += 1;
                        std::thread::yield_now();
                        w.1 += 1;
                    } else {
                        let r = l.read();
                        assert_eq!(r.0, r.1);
                    }
                }
            })
        })
        .collect();
    let l2 = l.clone();
    goro::run(move || {
        let hs: Vec<_> = (0..16)
            .map(|i| {
                let l = l2.clone();
                goro::go!(move || {
                    for _ in 0..ROUNDS / 10 {
                        if i % 4 == 0 {
                            let mut w = l.write();
                            w.0 += 1;
                            goro::yield_now();
                            w.1 += 1;
                        } else {
                            let r = l.read();
                            assert_eq!(r.0, r.1);
                            goro::yield_now();
                        }
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
    let expect = ROUNDS + 4 * (ROUNDS / 10);
    assert_eq!(*l.read(), (expect, expect));
}

/// A writer's release admits every queued reader together: they then meet
/// at a barrier while all holding read guards.
#[test]
fn a_writer_hands_over_to_all_waiting_readers() {
    const READERS: usize = 5;
    goro::run(|| {
        let l = Arc::new(RwLock::new(0));
        let b = Arc::new(Barrier::new(READERS));
        let w = l.write();
        let queued = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..READERS)
            .map(|_| {
                let (l, b, queued) = (l.clone(), b.clone(), queued.clone());
                goro::go!(move || {
                    queued.fetch_add(1, Ordering::Relaxed);
                    let r = l.read();
                    b.wait();
                    *r
                })
            })
            .collect();
        while queued.load(Ordering::Relaxed) < READERS {
            goro::yield_now();
        }
        let mut w = w;
        *w = 9;
        drop(w);
        for h in hs {
            assert_eq!(h.join().unwrap(), 9);
        }
    });
}
