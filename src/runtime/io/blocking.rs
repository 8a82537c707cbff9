//! `goro::blocking`: run a call that blocks its thread on a pool of plain
//! threads, parking only the calling coroutine.
//!
//! The pool grows on demand, one thread per job that finds no idle thread
//! left for it, up to a cap (`runtime::Builder::blocking_threads`, 512 by
//! default); past it, jobs queue. A thread idle for `IDLE_THREAD_TIMEOUT`
//! leaves. docs/design.md (the blocking pool) says why these numbers.
//!
//! The submit path takes no lock: a worker thread submits on behalf of
//! every coroutine it serves, and a lock that a pool thread held while the
//! OS preempted it (a hundred pool threads on two cores are preempted all
//! the time) would stop the worker too. So jobs go on a lock-free queue,
//! idle threads wait on a lock-free queue of `Sleeper`s, each parked on its
//! own thread, and a submitter only pushes the job, claims one sleeper with
//! a compare-and-swap and unparks it (or starts a thread). The result comes
//! back through a `OneShot` (`park/oneshot.rs`), which wakes the caller
//! with a store and an unpark.
//!
//! No lost wakeup: a submitter pushes its job, then looks for a sleeper; a
//! thread going idle pushes its sleeper, then looks for a job. Each puts a
//! SeqCst fence between its push and its look, so at least one of the two
//! sees the other's push. A thread that finds a job after announcing
//! itself takes its sleeper back (IDLE -> WOKEN) and runs it; a submitter
//! that then pops that sleeper finds it no longer IDLE and looks further.
//!
//! A thread announces itself idle as its job ends, *before* the job hands
//! its result over: the caller, woken by the result, often submits again
//! at once, and finds the thread waiting for it rather than starting
//! another.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{self, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal};

use crate::runtime::diag::trace;
use crate::runtime::park::oneshot;
use crate::runtime::scheduler::worker::Worker;

/// How long a pool thread waits for a job before it leaves (tokio's
/// `thread_keep_alive` default).
const IDLE_THREAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Default cap on pool threads (Go's default `debug.SetMaxThreads` is
/// 10,000; tokio's blocking pool defaults to 512).
pub(crate) const DEFAULT_MAX_THREADS: usize = 512;

/// The nice value of pool threads (workers keep the process's, usually 0).
/// A hundred pool threads computing at the workers' priority share two
/// cores a hundred and two ways, and a worker waits its turn for 100 ms and
/// more while its coroutines wait behind it. At nice 15 a pool thread
/// weighs 36 against a worker's 1024 under Linux's fair scheduler, so a
/// worker that wakes runs within milliseconds; pool threads lose nothing on
/// an idle CPU, and the pool's total throughput stayed the same. Measured
/// in docs/design.md (the blocking pool).
const POOL_THREAD_NICE: libc::c_int = 15;

/// A job: runs the caller's function, calls its argument (which announces
/// the thread idle) once the function has returned, then hands the result
/// over.
type Job = Box<dyn FnOnce(&mut dyn FnMut()) + Send>;

/// Waiting for a job; a submitter may claim it.
const IDLE: u8 = 0;
/// Claimed: by a submitter (which then unparks the thread) or by the
/// thread itself, which found a job after announcing itself.
const WOKEN: u8 = 1;
/// The thread timed out and left; submitters skip it.
const LEFT: u8 = 2;

/// One idle episode of one pool thread.
struct Sleeper {
    /// IDLE, then WOKEN or LEFT, once.
    state: AtomicU8,
    /// The pool thread, unparked by the submitter that claims it.
    thread: Thread,
}

struct Pool {
    /// Jobs not yet taken by a thread.
    jobs: Injector<Job>,
    /// Sleepers of idle threads, oldest first. Entries no longer IDLE are
    /// stale: a submitter that pops one drops it and pops again.
    idle: Injector<Arc<Sleeper>>,
    /// Threads alive in the pool (started and not left), never above
    /// `MAX_THREADS`.
    threads: AtomicUsize,
}

/// Made on first use: `Injector::new` is not `const`. Callers racing the
/// first use wait for one allocation, once per process.
static POOL: LazyLock<Pool> = LazyLock::new(|| Pool {
    jobs: Injector::new(),
    idle: Injector::new(),
    threads: AtomicUsize::new(0),
});

/// Cap on pool threads; set before the runtime starts.
pub(crate) static MAX_THREADS: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_THREADS);

/// Threads in the pool now (for the deadlock rule's thread count).
pub(crate) fn pool_threads() -> usize {
    POOL.threads.load(Ordering::SeqCst)
}

/// Jobs submitted and not yet finished (for deadlock detection and stats).
pub(crate) static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Lowers the calling pool thread's priority to `POOL_THREAD_NICE`. Linux
/// keeps a nice value per thread, named by its thread id; where that fails
/// (a sandbox forbids it) the thread runs at the process's priority.
fn lower_priority() {
    let tid = crate::runtime::monitor::os_thread::current_tid();
    // SAFETY: setpriority reads only its integer arguments; raising one's
    // own thread's nice value needs no privilege.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, POOL_THREAD_NICE) };
}

/// Pops from an injector, retrying while it says to.
fn pop<T>(queue: &Injector<T>) -> Option<T> {
    loop {
        match queue.steal() {
            Steal::Success(v) => return Some(v),
            Steal::Empty => return None,
            Steal::Retry => {}
        }
    }
}

impl Pool {
    fn submit(&self, job: Job) {
        self.jobs.push(job);
        // Pairs with the fence in `wait_for_job` (see the module's comment).
        atomic::fence(Ordering::SeqCst);
        if self.wake_one() || !self.reserve_thread() {
            // A woken thread takes the job, or at the cap a busy one will.
            return;
        }
        let started =
            crate::runtime::scheduler::thread::start("goro-blocking".into(), || POOL.serve());
        if started.is_err() && self.threads.fetch_sub(1, Ordering::SeqCst) == 1 {
            // No thread could be made, and there is none to take the job:
            // run what is queued here rather than never.
            while let Some(job) = pop(&self.jobs) {
                job(&mut || {});
            }
        }
    }

    /// Claims an idle thread and unparks it; false if none is idle.
    fn wake_one(&self) -> bool {
        while let Some(sleeper) = pop(&self.idle) {
            if sleeper
                .state
                .compare_exchange(IDLE, WOKEN, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                sleeper.thread.unpark();
                return true;
            }
        }
        false
    }

    /// Counts a thread about to start, if the cap allows one more.
    fn reserve_thread(&self) -> bool {
        let max = MAX_THREADS.load(Ordering::Relaxed);
        self.threads
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// A pool thread's life: run jobs until idle for `IDLE_THREAD_TIMEOUT`.
    fn serve(&self) {
        lower_priority();
        let mut announced: Option<Arc<Sleeper>> = None;
        loop {
            if let Some(job) = pop(&self.jobs) {
                // A job found while announced: take the sleeper back, or a
                // submitter may count on this thread while it is busy. If
                // one claimed it already, its job is queued and taken next.
                if let Some(me) = announced.take() {
                    let _ =
                        me.state
                            .compare_exchange(IDLE, WOKEN, Ordering::AcqRel, Ordering::Relaxed);
                }
                job(&mut || announced = Some(self.announce_idle()));
                continue;
            }
            let me = announced.take().unwrap_or_else(|| self.announce_idle());
            if !self.wait_for_job(&me) {
                return;
            }
        }
    }

    /// Puts a new sleeper for this thread on the idle queue.
    fn announce_idle(&self) -> Arc<Sleeper> {
        let me = Arc::new(Sleeper {
            state: AtomicU8::new(IDLE),
            thread: thread::current(),
        });
        self.idle.push(me.clone());
        me
    }

    /// Waits, as the announced sleeper `me`, until a submitter claims it or
    /// a job is queued (true), or until the idle timeout, when the thread
    /// leaves the pool (false).
    fn wait_for_job(&self, me: &Sleeper) -> bool {
        // Pairs with the fence in `submit` (see the module's comment).
        atomic::fence(Ordering::SeqCst);
        let deadline = Instant::now() + IDLE_THREAD_TIMEOUT;
        loop {
            if me.state.load(Ordering::Acquire) != IDLE {
                return true;
            }
            if !self.jobs.is_empty() {
                // Our own claim; if a submitter's came first, it unparked
                // us for this job anyway.
                let _ = me
                    .state
                    .compare_exchange(IDLE, WOKEN, Ordering::AcqRel, Ordering::Relaxed);
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                if me
                    .state
                    .compare_exchange(IDLE, LEFT, Ordering::AcqRel, Ordering::Relaxed)
                    .is_err()
                {
                    return true;
                }
                return self.leave();
            }
            thread::park_timeout(deadline - now);
        }
    }

    /// Takes this thread out of the pool; false if it leaves. A submitter
    /// may have found no sleeper (ours was LEFT) and no room for a new
    /// thread (ours still counted) just before: so with a job queued, the
    /// thread stays if the cap allows.
    fn leave(&self) -> bool {
        self.threads.fetch_sub(1, Ordering::SeqCst);
        atomic::fence(Ordering::SeqCst);
        !self.jobs.is_empty() && self.reserve_thread()
    }
}

/// Runs `f`, which may block its thread (a system call without a
/// non-blocking form, a C library, a long computation), on a pool of plain
/// threads, and returns its result. Only the calling coroutine waits; its
/// worker goes on running other coroutines. A panic in `f` resumes in the
/// caller. On a plain thread outside the runtime, this just calls `f`.
///
/// ```
/// let n = goro::run(|| goro::blocking(|| std::fs::read_dir(".").map(|d| d.count())));
/// assert!(n.unwrap() > 0);
/// ```
pub fn blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if Worker::current_in_coroutine().is_none() {
        return f();
    }
    let (tx, rx) = oneshot::new();
    IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    let caller = if trace::enabled() {
        trace::running_id()
    } else {
        0
    };
    POOL.submit(Box::new(move |announce_idle| {
        let traced = trace::enabled();
        if traced {
            trace::record(trace::Kind::BlockingStart, 0, caller, 0);
        }
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        if traced {
            trace::record(trace::Kind::BlockingEnd, 0, caller, 0);
        }
        announce_idle();
        tx.send(result);
        // Only now, with the caller queued to run: a deadlock check that
        // sees no job in flight must see the caller runnable, or it could
        // report a deadlock while this thread is between the two.
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }));
    match rx.recv(crate::runtime::WaitingOn::BlockingCall) {
        Some(Ok(v)) => v,
        Some(Err(payload)) => panic::resume_unwind(payload),
        // Every job runs, on a pool thread or, failing one, in `submit`.
        None => unreachable!("goro: a blocking job vanished without a result"),
    }
}
