//! `UdpSocket`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use super::addr::{Family, ToSocketAddrs, dial_target};
use super::error::{invalid_input, op_error, write_to_connected};
use super::sys::sockaddr::RawAddr;
use super::sys::socket::{Socket, try_each};

/// A UDP socket. Receiving parks the calling coroutine until a datagram
/// arrives; sending parks it while the send buffer is full.
///
/// ```
/// use goro::net::UdpSocket;
///
/// goro::run(|| -> std::io::Result<()> {
///     let a = UdpSocket::bind("127.0.0.1:0")?;
///     let b = UdpSocket::bind("127.0.0.1:0")?;
///     a.send_to(b"hi", b.local_addr()?)?;
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf)?;
///     assert_eq!((&buf[..n], from), (&b"hi"[..], a.local_addr()?));
///     Ok(())
/// })
/// .unwrap();
/// ```
pub struct UdpSocket {
    /// The datagram socket.
    sock: Socket,
}

fn domain_of(addr: &SocketAddr) -> libc::c_int {
    if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    }
}

impl UdpSocket {
    /// A socket bound to `addr`: the first of its addresses that can be
    /// bound (`:port` binds every local address, IPv4 and IPv6).
    ///
    /// # Errors
    /// `InvalidInput` for a bad address; the OS error (`AddrInUse`...) with
    /// the address in its message.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        UdpSocket::bind_addrs(&addr.resolve(None)?, Family::Any, "udp")
    }

    /// Binds the first of `addrs` that can be bound; `network` names the
    /// network in errors.
    pub(crate) fn bind_addrs(
        addrs: &[SocketAddr],
        family: Family,
        network: &str,
    ) -> io::Result<UdpSocket> {
        try_each(addrs, None, |addr, _| {
            UdpSocket::bind_one(addr, family)
                .map_err(|e| op_error(format_args!("listen {network} {addr}"), e))
        })
    }

    fn bind_one(addr: SocketAddr, family: Family) -> io::Result<UdpSocket> {
        let sock = Socket::open(domain_of(&addr), libc::SOCK_DGRAM)?;
        if addr.is_ipv6() {
            let v6only = family.v6_only().into();
            sock.set_option(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, v6only)?;
        }
        sock.bind(&RawAddr::from_ip(&addr))?;
        Ok(UdpSocket { sock })
    }

    /// A socket on an ephemeral port, connected to the first of `addrs`
    /// that works; for `net::dial`.
    pub(crate) fn dial(
        addrs: &[SocketAddr],
        deadline: Option<Instant>,
        network: &str,
    ) -> io::Result<UdpSocket> {
        try_each(addrs, deadline, |addr, deadline| {
            let target = dial_target(addr);
            Socket::open(domain_of(&target), libc::SOCK_DGRAM)
                .and_then(|sock| {
                    sock.connect(&RawAddr::from_ip(&target), deadline)?;
                    Ok(UdpSocket { sock })
                })
                .map_err(|e| op_error(format_args!("dial {network} {addr}"), e))
        })
    }

    /// Connects to `addr` (the first of its addresses that works): `send`
    /// and `recv` then talk to it, datagrams from elsewhere are dropped,
    /// and `send_to` fails. An IPv4-mapped IPv6 address reaches an IPv4
    /// socket, as in `send_to`.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        try_each(&addr.resolve(None)?, None, |addr, _| {
            let target = self.for_family(dial_target(addr));
            self.sock
                .connect(&RawAddr::from_ip(&target), None)
                .map_err(|e| op_error(format_args!("connect udp {addr}"), e))
        })
    }

    /// Sends `buf` as one datagram to `addr` (its first address, as std).
    /// Returns the bytes sent.
    ///
    /// As Go's `WriteTo`: an IPv4-mapped IPv6 address (`[::ffff:a.b.c.d]`)
    /// is sent to its IPv4 address from an IPv4 socket, and a connected
    /// socket refuses a destination (use `send`).
    ///
    /// # Errors
    /// On a connected socket, `InvalidInput` reading `write udp
    /// LOCAL->DEST: use of WriteTo with pre-connected connection`
    /// (`net::is_write_to_connected` tells it apart); std would send to
    /// `addr` instead, bypassing the peer `recv` is bound to. `InvalidInput`
    /// for an address that resolves to nothing; else the OS error.
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let addrs = addr.resolve(None)?;
        let Some(&addr) = addrs.first() else {
            return Err(invalid_input("no address to send to".into()));
        };
        self.refuse_if_connected(&addr)?;
        self.sock
            .send_to(buf, Some(&RawAddr::from_ip(&self.for_family(addr))))
    }

    /// `addr` as this socket's family takes it, as Go's `ipToSockaddr`: an
    /// IPv4-mapped IPv6 address becomes the IPv4 address on an IPv4
    /// socket (the kernel refuses an IPv6 one there). An IPv6 socket takes
    /// IPv4 addresses itself.
    fn for_family(&self, addr: SocketAddr) -> SocketAddr {
        match addr {
            SocketAddr::V6(a) if self.sock.domain() == libc::AF_INET => {
                match a.ip().to_ipv4_mapped() {
                    Some(ip) => SocketAddr::new(ip.into(), a.port()),
                    None => addr,
                }
            }
            _ => addr,
        }
    }

    /// Receives one datagram into `buf` and returns its size and sender. A
    /// datagram larger than `buf` is cut to fit.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, raw) = self.sock.recv_from(buf)?;
        Ok((n, raw.to_ip()?))
    }

    /// As `recv_from`, but leaves the datagram to be received again
    /// (`MSG_PEEK`, std's `peek_from`).
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, raw) = self.sock.peek_from(buf)?;
        Ok((n, raw.to_ip()?))
    }

    /// As `recv`, but leaves the datagram to be received again
    /// (`MSG_PEEK`, std's `peek`).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.peek(buf)
    }

    /// Sends `buf` as one datagram to the connected peer (an empty `buf`
    /// sends an empty datagram).
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.send_to(buf, None)
    }

    /// Receives one datagram from the connected peer. An empty `buf`
    /// returns `Ok(0)` at once.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(buf)
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()?.to_ip()
    }

    super::deadline_methods!();

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.sock
            .set_option(libc::SOL_SOCKET, libc::SO_BROADCAST, on.into())
    }

    /// Whether `SO_BROADCAST` is set.
    pub fn broadcast(&self) -> io::Result<bool> {
        Ok(self.sock.option(libc::SOL_SOCKET, libc::SO_BROADCAST)? != 0)
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_ttl(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.ttl()
    }

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

    /// Sends `buf` as one datagram to `target` without parking (an
    /// IPv4-mapped `target` reaches an IPv4 socket, as with `send_to`).
    ///
    /// # Errors
    /// As `try_send`; on a connected socket, Go's `ErrWriteToConnected`,
    /// as `send_to`.
    pub fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.refuse_if_connected(&target)?;
        self.sock
            .try_send_to(buf, Some(&RawAddr::from_ip(&self.for_family(target))))
    }

    /// Go's `ErrWriteToConnected` for a send to `dest` if the socket is
    /// connected.
    fn refuse_if_connected(&self, dest: &SocketAddr) -> io::Result<()> {
        if !self.sock.is_connected() {
            return Ok(());
        }
        let local = self.local_addr().ok();
        Err(write_to_connected(
            "udp",
            local.as_ref().map(|l| l as &dyn fmt::Display),
            dest,
        ))
    }

    /// Receives one datagram and its sender without parking.
    ///
    /// # Errors
    /// As `try_recv`.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, raw) = self.sock.try_recv_from(buf)?;
        Ok((n, raw.to_ip()?))
    }

    super::shared_methods!(UdpSocket, SocketAddr, to_ip);
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UdpSocket");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        d.field("fd", &self.sock.raw()).finish()
    }
}

super::fd_conversions!(UdpSocket, std::net::UdpSocket, false);
