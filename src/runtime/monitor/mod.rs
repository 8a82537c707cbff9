//! The monitor thread (`sysmon`): held-worker reports (with what the held
//! thread is doing, `os_thread`) and the deadlock report (`deadlock`).

pub(crate) mod deadlock;
pub(crate) mod os_thread;
pub(crate) mod sysmon;
