//! The monitor: a held worker is reported by name, and new work runs anyway.

mod common;
use common::{child_scenario, run_child, stderr, stdout};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// With one worker, a coroutine that sleeps its thread for 500 ms must not
/// stop a coroutine spawned afterwards from ticking every 10 ms (a spare
/// worker runs it), and the warning names the sleeping coroutine and the
/// one it strands.
#[test]
fn a_held_worker_is_reported_and_new_work_still_runs() {
    if child_scenario().is_some() {
        let sleeper = goro::Builder::new()
            .name("sleepy")
            .spawn(|| {
                let (tx, rx) = goro::chan::chan::<()>(0);
                let stranded = goro::Builder::new()
                    .name("stranded")
                    .spawn(move || rx.recv())
                    .unwrap();
                goro::sleep(Duration::from_millis(5));
                std::thread::sleep(Duration::from_millis(500));
                drop(tx);
                let _ = stranded.join();
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let ticks = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = goro::spawn({
            let (ticks, stop) = (ticks.clone(), stop.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    goro::sleep(Duration::from_millis(10));
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        sleeper.join().unwrap();
        println!("ticks_during_hold={}", ticks.load(Ordering::Relaxed));
        stop.store(true, Ordering::Relaxed);
        ticker.join().unwrap();
        return;
    }
    let out = run_child(
        "a_held_worker_is_reported_and_new_work_still_runs",
        &[("GORO_WORKERS", "1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let ticks: usize = stdout(&out)
        .split("ticks_during_hold=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("the child reports its ticks");
    // Detection takes the 100 ms threshold; then ~39 ticks fit before the
    // sleeper wakes. Generous for noisy machines: a stopped ticker makes 0.
    assert!(ticks >= 10, "only {ticks} ticks while the worker was held");
    let err = stderr(&out);
    assert!(err.contains("goro: coroutine 'sleepy' (#"), "{err}");
    assert!(err.contains("has held worker 0 for"), "{err}");
    assert!(
        err.contains("run blocking calls in goro::blocking"),
        "{err}"
    );
    assert!(err.contains("spawned at tests/sysmon.rs:"), "{err}");
    assert!(err.contains("never changes thread"), "{err}");
    assert!(err.contains("waiting behind it: 'stranded' (#"), "{err}");
    assert_eq!(
        err.matches("has held worker").count(),
        1,
        "one warning per episode: {err}"
    );
}

/// A zero threshold turns the watch off: no warning, for long holds or
/// repeated short ones.
#[test]
fn a_zero_threshold_turns_the_watch_off() {
    if child_scenario().is_some() {
        goro::runtime::Builder::new()
            .hold_threshold(Duration::ZERO)
            .start()
            .unwrap();
        goro::run(|| {
            std::thread::sleep(Duration::from_millis(300));
            for _ in 0..20 {
                std::thread::sleep(Duration::from_millis(30));
                goro::yield_now();
            }
        });
        return;
    }
    let out = run_child(
        "a_zero_threshold_turns_the_watch_off",
        &[("GORO_WORKERS", "1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("held"), "{}", stderr(&out));
}

/// Waits, on a plain thread, until the monitor has looked at coroutine
/// `id` running for longer than `threshold` (and so reported it): the dump,
/// read on the monitor's clock, shows it running past the threshold, and
/// then that clock moves on, which it does only after the look. Gives up
/// after `common::HANG`, leaving the report missing for the test to see.
fn wait_until_monitor_saw_held(id: goro::CoroutineId, threshold: Duration) {
    let running_for = || {
        goro::runtime::dump()
            .coroutines
            .into_iter()
            .find(|c| {
                c.id == id && matches!(c.state, goro::runtime::CoroutineState::Running { .. })
            })
            .and_then(|c| c.for_how_long)
    };
    let give_up = std::time::Instant::now() + common::HANG;
    let mut seen = None;
    while std::time::Instant::now() < give_up {
        match (seen, running_for()) {
            (None, Some(d)) if d > threshold => seen = Some(d),
            (Some(first), Some(d)) if d > first => return,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The first number after `key=` in `text`.
fn field(text: &str, key: &str) -> Option<i64> {
    text.split(&format!("{key}="))
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// With one worker, the main coroutine blocked in a std (blocking) socket
/// read holds the worker. The report names the system call the thread is
/// blocked in, with the socket's fd (std's `read` on a socket is `recv`,
/// which Linux serves as `recvfrom`), and the coroutine stranded behind it.
#[test]
fn a_worker_blocked_in_a_std_read_is_reported_with_the_call_and_who_waits() {
    if child_scenario().is_some() {
        goro::run(|| {
            use std::io::{Read, Write};
            use std::os::fd::AsRawFd;
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (mut server, _) = listener.accept().unwrap();
            // A coroutine started on worker 0 that then parks there.
            let (started_tx, started_rx) = goro::chan::chan::<()>(0);
            let (done_tx, done_rx) = goro::chan::chan::<()>(0);
            let stranded = goro::Builder::new()
                .name("stranded")
                .spawn(move || {
                    started_tx.send(()).unwrap();
                    let _ = done_rx.recv();
                })
                .unwrap();
            started_rx.recv().unwrap();
            println!("fd={}", server.as_raw_fd());
            let me = goro::current().unwrap().id();
            let writer = std::thread::spawn(move || {
                wait_until_monitor_saw_held(me, Duration::from_millis(100));
                client.write_all(b"x").unwrap();
            });
            let mut buf = [0u8; 1];
            server.read_exact(&mut buf).unwrap();
            writer.join().unwrap();
            drop(done_tx);
            stranded.join().unwrap();
        });
        return;
    }
    let out = run_child(
        "a_worker_blocked_in_a_std_read_is_reported_with_the_call_and_who_waits",
        &[("GORO_WORKERS", "1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let fd = field(&stdout(&out), "fd").expect("the child reports the socket's fd");
    let err = stderr(&out);
    assert!(
        err.contains("goro: coroutine 'main' (#1) has held worker 0 for"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "without yielding, blocked in recvfrom(fd {fd}); run blocking calls in goro::blocking"
        )),
        "{err}"
    );
    assert!(err.contains("waiting behind it: 'stranded' (#"), "{err}");
    assert!(err.contains(", parked: channel receive)"), "{err}");
    assert_eq!(err.matches("has held worker").count(), 1, "{err}");
}

/// A coroutine that loops without yielding holds its worker computing; the
/// coroutine it stranded is named.
#[test]
fn a_worker_held_by_a_computation_is_reported_computing() {
    if child_scenario().is_some() {
        goro::run(|| {
            let (started_tx, started_rx) = goro::chan::chan::<()>(0);
            let (done_tx, done_rx) = goro::chan::chan::<()>(0);
            let stranded = goro::Builder::new()
                .name("stranded")
                .spawn(move || {
                    started_tx.send(()).unwrap();
                    let _ = done_rx.recv();
                })
                .unwrap();
            started_rx.recv().unwrap();
            let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
            let me = goro::current().unwrap().id();
            let stopper = std::thread::spawn(move || {
                wait_until_monitor_saw_held(me, Duration::from_millis(100));
                stop.store(true, Ordering::Relaxed);
            });
            let mut spins = 0u64;
            while !stop.load(Ordering::Relaxed) {
                spins = std::hint::black_box(spins + 1);
            }
            stopper.join().unwrap();
            drop(done_tx);
            stranded.join().unwrap();
        });
        return;
    }
    let out = run_child(
        "a_worker_held_by_a_computation_is_reported_computing",
        &[("GORO_WORKERS", "1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    // On a machine so loaded that the OS kept the worker off the CPU, the
    // monitor says that instead.
    if err.contains("waiting for a CPU") {
        return;
    }
    assert!(
        err.contains("has held worker 0 for") && err.contains(" ms without yielding, computing; "),
        "{err}"
    );
    assert!(err.contains("waiting behind it: 'stranded' (#"), "{err}");
}

/// A hold that strands nobody is not reported: the main coroutine spawns
/// coroutines in a loop without yielding (other workers start them: a
/// spare one here), and nothing else was started on its worker.
#[test]
fn a_hold_that_strands_nobody_is_not_reported() {
    if child_scenario().is_some() {
        goro::run(|| {
            let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
            let ran: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
            let me = goro::current().unwrap().id();
            let stopper = std::thread::spawn(move || {
                wait_until_monitor_saw_held(me, Duration::from_millis(100));
                stop.store(true, Ordering::Relaxed);
            });
            let mut spawned = 0usize;
            while !stop.load(Ordering::Relaxed) {
                goro::go!(move || {
                    ran.fetch_add(1, Ordering::Relaxed);
                });
                spawned += 1;
            }
            stopper.join().unwrap();
            while ran.load(Ordering::Relaxed) < spawned {
                goro::sleep(Duration::from_millis(1));
            }
            println!("spawned={spawned}");
        });
        return;
    }
    let out = run_child(
        "a_hold_that_strands_nobody_is_not_reported",
        &[("GORO_WORKERS", "1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(field(&stdout(&out), "spawned").is_some_and(|n| n > 0));
    let err = stderr(&out);
    assert!(!err.contains("has held worker"), "{err}");
    assert!(!err.contains("of the last second"), "{err}");
}

/// A std `Mutex` held across `goro::sleep` by one coroutine, wanted by
/// another on the same worker: the second blocks the worker in a futex,
/// and the first can never run to unlock. The report says it looks like a
/// std lock and points at goro::sync; after a few seconds it reports a
/// likely deadlock naming the parked coroutine. (The child never ends by
/// itself: it exits once the monitor has looked past that point.)
#[test]
fn a_std_lock_held_across_a_park_is_named_and_reported_as_a_likely_deadlock() {
    if child_scenario().is_some() {
        goro::run(|| {
            let lock: &'static std::sync::Mutex<u32> =
                Box::leak(Box::new(std::sync::Mutex::new(0)));
            let (locked_tx, locked_rx) = goro::chan::chan::<()>(0);
            let _holder = goro::Builder::new()
                .name("holder")
                .spawn(move || {
                    let mut guard = lock.lock().unwrap();
                    locked_tx.send(()).unwrap();
                    goro::sleep(Duration::from_millis(10));
                    *guard += 1;
                })
                .unwrap();
            locked_rx.recv().unwrap();
            let me = goro::current().unwrap().id();
            std::thread::spawn(move || {
                wait_until_monitor_saw_held(me, Duration::from_millis(3300));
                std::process::exit(0);
            });
            let _ = *lock.lock().unwrap();
            unreachable!("the holder cannot run to unlock");
        });
        return;
    }
    let out = run_child(
        "a_std_lock_held_across_a_park_is_named_and_reported_as_a_likely_deadlock",
        &[("GORO_WORKERS", "1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("goro: coroutine 'main' (#1) has held worker 0 for"),
        "{err}"
    );
    assert!(
        err.contains(
            "without yielding, blocked in futex: this looks like a std lock (Mutex, RwLock or \
             Condvar) held across a goro call"
        ),
        "{err}"
    );
    assert!(
        err.contains("use goro::sync's Mutex, RwLock and Condvar"),
        "{err}"
    );
    assert!(err.contains("waiting behind it: 'holder' (#"), "{err}");
    assert!(
        err.contains("goro: likely deadlock: coroutine 'main' (#1) has been blocked in futex on worker 0 for 3 s"),
        "{err}"
    );
    assert!(err.contains("started on worker 0: 'holder' (#"), "{err}");
    assert_eq!(err.matches("likely deadlock").count(), 1, "{err}");
}

/// A coroutine talking to a server over a std (blocking) socket in a loop,
/// as a sync database driver does, sleeps in recvfrom briefly and often:
/// the report says it makes system calls in a loop, not that it computes.
#[test]
fn a_loop_of_system_calls_is_reported_as_such() {
    if child_scenario().is_some() {
        goro::run(|| {
            use std::io::{Read, Write};
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let echo = std::thread::spawn(move || {
                let (mut s, _) = listener.accept().unwrap();
                let mut b = [0u8; 1];
                while s.read_exact(&mut b).is_ok() && s.write_all(&b).is_ok() {}
            });
            let (started_tx, started_rx) = goro::chan::chan::<()>(0);
            let (done_tx, done_rx) = goro::chan::chan::<()>(0);
            let stranded = goro::Builder::new()
                .name("stranded")
                .spawn(move || {
                    started_tx.send(()).unwrap();
                    let _ = done_rx.recv();
                })
                .unwrap();
            started_rx.recv().unwrap();
            let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
            let me = goro::current().unwrap().id();
            let stopper = std::thread::spawn(move || {
                wait_until_monitor_saw_held(me, Duration::from_millis(100));
                stop.store(true, Ordering::Relaxed);
            });
            let mut conn = std::net::TcpStream::connect(addr).unwrap();
            let mut b = [7u8; 1];
            while !stop.load(Ordering::Relaxed) {
                conn.write_all(&b).unwrap();
                conn.read_exact(&mut b).unwrap();
            }
            drop(conn);
            stopper.join().unwrap();
            echo.join().unwrap();
            drop(done_tx);
            stranded.join().unwrap();
        });
        return;
    }
    let out = run_child(
        "a_loop_of_system_calls_is_reported_as_such",
        &[("GORO_WORKERS", "1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(" ms without yielding, making system calls in a loop without parking"),
        "{err}"
    );
    assert!(err.contains("use goro::net's sockets"), "{err}");
    assert!(!err.contains("computing"), "{err}");
}

/// A coroutine that sleeps its thread 30 ms at a time, yielding between
/// sleeps, never holds its worker past the threshold, yet holds it nearly
/// all the time: that is reported, once (the report is rate-limited), with
/// the coroutine's name.
#[test]
fn repeated_short_holds_are_reported_once() {
    if child_scenario().is_some() {
        // Far above each 30 ms hold, however slow the machine.
        goro::runtime::Builder::new()
            .hold_threshold(Duration::from_secs(1))
            .start()
            .unwrap();
        goro::run(|| {
            goro::Builder::new()
                .name("napper")
                .spawn(|| {
                    for _ in 0..50 {
                        std::thread::sleep(Duration::from_millis(30));
                        goro::yield_now();
                    }
                })
                .unwrap()
                .join()
                .unwrap();
        });
        return;
    }
    let out = run_child(
        "repeated_short_holds_are_reported_once",
        &[("GORO_WORKERS", "1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err.matches("of the last second by").count(),
        1,
        "one report per 10 s: {err}"
    );
    assert!(
        err.contains("goro: worker 0 was held for at least "),
        "{err}"
    );
    assert!(
        err.contains("each shorter than the 1s hold threshold"),
        "{err}"
    );
    assert!(err.contains("was coroutine 'napper' (#"), "{err}");
    assert!(err.contains("spawned at tests/sysmon.rs:"), "{err}");
    assert!(!err.contains("has held worker"), "{err}");
}

/// A computation that yields every few microseconds switches all the time:
/// no run of it lasts from one of the monitor's samples to the next, so it
/// is no hold, short or long.
#[test]
fn a_computation_that_yields_often_is_not_a_hold() {
    if child_scenario().is_some() {
        goro::run(|| {
            let end = std::time::Instant::now() + Duration::from_millis(600);
            while std::time::Instant::now() < end {
                goro::yield_now();
            }
        });
        return;
    }
    let out = run_child(
        "a_computation_that_yields_often_is_not_a_hold",
        &[("GORO_WORKERS", "1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(!err.contains("held"), "{err}");
}

/// Spawns `n` coroutines from the running one without yielding (with one
/// worker, all `n` task cells are live at once), waits for them and checks
/// that each ran.
fn burst(n: usize) {
    let wg: &'static goro::sync::WaitGroup = Box::leak(Box::new(goro::sync::WaitGroup::new()));
    let sum: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    wg.add(n);
    for i in 0..n {
        goro::go!(move || {
            sum.fetch_add(i, Ordering::Relaxed);
            wg.done();
        });
    }
    wg.wait();
    assert_eq!(sum.load(Ordering::Relaxed), n * (n - 1) / 2);
}

/// After a burst of 300,000 coroutines (38 MB of task cells), the monitor
/// gives the cells' pages back once they sit idle, and the released cells
/// serve the next burst.
#[test]
fn the_monitor_gives_back_the_memory_of_a_burst() {
    const N: usize = 300_000;
    if child_scenario().is_some() {
        report_memory_given_back(|| burst(N));
        return;
    }
    let (grew, released) = memory_given_back("the_monitor_gives_back_the_memory_of_a_burst");
    // The cells alone are 300,000 x 128 bytes; the depot keeps 4,096.
    assert!(grew >= N * 100, "the burst grew RSS by only {grew} bytes");
    assert!(released > grew / 2, "{released} of {grew} bytes given back");
}

/// After 2,000 coroutines used 64 KiB of stack each at once (128 MB), the
/// stacks beyond the worker's hot pool go back to the arena with their
/// pages resident, and the monitor gives those pages back once they sit
/// idle; the released stacks serve the next burst.
#[test]
fn the_monitor_gives_back_the_memory_of_idle_stacks() {
    const N: usize = 2_000;
    if child_scenario().is_some() {
        report_memory_given_back(|| stack_burst(N));
        return;
    }
    let (grew, released) = memory_given_back("the_monitor_gives_back_the_memory_of_idle_stacks");
    assert!(
        grew >= N * STACK_BURST_BYTES / 2,
        "the burst grew RSS by only {grew} bytes"
    );
    // The worker keeps 256 hot stacks (16 MB of them touched) for reuse.
    assert!(released > grew / 2, "{released} of {grew} bytes given back");
}

/// In the child: starts the runtime with the monitor's hold report off
/// (a burst holds the only worker), runs `burst` in the main coroutine,
/// waits up to 10 s for the monitor to give back half of what RSS grew
/// by, prints both, and runs `burst` again on what was given back.
fn report_memory_given_back(burst: impl Fn() + Send + 'static) {
    goro::runtime::Builder::new()
        .hold_threshold(Duration::ZERO)
        .start()
        .unwrap();
    goro::run(move || {
        let base = common::rss();
        burst();
        let peak = common::rss();
        let mut low = peak;
        for _ in 0..100 {
            goro::sleep(Duration::from_millis(100));
            low = low.min(common::rss());
            if peak - low > (peak - base) / 2 {
                break;
            }
        }
        println!("grew={} released={}", peak - base, peak - low);
        burst();
    });
}

/// Runs the test `name` as a child with one worker (so every coroutine of
/// a burst is live at once) and returns the bytes its burst grew RSS by
/// and the bytes given back after.
fn memory_given_back(name: &str) -> (usize, usize) {
    let out = run_child(name, &[("GORO_WORKERS", "1")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let field = |name: &str| -> usize {
        stdout(&out)
            .split(&format!("{name}="))
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("the child reports {name}: {}", stdout(&out)))
    };
    (field("grew"), field("released"))
}

/// Stack bytes each coroutine of `stack_burst` writes.
const STACK_BURST_BYTES: usize = 64 * 1024;

/// Runs `n` coroutines that each write `STACK_BURST_BYTES` of their stack
/// and wait until all have, then end together.
fn stack_burst(n: usize) {
    let started: &'static goro::sync::WaitGroup = Box::leak(Box::new(goro::sync::WaitGroup::new()));
    let ended: &'static goro::sync::WaitGroup = Box::leak(Box::new(goro::sync::WaitGroup::new()));
    let (gate, opened) = goro::chan::chan::<()>(0);
    started.add(n);
    ended.add(n);
    for _ in 0..n {
        let opened = opened.clone();
        goro::go!(move || {
            let mut frame = [1u8; STACK_BURST_BYTES];
            std::hint::black_box(&mut frame);
            started.done();
            let _ = opened.recv();
            std::hint::black_box(&frame);
            ended.done();
        });
    }
    started.wait();
    drop(gate);
    ended.wait();
}
