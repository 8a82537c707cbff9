//! What a worker's OS thread is doing, as the kernel sees it: for the
//! monitor's report on a held worker, which is worth most when it says
//! *why* the worker is held ("blocked in recvfrom(fd 7)": a blocking socket
//! read; "computing": a loop).
//!
//! Linux shows it in `/proc/self/task/TID/syscall`: `running` while the
//! thread is runnable (on a CPU or waiting for one: it computes), else the
//! number of the system call it sleeps in and its six arguments in hex, or
//! `-1` when it sleeps in the kernel outside a system call (a page fault
//! reading from disk, a stop). Reading it costs a file read, so the monitor
//! does it once per held episode, never per sample.
//!
//! How the thread spent a stretch of time comes from two counters read at
//! its start and end (`ThreadCounters`): the run delay from `schedstat`
//! (time runnable but waiting for a CPU: the OS ran something else) and
//! the voluntary context switches from `status` (each a sleep in the
//! kernel: a system call that waited, a lock).

use std::fmt;

/// The calling thread's OS thread id.
pub(crate) fn current_tid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// What thread `tid` of this process is doing now, or `None` if the kernel
/// does not say (no procfs, a kernel without the file).
pub(crate) fn state_of(tid: i32) -> Option<ThreadState> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    ThreadState::parse(&text)
}

/// What the kernel counts for thread `tid`, or `None` if it does not say
/// (no procfs, a kernel without schedstats).
pub(crate) fn counters_of(tid: i32) -> Option<ThreadCounters> {
    let sched = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    ThreadCounters::parse(&sched, &status)
}

/// Counters of one thread that only grow; the difference of two readings
/// says how it spent the time between them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ThreadCounters {
    /// Nanoseconds spent runnable but not on a CPU (`schedstat`'s second
    /// field).
    pub(crate) run_delay: u64,
    /// Times the thread slept in the kernel of its own accord
    /// (`voluntary_ctxt_switches` in `status`).
    pub(crate) voluntary_switches: u64,
}

impl ThreadCounters {
    fn parse(schedstat: &str, status: &str) -> Option<ThreadCounters> {
        let run_delay = schedstat.split_whitespace().nth(1)?.parse().ok()?;
        let voluntary_switches = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))?
            .trim()
            .parse()
            .ok()?;
        Some(ThreadCounters {
            run_delay,
            voluntary_switches,
        })
    }

    /// What grew from `earlier` to `self`.
    pub(crate) fn since(self, earlier: ThreadCounters) -> ThreadCounters {
        ThreadCounters {
            run_delay: self.run_delay.saturating_sub(earlier.run_delay),
            voluntary_switches: self
                .voluntary_switches
                .saturating_sub(earlier.voluntary_switches),
        }
    }
}

/// A thread's state, from its `syscall` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ThreadState {
    /// Runnable: it computes (or waits for a CPU to compute on).
    Computing,
    /// Asleep in the kernel outside a system call.
    OutsideSyscall,
    /// Asleep in system call `nr`, whose first argument is `arg0`.
    Syscall {
        /// The system call's number (`libc::SYS_*`).
        nr: libc::c_long,
        /// Its first argument: an fd for the calls `fd_first` names.
        arg0: u64,
    },
}

impl ThreadState {
    /// Whether the thread sleeps in a futex: a lock or a condition
    /// variable, std's or a C library's.
    pub(crate) fn is_futex(self) -> bool {
        matches!(self, ThreadState::Syscall { nr, .. } if nr == libc::SYS_futex)
    }

    fn parse(text: &str) -> Option<ThreadState> {
        let mut fields = text.split_whitespace();
        let first = fields.next()?;
        if first == "running" {
            return Some(ThreadState::Computing);
        }
        let nr: libc::c_long = first.parse().ok()?;
        if nr < 0 {
            return Some(ThreadState::OutsideSyscall);
        }
        let arg0 = fields.next()?.strip_prefix("0x")?;
        Some(ThreadState::Syscall {
            nr,
            arg0: u64::from_str_radix(arg0, 16).ok()?,
        })
    }
}

impl fmt::Display for ThreadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ThreadState::Computing => f.write_str("computing"),
            ThreadState::OutsideSyscall => {
                f.write_str("blocked in the kernel outside a system call")
            }
            ThreadState::Syscall { nr, arg0 } => match syscall_name(nr) {
                // An fd is a C int: the low 32 bits of the register.
                Some((name, true)) => write!(f, "blocked in {name}(fd {})", arg0 as u32 as i32),
                Some((name, false)) => write!(f, "blocked in {name}"),
                None => write!(f, "blocked in system call {nr}"),
            },
        }
    }
}

/// The name of system call `nr`, and whether its first argument is an fd.
/// Only the calls a blocking library is likely to sleep in; numbers differ
/// between architectures, so they come from libc, for the two that goro is
/// tested on.
fn syscall_name(nr: libc::c_long) -> Option<(&'static str, bool)> {
    SYSCALLS
        .iter()
        .find(|&&(n, _, _)| n == nr)
        .map(|&(_, name, fd)| (name, fd))
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SYSCALLS: &[(libc::c_long, &str, bool)] = &[
    (libc::SYS_read, "read", true),
    (libc::SYS_readv, "readv", true),
    (libc::SYS_pread64, "pread64", true),
    (libc::SYS_write, "write", true),
    (libc::SYS_writev, "writev", true),
    (libc::SYS_pwrite64, "pwrite64", true),
    (libc::SYS_recvfrom, "recvfrom", true),
    (libc::SYS_recvmsg, "recvmsg", true),
    (libc::SYS_recvmmsg, "recvmmsg", true),
    (libc::SYS_sendto, "sendto", true),
    (libc::SYS_sendmsg, "sendmsg", true),
    (libc::SYS_sendmmsg, "sendmmsg", true),
    (libc::SYS_connect, "connect", true),
    (libc::SYS_accept, "accept", true),
    (libc::SYS_accept4, "accept4", true),
    (libc::SYS_epoll_pwait, "epoll_pwait", true),
    (libc::SYS_epoll_pwait2, "epoll_pwait2", true),
    (libc::SYS_fsync, "fsync", true),
    (libc::SYS_fdatasync, "fdatasync", true),
    (libc::SYS_flock, "flock", true),
    (libc::SYS_fcntl, "fcntl", true),
    (libc::SYS_ioctl, "ioctl", true),
    (libc::SYS_close, "close", true),
    (libc::SYS_ppoll, "ppoll", false),
    (libc::SYS_pselect6, "pselect6", false),
    (libc::SYS_nanosleep, "nanosleep", false),
    (libc::SYS_clock_nanosleep, "clock_nanosleep", false),
    (libc::SYS_futex, "futex", false),
    (libc::SYS_openat, "openat", false),
    (libc::SYS_sendfile, "sendfile", false),
    (libc::SYS_splice, "splice", false),
    (libc::SYS_wait4, "wait4", false),
    (libc::SYS_waitid, "waitid", false),
    (libc::SYS_getrandom, "getrandom", false),
    // aarch64 has only the p- and at- forms of these.
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_epoll_wait, "epoll_wait", true),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_poll, "poll", false),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_select, "select", false),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_open, "open", false),
];

/// Elsewhere the report gives the number.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SYSCALLS: &[(libc::c_long, &str, bool)] = &[];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runnable_thread_computes() {
        assert_eq!(
            ThreadState::parse("running\n"),
            Some(ThreadState::Computing)
        );
        assert_eq!(ThreadState::Computing.to_string(), "computing");
    }

    #[test]
    fn a_call_on_an_fd_names_the_fd() {
        let line = format!(
            "{} 0x7 0x7f00deadb000 0x10000 0x0 0x0 0x0 0x7ffe801c78b0 0x7f417ca44aec\n",
            libc::SYS_recvfrom
        );
        let state = ThreadState::parse(&line).unwrap();
        assert_eq!(state.to_string(), "blocked in recvfrom(fd 7)");
    }

    #[test]
    fn a_call_without_an_fd_is_named_alone() {
        let line = format!(
            "{} 0x0 0x0 0x7ffe 0x7ffe 0x0 0x0 0x1 0x2\n",
            libc::SYS_futex
        );
        assert_eq!(
            ThreadState::parse(&line).unwrap().to_string(),
            "blocked in futex"
        );
    }

    #[test]
    fn an_unknown_call_is_given_by_number() {
        let state = ThreadState::parse("99999 0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x8").unwrap();
        assert_eq!(state.to_string(), "blocked in system call 99999");
    }

    #[test]
    fn asleep_outside_a_call_says_so() {
        assert_eq!(
            ThreadState::parse("-1 0x7ffe801c78b0 0x7f417ca44aec\n"),
            Some(ThreadState::OutsideSyscall)
        );
    }

    #[test]
    fn counters_come_from_schedstat_and_status() {
        let status =
            "Name:\tgoro-worker\nvoluntary_ctxt_switches:\t42\nnonvoluntary_ctxt_switches:\t7\n";
        let c = ThreadCounters::parse("1000 2500 9\n", status).unwrap();
        assert_eq!(
            c,
            ThreadCounters {
                run_delay: 2500,
                voluntary_switches: 42
            }
        );
        assert_eq!(ThreadCounters::parse("1000\n", status), None);
        assert_eq!(ThreadCounters::parse("1 2 3", "Name: x\n"), None);
        let later = ThreadCounters {
            run_delay: 4000,
            voluntary_switches: 50,
        };
        assert_eq!(
            later.since(c),
            ThreadCounters {
                run_delay: 1500,
                voluntary_switches: 8
            }
        );
    }

    /// The calling thread's own counters can be read, and a sleep is a
    /// voluntary switch.
    #[test]
    fn a_sleep_counts_as_a_voluntary_switch() {
        let tid = current_tid();
        let Some(before) = counters_of(tid) else {
            // A kernel without schedstats: nothing to check.
            return;
        };
        std::thread::sleep(std::time::Duration::from_millis(2));
        let after = counters_of(tid).unwrap();
        assert!(after.since(before).voluntary_switches >= 1);
    }

    #[test]
    fn garbage_says_nothing() {
        assert_eq!(ThreadState::parse(""), None);
        assert_eq!(ThreadState::parse("12 zz"), None);
    }

    /// A thread asleep in `read` on a pipe: the real file says so, with
    /// the pipe's fd.
    #[test]
    fn a_thread_blocked_in_read_is_seen_there() {
        use std::io::Read;
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::sync::mpsc;

        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two fds into the array we pass.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both fds were just created and are owned by nobody else.
        let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let rd_fd = rd.as_raw_fd();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            tx.send(current_tid()).unwrap();
            let mut file = std::fs::File::from(rd);
            let mut buf = [0u8; 1];
            file.read(&mut buf).unwrap()
        });
        let tid = rx.recv().unwrap();
        let want = format!("blocked in read(fd {rd_fd})");
        // The reader reaches read(2) a moment after it sends its tid.
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut seen = None;
        while seen.as_deref() != Some(want.as_str()) && std::time::Instant::now() < give_up {
            std::thread::sleep(std::time::Duration::from_millis(1));
            seen = state_of(tid).map(|s| s.to_string());
        }
        // SAFETY: writes one byte from a live array to the pipe we own.
        unsafe { libc::write(wr.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
        assert_eq!(reader.join().unwrap(), 1);
        assert_eq!(seen.as_deref(), Some(want.as_str()));
    }
}
