//! `goro::time::Ticker` and `tick`.

use std::io;
use std::time::{Duration, Instant};

use goro::chan::{RecvTimeoutError, TryRecvError, chan};
use goro::time::{Ticker, sleep, tick};

const MS: Duration = Duration::from_millis(1);
/// Generous bound for "eventually": only a starved machine takes this long.
const EVENTUALLY: Duration = Duration::from_secs(10);

#[test]
fn ticks_repeatedly_on_its_grid_never_early() {
    goro::run(|| {
        let start = Instant::now();
        let ticker = Ticker::new(10 * MS).unwrap();
        let mut last = start;
        for k in 1..=5u32 {
            let t = ticker.channel().recv_timeout(EVENTUALLY).unwrap();
            assert!(t >= start + k * 10 * MS, "tick {k} early");
            assert!(t > last);
            last = t;
        }
    });
}

#[test]
fn a_slow_receiver_finds_one_tick_buffered() {
    goro::run(|| {
        let ticker = Ticker::new(10 * MS).unwrap();
        sleep(60 * MS); // five periods and more without receiving
        assert_eq!(
            ticker.channel().len(),
            1,
            "one tick waits, the rest dropped"
        );
        ticker.channel().try_recv().unwrap();
        // Ticking goes on after the slow patch.
        ticker.channel().recv_timeout(EVENTUALLY).unwrap();
    });
}

#[test]
fn ticks_missed_by_a_held_worker_are_skipped_not_caught_up() {
    goro::run(|| {
        let ticker = Ticker::new(10 * MS).unwrap();
        // Hold this worker, where the ticker is armed, for ten periods: its
        // heap cannot fire meanwhile.
        std::thread::sleep(100 * MS);
        // In the next 50 ms come the late tick and those due on the grid
        // then: at most seven even if one more is late. Catching up the
        // nine missed ones would bring a burst of them at once.
        let window_end = Instant::now() + 50 * MS;
        let mut ticks = 0;
        while ticker.channel().recv_deadline(window_end).is_ok() {
            ticks += 1;
        }
        assert!(ticks <= 7, "{ticks} ticks in 50 ms");
    });
}

#[test]
fn stop_ends_the_ticks_and_drops_an_unreceived_one() {
    goro::run(|| {
        let ticker = Ticker::new(5 * MS).unwrap();
        ticker.channel().recv_timeout(EVENTUALLY).unwrap();
        sleep(20 * MS); // a tick is buffered
        ticker.stop();
        assert_eq!(ticker.channel().try_recv(), Err(TryRecvError::Empty));
        assert_eq!(
            ticker.channel().recv_timeout(40 * MS),
            Err(RecvTimeoutError::Timeout)
        );
    });
}

#[test]
fn reset_changes_the_period_and_restarts() {
    goro::run(|| {
        let ticker = Ticker::new(Duration::from_secs(3600)).unwrap();
        let reset_at = Instant::now();
        ticker.reset(10 * MS).unwrap();
        let first = ticker.channel().recv_timeout(EVENTUALLY).unwrap();
        assert!(first >= reset_at + 10 * MS);
        let second = ticker.channel().recv_timeout(EVENTUALLY).unwrap();
        assert!(second >= reset_at + 20 * MS);

        ticker.stop();
        let reset_at = Instant::now();
        ticker.reset(10 * MS).unwrap();
        let t = ticker.channel().recv_timeout(EVENTUALLY).unwrap();
        assert!(t >= reset_at + 10 * MS, "a stopped ticker restarts");
    });
}

#[test]
fn dropping_the_ticker_stops_it() {
    goro::run(|| {
        let ticker = Ticker::new(5 * MS).unwrap();
        let rx = ticker.channel().clone();
        rx.recv_timeout(EVENTUALLY).unwrap();
        drop(ticker);
        assert_eq!(rx.recv_timeout(40 * MS), Err(RecvTimeoutError::Timeout));
    });
}

#[test]
fn a_zero_period_is_an_error() {
    fn kind<T>(r: io::Result<T>) -> io::ErrorKind {
        r.map(drop).unwrap_err().kind()
    }
    assert_eq!(
        kind(Ticker::new(Duration::ZERO)),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(kind(tick(Duration::ZERO)), io::ErrorKind::InvalidInput);
    let ticker = Ticker::new(Duration::from_secs(3600)).unwrap();
    let err = ticker.reset(Duration::ZERO).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("Ticker::reset"), "{err}");
}

#[test]
fn tick_in_a_select_loop() {
    goro::run(|| {
        let (_tx, silent) = chan::<u8>(0);
        let ticks = tick(5 * MS).unwrap();
        let start = Instant::now();
        let mut seen = 0u32;
        while seen < 3 {
            goro::select! {
                recv(silent) -> _v => panic!("nothing was sent"),
                recv(ticks) -> t => {
                    seen += 1;
                    assert!(t.unwrap() >= start + seen * 5 * MS);
                }
            }
        }
    });
}

#[test]
fn works_from_a_plain_thread() {
    std::thread::spawn(|| {
        let start = Instant::now();
        let ticker = Ticker::new(10 * MS).unwrap();
        for k in 1..=3u32 {
            let t = ticker.channel().recv_timeout(EVENTUALLY).unwrap();
            assert!(t >= start + k * 10 * MS);
        }
    })
    .join()
    .unwrap();
}
