//! `goro::runtime::trace`: execution traces as Chrome trace-event JSON,
//! and the flight recorder.
//!
//! The JSON is read back with a small parser below (no serde): the tests
//! check its structure as Perfetto and `chrome://tracing` need it, and
//! that a known program's coroutines and park reasons are in it.

mod common;

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use goro::runtime::trace::{self, FlightRecorder};

/// One trace at a time in this process: `start` refuses a second.
static TRACING: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    TRACING.lock().unwrap_or_else(|e| e.into_inner())
}

/// A writer whose bytes the test keeps.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("the trace is UTF-8")
    }
}

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
    fn num(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }
}

/// Parses one JSON document; panics with the offset on malformed input.
fn parse(text: &str) -> Json {
    struct P<'a> {
        s: &'a [u8],
        i: usize,
    }
    impl P<'_> {
        fn ws(&mut self) {
            while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }
        fn eat(&mut self, c: u8) {
            self.ws();
            assert_eq!(
                self.s.get(self.i),
                Some(&c),
                "expected {:?} at {}",
                c as char,
                self.i
            );
            self.i += 1;
        }
        fn value(&mut self) -> Json {
            self.ws();
            match self.s[self.i] {
                b'{' => {
                    self.i += 1;
                    let mut fields = Vec::new();
                    self.ws();
                    if self.s[self.i] == b'}' {
                        self.i += 1;
                        return Json::Obj(fields);
                    }
                    loop {
                        self.ws();
                        let Json::Str(k) = self.value() else {
                            panic!("a key must be a string at {}", self.i)
                        };
                        self.eat(b':');
                        fields.push((k, self.value()));
                        self.ws();
                        match self.s[self.i] {
                            b',' => self.i += 1,
                            b'}' => {
                                self.i += 1;
                                return Json::Obj(fields);
                            }
                            c => panic!("unexpected {:?} at {}", c as char, self.i),
                        }
                    }
                }
                b'[' => {
                    self.i += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.s[self.i] == b']' {
                        self.i += 1;
                        return Json::Arr(items);
                    }
                    loop {
                        items.push(self.value());
                        self.ws();
                        match self.s[self.i] {
                            b',' => self.i += 1,
                            b']' => {
                                self.i += 1;
                                return Json::Arr(items);
                            }
                            c => panic!("unexpected {:?} at {}", c as char, self.i),
                        }
                    }
                }
                b'"' => {
                    self.i += 1;
                    let mut out = String::new();
                    loop {
                        match self.s[self.i] {
                            b'"' => {
                                self.i += 1;
                                return Json::Str(out);
                            }
                            b'\\' => {
                                let c = self.s[self.i + 1];
                                self.i += 2;
                                match c {
                                    b'n' => out.push('\n'),
                                    b'u' => {
                                        let hex = std::str::from_utf8(&self.s[self.i..self.i + 4])
                                            .unwrap();
                                        let code = u32::from_str_radix(hex, 16).unwrap();
                                        out.push(char::from_u32(code).unwrap());
                                        self.i += 4;
                                    }
                                    c => out.push(c as char),
                                }
                            }
                            _ => {
                                let start = self.i;
                                while !matches!(self.s[self.i], b'"' | b'\\') {
                                    self.i += 1;
                                }
                                out.push_str(std::str::from_utf8(&self.s[start..self.i]).unwrap());
                            }
                        }
                    }
                }
                b't' => {
                    self.i += 4;
                    Json::Bool(true)
                }
                b'f' => {
                    self.i += 5;
                    Json::Bool(false)
                }
                b'n' => {
                    self.i += 4;
                    Json::Null
                }
                _ => {
                    let start = self.i;
                    while self.i < self.s.len()
                        && matches!(
                            self.s[self.i],
                            b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                        )
                    {
                        self.i += 1;
                    }
                    let t = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                    Json::Num(
                        t.parse()
                            .unwrap_or_else(|_| panic!("bad number {t:?} at {start}")),
                    )
                }
            }
        }
    }
    let mut p = P {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value();
    p.ws();
    assert_eq!(p.i, text.len(), "trailing text after the JSON value");
    v
}

/// The trace's events, after checking the structure Perfetto and
/// chrome://tracing rely on: every event has a phase and ids, begins and
/// ends pair up per track, every flow ends after it starts, and every
/// track is named.
fn check(text: &str) -> Vec<Json> {
    let doc = parse(text);
    let Some(Json::Arr(events)) = doc.get("traceEvents") else {
        panic!("no traceEvents array");
    };
    let mut named_tracks = Vec::new();
    let mut open: HashMap<u64, usize> = HashMap::new();
    let mut flow_starts: HashMap<u64, f64> = HashMap::new();
    let mut flow_ends = Vec::new();
    for e in events {
        let ph = e.str("ph").expect("every event has a phase");
        assert!(e.num("pid").is_some(), "no pid: {e:?}");
        if ph == "M" {
            if e.str("name") == Some("thread_name") {
                named_tracks.push(e.num("tid").unwrap() as u64);
            }
            continue;
        }
        let tid = e.num("tid").expect("a tid") as u64;
        let ts = e.num("ts").expect("a timestamp");
        assert!(ts >= 0.0);
        assert!(named_tracks.contains(&tid), "track {tid} has no name");
        match ph {
            "B" => {
                assert!(e.str("name").is_some(), "a slice has a name: {e:?}");
                let depth = open.entry(tid).or_default();
                *depth += 1;
                assert_eq!(*depth, 1, "slices on one track do not nest here: {e:?}");
            }
            "E" => {
                let depth = open.entry(tid).or_default();
                assert_eq!(*depth, 1, "an end without a begin on track {tid}");
                *depth -= 1;
            }
            "X" => assert!(e.num("dur").is_some()),
            "i" => assert!(e.str("name").is_some()),
            "s" => {
                let id = e.num("id").unwrap() as u64;
                assert!(
                    flow_starts.insert(id, ts).is_none(),
                    "flow {id} starts twice"
                );
            }
            "f" => flow_ends.push((e.num("id").unwrap() as u64, ts)),
            other => panic!("unexpected phase {other}"),
        }
    }
    assert!(open.values().all(|d| *d == 0), "slices left open: {open:?}");
    for (id, ts) in flow_ends {
        let start = flow_starts
            .get(&id)
            .unwrap_or_else(|| panic!("flow {id} never starts"));
        assert!(*start <= ts, "flow {id} ends before it starts");
    }
    events.clone()
}

/// Names of the slices that begin in `events`.
fn slice_names(events: &[Json]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.str("ph") == Some("B"))
        .filter_map(|e| e.str("name").map(String::from))
        .collect()
}

/// Why runs of slices named `name` ended.
fn ends_of(events: &[Json], name: &str) -> Vec<String> {
    let mut open: HashMap<u64, bool> = HashMap::new();
    let mut out = Vec::new();
    for e in events {
        let tid = e.num("tid").unwrap_or(-1.0) as u64;
        match e.str("ph") {
            Some("B") => {
                open.insert(tid, e.str("name").is_some_and(|n| n.starts_with(name)));
            }
            Some("E") if open.remove(&tid) == Some(true) => {
                let then = e.get("args").and_then(|a| a.str("then"));
                out.push(then.unwrap_or("").to_string());
            }
            _ => {}
        }
    }
    out
}

/// Ping-pong between two named coroutines over unbuffered channels.
fn ping_pong(rounds: u32) {
    let (ping_tx, ping_rx) = goro::chan::chan::<u32>(0);
    let (pong_tx, pong_rx) = goro::chan::chan::<u32>(0);
    let pong = goro::Builder::new()
        .name("pong")
        .spawn(move || {
            for v in ping_rx.iter() {
                pong_tx.send(v + 1).unwrap();
            }
        })
        .unwrap();
    let ping = goro::Builder::new()
        .name("ping")
        .spawn(move || {
            for i in 0..rounds {
                ping_tx.send(i).unwrap();
                assert_eq!(pong_rx.recv().unwrap(), i + 1);
            }
        })
        .unwrap();
    ping.join().unwrap();
    pong.join().unwrap();
}

#[test]
fn a_ping_pong_trace_names_its_coroutines_and_why_they_parked() {
    let _serial = serial();
    let out = Shared::default();
    trace::start(out.clone()).unwrap();
    common::within(|| ping_pong(200));
    trace::stop().unwrap();
    let events = check(&out.text());
    let names = slice_names(&events);
    assert!(names.iter().any(|n| n.starts_with("'ping' #")), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("'pong' #")), "{names:?}");
    // Each side parks 200 times on a channel (send or receive), and the
    // trace says which.
    let ping = ends_of(&events, "'ping'");
    let pong = ends_of(&events, "'pong'");
    let channel = |v: &[String]| {
        v.iter()
            .filter(|t| *t == "parked: channel receive" || *t == "parked: channel send")
            .count()
    };
    assert!(channel(&ping) >= 100, "{ping:?}");
    assert!(channel(&pong) >= 100, "{pong:?}");
    assert_eq!(
        ping.last().map(String::as_str),
        Some("finished"),
        "{ping:?}"
    );
    // Wakeups are flows, and their instants name the woken coroutine.
    assert!(events.iter().any(|e| e.str("ph") == Some("f")));
    assert!(
        events
            .iter()
            .filter(|e| e.str("ph") == Some("i"))
            .filter_map(|e| e.str("name"))
            .any(|n| n.starts_with("wake 'ping' #")),
        "no wakeup of ping"
    );
    let tracks: Vec<&str> = events
        .iter()
        .filter(|e| e.str("name") == Some("thread_name"))
        .filter_map(|e| e.get("args").and_then(|a| a.str("name")))
        .collect();
    assert!(
        tracks.iter().any(|t| t.starts_with("worker ")),
        "{tracks:?}"
    );
}

#[test]
fn a_trace_shows_spawns_netpoll_waits_and_blocking_calls() {
    let _serial = serial();
    let out = Shared::default();
    trace::start(out.clone()).unwrap();
    common::within(|| {
        let ln = goro::net::listen("tcp", "127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let server = goro::Builder::new()
            .name("server")
            .spawn(move || {
                let (mut conn, _) = ln.accept().unwrap();
                let mut b = [0u8; 1];
                io::Read::read_exact(&mut conn, &mut b).unwrap();
                b[0]
            })
            .unwrap();
        let mut c = goro::net::dial("tcp", &addr.to_string()).unwrap();
        goro::blocking(|| std::thread::sleep(Duration::from_millis(5)));
        c.write_all(&[7]).unwrap();
        assert_eq!(server.join().unwrap(), 7);
    });
    trace::stop().unwrap();
    let events = check(&out.text());
    let ends = ends_of(&events, "'server'");
    assert!(
        ends.iter().any(|t| t.starts_with("parked: read fd ")),
        "{ends:?}"
    );
    let instants: Vec<&str> = events
        .iter()
        .filter(|e| e.str("ph") == Some("i"))
        .filter_map(|e| e.str("name"))
        .collect();
    assert!(
        instants.iter().any(|n| n.starts_with("spawn 'server' #")),
        "{instants:?}"
    );
    let names = slice_names(&events);
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("blocking call of 'main' #")),
        "{names:?}"
    );
}

#[test]
fn start_twice_and_stop_without_start_are_errors() {
    let _serial = serial();
    assert_eq!(trace::stop().unwrap_err().kind(), io::ErrorKind::NotFound);
    trace::start(io::sink()).unwrap();
    let err = trace::start(io::sink()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    trace::stop().unwrap();
}

#[test]
fn a_flight_recorder_snapshot_holds_the_last_events_and_none_before_it() {
    common::within(|| {
        goro::Builder::new()
            .name("before the recorder")
            .spawn(goro::yield_now)
            .unwrap()
            .join()
            .unwrap();
    });
    let recorder = FlightRecorder::new(Duration::from_secs(60));
    common::within(|| {
        for round in 0..3 {
            let name = format!("round {round}");
            goro::Builder::new()
                .name(name)
                .spawn(|| goro::time::sleep(Duration::from_millis(1)))
                .unwrap()
                .join()
                .unwrap();
        }
    });
    let mut json = Vec::new();
    recorder.snapshot(&mut json).unwrap();
    let text = String::from_utf8(json).unwrap();
    let events = check(&text);
    let names = slice_names(&events);
    for round in 0..3 {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with(&format!("'round {round}' #"))),
            "{names:?}"
        );
    }
    assert_eq!(
        ends_of(&events, "'round 2'").first().map(String::as_str),
        Some("parked: sleep")
    );
    assert!(
        !text.contains("before the recorder"),
        "events from before it started"
    );
}

/// A held worker: with `on_held_worker`, the monitor's report comes with a
/// snapshot that shows the run that held it.
#[test]
fn a_held_worker_report_writes_a_snapshot() {
    let dir = std::env::temp_dir().join(format!("goro-trace-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let recorder = FlightRecorder::new(Duration::from_secs(30));
    recorder.on_held_worker(&dir);
    common::within(|| {
        goro::Builder::new()
            .name("hog")
            .spawn(|| std::thread::sleep(Duration::from_millis(400)))
            .unwrap()
            .join()
            .unwrap();
    });
    // The snapshot is written on a thread of its own: wait for it, for
    // as long as a test may take.
    let give_up = Instant::now() + common::HANG;
    // Another test's coroutine held up long enough would be reported too:
    // look for the hog's report among the snapshots.
    let text = loop {
        let found = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .find(|t| t.ends_with("}\n") && t.contains("held by 'hog' #"));
        if let Some(text) = found {
            break text;
        }
        assert!(
            Instant::now() < give_up,
            "no snapshot of the hog in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(recorder);
    let _ = std::fs::remove_dir_all(&dir);
    let events = check(&text);
    assert!(
        events
            .iter()
            .filter_map(|e| e.str("name"))
            .any(|n| n.contains("held by 'hog' #")),
        "no held-worker instant"
    );
    assert!(
        slice_names(&events)
            .iter()
            .any(|n| n.starts_with("'hog' #"))
    );
}
