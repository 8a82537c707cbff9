//! The deadlock report. A test with its own `main` (`harness = false`): the
//! report fires only when no thread outside the runtime exists, and the
//! libtest harness keeps threads of its own.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `scenario` in a child process; one that has not ended within a
/// minute (no report came) is killed, so that a missing report fails the
/// test instead of hanging it.
fn child(scenario: &str) -> std::process::Output {
    let mut c = Command::new(std::env::current_exe().unwrap())
        .env("GORO_DEADLOCK_SCENARIO", scenario)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let give_up = Instant::now() + Duration::from_secs(60);
    while c.try_wait().unwrap().is_none() && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    c.wait_with_output().unwrap()
}

fn main() {
    match std::env::var("GORO_DEADLOCK_SCENARIO").as_deref() {
        Ok("deadlock") => {
            goro::run(|| {
                let (tx, rx) = goro::chan::chan::<u32>(0);
                let _keep = tx;
                let _ = rx.recv();
            });
            println!("returned?!");
        }
        Ok("stopped_timer") => {
            goro::run(|| {
                let t = goro::time::Timer::new(Duration::from_secs(3600));
                t.stop();
                let (tx, rx) = goro::chan::chan::<u32>(0);
                let _keep = tx;
                let _ = rx.recv();
            });
            println!("returned?!");
        }
        Ok("reset_timer") => {
            goro::run(|| {
                let t = goro::time::Timer::new(Duration::from_secs(3600));
                t.reset(Duration::from_millis(1));
                t.channel().recv().unwrap();
                let (tx, rx) = goro::chan::chan::<u32>(0);
                let _keep = tx;
                let _ = rx.recv();
            });
            println!("returned?!");
        }
        Ok("late_sender") => {
            let (tx, rx) = goro::chan::chan::<u32>(0);
            let t = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                tx.send(5).unwrap();
            });
            let v = goro::run(move || rx.recv().unwrap());
            println!("got {v}");
            t.join().unwrap();
        }
        _ => {
            let out = child("deadlock");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{:?}\n{err}", out.status);
            assert!(
                err.contains("goro: all coroutines are asleep - deadlock!"),
                "{err}"
            );
            assert!(err.contains("'main' [parked: channel receive"), "{err}");
            println!("test deadlock_is_reported ... ok");

            // Only live timers can wake anyone: a stopped one does not
            // silence the report.
            let out = child("stopped_timer");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{:?}\n{err}", out.status);
            assert!(
                err.contains("goro: all coroutines are asleep - deadlock!"),
                "{err}"
            );
            println!("test a_stopped_timer_does_not_silence_the_report ... ok");

            // Nor does the entry a reset to an earlier time left behind.
            let out = child("reset_timer");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{:?}\n{err}", out.status);
            assert!(
                err.contains("goro: all coroutines are asleep - deadlock!"),
                "{err}"
            );
            println!("test a_timer_reset_earlier_does_not_silence_the_report ... ok");

            let out = child("late_sender");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{:?}\n{err}", out.status);
            assert!(String::from_utf8_lossy(&out.stdout).contains("got 5"));
            assert!(!err.contains("deadlock"), "{err}");
            println!("test no_report_while_a_plain_thread_can_still_send ... ok");
        }
    }
}
