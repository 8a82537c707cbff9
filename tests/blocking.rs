//! `goro::blocking`: results, panics, plain threads, the pool keeping the
//! workers free, and the pool's cap (in a child process, since the runtime
//! is configured once per process).

use std::env;
use std::panic;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// Environment variable naming the scenario a re-executed test binary runs.
const SCENARIO: &str = "GORO_BLOCKING_SCENARIO";

fn pool_thread_name() -> String {
    thread::current().name().unwrap_or("").to_string()
}

#[test]
fn returns_the_result_from_a_pool_thread() {
    let (sum, name) =
        goro::run(|| goro::blocking(|| ((1..=10u64).sum::<u64>(), pool_thread_name())));
    assert_eq!(sum, 55);
    assert_eq!(name, "goro-blocking");
}

#[test]
fn panic_resumes_in_the_caller() {
    let caught = goro::run(|| {
        let r = panic::catch_unwind(|| goro::blocking(|| -> u32 { panic!("disk on fire") }));
        let payload = r.expect_err("the panic must reach the caller");
        let msg = payload.downcast_ref::<&str>().copied().unwrap_or("");
        // The coroutine goes on working after the panic.
        (msg.to_string(), goro::blocking(|| 7))
    });
    assert_eq!(caught, ("disk on fire".to_string(), 7));
}

#[test]
fn plain_thread_calls_inline() {
    let me = thread::current().id();
    let (v, ran_on) = goro::blocking(|| (3 * 4, thread::current().id()));
    assert_eq!(v, 12);
    assert_eq!(
        ran_on, me,
        "outside the runtime the call runs on the caller's thread"
    );
}

/// 1,000 coroutines each hold a pool thread in a 200 ms sleep; meanwhile a
/// coroutine that ticks every 10 ms must keep ticking: the workers are free.
#[test]
fn many_concurrent_calls_keep_the_workers_free() {
    const CALLS: usize = 1000;
    let ticks_seen = goro::run(|| {
        let ticks = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (ticks, stop) = (ticks.clone(), stop.clone());
            goro::go!(move || {
                while !stop.load(Ordering::Relaxed) {
                    goro::sleep(Duration::from_millis(10));
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let calls: Vec<_> = (0..CALLS)
            .map(|_| {
                let ticks = ticks.clone();
                goro::go!(move || {
                    goro::blocking(move || {
                        let before = ticks.load(Ordering::Relaxed);
                        thread::sleep(Duration::from_millis(200));
                        let during = ticks.load(Ordering::Relaxed) - before;
                        (during, pool_thread_name())
                    })
                })
            })
            .collect();
        let mut seen: Vec<usize> = calls
            .into_iter()
            .map(|h| {
                let (during, name) = h.join().unwrap();
                assert_eq!(name, "goro-blocking");
                during
            })
            .collect();
        stop.store(true, Ordering::Relaxed);
        ticker.join().unwrap();
        seen.sort_unstable();
        seen
    });
    assert_eq!(ticks_seen.len(), CALLS);
    // A free worker ticks about 20 times in 200 ms; were the sleeps held by
    // the workers, the ticker would get a turn at most once or twice per
    // sleep. 3 leaves room for a loaded 2-core machine.
    let median = ticks_seen[CALLS / 2];
    assert!(
        median >= 3,
        "the ticker stalled while blocking calls ran: median {median} ticks per 200 ms call"
    );
}

/// Runs `calls` concurrent calls that each sleep `nap` on the pool; returns
/// how many ran at once at the peak.
fn peak_concurrency(calls: usize, nap: Duration) -> usize {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..calls)
        .map(|_| {
            let (running, peak) = (running.clone(), peak.clone());
            goro::go!(move || {
                goro::blocking(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    thread::sleep(nap);
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    peak.load(Ordering::SeqCst)
}

/// A burst of calls that finds threads idle must still grow the pool, not
/// queue the whole burst behind the idle threads (which count as idle until
/// they wake).
#[test]
fn burst_after_idle_grows_the_pool() {
    let peak = goro::run(|| {
        peak_concurrency(4, Duration::from_millis(20));
        peak_concurrency(64, Duration::from_millis(100))
    });
    // All 64 calls are submitted within a few milliseconds and each sleeps
    // 100 ms, so nearly all overlap; a pool that only used the 4 idle
    // threads would peak near 4.
    assert!(peak > 16, "peak concurrency {peak} for a burst of 64 calls");
}

/// Runs `scenario` in a fresh copy of this test binary, where the runtime
/// has not started yet, and fails if it fails.
fn in_child(scenario: &str) {
    let out = Command::new(env::current_exe().unwrap())
        .args([scenario, "--exact", "--nocapture", "--test-threads=1"])
        .env(SCENARIO, scenario)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scenario {scenario} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_child(scenario: &str) -> bool {
    env::var(SCENARIO).as_deref() == Ok(scenario)
}

/// With `blocking_threads(2)`, no more than two calls run at once; the rest
/// wait their turn and complete.
#[test]
fn cap_limits_concurrent_calls() {
    if !is_child("cap_limits_concurrent_calls") {
        return in_child("cap_limits_concurrent_calls");
    }
    goro::runtime::Builder::new()
        .blocking_threads(2)
        .start()
        .unwrap();
    let peak = goro::run(|| peak_concurrency(8, Duration::from_millis(30)));
    assert!(
        (1..=2).contains(&peak),
        "peak concurrency {peak} with a cap of 2"
    );
}

#[test]
fn zero_cap_is_refused() {
    if !is_child("zero_cap_is_refused") {
        return in_child("zero_cap_is_refused");
    }
    let err = goro::runtime::Builder::new()
        .blocking_threads(0)
        .start()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("blocking_threads"), "{err}");
}

/// A job that panics leaves its pool thread alive (the panic is caught on
/// it and resumes in the caller), and the pool goes on serving. Pool
/// threads run at a lower priority than the workers.
#[test]
fn a_panicking_job_leaves_its_pool_thread_serving() {
    if !is_child("a_panicking_job_leaves_its_pool_thread_serving") {
        return in_child("a_panicking_job_leaves_its_pool_thread_serving");
    }
    let nice = || {
        // SAFETY: getpriority reads only its integer arguments; on Linux,
        // who = 0 is the calling thread.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    };
    let gettid = || {
        // SAFETY: gettid has no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_gettid) }
    };
    let (tid, msg, after, pool_nice, worker_nice) = goro::run(move || {
        let r = panic::catch_unwind(|| goro::blocking(move || -> () { panic!("{}", gettid()) }));
        let payload = r.expect_err("the panic must reach the caller");
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        let tid: i64 = msg.parse().expect("the panicking thread's id");
        let after = goro::blocking(|| 7);
        (tid, msg, after, goro::blocking(nice), nice())
    });
    assert_eq!(msg, tid.to_string());
    assert!(
        std::path::Path::new(&format!("/proc/self/task/{tid}")).exists(),
        "the pool thread that ran the panicking job is gone"
    );
    assert_eq!(after, 7, "the pool serves on");
    assert!(
        pool_nice > worker_nice,
        "pool nice {pool_nice}, worker nice {worker_nice}"
    );
}

/// One coroutine making calls one after another keeps one pool thread
/// busy, not one per call: a thread announces itself idle before it hands
/// its result over, so the next call finds it.
#[test]
fn calls_in_a_row_reuse_the_pool_thread() {
    if !is_child("calls_in_a_row_reuse_the_pool_thread") {
        return in_child("calls_in_a_row_reuse_the_pool_thread");
    }
    let threads = goro::run(|| {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(goro::blocking(|| thread::current().id()));
        }
        seen.len()
    });
    // Now and then a thread claims its own announcement back just as the
    // next call looks for it, and that call starts another: a few, never
    // one per call.
    assert!(
        threads <= 10,
        "{threads} pool threads for 200 calls in a row"
    );
}

/// 100 coroutines on two workers making short blocking calls that burn CPU
/// (the pool's threads crowd the cores, as a database client's do): every
/// call completes, and no worker is reported held in a futex, as it was
/// when submitting took a lock that a preempted pool thread held. (Other
/// reports may come on a machine loaded enough to deschedule a worker; the
/// test does not time anything.)
#[test]
fn submitting_under_load_never_holds_a_worker_in_a_lock() {
    const SCENARIO_NAME: &str = "submitting_under_load_never_holds_a_worker_in_a_lock";
    if is_child(SCENARIO_NAME) {
        let done = goro::run(|| {
            let callers: Vec<_> = (0..100)
                .map(|_| {
                    goro::spawn(|| {
                        for _ in 0..20 {
                            goro::blocking(|| {
                                let end = std::time::Instant::now() + Duration::from_micros(200);
                                while std::time::Instant::now() < end {
                                    std::hint::spin_loop();
                                }
                                thread::sleep(Duration::from_millis(1));
                            });
                        }
                        20
                    })
                })
                .collect();
            callers
                .into_iter()
                .map(|c| c.join().unwrap())
                .sum::<usize>()
        });
        println!("calls={done}");
        return;
    }
    let out = Command::new(env::current_exe().unwrap())
        .args([SCENARIO_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(SCENARIO, SCENARIO_NAME)
        .env("GORO_WORKERS", "2")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("calls=2000"), "{stdout}");
    assert!(!stderr.contains("blocked in futex"), "{stderr}");
}
