//! `NetFd`: one non-blocking socket and its poll descriptor (Go's
//! `netFD`). Every socket type in `goro::net` wraps one.

use std::io;
use std::mem::{self, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use crate::error::described;
use crate::net::exhaustion::{self, Backoff};
use crate::runtime::WaitingOn;
use crate::runtime::io::netpoll::{self, Dir, PollDesc, SlotIndex, closed_error};

/// How an operation waits when the socket is not ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Park the coroutine (or block the thread) until it is, honouring
    /// deadlines; or, in std's non-blocking mode, return `WouldBlock`.
    Park,
    /// Return `WouldBlock` at once, for an async task, which then waits
    /// with `poll_ready` (`try_read`, `try_send`...).
    Try,
}

/// A socket owned by the runtime: non-blocking, close-on-exec, with its
/// `PollDesc`. Dropping it closes the fd (once no operation uses it).
pub(crate) struct NetFd {
    /// The fd's poll state; owns the fd.
    pd: &'static PollDesc,
    /// Whether `as_fd` lent the fd out. Once set, the fd stays open until
    /// drop (a `BorrowedFd` must stay valid for its lifetime), and `close`
    /// shuts the socket down instead of closing it.
    lent: AtomicBool,
    /// std's non-blocking mode: each operation makes its system call once
    /// and returns `WouldBlock` rather than park. The fd itself is
    /// non-blocking either way.
    nonblocking: AtomicBool,
    /// How long a failed accept parks when the process is out of fds or
    /// memory (see `net/exhaustion.rs`); per listener, as Go's net/http
    /// keeps it per `Serve` loop.
    accept_backoff: Backoff,
}

/// An unconnected socket that `as_fd` lends for a socket already closed,
/// since a `BorrowedFd` must name an open fd. Made with the first socket, so
/// that `as_fd` itself never fails.
static CLOSED_STANDIN: OnceLock<OwnedFd> = OnceLock::new();

/// Whether the closed stand-in exists, making it if it does not.
fn have_closed_standin() -> bool {
    if CLOSED_STANDIN.get().is_some() {
        return true;
    }
    // SAFETY: socket has no memory preconditions.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: `fd` was just created and is owned by nobody else. If another
    // thread set the stand-in first, ours is dropped (closed).
    let _ = CLOSED_STANDIN.set(unsafe { OwnedFd::from_raw_fd(fd) });
    true
}

/// Converts a `-1`-on-error system call result.
fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Sets or clears `flag` in the flags `get`/`set` read and write.
pub(crate) fn set_flag(
    fd: RawFd,
    get: libc::c_int,
    set: libc::c_int,
    flag: libc::c_int,
    on: bool,
) -> io::Result<()> {
    // SAFETY: fcntl on an open fd with integer arguments only.
    let old = unsafe { libc::fcntl(fd, get) };
    if old < 0 {
        return Err(io::Error::last_os_error());
    }
    let new = if on { old | flag } else { old & !flag };
    // SAFETY: as above.
    if new != old && unsafe { libc::fcntl(fd, set, new) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub(crate) fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

impl NetFd {
    /// A new socket, non-blocking and close-on-exec from birth (no window in
    /// which a forked child could inherit it).
    pub(crate) fn socket(
        domain: libc::c_int,
        ty: libc::c_int,
        protocol: libc::c_int,
    ) -> io::Result<NetFd> {
        // SAFETY: socket has no memory preconditions.
        let fd = exhaustion::CREATE.after(cvt(unsafe {
            libc::socket(
                domain,
                ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                protocol,
            )
        }))?;
        // SAFETY: `fd` was just created and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(NetFd::adopt(fd, ty == libc::SOCK_STREAM))
    }

    /// Takes ownership of a socket that is already non-blocking.
    fn adopt(fd: OwnedFd, stream: bool) -> NetFd {
        let nfd = NetFd {
            pd: PollDesc::new(fd, stream),
            lent: AtomicBool::new(false),
            nonblocking: AtomicBool::new(false),
            accept_backoff: Backoff::new(),
        };
        if !have_closed_standin() && nfd.pd.lend().is_some() {
            // Out of fds for the stand-in: lend the fd from birth instead,
            // so that `as_fd` never needs the stand-in for this socket.
            nfd.lent.store(true, Ordering::Release);
        }
        nfd
    }

    /// Takes ownership of an open socket, making it non-blocking and
    /// close-on-exec. `stream`: whether it is a stream socket.
    pub(crate) fn from_owned(fd: OwnedFd, stream: bool) -> io::Result<NetFd> {
        let raw = fd.as_raw_fd();
        set_flag(raw, libc::F_GETFL, libc::F_SETFL, libc::O_NONBLOCK, true)?;
        set_flag(raw, libc::F_GETFD, libc::F_SETFD, libc::FD_CLOEXEC, true)?;
        Ok(NetFd::adopt(fd, stream))
    }

    /// Gives up the fd to a caller that now owns it: blocking again,
    /// unless in non-blocking mode. The closed error if `close` already
    /// closed it.
    pub(crate) fn into_owned(self) -> io::Result<OwnedFd> {
        let nonblocking = self.nonblocking.load(Ordering::Relaxed);
        let raw = self.into_raw();
        if raw < 0 {
            return Err(closed_error());
        }
        // SAFETY: `into_raw` gave us sole ownership of the open fd `raw`.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        if !nonblocking {
            set_flag(raw, libc::F_GETFL, libc::F_SETFL, libc::O_NONBLOCK, false)?;
        }
        Ok(fd)
    }

    /// Gives up the fd, still non-blocking, without closing it: the caller
    /// owns it now. -1 if `close` already closed it.
    pub(crate) fn into_raw(self) -> RawFd {
        let pd = self.pd;
        mem::forget(self);
        // SAFETY: we were the descriptor's only owner, consumed here, so no
        // operation is in flight (they borrow the `NetFd`) and none follows.
        unsafe { pd.release() }
    }

    /// The fd number, for `AsRawFd`; -1 once closed. The number may be
    /// closed by a concurrent `close`: system calls go through `with_fd`.
    pub(crate) fn raw(&self) -> RawFd {
        self.pd.fd()
    }

    /// Runs `f` on the fd, which stays open meanwhile; the closed error if
    /// the socket is closed.
    pub(crate) fn with_fd<T>(&self, f: impl FnOnce(RawFd) -> io::Result<T>) -> io::Result<T> {
        self.pd.with_fd(f)
    }

    /// The fd, kept open from now until drop; after `close`, an
    /// unconnected stand-in socket.
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        let fd = if self.lent.load(Ordering::Acquire) {
            Some(self.raw())
        } else {
            self.pd
                .lend()
                .inspect(|_| self.lent.store(true, Ordering::Release))
        };
        match fd {
            // SAFETY: the fd is open and stays open until `self` is dropped:
            // it is lent (`lend` succeeded, here or before we saw `lent`),
            // so `close` no longer closes it and only drop does.
            Some(fd) => unsafe { BorrowedFd::borrow_raw(fd) },
            None => match CLOSED_STANDIN.get() {
                Some(standin) => standin.as_fd(),
                // `adopt` made the stand-in, or else lent the fd from birth
                // and we took the first branch.
                None => unreachable!("goro: a closed socket without the closed stand-in"),
            },
        }
    }

    /// A duplicate of the fd (close-on-exec), owned by the caller.
    pub(crate) fn dup(&self) -> io::Result<OwnedFd> {
        self.with_fd(|fd| {
            // SAFETY: F_DUPFD_CLOEXEC on an open fd returns a new fd we own.
            let new = cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
            // SAFETY: `new` was just created and is owned by nobody else.
            Ok(unsafe { OwnedFd::from_raw_fd(new) })
        })
    }

    /// A new `NetFd` on a duplicate of the fd (`try_clone`): it has its own
    /// deadlines and its own close.
    pub(crate) fn try_clone(&self) -> io::Result<NetFd> {
        let stream = self.sotype()? == libc::SOCK_STREAM;
        Ok(NetFd::adopt(self.dup()?, stream))
    }

    /// Sets std's non-blocking mode (see `NetFd::nonblocking`).
    pub(crate) fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        if self.is_closed() {
            return Err(closed_error());
        }
        self.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn is_nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }

    /// Runs `op` on the fd in direction `dir` (see `PollDesc::io`), parking
    /// while it would block; in non-blocking mode, once, `WouldBlock` and
    /// all.
    fn io<T>(
        &self,
        dir: Dir,
        mode: Mode,
        mut op: impl FnMut(RawFd) -> io::Result<(T, bool)>,
    ) -> io::Result<T> {
        if mode == Mode::Try {
            return self.pd.try_io(dir, op);
        }
        if !self.is_nonblocking() {
            return self.pd.io(dir, op);
        }
        self.with_fd(|fd| {
            loop {
                match op(fd) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    r => return r.map(|(v, _)| v),
                }
            }
        })
    }

    /// The socket type (`SOCK_STREAM`, `SOCK_DGRAM`).
    pub(crate) fn sotype(&self) -> io::Result<libc::c_int> {
        self.getsockopt(libc::SOL_SOCKET, libc::SO_TYPE)
    }

    /// Reads into `buf` (`recv` with `flags`), parking while nothing is
    /// there. A zero-length `buf` returns `Ok(0)` at once.
    pub(crate) fn recv(&self, buf: &mut [u8], flags: libc::c_int, mode: Mode) -> io::Result<usize> {
        // SAFETY: `recv_uninit` writes only initialized bytes into the
        // buffer (what the kernel received), so `buf` stays initialized.
        let buf = unsafe { &mut *(std::ptr::from_mut(buf) as *mut [MaybeUninit<u8>]) };
        self.recv_uninit(buf, flags, mode)
    }

    /// As `recv`, into memory that need not be initialized: the first `n`
    /// bytes of `buf` are initialized when it returns `Ok(n)`.
    pub(crate) fn recv_uninit(
        &self,
        buf: &mut [MaybeUninit<u8>],
        flags: libc::c_int,
        mode: Mode,
    ) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let peek = flags & libc::MSG_PEEK != 0;
        self.io(Dir::Read, mode, |fd| {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes, and
            // the kernel only writes to it.
            let n = cvt_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) })?;
            // A short, non-empty read of a stream socket means the receive
            // queue was drained. Not so at end of file: no event follows it,
            // so the next read must make the system call; nor after a peek,
            // which left the data there.
            Ok((n, !peek && n > 0 && n < buf.len()))
        })
    }

    /// Writes some of `buf`, parking while the send buffer is full. Returns
    /// how much was written; `send` with `MSG_NOSIGNAL`, so a peer that is
    /// gone gives `EPIPE`, never a SIGPIPE.
    pub(crate) fn write(&self, buf: &[u8], mode: Mode) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.io(Dir::Write, mode, |fd| {
            // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
            let n = cvt_size(unsafe {
                libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL)
            })?;
            // A short write of a stream socket filled its send buffer.
            Ok((n, n < buf.len()))
        })
    }

    /// Writes all of `buf`. An error is `write`'s, unchanged (as with
    /// std's `write_all`: the same kind, `raw_os_error` and closed
    /// marker), except that a deadline passing after part of `buf` was
    /// written says how much was: the connection is still good, and a
    /// caller may carry on from there.
    pub(crate) fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        let total = buf.len();
        while !buf.is_empty() {
            match self.write(buf, Mode::Park) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "failed to write whole buffer",
                    ));
                }
                Ok(n) => buf = &buf[n..],
                // A deadline's timeout, not the system's ETIMEDOUT (which
                // ends the connection and has its own number).
                Err(e) if netpoll::is_timeout(&e) && buf.len() < total => {
                    let written = total - buf.len();
                    let text = format!("{e} (after writing {written} of {total} bytes)");
                    return Err(described(text, e));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `recvfrom` with `flags`: a datagram and its sender's raw address.
    pub(crate) fn recv_from(
        &self,
        buf: &mut [u8],
        flags: libc::c_int,
        mode: Mode,
    ) -> io::Result<(usize, libc::sockaddr_storage, libc::socklen_t)> {
        self.io(Dir::Read, mode, |fd| {
            // SAFETY: a zeroed sockaddr_storage is a valid "no address".
            let mut addr: libc::sockaddr_storage = unsafe { mem::zeroed() };
            let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            // SAFETY: `buf`, `addr` and `len` are valid for the sizes given.
            let n = cvt_size(unsafe {
                libc::recvfrom(
                    fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    flags,
                    (&raw mut addr).cast(),
                    &mut len,
                )
            })?;
            Ok(((n, addr, len), false))
        })
    }

    /// `sendto` a raw address.
    pub(crate) fn send_to(
        &self,
        buf: &[u8],
        addr: *const libc::sockaddr,
        len: libc::socklen_t,
        mode: Mode,
    ) -> io::Result<usize> {
        self.io(Dir::Write, mode, |fd| {
            // SAFETY: `buf` is valid for reads; `addr` points to `len` valid
            // bytes for the duration of the call (caller's contract).
            let n = cvt_size(unsafe {
                libc::sendto(
                    fd,
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                    addr,
                    len,
                )
            })?;
            Ok((n, false))
        })
    }

    /// Accepts a connection: the new socket (non-blocking, close-on-exec,
    /// of the listener's type) and the peer's raw address. Connections
    /// aborted before we took them are skipped, as Go does. Out of fds or
    /// memory, the caller parks before the error returns (in std's
    /// non-blocking mode, and in `Mode::Try`, it does not: see
    /// `net/exhaustion.rs`).
    pub(crate) fn accept(
        &self,
        mode: Mode,
    ) -> io::Result<(NetFd, libc::sockaddr_storage, libc::socklen_t)> {
        let accepted = self.io(Dir::Read, mode, |fd| {
            // SAFETY: a zeroed sockaddr_storage is a valid "no address".
            let mut addr: libc::sockaddr_storage = unsafe { mem::zeroed() };
            let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            loop {
                // SAFETY: `addr` and `len` are valid for the size given.
                let r = unsafe {
                    libc::accept4(
                        fd,
                        (&raw mut addr).cast(),
                        &mut len,
                        libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                    )
                };
                match cvt(r) {
                    Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
                    Err(e) => return Err(e),
                    Ok(new) => {
                        // Owned at once: whatever fails from here on closes
                        // the connection, so its peer learns that it ended.
                        // SAFETY: accept4 just returned `new`; nobody else
                        // owns it.
                        let new = unsafe { OwnedFd::from_raw_fd(new) };
                        return Ok(((new, addr, len), false));
                    }
                }
            }
        });
        let (fd, addr, len) = if mode == Mode::Try || self.is_nonblocking() {
            accepted
        } else {
            self.accept_backoff.after(accepted)
        }?;
        // An accepted socket has its listener's type.
        Ok((NetFd::adopt(fd, self.pd.is_stream()), addr, len))
    }

    /// Connects to a raw address, parking until the connection is made, it
    /// fails, or the write deadline passes.
    pub(crate) fn connect(
        &self,
        addr: *const libc::sockaddr,
        len: libc::socklen_t,
    ) -> io::Result<()> {
        // SAFETY: `addr` points to `len` valid bytes (caller's contract).
        match self.with_fd(|fd| cvt(unsafe { libc::connect(fd, addr, len) })) {
            Ok(_) => return Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINPROGRESS | libc::EALREADY | libc::EINTR)
                ) => {}
            Err(e) => return Err(e),
        }
        self.pd.io(Dir::Write, |fd| {
            let err: libc::c_int = sockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
            match err {
                0 => {
                    // Writable with no error may still be "not yet": Go
                    // checks getpeername, and so do we.
                    // SAFETY: a zeroed sockaddr_storage is a valid buffer.
                    let mut peer: libc::sockaddr_storage = unsafe { mem::zeroed() };
                    let mut plen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                    // SAFETY: `peer` and `plen` are valid for the size given.
                    match cvt(unsafe { libc::getpeername(fd, (&raw mut peer).cast(), &mut plen) }) {
                        Ok(_) => Ok(((), false)),
                        Err(_) => Err(io::ErrorKind::WouldBlock.into()),
                    }
                }
                libc::EINPROGRESS | libc::EALREADY | libc::EINTR => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                libc::EISCONN => Ok(((), false)),
                e => Err(io::Error::from_raw_os_error(e)),
            }
        })
    }

    /// Polls for readiness in `dir` on behalf of an async task (see
    /// `PollDesc::poll_ready`). A pending poll inside `goro::block_on`
    /// tells it which fd its coroutine waits on, for dumps.
    pub(crate) fn poll_ready(
        &self,
        dir: Dir,
        cx: &mut Context<'_>,
        slot: Option<&mut SlotIndex>,
    ) -> Poll<io::Result<()>> {
        let r = self.pd.poll_ready(dir, cx.waker(), slot);
        if r.is_pending() {
            crate::block_on::note_wait(match dir {
                Dir::Read => WaitingOn::Read(self.raw()),
                Dir::Write => WaitingOn::Write(self.raw()),
            });
        }
        r
    }

    /// Gives back a readiness future's slot (see `SlotIndex`).
    pub(crate) fn release_slot(&self, dir: Dir, slot: SlotIndex) {
        self.pd.release_slot(dir, slot);
    }

    /// Closes (Go's `Close`): wakes every blocked operation with the closed
    /// error; the fd itself closes once no operation uses it. Closing twice
    /// is the closed error.
    pub(crate) fn close(&self) -> io::Result<()> {
        if !self.pd.close() {
            return Err(closed_error());
        }
        if self.lent.load(Ordering::Acquire) {
            // The fd must stay open until drop, but the peer should see the
            // connection end (and a listener stop listening) now. Errors
            // (a socket never connected) change nothing.
            // SAFETY: a lent fd stays open until drop; shutdown has no
            // memory preconditions.
            unsafe { libc::shutdown(self.raw(), libc::SHUT_RDWR) };
        }
        Ok(())
    }

    /// Whether `close` was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.pd.is_closing()
    }

    pub(crate) fn set_deadline(&self, dir: Dir, deadline: Option<Instant>) {
        self.pd.set_deadline(dir, deadline);
    }

    /// `shutdown(how)`.
    pub(crate) fn shutdown(&self, how: libc::c_int) -> io::Result<()> {
        // SAFETY: shutdown has no memory preconditions.
        self.with_fd(|fd| cvt(unsafe { libc::shutdown(fd, how) }).map(drop))
    }

    /// `getsockopt`.
    pub(crate) fn getsockopt<T: OptionValue>(
        &self,
        level: libc::c_int,
        name: libc::c_int,
    ) -> io::Result<T> {
        self.with_fd(|fd| sockopt(fd, level, name))
    }

    /// `setsockopt`.
    pub(crate) fn setsockopt<T: OptionValue>(
        &self,
        level: libc::c_int,
        name: libc::c_int,
        value: T,
    ) -> io::Result<()> {
        self.with_fd(|fd| {
            // SAFETY: passes a live `T` of the size given.
            cvt(unsafe {
                libc::setsockopt(
                    fd,
                    level,
                    name,
                    (&raw const value).cast(),
                    mem::size_of::<T>() as libc::socklen_t,
                )
            })
            .map(drop)
        })
    }
}

/// The type of a socket option's value: a plain C value.
///
/// # Safety
/// Every bit pattern, all zeros included, must be a valid value, since the
/// kernel writes what it likes into one.
pub(crate) unsafe trait OptionValue: Copy {}

// SAFETY: an integer is valid for every bit pattern.
unsafe impl OptionValue for libc::c_int {}

// SAFETY: two integers.
unsafe impl OptionValue for libc::linger {}

fn sockopt<T: OptionValue>(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<T> {
    // SAFETY: all zeros is a valid `T` (`OptionValue`'s contract).
    let mut v: T = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid for the size given, and any bytes the
    // kernel writes make a valid `T`.
    cvt(unsafe { libc::getsockopt(fd, level, name, (&raw mut v).cast(), &mut len) })?;
    Ok(v)
}

impl Drop for NetFd {
    fn drop(&mut self) {
        // SAFETY: we are the descriptor's only owner, being dropped, so no
        // operation is in flight (they borrow `self`) and none will follow.
        unsafe { self.pd.recycle() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A listening TCP socket on an ephemeral loopback port.
    fn listener() -> (NetFd, libc::sockaddr_in) {
        let fd = NetFd::socket(libc::AF_INET, libc::SOCK_STREAM, 0).unwrap();
        // SAFETY: a zeroed sockaddr_in is valid; we fill in the fields.
        let mut addr: libc::sockaddr_in = unsafe { mem::zeroed() };
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: valid address of the given length.
        unsafe {
            cvt(libc::bind(fd.raw(), (&raw const addr).cast(), len)).unwrap();
            cvt(libc::listen(fd.raw(), 128)).unwrap();
            let mut got = len;
            cvt(libc::getsockname(
                fd.raw(),
                (&raw mut addr).cast(),
                &mut got,
            ))
            .unwrap();
        }
        (fd, addr)
    }

    fn connect(addr: &libc::sockaddr_in) -> io::Result<NetFd> {
        let fd = NetFd::socket(libc::AF_INET, libc::SOCK_STREAM, 0)?;
        let len = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        fd.connect((addr as *const libc::sockaddr_in).cast(), len)?;
        Ok(fd)
    }

    /// Accept, connect and a ping-pong exchange between two coroutines on
    /// one worker: every read parks its coroutine and the poller wakes it.
    #[test]
    fn echo_between_coroutines() {
        crate::run(|| {
            let (ln, addr) = listener();
            let server = crate::spawn(move || {
                let (conn, _, _) = ln.accept(Mode::Park).unwrap();
                let mut buf = [0u8; 64];
                loop {
                    let n = conn.recv(&mut buf, 0, Mode::Park).unwrap();
                    if n == 0 {
                        return;
                    }
                    conn.write_all(&buf[..n]).unwrap();
                }
            });
            let c = connect(&addr).unwrap();
            let mut buf = [0u8; 5];
            for i in 0..100u8 {
                c.write_all(&[i; 5]).unwrap();
                let mut got = 0;
                while got < 5 {
                    got += c.recv(&mut buf[got..], 0, Mode::Park).unwrap();
                }
                assert_eq!(buf, [i; 5]);
            }
            drop(c);
            server.join().unwrap();
        });
    }

    /// A read deadline in the past fails at once; close wakes a parked read
    /// with the closed error, not a timeout.
    #[test]
    fn deadline_and_close() {
        crate::run(|| {
            let (ln, addr) = listener();
            let c = connect(&addr).unwrap();
            let (s, _, _) = ln.accept(Mode::Park).unwrap();
            s.set_deadline(Dir::Read, Some(Instant::now()));
            let e = s.recv(&mut [0u8; 8], 0, Mode::Park).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            s.set_deadline(Dir::Read, None);
            let s = std::sync::Arc::new(s);
            let s2 = s.clone();
            let reader = crate::spawn(move || s2.recv(&mut [0u8; 8], 0, Mode::Park));
            crate::sleep(Duration::from_millis(20));
            s.close().unwrap();
            let e = reader.join().unwrap().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotConnected);
            assert!(e.to_string().contains("closed network connection"));
            drop(c);
        });
    }
}
