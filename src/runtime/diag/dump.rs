//! `goro::runtime::dump()`: every live coroutine, what it does, for how
//! long and where in the code (Go's goroutine traceback), and the same
//! grouped by place (Go's goroutine profile with `debug=1`).
//!
//! Stacks are taken first, by each worker for its own coroutines
//! (`diag/traceback.rs`). Then started coroutines are listed from their workers'
//! registries, which a dump can read while their workers run (or are
//! held). So a dump is a snapshot per worker, not of the whole runtime at
//! one instant: a coroutine may have moved on between the two. Coroutines not yet
//! started sit in lock-free deques that cannot be walked; a dump takes them
//! out as a thief would, reads them and queues them again on the global
//! injector. They lose their place in their spawner's deque, which only
//! changes where and when they start (any worker may start them anyway).
//! A coroutine being moved between queues at that instant is missed.
//!
//! Stacks name functions from the binary's debug info. Cargo's default
//! release profile has none: then only functions that were not inlined
//! have a frame, with no file or line, and a coroutine whose own small
//! functions were all inlined into goro's entry frame shows the goro call
//! it is in (`goro::time::sleep`) with a line saying why. The dump then
//! ends with a note on how to get full stacks: `debug = "line-tables-only"`
//! (or `1`) under `[profile.release]`, at a cost in binary size only.

use std::collections::HashMap;
use std::fmt;

use std::panic::Location;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::runtime::diag::callstack::CallStack;
use crate::runtime::diag::traceback;
use crate::runtime::park::wait::WaitingOn;
use crate::runtime::task::header::Header;
use crate::runtime::task::id::CoroutineId;
use crate::runtime::{Runtime, time::clock};

/// A snapshot of the runtime's coroutines.
///
/// Its `Display` groups the coroutines in the same state, spawned at the
/// same place and at the same place in the code, largest group first, and
/// prints each group's call stack once (as Go's goroutine profile does
/// with `debug=1`); the alternate form (`{:#}`) prints every coroutine with
/// its own stack.
#[derive(Clone, Debug, Default)]
pub struct Dump {
    /// Every unfinished coroutine, ordered by id.
    pub coroutines: Vec<CoroutineInfo>,
}

/// One coroutine in a `Dump`.
#[derive(Clone, Debug)]
pub struct CoroutineInfo {
    /// Its id.
    pub id: CoroutineId,
    /// Its name, if it was given one.
    pub name: Option<String>,
    /// Where it was spawned.
    pub location: &'static Location<'static>,
    /// Running, runnable or parked.
    pub state: CoroutineState,
    /// What it waits on, when parked on something the runtime knows.
    pub waiting_on: Option<WaitingOn>,
    /// How long it has been in `state`: parked since, or running since it
    /// was last resumed. Measured on a clock the monitor refreshes, so
    /// within about 10 ms.
    pub for_how_long: Option<Duration>,
    /// Where it is in the code, or why the dump could not tell. A running
    /// coroutine's stack was taken when it was last suspended, just before
    /// it ran (its worker answers the dump between two coroutines).
    pub stack: Result<CallStack, NoStack>,
}

/// Why a dump has no call stack for a coroutine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoStack {
    /// Not started yet: it has no stack (its spawn location says what it
    /// will run).
    NotStarted,
    /// Its worker did not get to the dump's request within 200 ms: some
    /// coroutine (this one, if it is running) held it all that time.
    WorkerBusy,
    /// Suspended too near the end of its stack for the walk to run there
    /// without risking an overflow.
    StackNearlyFull,
    /// Started after its worker had taken its coroutines' stacks.
    StartedSince,
}

/// Coroutines of a dump in the same state, spawned at the same place and
/// at the same place in the code.
#[derive(Clone, Debug)]
pub struct CoroutineGroup {
    /// Their ids, in increasing order; never empty.
    pub ids: Vec<CoroutineId>,
    /// Their state without what differs between them (a worker, an fd, a
    /// wait's length): `parked: read`, `running`, `runnable, not started`.
    pub state: String,
    /// Where they were spawned.
    pub location: &'static Location<'static>,
    /// Their call stack, or why they have none.
    pub stack: Result<CallStack, NoStack>,
}

/// What a coroutine is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoroutineState {
    /// Running on this worker now.
    Running {
        /// The worker's index.
        worker: usize,
    },
    /// Ready to run, waiting for its worker.
    Runnable,
    /// Spawned and waiting for a worker to start it (runnable too).
    NotStarted,
    /// Parked until something wakes it.
    Parked,
}

impl fmt::Display for WaitingOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitingOn::Join(id) => write!(f, "join {id}"),
            WaitingOn::Read(fd) | WaitingOn::Write(fd) => write!(f, "{} fd {fd}", self.kind()),
            _ => f.write_str(self.kind()),
        }
    }
}

impl fmt::Display for NoStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoStack::NotStarted => "not started: no stack yet",
            NoStack::WorkerBusy => "stack not available (worker busy)",
            NoStack::StackNearlyFull => "stack not available (too near its end to walk)",
            NoStack::StartedSince => "stack not available (started after the dump began)",
        })
    }
}

/// Every live coroutine now, with its call stack. Empty before the runtime
/// starts.
///
/// Each worker takes the stacks of its own coroutines between two of them,
/// so the dump waits for every worker's next pick, up to 200 ms for a
/// worker held by one coroutine (see `NoStack::WorkerBusy`); a coroutine
/// that calls `dump` parks meanwhile. Coroutines parked at the same place
/// share one `CallStack`, and symbols are resolved only for what is
/// printed or asked for, once per distinct stack.
///
/// ```
/// use goro::sync::WaitGroup;
///
/// goro::run(|| {
///     let (tx, rx) = goro::chan::chan::<()>(0);
///     let started = WaitGroup::new();
///     started.add(3);
///     let waiters: Vec<_> = (0..3)
///         .map(|_| {
///             let (rx, started) = (rx.clone(), started.clone());
///             goro::spawn(move || {
///                 started.done();
///                 rx.recv()
///             })
///         })
///         .collect();
///     // Past `done`, each runs into `recv` without a switch, and parks.
///     started.wait();
///     let dump = goro::runtime::dump();
///     // The three receivers make one group: same state, same place.
///     let group = dump
///         .groups()
///         .into_iter()
///         .find(|g| g.state == "parked: channel receive")
///         .unwrap();
///     assert_eq!(group.ids.len(), 3);
///     let stack = group.stack.unwrap();
///     assert!(stack.frames()[0].function.contains("{{closure}}"));
///     // "3 coroutines [parked: channel receive] spawned at ...", the
///     // stack, then the coroutine that dumped, with its own.
///     println!("{dump}");
///     drop(tx);
///     for w in waiters {
///         assert!(w.join().unwrap().is_err());
///     }
/// });
/// ```
pub fn dump() -> Dump {
    let Some(rt) = Runtime::started() else {
        return Dump::default();
    };
    let workers = rt.active_workers();
    let mut answers = traceback::take_stacks(rt, workers);
    let now = clock::coarse_now();
    let mut coroutines = Vec::new();
    for (index, w) in rt.workers.iter().take(rt.active_workers()).enumerate() {
        let tasks = w.started_tasks();
        let running = w.running_id.load(Ordering::Relaxed);
        for task in tasks {
            let h = task.header();
            let (state, since) = if h.id == running {
                (
                    CoroutineState::Running { worker: index },
                    w.running_since.load(Ordering::Relaxed),
                )
            } else if h.is_parked() {
                (CoroutineState::Parked, h.wait_since())
            } else {
                (CoroutineState::Runnable, 0)
            };
            let stack = answers
                .stacks
                .remove(&h.id)
                .unwrap_or(match answers.answered.get(index) {
                    Some(false) => Err(NoStack::WorkerBusy),
                    // Worker `index` answered, or started since (a spare).
                    _ => Err(NoStack::StartedSince),
                });
            coroutines.push(info(h, state, since, now, stack));
        }
    }
    let fresh = rt.take_not_started();
    for task in &fresh {
        let state = CoroutineState::NotStarted;
        coroutines.push(info(task.header(), state, 0, now, Err(NoStack::NotStarted)));
    }
    rt.requeue(fresh);
    coroutines.sort_by_key(|c| c.id);
    Dump { coroutines }
}

fn info(
    h: &Header,
    state: CoroutineState,
    since: u64,
    now: u64,
    stack: Result<CallStack, NoStack>,
) -> CoroutineInfo {
    let waiting_on = match state {
        CoroutineState::Parked => h.wait.get(),
        _ => None,
    };
    CoroutineInfo {
        id: CoroutineId::from_u64(h.id).unwrap_or(CoroutineId::MIN),
        name: h.name().map(|n| String::clone(n)),
        location: h.location,
        state,
        waiting_on,
        for_how_long: (since != 0).then(|| Duration::from_nanos(now.saturating_sub(since))),
        stack,
    }
}

impl CoroutineInfo {
    /// Its state without what differs between coroutines in it: the key
    /// (with the spawn location and the stack) that groups them.
    fn state_kind(&self) -> String {
        match (self.state, self.waiting_on) {
            (CoroutineState::Running { .. }, _) => "running".into(),
            (CoroutineState::Runnable, _) => "runnable".into(),
            (CoroutineState::NotStarted, _) => "runnable, not started".into(),
            (CoroutineState::Parked, Some(w)) => format!("parked: {}", w.kind()),
            (CoroutineState::Parked, None) => "parked".into(),
        }
    }
}

impl Dump {
    /// The coroutines grouped by state, spawn location and call stack,
    /// largest group first (then by lowest id).
    pub fn groups(&self) -> Vec<CoroutineGroup> {
        self.group_indexes()
            .into_iter()
            .map(|members| {
                let first = &self.coroutines[members[0]];
                CoroutineGroup {
                    ids: members.iter().map(|&i| self.coroutines[i].id).collect(),
                    state: first.state_kind(),
                    location: first.location,
                    stack: first.stack.clone(),
                }
            })
            .collect()
    }

    /// Indexes into `coroutines` of each group's members, in `groups`'
    /// order.
    fn group_indexes(&self) -> Vec<Vec<usize>> {
        // Stacks compare by their return addresses.
        type Key<'a> = (String, &'a Location<'static>, Result<&'a [usize], NoStack>);
        let mut index: HashMap<Key<'_>, usize> = HashMap::new();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (i, c) in self.coroutines.iter().enumerate() {
            let stack = c.stack.as_ref().map(CallStack::ips).map_err(|e| *e);
            let key = (c.state_kind(), c.location, stack);
            let g = *index.entry(key).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[g].push(i);
        }
        // Stable: equal sizes keep the order of their first (lowest) ids.
        groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
        groups
    }
}

/// Ids listed in a group's line before the rest are only counted.
const IDS_SHOWN: usize = 10;

/// Said under a stack that is only the goro call its coroutine is in.
const ENTRY_ONLY: &str = "    (its own functions were inlined into goro's, and this build has no debug info to name them)";

/// Said once at the end of a dump with a stack that has no source line
/// (`CallStack::lacks_lines`): a build without debug info, cargo's default
/// for `--release`. The sizes were measured on examples/echo built with
/// cargo's default release profile and each `debug` setting.
pub(crate) const NO_DEBUG_INFO_NOTE: &str = "\
note: this binary has no debug info (cargo's default for --release), so stacks name only the
functions that were not inlined, without files or lines. For full stacks, add to Cargo.toml:
    [profile.release]
    debug = \"line-tables-only\"
It costs binary size, not speed: goro's examples/echo grows from 1.1 MB to 8.0 MB (9.0 MB with debug = 1).
";

/// A stack, or why there is none, indented under its coroutine or group.
fn write_stack(f: &mut fmt::Formatter<'_>, stack: &Result<CallStack, NoStack>) -> fmt::Result {
    match stack {
        Ok(s) if s.frames().is_empty() => writeln!(f, "    (no frames)"),
        Ok(s) => {
            write!(f, "{s:4}")?;
            if s.is_entry_only() {
                writeln!(f, "{ENTRY_ONLY}")?;
            }
            Ok(())
        }
        Err(why) => writeln!(f, "    ({why})"),
    }
}

impl fmt::Display for CoroutineInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "coroutine {}", self.id)?;
        if let Some(n) = &self.name {
            write!(f, " '{n}'")?;
        }
        f.write_str(" [")?;
        match self.state {
            CoroutineState::Running { worker } => write!(f, "running on worker {worker}")?,
            CoroutineState::Runnable => f.write_str("runnable")?,
            CoroutineState::NotStarted => f.write_str("runnable, not started")?,
            CoroutineState::Parked => match &self.waiting_on {
                Some(w) => write!(f, "parked: {w}")?,
                None => f.write_str("parked")?,
            },
        }
        if let Some(d) = self.for_how_long {
            write!(f, ", {}", HumanDuration(d))?;
        }
        write!(f, "] spawned at {}", self.location)
    }
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lacks_lines = self
            .coroutines
            .iter()
            .any(|c| c.stack.as_ref().is_ok_and(CallStack::lacks_lines));
        if f.alternate() {
            for c in &self.coroutines {
                writeln!(f, "{c}")?;
                write_stack(f, &c.stack)?;
                writeln!(f)?;
            }
        } else {
            self.write_groups(f)?;
        }
        if lacks_lines {
            f.write_str(NO_DEBUG_INFO_NOTE)?;
        }
        Ok(())
    }
}

impl Dump {
    /// The grouped form of `Display`.
    fn write_groups(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for members in self.group_indexes() {
            let first = &self.coroutines[members[0]];
            if members.len() == 1 {
                writeln!(f, "{first}")?;
            } else {
                write!(
                    f,
                    "{} coroutines [{}] spawned at {}:",
                    members.len(),
                    first.state_kind(),
                    first.location
                )?;
                for &i in members.iter().take(IDS_SHOWN) {
                    write!(f, " {}", self.coroutines[i].id)?;
                }
                if members.len() > IDS_SHOWN {
                    write!(f, " and {} more", members.len() - IDS_SHOWN)?;
                }
                writeln!(f)?;
            }
            write_stack(f, &first.stack)?;
            writeln!(f)?;
        }
        Ok(())
    }
}

/// A duration as Go prints wait times: "250 ms", "3 s", "2 min".
struct HumanDuration(Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d < Duration::from_secs(1) {
            write!(f, "{} ms", d.as_millis())
        } else if d < Duration::from_secs(120) {
            write!(f, "{} s", d.as_secs())
        } else {
            write!(f, "{} min", d.as_secs() / 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::diag::callstack::tests::NO_DEBUG_INFO;

    fn parked(id: u64, stack: CallStack) -> CoroutineInfo {
        CoroutineInfo {
            id: CoroutineId::from_u64(id).unwrap(),
            name: None,
            location: Location::caller(),
            state: CoroutineState::Parked,
            waiting_on: Some(WaitingOn::Sleep),
            for_how_long: None,
            stack: Ok(stack),
        }
    }

    /// Without debug info, a group whose own frames were inlined away shows
    /// the goro call it is in, says why, and the dump ends with how to get
    /// full stacks.
    #[test]
    fn a_dump_without_debug_info_says_how_to_get_full_stacks() {
        let stack = CallStack::from_text(&[1, 2, 3], NO_DEBUG_INFO);
        let dump = Dump {
            coroutines: vec![parked(2, stack.clone()), parked(3, stack)],
        };
        let text = dump.to_string();
        let expected = format!(
            "2 coroutines [parked: sleep] spawned at {}: #2 #3\n    goro::time::sleep\n{ENTRY_ONLY}\n\n{NO_DEBUG_INFO_NOTE}",
            dump.coroutines[0].location
        );
        assert_eq!(text, expected);
        assert!(NO_DEBUG_INFO_NOTE.contains("debug = \"line-tables-only\""));
        // The per-coroutine form says the same.
        let text = format!("{dump:#}");
        assert_eq!(text.matches(ENTRY_ONLY).count(), 2, "{text}");
        assert!(text.ends_with(NO_DEBUG_INFO_NOTE), "{text}");
    }

    /// With debug info (source lines), no note.
    #[test]
    fn a_dump_with_lines_has_no_note() {
        let text = "   0: goro::time::sleep
             at ./src/time/mod.rs:9:5
   1: app::sleeper
             at ./src/main.rs:5:5
   2: goro::runtime::diag::panic_hook::begin_short_backtrace
";
        let dump = Dump {
            coroutines: vec![parked(2, CallStack::from_text(&[1], text))],
        };
        let text = dump.to_string();
        assert!(
            text.contains("    app::sleeper\n        at ./src/main.rs:5:5\n"),
            "{text}"
        );
        assert!(!text.contains("note:"), "{text}");
        assert!(!text.contains(ENTRY_ONLY), "{text}");
    }
}
