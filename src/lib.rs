//! goro: Go's goroutines for Rust.
//!
//! Stackful coroutines on an M:N scheduler with work-stealing worker threads,
//! so that code which looks blocking parks only the coroutine, never the
//! thread:
//!
//! ```
//! let answer = goro::run(|| {
//!     let handles: Vec<_> = (0..10u64).map(|i| goro::go!(move || i * i)).collect();
//!     handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
//! });
//! assert_eq!(answer, 285);
//! ```
//!
//! Guarantees and limits:
//! - Scheduling is cooperative: a coroutine runs until it blocks in goro
//!   (a channel, a socket, `sleep`, a lock, `join`), yields or returns.
//!   A blocking system call or a long computation holds its worker: run it
//!   in `goro::blocking`, as `goro::fs` does for file calls; run child
//!   processes with `goro::process`, not `std::process`. The guide
//!   [Calling blocking code](guide#calling-blocking-code) says what to do
//!   with std I/O, database drivers, crates generic over `Read`/`Write`,
//!   and std locks.
//! - Async code runs in a coroutine through `goro::block_on` (bounded by
//!   `block_on_timeout`, `block_on_deadline` or `block_on_context`); with
//!   the `tokio` feature, that includes futures needing tokio's reactor and
//!   timer. Signals arrive on channels through `goro::signal::notify`.
//! - A started coroutine stays on its worker thread for life, so
//!   thread-locals and `!Send` values on its stack are safe; only coroutines
//!   that have not started yet move between workers.
//! - Everything also works from plain threads outside the runtime, where
//!   blocking calls block the thread.
//! - Tests of timeouts run on a virtual clock in `goro::synctest::run`,
//!   instantly and the same way every time.

#![warn(missing_docs)]

mod block_on;
pub mod chan;
pub mod context;
mod coroutine;
mod error;
pub mod fs;
pub mod guide;
#[cfg(feature = "hyper")]
pub mod hyper;
mod join_error;
mod loom;
mod macros;
pub mod net;
pub mod process;
pub mod runtime;
mod scope;
pub mod signal;
pub mod sync;
pub mod synctest;
pub mod time;

pub use block_on::{Elapsed, block_on, block_on_context, block_on_deadline, block_on_timeout};
pub use coroutine::{Builder, Coroutine, CoroutineId, JoinHandle, current, run, spawn, yield_now};
pub use join_error::JoinError;
pub use runtime::io::blocking::blocking;
pub use scope::{Scope, ScopedJoinHandle, scope};
pub use time::sleep;
