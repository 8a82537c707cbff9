//! `UnixStream`.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr as UnixSocketAddr;
use std::path::Path;
use std::time::Instant;

use super::addr::Addr;
use super::error::op_error;
use super::sys::sockaddr::RawAddr;
use super::sys::socket::Socket;

/// A Unix stream connection; the Unix twin of `TcpStream`, with the same
/// parking, deadlines and `close`.
///
/// ```
/// use std::io::{Read, Write};
/// use goro::net::UnixStream;
///
/// goro::run(|| -> std::io::Result<()> {
///     let (mut a, mut b) = UnixStream::pair()?;
///     a.write_all(b"ping")?;
///     let mut buf = [0; 4];
///     b.read_exact(&mut buf)?;
///     assert_eq!(&buf, b"ping");
///     Ok(())
/// })
/// .unwrap();
/// ```
pub struct UnixStream {
    /// The connected socket.
    pub(super) sock: Socket,
}

impl UnixStream {
    pub(crate) fn from_socket(sock: Socket) -> UnixStream {
        UnixStream { sock }
    }

    /// Connects to the socket file `path`.
    ///
    /// # Errors
    /// `InvalidInput` for a bad path; the OS error (`NotFound`,
    /// `ConnectionRefused`...) with the path in its message. A listener
    /// whose backlog is full refuses at once (`WouldBlock`), as in Go.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let path = path.as_ref();
        UnixStream::dial_raw(&RawAddr::from_unix_path(path)?, None, &path.display())
    }

    /// Connects to `addr`: a pathname or a Linux abstract name.
    pub fn connect_addr(addr: &UnixSocketAddr) -> io::Result<UnixStream> {
        UnixStream::dial(addr, None)
    }

    /// Connects to `addr`, giving up at `deadline`; for `net::dial`.
    pub(crate) fn dial(addr: &UnixSocketAddr, deadline: Option<Instant>) -> io::Result<UnixStream> {
        let shown = Addr::Unix(addr.clone());
        UnixStream::dial_raw(&RawAddr::from_unix(addr)?, deadline, &shown)
    }

    fn dial_raw(
        raw: &RawAddr,
        deadline: Option<Instant>,
        shown: &dyn fmt::Display,
    ) -> io::Result<UnixStream> {
        let dial = || {
            let sock = Socket::open(libc::AF_UNIX, libc::SOCK_STREAM)?;
            sock.connect(raw, deadline)?;
            Ok(UnixStream { sock })
        };
        dial().map_err(|e| op_error(format_args!("dial unix {shown}"), e))
    }

    /// Both ends of a new unnamed connection (`socketpair`).
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = Socket::pair(libc::SOCK_STREAM)?;
        Ok((UnixStream { sock: a }, UnixStream { sock: b }))
    }

    /// Reads into `buf` without taking the data (`MSG_PEEK`, std's
    /// `peek`): the next `peek` or `read` returns it again. Parks, times
    /// out and ends as `read` does; an empty `buf` returns `Ok(0)` at once.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.peek(buf)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<UnixSocketAddr> {
        self.sock.peer_addr()?.to_unix()
    }

    /// Shuts down the read half, the write half or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }

    super::deadline_methods!();

    /// Reads what is there into `buf` without parking, as tokio's
    /// `try_read`: `WouldBlock` if nothing is (wait with `readable()` or
    /// `poll_read_ready`, then try again), `Ok(0)` at end of file or for an
    /// empty `buf`.
    ///
    /// # Errors
    /// `WouldBlock`; the closed error once `close` has run; `TimedOut` once
    /// the read deadline has passed; the system's error.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.try_read(buf)
    }

    /// Writes what fits of `buf` without parking, as tokio's `try_write`:
    /// `WouldBlock` if the send buffer is full (wait with `writable()` or
    /// `poll_write_ready`). A peer that is gone gives `BrokenPipe`, never a
    /// SIGPIPE.
    ///
    /// # Errors
    /// As `try_read`, with the write deadline.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.try_write(buf)
    }

    super::shared_methods!(UnixStream, UnixSocketAddr, to_unix);
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UnixStream");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        if let Ok(peer) = self.peer_addr() {
            d.field("peer", &peer);
        }
        d.field("fd", &self.sock.raw()).finish()
    }
}

super::fd_conversions!(UnixStream, std::os::unix::net::UnixStream, true);
super::stream_io!(UnixStream);
