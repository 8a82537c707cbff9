//! The system plumbing under every socket type: `NetFd` (one non-blocking
//! fd and its poll descriptor), `Socket` (what std's API adds: timeouts,
//! options, bind, listen, dial) and `RawAddr` (C socket addresses).
//! `process` uses `fd`'s fcntl and result helpers for its pipes and
//! pidfds.

pub(crate) mod fd;
pub(crate) mod sockaddr;
pub(crate) mod socket;
