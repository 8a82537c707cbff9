//! Timers: a `Timers` heap per worker, on real time, and one per
//! `synctest` bubble, on its virtual clock.
//!
//! Each worker owns a min-heap of deadlines. The scheduler fires due timers
//! between coroutines and sleeps in the poller no longer than the earliest
//! one; no timer thread ever resumes a coroutine. The heap sits behind a mutex
//! only so that another thread can insert into it (a timer started outside
//! the runtime), cancel from it, or serve it while its worker is held
//! (sysmon); the owner's lock is uncontended.
//!
//! # Cancelling
//!
//! Every entry is armed by a sequence number stored where its owner can
//! reach it: `Header::timer_seq` for a coroutine's timed park, the
//! `armed` word of a `TimerTarget` for alarms and callbacks. Whoever takes
//! the number out first (a compare-and-swap to 0) decides the entry's fate:
//! the heap, when the entry comes due, fires it; the owner, when it cancels
//! (an early wakeup, `stop`, a reset), makes it stale and counts it on the
//! heap (`Timers::cancelled`). So the stale count is
//! exact once cancellations settle: the deadlock report counts only live
//! timers.
//!
//! A stale entry still holds its memory, so it must not wait for its
//! deadline (an hour-long timeout stopped after a millisecond, per request,
//! would pile up). The canceller sweeps the heap as soon as stale entries
//! outnumber live ones: each sweep is linear, and at least half of what it
//! walks goes, so a cancellation costs O(1) amortized, and a heap never
//! holds more than twice its live entries (plus `SWEEP_MIN_LEN`). A sweep
//! gives the heap's spare capacity back too. Go 1.23 frees stopped timers
//! the same way, lazily but bounded.
//!
//! Entries hold no coroutine: a timed park names its coroutine by its slot
//! in the heap's worker table, looked up (under the registry lock) when
//! the entry is due or swept. A coroutine that finishes is freed at once,
//! whatever entries it left.
//!
//! A `synctest` bubble has a heap of its own, on its virtual clock, for
//! its members' timers (`time/bubble.rs`): the same entries, fired by the
//! bubble when its members are all blocked, never by a worker. Its timed
//! parks name their coroutine by task (`UnparkTask`), since its members
//! live on every worker.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicIsize, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::runtime::park::spin::SpinLock;
use crate::runtime::scheduler::worker::Worker;
use crate::runtime::task::header::TaskRef;
use crate::runtime::time::bubble::{self, Bubble};
use crate::runtime::time::clock;
use crate::runtime::time::clock::Clock;
use crate::runtime::{Runtime, lock};

/// Heaps smaller than this are never swept: stale entries cost little there.
const SWEEP_MIN_LEN: usize = 64;
/// A swept heap whose capacity exceeds this many times its length gives the
/// excess back (keeping twice the length), so a burst of timers does not
/// keep its memory.
const SHRINK_FACTOR: usize = 4;

/// Something a timer entry fires: an alarm (`time/alarm.rs`) or a
/// `Callback`.
pub(crate) trait TimerTarget: Send + Sync + 'static {
    /// The sequence number of the entry armed now, 0 if none (see the
    /// module doc).
    fn armed(&self) -> &AtomicU64;
    /// Entry `seq` came due and the heap took it from `armed`. Runs on a
    /// worker's scheduler or on the monitor, outside any coroutine, or (an
    /// entry of a bubble armed already due, `fire_due`) in the member that
    /// armed it, holding no lock: it must not block, park or run user code;
    /// it may spawn, unpark and `try_send`.
    fn fire(self: Arc<Self>, seq: u64, now: Instant);
}

/// What an entry does when it comes due.
pub(crate) enum TimerAction {
    /// Unpark the coroutine in this slot of the heap's worker, if its
    /// `timer_seq` is still the entry's.
    Unpark(u32),
    /// Unpark this coroutine, if its `timer_seq` is still the entry's: a
    /// bubble's timed park (`time/bubble.rs`), whose heap serves members on
    /// every worker. The reference only keeps the task's cell, never its
    /// stack, and goes with the entry.
    UnparkTask(TaskRef),
    /// Fire the target, if its `armed` is still the entry's.
    Target(Arc<dyn TimerTarget>),
}

/// A due entry taken from the heap, to be performed with no lock held.
pub(crate) enum Due {
    Unpark(TaskRef),
    Fire(Arc<dyn TimerTarget>, u64),
}

impl Due {
    pub(crate) fn perform(self, now: Instant) {
        match self {
            Due::Unpark(task) => crate::runtime::park::unpark(task.header()),
            Due::Fire(target, seq) => target.fire(seq, now),
        }
    }
}

/// The started coroutines of a worker, by slot (`WorkerShared::registry`).
pub(crate) type Registry = SpinLock<Vec<Option<TaskRef>>>;

pub(crate) struct Entry {
    when: Instant,
    seq: u64,
    action: TimerAction,
}

impl Entry {
    /// Takes the entry's number from its owner: what to perform if it was
    /// still armed, `None` if the entry is stale.
    fn claim(&self, registry: &Registry) -> Option<Due> {
        match &self.action {
            TimerAction::Unpark(slot) => {
                let reg = registry.lock();
                let task = reg.get(*slot as usize)?.as_ref()?;
                task.header()
                    .timer_seq
                    .compare_exchange(self.seq, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                    .then(|| Due::Unpark(task.clone()))
            }
            TimerAction::UnparkTask(task) => task
                .header()
                .timer_seq
                .compare_exchange(self.seq, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
                .then(|| Due::Unpark(task.clone())),
            TimerAction::Target(t) => t
                .armed()
                .compare_exchange(self.seq, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
                .then(|| Due::Fire(t.clone(), self.seq)),
        }
    }

    /// Whether the entry is still armed (`reg`: the locked registry).
    fn is_armed(&self, reg: &[Option<TaskRef>]) -> bool {
        let seq = match &self.action {
            TimerAction::Unpark(slot) => match reg.get(*slot as usize) {
                Some(Some(task)) => task.header().timer_seq.load(Ordering::Acquire),
                _ => 0,
            },
            TimerAction::UnparkTask(task) => task.header().timer_seq.load(Ordering::Acquire),
            TimerAction::Target(t) => t.armed().load(Ordering::Acquire),
        };
        seq == self.seq
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

/// The entries of one `Timers`, earliest first.
struct TimerHeap {
    heap: BinaryHeap<Entry>,
}

/// A timer heap and what its users read without its lock: each worker has
/// one on real time, each bubble one on its virtual clock (`time/bubble.rs`).
/// Pushes, pops and sweeps take the lock; the owner's checks between
/// coroutines ("is anything due?") and a cancel that need not sweep do not.
pub(crate) struct Timers {
    /// The entries. Uncontended for a worker's own use (see the module doc).
    heap: Mutex<TimerHeap>,
    /// The earliest deadline as `clock::nanos`, `u64::MAX` if none. Written
    /// under the lock; read without it.
    next: AtomicU64,
    /// The heap's length, written under the lock; read without it by a
    /// cancel deciding whether to sweep.
    len: AtomicUsize,
    /// Cancelled entries still in the heap. Exact once cancellations
    /// settle: a cancel counts itself after taking its entry's number, so
    /// the heap may drop the entry (and count it down) first, hence signed.
    stale: AtomicIsize,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            heap: Mutex::new(TimerHeap::new()),
            next: AtomicU64::new(u64::MAX),
            len: AtomicUsize::new(0),
            stale: AtomicIsize::new(0),
        }
    }

    /// Publishes what the heap's users read without its lock.
    fn publish(&self, heap: &TimerHeap) {
        self.len.store(heap.len(), Ordering::Relaxed);
        self.next.store(heap.next_nanos(), Ordering::Relaxed);
    }

    /// Adds an entry. True if it is now the earliest: a worker asleep
    /// until the previous earliest must be woken.
    pub(crate) fn add(&self, when: Instant, seq: u64, action: TimerAction) -> bool {
        let mut heap = lock(&self.heap);
        heap.push(when, seq, action);
        let earlier = heap.next_nanos() < self.next.load(Ordering::Relaxed);
        self.publish(&heap);
        earlier
    }

    /// Counts an entry its owner cancelled, and sweeps the heap if stale
    /// entries now outnumber live ones (see the module doc). What the
    /// sweep removes is dropped here, in the canceller's context, after
    /// the lock. `registry` names the coroutines of `Unpark` entries.
    pub(crate) fn cancelled(&self, registry: &Registry) {
        let stale = self.stale.fetch_add(1, Ordering::AcqRel) + 1;
        if !worth_sweeping(self.len.load(Ordering::Relaxed), stale) {
            return;
        }
        let mut garbage = Vec::new();
        {
            let mut heap = lock(&self.heap);
            if !worth_sweeping(heap.len(), self.stale.load(Ordering::Acquire)) {
                return;
            }
            heap.sweep(registry, &mut garbage);
            self.count_dropped(garbage.len());
            self.publish(&heap);
        }
        drop(garbage);
    }

    /// Counts stale entries the heap dropped.
    fn count_dropped(&self, stale: usize) {
        if stale > 0 {
            self.stale.fetch_sub(stale as isize, Ordering::AcqRel);
        }
    }

    /// Whether an entry is due at `now`, from the published earliest
    /// deadline (no lock).
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        clock::nanos(now) >= self.next.load(Ordering::Relaxed)
    }

    /// Whether the heap holds no entry, armed or stale (no lock).
    pub(crate) fn is_empty(&self) -> bool {
        self.next.load(Ordering::Relaxed) == u64::MAX
    }

    /// The earliest deadline as `clock::nanos`, `u64::MAX` if none (no
    /// lock).
    pub(crate) fn next_nanos(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// Moves the entries due at `now` into `due`, to be performed by the
    /// caller once it holds no lock.
    pub(crate) fn take_due(&self, now: Instant, registry: &Registry, due: &mut Vec<Due>) {
        let mut heap = lock(&self.heap);
        let stale = heap.pop_due(now, registry, due);
        self.count_dropped(stale);
        self.publish(&heap);
    }

    /// The earliest deadline still armed, if any, after moving the stale
    /// entries in front of it into `garbage`: a bubble's clock must jump to
    /// the next timer that can fire, not to a stopped one.
    pub(crate) fn next_armed(
        &self,
        registry: &Registry,
        garbage: &mut Vec<Entry>,
    ) -> Option<Instant> {
        let mut heap = lock(&self.heap);
        let before = garbage.len();
        let next = heap.next_armed(registry, garbage);
        self.count_dropped(garbage.len() - before);
        self.publish(&heap);
        next
    }

    /// Takes every entry out, armed or not; nothing counts as stale after.
    pub(crate) fn take_all(&self) -> Vec<Entry> {
        let mut heap = lock(&self.heap);
        let all = heap.take_all();
        self.stale.store(0, Ordering::Release);
        self.publish(&heap);
        all
    }

    /// Entries that can still fire: entries less the cancelled ones.
    pub(crate) fn live(&self) -> usize {
        let len = lock(&self.heap).len();
        len.saturating_sub(self.stale.load(Ordering::Acquire).max(0) as usize)
    }
}

/// Whether a sweep would pay for itself, with `stale` entries counted.
fn worth_sweeping(len: usize, stale: isize) -> bool {
    len >= SWEEP_MIN_LEN && stale > 0 && stale as usize * 2 > len
}

/// Sequence numbers for timers, process-wide so that an owner's armed
/// number can never match an entry armed earlier. Starts at 1: 0 means
/// "no timer armed".
static NEXT_SEQ: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_seq() -> u64 {
    NEXT_SEQ.fetch_add(1, Ordering::Relaxed)
}

impl TimerHeap {
    fn new() -> TimerHeap {
        TimerHeap {
            heap: BinaryHeap::new(),
        }
    }

    fn push(&mut self, when: Instant, seq: u64, action: TimerAction) {
        self.heap.push(Entry { when, seq, action });
    }

    /// The earliest deadline, as `clock::nanos`, or `u64::MAX` if none.
    fn next_nanos(&self) -> u64 {
        self.heap.peek().map_or(u64::MAX, |e| clock::nanos(e.when))
    }

    /// Removes the entries due at `now`, moving those still armed into
    /// `due`. Returns how many stale ones it dropped.
    fn pop_due(&mut self, now: Instant, registry: &Registry, due: &mut Vec<Due>) -> usize {
        let mut stale = 0;
        while self.heap.peek().is_some_and(|e| e.when <= now) {
            let Some(e) = self.heap.pop() else { break };
            match e.claim(registry) {
                Some(d) => due.push(d),
                None => stale += 1,
            }
        }
        stale
    }

    /// Removes every stale entry into `garbage` (to be dropped by the
    /// caller once no lock is held) and gives back spare capacity.
    fn sweep(&mut self, registry: &Registry, garbage: &mut Vec<Entry>) {
        let mut entries = std::mem::take(&mut self.heap).into_vec();
        {
            let reg = registry.lock();
            let mut i = 0;
            while i < entries.len() {
                if entries[i].is_armed(&reg) {
                    i += 1;
                } else {
                    garbage.push(entries.swap_remove(i));
                }
            }
        }
        if entries.capacity() > SHRINK_FACTOR * entries.len().max(SWEEP_MIN_LEN) {
            entries.shrink_to(2 * entries.len());
        }
        self.heap = BinaryHeap::from(entries);
    }

    fn len(&self) -> usize {
        self.heap.len()
    }

    /// The earliest deadline still armed, if any, after moving the stale
    /// entries in front of it into `garbage`: a bubble's clock must jump to
    /// the next timer that can fire, not to a stopped one.
    fn next_armed(&mut self, registry: &Registry, garbage: &mut Vec<Entry>) -> Option<Instant> {
        loop {
            let armed = self.heap.peek()?.is_armed(&registry.lock());
            if armed {
                return self.heap.peek().map(|e| e.when);
            }
            garbage.extend(self.heap.pop());
        }
    }

    /// Takes every entry out, armed or not.
    fn take_all(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.heap).into_vec()
    }
}

/// Where a timer entry was armed.
#[derive(Clone)]
pub(crate) enum TimerHome {
    /// On this worker's heap, on real time.
    Worker(usize),
    /// On this bubble's heap, on its virtual clock.
    Bubble(Arc<Bubble>),
}

/// Spreads timers started outside the runtime over the workers.
static NEXT_WORKER: AtomicUsize = AtomicUsize::new(0);

/// Arms `target` to fire at `when` (at once if it has passed): on the
/// caller's bubble if it is in one (a member, or a bubble's timer
/// firing), else on the caller's worker, or on some worker when called
/// from a plain thread. Returns where the entry is and its sequence
/// number; the target's `armed` word holds the number from now on.
pub(crate) fn arm(when: Instant, target: Arc<dyn TimerTarget>) -> (TimerHome, u64) {
    arm_on(when, Clock::Caller, target)
}

/// As `arm`, on `clock`: `Clock::Real` arms on a worker's heap even in a
/// bubble (a socket deadline, which is on real time).
fn arm_on(when: Instant, clock: Clock, target: Arc<dyn TimerTarget>) -> (TimerHome, u64) {
    let seq = next_seq();
    if clock == Clock::Caller
        && let Some(b) = bubble::current()
    {
        target.armed().store(seq, Ordering::Release);
        b.add_timer(when, seq, TimerAction::Target(target));
        return (TimerHome::Bubble(b), seq);
    }
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
    target.armed().store(seq, Ordering::Release);
    rt.workers[w].add_timer(when, seq, TimerAction::Target(target));
    (TimerHome::Worker(w), seq)
}

/// Fires at once the entries due on `home` if it is a bubble's heap (see
/// `time/bubble.rs`): called after arming, once the caller holds no lock.
/// A worker's heap fires due entries itself, at its next pick.
pub(crate) fn fire_due(home: &TimerHome) {
    if let TimerHome::Bubble(b) = home {
        b.fire_due();
    }
}

/// Takes entry `seq` at `home` back from `armed`, if it is still armed
/// there, and counts it stale on that heap (which may sweep, dropping
/// stale entries in the caller's context). True if this cancelled it.
pub(crate) fn cancel(armed: &AtomicU64, home: &TimerHome, seq: u64) -> bool {
    let taken = disarm(armed, seq);
    if taken {
        count_stale(home);
    }
    taken
}

/// Takes entry `seq` back from `armed`, if it is still armed: the first
/// half of `cancel`, for a caller that must do it before arming the
/// target's next entry (which overwrites `armed`) and count the entry
/// stale later, outside its lock.
pub(crate) fn disarm(armed: &AtomicU64, seq: u64) -> bool {
    armed
        .compare_exchange(seq, 0, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
}

/// Counts a disarmed entry stale on its heap (which may sweep).
pub(crate) fn count_stale(home: &TimerHome) {
    match home {
        TimerHome::Worker(w) => {
            if let Some(rt) = Runtime::started() {
                rt.workers[*w].timer_cancelled();
            }
        }
        TimerHome::Bubble(b) => b.timer_cancelled(),
    }
}

/// A one-shot call armed on a timer heap, that can be cancelled.
pub(crate) struct Callback {
    /// The armed entry's number, 0 once fired or cancelled.
    armed: AtomicU64,
    /// The call; taken by the firing or by `CallbackTimer::cancel`,
    /// whichever takes `armed` first.
    f: SpinLock<Option<Box<dyn FnOnce() + Send>>>,
}

impl TimerTarget for Callback {
    fn armed(&self) -> &AtomicU64 {
        &self.armed
    }

    fn fire(self: Arc<Self>, _seq: u64, _now: Instant) {
        let f = self.f.lock().take();
        if let Some(f) = f {
            f();
        }
    }
}

/// The handle of a `call_at`.
pub(crate) struct CallbackTimer {
    callback: Arc<Callback>,
    home: TimerHome,
    seq: u64,
}

impl CallbackTimer {
    /// Cancels the call if it has not fired; the closure is dropped here.
    pub(crate) fn cancel(&self) {
        if cancel(&self.callback.armed, &self.home, self.seq) {
            let f = self.callback.f.lock().take();
            drop(f);
        }
    }
}

/// Calls `f` on a worker at `when` (at once if it has passed). Armed where
/// `arm` arms: in the caller's bubble, on its worker, or on some worker.
///
/// `f` runs between coroutines, on the worker's own stack: it must not block
/// or park, nor run user code. It may spawn, unpark, and send with
/// `try_send`.
pub(crate) fn call_at(when: Instant, f: Box<dyn FnOnce() + Send>) -> CallbackTimer {
    call_at_on(when, Clock::Caller, f)
}

/// As `call_at`, with `when` on `clock` (see `arm_on`).
pub(crate) fn call_at_on(
    when: Instant,
    clock: Clock,
    f: Box<dyn FnOnce() + Send>,
) -> CallbackTimer {
    let callback = Arc::new(Callback {
        armed: AtomicU64::new(0),
        f: SpinLock::new(Some(f)),
    });
    let (home, seq) = arm_on(when, clock, callback.clone());
    fire_due(&home);
    CallbackTimer {
        callback,
        home,
        seq,
    }
}
