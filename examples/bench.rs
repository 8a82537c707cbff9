//! The side-by-side benchmark workloads; the contract and the peers' versions
//! are in `../shared/bench`. Run as `bench WORKLOAD ARG`, with the worker
//! count from `WORKERS`. Each workload runs inside the runtime, as a Go
//! program runs inside `main`, and prints one `RESULT` line; the servers
//! (`echo ADDR`, `http ADDR`) print `listening ADDR` and serve until killed.
//! With `TRACE=FILE`, the run is traced into FILE (`goro::runtime::trace`),
//! to measure what tracing costs.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use goro::chan::{Sender, chan};
use goro::sync::WaitGroup;

fn report(bench: &str, n: usize, elapsed: Duration, extra: &str) {
    let ns = elapsed.as_nanos() as f64;
    println!(
        "RESULT peer=goro bench={bench} n={n} ns_per_op={:.1} total_ms={:.1} {extra}",
        ns / n as f64,
        ns / 1e6
    );
}

fn rss_kb() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn spawn(n: usize) {
    // Go's closure captures `&wg` and `&sum`; `'static` references are the
    // Rust equivalent without reference counting on every spawn.
    let wg: &'static WaitGroup = Box::leak(Box::new(WaitGroup::new()));
    let sum: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let start = Instant::now();
    wg.add(n);
    for _ in 0..n {
        goro::go!(move || {
            sum.fetch_add(1, Ordering::Relaxed);
            wg.done();
        });
    }
    wg.wait();
    report("spawn", n, start.elapsed(), "");
    assert_eq!(sum.load(Ordering::Relaxed), n, "bad sum");
}

fn pingpong(n: usize) {
    let (atx, arx) = chan::<usize>(0);
    let (btx, brx) = chan::<usize>(0);
    goro::go!(move || {
        for v in &arx {
            if btx.send(v + 1).is_err() {
                return;
            }
        }
    });
    let start = Instant::now();
    for i in 0..n {
        atx.send(i).expect("partner gone");
        assert_eq!(brx.recv(), Ok(i + 1), "bad reply");
    }
    report("pingpong", n, start.elapsed(), "");
}

fn skynet_node(c: Sender<usize>, num: usize, size: usize, div: usize) {
    if size == 1 {
        let _ = c.send(num);
        return;
    }
    let (rtx, rrx) = chan::<usize>(div);
    for i in 0..div {
        let sub = size / div;
        goro::go!(skynet_node(rtx.clone(), num + i * sub, sub, div));
    }
    let mut sum = 0;
    for _ in 0..div {
        sum += rrx.recv().expect("a child vanished");
    }
    let _ = c.send(sum);
}

fn skynet(n: usize) {
    let (tx, rx) = chan::<usize>(1);
    let start = Instant::now();
    goro::go!(skynet_node(tx, 0, n, 10));
    let sum = rx.recv().expect("the root vanished");
    report("skynet", n, start.elapsed(), &format!("sum={sum}"));
    assert_eq!(sum, n * (n - 1) / 2, "bad sum");
}

fn idle(n: usize) {
    let before = rss_kb();
    let started = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = chan::<()>(1);
        let started = started.clone();
        let h = goro::go!(move || {
            started.fetch_add(1, Ordering::Relaxed);
            let _ = rx.recv();
        });
        held.push((tx, h));
    }
    while started.load(Ordering::Relaxed) < n {
        goro::sleep(Duration::from_millis(1));
    }
    let elapsed = start.elapsed();
    let after = rss_kb();
    for (tx, h) in held {
        drop(tx);
        h.join().expect("an idle coroutine panicked");
    }
    println!(
        "RESULT peer=goro bench=idle n={n} bytes_per_task={:.0} ns_per_op={:.1}",
        (after.saturating_sub(before)) as f64 * 1024.0 / n as f64,
        elapsed.as_nanos() as f64 / n as f64
    );
}

/// Listens on `addr` and says so (the harness waits for the port), or
/// exits with the error.
fn listen_or_exit(addr: &str) -> goro::net::Listener {
    match goro::net::listen("tcp", addr) {
        Ok(ln) => {
            println!("listening {}", ln.local_addr().expect("listener address"));
            ln
        }
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    }
}

/// Go's echo server: one coroutine per connection, a 4 KiB buffer, write
/// back what was read.
fn echo(addr: &str) {
    let ln = listen_or_exit(addr);
    while let Ok((mut c, _)) = ln.accept() {
        goro::go!(move || {
            let mut buf = vec![0u8; 4096];
            loop {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if c.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

const RESP: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!";

/// Consumes every complete request (ending in `\r\n\r\n`) in `buf`, appends
/// one response per request to `out`, returns the bytes consumed (the
/// peers' `http_parse`).
fn http_parse(buf: &[u8], out: &mut Vec<u8>) -> usize {
    let mut start = 0;
    while let Some(i) = buf[start..].windows(4).position(|w| w == b"\r\n\r\n") {
        start += i + 4;
        out.extend_from_slice(RESP);
    }
    start
}

/// The peers' minimal pipelined HTTP/1.1 responder: one coroutine per
/// connection, an 8 KiB buffer, every request answered.
fn http(addr: &str) {
    let ln = listen_or_exit(addr);
    while let Ok((mut c, _)) = ln.accept() {
        goro::go!(move || {
            let mut buf = vec![0u8; 8192];
            let mut out = Vec::with_capacity(8192);
            let mut have = 0;
            loop {
                match c.read(&mut buf[have..]) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        have += n;
                        let used = http_parse(&buf[..have], &mut out);
                        buf.copy_within(used..have, 0);
                        have -= used;
                        if !out.is_empty() {
                            if c.write_all(&out).is_err() {
                                return;
                            }
                            out.clear();
                        }
                    }
                }
            }
        });
    }
}

/// The `http` answer from hyper 1 (`http1`), one coroutine per
/// connection, the shape of the tokio peer's hyper server: the connection
/// future runs under `goro::block_on` on goro's sockets (`TokioIo` over
/// goro's `AsyncRead`/`AsyncWrite`), with no tokio runtime. Like the peer,
/// it sets no timer: with none, hyper applies no header-read timeout.
#[cfg(feature = "bench")]
fn httplib(addr: &str) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let ln = match goro::net::TcpListener::bind(addr) {
        Ok(ln) => ln,
        Err(e) => {
            eprintln!("bench: listen {addr}: {e}");
            std::process::exit(1);
        }
    };
    println!("listening {}", ln.local_addr().expect("a bound address"));
    loop {
        let Ok((c, _)) = ln.accept() else { continue };
        goro::go!(move || {
            let svc = hyper::service::service_fn(|_req| async {
                let mut r = hyper::Response::new(Full::new(Bytes::from_static(b"Hello, World!")));
                r.headers_mut().insert(
                    "content-type",
                    hyper::header::HeaderValue::from_static("text/plain"),
                );
                Ok::<_, std::convert::Infallible>(r)
            });
            let _ = goro::block_on(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(c), svc),
            );
        });
    }
}

/// Without the `bench` feature there is no hyper to serve with.
#[cfg(not(feature = "bench"))]
fn httplib(_addr: &str) {
    eprintln!("bench: httplib needs hyper: build with --features bench");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(workload), Some(arg)) = (args.get(1).cloned(), args.get(2).cloned()) else {
        eprintln!("usage: bench spawn|pingpong|skynet|idle N | echo|http|httplib ADDR");
        std::process::exit(2);
    };
    let mut rt = goro::runtime::Builder::new();
    if let Some(w) = std::env::var("WORKERS").ok().and_then(|v| v.parse().ok()) {
        rt = rt.workers(w);
    }
    if let Err(e) = rt.start() {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
    let n: usize = arg.parse().unwrap_or(0);
    let trace = std::env::var_os("TRACE");
    if let Some(path) = &trace {
        let started = std::fs::File::create(path).and_then(goro::runtime::trace::start);
        if let Err(e) = started {
            eprintln!("bench: trace: {e}");
            std::process::exit(1);
        }
    }
    goro::run(move || match workload.as_str() {
        "spawn" => spawn(n),
        "pingpong" => pingpong(n),
        "skynet" => skynet(n),
        "idle" => idle(n),
        "echo" => echo(&arg),
        "http" => http(&arg),
        "httplib" => httplib(&arg),
        other => eprintln!("bench: unknown workload {other:?}"),
    });
    if trace.is_some()
        && let Err(e) = goro::runtime::trace::stop()
    {
        eprintln!("bench: trace: {e}");
    }
}
