//! `runtime::stats`: the counters move with the work, and coroutines are
//! counted by state.

mod common;
use common::{child_scenario, limit, run_child, stderr, stdout};
use goro::runtime::{CoroutineState, Stats, WaitingOn};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

#[test]
fn counters_move() {
    let before = goro::runtime::stats();
    goro::run(|| {
        let (tx, rx) = goro::chan::chan::<u32>(0);
        let handles: Vec<_> = (0..1000)
            .map(|_| {
                let rx = rx.clone();
                goro::spawn(move || rx.recv().unwrap())
            })
            .collect();
        // Once the receivers wait (a receiver that finds the sender waiting
        // takes the value without parking, and then nothing is woken from
        // outside), a plain thread's sends wake them from outside their
        // worker.
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        while goro::runtime::stats().total.parked_on.channel_receive < 1000
            && std::time::Instant::now() < give_up
        {
            goro::sleep(Duration::from_millis(1));
        }
        std::thread::spawn(move || {
            for i in 0..1000 {
                tx.send(i).unwrap();
            }
        })
        .join()
        .unwrap();
        let sum: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, 999 * 1000 / 2);
        goro::sleep(Duration::from_millis(5));
    });
    let after = goro::runtime::stats();
    // A row per worker; spare workers too (with one worker, the plain
    // thread's join above holds it long enough for the monitor to add one).
    assert!(
        after.workers.len() >= goro::runtime::num_workers(),
        "{after}"
    );
    let d = |f: fn(&goro::runtime::WorkerStats) -> u64| f(&after.total) - f(&before.total);
    assert!(d(|w| w.spawned) >= 1000, "{after}");
    assert!(d(|w| w.finished) >= 1001, "{after}");
    // A receiver that finds the sender already waiting does not park.
    assert!(d(|w| w.parks) >= 1, "{after}");
    assert!(d(|w| w.remote_wakeups) >= 1, "{after}");
    assert!(d(|w| w.timers_fired) >= 1, "{after}");
    // The thousand, and the main coroutine from outside the runtime.
    assert!(after.created - before.created >= 1001, "{after}");
    assert_eq!(
        after.created,
        after.total.spawned + after.spawned_outside,
        "{after}"
    );
    assert!(after.stack_bytes_mapped > 0);
    assert!(after.total.stack_pool > 0, "{after}");
    assert!(after.to_string().contains("total"), "{after}");
}

/// Parked coroutines whose dump entry waits on `on`.
fn parked_in_dump(on: WaitingOn) -> usize {
    goro::runtime::dump()
        .coroutines
        .iter()
        .filter(|c| c.state == CoroutineState::Parked && c.waiting_on == Some(on))
        .count()
}

/// What each worker's states add up to: its started coroutines.
fn assert_states_add_up(s: &Stats) {
    for w in &s.workers {
        assert_eq!(w.running + w.runnable + w.parked, w.live, "{s}");
    }
}

/// In a quiet runtime every figure is exact: 100 coroutines parked on a
/// channel receive (3 of them then woken while their workers are busy), 50
/// asleep, 10 on a mutex, 5 not started while every worker runs a
/// coroutine that does not yield. In a child process, for a runtime of its
/// own whose monitor is off: a spare worker would start the 5.
#[test]
fn states_are_exact_when_quiet() {
    if child_scenario().is_some() {
        goro::runtime::Builder::new()
            .hold_threshold(Duration::ZERO)
            .run(quiet_scenario)
            .unwrap();
        println!("states exact");
        return;
    }
    let out = limit(|| {
        // The parent's worker count, which `run_child` does not pass on.
        let workers = std::env::var("GORO_WORKERS").ok();
        let env: Vec<(&str, &str)> = workers
            .as_deref()
            .map(|w| ("GORO_WORKERS", w))
            .into_iter()
            .collect();
        run_child("states_are_exact_when_quiet", &env)
    });
    assert!(out.status.success(), "{:?} {}", out.status, stderr(&out));
    assert!(stdout(&out).contains("states exact"), "{}", stdout(&out));
}

fn quiet_scenario() {
    let n = goro::runtime::num_workers() as u64;
    let (tx, rx) = goro::chan::chan::<u32>(0);
    let receivers: Vec<_> = (0..100)
        .map(|_| {
            let rx = rx.clone();
            goro::spawn(move || rx.recv())
        })
        .collect();
    for _ in 0..50 {
        goro::spawn(|| goro::sleep(Duration::from_secs(3600)));
    }
    let mutex = Arc::new(goro::sync::Mutex::new(()));
    let guard = mutex.lock();
    let lockers: Vec<_> = (0..10)
        .map(|_| {
            let m = mutex.clone();
            goro::spawn(move || drop(m.lock()))
        })
        .collect();
    while parked_in_dump(WaitingOn::ChannelReceive) < 100
        || parked_in_dump(WaitingOn::Sleep) < 50
        || parked_in_dump(WaitingOn::Mutex) < 10
    {
        goro::sleep(Duration::from_millis(1));
    }

    // Hold every other worker with a coroutine that does not yield, one per
    // worker: each is spawned from a plain thread (which makes sure an idle
    // worker looks) once the one before has started. This coroutine does
    // not yield meanwhile, so its own worker starts none of them.
    let release = Arc::new(AtomicBool::new(false));
    let holders: Vec<_> = {
        let release = release.clone();
        std::thread::spawn(move || {
            let started = Arc::new(AtomicUsize::new(0));
            (1..n as usize)
                .map(|k| {
                    let (up, release) = (started.clone(), release.clone());
                    let h = goro::spawn(move || {
                        up.fetch_add(1, Ordering::SeqCst);
                        while !release.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_micros(100));
                        }
                    });
                    while started.load(Ordering::SeqCst) < k {
                        std::thread::yield_now();
                    }
                    h
                })
                .collect()
        })
        .join()
        .unwrap()
    };
    // Every worker is busy now: three receivers woken stay runnable, and
    // new coroutines, from here or from outside, stay not started.
    for i in 0..3 {
        tx.try_send(i).unwrap();
    }
    let mut late: Vec<_> = (0..3).map(|_| goro::spawn(|| 1)).collect();
    late.extend(
        std::thread::spawn(|| [goro::spawn(|| 1), goro::spawn(|| 1)])
            .join()
            .unwrap(),
    );

    let s = goro::runtime::stats();
    assert_eq!(s.workers.len() as u64, n, "{s}");
    for w in &s.workers {
        assert_eq!(w.running, 1, "every worker runs a coroutine\n{s}");
    }
    assert_eq!(s.total.running, n, "{s}");
    assert_eq!(s.total.runnable, 3, "{s}");
    assert_eq!(s.total.not_started, 5, "{s}");
    // 3 of them on workers' deques, 2 on the global queue.
    let queued_on_workers: u64 = s.workers.iter().map(|w| w.not_started).sum();
    assert_eq!(queued_on_workers, 3, "{s}");
    assert_eq!(s.total.parked, 97 + 50 + 10, "{s}");
    for (reason, count) in s.total.parked_on.iter() {
        let expected = match reason {
            "channel_receive" => 97,
            "sleep" => 50,
            "mutex" => 10,
            _ => 0,
        };
        assert_eq!(count, expected, "{reason}\n{s}");
    }
    assert_eq!(s.total.parked_on.channel_receive, 97, "{s}");
    // main, then 160, the holders and the 5; from plain threads main, the
    // holders and 2 of the 5.
    assert_eq!(s.created, 1 + 160 + (n - 1) + 5, "{s}");
    assert_eq!(s.spawned_outside, 1 + (n - 1) + 2, "{s}");
    assert_eq!(s.coroutines, s.created, "none finished\n{s}");
    assert_states_add_up(&s);
    let text = s.to_string();
    assert!(
        text.contains("parked 157 (sleep 50, channel_receive 97, mutex 10)"),
        "{text}"
    );

    release.store(true, Ordering::SeqCst);
    drop(guard);
    drop(tx);
    for h in holders {
        h.join().unwrap();
    }
    for h in late {
        assert_eq!(h.join().unwrap(), 1);
    }
    for h in lockers {
        h.join().unwrap();
    }
    let received = receivers
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(Result::is_ok)
        .count();
    assert_eq!(received, 3);

    // Everything joined has left the registries; only the sleepers remain.
    let s = goro::runtime::stats();
    assert_eq!(s.coroutines, 1 + 50, "{s}");
    assert_eq!(s.total.running, 1, "{s}");
    assert_eq!(s.total.runnable + s.total.not_started, 0, "{s}");
    assert_eq!(s.total.parked, 50, "{s}");
    assert_eq!(s.total.parked_on.sleep, 50, "{s}");
    assert_states_add_up(&s);
}

/// Stats read in a loop from a plain thread while coroutines are spawned,
/// yield and end: the workers go on (nothing is taken from their queues,
/// no lock is held for long), and each read adds up within itself.
#[test]
fn stats_read_during_a_spawn_storm() {
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let s = goro::runtime::stats();
                let total: Vec<u64> = s.total.parked_on.iter().map(|(_, n)| n).collect();
                let mut sum = vec![0; total.len()];
                for w in &s.workers {
                    assert!(w.running <= 1, "{s}");
                    let mut parked = 0;
                    for (i, (_, n)) in w.parked_on.iter().enumerate() {
                        sum[i] += n;
                        parked += n;
                    }
                    assert_eq!(parked, w.parked, "{s}");
                }
                assert_eq!(sum, total, "{s}");
                reads += 1;
            }
            reads
        })
    };
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    limit(move || {
        goro::run(move || {
            let handles: Vec<_> = (0..10_000)
                .map(|_| {
                    let r = r.clone();
                    goro::spawn(move || {
                        goro::yield_now();
                        r.fetch_add(1, Ordering::Relaxed);
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
        })
    });
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    assert_eq!(ran.load(Ordering::Relaxed), 10_000);
}
