//! `goro::process`: children whose waits and pipes park only the calling
//! coroutine, always reaped, killed when a bounded wait gives up.

mod common;
use common::{child_scenario, open_fds, run_child, stderr, stdout, within};
use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use goro::context::{self, Context};
use goro::process::{Command, Stdio};

/// Whether `pid` is no longer a child of ours waiting to be reaped: not
/// in /proc, or there as someone else's process (its number reused).
fn is_reaped(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // The fields after the command (which may hold spaces): state, ppid.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let mut fields = rest.split_whitespace();
    let _state = fields.next();
    let ppid: u32 = fields.next().unwrap().parse().unwrap();
    ppid != std::process::id()
}

/// Waits (a plain thread sleeping) until `pid` is reaped; false if it is
/// still ours after 10 s.
fn reaped_soon(pid: u32) -> bool {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if is_reaped(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// `waitpid(pid, WNOHANG)` fails with `ECHILD`: goro reaped it already.
/// (Were it not reaped, this would reap it and the check would fail.)
fn was_reaped(pid: u32) -> bool {
    let mut status = 0;
    // SAFETY: `status` is a valid int to write.
    let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
    r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD)
}

#[test]
fn output_and_status() {
    within(|| {
        let out = Command::new("sh")
            .args(["-c", "echo out; echo err >&2; exit 3"])
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
        assert!(Command::new("true").status().unwrap().success());
        assert_eq!(Command::new("false").status().unwrap().code(), Some(1));
        // `output`'s stdin is null: `cat` reads end of file at once.
        let out = Command::new("cat").output().unwrap();
        assert!(out.status.success() && out.stdout.is_empty());
    });
}

#[test]
fn environment_and_directory() {
    within(|| {
        let dir = std::env::temp_dir();
        let out = Command::new("sh")
            .args(["-c", "echo \"$A $B\"; pwd"])
            .env_clear()
            .env("A", "a")
            .envs([("B", "b"), ("C", "c")])
            .env_remove("C")
            .current_dir(&dir)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let canon = dir.canonicalize().unwrap();
        assert_eq!(text, format!("a b\n{}\n", canon.display()));
        // `output`'s defaults do not stick: `spawn` inherits again.
        let mut cmd = Command::new("true");
        cmd.output().unwrap();
        let child = cmd.spawn().unwrap();
        assert!(child.stdout.is_none() && child.stderr.is_none() && child.stdin.is_none());
    });
}

/// Data piped in comes back through `cat`; the writer and the reader are
/// two coroutines, so neither pipe's buffer limits the size.
#[test]
fn stdin_piped_in_and_stdout_read_back() {
    within(|| {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut stdin = child.stdin.take().unwrap();
        let sent = data.clone();
        let writer = goro::spawn(move || stdin.write_all(&sent));
        let mut back = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut back).unwrap();
        writer.join().unwrap().unwrap();
        assert!(back == data, "{} bytes back of {}", back.len(), data.len());
        assert!(child.wait().unwrap().success());
    });
}

/// One child's output piped into another's input.
#[test]
fn a_pipe_end_becomes_another_childs_stdin() {
    within(|| {
        let mut echo = Command::new("echo")
            .arg("shout")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Command::new("tr")
            .args(["a-z", "A-Z"])
            .stdin(echo.stdout.take().unwrap())
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"SHOUT\n");
        assert!(echo.wait().unwrap().success());
    });
}

#[test]
fn a_child_killed_by_a_signal() {
    within(|| {
        let status = Command::new("sh")
            .args(["-c", "kill -TERM $$"])
            .status()
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        assert_eq!(status.code(), None);

        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        assert_eq!(child.try_wait().unwrap(), None);
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // Killing or waiting again changes nothing.
        child.kill().unwrap();
        assert_eq!(child.wait().unwrap(), status);
        assert_eq!(child.try_wait().unwrap(), Some(status));
        assert!(was_reaped(child.id()));
    });
}

/// A child that closes stdout long before it exits: the reader sees end of
/// file, then the wait gets the status. One that stops reading stdin: the
/// writer gets `BrokenPipe`, not a hang.
#[test]
fn a_child_closing_its_pipes_early() {
    within(|| {
        let mut child = Command::new("sh")
            .args(["-c", "echo early; exec >&-; read line; echo \"$line\" >&2"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = String::new();
        // End of file while the child still runs (it waits for a line).
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "early\n");
        assert_eq!(child.try_wait().unwrap(), None, "still reading stdin");
        child.stdin.as_mut().unwrap().write_all(b"late\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.stderr, b"late\n");
        assert!(out.status.success());

        let mut child = Command::new("head")
            .args(["-c", "5"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let big = vec![b'x'; 4 << 20];
        let e = child.stdin.as_mut().unwrap().write_all(&big).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
        assert!(child.wait().unwrap().success());
    });
}

/// 3 MiB to stderr, then 3 MiB to stdout: reading stdout alone first would
/// leave the child stuck on a full stderr pipe.
#[test]
fn output_larger_than_any_pipe_buffer() {
    within(|| {
        let out = Command::new("sh")
            .args([
                "-c",
                "head -c 3145728 /dev/zero >&2; head -c 3145728 /dev/zero | tr '\\0' a",
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stderr.len(), 3 << 20);
        assert_eq!(out.stdout.len(), 3 << 20);
        assert!(out.stdout.iter().all(|&b| b == b'a'));
        assert!(out.stderr.iter().all(|&b| b == 0));
    });
}

/// The target: 100 children that each sleep 0.3 s, run at once from
/// coroutines on one worker. Every output arrives, the worker is never held
/// (no report), and every child is reaped.
#[test]
fn a_hundred_children_at_once_on_one_worker() {
    if child_scenario().is_some() {
        goro::runtime::Builder::new().workers(1).start().unwrap();
        let started = Instant::now();
        let pids = goro::run(|| {
            let runs: Vec<_> = (0..100)
                .map(|_| {
                    goro::spawn(|| {
                        let child = Command::new("sh")
                            .args(["-c", "sleep 0.3; echo hi"])
                            .stdout(Stdio::piped())
                            .spawn()
                            .unwrap();
                        let pid = child.id();
                        let out = child.wait_with_output().unwrap();
                        assert!(out.status.success());
                        assert_eq!(out.stdout, b"hi\n");
                        pid
                    })
                })
                .collect();
            runs.into_iter()
                .map(|r| r.join().unwrap())
                .collect::<Vec<_>>()
        });
        println!("took={:?}", started.elapsed());
        assert_eq!(pids.len(), 100);
        for pid in pids {
            assert!(was_reaped(pid), "child {pid} left unreaped");
        }
        println!("all reaped");
        return;
    }
    let out = run_child("a_hundred_children_at_once_on_one_worker", &[]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("all reaped"), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(!err.contains("has held worker"), "{err}");
    assert!(!err.contains("was held for"), "{err}");
}

/// A `Child` dropped without a wait is reaped: at once if it has exited,
/// when it exits otherwise, from a coroutine or a plain thread.
#[test]
fn a_dropped_child_is_reaped() {
    let running = within(|| {
        let child = Command::new("sleep").arg("0.2").spawn().unwrap();
        child.id()
    });
    let exited = within(|| {
        let child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Let it exit (a zombie now) before the drop.
        goro::sleep(Duration::from_millis(50));
        pid
    });
    let from_thread = {
        let child = Command::new("sleep").arg("0.1").spawn().unwrap();
        child.id()
    };
    for pid in [running, exited, from_thread] {
        assert!(reaped_soon(pid), "child {pid} left a zombie");
    }
}

/// Bounded waits kill a child that outlives the bound, reap it, and fail
/// with the bound's error; a child that exits in time is untouched.
#[test]
fn a_timeout_kills_the_child() {
    within(|| {
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        let e = child.wait_timeout(Duration::from_millis(50)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(e.to_string().contains("\"sleep\""), "{e}");
        assert!(e.to_string().contains("killed"), "{e}");
        let status = child.try_wait().unwrap().expect("reaped");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(was_reaped(child.id()));

        let mut child = Command::new("true").spawn().unwrap();
        let status = child.wait_timeout(Duration::from_secs(10)).unwrap();
        assert!(status.success());

        // A cancelled context: `Interrupted`.
        let (ctx, cancel) = context::with_cancel(&Context::background());
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        goro::go!(move || {
            goro::sleep(Duration::from_millis(20));
            cancel.cancel();
        });
        let e = child.wait_context(&ctx).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Interrupted, "{e}");
        assert_eq!(
            child.try_wait().unwrap().unwrap().signal(),
            Some(libc::SIGKILL)
        );

        // A context's deadline bounds `output` too, even while a grandchild
        // keeps the pipes open after the child itself exited.
        let (ctx, _cancel) =
            context::with_timeout(&Context::background(), Duration::from_millis(100));
        let e = Command::new("sh")
            .args(["-c", "sleep 2 & echo started"])
            .output_context(&ctx)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        let (ctx, _cancel) =
            context::with_timeout(&Context::background(), Duration::from_millis(50));
        let e = Command::new("sleep")
            .arg("10")
            .output_context(&ctx)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");

        // A context done before the call starts nothing.
        let (ctx, cancel) = context::with_cancel(&Context::background());
        cancel.cancel();
        let marker = std::env::temp_dir().join(format!("goro-process-{}", std::process::id()));
        let e = Command::new("touch")
            .arg(&marker)
            .output_context(&ctx)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Interrupted, "{e}");
        assert!(e.to_string().contains("\"touch\""), "{e}");
        assert!(!marker.exists(), "the child ran");

        // A context with time to spare changes nothing.
        let (ctx, _cancel) = context::with_timeout(&Context::background(), Duration::from_secs(10));
        let out = Command::new("echo")
            .arg("in time")
            .output_context(&ctx)
            .unwrap();
        assert_eq!(out.stdout, b"in time\n");
        // Its wake, if it ever came, would not disturb a later wait.
        let mut child = Command::new("sleep").arg("0.05").spawn().unwrap();
        assert!(child.wait_context(&ctx).unwrap().success());
        assert!(child.wait().unwrap().success());
    });
}

/// Everything works from a plain thread outside the runtime, blocking it.
#[test]
fn from_a_plain_thread() {
    let out = Command::new("sh")
        .args(["-c", "echo out; echo err >&2"])
        .output()
        .unwrap();
    assert_eq!(
        (&out.stdout[..], &out.stderr[..]),
        (&b"out\n"[..], &b"err\n"[..])
    );
    let mut child = Command::new("sleep").arg("10").spawn().unwrap();
    let e = child.wait_timeout(Duration::from_millis(20)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(was_reaped(child.id()));
}

#[test]
fn bad_input_is_a_clear_error() {
    within(|| {
        let e = Command::new("goro-no-such-program").spawn().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains("goro-no-such-program"), "{e}");

        let e = Command::new("true")
            .current_dir("/goro-no-such-dir")
            .output()
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains("\"true\""), "{e}");
        assert!(e.to_string().contains("/goro-no-such-dir"), "{e}");

        let e = Command::new("tr\0ue").status().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("tr\\0ue"), "{e}");
        let e = Command::new("echo").arg("a\0b").output().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("\"echo\""), "{e}");
    });
}

/// Failed spawns, finished children and dropped ones leave no fd open. In
/// a child process, where no other test opens fds meanwhile.
#[test]
fn no_fd_is_leaked() {
    if child_scenario().is_some() {
        let leaked = goro::run(|| {
            let round = || {
                let _ = Command::new("goro-no-such-program").output();
                let _ = Command::new("true")
                    .current_dir("/goro-no-such-dir")
                    .output();
                let _ = Command::new("tr\0ue").output();
                Command::new("echo").arg("x").output().unwrap();
                let mut child = Command::new("sleep")
                    .arg("10")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let _ = child.wait_timeout(Duration::from_millis(1));
                drop(child);
                let child = Command::new("true").stdout(Stdio::piped()).spawn().unwrap();
                let pid = child.id();
                drop(child);
                pid
            };
            // The first round opens the runtime's own fds.
            let first = round();
            while !is_reaped(first) {
                goro::sleep(Duration::from_millis(5));
            }
            let before = open_fds();
            let mut pids = Vec::new();
            for _ in 0..20 {
                pids.push(round());
            }
            for pid in pids {
                while !is_reaped(pid) {
                    goro::sleep(Duration::from_millis(5));
                }
            }
            // A reaper closes its child's pidfd just after reaping it.
            let end = Instant::now() + Duration::from_secs(5);
            while open_fds() > before && Instant::now() < end {
                goro::sleep(Duration::from_millis(5));
            }
            open_fds() as isize - before as isize
        });
        // At most the first round's reaper may still have held its
        // child's pidfd at the count before; a leak per round shows 20.
        assert!(leaked <= 0, "{leaked} fds leaked in 20 rounds");
        println!("no leak");
        return;
    }
    let out = run_child("no_fd_is_leaked", &[]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("no leak"), "{}", stdout(&out));
}

/// Children get the open-files limit the process started with, not the one
/// the runtime raised it to.
#[test]
fn children_get_the_original_fd_limit() {
    if child_scenario().is_some() {
        let hard = common::hard_fd_limit();
        let lim = libc::rlimit {
            rlim_cur: 512,
            rlim_max: hard,
        };
        // SAFETY: setrlimit reads the struct we pass.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
        let soft = goro::run(|| {
            let out = Command::new("sh")
                .args(["-c", "ulimit -Sn"])
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        });
        assert_eq!(soft.trim(), "512");
        println!("limit ok");
        return;
    }
    if common::hard_fd_limit() <= 512 {
        println!("skipped: the hard open-files limit is too low to tell the limits apart");
        return;
    }
    let out = run_child("children_get_the_original_fd_limit", &[]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("limit ok"), "{}", stdout(&out));
}

/// The types move between coroutines and threads, as std's do.
#[test]
fn types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Command>();
    send_sync::<goro::process::Child>();
    send_sync::<goro::process::ChildStdin>();
    send_sync::<goro::process::ChildStdout>();
    send_sync::<goro::process::ChildStderr>();
}
