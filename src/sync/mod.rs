//! Coroutine-aware synchronization: Go's `sync` package. Every blocking call
//! parks only the calling coroutine (or blocks the calling thread outside
//! the runtime).

mod waitgroup;

pub use waitgroup::WaitGroup;
