//! `Socket`: what every socket type shares — the `NetFd`, std's
//! per-operation timeouts on top of Go's deadlines, addresses, options, and
//! the set-up steps (bind, listen, dial).

use std::io;
use std::net::Shutdown;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::fd::{Mode, NetFd};
use super::sockaddr::RawAddr;
use crate::net::error::invalid_input;
use crate::runtime::io::netpoll::{Dir, SlotIndex, closed_error, timeout_error};

/// Go's floor on the time each address gets when a dial tries several in
/// turn: earlier ones must not starve the later ones of time.
const DIAL_SANE_MINIMUM: Duration = Duration::from_secs(2);

/// A socket with the state std's API adds to Go's.
pub(crate) struct Socket {
    /// The socket itself.
    fd: NetFd,
    /// std's read timeout in nanoseconds, 0 for none: each read sets the
    /// read deadline this far ahead. Cleared by `set_deadline`.
    read_timeout: AtomicU64,
    /// As `read_timeout`, for writes.
    write_timeout: AtomicU64,
    /// The address family (`AF_INET`, `AF_INET6`, `AF_UNIX`); fixed for
    /// the socket's life.
    domain: libc::c_int,
    /// Whether the socket has a peer: set by a successful `connect`, for
    /// connected pairs, and for adopted datagram sockets that have one.
    /// Only ever set (goro never disconnects a socket); a `try_clone` copies
    /// it, so a clone does not learn of a later `connect` of the original.
    /// Datagram sockets read it to refuse `send_to` (Go's
    /// `ErrWriteToConnected`).
    connected: AtomicBool,
}

impl Socket {
    fn new(fd: NetFd, domain: libc::c_int, connected: bool) -> Socket {
        Socket {
            fd,
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
            domain,
            connected: AtomicBool::new(connected),
        }
    }

    /// A new socket (non-blocking, close-on-exec).
    pub(crate) fn open(domain: libc::c_int, ty: libc::c_int) -> io::Result<Socket> {
        NetFd::socket(domain, ty, 0).map(|fd| Socket::new(fd, domain, false))
    }

    /// Adopts an open socket, making it non-blocking and close-on-exec.
    pub(crate) fn from_owned(fd: OwnedFd, stream: bool) -> io::Result<Socket> {
        let fd = NetFd::from_owned(fd, stream)?;
        // Not a socket (or too old a kernel to say): no family to adapt
        // addresses to.
        let domain = fd
            .getsockopt(libc::SOL_SOCKET, libc::SO_DOMAIN)
            .unwrap_or(libc::AF_UNSPEC);
        let sock = Socket::new(fd, domain, false);
        if !stream && sock.peer_addr().is_ok() {
            sock.connected.store(true, Ordering::Relaxed);
        }
        Ok(sock)
    }

    /// As `from_owned`, for the infallible `From` conversions.
    ///
    /// # Panics
    /// If `fcntl` fails on `fd`, which it does not for an open socket.
    pub(crate) fn adopt(fd: OwnedFd, stream: bool) -> Socket {
        match Socket::from_owned(fd, stream) {
            Ok(s) => s,
            Err(e) => panic!("goro: cannot make a socket non-blocking: {e}"),
        }
    }

    /// Both ends of a new connected pair of Unix sockets of type `ty`.
    pub(crate) fn pair(ty: libc::c_int) -> io::Result<(Socket, Socket)> {
        let mut fds = [-1; 2];
        let flags = ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: `fds` has room for the two fds socketpair writes.
        let r = unsafe { libc::socketpair(libc::AF_UNIX, flags, 0, fds.as_mut_ptr()) };
        let made = if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        };
        crate::net::exhaustion::CREATE.after(made)?;
        // SAFETY: socketpair succeeded: both fds are open and ours alone.
        let (a, b) = unsafe {
            use std::os::fd::FromRawFd;
            (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
        };
        let stream = ty == libc::SOCK_STREAM;
        let (a, b) = (
            Socket::from_owned(a, stream)?,
            Socket::from_owned(b, stream)?,
        );
        for s in [&a, &b] {
            s.connected.store(true, Ordering::Relaxed);
        }
        Ok((a, b))
    }

    /// Gives up the fd, blocking again.
    pub(crate) fn into_owned(self) -> io::Result<OwnedFd> {
        self.fd.into_owned()
    }

    /// Gives up the fd as it is; -1 if closed.
    pub(crate) fn into_raw(self) -> RawFd {
        self.fd.into_raw()
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.raw()
    }

    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// An independent handle to the same socket, with the same timeouts
    /// and mode.
    pub(crate) fn try_clone(&self) -> io::Result<Socket> {
        let clone = Socket::new(self.fd.try_clone()?, self.domain, self.is_connected());
        clone.fd.set_nonblocking(self.fd.is_nonblocking())?;
        for (from, to) in [
            (&self.read_timeout, &clone.read_timeout),
            (&self.write_timeout, &clone.write_timeout),
        ] {
            to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        Ok(clone)
    }

    /// `bind`.
    pub(crate) fn bind(&self, addr: &RawAddr) -> io::Result<()> {
        self.fd.with_fd(|fd| {
            // SAFETY: `addr` points to `addr.len()` valid bytes.
            cvt(unsafe { libc::bind(fd, addr.as_ptr(), addr.len()) })
        })
    }

    /// `listen` with the system's largest backlog.
    pub(crate) fn listen(&self) -> io::Result<()> {
        // SAFETY: listen has no memory preconditions.
        self.fd
            .with_fd(|fd| cvt(unsafe { libc::listen(fd, listen_backlog()) }))
    }

    /// Connects, waiting until `deadline` at most.
    pub(crate) fn connect(&self, addr: &RawAddr, deadline: Option<Instant>) -> io::Result<()> {
        if deadline.is_some() {
            self.fd.set_deadline(Dir::Write, deadline);
        }
        let r = self.fd.connect(addr.as_ptr(), addr.len());
        if deadline.is_some() {
            self.fd.set_deadline(Dir::Write, None);
        }
        if r.is_ok() {
            self.connected.store(true, Ordering::Relaxed);
        }
        r
    }

    /// Whether the socket has a peer (see `connected`).
    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// The address family.
    pub(crate) fn domain(&self) -> libc::c_int {
        self.domain
    }

    /// Accepts a connection: the new socket and the peer's address.
    pub(crate) fn accept(&self) -> io::Result<(Socket, RawAddr)> {
        let (fd, storage, len) = self.fd.accept(Mode::Park)?;
        Ok((
            Socket::new(fd, self.domain, true),
            RawAddr::from_parts(storage, len),
        ))
    }

    /// The socket's own address (`getsockname`).
    pub(crate) fn local_addr(&self) -> io::Result<RawAddr> {
        self.name(libc::getsockname)
    }

    /// The peer's address (`getpeername`).
    pub(crate) fn peer_addr(&self) -> io::Result<RawAddr> {
        self.name(libc::getpeername)
    }

    fn name(
        &self,
        call: unsafe extern "C" fn(
            libc::c_int,
            *mut libc::sockaddr,
            *mut libc::socklen_t,
        ) -> libc::c_int,
    ) -> io::Result<RawAddr> {
        self.fd.with_fd(|fd| {
            let mut addr = RawAddr::empty();
            // SAFETY: `addr` has room for the length it declares.
            cvt(unsafe { call(fd, addr.as_mut_ptr(), addr.len_mut()) })?;
            Ok(addr)
        })
    }

    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.start(Dir::Read);
        self.fd.recv(buf, 0, Mode::Park)
    }

    /// Reads without taking (`MSG_PEEK`): the next `read` returns the same
    /// bytes. Parks, and times out, as `read`.
    pub(crate) fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.start(Dir::Read);
        self.fd.recv(buf, libc::MSG_PEEK, Mode::Park)
    }

    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.start(Dir::Write);
        self.fd.write(buf, Mode::Park)
    }

    /// Writes all of `buf`; see `NetFd::write_all` for its errors. A write
    /// timeout applies to the whole call.
    pub(crate) fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        self.start(Dir::Write);
        self.fd.write_all(buf)
    }

    /// Receives a datagram and its sender's address.
    pub(crate) fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, RawAddr)> {
        self.recv_from_with(buf, 0)
    }

    /// As `recv_from`, leaving the datagram to be received (`MSG_PEEK`).
    pub(crate) fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, RawAddr)> {
        self.recv_from_with(buf, libc::MSG_PEEK)
    }

    fn recv_from_with(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<(usize, RawAddr)> {
        self.start(Dir::Read);
        let (n, storage, len) = self.fd.recv_from(buf, flags, Mode::Park)?;
        Ok((n, RawAddr::from_parts(storage, len)))
    }

    /// Sends a datagram to `addr`, or to the connected peer if `None`
    /// (which, unlike `write`, sends an empty datagram too).
    pub(crate) fn send_to(&self, buf: &[u8], addr: Option<&RawAddr>) -> io::Result<usize> {
        self.start(Dir::Write);
        match addr {
            Some(a) => self.fd.send_to(buf, a.as_ptr(), a.len(), Mode::Park),
            None => self.fd.send_to(buf, std::ptr::null(), 0, Mode::Park),
        }
    }

    /// Reads once without parking (`try_read`): `WouldBlock` if nothing
    /// is there. Fails as `read` once closed or past the read deadline.
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.recv(buf, 0, Mode::Try)
    }

    /// As `try_read`, into memory that need not be initialized (see
    /// `NetFd::recv_uninit`).
    #[cfg(feature = "tokio-io")]
    pub(crate) fn try_read_uninit(
        &self,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> io::Result<usize> {
        self.fd.recv_uninit(buf, 0, Mode::Try)
    }

    /// Writes once without parking (`try_write`): `WouldBlock` if the send
    /// buffer is full.
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.fd.write(buf, Mode::Try)
    }

    /// Receives a datagram and its sender's address without parking.
    pub(crate) fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, RawAddr)> {
        let (n, storage, len) = self.fd.recv_from(buf, 0, Mode::Try)?;
        Ok((n, RawAddr::from_parts(storage, len)))
    }

    /// As `send_to`, without parking.
    pub(crate) fn try_send_to(&self, buf: &[u8], addr: Option<&RawAddr>) -> io::Result<usize> {
        match addr {
            Some(a) => self.fd.send_to(buf, a.as_ptr(), a.len(), Mode::Try),
            None => self.fd.send_to(buf, std::ptr::null(), 0, Mode::Try),
        }
    }

    /// Accepts a connection without parking: `WouldBlock` if none waits.
    pub(crate) fn try_accept(&self) -> io::Result<(Socket, RawAddr)> {
        let (fd, storage, len) = self.fd.accept(Mode::Try)?;
        Ok((
            Socket::new(fd, self.domain, true),
            RawAddr::from_parts(storage, len),
        ))
    }

    /// Polls for readiness in `dir` (see `NetFd::poll_ready`).
    pub(crate) fn poll_ready(
        &self,
        dir: Dir,
        cx: &mut Context<'_>,
        slot: Option<&mut SlotIndex>,
    ) -> Poll<io::Result<()>> {
        self.fd.poll_ready(dir, cx, slot)
    }

    /// Polls `op` to a result the way tokio's `poll_*` methods do: wait for
    /// readiness in `dir` (the task's waker registered with the netpoller),
    /// try `op`, and wait again while it would block. Readiness is asked
    /// first, so after a `WouldBlock` or a drained socket the task waits
    /// for the next event without the system call that would say `EAGAIN`.
    pub(crate) fn poll_io<T>(
        &self,
        dir: Dir,
        cx: &mut Context<'_>,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        loop {
            if let Err(e) = std::task::ready!(self.poll_ready(dir, cx, None)) {
                return Poll::Ready(Err(e));
            }
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return Poll::Ready(r),
            }
        }
    }

    /// Gives back a readiness future's slot.
    pub(crate) fn release_slot(&self, dir: Dir, slot: SlotIndex) {
        self.fd.release_slot(dir, slot);
    }

    /// Applies a timeout, if one is set, to the operation starting in `dir`.
    fn start(&self, dir: Dir) {
        let t = self.timeout_cell(dir).load(Ordering::Relaxed);
        if t != 0 {
            let deadline = Instant::now().checked_add(Duration::from_nanos(t));
            self.fd.set_deadline(dir, deadline);
        }
    }

    fn timeout_cell(&self, dir: Dir) -> &AtomicU64 {
        match dir {
            Dir::Read => &self.read_timeout,
            Dir::Write => &self.write_timeout,
        }
    }

    /// Sets the deadline of the given directions (Go's `SetDeadline`); it
    /// replaces a timeout.
    pub(crate) fn set_deadline(&self, dirs: &[Dir], deadline: Option<Instant>) -> io::Result<()> {
        if self.fd.is_closed() {
            return Err(closed_error());
        }
        for &dir in dirs {
            self.timeout_cell(dir).store(0, Ordering::Relaxed);
            self.fd.set_deadline(dir, deadline);
        }
        Ok(())
    }

    /// Sets std's timeout of `dir`: each operation then fails with
    /// `TimedOut` after waiting `timeout`. It replaces a deadline.
    pub(crate) fn set_timeout(&self, dir: Dir, timeout: Option<Duration>) -> io::Result<()> {
        if timeout == Some(Duration::ZERO) {
            return Err(invalid_input("cannot set a 0 duration timeout".into()));
        }
        if self.fd.is_closed() {
            return Err(closed_error());
        }
        let nanos = timeout.map_or(0, |t| t.as_nanos().clamp(1, u64::MAX.into()) as u64);
        self.timeout_cell(dir).store(nanos, Ordering::Relaxed);
        self.fd.set_deadline(dir, None);
        Ok(())
    }

    /// Sets std's non-blocking mode: operations return `WouldBlock` rather
    /// than wait.
    pub(crate) fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.fd.set_nonblocking(on)
    }

    pub(crate) fn timeout(&self, dir: Dir) -> Option<Duration> {
        match self.timeout_cell(dir).load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    /// Go's `Close`; see `NetFd::close`.
    pub(crate) fn close(&self) -> io::Result<()> {
        self.fd.close()
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.fd.shutdown(match how {
            Shutdown::Read => libc::SHUT_RD,
            Shutdown::Write => libc::SHUT_WR,
            Shutdown::Both => libc::SHUT_RDWR,
        })
    }

    pub(crate) fn set_option(
        &self,
        level: libc::c_int,
        name: libc::c_int,
        value: libc::c_int,
    ) -> io::Result<()> {
        self.fd.setsockopt(level, name, value)
    }

    pub(crate) fn option(&self, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
        self.fd.getsockopt(level, name)
    }

    /// Sets `IP_TTL`, refusing values the kernel's `int` cannot hold.
    pub(crate) fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = libc::c_int::try_from(ttl)
            .map_err(|_| invalid_input(format!("TTL {ttl} is out of range")))?;
        self.set_option(libc::IPPROTO_IP, libc::IP_TTL, ttl)
    }

    pub(crate) fn ttl(&self) -> io::Result<u32> {
        Ok(self.option(libc::IPPROTO_IP, libc::IP_TTL)? as u32)
    }

    /// Sets `SO_LINGER`: `None` turns it off; a time is rounded down to
    /// whole seconds (at most `c_int::MAX`), as the kernel counts them.
    pub(crate) fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        let value = libc::linger {
            l_onoff: linger.is_some().into(),
            l_linger: linger.map_or(0, |d| {
                libc::c_int::try_from(d.as_secs()).unwrap_or(libc::c_int::MAX)
            }),
        };
        self.fd.setsockopt(libc::SOL_SOCKET, libc::SO_LINGER, value)
    }

    /// `SO_LINGER`: `None` if off.
    pub(crate) fn linger(&self) -> io::Result<Option<Duration>> {
        let value: libc::linger = self.fd.getsockopt(libc::SOL_SOCKET, libc::SO_LINGER)?;
        Ok((value.l_onoff != 0).then(|| Duration::from_secs(value.l_linger.max(0) as u64)))
    }

    /// The pending socket error (`SO_ERROR`), clearing it.
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        let e = self.option(libc::SOL_SOCKET, libc::SO_ERROR)?;
        Ok((e != 0).then(|| io::Error::from_raw_os_error(e)))
    }
}

/// The backlog for `listen`: the system's largest
/// (`/proc/sys/net/core/somaxconn`), as Go uses; read once.
fn listen_backlog() -> libc::c_int {
    static BACKLOG: OnceLock<libc::c_int> = OnceLock::new();
    *BACKLOG.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<libc::c_int>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(libc::SOMAXCONN)
    })
}

/// Tries `connect` (or bind) on each address in turn until one succeeds
/// (Go's `dialSerial`); with a deadline, each gets an equal share of the
/// time left, but at least `DIAL_SANE_MINIMUM` if there is that much.
/// Returns the first error if none succeeds.
pub(crate) fn try_each<T, A: Copy>(
    addrs: &[A],
    deadline: Option<Instant>,
    mut connect: impl FnMut(A, Option<Instant>) -> io::Result<T>,
) -> io::Result<T> {
    let mut first_err = None;
    for (i, &addr) in addrs.iter().enumerate() {
        let partial = match deadline {
            None => None,
            Some(d) => match partial_deadline(Instant::now(), d, addrs.len() - i) {
                Some(p) => Some(p),
                None => return Err(first_err.unwrap_or_else(timeout_error)),
            },
        };
        match connect(addr, partial) {
            Ok(v) => return Ok(v),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| invalid_input("no socket address given".into())))
}

/// The deadline for one of `remaining` addresses; `None` if `deadline` has
/// passed.
fn partial_deadline(now: Instant, deadline: Instant, remaining: usize) -> Option<Instant> {
    let left = deadline
        .checked_duration_since(now)
        .filter(|d| !d.is_zero())?;
    let share = left / remaining.max(1) as u32;
    let share = if share >= DIAL_SANE_MINIMUM {
        share
    } else {
        left.min(DIAL_SANE_MINIMUM)
    };
    Some(now + share)
}

fn cvt(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_deadlines_share_the_time_left() {
        let now = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(partial_deadline(now, now + 30 * s, 3), Some(now + 10 * s));
        // Never less than the sane minimum while there is that much left.
        assert_eq!(partial_deadline(now, now + 3 * s, 3), Some(now + 2 * s));
        assert_eq!(partial_deadline(now, now + s, 3), Some(now + s));
        assert_eq!(partial_deadline(now, now, 1), None);
    }

    #[test]
    fn try_each_returns_the_first_success_or_first_error() {
        let r = try_each(&[1, 2, 3], None, |a, _| {
            if a == 2 {
                Ok(a)
            } else {
                Err(io::Error::other(format!("no {a}")))
            }
        });
        assert_eq!(r.unwrap(), 2);
        let r: io::Result<()> = try_each(&[1, 2], None, |a, _| {
            Err(io::Error::other(format!("no {a}")))
        });
        assert_eq!(r.unwrap_err().to_string(), "no 1");
    }
}
