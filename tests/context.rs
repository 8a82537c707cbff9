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

#[derive(Debug, PartialEq)]
struct RequestId(u64);
#[derive(Debug, PartialEq)]
struct User(&'static str);

/// A cause for tests: an error type of our own, to downcast to.
#[derive(Debug, PartialEq)]
struct Why(&'static str);

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Why {}

/// The cause of `ctx`, as a `Why` if it is one, else as the `ContextError`
/// it must then be.
fn cause_of(ctx: &Context) -> Option<Result<&'static str, ContextError>> {
    let cause = ctx.cause()?;
    if let Some(why) = cause.downcast_ref::<Why>() {
        return Some(Ok(why.0));
    }
    match cause.downcast_ref::<ContextError>() {
        Some(err) => Some(Err(*err)),
        None => panic!("unexpected cause {cause}"),
    }
}

#[test]
fn values_are_found_by_type_from_descendants_nearest_first() {
    let bg = Context::background();
    let root = context::with_value(&bg, RequestId(1));
    let (cancellable, _c) = context::with_cancel(&root);
    let with_user = context::with_value(&cancellable, User("ann"));
    let (timed, _t) = context::with_timeout(&with_user, Duration::from_secs(3600));
    let shadowed = context::with_value(&timed, RequestId(2));

    assert_eq!(bg.value::<RequestId>(), None);
    assert_eq!(root.value::<RequestId>(), Some(&RequestId(1)));
    assert_eq!(
        root.value::<User>(),
        None,
        "a parent does not see its child's"
    );
    assert_eq!(cancellable.value::<RequestId>(), Some(&RequestId(1)));
    assert_eq!(timed.value::<User>(), Some(&User("ann")));
    assert_eq!(timed.value::<RequestId>(), Some(&RequestId(1)));
    assert_eq!(shadowed.value::<RequestId>(), Some(&RequestId(2)));
    assert_eq!(shadowed.value::<User>(), Some(&User("ann")));
    assert_eq!(shadowed.value::<u64>(), None, "keyed by type, not by shape");
    assert_eq!(shadowed.clone().value::<RequestId>(), Some(&RequestId(2)));
}

#[test]
fn a_value_child_is_done_with_its_parent() {
    let (parent, cancel) = context::with_timeout(&Context::background(), Duration::from_secs(3600));
    let child = context::with_value(&parent, User("ann"));
    assert_eq!(child.deadline(), parent.deadline());
    assert_eq!(child.err(), None);
    cancel.cancel();
    assert_eq!(child.err(), Some(ContextError::Cancelled));
    assert!(child.done().recv().is_err());
}

#[test]
fn a_cancel_cause_reaches_every_descendant() {
    let (parent, cancel) = context::with_cancel_cause(&Context::background());
    let (child, _c) = context::with_cancel(&parent);
    let valued = context::with_value(&child, User("ann"));
    let (grandchild, _g) = context::with_timeout(&valued, Duration::from_secs(3600));
    assert_eq!(cause_of(&grandchild), None, "not done, no cause");
    cancel.cancel(Why("shutting down"));
    cancel.cancel(Why("again")); // the first cause stays
    for ctx in [&parent, &child, &valued, &grandchild] {
        assert_eq!(ctx.err(), Some(ContextError::Cancelled));
        assert_eq!(cause_of(ctx), Some(Ok("shutting down")));
    }
    let (late, _l) = context::with_cancel(&parent);
    assert_eq!(cause_of(&late), Some(Ok("shutting down")), "born with it");
    assert_eq!(
        parent.cause().unwrap().to_string(),
        "shutting down",
        "a message is a cause too"
    );
}

#[test]
fn a_child_cancelled_first_keeps_its_own_cause() {
    let (parent, cancel_parent) = context::with_cancel_cause(&Context::background());
    let (child, cancel_child) = context::with_cancel_cause(&parent);
    cancel_child.cancel("the child's");
    cancel_parent.cancel(Why("the parent's"));
    assert_eq!(child.cause().unwrap().to_string(), "the child's");
    assert_eq!(cause_of(&parent), Some(Ok("the parent's")));
}

#[test]
fn without_a_cause_the_cause_is_the_error() {
    let (ctx, cancel) = context::with_cancel(&Context::background());
    let (child, _c) = context::with_cancel(&ctx);
    cancel.cancel();
    assert_eq!(cause_of(&ctx), Some(Err(ContextError::Cancelled)));
    assert_eq!(cause_of(&child), Some(Err(ContextError::Cancelled)));
    let (expired, _e) = context::with_deadline(&Context::background(), Instant::now());
    assert_eq!(
        cause_of(&expired),
        Some(Err(ContextError::DeadlineExceeded))
    );
    assert_eq!(Context::background().cause().map(|c| c.to_string()), None);
}

#[test]
fn a_deadline_cause_is_reported_when_the_deadline_passes() {
    goro::run(|| {
        let (ctx, _cancel) =
            context::with_timeout_cause(&Context::background(), 20 * MS, Why("too slow"));
        let (child, _c) = context::with_cancel(&ctx);
        assert_eq!(cause_of(&ctx), None);
        assert!(child.done().recv_timeout(EVENTUALLY).is_err());
        for c in [&ctx, &child] {
            assert_eq!(c.err(), Some(ContextError::DeadlineExceeded));
            assert_eq!(cause_of(c), Some(Ok("too slow")));
        }
    });
}

#[test]
fn cancelling_a_deadline_context_early_gives_no_cause() {
    let deadline = Instant::now() + Duration::from_secs(3600);
    let (ctx, cancel) =
        context::with_deadline_cause(&Context::background(), deadline, Why("too slow"));
    cancel.cancel();
    assert_eq!(cause_of(&ctx), Some(Err(ContextError::Cancelled)));
}

#[test]
fn an_earlier_parent_deadline_brings_the_parents_cause() {
    let now = Instant::now();
    let (parent, _p) = context::with_deadline_cause(&Context::background(), now, Why("parent"));
    let (child, _c) =
        context::with_deadline_cause(&parent, now + Duration::from_secs(3600), Why("child"));
    assert_eq!(child.deadline(), Some(now));
    assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));
    assert_eq!(cause_of(&child), Some(Ok("parent")));
}

#[test]
fn err_on_a_descendant_expires_the_context_that_set_the_deadline() {
    goro::run(|| {
        let start = Instant::now();
        let (parent, _p) =
            context::with_timeout_cause(&Context::background(), 20 * MS, Why("parent's"));
        let (child, _c) = context::with_cancel(&parent);
        // Never blocks, so this worker fires no timers: `is_done` must
        // notice the deadline, and expire it where it was set.
        let give_up = start + EVENTUALLY;
        while !child.is_done() && Instant::now() < give_up {
            std::hint::spin_loop();
        }
        assert_eq!(cause_of(&child), Some(Ok("parent's")));
        assert_eq!(parent.done().try_recv(), Err(TryRecvError::Closed));
        assert_eq!(cause_of(&parent), Some(Ok("parent's")));
    });
}

#[test]
fn after_func_runs_in_a_new_coroutine_once_done() {
    goro::run(|| {
        let me = goro::current().unwrap().id();
        let (ctx, cancel) = context::with_cancel_cause(&Context::background());
        let (tx, rx) = goro::chan::chan(2);
        let seen = ctx.clone();
        let tx2 = tx.clone();
        let _first = context::after_func(&ctx, move || {
            let id = goro::current().map(|c| c.id());
            tx.send((id, cause_of(&seen))).unwrap();
        });
        let _second = context::after_func(&ctx, move || tx2.send((None, None)).unwrap());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "not before done");
        cancel.cancel(Why("stop"));
        let mut got: Vec<_> = (0..2)
            .map(|_| rx.recv_timeout(EVENTUALLY).unwrap())
            .collect();
        got.sort_by_key(|(id, _)| id.is_some());
        assert_eq!(got[0], (None, None), "each registered function runs");
        let (id, cause) = got[1];
        assert!(id.is_some_and(|id| id != me), "in a new coroutine");
        assert_eq!(cause, Some(Ok("stop")), "after the context is done");
        // Both ran once and are gone, with their senders.
        assert!(rx.recv_timeout(EVENTUALLY).is_err());
    });
}

#[test]
fn after_func_stopped_never_runs() {
    let (ctx, cancel) = context::with_cancel(&Context::background());
    let (tx, rx) = goro::chan::chan::<()>(1);
    let after = context::after_func(&ctx, move || tx.send(()).unwrap());
    assert!(after.stop(), "stopped before it ran");
    assert!(!after.stop(), "a second stop stops nothing");
    // Stopping dropped the function, and with it the only sender.
    assert!(rx.recv().is_err());
    cancel.cancel();
    assert!(!after.stop());
}

#[test]
fn after_func_stop_reports_false_once_it_started() {
    goro::run(|| {
        let (ctx, _cancel) = context::with_timeout(&Context::background(), 10 * MS);
        let (tx, rx) = goro::chan::chan(1);
        let after = context::after_func(&ctx, move || tx.send(()).unwrap());
        rx.recv_timeout(EVENTUALLY).unwrap();
        assert!(!after.stop());
    });
}

#[test]
fn after_func_on_a_done_context_runs_at_once() {
    let (ctx, cancel) = context::with_cancel(&Context::background());
    cancel.cancel();
    let (tx, rx) = goro::chan::chan(1);
    let after = context::after_func(&ctx, move || tx.send(()).unwrap());
    assert_eq!(rx.recv_timeout(EVENTUALLY), Ok(()));
    assert!(!after.stop());
}

#[test]
fn after_func_keeps_its_context_until_it_runs() {
    goro::run(|| {
        // Only the registration holds each context now.
        let (ctx, cancel) = context::with_cancel(&Context::background());
        let (tx, rx) = goro::chan::chan(2);
        let tx2 = tx.clone();
        context::after_func(&ctx, move || tx.send("cancelled").unwrap());
        drop(ctx);
        let (timed, _t) = context::with_timeout(&Context::background(), 10 * MS);
        context::after_func(&timed, move || tx2.send("expired").unwrap());
        drop(timed);
        cancel.cancel();
        let mut got: Vec<_> = (0..2)
            .map(|_| rx.recv_timeout(EVENTUALLY).unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, ["cancelled", "expired"]);
    });
}

#[test]
fn after_func_on_a_context_never_done_never_runs() {
    let (ctx, cancel) = context::with_cancel(&Context::background());
    let detached = context::without_cancel(&ctx);
    let (tx, rx) = goro::chan::chan::<()>(1);
    let after = context::after_func(&detached, move || tx.send(()).unwrap());
    cancel.cancel();
    // Never ran: nothing was sent, and the function (with `tx`) was
    // dropped when registered, as Go keeps none on a context never done.
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert!(after.stop(), "stop reports it stopped, as in Go");
    assert!(!after.stop());
}

#[test]
fn without_cancel_keeps_values_but_never_ends() {
    let root = context::with_value(&Context::background(), RequestId(7));
    let (ctx, cancel) = context::with_timeout(&root, Duration::from_secs(3600));
    let detached = context::without_cancel(&ctx);
    let (detached_child, _c) = context::with_cancel(&detached);
    assert_eq!(detached.deadline(), None);
    assert_eq!(detached.value::<RequestId>(), Some(&RequestId(7)));
    assert_eq!(detached_child.value::<RequestId>(), Some(&RequestId(7)));
    cancel.cancel();
    assert_eq!(ctx.err(), Some(ContextError::Cancelled));
    for c in [&detached, &detached_child] {
        assert_eq!(c.err(), None);
        assert!(c.cause().is_none());
        assert_eq!(c.done().try_recv(), Err(TryRecvError::Empty));
    }
}

#[test]
fn contexts_display_as_gos_string() {
    let bg = Context::background();
    assert_eq!(bg.to_string(), "context.Background");
    let (c, _cancel) = context::with_cancel(&bg);
    assert_eq!(c.to_string(), "context.Background.WithCancel");
    // A value prints its type as the key, and itself if it is a string, as
    // Go's `stringify`; any other value is its type.
    let v = context::with_value(&c, String::from("c1k1"));
    assert_eq!(
        v.to_string(),
        "context.Background.WithCancel.WithValue(alloc::string::String, c1k1)"
    );
    let id = std::any::type_name::<RequestId>();
    let v2 = context::with_value(&v, RequestId(7));
    let (v3, _cancel) = context::with_cancel_cause(&v2);
    let v4 = context::with_value(&v3, "user ann");
    assert_eq!(
        v4.to_string(),
        format!(
            "context.Background.WithCancel.WithValue(alloc::string::String, c1k1)\
             .WithValue({id}, {id}).WithCancel.WithValue(&str, user ann)"
        )
    );
    assert_eq!(
        v4.clone().to_string(),
        v4.to_string(),
        "clones print the same"
    );
    // The order of steps is kept: a value before the cancel.
    let (after, _cancel) = context::with_cancel(&context::with_value(&bg, RequestId(1)));
    assert_eq!(
        after.to_string(),
        format!("context.Background.WithValue({id}, {id}).WithCancel")
    );
    let detached = context::without_cancel(&v2);
    assert_eq!(
        detached.to_string(),
        format!(
            "context.Background.WithCancel.WithValue(alloc::string::String, c1k1)\
             .WithValue({id}, {id}).WithoutCancel"
        )
    );
    let (under, _cancel) = context::with_cancel(&detached);
    assert!(
        under.to_string().ends_with(".WithoutCancel.WithCancel"),
        "{under}"
    );
    assert!(!under.is_done() && under.value::<RequestId>().is_some());
}

#[test]
fn a_deadline_displays_its_time_and_what_is_left() {
    goro::synctest::run(|| {
        // The clock stands still in a bubble: exactly 90 s are left.
        let (c, _cancel) = context::with_timeout(&Context::background(), Duration::from_secs(90));
        let text = c.to_string();
        let inner = text
            .strip_prefix("context.Background.WithDeadline(")
            .and_then(|t| t.strip_suffix(" [1m30s])"))
            .unwrap_or_else(|| panic!("{text}"));
        // `YYYY-MM-DD HH:MM:SS[.fraction] +0000 UTC`.
        let (date, rest) = inner.split_once(' ').unwrap();
        let (time, zone) = rest.split_once(' ').unwrap();
        assert_eq!(zone, "+0000 UTC", "{text}");
        let date: Vec<&str> = date.split('-').collect();
        assert_eq!(
            date.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [4, 2, 2],
            "{text}"
        );
        let clock: Vec<&str> = time.split(':').collect();
        assert_eq!(clock.len(), 3, "{text}");
        assert!(
            clock[2].len() == 2 || clock[2].as_bytes()[2] == b'.',
            "{text}"
        );
        // A later deadline than the parent's is only a cancel, as in Go;
        // a passed deadline shows a negative time left.
        let (later, _cancel) = context::with_timeout(&c, Duration::from_secs(600));
        assert!(
            later.to_string().ends_with(" [1m30s]).WithCancel"),
            "{later}"
        );
        let (cause, _cancel) = context::with_timeout_cause(
            &Context::background(),
            Duration::from_millis(1500),
            "slow",
        );
        assert!(cause.to_string().ends_with(" [1.5s])"), "{cause}");
        goro::sleep(Duration::from_secs(2));
        assert!(cause.to_string().ends_with(" [-500ms])"), "{cause}");
    });
}
