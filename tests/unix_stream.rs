//! `UnixStream`: the Unix twin of `TcpStream`, with the same parking,
//! deadlines and close.

mod common;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_closed, assert_timeout, within};
use goro::net::{UnixListener, UnixStream};

const MS: Duration = Duration::from_millis(1);

#[test]
fn pair_echoes_and_is_close_on_exec() {
    within(|| {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        assert!(common::is_cloexec(a.as_raw_fd()));
        assert!(common::is_nonblocking(a.as_raw_fd()));
        let echo = goro::go!(move || {
            let mut buf = [0; 64];
            loop {
                match b.read(&mut buf).unwrap() {
                    0 => return,
                    n => b.write_all(&buf[..n]).unwrap(),
                }
            }
        });
        for i in 0..50u8 {
            a.write_all(&[i; 7]).unwrap();
            let mut got = [0; 7];
            a.read_exact(&mut got).unwrap();
            assert_eq!(got, [i; 7]);
        }
        a.shutdown(Shutdown::Write).unwrap();
        echo.join().unwrap();
        assert!(a.peer_addr().unwrap().is_unnamed());
    });
}

#[test]
fn connect_by_path_and_by_abstract_name() {
    within(|| {
        let path = common::socket_path("stream-connect");
        let ln = UnixListener::bind(&path).unwrap();
        let p = path.clone();
        let client = goro::go!(move || {
            let mut c = UnixStream::connect(&p).unwrap();
            assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(p.as_path()));
            c.write_all(b"path").unwrap();
        });
        let (mut s, _) = ln.accept().unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        assert_eq!(got, "path");
        client.join().unwrap();
        std::fs::remove_file(&path).unwrap();

        let name = common::abstract_name("stream-connect");
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let ln = UnixListener::bind_addr(&addr).unwrap();
        let c = UnixStream::connect_addr(&addr).unwrap();
        ln.accept().unwrap();
        assert_eq!(
            c.peer_addr().unwrap().as_abstract_name(),
            Some(name.as_bytes())
        );
    });
}

#[test]
fn connecting_to_a_missing_path_names_it() {
    within(|| {
        let path = common::socket_path("missing");
        let e = UnixStream::connect(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        assert_eq!(
            e.to_string(),
            format!("dial unix {}: no such file or directory", path.display())
        );
        let long = "x".repeat(300);
        let e = UnixStream::connect(&long).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    });
}

#[test]
fn deadlines_follow_go() {
    within(|| {
        let (mut a, b) = UnixStream::pair().unwrap();
        let b = Arc::new(b);
        a.write_all(b"wait").unwrap();
        b.set_read_deadline(Some(Instant::now() - MS)).unwrap();
        assert_timeout(&(&*b).read(&mut [0; 4]).unwrap_err());
        b.set_read_deadline(None).unwrap();
        let mut got = [0; 4];
        (&*b).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"wait");
        let d = Instant::now() + 60 * MS;
        b.set_deadline(Some(d)).unwrap();
        assert_timeout(&(&*b).read(&mut [0; 4]).unwrap_err());
        assert!(Instant::now() >= d);
        b.set_deadline(None).unwrap();
        let reader = {
            let b = b.clone();
            goro::go!(move || (&*b).read(&mut [0; 4]))
        };
        goro::sleep(20 * MS);
        b.set_read_deadline(Some(Instant::now())).unwrap();
        assert_timeout(&reader.join().unwrap().unwrap_err());
        b.set_read_timeout(Some(20 * MS)).unwrap();
        assert_timeout(&(&*b).read(&mut [0; 4]).unwrap_err());
    });
}

#[test]
fn close_wakes_a_blocked_read_and_peer_close_is_eof() {
    within(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let a = Arc::new(a);
        let reader = {
            let a = a.clone();
            goro::go!(move || (&*a).read(&mut [0; 4]))
        };
        goro::sleep(20 * MS);
        a.close().unwrap();
        assert_closed(&reader.join().unwrap().unwrap_err());
        assert_closed(&(&*a).write(b"x").unwrap_err());
        // `b`'s peer is gone: end of file.
        assert_eq!((&b).read(&mut [0; 4]).unwrap(), 0);
        assert_eq!((&b).read(&mut []).unwrap(), 0);
    });
}

#[test]
fn try_clone_and_conversions() {
    within(|| {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut a2 = a.try_clone().unwrap();
        a2.write_all(b"clone").unwrap();
        let mut got = [0; 5];
        b.read_exact(&mut got).unwrap();
        let std_a: std::os::unix::net::UnixStream = a.try_into().unwrap();
        assert!(!common::is_nonblocking(std_a.as_raw_fd()));
        let (s1, s2) = std::os::unix::net::UnixStream::pair().unwrap();
        let (mut g1, mut g2) = (UnixStream::from(s1), UnixStream::from(s2));
        assert!(common::is_nonblocking(g1.as_raw_fd()));
        g1.write_all(b"std").unwrap();
        let mut got = [0; 3];
        g2.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"std");
        drop(std_a);
    });
}

#[test]
fn plain_threads_read_and_write() {
    common::limit(|| {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0; 5];
            b.read_exact(&mut buf).unwrap();
            b.write_all(&buf).unwrap();
        });
        a.write_all(b"plain").unwrap();
        let mut got = [0; 5];
        a.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"plain");
        t.join().unwrap();
    });
}

#[test]
fn peek_parks_like_read_and_leaves_the_data() {
    within(|| {
        let (mut a, b) = UnixStream::pair().unwrap();
        let b = Arc::new(b);
        let peeker = {
            let b = b.clone();
            goro::go!(move || {
                let mut buf = [0; 16];
                let n = b.peek(&mut buf).unwrap();
                buf[..n].to_vec()
            })
        };
        goro::sleep(20 * MS);
        a.write_all(b"unix").unwrap();
        assert_eq!(peeker.join().unwrap(), b"unix");
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = [0; 4];
        (&*b).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"unix");
        drop(a);
        assert_eq!(b.peek(&mut [0; 4]).unwrap(), 0);
    });
}

#[test]
fn nonblocking_mode_returns_would_block_instead_of_parking() {
    within(|| {
        let (mut a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        for r in [(&b).read(&mut [0; 4]), b.peek(&mut [0; 4])] {
            assert_eq!(r.unwrap_err().kind(), io::ErrorKind::WouldBlock);
        }
        // A Unix socket's data is there as soon as the write returns.
        a.write_all(b"now").unwrap();
        let mut got = [0; 3];
        (&b).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"now");
    });
}

// ---- the readiness API ----

#[test]
fn try_read_would_block_until_readable() {
    within(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(
            b.try_read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let writer = goro::spawn(move || {
            goro::sleep(10 * MS);
            goro::block_on(a.writable()).unwrap();
            assert_eq!(a.try_write(b"hello").unwrap(), 5);
            a
        });
        let n = loop {
            goro::block_on(b.readable()).unwrap();
            match b.try_read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => break r.unwrap(),
            }
        };
        assert_eq!(&buf[..n], b"hello");
        drop(writer.join().unwrap());
        goro::block_on(std::future::poll_fn(|cx| b.poll_read_ready(cx))).unwrap();
        assert_eq!(b.try_read(&mut buf).unwrap(), 0);
    });
}

#[test]
fn close_and_deadline_end_readiness_waits() {
    within(|| {
        let (s, _peer) = UnixStream::pair().unwrap();
        let s = Arc::new(s);
        let s2 = s.clone();
        let waiter = goro::spawn(move || goro::block_on(s2.readable()));
        goro::sleep(20 * MS);
        s.close().unwrap();
        let e = waiter.join().unwrap().unwrap_err();
        assert_closed(&e);
        let blocking = (&*s).read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(blocking.kind(), e.kind());
        assert_closed(&blocking);
        let (t, _peer) = UnixStream::pair().unwrap();
        t.set_read_deadline(Some(Instant::now() + 20 * MS)).unwrap();
        assert_timeout(&goro::block_on(t.readable()).unwrap_err());
    });
}
