//! Load on `goro::blocking`: many coroutines making short blocking calls,
//! as a server does with a sync database driver, while ticker coroutines
//! measure how late their worker serves them.
//!
//! ```text
//! cargo run --release --example blocking_load                 # 1 ms sleeps
//! cargo run --release --example blocking_load -- --burn-us 300 # CPU, then sleep
//! cargo run --release --example blocking_load -- --runs 5 --burn-us 300
//! ```
//!
//! Each run is a child process (2 workers unless `GORO_WORKERS` says
//! otherwise) whose stderr is read for the monitor's reports: the line
//! printed per run gives the held-worker reports (long holds and short-hold
//! summaries), the latest tick of each worker's tickers, and the wall time.
//! Options: `--coroutines N` (100), `--calls N` (200), `--sleep-ms N` (1),
//! `--burn-us N` (0), `--runs N` (1), `--pool-threads N` (the default cap).
//!
//! `--round-trips N` measures instead what a `goro::blocking` call costs
//! over a plain call: N empty calls made one after another from one
//! coroutine, then from 100 coroutines at once, in nanoseconds per call.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Marks the child process that runs the load.
const CHILD: &str = "GORO_BLOCKING_LOAD_CHILD";
/// A tick's period.
const TICK: Duration = Duration::from_millis(10);
/// Callers that spawn a ticker: enough that each worker starts some.
const TICKER_SPAWNERS: usize = 16;
/// Tickers kept per worker; the others leave at once.
const PER_WORKER: usize = 2;

struct Options {
    coroutines: usize,
    calls: usize,
    sleep: Duration,
    burn: Duration,
    runs: usize,
    /// `Builder::blocking_threads`, if given.
    pool_threads: Option<usize>,
    /// If given, measure the cost of this many empty calls instead.
    round_trips: Option<usize>,
}

fn options() -> Options {
    let mut o = Options {
        coroutines: 100,
        calls: 200,
        sleep: Duration::from_millis(1),
        burn: Duration::ZERO,
        runs: 1,
        pool_threads: None,
        round_trips: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = || -> u64 {
            pair.get(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{} needs a number", pair[0]))
        };
        match pair[0].as_str() {
            "--coroutines" => o.coroutines = value() as usize,
            "--calls" => o.calls = value() as usize,
            "--sleep-ms" => o.sleep = Duration::from_millis(value()),
            "--burn-us" => o.burn = Duration::from_micros(value()),
            "--runs" => o.runs = value() as usize,
            "--pool-threads" => o.pool_threads = Some(value() as usize),
            "--round-trips" => o.round_trips = Some(value() as usize),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// Burns CPU for `d` without a system call.
fn burn(d: Duration) {
    let end = Instant::now() + d;
    let mut x = 0u64;
    while Instant::now() < end {
        for _ in 0..100 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

/// Ticks every `TICK` until `stop`, then records in `late` how late its
/// latest tick was, under its worker's thread id (a started coroutine stays
/// on its worker). Leaves at once if its worker has `PER_WORKER` tickers.
fn ticker(stop: &AtomicBool, late: &Mutex<BTreeMap<i64, (usize, Duration)>>) {
    // SAFETY: gettid has no arguments and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    {
        let mut late = late.lock().unwrap();
        let (count, _) = late.entry(tid).or_default();
        if *count == PER_WORKER {
            return;
        }
        *count += 1;
    }
    let mut worst = Duration::ZERO;
    let mut next = Instant::now() + TICK;
    while !stop.load(Ordering::Relaxed) {
        goro::sleep(next.saturating_duration_since(Instant::now()));
        worst = worst.max(Instant::now().saturating_duration_since(next));
        next += TICK;
    }
    let mut late = late.lock().unwrap();
    let (_, w) = late.entry(tid).or_default();
    *w = (*w).max(worst);
}

/// The load itself, in the child: prints one line per worker thread
/// (`worker tid=... max_late_ms=...`) and `wall_ms=...`.
fn load(o: &Options) {
    let (coroutines, calls, sleep, burn_for) = (o.coroutines, o.calls, o.sleep, o.burn);
    if let Some(n) = o.pool_threads {
        goro::runtime::Builder::new()
            .blocking_threads(n)
            .start()
            .expect("start the runtime");
    }
    goro::run(move || {
        let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        let late: &'static Mutex<BTreeMap<i64, (usize, Duration)>> = Box::leak(Box::default());
        let tickers: &'static Mutex<Vec<goro::JoinHandle<()>>> = Box::leak(Box::default());
        let start = Instant::now();
        // The first callers each spawn a ticker, which runs on whichever
        // worker starts it: so tickers end up on every worker.
        let callers: Vec<_> = (0..coroutines)
            .map(|i| {
                goro::spawn(move || {
                    if i < TICKER_SPAWNERS {
                        let t = goro::spawn(move || ticker(stop, late));
                        tickers.lock().unwrap().push(t);
                    }
                    for _ in 0..calls {
                        goro::blocking(move || {
                            burn(burn_for);
                            std::thread::sleep(sleep);
                        });
                    }
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
        let wall = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        for t in tickers.lock().unwrap().drain(..) {
            t.join().unwrap();
        }
        for (tid, (n, worst)) in late.lock().unwrap().iter() {
            println!(
                "worker tid={tid} tickers={n} max_late_ms={:.1}",
                worst.as_secs_f64() * 1e3
            );
        }
        println!("wall_ms={}", wall.as_millis());
    });
}

/// Nanoseconds per call of `n` calls of `call`.
fn per_call(n: usize, call: impl Fn(u64) -> u64) -> f64 {
    let start = Instant::now();
    let mut x = 0;
    for i in 0..n {
        x = call(std::hint::black_box(i as u64 ^ x));
    }
    std::hint::black_box(x);
    start.elapsed().as_nanos() as f64 / n as f64
}

/// What an empty `goro::blocking` call costs, against a plain call.
fn round_trips(n: usize) {
    let plain = per_call(n, |x| std::hint::black_box(x + 1));
    let (one, many) = goro::run(move || {
        let one = per_call(n, |x| goro::blocking(move || std::hint::black_box(x + 1)));
        let start = Instant::now();
        let callers: Vec<_> = (0..100)
            .map(|_| goro::spawn(move || per_call(n / 100, |x| goro::blocking(move || x + 1))))
            .collect();
        for c in callers {
            c.join().unwrap();
        }
        (
            one,
            start.elapsed().as_nanos() as f64 / (n / 100 * 100) as f64,
        )
    });
    println!(
        "plain call {plain:.1} ns; goro::blocking round trip {one:.0} ns \
         (one coroutine, calls in a row); {many:.0} ns per call (100 coroutines at once)"
    );
}

fn main() {
    let o = options();
    if let Some(n) = o.round_trips {
        round_trips(n);
        return;
    }
    if std::env::var_os(CHILD).is_some() {
        load(&o);
        return;
    }
    let exe = std::env::current_exe().expect("this program's path");
    let args: Vec<String> = std::env::args().skip(1).collect();
    for run in 1..=o.runs {
        let mut cmd = Command::new(&exe);
        cmd.args(&args).env(CHILD, "1");
        if std::env::var_os("GORO_WORKERS").is_none() {
            cmd.env("GORO_WORKERS", "2");
        }
        let out = cmd.output().expect("run the load");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let long = stderr.matches("has held worker").count();
        let short = stderr.matches("of the last second by").count();
        let descheduled = stderr.matches("waiting for a CPU").count();
        let late: Vec<&str> = stdout
            .lines()
            .filter_map(|l| l.split("max_late_ms=").nth(1))
            .collect();
        let wall = stdout
            .lines()
            .find_map(|l| l.strip_prefix("wall_ms="))
            .unwrap_or("?");
        println!(
            "run {run}: held-worker reports {long} long + {short} short; \
             descheduled-worker notes {descheduled}; \
             max tick lateness per worker (ms) [{}]; wall {wall} ms{}",
            late.join(", "),
            if out.status.success() { "" } else { "; FAILED" }
        );
        if long + short + descheduled > 0 || !out.status.success() {
            eprint!("{stderr}");
        }
    }
}
