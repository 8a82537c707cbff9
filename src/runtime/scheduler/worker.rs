//! Workers: the OS threads that run coroutines.
//!
//! # Queues
//!
//! Each worker has:
//! - `runnext`: one started coroutine just woken by a coroutine running on
//!   this worker (Go's `runnext`). It runs next and inherits the time slice:
//!   picks from `runnext` do not start a new slice, and after
//!   `RUNNEXT_SLICE` of them in a row it goes to the back of `runq`, so a
//!   ping-pong pair cannot starve the others.
//! - `runq`: a FIFO of started coroutines, ready to run. Started coroutines
//!   are never stolen: a coroutine's stack may hold `!Send` values and
//!   compiled code may cache thread-local addresses across a switch, so once
//!   started, a coroutine runs on this thread until it ends.
//! - `fresh`: a deque of coroutines not yet started. The owner pops the
//!   newest (a just-spawned coroutine runs next, depth first, on stacks still
//!   hot in cache); thieves take the oldest, in batches.
//! - `inbox`: slots of this worker's coroutines unparked by other threads.
//! - `handoff`: fresh coroutines a busier worker handed over to start here
//!   (see `Worker::hand_off`).
//!
//! Shared by all: the global `injector` (spawns from outside the runtime).
//!
//! # Picking the next coroutine
//!
//! 0. A coroutine handed over by a busier worker starts first.
//! 1. Every `FAIRNESS_TICKS` picks: the global injector, then this worker's
//!    own oldest fresh coroutine, so neither can starve behind local work.
//! 2. Due timers fire; the inbox drains into `runq`.
//! 3. `runnext`, within its slice.
//! 4. `runq` and `fresh`, alternating which goes first when both have work,
//!    so neither yielding coroutines nor a spawn storm starves the other.
//! 5. Out of work: look once in the injector and other workers' `fresh`
//!    deques; then sleep in the poller until the next timer, an I/O event or
//!    a `notify` (see `scheduler/idle.rs`). No spinning: measured, it cost CPU per
//!    request and bought nothing (see `docs/design.md`, "Idle workers").
//!
//! A fresh coroutine about to start on a worker with many more live
//! coroutines than another goes to that one instead (`hand_off`): started
//! coroutines never move, so the start is where load is balanced.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::sync::atomic::{self, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult, Yielder};
use crossbeam_deque::{Injector, Steal, Stealer, Worker as Deque};

use crate::runtime::diag::stats::{OwnerCounter, WorkerStats};
use crate::runtime::diag::trace;
use crate::runtime::diag::traceback::{TraceRequest, Tracer};
use crate::runtime::io::netpoll;
use crate::runtime::io::poller::Poller;
use crate::runtime::park::spin::SpinLock;
use crate::runtime::scheduler::idle::{SleepState, Sleeper};
use crate::runtime::task::alloc::TaskCache;
use crate::runtime::task::header::{Header, TaskRef};
use crate::runtime::task::stack::{Stack, StackPool};
use crate::runtime::time::clock::Clock;
use crate::runtime::time::timer::{self, Due, TimerAction, Timers};
use crate::runtime::{Runtime, time::clock};

/// Why a coroutine switched back to its worker.
#[derive(Clone, Copy)]
pub(crate) enum Switch {
    /// Runnable again at once: go to the back of `runq`.
    Yield,
    /// Parked: leave it until an unpark queues it.
    Park,
}

/// Why the worker resumed a coroutine.
#[derive(Clone, Copy)]
pub(crate) enum Resume {
    /// Run on from where it switched out.
    Run,
    /// Take its own call stack and switch straight back, still suspended
    /// where it was (`diag/traceback.rs`).
    Trace,
}

/// A coroutine not started yet that this worker found to start.
pub(crate) enum Fresh {
    /// Spawned here or stolen: `hand_off` may still send it to a less
    /// loaded worker.
    Movable(TaskRef),
    /// Handed over once already: it starts where it landed, so that two
    /// workers cannot pass it back and forth.
    Handed(TaskRef),
}

type Co = Coroutine<Resume, Switch, (), Stack>;
type CoYielder = Yielder<Resume, Switch>;

/// Picks between fairness checks. Prime, as in Go, so the check does not fall
/// into step with a program's own period.
const FAIRNESS_TICKS: u32 = 61;
/// Consecutive `runnext` picks that share one time slice.
const RUNNEXT_SLICE: u32 = 64;
/// How long a thief leaves a busy worker's only fresh coroutine alone while
/// that worker makes no pick: a coroutine that spawns a partner and blocks
/// on it at once (ping-pong) gets the partner on its own thread, instead of
/// paying a cross-thread wakeup per message for the pair's life. A channel
/// handoff takes well under a microsecond, so 3 µs is a wide margin (Go
/// waits the same before stealing `runnext`).
const LONE_STEAL_PATIENCE: Duration = Duration::from_micros(3);
/// Live coroutines below which a worker starts every fresh coroutine it
/// dequeues itself: while few are alive, locality (a spawner and its child
/// on one thread, a ping-pong pair, stacks hot in cache) is worth more than
/// balance, and the spawn, skynet and pingpong benchmarks stay below it.
const BALANCE_MIN_LIVE: u64 = 64;
/// Runnable started coroutines (in `runq`) below which a worker starts its
/// fresh coroutines itself: with few waiting to run it is not saturated,
/// and a fresh coroutine is most likely a child its parent waits for
/// (skynet's shape), which runs best beside it. A worker whose runnable
/// queue is long is busy for a while: what starts there waits behind it.
const BALANCE_MIN_RUNNABLE: usize = 8;
/// How far a worker's live coroutines may exceed another's (beyond an
/// eighth of the other's) before it hands its fresh ones over: a margin
/// that keeps two nearly equal workers from trading coroutines back and
/// forth, while 1,000 connections over 4 workers end within 1.25x of the
/// mean.
const BALANCE_SLACK: u64 = 8;
/// How many registered fds a worker may have beyond another's (and beyond
/// an eighth of the other's) before it hands its fresh coroutines over, so
/// that an idle server's connections spread too: a connection's coroutine
/// lives as long as the connection, and registered fds count those
/// coroutines where live coroutines also count a spawner's short-lived
/// children. Small, so that even a few hundred connections end within
/// 1.25x of the mean; not zero, so that a listener and a connection or two
/// stay together.
const FD_BALANCE_SLACK: u64 = 2;
/// Events taken from the poller at once.
const EVENTS_PER_WAIT: usize = 256;
/// Coroutine ids a worker takes from the global counter at a time, so that
/// spawning does not contend on one cache line.
const ID_BLOCK: u64 = 1024;

/// Registry entries read per hold of a worker's registry lock
/// (`WorkerShared::for_each_started`). The worker takes that lock to start
/// or end a coroutine, so it waits at most this many header reads (a few
/// microseconds) for a reader, however many coroutines the reader walks.
const REGISTRY_CHUNK: usize = 256;

/// `slot` value meaning "no coroutine is running".
const NO_SLOT: u32 = u32::MAX;
/// Inbox entry that is no slot but a dump's request for stacks: it rides
/// the inbox so that the worker pays nothing for it until one arrives.
const TRACE_MARKER: u32 = u32::MAX - 1;

thread_local! {
    /// This thread's worker; set once when a worker thread starts.
    static WORKER: Cell<Option<&'static Worker>> = const { Cell::new(None) };
}

/// The part of a worker that other threads use. Padded to its own cache
/// lines so that workers' counters do not share one.
#[repr(align(128))]
pub(crate) struct WorkerShared {
    pub(crate) index: usize,
    /// Takes not-yet-started coroutines from this worker's `fresh` deque.
    fresh: Stealer<TaskRef>,
    /// Slots of this worker's coroutines unparked by other threads.
    inbox: Injector<u32>,
    /// Fresh coroutines a busier worker handed over (`Worker::hand_off`):
    /// started here before anything else is picked, unless a thief takes
    /// them first (as from `fresh`, should this worker be held).
    handoff: Injector<TaskRef>,
    /// Whether the worker sleeps in its poller (see `scheduler/idle.rs`).
    sleep: SleepState,
    pub(crate) poller: Poller,
    /// Timers armed on this worker, on real time; fired by it between
    /// coroutines, or by the monitor while it is held.
    timers: Timers,
    /// Fds registered with this worker's poller; when 0, busy picks skip the
    /// non-blocking poll.
    pub(crate) registered: AtomicUsize,
    /// The owner's pick count, published for thieves deciding whether this
    /// worker is stuck in one coroutine, and for the monitor. Written by the
    /// owner only.
    pub(crate) picks: AtomicU32,
    /// Id of the coroutine running now, 0 while the scheduler runs. Written
    /// by the owner only.
    pub(crate) running_id: AtomicU64,
    /// `clock::coarse_now()` when that coroutine was last resumed (or ended
    /// a panic report): how the monitor tells a held worker. 0 while it
    /// prints a panic report, which does not count as holding the worker
    /// (see `report_running`). Written by the owner only.
    pub(crate) running_since: AtomicU64,
    /// Whether the monitor found this worker held (one coroutine running
    /// past the hold threshold) at its last sample: thieves may then take
    /// the coroutines handed to it. Written by the monitor only.
    pub(crate) held: AtomicBool,
    /// The worker thread's OS thread id, 0 until the thread publishes it as
    /// it starts: how the monitor asks the kernel what a held worker is
    /// blocked in. Written once, by the owner.
    pub(crate) os_tid: atomic::AtomicI32,
    /// The tasks of the coroutines started here, by table slot: what other
    /// threads (dumps, the monitor) may look at. The owner locks it only to
    /// add a coroutine when it starts and take it out when it ends.
    pub(crate) registry: SpinLock<Vec<Option<TaskRef>>>,
    /// Dumps' requests for the stacks of this worker's coroutines, each
    /// announced by a `TRACE_MARKER` in the inbox; the owner takes them all
    /// when it drains the inbox.
    trace_requests: SpinLock<Vec<Arc<TraceRequest>>>,
    /// Counters written by the owner only (see `diag/stats.rs`).
    pub(crate) spawned: OwnerCounter,
    pub(crate) finished: OwnerCounter,
    live: OwnerCounter,
    stolen: OwnerCounter,
    parks: OwnerCounter,
    remote_wakeups: OwnerCounter,
    polls: OwnerCounter,
    events: OwnerCounter,
    timers_fired: OwnerCounter,
    stack_pool: OwnerCounter,
}

impl Sleeper for WorkerShared {
    fn notify(&self) {
        if self.sleep.notify() {
            self.poller.notify();
        }
    }
}

impl WorkerShared {
    /// Calls `f` with the task of every coroutine started here, walking
    /// the registry `REGISTRY_CHUNK` entries per hold of its lock, so that a
    /// reader (dump, stats, the monitor) delays this worker's starts and
    /// ends by at most one chunk however many coroutines it has. A
    /// coroutine that starts or ends during the walk may be missed or seen.
    pub(crate) fn for_each_started(&self, mut f: impl FnMut(&TaskRef)) {
        let mut next = 0;
        loop {
            let registry = self.registry.lock();
            let end = registry.len().min(next + REGISTRY_CHUNK);
            for task in registry.get(next..end).into_iter().flatten().flatten() {
                f(task);
            }
            if end >= registry.len() {
                break;
            }
            next = end;
        }
    }

    /// References to the tasks of the coroutines started here, taken by
    /// `for_each_started`, for readers that look at headers after the walk.
    pub(crate) fn started_tasks(&self) -> Vec<TaskRef> {
        let mut tasks = Vec::new();
        self.for_each_started(|t| tasks.push(t.clone()));
        tasks
    }

    pub(crate) fn new(index: usize, fresh: Stealer<TaskRef>) -> std::io::Result<WorkerShared> {
        Ok(WorkerShared {
            index,
            fresh,
            inbox: Injector::new(),
            handoff: Injector::new(),
            sleep: SleepState::new(),
            poller: Poller::new()?,
            timers: Timers::new(),
            registered: AtomicUsize::new(0),
            picks: AtomicU32::new(0),
            running_id: AtomicU64::new(0),
            running_since: AtomicU64::new(0),
            held: AtomicBool::new(false),
            os_tid: atomic::AtomicI32::new(0),
            registry: SpinLock::new(Vec::new()),
            trace_requests: SpinLock::new(Vec::new()),
            spawned: OwnerCounter::new(),
            finished: OwnerCounter::new(),
            live: OwnerCounter::new(),
            stolen: OwnerCounter::new(),
            parks: OwnerCounter::new(),
            remote_wakeups: OwnerCounter::new(),
            polls: OwnerCounter::new(),
            events: OwnerCounter::new(),
            timers_fired: OwnerCounter::new(),
            stack_pool: OwnerCounter::new(),
        })
    }

    /// Queues an unparked coroutine of this worker from another thread.
    fn push_inbox(&self, slot: u32) {
        self.inbox.push(slot);
        atomic::fence(Ordering::SeqCst);
        self.notify();
    }

    /// Asks the worker for its coroutines' stacks (see `diag/traceback.rs`); wakes
    /// it if it sleeps.
    pub(crate) fn ask_for_stacks(&self, request: Arc<TraceRequest>) {
        self.trace_requests.lock().push(request);
        self.push_inbox(TRACE_MARKER);
    }

    /// Arms a timer on this worker; wakes the worker if it is now the earliest.
    pub(crate) fn add_timer(&self, when: Instant, seq: u64, action: TimerAction) {
        if self.timers.add(when, seq, action) {
            self.notify();
        }
    }

    /// Counts an entry its owner cancelled (see `Timers::cancelled`).
    pub(crate) fn timer_cancelled(&self) {
        self.timers.cancelled(&self.registry);
    }

    /// How long until the earliest timer; `None` if there is none.
    fn time_to_next_timer(&self) -> Option<Duration> {
        let next = self.timers.next_nanos();
        (next != u64::MAX).then(|| Duration::from_nanos(next.saturating_sub(clock::now_nanos())))
    }

    /// Timers that can still fire: entries less the cancelled ones.
    pub(crate) fn live_timer_count(&self) -> usize {
        self.timers.live()
    }

    /// Whether the worker sleeps in its poller.
    pub(crate) fn is_sleeping(&self) -> bool {
        !self.sleep.is_awake()
    }

    /// Takes every not-yet-started coroutine out of this worker's `fresh`
    /// deque, as a thief would.
    pub(crate) fn take_fresh(&self, out: &mut Vec<TaskRef>) {
        out.extend(std::iter::from_fn(|| settle(|| self.fresh.steal())));
        out.extend(std::iter::from_fn(|| settle(|| self.handoff.steal())));
    }

    /// Not-yet-started coroutines queued on this worker, by its deques'
    /// lengths: nothing is taken out, so its owner and thieves go on.
    pub(crate) fn not_started_len(&self) -> usize {
        self.fresh.len() + self.handoff.len()
    }

    /// Whether this worker has fresh coroutines or inbox entries waiting.
    pub(crate) fn has_queued_work(&self) -> bool {
        !self.fresh.is_empty() || !self.inbox.is_empty() || !self.handoff.is_empty()
    }

    /// Whether fresh coroutines were handed to this worker and wait for it
    /// (thieves take them only once the monitor marks it held).
    pub(crate) fn has_handoffs(&self) -> bool {
        !self.handoff.is_empty()
    }

    /// Registered fds, counting the coroutines handed over and not started
    /// yet (each most likely registers one when it starts).
    fn fd_load(&self) -> u64 {
        self.registered.load(Ordering::Relaxed) as u64 + self.handoff.len() as u64
    }

    /// Its live coroutines, counting those handed to it and not yet started.
    fn load(&self) -> u64 {
        self.live.get() + self.handoff.len() as u64
    }

    /// Fires due timers from another thread (the monitor, while the owner is
    /// held). Unparked coroutines are queued on their own workers.
    pub(crate) fn fire_due_timers_for(&self, now: Instant) -> usize {
        if !self.timers.is_due(now) {
            return 0;
        }
        let mut due = Vec::new();
        self.timers.take_due(now, &self.registry, &mut due);
        let n = due.len();
        for d in due {
            d.perform(now);
        }
        n
    }

    pub(crate) fn stats(&self) -> WorkerStats {
        WorkerStats {
            spawned: self.spawned.get(),
            live: self.live.get(),
            finished: self.finished.get(),
            stolen: self.stolen.get(),
            parks: self.parks.get(),
            remote_wakeups: self.remote_wakeups.get(),
            polls: self.polls.get(),
            events: self.events.get(),
            timers_fired: self.timers_fired.get(),
            stack_pool: self.stack_pool.get(),
            fds: self.registered.load(Ordering::Relaxed) as u64,
            // Coroutines by state are read from the registry by `stats`.
            ..WorkerStats::default()
        }
    }
}

/// A started coroutine's entry in its worker's table.
struct Entry {
    /// The coroutine, suspended or (during `resume`) running.
    co: Co,
    /// Its task's header; the task is held by `WorkerShared::registry` at
    /// the same slot until the coroutine ends.
    header: NonNull<Header>,
    /// Lowest address of its stack's guard region; the stack's usable
    /// bytes (its header's `stack_size`) follow the guard. Every live
    /// coroutine pays for each field here.
    guard: usize,
}

/// Started coroutines of one worker, by slot. A slot is stable from start to
/// end and then reused.
struct Table {
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
}

impl Table {
    fn insert(&mut self, entry: Entry) -> u32 {
        let entry = Some(entry);
        match self.free.pop() {
            Some(slot) => {
                self.entries[slot as usize] = entry;
                slot
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as u32
            }
        }
    }

    fn entry(&mut self, slot: u32) -> &mut Entry {
        match self.entries.get_mut(slot as usize) {
            Some(Some(e)) => e,
            _ => unreachable!("goro: slot {slot} names no started coroutine"),
        }
    }

    fn remove(&mut self, slot: u32) -> Option<Entry> {
        let e = self.entries.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        Some(e)
    }
}

/// A worker's own state, used only on its thread.
pub(crate) struct Worker {
    pub(crate) shared: &'static WorkerShared,
    pub(crate) rt: &'static Runtime,
    /// Not-yet-started coroutines; the owner end of `shared.fresh`.
    fresh: Deque<TaskRef>,
    /// Where a stolen batch lands, empty between steals: no thief can see
    /// it, so the batch is walked once, prefetching each cell, on its way
    /// into `fresh`.
    landing: Deque<TaskRef>,
    runnext: Cell<Option<u32>>,
    runq: RefCell<VecDeque<u32>>,
    /// Borrowed by the scheduler only, and held across `resume`: coroutine
    /// code never reaches it (it uses `running_task` and friends instead).
    table: RefCell<Table>,
    /// Started coroutines alive here (`table`'s occupancy).
    live: Cell<u64>,
    stacks: RefCell<StackPool>,
    /// Picks so far, for the fairness checks.
    tick: Cell<u32>,
    /// `runnext` picks in the current time slice.
    slice: Cell<u32>,
    /// Whether this worker is counted in `IdleSet::num_spinning`.
    spinning: Cell<bool>,
    /// The running coroutine's yielder; null while the scheduler runs. Set by
    /// the coroutine itself when it starts and each time it is resumed.
    yielder: Cell<*const CoYielder>,
    /// The running coroutine's slot, `NO_SLOT` while the scheduler runs.
    running: Cell<u32>,
    /// The running coroutine's task header, null while the scheduler runs;
    /// the task is held by its `table` entry. Kept beside `running` for code
    /// on the coroutine and the fault handler, which cannot borrow `table`.
    running_header: Cell<*const Header>,
    /// Lowest address of the running coroutine's guard region, 0 while the
    /// scheduler runs; for the fault handler.
    running_guard: Cell<usize>,
    /// Free task cells (see `task_alloc`).
    task_cache: RefCell<TaskCache>,
    /// Unused ids `[next, end)` of this worker's block.
    ids: Cell<(u64, u64)>,
    /// State for choosing steal victims.
    rng: Cell<u32>,
    /// A victim whose only fresh coroutine this worker is waiting to take:
    /// `(victim, its picks then, when first seen)`.
    lone: Cell<Option<(usize, u32, Instant)>>,
    events: RefCell<Box<[libc::epoll_event]>>,
    due: RefCell<Vec<Due>>,
    /// Stacks taken while answering a dump, empty otherwise; borrowed by a
    /// coroutine only during its trace resume, by the scheduler only
    /// between them.
    tracer: RefCell<Tracer>,
}

impl Worker {
    fn new(rt: &'static Runtime, index: usize, fresh: Deque<TaskRef>) -> Worker {
        let empty = libc::epoll_event { events: 0, u64: 0 };
        Worker {
            shared: &rt.workers[index],
            rt,
            fresh,
            landing: Deque::new_fifo(),
            runnext: Cell::new(None),
            runq: RefCell::new(VecDeque::new()),
            table: RefCell::new(Table {
                entries: Vec::new(),
                free: Vec::new(),
            }),
            stacks: RefCell::new(StackPool::new()),
            live: Cell::new(0),
            tick: Cell::new(0),
            slice: Cell::new(0),
            spinning: Cell::new(false),
            yielder: Cell::new(ptr::null()),
            running: Cell::new(NO_SLOT),
            running_header: Cell::new(ptr::null()),
            running_guard: Cell::new(0),
            task_cache: RefCell::new(TaskCache::new()),
            ids: Cell::new((0, 0)),
            // Any nonzero seed works for xorshift; distinct ones spread the
            // workers' first victims.
            rng: Cell::new((index as u32).wrapping_mul(0x9E37_79B9) | 1),
            lone: Cell::new(None),
            events: RefCell::new(vec![empty; EVENTS_PER_WAIT].into_boxed_slice()),
            due: RefCell::new(Vec::new()),
            tracer: RefCell::new(Tracer::default()),
        }
    }

    /// This thread's worker, if it is a worker thread.
    #[inline]
    pub(crate) fn current() -> Option<&'static Worker> {
        WORKER.with(Cell::get)
    }

    /// This thread's worker, if a coroutine is running on it right now.
    #[inline]
    pub(crate) fn current_in_coroutine() -> Option<&'static Worker> {
        Worker::current().filter(|w| !w.yielder.get().is_null())
    }

    /// The running coroutine's task, if the caller is a coroutine.
    pub(crate) fn running_task() -> Option<TaskRef> {
        let (header, _) = Worker::current()?.running()?;
        // SAFETY: the running coroutine's table entry holds its task.
        Some(unsafe { TaskRef::clone_from_header(header) })
    }

    /// The running coroutine's task header and slot; the header stays valid
    /// while the coroutine lives (its table entry holds the task).
    #[inline]
    pub(crate) fn running(&self) -> Option<(NonNull<Header>, u32)> {
        let header = NonNull::new(self.running_header.get().cast_mut())?;
        Some((header, self.running.get()))
    }

    /// This worker's free task cells.
    pub(crate) fn task_cache(&self) -> std::cell::RefMut<'_, TaskCache> {
        self.task_cache.borrow_mut()
    }

    /// Calls `f` with the running coroutine's header, if the caller is one.
    pub(crate) fn with_running_header<R>(f: impl FnOnce(&Header) -> R) -> Option<R> {
        Worker::current()?.running_header().map(f)
    }

    /// Calls `report` with the running coroutine's header, if the caller is
    /// one: the panic hook's report. Symbolizing a backtrace the first time
    /// takes tens to hundreds of milliseconds without a switch, which would
    /// read as the coroutine holding its worker. So the monitor's watch is
    /// off meanwhile (`running_since` is 0, which it skips: one word, so it
    /// never sees a half-made change), and the coroutine's run counts from
    /// the end of the report. The monitor does not serve this worker's
    /// timers and fds during the report either; they wait as long as
    /// coroutines already started here do.
    pub(crate) fn report_running<R>(report: impl FnOnce(&Header) -> R) -> Option<R> {
        let w = Worker::current()?;
        let header = w.running_header()?;
        Some(w.unwatched(|| report(header)))
    }

    /// Runs `f`, work of the runtime's that the running coroutine asked for
    /// (symbolizing a backtrace), with the monitor's watch off as for a
    /// panic report (see `report_running`). Plain threads just run `f`.
    pub(crate) fn run_unwatched<R>(f: impl FnOnce() -> R) -> R {
        match Worker::current_in_coroutine() {
            Some(w) => w.unwatched(f),
            None => f(),
        }
    }

    fn unwatched<R>(&self, f: impl FnOnce() -> R) -> R {
        self.shared.running_since.store(0, Ordering::Relaxed);
        let r = f();
        // The exact time: the coarse clock may have stood still meanwhile.
        self.shared
            .running_since
            .store(clock::now_nanos().max(1), Ordering::Relaxed);
        r
    }

    pub(crate) fn running_header(&self) -> Option<&Header> {
        let h = self.running_header.get();
        // SAFETY: non-null only while the coroutine it belongs to runs on this
        // thread (the only one that can call this), and the table holds that
        // coroutine's task (hence its header) alive until it ends, which is
        // after any code it runs.
        (!h.is_null()).then(|| unsafe { &*h })
    }

    /// For the fault handler: the running coroutine's header and guard
    /// address, or null and 0.
    pub(crate) fn running_for_fault() -> (*const Header, usize) {
        Worker::current().map_or((ptr::null(), 0), |w| {
            (w.running_header.get(), w.running_guard.get())
        })
    }

    pub(crate) fn index(&self) -> usize {
        self.shared.index
    }

    /// A fresh coroutine id.
    pub(crate) fn next_id(&self) -> u64 {
        let (mut next, mut end) = self.ids.get();
        if next == end {
            next = crate::runtime::task::id::take_ids(ID_BLOCK);
            end = next + ID_BLOCK;
        }
        self.ids.set((next + 1, end));
        next
    }

    /// Queues a coroutine spawned on this worker's thread.
    #[inline]
    pub(crate) fn push_fresh(&self, task: TaskRef) {
        self.fresh.push(task);
        self.shared.spawned.add(1);
        // No fence: if a thief misses this task, this worker runs it itself.
        self.rt.idle.wake_one(&self.rt.workers);
    }

    /// Queues a started coroutine of this worker that became runnable.
    #[inline]
    pub(crate) fn make_ready(&self, slot: u32) {
        if self.yielder.get().is_null() {
            self.runq.borrow_mut().push_back(slot);
        } else if let Some(old) = self.runnext.replace(Some(slot)) {
            // Woken by the running coroutine: runs next (Go's goready).
            self.runq.borrow_mut().push_back(old);
        }
    }

    /// The scheduler: never returns.
    fn run(&'static self) -> ! {
        loop {
            let slot = self.next_runnable();
            self.resume(slot);
        }
    }

    /// The slot of the next coroutine to run; a fresh one is installed in
    /// the table first. Everything here passes a `u32`: an enum of "started
    /// or fresh" went through memory and cost a failed store-to-load forward
    /// per switch.
    fn next_runnable(&'static self) -> u32 {
        loop {
            let task = match self.pick_local() {
                Ok(slot) => return slot,
                Err(Some(task)) => self.hand_off(task),
                Err(None) => match self.take_handoff() {
                    // Handed over to start here: never handed on again.
                    Some(task) => Some(task),
                    None => match self.find_work_or_sleep() {
                        Some(Fresh::Movable(task)) => self.hand_off(task),
                        Some(Fresh::Handed(task)) => Some(task),
                        None => None,
                    },
                },
            };
            if let Some(slot) = task.and_then(|t| self.install(t)) {
                return slot;
            }
        }
    }

    /// Where a fresh coroutine starts is where it runs for life, so a worker
    /// hands it to another instead of starting it when it already has many
    /// more of either:
    /// - live coroutines, while it is busy (a long runnable queue): a
    ///   server whose accept loop spawns connections while every worker is
    ///   busy (no one idle to steal them) would otherwise pile them all onto
    ///   the accept loop's worker;
    /// - registered fds, busy or not: the coroutines of an idle server's
    ///   connections each start on the accept loop's worker and park there
    ///   before anyone could steal them, and stay for as long as the
    ///   connection lives.
    ///
    /// The other worker is the less loaded of two picked at random (two
    /// choices balance nearly as well as looking at all, at a constant
    /// cost). Returns the task if it should start here.
    fn hand_off(&self, task: TaskRef) -> Option<TaskRef> {
        let fds = self.shared.registered.load(Ordering::Relaxed) as u64;
        let busy =
            self.live.get() >= BALANCE_MIN_LIVE && self.runq.borrow().len() >= BALANCE_MIN_RUNNABLE;
        if !busy && fds <= FD_BALANCE_SLACK {
            return Some(task);
        }
        let workers = &self.rt.workers[..self.rt.active_workers()];
        let n = workers.len();
        if n < 2 {
            return Some(task);
        }
        let other = |r: u32| &workers[(self.index() + 1 + r as usize % (n - 1)) % n];
        let (a, b) = (other(self.next_random()), other(self.next_random()));
        let exceeds = |mine: u64, theirs: u64, slack: u64| mine > theirs + theirs / 8 + slack;
        let by_live = || {
            if !busy {
                return None;
            }
            let t = if a.load() <= b.load() { a } else { b };
            exceeds(self.live.get(), t.load(), BALANCE_SLACK).then_some(t)
        };
        let by_fds = || {
            let t = if a.fd_load() <= b.fd_load() { a } else { b };
            exceeds(fds, t.fd_load(), FD_BALANCE_SLACK).then_some(t)
        };
        let Some(target) = by_live().or_else(by_fds) else {
            return Some(task);
        };
        if trace::enabled() {
            trace::record(
                trace::Kind::Handoff,
                target.index as u64,
                task.header().id,
                0,
            );
        }
        target.handoff.push(task);
        // As for the inbox: publish, then look at its sleep state.
        atomic::fence(Ordering::SeqCst);
        target.notify();
        None
    }

    /// A fresh coroutine handed to this worker to start, if any.
    fn take_handoff(&self) -> Option<TaskRef> {
        if self.shared.handoff.is_empty() {
            return None;
        }
        settle(|| self.shared.handoff.steal())
    }

    /// Starts a coroutine handed over by another worker; its slot, unless
    /// it could not start. Out of line: the one hot call of `install` is
    /// `next_runnable`'s.
    #[inline(never)]
    fn install_handed(&'static self, task: TaskRef) -> Option<u32> {
        self.install(task)
    }

    /// A started coroutine's slot, or else a fresh task, from this worker's
    /// own queues. Coroutines handed over by other workers start when
    /// nothing here is runnable (`next_runnable`) and, so that a worker
    /// whose runnable queue never empties still starts them, every
    /// `FAIRNESS_TICKS` picks.
    fn pick_local(&'static self) -> Result<u32, Option<TaskRef>> {
        let tick = self.tick.get().wrapping_add(1);
        self.tick.set(tick);
        self.shared.picks.store(tick, Ordering::Relaxed);
        if tick % FAIRNESS_TICKS == 0 {
            if let Some(slot) = self.take_handoff().and_then(|t| self.install_handed(t)) {
                return Ok(slot);
            }
            if let Some(t) = settle(|| self.rt.injector.steal()) {
                return Err(Some(t));
            }
            if let Some(t) = settle(|| self.shared.fresh.steal()) {
                return Err(Some(t));
            }
            // A busy worker still hears its sockets, so that CPU-bound
            // coroutines cannot starve I/O.
            self.poll_now();
        }
        self.fire_due_timers();
        self.drain_inbox();
        if let Some(slot) = self.runnext.take() {
            if self.slice.get() < RUNNEXT_SLICE {
                self.slice.set(self.slice.get() + 1);
                return Ok(slot);
            }
            self.runq.borrow_mut().push_back(slot);
        }
        self.slice.set(0);
        if tick & 1 == 0 {
            if let Some(slot) = self.runq.borrow_mut().pop_front() {
                return Ok(slot);
            }
            Err(self.fresh.pop())
        } else {
            match self.fresh.pop() {
                Some(t) => Err(Some(t)),
                None => self.runq.borrow_mut().pop_front().ok_or(None),
            }
        }
    }

    fn drain_inbox(&self) {
        if self.shared.inbox.is_empty() {
            return;
        }
        let mut runq = self.runq.borrow_mut();
        let before = runq.len();
        let mut traced = false;
        while let Some(slot) = settle(|| self.shared.inbox.steal()) {
            match slot {
                TRACE_MARKER => traced = true,
                slot => runq.push_back(slot),
            }
        }
        self.shared.remote_wakeups.add((runq.len() - before) as u64);
        drop(runq);
        if traced {
            self.answer_trace_requests();
        }
    }

    /// Answers the dumps that asked for this worker's stacks (`diag/traceback.rs`):
    /// resumes each of its coroutines once with `Resume::Trace`, and each
    /// takes its stack and switches straight back. Called between two
    /// coroutines, so every one of them is suspended in `switch_out`.
    #[cold]
    fn answer_trace_requests(&self) {
        let requests: Vec<Arc<TraceRequest>> =
            std::mem::take(&mut *self.shared.trace_requests.lock())
                .into_iter()
                .filter(|r| r.begin())
                .collect();
        if requests.is_empty() {
            return;
        }
        let mut table = self.table.borrow_mut();
        for e in table.entries.iter_mut().flatten() {
            // Every entry has been resumed once (its first resume follows
            // `install` directly); a first resume would run its closure.
            if !e.co.started() {
                continue;
            }
            let low = e.guard + crate::runtime::task::stack::guard_size();
            // SAFETY: the registry holds the coroutine's task while it lives.
            let top = low + unsafe { e.header.as_ref() }.stack_size();
            self.tracer.borrow_mut().aim(low, top);
            // For the fault handler, as for any resume.
            self.running_header.set(e.header.as_ptr());
            self.running_guard.set(e.guard);
            let result = e.co.resume(Resume::Trace);
            self.running_header.set(ptr::null());
            self.running_guard.set(0);
            self.yielder.set(ptr::null());
            if let CoroutineResult::Return(()) = result {
                unreachable!("goro: a coroutine returned while taking its stack");
            }
        }
        drop(table);
        let taken = self.tracer.borrow_mut().finish();
        for r in requests {
            r.answer(self.index(), &taken);
        }
    }

    fn fire_due_timers(&self) {
        if self.shared.timers.is_empty() {
            return;
        }
        let now = Instant::now();
        if !self.shared.timers.is_due(now) {
            return;
        }
        // Taken out of the cell while the actions run (they may arm
        // timers), and put back so that its capacity is reused.
        let mut due = std::mem::take(&mut *self.due.borrow_mut());
        self.shared
            .timers
            .take_due(now, &self.shared.registry, &mut due);
        self.shared.timers_fired.add(due.len() as u64);
        let traced = !due.is_empty() && trace::enabled();
        if traced {
            trace::record(trace::Kind::TimersStart, 0, due.len() as u64, 0);
        }
        for d in due.drain(..) {
            d.perform(now);
        }
        if traced {
            trace::record(trace::Kind::TimersEnd, 0, 0, 0);
        }
        *self.due.borrow_mut() = due;
    }

    /// Looks for work beyond this worker's queues once, then sleeps. Returns
    /// work found elsewhere, or `None` after local work may have appeared (a
    /// wakeup, a timer, an event).
    fn find_work_or_sleep(&self) -> Option<Fresh> {
        loop {
            if let Some(found) = self.search() {
                return found;
            }
            self.spinning.set(false);
            self.rt
                .idle
                .prepare_to_sleep(self.index(), &self.shared.sleep);
            // The last look, after which a producer must see us asleep.
            let found = self.find_elsewhere();
            if found.is_some() || self.has_local_work() {
                self.wake_up();
                self.stop_spinning(found.is_some());
                return found;
            }
            // The poller returns at once if events are pending: no
            // non-blocking poll first, which would cost a second system call
            // whenever the worker runs out of work.
            self.poll(self.shared.time_to_next_timer());
            self.wake_up();
            if !self.spinning.get() {
                // Woken by its own poller (an event, a timer, an inbox
                // notify): the work is this worker's.
                return None;
            }
            // Woken by `wake_one` for stealable work: look for it.
        }
    }

    /// Looks once for work beyond this worker's queues, counted as spinning
    /// meanwhile (so that new stealable work does not wake a sleeper that
    /// this look may find first). `Some(found)` once work is found (`found`
    /// is work from elsewhere, `None` if it is local).
    fn search(&self) -> Option<Option<Fresh>> {
        if !self.spinning.get() {
            self.spinning.set(true);
            self.rt.idle.start_spinning();
        }
        if let Some(r) = self.find_elsewhere() {
            self.stop_spinning(true);
            return Some(Some(r));
        }
        if self.has_local_work() {
            self.stop_spinning(false);
            return Some(None);
        }
        None
    }

    /// Back from sleep (or from almost sleeping): AWAKE, off the sleeper list.
    fn wake_up(&self) {
        let counted_spinning = self
            .rt
            .idle
            .back_from_sleep(self.index(), &self.shared.sleep);
        // The monitor may sleep too: keep the coarse clock right meanwhile.
        clock::set_coarse(Instant::now());
        if let Some(m) = crate::runtime::monitor::sysmon::monitor() {
            m.worker_woke();
        }
        if counted_spinning {
            self.spinning.set(true);
        }
    }

    /// Stops spinning, having found work (`stole`: taken from elsewhere). The
    /// last spinner to stop wakes a sleeper if stealable work is left, so
    /// that work fans out over idle workers one at a time; work that only
    /// this worker can run (its own coroutines, woken by its poller or
    /// inbox) wakes nobody.
    fn stop_spinning(&self, stole: bool) {
        if self.spinning.replace(false)
            && self.rt.idle.stop_spinning()
            && (stole || !self.fresh.is_empty() || !self.rt.injector.is_empty())
        {
            self.rt.idle.wake_one(&self.rt.workers);
        }
    }

    fn has_local_work(&self) -> bool {
        if !self.shared.inbox.is_empty() || !self.shared.handoff.is_empty() {
            return true;
        }
        if let Some(d) = self.shared.time_to_next_timer()
            && d.is_zero()
        {
            return true;
        }
        self.runnext.get().is_some() || !self.runq.borrow().is_empty() || !self.fresh.is_empty()
    }

    /// The global injector, then other workers' fresh coroutines. A busy
    /// victim's only fresh coroutine is left to it for
    /// `LONE_STEAL_PATIENCE`, and taken only if the victim made no pick
    /// meanwhile (Go's `runnext` courtesy).
    fn find_elsewhere(&self) -> Option<Fresh> {
        if let Some(t) = settle(|| self.rt.injector.steal_batch_and_pop(&self.landing)) {
            return Some(Fresh::Movable(self.land(t, u32::MAX as usize)));
        }
        let workers = &self.rt.workers[..self.rt.active_workers()];
        let n = workers.len();
        if n > 1 {
            let start = self.next_random() as usize % n;
            for k in 0..n {
                let victim = &workers[(start + k) % n];
                if victim.index == self.index() {
                    continue;
                }
                let awake = victim.sleep.looks_awake();
                if victim.fresh.len() == 1 && awake && !self.patience_ran_out(victim) {
                    continue;
                }
                if let Some(t) = settle(|| victim.fresh.steal_batch_and_pop(&self.landing)) {
                    return Some(Fresh::Movable(self.land(t, victim.index)));
                }
                // Coroutines handed to `victim` to even out the load are
                // taken only if the monitor found it held: otherwise it
                // starts them soon (a sleeping victim was notified), and a
                // thief taking them would undo the balance (the thief may
                // well be the worker that handed them over, or one with
                // more connections that a busy accept loop keeps feeding).
                // One at a time, and started here: a batch landing in
                // `fresh` would be handed on again.
                if !victim.handoff.is_empty()
                    && victim.held.load(Ordering::Relaxed)
                    && let Some(t) = settle(|| victim.handoff.steal())
                {
                    self.shared.stolen.add(1);
                    if trace::enabled() {
                        trace::record(trace::Kind::Steal, victim.index as u64, 1, 0);
                    }
                    return Some(Fresh::Handed(t));
                }
            }
        }
        None
    }

    /// Whether `victim` has made no pick for `LONE_STEAL_PATIENCE` while
    /// this worker watched its only fresh coroutine.
    fn patience_ran_out(&self, victim: &WorkerShared) -> bool {
        let picks = victim.picks.load(Ordering::Relaxed);
        match self.lone.get() {
            Some((v, p, since)) if v == victim.index && p == picks => {
                since.elapsed() >= LONE_STEAL_PATIENCE
            }
            _ => {
                self.lone.set(Some((victim.index, picks, Instant::now())));
                false
            }
        }
    }

    /// Moves a stolen batch into `fresh`, prefetching every cell: they were
    /// written on the victim's core, and the misses overlap when asked for
    /// together instead of one per start. `t` came with the batch and runs
    /// first. `from`: the victim's index, `u32::MAX` for the injector.
    fn land(&self, t: TaskRef, from: usize) -> TaskRef {
        t.prefetch();
        let mut n = 1;
        while let Some(task) = self.landing.pop() {
            task.prefetch();
            self.fresh.push(task);
            n += 1;
        }
        self.shared.stolen.add(n);
        if trace::enabled() {
            trace::record(trace::Kind::Steal, from as u64, n, 0);
        }
        t
    }

    fn next_random(&self) -> u32 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng.set(x);
        x
    }

    /// Blocks in the poller up to `timeout` and wakes the coroutines its
    /// events are for.
    fn poll(&self, timeout: Option<Duration>) {
        let mut events = self.events.borrow_mut();
        // Only waits: the non-blocking polls between coroutines would
        // drown them.
        let traced = timeout != Some(Duration::ZERO) && trace::enabled();
        if traced {
            trace::record(trace::Kind::PollStart, 0, 0, 0);
        }
        let delivered = netpoll::dispatch_ready(&self.shared.poller, &mut events, timeout);
        self.shared.polls.add(1);
        self.shared.events.add(delivered);
        if traced {
            trace::record(trace::Kind::PollEnd, 0, delivered, 0);
        }
    }

    /// A non-blocking poll, if this worker's poller has any fd.
    fn poll_now(&self) {
        if self.shared.registered.load(Ordering::Relaxed) != 0 {
            self.poll(Some(Duration::ZERO));
        }
    }

    /// Gives a fresh task a stack and a slot in this worker's table, for
    /// life. `None` if no stack could be had: the task then fails (its
    /// joiner gets a `JoinError` that says why).
    #[inline]
    fn install(&'static self, task: TaskRef) -> Option<u32> {
        let stack = self.stacks.borrow_mut().get(task.header().stack_size());
        let stack = match stack {
            Ok(s) => s,
            Err(e) => {
                self.fail_to_start(task, e);
                return None;
            }
        };
        let body = task.header_ptr();
        let guard = stack.guard();
        // Its first resume is always `Resume::Run` (see `answer_trace_requests`).
        let co = Co::with_stack(stack, move |yielder: &CoYielder, _: Resume| {
            self.yielder.set(yielder);
            // SAFETY: the table entry holds the task until the coroutine
            // ends; we dequeued it, and this is its one run, on its stack.
            unsafe { TaskRef::run(body) };
        });
        let header = task.header_ptr();
        let slot = self.table.borrow_mut().insert(Entry { co, header, guard });
        {
            let mut registry = self.shared.registry.lock();
            let i = slot as usize;
            if registry.len() <= i {
                registry.resize_with(i + 1, || None);
            }
            registry[i] = Some(task);
        }
        // SAFETY: the registry now holds the task.
        unsafe { header.as_ref() }.set_home(self.index(), slot);
        self.live.set(self.live.get() + 1);
        self.shared.live.set(self.live.get());
        self.shared
            .stack_pool
            .set(self.stacks.borrow().len() as u64);
        Some(slot)
    }

    /// Ends a dequeued task that could not get a stack: its joiner gets a
    /// `JoinError` that says why.
    #[cold]
    #[inline(never)]
    fn fail_to_start(&self, task: TaskRef, e: std::io::Error) {
        let header = task.header();
        eprintln!(
            "goro: cannot start coroutine '{}' (#{}): {e}",
            header.display_name(),
            header.id
        );
        // SAFETY: we dequeued the task and fail it instead of running it.
        unsafe { task.fail(e) };
        self.count_finished();
        task.complete();
    }

    /// Switches to the coroutine in `slot` until it switches back or ends:
    /// the part of `resume` that runs on the coroutine's stack. The
    /// coroutine runs in place in the table, which stays borrowed while it
    /// runs, and no longer: what `resume` does next (a bubble's park or
    /// end) may fire the bubble's timers on this stack.
    #[inline(always)]
    fn switch_to(&self, slot: u32) -> (NonNull<Header>, CoroutineResult<Switch, ()>) {
        let mut table = self.table.borrow_mut();
        let e = table.entry(slot);
        let header = e.header;
        // SAFETY: the registry holds the coroutine's task while it lives.
        let id = unsafe { header.as_ref() }.id;
        self.running.set(slot);
        self.running_header.set(header.as_ptr());
        self.running_guard.set(e.guard);
        self.shared.running_id.store(id, Ordering::Relaxed);
        self.shared
            .running_since
            .store(clock::coarse_now(), Ordering::Relaxed);
        let result = e.co.resume(Resume::Run);
        self.shared.running_id.store(0, Ordering::Relaxed);
        self.running.set(NO_SLOT);
        self.running_header.set(ptr::null());
        self.running_guard.set(0);
        self.yielder.set(ptr::null());
        (header, result)
    }

    /// `switch_to`, recorded in the trace: apart, so that the switch pays
    /// one test of `trace::enabled` and nothing else while no trace runs.
    #[cold]
    #[inline(never)]
    fn switch_to_traced(&self, slot: u32) -> (NonNull<Header>, CoroutineResult<Switch, ()>) {
        let header = self.table.borrow_mut().entry(slot).header;
        // SAFETY: the registry holds the coroutine's task while it lives.
        trace::run_start(unsafe { header.as_ref() });
        let (header, result) = self.switch_to(slot);
        let outcome = match result {
            CoroutineResult::Yield(Switch::Park) => trace::Outcome::Parked,
            CoroutineResult::Yield(Switch::Yield) => trace::Outcome::Yielded,
            CoroutineResult::Return(()) => trace::Outcome::Finished,
        };
        // SAFETY: as above; a coroutine that returned has not been removed
        // from the registry yet (`resume` does that after this).
        trace::run_end(unsafe { header.as_ref() }, outcome);
        (header, result)
    }

    /// Runs the coroutine in `slot` until it yields, parks or ends.
    fn resume(&self, slot: u32) {
        let (header, result) = if trace::enabled() {
            self.switch_to_traced(slot)
        } else {
            self.switch_to(slot)
        };
        match result {
            CoroutineResult::Yield(why) => {
                let stays_parked = match why {
                    Switch::Park => {
                        self.shared.parks.add(1);
                        // SAFETY: the registry holds the task, so its header.
                        let h = unsafe { header.as_ref() };
                        match h.bubble() {
                            None => h.try_park(),
                            Some(b) => b.park(h),
                        }
                    }
                    Switch::Yield => false,
                };
                if !stays_parked {
                    self.runq.borrow_mut().push_back(slot);
                }
            }
            CoroutineResult::Return(()) => {
                let entry = self.table.borrow_mut().remove(slot);
                if let Some(Entry { co, .. }) = entry {
                    self.stacks.borrow_mut().put(co.into_stack());
                }
                let task = self
                    .shared
                    .registry
                    .lock()
                    .get_mut(slot as usize)
                    .and_then(Option::take);
                // Count before completing: a joiner that returns sees the
                // coroutine gone from the counters too.
                self.live.set(self.live.get().saturating_sub(1));
                self.shared.live.set(self.live.get());
                self.shared
                    .stack_pool
                    .set(self.stacks.borrow().len() as u64);
                self.count_finished();
                if let Some(task) = task {
                    task.complete();
                }
            }
        }
    }

    fn count_finished(&self) {
        self.shared.finished.add(1);
    }

    /// Switches from the running coroutine to this worker's scheduler. A
    /// trace resume (a dump) does not return from here: the coroutine
    /// takes its stack and switches out again with the same `why`, which
    /// the worker ignores, so the switch it made stands as it was.
    #[inline]
    fn switch_out(&self, why: Switch) {
        let y = self.yielder.get();
        // SAFETY: while a coroutine runs here, `yielder` is its own (set at
        // its start, restored below after every switch), and the caller is
        // that coroutine, so the yielder's stack frame is live.
        let resumed = unsafe { (*y).suspend(why) };
        // Back on the same thread: a started coroutine never moves.
        self.yielder.set(y);
        if let Resume::Trace = resumed {
            self.answer_trace(why);
        }
    }

    /// Takes the running coroutine's call stack for a dump that resumed it
    /// to do so, and switches out again with the same `why`, until resumed
    /// to run. Apart from `switch_out`, whose every call pays for what
    /// it inlines.
    #[cold]
    #[inline(never)]
    fn answer_trace(&self, why: Switch) {
        loop {
            let id = self.running_header().map_or(0, |h| h.id);
            self.tracer.borrow_mut().take(id);
            let y = self.yielder.get();
            // SAFETY: as in `switch_out`: the running coroutine's yielder.
            let resumed = unsafe { (*y).suspend(why) };
            self.yielder.set(y);
            if let Resume::Run = resumed {
                return;
            }
        }
    }

    /// Parks the running coroutine (see `park/mod.rs`).
    #[inline]
    pub(crate) fn park_running(&self) {
        if !self.running_header().is_some_and(Header::take_notification) {
            self.switch_out(Switch::Park);
        }
    }

    /// Parks the running coroutine until unparked or until `deadline` on
    /// `clock`: a member of a bubble on the caller's clock arms the timer
    /// on its bubble's heap, anything else on this worker's.
    pub(crate) fn park_running_until(&self, deadline: Instant, clock: Clock) {
        let Some(header) = self.running_header() else {
            return;
        };
        let seq = timer::next_seq();
        header.timer_seq.store(seq, Ordering::Release);
        let bubble = header.bubble().filter(|_| clock == Clock::Caller);
        match bubble {
            Some(b) => {
                // SAFETY: the running coroutine's table entry holds its task.
                let task = unsafe { TaskRef::clone_from_header(NonNull::from(header)) };
                b.add_timer(deadline, seq, TimerAction::UnparkTask(task));
            }
            None => self
                .shared
                .add_timer(deadline, seq, TimerAction::Unpark(self.running.get())),
        }
        self.park_running();
        if timer::disarm(&header.timer_seq, seq) {
            // Woken before the timer: its entry is stale now.
            match bubble {
                Some(b) => b.timer_cancelled(),
                None => self.shared.timer_cancelled(),
            }
        }
    }

    /// Lets the other runnable coroutines of this worker run first.
    pub(crate) fn yield_running(&self) {
        self.switch_out(Switch::Yield);
    }
}

/// Queues an unparked coroutine on worker `w` (see `park::unpark`).
pub(crate) fn schedule(w: usize, slot: u32) {
    match Worker::current() {
        Some(me) if me.index() == w => me.make_ready(slot),
        _ => {
            if let Some(rt) = Runtime::started() {
                rt.workers[w].push_inbox(slot);
            }
        }
    }
}

/// Runs a steal from a crossbeam-deque queue until it settles: the item,
/// or `None` once the queue is seen empty. `Retry` (a race with another
/// thief or the owner) only means "try again".
pub(crate) fn settle<T>(mut steal: impl FnMut() -> Steal<T>) -> Option<T> {
    loop {
        match steal() {
            Steal::Success(t) => return Some(t),
            Steal::Empty => return None,
            Steal::Retry => std::hint::spin_loop(),
        }
    }
}

/// A worker thread's body.
pub(crate) fn worker_main(rt: &'static Runtime, index: usize, fresh: Deque<TaskRef>) -> ! {
    crate::runtime::diag::overflow::prepare_thread();
    crate::runtime::scheduler::thread::mark_scheduler();
    let w: &'static Worker = Box::leak(Box::new(Worker::new(rt, index, fresh)));
    w.shared.os_tid.store(
        crate::runtime::monitor::os_thread::current_tid(),
        Ordering::Relaxed,
    );
    WORKER.with(|c| c.set(Some(w)));
    w.run()
}
