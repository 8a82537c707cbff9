//! The atomics and locks of the runtime's lock-free protocols: std's in
//! every build, loom's under `--cfg loom`.
//!
//! The protocols everything rests on are written against these names, in
//! small types of their own (`park::state::ParkState`,
//! `park::blocker::BlockerState`, `scheduler::idle::{IdleSet, SleepState}`),
//! so that loom's models (`src/runtime/loom_models.rs`) run the very code
//! the runtime runs and explore every interleaving of it:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test --release --lib loom
//! ```
//!
//! Loom's types cannot be built in a `const` context, so nothing that
//! lives in a `static` uses these.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, fence,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, fence,
};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
