//! Chrome's trace-event JSON, which Perfetto's UI (ui.perfetto.dev) and
//! `chrome://tracing` open.
//!
//! One process, "goro"; one track (a `tid`) per worker, in index order,
//! then one per other thread that recorded (the monitor, blocking-pool
//! threads, plain threads). A coroutine's run is a slice on its worker's
//! track named after the coroutine (`'name' #id`, or `#id`), begun (`B`)
//! when the worker resumes it and ended (`E`) when it switches back, with
//! why in the end's args (`then: parked: channel receive`). Netpoller
//! waits, timer firings and blocking-pool jobs are slices too; spawns,
//! steals, handoffs and held-worker reports are instants (`i`). A wakeup
//! is a flow (`s` to `f`) from the slice that woke the coroutine to the
//! start of its next run, and a spawn one to its first run; a wakeup made
//! outside any slice (a plain thread's) gets a zero-length `unpark` slice
//! for its flow to start from.

use std::collections::HashMap;
use std::io::{self, Write};

use crate::runtime::diag::trace::ring::{Event, Kind, Label, Outcome, Track};
use crate::runtime::park::wait::WaitingOn;

/// What a trace holds: each track's events, and the labels of the
/// coroutines they name.
pub(crate) struct Capture {
    /// Each track with its events, in time order within the track; workers
    /// first.
    pub(crate) tracks: Vec<(Track, Vec<Event>)>,
    /// The coroutines' labels, by id.
    pub(crate) labels: HashMap<u64, Label>,
    /// Events overwritten before they could be read.
    pub(crate) lost: u64,
}

/// The `tid` of a track: workers from 1, other threads from 1001.
fn tid(track: &Track) -> u64 {
    match track {
        Track::Worker(i) => *i as u64 + 1,
        Track::Thread { n, .. } => 1001 + *n as u64,
    }
}

fn track_name(track: &Track) -> String {
    match track {
        Track::Worker(i) => format!("worker {i}"),
        Track::Thread { name, .. } => name.clone(),
    }
}

/// `s` as a JSON string, quotes included.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes `capture` as trace-event JSON.
pub(crate) fn write(capture: &Capture, w: &mut dyn Write) -> io::Result<()> {
    let mut w = io::BufWriter::new(w);
    let mut events: Vec<(u64, &Event)> = capture
        .tracks
        .iter()
        .flat_map(|(t, evs)| evs.iter().map(move |e| (tid(t), e)))
        .collect();
    events.sort_by_key(|(_, e)| e.ts);
    let t0 = events.first().map_or(0, |(_, e)| e.ts);
    let ts = |e: &Event| {
        let d = e.ts.saturating_sub(t0);
        format!("{}.{:03}", d / 1000, d % 1000)
    };
    let label = |id: u64| match capture.labels.get(&id).and_then(|l| l.name.as_deref()) {
        Some(name) => format!("'{name}' #{id}"),
        None => format!("#{id}"),
    };
    let location = |id: u64| {
        capture
            .labels
            .get(&id)
            .map_or_else(String::new, |l| l.location.to_string())
    };

    write!(w, "{{\"displayTimeUnit\":\"ns\",\"traceEvents\":[")?;
    write!(
        w,
        "\n{{\"ph\":\"M\",\"pid\":1,\"name\":\"process_name\",\"args\":{{\"name\":\"goro\"}}}}"
    )?;
    // A held-worker report goes on the held worker's track, which may have
    // no events of its own in the capture (a snapshot's window can start
    // after them): name those tracks too, or viewers show them nameless.
    let mut named: Vec<Track> = capture.tracks.iter().map(|(t, _)| t.clone()).collect();
    for (_, events) in &capture.tracks {
        for e in events.iter().filter(|e| e.kind == Kind::Held) {
            let held = Track::Worker(e.a as usize);
            if !named.contains(&held) {
                named.push(held);
            }
        }
    }
    for track in &named {
        let t = tid(track);
        write!(
            w,
            ",\n{{\"ph\":\"M\",\"pid\":1,\"tid\":{t},\"name\":\"thread_name\",\"args\":{{\"name\":{}}}}}",
            quote(&track_name(track))
        )?;
        write!(
            w,
            ",\n{{\"ph\":\"M\",\"pid\":1,\"tid\":{t},\"name\":\"thread_sort_index\",\"args\":{{\"sort_index\":{t}}}}}"
        )?;
    }

    // Per track, the slice open now (a `Kind` that begins one), so that an
    // end whose begin fell before the capture is skipped and a begin whose
    // end fell after it is closed at the last instant.
    let mut open: HashMap<u64, Kind> = HashMap::new();
    // Coroutine -> the flow waiting for its next run.
    let mut flows: HashMap<u64, u64> = HashMap::new();
    let mut next_flow = 1u64;
    for (t, e) in &events {
        let t = *t;
        let at = ts(e);
        let begin = |w: &mut io::BufWriter<&mut dyn Write>,
                     open: &mut HashMap<u64, Kind>,
                     name: String,
                     cat: &str,
                     args: String|
         -> io::Result<()> {
            open.insert(t, e.kind);
            write!(
                w,
                ",\n{{\"ph\":\"B\",\"pid\":1,\"tid\":{t},\"ts\":{at},\"cat\":\"{cat}\",\"name\":{},\"args\":{{{args}}}}}",
                quote(&name)
            )
        };
        let end = |w: &mut io::BufWriter<&mut dyn Write>,
                   open: &mut HashMap<u64, Kind>,
                   begun_by: Kind,
                   args: String|
         -> io::Result<()> {
            match open.get(&t) {
                Some(&k) if k == begun_by => {
                    open.remove(&t);
                    write!(
                        w,
                        ",\n{{\"ph\":\"E\",\"pid\":1,\"tid\":{t},\"ts\":{at},\"args\":{{{args}}}}}"
                    )
                }
                _ => Ok(()),
            }
        };
        let instant = |w: &mut io::BufWriter<&mut dyn Write>, name: String, args: String| {
            write!(
                w,
                ",\n{{\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":{t},\"ts\":{at},\"name\":{},\"args\":{{{args}}}}}",
                quote(&name)
            )
        };
        match e.kind {
            Kind::RunStart => {
                let co = e.b;
                begin(
                    &mut w,
                    &mut open,
                    label(co),
                    "coroutine",
                    format!("\"coroutine\":{co},\"spawned at\":{}", quote(&location(co))),
                )?;
                if let Some(id) = flows.remove(&co) {
                    write!(
                        w,
                        ",\n{{\"ph\":\"f\",\"bp\":\"e\",\"pid\":1,\"tid\":{t},\"ts\":{at},\"cat\":\"wakeup\",\"name\":\"wakeup\",\"id\":{id}}}"
                    )?;
                }
            }
            Kind::RunEnd => {
                let then = match Outcome::from_u64(e.a) {
                    Outcome::Parked => match WaitingOn::decode(e.c) {
                        Some(on) => format!("parked: {on}"),
                        None => "parked".to_string(),
                    },
                    Outcome::Yielded => "yielded".to_string(),
                    Outcome::Finished => "finished".to_string(),
                };
                end(
                    &mut w,
                    &mut open,
                    Kind::RunStart,
                    format!("\"then\":{}", quote(&then)),
                )?;
            }
            Kind::Spawn | Kind::Wake => {
                let co = e.b;
                if !open.contains_key(&t) {
                    write!(
                        w,
                        ",\n{{\"ph\":\"X\",\"pid\":1,\"tid\":{t},\"ts\":{at},\"dur\":0,\"name\":\"unpark\"}}"
                    )?;
                }
                let (name, args) = if e.kind == Kind::Spawn {
                    (
                        format!("spawn {}", label(co)),
                        format!("\"coroutine\":{co},\"by\":{}", e.c),
                    )
                } else {
                    let cross = match capture.tracks.iter().find(|(tr, _)| tid(tr) == t) {
                        Some((Track::Worker(i), _)) => *i as u64 != e.a,
                        _ => true,
                    };
                    (
                        format!("wake {}", label(co)),
                        format!(
                            "\"coroutine\":{co},\"by\":{},\"on worker\":{},\"cross-worker\":{cross}",
                            e.c, e.a
                        ),
                    )
                };
                instant(&mut w, name, args)?;
                if let std::collections::hash_map::Entry::Vacant(v) = flows.entry(co) {
                    let id = next_flow;
                    next_flow += 1;
                    v.insert(id);
                    write!(
                        w,
                        ",\n{{\"ph\":\"s\",\"pid\":1,\"tid\":{t},\"ts\":{at},\"cat\":\"wakeup\",\"name\":\"wakeup\",\"id\":{id}}}"
                    )?;
                }
            }
            Kind::Steal => {
                let from = match e.a {
                    a if a == u64::from(u32::MAX) => "the injector".to_string(),
                    a => format!("worker {a}"),
                };
                instant(
                    &mut w,
                    format!("steal {} from {from}", e.b),
                    format!("\"count\":{}", e.b),
                )?;
            }
            Kind::Handoff => instant(
                &mut w,
                format!("hand {} to worker {}", label(e.b), e.a),
                format!("\"coroutine\":{},\"to worker\":{}", e.b, e.a),
            )?,
            Kind::PollStart => begin(
                &mut w,
                &mut open,
                "netpoll wait".into(),
                "netpoll",
                String::new(),
            )?,
            Kind::PollEnd => end(
                &mut w,
                &mut open,
                Kind::PollStart,
                format!("\"events\":{}", e.b),
            )?,
            Kind::TimersStart => begin(
                &mut w,
                &mut open,
                "timers".into(),
                "timers",
                format!("\"due\":{}", e.b),
            )?,
            Kind::TimersEnd => end(&mut w, &mut open, Kind::TimersStart, String::new())?,
            Kind::BlockingStart => begin(
                &mut w,
                &mut open,
                format!("blocking call of {}", label(e.b)),
                "blocking",
                format!("\"coroutine\":{}", e.b),
            )?,
            Kind::BlockingEnd => end(&mut w, &mut open, Kind::BlockingStart, String::new())?,
            Kind::Held => {
                // On the held worker's track, where the long run is.
                let worker = tid(&Track::Worker(e.a as usize));
                write!(
                    w,
                    ",\n{{\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":{worker},\"ts\":{at},\"name\":{},\"args\":{{\"coroutine\":{},\"held ms\":{}}}}}",
                    quote(&format!(
                        "worker {} held by {} for {} ms",
                        e.a,
                        label(e.b),
                        e.c / 1_000_000
                    )),
                    e.b,
                    e.c / 1_000_000
                )?;
            }
        }
    }
    // Slices still open at the end of the capture end there.
    if let Some((_, last)) = events.last() {
        let at = ts(last);
        let mut still: Vec<(u64, Kind)> = open.iter().map(|(t, k)| (*t, *k)).collect();
        still.sort_unstable_by_key(|(t, _)| *t);
        for (t, kind) in still {
            let args = match kind {
                Kind::RunStart => "\"then\":\"still running\"",
                _ => "",
            };
            write!(
                w,
                ",\n{{\"ph\":\"E\",\"pid\":1,\"tid\":{t},\"ts\":{at},\"args\":{{{args}}}}}"
            )?;
        }
    }
    writeln!(
        w,
        "\n],\"otherData\":{{\"generator\":\"goro\",\"lost events\":{}}}}}",
        capture.lost
    )?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_worker_without_events_of_its_own_still_has_a_named_track() {
        // The monitor's track holds the report; worker 3's own events fell
        // before the window.
        let held = Event {
            ts: 10,
            kind: Kind::Held,
            a: 3,
            b: 7,
            c: 150_000_000,
        };
        let monitor = Track::Thread {
            n: 0,
            name: "goro-sysmon".into(),
        };
        let capture = Capture {
            tracks: vec![(monitor, vec![held])],
            labels: HashMap::new(),
            lost: 0,
        };
        let mut out = Vec::new();
        write(&capture, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""tid":4,"name":"thread_name","args":{"name":"worker 3"}"#),
            "{text}"
        );
        assert!(text.contains(r#""tid":4,"ts":"#), "{text}");
    }
}
