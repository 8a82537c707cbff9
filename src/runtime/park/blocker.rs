//! `Blocker`: one blocked operation that exactly one completer may finish.
//!
//! A coroutine (or thread) that must wait — for a channel peer, a lock, any
//! of a `select`'s channels — puts a `Blocker` on its own stack, links nodes
//! pointing at it into the wait queues of what it waits on, and parks until
//! the blocker is DONE. A completer, holding the lock of the queue it found a
//! node in, first `claim`s the blocker (so that of several queues, and of a
//! racing timeout, exactly one wins), then moves the value, then `finish`es
//! it, which publishes DONE and returns the wakeup to perform.
//!
//! Memory: a node is reachable only through queues whose lock the completer
//! holds, and its owner does not return before it is DONE or has unlinked
//! every node under those locks. So a completer may touch a node from claim
//! to finish, and never after: DONE is the last write.
//!
//! Waking without a reference count: if the owner lives on the completer's
//! own worker, it cannot run before the completer yields, so `finish` unparks
//! it directly. Otherwise `finish` takes a strong reference first, because
//! the owner may see DONE, return and end before the unpark happens.

use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::thread::{self, Thread};
use std::time::Instant;

use crate::loom::{AtomicBool, AtomicU8, AtomicUsize};
use crate::runtime::diag::trace;
use crate::runtime::park;
use crate::runtime::park::wait::WaitingOn;
use crate::runtime::scheduler::worker::Worker;
use crate::runtime::task::header::{Header, TaskRef};
use crate::runtime::time::clock::Clock;

/// No completer has claimed the blocker yet.
const WAITING: u8 = 0;
/// A completer claimed it and is moving the value.
const CLAIMED: u8 = 1;
/// Finished: `winner` and `closed` are set.
const DONE: u8 = 2;
/// The owner gave up (timeout); completers skip its nodes.
const CANCELLED: u8 = 3;

/// The blocked party, named without owning it.
enum Owner {
    /// A coroutine, by the header of its task, which its worker's table
    /// holds while the coroutine lives; it runs in `slot` of `worker`.
    Coroutine {
        header: NonNull<Header>,
        worker: usize,
        slot: u32,
    },
    Thread(Thread),
}

/// What a completer does after releasing its lock.
#[must_use]
pub enum Wake {
    /// Nothing: the owner was already queued.
    Done,
    Coroutine(TaskRef),
    Thread(Thread),
}

impl Wake {
    /// Wakes the owner, unless the completer's worker already queued it
    /// (the usual case of two coroutines on one worker, tested inline).
    #[inline]
    pub(crate) fn wake(self) {
        if !matches!(self, Wake::Done) {
            self.wake_elsewhere();
        }
    }

    #[inline(never)]
    fn wake_elsewhere(self) {
        match self {
            Wake::Done => {}
            Wake::Coroutine(task) => park::unpark(task.header()),
            Wake::Thread(t) => t.unpark(),
        }
    }
}

/// How a blocked operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Case `winner` completed; `closed` if it completed by the channel
    /// closing rather than by a transfer.
    Done { winner: usize, closed: bool },
    /// The deadline passed first; no node was completed.
    TimedOut,
}

/// Where a `BlockerState` stands.
pub(crate) enum Phase {
    /// No completer has claimed it.
    Waiting,
    /// A completer claimed it and is moving the value.
    Claimed,
    /// Finished, with this outcome.
    Done(Outcome),
}

/// Who finished a blocked operation, and how: the claim protocol between
/// its completers and its owner's timeout, apart from who the owner is, so
/// that loom can model it (`loom_models::blocker_*`).
pub(crate) struct BlockerState {
    /// Only one completer can ever reach this blocker (one node, no
    /// deadline), so claiming needs no compare-and-swap.
    exclusive: bool,
    /// WAITING, CLAIMED, DONE or CANCELLED.
    state: AtomicU8,
    /// Written by the completer between claim and finish, read by the owner
    /// after DONE; the release/acquire on `state` orders both.
    winner: AtomicUsize,
    /// Written and read as `winner`.
    closed: AtomicBool,
}

impl BlockerState {
    pub(crate) fn new(exclusive: bool) -> BlockerState {
        BlockerState {
            exclusive,
            state: AtomicU8::new(WAITING),
            winner: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// Claims it for one completer. False if another completer or the
    /// owner's timeout got there first.
    #[inline]
    pub(crate) fn claim(&self) -> bool {
        if self.exclusive {
            // No rival: the one node is being unlinked by us, under its lock.
            let waiting = self.state.load(Ordering::Relaxed) == WAITING;
            if waiting {
                self.state.store(CLAIMED, Ordering::Relaxed);
            }
            return waiting;
        }
        self.state
            .compare_exchange(WAITING, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Records the outcome of a claimed state; `publish` makes it DONE.
    #[inline]
    pub(crate) fn set_outcome(&self, winner: usize, closed: bool) {
        self.winner.store(winner, Ordering::Relaxed);
        self.closed.store(closed, Ordering::Relaxed);
    }

    /// DONE: the last write of a completer, after which the owner may
    /// return and the blocker be gone.
    #[inline]
    pub(crate) fn publish(&self) {
        self.state.store(DONE, Ordering::Release);
    }

    /// The owner gives up (its deadline passed). False if a completer has
    /// claimed it first: the owner must wait for DONE instead.
    pub(crate) fn cancel(&self) -> bool {
        self.state
            .compare_exchange(WAITING, CANCELLED, Ordering::Acquire, Ordering::Acquire)
            .is_ok()
    }

    /// Where it stands, from one acquire load.
    #[inline]
    pub(crate) fn phase(&self) -> Phase {
        match self.state.load(Ordering::Acquire) {
            WAITING => Phase::Waiting,
            DONE => Phase::Done(Outcome::Done {
                winner: self.winner.load(Ordering::Relaxed),
                closed: self.closed.load(Ordering::Relaxed),
            }),
            // CLAIMED, or CANCELLED (which only the owner sets, and then
            // stops looking).
            _ => Phase::Claimed,
        }
    }
}

pub struct Blocker {
    owner: Owner,
    /// The claim protocol's state.
    state: BlockerState,
}

impl Blocker {
    /// A blocker for the calling coroutine or thread. `exclusive` promises
    /// that it will have one node and no deadline.
    #[inline]
    pub(crate) fn new(exclusive: bool) -> Blocker {
        let owner = match Worker::current().and_then(Worker::running) {
            Some((header, slot)) => Owner::Coroutine {
                header,
                worker: Worker::current().map_or(0, Worker::index),
                slot,
            },
            None => Owner::Thread(thread::current()),
        };
        Blocker {
            owner,
            state: BlockerState::new(exclusive),
        }
    }

    /// Claims the blocker for one completer. False if another completer or
    /// the owner's timeout got there first: the caller must skip the node.
    ///
    /// # Safety
    /// `this` must point to a live blocker, which the caller guarantees by
    /// holding the lock of a queue that links one of its nodes.
    #[inline]
    pub(crate) unsafe fn claim(this: NonNull<Blocker>) -> bool {
        // SAFETY: live per the caller's contract.
        unsafe { this.as_ref() }.state.claim()
    }

    /// Publishes the outcome of a claimed blocker and returns the wakeup to
    /// perform once the caller has released its lock.
    ///
    /// # Safety
    /// The caller must have claimed `this` and not finished it yet; after
    /// this call it must not touch the blocker or its nodes again.
    #[inline]
    pub(crate) unsafe fn finish(this: NonNull<Blocker>, winner: usize, closed: bool) -> Wake {
        // SAFETY: a claimed, unfinished blocker is live: its owner waits for
        // DONE before returning.
        let b = unsafe { this.as_ref() };
        b.state.set_outcome(winner, closed);
        let wake = match &b.owner {
            Owner::Coroutine {
                header,
                worker,
                slot,
            } => {
                match Worker::current().filter(|w| w.index() == *worker) {
                    Some(local) => {
                        // Same worker: the owner cannot run before we yield.
                        // SAFETY: the owner is blocked until DONE, so its
                        // task (and header) is alive in its worker's table.
                        let h = unsafe { header.as_ref() };
                        if h.unpark() {
                            if trace::enabled() {
                                trace::record(
                                    trace::Kind::Wake,
                                    *worker as u64,
                                    h.id,
                                    trace::running_id(),
                                );
                            }
                            local.make_ready(*slot);
                        }
                        Wake::Done
                    }
                    // SAFETY: as above; the reference we take keeps the task
                    // alive until the wakeup is done.
                    None => Wake::Coroutine(unsafe { TaskRef::clone_from_header(*header) }),
                }
            }
            Owner::Thread(t) => Wake::Thread(t.clone()),
        };
        b.state.publish();
        wake
    }

    /// Waits until a completer finishes this blocker, or until `deadline`;
    /// `why` shows in runtime dumps meanwhile. The deadline is on the
    /// caller's clock (its bubble's, in one), except for a wait on an fd,
    /// whose deadlines are on real time. On `TimedOut` the caller must
    /// still unlink its nodes (under their queues' locks) before it returns.
    #[inline]
    pub(crate) fn wait(&self, deadline: Option<Instant>, why: WaitingOn) -> Outcome {
        debug_assert!(deadline.is_none() || !self.state.exclusive);
        if let Some(done) = self.outcome() {
            return done;
        }
        let header = match &self.owner {
            // SAFETY: the owner is the caller, a running coroutine, whose
            // task its worker's table keeps alive.
            Owner::Coroutine { header, .. } => Some(unsafe { header.as_ref() }),
            Owner::Thread(_) => None,
        };
        if let Some(h) = header {
            h.wait.set(Some(why));
        }
        let outcome = self.wait_loop(deadline, Clock::for_wait(why));
        if let Some(h) = header {
            h.wait.set(None);
        }
        outcome
    }

    fn wait_loop(&self, deadline: Option<Instant>, clock: Clock) -> Outcome {
        if let Some(d) = deadline {
            return self.wait_until(d, clock);
        }
        loop {
            match self.state.phase() {
                Phase::Done(outcome) => return outcome,
                // Waiting, or a completer is moving the value and will wake
                // us.
                _ => park::park(),
            }
        }
    }

    /// `wait_loop` with a deadline: apart, so that the untimed wait of
    /// every channel operation stays small enough to inline.
    #[inline(never)]
    fn wait_until(&self, deadline: Instant, clock: Clock) -> Outcome {
        // A timed wait goes through the scheduler at least once, even when
        // its deadline has passed by the time it looks (as a Go timer
        // must fire before its channel is ready): a loop of short timeouts
        // must let the other coroutines of its worker run.
        let mut scheduled = false;
        loop {
            match self.state.phase() {
                Phase::Done(outcome) => return outcome,
                Phase::Waiting if clock.now() >= deadline => {
                    if !scheduled {
                        scheduled = true;
                        park::yield_coroutine();
                    } else if self.state.cancel() {
                        return Outcome::TimedOut;
                    }
                }
                Phase::Waiting => {
                    scheduled = true;
                    park::park_until(deadline, clock);
                }
                // The completer is moving the value and will wake us.
                Phase::Claimed => park::park(),
            }
        }
    }

    /// The outcome if a completer already finished it (no waiting).
    #[inline]
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        match self.state.phase() {
            Phase::Done(outcome) => Some(outcome),
            _ => None,
        }
    }
}
