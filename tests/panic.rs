//! A panicking coroutine: caught, reported by name like a thread's panic,
//! its error shown by its joiner, and the runtime goes on.

use std::error::Error;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

mod common;
use common::{child_scenario, run_child, stderr};

#[test]
fn join_error_shows_the_message_and_keeps_the_payload() {
    let n = std::hint::black_box(42);
    let h = goro::Builder::new()
        .name("parser")
        .spawn(move || -> u32 { panic!("bad input {n}") })
        .unwrap();
    let id = h.coroutine().id();
    let err = h.join().unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.coroutine().id(), id);
    assert_eq!(err.coroutine().name(), Some("parser"));
    assert_eq!(
        err.to_string(),
        format!("coroutine 'parser' ({id}) panicked: bad input 42")
    );
    let debug = format!("{err:?}");
    assert!(debug.contains("\"bad input 42\""), "{debug}");
    assert!(err.source().is_none());
    let payload = err.into_panic();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("bad input 42")
    );
}

#[test]
fn a_payload_that_is_not_text_is_kept_as_it_is() {
    let h = goro::spawn(|| -> u32 { panic::panic_any(7u8) });
    let id = h.coroutine().id();
    let err = h.join().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("coroutine '<unnamed>' ({id}) panicked")
    );
    assert!(format!("{err:?}").contains("Box<dyn Any>"), "{err:?}");
    let payload = err.try_into_panic().expect("a panic");
    assert_eq!(payload.downcast_ref::<u8>(), Some(&7));
}

#[test]
fn resume_unwind_carries_the_panic_on() {
    let err = goro::spawn(|| panic!("static message")).join().unwrap_err();
    let resumed = panic::catch_unwind(AssertUnwindSafe(|| {
        panic::resume_unwind(err.into_panic());
    }))
    .unwrap_err();
    assert_eq!(resumed.downcast_ref::<&str>(), Some(&"static message"));
    // `goro::run` does the same with its main coroutine's panic.
    let resumed = panic::catch_unwind(|| goro::run(|| panic!("main fails"))).unwrap_err();
    assert_eq!(resumed.downcast_ref::<&str>(), Some(&"main fails"));
}

#[test]
fn join_error_is_an_error_for_question_mark() {
    fn is_error<E: Error + Send + Sync + 'static>() {}
    is_error::<goro::JoinError>();
    let r = goro::run(|| -> Result<u32, Box<dyn Error + Send + Sync>> {
        let v = goro::spawn(|| -> u32 { panic!("inner") }).join()?;
        Ok(v)
    });
    let err = r.unwrap_err();
    assert!(err.to_string().ends_with("panicked: inner"), "{err}");
    assert!(err.downcast_ref::<goro::JoinError>().is_some());
}

#[test]
fn the_runtime_keeps_going_after_panics() {
    let results = goro::run(|| {
        let handles: Vec<_> = (0..200u32)
            .map(|i| {
                goro::spawn(move || {
                    if i % 3 == 0 {
                        panic!("coroutine {i} fails");
                    }
                    i
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().ok())
            .collect::<Vec<_>>()
    });
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.is_none(), i % 3 == 0, "{i}");
    }
    assert_eq!(goro::run(|| 5), 5);
}

#[test]
fn the_panic_message_names_the_coroutine() {
    if child_scenario().is_some() {
        let h = goro::Builder::new()
            .name("parser")
            .spawn(|| panic!("unexpected token"))
            .unwrap();
        assert!(h.join().is_err());
        // A panic on a plain thread still gets std's message.
        let t = std::thread::Builder::new()
            .name("plain".into())
            .spawn(|| panic!("thread panic"))
            .unwrap();
        assert!(t.join().is_err());
        return;
    }
    let out = run_child("the_panic_message_names_the_coroutine", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    // As std: "thread 'NAME' panicked at FILE:LINE:COL:\nMSG".
    let header = err
        .lines()
        .position(|l| l.starts_with("coroutine 'parser' (#"))
        .unwrap_or_else(|| panic!("no coroutine panic message in\n{err}"));
    let lines: Vec<&str> = err.lines().collect();
    let (first, second) = (lines[header], lines[header + 1]);
    let at = first.split_once(") panicked at ").map(|(_, at)| at);
    let at = at.unwrap_or_else(|| panic!("no location in {first:?}"));
    let parts: Vec<&str> = at.trim_end_matches(':').split(':').collect();
    assert!(at.ends_with(':'), "{first}");
    assert_eq!(parts.len(), 3, "{first}");
    assert_eq!(parts[0], "tests/panic.rs", "{first}");
    assert!(
        parts[1..].iter().all(|n| n.parse::<u32>().is_ok()),
        "{first}"
    );
    assert_eq!(second, "unexpected token");
    assert!(err.contains("note: run with `RUST_BACKTRACE=1`"), "{err}");
    assert!(
        err.contains("thread 'plain'") && err.contains("thread panic"),
        "{err}"
    );
}

/// The user's function in the backtrace tests: never inlined, so its
/// frame is there in release builds too.
#[inline(never)]
fn parse_config(text: &str) -> u32 {
    text.parse()
        .unwrap_or_else(|_| panic!("bad config {text:?}"))
}

/// Runs `parse_config` in a coroutine and joins it, with a hold threshold
/// below the time symbolizing the process's first backtrace takes (20 to
/// 30 ms for this test binary, debug or release): were the report counted
/// as holding the worker, the monitor would warn.
fn panic_with_a_backtrace() {
    goro::runtime::Builder::new()
        .hold_threshold(Duration::from_millis(15))
        .start()
        .unwrap();
    let h = goro::Builder::new()
        .name("config")
        .spawn(|| parse_config(std::hint::black_box("x")))
        .unwrap();
    assert!(h.join().is_err());
}

#[test]
fn rust_backtrace_shows_the_users_frames_only() {
    if child_scenario().is_some() {
        panic_with_a_backtrace();
        return;
    }
    let out = run_child(
        "rust_backtrace_shows_the_users_frames_only",
        &[("RUST_BACKTRACE", "1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let (_, backtrace) = err
        .split_once("stack backtrace:\n")
        .unwrap_or_else(|| panic!("no backtrace in\n{err}"));
    let (backtrace, _) = backtrace
        .split_once("note: Some details are omitted")
        .unwrap_or_else(|| panic!("no RUST_BACKTRACE=full note in\n{err}"));
    // It starts at the code that panicked: the closure given to
    // `unwrap_or_else` (inlined or not), then the function.
    let first = backtrace.lines().next().unwrap_or("");
    assert!(
        first.starts_with("   0: panic::parse_config"),
        "{backtrace}"
    );
    for goro_frame in [
        "goro::runtime::diag::panic_hook",
        "std::panicking",
        "core::panicking",
        "goro::runtime::task",
        "goro::runtime::scheduler::worker",
        "corosensei",
    ] {
        assert!(
            !backtrace.contains(goro_frame),
            "{goro_frame} in\n{backtrace}"
        );
    }
    assert!(backtrace.contains("tests/panic.rs"), "{backtrace}");
    assert!(!err.contains("has held worker"), "{err}");
}

#[test]
fn rust_backtrace_full_shows_every_frame() {
    if child_scenario().is_some() {
        panic_with_a_backtrace();
        return;
    }
    let out = run_child(
        "rust_backtrace_full_shows_every_frame",
        &[("RUST_BACKTRACE", "full")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    for frame in [
        "panic::parse_config",
        "goro::runtime::diag::panic_hook",
        "goro::runtime::scheduler::worker",
        "corosensei",
    ] {
        assert!(err.contains(frame), "no {frame} in\n{err}");
    }
    assert!(!err.contains("note: Some details are omitted"), "{err}");
    assert!(!err.contains("has held worker"), "{err}");
}

#[test]
fn a_coroutine_that_cannot_start_fails_its_join() {
    if child_scenario().is_some() {
        goro::runtime::Builder::new().workers(1).start().unwrap();
        assert_eq!(goro::spawn(|| 1).join().unwrap(), 1);
        // Every other thread must be past its start (std maps each new
        // thread's signal stack there, which the limit below would fail):
        // wait until they all sleep.
        let me = common::gettid().to_string();
        loop {
            let all_asleep = std::fs::read_dir("/proc/self/task").unwrap().all(|t| {
                let t = t.unwrap();
                t.file_name().to_str() == Some(me.as_str())
                    || std::fs::read_to_string(t.path().join("stat")).is_ok_and(|st| {
                        st.rsplit(')')
                            .next()
                            .unwrap_or("")
                            .trim_start()
                            .starts_with('S')
                    })
            });
            if all_asleep {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // Address space for what the process has and a little more, so that
        // a 1 GiB stack cannot be reserved.
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
        let limit = libc::rlimit {
            rlim_cur: pages * page + (64 << 20),
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: setrlimit reads only the struct we pass.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
        let h = goro::Builder::new()
            .name("big")
            .stack_size(1 << 30)
            .spawn(|| 2)
            .unwrap();
        let id = h.coroutine().id();
        let err = h.join().unwrap_err();
        assert!(!err.is_panic());
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("coroutine 'big' ({id}) could not start: ")),
            "{text}"
        );
        assert!(format!("{err:?}").contains("not_started"), "{err:?}");
        let source = err
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            source.map(std::io::Error::kind),
            Some(std::io::ErrorKind::OutOfMemory),
            "{text}"
        );
        let err = err.try_into_panic().unwrap_err();
        let into_panic = panic::catch_unwind(AssertUnwindSafe(|| err.into_panic()));
        assert!(into_panic.is_err());
        return;
    }
    let out = run_child("a_coroutine_that_cannot_start_fails_its_join", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("goro: cannot start coroutine 'big'"),
        "{}",
        stderr(&out)
    );
}
