//! Coroutine stacks.
//!
//! Stacks are carved out of large anonymous `mmap` slabs reserved with
//! `MAP_NORESERVE`, so a stack costs address space, not memory: only the pages
//! a coroutine touches become resident. Below each stack sits one guard page,
//! installed with `madvise(MADV_GUARD_INSTALL)` (Linux 6.13+). A guard region
//! is a page-table marker, not a mapping, so a million stacks stay a handful
//! of VMAs and `vm.max_map_count` (65530 by default) never binds. Where the
//! kernel refuses it, guards fall back to `mprotect(PROT_NONE)`, which splits
//! the slab into two mappings per stack and so caps live stacks near 32,000.
//!
//! Stacks flow through three levels:
//! - each worker keeps a `StackPool` of hot stacks, reused LIFO so the next
//!   coroutine runs on pages still in cache;
//! - above `HOT_STACKS_PER_WORKER`, the pool hands its oldest half to the
//!   global `Arena` as warm stacks, their pages still resident: a spawn tree
//!   that grows and shrinks (skynet) takes them back without a page fault;
//! - warm stacks that sat untouched from one `trim` (the monitor's, every
//!   second) to the next give their pages back to the kernel, in as few
//!   `madvise(MADV_DONTNEED)` calls as adjacency allows, and become cold.
//!   Doing it there, not in the pool, keeps the `madvise` and its TLB
//!   shootdown (an interrupt to every core the process runs on) off the
//!   workers: it cost skynet 10% of its time.
//!
//! Slab memory is never unmapped: its address space is reused for stacks of
//! the same size.

use std::io;
use std::num::NonZeroUsize;
use std::ptr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::error::described;
use crate::runtime::lock;

/// Default usable bytes of a coroutine's stack (Go starts at 8 KiB and grows;
/// goro cannot grow stacks, so it reserves generously and pays only for
/// touched pages).
pub(crate) const DEFAULT_STACK_SIZE: usize = 256 * 1024;
/// Smallest stack accepted: a panic's unwinding and message formatting alone
/// need a few KiB.
pub(crate) const MIN_STACK_SIZE: usize = 16 * 1024;
/// Largest stack accepted; a guard against typos, not a kernel limit.
pub(crate) const MAX_STACK_SIZE: usize = 1 << 30;

/// Hot stacks a worker keeps per size before returning pages to the kernel:
/// enough for deep spawn trees and a few hundred connections to recycle
/// stacks without a page fault, small enough that idle pools hold little.
const HOT_STACKS_PER_WORKER: usize = 256;
/// Stacks a pool takes from the arena at once, to amortize the arena lock.
const ARENA_BATCH: usize = 16;
/// Address space reserved per slab; stacks of one size are carved from it.
const SLAB_BYTES: usize = 256 << 20;

/// Bytes of guard below each stack. Rust code probes every page of a large
/// frame, so one page would catch it; the rest catches unprobed frames (C
/// code) that would otherwise jump over a single page into the neighbouring
/// stack. Marker guards cost no memory, so the margin is free.
const GUARD_BYTES: usize = 64 * 1024;

/// `MADV_GUARD_INSTALL` from `<linux/mman.h>` (Linux 6.13); the libc crate
/// does not export it yet.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// How guard pages are installed, probed on first use.
static GUARD_MODE: AtomicU8 = AtomicU8::new(GUARD_UNKNOWN);
const GUARD_UNKNOWN: u8 = 0;
const GUARD_MADVISE: u8 = 1;
const GUARD_MPROTECT: u8 = 2;

/// Bytes of address space reserved for stacks so far (for `stats`).
pub(crate) static MAPPED_BYTES: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if p > 0 { p as usize } else { 4096 }
    })
}

/// Bytes of the guard region below each stack, page aligned.
pub(crate) fn guard_size() -> usize {
    GUARD_BYTES.div_ceil(page_size()) * page_size()
}

/// Rounds a requested stack size up to whole pages, or says why it is refused.
pub(crate) fn checked_stack_size(bytes: usize) -> io::Result<usize> {
    if bytes < MIN_STACK_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "stack size of {bytes} bytes is below goro's minimum of {} KiB",
                MIN_STACK_SIZE / 1024
            ),
        ));
    }
    if bytes > MAX_STACK_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "stack size of {bytes} bytes is above goro's maximum of {} MiB",
                MAX_STACK_SIZE >> 20
            ),
        ));
    }
    let page = page_size();
    Ok(bytes.div_ceil(page) * page)
}

/// One coroutine stack: `size` usable bytes below `top`, a guard page below
/// them. Owns that address range exclusively while it exists.
pub(crate) struct Stack {
    /// Highest address, exclusive; page aligned. The stack grows down from it.
    top: NonZeroUsize,
    /// Usable bytes, a multiple of the page size.
    size: usize,
}

impl Stack {
    /// Lowest address of the guard region.
    pub(crate) fn guard(&self) -> usize {
        self.top.get() - self.size - guard_size()
    }

    fn usable_start(&self) -> usize {
        self.top.get() - self.size
    }
}

// SAFETY: the range [guard, top) is reserved for this stack alone (carved once
// from a slab, handed out by one owner at a time); `size` >= MIN_STACK_SIZE
// (> corosensei's 4 KiB minimum) bytes below `top` are readable and writable,
// and the guard region below them faults on access. `top` and
// `guard` are page aligned, hence aligned to STACK_ALIGNMENT.
unsafe impl corosensei::stack::Stack for Stack {
    fn base(&self) -> corosensei::stack::StackPointer {
        self.top
    }

    fn limit(&self) -> corosensei::stack::StackPointer {
        NonZeroUsize::new(self.guard()).unwrap_or(self.top)
    }
}

/// Stacks of one size, global.
struct ArenaClass {
    size: usize,
    /// Stacks handed back with their pages resident, most recent last;
    /// reused first.
    warm: Vec<Stack>,
    /// The fewest stacks `warm` held since the last `trim`: its first that
    /// many sat untouched all that while.
    warm_low: usize,
    /// Stacks whose pages were given back; reused before carving new ones.
    cold: Vec<Stack>,
    /// Next unused address in the current slab.
    next: usize,
    /// End of the current slab.
    end: usize,
}

/// The global source of stacks: carves slabs, keeps cold stacks.
struct Arena {
    classes: Vec<ArenaClass>,
}

static ARENA: Mutex<Arena> = Mutex::new(Arena {
    classes: Vec::new(),
});

impl Arena {
    fn class(&mut self, size: usize) -> &mut ArenaClass {
        let i = match self.classes.iter().position(|c| c.size == size) {
            Some(i) => i,
            None => {
                self.classes.push(ArenaClass {
                    size,
                    warm: Vec::new(),
                    warm_low: 0,
                    cold: Vec::new(),
                    next: 0,
                    end: 0,
                });
                self.classes.len() - 1
            }
        };
        &mut self.classes[i]
    }

    /// Moves up to `n` stacks of `size` into `out`: warm ones first, then
    /// cold ones, then freshly carved ones. Errors only if not even one
    /// could be had.
    fn take(&mut self, size: usize, n: usize, out: &mut Vec<Stack>) -> io::Result<()> {
        let class = self.class(size);
        let from_warm = class.warm.len().min(n);
        out.extend(class.warm.drain(class.warm.len() - from_warm..));
        class.warm_low = class.warm_low.min(class.warm.len());
        let from_cold = class.cold.len().min(n - from_warm);
        out.extend(class.cold.drain(class.cold.len() - from_cold..));
        let stride = size + guard_size();
        for i in from_warm + from_cold..n {
            if class.end - class.next < stride {
                match map_slab(stride) {
                    Ok((start, len)) => {
                        class.next = start;
                        class.end = start + len;
                    }
                    Err(e) if i == 0 => return Err(e),
                    Err(_) => return Ok(()),
                }
            }
            let guard = class.next;
            match install_guard(guard) {
                Ok(()) => {}
                Err(e) if i == 0 => return Err(e),
                Err(_) => return Ok(()),
            }
            class.next += stride;
            // `guard + stride` is the end of a live mapping, never 0.
            if let Some(top) = NonZeroUsize::new(guard + stride) {
                out.push(Stack { top, size });
            }
        }
        Ok(())
    }
}

/// Reserves a slab for stacks of `stride` bytes (guard included).
fn map_slab(stride: usize) -> io::Result<(usize, usize)> {
    let len = (SLAB_BYTES / stride).max(1) * stride;
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing aliases nothing.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        let e = io::Error::last_os_error();
        return Err(described(
            format!("cannot reserve {} MiB for coroutine stacks: {e}", len >> 20),
            e,
        ));
    }
    // Transparent huge pages would turn one touched page per stack into 2 MiB
    // of resident memory. Advice only: failure changes nothing we rely on.
    // SAFETY: the range was just mapped by us.
    unsafe { libc::madvise(p, len, libc::MADV_NOHUGEPAGE) };
    MAPPED_BYTES.fetch_add(len, Ordering::Relaxed);
    Ok((p as usize, len))
}

/// Makes the guard region at `addr` (inside a slab, not yet used) fault on
/// access.
fn install_guard(addr: usize) -> io::Result<()> {
    let len = guard_size();
    if GUARD_MODE.load(Ordering::Relaxed) != GUARD_MPROTECT {
        // SAFETY: `addr..addr + len` lies in a slab we mapped and nobody uses yet.
        let r = unsafe { libc::madvise(addr as *mut libc::c_void, len, MADV_GUARD_INSTALL) };
        if r == 0 {
            GUARD_MODE.store(GUARD_MADVISE, Ordering::Relaxed);
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL)
            || GUARD_MODE.load(Ordering::Relaxed) == GUARD_MADVISE
        {
            return Err(guard_error(e));
        }
        GUARD_MODE.store(GUARD_MPROTECT, Ordering::Relaxed);
    }
    // SAFETY: as above; PROT_NONE on unused pages of our own slab.
    if unsafe { libc::mprotect(addr as *mut libc::c_void, len, libc::PROT_NONE) } != 0 {
        return Err(guard_error(io::Error::last_os_error()));
    }
    Ok(())
}

fn guard_error(e: io::Error) -> io::Error {
    let hint = if e.raw_os_error() == Some(libc::ENOMEM) {
        " (with mprotect guards each stack costs two memory mappings; raise vm.max_map_count or use Linux 6.13+)"
    } else {
        ""
    };
    described(format!("cannot install a stack guard page: {e}{hint}"), e)
}

/// Whether guard pages are page-table markers (true) or mprotect mappings.
pub(crate) fn guards_are_markers() -> bool {
    GUARD_MODE.load(Ordering::Relaxed) == GUARD_MADVISE
}

/// A worker's hot stacks, by size.
pub(crate) struct StackPool {
    /// `(size, stacks)`, most recently freed last. Few sizes in practice.
    classes: Vec<(usize, Vec<Stack>)>,
}

impl StackPool {
    pub(crate) fn new() -> StackPool {
        StackPool {
            classes: Vec::new(),
        }
    }

    fn class(&mut self, size: usize) -> &mut Vec<Stack> {
        let i = match self.classes.iter().position(|(s, _)| *s == size) {
            Some(i) => i,
            None => {
                self.classes.push((size, Vec::new()));
                self.classes.len() - 1
            }
        };
        &mut self.classes[i].1
    }

    /// A stack of exactly `size` usable bytes (`size` already page rounded).
    pub(crate) fn get(&mut self, size: usize) -> io::Result<Stack> {
        if let Some((s, hot)) = self.classes.first_mut()
            && *s == size
            && let Some(stack) = hot.pop()
        {
            return Ok(stack);
        }
        let hot = self.class(size);
        if let Some(s) = hot.pop() {
            return Ok(s);
        }
        lock(&ARENA).take(size, ARENA_BATCH, hot)?;
        hot.pop()
            .ok_or_else(|| io::Error::other("stack arena returned no stack"))
    }

    /// Takes back a stack whose coroutine has finished.
    pub(crate) fn put(&mut self, stack: Stack) {
        let size = stack.size;
        let hot = match self.classes.first_mut() {
            Some((s, hot)) if *s == size => hot,
            _ => self.class(size),
        };
        hot.push(stack);
        if hot.len() > HOT_STACKS_PER_WORKER {
            let mut oldest: Vec<Stack> = hot.drain(..HOT_STACKS_PER_WORKER / 2).collect();
            lock(&ARENA).class(size).warm.append(&mut oldest);
        }
    }

    /// Hot stacks held, all sizes (for `stats`).
    pub(crate) fn len(&self) -> usize {
        self.classes.iter().map(|(_, v)| v.len()).sum()
    }
}

/// Gives back the pages of the warm stacks that sat untouched since the
/// last call: they become cold. True while some stacks are warm: a later
/// call may release them.
pub(crate) fn trim() -> bool {
    let mut idle = Vec::new();
    let mut more = false;
    {
        let mut arena = lock(&ARENA);
        for class in &mut arena.classes {
            if class.warm_low > 0 {
                let untouched: Vec<Stack> = class.warm.drain(..class.warm_low).collect();
                idle.push((class.size, untouched));
            }
            class.warm_low = class.warm.len();
            more |= class.warm_low > 0;
        }
    }
    // Outside the lock: `madvise` takes a while, and these stacks are out
    // of every list meanwhile.
    for (size, mut stacks) in idle {
        release_pages(&mut stacks);
        lock(&ARENA).class(size).cold.append(&mut stacks);
    }
    more
}

/// Gives the usable pages of `stacks` back to the kernel, one `madvise` per
/// run of adjacent stacks. Guard markers survive `MADV_DONTNEED`, so a run may
/// span the guards between its stacks.
fn release_pages(stacks: &mut [Stack]) {
    stacks.sort_unstable_by_key(|s| s.top);
    let mut i = 0;
    while i < stacks.len() {
        let start = stacks[i].usable_start();
        let mut end = stacks[i].top.get();
        let mut j = i + 1;
        while j < stacks.len() && stacks[j].guard() == end && guards_are_markers() {
            end = stacks[j].top.get();
            j += 1;
        }
        // SAFETY: [start, end) covers stacks we own that no coroutine uses
        // (they were just returned) and, with marker guards, the guard pages
        // between them, which MADV_DONTNEED leaves in place.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        i = j;
    }
}
