//! Coroutine stacks: overflow reporting and a million live coroutines.

mod common;
use common::{child_scenario, run_child, stderr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Recurses until the stack runs out (the bound is never reached).
fn recurse(n: u64) -> u64 {
    let pad = std::hint::black_box([n as u8; 256]);
    if n == u64::MAX {
        return 0;
    }
    recurse(n + 1) + pad[0] as u64
}

/// A coroutine that runs off its stack gets a message naming it and the
/// process aborts, as std does for threads; not a bare segfault.
#[test]
fn stack_overflow_names_the_coroutine() {
    if child_scenario().is_some() {
        let h = goro::Builder::new()
            .name("deep-diver")
            .stack_size(64 * 1024)
            .spawn(|| recurse(0))
            .unwrap();
        let _ = h.join();
        unreachable!("the overflow aborts the process");
    }
    let out = run_child("stack_overflow_names_the_coroutine", &[]);
    let err = stderr(&out);
    assert!(
        err.contains("coroutine 'deep-diver' (#")
            && err.contains("has overflowed its stack (64 KiB); raise it with Builder::stack_size"),
        "{err}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{:?}", out.status);
}

/// Faults that are not a coroutine's overflow still reach the previous
/// handler: a null dereference on a plain thread dies by SIGSEGV.
#[test]
fn other_faults_are_not_reported_as_overflow() {
    if child_scenario().is_some() {
        goro::run(|| ());
        // SAFETY: deliberately faulting, in a child process, to test the
        // fault handler's chaining; never returns.
        unsafe { std::ptr::read_volatile(std::ptr::null::<u8>()) };
        unreachable!();
    }
    let out = run_child("other_faults_are_not_reported_as_overflow", &[]);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{:?}", out.status);
    assert!(!stderr(&out).contains("overflowed"), "{}", stderr(&out));
}

/// A million coroutines alive at once, each parked on a channel: past the
/// ~32,000 where one memory mapping per guard page would hit the kernel's
/// default `vm.max_map_count`. About 4.5 GB of memory, so it runs only on
/// request: `cargo test --release --test stack -- --ignored`.
#[test]
#[ignore = "needs ~5 GB of RAM and ~10 s; run with --release -- --ignored"]
fn a_million_live_coroutines() {
    live_coroutines(1_000_000);
}

/// The same with 100,000 coroutines, which CI runs: still three times past
/// the point where per-stack guard mappings would fail.
#[test]
fn a_hundred_thousand_live_coroutines() {
    live_coroutines(100_000);
}

fn live_coroutines(n: usize) {
    goro::run(move || {
        let started = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = goro::chan::chan::<()>(0);
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (rx, started) = (rx.clone(), started.clone());
                goro::spawn(move || {
                    started.fetch_add(1, Ordering::Relaxed);
                    // Parks until the channel closes.
                    assert!(rx.recv().is_err());
                })
            })
            .collect();
        while started.load(Ordering::Relaxed) < n {
            goro::sleep(Duration::from_millis(5));
        }
        assert!(goro::runtime::num_coroutines() >= n);
        drop(tx);
        for h in handles {
            h.join().unwrap();
        }
    });
}
