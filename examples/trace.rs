//! An execution trace of a ping-pong and of a held worker, and a picture
//! of it.
//!
//! ```sh
//! cargo run --release --example trace [DIR]
//! ```
//!
//! Writes DIR/trace.json (default DIR: the current directory): open it in
//! https://ui.perfetto.dev or chrome://tracing. Then draws the trace from
//! that JSON as DIR/trace.svg, a timeline with one row per worker or
//! thread (the README's picture is this file, as a PNG): the whole run
//! above, the first ping-pong exchange below, with arrows from waker to
//! woken.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use goro::runtime::trace;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    goro::runtime::Builder::new().workers(2).start()?;
    let json_path = dir.join("trace.json");
    trace::start(std::fs::File::create(&json_path)?)?;
    goro::run(demo);
    trace::stop()?;
    let text = std::fs::read_to_string(&json_path)?;
    let svg = render(&parse_trace(&text));
    let svg_path = dir.join("trace.svg");
    std::fs::write(&svg_path, svg)?;
    println!("wrote {} and {}", json_path.display(), svg_path.display());
    Ok(())
}

/// Three ping-pong exchanges 2 ms apart, then a coroutine that blocks its
/// worker's thread for 150 ms (the monitor reports it) while a ticker
/// keeps time on the other worker.
fn demo() {
    let (ping_tx, ping_rx) = goro::chan::chan::<u32>(0);
    let (pong_tx, pong_rx) = goro::chan::chan::<u32>(0);
    let pong = goro::Builder::new()
        .name("pong")
        .spawn(move || {
            for v in ping_rx.iter() {
                let _ = pong_tx.send(v + 1);
            }
        })
        .expect("spawn pong");
    let ping = goro::Builder::new()
        .name("ping")
        .spawn(move || {
            for round in 0..3 {
                for i in 0..3 {
                    ping_tx.send(i).expect("pong is there");
                    pong_rx.recv().expect("pong answers");
                }
                if round < 2 {
                    goro::time::sleep(Duration::from_millis(2));
                }
            }
        })
        .expect("spawn ping");
    ping.join().expect("ping");
    pong.join().expect("pong");

    let ticker = goro::Builder::new()
        .name("ticker")
        .spawn(|| {
            for _ in 0..20 {
                goro::time::sleep(Duration::from_millis(10));
            }
        })
        .expect("spawn ticker");
    goro::time::sleep(Duration::from_millis(5));
    let hog = goro::Builder::new()
        .name("hog")
        // A blocking call outside goro::blocking: it holds its worker.
        .spawn(|| std::thread::sleep(Duration::from_millis(150)))
        .expect("spawn hog");
    hog.join().expect("hog");
    ticker.join().expect("ticker");
}

// ---- Reading the JSON back ----

/// A JSON value, as much as a trace uses.
#[derive(Debug)]
enum Json {
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
    Other,
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(f) => f.iter().find(|(k, _)| k == key).map(|(_, v)| v),
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

fn parse(s: &[u8], i: &mut usize) -> Json {
    while s[*i].is_ascii_whitespace() {
        *i += 1;
    }
    match s[*i] {
        b'{' | b'[' => {
            let obj = s[*i] == b'{';
            *i += 1;
            let mut items = Vec::new();
            loop {
                while s[*i].is_ascii_whitespace() || s[*i] == b',' {
                    *i += 1;
                }
                if s[*i] == b'}' || s[*i] == b']' {
                    *i += 1;
                    break;
                }
                let key = if obj {
                    let Json::Str(k) = parse(s, i) else {
                        panic!("key expected at {i}")
                    };
                    while s[*i] != b':' {
                        *i += 1;
                    }
                    *i += 1;
                    k
                } else {
                    String::new()
                };
                items.push((key, parse(s, i)));
            }
            if obj {
                Json::Obj(items)
            } else {
                Json::Arr(items.into_iter().map(|(_, v)| v).collect())
            }
        }
        b'"' => {
            *i += 1;
            let mut out = Vec::new();
            while s[*i] != b'"' {
                if s[*i] != b'\\' {
                    out.push(s[*i]);
                    *i += 1;
                    continue;
                }
                // The escapes the trace writer makes (`json::quote`).
                *i += 1;
                match s[*i] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'u' => {
                        let hex = std::str::from_utf8(&s[*i + 1..*i + 5]).unwrap_or("0");
                        let c = u32::from_str_radix(hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .unwrap_or('\u{fffd}');
                        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                        *i += 4;
                    }
                    c => out.push(c),
                }
                *i += 1;
            }
            *i += 1;
            Json::Str(String::from_utf8_lossy(&out).into_owned())
        }
        b't' | b'f' | b'n' => {
            while s[*i].is_ascii_alphabetic() {
                *i += 1;
            }
            Json::Other
        }
        _ => {
            let start = *i;
            while matches!(s[*i], b'-' | b'.' | b'e' | b'E' | b'+' | b'0'..=b'9') {
                *i += 1;
            }
            Json::Num(
                std::str::from_utf8(&s[start..*i])
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0.0),
            )
        }
    }
}

/// A trace as drawn.
struct Trace {
    /// Track ids in order, with their names.
    tracks: Vec<(u64, String)>,
    /// Slices: track, start and end (µs), name, how the run ended.
    slices: Vec<(u64, f64, f64, String, String)>,
    /// Instants: track, time, name.
    instants: Vec<(u64, f64, String)>,
    /// Flows: from (track, time) to (track, time).
    flows: Vec<((u64, f64), (u64, f64))>,
}

fn parse_trace(text: &str) -> Trace {
    let doc = parse(text.as_bytes(), &mut 0);
    let Some(Json::Arr(events)) = doc.get("traceEvents") else {
        panic!("not a trace");
    };
    let mut t = Trace {
        tracks: Vec::new(),
        slices: Vec::new(),
        instants: Vec::new(),
        flows: Vec::new(),
    };
    let mut open: HashMap<u64, (f64, String)> = HashMap::new();
    let mut flow_starts: HashMap<u64, (u64, f64)> = HashMap::new();
    for e in events {
        let tid = e.num("tid").unwrap_or(0.0) as u64;
        let ts = e.num("ts").unwrap_or(0.0);
        let name = e.str("name").unwrap_or("").to_string();
        match e.str("ph") {
            Some("M") if name == "thread_name" => {
                let n = e.get("args").and_then(|a| a.str("name")).unwrap_or("");
                t.tracks.push((tid, n.to_string()));
            }
            Some("B") => {
                open.insert(tid, (ts, name));
            }
            Some("E") => {
                if let Some((start, name)) = open.remove(&tid) {
                    let then = e.get("args").and_then(|a| a.str("then")).unwrap_or("");
                    t.slices.push((tid, start, ts, name, then.to_string()));
                }
            }
            Some("i") if !name.starts_with("wake") && !name.starts_with("spawn") => {
                t.instants.push((tid, ts, name));
            }
            Some("s") => {
                flow_starts.insert(e.num("id").unwrap_or(0.0) as u64, (tid, ts));
            }
            Some("f") => {
                if let Some(from) = flow_starts.remove(&(e.num("id").unwrap_or(0.0) as u64)) {
                    t.flows.push((from, (tid, ts)));
                }
            }
            _ => {}
        }
    }
    t.tracks.sort();
    // Only the tracks that have something to draw.
    let drawn: Vec<u64> = t
        .slices
        .iter()
        .map(|s| s.0)
        .chain(t.instants.iter().map(|i| i.0))
        .collect();
    t.tracks.retain(|(id, _)| drawn.contains(id));
    t
}

// ---- Drawing ----

const WIDTH: f64 = 1100.0;
const LABEL: f64 = 120.0;
const ROW: f64 = 30.0;

/// A slice's fill: one hue per coroutine name, grey for the scheduler's own.
fn color(name: &str) -> String {
    if name == "netpoll wait" {
        return "#d0d0d0".into();
    }
    if name.starts_with("timers") {
        return "#b0c4de".into();
    }
    if name.starts_with("blocking") {
        return "#f4a460".into();
    }
    let base = name.split(" #").next().unwrap_or(name);
    let hue = base
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
        % 360;
    format!("hsl({hue},65%,60%)")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One panel: the tracks between `t0` and `t1` (µs), at `top`.
fn panel(out: &mut String, t: &Trace, title: &str, t0: f64, t1: f64, top: f64, flows: bool) -> f64 {
    let x = |ts: f64| LABEL + (ts - t0) / (t1 - t0) * (WIDTH - LABEL - 10.0);
    let row = |tid: u64| t.tracks.iter().position(|(id, _)| *id == tid).unwrap_or(0) as f64;
    let y = |tid: u64| top + 36.0 + row(tid) * ROW;
    let _ = writeln!(
        out,
        r#"<text x="8" y="{}" font-size="14" font-weight="bold">{}</text>"#,
        top + 14.0,
        escape(title)
    );
    for (tid, name) in &t.tracks {
        let _ = writeln!(
            out,
            r##"<text x="8" y="{}" font-size="12">{}</text><line x1="{LABEL}" x2="{}" y1="{}" y2="{}" stroke="#eee"/>"##,
            y(*tid) + 17.0,
            escape(name),
            WIDTH - 10.0,
            y(*tid) + ROW - 2.0,
            y(*tid) + ROW - 2.0
        );
    }
    for (tid, s, e, name, then) in &t.slices {
        if *e < t0 || *s > t1 {
            continue;
        }
        let (x0, x1) = (x(s.max(t0)), x(e.min(t1)));
        let w = (x1 - x0).max(1.0);
        let _ = writeln!(
            out,
            r##"<rect x="{x0:.1}" y="{}" width="{w:.1}" height="{}" fill="{}" stroke="#555" stroke-width="0.3"><title>{} ({:.1} µs) {}</title></rect>"##,
            y(*tid) + 2.0,
            ROW - 8.0,
            color(name),
            escape(name),
            e - s,
            escape(then)
        );
        let label = if then.is_empty() {
            name.clone()
        } else {
            format!("{name} → {}", then.trim_start_matches("parked: "))
        };
        let short = name.split(" #").next().unwrap_or(name).trim_matches('\'');
        let label = if w > label.len() as f64 * 6.0 {
            label
        } else {
            short.to_string()
        };
        if w > label.len() as f64 * 6.0 {
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{}" font-size="10">{}</text>"#,
                x0 + 3.0,
                y(*tid) + 16.0,
                escape(&label)
            );
        }
    }
    for (tid, ts, name) in &t.instants {
        if *ts < t0 || *ts > t1 {
            continue;
        }
        let (cx, cy) = (x(*ts), y(*tid));
        let _ = writeln!(
            out,
            r##"<path d="M{cx:.1},{cy:.1} l-5,-8 h10 z" fill="#c00"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#c00">{}</text>"##,
            cx + 6.0,
            cy - 1.0,
            escape(name)
        );
    }
    if flows {
        for ((ft, fs), (tt, ts)) in &t.flows {
            if *fs < t0 || *ts > t1 {
                continue;
            }
            let _ = writeln!(
                out,
                r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333" stroke-width="0.8" marker-end="url(#arrow)"/>"##,
                x(*fs),
                y(*ft) + ROW / 2.0,
                x(*ts),
                y(*tt) + ROW / 2.0
            );
        }
    }
    let bottom = top + 36.0 + t.tracks.len() as f64 * ROW;
    let _ = writeln!(
        out,
        r##"<text x="{LABEL}" y="{}" font-size="10" fill="#666">{:.0} µs</text><text x="{}" y="{}" font-size="10" fill="#666" text-anchor="end">{:.0} µs</text>"##,
        bottom + 10.0,
        t0,
        WIDTH - 10.0,
        bottom + 10.0,
        t1
    );
    bottom + 20.0
}

fn render(t: &Trace) -> String {
    let is_run = |name: &str| name.starts_with('\'') || name.starts_with('#');
    let end = t
        .slices
        .iter()
        .filter(|s| is_run(&s.3))
        .map(|s| s.2)
        .fold(0.0, f64::max)
        * 1.02;
    // Six runs of ping and pong back to back (each within 3 µs of the
    // last): one exchange, with no sleep in the middle.
    let mut pp: Vec<_> = t
        .slices
        .iter()
        .filter(|s| s.3.starts_with("'ping'") || s.3.starts_with("'pong'"))
        .collect();
    pp.sort_by(|a, b| a.1.total_cmp(&b.1));
    let close = |i: usize| (i + 1..i + 6).all(|j| j < pp.len() && pp[j].1 - pp[j - 1].2 < 3.0);
    let first = (0..pp.len()).rfind(|&i| close(i)).unwrap_or(0);
    let shown = &pp[first.min(pp.len())..(first + 6).min(pp.len())];
    let z0 = shown.iter().map(|s| s.1).fold(f64::MAX, f64::min);
    let z1 = shown.iter().map(|s| s.2).fold(z0 + 1.0, f64::max);
    let mut body = String::new();
    let mid = panel(
        &mut body,
        t,
        "the whole run: ping-pong, then 'hog' holds a worker",
        0.0,
        end,
        0.0,
        false,
    );
    let bottom = panel(
        &mut body,
        t,
        "ping-pong up close: each send wakes the other side (arrows: waker → woken)",
        z0 - (z1 - z0) * 0.05,
        z1 + (z1 - z0) * 0.05,
        mid + 10.0,
        true,
    );
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{bottom}" font-family="DejaVu Sans, sans-serif">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>
<rect width="100%" height="100%" fill="white"/>
{body}</svg>
"##
    )
}
