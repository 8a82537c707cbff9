//! The deadlock report: `goro: all coroutines are asleep - deadlock!`.
//!
//! Go reports a deadlock when every goroutine is blocked and nothing outside
//! the runtime can wake one. goro can see less than Go: plain threads may
//! hold senders, mutexes or wait groups and wake a coroutine later, and the
//! runtime cannot see what they hold. So the rule is conservative, and when
//! it cannot be sure it says nothing. goro reports a deadlock only when, on
//! two monitor checks with no scheduling progress in between:
//!
//! 1. a `goro::run` call is waiting for its main coroutine, and that main
//!    coroutine is parked;
//! 2. every worker sleeps and nothing is queued anywhere (no runnable
//!    coroutine, none not yet started);
//! 3. nothing pending could wake a coroutine: no live timer on any worker (a
//!    sleep, a timeout, a ticker; a stopped one does not count), no coroutine waiting for an fd (a socket,
//!    a signal), no call running in `goro::blocking`;
//! 4. the process has no thread besides the runtime's own (workers, the
//!    monitor, the blocking pool) and the one thread blocked in
//!    `goro::run`: no thread outside the runtime could hold a way to wake
//!    anything.
//!
//! Then it prints the message and a dump of every coroutine to stderr and
//! exits with status 2, as Go does.

use std::sync::atomic::Ordering;

use crate::runtime::{Runtime, diag::dump, io::blocking, io::netpoll, lock, monitor::sysmon};

/// Conditions 1 to 3, cheap to check.
pub(crate) fn suspected(rt: &Runtime) -> bool {
    let Some(m) = sysmon::monitor() else {
        return false;
    };
    {
        let mains = lock(&m.mains);
        if mains.len() != 1 || !mains[0].header().is_parked() {
            return false;
        }
    }
    let active = rt.active_workers();
    rt.workers
        .iter()
        .take(active)
        .all(|w| w.is_sleeping() && !w.has_queued_work() && w.live_timer_count() == 0)
        && rt.injector_and_deques_empty()
        && netpoll::IO_WAITERS.load(Ordering::SeqCst) == 0
        && blocking::IN_FLIGHT.load(Ordering::SeqCst) == 0
}

/// A measure of scheduling progress: the workers' pick counts.
pub(crate) fn progress(rt: &Runtime) -> u64 {
    rt.workers
        .iter()
        .take(rt.active_workers())
        .map(|w| w.picks.load(Ordering::SeqCst) as u64)
        .sum()
}

/// Condition 4, and 1 to 3 once more.
pub(crate) fn confirmed(rt: &Runtime) -> bool {
    let expected = rt.active_workers() + 1 + blocking::pool_threads() + 1;
    suspected(rt) && process_threads() == Some(expected)
}

/// Threads in this process, from `/proc/self/task`.
fn process_threads() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/task").ok()?.count())
}

/// Prints the report and exits with status 2.
pub(crate) fn report() -> ! {
    // Formatted before stderr is locked: symbolizing takes a while.
    let text = dump::dump().to_string();
    eprint!("goro: all coroutines are asleep - deadlock!\n\n{text}");
    std::process::exit(2);
}
