//! An async HTTP client crate (reqwest, built on tokio) called from many
//! coroutines in plain blocking style, against a goro HTTP server in the
//! same process on 127.0.0.1.
//!
//! ```text
//! cargo run --release --features example-http-client --example http_client
//! cargo run --release --features example-http-client --example http_client -- 500 20
//! ```
//!
//! The arguments are how many client coroutines (100 by default) and how
//! many requests each makes in turn (10). The feature turns on `tokio` and
//! brings in reqwest, which no other build compiles.
//!
//! `goro::block_on` runs reqwest's futures; with the `tokio` feature it
//! supplies the tokio reactor and timer they need, so there is no runtime
//! to set up. Each coroutine parks while its request is in flight, and the
//! server's coroutines run meanwhile. One `reqwest::Client` is shared, so
//! its connection pool is too.

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use goro::net::Conn;

/// How long one request may take before the example reports it failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest request head the server accepts.
const HEAD_MAX: usize = 8192;

/// Answers every GET on `conn` with its own path as the body, until the
/// client hangs up or sends what this server does not understand.
fn serve_conn(mut conn: Conn) {
    let mut buf = vec![0u8; HEAD_MAX];
    let mut have = 0;
    loop {
        while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let Some(path) = head
                .lines()
                .next()
                .and_then(|line| line.strip_prefix("GET "))
                .and_then(|rest| rest.split(' ').next())
            else {
                let _ = conn.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                return;
            };
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{path}",
                path.len()
            );
            if conn.write_all(response.as_bytes()).is_err() {
                return;
            }
            buf.copy_within(end + 4..have, 0);
            have -= end + 4;
        }
        if have == buf.len() {
            return;
        }
        match conn.read(&mut buf[have..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
    }
}

/// `REQUESTS` GETs, one after another, each checked to come back with its
/// own path. Returns how many succeeded; prints why the others failed.
fn client(client: reqwest::Client, base: String, id: usize, requests: usize) -> usize {
    let mut ok = 0;
    for n in 0..requests {
        let path = format!("/client/{id}/request/{n}");
        let url = format!("{base}{path}");
        let got = goro::block_on_timeout(
            async {
                client
                    .get(&url)
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await
            },
            REQUEST_TIMEOUT,
        );
        match got {
            Ok(Ok(body)) if body == path => ok += 1,
            Ok(Ok(body)) => eprintln!("{url}: wrong body {body:?}"),
            Ok(Err(e)) => eprintln!("{url}: {e}"),
            Err(e) => eprintln!("{url}: {e}"),
        }
    }
    ok
}

fn arg(n: usize, default: usize) -> io::Result<usize> {
    match std::env::args().nth(n) {
        None => Ok(default),
        Some(s) => s.parse().map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{s:?} is not a count"))
        }),
    }
}

fn run() -> io::Result<bool> {
    let clients = arg(1, 100)?;
    let requests = arg(2, 10)?;
    let ln = goro::net::listen("tcp", "127.0.0.1:0")?;
    let base = format!("http://{}", ln.local_addr()?);
    goro::go!(move || {
        while let Ok((conn, _)) = ln.accept() {
            goro::go!(serve_conn(conn));
        }
    });
    let http = reqwest::Client::new();
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|id| goro::go!(client(http.clone(), base.clone(), id, requests)))
        .collect();
    let ok: usize = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let total = clients * requests;
    println!(
        "{ok}/{total} requests answered correctly, from {clients} coroutines, in {:?}",
        start.elapsed()
    );
    Ok(ok == total)
}

fn main() -> ExitCode {
    match goro::run(run) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("http_client: {e}");
            ExitCode::FAILURE
        }
    }
}
