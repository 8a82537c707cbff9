//! sysmon: the runtime's monitor thread (Go's `sysmon`).
//!
//! A cooperative runtime's worst failure is silent: one coroutine calls a
//! blocking function or computes for a long time, and every coroutine started
//! on that worker stops. The monitor wakes every 20 µs, doubling to 10 ms
//! while it finds nothing to do, and:
//!
//! - notices a worker that has run one coroutine without switching for more
//!   than the hold threshold (100 ms by default) and prints, once per
//!   episode, which coroutine holds it and where it was spawned, what the
//!   worker's thread is doing (the system call it is blocked in, with its
//!   fd, from `/proc`: see `monitor/os_thread.rs`; or computing) and why
//!   (a std lock held across a goro call, system calls in a loop: see
//!   `monitor/cause.rs`), and which coroutines started on that worker wait
//!   behind it. A hold that strands nobody is not reported; a thread the
//!   OS kept off the CPU gets a line saying so instead; a thread still in
//!   a futex after `LIKELY_DEADLOCK` behind a std-lock report is reported
//!   as a likely deadlock;
//! - notices a worker held, in runs each shorter than the threshold, for
//!   more than a quarter of the last second (a loop of 20 ms blocking calls
//!   starves its worker's other coroutines as surely as one long call), and
//!   reports it at most once per worker every 10 s. The monitor adds up
//!   what it sees at its samples: a run seen at two samples lasted at least
//!   the time between them. So the sum is a lower bound, runs shorter than
//!   the sampling interval (up to 10 ms) escape it, and it costs the
//!   workers nothing;
//! - keeps the rest of the program going meanwhile: it fires the held
//!   worker's due timers and delivers its fds' readiness (waking coroutines
//!   on their own workers), wakes an idle worker to take the held worker's
//!   not-yet-started coroutines, and if every worker is held starts a spare
//!   worker so that new and stealable work still runs. Coroutines already
//!   started on the held worker must wait: a started coroutine never changes
//!   thread;
//! - keeps the coarse clock that dumps use to say how long coroutines wait;
//! - every `TRIM_INTERVAL`, gives back the memory of task cells and stacks
//!   left idle since the last time (see `task/alloc.rs`, `task/stack.rs`);
//! - reports a deadlock (see `monitor/deadlock.rs`);
//! - prints a dump on SIGQUIT when `GORO_TRACEBACK=1`.
//!
//! When every worker has slept for two of its slowest samples there is
//! nothing to watch: the monitor sleeps too, until a worker wakes (it pokes
//! the monitor's eventfd), so an idle runtime costs no CPU — after at most
//! two more wakeups a second apart if a burst left cells to give back.

use std::fmt::Write as _;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::runtime::diag::trace;
use crate::runtime::monitor::cause::{self, Advice, Cause, Evidence};
use crate::runtime::monitor::os_thread::{ThreadCounters, ThreadState};
use crate::runtime::scheduler::worker::WorkerShared;
use crate::runtime::task::header::TaskRef;
use crate::runtime::{
    Runtime, diag::dump, io::netpoll, lock, monitor::deadlock, monitor::os_thread, task::alloc,
    task::stack, time::clock,
};

/// The monitor's first and shortest sleep.
const MIN_DELAY: Duration = Duration::from_micros(20);
/// The longest sleep while the runtime is busy: a held worker is noticed
/// within this of its threshold.
const MAX_DELAY: Duration = Duration::from_millis(10);
/// Samples in a row that must find every worker asleep, the last at the
/// longest delay, before the monitor sleeps until one wakes: workers that sleep
/// for a moment between requests keep the monitor on its slow timer
/// instead of making every wakeup poke it.
const ASLEEP_SAMPLES_BEFORE_SLEEP: u32 = 2;
/// Cycles with nothing to do before the sleep starts doubling (Go's 50).
const IDLE_CYCLES_BEFORE_BACKOFF: u32 = 50;
/// Spare workers the monitor may start while every worker is held. Bounded:
/// each is a thread for the life of the process.
pub(crate) const MAX_SPARE_WORKERS: usize = 4;
/// How often idle task cells' and stacks' memory is given back: long
/// enough that a burst's cells and stacks are reused, not released and
/// faulted in again, by the next burst a moment later.
const TRIM_INTERVAL: Duration = Duration::from_secs(1);
/// Short holds are added up over this long.
const SHORT_HOLD_WINDOW: Duration = Duration::from_secs(1);
/// The window is kept in this many buckets, so a short hold leaves it
/// within a bucket's width of when it should.
const WINDOW_BUCKETS: usize = 10;
/// One bucket's width.
const BUCKET_NANOS: u64 = SHORT_HOLD_WINDOW.as_nanos() as u64 / WINDOW_BUCKETS as u64;
/// Short holds are reported when they fill more than 1/this of the window:
/// a worker held a quarter of the time delays every coroutine started on it
/// by as much, which a user notices as latency with no culprit in sight.
const SHORT_HOLD_SHARE: u64 = 4;
/// At most one short-holds report per worker this often: the pattern
/// persists for as long as the code runs, and one report names it.
const SHORT_HOLD_REPORT_INTERVAL: Duration = Duration::from_secs(10);
/// Coroutines waiting behind a held worker named in its report; the rest
/// are counted.
const STRANDED_SHOWN: usize = 10;
/// A run blocked in a futex this long, with a coroutine parked behind it,
/// is reported as a likely deadlock: a std lock held across a goro call
/// is released in milliseconds if at all.
const LIKELY_DEADLOCK: Duration = Duration::from_secs(3);
/// Looks at a held thread's state per report: a state that varies between
/// them is a loop of system calls.
const STATE_SAMPLES: usize = 3;
/// Time between those looks.
const STATE_SAMPLE_GAP: Duration = Duration::from_micros(500);
/// Default hold threshold.
pub(crate) const DEFAULT_HOLD_THRESHOLD: Duration = Duration::from_millis(100);

/// The hold threshold in nanoseconds; 0 turns detection off.
pub(crate) static HOLD_THRESHOLD_NANOS: AtomicU64 = AtomicU64::new(100_000_000);

/// Set by the SIGQUIT handler; the monitor prints a dump.
static DUMP_REQUESTED: AtomicBool = AtomicBool::new(false);

pub(crate) struct Monitor {
    /// An eventfd the monitor sleeps on (with a timeout while busy); written
    /// by a worker leaving its sleep while the monitor sleeps for good, and
    /// by the SIGQUIT handler.
    wake: OwnedFd,
    /// Whether the monitor sleeps without a timeout (every worker asleep).
    asleep: AtomicBool,
    /// The main coroutines of `goro::run` callers now waiting (for the
    /// deadlock rule).
    pub(crate) mains: Mutex<Vec<TaskRef>>,
}

static MONITOR: OnceLock<Monitor> = OnceLock::new();

pub(crate) fn monitor() -> Option<&'static Monitor> {
    MONITOR.get()
}

/// Starts the monitor thread for `rt`.
pub(crate) fn start(rt: &'static Runtime) -> io::Result<()> {
    // SAFETY: eventfd has no memory preconditions.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    let wake = unsafe { OwnedFd::from_raw_fd(fd) };
    let _ = MONITOR.set(Monitor {
        wake,
        asleep: AtomicBool::new(false),
        mains: Mutex::new(Vec::new()),
    });
    if std::env::var("GORO_TRACEBACK").as_deref() == Ok("1") {
        install_sigquit();
    }
    crate::runtime::scheduler::thread::start("goro-sysmon".into(), move || run(rt)).map(drop)
}

impl Monitor {
    /// Wakes the monitor if it sleeps for good (a worker woke up).
    pub(crate) fn worker_woke(&self) {
        if self.asleep.load(Ordering::SeqCst) {
            self.poke();
        }
    }

    fn poke(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd.
        unsafe { libc::write(self.wake.as_raw_fd(), (&raw const one).cast(), 8) };
    }

    /// Sleeps until poked or `timeout` (`None`: until poked).
    fn sleep(&self, timeout: Option<Duration>) {
        let mut pfd = libc::pollfd {
            fd: self.wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.map_or(-1, |d| {
            d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
        });
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r > 0 {
            let mut v: u64 = 0;
            // SAFETY: reads 8 bytes into a live u64 from our eventfd.
            unsafe { libc::read(self.wake.as_raw_fd(), (&raw mut v).cast(), 8) };
        }
    }
}

/// A run the monitor has seen: one coroutine resumed once, its worker not
/// switching since.
#[derive(Clone, Copy)]
struct Run {
    /// The coroutine's id.
    id: u64,
    /// The worker's pick count during the run: a new pick is a new run,
    /// even of the same coroutine.
    picks: u32,
    /// Its `running_since`: no later than the run began.
    since: u64,
    /// When the monitor first saw the run (clock nanos).
    first_seen: u64,
    /// When the monitor last saw it: the run lasted at least from
    /// `first_seen` to here.
    last_seen: u64,
    /// Whether it outlasted the hold threshold: reported as a held worker
    /// (if it strands anyone), and so no short hold.
    long: bool,
    /// The thread's counters when the run passed half the threshold (clock
    /// nanos, counters): the start of the window over which the report
    /// judges how the thread spent its time.
    baseline: Option<(u64, ThreadCounters)>,
    /// What the report found, once the run outlasted the threshold.
    cause: Option<Cause>,
    /// Whether the likely-deadlock check was made for this run.
    deadlock_checked: bool,
    /// While the cause is `Descheduled`, how long into the run (nanos) the
    /// monitor looks again: the OS may have let the thread run since, and
    /// the coroutine may be the one holding the worker after all.
    look_again: u64,
    /// Whether the descheduled line was printed (once per run).
    descheduled_noted: bool,
}

/// Short holds of one worker that ended in one `BUCKET_NANOS` of time.
#[derive(Clone, Copy, Default)]
struct Bucket {
    /// Which bucket of time (clock nanos / `BUCKET_NANOS`) the counts are
    /// for.
    slice: u64,
    /// Time the worker was held by those runs.
    held: u64,
    /// How many runs.
    runs: u32,
    /// The longest of them: its coroutine's id and its time held.
    longest: (u64, u64),
}

/// What the monitor remembers of each worker.
#[derive(Clone, Copy, Default)]
struct Watch {
    /// The run it saw last time, if the worker ran a coroutine then.
    run: Option<Run>,
    /// Short holds over the last `SHORT_HOLD_WINDOW`, a bucket per
    /// `BUCKET_NANOS`, indexed by slice modulo their number.
    buckets: [Bucket; WINDOW_BUCKETS],
    /// When the next short-holds report may be printed (clock nanos).
    next_report: u64,
}

impl Watch {
    /// Samples the worker; returns the run it is in now, if any.
    fn sample(
        &mut self,
        index: usize,
        w: &WorkerShared,
        now: u64,
        threshold: u64,
    ) -> Option<&mut Run> {
        let id = w.running_id.load(Ordering::Relaxed);
        let picks = w.picks.load(Ordering::Relaxed);
        let since = w.running_since.load(Ordering::Relaxed);
        match &mut self.run {
            // A run whose resume time reads 0 is printing a panic report: not
            // a hold (see `Worker::report_running`).
            Some(run)
                if id != 0
                    && since != 0
                    && run.id == id
                    && run.picks == picks
                    && run.since == since =>
            {
                run.last_seen = now
            }
            _ => {
                if let Some(ended) = self.run.take() {
                    self.run_ended(index, w, ended, now, threshold);
                }
                self.run = (id != 0 && since != 0).then_some(Run {
                    id,
                    picks,
                    since,
                    first_seen: now,
                    last_seen: now,
                    long: false,
                    baseline: None,
                    cause: None,
                    deadlock_checked: false,
                    look_again: 0,
                    descheduled_noted: false,
                });
            }
        }
        self.run.as_mut()
    }

    /// Counts a run that ended before `now` among the short holds, and
    /// reports them if they filled too much of the window.
    fn run_ended(&mut self, index: usize, w: &WorkerShared, run: Run, now: u64, threshold: u64) {
        // A run seen once may have lasted a microsecond: only one seen at
        // two samples surely held the worker, and for at least the time
        // between them. So short holds are a lower bound. A run longer than
        // the window (under a threshold above it) counts for the window.
        let window = SHORT_HOLD_WINDOW.as_nanos() as u64;
        let held = (run.last_seen - run.first_seen).min(window);
        if run.long || held == 0 {
            return;
        }
        let slice = now / BUCKET_NANOS;
        let b = &mut self.buckets[(slice % WINDOW_BUCKETS as u64) as usize];
        if b.slice != slice {
            *b = Bucket {
                slice,
                ..Bucket::default()
            };
        }
        b.held += held;
        b.runs += 1;
        if held > b.longest.1 {
            b.longest = (run.id, held);
        }
        if now < self.next_report {
            return;
        }
        let recent = self
            .buckets
            .iter()
            .filter(|b| slice.saturating_sub(b.slice) < WINDOW_BUCKETS as u64);
        let total: u64 = recent.clone().map(|b| b.held).sum();
        if total <= window / SHORT_HOLD_SHARE {
            return;
        }
        let runs = recent.clone().map(|b| b.runs).sum();
        let longest = recent
            .map(|b| b.longest)
            .max_by_key(|l| l.1)
            .unwrap_or_default();
        self.next_report = now + SHORT_HOLD_REPORT_INTERVAL.as_nanos() as u64;
        warn_short_holds(index, w, total, runs, longest, threshold);
    }
}

fn run(rt: &'static Runtime) {
    crate::runtime::scheduler::thread::mark_scheduler();
    let Some(m) = monitor() else { return };
    let mut l = MonitorLoop::new(rt, m);
    loop {
        l.sleep();
        let now = Instant::now();
        clock::set_coarse(now);
        answer_dump_request();
        let busy = l.watch_workers(now);
        l.trim_memory(now);
        l.check_deadlock();
        l.pace(busy);
        l.sleep_while_all_asleep(now);
    }
}

/// What the monitor's loop carries from one sample to the next.
struct MonitorLoop {
    /// The runtime watched.
    rt: &'static Runtime,
    /// The monitor's own state: its eventfd and whether it sleeps for good.
    m: &'static Monitor,
    /// How long the next sleep lasts: from `MIN_DELAY` to `MAX_DELAY`,
    /// `MIN_DELAY` after a busy sample and doubling once the samples have
    /// been idle for more than `IDLE_CYCLES_BEFORE_BACKOFF` in a row.
    delay: Duration,
    /// Samples in a row that found nothing to do; 0 after a busy one.
    /// Saturates: a monitor idle for years must not overflow it.
    idle_cycles: u32,
    /// What the monitor remembers of each worker, indexed as `rt.workers`.
    watch: Vec<Watch>,
    /// `Some(picks)` if the last check suspected a deadlock, `picks` being
    /// the workers' pick count (`deadlock::progress`) then; `None` if it
    /// did not.
    deadlock_suspect: Option<u64>,
    /// Room for the events of a held worker's poller; its contents mean
    /// nothing between polls.
    events: Vec<libc::epoll_event>,
    /// When memory is trimmed next: at most `TRIM_INTERVAL` ahead.
    next_trim: Instant,
    /// Whether the last trim left cells or stacks that the next one may
    /// give back: the monitor's sleep without workers then ends at
    /// `next_trim` instead of lasting for good.
    memory_to_trim: bool,
    /// Samples in a row that found every worker asleep and no deadlock
    /// suspected; 0 after the monitor slept for good.
    asleep_samples: u32,
}

impl MonitorLoop {
    fn new(rt: &'static Runtime, m: &'static Monitor) -> MonitorLoop {
        MonitorLoop {
            rt,
            m,
            delay: MIN_DELAY,
            idle_cycles: 0,
            watch: vec![Watch::default(); rt.workers.len()],
            deadlock_suspect: None,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 64],
            next_trim: Instant::now() + TRIM_INTERVAL,
            memory_to_trim: false,
            asleep_samples: 0,
        }
    }

    /// Sleeps for `delay`; a sleep of a millisecond or more also ends when
    /// the monitor is poked.
    fn sleep(&self) {
        // Sub-millisecond sleeps: poll(2) rounds up to 1 ms, so sleep the
        // thread instead while the delay is short.
        if self.delay < Duration::from_millis(1) {
            std::thread::sleep(self.delay);
        } else {
            self.m.sleep(Some(self.delay));
        }
    }

    /// Looks for held workers and helps around them, and counts short holds.
    /// True if a new episode began or a spare worker started: only news keeps
    /// the monitor's sleep short, so that a long computation costs a wakeup
    /// every 10 ms, not 20 µs.
    fn watch_workers(&mut self, now: Instant) -> bool {
        let rt = self.rt;
        let threshold = HOLD_THRESHOLD_NANOS.load(Ordering::Relaxed);
        if threshold == 0 {
            return false;
        }
        let now_nanos = clock::nanos(now);
        let active = rt.active_workers();
        let mut held_count = 0;
        let mut news = false;
        for (i, w) in rt.workers.iter().take(active).enumerate() {
            let mut run = self.watch[i].sample(i, w, now_nanos, threshold);
            let held_nanos = run
                .as_ref()
                .map_or(0, |r| now_nanos.saturating_sub(r.since));
            if let Some(r) = &mut run
                && r.baseline.is_none()
                && held_nanos > threshold / 2
            {
                r.baseline = thread_counters(w).map(|c| (now_nanos, c));
            }
            let held = held_nanos > threshold;
            if w.held.load(Ordering::Relaxed) != held {
                w.held.store(held, Ordering::Relaxed);
            }
            let Some(run) = run.filter(|_| held) else {
                continue;
            };
            held_count += 1;
            let descheduled = matches!(run.cause, Some(Cause::Descheduled { .. }));
            if !run.long || (descheduled && held_nanos >= run.look_again) {
                run.long = true;
                news = true;
                let cause = warn_held(i, w, run, held_nanos, now_nanos);
                run.cause = Some(cause);
                if let Cause::Descheduled { .. } = cause {
                    run.descheduled_noted = true;
                    run.baseline = thread_counters(w).map(|c| (now_nanos, c));
                    run.look_again = held_nanos + threshold;
                }
            }
            if run.cause == Some(Cause::StdLock)
                && !run.deadlock_checked
                && held_nanos > LIKELY_DEADLOCK.as_nanos() as u64
            {
                run.deadlock_checked = true;
                warn_likely_deadlock(i, w, run, held_nanos);
            }
            serve_held_worker(rt, w, now, &mut self.events);
        }
        if held_count > 0 && held_count == active && !rt.injector_and_deques_empty() {
            news |= rt.start_spare_worker();
        }
        news
    }

    /// Every `TRIM_INTERVAL`, gives back the memory of task cells and
    /// stacks left idle since the last time.
    fn trim_memory(&mut self, now: Instant) {
        if now >= self.next_trim {
            // Both, always: each releases what sat idle since its last call.
            self.memory_to_trim = alloc::trim() | stack::trim();
            self.next_trim = now + TRIM_INTERVAL;
        }
    }

    /// Reports a deadlock (and exits) once two checks in a row suspect one.
    fn check_deadlock(&mut self) {
        if deadlock::suspected(self.rt) {
            let picks = deadlock::progress(self.rt);
            match self.deadlock_suspect {
                // Two checks, at least a cycle apart, with no pick anywhere
                // in between: nothing was in flight.
                Some(p) if p == picks && deadlock::confirmed(self.rt) => deadlock::report(),
                _ => self.deadlock_suspect = Some(picks),
            }
        } else {
            self.deadlock_suspect = None;
        }
    }

    /// Sets the next sleep: the shortest after a `busy` sample, doubling
    /// up to `MAX_DELAY` once idle samples outnumber
    /// `IDLE_CYCLES_BEFORE_BACKOFF`.
    fn pace(&mut self, busy: bool) {
        if busy {
            self.delay = MIN_DELAY;
            self.idle_cycles = 0;
        } else {
            self.idle_cycles = self.idle_cycles.saturating_add(1);
            if self.idle_cycles > IDLE_CYCLES_BEFORE_BACKOFF {
                self.delay = (self.delay * 2).min(MAX_DELAY);
            }
        }
    }

    /// Counts the samples that find every worker asleep; after
    /// `ASLEEP_SAMPLES_BEFORE_SLEEP` in a row, the last at the longest
    /// delay, sleeps until a worker wakes (or, while memory is left to
    /// trim, until `next_trim`).
    fn sleep_while_all_asleep(&mut self, now: Instant) {
        let (rt, m) = (self.rt, self.m);
        // Every worker asleep, and for a while: nothing to watch until one
        // wakes. Announce the sleep, then look again (a worker waking sets
        // AWAKE before it reads `asleep`). The delay is not reset after it:
        // a server whose workers all sleep between bursts of requests would
        // otherwise cost a poke per wakeup and restart 20 µs sampling each
        // time (measured: a thousand monitor wakeups a second).
        if self.deadlock_suspect.is_none() && all_asleep(rt) {
            self.asleep_samples += 1;
        } else {
            self.asleep_samples = 0;
        }
        if self.asleep_samples >= ASLEEP_SAMPLES_BEFORE_SLEEP && self.delay >= MAX_DELAY {
            m.asleep.store(true, Ordering::SeqCst);
            if all_asleep(rt) {
                m.sleep(
                    self.memory_to_trim
                        .then(|| self.next_trim.saturating_duration_since(now)),
                );
            }
            m.asleep.store(false, Ordering::SeqCst);
            self.asleep_samples = 0;
        }
    }
}

/// Prints a dump of all coroutines if SIGQUIT asked for one.
fn answer_dump_request() {
    if DUMP_REQUESTED.swap(false, Ordering::Relaxed) {
        // Formatted before stderr is locked: symbolizing takes a while.
        let text = dump::dump().to_string();
        eprint!("goro: SIGQUIT: dump of all coroutines\n{text}");
    }
}

/// Whether every active worker sleeps.
fn all_asleep(rt: &Runtime) -> bool {
    rt.workers
        .iter()
        .take(rt.active_workers())
        .all(|w| w.is_sleeping())
}

/// Serves what held worker `w` cannot: fires its due timers, delivers its
/// fds' readiness (both wake coroutines on their own workers) and, if it
/// has queued work, wakes an idle worker to take it.
fn serve_held_worker(
    rt: &'static Runtime,
    w: &WorkerShared,
    now: Instant,
    events: &mut [libc::epoll_event],
) {
    w.fire_due_timers_for(now);
    if w.registered.load(Ordering::Relaxed) != 0 {
        netpoll::dispatch_ready(&w.poller, events, Some(Duration::ZERO));
    }
    if w.has_queued_work() {
        rt.idle.wake_one(&rt.workers);
    }
}

/// The tasks of the coroutines started on `w`, ordered by id.
fn started_on(w: &WorkerShared) -> Vec<TaskRef> {
    let mut tasks = w.started_tasks();
    tasks.sort_by_key(|t| t.header().id);
    tasks
}

/// The counters of `w`'s thread, if the kernel gives them.
fn thread_counters(w: &WorkerShared) -> Option<ThreadCounters> {
    match w.os_tid.load(Ordering::Relaxed) {
        0 => None,
        tid => os_thread::counters_of(tid),
    }
}

/// Whether `run` is still the run in progress on `w`.
fn same_run(w: &WorkerShared, run: &Run) -> bool {
    w.running_id.load(Ordering::Relaxed) == run.id && w.picks.load(Ordering::Relaxed) == run.picks
}

/// Whether anything waits on `w` while coroutine `holder` holds it:
/// another coroutine started there (in `tasks`; a wakeup in its inbox is
/// for one of those, or a dump's request), an fd registered with its
/// poller, or a hand-off queued to it. Fresh coroutines on its deque do
/// not count: other workers take them.
fn strands_anyone(w: &WorkerShared, tasks: &[TaskRef], holder: u64) -> bool {
    tasks.iter().any(|t| t.header().id != holder)
        || w.registered.load(Ordering::Relaxed) != 0
        || w.has_handoffs()
}

/// Writes the coroutines of `tasks` other than `holder`, with what each
/// does (at most `STRANDED_SHOWN`, the rest counted), or " none".
fn write_behind(msg: &mut String, tasks: &[TaskRef], holder: u64) {
    let behind: Vec<&TaskRef> = tasks.iter().filter(|t| t.header().id != holder).collect();
    if behind.is_empty() {
        msg.push_str(" none");
    }
    for (n, t) in behind.iter().take(STRANDED_SHOWN).enumerate() {
        let h = t.header();
        let sep = if n == 0 { " " } else { ", " };
        let _ = write!(msg, "{sep}'{}' (#{}, ", h.display_name(), h.id);
        let _ = match (h.is_parked(), h.wait.get()) {
            (true, Some(on)) => write!(msg, "parked: {on})"),
            (true, None) => write!(msg, "parked)"),
            (false, _) => write!(msg, "runnable)"),
        };
    }
    if behind.len() > STRANDED_SHOWN {
        let _ = write!(msg, " and {} more", behind.len() - STRANDED_SHOWN);
    }
}

/// Decides why `run` holds worker `index` (see `monitor/cause.rs`) and,
/// unless the hold strands nobody, prints the once-per-episode report: who
/// holds it, what its thread is doing and what to do about it, and who
/// waits behind it; or, for a thread the OS kept off the CPU, says that
/// (once per run: the monitor then looks again a threshold later).
fn warn_held(index: usize, w: &WorkerShared, run: &Run, held_nanos: u64, now: u64) -> Cause {
    let tasks = started_on(w);
    let Some(task) = tasks.iter().find(|t| t.header().id == run.id) else {
        return Cause::Plain(None);
    };
    let mut evidence = Evidence {
        samples: Vec::new(),
        delta: None,
        started_behind: tasks.iter().filter(|t| t.header().id != run.id).count(),
        stranded: strands_anyone(w, &tasks, run.id),
    };
    let tid = w.os_tid.load(Ordering::Relaxed);
    if evidence.stranded && tid != 0 {
        for n in 0..STATE_SAMPLES {
            if n > 0 {
                std::thread::sleep(STATE_SAMPLE_GAP);
            }
            evidence.samples.extend(os_thread::state_of(tid));
        }
        evidence.delta = run.baseline.and_then(|(at, before)| {
            let counters = os_thread::counters_of(tid)?;
            Some((counters.since(before), now.saturating_sub(at)))
        });
    }
    // The run may have ended while the kernel was asked: then what the
    // thread does is someone else's doing.
    if !same_run(w, run) {
        evidence.samples.clear();
        evidence.delta = None;
    }
    let cause = cause::classify(&evidence);
    let h = task.header();
    let mut msg = String::new();
    match cause {
        Cause::NothingStranded => return cause,
        Cause::Descheduled { .. } if run.descheduled_noted => return cause,
        Cause::Descheduled { waited, window } => {
            let _ = write!(
                msg,
                "goro: worker {index}'s thread was runnable but waiting for a CPU for {} of \
                 the last {} ms while coroutine '{}' (#{}) ran on it: the OS ran other threads \
                 (more busy threads than cores?); the coroutine is not to blame",
                waited / 1_000_000,
                window / 1_000_000,
                h.display_name(),
                h.id,
            );
            eprintln!("{msg}");
            return cause;
        }
        _ => {}
    }
    let _ = write!(
        msg,
        "goro: coroutine '{}' (#{}) has held worker {} for {} ms without yielding{}\n  \
         spawned at {}\n  \
         coroutines already started on worker {} wait until it yields \
         (a started coroutine never changes thread); new ones run elsewhere\n  \
         waiting behind it:",
        h.display_name(),
        h.id,
        index,
        held_nanos / 1_000_000,
        Advice(cause),
        h.location,
        index
    );
    write_behind(&mut msg, &tasks, run.id);
    if trace::enabled() {
        trace::record(trace::Kind::Held, index as u64, h.id, held_nanos);
        if let Some(line) = trace::snapshot_beside_held_report() {
            let _ = write!(msg, "\n{line}");
        }
    }
    eprintln!("{msg}");
    cause
}

/// Reports `run`, held in a futex for `LIKELY_DEADLOCK` with coroutines
/// started behind it, as a likely deadlock, if its thread is still in a
/// futex.
fn warn_likely_deadlock(index: usize, w: &WorkerShared, run: &Run, held_nanos: u64) {
    let still = match w.os_tid.load(Ordering::Relaxed) {
        0 => None,
        tid => os_thread::state_of(tid),
    };
    if !still.is_some_and(ThreadState::is_futex) || !same_run(w, run) {
        return;
    }
    let tasks = started_on(w);
    let Some(task) = tasks.iter().find(|t| t.header().id == run.id) else {
        return;
    };
    let h = task.header();
    let mut msg = String::new();
    let _ = write!(
        msg,
        "goro: likely deadlock: coroutine '{}' (#{}) has been blocked in futex on worker {} \
         for {} s, most likely waiting for a std lock (Mutex, RwLock or Condvar) that a \
         coroutine started on that worker holds across a goro call; those cannot run until \
         it yields: use goro::sync's locks, which park the coroutine instead\n  \
         spawned at {}\n  \
         started on worker {}:",
        h.display_name(),
        h.id,
        index,
        held_nanos / 1_000_000_000,
        h.location,
        index,
    );
    write_behind(&mut msg, &tasks, run.id);
    eprintln!("{msg}");
}

/// Prints the report of a worker held for much of the last second by runs
/// each shorter than the hold threshold: `held` nanoseconds in `runs` runs,
/// the longest of which is `(coroutine id, nanoseconds)`.
fn warn_short_holds(
    index: usize,
    w: &WorkerShared,
    held: u64,
    runs: u32,
    longest: (u64, u64),
    threshold: u64,
) {
    let mut msg = String::new();
    let _ = write!(
        msg,
        "goro: worker {index} was held for at least {} ms of the last second by {runs} \
         run{} without yielding, each shorter than the {:?} hold threshold; \
         the longest ({} ms) was ",
        held / 1_000_000,
        if runs == 1 { "" } else { "s" },
        Duration::from_nanos(threshold),
        longest.1 / 1_000_000,
    );
    let tasks = started_on(w);
    if !strands_anyone(w, &tasks, longest.0) {
        return;
    }
    match tasks.iter().find(|t| t.header().id == longest.0) {
        Some(t) => {
            let h = t.header();
            let _ = write!(
                msg,
                "coroutine '{}' (#{}), spawned at {}",
                h.display_name(),
                h.id,
                h.location
            );
        }
        None => {
            let _ = write!(msg, "coroutine #{}, since finished", longest.0);
        }
    }
    let _ = write!(
        msg,
        "; run blocking calls in goro::blocking\n  \
         coroutines already started on worker {index} wait during each \
         (a started coroutine never changes thread)"
    );
    eprintln!("{msg}");
}

/// Sets the hold threshold (0: detection off).
pub(crate) fn set_hold_threshold(d: Duration) {
    HOLD_THRESHOLD_NANOS.store(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
}

fn install_sigquit() {
    extern "C" fn on_sigquit(_: libc::c_int) {
        DUMP_REQUESTED.store(true, Ordering::Relaxed);
        if let Some(m) = MONITOR.get() {
            m.poke();
        }
    }
    // SAFETY: a zeroed sigaction is a valid empty action; the handler only
    // stores an atomic and calls write(2), both async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigquit as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGQUIT, &action, std::ptr::null_mut());
    }
}

/// Registers the main coroutine of a `goro::run` call while it runs.
pub(crate) fn main_started(task: &TaskRef) {
    if let Some(m) = monitor() {
        lock(&m.mains).push(task.clone());
    }
}

/// Unregisters a main coroutine whose `goro::run` returned.
pub(crate) fn main_finished(task: &TaskRef) {
    if let Some(m) = monitor() {
        lock(&m.mains).retain(|t| t.header().id != task.header().id);
    }
}
