//! sysmon: the runtime's monitor thread (Go's `sysmon`).
//!
//! A cooperative runtime's worst failure is silent: one coroutine calls a
//! blocking function or computes for a long time, and every coroutine started
//! on that worker stops. The monitor wakes every 20 µs, doubling to 10 ms
//! while it finds nothing to do, and:
//!
//! - notices a worker that has run one coroutine without switching for more
//!   than the hold threshold (100 ms by default) and prints, once per
//!   episode, which coroutine holds it and where it was spawned;
//! - keeps the rest of the program going meanwhile: it fires the held
//!   worker's due timers and delivers its fds' readiness (waking coroutines
//!   on their own workers), wakes an idle worker to take the held worker's
//!   not-yet-started coroutines, and if every worker is held starts a spare
//!   worker so that new and stealable work still runs. Coroutines already
//!   started on the held worker must wait: a started coroutine never changes
//!   thread;
//! - keeps the coarse clock that dumps use to say how long coroutines wait;
//! - every `TRIM_INTERVAL`, gives back the memory of task cells left idle
//!   since the last time (see `task_alloc.rs`);
//! - reports a deadlock (see `deadlock.rs`);
//! - prints a dump on SIGQUIT when `GORO_TRACEBACK=1`.
//!
//! When every worker sleeps there is nothing to watch: the monitor sleeps
//! too, until a worker wakes (it pokes the monitor's eventfd), so an idle
//! runtime costs no CPU — after at most two more wakeups a second apart if
//! a burst left cells to give back.

use std::fmt::Write as _;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::task::TaskRef;
use super::{Runtime, clock, deadlock, dump, lock, netpoll, task_alloc};

/// The monitor's first and shortest sleep.
const MIN_DELAY: Duration = Duration::from_micros(20);
/// The longest sleep while the runtime is busy: a held worker is noticed
/// within this of its threshold.
const MAX_DELAY: Duration = Duration::from_millis(10);
/// Cycles with nothing to do before the sleep starts doubling (Go's 50).
const IDLE_CYCLES_BEFORE_BACKOFF: u32 = 50;
/// Spare workers the monitor may start while every worker is held. Bounded:
/// each is a thread for the life of the process.
pub(crate) const MAX_SPARE_WORKERS: usize = 4;
/// How often idle task cells' memory is given back: long enough that a
/// burst's cells are reused, not released and faulted in again, by the
/// next burst a moment later.
const TRIM_INTERVAL: Duration = Duration::from_secs(1);
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
    super::thread::start("goro-sysmon".into(), move || run(rt)).map(drop)
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

/// What the monitor remembers of each worker.
#[derive(Clone, Copy, Default)]
struct Watch {
    /// The coroutine id and resume time it last saw held.
    held: Option<(u64, u64)>,
    /// Whether it warned about that episode.
    warned: bool,
}

fn run(rt: &'static Runtime) {
    super::thread::mark_scheduler();
    let Some(m) = monitor() else { return };
    let mut delay = MIN_DELAY;
    let mut idle_cycles = 0u32;
    let mut watch = vec![Watch::default(); rt.workers.len()];
    let mut deadlock_suspect = None;
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 64];
    let mut next_trim = Instant::now() + TRIM_INTERVAL;
    let mut cells_to_trim = false;
    loop {
        // Sub-millisecond sleeps: poll(2) rounds up to 1 ms, so sleep the
        // thread instead while the delay is short.
        if delay < Duration::from_millis(1) {
            std::thread::sleep(delay);
        } else {
            m.sleep(Some(delay));
        }
        let now = Instant::now();
        clock::set_coarse(now);
        if DUMP_REQUESTED.swap(false, Ordering::Relaxed) {
            eprint!("goro: SIGQUIT: dump of all coroutines\n{}", dump::dump());
        }
        let busy = watch_workers(rt, &mut watch, now, &mut events);
        if now >= next_trim {
            cells_to_trim = task_alloc::trim();
            next_trim = now + TRIM_INTERVAL;
        }

        if deadlock::suspected(rt) {
            let picks = deadlock::progress(rt);
            match deadlock_suspect {
                // Two checks, at least a cycle apart, with no pick anywhere
                // in between: nothing was in flight.
                Some(p) if p == picks && deadlock::confirmed(rt) => deadlock::report(),
                _ => deadlock_suspect = Some(picks),
            }
        } else {
            deadlock_suspect = None;
        }

        if busy {
            delay = MIN_DELAY;
            idle_cycles = 0;
        } else {
            idle_cycles += 1;
            if idle_cycles > IDLE_CYCLES_BEFORE_BACKOFF {
                delay = (delay * 2).min(MAX_DELAY);
            }
        }

        // Every worker asleep: nothing to watch until one wakes. Announce
        // the sleep, then look again (a worker waking sets AWAKE before it
        // reads `asleep`).
        if deadlock_suspect.is_none() && all_asleep(rt) {
            m.asleep.store(true, Ordering::SeqCst);
            if all_asleep(rt) {
                m.sleep(cells_to_trim.then(|| next_trim.saturating_duration_since(now)));
            }
            m.asleep.store(false, Ordering::SeqCst);
            delay = MIN_DELAY;
            idle_cycles = 0;
        }
    }
}

fn all_asleep(rt: &Runtime) -> bool {
    rt.workers
        .iter()
        .take(rt.active_workers())
        .all(|w| w.is_sleeping())
}

/// Looks for held workers and helps around them. True if a new episode
/// began or a spare worker started: only news keeps the monitor's sleep
/// short, so that a long computation costs a wakeup every 10 ms, not 20 µs.
fn watch_workers(
    rt: &'static Runtime,
    watch: &mut [Watch],
    now: Instant,
    events: &mut [libc::epoll_event],
) -> bool {
    let threshold = HOLD_THRESHOLD_NANOS.load(Ordering::Relaxed);
    if threshold == 0 {
        return false;
    }
    let now_nanos = clock::nanos(now);
    let active = rt.active_workers();
    let mut held_count = 0;
    let mut news = false;
    for (i, w) in rt.workers.iter().take(active).enumerate() {
        let id = w.running_id.load(Ordering::Relaxed);
        let since = w.running_since.load(Ordering::Relaxed);
        let held = id != 0 && since != 0 && now_nanos.saturating_sub(since) > threshold;
        if !held {
            watch[i] = Watch::default();
            continue;
        }
        held_count += 1;
        if watch[i].held != Some((id, since)) {
            watch[i] = Watch {
                held: Some((id, since)),
                warned: false,
            };
        }
        if !watch[i].warned {
            watch[i].warned = true;
            news = true;
            warn_held(i, w, id, now_nanos.saturating_sub(since));
        }
        // Serve what the held worker cannot.
        w.fire_due_timers_for(now);
        if w.registered.load(Ordering::Relaxed) != 0 {
            let n = w.poller.wait(events, Some(Duration::ZERO));
            for ev in &events[..n] {
                let (key, bits) = (ev.u64, ev.events);
                if key != super::poller::WAKE_KEY {
                    netpoll::dispatch(key, bits);
                }
            }
        }
        if w.has_queued_work() {
            rt.idle.wake_one(&rt.workers);
        }
    }
    if held_count > 0 && held_count == active && !rt.injector_and_deques_empty() {
        news |= rt.start_spare_worker();
    }
    news
}

/// Prints the once-per-episode warning about a held worker.
fn warn_held(index: usize, w: &super::worker::WorkerShared, id: u64, held_nanos: u64) {
    let task = w
        .registry
        .lock()
        .iter()
        .flatten()
        .find(|t| t.header().id == id)
        .cloned();
    let Some(task) = task else { return };
    let h = task.header();
    let mut msg = String::new();
    let _ = write!(
        msg,
        "goro: coroutine '{}' (#{}) has held worker {} for {} ms without yielding; \
         run blocking calls in goro::blocking\n  spawned at {}\n  \
         coroutines already started on worker {} wait until it yields \
         (a started coroutine never changes thread); new ones run elsewhere",
        h.display_name(),
        h.id,
        index,
        held_nanos / 1_000_000,
        h.location,
        index
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
