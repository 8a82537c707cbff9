//! `PollFd`: a non-blocking fd that is not a socket (a pipe end, a pidfd)
//! with its `PollDesc`, so that waiting on it parks only the coroutine.
//! The socket types' `NetFd` cannot serve here: it reads with `recv`.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use crate::net::sys::fd::{cvt_size, set_flag};
use crate::runtime::io::netpoll::{Dir, PollDesc};

/// An owned fd, non-blocking and close-on-exec, registered with the
/// netpoller on the first operation that has to wait. Dropping it closes
/// the fd.
pub(crate) struct PollFd {
    /// The fd's poll state; owns the fd. Never closed before drop (there is
    /// no `close` here), so `raw` is open for as long as `self` lives.
    pd: &'static PollDesc,
}

impl PollFd {
    /// Takes ownership of `fd`, making it non-blocking and close-on-exec.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<PollFd> {
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
        set_flag(raw, libc::F_GETFL, libc::F_SETFL, libc::O_NONBLOCK, true)?;
        set_flag(raw, libc::F_GETFD, libc::F_SETFD, libc::FD_CLOEXEC, true)?;
        // Not a stream socket: a short read is not taken as proof that the
        // pipe is drained (see `PollDesc::stream`).
        Ok(PollFd {
            pd: PollDesc::new(fd, false),
        })
    }

    /// The fd, open until drop.
    pub(crate) fn raw(&self) -> RawFd {
        self.pd.fd()
    }

    /// Runs `op` until it does not fail with `WouldBlock`, parking until the
    /// fd is ready in `dir` between tries (`PollDesc::io`).
    pub(crate) fn io<T>(
        &self,
        dir: Dir,
        mut op: impl FnMut(RawFd) -> io::Result<T>,
    ) -> io::Result<T> {
        self.pd.io(dir, |fd| op(fd).map(|v| (v, false)))
    }

    /// `read(2)`, parking while there is nothing to read.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.io(Dir::Read, |fd| {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            cvt_size(n)
        })
    }

    /// `write(2)`, parking while the pipe is full.
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.io(Dir::Write, |fd| {
            // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
            let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
            cvt_size(n)
        })
    }

    /// Sets the deadline of waits in `dir`, waking a waiter to re-check
    /// it; an operation past it fails with `TimedOut` (`is_deadline`).
    pub(crate) fn set_deadline(&self, dir: Dir, deadline: Option<Instant>) {
        self.pd.set_deadline(dir, deadline);
    }

    /// Gives the fd up, blocking again, to hand it to another process.
    pub(crate) fn into_owned(self) -> OwnedFd {
        let pd = self.pd;
        std::mem::forget(self);
        // SAFETY: we were the descriptor's only owner, consumed here, so no
        // operation is in flight (they borrow `self`) and none follows.
        let raw = unsafe { pd.release() };
        // SAFETY: `release` handed us the open fd (never closed before
        // drop, see `pd`); nobody else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Cannot fail: F_GETFL and F_SETFL fail only for a bad fd. A fd
        // left non-blocking would still work, with EAGAIN visible to its
        // next owner, so nothing is hidden by going on.
        let _ = set_flag(raw, libc::F_GETFL, libc::F_SETFL, libc::O_NONBLOCK, false);
        fd
    }
}

impl Drop for PollFd {
    fn drop(&mut self) {
        // SAFETY: we are the descriptor's only owner, being dropped, so no
        // operation is in flight (they borrow `self`) and none will follow.
        unsafe { self.pd.recycle() };
    }
}
