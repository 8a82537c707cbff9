//! `UnixListener`: accept parks; deadlines and close wake it; the socket
//! file is the caller's to remove; many acceptors share connections.

mod common;

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_closed, assert_timeout, within};
use goro::net::{UnixListener, UnixStream};

const MS: Duration = Duration::from_millis(1);

#[test]
fn bind_accept_and_addresses() {
    within(|| {
        let path = common::socket_path("listener-bind");
        let ln = UnixListener::bind(&path).unwrap();
        assert!(common::is_cloexec(ln.as_raw_fd()));
        assert_eq!(ln.local_addr().unwrap().as_pathname(), Some(path.as_path()));
        let p = path.clone();
        let client = goro::go!(move || {
            let mut c = UnixStream::connect(&p).unwrap();
            c.write_all(b"x").unwrap();
        });
        let (mut conn, peer) = ln.accept().unwrap();
        assert!(peer.is_unnamed());
        let mut b = [0; 1];
        conn.read_exact(&mut b).unwrap();
        client.join().unwrap();
        // The file stays after the listener is gone: binding again fails
        // until the caller removes it.
        drop(ln);
        assert!(path.exists());
        let e = UnixListener::bind(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        std::fs::remove_file(&path).unwrap();
        UnixListener::bind(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn deadlines_apply_to_accept() {
    within(|| {
        let name = common::abstract_name("listener-deadline");
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let ln = Arc::new(UnixListener::bind_addr(&addr).unwrap());
        let _waiting = UnixStream::connect_addr(&addr).unwrap();
        ln.set_deadline(Some(Instant::now() - MS)).unwrap();
        assert_timeout(&ln.accept().unwrap_err());
        ln.set_deadline(None).unwrap();
        ln.accept().unwrap();
        let d = Instant::now() + 50 * MS;
        ln.set_deadline(Some(d)).unwrap();
        assert_timeout(&ln.accept().unwrap_err());
        assert!(Instant::now() >= d);
        ln.set_deadline(None).unwrap();
        let acceptor = {
            let ln = ln.clone();
            goro::go!(move || ln.accept().map(drop))
        };
        goro::sleep(20 * MS);
        ln.set_deadline(Some(Instant::now())).unwrap();
        assert_timeout(&acceptor.join().unwrap().unwrap_err());
    });
}

#[test]
fn close_wakes_blocked_accepts_and_frees_an_abstract_name() {
    within(|| {
        let name = common::abstract_name("listener-close");
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let ln = Arc::new(UnixListener::bind_addr(&addr).unwrap());
        let acceptors: Vec<_> = (0..2)
            .map(|_| {
                let ln = ln.clone();
                goro::go!(move || ln.accept().map(drop))
            })
            .collect();
        goro::sleep(20 * MS);
        ln.close().unwrap();
        for a in acceptors {
            assert_closed(&a.join().unwrap().unwrap_err());
        }
        assert_closed(&ln.accept().unwrap_err());
        UnixListener::bind_addr(&addr).unwrap();
    });
}

#[test]
fn many_acceptors_share_connections() {
    within(|| {
        let path = common::socket_path("listener-many");
        let ln = Arc::new(UnixListener::bind(&path).unwrap());
        let acceptors: Vec<_> = (0..4)
            .map(|_| {
                let ln = ln.clone();
                goro::go!(move || {
                    let mut n = 0;
                    while let Ok((mut c, _)) = ln.accept() {
                        c.write_all(b"!").unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let clients: Vec<_> = (0..100)
            .map(|_| {
                let p = path.clone();
                goro::go!(move || {
                    let mut c = UnixStream::connect(&p).unwrap();
                    c.read_exact(&mut [0; 1]).unwrap();
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        ln.close().unwrap();
        let counts: Vec<usize> = acceptors.into_iter().map(|a| a.join().unwrap()).collect();
        assert_eq!(counts.iter().sum::<usize>(), 100, "{counts:?}");
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn incoming_and_conversions() {
    within(|| {
        let path = common::socket_path("listener-incoming");
        let std_ln = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let ln = UnixListener::from(std_ln);
        assert!(common::is_nonblocking(ln.as_raw_fd()));
        let p = path.clone();
        let clients = goro::go!(move || {
            (0..2)
                .map(|_| UnixStream::connect(&p).unwrap())
                .collect::<Vec<_>>()
        });
        assert_eq!(ln.incoming().take(2).filter(Result::is_ok).count(), 2);
        clients.join().unwrap();
        let back: std::os::unix::net::UnixListener = ln.try_into().unwrap();
        assert!(!common::is_nonblocking(back.as_raw_fd()));
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn a_plain_thread_accepts() {
    common::limit(|| {
        let path = common::socket_path("listener-thread");
        let ln = UnixListener::bind(&path).unwrap();
        let p = path.clone();
        let t = std::thread::spawn(move || UnixStream::connect(&p).unwrap());
        ln.accept().unwrap();
        t.join().unwrap();
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn nonblocking_accept_returns_would_block_instead_of_parking() {
    within(|| {
        let name = common::abstract_name("listener-nonblocking");
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let ln = UnixListener::bind_addr(&addr).unwrap();
        ln.set_nonblocking(true).unwrap();
        let e = ln.accept().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        // A Unix connection waits in the backlog as soon as it is made.
        let _c = UnixStream::connect_addr(&addr).unwrap();
        let (s, _) = ln.accept().unwrap();
        // The accepted stream starts in the default mode: a read parks.
        s.set_read_timeout(Some(20 * MS)).unwrap();
        assert_timeout(&(&s).read(&mut [0; 4]).unwrap_err());
    });
}

// ---- the readiness API ----

#[test]
fn try_accept_would_block_until_poll_accept_is_ready() {
    within(|| {
        let ln = UnixListener::bind_addr(
            &SocketAddr::from_abstract_name(format!("goro-ready-{}", std::process::id())).unwrap(),
        )
        .unwrap();
        assert_eq!(
            ln.try_accept().unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let addr = ln.local_addr().unwrap();
        let dialer = goro::spawn(move || {
            goro::sleep(10 * MS);
            UnixStream::connect_addr(&addr).unwrap()
        });
        let (server, _) = goro::block_on(std::future::poll_fn(|cx| ln.poll_accept(cx))).unwrap();
        let mut client = dialer.join().unwrap();
        client.write_all(b"x").unwrap();
        let mut buf = [0u8; 1];
        (&server).read_exact(&mut buf).unwrap();
        // Readiness lasts until a WouldBlock.
        assert_eq!(
            ln.try_accept().unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let ln = Arc::new(ln);
        let l2 = ln.clone();
        let waiter = goro::spawn(move || goro::block_on(l2.readable()));
        goro::sleep(20 * MS);
        ln.close().unwrap();
        assert_closed(&waiter.join().unwrap().unwrap_err());
        assert_closed(&ln.try_accept().unwrap_err());
    });
}
