//! `goro::signal::notify`. Each scenario that installs a handler runs in a
//! fresh copy of this test binary, so that signals and handlers of one
//! cannot reach another.

use std::env;
use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use goro::signal::{self, SIGINT, SIGKILL, SIGTERM, SIGUSR1, SIGUSR2, Signal};

/// Environment variable naming the scenario a re-executed binary runs.
const SCENARIO: &str = "GORO_SIGNAL_SCENARIO";

/// Upper bound on waiting for a signal that should come; reached only when
/// the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// Runs test `name` alone in a fresh copy of this binary.
fn run_child(name: &str) -> (ExitStatus, String) {
    let out = Command::new(env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(SCENARIO, name)
        .output()
        .unwrap();
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, log)
}

/// True in the child that runs scenario `name`. In the parent, runs the
/// child and checks that it passed, then returns false.
fn in_child(name: &str) -> bool {
    if env::var(SCENARIO).as_deref() == Ok(name) {
        return true;
    }
    let (status, log) = run_child(name);
    assert!(status.success(), "scenario {name}: {status}\n{log}");
    false
}

/// Sends `sig` to this process.
fn raise(sig: Signal) {
    // SAFETY: kill has no memory preconditions.
    assert_eq!(unsafe { libc::kill(libc::getpid(), sig.as_raw()) }, 0);
}

/// The handler address currently installed for `sig`.
fn disposition(sig: Signal) -> libc::sighandler_t {
    // SAFETY: a zeroed sigaction is valid to be overwritten; sigaction only
    // writes to it.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(sig.as_raw(), std::ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

#[test]
fn receives_in_a_coroutine() {
    if !in_child("receives_in_a_coroutine") {
        return;
    }
    goro::run(|| {
        let rx = signal::notify(&[SIGUSR1, SIGUSR2]).unwrap();
        raise(SIGUSR1);
        assert_eq!(rx.recv_timeout(PATIENCE), Ok(SIGUSR1));
        raise(SIGUSR2);
        assert_eq!(rx.recv_timeout(PATIENCE), Ok(SIGUSR2));
    });
}

#[test]
fn receives_on_a_plain_thread() {
    if !in_child("receives_on_a_plain_thread") {
        return;
    }
    let rx = signal::notify(&[SIGUSR1]).unwrap();
    for _ in 0..3 {
        raise(SIGUSR1);
        assert_eq!(rx.recv_timeout(PATIENCE), Ok(SIGUSR1));
    }
}

#[test]
fn every_receiver_of_a_signal_gets_it() {
    if !in_child("every_receiver_of_a_signal_gets_it") {
        return;
    }
    goro::run(|| {
        let a = signal::notify(&[SIGUSR1]).unwrap();
        let b = signal::notify(&[SIGUSR1, SIGUSR2]).unwrap();
        let only2 = signal::notify(&[SIGUSR2]).unwrap();
        raise(SIGUSR1);
        assert_eq!(a.recv_timeout(PATIENCE), Ok(SIGUSR1));
        assert_eq!(b.recv_timeout(PATIENCE), Ok(SIGUSR1));
        raise(SIGUSR2);
        assert_eq!(b.recv_timeout(PATIENCE), Ok(SIGUSR2));
        // SIGUSR1 was relayed before SIGUSR2 was raised, so a receiver
        // that got it would have it first.
        assert_eq!(only2.recv_timeout(PATIENCE), Ok(SIGUSR2));
        assert!(a.is_empty());
    });
}

/// A clone keeps a registration alive; dropping every receiver ends it,
/// and the signal's default action (terminate) applies again, also to the
/// signal that found no receiver.
#[test]
fn dropped_receivers_stop_receiving() {
    const NAME: &str = "dropped_receivers_stop_receiving";
    if env::var(SCENARIO).as_deref() != Ok(NAME) {
        let (status, log) = run_child(NAME);
        assert_eq!(
            status.signal(),
            Some(libc::SIGUSR1),
            "the child should die of SIGUSR1: {status}\n{log}"
        );
        assert!(log.contains("relayed while wanted"), "{log}");
        return;
    }
    goro::run(|| {
        let gone = signal::notify(&[SIGUSR1]).unwrap();
        let kept = signal::notify(&[SIGUSR1]).unwrap();
        let clone = kept.clone();
        drop(gone);
        drop(kept);
        raise(SIGUSR1);
        assert_eq!(clone.recv_timeout(PATIENCE), Ok(SIGUSR1));
        println!("relayed while wanted");
        drop(clone);
        raise(SIGUSR1);
        // The dispatcher finds no receiver, restores the default action and
        // raises the signal again, which ends this process.
        goro::sleep(PATIENCE);
    });
    panic!("survived SIGUSR1 after its last receiver was dropped");
}

/// A signal ignored before `notify` is ignored again after its receivers
/// are gone.
#[test]
fn previous_disposition_comes_back() {
    if !in_child("previous_disposition_comes_back") {
        return;
    }
    // SAFETY: setting a signal to SIG_IGN has no memory preconditions.
    unsafe { libc::signal(libc::SIGUSR2, libc::SIG_IGN) };
    goro::run(|| {
        let rx = signal::notify(&[SIGUSR2]).unwrap();
        assert_ne!(disposition(SIGUSR2), libc::SIG_IGN);
        raise(SIGUSR2);
        assert_eq!(rx.recv_timeout(PATIENCE), Ok(SIGUSR2));
        drop(rx);
        raise(SIGUSR2);
        let deadline = Instant::now() + PATIENCE;
        while disposition(SIGUSR2) != libc::SIG_IGN {
            assert!(Instant::now() < deadline, "SIGUSR2 was not reset");
            goro::sleep(Duration::from_millis(1));
        }
    });
}

/// A receiver that never reads fills its buffer and then loses signals;
/// delivery to the others goes on.
#[test]
fn full_receiver_does_not_stall_others() {
    if !in_child("full_receiver_does_not_stall_others") {
        return;
    }
    goro::run(|| {
        let idle = signal::notify(&[SIGUSR1]).unwrap();
        let busy = signal::notify(&[SIGUSR1]).unwrap();
        let other = signal::notify(&[SIGUSR2]).unwrap();
        for _ in 0..3 * idle.capacity() {
            raise(SIGUSR1);
            // One at a time: pending signals of one kind coalesce.
            assert_eq!(busy.recv_timeout(PATIENCE), Ok(SIGUSR1));
        }
        raise(SIGUSR2);
        assert_eq!(other.recv_timeout(PATIENCE), Ok(SIGUSR2));
        assert_eq!(idle.len(), idle.capacity());
    });
}

#[test]
fn refuses_signals_it_cannot_take() {
    let refused = [
        (SIGKILL, "SIGKILL"),
        (Signal::from_raw(libc::SIGSTOP), "SIGSTOP"),
        (Signal::from_raw(libc::SIGSEGV), "SIGSEGV"),
        (Signal::from_raw(libc::SIGBUS), "SIGBUS"),
        (Signal::from_raw(libc::SIGFPE), "SIGFPE"),
        (Signal::from_raw(libc::SIGILL), "SIGILL"),
        (Signal::from_raw(0), "signal 0"),
        (Signal::from_raw(65), "signal 65"),
        (Signal::from_raw(-1), "signal -1"),
        (Signal::from_raw(32), "signal 32"),
    ];
    for (sig, name) in refused {
        let err = signal::notify(&[sig]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name}");
        assert!(err.to_string().contains(name), "{err}");
    }
    let err = signal::notify(&[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    // One bad signal refuses the whole call: SIGUSR1 is not taken over.
    let err = signal::notify(&[SIGUSR1, SIGKILL]).unwrap_err();
    assert!(err.to_string().contains("SIGKILL"), "{err}");
    assert_eq!(disposition(SIGUSR1), libc::SIG_DFL);
}

#[test]
fn names_and_numbers() {
    assert_eq!(SIGINT.to_string(), "SIGINT");
    assert_eq!(format!("{SIGTERM:?}"), "SIGTERM");
    assert_eq!(Signal::from_raw(40).to_string(), "signal 40");
    assert_eq!(SIGUSR2.as_raw(), libc::SIGUSR2);
    assert_eq!(libc::c_int::from(SIGINT), libc::SIGINT);
}
