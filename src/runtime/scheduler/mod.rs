//! Scheduling: the worker threads, their run queues, stealing and hand-off
//! (`worker`), which workers sleep and waking one (`idle`), and the
//! runtime's own threads (`thread`).

pub(crate) mod idle;
pub(crate) mod prefetch;
pub(crate) mod thread;
pub(crate) mod worker;
