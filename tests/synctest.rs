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
            // The function's coroutine is a member: `run` waits for it,
            // though the root has returned meanwhile.
            for _ in 0..100 {
                goro::yield_now();
            }
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
        let (tx, rx) = chan::<()>(0);
        // Outlives the root, without waiting on time.
        goro::go!(move || {
            rx.recv().unwrap();
            for _ in 0..100 {
                goro::yield_now();
            }
            d.fetch_add(1, Ordering::SeqCst);
        });
        sleep(5 * SEC);
        tx.send(()).unwrap();
        now() - start
    });
    assert_eq!(root_elapsed, 5 * SEC);
    assert_eq!(done.load(Ordering::SeqCst), 2);
}

/// Go's TestTimerAfterBubbleExit: timers still pending when the last
/// member ends never fire.
#[test]
fn a_timer_pending_when_the_bubble_ends_never_fires() {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    synctest::run(move || {
        after_func(SEC, move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
    });
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "the timer ran after its bubble"
    );
}

/// Go's TestTimerRunsImmediately: a timer armed for now is ready when
/// `new` returns, without waiting for the bubble to block.
#[test]
fn a_zero_timer_is_ready_at_once() {
    synctest::run(|| {
        let start = now();
        let tm = Timer::new(Duration::ZERO);
        match tm.channel().try_recv() {
            Ok(got) => assert_eq!(got, start),
            Err(e) => panic!("0-duration timer channel is not readable: {e:?}"),
        }
    });
}

/// Go's TestTimerRanInPast: reading a timer whose instant passed while the
/// reader slept gets that instant, at once.
#[test]
fn a_timer_read_after_its_instant_gives_that_instant() {
    synctest::run(|| {
        let delay = SEC;
        let want = now() + delay;
        let tm = Timer::new(delay);
        sleep(2 * delay);
        match tm.channel().try_recv() {
            Ok(got) => assert_eq!(got, want),
            Err(e) => panic!("the fired timer's channel is not readable: {e:?}"),
        }
        // Go's TestTimerReadAfterDeadline: the same with a blocking read.
        let want = now() + delay;
        let tm = Timer::new(delay);
        sleep(2 * delay);
        assert_eq!(tm.channel().recv(), Ok(want));
    });
}

/// Go's TestTimerReadBeforeDeadline and TestTimerReset.
#[test]
fn timer_reads_and_resets_land_on_exact_instants() {
    synctest::run(|| {
        let start = now();
        let tm = Timer::new(5 * SEC);
        tm.channel().recv().unwrap();
        assert_eq!(now() - start, 5 * SEC);

        let start = now();
        let tm = Timer::new(SEC);
        assert_eq!(tm.channel().recv(), Ok(start + SEC));
        tm.reset(2 * SEC);
        assert_eq!(tm.channel().recv(), Ok(start + 3 * SEC));
        tm.reset(3 * SEC);
        sleep(SEC);
        tm.reset(3 * SEC);
        assert_eq!(tm.channel().recv(), Ok(start + 7 * SEC));
    });
}

/// Go's TestAfterFuncRunsImmediately: a function armed for now starts
/// while its armer runs on, never blocking.
#[test]
fn a_zero_after_func_runs_while_its_armer_spins() {
    limit(|| {
        synctest::run(|| {
            let ran = Arc::new(AtomicUsize::new(0));
            let r = ran.clone();
            after_func(Duration::ZERO, move || {
                r.store(1, Ordering::SeqCst);
            });
            while ran.load(Ordering::SeqCst) == 0 {
                goro::yield_now();
            }
        })
    });
}

/// Go's TestTimeAfter: membership passes through an `after_func` to what
/// its function spawns, and `wait` waits for them.
#[test]
fn after_func_membership_reaches_what_it_spawns() {
    synctest::run(|| {
        let i = Arc::new(AtomicUsize::new(0));
        let i2 = i.clone();
        after_func(SEC, move || {
            i2.fetch_add(1, Ordering::SeqCst);
            let i3 = i2.clone();
            goro::go!(move || {
                sleep(SEC);
                i3.fetch_add(1, Ordering::SeqCst);
            });
        });
        sleep(3 * SEC);
        synctest::wait();
        assert_eq!(i.load(Ordering::SeqCst), 2);
    });
}

/// Go's TestTimerNondeterminism: timers due at the same instant do not
/// always fire in the same order.
#[test]
fn timers_due_at_one_instant_fire_in_either_order() {
    synctest::run(|| {
        let (mut seen1, mut seen2) = (false, false);
        for _ in 0..1000 {
            let tm1 = Timer::new(Duration::from_nanos(1));
            let tm2 = Timer::new(Duration::from_nanos(1));
            goro::select! {
                recv(tm1.channel()) -> _t => seen1 = true,
                recv(tm2.channel()) -> _t => seen2 = true,
            }
            if seen1 && seen2 {
                return;
            }
            synctest::wait();
        }
        panic!("after 1000 iterations, seen timer1: {seen1}, timer2: {seen2}; want both");
    });
}

/// Go's TestSleepNondeterminism: coroutines sleeping to the same instant do
/// not always run in the same order.
#[test]
fn sleepers_to_one_instant_wake_in_either_order() {
    synctest::run(|| {
        let (mut seen1, mut seen2) = (false, false);
        for _ in 0..1000 {
            let first = Arc::new(AtomicUsize::new(0));
            for k in [1, 2] {
                let first = first.clone();
                goro::go!(move || {
                    sleep(Duration::from_nanos(1));
                    let _ = first.compare_exchange(0, k, Ordering::SeqCst, Ordering::SeqCst);
                });
            }
            sleep(Duration::from_nanos(1));
            synctest::wait();
            match first.load(Ordering::SeqCst) {
                1 => seen1 = true,
                2 => seen2 = true,
                v => panic!("first = {v}, want 1 or 2"),
            }
            if seen1 && seen2 {
                return;
            }
            synctest::wait();
        }
        panic!("after 1000 iterations, seen coroutine 1: {seen1}, 2: {seen2}; want both");
    });
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

/// Go's TestDeadlockTicker: time stops when the root returns, so a member
/// left reading a ticker is blocked for good, not ticked forever.
#[test]
fn a_ticker_left_running_after_the_root_returns_is_a_deadlock() {
    let ticked = Arc::new(AtomicUsize::new(0));
    let t = ticked.clone();
    let err = panic::catch_unwind(AssertUnwindSafe(|| {
        limit(|| {
            synctest::run(move || {
                goro::go!(move || {
                    let ticker = Ticker::new(SEC).unwrap();
                    if ticker.channel().recv().is_ok() {
                        t.fetch_add(1, Ordering::SeqCst);
                    }
                });
            })
        })
    }))
    .unwrap_err();
    assert_eq!(
        message(err),
        "goro: synctest: the bubble's root returned, but 1 coroutines in it remain blocked"
    );
    assert_eq!(
        ticked.load(Ordering::SeqCst),
        0,
        "the ticker unexpectedly ticked"
    );
}

/// The same for a sleep begun after the root returned.
#[test]
fn a_sleep_after_the_root_returns_is_a_deadlock() {
    let err = panic::catch_unwind(|| {
        synctest::run(|| {
            let (tx, rx) = chan::<()>(0);
            goro::go!(move || {
                rx.recv().unwrap();
                sleep(SEC);
            });
            tx.send(()).unwrap();
        })
    })
    .unwrap_err();
    assert_eq!(
        message(err),
        "goro: synctest: the bubble's root returned, but 1 coroutines in it remain blocked"
    );
}

/// Go's TestDeadlockRoot.
#[test]
fn a_root_blocked_for_good_is_a_deadlock() {
    let err = panic::catch_unwind(|| {
        synctest::run(|| {
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

/// Go's TestRunEmpty, TestSimpleWait and TestGoroutineWait.
#[test]
fn wait_returns_when_nothing_else_runs() {
    synctest::run(|| {});
    synctest::run(synctest::wait);
    synctest::run(|| {
        goro::go!(|| {});
        synctest::wait();
    });
}

/// Go's TestWait: a chain of 100 coroutines, each spawning the next and
/// handing it a count, has run to its end when `wait` returns.
#[test]
fn wait_waits_for_a_chain_of_coroutines() {
    fn link(rx: goro::chan::Receiver<u32>, tx: goro::chan::Sender<u32>, done: Arc<AtomicUsize>) {
        let count = rx.recv().unwrap();
        if count == 0 {
            done.store(1, Ordering::SeqCst);
        } else {
            let (rx2, tx2, d2) = (rx.clone(), tx.clone(), done.clone());
            goro::go!(move || link(rx2, tx2, d2));
            tx.send(count - 1).unwrap();
        }
    }
    // Go's TestMallocs runs the same 100 times.
    for _ in 0..100 {
        synctest::run(|| {
            let done = Arc::new(AtomicUsize::new(0));
            let (tx, rx) = chan::<u32>(0);
            let (rx2, tx2, d2) = (rx.clone(), tx.clone(), done.clone());
            goro::go!(move || link(rx2, tx2, d2));
            tx.send(100).unwrap();
            synctest::wait();
            assert_eq!(done.load(Ordering::SeqCst), 1, "done = false, want true");
        });
    }
}

/// Go's TestHappensBefore: `wait` returns after coroutines that exit,
/// coroutines that block, functions of timers due now, and coroutines of
/// such functions that block; `run` after everything.
#[test]
fn wait_orders_what_the_others_did_before_it() {
    let v1 = Arc::new(AtomicUsize::new(0));
    let v2 = Arc::new(AtomicUsize::new(0));
    let (a, b) = (v1.clone(), v2.clone());
    // Relaxed throughout: `wait` and `run` must give the order.
    let inc = |v: &Arc<AtomicUsize>| {
        let v = v.clone();
        move || {
            v.fetch_add(1, Ordering::Relaxed);
        }
    };
    synctest::run(move || {
        let (v1, v2) = (a, b);
        let get = |v: &Arc<AtomicUsize>| v.load(Ordering::Relaxed);
        inc(&v1)();
        inc(&v2)();
        goro::spawn(inc(&v1));
        goro::spawn(inc(&v2));
        synctest::wait();
        assert_eq!((get(&v1), get(&v2)), (2, 2));
        inc(&v1)();
        inc(&v2)();

        let (tx1, rx1) = chan::<()>(0);
        for v in [&v1, &v2] {
            let (f, rx) = (inc(v), rx1.clone());
            goro::go!(move || {
                f();
                let _ = rx.recv();
            });
        }
        synctest::wait();
        assert_eq!((get(&v1), get(&v2)), (4, 4));
        inc(&v1)();
        inc(&v2)();
        drop((tx1, rx1));

        after_func(Duration::ZERO, inc(&v1));
        after_func(Duration::ZERO, inc(&v2));
        synctest::wait();
        assert_eq!((get(&v1), get(&v2)), (6, 6));
        inc(&v1)();
        inc(&v2)();

        let (tx2, rx2) = chan::<()>(0);
        for v in [&v1, &v2] {
            let (f, rx) = (inc(v), rx2.clone());
            after_func(Duration::ZERO, move || {
                f();
                let _ = rx.recv();
            });
        }
        synctest::wait();
        assert_eq!((get(&v1), get(&v2)), (8, 8));
        inc(&v1)();
        inc(&v2)();
        drop((tx2, rx2));
    });
    let (a, b) = (v1.clone(), v2.clone());
    synctest::run(move || {
        goro::go!(move || {
            goro::spawn(inc(&a));
        });
        goro::go!(move || {
            goro::spawn(inc(&b));
        });
    });
    assert_eq!(v1.load(Ordering::Relaxed), 10);
    assert_eq!(v2.load(Ordering::Relaxed), 10);
}

/// Go's TestCond: a condvar signalled and broadcast by a sleeper.
#[test]
fn condvar_waits_follow_the_clock() {
    synctest::run(|| {
        let pair = Arc::new((Mutex::new(()), Condvar::new()));
        let start = now();
        let wait_time = Duration::from_millis(1);
        let p = pair.clone();
        goro::go!(move || {
            sleep(wait_time);
            {
                let _g = p.0.lock();
                p.1.notify_one();
            }
            sleep(wait_time);
            let _g = p.0.lock();
            p.1.notify_all();
        });
        let (lock, cvar) = &*pair;
        drop(cvar.wait(lock.lock()));
        assert_eq!(now() - start, wait_time);

        let waiter_done = Arc::new(AtomicUsize::new(0));
        let (p, w) = (pair.clone(), waiter_done.clone());
        goro::go!(move || {
            drop(p.1.wait(p.0.lock()));
            w.store(1, Ordering::SeqCst);
        });
        drop(cvar.wait(lock.lock()));
        synctest::wait();
        assert_eq!(waiter_done.load(Ordering::SeqCst), 1, "waiter not done");
        assert_eq!(now() - start, 2 * wait_time);
    });
}

/// Go's TestWaitGroupInBubble.
#[test]
fn a_wait_group_wait_lasts_exactly_its_sleepers_delay() {
    synctest::run(|| {
        let wg = WaitGroup::new();
        wg.add(1);
        let wg2 = wg.clone();
        goro::go!(move || {
            sleep(SEC);
            wg2.done();
        });
        let start = now();
        wg.wait();
        assert_eq!(now() - start, SEC);
    });
}

/// `wait` outside a bubble panics, as Go's does.
#[test]
fn wait_outside_a_bubble_panics() {
    let err = panic::catch_unwind(synctest::wait).unwrap_err();
    assert_eq!(
        message(err),
        "goro::synctest::wait: called outside a bubble"
    );
    let err = goro::run(|| goro::spawn(synctest::wait).join().unwrap_err().to_string());
    assert!(err.contains("called outside a bubble"), "{err}");
}

/// Two members in `wait` at once: the second panics, as Go's does, and the
/// first still returns. Both run until both are about to call `wait`, so
/// neither `wait` can return before the other is called.
#[test]
fn a_second_concurrent_wait_panics() {
    let results = synctest::run(|| {
        let ready = Arc::new(AtomicUsize::new(0));
        let members: Vec<_> = (0..2)
            .map(|_| {
                let ready = ready.clone();
                goro::spawn(move || {
                    ready.fetch_add(1, Ordering::SeqCst);
                    while ready.load(Ordering::SeqCst) < 2 {
                        goro::yield_now();
                    }
                    synctest::wait();
                })
            })
            .collect();
        members
            .into_iter()
            .map(|h| h.join().map_err(|e| e.to_string()))
            .collect::<Vec<_>>()
    });
    let panics: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(panics.len(), 1, "{results:?}");
    assert!(panics[0].contains("already waiting"), "{}", panics[0]);
}
