//! `goro::scope`: coroutines that borrow the caller's locals, all joined
//! before the scope returns, whatever happens in it.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

mod common;
use common::{child_scenario, limit, run_child, stderr, within};

/// Borrows locals mutably and shiftily from `scope`, in whatever context it
/// is called: each coroutine owns one slot, all read one shared slice.
fn fill_squares() -> Vec<u64> {
    let inputs: Vec<u64> = (0..64).collect();
    let mut out = vec![0u64; inputs.len()];
    let total = goro::scope(|s| {
        for (slot, x) in out.iter_mut().zip(&inputs) {
            s.spawn(move || {
                goro::yield_now();
                *slot = x * x;
            });
        }
        let sum = s.spawn(|| inputs.iter().sum::<u64>());
        sum.join().unwrap()
    });
    assert_eq!(total, 63 * 64 / 2);
    out
}

fn squares() -> Vec<u64> {
    (0..64u64).map(|x| x * x).collect()
}

#[test]
fn coroutines_borrow_locals_from_a_coroutine() {
    assert_eq!(within(fill_squares), squares());
}

#[test]
fn coroutines_borrow_locals_from_a_plain_thread() {
    // The scope's owner is a plain thread: its coroutines go through the
    // injector, and its wait blocks the thread.
    assert_eq!(limit(fill_squares), squares());
}

#[test]
fn unjoined_coroutines_are_finished_when_scope_returns() {
    for in_coroutine in [true, false] {
        let body = || {
            let done: Vec<AtomicBool> = (0..16).map(|_| AtomicBool::new(false)).collect();
            goro::scope(|s| {
                for (i, d) in done.iter().enumerate() {
                    s.spawn(move || {
                        goro::sleep(Duration::from_millis(1 + i as u64 % 4));
                        d.store(true, Ordering::Relaxed);
                    });
                }
            });
            done.iter().all(|d| d.load(Ordering::Relaxed))
        };
        let all = if in_coroutine {
            within(body)
        } else {
            limit(body)
        };
        assert!(
            all,
            "scope returned before its coroutines (in_coroutine: {in_coroutine})"
        );
    }
}

#[test]
fn a_result_may_borrow_from_the_environment() {
    within(|| {
        let text = String::from("alpha beta gamma");
        let words = goro::scope(|s| {
            let h = s.spawn(|| text.split(' ').collect::<Vec<&str>>());
            h.join().unwrap()
        });
        assert_eq!(words, ["alpha", "beta", "gamma"]);
    });
}

#[test]
fn the_closures_panic_resumes_after_every_coroutine_finished() {
    within(|| {
        let finished = AtomicUsize::new(0);
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            goro::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|| {
                        goro::sleep(Duration::from_millis(2));
                        finished.fetch_add(1, Ordering::Relaxed);
                    });
                }
                panic!("the scope's own closure failed");
            })
        }));
        let payload = caught.expect_err("the closure's panic goes on");
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"the scope's own closure failed")
        );
        assert_eq!(finished.load(Ordering::Relaxed), 8);
    });
}

#[test]
fn an_unjoined_panic_makes_the_scope_panic_after_the_others_finish() {
    within(|| {
        let finished = AtomicUsize::new(0);
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            goro::scope(|s| {
                s.spawn(|| panic!("one coroutine failed"));
                for _ in 0..4 {
                    s.spawn(|| {
                        goro::sleep(Duration::from_millis(2));
                        finished.fetch_add(1, Ordering::Relaxed);
                    });
                }
            })
        }));
        let payload = caught.expect_err("the scope panics");
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"a scoped coroutine panicked")
        );
        assert_eq!(finished.load(Ordering::Relaxed), 4);
    });
}

#[test]
fn a_handle_dropped_after_the_panic_still_fails_the_scope() {
    within(|| {
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            goro::scope(|s| {
                let h = s.spawn(|| -> u32 { panic!("failed before its handle went") });
                while !h.is_finished() {
                    goro::yield_now();
                }
                drop(h);
            })
        }));
        assert!(caught.is_err(), "the dropped panic fails the scope");
    });
}

#[test]
fn a_joined_panic_is_the_joiners_and_not_the_scopes() {
    within(|| {
        let text = String::from("bad input");
        let message = goro::scope(|s| {
            let h = goro::Builder::new()
                .name("parser")
                .spawn_scoped(s, || -> u32 { panic!("{text}") })
                .unwrap();
            let err = h.join().unwrap_err();
            assert!(err.is_panic());
            assert_eq!(err.coroutine().name(), Some("parser"));
            err.to_string()
        });
        assert!(message.ends_with("panicked: bad input"), "{message}");
    });
}

#[test]
fn results_nobody_joins_are_dropped_before_scope_returns() {
    struct CountsDrop<'a>(&'a AtomicUsize);
    impl Drop for CountsDrop<'_> {
        fn drop(&mut self) {
            goro::yield_now();
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    within(|| {
        let dropped = AtomicUsize::new(0);
        goro::scope(|s| {
            for i in 0..32 {
                let h = s.spawn(|| CountsDrop(&dropped));
                if i % 2 == 0 {
                    // Dropped at once: the coroutine drops its result.
                    drop(h);
                } else {
                    // Dropped once finished: the handle drops it.
                    while !h.is_finished() {
                        goro::yield_now();
                    }
                    drop(h);
                }
            }
        });
        assert_eq!(dropped.load(Ordering::Relaxed), 32);
    });
}

#[test]
fn scopes_nest_and_coroutines_spawn_into_their_scope() {
    within(|| {
        let outer = [1u64, 2, 3];
        let hits = AtomicUsize::new(0);
        let total = goro::scope(|s| {
            let h = s.spawn(|| {
                let inner = [10u64, 20];
                goro::scope(|s2| {
                    let a = s2.spawn(|| outer.iter().sum::<u64>());
                    let b = s2.spawn(|| inner.iter().sum::<u64>());
                    // A coroutine of the outer scope spawns into it.
                    s.spawn(|| hits.fetch_add(1, Ordering::Relaxed));
                    a.join().unwrap() + b.join().unwrap()
                })
            });
            s.spawn(|| {
                s.spawn(|| hits.fetch_add(1, Ordering::Relaxed));
            });
            h.join().unwrap()
        });
        assert_eq!(total, 36);
        assert_eq!(hits.load(Ordering::Relaxed), 2);
    });
}

#[test]
fn many_scoped_coroutines_spread_over_the_workers() {
    // Spawned from one coroutine, most are taken by other workers before
    // they start (with more than one worker): they still see the data.
    within(|| {
        let data: Vec<u64> = (1..=1000).collect();
        let sums = goro::scope(|s| {
            let handles: Vec<_> = data
                .chunks(10)
                .map(|chunk| s.spawn(move || chunk.iter().sum::<u64>()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<u64>>()
        });
        assert_eq!(sums.len(), 100);
        assert_eq!(sums.iter().sum::<u64>(), 500_500);
    });
}

#[test]
fn a_scope_left_open_when_main_returns_is_never_torn_down() {
    if child_scenario().is_some() {
        goro::run(|| {
            let (tx, rx) = goro::chan::chan::<()>(1);
            goro::go!(move || {
                let mut counters = [0u64; 4];
                goro::scope(|s| {
                    for c in counters.iter_mut() {
                        let tx = tx.clone();
                        s.spawn(move || {
                            let _ = tx.try_send(());
                            // Writes to the owner's stack until the process
                            // exits.
                            loop {
                                *c += 1;
                                goro::yield_now();
                            }
                        });
                    }
                });
                unreachable!("the scope's coroutines never finish");
            });
            rx.recv().unwrap();
            goro::sleep(Duration::from_millis(20));
        });
        println!("main returned with the scope open");
        return;
    }
    let out = run_child(
        "a_scope_left_open_when_main_returns_is_never_torn_down",
        &[],
    );
    assert!(out.status.success(), "{:?}\n{}", out.status, stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("main returned with the scope open"),
        "{stdout}"
    );
}

#[test]
fn a_scope_in_a_synctest_bubble_runs_on_virtual_time() {
    // Scoped coroutines are members of the bubble: the scope's wait is a
    // durable block, so the clock jumps to their timers.
    limit(|| {
        goro::synctest::run(|| {
            let start = goro::time::now();
            let mut out = [0u64; 3];
            goro::scope(|s| {
                for (i, o) in (1..).zip(out.iter_mut()) {
                    s.spawn(move || {
                        goro::sleep(Duration::from_secs(3600 * i));
                        *o = i;
                    });
                }
            });
            assert_eq!(out, [1, 2, 3]);
            assert_eq!(goro::time::now() - start, Duration::from_secs(3 * 3600));
        })
    });
}
