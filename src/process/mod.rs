//! Child processes (Go's `os/exec`): std's `Command` and `Child`, with
//! waits and pipes that park only the calling coroutine.
//!
//! ```
//! use std::time::Duration;
//! use goro::process::Command;
//!
//! goro::run(|| {
//!     // A hundred children at once cost a hundred parked coroutines, no
//!     // thread each.
//!     let runs: Vec<_> = (0..100)
//!         .map(|i| goro::go!(move || Command::new("echo").arg(i.to_string()).output()))
//!         .collect();
//!     for (i, run) in runs.into_iter().enumerate() {
//!         assert_eq!(run.join().unwrap().unwrap().stdout, format!("{i}\n").as_bytes());
//!     }
//!     // A child that outlives its bound is killed, as with
//!     // `exec.CommandContext`.
//!     let mut child = Command::new("sleep").arg("10").spawn().unwrap();
//!     assert!(child.wait_timeout(Duration::from_millis(10)).is_err());
//! });
//! ```
//!
//! - Children start through `std::process::Command`, then goro takes over
//!   the parent's pipe ends (made non-blocking and polled by the
//!   netpoller) and watches the child through a pidfd in the netpoller
//!   too, so waiting costs no thread. On kernels without pidfds (before
//!   Linux 5.3) a wait runs in `goro::blocking`.
//! - A `Child` is always reaped: dropped without a wait, it is reaped by a
//!   reaper coroutine once it exits, so no zombie is left. (std's `Child`
//!   leaves that to the caller.)
//! - Children get the open-files limit this process started with, not the
//!   one the runtime raised it to.
//! - `Child::wait_timeout`, `wait_deadline`, `wait_context` and
//!   `Command::output_context` kill a child that outlives their bound.
//! - Like std, this assumes that only goro reaps these children: a
//!   `waitpid(-1)` elsewhere, or `SIGCHLD` ignored, makes waits fail with
//!   `ECHILD`.

mod child;
mod command;
mod pipe;
mod poll_fd;
mod wait;

pub use child::Child;
pub use command::Command;
pub use pipe::{ChildStderr, ChildStdin, ChildStdout};
pub use std::process::{ExitStatus, Output, Stdio};
