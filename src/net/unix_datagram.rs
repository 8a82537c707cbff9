//! `UnixDatagram`.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr as UnixSocketAddr;
use std::path::Path;

use super::addr::Addr;
use super::error::{op_error, write_to_connected};
use super::sys::sockaddr::RawAddr;
use super::sys::socket::Socket;

/// A Unix datagram socket. Receiving parks the calling coroutine until a
/// datagram arrives.
///
/// As with std, the socket file a bound socket creates stays after it is
/// closed.
///
/// ```
/// use goro::net::UnixDatagram;
///
/// goro::run(|| -> std::io::Result<()> {
///     let (a, b) = UnixDatagram::pair()?;
///     a.send(b"one")?;
///     let mut buf = [0; 8];
///     let n = b.recv(&mut buf)?;
///     assert_eq!(&buf[..n], b"one");
///     Ok(())
/// })
/// .unwrap();
/// ```
pub struct UnixDatagram {
    /// The datagram socket.
    sock: Socket,
}

impl UnixDatagram {
    /// A socket bound to the socket file `path`, which must not exist.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        let path = path.as_ref();
        UnixDatagram::bind_raw(&RawAddr::from_unix_path(path)?, &path.display())
    }

    /// A socket bound to `addr`: a pathname or a Linux abstract name.
    pub fn bind_addr(addr: &UnixSocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::bind_raw(&RawAddr::from_unix(addr)?, &Addr::Unix(addr.clone()))
    }

    fn bind_raw(raw: &RawAddr, shown: &dyn fmt::Display) -> io::Result<UnixDatagram> {
        let bind = || {
            let sock = Socket::open(libc::AF_UNIX, libc::SOCK_DGRAM)?;
            sock.bind(raw)?;
            Ok(UnixDatagram { sock })
        };
        bind().map_err(|e| op_error(format_args!("listen unixgram {shown}"), e))
    }

    /// A socket bound to no address: it can send, but replies cannot reach
    /// it unless it is connected.
    pub fn unbound() -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            sock: Socket::open(libc::AF_UNIX, libc::SOCK_DGRAM)?,
        })
    }

    /// Both ends of a new unnamed pair of connected sockets.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = Socket::pair(libc::SOCK_DGRAM)?;
        Ok((UnixDatagram { sock: a }, UnixDatagram { sock: b }))
    }

    /// Connects to the socket at `path`: `send` and `recv` then talk to it.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        let path = path.as_ref();
        self.connect_raw(&RawAddr::from_unix_path(path)?, &path.display())
    }

    /// Connects to `addr`: a pathname or a Linux abstract name.
    pub fn connect_addr(&self, addr: &UnixSocketAddr) -> io::Result<()> {
        self.connect_raw(&RawAddr::from_unix(addr)?, &Addr::Unix(addr.clone()))
    }

    fn connect_raw(&self, raw: &RawAddr, shown: &dyn fmt::Display) -> io::Result<()> {
        self.sock
            .connect(raw, None)
            .map_err(|e| op_error(format_args!("dial unixgram {shown}"), e))
    }

    /// Sends `buf` as one datagram to the socket at `path`.
    ///
    /// # Errors
    /// On a connected socket, `InvalidInput` reading `write unixgram
    /// LOCAL->PATH: use of WriteTo with pre-connected connection`, as Go's
    /// `WriteTo` (`net::is_write_to_connected` tells it apart): use
    /// `send`. `InvalidInput` for a path that cannot be a socket address;
    /// else the OS error.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.refuse_if_connected(&path.display())?;
        self.sock
            .send_to(buf, Some(&RawAddr::from_unix_path(path)?))
    }

    /// Sends `buf` as one datagram to `addr`.
    ///
    /// # Errors
    /// As `send_to`.
    pub fn send_to_addr(&self, buf: &[u8], addr: &UnixSocketAddr) -> io::Result<usize> {
        self.refuse_if_connected(&Addr::Unix(addr.clone()))?;
        self.sock.send_to(buf, Some(&RawAddr::from_unix(addr)?))
    }

    /// Go's `ErrWriteToConnected` for a send to `dest` if the socket is
    /// connected.
    fn refuse_if_connected(&self, dest: &dyn fmt::Display) -> io::Result<()> {
        if !self.sock.is_connected() {
            return Ok(());
        }
        let local = self
            .local_addr()
            .ok()
            .filter(|a| !a.is_unnamed())
            .map(Addr::Unix);
        Err(write_to_connected(
            "unixgram",
            local.as_ref().map(|l| l as &dyn fmt::Display),
            dest,
        ))
    }

    /// Receives one datagram and its sender's address (unnamed for an
    /// unbound sender).
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, UnixSocketAddr)> {
        let (n, raw) = self.sock.recv_from(buf)?;
        Ok((n, raw.to_unix()?))
    }

    /// As `recv_from`, but leaves the datagram to be received again
    /// (`MSG_PEEK`, std's `peek_from`).
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, UnixSocketAddr)> {
        let (n, raw) = self.sock.peek_from(buf)?;
        Ok((n, raw.to_unix()?))
    }

    /// As `recv`, but leaves the datagram to be received again
    /// (`MSG_PEEK`, std's `peek`).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.peek(buf)
    }

    /// Sends `buf` as one datagram to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.send_to(buf, None)
    }

    /// Receives one datagram from the connected peer. An empty `buf`
    /// returns `Ok(0)` at once.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(buf)
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<UnixSocketAddr> {
        self.sock.peer_addr()?.to_unix()
    }

    /// Shuts down the receive half, the send half or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }

    super::deadline_methods!();

    /// Sends `buf` as one datagram to the connected peer without parking:
    /// `WouldBlock` if the send buffer is full (wait with `writable()` or
    /// `poll_write_ready`).
    ///
    /// # Errors
    /// `WouldBlock`; the closed error once `close` has run; `TimedOut` once
    /// the write deadline has passed; the system's error.
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.try_send_to(buf, None)
    }

    /// Receives one datagram from the connected peer without parking:
    /// `WouldBlock` if none is there (wait with `readable()` or
    /// `poll_read_ready`).
    ///
    /// # Errors
    /// As `try_send`, with the read deadline.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.try_read(buf)
    }

    /// Sends `buf` as one datagram to the socket at `path` without parking.
    ///
    /// # Errors
    /// As `try_send`; `InvalidInput` for a path too long for a socket
    /// address; on a connected socket, Go's `ErrWriteToConnected`, as
    /// `send_to`.
    pub fn try_send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.refuse_if_connected(&path.display())?;
        self.sock
            .try_send_to(buf, Some(&RawAddr::from_unix_path(path)?))
    }

    /// Receives one datagram and its sender's address without parking.
    ///
    /// # Errors
    /// As `try_recv`.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, UnixSocketAddr)> {
        let (n, raw) = self.sock.try_recv_from(buf)?;
        Ok((n, raw.to_unix()?))
    }

    super::shared_methods!(UnixDatagram, UnixSocketAddr, to_unix);
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UnixDatagram");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        d.field("fd", &self.sock.raw()).finish()
    }
}

super::fd_conversions!(UnixDatagram, std::os::unix::net::UnixDatagram, false);
