//! Networks, addresses and name resolution.
//!
//! Addresses are Go's: `host:port`, `[ipv6]:port`, or `:port` (an empty
//! host: every local address when listening, this machine when dialing). A
//! numeric address never leaves the caller; a host name is looked up with
//! the system resolver (`getaddrinfo`, which blocks) on `goro::blocking`'s
//! threads, so only the calling coroutine waits for it.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr as UnixSocketAddr;
use std::time::Instant;

use super::error::{invalid_input, op_error};
use crate::runtime::io::netpoll::timeout_error;

/// The IP versions a network allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    /// "tcp", "udp": either.
    Any,
    /// "tcp4", "udp4".
    V4,
    /// "tcp6", "udp6".
    V6,
}

impl Family {
    fn allows(self, addr: &SocketAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => addr.is_ipv4(),
            Family::V6 => addr.is_ipv6(),
        }
    }

    /// Whether an IPv6 socket of this network refuses IPv4 (`IPV6_V6ONLY`):
    /// only for "tcp6"/"udp6", so that "tcp" on `[::]` is dual-stack, as in
    /// Go.
    pub(crate) fn v6_only(self) -> bool {
        self == Family::V6
    }
}

/// A network name, as `listen` and `dial` take it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Network {
    /// "tcp", "tcp4", "tcp6".
    Tcp(Family),
    /// "udp", "udp4", "udp6".
    Udp(Family),
    /// "unix": a Unix stream socket.
    Unix,
}

impl Network {
    /// Parses "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6" or "unix".
    pub(crate) fn parse(network: &str) -> io::Result<Network> {
        Ok(match network {
            "tcp" => Network::Tcp(Family::Any),
            "tcp4" => Network::Tcp(Family::V4),
            "tcp6" => Network::Tcp(Family::V6),
            "udp" => Network::Udp(Family::Any),
            "udp4" => Network::Udp(Family::V4),
            "udp6" => Network::Udp(Family::V6),
            "unix" => Network::Unix,
            other => {
                return Err(invalid_input(format!(
                    "unknown network {other:?} (expected tcp, tcp4, tcp6, udp, udp4, udp6 or unix)"
                )));
            }
        })
    }
}

/// A socket's address, of whichever network it is on (Go's `net.Addr`).
#[derive(Clone, Debug)]
pub enum Addr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A UDP address.
    Udp(SocketAddr),
    /// A Unix socket address: a path, an abstract name, or unnamed.
    Unix(UnixSocketAddr),
}

impl Addr {
    /// The network's name: "tcp", "udp" or "unix" (Go's `Addr.Network`).
    pub fn network(&self) -> &'static str {
        match self {
            Addr::Tcp(_) => "tcp",
            Addr::Udp(_) => "udp",
            Addr::Unix(_) => "unix",
        }
    }

    /// The IP address and port, for TCP and UDP.
    pub fn as_socket_addr(&self) -> Option<SocketAddr> {
        match self {
            Addr::Tcp(a) | Addr::Udp(a) => Some(*a),
            Addr::Unix(_) => None,
        }
    }

    /// The Unix socket address, for Unix sockets.
    pub fn as_unix(&self) -> Option<&UnixSocketAddr> {
        match self {
            Addr::Unix(a) => Some(a),
            Addr::Tcp(_) | Addr::Udp(_) => None,
        }
    }
}

/// `127.0.0.1:80`, `[::1]:80`, `/path/to/socket`, `@abstract-name`, or
/// `(unnamed)`.
impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp(a) | Addr::Udp(a) => a.fmt(f),
            Addr::Unix(a) => {
                if let Some(path) = a.as_pathname() {
                    path.display().fmt(f)
                } else if let Some(name) = a.as_abstract_name() {
                    write!(f, "@{}", name.escape_ascii())
                } else {
                    f.write_str("(unnamed)")
                }
            }
        }
    }
}

/// Values that name one or more IP socket addresses: goro's version of
/// `std::net::ToSocketAddrs`, implemented for the same types. The
/// difference is that a host name is resolved off the worker threads, so
/// resolving never blocks other coroutines, and that a string may also be
/// Go's `:port`.
///
/// This trait is sealed: it cannot be implemented outside goro.
pub trait ToSocketAddrs: sealed::Resolve {}

pub(crate) mod sealed {
    use std::io;
    use std::net::SocketAddr;
    use std::time::Instant;

    /// The resolution behind `ToSocketAddrs`.
    pub trait Resolve {
        /// Every address this names, in order; resolution, if it takes
        /// place, gives up at `deadline`.
        fn resolve(&self, deadline: Option<Instant>) -> io::Result<Vec<SocketAddr>>;
    }
}

use sealed::Resolve;

macro_rules! numeric_addrs {
    ($($ty:ty => |$v:ident| $to:expr;)*) => {$(
        impl ToSocketAddrs for $ty {}
        impl Resolve for $ty {
            fn resolve(&self, _: Option<Instant>) -> io::Result<Vec<SocketAddr>> {
                let $v = self;
                Ok(vec![$to])
            }
        }
    )*};
}

numeric_addrs! {
    SocketAddr => |a| *a;
    SocketAddrV4 => |a| SocketAddr::V4(*a);
    SocketAddrV6 => |a| SocketAddr::V6(*a);
    (IpAddr, u16) => |a| SocketAddr::new(a.0, a.1);
    (Ipv4Addr, u16) => |a| SocketAddr::new(IpAddr::V4(a.0), a.1);
    (Ipv6Addr, u16) => |a| SocketAddr::new(IpAddr::V6(a.0), a.1);
}

impl ToSocketAddrs for str {}
impl Resolve for str {
    fn resolve(&self, deadline: Option<Instant>) -> io::Result<Vec<SocketAddr>> {
        resolve(self, Family::Any, deadline)
    }
}

impl ToSocketAddrs for String {}
impl Resolve for String {
    fn resolve(&self, deadline: Option<Instant>) -> io::Result<Vec<SocketAddr>> {
        resolve(self, Family::Any, deadline)
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl Resolve for (&str, u16) {
    fn resolve(&self, deadline: Option<Instant>) -> io::Result<Vec<SocketAddr>> {
        resolve_host(self.0, self.1, Family::Any, deadline)
    }
}

impl ToSocketAddrs for (String, u16) {}
impl Resolve for (String, u16) {
    fn resolve(&self, deadline: Option<Instant>) -> io::Result<Vec<SocketAddr>> {
        resolve_host(&self.0, self.1, Family::Any, deadline)
    }
}

impl ToSocketAddrs for [SocketAddr] {}
impl Resolve for [SocketAddr] {
    fn resolve(&self, _: Option<Instant>) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_vec())
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: ToSocketAddrs + ?Sized> Resolve for &T {
    fn resolve(&self, deadline: Option<Instant>) -> io::Result<Vec<SocketAddr>> {
        (**self).resolve(deadline)
    }
}

/// Resolves a Go-style address to the addresses of `family` it names.
pub(crate) fn resolve(
    addr: &str,
    family: Family,
    deadline: Option<Instant>,
) -> io::Result<Vec<SocketAddr>> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return only(family, addr, vec![a]);
    }
    let (host, port) = split_host_port(addr)?;
    resolve_host(host, port, family, deadline)
}

fn resolve_host(
    host: &str,
    port: u16,
    family: Family,
    deadline: Option<Instant>,
) -> io::Result<Vec<SocketAddr>> {
    let shown = || format!("{host}:{port}");
    if host.is_empty() {
        let any6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
        let any4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
        return Ok(match family {
            // The dual-stack wildcard first; IPv4's if IPv6 is missing.
            Family::Any => vec![any6, any4],
            Family::V4 => vec![any4],
            Family::V6 => vec![any6],
        });
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return only(family, &shown(), vec![SocketAddr::new(ip, port)]);
    }
    let found = lookup(host, port, deadline)?;
    only(family, &shown(), found)
}

/// The addresses of `family` among `addrs`; an error if there are none.
fn only(family: Family, shown: &str, mut addrs: Vec<SocketAddr>) -> io::Result<Vec<SocketAddr>> {
    addrs.retain(|a| family.allows(a));
    if addrs.is_empty() {
        let want = match family {
            Family::Any => "an IP",
            Family::V4 => "an IPv4",
            Family::V6 => "an IPv6",
        };
        return Err(invalid_input(format!(
            "address {shown}: no suitable address found (need {want} address)"
        )));
    }
    Ok(addrs)
}

/// Splits `host:port` (`[host]:port` for IPv6; the host may be empty).
fn split_host_port(addr: &str) -> io::Result<(&str, u16)> {
    let bad = |why: &str| invalid_input(format!("address {addr:?}: {why}"));
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("missing ']' in address"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| bad("missing port in address"))?;
        (host, port)
    } else {
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| bad("missing port in address"))?;
        if host.contains(':') {
            return Err(bad("too many colons in address"));
        }
        (host, port)
    };
    if host.contains(['[', ']']) {
        return Err(bad("unexpected bracket in address"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| bad(&format!("invalid port {port:?}")))?;
    Ok((host, port))
}

/// Looks `host` up with the system resolver on `goro::blocking`'s threads.
/// With a deadline, the caller stops waiting at it (the lookup itself
/// cannot be cancelled; its late answer is dropped).
fn lookup(host: &str, port: u16, deadline: Option<Instant>) -> io::Result<Vec<SocketAddr>> {
    let name = host.to_owned();
    let job = move || -> io::Result<Vec<SocketAddr>> {
        std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), port)).map(Iterator::collect)
    };
    let found = match deadline {
        None => crate::blocking(job),
        Some(deadline) => {
            let (tx, rx) = crate::chan::chan(1);
            crate::spawn(move || {
                let _ = tx.send(crate::blocking(job));
            });
            match rx.recv_deadline(deadline) {
                Ok(found) => found,
                Err(crate::chan::RecvTimeoutError::Timeout) => Err(timeout_error()),
                Err(crate::chan::RecvTimeoutError::Closed) => {
                    Err(io::Error::other("the lookup ended without an answer"))
                }
            }
        }
    };
    found.map_err(|e| op_error(format_args!("lookup {host}"), e))
}

/// Where a dial to `addr` goes: an unspecified address (`0.0.0.0`, `::`)
/// means this machine, as in Go, so it becomes the loopback address.
pub(crate) fn dial_target(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// A Unix address as `listen`/`dial` take it: a path, or `@name` for a
/// Linux abstract name (Go's convention).
pub(crate) fn unix_addr(addr: &str) -> io::Result<UnixSocketAddr> {
    match addr.strip_prefix('@') {
        Some(name) => UnixSocketAddr::from_abstract_name(name.as_bytes()),
        None if addr.is_empty() => Err(invalid_input(
            "a Unix socket address needs a path or an @name".into(),
        )),
        None => UnixSocketAddr::from_pathname(addr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_addresses_split() {
        assert_eq!(split_host_port("host:80").unwrap(), ("host", 80));
        assert_eq!(split_host_port("[::1]:80").unwrap(), ("::1", 80));
        assert_eq!(split_host_port(":80").unwrap(), ("", 80));
        for bad in [
            "host",
            "::1:80",
            "[::1]80",
            "[::1:80",
            "host:http",
            "host:70000",
        ] {
            let e = split_host_port(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}");
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn numeric_addresses_resolve_in_place() {
        let v = resolve("127.0.0.1:80", Family::Any, None).unwrap();
        assert_eq!(v, vec!["127.0.0.1:80".parse().unwrap()]);
        let e = resolve("127.0.0.1:80", Family::V6, None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let v = resolve(":7", Family::V4, None).unwrap();
        assert_eq!(v, vec!["0.0.0.0:7".parse().unwrap()]);
    }

    #[test]
    fn unknown_networks_are_named() {
        let e = Network::parse("tcpx").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("unknown network \"tcpx\""), "{e}");
    }

    #[test]
    fn wildcards_dial_the_loopback() {
        assert_eq!(
            dial_target("0.0.0.0:5".parse().unwrap()),
            "127.0.0.1:5".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            dial_target("[::]:5".parse().unwrap()),
            "[::1]:5".parse::<SocketAddr>().unwrap()
        );
    }
}
