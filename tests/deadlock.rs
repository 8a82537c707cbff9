//! The deadlock report. A test with its own `main` (`harness = false`): the
//! report fires only when no thread outside the runtime exists, and the
//! libtest harness keeps threads of its own.

use std::process::Command;
use std::time::Duration;

fn child(scenario: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .env("GORO_DEADLOCK_SCENARIO", scenario)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
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

            let out = child("late_sender");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{:?}\n{err}", out.status);
            assert!(String::from_utf8_lossy(&out.stdout).contains("got 5"));
            assert!(!err.contains("deadlock"), "{err}");
            println!("test no_report_while_a_plain_thread_can_still_send ... ok");
        }
    }
}
