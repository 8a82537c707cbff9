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
