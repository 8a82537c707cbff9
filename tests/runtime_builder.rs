//! Runtime configuration: worker count from the environment and the
//! builder, and the errors for bad values. Each scenario runs in a child
//! process, since the runtime starts once per process.

mod common;
use common::{child_scenario, run_child, stderr, stdout};
use std::io;

#[test]
fn worker_count_from_env() {
    if child_scenario().is_some() {
        println!("workers={}", goro::runtime::num_workers());
        return;
    }
    let out = run_child("worker_count_from_env", &[("GORO_WORKERS", "3")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("workers=3"), "{}", stdout(&out));
}

#[test]
fn builder_overrides_env() {
    if child_scenario().is_some() {
        goro::runtime::Builder::new().workers(1).start().unwrap();
        println!("workers={}", goro::runtime::num_workers());
        let e = goro::runtime::Builder::new()
            .workers(2)
            .start()
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        println!("again: {e}");
        return;
    }
    let out = run_child("builder_overrides_env", &[("GORO_WORKERS", "3")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("workers=1"), "{text}");
    assert!(text.contains("already running with 1 workers"), "{text}");
}

#[test]
fn bad_env_values_are_clear_errors() {
    if child_scenario().is_some() {
        let e = goro::runtime::Builder::new().start().unwrap_err();
        println!("kind={:?} msg={e}", e.kind());
        return;
    }
    for bad in ["abc", "0", "-2", "100000", ""] {
        let out = run_child("bad_env_values_are_clear_errors", &[("GORO_WORKERS", bad)]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("kind=InvalidInput"), "{bad:?}: {text}");
        assert!(text.contains("GORO_WORKERS"), "{bad:?}: {text}");
    }
}

#[test]
fn spawn_with_a_bad_env_panics_in_the_caller_with_the_reason() {
    if child_scenario().is_some() {
        let r = std::panic::catch_unwind(|| goro::spawn(|| ()));
        let payload = r.unwrap_err();
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        println!("panic: {msg}");
        return;
    }
    let out = run_child(
        "spawn_with_a_bad_env_panics_in_the_caller_with_the_reason",
        &[("GORO_WORKERS", "many")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("panic: goro: cannot start the runtime: GORO_WORKERS=\"many\""),
        "{text}"
    );
}

#[test]
fn bad_builder_values_are_errors() {
    let e = goro::runtime::Builder::new()
        .workers(0)
        .start()
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("Builder::workers"), "{e}");
    let e = goro::runtime::Builder::new()
        .stack_size(10)
        .start()
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let e = goro::runtime::Builder::new()
        .blocking_threads(0)
        .start()
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

/// An idle runtime sleeps in its pollers: over a second of idleness the
/// process uses a small fraction of a CPU. The bound is generous (10% of
/// one CPU) because CI machines are noisy; a spinning worker would use 100%.
#[test]
fn an_idle_runtime_burns_no_cpu() {
    if child_scenario().is_some() {
        goro::run(|| goro::sleep(std::time::Duration::from_millis(10)));
        let cpu = || {
            // SAFETY: getrusage fills the struct we pass.
            let mut u: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
            let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
            t(u.ru_utime) + t(u.ru_stime)
        };
        let before = cpu();
        std::thread::sleep(std::time::Duration::from_secs(1));
        println!("idle_cpu_seconds={:.4}", cpu() - before);
        return;
    }
    let out = run_child("an_idle_runtime_burns_no_cpu", &[("GORO_WORKERS", "2")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let used: f64 = text
        .split("idle_cpu_seconds=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("the child reports its CPU time");
    assert!(used < 0.1, "an idle runtime used {used} s of CPU in 1 s");
}

/// Every worker of a runtime with more workers than cores serves its share:
/// timers started from a plain thread are spread over all of them, so a
/// worker that died at start would leave some never fired.
#[test]
fn every_worker_of_many_serves_timers() {
    if child_scenario().is_some() {
        let rxs: Vec<_> = (0..32)
            .map(|_| goro::time::after(std::time::Duration::from_millis(1)))
            .collect();
        for rx in rxs {
            rx.recv_timeout(std::time::Duration::from_secs(30))
                .expect("a timer on a worker that does not run");
        }
        let stats = goro::runtime::stats();
        assert_eq!(stats.workers.len(), 8);
        println!("all fired");
        return;
    }
    let out = run_child(
        "every_worker_of_many_serves_timers",
        &[("GORO_WORKERS", "8")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("all fired"), "{}", stdout(&out));
}

/// Children see the raised open-files limit unless asked to get the one
/// the process started with (Go restores it in `os/exec` children).
#[test]
fn children_can_get_the_original_fd_limit() {
    if child_scenario().is_some() {
        let hard = common::hard_fd_limit();
        // SAFETY: setrlimit reads the struct we pass.
        unsafe {
            let lim = libc::rlimit {
                rlim_cur: 512,
                rlim_max: hard,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
        goro::run(move || {
            let soft = |restore: bool| {
                let mut cmd = std::process::Command::new("sh");
                cmd.args(["-c", "ulimit -Sn"]);
                if restore {
                    goro::runtime::restore_fd_limit(&mut cmd);
                }
                let out = cmd.output().unwrap();
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            };
            assert_eq!(soft(true), "512");
            assert_eq!(soft(false), hard.to_string());
        });
        println!("limits ok");
        return;
    }
    if common::hard_fd_limit() <= 512 {
        println!("skipped: the hard open-files limit is too low to tell the limits apart");
        return;
    }
    let out = run_child("children_can_get_the_original_fd_limit", &[]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("limits ok"), "{}", stdout(&out));
}
