//! Waiting for a child to exit, and reaping it, without holding a worker.
//!
//! A child is watched through a pidfd (`pidfd_open`, Linux 5.3): it becomes
//! readable when the child exits, so a waiter parks on it in the netpoller
//! like on a socket, and then reaps with `waitpid(WNOHANG)`, which cannot
//! block. No thread waits for any child.
//!
//! Where there is no pidfd (an older kernel, a sandbox that forbids it, or
//! no fd left for one), a coroutine runs `waitid(WNOWAIT)` in
//! `goro::blocking` and closes a channel when the child has exited; the
//! waiter receives on that channel, then reaps. `WNOWAIT` leaves the reaping
//! to the waiter: until `Process` reaps, the child stays at least a zombie,
//! so its pid names it and `kill` can never hit another process.
//!
//! Only a `Process` reaps its child, and it always does: a `Process`
//! dropped before its child was reaped reaps it at once if it has exited,
//! and otherwise hands it to a reaper coroutine (outside any `synctest`
//! bubble) that waits as above. So no zombie is ever left behind.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::poll_fd::PollFd;
use crate::chan::{Receiver, RecvTimeoutError, chan};
use crate::context::{self, AfterFunc, Context};
use crate::runtime::Runtime;
use crate::runtime::io::netpoll::{self, Dir};
use crate::runtime::task::spawn::spawn_detached;

/// What a bounded wait gives up at.
#[derive(Clone)]
pub(crate) enum Bound {
    /// Nothing: wait until the child exits.
    Never,
    /// This instant.
    Deadline(Instant),
    /// This context being done.
    Context(Context),
}

impl Bound {
    /// The deadline that timed waits park until.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self {
            Bound::Never => None,
            Bound::Deadline(d) => Some(*d),
            Bound::Context(ctx) => ctx.deadline(),
        }
    }

    /// Why the bound is reached, if it is: `TimedOut` for a deadline (the
    /// context's own error for a context).
    pub(crate) fn reached(&self) -> Option<io::Error> {
        match self {
            Bound::Never => None,
            Bound::Deadline(d) => (Instant::now() >= *d).then(netpoll::timeout_error),
            Bound::Context(ctx) => ctx.err().map(io::Error::from),
        }
    }
}

/// Read deadlines set on some fds for the length of a bounded wait: the
/// bound's deadline, or now once its context is done, so that a waiter
/// parked on any of them wakes with `TimedOut` and checks the bound.
/// Dropping it clears them.
pub(crate) struct Armed {
    /// The fds; shared with the context's function, which may still run
    /// after this is dropped (it then moves the deadline of fds that no
    /// one waits on, or of fds whose next waiter re-arms them and goes on).
    fds: Vec<Arc<PollFd>>,
    /// The deadline to restore after a stray wake.
    deadline: Option<Instant>,
    /// The context's function, stopped on drop.
    on_done: Option<AfterFunc>,
}

impl Armed {
    pub(crate) fn new(bound: &Bound, fds: Vec<Arc<PollFd>>) -> Armed {
        let mut armed = Armed {
            deadline: bound.deadline(),
            on_done: None,
            fds,
        };
        armed.rearm();
        armed.on_done = match bound {
            Bound::Context(ctx) => {
                let fds = armed.fds.clone();
                Some(context::after_func(ctx, move || {
                    for fd in &fds {
                        fd.set_deadline(Dir::Read, Some(Instant::now()));
                    }
                }))
            }
            _ => None,
        };
        armed
    }

    /// Sets the deadlines again after a wake with `TimedOut`. Must come
    /// before the caller checks its bound: a context's function that runs
    /// between the check and this would otherwise be undone unseen.
    pub(crate) fn rearm(&self) {
        for fd in &self.fds {
            fd.set_deadline(Dir::Read, self.deadline);
        }
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        if let Some(f) = &self.on_done {
            f.stop();
        }
        for fd in &self.fds {
            fd.set_deadline(Dir::Read, None);
        }
    }
}

/// Set once `pidfd_open` said the kernel has none, or may not be used:
/// every child is then watched from the blocking pool.
static NO_PIDFD: AtomicBool = AtomicBool::new(false);

/// How a child's exit is noticed.
enum Watch {
    /// Its pidfd, readable once it exited.
    Pidfd(Arc<PollFd>),
    /// From the blocking pool: the channel that is closed once it exited,
    /// made by the first wait that needs it.
    Pool(Option<Receiver<io::Result<()>>>),
}

/// A child process that this process must reap (exactly once).
pub(crate) struct Process {
    /// The child's pid. While `status` is `None` the child is not reaped,
    /// so the pid still names it (a zombie at worst) and no other process.
    pid: libc::pid_t,
    /// Its exit status once reaped.
    status: Option<ExitStatus>,
    /// How its exit is noticed.
    watch: Watch,
}

impl Process {
    /// Watches the child `pid`, just spawned and not reaped.
    pub(crate) fn new(pid: u32) -> Process {
        let pid = pid as libc::pid_t;
        Process {
            pid,
            status: None,
            watch: match pidfd_open(pid) {
                Some(fd) => Watch::Pidfd(Arc::new(fd)),
                None => Watch::Pool(None),
            },
        }
    }

    /// A process watched from the blocking pool, as on kernels without
    /// pidfds.
    #[cfg(test)]
    pub(crate) fn without_pidfd(pid: u32) -> Process {
        Process {
            pid: pid as libc::pid_t,
            status: None,
            watch: Watch::Pool(None),
        }
    }

    pub(crate) fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Its status if it has exited (reaping it), without waiting.
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = reap(self.pid)?;
        }
        Ok(self.status)
    }

    /// Sends `SIGKILL`; nothing once it has been reaped (as std).
    pub(crate) fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        // SAFETY: kill has no memory preconditions; the pid names our
        // unreaped child (see `pid`), so no other process is hit.
        if unsafe { libc::kill(self.pid, libc::SIGKILL) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits for the child to exit and reaps it: its status, or `None` if
    /// `bound` was reached first (the child is left running).
    pub(crate) fn wait(&mut self, bound: &Bound) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.try_wait()? {
            return Ok(Some(s));
        }
        let status = match &mut self.watch {
            Watch::Pidfd(fd) => wait_pidfd(self.pid, fd.clone(), bound)?,
            Watch::Pool(exited) => {
                let exited = match exited {
                    Some(rx) => rx.clone(),
                    None => exited.insert(watch_in_pool(self.pid)?).clone(),
                };
                wait_pool(self.pid, &exited, bound)?
            }
        };
        self.status = status;
        Ok(status)
    }

    /// Waits for the child to exit, without a bound, and reaps it.
    pub(crate) fn wait_exit(&mut self) -> io::Result<ExitStatus> {
        loop {
            // Without a bound, `wait` gives up only with an error.
            if let Some(status) = self.wait(&Bound::Never)? {
                return Ok(status);
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        match self.try_wait() {
            // Reaped now or before.
            Ok(Some(_)) => return,
            Ok(None) => {}
            // Not our child any more (`SIGCHLD` ignored, or reaped by
            // another `waitpid`): nothing to reap.
            Err(_) => return,
        }
        let orphan = Process {
            pid: self.pid,
            status: None,
            watch: std::mem::replace(&mut self.watch, Watch::Pool(None)),
        };
        spawn_reaper(orphan);
    }
}

/// Waits for `orphan` in a coroutine of its own, outside the caller's
/// `synctest` bubble (which would otherwise wait for the child too).
fn spawn_reaper(mut orphan: Process) {
    let pid = orphan.pid;
    let reaper = move || {
        if orphan.wait_exit().is_err() {
            // The watch failed (no memory to register the pidfd): wait
            // in the pool, and mark the orphan reaped either way so that
            // its drop does not hand it on again.
            orphan.status = crate::blocking(move || reap_blocking(pid));
        }
    };
    match Runtime::get_or_start() {
        Ok(rt) => spawn_detached(rt, Some("goro-reaper"), reaper),
        // No runtime can start: a plain thread reaps instead. Should that
        // fail too, the process is out of threads and nothing can wait.
        Err(_) => {
            let _ = std::thread::Builder::new()
                .name("goro-reaper".into())
                .spawn(move || {
                    let _ = reap_blocking(pid);
                });
        }
    }
}

/// Parks on the pidfd until the child exits (reaping it) or `bound` is
/// reached.
fn wait_pidfd(pid: libc::pid_t, fd: Arc<PollFd>, bound: &Bound) -> io::Result<Option<ExitStatus>> {
    let armed = Armed::new(bound, vec![fd.clone()]);
    loop {
        let r = fd.io(Dir::Read, |_| match reap(pid)? {
            Some(status) => Ok(status),
            // Not exited: the pidfd is not readable yet.
            None => Err(io::ErrorKind::WouldBlock.into()),
        });
        match r {
            Ok(status) => return Ok(Some(status)),
            Err(e) if crate::runtime::io::netpoll::is_timeout(&e) => {
                // The deadline skips the `waitpid`: the child may have
                // exited all the same.
                if let Some(status) = reap(pid)? {
                    return Ok(Some(status));
                }
                armed.rearm();
                if bound.reached().is_some() {
                    return Ok(None);
                }
                // A stray wake from an earlier wait's context: go on.
            }
            Err(e) => return Err(e),
        }
    }
}

/// Waits on the pool's channel until the child exits (reaping it) or
/// `bound` is reached.
fn wait_pool(
    pid: libc::pid_t,
    exited: &Receiver<io::Result<()>>,
    bound: &Bound,
) -> io::Result<Option<ExitStatus>> {
    let event = match bound {
        Bound::Never => Some(exited.recv()),
        Bound::Deadline(d) => match exited.recv_deadline(*d) {
            Err(RecvTimeoutError::Timeout) => None,
            Ok(r) => Some(Ok(r)),
            Err(RecvTimeoutError::Closed) => Some(Err(crate::chan::RecvError)),
        },
        Bound::Context(ctx) => crate::select! {
            recv(exited) -> r => Some(r),
            recv(ctx.done()) -> _ => None,
        },
    };
    match event {
        // Given up: the child is running or has just exited; reap it if
        // it has.
        None => reap(pid),
        // The watcher's error: the wait cannot tell when the child exits.
        Some(Ok(Err(e))) => Err(e),
        // Exited (the watcher sent `Ok`, or it already did and the channel
        // is closed): the child is a zombie, so this reaps it.
        Some(_) => match reap(pid)? {
            Some(status) => Ok(Some(status)),
            None => Err(io::Error::other(format!(
                "process {pid} reported exited but could not be reaped"
            ))),
        },
    }
}

/// Starts the pool's watch of `pid`: the channel gets `Ok` once the child
/// has exited (it is not reaped), or the error of `waitid`, and is then
/// closed.
fn watch_in_pool(pid: libc::pid_t) -> io::Result<Receiver<io::Result<()>>> {
    let (tx, rx) = chan(1);
    let watcher = move || {
        let r = crate::blocking(move || wait_exited(pid));
        let _ = tx.send(r);
    };
    spawn_detached(
        Runtime::get_or_start()?,
        Some("goro-process-watch"),
        watcher,
    );
    Ok(rx)
}

/// A pidfd for `pid`, or `None` if the system gives none.
fn pidfd_open(pid: libc::pid_t) -> Option<PollFd> {
    if NO_PIDFD.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        // No pidfds here, for good: an old kernel, or a seccomp filter.
        // Other errors (out of fds or memory) pass, so this child alone
        // falls back.
        if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) {
            NO_PIDFD.store(true, Ordering::Relaxed);
        }
        return None;
    }
    // SAFETY: pidfd_open returned a new fd (close-on-exec), owned by no one
    // else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    PollFd::new(fd).ok()
}

/// `waitpid(pid, WNOHANG)`: the status if the child has exited (it is
/// reaped), `None` if it runs.
fn reap(pid: libc::pid_t) -> io::Result<Option<ExitStatus>> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int to write.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        match r {
            0 => return Ok(None),
            r if r == pid => return Ok(Some(ExitStatus::from_raw(status))),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// `waitpid(pid, 0)`, blocking the thread until the child exits: its
/// status, or `None` if it is not our child (any more).
fn reap_blocking(pid: libc::pid_t) -> Option<ExitStatus> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int to write.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            return Some(ExitStatus::from_raw(status));
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return None;
        }
    }
}

/// `waitid(WEXITED | WNOWAIT)`: blocks the thread until `pid` has exited,
/// leaving it to be reaped.
fn wait_exited(pid: libc::pid_t) -> io::Result<()> {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid buffer for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is valid for writes.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[expect(clippy::zombie_processes, reason = "the `Process` reaps it")]
    fn spawn(script: &str) -> Process {
        let child = std::process::Command::new("sh")
            .args(["-c", script])
            .spawn()
            .unwrap();
        Process::without_pidfd(child.id())
    }

    /// Whether `pid` is not our unreaped child any more.
    fn is_reaped(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => {
                let rest = &stat[stat.rfind(')').unwrap() + 2..];
                let ppid: u32 = rest.split_whitespace().nth(1).unwrap().parse().unwrap();
                ppid != std::process::id()
            }
        }
    }

    /// Without a pidfd, waits go through the blocking pool: plain,
    /// bounded by a deadline or a context, and a drop still reaps.
    #[test]
    fn waits_without_a_pidfd() {
        crate::run(|| {
            let mut p = spawn("exit 7");
            let status = p.wait(&Bound::Never).unwrap().unwrap();
            assert_eq!(status.code(), Some(7));
            assert_eq!(p.try_wait().unwrap(), Some(status));

            let mut p = spawn("sleep 10");
            let soon = Instant::now() + Duration::from_millis(30);
            assert_eq!(p.wait(&Bound::Deadline(soon)).unwrap(), None);
            p.kill().unwrap();
            let status = p.wait(&Bound::Never).unwrap().unwrap();
            assert_eq!(status.signal(), Some(libc::SIGKILL));

            let mut p = spawn("sleep 10");
            let (ctx, cancel) = context::with_cancel(&Context::background());
            crate::go!(move || {
                crate::sleep(Duration::from_millis(20));
                cancel.cancel();
            });
            assert_eq!(p.wait(&Bound::Context(ctx)).unwrap(), None);
            p.kill().unwrap();
            assert!(p.wait(&Bound::Never).unwrap().is_some());

            let p = spawn("sleep 0.1");
            let pid = p.id();
            drop(p);
            let end = Instant::now() + Duration::from_secs(10);
            while !is_reaped(pid) && Instant::now() < end {
                crate::sleep(Duration::from_millis(5));
            }
            assert!(is_reaped(pid), "a dropped child left a zombie");
        });
    }
}
