//! `ChildStdin`, `ChildStdout` and `ChildStderr`: the parent's ends of a
//! child's piped standard streams, non-blocking and polled by the
//! netpoller, so that reading or writing parks only the calling coroutine
//! (a plain thread blocks, as everywhere in goro).

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::Stdio;

use super::poll_fd::PollFd;

macro_rules! pipe_type {
    ($(#[$doc:meta])* $name:ident, $std:ty) => {
        $(#[$doc])*
        pub struct $name {
            /// The pipe end.
            pub(crate) fd: PollFd,
        }

        impl $name {
            /// Takes std's pipe end (blocking) and makes it goro's.
            pub(crate) fn from_std(pipe: $std) -> io::Result<$name> {
                Ok($name {
                    fd: PollFd::new(OwnedFd::from(pipe))?,
                })
            }

            /// The fd, blocking again.
            fn into_owned(self) -> OwnedFd {
                self.fd.into_owned()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("fd", &self.fd.raw()).finish()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.raw()
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                // SAFETY: a `PollFd`'s fd stays open until it is dropped,
                // which cannot happen while `self` is borrowed.
                unsafe { BorrowedFd::borrow_raw(self.fd.raw()) }
            }
        }

        /// Hands the pipe end to another child (a shell pipeline), in
        /// blocking mode as a new process expects.
        impl From<$name> for Stdio {
            fn from(pipe: $name) -> Stdio {
                Stdio::from(pipe.into_owned())
            }
        }

        /// The fd, in blocking mode again.
        impl From<$name> for OwnedFd {
            fn from(pipe: $name) -> OwnedFd {
                pipe.into_owned()
            }
        }
    };
}

pipe_type!(
    /// The write end of a child's standard input (`Child::stdin`). Writes
    /// park while the pipe is full; dropping it closes the pipe, so the
    /// child reads end of file. Like std's, a write after the child closed
    /// its end fails with `BrokenPipe` (std's runtime ignores `SIGPIPE`).
    ChildStdin,
    std::process::ChildStdin
);

pipe_type!(
    /// The read end of a child's standard output (`Child::stdout`). Reads
    /// park until the child writes or closes its end (end of file).
    ChildStdout,
    std::process::ChildStdout
);

pipe_type!(
    /// The read end of a child's standard error (`Child::stderr`). Reads
    /// park until the child writes or closes its end (end of file).
    ChildStderr,
    std::process::ChildStderr
);

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.fd.write(buf)
    }

    /// Nothing to flush: writes go straight to the pipe.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for ChildStdout {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read(buf)
    }
}

impl Read for ChildStderr {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read(buf)
    }
}
