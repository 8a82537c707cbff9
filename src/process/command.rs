//! `Command`: std's process builder, spawning children that goro waits for
//! without holding a worker.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};
use std::sync::Arc;

use super::child::Child;
use super::wait::Bound;
use crate::context::Context;
use crate::error::described;

/// A process builder, shaped like `std::process::Command` (and built on
/// it), whose children are goro's [`Child`]: waiting for them and their
/// pipes park only the calling coroutine.
///
/// Children start with the open-files limit this process had before the
/// runtime raised it (see `runtime::restore_fd_limit`), as Go's `os/exec`
/// does.
///
/// ```
/// use goro::process::Command;
///
/// let out = goro::run(|| Command::new("echo").arg("hello").output()).unwrap();
/// assert!(out.status.success());
/// assert_eq!(out.stdout, b"hello\n");
/// ```
pub struct Command {
    /// std's builder, holding everything but the defaults below.
    inner: std::process::Command,
    /// Whether `stdin`, `stdout` and `stderr` were set. The ones not set
    /// are left to each call's default (inherited for `spawn` and
    /// `status`; null, piped and piped for `output`), and are inherited
    /// in `inner` between calls.
    set: [bool; 3],
    /// Whether `inner` has the hook that restores the open-files limit.
    fd_limit_hook: bool,
    /// The program as given, for errors (std's copy of a name with a NUL
    /// byte reads `<string-with-nul>`).
    program: Arc<str>,
}

impl Command {
    /// A command that runs `program` (looked up in `PATH` unless it has a
    /// `/`), with no arguments, this process's environment and directory,
    /// and (for `spawn` and `status`) its standard streams.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        let program = program.as_ref();
        Command {
            inner: std::process::Command::new(program),
            set: [false; 3],
            fd_limit_hook: false,
            program: program.to_string_lossy().into(),
        }
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env(key, val);
        self
    }

    /// Sets environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what `env` adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// Runs the child in `dir`. A relative program path is then looked up
    /// from `dir`, as with std.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// The child's standard input: `Stdio::piped()` gives `Child::stdin`.
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stdin(cfg);
        self.set[0] = true;
        self
    }

    /// The child's standard output: `Stdio::piped()` gives `Child::stdout`.
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stdout(cfg);
        self.set[1] = true;
        self
    }

    /// The child's standard error: `Stdio::piped()` gives `Child::stderr`.
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stderr(cfg);
        self.set[2] = true;
        self
    }

    /// std's builder underneath, to read what is set (`get_program`,
    /// `get_args`, `get_envs`, `get_current_dir`).
    pub fn as_std(&self) -> &std::process::Command {
        &self.inner
    }

    /// Starts the child. Unset standard streams are inherited.
    ///
    /// # Errors
    /// `NotFound` for a program or directory that does not exist,
    /// `PermissionDenied`, `InvalidInput` for an argument or variable
    /// with a NUL byte, and the like, naming the program (and the
    /// directory, if set). Nothing is left open.
    pub fn spawn(&mut self) -> io::Result<Child> {
        self.spawn_with(false)
    }

    /// Runs the child to its end, inheriting unset standard streams, and
    /// returns its exit status; parks the calling coroutine meanwhile.
    ///
    /// # Errors
    /// As `spawn`, or as `Child::wait`.
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }

    /// Runs the child to its end and collects its output: unset streams
    /// are null (stdin) and piped (stdout, stderr). Both outputs are read
    /// at once, so a child writing more than a pipe holds to either never
    /// hangs; parks the calling coroutine meanwhile.
    ///
    /// # Errors
    /// As `spawn`, or as `Child::wait_with_output`.
    pub fn output(&mut self) -> io::Result<Output> {
        self.spawn_with(true)?.wait_with_output()
    }

    /// `output`, bounded by `ctx` (Go's `exec.CommandContext`): once `ctx`
    /// is done, the child is killed and reaped, and the call fails with the
    /// context's error (`TimedOut` past its deadline, `Interrupted` if
    /// cancelled); the output read so far is dropped. This also bounds a
    /// child whose pipes stay open in a grandchild after it exits. With
    /// `ctx` already done, nothing is started.
    ///
    /// ```
    /// use std::time::Duration;
    /// use goro::context::{self, Context};
    /// use goro::process::Command;
    ///
    /// goro::run(|| {
    ///     let (ctx, _cancel) = context::with_timeout(&Context::background(), Duration::from_millis(50));
    ///     let e = Command::new("sleep").arg("10").output_context(&ctx).unwrap_err();
    ///     assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    /// });
    /// ```
    ///
    /// # Errors
    /// As above, or as `output`.
    pub fn output_context(&mut self, ctx: &Context) -> io::Result<Output> {
        if let Some(e) = ctx.err() {
            // Done already: nothing is started (as with Go's `Start`).
            return Err(self.spawn_error(e.into()));
        }
        self.spawn_with(true)?
            .wait_with_output_bounded(Bound::Context(ctx.clone()))
    }

    /// Spawns, with `output`'s defaults for unset streams if `for_output`.
    fn spawn_with(&mut self, for_output: bool) -> io::Result<Child> {
        if !self.fd_limit_hook && crate::runtime::fd_limit_raised() {
            crate::runtime::restore_fd_limit(&mut self.inner);
            self.fd_limit_hook = true;
        }
        if for_output {
            self.apply_defaults(Stdio::null, Stdio::piped);
        }
        // The fork and exec run in the blocking pool: a fork copies the
        // page tables, which for a large process takes milliseconds.
        let mut inner = std::mem::replace(&mut self.inner, std::process::Command::new(""));
        let (inner, spawned) = crate::blocking(move || {
            let spawned = inner.spawn();
            (inner, spawned)
        });
        self.inner = inner;
        if for_output {
            // Back to what `spawn` uses for streams not set.
            self.apply_defaults(Stdio::inherit, Stdio::inherit);
        }
        match spawned {
            Ok(child) => Child::from_std(child, self.program.clone()),
            Err(e) => Err(self.spawn_error(e)),
        }
    }

    /// Sets the streams not set by the caller: stdin to `input()`, the
    /// others to `output()`.
    fn apply_defaults(&mut self, input: fn() -> Stdio, output: fn() -> Stdio) {
        if !self.set[0] {
            self.inner.stdin(input());
        }
        if !self.set[1] {
            self.inner.stdout(output());
        }
        if !self.set[2] {
            self.inner.stderr(output());
        }
    }

    /// std's spawn error, naming the program and the directory.
    fn spawn_error(&self, e: io::Error) -> io::Error {
        let program = &self.program;
        let text = match self.inner.get_current_dir() {
            Some(dir) => format!("cannot run {program:?} in directory {dir:?}: {e}"),
            None => format!("cannot run {program:?}: {e}"),
        };
        described(text, e)
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}
