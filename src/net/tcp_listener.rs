//! `TcpListener`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use super::addr::{Family, ToSocketAddrs};
use super::error::op_error;
use super::sys::sockaddr::RawAddr;
use super::sys::socket::Socket;
use super::tcp_stream::TcpStream;
use crate::runtime::io::netpoll::Dir;

/// A TCP socket listening for connections. `accept` parks the calling
/// coroutine until a client connects.
///
/// Listening sockets set `SO_REUSEADDR` (a restarted server can bind its
/// port at once) and use the system's largest backlog
/// (`/proc/sys/net/core/somaxconn`), as Go does.
///
/// ```
/// use std::io::{Read, Write};
/// use goro::net::{TcpListener, TcpStream};
///
/// goro::run(|| -> std::io::Result<()> {
///     let ln = TcpListener::bind("127.0.0.1:0")?;
///     let addr = ln.local_addr()?;
///     let client = goro::go!(move || -> std::io::Result<String> {
///         let mut c = TcpStream::connect(addr)?;
///         let mut s = String::new();
///         c.read_to_string(&mut s)?;
///         Ok(s)
///     });
///     let (mut conn, _peer) = ln.accept()?;
///     conn.write_all(b"hello")?;
///     drop(conn);
///     assert_eq!(client.join().unwrap()?, "hello");
///     Ok(())
/// })
/// .unwrap();
/// ```
pub struct TcpListener {
    /// The listening socket.
    sock: Socket,
}

impl TcpListener {
    /// Listens on `addr`: the first of its addresses that can be bound. A
    /// host name is resolved without blocking the worker; `:port` listens
    /// on every local address (IPv4 and IPv6).
    ///
    /// # Errors
    /// `InvalidInput` for a bad address; the OS error (`AddrInUse`...) with
    /// the address in its message; for several addresses, the first one's.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        TcpListener::bind_addrs(&addr.resolve(None)?, Family::Any, "tcp")
    }

    /// Binds the first of `addrs` that can be bound; `network` names the
    /// network in errors.
    pub(crate) fn bind_addrs(
        addrs: &[SocketAddr],
        family: Family,
        network: &str,
    ) -> io::Result<TcpListener> {
        super::sys::socket::try_each(addrs, None, |addr, _| {
            TcpListener::bind_one(addr, family)
                .map_err(|e| op_error(format_args!("listen {network} {addr}"), e))
        })
    }

    fn bind_one(addr: SocketAddr, family: Family) -> io::Result<TcpListener> {
        let domain = if addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let sock = Socket::open(domain, libc::SOCK_STREAM)?;
        sock.set_option(libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if addr.is_ipv6() {
            let v6only = family.v6_only().into();
            sock.set_option(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, v6only)?;
        }
        sock.bind(&RawAddr::from_ip(&addr))?;
        sock.listen()?;
        Ok(TcpListener { sock })
    }

    /// Waits for a connection and returns it with the peer's address. The
    /// connection has `TCP_NODELAY` set, as in Go.
    ///
    /// Out of fds or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), `accept`
    /// parks the calling coroutine before it returns the error: 5 ms after
    /// the first such failure, doubling with each one in a row up to 1 s,
    /// back to 5 ms after a connection is accepted (the backoff of Go's
    /// `net/http` Server, kept per listener). So a loop that logs the error
    /// and accepts again lets the coroutines on its worker run, close their
    /// connections and free fds, instead of spinning. In std's non-blocking
    /// mode (`set_nonblocking(true)`) the error returns at once.
    ///
    /// # Errors
    /// `TimedOut` once the deadline passes; the closed error
    /// (`NotConnected`, "use of closed network connection") once the
    /// listener is closed; an OS error (such as running out of fds, after
    /// the backoff above).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (sock, raw) = self.sock.accept()?;
        let peer = raw.to_ip()?;
        Ok((TcpStream::accepted(sock), peer))
    }

    /// An endless iterator over accepted connections (std's `incoming`).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// Sets the deadline for `accept` (Go's `SetDeadline`); `None` clears
    /// it. A deadline in the past fails the next `accept` at once, even if
    /// a connection is waiting; moving it wakes a blocked `accept` to
    /// re-check it.
    pub fn set_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_deadline(&[Dir::Read], deadline)
    }

    /// Sets `IP_TTL` for accepted connections.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_ttl(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.ttl()
    }

    /// Accepts a connection if one is waiting, without parking:
    /// `WouldBlock` if none is (wait with `readable()` or `poll_accept`).
    ///
    /// # Errors
    /// `WouldBlock`; otherwise as `accept`.
    pub fn try_accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (sock, raw) = self.sock.try_accept()?;
        let peer = raw.to_ip()?;
        Ok((TcpStream::accepted(sock), peer))
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
    ) -> std::task::Poll<io::Result<(TcpStream, SocketAddr)>> {
        self.sock.poll_io(Dir::Read, cx, || self.try_accept())
    }

    super::shared_methods!(TcpListener, SocketAddr, to_ip);
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpListener");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        d.field("fd", &self.sock.raw()).finish()
    }
}

/// The iterator of `TcpListener::incoming`: `accept` in a loop. It never
/// returns `None`; an error (a closed listener, a deadline) is an item.
#[derive(Debug)]
pub struct Incoming<'a> {
    /// The listener accepting.
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

super::fd_conversions!(TcpListener, std::net::TcpListener, true);
