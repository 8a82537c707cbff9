//! With the `tokio-io` feature: tokio's `AsyncRead` and `AsyncWrite` on
//! goro's stream sockets, on goro's own netpoller.
//!
//! Each poll asks the socket's poll descriptor for readiness first
//! (`Socket::poll_io`): a side known ready makes the system call at once,
//! and a side not ready registers the task's waker, so a waiting socket
//! costs no thread: the worker whose poller has the fd wakes the task. Crates generic over
//! these traits (hyper through `hyper_util::rt::TokioIo`, tokio-postgres's
//! `connect_raw`, tokio-rustls) then run on goro sockets inside
//! `goro::block_on`, with no tokio runtime.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::sys::socket::Socket;
use super::{TcpStream, UnixStream};
use crate::runtime::io::netpoll::Dir;

/// `poll_read` on `sock`: read what is there, else wait for readiness.
/// Readiness is asked first: after a short read (the socket drained) or a
/// `WouldBlock`, the task waits for the next event without the system
/// call that would only say `EAGAIN`.
fn poll_read(sock: &Socket, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
    if buf.remaining() == 0 {
        return Poll::Ready(Ok(()));
    }
    let n = ready!(sock.poll_io(Dir::Read, cx, || {
        // SAFETY: the socket writes only initialized bytes into the
        // unfilled part, and we mark initialized only what it wrote.
        let unfilled = unsafe { buf.unfilled_mut() };
        sock.try_read_uninit(unfilled)
    }))?;
    // SAFETY: `try_read_uninit` initialized the first `n` bytes of the
    // unfilled part.
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    Poll::Ready(Ok(()))
}

/// `poll_write` on `sock`: write what fits, else wait for readiness (asked
/// first, as in `poll_read`).
fn poll_write(sock: &Socket, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
    sock.poll_io(Dir::Write, cx, || sock.try_write(buf))
}

/// `poll_shutdown` on `sock`: `shutdown(Write)`. A peer already gone
/// (`ENOTCONN`) is no error: the stream is shut down either way.
fn poll_shutdown(sock: &Socket) -> Poll<io::Result<()>> {
    Poll::Ready(match sock.shutdown(std::net::Shutdown::Write) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(()),
        r => r,
    })
}

macro_rules! tokio_io {
    ($ty:ty) => {
        tokio_io!(@impl $ty);
        tokio_io!(@impl &$ty);
    };
    (@impl $ty:ty) => {
        /// Reads on goro's netpoller: the task's waker waits for the
        /// socket's readiness; the read deadline and `close` end the wait
        /// with the blocking `read`'s errors.
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                poll_read(&self.sock, cx, buf)
            }
        }

        /// Writes on goro's netpoller, as `AsyncRead`. Flushing does
        /// nothing (writes are not buffered); shutting down is
        /// `shutdown(Write)`, which tells the peer end of file.
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                poll_write(&self.sock, cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                poll_shutdown(&self.sock)
            }
        }
    };
}

// For the socket and, as std's `Read` and `Write`, for a shared reference
// to it: one task may read while another writes (one reader and one writer
// at a time make sense; each direction keeps one waker for
// `poll_read_ready`'s sake).
tokio_io!(TcpStream);
tokio_io!(UnixStream);
