//! Loom models of the lock-free protocols the runtime rests on, run on the
//! runtime's own types (see `crate::loom`):
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test --release --lib loom
//! ```
//!
//! Each model is a handful of threads playing the parts of the protocol;
//! loom runs every interleaving (up to `MAX_PREEMPTIONS` forced switches,
//! which keeps each model to seconds) and every outcome the memory model
//! allows, and the assertions say what must hold in all of them.

use std::sync::atomic::Ordering::{Relaxed, SeqCst};

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize};
use loom::thread;

use crate::loom::fence;
use crate::runtime::park::blocker::{BlockerState, Outcome, Phase};
use crate::runtime::park::state::ParkState;
use crate::runtime::scheduler::idle::{IdleSet, SleepState, Sleeper};
use crate::runtime::task::join::{Completed, Detached, JoinState};

/// Forced context switches per execution: bugs in protocols of this size
/// show up within two or three (loom's own guidance), and each one more
/// multiplies a model's run time.
const MAX_PREEMPTIONS: usize = 3;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(MAX_PREEMPTIONS);
    builder.check(f);
}

/// The coroutine's side of a park: re-check the condition, consume an
/// early unpark, else let the worker try to park it. Returns true if it
/// ended up parked (only an unpark that returns true may resume it).
fn park_until(state: &ParkState, ready: impl Fn() -> bool) -> bool {
    loop {
        if ready() {
            return false;
        }
        if state.take_notification() {
            continue;
        }
        // Switched back to the worker, which tries to mark it PARKED.
        if state.try_park() {
            return true;
        }
    }
}

#[test]
fn loom_park_and_unpark_lose_no_wakeup() {
    model(|| {
        let state = Arc::new(ParkState::new());
        let ready = Arc::new(AtomicBool::new(false));
        let waker = {
            let (state, ready) = (state.clone(), ready.clone());
            thread::spawn(move || {
                // The condition is written plainly: the park state's own
                // orderings must make it visible to the coroutine.
                ready.store(true, Relaxed);
                state.unpark()
            })
        };
        let parked = park_until(&state, || ready.load(Relaxed));
        let queued = waker.join().unwrap();
        assert_eq!(
            parked, queued,
            "a parked coroutine is queued by exactly its unparker, and only then"
        );
    });
}

#[test]
fn loom_two_unparkers_queue_a_parked_coroutine_once() {
    model(|| {
        let state = Arc::new(ParkState::new());
        let flags = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
        let wakers: Vec<_> = (0..2)
            .map(|i| {
                let (state, flags) = (state.clone(), flags.clone());
                thread::spawn(move || {
                    flags[i].store(true, Relaxed);
                    state.unpark()
                })
            })
            .collect();
        let parked = park_until(&state, || flags.iter().all(|f| f.load(Relaxed)));
        let queued = wakers
            .into_iter()
            .map(|w| w.join().unwrap())
            .filter(|&q| q)
            .count();
        assert_eq!(queued, usize::from(parked));
    });
}

/// A completer: claim, write the outcome, publish DONE.
fn complete(b: &BlockerState, winner: usize, closed: bool) -> bool {
    if !b.claim() {
        return false;
    }
    b.set_outcome(winner, closed);
    b.publish();
    true
}

#[test]
fn loom_blocker_send_close_and_timeout_have_one_winner() {
    model(|| {
        let b = Arc::new(BlockerState::new(false));
        // A channel send (case 1) and a close (case 2) race for a receiver
        // whose deadline has passed.
        let send = {
            let b = b.clone();
            thread::spawn(move || complete(&b, 1, false))
        };
        let close = {
            let b = b.clone();
            thread::spawn(move || complete(&b, 2, true))
        };
        let timed_out = b.cancel();
        let outcome = if timed_out {
            Outcome::TimedOut
        } else {
            loop {
                match b.phase() {
                    Phase::Done(o) => break o,
                    _ => thread::yield_now(),
                }
            }
        };
        let sent = send.join().unwrap();
        let closed = close.join().unwrap();
        assert_eq!(
            usize::from(sent) + usize::from(closed) + usize::from(timed_out),
            1
        );
        let expected = match (sent, closed) {
            (true, _) => Outcome::Done {
                winner: 1,
                closed: false,
            },
            (_, true) => Outcome::Done {
                winner: 2,
                closed: true,
            },
            _ => Outcome::TimedOut,
        };
        assert_eq!(outcome, expected);
    });
}

#[test]
fn loom_an_exclusive_blocker_shows_its_one_completer_outcome() {
    model(|| {
        let b = Arc::new(BlockerState::new(true));
        let completer = {
            let b = b.clone();
            thread::spawn(move || assert!(complete(&b, 3, true)))
        };
        let outcome = loop {
            match b.phase() {
                Phase::Done(o) => break o,
                _ => thread::yield_now(),
            }
        };
        assert_eq!(
            outcome,
            Outcome::Done {
                winner: 3,
                closed: true
            }
        );
        completer.join().unwrap();
    });
}

/// A worker as the idle protocol sees it: its sleep state, and whether a
/// waker wrote its poller's eventfd.
struct TestWorker {
    sleep: SleepState,
    poller_woken: AtomicBool,
}

impl Sleeper for TestWorker {
    fn notify(&self) {
        if self.sleep.notify() {
            self.poller_woken.store(true, SeqCst);
        }
    }
}

/// Worker 0 runs out of work and goes to sleep while a producer publishes
/// work (`stealable`: into a queue any worker may take from, announced with
/// `wake_one`; else into worker 0's own inbox, announced with its
/// `notify`). Whatever the interleaving, the sleeper's last look sees the
/// work, or its poller is woken.
fn sleeper_and_producer(stealable: bool) {
    model(move || {
        let idle = Arc::new(IdleSet::new(1));
        let workers = Arc::new([TestWorker {
            sleep: SleepState::new(),
            poller_woken: AtomicBool::new(false),
        }]);
        let work = Arc::new(AtomicBool::new(false));
        // Worker 0 has just looked for work, counted as spinning.
        idle.start_spinning();
        let producer = {
            let (idle, workers, work) = (idle.clone(), workers.clone(), work.clone());
            thread::spawn(move || {
                work.store(true, Relaxed);
                fence(SeqCst);
                if stealable {
                    idle.wake_one(&*workers);
                } else {
                    workers[0].notify();
                }
            })
        };
        idle.prepare_to_sleep(0, &workers[0].sleep);
        let saw_work = work.load(Relaxed);
        producer.join().unwrap();
        assert!(
            saw_work || workers[0].poller_woken.load(SeqCst),
            "the sleeper missed the work and nobody woke it"
        );
        idle.back_from_sleep(0, &workers[0].sleep);
    });
}

#[test]
fn loom_idle_stealable_work_reaches_a_worker_going_to_sleep() {
    sleeper_and_producer(true);
}

#[test]
fn loom_idle_inbox_work_reaches_its_worker_going_to_sleep() {
    sleeper_and_producer(false);
}

/// A task cell as the join protocol sees it: the word, the output slot,
/// and counts of what happened to the output and the cell.
struct TestTask {
    state: JoinState,
    output: UnsafeCell<Option<u32>>,
    /// Outputs dropped in user context (by the coroutine or the handle).
    dropped: AtomicUsize,
    /// Times the cell was freed.
    freed: AtomicUsize,
}

impl TestTask {
    fn new(refs: u32) -> TestTask {
        TestTask {
            state: JoinState::new(refs),
            output: UnsafeCell::new(None),
            dropped: AtomicUsize::new(0),
            freed: AtomicUsize::new(0),
        }
    }

    /// The last reference frees the cell: the output must be gone by then
    /// (dropping it here would run user code on a worker's stack).
    fn free(&self) {
        // SAFETY: loom's `with` and `with_mut` hand out a valid pointer,
        // and fail the model if the access races with another.
        let left = self.output.with(|o| unsafe { *o });
        assert!(left.is_none(), "the cell was freed with its output");
        self.freed.fetch_add(1, Relaxed);
    }

    fn release(&self) {
        if self.state.release() {
            self.free();
        }
    }

    /// The coroutine's end (`Cell::run`), then its worker's
    /// (`TaskRef::complete`); returns whether a joiner had to be woken.
    fn end_coroutine(&self) -> bool {
        if self.state.is_detached() {
            self.dropped.fetch_add(1, Relaxed);
        } else {
            // SAFETY: as in `free`.
            self.output.with_mut(|o| unsafe { *o = Some(7) });
            if self.state.output_written() {
                // SAFETY: as in `free`.
                self.output.with_mut(|o| unsafe { *o = None });
                self.dropped.fetch_add(1, Relaxed);
            }
        }
        match self.state.complete_and_release() {
            Completed::Released { last } => {
                if last {
                    self.free();
                }
                false
            }
            Completed::WakeJoiner => {
                self.release();
                true
            }
        }
    }

    /// A `JoinHandle`'s drop.
    fn drop_handle(&self) {
        match self.state.detach_and_release() {
            Detached::Released { last } => {
                if last {
                    self.free();
                }
            }
            Detached::TakeOutput => {
                // SAFETY: as in `free`.
                let taken = self.output.with_mut(|o| unsafe { (*o).take() });
                assert_eq!(taken, Some(7));
                self.dropped.fetch_add(1, Relaxed);
                self.release();
            }
        }
    }
}

#[test]
fn loom_join_a_dropped_handle_and_the_coroutine_drop_the_output_once() {
    model(|| {
        // The queue's reference, the handle's, and a waker's that holds one
        // for a while (who frees the cell varies).
        let task = Arc::new(TestTask::new(3));
        let coroutine = {
            let task = task.clone();
            thread::spawn(move || assert!(!task.end_coroutine()))
        };
        let waker = {
            let task = task.clone();
            thread::spawn(move || task.release())
        };
        task.drop_handle();
        coroutine.join().unwrap();
        waker.join().unwrap();
        assert_eq!(task.dropped.load(Relaxed), 1, "the output is dropped once");
        assert_eq!(task.freed.load(Relaxed), 1, "the cell is freed once");
    });
}

#[test]
fn loom_join_a_joiner_gets_the_output_and_is_woken_if_it_waited() {
    model(|| {
        let task = Arc::new(TestTask::new(2));
        let woken = Arc::new(AtomicBool::new(false));
        let coroutine = {
            let (task, woken) = (task.clone(), woken.clone());
            thread::spawn(move || {
                if task.end_coroutine() {
                    woken.store(true, SeqCst);
                }
            })
        };
        // `Header::wait_complete`, then `JoinHandle::join`'s take.
        if !task.state.is_complete() && !task.state.wait_for_completion() {
            while !woken.load(SeqCst) {
                thread::yield_now();
            }
        }
        // SAFETY: as in `TestTask::free`.
        let taken = task.output.with_mut(|o| unsafe { (*o).take() });
        assert_eq!(taken, Some(7), "the joiner gets the output");
        task.release();
        coroutine.join().unwrap();
        assert_eq!(task.dropped.load(Relaxed), 0);
        assert_eq!(task.freed.load(Relaxed), 1, "the cell is freed once");
    });
}
