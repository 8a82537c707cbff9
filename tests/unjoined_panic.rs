//! `GORO_PANIC=abort` and `runtime::Builder::unjoined_panic`: a panic nobody
//! joins aborts the process, with the report printed; a joined one does
//! not, and by default nothing aborts. Each scenario runs in a child
//! process, with the parent's `GORO_WORKERS`.

use std::os::unix::process::ExitStatusExt;
use std::process::Output;
use std::time::Duration;

use goro::runtime::{Builder, UnjoinedPanic};

mod common;
use common::{child_scenario, run_child, stderr};

/// Runs scenario `test` in a child with `env` and this process's worker
/// count.
fn scenario(test: &str, env: &[(&str, &str)]) -> Output {
    let workers = std::env::var("GORO_WORKERS").unwrap_or_else(|_| "2".into());
    let mut env = env.to_vec();
    env.push(("GORO_WORKERS", &workers));
    run_child(test, &env)
}

#[track_caller]
fn assert_aborted(out: &Output, message: &str) {
    let err = stderr(out);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{:?}\n{err}",
        out.status
    );
    // The panic hook's report, then the abort's own line.
    let report = err
        .find(") panicked at tests/unjoined_panic.rs:")
        .unwrap_or_else(|| panic!("no panic report in\n{err}"));
    let abort = err
        .find(&format!("panicked and nobody joins it: {message}"))
        .unwrap_or_else(|| panic!("no abort line in\n{err}"));
    assert!(report < abort, "{err}");
    assert!(
        err.contains("goro: aborting (unjoined panics abort"),
        "{err}"
    );
}

/// Waits for `h`'s coroutine to end, without joining it.
fn wait_finished<T>(h: &goro::JoinHandle<T>) {
    while !h.is_finished() {
        goro::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_detached_panic_aborts_under_goro_panic_abort() {
    if child_scenario().is_some() {
        goro::run(|| {
            goro::go!(|| panic!("detached before it panicked"));
            goro::sleep(Duration::from_secs(30));
        });
        unreachable!("the process aborts first");
    }
    let out = scenario(
        "a_detached_panic_aborts_under_goro_panic_abort",
        &[("GORO_PANIC", "abort")],
    );
    assert_aborted(&out, "detached before it panicked");
}

#[test]
fn a_handle_dropped_after_the_panic_aborts_under_the_builder_option() {
    if child_scenario().is_some() {
        Builder::new()
            .unjoined_panic(UnjoinedPanic::Abort)
            .start()
            .unwrap();
        goro::run(|| {
            let h = goro::spawn(|| -> u32 { panic!("dropped after it panicked") });
            wait_finished(&h);
            println!("finished, not yet aborted");
            drop(h);
            unreachable!("dropping the handle aborts");
        });
        unreachable!("the process aborts first");
    }
    let out = scenario(
        "a_handle_dropped_after_the_panic_aborts_under_the_builder_option",
        &[],
    );
    assert_aborted(&out, "dropped after it panicked");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("finished, not yet aborted"), "{stdout}");
}

#[test]
fn joined_and_scoped_panics_do_not_abort() {
    if child_scenario().is_some() {
        goro::run(|| {
            let h = goro::spawn(|| -> u32 { panic!("joined") });
            wait_finished(&h);
            assert!(h.join().unwrap_err().is_panic());
            let in_scope = std::panic::catch_unwind(|| {
                goro::scope(|s| {
                    s.spawn(|| panic!("the scope's to report"));
                })
            });
            assert!(in_scope.is_err());
            // Detached, but ends without a panic.
            let h = goro::spawn(|| 1);
            drop(h);
        });
        println!("no abort");
        return;
    }
    let out = scenario(
        "joined_and_scoped_panics_do_not_abort",
        &[("GORO_PANIC", "abort")],
    );
    assert!(out.status.success(), "{:?}\n{}", out.status, stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no abort"));
}

#[test]
fn by_default_a_detached_panic_is_only_reported() {
    if child_scenario().is_some() {
        goro::run(|| {
            let h = goro::spawn(|| -> u32 { panic!("reported only") });
            wait_finished(&h);
            drop(h);
            let (tx, rx) = goro::chan::chan::<()>(0);
            let h = goro::spawn(move || -> u32 {
                let _ = rx.recv();
                panic!("detached first")
            });
            drop(h);
            drop(tx);
            // Until only this main coroutine is left: the other one's end,
            // where a policy would abort, is past.
            while goro::runtime::num_coroutines() > 1 {
                goro::sleep(Duration::from_millis(1));
            }
        });
        println!("went on");
        return;
    }
    for env in [&[][..], &[("GORO_PANIC", "report")][..]] {
        let out = scenario("by_default_a_detached_panic_is_only_reported", env);
        let err = stderr(&out);
        assert!(out.status.success(), "{:?}\n{err}", out.status);
        assert!(
            err.contains("reported only") && err.contains("detached first"),
            "{err}"
        );
        assert!(!err.contains("nobody joins it"), "{err}");
    }
}

#[test]
fn the_builder_overrides_goro_panic() {
    if child_scenario().is_some() {
        Builder::new()
            .unjoined_panic(UnjoinedPanic::Report)
            .start()
            .unwrap();
        goro::run(|| {
            let h = goro::spawn(|| -> u32 { panic!("the builder said report") });
            wait_finished(&h);
            drop(h);
        });
        println!("went on");
        return;
    }
    let out = scenario(
        "the_builder_overrides_goro_panic",
        &[("GORO_PANIC", "abort")],
    );
    assert!(out.status.success(), "{:?}\n{}", out.status, stderr(&out));
}

#[test]
fn a_bad_goro_panic_is_an_error_at_start() {
    if child_scenario().is_some() {
        let err = Builder::new().start().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("GORO_PANIC=\"crash\""), "{err}");
        return;
    }
    let out = scenario(
        "a_bad_goro_panic_is_an_error_at_start",
        &[("GORO_PANIC", "crash")],
    );
    assert!(out.status.success(), "{:?}\n{}", out.status, stderr(&out));
}
