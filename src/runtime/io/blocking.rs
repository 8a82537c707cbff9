//! `goro::blocking`: run a call that blocks its thread on a pool of plain
//! threads, parking only the calling coroutine.
//!
//! The pool grows on demand, one thread per job that finds no idle thread
//! left for it, up to a cap (`runtime::Builder::blocking_threads`, 512 by
//! default); past it, jobs queue. A thread idle for `IDLE_THREAD_TIMEOUT` leaves. Results
//! (and panics) come back over a one-slot channel, so the caller waits as it
//! would on any channel.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::chan;
use crate::runtime::diag::trace;
use crate::runtime::lock;
use crate::runtime::scheduler::worker::Worker;

/// How long a pool thread waits for a job before it leaves.
const IDLE_THREAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Default cap on pool threads (Go's default `debug.SetMaxThreads` is
/// 10,000; tokio's blocking pool defaults to 512).
pub(crate) const DEFAULT_MAX_THREADS: usize = 512;

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<PoolState>,
    /// Signalled when a job is queued.
    work: Condvar,
}

struct PoolState {
    jobs: VecDeque<Job>,
    /// Threads alive in the pool.
    threads: usize,
    /// Of those, threads waiting for a job.
    idle: usize,
}

static POOL: Pool = Pool {
    state: Mutex::new(PoolState {
        jobs: VecDeque::new(),
        threads: 0,
        idle: 0,
    }),
    work: Condvar::new(),
};

/// Cap on pool threads; set before the runtime starts.
pub(crate) static MAX_THREADS: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_THREADS);

/// Threads in the pool now (for the deadlock rule's thread count).
pub(crate) fn pool_threads() -> usize {
    lock(&POOL.state).threads
}

/// Jobs submitted and not yet finished (for deadlock detection and stats).
pub(crate) static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

fn submit(job: Job) {
    let spawn = {
        let mut st = lock(&POOL.state);
        st.jobs.push_back(job);
        // An idle thread counts as idle until it wakes and takes the lock,
        // so compare queued jobs with idle threads: `idle > 0` alone would
        // send a burst of jobs to one woken thread, one after another.
        if st.jobs.len() <= st.idle {
            POOL.work.notify_one();
            false
        } else if st.threads < MAX_THREADS.load(Ordering::Relaxed) {
            st.threads += 1;
            true
        } else {
            false
        }
    };
    if spawn {
        let started = crate::runtime::scheduler::thread::start("goro-blocking".into(), pool_thread);
        if started.is_err() {
            // No thread could be made; the job waits for an existing one.
            // With none at all, run it here rather than never.
            let orphan = {
                let mut st = lock(&POOL.state);
                st.threads -= 1;
                if st.threads == 0 {
                    st.jobs.pop_front()
                } else {
                    None
                }
            };
            if let Some(job) = orphan {
                job();
            }
        }
    }
}

fn pool_thread() {
    let mut st = lock(&POOL.state);
    loop {
        if let Some(job) = st.jobs.pop_front() {
            drop(st);
            job();
            st = lock(&POOL.state);
            continue;
        }
        st.idle += 1;
        let (guard, timeout) = POOL
            .work
            .wait_timeout(st, IDLE_THREAD_TIMEOUT)
            .unwrap_or_else(|e| e.into_inner());
        st = guard;
        st.idle -= 1;
        if timeout.timed_out() && st.jobs.is_empty() {
            st.threads -= 1;
            return;
        }
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
    let (tx, rx) = chan::chan(1);
    IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    let caller = if trace::enabled() {
        trace::running_id()
    } else {
        0
    };
    submit(Box::new(move || {
        let traced = trace::enabled();
        if traced {
            trace::record(trace::Kind::BlockingStart, 0, caller, 0);
        }
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        if traced {
            trace::record(trace::Kind::BlockingEnd, 0, caller, 0);
        }
        // The caller waits for this; it cannot be gone.
        let _ = tx.try_send(result);
        // Only now, with the caller queued to run: a deadlock check that
        // sees no job in flight must see the caller runnable, or it could
        // report a deadlock while this thread is between the two.
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }));
    let result = rx.recv_as(crate::runtime::WaitingOn::BlockingCall);
    match result {
        Ok(Ok(v)) => v,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => unreachable!("goro: a blocking job vanished without a result"),
    }
}
