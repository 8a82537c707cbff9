//! `Listener`: a listener of any stream network (Go's `net.Listener`).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Instant;

use super::addr::Addr;
use super::conn::Conn;
use super::{TcpListener, UnixListener};

/// A listener on whichever network `listen` opened (Go's `net.Listener`).
/// `accept` gives a `Conn` and the peer's `Addr`.
///
/// ```
/// goro::run(|| -> std::io::Result<()> {
///     let ln = goro::net::listen("tcp", "127.0.0.1:0")?;
///     assert_eq!(ln.local_addr()?.network(), "tcp");
///     ln.close()?;
///     assert!(ln.accept().is_err());
///     Ok(())
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener ("tcp", "tcp4", "tcp6").
    Tcp(TcpListener),
    /// A Unix stream listener ("unix").
    Unix(UnixListener),
}

impl Listener {
    /// Waits for a connection (Go's `Accept`); see `TcpListener::accept`.
    pub fn accept(&self) -> io::Result<(Conn, Addr)> {
        Ok(match self {
            Listener::Tcp(l) => {
                let (s, a) = l.accept()?;
                (Conn::Tcp(s), Addr::Tcp(a))
            }
            Listener::Unix(l) => {
                let (s, a) = l.accept()?;
                (Conn::Unix(s), Addr::Unix(a))
            }
        })
    }

    /// Closes the listener (Go's `Close`): blocked and later `accept`s
    /// fail with the closed error.
    pub fn close(&self) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.close(),
            Listener::Unix(l) => l.close(),
        }
    }

    /// The address listened on (Go's `Addr`).
    pub fn local_addr(&self) -> io::Result<Addr> {
        Ok(match self {
            Listener::Tcp(l) => Addr::Tcp(l.local_addr()?),
            Listener::Unix(l) => Addr::Unix(l.local_addr()?),
        })
    }

    /// Sets the deadline for `accept`; `None` clears it.
    pub fn set_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_deadline(deadline),
            Listener::Unix(l) => l.set_deadline(deadline),
        }
    }
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Listener {
        Listener::Tcp(l)
    }
}

impl From<UnixListener> for Listener {
    fn from(l: UnixListener) -> Listener {
        Listener::Unix(l)
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l) => l.as_raw_fd(),
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l) => l.as_fd(),
        }
    }
}
