//! `UnixListener`.

use std::fmt;
use std::io;
use std::os::unix::net::SocketAddr as UnixSocketAddr;
use std::path::Path;
use std::time::Instant;

use super::addr::Addr;
use super::error::op_error;
use super::sys::sockaddr::RawAddr;
use super::sys::socket::Socket;
use super::unix_stream::UnixStream;
use crate::runtime::io::netpoll::Dir;

/// A Unix stream socket listening for connections. `accept` parks the
/// calling coroutine until a client connects.
///
/// As with std, the socket file a pathname listener creates stays after
/// the listener is closed; removing it is the caller's business. Linux
/// abstract names (`bind_addr` with `SocketAddr::from_abstract_name`, or
/// `"@name"` for `net::listen`) leave no file.
///
/// ```
/// use std::io::Write;
/// use goro::net::{UnixListener, UnixStream};
///
/// goro::run(|| -> std::io::Result<()> {
///     let path = std::env::temp_dir().join(format!("goro-doc-{}.sock", std::process::id()));
///     let _ = std::fs::remove_file(&path);
///     let ln = UnixListener::bind(&path)?;
///     let mut client = UnixStream::connect(&path)?;
///     let (server, _) = ln.accept()?;
///     client.write_all(b"hi")?;
///     let mut got = String::new();
///     drop(client);
///     std::io::Read::read_to_string(&mut &server, &mut got)?;
///     assert_eq!(got, "hi");
///     std::fs::remove_file(&path)
/// })
/// .unwrap();
/// ```
pub struct UnixListener {
    /// The listening socket.
    sock: Socket,
}

impl UnixListener {
    /// Listens on the socket file `path`, which must not exist.
    ///
    /// # Errors
    /// `InvalidInput` for a path too long or with a NUL byte; the OS error
    /// (`AddrInUse` if the file exists...) with the path in its message.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let path = path.as_ref();
        UnixListener::bind_raw(&RawAddr::from_unix_path(path)?, &path.display())
    }

    /// Listens on `addr`: a pathname or a Linux abstract name.
    pub fn bind_addr(addr: &UnixSocketAddr) -> io::Result<UnixListener> {
        UnixListener::bind_raw(&RawAddr::from_unix(addr)?, &Addr::Unix(addr.clone()))
    }

    fn bind_raw(raw: &RawAddr, shown: &dyn fmt::Display) -> io::Result<UnixListener> {
        let bind = || {
            let sock = Socket::open(libc::AF_UNIX, libc::SOCK_STREAM)?;
            sock.bind(raw)?;
            sock.listen()?;
            Ok(UnixListener { sock })
        };
        bind().map_err(|e| op_error(format_args!("listen unix {shown}"), e))
    }

    /// Waits for a connection and returns it with the peer's address
    /// (usually unnamed). Out of fds or memory, it parks before returning
    /// the error, as `TcpListener::accept` does.
    ///
    /// # Errors
    /// `TimedOut` once the deadline passes; the closed error once the
    /// listener is closed; an OS error.
    pub fn accept(&self) -> io::Result<(UnixStream, UnixSocketAddr)> {
        let (sock, raw) = self.sock.accept()?;
        let peer = raw.to_unix()?;
        Ok((UnixStream::from_socket(sock), peer))
    }

    /// An endless iterator over accepted connections.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// Sets the deadline for `accept` (Go's `SetDeadline`); `None` clears
    /// it.
    pub fn set_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_deadline(&[Dir::Read], deadline)
    }

    /// Accepts a connection if one is waiting, without parking:
    /// `WouldBlock` if none is (wait with `readable()` or `poll_accept`).
    ///
    /// # Errors
    /// `WouldBlock`; otherwise as `accept`.
    pub fn try_accept(&self) -> io::Result<(UnixStream, UnixSocketAddr)> {
        let (sock, raw) = self.sock.try_accept()?;
        let peer = raw.to_unix()?;
        Ok((UnixStream::from_socket(sock), peer))
    }

    /// Polls for a connection, as tokio's `poll_accept`: `Pending` with the
    /// task's waker registered with goro's netpoller until one arrives (see
    /// `poll_read_ready`).
    ///
    /// # Errors
    /// As `accept`.
    pub fn poll_accept(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<(UnixStream, UnixSocketAddr)>> {
        self.sock.poll_io(Dir::Read, cx, || self.try_accept())
    }

    super::shared_methods!(UnixListener, UnixSocketAddr, to_unix);
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UnixListener");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        d.field("fd", &self.sock.raw()).finish()
    }
}

/// The iterator of `UnixListener::incoming`: `accept` in a loop; it never
/// returns `None`.
#[derive(Debug)]
pub struct Incoming<'a> {
    /// The listener accepting.
    listener: &'a UnixListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

super::fd_conversions!(UnixListener, std::os::unix::net::UnixListener, true);
