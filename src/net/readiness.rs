//! `Readiness`: the future of `readable()` and `writable()`.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::sys::socket::Socket;
use crate::runtime::io::netpoll::{Dir, SlotIndex};

/// A wait for a socket to become readable or writable, made by
/// `readable()` or `writable()` on any goro socket type. Resolves to
/// `Ok(())` when the socket may be ready (the next `try_*` call may still
/// find nothing and return `WouldBlock`: wait again then), to the closed
/// error (`is_closed`) once the socket is closed, and to `TimedOut` once
/// the direction's deadline has passed, as the blocking calls do.
///
/// Each future has its own place among the socket's waiters, so any number
/// of tasks may wait at once, each woken. Dropping a pending future takes
/// its waker out: a cancelled wait leaves nothing behind and is never
/// woken.
#[must_use = "futures do nothing unless polled"]
pub struct Readiness<'a> {
    /// The socket waited on.
    sock: &'a Socket,
    /// The direction waited for.
    dir: Dir,
    /// This future's place among the direction's waiters: `Some` from its
    /// first pending poll until its drop, which gives it back.
    slot: SlotIndex,
}

impl<'a> Readiness<'a> {
    pub(crate) fn new(sock: &'a Socket, dir: Dir) -> Readiness<'a> {
        Readiness {
            sock,
            dir,
            slot: None,
        }
    }
}

impl Future for Readiness<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.sock.poll_ready(this.dir, cx, Some(&mut this.slot))
    }
}

impl Drop for Readiness<'_> {
    fn drop(&mut self) {
        self.sock.release_slot(self.dir, self.slot.take());
    }
}

impl fmt::Debug for Readiness<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readiness")
            .field("fd", &self.sock.raw())
            .field("dir", &self.dir)
            .finish()
    }
}
