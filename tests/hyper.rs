//! hyper 1 on goro (feature `example-hyper`): connections served end to end
//! over goro's sockets with `TokioIo`, keep-alive, handlers that park in
//! goro, graceful shutdown, `goro::hyper::Timer` on the virtual clock,
//! `goro::hyper::Executor`, and no thread but goro's.

mod common;

use std::convert::Infallible;
use std::io::{Read, Write};
use std::pin::pin;
use std::time::Duration;

use common::within;
use goro::context::{self, Context};
use goro::net::{TcpListener, TcpStream};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::rt::{Executor as _, Timer as _};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// The test server's answers: `/` says hello, `/sleep` parks in
/// `goro::sleep` first, `/chan` asks a coroutine over a goro channel.
async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match req.uri().path() {
        "/sleep" => {
            goro::sleep(Duration::from_millis(100));
            "slept".to_string()
        }
        "/chan" => {
            let (tx, rx) = goro::chan::chan(0);
            goro::go!(move || tx.send(41).unwrap());
            format!("got {}", rx.recv().unwrap() + 1)
        }
        _ => "Hello, World!".to_string(),
    };
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// Serves `conn` as examples/hyper.rs does: until it ends, or until `stop`
/// is cancelled and hyper's graceful shutdown has run its course.
fn serve(conn: TcpStream, stop: Context) {
    let http = hyper::server::conn::http1::Builder::new()
        .timer(goro::hyper::Timer)
        .serve_connection(TokioIo::new(conn), hyper::service::service_fn(handle));
    let mut http = pin!(http);
    if goro::block_on_context(&stop, http.as_mut()).is_ok() {
        return;
    }
    http.as_mut().graceful_shutdown();
    let _ = goro::block_on(http);
}

/// A server on an ephemeral port, one coroutine per connection; returns
/// its address and the context whose cancellation shuts it down.
fn server() -> (
    std::net::SocketAddr,
    context::CancelFunc,
    goro::JoinHandle<()>,
) {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    let (stop, cancel) = context::with_cancel(&Context::background());
    let acceptor = goro::spawn(move || {
        let wg = goro::sync::WaitGroup::new();
        loop {
            let Ok(Some((conn, _))) =
                goro::block_on_context(&stop, std::future::poll_fn(|cx| ln.poll_accept(cx)))
                    .map(Result::ok)
            else {
                break;
            };
            let stop = stop.clone();
            wg.go(move || serve(conn, stop));
        }
        wg.wait();
    });
    (addr, cancel, acceptor)
}

/// Sends a GET for `path` on `conn` and reads the response: its status
/// line and body (by Content-Length).
fn get(conn: &mut TcpStream, path: &str) -> (String, String) {
    write!(conn, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            conn.read(&mut byte).unwrap(),
            1,
            "connection ended mid-response"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("a content-length");
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).unwrap();
    (
        head.lines().next().unwrap().to_string(),
        String::from_utf8(body).unwrap(),
    )
}

#[test]
fn hyper_serves_keep_alive_connections_on_goro_sockets() {
    within(|| {
        let (addr, cancel, acceptor) = server();
        let clients: Vec<_> = (0..4)
            .map(|_| {
                goro::spawn(move || {
                    let mut c = TcpStream::connect(addr).unwrap();
                    for _ in 0..3 {
                        assert_eq!(
                            get(&mut c, "/"),
                            ("HTTP/1.1 200 OK".into(), "Hello, World!".into())
                        );
                        assert_eq!(get(&mut c, "/sleep").1, "slept");
                        assert_eq!(get(&mut c, "/chan").1, "got 42");
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        cancel.cancel();
        acceptor.join().unwrap();
    });
}

/// Shutdown closes an idle keep-alive connection at once and lets a
/// request in flight finish with its answer.
#[test]
fn graceful_shutdown_finishes_requests_in_flight_and_closes_idle_ones() {
    within(|| {
        let (addr, cancel, acceptor) = server();
        let mut idle = TcpStream::connect(addr).unwrap();
        assert_eq!(get(&mut idle, "/").1, "Hello, World!");
        let busy = goro::spawn(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            get(&mut c, "/sleep")
        });
        goro::sleep(Duration::from_millis(30));
        cancel.cancel();
        // The idle connection ends (end of file), long before the request
        // in flight would let a non-graceful server stop.
        idle.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(idle.read(&mut [0u8; 16]).unwrap(), 0);
        assert_eq!(
            busy.join().unwrap(),
            ("HTTP/1.1 200 OK".into(), "slept".into())
        );
        acceptor.join().unwrap();
    });
}

/// Serving hyper over goro sockets starts no thread but goro's own: no
/// tokio runtime, no driver thread.
#[test]
#[cfg_attr(
    feature = "tokio",
    ignore = "the tokio feature's block_on starts tokio's reactor thread by design"
)]
fn serving_hyper_starts_no_thread_but_goros() {
    fn threads() -> Vec<String> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|c| c.trim().to_string())
            .collect()
    }
    within(|| {
        let (addr, cancel, acceptor) = server();
        let mut c = TcpStream::connect(addr).unwrap();
        assert_eq!(get(&mut c, "/sleep").1, "slept");
        let names = threads();
        let others: Vec<_> = names.iter().filter(|n| n.contains("tokio")).collect();
        assert!(others.is_empty(), "threads: {names:?}");
        drop(c);
        cancel.cancel();
        acceptor.join().unwrap();
    });
}

/// `goro::hyper::Timer` sleeps on the caller's clock: an hour passes at
/// once on a bubble's virtual clock.
#[test]
fn the_timer_follows_the_virtual_clock() {
    let elapsed = goro::synctest::run(|| {
        let timer = goro::hyper::Timer;
        let start = timer.now();
        goro::block_on(timer.sleep(Duration::from_secs(3600)));
        let mut s = timer.sleep(Duration::from_secs(1));
        timer.reset(&mut s, start + Duration::from_secs(7200));
        goro::block_on(s);
        timer.now() - start
    });
    assert_eq!(elapsed, Duration::from_secs(7200));
}

/// A sleep dropped before its deadline never wakes its task, and one
/// already past is ready at once.
#[test]
fn timer_sleeps_can_be_dropped_and_may_be_past() {
    within(|| {
        let timer = goro::hyper::Timer;
        let (counter, waker) = common::counting_waker();
        let mut s = timer.sleep(Duration::from_millis(10));
        assert!(
            s.as_mut()
                .poll(&mut std::task::Context::from_waker(&waker))
                .is_pending()
        );
        drop(s);
        goro::sleep(Duration::from_millis(50));
        assert_eq!(counter.wakes.load(std::sync::atomic::Ordering::SeqCst), 0);
        goro::block_on(timer.sleep_until(std::time::Instant::now()));
    });
}

/// `goro::hyper::Executor` runs each future in a coroutine of its own.
#[test]
fn the_executor_runs_futures_in_coroutines() {
    within(|| {
        let (tx, rx) = goro::chan::chan(0);
        for i in 0..10 {
            let tx = tx.clone();
            goro::hyper::Executor.execute(async move {
                tx.send((i, goro::current().unwrap().id())).unwrap();
            });
        }
        let me = goro::current().unwrap().id();
        let mut got: Vec<_> = (0..10).map(|_| rx.recv().unwrap()).collect();
        assert!(got.iter().all(|&(_, id)| id != me));
        got.sort();
        assert_eq!(
            got.iter().map(|&(i, _)| i).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
    });
}
