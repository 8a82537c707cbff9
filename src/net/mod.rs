//! Networking: Go's `net` package, with sockets whose blocking-looking calls
//! park only the calling coroutine.
//!
//! # The model
//!
//! Every socket is non-blocking and close-on-exec from birth (`socket`
//! and `accept4` with `SOCK_NONBLOCK | SOCK_CLOEXEC`), so no child process
//! ever inherits one. A call (`read`, `write`, `accept`, `connect`...)
//! makes the system call at once; on `EAGAIN` it parks the coroutine until
//! the worker's poller reports the socket ready, a deadline passes, or the
//! socket is closed, and then tries again. The worker runs other
//! coroutines meanwhile, so a server holds one coroutine per connection
//! and writes straight-line code, as in Go. On a plain thread outside the
//! runtime the same calls block the thread.
//!
//! A connect is non-blocking too: the coroutine waits for the socket to
//! become writable, then reads `SO_ERROR`. Host names are resolved by the
//! system resolver on `goro::blocking`'s threads, so a slow lookup parks
//! only its caller; numeric addresses never leave it. A dial to a name
//! with several addresses tries them in turn, as Go's does.
//!
//! # Two shapes of API
//!
//! Go's verbs take a network name and an address string, and return
//! network-neutral values:
//!
//! ```no_run
//! fn handler(mut conn: goro::net::Conn) {
//!     let _ = std::io::copy(&mut &conn, &mut &conn);
//! }
//!
//! # fn serve() -> std::io::Result<()> {
//! let ln = goro::net::listen("tcp", "127.0.0.1:7000")?;
//! loop {
//!     let (conn, _) = ln.accept()?;
//!     goro::go!(handler(conn));
//! }
//! # }
//! ```
//!
//! std's shapes are here too, with the same names and signatures as in
//! `std::net` and `std::os::unix::net`: `TcpListener::bind`,
//! `TcpStream::connect`, `UdpSocket::bind`, `UnixStream::pair`... Both
//! shapes make the same sockets; `Listener` and `Conn` are thin enums
//! around them.
//!
//! Go's `net.Listener` and `net.Conn` are interfaces. Here they are enums
//! (`Listener`, `Conn`, and `Addr` for `net.Addr`), for three reasons: the
//! set of networks is closed, so an enum says exactly which sockets a
//! `listen` can return; it costs no allocation and no dynamic call per
//! read; and a `match` recovers the concrete type (`Conn::Tcp(s)`) for
//! what only one network has, where Go needs a type assertion. Code that
//! wants to be generic over any byte stream (TLS, test doubles) can take
//! `impl Read + Write`, which every stream type and `Conn` implement.
//!
//! | Go | goro |
//! | --- | --- |
//! | `net.Listen(network, addr)` | `listen(network, addr)` → `Listener` |
//! | `net.Dial`, `net.DialTimeout` | `dial`, `dial_timeout` → `Conn` |
//! | `net.ListenPacket("udp", addr)` | `UdpSocket::bind(addr)` |
//! | `net.ListenPacket("unixgram", path)` | `UnixDatagram::bind(path)` |
//! | `conn.SetDeadline(t)` | `set_deadline(Some(t))`; `None` for Go's zero time |
//! | `conn.Close()` | `close()`, or drop |
//! | `net.ErrClosed` | `ErrorKind::NotConnected`, "use of closed network connection" |
//! | `os.ErrDeadlineExceeded` | `ErrorKind::TimedOut`, "i/o timeout" |
//!
//! Networks: "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6" and "unix" (a
//! Unix stream socket; its address is a path, or `@name` for a Linux
//! abstract name). Addresses are Go's: `host:port`, `[ipv6]:port`, or
//! `:port`, which listens on every local address (IPv4 and IPv6) and
//! dials this machine.
//!
//! # Deadlines, timeouts and close
//!
//! Deadlines follow Go: a deadline applies to every call until it is
//! changed; one already past fails the next call at once, even if data or
//! a connection is waiting; changing it while a coroutine is blocked takes
//! effect at once (later postpones the timeout, earlier or past wakes it).
//! A timeout is `ErrorKind::TimedOut`. std's `set_read_timeout` and
//! `set_write_timeout` are also there: a timeout restarts with each call,
//! and setting one replaces the deadline of that direction (and the other
//! way round).
//!
//! std's `set_nonblocking(true)` makes calls return `WouldBlock` at once
//! instead of parking, as std's do; the default is to park.
//!
//! `close(&self)` is Go's `Close`: every coroutine blocked on the socket
//! wakes with the closed error (distinct from a timeout and from end of
//! file, `Ok(0)`), and so does every later call. The fd itself is closed
//! when no call is using it any more, so that a number the system hands
//! out again can never receive I/O meant for the closed socket. Dropping
//! a socket closes it too.
//!
//! # Async tasks
//!
//! Every socket type also serves futures, on the same netpoller:
//! `poll_read_ready`/`poll_write_ready` and `readable()`/`writable()`
//! register a task's waker with the socket's poll descriptor, and
//! `try_read`/`try_write` (`try_send`, `try_recv`, `try_send_to`,
//! `try_recv_from` for datagrams, `try_accept`/`poll_accept` for listeners)
//! return `WouldBlock` instead of parking, as tokio's do. Deadlines and
//! `close` end a wait with the blocking calls' errors. Readiness is per
//! waker: a future may be polled from any coroutine or plain thread and
//! move between them; dropping a `readable()` future takes its waker out.
//! With the `tokio-io` feature, `TcpStream` and `UnixStream` implement
//! tokio's `AsyncRead` and `AsyncWrite` on top, so hyper, tokio-postgres
//! and tokio-rustls run on goro sockets under `goro::block_on` with no
//! tokio runtime (see the guide, `goro::guide`).
//!
//! # Errors
//!
//! Bad input is an `InvalidInput` error naming it (`unknown network
//! "tcpx"`, a missing port...), never a panic. Errors from the system keep
//! their `ErrorKind` (`ConnectionRefused`, `AddrInUse`...) and say, as in
//! Go, what failed where: `dial tcp 127.0.0.1:1: connection refused`. The
//! system's error itself, with its `raw_os_error`, is the `source()`.
//! Reads, writes and `write_all` return the system's error as it is, as
//! std does (a `write_all` that hits its deadline adds how much it wrote).
//! Whatever goro adds, an error keeps its kind, and a closed socket's error
//! stays one for `is_closed`.
//!
//! # Conversions
//!
//! Every type converts from its std counterpart (`From`, which makes the
//! socket non-blocking and close-on-exec) and back (`into_std` or
//! `TryFrom`, which makes it blocking again), and implements `AsRawFd`,
//! `AsFd`, `FromRawFd` and `IntoRawFd`. Borrowing the fd with `as_fd`
//! keeps it open until the socket is dropped (a `BorrowedFd` must stay
//! valid): `close` then shuts the socket down rather than closing the fd.

mod addr;
mod conn;
mod error;
pub(crate) mod exhaustion;
mod listener;
mod readiness;
pub(crate) mod sys;
mod tcp_listener;
mod tcp_stream;
#[cfg(feature = "tokio-io")]
mod tokio_io;
mod udp_socket;
mod unix_datagram;
mod unix_listener;
mod unix_stream;

use std::io;
use std::time::{Duration, Instant};

pub use addr::{Addr, ToSocketAddrs};
pub use conn::Conn;
pub use listener::Listener;
pub use readiness::Readiness;
pub use tcp_listener::{Incoming, TcpListener};
pub use tcp_stream::TcpStream;
pub use udp_socket::UdpSocket;
pub use unix_datagram::UnixDatagram;
pub use unix_listener::{Incoming as UnixIncoming, UnixListener};
pub use unix_stream::UnixStream;

use addr::{Network, resolve, unix_addr};
use error::{invalid_input, op_error};

/// Whether `err` says its socket was closed locally (`close`, or a drop
/// elsewhere): Go's `errors.Is(err, net.ErrClosed)`. Such an error has kind
/// `NotConnected` and reads "use of closed network connection"; this tells
/// it apart from a peer that is not connected. It looks for the marker
/// type inside the error, never at the text, through whatever context goro
/// or the caller wrapped around it (`io::Error::new(kind, err)`, or an
/// error whose `source()` leads to it).
pub fn is_closed(err: &io::Error) -> bool {
    has_cause::<crate::runtime::io::netpoll::ClosedError>(err)
}

/// Whether `err` is the error of a `send_to` on a connected socket (Go's
/// `net.ErrWriteToConnected`): `UdpSocket::send_to` and
/// `UnixDatagram::send_to` refuse a destination once the socket is
/// connected, as Go's `WriteTo` does, rather than send elsewhere than the
/// peer. The error is `InvalidInput` and reads `write udp LOCAL->DEST: use
/// of WriteTo with pre-connected connection`; as `is_closed`, this looks
/// for its marker type, not its text.
///
/// ```
/// use goro::net::UdpSocket;
///
/// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
/// a.connect(b.local_addr().unwrap()).unwrap();
/// let err = a.send_to(b"hi", b.local_addr().unwrap()).unwrap_err();
/// assert!(goro::net::is_write_to_connected(&err));
/// assert_eq!(a.send(b"hi").unwrap(), 2, "send goes to the peer");
/// ```
pub fn is_write_to_connected(err: &io::Error) -> bool {
    has_cause::<error::WriteToConnected>(err)
}

/// Whether an error of type `T` is inside `err`, through `io::Error`s and
/// `source()`s.
fn has_cause<T: std::error::Error + 'static>(err: &io::Error) -> bool {
    let mut e: Option<&(dyn std::error::Error + 'static)> = err.get_ref().map(|e| e as _);
    while let Some(cur) = e {
        if cur.is::<T>() {
            return true;
        }
        e = match cur.downcast_ref::<io::Error>() {
            Some(io) => io.get_ref().map(|e| e as _),
            None => cur.source(),
        };
    }
    false
}

/// Listens on `addr` (Go's `net.Listen`): "tcp", "tcp4" and "tcp6" take
/// `host:port` (`:port` for every local address), "unix" a path or
/// `@name`.
///
/// # Errors
/// `InvalidInput` for an unknown network, a bad address, or a datagram
/// network (bind a `UdpSocket` instead); the OS error (`AddrInUse`...),
/// with the network and address in its message.
pub fn listen(network: &str, addr: &str) -> io::Result<Listener> {
    let context = |e| op_error(format_args!("listen {network} {addr}"), e);
    match Network::parse(network).map_err(context)? {
        Network::Tcp(family) => {
            let addrs = resolve(addr, family, None).map_err(context)?;
            TcpListener::bind_addrs(&addrs, family, network).map(Listener::Tcp)
        }
        Network::Unix => {
            let addr = unix_addr(addr).map_err(context)?;
            UnixListener::bind_addr(&addr).map(Listener::Unix)
        }
        Network::Udp(_) => Err(context(invalid_input(format!(
            "{network} is a datagram network with no listener; bind a UdpSocket instead"
        )))),
    }
}

/// Connects to `addr` (Go's `net.Dial`): "tcp", "tcp4", "tcp6", "udp",
/// "udp4" and "udp6" take `host:port`, "unix" a path or `@name`. Each
/// address a host name resolves to is tried in turn until one connects.
///
/// # Errors
/// `InvalidInput` for an unknown network or a bad address; otherwise the
/// first address's error, with the network and address in its message
/// (`dial tcp 127.0.0.1:1: connection refused`).
pub fn dial(network: &str, addr: &str) -> io::Result<Conn> {
    dial_until(network, addr, None)
}

/// As `dial`, giving up after `timeout` with `TimedOut`; the timeout
/// covers the name lookup too.
///
/// # Errors
/// As `dial`; `InvalidInput` for a zero timeout, as std's
/// `connect_timeout`.
pub fn dial_timeout(network: &str, addr: &str, timeout: Duration) -> io::Result<Conn> {
    if timeout.is_zero() {
        return Err(op_error(
            format_args!("dial {network} {addr}"),
            invalid_input("cannot set a 0 duration timeout".into()),
        ));
    }
    dial_until(network, addr, Instant::now().checked_add(timeout))
}

/// As `dial`, giving up at `deadline` with `TimedOut`.
///
/// # Errors
/// As `dial`.
pub fn dial_deadline(network: &str, addr: &str, deadline: Instant) -> io::Result<Conn> {
    dial_until(network, addr, Some(deadline))
}

/// As `dial`, within `ctx` (Go's `DialContext`): gives up at the context's
/// deadline (`TimedOut`) or when it is cancelled (`Interrupted`), with the
/// context's reason ("context canceled") in the message.
///
/// A cancelled dial returns at once; the attempt it abandons runs on, in
/// its own coroutine, until it connects or fails (at most until the
/// context's deadline, if it has one), and its connection is then dropped.
///
/// # Errors
/// As `dial`, and the context's error.
pub fn dial_context(ctx: &crate::context::Context, network: &str, addr: &str) -> io::Result<Conn> {
    let context = |e| op_error(format_args!("dial {network} {addr}"), e);
    if let Some(e) = ctx.err() {
        return Err(context(e.into()));
    }
    let (tx, rx) = crate::chan::chan(1);
    let (net, target, deadline) = (network.to_string(), addr.to_string(), ctx.deadline());
    crate::spawn(move || {
        let _ = tx.try_send(dial_until(&net, &target, deadline));
    });
    crate::select! {
        recv(rx) -> r => match r {
            Ok(result) => result,
            Err(_) => unreachable!("goro: a dial ended without a result"),
        },
        recv(ctx.done()) -> _ => Err(context(ctx.err().unwrap_or(crate::context::ContextError::Cancelled).into())),
    }
}

fn dial_until(network: &str, addr: &str, deadline: Option<Instant>) -> io::Result<Conn> {
    let context = |e| op_error(format_args!("dial {network} {addr}"), e);
    match Network::parse(network).map_err(context)? {
        Network::Tcp(family) => {
            let addrs = resolve(addr, family, deadline).map_err(context)?;
            TcpStream::dial(&addrs, deadline, network).map(Conn::Tcp)
        }
        Network::Udp(family) => {
            let addrs = resolve(addr, family, deadline).map_err(context)?;
            UdpSocket::dial(&addrs, deadline, network).map(Conn::Udp)
        }
        Network::Unix => {
            let addr = unix_addr(addr).map_err(context)?;
            UnixStream::dial(&addr, deadline).map(Conn::Unix)
        }
    }
}

/// `Read` and `Write` for an owned socket through its shared reference, as
/// std's sockets have both: `&T` does the work.
macro_rules! io_via_ref {
    ($ty:ty) => {
        impl ::std::io::Read for $ty {
            fn read(&mut self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                ::std::io::Read::read(&mut &*self, buf)
            }
        }

        impl ::std::io::Write for $ty {
            fn write(&mut self, buf: &[u8]) -> ::std::io::Result<usize> {
                ::std::io::Write::write(&mut &*self, buf)
            }

            fn write_all(&mut self, buf: &[u8]) -> ::std::io::Result<()> {
                ::std::io::Write::write_all(&mut &*self, buf)
            }

            fn flush(&mut self) -> ::std::io::Result<()> {
                Ok(())
            }
        }
    };
}
use io_via_ref;

/// `Read` and `Write` for a stream socket type with a `sock: Socket` field
/// and for its shared reference.
macro_rules! stream_io {
    ($ty:ty) => {
        impl ::std::io::Read for &$ty {
            fn read(&mut self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                self.sock.read(buf)
            }
        }

        impl ::std::io::Write for &$ty {
            fn write(&mut self, buf: &[u8]) -> ::std::io::Result<usize> {
                self.sock.write(buf)
            }

            fn write_all(&mut self, buf: &[u8]) -> ::std::io::Result<()> {
                self.sock.write_all(buf)
            }

            fn flush(&mut self) -> ::std::io::Result<()> {
                Ok(())
            }
        }

        $crate::net::io_via_ref!($ty);
    };
}
use stream_io;

/// The methods every socket type shares, for the `impl` block of a type
/// `$ty` with a `sock: Socket` field whose addresses are `$addr`
/// (converted from the raw address by `RawAddr::$conv`).
macro_rules! shared_methods {
    ($ty:ident, $addr:ty, $conv:ident) => {
        /// This end's address: the one it is bound to (with the port the
        /// system chose, for port 0).
        pub fn local_addr(&self) -> ::std::io::Result<$addr> {
            self.sock.local_addr()?.$conv()
        }

        /// Closes the socket (Go's `Close`): every coroutine blocked on it
        /// wakes with the closed error (`NotConnected`, "use of closed
        /// network connection"; see `is_closed`), distinct from a timeout
        /// and from end of file, as do later calls. The fd is closed once no
        /// call is using it, so its number can never carry another socket's
        /// data to a late call (and a listener's address can be bound
        /// again). Closing twice is the closed error. Dropping closes too.
        pub fn close(&self) -> ::std::io::Result<()> {
            self.sock.close()
        }

        /// Another handle to the same socket (a duplicated fd), with the
        /// same timeouts and mode, and its own deadlines and its own
        /// `close`: a connection ends when every handle is closed or
        /// dropped, or at `shutdown`.
        pub fn try_clone(&self) -> ::std::io::Result<$ty> {
            Ok($ty {
                sock: self.sock.try_clone()?,
            })
        }

        /// The pending socket error (`SO_ERROR`), clearing it.
        pub fn take_error(&self) -> ::std::io::Result<Option<::std::io::Error>> {
            self.sock.take_error()
        }

        /// Moves the socket into or out of std's non-blocking mode: its
        /// calls (reads, writes, sends, receives, accepts) then make their
        /// system call once and fail with `WouldBlock` rather than park (so
        /// deadlines and timeouts have nothing left to bound). Off by
        /// default: calls park the coroutine. `try_clone` copies the mode,
        /// and `into_std` keeps the fd non-blocking in it; a listener's
        /// accepted connections start in the default mode.
        ///
        /// # Errors
        /// The closed error once `close` has run.
        pub fn set_nonblocking(&self, nonblocking: bool) -> ::std::io::Result<()> {
            self.sock.set_nonblocking(nonblocking)
        }

        /// Polls for read readiness (for a listener: a connection to
        /// accept), as tokio's `poll_read_ready`: `Ready(Ok(()))` if the
        /// socket may be readable, else `Pending` with the task's waker
        /// registered with goro's netpoller, to be woken by the next
        /// readiness event, a deadline change, the read deadline passing or
        /// `close`. Only the waker of the latest call is kept; tasks that
        /// wait side by side use `readable()`.
        ///
        /// Readiness lasts until a `try_*` call of that direction finds the
        /// socket not ready: a `WouldBlock`, or a short read or write of a
        /// stream socket (which drained it, or filled its send buffer).
        /// The waker may be any task's, polled from any coroutine or
        /// thread; it is called on a goro worker, between coroutines, so
        /// it must not block (as with any reactor).
        ///
        /// # Errors
        /// The closed error (`is_closed`) once `close` has run; `TimedOut`
        /// once the read deadline has passed.
        pub fn poll_read_ready(
            &self,
            cx: &mut ::std::task::Context<'_>,
        ) -> ::std::task::Poll<::std::io::Result<()>> {
            self.sock
                .poll_ready($crate::runtime::io::netpoll::Dir::Read, cx, None)
        }

        /// Polls for write readiness, as `poll_read_ready` for writes
        /// (and the write deadline).
        ///
        /// # Errors
        /// As `poll_read_ready`.
        pub fn poll_write_ready(
            &self,
            cx: &mut ::std::task::Context<'_>,
        ) -> ::std::task::Poll<::std::io::Result<()>> {
            self.sock
                .poll_ready($crate::runtime::io::netpoll::Dir::Write, cx, None)
        }

        /// Waits until the socket may be readable (for a listener: a
        /// connection to accept), as tokio's `readable`. Any number of
        /// tasks may wait at once; see `Readiness`.
        pub fn readable(&self) -> $crate::net::Readiness<'_> {
            $crate::net::Readiness::new(&self.sock, $crate::runtime::io::netpoll::Dir::Read)
        }

        /// Waits until the socket may be writable, as tokio's `writable`.
        pub fn writable(&self) -> $crate::net::Readiness<'_> {
            $crate::net::Readiness::new(&self.sock, $crate::runtime::io::netpoll::Dir::Write)
        }
    };
}
use shared_methods;

/// Go's deadlines and std's timeouts, for the `impl` block of a connected
/// or datagram socket type with a `sock: Socket` field. For datagram
/// sockets, "read" means receive and "write" send.
macro_rules! deadline_methods {
    () => {
        /// Sets the read and write deadlines (Go's `SetDeadline`); `None`
        /// clears them. See `set_read_deadline`.
        pub fn set_deadline(
            &self,
            deadline: Option<::std::time::Instant>,
        ) -> ::std::io::Result<()> {
            use $crate::runtime::io::netpoll::Dir::{Read, Write};
            self.sock.set_deadline(&[Read, Write], deadline)
        }

        /// Sets the read deadline (Go's `SetReadDeadline`): reads fail with
        /// `TimedOut` once it has passed — at once, if it already has, even
        /// with data waiting — until a new deadline or `None` is set. Moving
        /// it wakes a blocked read to re-check it. It replaces a read timeout.
        pub fn set_read_deadline(
            &self,
            deadline: Option<::std::time::Instant>,
        ) -> ::std::io::Result<()> {
            self.sock
                .set_deadline(&[$crate::runtime::io::netpoll::Dir::Read], deadline)
        }

        /// Sets the write deadline (Go's `SetWriteDeadline`), as
        /// `set_read_deadline` for writes. A `write` that times out after
        /// sending part of its buffer returns the part it sent; a
        /// `write_all`'s `TimedOut` error then says how much it sent.
        pub fn set_write_deadline(
            &self,
            deadline: Option<::std::time::Instant>,
        ) -> ::std::io::Result<()> {
            self.sock
                .set_deadline(&[$crate::runtime::io::netpoll::Dir::Write], deadline)
        }

        /// Sets std's read timeout: each read fails with `TimedOut` after
        /// waiting `timeout` (`None`: wait for ever). It replaces a read
        /// deadline.
        ///
        /// # Errors
        /// `InvalidInput` for a zero duration, as with std.
        pub fn set_read_timeout(
            &self,
            timeout: Option<::std::time::Duration>,
        ) -> ::std::io::Result<()> {
            self.sock
                .set_timeout($crate::runtime::io::netpoll::Dir::Read, timeout)
        }

        /// Sets std's write timeout, as `set_read_timeout` for writes; for
        /// `write_all`, the timeout covers the whole call.
        pub fn set_write_timeout(
            &self,
            timeout: Option<::std::time::Duration>,
        ) -> ::std::io::Result<()> {
            self.sock
                .set_timeout($crate::runtime::io::netpoll::Dir::Write, timeout)
        }

        /// The read timeout.
        pub fn read_timeout(&self) -> ::std::io::Result<Option<::std::time::Duration>> {
            Ok(self.sock.timeout($crate::runtime::io::netpoll::Dir::Read))
        }

        /// The write timeout.
        pub fn write_timeout(&self) -> ::std::io::Result<Option<::std::time::Duration>> {
            Ok(self.sock.timeout($crate::runtime::io::netpoll::Dir::Write))
        }
    };
}
use deadline_methods;

/// Implements the conversions to and from std's type and raw fds for a
/// socket type with a `sock: Socket` field; `$stream` says whether it is a
/// stream socket.
macro_rules! fd_conversions {
    ($ty:ident, $std:ty, $stream:expr) => {
        impl $ty {
            /// Gives the socket back as std's type, blocking again.
            ///
            /// # Errors
            /// The closed error if `close` closed it.
            pub fn into_std(self) -> ::std::io::Result<$std> {
                self.sock.into_owned().map(<$std>::from)
            }
        }

        /// Adopts std's socket, making it non-blocking and close-on-exec.
        ///
        /// # Panics
        /// Only if `fcntl` fails on the fd, which it does not for an open
        /// socket.
        impl From<$std> for $ty {
            fn from(s: $std) -> $ty {
                $ty::from(::std::os::fd::OwnedFd::from(s))
            }
        }

        /// Adopts an fd that must be a socket of this type, making it
        /// non-blocking and close-on-exec.
        ///
        /// # Panics
        /// As `From<std type>`.
        impl From<::std::os::fd::OwnedFd> for $ty {
            fn from(fd: ::std::os::fd::OwnedFd) -> $ty {
                $ty {
                    sock: super::sys::socket::Socket::adopt(fd, $stream),
                }
            }
        }

        /// As `into_std`.
        impl TryFrom<$ty> for $std {
            type Error = ::std::io::Error;

            fn try_from(s: $ty) -> ::std::io::Result<$std> {
                s.into_std()
            }
        }

        /// The fd; -1 once `close` has closed it.
        impl ::std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> ::std::os::fd::RawFd {
                self.sock.raw()
            }
        }

        /// The fd, which then stays open until the socket is dropped:
        /// `close` shuts the socket down instead of closing it. After
        /// `close`, an unconnected stand-in socket.
        impl ::std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
                self.sock.as_fd()
            }
        }

        /// Adopts `fd`, which must be an open socket of this type owned by
        /// the caller, as `From<OwnedFd>`.
        impl ::std::os::fd::FromRawFd for $ty {
            unsafe fn from_raw_fd(fd: ::std::os::fd::RawFd) -> $ty {
                // SAFETY: the caller guarantees that `fd` is open and theirs
                // to give.
                $ty::from(unsafe { ::std::os::fd::OwnedFd::from_raw_fd(fd) })
            }
        }

        /// Gives up the fd, still non-blocking; -1 if `close` closed it.
        impl ::std::os::fd::IntoRawFd for $ty {
            fn into_raw_fd(self) -> ::std::os::fd::RawFd {
                self.sock.into_raw()
            }
        }
    };
}
use fd_conversions;
