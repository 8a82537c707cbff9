//! Seeing inside: dumps of every coroutine (`dump`, with stacks taken by
//! `traceback` and symbolized by `callstack`), counters (`stats`), and the
//! reports of panics (`panic_hook`) and stack overflows (`overflow`), and
//! execution traces (`trace`).

pub(crate) mod callstack;
pub(crate) mod dump;
pub(crate) mod overflow;
pub(crate) mod panic_hook;
pub(crate) mod stats;
pub mod trace;
pub(crate) mod traceback;
