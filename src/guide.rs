//! Guides: how to use goro with the rest of the Rust ecosystem. This module
//! holds documentation only.
//!
//! # Calling blocking code
//!
//! goro schedules cooperatively: a coroutine gives its worker thread up only
//! when it blocks *in goro* (a goro socket, channel, lock, `sleep`, `join`),
//! yields or returns. A call that blocks the OS thread instead — a std
//! socket or file, a DNS lookup, a database driver, a C library, a long
//! computation — holds the worker, and every coroutine already started on
//! that worker waits until the call returns: a started coroutine never
//! changes thread. New coroutines run on other workers, but the stranded
//! ones may be exactly the ones the call waits for. A blocking HTTP client
//! called in a coroutine against a goro server in the same process hangs
//! for good when the server's accept loop was started on the client's
//! worker: the client waits for the server, the server for the worker.
//!
//! The runtime's monitor reports a worker held for more than 100 ms
//! (`runtime::Builder::hold_threshold`), with what its thread is blocked
//! in and who waits behind it:
//!
//! ```text
//! goro: coroutine 'main' (#1) has held worker 0 for 107 ms without yielding, blocked in recvfrom(fd 7); run blocking calls in goro::blocking
//!   spawned at src/main.rs:12:5
//!   coroutines already started on worker 0 wait until it yields (a started coroutine never changes thread); new ones run elsewhere
//!   waiting behind it: 'accept loop' (#2, parked: read fd 5)
//! ```
//!
//! and a worker held for more than a quarter of a second by shorter calls
//! (`goro: worker 0 was held for at least 640 ms of the last second by 21
//! runs without yielding...`). Both mean: move that call off the worker,
//! as below. The report names the cause where it can: `blocked in futex:
//! this looks like a std lock ... held across a goro call` (see [below](#a-std-mutex-held-across-a-park);
//! still there after 3 s, it is reported as a likely deadlock), `making
//! system calls in a loop without parking` (a sync client on std sockets),
//! or `computing`. A hold that strands nobody (no other coroutine started
//! on that worker, no socket registered there) is not reported, and a
//! worker that the OS kept off the CPU (more busy threads than cores) gets
//! a line saying so rather than a report blaming its coroutine.
//!
//! ## What goes in `goro::blocking`
//!
//! [`blocking`](crate::blocking) runs a closure on a pool of plain threads
//! and parks only the calling coroutine until it returns. Put there:
//!
//! - std file and socket I/O on std types (`std::fs`, `std::net`), when you
//!   cannot use [`goro::fs`](crate::fs) or [`goro::net`](crate::net), which
//!   do this for you;
//! - DNS lookups through the system resolver (`std::net::ToSocketAddrs`,
//!   `getaddrinfo`); goro's own `connect` and `dial` resolve off the
//!   worker already;
//! - database drivers and other client libraries that block (see below);
//! - CPU-heavy work: hashing, compression, parsing a large document,
//!   anything that runs for more than a millisecond or so without yielding.
//!   A loop you own can call [`yield_now`](crate::yield_now) now and then
//!   instead.
//!
//! The closure must be `Send + 'static`: move what it needs in, get it back
//! in its result.
//!
//! ```
//! use std::io::Write;
//!
//! goro::run(|| -> std::io::Result<()> {
//!     let path = std::env::temp_dir().join(format!("goro-guide-{}", std::process::id()));
//!     // File I/O on std types: on the pool, not on the worker.
//!     let p = path.clone();
//!     goro::blocking(move || {
//!         let mut f = std::fs::File::create(&p)?;
//!         f.write_all(b"hello")?;
//!         f.sync_all()
//!     })?;
//!     let p = path.clone();
//!     let text = goro::blocking(move || std::fs::read_to_string(p))?;
//!     assert_eq!(text, "hello");
//!     goro::blocking(move || std::fs::remove_file(path))?;
//!
//!     // A long computation.
//!     let sum: u64 = goro::blocking(|| (0..1_000_000u64).map(|x| x % 7).sum());
//!     assert_eq!(sum, 2_999_997);
//!     Ok(())
//! })
//! .unwrap();
//! ```
//!
//! A DNS lookup (not run here: it needs a resolver):
//!
//! ```no_run
//! use std::net::ToSocketAddrs;
//!
//! goro::run(|| -> std::io::Result<()> {
//!     let addrs: Vec<_> =
//!         goro::blocking(|| ("example.com", 443).to_socket_addrs().map(Iterator::collect))?;
//!     println!("{addrs:?}");
//!     Ok(())
//! })
//! .unwrap();
//! ```
//!
//! A call that blocks for good, or a driver that keeps a thread busy all
//! the time, is better on a plain thread of its own
//! (`std::thread::spawn`), talking to coroutines over goro
//! [channels](crate::chan), which work from plain threads too: the pool
//! (512 threads by default, `runtime::Builder::blocking_threads`) is for
//! calls that end.
//!
//! What a call costs: an empty `goro::blocking` round trip (submit, a pool
//! thread wakes and runs it, the coroutine wakes with the result) takes
//! about 8 µs, against under a nanosecond for the plain call; 100
//! coroutines calling at once get about 5 µs per call (2 cores, measured
//! with `cargo run --release --example blocking_load -- --round-trips
//! 100000`; docs/benchmarks.md). Next to a database query's round trip of
//! 100 µs and more, that is noise; for a call that takes a microsecond,
//! batch several into one closure. Pool threads run at a lower priority
//! (nice 15) than the workers, so a hundred of them computing at once do
//! not keep the workers off the CPU.
//!
//! ## Crates generic over `Read` and `Write` work unchanged
//!
//! goro's stream sockets ([`TcpStream`](crate::net::TcpStream),
//! [`UnixStream`](crate::net::UnixStream) and [`Conn`](crate::net::Conn))
//! implement `std::io::Read` and `std::io::Write`, as do shared references
//! to them, and their reads and writes park only the coroutine. So a crate
//! that takes any `S: Read + Write` — rustls' `StreamOwned`, tungstenite's
//! `WebSocket`, native-tls — or that only parses the bytes you give it, as
//! httparse does, works in a coroutine as it is: hand it a goro socket
//! where you would have handed it a std one. Here a function generic over
//! the stream, standing in for such a crate, talks over goro sockets:
//!
//! ```
//! use std::io::{self, BufRead, BufReader, Read, Write};
//!
//! /// A line-based greeting over any byte stream, as a crate would write it.
//! fn greet<S: Read + Write>(mut stream: S, name: &str) -> io::Result<String> {
//!     writeln!(stream, "hello {name}")?;
//!     let mut reply = String::new();
//!     BufReader::new(stream).read_line(&mut reply)?;
//!     Ok(reply)
//! }
//!
//! goro::run(|| -> io::Result<()> {
//!     let ln = goro::net::TcpListener::bind("127.0.0.1:0")?;
//!     let addr = ln.local_addr()?;
//!     let server = goro::spawn(move || -> io::Result<()> {
//!         let (conn, _) = ln.accept()?;
//!         let mut line = String::new();
//!         BufReader::new(&conn).read_line(&mut line)?;
//!         (&conn).write_all(line.replace("hello", "welcome").as_bytes())
//!     });
//!     // The crate gets a goro socket: its reads and writes park, not block.
//!     let reply = greet(goro::net::TcpStream::connect(addr)?, "goro")?;
//!     assert_eq!(reply, "welcome goro\n");
//!     server.join().unwrap()
//! })
//! .unwrap();
//! ```
//!
//! With the real crates the change is the same one line. These snippets
//! need the rustls and tungstenite crates, which goro does not depend on,
//! so they are not compiled here:
//!
//! ```ignore
//! // rustls: TLS over a goro socket (`config` is an Arc<rustls::ClientConfig>).
//! let tcp = goro::net::TcpStream::connect("example.com:443")?;
//! let conn = rustls::ClientConnection::new(config, "example.com".try_into()?)?;
//! let mut tls = rustls::StreamOwned::new(conn, tcp);
//!
//! // tungstenite: a WebSocket client, and a server on an accepted goro socket.
//! let tcp = goro::net::TcpStream::connect("127.0.0.1:9001")?;
//! let (mut ws, _response) = tungstenite::client("ws://127.0.0.1:9001/", tcp)?;
//! let (conn, _) = listener.accept()?;
//! let mut ws = tungstenite::accept(conn)?;
//! ```
//!
//! ## Crates that open their own std sockets
//!
//! Blocking clients that connect by themselves — ureq, `reqwest::blocking`,
//! the synchronous postgres, mysql and redis drivers — make std sockets
//! inside and block the thread in them; there is no socket to swap. Two
//! ways to use them:
//!
//! - Call them inside `goro::blocking`, one whole operation per call. A
//!   client or connection that must be reused moves into the closure and
//!   comes back with the result (or lives on a thread of its own, as
//!   above). These snippets need the ureq and postgres crates:
//!
//!   ```ignore
//!   let body = goro::blocking(move || -> Result<String, ureq::Error> {
//!       ureq::get(&url).call()?.body_mut().read_to_string()
//!   })?;
//!
//!   let mut db = goro::blocking(|| {
//!       postgres::Client::connect("host=127.0.0.1 user=app", postgres::NoTls)
//!   })?;
//!   let (db, rows) = goro::blocking(move || {
//!       let rows = db.query("SELECT id, name FROM users", &[]);
//!       (db, rows)
//!   });
//!   ```
//!
//! - Or use the crate's async client with the `tokio` feature, through
//!   [`block_on`](crate::block_on): the future is polled on the calling
//!   coroutine, which parks while it is pending, and tokio's reactor and
//!   timer run on a thread of their own. reqwest, tokio-postgres and sqlx
//!   work this way (`examples/http_client.rs` runs reqwest from 100
//!   coroutines against a goro server in the same process). This snippet
//!   needs the reqwest crate and goro's `tokio` feature:
//!
//!   ```ignore
//!   let client = reqwest::Client::new();
//!   let body = goro::block_on(async { client.get(&url).send().await?.text().await })?;
//!   ```
//!
//! ## A pool of connections on a channel
//!
//! A goro channel holding the idle connections is a pool: taking one is a
//! receive, which parks while all are in use; giving it back is a send.
//! A guard that sends the connection back when dropped keeps one from
//! being lost on an early return, and since the guard owns its way home,
//! it can move into `goro::blocking` with a sync driver's connection.
//! Here `Db` stands in for such a driver (a postgres `Client`, say), whose
//! queries block the thread:
//!
//! ```
//! use goro::chan::{chan, Receiver, Sender};
//! use std::ops::{Deref, DerefMut};
//!
//! /// Connections shared by coroutines; `get` parks while all are in use.
//! struct Pool<C> {
//!     idle: Receiver<C>,
//!     home: Sender<C>,
//! }
//!
//! /// A connection taken from a pool; dropping it puts it back.
//! struct Pooled<C> {
//!     conn: Option<C>,
//!     home: Sender<C>,
//! }
//!
//! impl<C: Send + 'static> Pool<C> {
//!     fn new(conns: Vec<C>) -> Pool<C> {
//!         let (home, idle) = chan(conns.len());
//!         for c in conns {
//!             home.send(c).unwrap();
//!         }
//!         Pool { idle, home }
//!     }
//!
//!     fn get(&self) -> Pooled<C> {
//!         let conn = self.idle.recv().expect("the pool holds its own sender");
//!         Pooled { conn: Some(conn), home: self.home.clone() }
//!     }
//! }
//!
//! impl<C> Deref for Pooled<C> {
//!     type Target = C;
//!     fn deref(&self) -> &C {
//!         self.conn.as_ref().unwrap()
//!     }
//! }
//!
//! impl<C> DerefMut for Pooled<C> {
//!     fn deref_mut(&mut self) -> &mut C {
//!         self.conn.as_mut().unwrap()
//!     }
//! }
//!
//! impl<C> Drop for Pooled<C> {
//!     fn drop(&mut self) {
//!         // Never waits: the channel has room for every connection.
//!         let _ = self.home.try_send(self.conn.take().unwrap());
//!     }
//! }
//!
//! /// A sync driver's connection: its queries block the thread.
//! struct Db {
//!     id: usize,
//! }
//!
//! impl Db {
//!     fn query(&mut self, sql: &str) -> String {
//!         std::thread::sleep(std::time::Duration::from_millis(1));
//!         format!("{sql} on connection {}", self.id)
//!     }
//! }
//!
//! goro::run(|| {
//!     let pool = std::sync::Arc::new(Pool::new((0..4).map(|id| Db { id }).collect()));
//!     let clients: Vec<_> = (0..20)
//!         .map(|i| {
//!             let pool = pool.clone();
//!             goro::spawn(move || {
//!                 let mut db = pool.get(); // parks while all four are busy
//!                 // The query blocks a pool thread, not the worker; `db`
//!                 // goes home when the closure drops it.
//!                 goro::blocking(move || db.query(&format!("SELECT {i}")))
//!             })
//!         })
//!         .collect();
//!     for c in clients {
//!         assert!(c.join().unwrap().starts_with("SELECT "));
//!     }
//!     assert_eq!(pool.idle.len(), 4, "every connection is back");
//! });
//! ```
//!
//! Goro sockets need no `goro::blocking`: a pool of `goro::net::TcpStream`
//! connections to a service with a line protocol is the same `Pool`, used
//! directly from the coroutine.
//!
//! ## Graceful shutdown of an HTTP server
//!
//! On SIGTERM a server should stop accepting, let requests in progress
//! finish, and close the keep-alive connections that sit idle between
//! requests (they would otherwise hold it up until the client leaves), as
//! Go's `http.Server.Shutdown` does. Each connection records itself as
//! idle while it waits for its next request; the shutdown, under the same
//! lock, marks the server closing and closes the listener and the idle
//! connections, which wakes their readers with the closed error. A busy
//! connection sees the mark after its response and ends. A `Context`
//! carries the request to shut down (a signal in `main`; a cancel here):
//!
//! ```
//! use goro::context::{self, Context};
//! use goro::net::{TcpListener, TcpStream};
//! use goro::sync::{Mutex, WaitGroup};
//! use std::collections::HashMap;
//! use std::io::{self, BufRead, BufReader, Read, Write};
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicBool, Ordering};
//!
//! /// Connections waiting for their next request, and whether the server
//! /// is closing (set under `conns`' lock).
//! #[derive(Default)]
//! struct Idle {
//!     conns: Mutex<HashMap<u64, Arc<TcpStream>>>,
//!     closing: AtomicBool,
//! }
//!
//! /// Serves until `ctx` is done, then shuts down gracefully.
//! fn serve(ln: TcpListener, ctx: Context) -> io::Result<()> {
//!     let ln = Arc::new(ln);
//!     let idle = Arc::new(Idle::default());
//!     let stopper = goro::spawn({
//!         let (ln, idle) = (ln.clone(), idle.clone());
//!         move || {
//!             let _ = ctx.done().recv();
//!             let conns = idle.conns.lock();
//!             idle.closing.store(true, Ordering::SeqCst);
//!             let _ = ln.close();
//!             for conn in conns.values() {
//!                 let _ = conn.close();
//!             }
//!         }
//!     });
//!     let handlers = Arc::new(WaitGroup::new());
//!     for id in 0.. {
//!         let conn = match ln.accept() {
//!             Ok((conn, _)) => Arc::new(conn),
//!             Err(_) if idle.closing.load(Ordering::SeqCst) => break,
//!             // Out of fds, accept has parked a moment: log, go on.
//!             Err(e) => {
//!                 eprintln!("accept: {e}");
//!                 continue;
//!             }
//!         };
//!         handlers.add(1);
//!         let (idle, handlers) = (idle.clone(), handlers.clone());
//!         goro::go!(move || {
//!             let _ = handle(id, conn, &idle);
//!             handlers.done();
//!         });
//!     }
//!     handlers.wait();
//!     stopper.join().unwrap();
//!     Ok(())
//! }
//!
//! /// Answers requests (without bodies, for brevity) until the client
//! /// leaves or the server closes.
//! fn handle(id: u64, conn: Arc<TcpStream>, idle: &Idle) -> io::Result<()> {
//!     let mut reader = BufReader::new(&*conn);
//!     loop {
//!         {
//!             let mut conns = idle.conns.lock();
//!             if idle.closing.load(Ordering::SeqCst) {
//!                 return Ok(());
//!             }
//!             conns.insert(id, conn.clone());
//!         }
//!         // Idle until the next request's first byte (or the close).
//!         let more = reader.fill_buf().map(|b| !b.is_empty());
//!         idle.conns.lock().remove(&id);
//!         if !more? {
//!             return Ok(());
//!         }
//!         let mut line = String::new();
//!         while reader.read_line(&mut line)? > 2 {
//!             line.clear();
//!         }
//!         (&*conn).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")?;
//!         if idle.closing.load(Ordering::SeqCst) {
//!             return Ok(());
//!         }
//!     }
//! }
//!
//! /// A real server's `main`: SIGINT or SIGTERM shuts it down.
//! #[allow(dead_code)]
//! fn main_with_signals() -> io::Result<()> {
//!     use goro::signal::{self, SIGINT, SIGTERM};
//!     goro::run(|| {
//!         let (ctx, cancel) = context::with_cancel(&Context::background());
//!         let signals = signal::notify(&[SIGINT, SIGTERM])?;
//!         goro::go!(move || {
//!             let _ = signals.recv();
//!             cancel.cancel();
//!         });
//!         serve(TcpListener::bind("0.0.0.0:8080")?, ctx)
//!     })
//! }
//!
//! // Here: one keep-alive client makes a request and stays; shutting down
//! // closes its connection and `serve` returns.
//! goro::run(|| -> io::Result<()> {
//!     let ln = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = ln.local_addr()?;
//!     let (ctx, cancel) = context::with_cancel(&Context::background());
//!     let server = goro::spawn(move || serve(ln, ctx));
//!     let client = TcpStream::connect(addr)?;
//!     (&client).write_all(b"GET / HTTP/1.1\r\nHost: goro\r\n\r\n")?;
//!     let mut response = BufReader::new(&client);
//!     let mut line = String::new();
//!     while response.read_line(&mut line)? > 2 {
//!         line.clear();
//!     }
//!     let mut body = [0u8; 3];
//!     response.read_exact(&mut body)?;
//!     assert_eq!(&body, b"ok\n");
//!     cancel.cancel();
//!     server.join().unwrap()?;
//!     // The server closed the idle connection: end of file.
//!     assert_eq!(response.read(&mut body)?, 0);
//!     Ok(())
//! })
//! .unwrap();
//! ```
//!
//! ## A std `Mutex` held across a park
//!
//! A `std::sync::Mutex` (or parking_lot's) blocks the *thread* that waits
//! for it. That is fine for a short critical section that never parks. But
//! when a coroutine parks while holding the guard — a goro socket read, a
//! channel, `goro::sleep`, a `goro::blocking` call — another coroutine on
//! the same worker may run and call `lock()`: the worker thread blocks in
//! the lock, so the coroutine holding the guard, which only that worker can
//! resume, never runs to release it. Both wait forever (with one worker,
//! always; with more, whenever the two share one), and the monitor reports
//! the worker `blocked in futex: this looks like a std lock (Mutex, RwLock
//! or Condvar) held across a goro call`, then, 3 s on, `likely deadlock`,
//! naming the coroutines started on that worker. This code can deadlock,
//! so it is not run here:
//!
//! ```no_run
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//!
//! goro::run(|| {
//!     let total = Arc::new(Mutex::new(0));
//!     let t = total.clone();
//!     let a = goro::spawn(move || {
//!         let mut guard = t.lock().unwrap();
//!         goro::sleep(Duration::from_millis(10)); // parks holding the guard
//!         *guard += 1;
//!     });
//!     goro::sleep(Duration::from_millis(1));
//!     *total.lock().unwrap() += 1; // blocks the worker; `a` can never wake
//!     a.join().unwrap();
//! });
//! ```
//!
//! Use [`goro::sync::Mutex`](crate::sync::Mutex) (and goro's `RwLock` and
//! `Condvar`) for anything held across a park: waiting for it parks the
//! coroutine, so the holder runs and releases it. It works from plain
//! threads too.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! goro::run(|| {
//!     let total = Arc::new(goro::sync::Mutex::new(0));
//!     let t = total.clone();
//!     let a = goro::spawn(move || {
//!         let mut guard = t.lock();
//!         goro::sleep(Duration::from_millis(10)); // parks holding the guard
//!         *guard += 1;
//!     });
//!     goro::sleep(Duration::from_millis(1));
//!     *total.lock() += 1; // parks until `a` releases the lock
//!     a.join().unwrap();
//!     assert_eq!(*total.lock(), 2);
//! });
//! ```
//!
//! # Recipes
//!
//! ## A child process with a timeout
//!
//! `std::process::Command`'s `output()` and `wait()` block the thread (in
//! `poll` and `waitpid`), so in a coroutine they hold the worker for as long
//! as the child runs. [`goro::process`](crate::process) has the same
//! `Command` and `Child`, whose waits and pipes park only the coroutine.
//! Bound a run with a [`Context`](crate::context::Context), as Go's
//! `exec.CommandContext` does: once the context is done the child is
//! killed (`SIGKILL`) and reaped, and the call fails with the context's
//! error, `TimedOut` for a deadline:
//!
//! ```
//! use std::io::ErrorKind;
//! use std::time::Duration;
//!
//! use goro::context::{self, Context};
//! use goro::process::Command;
//!
//! goro::run(|| {
//!     let (ctx, _cancel) = context::with_timeout(&Context::background(), Duration::from_millis(100));
//!     match Command::new("sh").args(["-c", "sleep 5; echo late"]).output_context(&ctx) {
//!         Ok(out) => println!("{}", String::from_utf8_lossy(&out.stdout)),
//!         Err(e) if e.kind() == ErrorKind::TimedOut => println!("gave up: {e}"),
//!         Err(e) => panic!("{e}"),
//!     }
//! });
//! ```
//!
//! The same context can bound a whole request: pass it down, and a client
//! that goes away (its handler cancels the context) kills the child too.
//! The bound covers reading the output, so a child that exits while a
//! process it started keeps its stdout open (above, the shell's `sleep`)
//! still returns in time. Only the child is killed, not what it started:
//! run the command with `exec` where it can be.
//!
//! To keep what a child printed before its time ran out, or to stream its
//! output, spawn it, read its pipes in coroutines, and bound the wait with
//! `Child::wait_timeout` (or `wait_deadline`, `wait_context`). The kill
//! closes the child's end of the pipes, so the readers then see end of
//! file, unless a process the child started holds them too (here `exec`
//! makes `sleep` the child itself):
//!
//! ```
//! use std::io::{BufRead, BufReader};
//! use std::time::Duration;
//!
//! use goro::process::{Command, Stdio};
//!
//! goro::run(|| {
//!     let mut child = Command::new("sh")
//!         .args(["-c", "echo one; echo two; exec sleep 5"])
//!         .stdout(Stdio::piped())
//!         .spawn()
//!         .unwrap();
//!     let stdout = child.stdout.take().unwrap();
//!     let lines = goro::spawn(move || {
//!         BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>()
//!     });
//!     let e = child.wait_timeout(Duration::from_millis(200)).unwrap_err();
//!     assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
//!     assert_eq!(lines.join().unwrap(), ["one", "two"]);
//! });
//! ```
//!
//! Children are always reaped, also a `Child` dropped without a wait, and
//! they start with the open-files limit the process had before goro raised
//! it.
//!
//! # Async crates on goro sockets
//!
//! A crate generic over tokio's `AsyncRead` and `AsyncWrite` — hyper
//! (through `hyper_util::rt::TokioIo`), tokio-postgres's `connect_raw`,
//! tokio-rustls, async-tungstenite, h2 — runs on a goro socket with no
//! tokio runtime at all. With the `tokio-io` feature (which `tokio` and
//! `hyper` imply), [`TcpStream`](crate::net::TcpStream) and
//! [`UnixStream`](crate::net::UnixStream) implement both traits on goro's
//! own netpoller: a poll makes the system call, and when the socket is not
//! ready the task's waker waits on the socket's poll descriptor, woken by
//! the worker's poller. Drive the crate's futures from a coroutine with
//! [`block_on`](crate::block_on): the coroutine parks in the netpoller
//! (a dump shows it waiting on the fd, as a blocking read would), and
//! nothing else runs on its behalf — no thread, no reactor.
//!
//! The same readiness is there for hand-written futures on every socket
//! type: `poll_read_ready`/`poll_write_ready` and `readable()`/`writable()`,
//! with `try_read`/`try_write`, `try_send`/`try_recv`,
//! `try_send_to`/`try_recv_from` and `try_accept`/`poll_accept`, which
//! return `WouldBlock` instead of parking. Deadlines and `close` end a wait
//! with the blocking calls' errors (`TimedOut`, and the closed error that
//! [`is_closed`](crate::net::is_closed) recognizes). Readiness is per waker:
//! a future may be polled from any coroutine or plain thread, and moved
//! between them; a dropped `readable()` future takes its waker with it.
//!
//! tokio-postgres over a goro socket: connect the socket with goro, hand it
//! to `connect_raw`, and drive the `Connection` future — which does the
//! actual I/O — in a coroutine of its own, as tokio-postgres asks of a
//! spawned task. Queries then run from any coroutine through the `Client`.
//! This snippet needs the tokio-postgres crate and goro's `tokio-io`
//! feature:
//!
//! ```ignore
//! use tokio_postgres::{Config, NoTls};
//!
//! let config: Config = "host=127.0.0.1 user=app dbname=app".parse()?;
//! let socket = goro::net::TcpStream::connect("127.0.0.1:5432")?;
//! let (client, connection) = goro::block_on(config.connect_raw(socket, NoTls))?;
//! goro::go!(move || {
//!     if let Err(e) = goro::block_on(connection) {
//!         eprintln!("postgres connection: {e}");
//!     }
//! });
//! let rows = goro::block_on(client.query("SELECT id, name FROM users", &[]))?;
//! ```
//!
//! hyper serves the same way: one coroutine per accepted connection,
//! `goro::block_on` on `http1::Builder::serve_connection(TokioIo::new(conn),
//! svc)`, with the `hyper` feature's `goro::hyper::Timer` set on the
//! builder (hyper's header-read timeout needs a timer) and
//! `goro::hyper::Executor` for HTTP/2. The service's futures run on the
//! connection's coroutine, so a handler may call goro's blocking-looking
//! APIs (a channel, `goro::sleep`, a goro socket): they park only that
//! connection. `examples/hyper.rs` is a whole server, with graceful
//! shutdown.
//!
//! What still needs the `tokio` feature's reactor (a tokio runtime on a
//! thread of its own, started by `block_on` on first use): crates that open
//! sockets or timers themselves through `tokio::net` and `tokio::time` —
//! reqwest and hyper-util's client, `tokio_postgres::connect` (rather than
//! `connect_raw`), sqlx, redis's async connections, tokio's own timers —
//! and `tokio::spawn`. Enable `tokio-io` or `hyper` without `tokio` when
//! every socket is goro's: then no tokio thread ever starts.
