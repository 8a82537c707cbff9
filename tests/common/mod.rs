//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::process::{Command, Output};

/// The scenario this process runs as a child, if it is one.
pub fn child_scenario() -> Option<String> {
    std::env::var("GORO_TEST_CHILD").ok()
}

/// Runs test `test` of this test binary in a child process with `envs`,
/// marked as scenario `test`, and returns its output. Scenarios that change
/// process-wide state (the worker count, signal dispositions) or that must
/// crash run this way.
pub fn run_child(test: &str, envs: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("GORO_TEST_CHILD", test)
        .env_remove("GORO_WORKERS")
        .env("RUST_BACKTRACE", "0")
        .envs(envs.iter().copied())
        .output()
        .expect("the child test process runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The kernel's id of the calling thread: a system call, so never a value
/// the compiler cached from before a coroutine switch.
pub fn gettid() -> i64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) }
}
