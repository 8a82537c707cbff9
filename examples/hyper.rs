//! hyper 1 served on goro: Go's accept loop, one coroutine per connection,
//! HTTP/1.1 with keep-alive, handlers that call goro's blocking-looking
//! APIs, and a graceful shutdown on SIGTERM or SIGINT.
//!
//! ```text
//! cargo run --release --features example-hyper --example hyper            # 127.0.0.1:8080
//! cargo run --release --features example-hyper --example hyper -- :9000   # or another address
//! curl http://127.0.0.1:8080/          # Hello, World!
//! curl http://127.0.0.1:8080/count     # a counter coroutine answers over a channel
//! curl http://127.0.0.1:8080/slow      # the handler sleeps 500 ms (goro::sleep)
//! ```
//!
//! Each connection's coroutine drives hyper's connection future with
//! `goro::block_on`: the socket's readiness comes from goro's netpoller,
//! and a handler that parks (a channel, a sleep) parks only its own
//! connection's coroutine. No tokio runtime and no thread of its own.
//!
//! On SIGTERM the listener closes, so the accept loop ends; every
//! connection gets hyper's `graceful_shutdown`: a request in flight
//! finishes and gets its answer, and an idle keep-alive connection closes
//! at once. The process exits when the last connection has ended.

use std::convert::Infallible;
use std::pin::pin;
use std::time::Duration;

use goro::chan::{Sender, chan};
use goro::context::{self, Context};
use goro::net::{TcpListener, TcpStream};
use goro::signal::{self, SIGINT, SIGTERM};
use goro::sync::WaitGroup;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// How long `/slow` takes.
const SLOW: Duration = Duration::from_millis(500);

/// Answers one request. It runs inside the connection's `block_on`, on the
/// connection's coroutine, so it may call goro's blocking-looking APIs.
async fn handle(
    req: Request<Incoming>,
    counter: Sender<Sender<u64>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match req.uri().path() {
        "/count" => {
            let (reply, answer) = chan(1);
            let n = match counter.send(reply) {
                Ok(()) => answer.recv().unwrap_or(0),
                Err(_) => 0,
            };
            format!("request {n}\n")
        }
        "/slow" => {
            goro::sleep(SLOW);
            format!("slept {SLOW:?}\n")
        }
        _ => "Hello, World!\n".to_string(),
    };
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// Serves one connection until the client is done or, after `stop` is
/// cancelled, until its request in flight (if any) has its answer.
fn serve(conn: TcpStream, stop: Context, counter: Sender<Sender<u64>>) {
    let svc = hyper::service::service_fn(move |req| handle(req, counter.clone()));
    let http = hyper::server::conn::http1::Builder::new()
        .timer(goro::hyper::Timer)
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(conn), svc);
    let mut http = pin!(http);
    // Serve until the connection ends or shutdown begins; the future is
    // borrowed, so giving up here leaves it as it was.
    if goro::block_on_context(&stop, http.as_mut()).is_ok() {
        return;
    }
    // Shutdown: finish the request in flight, close an idle connection.
    http.as_mut().graceful_shutdown();
    let _ = goro::block_on(http);
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    goro::run(move || {
        let ln = match TcpListener::bind(addr.as_str()) {
            Ok(ln) => ln,
            Err(e) => {
                eprintln!("hyper: {e}");
                std::process::exit(1);
            }
        };
        println!("listening {}", ln.local_addr().expect("a bound address"));

        // A counter owned by one coroutine: handlers ask it over a channel.
        let (counter, requests) = chan::<Sender<u64>>(0);
        goro::go!(move || {
            let mut n = 0;
            for reply in &requests {
                n += 1;
                let _ = reply.send(n);
            }
        });

        // Shutdown: a signal cancels `stop` and closes the listener.
        let (stop, cancel) = context::with_cancel(&Context::background());
        let signals = signal::notify(&[SIGTERM, SIGINT]).expect("signal handlers");
        let ln = std::sync::Arc::new(ln);
        let closer = ln.clone();
        goro::go!(move || {
            if let Ok(sig) = signals.recv() {
                eprintln!("hyper: {sig}: shutting down");
                cancel.cancel();
                let _ = closer.close();
            }
        });

        let conns = WaitGroup::new();
        loop {
            match ln.accept() {
                Ok((conn, _)) => {
                    let (stop, counter) = (stop.clone(), counter.clone());
                    conns.go(move || serve(conn, stop, counter));
                }
                Err(e) if goro::net::is_closed(&e) => break,
                // Out of fds (after accept's own backoff) or an aborted
                // connection: the server goes on.
                Err(e) => eprintln!("hyper: accept: {e}"),
            }
        }
        conns.wait();
        eprintln!("hyper: every connection done");
    });
}
