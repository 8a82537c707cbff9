//! The monitor: a held worker is reported by name, and new work runs anyway.

mod common;
use common::{child_scenario, run_child, stderr, stdout};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// With one worker, a coroutine that sleeps its thread for 500 ms must not
/// stop a coroutine spawned afterwards from ticking every 10 ms (a spare
/// worker runs it), and the warning names the sleeping coroutine.
#[test]
fn a_held_worker_is_reported_and_new_work_still_runs() {
    if child_scenario().is_some() {
        let sleeper = goro::Builder::new()
            .name("sleepy")
            .spawn(|| std::thread::sleep(Duration::from_millis(500)))
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
    assert_eq!(
        err.matches("has held worker").count(),
        1,
        "one warning per episode: {err}"
    );
}

/// A zero threshold turns the watch off: no warning.
#[test]
fn a_zero_threshold_turns_the_watch_off() {
    if child_scenario().is_some() {
        goro::runtime::Builder::new()
            .hold_threshold(Duration::ZERO)
            .start()
            .unwrap();
        goro::run(|| std::thread::sleep(Duration::from_millis(300)));
        return;
    }
    let out = run_child(
        "a_zero_threshold_turns_the_watch_off",
        &[("GORO_WORKERS", "1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("has held worker"),
        "{}",
        stderr(&out)
    );
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
        // No spare worker may start while the spawn loop holds the only
        // worker: all N cells must be live at once.
        goro::runtime::Builder::new()
            .hold_threshold(Duration::ZERO)
            .start()
            .unwrap();
        goro::run(|| {
            let base = common::rss();
            burst(N);
            let peak = common::rss();
            let mut low = peak;
            for _ in 0..100 {
                goro::sleep(Duration::from_millis(100));
                low = low.min(common::rss());
                if peak - low > (peak - base) / 2 {
                    break;
                }
            }
            burst(N);
            println!("grew={} released={}", peak - base, peak - low);
        });
        return;
    }
    let out = run_child(
        "the_monitor_gives_back_the_memory_of_a_burst",
        &[("GORO_WORKERS", "1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let field = |name: &str| -> usize {
        stdout(&out)
            .split(&format!("{name}="))
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("the child reports {name}: {}", stdout(&out)))
    };
    let (grew, released) = (field("grew"), field("released"));
    // The cells alone are 300,000 x 128 bytes; the depot keeps 4,096.
    assert!(grew >= N * 100, "the burst grew RSS by only {grew} bytes");
    assert!(released > grew / 2, "{released} of {grew} bytes given back");
}
