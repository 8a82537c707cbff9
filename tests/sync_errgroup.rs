//! `goro::sync::ErrGroup`: Go's errgroup — the first error, a context
//! cancelled by it, a limit on running members, panics passed to `wait`.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use goro::chan::chan;
use goro::context::{Context, ContextError};
use goro::sync::ErrGroup;

mod common;
use common::{limit, within};

#[derive(Debug, Clone, PartialEq)]
struct JobError(&'static str);

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job failed: {}", self.0)
    }
}

impl std::error::Error for JobError {}

#[test]
fn wait_waits_for_every_member_and_returns_ok() {
    let body = || {
        let group = ErrGroup::<JobError>::new();
        let done: Arc<Vec<AtomicBool>> =
            Arc::new((0..16).map(|_| AtomicBool::new(false)).collect());
        for i in 0..16 {
            let done = done.clone();
            group.go(move || {
                goro::sleep(Duration::from_millis(1 + i as u64 % 3));
                done[i].store(true, Ordering::Relaxed);
                Ok(())
            });
        }
        assert_eq!(group.wait(), Ok(()));
        done.iter().all(|d| d.load(Ordering::Relaxed))
    };
    assert!(within(body), "from a coroutine");
    assert!(limit(body), "from a plain thread");
}

#[test]
fn the_first_error_is_returned_and_cancels_the_context() {
    within(|| {
        let (group, ctx) = ErrGroup::<JobError>::with_context(&Context::background());
        assert!(!ctx.is_done());
        let late = ctx.clone();
        group.go(move || {
            // Fails only once the first error has cancelled the context.
            let _ = late.done().recv();
            Err(JobError("second"))
        });
        let finished = Arc::new(AtomicBool::new(false));
        let f = finished.clone();
        group.go(move || {
            goro::sleep(Duration::from_millis(5));
            f.store(true, Ordering::Relaxed);
            Ok(())
        });
        group.go(|| Err(JobError("first")));
        assert_eq!(group.wait(), Err(JobError("first")));
        assert!(
            finished.load(Ordering::Relaxed),
            "wait returned before a member"
        );
        assert_eq!(ctx.err(), Some(ContextError::Cancelled));
        let cause = ctx.cause().unwrap();
        assert_eq!(cause.downcast_ref::<JobError>(), Some(&JobError("first")));
        assert_eq!(group.wait(), Ok(()), "the error is handed out once");
    });
}

#[test]
fn the_context_is_cancelled_when_wait_returns_without_an_error() {
    within(|| {
        let (group, ctx) = ErrGroup::<String>::with_context(&Context::background());
        group.go(|| Ok(()));
        assert_eq!(group.wait(), Ok(()));
        assert_eq!(ctx.err(), Some(ContextError::Cancelled));
        assert_eq!(ctx.cause().unwrap().to_string(), "context canceled");
    });
}

#[test]
fn the_limit_bounds_running_members() {
    let body = || {
        let group = ErrGroup::<JobError>::new();
        group.set_limit(Some(3));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..24 {
            let (running, most, ran) = (running.clone(), most.clone(), ran.clone());
            group.go(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                goro::sleep(Duration::from_millis(1));
                running.fetch_sub(1, Ordering::SeqCst);
                ran.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
        }
        assert_eq!(group.wait(), Ok(()));
        (most.load(Ordering::SeqCst), ran.load(Ordering::SeqCst))
    };
    for (most, ran) in [within(body), limit(body)] {
        assert_eq!(ran, 24);
        assert!((1..=3).contains(&most), "{most} members ran at once");
    }
}

#[test]
fn go_parks_at_the_limit_and_try_go_refuses() {
    within(|| {
        let group = ErrGroup::<JobError>::new();
        group.set_limit(Some(1));
        let (release, gate) = chan::<()>(0);
        group.go(move || {
            let _ = gate.recv();
            Ok(())
        });
        let refused_ran = Arc::new(AtomicBool::new(false));
        let r = refused_ran.clone();
        assert!(!group.try_go(move || {
            r.store(true, Ordering::Relaxed);
            Ok(())
        }));
        let started = Arc::new(AtomicBool::new(false));
        let (g, s) = (group.clone(), started.clone());
        let starter = goro::spawn(move || {
            g.go(|| Ok(()));
            s.store(true, Ordering::Relaxed);
        });
        goro::sleep(Duration::from_millis(20));
        assert!(
            !started.load(Ordering::Relaxed),
            "go did not wait at the limit"
        );
        drop(release);
        starter.join().unwrap();
        assert!(started.load(Ordering::Relaxed));
        assert_eq!(group.wait(), Ok(()));
        assert!(
            !refused_ran.load(Ordering::Relaxed),
            "try_go's refused closure never runs"
        );
        assert!(group.try_go(|| Ok(())), "under the limit again");
        assert_eq!(group.wait(), Ok(()));
    });
}

#[test]
fn changing_the_limit_while_members_run_panics() {
    within(|| {
        let group = ErrGroup::<JobError>::new();
        group.set_limit(Some(2));
        let (release, gate) = chan::<()>(0);
        group.go(move || {
            let _ = gate.recv();
            Ok(())
        });
        let changed = panic::catch_unwind(AssertUnwindSafe(|| group.set_limit(None)));
        let payload = changed.expect_err("set_limit with a member running");
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            msg,
            "errgroup: modify limit while 1 coroutines in the group are still active"
        );
        drop(release);
        assert_eq!(group.wait(), Ok(()));
        group.set_limit(None);
        for _ in 0..8 {
            assert!(group.try_go(|| Ok(())), "no limit");
        }
        assert_eq!(group.wait(), Ok(()));
    });
}

#[test]
fn a_panicking_member_panics_wait_after_the_others_finish() {
    within(|| {
        let (group, ctx) = ErrGroup::<JobError>::with_context(&Context::background());
        let finished = Arc::new(AtomicUsize::new(0));
        for _ in 0..4 {
            let (finished, ctx) = (finished.clone(), ctx.clone());
            group.go(move || {
                // Stops early: the panic cancelled the context.
                let _ = ctx.done().recv();
                finished.fetch_add(1, Ordering::Relaxed);
                Ok(())
            });
        }
        group.go(|| panic!("member exploded"));
        let waited = panic::catch_unwind(AssertUnwindSafe(|| group.wait()));
        let payload = waited.expect_err("wait resumes the panic");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"member exploded"));
        assert_eq!(finished.load(Ordering::Relaxed), 4);
        let cause = ctx.cause().unwrap().to_string();
        assert!(cause.contains("member exploded"), "{cause}");
    });
}

#[test]
fn members_can_start_more_members() {
    within(|| {
        let group = ErrGroup::<JobError>::new();
        let count = Arc::new(AtomicUsize::new(0));
        fn walk(group: ErrGroup<JobError>, depth: u32, count: Arc<AtomicUsize>) {
            let g = group.clone();
            group.go(move || {
                count.fetch_add(1, Ordering::Relaxed);
                if depth > 0 {
                    walk(g.clone(), depth - 1, count.clone());
                    walk(g, depth - 1, count);
                }
                Ok(())
            });
        }
        walk(group.clone(), 5, count.clone());
        assert_eq!(group.wait(), Ok(()));
        assert_eq!(count.load(Ordering::Relaxed), 63);
    });
}
