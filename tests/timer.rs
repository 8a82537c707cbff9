//! `goro::time::Timer`.

use std::time::{Duration, Instant};

use goro::chan::{RecvTimeoutError, TryRecvError, chan};
use goro::time::{Timer, sleep};

const MS: Duration = Duration::from_millis(1);
/// Far beyond any test's duration.
const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn fires_once_never_early() {
    goro::run(|| {
        let start = Instant::now();
        let timer = Timer::new(20 * MS);
        let fired = timer.channel().recv().unwrap();
        assert!(fired >= start + 20 * MS);
        assert_eq!(
            timer.channel().recv_timeout(40 * MS),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(!timer.stop(), "its value was received: nothing to stop");
    });
}

#[test]
fn stop_prevents_delivery_and_says_whether_it_did() {
    goro::run(|| {
        let timer = Timer::new(20 * MS);
        assert!(timer.stop(), "a pending timer is stopped");
        assert!(!timer.stop(), "a stopped one is not");
        assert_eq!(
            timer.channel().recv_timeout(60 * MS),
            Err(RecvTimeoutError::Timeout),
            "nothing arrives after stop"
        );
    });
}

#[test]
fn stop_takes_back_a_value_not_yet_received() {
    goro::run(|| {
        let timer = Timer::new(MS);
        // Wait until it has fired, without receiving.
        let give_up = Instant::now() + 10 * 1000 * MS; // generous: a busy machine
        while timer.channel().is_empty() && Instant::now() < give_up {
            sleep(MS);
        }
        assert_eq!(timer.channel().len(), 1, "the timer fired into its buffer");
        assert!(timer.stop(), "the unreceived value was still pending");
        assert_eq!(timer.channel().try_recv(), Err(TryRecvError::Empty));
    });
}

#[test]
fn reset_to_later_moves_the_deadline() {
    goro::run(|| {
        let timer = Timer::new(10 * MS);
        let reset_at = Instant::now();
        assert!(timer.reset(60 * MS), "it was pending");
        let fired = timer.channel().recv().unwrap();
        assert!(
            fired >= reset_at + 60 * MS,
            "the first deadline did not deliver"
        );
        assert_eq!(
            timer.channel().recv_timeout(40 * MS),
            Err(RecvTimeoutError::Timeout),
            "one value for one reset"
        );
    });
}

#[test]
fn reset_to_earlier_moves_the_deadline() {
    goro::run(|| {
        let timer = Timer::new(HOUR);
        let reset_at = Instant::now();
        assert!(timer.reset(20 * MS));
        // Generous bound: an hour would mean the reset was ignored.
        let fired = timer.channel().recv_timeout(10 * 1000 * MS).unwrap();
        assert!(fired >= reset_at + 20 * MS);
    });
}

#[test]
fn reset_after_firing_drops_the_stale_value() {
    goro::run(|| {
        let timer = Timer::new(MS);
        let give_up = Instant::now() + 10 * 1000 * MS;
        while timer.channel().is_empty() && Instant::now() < give_up {
            sleep(MS);
        }
        let reset_at = Instant::now();
        assert!(timer.reset(40 * MS), "the unreceived value was pending");
        let fired = timer.channel().recv().unwrap();
        assert!(fired >= reset_at + 40 * MS, "not the stale instant");
    });
}

#[test]
fn reset_after_stop_rearms() {
    goro::run(|| {
        let timer = Timer::new(HOUR);
        assert!(timer.stop());
        let reset_at = Instant::now();
        assert!(!timer.reset(20 * MS), "it was stopped");
        let fired = timer.channel().recv().unwrap();
        assert!(fired >= reset_at + 20 * MS);
    });
}

#[test]
fn repeated_resets_deliver_only_the_last() {
    goro::run(|| {
        let timer = Timer::new(5 * MS);
        let mut last = Instant::now();
        for _ in 0..50 {
            sleep(Duration::from_micros(200));
            last = Instant::now();
            timer.reset(30 * MS);
        }
        let fired = timer.channel().recv().unwrap();
        assert!(fired >= last + 30 * MS);
        assert_eq!(
            timer.channel().recv_timeout(50 * MS),
            Err(RecvTimeoutError::Timeout)
        );
    });
}

#[test]
fn a_timer_arm_in_select() {
    goro::run(|| {
        let (_tx, silent) = chan::<u8>(0);
        let start = Instant::now();
        let timer = Timer::new(20 * MS);
        goro::select! {
            recv(silent) -> _v => panic!("nothing was sent"),
            recv(timer.channel()) -> t => assert!(t.unwrap() >= start + 20 * MS),
        }
    });
}

#[test]
fn a_dropped_timer_still_delivers_to_its_channel() {
    goro::run(|| {
        let timer = Timer::new(10 * MS);
        let rx = timer.channel().clone();
        drop(timer);
        assert!(rx.recv_timeout(10 * 1000 * MS).is_ok());
    });
}

#[test]
fn works_from_a_plain_thread() {
    std::thread::spawn(|| {
        let start = Instant::now();
        let timer = Timer::new(20 * MS);
        assert!(timer.channel().recv().unwrap() >= start + 20 * MS);
        let timer = Timer::new(20 * MS);
        assert!(timer.stop());
        assert_eq!(
            timer.channel().recv_timeout(50 * MS),
            Err(RecvTimeoutError::Timeout)
        );
    })
    .join()
    .unwrap();
}

mod common;

/// Go 1.23 frees a stopped timer at once: a server that arms a per-request
/// timeout and stops it on success must not grow with rate x timeout.
#[test]
fn stopped_timers_give_their_memory_back() {
    if common::is_child("stopped_timers_give_their_memory_back") {
        goro::run(|| {
            let growth = common::steady_rss_growth(8, || {
                for _ in 0..100_000 {
                    let t = Timer::new(HOUR);
                    assert!(t.stop());
                }
            });
            assert!(growth < common::RSS_SLACK, "grew by {growth} bytes");
            // Dropped without a stop: no one can receive from it.
            let growth = common::steady_rss_growth(8, || {
                for _ in 0..100_000 {
                    drop(Timer::new(HOUR));
                }
            });
            assert!(
                growth < common::RSS_SLACK,
                "dropped: grew by {growth} bytes"
            );
        });
        return;
    }
    common::child("stopped_timers_give_their_memory_back", &[]);
}
