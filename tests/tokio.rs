//! With the `tokio` feature, `goro::block_on` runs futures that need
//! tokio's timer and reactor, with no setup, from many coroutines at once
//! and from plain threads; coroutines whose polls park in goro share one
//! entry into tokio's context instead of stacking guards out of order.
//!
//! `cargo test --features tokio --test tokio`
#![cfg(feature = "tokio")]

mod common;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{child, is_child, within};
use goro::net::TcpListener;

/// More coroutines than workers, so several wait on tokio from each one.
const COROUTINES: usize = 64;

#[test]
fn tokio_sleep_from_many_coroutines() {
    let sum = within(|| {
        let handles: Vec<_> = (0..COROUTINES)
            .map(|i| {
                goro::go!(move || {
                    let start = Instant::now();
                    goro::block_on(async {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    });
                    assert!(start.elapsed() >= Duration::from_millis(10));
                    i
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum::<usize>()
    });
    assert_eq!(sum, COROUTINES * (COROUTINES - 1) / 2);
}

#[test]
fn tokio_sleep_from_a_plain_thread() {
    let start = Instant::now();
    goro::block_on(async { tokio::time::sleep(Duration::from_millis(10)).await });
    assert!(start.elapsed() >= Duration::from_millis(10));
}

#[test]
fn tokio_timeout_elapses_or_completes() {
    within(|| {
        let r = goro::block_on(async {
            tokio::time::timeout(Duration::from_millis(10), std::future::pending::<()>()).await
        });
        assert!(r.is_err());
        let r = goro::block_on(async {
            tokio::time::timeout(Duration::from_secs(60), async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                5
            })
            .await
        });
        assert_eq!(r, Ok(5));
    });
}

#[test]
fn goro_bound_on_a_tokio_future() {
    within(|| {
        let r = goro::block_on_timeout(
            async { tokio::time::sleep(Duration::from_secs(60)).await },
            Duration::from_millis(10),
        );
        assert!(r.is_err());
    });
}

#[test]
fn tokio_spawn_runs_on_the_tokio_thread() {
    let (v, name) = within(|| {
        goro::block_on(async {
            tokio::spawn(async { (7, std::thread::current().name().map(String::from)) })
                .await
                .unwrap()
        })
    });
    assert_eq!(v, 7);
    assert_eq!(name.as_deref(), Some("goro-tokio"));
}

/// Serves each connection in a coroutine: echoes what it reads until EOF.
fn echo_server() -> SocketAddr {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    goro::go!(move || {
        while let Ok((mut conn, _)) = ln.accept() {
            goro::go!(move || {
                let mut buf = [0; 256];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Writes all of `buf` to a tokio stream (without tokio's `io-util`).
async fn write_all(s: &tokio::net::TcpStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        s.writable().await?;
        match s.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads exactly `n` bytes from a tokio stream.
async fn read_exact(s: &tokio::net::TcpStream, n: usize) -> io::Result<Vec<u8>> {
    let mut out = vec![0; n];
    let mut have = 0;
    while have < n {
        s.readable().await?;
        match s.try_read(&mut out[have..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(k) => have += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// tokio clients in many coroutines talk to a goro server in the same
/// runtime. The server's coroutines can only run while the clients wait if
/// waiting in `block_on` leaves the workers free (with one worker, a
/// blocked worker would hang this test).
#[test]
fn tokio_tcp_clients_against_a_goro_server() {
    let replies = within(|| {
        let addr = echo_server();
        let handles: Vec<_> = (0..COROUTINES)
            .map(|i| {
                goro::go!(move || {
                    let msg = format!("hello {i}");
                    goro::block_on(async {
                        let s = tokio::net::TcpStream::connect(addr).await?;
                        write_all(&s, msg.as_bytes()).await?;
                        let back = read_exact(&s, msg.len()).await?;
                        Ok::<_, io::Error>(String::from_utf8(back).unwrap() == msg)
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(replies.len(), COROUTINES);
    assert!(replies.iter().all(|&ok| ok));
}

/// Two coroutines on one worker each park in goro in the middle of a poll
/// that uses tokio, and resume in the order they parked. Per-poll enter
/// guards would be dropped out of order (tokio panics); the first poll
/// dropping a shared entry would leave the second without a runtime.
#[test]
fn polls_parked_in_goro_on_one_worker_share_the_tokio_context() {
    const NAME: &str = "polls_parked_in_goro_on_one_worker_share_the_tokio_context";
    if !is_child(NAME) {
        child(NAME, &[("GORO_WORKERS", "1")]);
        return;
    }
    within(|| {
        assert_eq!(goro::runtime::num_workers(), 1);
        let (parked_tx, parked_rx) = goro::chan::chan::<usize>(0);
        let mut releases = Vec::new();
        let mut handles = Vec::new();
        for i in 0..2 {
            let (release_tx, release_rx) = goro::chan::chan::<()>(0);
            releases.push(release_tx);
            let parked_tx = parked_tx.clone();
            handles.push(Some(goro::go!(move || {
                goro::block_on(async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    parked_tx.send(i).unwrap();
                    // Parks the coroutine inside this poll.
                    release_rx.recv().unwrap();
                    // Needs the runtime context after the park.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    i
                })
            })));
        }
        let first = parked_rx.recv().unwrap();
        let second = parked_rx.recv().unwrap();
        // The first to park, the outer of two stacked guards, ends its
        // poll first.
        for i in [first, second] {
            releases[i].send(()).unwrap();
            assert_eq!(handles[i].take().unwrap().join().unwrap(), i);
        }
    });
}
