//! Per-worker timers.
//!
//! Each worker owns a min-heap of deadlines. The scheduler fires due timers
//! between coroutines and sleeps in the poller no longer than the earliest
//! one; no timer thread ever resumes a coroutine. The heap sits behind a mutex
//! only so that another thread can insert into it (a timer started outside
//! the runtime) or serve it while its worker is held (sysmon); the owner's
//! lock is uncontended.
//!
//! Cancellation is lazy: a coroutine woken before its timed park expires just
//! disarms `Header::timer_seq`; the stale entry is dropped when it comes due,
//! or earlier by a sweep once stale entries outnumber live ones.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use super::Runtime;
use super::clock;
use super::task::TaskRef;
use super::worker::Worker;

/// Heaps smaller than this are never swept: stale entries cost little there.
const SWEEP_MIN_LEN: usize = 64;

/// What happens when a timer comes due.
pub(crate) enum TimerAction {
    /// Unpark the coroutine if its armed timer is still `seq`.
    Unpark(TaskRef),
    /// Run a callback on the worker (it must not block; it may spawn).
    Call(Box<dyn FnOnce() + Send>),
}

struct Entry {
    when: Instant,
    seq: u64,
    action: TimerAction,
}

impl Entry {
    fn is_stale(&self) -> bool {
        match &self.action {
            TimerAction::Unpark(task) => {
                task.header().timer_seq.load(Ordering::Relaxed) != self.seq
            }
            TimerAction::Call(_) => false,
        }
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.when == other.when && self.seq == other.seq
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Reversed, so that `BinaryHeap` pops the earliest (then oldest) first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.when, other.seq).cmp(&(self.when, self.seq))
    }
}

/// A worker's timers.
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Entry>,
}

/// Sequence numbers for timers, process-wide so that a coroutine's `timer_seq`
/// can never match an entry armed by an earlier park. Starts at 1: 0 means
/// "no timer armed".
static NEXT_SEQ: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_seq() -> u64 {
    NEXT_SEQ.fetch_add(1, Ordering::Relaxed)
}

impl TimerHeap {
    pub(crate) fn new() -> TimerHeap {
        TimerHeap {
            heap: BinaryHeap::new(),
        }
    }

    pub(crate) fn push(&mut self, when: Instant, seq: u64, action: TimerAction) {
        self.heap.push(Entry { when, seq, action });
    }

    /// The earliest deadline, as `clock::nanos`, or `u64::MAX` if none.
    pub(crate) fn next_nanos(&self) -> u64 {
        self.heap.peek().map_or(u64::MAX, |e| clock::nanos(e.when))
    }

    /// Removes the timers due at `now` into `due`, skipping stale ones.
    pub(crate) fn pop_due(&mut self, now: Instant, due: &mut Vec<TimerAction>) {
        while let Some(e) = self.heap.peek() {
            if e.when > now {
                break;
            }
            let Some(e) = self.heap.pop() else { break };
            match e.action {
                TimerAction::Unpark(task) => {
                    // Fire only the armed timer, exactly once.
                    if task
                        .header()
                        .timer_seq
                        .compare_exchange(e.seq, 0, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                    {
                        due.push(TimerAction::Unpark(task));
                    }
                }
                call => due.push(call),
            }
        }
    }

    /// Drops stale entries if they are many; `stale` is the caller's count of
    /// cancellations since the last sweep, reset here when a sweep runs.
    pub(crate) fn sweep_if_worth_it(&mut self, stale: &AtomicUsize) {
        let len = self.heap.len();
        if len >= SWEEP_MIN_LEN && stale.load(Ordering::Relaxed) * 2 > len {
            self.heap.retain(|e| !e.is_stale());
            stale.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

/// Spreads timers started outside the runtime over the workers.
static NEXT_WORKER: AtomicUsize = AtomicUsize::new(0);

/// Calls `f` on a worker at `when` (at once if it has passed). Armed on the
/// caller's worker, or on some worker when called from a plain thread.
///
/// `f` runs between coroutines, on the worker's own stack: it must not block
/// or park. It may spawn, unpark, and send with `try_send`.
pub(crate) fn call_at(when: Instant, f: Box<dyn FnOnce() + Send>) {
    let (rt, w) = match Worker::current() {
        Some(w) => (w.rt, w.index()),
        None => {
            let rt = Runtime::get();
            (
                rt,
                NEXT_WORKER.fetch_add(1, Ordering::Relaxed) % rt.active_workers(),
            )
        }
    };
    rt.workers[w].add_timer(when, next_seq(), TimerAction::Call(f));
}
