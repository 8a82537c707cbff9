//! Why a worker is held: the monitor's reading of what the kernel says
//! about the held thread, so that its report gives the advice that fits.
//!
//! - Nothing waits behind the holder (no other coroutine started on the
//!   worker, no fd registered there, no hand-off queued to it):
//!   the hold strands nobody, so there is nothing to report. A loop that
//!   spawns a million coroutines holds its worker, but the coroutines it
//!   spawns have not started and other workers take them.
//! - The thread was runnable but not on a CPU for most of the time since
//!   the monitor first looked (`schedstat`'s run delay): the OS ran other
//!   threads, and the coroutine is not to blame.
//! - Blocked in a futex while a coroutine started on the same worker is
//!   parked: most likely a std lock (`Mutex`, `RwLock`, `Condvar`) that the
//!   parked coroutine holds across a goro call, and which it cannot release
//!   until the blocked one yields. `goro::sync`'s locks park instead.
//! - Sleeping in the kernel again and again (voluntary context switches),
//!   or in different calls from one look to the next: system calls in a
//!   loop, such as a sync database driver on std sockets. Not `computing`.
//! - Otherwise, what the kernel says: blocked in a call, or computing.

use std::fmt;

use crate::runtime::monitor::os_thread::{ThreadCounters, ThreadState};

/// Voluntary context switches over the look's window that make a loop of
/// system calls: one or two are a call that blocked once.
const LOOP_MIN_SWITCHES: u64 = 3;
/// The share of the window (1/this) that the thread must have spent
/// waiting for a CPU to count as descheduled: most of it.
const DESCHEDULED_SHARE: u64 = 2;

/// What the monitor knows of a held worker when it decides what to say.
pub(crate) struct Evidence {
    /// The thread's state at a few looks in a row (empty if unreadable).
    pub(crate) samples: Vec<ThreadState>,
    /// How the thread's counters grew over a window before the report,
    /// and the window's length in nanoseconds.
    pub(crate) delta: Option<(ThreadCounters, u64)>,
    /// Coroutines started on the worker other than the holder: parked, or
    /// woken and waiting for it.
    pub(crate) started_behind: usize,
    /// Whether anything waits on the worker: another coroutine started
    /// there, an fd registered with its poller, a hand-off queued to it.
    pub(crate) stranded: bool,
}

/// The monitor's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// Nothing waits behind the holder: no report.
    NothingStranded,
    /// Runnable but off the CPU for `waited` of the last `window`
    /// nanoseconds.
    Descheduled { waited: u64, window: u64 },
    /// In a futex with a coroutine started behind: a std lock held across
    /// a goro call.
    StdLock,
    /// System calls in a loop without parking; the last state seen.
    SyscallLoop(Option<ThreadState>),
    /// What the kernel says, if it says.
    Plain(Option<ThreadState>),
}

/// Reads the evidence.
pub(crate) fn classify(e: &Evidence) -> Cause {
    if !e.stranded {
        return Cause::NothingStranded;
    }
    let last = e.samples.last().copied();
    if let Some(state) = last
        && state.is_futex()
        && e.started_behind > 0
    {
        return Cause::StdLock;
    }
    // Before the run delay: a thread that sleeps and wakes all the time
    // waits for a CPU at each wakeup on a busy machine, which is not the
    // OS keeping a computation off the CPU.
    if e.delta
        .is_some_and(|(d, _)| d.voluntary_switches >= LOOP_MIN_SWITCHES)
    {
        return Cause::SyscallLoop(last);
    }
    if let Some((d, window)) = e.delta
        && window > 0
        && d.run_delay * DESCHEDULED_SHARE > window
    {
        return Cause::Descheduled {
            waited: d.run_delay,
            window,
        };
    }
    if e.samples.windows(2).any(|w| w[0] != w[1]) {
        return Cause::SyscallLoop(last);
    }
    Cause::Plain(last)
}

/// The clause of a held-worker report after "without yielding": what the
/// thread does and what to do about it.
pub(crate) struct Advice(pub(crate) Cause);

impl fmt::Display for Advice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const BLOCKING: &str = "run blocking calls in goro::blocking";
        match self.0 {
            Cause::StdLock => write!(
                f,
                ", blocked in futex: this looks like a std lock (Mutex, RwLock or Condvar) \
                 held across a goro call by a coroutine parked on this worker, which cannot \
                 run to release it until this one yields; use goro::sync's Mutex, RwLock and \
                 Condvar, which park the coroutine instead"
            ),
            Cause::SyscallLoop(now) => {
                f.write_str(", making system calls in a loop without parking")?;
                if let Some(state @ ThreadState::Syscall { .. }) = now {
                    write!(f, " (now {state})")?;
                }
                write!(
                    f,
                    " (a sync client on std sockets?); use goro::net's sockets, or {BLOCKING}"
                )
            }
            Cause::Plain(Some(state)) => write!(f, ", {state}; {BLOCKING}"),
            Cause::Plain(None) | Cause::NothingStranded | Cause::Descheduled { .. } => {
                write!(f, "; {BLOCKING}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn futex() -> ThreadState {
        ThreadState::Syscall {
            nr: libc::SYS_futex,
            arg0: 0x7f00,
        }
    }

    fn recv(fd: u64) -> ThreadState {
        ThreadState::Syscall {
            nr: libc::SYS_recvfrom,
            arg0: fd,
        }
    }

    fn counters(run_delay: u64, voluntary_switches: u64) -> ThreadCounters {
        ThreadCounters {
            run_delay,
            voluntary_switches,
        }
    }

    fn evidence(samples: Vec<ThreadState>) -> Evidence {
        Evidence {
            samples,
            delta: Some((counters(0, 0), 50 * MS)),
            started_behind: 1,
            stranded: true,
        }
    }

    #[test]
    fn a_hold_that_strands_nobody_is_not_reported() {
        let e = Evidence {
            stranded: false,
            started_behind: 0,
            ..evidence(vec![ThreadState::Computing])
        };
        assert_eq!(classify(&e), Cause::NothingStranded);
    }

    #[test]
    fn a_thread_off_the_cpu_most_of_the_window_was_descheduled() {
        let e = Evidence {
            delta: Some((counters(40 * MS, 0), 50 * MS)),
            ..evidence(vec![ThreadState::Computing; 3])
        };
        assert_eq!(
            classify(&e),
            Cause::Descheduled {
                waited: 40 * MS,
                window: 50 * MS
            }
        );
        // Some waiting for a CPU is normal on a busy machine.
        let e = Evidence {
            delta: Some((counters(10 * MS, 0), 50 * MS)),
            ..evidence(vec![ThreadState::Computing; 3])
        };
        assert_eq!(classify(&e), Cause::Plain(Some(ThreadState::Computing)));
    }

    #[test]
    fn a_futex_with_a_parked_coroutine_behind_is_a_std_lock() {
        assert_eq!(classify(&evidence(vec![futex(); 3])), Cause::StdLock);
        let alone = Evidence {
            started_behind: 0,
            ..evidence(vec![futex(); 3])
        };
        assert_eq!(classify(&alone), Cause::Plain(Some(futex())));
        let advice = Advice(Cause::StdLock).to_string();
        assert!(
            advice.contains("std lock (Mutex, RwLock or Condvar)"),
            "{advice}"
        );
        assert!(advice.contains("goro::sync"), "{advice}");
    }

    #[test]
    fn sleeping_again_and_again_is_a_loop_of_system_calls() {
        let e = Evidence {
            delta: Some((counters(0, 120), 50 * MS)),
            ..evidence(vec![recv(7); 3])
        };
        assert_eq!(classify(&e), Cause::SyscallLoop(Some(recv(7))));
        // Waking often on a busy machine adds run delay: still a loop.
        let e = Evidence {
            delta: Some((counters(40 * MS, 120), 50 * MS)),
            ..evidence(vec![recv(7); 3])
        };
        assert_eq!(classify(&e), Cause::SyscallLoop(Some(recv(7))));
        let advice = Advice(classify(&e)).to_string();
        assert_eq!(
            advice,
            ", making system calls in a loop without parking (now blocked in recvfrom(fd 7)) \
             (a sync client on std sockets?); use goro::net's sockets, or run blocking calls \
             in goro::blocking"
        );
        // Calls that never sleep show as a state that varies.
        let e = evidence(vec![
            ThreadState::Computing,
            recv(7),
            ThreadState::Computing,
        ]);
        assert_eq!(
            classify(&e),
            Cause::SyscallLoop(Some(ThreadState::Computing))
        );
        assert!(!Advice(classify(&e)).to_string().contains("computing"));
    }

    #[test]
    fn one_long_call_or_a_computation_is_said_as_it_is() {
        let e = evidence(vec![recv(7); 3]);
        assert_eq!(classify(&e), Cause::Plain(Some(recv(7))));
        assert_eq!(
            Advice(classify(&e)).to_string(),
            ", blocked in recvfrom(fd 7); run blocking calls in goro::blocking"
        );
        let e = evidence(vec![ThreadState::Computing; 3]);
        assert_eq!(
            Advice(classify(&e)).to_string(),
            ", computing; run blocking calls in goro::blocking"
        );
        let unknown = Evidence {
            delta: None,
            ..evidence(vec![])
        };
        assert_eq!(classify(&unknown), Cause::Plain(None));
    }
}
