//! Bubbles: coroutines on a virtual clock, for tests (Go's
//! `testing/synctest`; the public side is `crate::synctest`).
//!
//! A bubble is a set of coroutines, its **members**: the root that
//! `synctest::run` spawns, and every coroutine a member spawns (or a
//! bubble's timer spawns), recorded for life in the task header. A bubble
//! has its own timer heap and its own clock, which stands still while any
//! member can run and jumps to the earliest timer when none can.
//!
//! # Counting
//!
//! `active` counts the members that are not durably blocked: running,
//! runnable, not started yet, or parked on the outside world (an fd, a
//! blocking call, a future; `WaitingOn::is_durable`). It moves under the
//! bubble's lock only, at four places:
//! - a spawn into the bubble adds one, before the task is queued;
//! - the worker of a member that switched out to park takes one away, in
//!   the same locked section as its RUNNING -> PARKED change
//!   (`Bubble::park`), if the park is durable;
//! - an unpark of a member adds one back, in the same locked section as
//!   its PARKED -> RUNNING change (`Bubble::unpark`, through
//!   `Header::unpark`), if the park was durable;
//! - a member's end takes one away, after its joiner has been woken.
//!
//! Both park-state changes happen under the lock, and a parked member's
//! wait reason cannot change (only the member sets it), so the worker and
//! the unparker agree on whether a park counted. A member woken by another
//! member is counted before the waker can itself park or end (the wakeup
//! is made in the waker's own run), so `active` cannot reach zero while a
//! wakeup between members is under way; an end is counted after the
//! wakeups of its joiner for the same reason.
//!
//! # Advancing
//!
//! Whoever brings `active` to zero (a parking or ending member's worker)
//! runs the bubble on, on its scheduler stack, trying in turn (as Go's
//! `maybeWakeLocked` and `synctest.Run` loop):
//! 1. no member left: the bubble is finished;
//! 2. entries due at the current instant: fire them, the clock unmoved;
//! 3. a member in `synctest::wait`: wake it, the clock unmoved;
//! 4. the root has returned, or no armed timer is left: the members can
//!    never wake, the bubble is deadlocked (time stops with the root, as
//!    in Go: a ticker left running cannot keep a bubble alive);
//! 5. otherwise the clock jumps to the earliest armed timer and every
//!    entry due then is fired.
//!
//! Entries due at one instant fire in random order (Go's
//! TestTimerNondeterminism): a test must not depend on an order that two
//! timers set for the same instant do not promise. While it fires or
//! wakes, the advance counts itself as one active member, so nothing can
//! advance the clock again before the members it wakes are counted; if it
//! woke none (a ticker nobody reads), it goes on. The clock's value is
//! written under the lock before any wakeup, so every member that runs
//! afterwards reads it.
//!
//! Timers armed by members go to the bubble's heap, never to a worker's. A
//! bubble's time passes only when the bubble is idle, but an entry armed
//! for an instant that has already come fires at once, from its arming
//! (`fire_due`, called by the armer once it holds no lock), without
//! waiting for every member to block: `Timer::new(0)`'s channel is ready
//! on return, and `after_func(0, f)` starts `f` while its caller runs on
//! (Go's TestTimerRunsImmediately and TestAfterFuncRunsImmediately).
//! Socket deadlines stay on real time (`WaitingOn::is_io`).
//!
//! # Waiting
//!
//! `synctest::wait` registers its caller as the bubble's one `waiter` and
//! parks it durably; step 3 above wakes it, only once every other member
//! is durably blocked and nothing is due now. `waiting` stays set until
//! the waiter has seen its wakeup, so a second `wait` meanwhile is the
//! misuse Go panics on, not a waiter that sleeps through its wakeup.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::runtime::park;
use crate::runtime::park::oneshot;
use crate::runtime::park::spin::SpinLock;
use crate::runtime::random::random;
use crate::runtime::scheduler::worker::Worker;
use crate::runtime::task::header::{Header, TaskRef};
use crate::runtime::time::timer::{Due, Entry, Registry, TimerAction, Timers};
use crate::runtime::{WaitGuard, WaitingOn, lock};

/// Timer entries of a bubble name their coroutines by task, not by slot,
/// so its heap needs no worker's registry: lookups go to this empty one.
static NO_REGISTRY: Registry = SpinLock::new(Vec::new());

thread_local! {
    /// The bubble whose due timers this thread is firing, if any: what a
    /// timer's firing spawns or arms belongs to the bubble.
    static FIRING: RefCell<Option<Arc<Bubble>>> = const { RefCell::new(None) };
}

/// Advances in a row that wake no member (a ticker whose channel nobody
/// reads, while every member is blocked on something no timer will end)
/// after which the bubble counts as deadlocked: they run on a worker's
/// scheduler stack, and would otherwise hold that worker for good. A
/// million 1 ms ticks is over 16 minutes of virtual time.
const FRUITLESS_ADVANCES: u32 = 1 << 20;

/// How a bubble ended, told once to `synctest::run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Every member finished.
    Finished,
    /// Every member left is durably blocked and no timer is armed: nothing
    /// in the bubble can ever wake them.
    Deadlock {
        /// Members blocked for good.
        blocked: usize,
    },
}

/// A bubble (see the module doc).
pub(crate) struct Bubble {
    /// The real instant the bubble began, its clock's zero: virtual
    /// instants are real `Instant`s, so every API taking one works.
    start: Instant,
    /// Virtual nanoseconds since `start`. Written only by an advance,
    /// under `state`'s lock, before the wakeups it makes; never decreases.
    elapsed: AtomicU64,
    state: Mutex<State>,
    /// Timers armed by members, on the virtual clock. Pushed and fired
    /// under `state`'s lock (taken first), so that an entry armed as the
    /// bubble ends is dropped and one due as the clock advances fires;
    /// cancelled without it.
    timers: Timers,
}

struct State {
    /// Members spawned and not finished.
    members: usize,
    /// Members not durably blocked, plus one while an advance fires timers.
    /// At most `members + 1`; zero only when nothing in the bubble can run.
    active: usize,
    /// Told how the bubble ended; `None` once it has, after which timers
    /// armed here are dropped and never fire.
    done: Option<oneshot::Sender<End>>,
    /// Set once the root (the coroutine `synctest::run` spawned) has
    /// returned or panicked; never cleared. From then on the clock stands
    /// still.
    root_done: bool,
    /// The member parked in `synctest::wait`, until the advance that wakes
    /// it takes it out.
    waiter: Option<TaskRef>,
    /// A member is in `synctest::wait`: set by it on entry, cleared by it
    /// on return, so set at least while `waiter` is.
    waiting: bool,
}

impl Bubble {
    /// A bubble starting now, which tells `done` how it ends.
    pub(crate) fn new(done: oneshot::Sender<End>) -> Bubble {
        Bubble {
            start: Instant::now(),
            elapsed: AtomicU64::new(0),
            state: Mutex::new(State {
                members: 0,
                active: 0,
                done: Some(done),
                root_done: false,
                waiter: None,
                waiting: false,
            }),
            timers: Timers::new(),
        }
    }

    /// The bubble's virtual now.
    pub(crate) fn now(&self) -> Instant {
        self.start + Duration::from_nanos(self.elapsed.load(Ordering::Acquire))
    }

    /// Counts a new member, runnable, before it is queued.
    pub(crate) fn enter(&self) {
        let mut st = lock(&self.state);
        st.members += 1;
        st.active += 1;
    }

    /// A member's worker: the member switched out to park. Parks it (see
    /// `Header::try_park`) and, if the park is durable, counts it blocked,
    /// running the bubble on if nothing else in it can run. False if an
    /// unpark slipped in: the member must run again.
    pub(crate) fn park(self: &Arc<Self>, member: &Header) -> bool {
        let mut st = lock(&self.state);
        if !member.try_park() {
            return false;
        }
        if member.wait.get().is_some_and(WaitingOn::is_durable) {
            st.active -= 1;
            if st.active == 0 {
                self.idle(st);
            }
        }
        true
    }

    /// `Header::unpark` for a member: counts it runnable again if its park
    /// was durable.
    pub(crate) fn unpark(&self, member: &Header) -> bool {
        let mut st = lock(&self.state);
        let was_parked = member.unpark_state();
        if was_parked && member.wait.get().is_some_and(WaitingOn::is_durable) {
            st.active += 1;
        }
        was_parked
    }

    /// A member's worker: the member ended and its joiner was woken.
    pub(crate) fn exit(self: &Arc<Self>) {
        let mut st = lock(&self.state);
        st.members -= 1;
        st.active -= 1;
        if st.active == 0 {
            self.idle(st);
        }
    }

    /// The root has returned (or panicked): the clock stops for good.
    pub(crate) fn root_returned(&self) {
        lock(&self.state).root_done = true;
    }

    /// `synctest::wait` for `me`, a running member: parks it until every
    /// other member is durably blocked (see the module doc).
    ///
    /// # Panics
    /// If another member of the bubble is already waiting, as Go's does.
    pub(crate) fn wait(&self, me: TaskRef) {
        {
            let mut st = lock(&self.state);
            if st.waiting {
                drop(st);
                panic!("goro::synctest::wait: another coroutine of the bubble is already waiting");
            }
            st.waiting = true;
            st.waiter = Some(me);
        }
        let _wait = WaitGuard::set(WaitingOn::SynctestWait);
        loop {
            park::park();
            let mut st = lock(&self.state);
            if st.waiter.is_none() {
                st.waiting = false;
                return;
            }
        }
    }

    /// Fires, in random order, the entries due at the bubble's current
    /// instant: called by whoever armed an entry on the bubble, once it
    /// holds no lock, so that a timer armed for an instant that has come
    /// fires at once rather than when every member blocks.
    pub(crate) fn fire_due(self: &Arc<Self>) {
        let mut due = Vec::new();
        let now;
        {
            let st = lock(&self.state);
            if st.done.is_none() {
                return;
            }
            now = self.now();
            if !self.timers.is_due(now) {
                return;
            }
            self.timers.take_due(now, &NO_REGISTRY, &mut due);
        }
        self.fire(due, now);
    }

    /// Arms a timer entry on the bubble's clock. A bubble that has ended
    /// fires nothing: the entry is dropped.
    pub(crate) fn add_timer(&self, when: Instant, seq: u64, action: TimerAction) {
        let st = lock(&self.state);
        if st.done.is_some() {
            self.timers.add(when, seq, action);
            return;
        }
        drop(st);
        drop(action);
    }

    /// Counts an entry its owner cancelled (see `Timers::cancelled`).
    pub(crate) fn timer_cancelled(&self) {
        self.timers.cancelled(&NO_REGISTRY);
    }

    /// Runs the bubble on once nothing in it can run (`active` is zero,
    /// the lock held): ends it, fires what is due, wakes the waiter or
    /// advances the clock (see the module doc), for as long as that wakes
    /// no member.
    fn idle<'a>(self: &'a Arc<Self>, mut st: MutexGuard<'a, State>) {
        let mut garbage = Vec::new();
        let mut fruitless = 0u32;
        loop {
            debug_assert_eq!(st.active, 0);
            if st.members == 0 {
                return self.end(st, End::Finished, garbage);
            }
            let next = self.timers.next_armed(&NO_REGISTRY, &mut garbage);
            let current = self.now();
            let now = match next {
                Some(when) if when <= current => current,
                _ if st.waiter.is_some() => {
                    let waiter = st.waiter.take();
                    st.active = 1;
                    drop(st);
                    drop(std::mem::take(&mut garbage));
                    if let Some(w) = waiter {
                        park::unpark(w.header());
                    }
                    st = lock(&self.state);
                    st.active -= 1;
                    if st.active != 0 {
                        return;
                    }
                    continue;
                }
                Some(when) if !st.root_done && fruitless < FRUITLESS_ADVANCES => {
                    fruitless += 1;
                    let elapsed = when.saturating_duration_since(self.start).as_nanos();
                    self.elapsed.store(
                        u64::try_from(elapsed).unwrap_or(u64::MAX),
                        Ordering::Release,
                    );
                    when
                }
                _ => {
                    let blocked = st.members;
                    return self.end(st, End::Deadlock { blocked }, garbage);
                }
            };
            let mut due = Vec::new();
            self.timers.take_due(now, &NO_REGISTRY, &mut due);
            st.active = 1;
            drop(st);
            drop(std::mem::take(&mut garbage));
            self.fire(due, now);
            st = lock(&self.state);
            st.active -= 1;
            if st.active != 0 {
                return;
            }
        }
    }

    /// Performs due timers of this bubble in random order, with what they
    /// spawn or arm going to the bubble.
    fn fire(self: &Arc<Self>, mut due: Vec<Due>, now: Instant) {
        shuffle(&mut due);
        let outer = FIRING.with(|f| f.replace(Some(self.clone())));
        for d in due {
            d.perform(now);
        }
        FIRING.with(|f| *f.borrow_mut() = outer);
    }

    /// Ends the bubble: drops its timers (which also breaks the cycle
    /// between it and the tasks its entries name) and tells `run`.
    fn end(&self, mut st: MutexGuard<'_, State>, end: End, mut garbage: Vec<Entry>) {
        let done = st.done.take();
        garbage.extend(self.timers.take_all());
        drop(st);
        if let Some(done) = done {
            done.send(end);
        }
        drop(garbage);
    }
}

/// Puts `v` in a uniformly random order (Fisher-Yates).
fn shuffle<T>(v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = (random() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// Calls `f` with the caller's bubble: the running coroutine's, or the one
/// whose timers this thread is firing; `None` elsewhere.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Arc<Bubble>>) -> R) -> R {
    with_bubble_on(Worker::current(), f)
}

/// `with_current` for a caller that has its thread's worker at hand.
#[inline]
fn with_bubble_on<R>(worker: Option<&Worker>, f: impl FnOnce(Option<&Arc<Bubble>>) -> R) -> R {
    match worker {
        Some(w) => match w.running_header() {
            Some(h) => f(h.bubble()),
            None => FIRING.with(|b| f(b.borrow().as_ref())),
        },
        None => f(None),
    }
}

/// The caller's bubble (see `with_current`).
pub(crate) fn current() -> Option<Arc<Bubble>> {
    with_current(|b| b.cloned())
}

/// The bubble of a caller on `worker`, its thread's worker (see
/// `with_current`).
#[inline]
pub(crate) fn current_on(worker: Option<&Worker>) -> Option<Arc<Bubble>> {
    with_bubble_on(worker, |b| b.cloned())
}
