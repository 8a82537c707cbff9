//! `Conn`: a connection of any network (Go's `net.Conn`).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Instant;

use super::addr::Addr;
use super::{TcpStream, UdpSocket, UnixStream};

/// A connection on whichever network `dial` or `Listener::accept` made it
/// (Go's `net.Conn`): `Read`, `Write`, `close`, the two addresses and the
/// deadlines, whatever the network. Match on it for what is particular to
/// one network (`Conn::Tcp(s) => s.set_nodelay(false)`).
///
/// ```
/// use std::io::{Read, Write};
///
/// goro::run(|| -> std::io::Result<()> {
///     let ln = goro::net::listen("tcp", "127.0.0.1:0")?;
///     let addr = ln.local_addr()?.to_string();
///     let mut client = goro::net::dial("tcp", &addr)?;
///     let (mut server, _) = ln.accept()?;
///     client.write_all(b"hello")?;
///     client.close()?;
///     let mut got = String::new();
///     server.read_to_string(&mut got)?;
///     assert_eq!(got, "hello");
///     Ok(())
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub enum Conn {
    /// A TCP connection ("tcp", "tcp4", "tcp6").
    Tcp(TcpStream),
    /// A connected UDP socket ("udp", "udp4", "udp6"): a read receives one
    /// datagram, a write sends one.
    Udp(UdpSocket),
    /// A Unix stream connection ("unix").
    Unix(UnixStream),
}

impl Conn {
    /// Closes the connection (Go's `Close`): blocked and later calls fail
    /// with the closed error. See `TcpStream::close`.
    pub fn close(&self) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.close(),
            Conn::Udp(s) => s.close(),
            Conn::Unix(s) => s.close(),
        }
    }

    /// This end's address (Go's `LocalAddr`).
    pub fn local_addr(&self) -> io::Result<Addr> {
        Ok(match self {
            Conn::Tcp(s) => Addr::Tcp(s.local_addr()?),
            Conn::Udp(s) => Addr::Udp(s.local_addr()?),
            Conn::Unix(s) => Addr::Unix(s.local_addr()?),
        })
    }

    /// The peer's address (Go's `RemoteAddr`).
    pub fn peer_addr(&self) -> io::Result<Addr> {
        Ok(match self {
            Conn::Tcp(s) => Addr::Tcp(s.peer_addr()?),
            Conn::Udp(s) => Addr::Udp(s.peer_addr()?),
            Conn::Unix(s) => Addr::Unix(s.peer_addr()?),
        })
    }

    /// Sets the read and write deadlines (Go's `SetDeadline`).
    pub fn set_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.set_deadline(deadline),
            Conn::Udp(s) => s.set_deadline(deadline),
            Conn::Unix(s) => s.set_deadline(deadline),
        }
    }

    /// Sets the read deadline (Go's `SetReadDeadline`).
    pub fn set_read_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.set_read_deadline(deadline),
            Conn::Udp(s) => s.set_read_deadline(deadline),
            Conn::Unix(s) => s.set_read_deadline(deadline),
        }
    }

    /// Sets the write deadline (Go's `SetWriteDeadline`).
    pub fn set_write_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.set_write_deadline(deadline),
            Conn::Udp(s) => s.set_write_deadline(deadline),
            Conn::Unix(s) => s.set_write_deadline(deadline),
        }
    }

    fn read_shared(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => (&*s).read(buf),
            Conn::Udp(s) => s.recv(buf),
            Conn::Unix(s) => (&*s).read(buf),
        }
    }

    fn write_shared(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => (&*s).write(buf),
            Conn::Udp(s) => s.send(buf),
            Conn::Unix(s) => (&*s).write(buf),
        }
    }

    fn write_all_shared(&self, buf: &[u8]) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => (&*s).write_all(buf),
            Conn::Udp(s) => {
                let n = s.send(buf)?;
                if n == buf.len() {
                    Ok(())
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("sent {n} bytes of a {}-byte datagram", buf.len()),
                    ))
                }
            }
            Conn::Unix(s) => (&*s).write_all(buf),
        }
    }
}

impl Read for &Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_shared(buf)
    }
}

impl Write for &Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_shared(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_all_shared(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl From<TcpStream> for Conn {
    fn from(s: TcpStream) -> Conn {
        Conn::Tcp(s)
    }
}

impl From<UdpSocket> for Conn {
    fn from(s: UdpSocket) -> Conn {
        Conn::Udp(s)
    }
}

impl From<UnixStream> for Conn {
    fn from(s: UnixStream) -> Conn {
        Conn::Unix(s)
    }
}

impl AsRawFd for Conn {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Conn::Tcp(s) => s.as_raw_fd(),
            Conn::Udp(s) => s.as_raw_fd(),
            Conn::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Conn::Tcp(s) => s.as_fd(),
            Conn::Udp(s) => s.as_fd(),
            Conn::Unix(s) => s.as_fd(),
        }
    }
}
super::io_via_ref!(Conn);
