//! `net::listen`, `net::dial`, `net::dial_timeout`: every network, Go's
//! address forms, name resolution, errors, and no fd inherited by a child.

mod common;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::{assert_timeout, within};
use goro::net::{self, Addr, Conn, Listener};

/// Listens on `network`/`addr`, dials what it got, and checks that bytes
/// go both ways and the addresses match.
fn round_trip(network: &str, listen_addr: &str, dial_network: &str) {
    let ln = net::listen(network, listen_addr).unwrap();
    let addr = ln.local_addr().unwrap();
    let dial_addr = match &addr {
        Addr::Tcp(a) => a.to_string(),
        Addr::Unix(a) => match a.as_pathname() {
            Some(p) => p.display().to_string(),
            None => addr.to_string(),
        },
        Addr::Udp(_) => unreachable!("listen gives no UDP listener"),
    };
    let mut c = net::dial(dial_network, &dial_addr).unwrap();
    let (mut s, peer) = ln.accept().unwrap();
    c.write_all(b"ping").unwrap();
    let mut b = [0; 4];
    s.read_exact(&mut b).unwrap();
    s.write_all(b"pong").unwrap();
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"pong");
    assert_eq!(peer.to_string(), c.local_addr().unwrap().to_string());
    assert_eq!(s.local_addr().unwrap().network(), addr.network());
    c.close().unwrap();
    assert_eq!(s.read(&mut b).unwrap(), 0);
}

#[test]
fn tcp_networks_round_trip() {
    within(|| {
        round_trip("tcp", "127.0.0.1:0", "tcp");
        round_trip("tcp4", "127.0.0.1:0", "tcp4");
        round_trip("tcp6", "[::1]:0", "tcp6");
        round_trip("tcp", "localhost:0", "tcp");
    });
}

#[test]
fn unix_round_trips_by_path_and_abstract_name() {
    within(|| {
        let path = common::socket_path("dial");
        round_trip("unix", path.to_str().unwrap(), "unix");
        std::fs::remove_file(&path).unwrap();
        let name = format!("@{}", common::abstract_name("dial"));
        round_trip("unix", &name, "unix");
    });
}

#[test]
fn udp_dial_gives_a_connected_conn() {
    within(|| {
        for (network, host) in [
            ("udp", "127.0.0.1"),
            ("udp4", "127.0.0.1"),
            ("udp6", "[::1]"),
        ] {
            let server = goro::net::UdpSocket::bind(format!("{host}:0")).unwrap();
            let addr = server.local_addr().unwrap();
            let mut c = net::dial(network, &addr.to_string()).unwrap();
            assert!(matches!(c, Conn::Udp(_)));
            c.write_all(b"dgram").unwrap();
            let mut buf = [0; 8];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"dgram");
            assert_eq!(
                Addr::Udp(from).to_string(),
                c.local_addr().unwrap().to_string()
            );
            server.send_to(b"back", from).unwrap();
            let n = c.read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"back");
            assert_eq!(c.peer_addr().unwrap().network(), "udp");
        }
    });
}

#[test]
fn an_empty_host_listens_everywhere_and_dials_this_machine() {
    within(|| {
        let ln = net::listen("tcp", ":0").unwrap();
        let Addr::Tcp(addr) = ln.local_addr().unwrap() else {
            panic!("not a TCP listener");
        };
        assert!(addr.ip().is_unspecified());
        let port = addr.port();
        // Reachable over IPv4 and IPv6, and by Go's ":port" dial.
        for target in [
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
            format!(":{port}"),
        ] {
            let c = net::dial("tcp", &target).unwrap();
            let (s, _) = ln.accept().unwrap();
            drop((c, s));
        }
        let ln4 = net::listen("tcp4", ":0").unwrap();
        assert_eq!(
            ln4.local_addr().unwrap().as_socket_addr().unwrap().ip(),
            "0.0.0.0".parse::<std::net::IpAddr>().unwrap()
        );
    });
}

#[test]
fn unknown_networks_and_bad_addresses_are_invalid_input() {
    within(|| {
        let e = net::listen("tcpx", "127.0.0.1:0").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("unknown network \"tcpx\""), "{e}");
        let e = net::dial("quic", "127.0.0.1:1").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("unknown network \"quic\""), "{e}");
        for bad in [
            "127.0.0.1",
            "127.0.0.1:99999",
            "127.0.0.1:http",
            "[::1",
            "::1:80",
            "a:b:c",
        ] {
            for e in [
                net::listen("tcp", bad).unwrap_err(),
                net::dial("tcp", bad).unwrap_err(),
                net::dial("udp", bad).unwrap_err(),
            ] {
                assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
                assert!(e.to_string().contains(bad), "{bad}: {e}");
            }
        }
        // An address of the wrong family for the network.
        let e = net::dial("tcp4", "[::1]:80").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        let e = net::listen("tcp6", "127.0.0.1:0").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        // Datagram networks have no listener.
        let e = net::listen("udp", "127.0.0.1:0").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("UdpSocket"), "{e}");
        let e = net::listen("unix", "").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    });
}

#[test]
fn system_errors_keep_their_kind_and_name_the_address() {
    within(|| {
        // A port nobody listens on: bind one, note it, close it.
        let port = {
            let ln = net::listen("tcp", "127.0.0.1:0").unwrap();
            ln.local_addr().unwrap().as_socket_addr().unwrap().port()
        };
        let target = format!("127.0.0.1:{port}");
        let e = net::dial("tcp", &target).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(
            e.to_string(),
            format!("dial tcp {target}: connection refused")
        );
        let os = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<io::Error>())
            .and_then(io::Error::raw_os_error);
        assert_eq!(os, Some(libc::ECONNREFUSED));

        let ln = net::listen("tcp", "127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap().to_string();
        let e = net::listen("tcp", &addr).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(
            e.to_string(),
            format!("listen tcp {addr}: address already in use")
        );
    });
}

#[test]
fn dial_timeout_gives_up_at_its_deadline() {
    within(|| {
        let ln = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // SAFETY: listen on an fd we own; backlog 0 fills at once.
        assert_eq!(unsafe { libc::listen(ln.as_raw_fd(), 0) }, 0);
        let addr = ln.local_addr().unwrap().to_string();
        let timeout = Duration::from_millis(150);
        let mut held = Vec::new();
        let (e, took) = loop {
            let start = Instant::now();
            match net::dial_timeout("tcp", &addr, timeout) {
                Ok(c) => held.push(c),
                Err(e) => break (e, start.elapsed()),
            }
            assert!(held.len() < 1000, "the backlog never filled");
        };
        assert_timeout(&e);
        assert_eq!(e.to_string(), format!("dial tcp {addr}: i/o timeout"));
        assert!(took >= timeout, "gave up after {took:?}");
        let e = net::dial_timeout("tcp", &addr, Duration::ZERO).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        // A successful dial within a timeout, through a host name.
        let ok = net::listen("tcp", "127.0.0.1:0").unwrap();
        let port = ok.local_addr().unwrap().as_socket_addr().unwrap().port();
        net::dial_timeout("tcp", &format!("localhost:{port}"), Duration::from_secs(10)).unwrap();
    });
}

#[test]
fn host_names_resolve_in_coroutines_and_plain_threads() {
    let ln = common::limit(|| net::listen("tcp", "127.0.0.1:0").unwrap());
    let port = ln.local_addr().unwrap().as_socket_addr().unwrap().port();
    let name = format!("localhost:{port}");
    let dialed = {
        let name = name.clone();
        within(move || {
            let many: Vec<_> = (0..20)
                .map(|_| {
                    let name = name.clone();
                    goro::go!(move || net::dial("tcp", &name).map(drop))
                })
                .collect();
            many.into_iter()
                .map(|h| h.join().unwrap())
                .filter(Result::is_ok)
                .count()
        })
    };
    assert_eq!(dialed, 20);
    common::limit(move || {
        let c = net::dial("tcp", &name).unwrap();
        assert_eq!(
            c.peer_addr().unwrap().as_socket_addr().unwrap(),
            SocketAddr::from(([127, 0, 0, 1], port))
        );
    });
    drop(ln);
}

#[test]
fn listener_and_conn_are_network_neutral() {
    within(|| {
        let path = common::socket_path("neutral");
        let listeners = [
            net::listen("tcp", "127.0.0.1:0").unwrap(),
            net::listen("unix", path.to_str().unwrap()).unwrap(),
        ];
        for ln in &listeners {
            let addr = ln.local_addr().unwrap();
            let target = match &addr {
                Addr::Unix(a) => a.as_pathname().unwrap().display().to_string(),
                other => other.to_string(),
            };
            let c = net::dial(addr.network(), &target).unwrap();
            let (s, _) = ln.accept().unwrap();
            // Deadlines through the neutral types.
            s.set_read_deadline(Some(Instant::now())).unwrap();
            assert_timeout(&(&s).read(&mut [0; 1]).unwrap_err());
            s.set_deadline(None).unwrap();
            (&c).write_all(b"n").unwrap();
            (&s).read_exact(&mut [0; 1]).unwrap();
            c.set_write_deadline(None).unwrap();
            assert!(matches!(
                (ln, &s),
                (Listener::Tcp(_), Conn::Tcp(_)) | (Listener::Unix(_), Conn::Unix(_))
            ));
        }
        for ln in &listeners {
            ln.close().unwrap();
            common::assert_closed(&ln.accept().unwrap_err());
        }
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn no_socket_is_inherited_by_a_child_process() {
    within(|| {
        let path = common::socket_path("inherit");
        let tcp = net::listen("tcp", "127.0.0.1:0").unwrap();
        let unix = net::listen("unix", path.to_str().unwrap()).unwrap();
        let addr = tcp.local_addr().unwrap().to_string();
        let client = net::dial("tcp", &addr).unwrap();
        let (server, _) = tcp.accept().unwrap();
        let udp = net::dial("udp", "127.0.0.1:9").unwrap();
        let (pa, pb) = goro::net::UnixStream::pair().unwrap();
        let fds = [
            tcp.as_raw_fd(),
            unix.as_raw_fd(),
            client.as_raw_fd(),
            server.as_raw_fd(),
            udp.as_raw_fd(),
            pa.as_raw_fd(),
            pb.as_raw_fd(),
        ];
        for fd in fds {
            assert!(common::is_cloexec(fd), "fd {fd}");
        }
        assert_eq!(common::inherited_by_child(&fds), Vec::<i32>::new());
        // The check itself works: an inheritable fd is seen.
        // SAFETY: dup of an open fd makes a new fd (without close-on-exec).
        let dup = unsafe { libc::dup(client.as_raw_fd()) };
        assert!(dup >= 0);
        assert_eq!(common::inherited_by_child(&[dup]), vec![dup]);
        // SAFETY: `dup` is ours and used by nothing else.
        unsafe { libc::close(dup) };
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn dial_context_follows_its_context() {
    use goro::context::{self, Context};
    within(|| {
        let ok = net::listen("tcp", "127.0.0.1:0").unwrap();
        let addr = ok.local_addr().unwrap().to_string();
        // A live context: the dial connects.
        let (ctx, cancel) = context::with_cancel(&Context::background());
        net::dial_context(&ctx, "tcp", &addr).unwrap();
        // Already cancelled: fails at once, saying why.
        cancel.cancel();
        let e = net::dial_context(&ctx, "tcp", &addr).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Interrupted);
        assert_eq!(e.to_string(), format!("dial tcp {addr}: context canceled"));

        // A dial that cannot complete (a full backlog): the context's
        // deadline ends it, never early; a cancel ends it at once.
        let full = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // SAFETY: listen on an fd we own; backlog 0 fills at once.
        assert_eq!(unsafe { libc::listen(full.as_raw_fd(), 0) }, 0);
        let target = full.local_addr().unwrap().to_string();
        let mut held = Vec::new();
        while let Ok(c) = net::dial_timeout("tcp", &target, Duration::from_millis(100)) {
            held.push(c);
            assert!(held.len() < 1000, "the backlog never filled");
        }
        let timeout = Duration::from_millis(100);
        let (ctx, _cancel) = context::with_timeout(&Context::background(), timeout);
        let start = Instant::now();
        let e = net::dial_context(&ctx, "tcp", &target).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(start.elapsed() >= timeout);
        let (ctx, cancel) = context::with_cancel(&Context::background());
        goro::go!(move || {
            goro::sleep(Duration::from_millis(50));
            cancel.cancel();
        });
        let start = Instant::now();
        let e = net::dial_context(&ctx, "tcp", &target).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Interrupted, "{e}");
        // Generous: without the cancel this dial would never end.
        assert!(start.elapsed() < Duration::from_secs(10));
        // And a deadline given directly.
        let e = net::dial_deadline("tcp", &target, Instant::now() + timeout).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    });
}
