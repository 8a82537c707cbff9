//! `spawn`, `go!`, `JoinHandle` and `run`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

#[test]
fn spawn_and_join_100k() {
    let total = goro::run(|| {
        let handles: Vec<_> = (0..100_000u64)
            .map(|i| goro::spawn(move || i * 2))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(total, 2 * (100_000 * 99_999 / 2));
}

#[test]
fn nested_spawns() {
    fn tree(depth: u32) -> u64 {
        if depth == 0 {
            return 1;
        }
        let left = goro::spawn(move || tree(depth - 1));
        let right = goro::spawn(move || tree(depth - 1));
        left.join().unwrap() + right.join().unwrap()
    }
    assert_eq!(goro::run(|| tree(12)), 4096);
}

#[test]
fn join_from_plain_threads() {
    let handles: Vec<_> = (0..100u32).map(|i| goro::spawn(move || i + 1)).collect();
    let joiners: Vec<_> = handles
        .into_iter()
        .map(|h| thread::spawn(move || h.join().unwrap()))
        .collect();
    let sum: u32 = joiners.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(sum, (1..=100).sum());
}

#[test]
fn join_a_coroutine_that_finished_long_ago() {
    goro::run(|| {
        let h = goro::spawn(|| "done");
        while !h.is_finished() {
            goro::yield_now();
        }
        assert_eq!(h.join().unwrap(), "done");
    });
}

#[test]
fn detached_coroutines_still_run() {
    let hits = Arc::new(AtomicUsize::new(0));
    goro::run({
        let hits = hits.clone();
        move || {
            let wg = goro::sync::WaitGroup::new();
            for _ in 0..1000 {
                wg.add(1);
                let (hits, wg) = (hits.clone(), wg.clone());
                drop(goro::spawn(move || {
                    hits.fetch_add(1, Ordering::Relaxed);
                    wg.done();
                }));
            }
            wg.wait();
        }
    });
    assert_eq!(hits.load(Ordering::Relaxed), 1000);
}

fn add(a: u32, b: u32) -> u32 {
    a + b
}

mod calc {
    pub fn triple(x: u32) -> u32 {
        x * 3
    }
}

struct Counter {
    base: u32,
}

impl Counter {
    fn plus(&self, n: u32) -> u32 {
        self.base + n
    }
}

#[test]
fn go_macro_shapes() {
    goro::run(|| {
        assert_eq!(goro::go!(add(1, 2)).join().unwrap(), 3);
        assert_eq!(goro::go!(calc::triple(5)).join().unwrap(), 15);
        let c = Counter { base: 10 };
        assert_eq!(goro::go!(c.plus(7)).join().unwrap(), 17);
        let v = String::from("abc");
        assert_eq!(goro::go!(move || v.len()).join().unwrap(), 3);
        assert_eq!(goro::go!(|| 42).join().unwrap(), 42);
    });
}

#[test]
fn go_macro_evaluates_arguments_in_the_caller_in_order() {
    goro::run(|| {
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let note = |tag: &'static str, v: u32| {
            order
                .lock()
                .unwrap()
                .push((tag, goro::current().map(|c| c.id())));
            v
        };
        let me = goro::current().map(|c| c.id());
        let h = goro::go!(add(note("a", 1), note("b", 2)));
        // The arguments ran here, before the call, in order, in this coroutine.
        assert_eq!(*order.lock().unwrap(), vec![("a", me), ("b", me)]);
        assert_eq!(h.join().unwrap(), 3);
    });
}

#[test]
fn run_returns_the_value_and_nests() {
    let v = goro::run(|| goro::run(|| 7) + 1);
    assert_eq!(v, 8);
}

#[test]
fn run_resumes_a_panic_on_the_caller() {
    let r = std::panic::catch_unwind(|| goro::run(|| panic!("from main coroutine")));
    let payload = r.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"from main coroutine"));
}

#[test]
fn current_names_the_coroutine() {
    assert!(goro::current().is_none(), "a plain thread is no coroutine");
    let (id, name) = goro::run(|| {
        let c = goro::current().unwrap();
        (c.id(), c.name().map(String::from))
    });
    assert!(id.as_u64() > 0);
    assert_eq!(name.as_deref(), Some("main"));
    let h = goro::spawn(|| goro::current().unwrap().id());
    let expected = h.coroutine().id();
    assert_eq!(h.join().unwrap(), expected);
}

#[test]
fn num_coroutines_counts_live_ones() {
    goro::run(|| {
        let (tx, rx) = goro::chan::chan::<()>(0);
        let before = goro::runtime::num_coroutines();
        let parked: Vec<_> = (0..50)
            .map(|_| {
                let rx = rx.clone();
                goro::spawn(move || {
                    let _ = rx.recv();
                })
            })
            .collect();
        // Other tests run concurrently in this binary, so only a lower bound holds.
        while goro::runtime::num_coroutines() < before + 50 {
            goro::yield_now();
        }
        drop(tx);
        for h in parked {
            h.join().unwrap();
        }
    });
}

/// Records where its `Drop` ran (1: in a coroutine, 2: elsewhere), then
/// panics if asked to.
struct DropProbe {
    ran: Arc<std::sync::atomic::AtomicU8>,
    panic: bool,
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        let place = if goro::current().is_some() { 1 } else { 2 };
        self.ran.store(place, Ordering::SeqCst);
        if self.panic {
            panic!("DropProbe panics in drop");
        }
    }
}

/// Waits (yielding, so that no timer fires meanwhile) until `ran` is set.
fn wait_for_drop(ran: &std::sync::atomic::AtomicU8) -> u8 {
    let give_up = std::time::Instant::now() + common::HANG;
    while ran.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < give_up {
        goro::yield_now();
    }
    ran.load(Ordering::SeqCst)
}

mod common;

#[test]
fn detached_output_is_dropped_in_its_coroutine() {
    if common::is_child("detached_output_is_dropped_in_its_coroutine") {
        goro::run(|| {
            let ran = Arc::new(std::sync::atomic::AtomicU8::new(0));
            let probe = ran.clone();
            drop(goro::spawn(move || DropProbe {
                ran: probe,
                panic: true,
            }));
            assert_eq!(wait_for_drop(&ran), 1, "dropped in a coroutine");
            // The panic in that drop was caught: the one worker still runs
            // coroutines.
            assert_eq!(goro::spawn(|| 7).join().unwrap(), 7);
        });
        return;
    }
    common::child(
        "detached_output_is_dropped_in_its_coroutine",
        &[("GORO_WORKERS", "1")],
    );
}

#[test]
fn output_of_a_finished_coroutine_is_dropped_with_its_handle() {
    common::within(|| {
        let ran = Arc::new(std::sync::atomic::AtomicU8::new(0));
        let probe = ran.clone();
        let h = goro::spawn(move || DropProbe {
            ran: probe,
            panic: false,
        });
        while !h.is_finished() {
            goro::yield_now();
        }
        assert_eq!(ran.load(Ordering::SeqCst), 0, "the handle still owns it");
        drop(h);
        assert_eq!(
            ran.load(Ordering::SeqCst),
            1,
            "dropped by the handle's owner"
        );
    });
}

/// A detached coroutine's output whose `Drop` locks a mutex held by a
/// parked coroutine parks only its own coroutine: on one worker, the holder
/// still runs and releases it.
#[test]
fn output_drop_that_blocks_parks_only_its_coroutine() {
    struct LocksOnDrop(Arc<goro::sync::Mutex<()>>, Arc<AtomicUsize>);
    impl Drop for LocksOnDrop {
        fn drop(&mut self) {
            let _g = self.0.lock();
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    if common::is_child("output_drop_that_blocks_parks_only_its_coroutine") {
        goro::run(|| {
            let m = Arc::new(goro::sync::Mutex::new(()));
            let (tx, rx) = goro::chan::chan::<()>(0);
            let held = m.clone();
            let holder = goro::spawn(move || {
                let _g = held.lock();
                rx.recv().unwrap();
            });
            while m.try_lock().is_some() {
                goro::yield_now();
            }
            let dropped = Arc::new(AtomicUsize::new(0));
            let (m2, d2) = (m.clone(), dropped.clone());
            drop(goro::spawn(move || LocksOnDrop(m2, d2)));
            for _ in 0..10 {
                goro::yield_now();
            }
            assert_eq!(dropped.load(Ordering::SeqCst), 0, "waits for the lock");
            tx.send(()).unwrap();
            holder.join().unwrap();
            while dropped.load(Ordering::SeqCst) == 0 {
                goro::yield_now();
            }
        });
        return;
    }
    common::child(
        "output_drop_that_blocks_parks_only_its_coroutine",
        &[("GORO_WORKERS", "1")],
    );
}

/// A coroutine woken before its timeout leaves a stale timer entry; the
/// entry must not keep the finished coroutine (or its result) alive.
#[test]
fn finished_coroutines_are_not_held_by_stale_timeouts() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    const N: usize = 20_000;
    common::within(|| {
        let dropped = Arc::new(AtomicUsize::new(0));
        let mut wakers = Vec::with_capacity(N);
        for _ in 0..N {
            let (tx, rx) = goro::chan::chan::<()>(1);
            let d = dropped.clone();
            drop(goro::spawn(move || {
                let _ = rx.recv_timeout(std::time::Duration::from_secs(3600));
                Counted(d)
            }));
            wakers.push(tx);
        }
        for tx in wakers {
            tx.send(()).unwrap();
        }
        // Yield rather than sleep: no timer fires meanwhile, so nothing
        // sweeps the heaps.
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while dropped.load(Ordering::SeqCst) < N && std::time::Instant::now() < give_up {
            goro::yield_now();
        }
        assert_eq!(dropped.load(Ordering::SeqCst), N);
    });
}
