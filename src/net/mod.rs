//! Networking: Go's `net` package, with sockets whose blocking-looking calls
//! park only the calling coroutine.

mod fd;
