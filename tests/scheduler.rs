//! Scheduling: fairness, time slices, and the rule that a started coroutine
//! never changes thread.

mod common;
use common::{child_scenario, gettid, run_child, stderr, stdout};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

thread_local! {
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}

/// Many coroutines update a thread-local across many yields. Each checks,
/// with `gettid(2)` (a system call the compiler cannot cache), that it never
/// changed thread, and that the thread-local it reaches is its thread's.
/// The per-thread totals must add up. Run in release too (`cargo test
/// --release`): that is where a migrated coroutine would use a stale
/// thread-local address.
#[test]
fn thread_locals_stay_consistent_across_yields() {
    const COROUTINES: u64 = 200;
    const ROUNDS: u64 = 2_000;
    let results = goro::run(|| {
        let handles: Vec<_> = (0..COROUTINES)
            .map(|_| {
                goro::spawn(|| {
                    let tid = gettid();
                    let slot = COUNTER.with(|c| c as *const Cell<u64> as usize);
                    for _ in 0..ROUNDS {
                        COUNTER.with(|c| c.set(c.get() + 1));
                        goro::yield_now();
                        assert_eq!(gettid(), tid, "a started coroutine changed thread");
                        assert_eq!(COUNTER.with(|c| c as *const Cell<u64> as usize), slot);
                    }
                    tid
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(results.len() as u64, COROUTINES);
    // Each worker's counter: read it from a coroutine on every worker by
    // asking until every tid seen above has reported.
    let tids: std::collections::BTreeSet<i64> = results.iter().copied().collect();
    let per_tid_expected: std::collections::BTreeMap<i64, u64> = tids
        .iter()
        .map(|t| {
            (
                *t,
                results.iter().filter(|r| *r == t).count() as u64 * ROUNDS,
            )
        })
        .collect();
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..10_000 {
        if seen.len() == tids.len() {
            break;
        }
        let (tid, count) = goro::spawn(|| (gettid(), COUNTER.with(Cell::get)))
            .join()
            .unwrap();
        seen.insert(tid, count);
    }
    for (tid, expected) in per_tid_expected {
        // Other tests in this binary do not touch COUNTER.
        if let Some(&got) = seen.get(&tid) {
            assert_eq!(got, expected, "thread {tid}'s counter");
        }
    }
}

/// With one worker, coroutines that yield in a loop take strict turns.
#[test]
fn yield_is_round_robin() {
    if child_scenario().is_some() {
        let counts = goro::run(|| {
            let counts: Arc<Vec<AtomicU64>> = Arc::new((0..4).map(|_| AtomicU64::new(0)).collect());
            let stop = Arc::new(AtomicBool::new(false));
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let (counts, stop) = (counts.clone(), stop.clone());
                    goro::spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            counts[i].fetch_add(1, Ordering::Relaxed);
                            goro::yield_now();
                        }
                    })
                })
                .collect();
            for _ in 0..10_000 {
                goro::yield_now();
            }
            stop.store(true, Ordering::Relaxed);
            for h in handles {
                h.join().unwrap();
            }
            counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect::<Vec<_>>()
        });
        println!("counts={counts:?}");
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(max - min <= 2, "unfair turns: {counts:?}");
        return;
    }
    let out = run_child("yield_is_round_robin", &[("GORO_WORKERS", "1")]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
}

/// A ping-pong pair wakes each other through `runnext` forever; on one worker
/// a third coroutine must still get turns (the pair shares one time slice).
#[test]
fn a_ping_pong_pair_cannot_starve_the_others() {
    if child_scenario().is_some() {
        goro::run(|| {
            let (atx, arx) = goro::chan::chan::<u64>(0);
            let (btx, brx) = goro::chan::chan::<u64>(0);
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            let ping = goro::spawn(move || {
                let mut v = 0;
                while !s.load(Ordering::Relaxed) {
                    atx.send(v).unwrap();
                    v = brx.recv().unwrap();
                }
            });
            let pong = goro::spawn(move || {
                while let Ok(v) = arx.recv() {
                    if btx.send(v + 1).is_err() {
                        return;
                    }
                }
            });
            // This coroutine is the "other": it must run to completion.
            for _ in 0..1000 {
                goro::yield_now();
            }
            stop.store(true, Ordering::Relaxed);
            ping.join().unwrap();
            pong.join().unwrap();
        });
        println!("the third coroutine finished");
        return;
    }
    let out = run_child(
        "a_ping_pong_pair_cannot_starve_the_others",
        &[("GORO_WORKERS", "1")],
    );
    assert!(
        stdout(&out).contains("the third coroutine finished"),
        "{}",
        stderr(&out)
    );
}

/// Coroutines spawned by one coroutine spread over every worker: the
/// fresh ones are stolen.
#[test]
fn fresh_coroutines_are_stolen_by_idle_workers() {
    if child_scenario().is_some() {
        let tids = goro::run(|| {
            let handles: Vec<_> = (0..64)
                .map(|_| {
                    goro::spawn(|| {
                        // Busy for a while, so the spawner's worker cannot
                        // run them all before a thief arrives.
                        let end = std::time::Instant::now() + std::time::Duration::from_millis(5);
                        while std::time::Instant::now() < end {}
                        gettid()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<std::collections::BTreeSet<_>>()
        });
        println!("threads={}", tids.len());
        return;
    }
    let out = run_child(
        "fresh_coroutines_are_stolen_by_idle_workers",
        &[("GORO_WORKERS", "2")],
    );
    assert!(
        stdout(&out).contains("threads=2"),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
}

/// Where a coroutine starts is where it runs for life, so a server whose
/// accept loop spawns connections while every worker is busy must not pile
/// them onto the accept loop's worker. 200 coroutines keep 4 workers busy
/// (20 µs of work between yields, as a connection handling a stream of
/// small requests), then 800 long-lived ones start meanwhile; the live
/// coroutines per worker must end within 1.25x of the mean.
#[test]
fn coroutines_started_while_every_worker_is_busy_spread_over_the_workers() {
    const WORKERS: usize = 4;
    if child_scenario().is_some() {
        goro::run(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let busy: Vec<_> = (0..200)
                .map(|_| {
                    let stop = stop.clone();
                    goro::spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            let t = std::time::Instant::now();
                            while t.elapsed() < std::time::Duration::from_micros(20) {
                                std::hint::spin_loop();
                            }
                            goro::yield_now();
                        }
                    })
                })
                .collect();
            goro::sleep(std::time::Duration::from_millis(20));
            let (tx, rx) = goro::chan::chan::<()>(0);
            let idle: Vec<_> = (0..800)
                .map(|i| {
                    let rx = rx.clone();
                    if i % 8 == 0 {
                        goro::yield_now();
                    }
                    goro::spawn(move || {
                        let _ = rx.recv();
                    })
                })
                .collect();
            // Every coroutine started (the main one counts too).
            let give_up = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let live = loop {
                let live: Vec<u64> = goro::runtime::stats()
                    .workers
                    .iter()
                    .take(WORKERS)
                    .map(|w| w.live)
                    .collect();
                if live.iter().sum::<u64>() >= 1001 || std::time::Instant::now() > give_up {
                    break live;
                }
                goro::sleep(std::time::Duration::from_millis(1));
            };
            stop.store(true, Ordering::Relaxed);
            drop(tx);
            for h in busy.into_iter().chain(idle) {
                h.join().unwrap();
            }
            let mean = live.iter().sum::<u64>() as f64 / WORKERS as f64;
            let max = *live.iter().max().unwrap() as f64;
            println!("live per worker {live:?}, max/mean {:.2}", max / mean);
            assert!(max / mean <= 1.25, "live per worker {live:?}");
        });
        return;
    }
    let out = run_child(
        "coroutines_started_while_every_worker_is_busy_spread_over_the_workers",
        &[("GORO_WORKERS", "4")],
    );
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
}
