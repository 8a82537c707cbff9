//! `goro::context`.

use std::time::{Duration, Instant};

use goro::chan::TryRecvError;
use goro::context::{self, Context, ContextError};

const MS: Duration = Duration::from_millis(1);
/// Generous bound for "eventually": only a starved machine takes this long.
const EVENTUALLY: Duration = Duration::from_secs(10);

#[test]
fn background_is_never_done() {
    let bg = Context::background();
    assert_eq!(bg.err(), None);
    assert!(!bg.is_done());
    assert_eq!(bg.deadline(), None);
    assert_eq!(bg.done().try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn errors_display_as_go_does() {
    assert_eq!(ContextError::Cancelled.to_string(), "context canceled");
    assert_eq!(
        ContextError::DeadlineExceeded.to_string(),
        "context deadline exceeded"
    );
    let boxed: Box<dyn std::error::Error> = Box::new(ContextError::Cancelled);
    assert_eq!(boxed.to_string(), "context canceled");
}

#[test]
fn cancel_wakes_every_select_on_done() {
    goro::run(|| {
        let (ctx, cancel) = context::with_cancel(&Context::background());
        let waiters: Vec<_> = (0..20)
            .map(|_| {
                let ctx = ctx.clone();
                goro::go!(move || {
                    goro::select! {
                        recv(ctx.done()) -> r => {
                            assert!(r.is_err(), "done is closed, never sent on");
                            ctx.err()
                        }
                        timeout(EVENTUALLY) => None,
                    }
                })
            })
            .collect();
        goro::time::sleep(10 * MS); // let them block
        assert_eq!(ctx.err(), None);
        cancel.cancel();
        cancel.cancel(); // a second call does nothing
        for w in waiters {
            assert_eq!(w.join().unwrap(), Some(ContextError::Cancelled));
        }
        assert_eq!(ctx.err(), Some(ContextError::Cancelled));
    });
}

#[test]
fn cancelling_a_parent_cancels_children_and_grandchildren() {
    let (parent, cancel) = context::with_cancel(&Context::background());
    let (child, _c) = context::with_cancel(&parent);
    let (grandchild, _g) = context::with_timeout(&child, Duration::from_secs(3600));
    let (sibling, _s) = context::with_cancel(&parent);
    cancel.cancel();
    for ctx in [&parent, &child, &grandchild, &sibling] {
        assert_eq!(ctx.err(), Some(ContextError::Cancelled));
        assert!(ctx.done().recv().is_err(), "done is closed");
    }
}

#[test]
fn cancelling_a_child_leaves_its_parent_and_siblings() {
    let (parent, _cancel) = context::with_cancel(&Context::background());
    let (child, cancel_child) = context::with_cancel(&parent);
    let (sibling, _s) = context::with_cancel(&parent);
    let (grandchild, _g) = context::with_cancel(&child);
    cancel_child.cancel();
    assert_eq!(child.err(), Some(ContextError::Cancelled));
    assert_eq!(grandchild.err(), Some(ContextError::Cancelled));
    assert_eq!(parent.err(), None);
    assert_eq!(sibling.err(), None);
    assert_eq!(parent.done().try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn a_child_of_a_done_parent_is_born_done() {
    let (parent, cancel) = context::with_cancel(&Context::background());
    cancel.cancel();
    let (child, _c) = context::with_timeout(&parent, Duration::from_secs(3600));
    assert_eq!(child.err(), Some(ContextError::Cancelled));
    assert!(child.done().recv().is_err());
}

#[test]
fn with_timeout_expires_with_deadline_exceeded_never_early() {
    goro::run(|| {
        let start = Instant::now();
        let (ctx, cancel) = context::with_timeout(&Context::background(), 30 * MS);
        assert!(ctx.deadline().unwrap() >= start + 30 * MS);
        goro::select! {
            recv(ctx.done()) -> _ => {}
            timeout(EVENTUALLY) => panic!("the deadline never came"),
        }
        assert!(Instant::now() >= start + 30 * MS, "done early");
        assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
        cancel.cancel();
        assert_eq!(
            ctx.err(),
            Some(ContextError::DeadlineExceeded),
            "the first reason stays"
        );
    });
}

#[test]
fn a_deadline_in_the_past_is_done_at_once() {
    let (ctx, _cancel) = context::with_deadline(&Context::background(), Instant::now());
    assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
    assert!(ctx.done().recv().is_err());
}

#[test]
fn a_childs_deadline_is_the_earlier_of_its_own_and_its_parents() {
    let bg = Context::background();
    let now = Instant::now();
    let (parent, _p) = context::with_deadline(&bg, now + Duration::from_secs(60));
    let (later, _l) = context::with_deadline(&parent, now + Duration::from_secs(120));
    assert_eq!(later.deadline(), parent.deadline());
    let (earlier, _e) = context::with_deadline(&parent, now + Duration::from_secs(30));
    assert_eq!(earlier.deadline(), Some(now + Duration::from_secs(30)));
    let (plain, _c) = context::with_cancel(&earlier);
    assert_eq!(plain.deadline(), earlier.deadline(), "inherited");
}

#[test]
fn a_parents_deadline_expires_its_children() {
    goro::run(|| {
        let start = Instant::now();
        let (parent, _p) = context::with_timeout(&Context::background(), 20 * MS);
        let (child, _c) = context::with_cancel(&parent);
        let (long, _l) = context::with_timeout(&parent, Duration::from_secs(3600));
        assert!(child.done().recv_timeout(EVENTUALLY).is_err());
        assert!(long.done().recv_timeout(EVENTUALLY).is_err());
        assert!(Instant::now() >= start + 20 * MS);
        assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));
        assert_eq!(long.err(), Some(ContextError::DeadlineExceeded));
    });
}

#[test]
fn err_sees_the_deadline_while_the_worker_is_held() {
    goro::run(|| {
        let start = Instant::now();
        let (ctx, _cancel) = context::with_timeout(&Context::background(), 20 * MS);
        // Computes without ever blocking, so this worker fires no timers:
        // `is_done` must still notice the deadline by itself.
        let give_up = start + EVENTUALLY;
        while !ctx.is_done() && Instant::now() < give_up {
            std::hint::spin_loop();
        }
        assert!(Instant::now() >= start + 20 * MS);
        assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
        assert!(ctx.done().recv().is_err(), "and done is closed");
    });
}

#[test]
fn works_from_a_plain_thread() {
    std::thread::spawn(|| {
        let start = Instant::now();
        let (ctx, _cancel) = context::with_timeout(&Context::background(), 20 * MS);
        assert!(ctx.done().recv().is_err(), "blocks the thread until done");
        assert!(Instant::now() >= start + 20 * MS);
        assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
    })
    .join()
    .unwrap();
}

#[test]
fn a_cancel_func_reaches_a_context_kept_only_by_its_children() {
    let (ctx, cancel) = context::with_cancel(&Context::background());
    let (child, _c) = context::with_cancel(&ctx);
    drop(ctx);
    cancel.cancel();
    assert_eq!(child.err(), Some(ContextError::Cancelled));
}

mod common;

/// A per-request timeout cancelled when the request is done frees its
/// timer at once, not at the deadline.
#[test]
fn cancelled_timeouts_give_their_memory_back() {
    if common::is_child("cancelled_timeouts_give_their_memory_back") {
        goro::run(|| {
            let bg = Context::background();
            let growth = common::steady_rss_growth(8, || {
                for _ in 0..50_000 {
                    let (_ctx, cancel) = context::with_timeout(&bg, Duration::from_secs(3600));
                    cancel.cancel();
                }
            });
            assert!(growth < common::RSS_SLACK, "grew by {growth} bytes");
        });
        return;
    }
    common::child("cancelled_timeouts_give_their_memory_back", &[]);
}
