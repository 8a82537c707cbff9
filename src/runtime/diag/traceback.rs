//! Taking every coroutine's call stack for a dump.
//!
//! A parked coroutine's stack can only be walked on its own thread: its
//! frames may hold thread-local addresses and `!Send` values, and only its
//! worker knows it is not running. So a dump asks each worker
//! (`WorkerShared::ask_for_stacks`: a request in a list and a marker in
//! the inbox, which wakes a sleeping worker as an unpark does). The worker
//! answers at its next pick, on its scheduler stack, between two
//! coroutines: it resumes each coroutine it started with `Resume::Trace`;
//! the coroutine, suspended in `Worker::switch_out`, walks its own stack
//! (`Tracer::take`) and switches straight back, without returning from
//! `switch_out`. Its park state, timers, queue entries and locals are
//! untouched, so what it does next is what it would have done (see
//! docs/design.md §11).
//!
//! The dumper waits for the answers, parked if it is a coroutine (its own
//! worker must answer too), with a timeout if it is a thread. A worker
//! held by one coroutine cannot answer: after `BUSY_WORKER_PATIENCE` the
//! dump stops waiting for workers that have not begun, and those skip the
//! request when they get to it. Workers that have begun are waited for:
//! they are making progress, bounded by their coroutine count.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::runtime::diag::callstack::{self, CallStack};
use crate::runtime::diag::dump::NoStack;
use crate::runtime::park::{self, Waiter};
use crate::runtime::scheduler::worker::Worker;
use crate::runtime::time::clock::Clock;
use crate::runtime::{Runtime, lock};

/// How long a dump waits for a worker to begin answering. A worker runs
/// one coroutine for well under a millisecond between picks unless
/// something holds it, and the monitor calls a worker held after 100 ms:
/// twice that is long enough to tell, short enough for a person waiting
/// on a dump.
const BUSY_WORKER_PATIENCE: Duration = Duration::from_millis(200);

/// Stack a coroutine needs left below its frame to walk itself: the walk
/// and std's capture were measured to use under 5 KiB (the first walk in a
/// thread the most); the margin covers the allocator and other libcs.
/// A coroutine parked closer than this to its guard is not walked, rather
/// than risk overflowing its stack for a dump.
const WALK_STACK_RESERVE: usize = 16 * 1024;

/// One dump's request to the workers.
pub(crate) struct TraceRequest {
    state: Mutex<RequestState>,
}

struct RequestState {
    /// Workers asked that have not finished answering.
    unanswered: usize,
    /// Workers that have begun answering and not finished.
    answering: usize,
    /// Set once the dumper stops waiting for workers that have not begun:
    /// they then skip the request, and nothing is added to it.
    abandoned: bool,
    /// Whether each worker, by index, answered.
    answered: Vec<bool>,
    /// What each answering worker's coroutines took, by coroutine id.
    stacks: HashMap<u64, Result<CallStack, NoStack>>,
    /// The dumper, woken when it has nothing left to wait for.
    waiter: Waiter,
}

impl RequestState {
    /// Whether the dumper has everything it will wait for.
    fn settled(&self) -> bool {
        self.unanswered == 0 || (self.abandoned && self.answering == 0)
    }
}

impl TraceRequest {
    /// A worker begins answering. False if the dumper gave up on it.
    pub(crate) fn begin(&self) -> bool {
        let mut s = lock(&self.state);
        if s.abandoned {
            return false;
        }
        s.answering += 1;
        true
    }

    /// Worker `index`, which began, hands over what its coroutines took.
    pub(crate) fn answer(&self, index: usize, taken: &[(u64, Result<CallStack, NoStack>)]) {
        let waiter = {
            let mut s = lock(&self.state);
            s.stacks.extend(taken.iter().cloned());
            if let Some(a) = s.answered.get_mut(index) {
                *a = true;
            }
            s.answering -= 1;
            s.unanswered -= 1;
            s.settled().then(|| s.waiter.clone())
        };
        if let Some(w) = waiter {
            w.wake_by_ref();
        }
    }
}

/// What the workers answered to a dump.
pub(crate) struct Answers {
    /// Each traced coroutine's stack, or why it has none, by id.
    pub(crate) stacks: HashMap<u64, Result<CallStack, NoStack>>,
    /// Whether each worker, by index, answered.
    pub(crate) answered: Vec<bool>,
}

/// Asks the first `workers` workers for their coroutines' stacks and waits
/// for the answers (see the module comment).
pub(crate) fn take_stacks(rt: &Runtime, workers: usize) -> Answers {
    let request = Arc::new(TraceRequest {
        state: Mutex::new(RequestState {
            unanswered: workers,
            answering: 0,
            abandoned: false,
            answered: vec![false; workers],
            stacks: HashMap::new(),
            waiter: Waiter::current(),
        }),
    });
    for w in &rt.workers[..workers] {
        w.ask_for_stacks(request.clone());
    }
    let give_up = Instant::now() + BUSY_WORKER_PATIENCE;
    let in_coroutine = Worker::current_in_coroutine().is_some();
    loop {
        let deadline = {
            let mut s = lock(&request.state);
            if !s.abandoned && Instant::now() >= give_up {
                s.abandoned = true;
            }
            if s.settled() {
                break;
            }
            (!s.abandoned).then_some(give_up)
        };
        // Wakeups may be spurious; the loop looks again.
        match (in_coroutine, deadline) {
            // Real time: the workers answer in real time, in a bubble too.
            (true, Some(d)) => park::park_until(d, Clock::Real),
            (true, None) => park::park(),
            (false, Some(d)) => thread::park_timeout(d.saturating_duration_since(Instant::now())),
            (false, None) => thread::park(),
        }
    }
    let mut s = lock(&request.state);
    Answers {
        stacks: std::mem::take(&mut s.stacks),
        answered: std::mem::take(&mut s.answered),
    }
}

/// What a worker's coroutines take while it answers: used on that worker's
/// thread only, by the worker and (during a trace resume) the coroutine.
#[derive(Default)]
pub(crate) struct Tracer {
    /// Lowest usable address of the resumed coroutine's stack, set by the
    /// worker before each trace resume.
    low: usize,
    /// Highest address of that stack, exclusive.
    top: usize,
    /// The last walk's return addresses; a buffer kept between walks.
    ips: Vec<usize>,
    /// Stacks taken in this answer, by return addresses: coroutines at the
    /// same place share one capture (and later one symbolization).
    seen: HashMap<Box<[usize]>, CallStack>,
    /// Each coroutine's stack, or why it has none, with its id.
    taken: Vec<(u64, Result<CallStack, NoStack>)>,
}

impl Tracer {
    /// Sets the bounds `[low, top)` of the next coroutine's stack.
    pub(crate) fn aim(&mut self, low: usize, top: usize) {
        self.low = low;
        self.top = top;
    }

    /// Called by coroutine `id` on its own stack, bounded by `aim`: walks
    /// it, and captures symbols if no coroutine of this answer was at the
    /// same place.
    #[inline(never)]
    pub(crate) fn take(&mut self, id: u64) {
        let here = std::hint::black_box(0u8);
        let sp = (&raw const here) as usize;
        let stack = if sp.saturating_sub(self.low) < WALK_STACK_RESERVE {
            Err(NoStack::StackNearlyFull)
        } else {
            callstack::walk(self.low, self.top, &mut self.ips);
            match self.seen.get(self.ips.as_slice()) {
                Some(s) => Ok(s.clone()),
                None => {
                    let s = CallStack::capture(&self.ips);
                    self.seen.insert(self.ips.as_slice().into(), s.clone());
                    Ok(s)
                }
            }
        };
        self.taken.push((id, stack));
    }

    /// What was taken since the last call; ready for the next answer.
    pub(crate) fn finish(&mut self) -> Vec<(u64, Result<CallStack, NoStack>)> {
        self.seen.clear();
        std::mem::take(&mut self.taken)
    }
}
