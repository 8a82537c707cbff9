//! The runtime: worker threads, their queues, stacks, timers and pollers.
//!
//! # The model
//!
//! goro runs coroutines (Go's goroutines) on N worker threads, N defaulting
//! to the machine's parallelism. A coroutine is born by `spawn`/`go!` as a
//! task: a header (id, name, park state) and its closure, in one allocation.
//! It waits, not yet started and stealable, in its spawner's `fresh` deque
//! (or the global injector, when spawned outside the runtime). The worker
//! that dequeues it gives it a stack from its pool and starts it; from then
//! on the coroutine lives in that worker's table and runs only on that
//! worker's thread. It runs until it yields, parks or returns; nothing
//! preempts it.
//!
//! To block — join, sleep, a channel, a lock, a socket — a coroutine
//! registers itself where the event will come from and parks (`park/mod.rs`):
//! it switches back to its worker, which marks it PARKED. Whoever completes
//! the event unparks it, which queues it on its own worker: in `runnext` if
//! the waker is a coroutine of that worker, in the worker's inbox from any
//! other thread, after which a sleeping worker is woken through its poller's
//! eventfd. When the coroutine returns, its stack goes back to the worker's
//! pool and its joiner is woken.
//!
//! The scheduling policy is in `scheduler/worker.rs`; the wakeup protocol between
//! workers in `scheduler/idle.rs`; stacks in `task/stack.rs`; timers in `time/timer.rs`.
//!
//! When `goro::run`'s closure returns, coroutines still alive are abandoned
//! as when Go's `main` returns: nothing waits for them. The worker threads
//! keep running them until the process exits, and destructors still on
//! their stacks never run.

pub(crate) mod diag;
pub(crate) mod io;
#[cfg(all(test, loom))]
mod loom_models;
pub(crate) mod monitor;
pub(crate) mod park;
pub(crate) mod random;
pub(crate) mod scheduler;
pub(crate) mod task;
pub(crate) mod time;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use crossbeam_deque::{Injector, Worker as Deque};

use crate::error::described;

pub use diag::callstack::{CallStack, StackFrame};
pub use diag::dump::{CoroutineGroup, CoroutineInfo, CoroutineState, Dump, NoStack, dump};
pub use diag::panic_hook::UnjoinedPanic;
pub use diag::stats::{Stats, WorkerStats, stats};
pub use diag::trace;
pub use park::wait::{ParkedOn, WaitingOn};
pub(crate) use park::wait::{WaitGuard, WaitReason};
use scheduler::idle::IdleSet;
use scheduler::worker::{Worker, WorkerShared, settle};
use task::header::TaskRef;

/// Most workers accepted; well above any machine goro runs on.
const MAX_WORKERS: usize = 1024;

/// The running runtime. Set once; never torn down.
static RUNTIME: OnceLock<&'static Runtime> = OnceLock::new();
/// Serializes starting the runtime.
static START: Mutex<()> = Mutex::new(());

pub(crate) struct Runtime {
    /// The configured workers, then `MAX_SPARE_WORKERS` spare slots that the
    /// monitor starts only while every worker is held.
    pub(crate) workers: Box<[WorkerShared]>,
    /// Workers configured (`num_workers`).
    configured: usize,
    /// Spare workers started so far; the first `configured + spares` slots
    /// of `workers` are in use.
    spares: AtomicUsize,
    /// The owner ends of the spare slots' deques, handed to spare threads.
    spare_deques: Mutex<Vec<Deque<TaskRef>>>,
    /// Coroutines spawned from outside the runtime, not yet started.
    pub(crate) injector: Injector<TaskRef>,
    pub(crate) idle: IdleSet,
    /// Stack size for coroutines that do not set one, page rounded.
    pub(crate) stack_size: usize,
    /// Coroutines spawned from outside the runtime.
    outside_spawned: AtomicU64,
}

impl Runtime {
    /// The runtime, started with the environment's settings if it was not.
    ///
    /// # Panics
    /// If `GORO_WORKERS` is invalid or the worker threads cannot be started:
    /// callers that cannot return an error (`spawn`, `run`) report it so.
    pub(crate) fn get() -> &'static Runtime {
        match Runtime::get_or_start() {
            Ok(rt) => rt,
            Err(e) => panic!("goro: cannot start the runtime: {e}"),
        }
    }

    /// The runtime, started with the defaults if it was not.
    ///
    /// # Errors
    /// As `Builder::start`, if it had to start and could not.
    pub(crate) fn get_or_start() -> std::io::Result<&'static Runtime> {
        match RUNTIME.get() {
            Some(rt) => Ok(rt),
            None => Builder::new().start_or_get(),
        }
    }

    /// The runtime if it has been started.
    pub(crate) fn started() -> Option<&'static Runtime> {
        RUNTIME.get().copied()
    }

    /// Queues a new coroutine: on `worker` (the caller's, if it is on one),
    /// else on the global injector.
    pub(crate) fn submit(&'static self, worker: Option<&Worker>, task: TaskRef) {
        match worker {
            Some(w) => w.push_fresh(task),
            None => {
                self.injector.push(task);
                self.outside_spawned.fetch_add(1, Ordering::Relaxed);
                // No worker owns the injector: make sure one looks.
                std::sync::atomic::fence(Ordering::SeqCst);
                self.idle.wake_one(&self.workers);
            }
        }
    }

    /// Takes every coroutine not started yet out of the injector and the
    /// workers' deques, so that they can be looked at; `requeue` gives them
    /// back. Only a dump does this: it costs the owners the order of their
    /// deques, nothing else (fresh coroutines may start on any worker).
    pub(crate) fn take_not_started(&self) -> Vec<TaskRef> {
        let mut tasks = Vec::new();
        tasks.extend(std::iter::from_fn(|| settle(|| self.injector.steal())));
        for w in self.workers.iter().take(self.active_workers()) {
            w.take_fresh(&mut tasks);
        }
        tasks
    }

    /// Queues coroutines taken by `take_not_started` on the injector, oldest
    /// first, and makes sure a worker looks.
    pub(crate) fn requeue(&self, tasks: Vec<TaskRef>) {
        if tasks.is_empty() {
            return;
        }
        for t in tasks {
            self.injector.push(t);
        }
        std::sync::atomic::fence(Ordering::SeqCst);
        self.idle.wake_one(&self.workers);
    }

    /// Workers running: the configured ones and the spares started.
    pub(crate) fn active_workers(&self) -> usize {
        self.configured + self.spares.load(Ordering::Acquire)
    }

    pub(crate) fn spawned_outside(&self) -> u64 {
        self.outside_spawned.load(Ordering::Relaxed)
    }

    /// Whether no coroutine waits to start, in the injector or any deque.
    pub(crate) fn injector_and_deques_empty(&self) -> bool {
        self.injector.is_empty()
            && self
                .workers
                .iter()
                .take(self.active_workers())
                .all(|w| !w.has_queued_work())
    }

    /// Starts a spare worker (called by the monitor when every worker is
    /// held). Does nothing once `MAX_SPARE_WORKERS` are running. True if it
    /// started one.
    pub(crate) fn start_spare_worker(&'static self) -> bool {
        let mut deques = lock(&self.spare_deques);
        let Some(deque) = deques.pop() else {
            return false;
        };
        let index = self.active_workers();
        let started = scheduler::thread::start(format!("goro-worker-{index}"), move || {
            scheduler::worker::worker_main(self, index, deque)
        });
        if started.is_ok() {
            self.spares.fetch_add(1, Ordering::Release);
        }
        started.is_ok()
    }
}

/// Locks a runtime mutex. The runtime never panics while holding one, so a
/// poisoned lock only means a panic elsewhere; its data is still consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Configures the runtime before it starts.
///
/// The runtime starts by itself on first use with the default settings:
/// `GORO_WORKERS` workers if that environment variable is set, else one per
/// CPU, 256 KiB stacks, and unjoined panics reported only, unless
/// `GORO_PANIC=abort`. Settings made here override the environment, but
/// only before the runtime has started.
///
/// ```
/// goro::runtime::Builder::new().workers(2).start().ok();
/// assert!(goro::runtime::num_workers() >= 1);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    workers: Option<usize>,
    stack_size: Option<usize>,
    blocking_threads: Option<usize>,
    hold_threshold: Option<Duration>,
    /// `None`: from `GORO_PANIC`, else `UnjoinedPanic::Report`.
    unjoined_panic: Option<UnjoinedPanic>,
}

impl Builder {
    /// A builder with nothing set.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Number of worker threads (Go's `GOMAXPROCS`), from 1 to 1024.
    pub fn workers(mut self, n: usize) -> Builder {
        self.workers = Some(n);
        self
    }

    /// Default stack reserve for coroutines that do not set their own (see
    /// `goro::Builder::stack_size`). Only touched pages cost memory.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Most threads in the pool behind `goro::blocking` (default 512); calls
    /// beyond it wait for a free thread.
    pub fn blocking_threads(mut self, n: usize) -> Builder {
        self.blocking_threads = Some(n);
        self
    }

    /// How long a coroutine may run without yielding before the monitor
    /// reports that it holds its worker and works around it (100 ms by
    /// default; `Duration::ZERO` turns the monitor's watch off). The report
    /// names the coroutine, what its thread is blocked in (`blocked in
    /// recvfrom(fd 7)`, or `computing`) and the coroutines stranded behind
    /// it. Runs each shorter than this that together hold a worker for
    /// more than a quarter of a second are reported too, at most once per
    /// worker every 10 s.
    pub fn hold_threshold(mut self, d: Duration) -> Builder {
        self.hold_threshold = Some(d);
        self
    }

    /// What a panic nobody joins does: `UnjoinedPanic::Report` (the
    /// default) or `UnjoinedPanic::Abort`. Overrides `GORO_PANIC`.
    ///
    /// ```no_run
    /// use goro::runtime::{Builder, UnjoinedPanic};
    ///
    /// Builder::new().unjoined_panic(UnjoinedPanic::Abort).start().unwrap();
    /// goro::go!(|| panic!("no one joins this")); // the process aborts
    /// # goro::sleep(std::time::Duration::from_secs(1));
    /// ```
    pub fn unjoined_panic(mut self, policy: UnjoinedPanic) -> Builder {
        self.unjoined_panic = Some(policy);
        self
    }

    /// Starts the runtime.
    ///
    /// # Errors
    /// `InvalidInput` for a bad setting, a bad `GORO_WORKERS` or a bad
    /// `GORO_PANIC`;
    /// `AlreadyExists` if the runtime is already running; the OS error if a
    /// worker thread or poller cannot be created.
    pub fn start(self) -> std::io::Result<()> {
        if let Some(rt) = RUNTIME.get() {
            return Err(already_running(rt));
        }
        let _guard = lock(&START);
        if let Some(rt) = RUNTIME.get() {
            return Err(already_running(rt));
        }
        self.launch().map(|_| ())
    }

    pub(crate) fn start_or_get(self) -> std::io::Result<&'static Runtime> {
        let _guard = lock(&START);
        match RUNTIME.get() {
            Some(rt) => Ok(rt),
            None => self.launch(),
        }
    }

    /// Builds and publishes the runtime. Called with `START` held.
    fn launch(self) -> std::io::Result<&'static Runtime> {
        let n = match self.workers {
            Some(n) => check_workers(n, "Builder::workers")?,
            None => workers_from_env()?,
        };
        let stack_size = task::stack::checked_stack_size(
            self.stack_size.unwrap_or(task::stack::DEFAULT_STACK_SIZE),
        )?;
        let unjoined_panic = match self.unjoined_panic {
            Some(p) => p,
            None => diag::panic_hook::unjoined_panic_from_env()?,
        };
        if let Some(n) = self.blocking_threads {
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "Builder::blocking_threads: the pool needs at least one thread",
                ));
            }
            io::blocking::MAX_THREADS.store(n, Ordering::Relaxed);
        }
        monitor::sysmon::set_hold_threshold(
            self.hold_threshold
                .unwrap_or(monitor::sysmon::DEFAULT_HOLD_THRESHOLD),
        );
        let mut deques: Vec<Deque<TaskRef>> = (0..n + monitor::sysmon::MAX_SPARE_WORKERS)
            .map(|_| Deque::new_lifo())
            .collect();
        let workers = deques
            .iter()
            .enumerate()
            .map(|(i, d)| WorkerShared::new(i, d.stealer()))
            .collect::<std::io::Result<Box<[_]>>>()?;
        time::clock::init();
        raise_fd_limit();
        diag::overflow::install();
        diag::panic_hook::install();
        diag::panic_hook::set_unjoined_panic(unjoined_panic);
        let spare_deques: Vec<Deque<TaskRef>> = deques.split_off(n).into_iter().rev().collect();
        let rt: &'static Runtime = Box::leak(Box::new(Runtime {
            workers,
            configured: n,
            spares: AtomicUsize::new(0),
            spare_deques: Mutex::new(spare_deques),
            injector: Injector::new(),
            idle: IdleSet::new(n),
            stack_size,
            outside_spawned: AtomicU64::new(0),
        }));
        // If a thread fails to start, the runtime is not published; the
        // threads already started idle forever, holding no work.
        for (i, d) in deques.into_iter().enumerate() {
            scheduler::thread::start(format!("goro-worker-{i}"), move || {
                scheduler::worker::worker_main(rt, i, d)
            })
            .map_err(|e| described(format!("cannot start worker thread {i}: {e}"), e))?;
        }
        monitor::sysmon::start(rt)
            .map_err(|e| described(format!("cannot start the monitor thread: {e}"), e))?;
        // Only now may work arrive: it comes through RUNTIME.
        let _ = RUNTIME.set(rt);
        Ok(rt)
    }
}

/// The soft `RLIMIT_NOFILE` the process had before the runtime raised it;
/// unset if the runtime left it alone.
static ORIGINAL_FD_LIMIT: OnceLock<libc::rlimit> = OnceLock::new();

/// Raises the soft limit on open files to the hard limit, as Go does at
/// start: a server holding thousands of connections should not fail at the
/// historical default of 1024. Failure leaves the limit as it was.
///
/// Children inherit the raised limit (see `restore_fd_limit`).
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let original = lim;
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                let _ = ORIGINAL_FD_LIMIT.set(original);
            }
        }
    }
}

/// Whether the runtime raised the open-files limit (`restore_fd_limit`
/// then has something to restore).
pub(crate) fn fd_limit_raised() -> bool {
    ORIGINAL_FD_LIMIT.get().is_some()
}

/// Makes `cmd`'s child start with the open-files limit this process had
/// before goro raised it.
///
/// The runtime raises the soft `RLIMIT_NOFILE` to the hard limit when it
/// starts, as Go does, and a child process inherits it. Most programs do
/// not mind; a few (those that `select(2)` on fds above 1023, or that size
/// tables by the limit) do. Go restores the original limit in the children
/// that `os/exec` starts; `std::process::Command` cannot be hooked, so ask
/// for it here. The child then runs with `pre_exec` set, which makes std
/// fork and exec rather than `posix_spawn`. If the runtime did not raise
/// the limit (it was already at the hard limit, or the runtime has not
/// started), nothing changes.
///
/// ```
/// use std::process::Command;
///
/// goro::run(|| {
///     let mut cmd = Command::new("true");
///     goro::runtime::restore_fd_limit(&mut cmd);
///     assert!(cmd.status().unwrap().success());
/// });
/// ```
pub fn restore_fd_limit(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    let Some(&original) = ORIGINAL_FD_LIMIT.get() else {
        return cmd;
    };
    let hook = move || {
        // SAFETY: setrlimit reads the struct we pass; it is a plain system
        // call, async-signal-safe as a `pre_exec` hook requires.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &original) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: the hook only makes one async-signal-safe system call and
    // allocates nothing (the error path reads errno into an `std::io::Error`,
    // which does not allocate for an OS error).
    unsafe { cmd.pre_exec(hook) }
}

fn already_running(rt: &Runtime) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!(
            "the goro runtime is already running with {} workers; configure it before its first use",
            rt.configured
        ),
    )
}

fn check_workers(n: usize, source: &str) -> std::io::Result<usize> {
    if (1..=MAX_WORKERS).contains(&n) {
        Ok(n)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{source}: {n} workers is out of range; expected 1 to {MAX_WORKERS}"),
        ))
    }
}

fn workers_from_env() -> std::io::Result<usize> {
    match std::env::var("GORO_WORKERS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) => check_workers(n, "GORO_WORKERS"),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "GORO_WORKERS={v:?} is not a worker count; expected a whole number from 1 to {MAX_WORKERS}"
                ),
            )),
        },
        Err(std::env::VarError::NotPresent) => {
            Ok(std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS)))
        }
        Err(std::env::VarError::NotUnicode(v)) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("GORO_WORKERS={v:?} is not valid Unicode"),
        )),
    }
}

/// Number of live coroutines: spawned and not yet finished, the main one
/// included (Go's `runtime.NumGoroutine`). A snapshot: it may be stale by the
/// time it is read. 0 before the runtime starts.
pub fn num_coroutines() -> usize {
    let Some(rt) = Runtime::started() else {
        return 0;
    };
    let mut live = rt.outside_spawned.load(Ordering::Relaxed) as i64;
    for w in rt.workers.iter() {
        live += w.spawned.get() as i64;
        live -= w.finished.get() as i64;
    }
    live.max(0) as usize
}

/// Number of worker threads; starts the runtime if it has not started.
///
/// # Panics
/// If the runtime cannot start (see `Builder::start` for the errors).
pub fn num_workers() -> usize {
    Runtime::get().configured
}
