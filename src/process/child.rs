//! `Child`: a running (or exited, not yet waited for) child process.

use std::fmt;
use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pipe::{ChildStderr, ChildStdin, ChildStdout};
use super::poll_fd::PollFd;
use super::wait::{Armed, Bound, Process};
use crate::context::Context;
use crate::error::described;

/// A child process started by [`Command::spawn`](super::Command::spawn),
/// like std's `Child`, except that waiting and its pipes park only the
/// calling coroutine, and that it is always reaped: a `Child` dropped
/// without a wait leaves no zombie (a reaper coroutine waits for it). The
/// child itself keeps running when its `Child` is dropped, as with std.
///
/// ```
/// use std::io::{Read, Write};
/// use goro::process::{Command, Stdio};
///
/// let text = goro::run(|| -> std::io::Result<String> {
///     let mut child = Command::new("tr")
///         .args(["a-z", "A-Z"])
///         .stdin(Stdio::piped())
///         .stdout(Stdio::piped())
///         .spawn()?;
///     child.stdin.take().unwrap().write_all(b"shout")?; // dropped: closed
///     let mut text = String::new();
///     child.stdout.take().unwrap().read_to_string(&mut text)?;
///     assert!(child.wait()?.success());
///     Ok(text)
/// });
/// assert_eq!(text.unwrap(), "SHOUT");
/// ```
pub struct Child {
    /// The child's standard input, if it was `Stdio::piped()`.
    pub stdin: Option<ChildStdin>,
    /// The child's standard output, if it was `Stdio::piped()`.
    pub stdout: Option<ChildStdout>,
    /// The child's standard error, if it was `Stdio::piped()`.
    pub stderr: Option<ChildStderr>,
    /// The process, reaped by a wait or when dropped.
    process: Process,
    /// The program, for errors.
    program: Arc<str>,
}

impl Child {
    /// Takes a child std just spawned: its pipes become goro's.
    pub(crate) fn from_std(mut child: std::process::Child, program: Arc<str>) -> io::Result<Child> {
        // From here on the child is reaped whatever happens.
        let mut process = Process::new(child.id());
        let pipes = (|| {
            Ok::<_, io::Error>((
                child.stdin.take().map(ChildStdin::from_std).transpose()?,
                child.stdout.take().map(ChildStdout::from_std).transpose()?,
                child.stderr.take().map(ChildStderr::from_std).transpose()?,
            ))
        })();
        match pipes {
            Ok((stdin, stdout, stderr)) => Ok(Child {
                stdin,
                stdout,
                stderr,
                process,
                program,
            }),
            Err(e) => {
                // Its pipes are gone; do not leave it running without them.
                let _ = process.kill();
                Err(described(
                    format!("cannot set up the pipes of `{program}`: {e}"),
                    e,
                ))
            }
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.process.id()
    }

    /// Kills the child (`SIGKILL`). Does nothing if it was already waited
    /// for; it still needs a wait (or a drop) to be reaped.
    ///
    /// # Errors
    /// The error of `kill(2)`.
    pub fn kill(&mut self) -> io::Result<()> {
        self.process
            .kill()
            .map_err(|e| self.described(format!("cannot kill {}", self.name()), e))
    }

    /// The child's exit status if it has exited (reaping it), else `None`;
    /// never waits.
    ///
    /// # Errors
    /// The error of `waitpid(2)` (`ECHILD` if something else reaped it).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.process
            .try_wait()
            .map_err(|e| self.described(format!("cannot wait for {}", self.name()), e))
    }

    /// Closes the child's stdin, if piped (so that a child reading it is
    /// not left waiting), and waits for it to exit, parking the calling
    /// coroutine (a plain thread blocks).
    ///
    /// # Errors
    /// As `try_wait`.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        self.wait_bounded(Bound::Never)
    }

    /// `wait` for at most `timeout`: a child still running then is killed
    /// and reaped, and the wait fails with `TimedOut` (its status stays
    /// available from `try_wait`). A child that exits in time is not
    /// touched.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// goro::run(|| {
    ///     let mut child = goro::process::Command::new("sleep").arg("10").spawn().unwrap();
    ///     let e = child.wait_timeout(Duration::from_millis(50)).unwrap_err();
    ///     assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    ///     assert!(child.try_wait().unwrap().is_some(), "killed and reaped");
    /// });
    /// ```
    ///
    /// # Errors
    /// `TimedOut` as above, or as `try_wait`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<ExitStatus> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_deadline(deadline),
            None => self.wait(),
        }
    }

    /// `wait` until `deadline` at the latest: a child still running then
    /// is killed and reaped, and the wait fails with `TimedOut`.
    ///
    /// # Errors
    /// As `wait_timeout`.
    pub fn wait_deadline(&mut self, deadline: Instant) -> io::Result<ExitStatus> {
        self.wait_bounded(Bound::Deadline(deadline))
    }

    /// `wait` until `ctx` is done at the latest (as Go's
    /// `exec.CommandContext`): a child still running then is killed and
    /// reaped, and the wait fails with the context's error (`Interrupted`
    /// if cancelled, `TimedOut` past its deadline).
    ///
    /// # Errors
    /// As above, or as `try_wait`.
    pub fn wait_context(&mut self, ctx: &Context) -> io::Result<ExitStatus> {
        self.wait_bounded(Bound::Context(ctx.clone()))
    }

    /// Closes stdin, reads all of stdout and stderr (those that are piped,
    /// at once, so that a child filling one pipe while the other is read
    /// does not hang), then waits for the child.
    ///
    /// # Errors
    /// A read error, or as `wait`.
    pub fn wait_with_output(self) -> io::Result<Output> {
        self.wait_with_output_bounded(Bound::Never)
    }

    fn wait_bounded(&mut self, bound: Bound) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        match self.process.wait(&bound) {
            Ok(Some(status)) => Ok(status),
            Ok(None) => self.kill_for(&bound),
            Err(e) => Err(self.described(format!("cannot wait for {}", self.name()), e)),
        }
    }

    /// The bound was reached: kills and reaps the child and returns the
    /// bound's error, or its status if it exited on its own meanwhile.
    fn kill_for(&mut self, bound: &Bound) -> io::Result<ExitStatus> {
        let status = self.kill_and_reap()?;
        if status.signal() == Some(libc::SIGKILL) {
            return Err(self.bound_error(bound));
        }
        Ok(status)
    }

    /// Kills the child and waits until it is reaped.
    fn kill_and_reap(&mut self) -> io::Result<ExitStatus> {
        self.kill()?;
        self.process
            .wait_exit()
            .map_err(|e| self.described(format!("cannot wait for {}", self.name()), e))
    }

    /// The error of a wait that gave up at `bound`, having killed the
    /// child.
    fn bound_error(&self, bound: &Bound) -> io::Error {
        let why = bound
            .reached()
            .unwrap_or_else(crate::runtime::io::netpoll::timeout_error);
        self.described(format!("{} killed", self.name()), why)
    }

    pub(crate) fn wait_with_output_bounded(mut self, bound: Bound) -> io::Result<Output> {
        drop(self.stdin.take());
        // Shared with `Armed`, which moves their deadlines.
        let stdout = self.stdout.take().map(|p| Arc::new(p.fd));
        let stderr = self.stderr.take().map(|p| Arc::new(p.fd));
        let armed = Armed::new(&bound, stdout.iter().chain(&stderr).cloned().collect());
        let deadline = bound.deadline();
        let (out, err) = match (stdout, stderr) {
            (Some(out), Some(err)) => {
                // One more coroutine reads stderr meanwhile.
                let bound2 = bound.clone();
                let reader = crate::spawn(move || read_all(&err, deadline, &bound2));
                let out = read_all(&out, deadline, &bound);
                let err = reader.join().unwrap_or_else(|e| e.resume());
                (out, err)
            }
            (out, err) => (
                out.map_or(Ok(Some(Vec::new())), |fd| read_all(&fd, deadline, &bound)),
                err.map_or(Ok(Some(Vec::new())), |fd| read_all(&fd, deadline, &bound)),
            ),
        };
        drop(armed);
        let read_error =
            |e: io::Error| self.described(format!("cannot read the output of {}", self.name()), e);
        let (stdout, stderr) = match (out, err) {
            (Err(e), _) | (_, Err(e)) => return Err(read_error(e)),
            (Ok(Some(out)), Ok(Some(err))) => (out, err),
            // Cut short by the bound: what was read is incomplete.
            _ => {
                self.kill_and_reap()?;
                return Err(self.bound_error(&bound));
            }
        };
        let status = self.wait_bounded(bound)?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// `process "prog" (pid N)`.
    fn name(&self) -> String {
        format!("process {:?} (pid {})", self.program, self.id())
    }

    fn described(&self, text: String, e: io::Error) -> io::Error {
        described(format!("{text}: {e}"), e)
    }
}

/// Reads `fd` to its end: the bytes, or `None` if `bound` was reached
/// first.
fn read_all(
    fd: &PollFd,
    deadline: Option<std::time::Instant>,
    bound: &Bound,
) -> io::Result<Option<Vec<u8>>> {
    struct Reader<'a>(&'a PollFd);
    impl Read for Reader<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }
    let mut buf = Vec::new();
    loop {
        match Reader(fd).read_to_end(&mut buf) {
            Ok(_) => return Ok(Some(buf)),
            Err(e) if crate::runtime::io::netpoll::is_timeout(&e) => {
                fd.set_deadline(crate::runtime::io::netpoll::Dir::Read, deadline);
                if bound.reached().is_some() {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.id())
            .field("program", &self.program)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish_non_exhaustive()
    }
}
