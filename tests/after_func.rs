//! `goro::time::after_func` and its `FuncTimer`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use goro::chan::{RecvTimeoutError, chan};
use goro::time::{after_func, sleep};

const MS: Duration = Duration::from_millis(1);
/// Generous bound for "eventually": only a starved machine takes this long.
const EVENTUALLY: Duration = Duration::from_secs(10);

#[test]
fn runs_in_a_new_coroutine_never_early() {
    goro::run(|| {
        let me = goro::current().unwrap().id();
        let (tx, rx) = chan(1);
        let start = Instant::now();
        after_func(20 * MS, move || {
            let id = goro::current().map(|c| c.id());
            let _ = tx.try_send((id, Instant::now()));
        });
        let (id, ran_at) = rx.recv_timeout(EVENTUALLY).unwrap();
        assert!(id.is_some(), "f runs in a coroutine");
        assert_ne!(id, Some(me), "a new one");
        assert!(ran_at >= start + 20 * MS);
    });
}

#[test]
fn stop_prevents_the_call() {
    goro::run(|| {
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let timer = after_func(20 * MS, move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert!(timer.stop(), "stopped before it ran");
        assert!(!timer.stop());
        sleep(60 * MS);
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn stop_after_the_call_started_reports_false_and_reset_runs_it_again() {
    goro::run(|| {
        let (tx, rx) = chan(2);
        let timer = after_func(5 * MS, move || {
            let _ = tx.try_send(());
        });
        rx.recv_timeout(EVENTUALLY).unwrap();
        assert!(!timer.stop(), "it already ran");
        assert!(!timer.reset(5 * MS), "nothing was pending");
        rx.recv_timeout(EVENTUALLY).unwrap();
        assert_eq!(rx.recv_timeout(30 * MS), Err(RecvTimeoutError::Timeout));
    });
}

#[test]
fn reset_moves_the_call() {
    goro::run(|| {
        let (tx, rx) = chan(1);
        let timer = after_func(10 * MS, move || {
            let _ = tx.try_send(Instant::now());
        });
        let reset_at = Instant::now();
        assert!(timer.reset(50 * MS), "it was pending");
        let ran_at = rx.recv_timeout(EVENTUALLY).unwrap();
        assert!(ran_at >= reset_at + 50 * MS);
    });
}

#[test]
fn works_from_a_plain_thread() {
    let (tx, rx) = chan(1);
    std::thread::spawn(move || {
        after_func(10 * MS, move || {
            let _ = tx.try_send(goro::current().is_some());
        });
    })
    .join()
    .unwrap();
    assert_eq!(rx.recv_timeout(EVENTUALLY), Ok(true));
}

mod common;

#[test]
fn stopped_func_timers_give_their_memory_back() {
    if common::is_child("stopped_func_timers_give_their_memory_back") {
        goro::run(|| {
            let growth = common::steady_rss_growth(8, || {
                for _ in 0..100_000 {
                    let t = after_func(Duration::from_secs(3600), || unreachable!());
                    assert!(t.stop());
                }
            });
            assert!(growth < common::RSS_SLACK, "grew by {growth} bytes");
        });
        return;
    }
    common::child("stopped_func_timers_give_their_memory_back", &[]);
}

/// Records where its `Drop` ran (1: in a coroutine, 2: elsewhere), then
/// panics.
struct PanicsOnDrop(Arc<std::sync::atomic::AtomicU8>);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        let place = if goro::current().is_some() { 1 } else { 2 };
        self.0.store(place, Ordering::SeqCst);
        panic!("PanicsOnDrop panics in drop");
    }
}

/// The function of a stopped timer is dropped when the runtime lets go of
/// it (its stale heap entry comes due, on a worker): in a coroutine, where
/// its panic is caught, never on the worker's own stack.
#[test]
fn function_is_dropped_in_a_coroutine() {
    if common::is_child("function_is_dropped_in_a_coroutine") {
        goro::run(|| {
            let ran = Arc::new(std::sync::atomic::AtomicU8::new(0));
            let probe = PanicsOnDrop(ran.clone());
            let t = after_func(MS, move || {
                let _ = &probe;
            });
            assert!(t.stop());
            drop(t);
            let give_up = Instant::now() + EVENTUALLY;
            while ran.load(Ordering::SeqCst) == 0 && Instant::now() < give_up {
                sleep(MS);
            }
            assert_eq!(ran.load(Ordering::SeqCst), 1, "dropped in a coroutine");
            assert_eq!(goro::spawn(|| 7).join().unwrap(), 7, "the worker lives");
        });
        return;
    }
    common::child(
        "function_is_dropped_in_a_coroutine",
        &[("GORO_WORKERS", "1")],
    );
}
