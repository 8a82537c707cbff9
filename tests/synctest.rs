//! `goro::synctest`: bubbles of coroutines on a virtual clock.
//!
//! Every test asserts exact virtual instants: they are the same on every
//! run, however loaded the machine. Tests that would take minutes or hours
//! of real time if the clock were real run under `common::limit`, which
//! fails them after a minute instead.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::limit;
use goro::chan::{RecvTimeoutError, chan};
use goro::context::{self, Context, ContextError};
use goro::sync::{Condvar, Mutex, Semaphore, WaitGroup};
use goro::synctest;
use goro::time::{Ticker, Timer, after, after_func, now, sleep};

const SEC: Duration = Duration::from_secs(1);

/// The message of a panic payload.
fn message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p
            .downcast::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

#[test]
fn an_hour_of_sleep_passes_at_once_and_exactly() {
    let elapsed = limit(|| {
        synctest::run(|| {
            let start = now();
            sleep(3600 * SEC);
            now() - start
        })
    });
    assert_eq!(elapsed, 3600 * SEC);
}

#[test]
fn the_clock_stands_still_while_a_member_runs() {
    synctest::run(|| {
        let start = now();
        // Real time passes; virtual time does not.
        std::thread::sleep(Duration::from_millis(5));
        goro::yield_now();
        assert_eq!(now(), start);
        sleep(SEC);
        assert_eq!(now() - start, SEC);
    });
}

#[test]
fn a_context_timeout_cancels_at_exactly_its_deadline() {
    limit(|| {
        synctest::run(|| {
            let start = now();
            let (ctx, _cancel) = context::with_timeout(&Context::background(), 10 * SEC);
            assert_eq!(ctx.deadline(), Some(start + 10 * SEC));
            assert_eq!(ctx.err(), None);
            assert!(ctx.done().recv().is_err(), "done is closed, never sent on");
            assert_eq!(now() - start, 10 * SEC);
            assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
        })
    });
}

#[test]
fn a_ticker_ticks_at_exact_virtual_instants() {
    limit(|| {
        synctest::run(|| {
            let start = now();
            let ticker = Ticker::new(60 * SEC).unwrap();
            for k in 1..=5u32 {
                let tick = ticker.channel().recv().unwrap();
                assert_eq!(tick, start + k * 60 * SEC, "tick {k}");
                assert_eq!(now(), tick);
            }
            ticker.stop();
        })
    });
}

#[test]
fn timers_fire_in_order_of_deadline() {
    let order = synctest::run(|| {
        let start = now();
        let (tx, rx) = chan(8);
        for (name, secs) in [("c", 3), ("a", 1), ("d", 4), ("b", 2)] {
            let tx = tx.clone();
            goro::go!(move || {
                sleep(secs * SEC);
                tx.send((name, now() - start)).unwrap();
            });
        }
        drop(tx);
        rx.iter().collect::<Vec<_>>()
    });
    assert_eq!(
        order,
        [("a", SEC), ("b", 2 * SEC), ("c", 3 * SEC), ("d", 4 * SEC)]
    );
}

#[test]
fn select_and_channel_timeouts_follow_the_clock() {
    limit(|| {
        synctest::run(|| {
            let start = now();
            let (tx, rx) = chan::<u32>(0);
            goro::select! {
                recv(rx) -> _v => panic!("nothing is sent"),
                timeout(5 * SEC) => {}
            }
            assert_eq!(now() - start, 5 * SEC);
            assert_eq!(rx.recv_timeout(7 * SEC), Err(RecvTimeoutError::Timeout));
            assert_eq!(now() - start, 12 * SEC);
            goro::select! {
                recv(rx) -> _v => panic!("nothing is sent"),
                recv(after(3 * SEC)) -> t => assert_eq!(t.unwrap(), start + 15 * SEC),
            }
            // A sender in the bubble wins the race against a later timeout.
            goro::go!(move || {
                sleep(SEC);
                tx.send(7).unwrap();
            });
            assert_eq!(rx.recv_timeout(60 * SEC), Ok(7));
            assert_eq!(now() - start, 16 * SEC);
        })
    });
}

#[test]
fn timers_reset_and_stopped_follow_the_clock() {
    synctest::run(|| {
        let start = now();
        let timer = Timer::new(10 * SEC);
        timer.reset(3 * SEC);
        assert_eq!(timer.channel().recv().unwrap(), start + 3 * SEC);
        let stopped = Timer::new(SEC);
        assert!(stopped.stop());
        sleep(2 * SEC);
        assert_eq!(now() - start, 5 * SEC);
        assert!(
            stopped.channel().try_recv().is_err(),
            "a stopped timer sends nothing"
        );
    });
}

#[test]
fn after_func_runs_at_its_instant_in_a_member_the_bubble_waits_for() {
    let ran = Arc::new(AtomicUsize::new(0));
    let seen = ran.clone();
    synctest::run(move || {
        let start = now();
        let (tx, rx) = chan(1);
        after_func(4 * SEC, move || {
            let _ = tx.try_send(now() - start);
            // The function's coroutine is a member: its sleep is virtual,
            // and `run` waits for it.
            sleep(100 * SEC);
            seen.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(rx.recv(), Ok(4 * SEC));
    });
    assert_eq!(ran.load(Ordering::SeqCst), 1, "run waited for the function");
}

#[test]
fn run_waits_for_every_member_and_context_after_funcs_join_the_bubble() {
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let root_elapsed = synctest::run(move || {
        let start = now();
        let (ctx, _cancel) = context::with_timeout(&Context::background(), 2 * SEC);
        let d2 = d.clone();
        context::after_func(&ctx, move || {
            sleep(SEC);
            assert_eq!(now() - start, 3 * SEC);
            d2.fetch_add(1, Ordering::SeqCst);
        });
        goro::go!(move || {
            sleep(50 * SEC);
            d.fetch_add(1, Ordering::SeqCst);
        });
        now() - start
    });
    assert_eq!(root_elapsed, Duration::ZERO);
    assert_eq!(done.load(Ordering::SeqCst), 2);
}

#[test]
fn sync_timeouts_follow_the_clock() {
    limit(|| {
        synctest::run(|| {
            let start = now();
            let sem = Semaphore::new(0);
            assert!(sem.acquire_timeout(30 * SEC).is_none());
            assert_eq!(now() - start, 30 * SEC);

            let pair = Arc::new((Mutex::new(false), Condvar::new()));
            let (lock, cvar) = &*pair;
            let guard = lock.lock();
            let (guard, result) = cvar.wait_timeout(guard, 45 * SEC);
            assert!(result.timed_out());
            drop(guard);
            assert_eq!(now() - start, 75 * SEC);

            // Members blocked on a wait group and a lock are durably
            // blocked too: the clock moves on to the sleeper.
            let wg = WaitGroup::new();
            wg.add(1);
            let wg2 = wg.clone();
            let p2 = pair.clone();
            let held = pair.0.lock();
            let locker = goro::go!(move || {
                let _g = p2.0.lock();
                now()
            });
            goro::go!(move || {
                sleep(5 * SEC);
                wg2.done();
            });
            wg.wait();
            assert_eq!(now() - start, 80 * SEC);
            drop(held);
            assert_eq!(locker.join().unwrap(), start + 80 * SEC);
        })
    });
}

#[test]
fn time_stands_still_while_a_member_waits_on_the_outside_world() {
    synctest::run(|| {
        let start = now();
        let sleeper = goro::go!(move || {
            sleep(SEC);
            now() - start
        });
        // A blocking call is not a durable block: the sleeper's timer must
        // not fire while it runs, however long it takes in real time.
        goro::blocking(|| std::thread::sleep(Duration::from_millis(20)));
        assert_eq!(now(), start);
        assert_eq!(sleeper.join().unwrap(), SEC);
    });
}

#[test]
fn bubbles_on_parallel_threads_keep_their_own_clocks() {
    let run = |step: u64| {
        std::thread::spawn(move || {
            synctest::run(move || {
                let start = now();
                for k in 1..=20 {
                    sleep(Duration::from_secs(step));
                    assert_eq!(now() - start, Duration::from_secs(step * k));
                }
                now() - start
            })
        })
    };
    let (a, b) = (run(7), run(11));
    assert_eq!(a.join().unwrap(), Duration::from_secs(140));
    assert_eq!(b.join().unwrap(), Duration::from_secs(220));
}

#[test]
fn real_time_outside_a_bubble_is_unaffected() {
    let before = Instant::now();
    let outside = now();
    assert!(outside >= before && outside <= Instant::now());
    let (tx, rx) = chan(1);
    // A coroutine outside the bubble keeps real time while the bubble
    // jumps a day ahead.
    let outsider = goro::spawn(move || {
        let start = Instant::now();
        let _ = rx.recv();
        let t = now();
        (t >= start, t <= Instant::now())
    });
    let virtual_day = synctest::run(|| {
        let start = now();
        sleep(86_400 * SEC);
        now() - start
    });
    assert_eq!(virtual_day, 86_400 * SEC);
    tx.send(()).unwrap();
    assert_eq!(outsider.join().unwrap(), (true, true));
    assert!(Instant::now() < before + 86_400 * SEC);
}

#[test]
fn runs_from_a_coroutine_too() {
    let elapsed = goro::run(|| {
        synctest::run(|| {
            let start = now();
            sleep(9 * SEC);
            now() - start
        })
    });
    assert_eq!(elapsed, 9 * SEC);
}

/// A ticker nobody reads, while every member is blocked on something no
/// timer ends, would advance the clock forever on a worker's own stack:
/// after enough advances that wake nobody, the bubble is deadlocked.
#[test]
fn a_ticker_nobody_reads_does_not_hold_a_worker_forever() {
    let err = panic::catch_unwind(|| {
        synctest::run(|| {
            let _ticker = Ticker::new(Duration::from_millis(1));
            let (_tx, rx) = chan::<()>(0);
            let _ = rx.recv();
        })
    })
    .unwrap_err();
    assert_eq!(
        message(err),
        "goro: synctest: deadlock: all 1 coroutines in the bubble are blocked"
    );
}

#[test]
fn a_deadlocked_bubble_panics_naming_the_stuck_coroutines() {
    let err = panic::catch_unwind(|| {
        synctest::run(|| {
            let (tx, rx) = chan::<()>(0);
            let _h = goro::go!(move || {
                let _keep = &tx;
                goro::time::sleep(SEC);
                let (_tx2, rx2) = chan::<()>(0);
                let _ = rx2.recv();
            });
            // A stopped timer cannot wake anyone: it does not count.
            let t = Timer::new(5 * SEC);
            t.stop();
            let _ = rx.recv();
        })
    })
    .unwrap_err();
    assert_eq!(
        message(err),
        "goro: synctest: deadlock: all 2 coroutines in the bubble are blocked"
    );
}

#[test]
fn a_root_that_leaves_blocked_members_behind_panics() {
    let err = panic::catch_unwind(|| {
        synctest::run(|| {
            goro::go!(|| {
                // Holds its own sender, so the channel never closes.
                let (_tx, rx) = chan::<()>(0);
                let _ = rx.recv();
            });
        })
    })
    .unwrap_err();
    assert_eq!(
        message(err),
        "goro: synctest: the bubble's root returned, but 1 coroutines in it remain blocked"
    );
}

#[test]
fn the_roots_panic_resumes_in_the_caller() {
    let err = panic::catch_unwind(AssertUnwindSafe(|| {
        synctest::run(|| {
            sleep(SEC);
            panic!("boom at {:?}", SEC);
        })
    }))
    .unwrap_err();
    assert_eq!(message(err), "boom at 1s");
}

#[test]
fn bubbles_do_not_nest() {
    let err = synctest::run(|| {
        goro::spawn(|| synctest::run(|| ()))
            .join()
            .unwrap_err()
            .to_string()
    });
    assert!(err.contains("bubbles do not nest"), "{err}");
}
