//! `goro::time::after`, `sleep` and `sleep_until`.

use std::time::{Duration, Instant};

use goro::chan::{RecvTimeoutError, chan};
use goro::time::{after, sleep, sleep_until};

const MS: Duration = Duration::from_millis(1);

#[test]
fn after_delivers_once_and_never_early() {
    goro::run(|| {
        let start = Instant::now();
        let rx = after(30 * MS);
        let fired = rx.recv().unwrap();
        assert!(fired >= start + 30 * MS, "the instant sent is not early");
        assert!(Instant::now() >= start + 30 * MS, "nor is its arrival");
        // Once only, and the channel stays open (Go's never closes).
        assert_eq!(rx.recv_timeout(50 * MS), Err(RecvTimeoutError::Timeout));
    });
}

#[test]
fn after_wins_a_select_against_a_silent_channel() {
    goro::run(|| {
        let (_tx, silent) = chan::<u8>(0);
        let start = Instant::now();
        goro::select! {
            recv(silent) -> _v => panic!("nothing was sent"),
            recv(after(20 * MS)) -> t => assert!(t.unwrap() >= start + 20 * MS),
        }
        assert!(start.elapsed() >= 20 * MS);
    });
}

#[test]
fn after_loses_a_select_to_a_ready_channel() {
    goro::run(|| {
        let (tx, rx) = chan::<u8>(1);
        tx.send(1).unwrap();
        let timeout = after(10 * MS);
        goro::select! {
            recv(rx) -> v => assert_eq!(v, Ok(1)),
            recv(timeout) -> _t => panic!("a ready channel wins"),
        }
    });
}

#[test]
fn after_works_from_a_plain_thread() {
    // No goro::run: the timer is armed on some worker from outside.
    let start = Instant::now();
    let fired = std::thread::spawn(|| after(20 * MS).recv().unwrap())
        .join()
        .unwrap();
    assert!(fired >= start + 20 * MS);
}

#[test]
fn after_an_unrepresentable_duration_never_fires() {
    goro::run(|| {
        let rx = after(Duration::MAX);
        assert_eq!(rx.recv_timeout(20 * MS), Err(RecvTimeoutError::Timeout));
    });
}

#[test]
fn sleep_and_sleep_until_are_never_early() {
    goro::run(|| {
        let start = Instant::now();
        sleep(15 * MS);
        assert!(start.elapsed() >= 15 * MS);
        let deadline = Instant::now() + 15 * MS;
        sleep_until(deadline);
        assert!(Instant::now() >= deadline);
        // A deadline in the past returns at once.
        sleep_until(start);
    });
}

/// Many timers at once, in many coroutines: none fires early (strict);
/// lateness is printed, and bounded only loosely, since this machine is
/// shared and noisy. The target is under a millisecond on a worker
/// that is not overloaded; see the printed median.
#[test]
fn many_timers_are_never_early_and_rarely_late() {
    let lateness = goro::run(|| {
        let handles: Vec<_> = (0..200u64)
            .map(|i| {
                goro::go!(move || {
                    let d = Duration::from_micros(500 + (i * 7919) % 40_000);
                    let start = Instant::now();
                    let fired = after(d).recv().unwrap();
                    let due = start + d;
                    assert!(fired >= due, "timer {i} fired early");
                    fired - due
                })
            })
            .collect();
        let mut late: Vec<Duration> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        late.sort();
        late
    });
    let median = lateness[lateness.len() / 2];
    let max = lateness[lateness.len() - 1];
    println!(
        "timer lateness over {} timers: median {median:?}, max {max:?}",
        lateness.len()
    );
    // Generous: a median this late means timers are not driven properly,
    // not that the machine is busy.
    assert!(median < 50 * MS, "median lateness {median:?}");
}

mod common;

/// `after`'s channel dropped unreceived (a `select!` arm that lost) frees
/// its timer at once, as Go 1.23 does.
#[test]
fn dropped_after_channels_give_their_memory_back() {
    if common::is_child("dropped_after_channels_give_their_memory_back") {
        goro::run(|| {
            let growth = common::steady_rss_growth(8, || {
                for _ in 0..100_000 {
                    drop(after(Duration::from_secs(3600)));
                }
            });
            assert!(growth < common::RSS_SLACK, "grew by {growth} bytes");
        });
        return;
    }
    common::child("dropped_after_channels_give_their_memory_back", &[]);
}
