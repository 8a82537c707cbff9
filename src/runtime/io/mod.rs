//! Waiting on the kernel: a worker's epoll instance (`poller`), the
//! per-descriptor netpoller state (`netpoll`), and the pool of threads that
//! make blocking calls for coroutines (`blocking`).

pub(crate) mod blocking;
pub(crate) mod netpoll;
pub(crate) mod poller;
