//! The monitor thread (`sysmon`): held-worker reports (with what the held
//! thread is doing, `os_thread`, and why, `cause`) and the deadlock report
//! (`deadlock`).

pub(crate) mod cause;
pub(crate) mod deadlock;
pub(crate) mod os_thread;
pub(crate) mod sysmon;
