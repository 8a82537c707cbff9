//! `TcpStream`.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use super::addr::{ToSocketAddrs, dial_target};
use super::error::{invalid_input, op_error};
use super::sys::sockaddr::RawAddr;
use super::sys::socket::{Socket, try_each};

/// A TCP connection. Reads and writes park the calling coroutine (or block
/// the calling plain thread) until they can proceed.
///
/// `Read` and `Write` are implemented for `&TcpStream` too, so one
/// coroutine can read while another writes through a shared reference
/// (one reader and one writer at a time; others queue in order).
///
/// Connections have `TCP_NODELAY` set from the start, as in Go: small
/// writes go out at once instead of waiting for the peer's ACK. Call
/// `set_nodelay(false)` to batch them.
///
/// ```
/// use std::io::{Read, Write};
/// use goro::net::{TcpListener, TcpStream};
///
/// goro::run(|| -> std::io::Result<()> {
///     let ln = TcpListener::bind("127.0.0.1:0")?;
///     let mut client = TcpStream::connect(ln.local_addr()?)?;
///     let (mut server, _) = ln.accept()?;
///     client.write_all(b"ping")?;
///     let mut buf = [0; 4];
///     server.read_exact(&mut buf)?;
///     assert_eq!(&buf, b"ping");
///     assert!(client.nodelay()?);
///     Ok(())
/// })
/// .unwrap();
/// ```
pub struct TcpStream {
    /// The connected socket.
    pub(super) sock: Socket,
}

impl TcpStream {
    /// A connection accepted by a listener.
    pub(crate) fn accepted(sock: Socket) -> TcpStream {
        let stream = TcpStream { sock };
        // Best effort, as in Go: the connection works either way.
        let _ = stream.set_nodelay(true);
        stream
    }

    /// Connects to `addr`, trying each of its addresses in turn until one
    /// accepts. A host name is resolved without blocking the worker.
    ///
    /// # Errors
    /// `InvalidInput` for a bad address; otherwise the first address's
    /// error, with the address in its message (`dial tcp 127.0.0.1:1:
    /// connection refused`, of kind `ConnectionRefused`).
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        TcpStream::dial(&addr.resolve(None)?, None, "tcp")
    }

    /// Connects to `addr`, giving up after `timeout` with `TimedOut`.
    ///
    /// # Errors
    /// As `connect`; `InvalidInput` for a zero timeout, as with std.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(invalid_input("cannot set a 0 duration timeout".into()));
        }
        TcpStream::dial(&[*addr], Instant::now().checked_add(timeout), "tcp")
    }

    /// Connects to the first of `addrs` that accepts before `deadline`;
    /// `network` names the network in errors.
    pub(crate) fn dial(
        addrs: &[SocketAddr],
        deadline: Option<Instant>,
        network: &str,
    ) -> io::Result<TcpStream> {
        try_each(addrs, deadline, |addr, deadline| {
            TcpStream::dial_one(dial_target(addr), deadline)
                .map_err(|e| op_error(format_args!("dial {network} {addr}"), e))
        })
    }

    fn dial_one(addr: SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let domain = if addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let sock = Socket::open(domain, libc::SOCK_STREAM)?;
        sock.connect(&RawAddr::from_ip(&addr), deadline)?;
        Ok(TcpStream::accepted(sock))
    }

    /// Reads into `buf` without taking the data (`MSG_PEEK`, std's
    /// `peek`): the next `peek` or `read` returns it again. Parks, times
    /// out and ends (`Ok(0)` at end of file) as `read` does; an empty
    /// `buf` returns `Ok(0)` at once.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use goro::net::{TcpListener, TcpStream};
    ///
    /// goro::run(|| -> std::io::Result<()> {
    ///     let ln = TcpListener::bind("127.0.0.1:0")?;
    ///     let mut client = TcpStream::connect(ln.local_addr()?)?;
    ///     let (mut server, _) = ln.accept()?;
    ///     client.write_all(b"GET /")?;
    ///     let mut first = [0; 3];
    ///     server.peek(&mut first)?;
    ///     assert_eq!(&first, b"GET");
    ///     let mut all = [0; 5];
    ///     server.read_exact(&mut all)?;
    ///     assert_eq!(&all, b"GET /");
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.peek(buf)
    }

    /// The peer's address (Go's `RemoteAddr`).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()?.to_ip()
    }

    /// Shuts down the read half, the write half or both (`shutdown(2)`).
    /// Shutting down writes sends the peer end of file, while reading
    /// goes on.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }

    /// Sets or clears `TCP_NODELAY` (on by default, as in Go).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.sock
            .set_option(libc::IPPROTO_TCP, libc::TCP_NODELAY, nodelay.into())
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.sock.option(libc::IPPROTO_TCP, libc::TCP_NODELAY)? != 0)
    }

    /// Sets `SO_LINGER` (std's `set_linger`, Go's `SetLinger`), which says
    /// what closing does with data not yet sent. `None`, the default: the
    /// close returns at once and the system sends the data in the
    /// background. `Some(Duration::ZERO)`: the close discards it and resets
    /// the connection. `Some(t)`: on Linux, the close that ends the
    /// connection waits up to `t` (in whole seconds) for the data to go,
    /// holding the worker or thread that closes the fd (as Go warns for
    /// `SetLinger`), so keep `t` short or leave it off.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.sock.set_linger(linger)
    }

    /// `SO_LINGER`: `None` if off, else the time in whole seconds.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.sock.linger()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_ttl(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.ttl()
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

    super::shared_methods!(TcpStream, SocketAddr, to_ip);
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpStream");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        if let Ok(peer) = self.peer_addr() {
            d.field("peer", &peer);
        }
        d.field("fd", &self.sock.raw()).finish()
    }
}

super::fd_conversions!(TcpStream, std::net::TcpStream, true);
super::stream_io!(TcpStream);
