//! Memory for task cells, recycled by size class without the system
//! allocator.
//!
//! A spawn allocates a cell on the spawner's worker; the coroutine often ends
//! on another (a thief), which frees it there. glibc's allocator returns such
//! a chunk to the allocating thread's arena under that arena's lock, so two
//! workers spawning and running tiny coroutines spent most of their time in
//! `futex`, and the backlog grew the arena by `mprotect` steps: 460 ns a
//! spawn measured here, against 160 ns with jemalloc preloaded.
//!
//! So cells of up to `MAX_CLASS_BYTES` come in 64-byte classes, carved from
//! `CHUNK_BYTES` anonymous mappings, one run of cells per class, and never
//! go back to the system allocator: a freed cell is kept for the next
//! spawn, as Go keeps its dead goroutines' `g` structures. Each worker keeps
//! freed cells of each class in a local list (no lock, no atomics); past
//! `LOCAL_MAX` it hands a batch to the global depot, and an empty list takes
//! a batch back, so memory flows from the workers that free to those that
//! allocate at one lock per `BATCH` cells. Only when the depot is empty too
//! does a worker carve new cells, a batch at a time, from its own chunk.
//! Off the workers, cells come from and go to the depot one at a time.
//! Measured with the spawn benchmark (a million tasks, a backlog of
//! hundreds of thousands): taking the backlog's cells from `malloc`, and
//! freeing the excess back, cost a third of the run in arena locks, heap
//! growth by `mprotect` and page faults; carving them from chunks made a
//! spawn 136 -> 86 ns.
//!
//! Chunks are never unmapped, but their pages are given back: free cells
//! that sat in the depot, beyond `DEPOT_KEEP_BATCHES` per class, for a whole
//! `trim` interval (the monitor calls it every second) have the pages they
//! cover released with `MADV_DONTNEED`. They stay free cells, on a cold list
//! used after the warm one; their memory reads as zeros when next touched,
//! and a spawn writes a cell whole. Address space stays at the peak number
//! of live tasks (128 bytes each for a closure of two references); resident
//! memory comes back after a burst.

use std::alloc::{self, Layout};
use std::ptr::{self, NonNull};
use std::sync::Mutex;

use crate::runtime::scheduler::worker::Worker;
use crate::runtime::task::stack::page_size;
use crate::runtime::{lock, scheduler::prefetch};

/// Size step of the classes; cells of one class share one size.
const CLASS_BYTES: usize = 64;
/// Largest pooled cell; bigger closures are rare and go to the system.
const MAX_CLASS_BYTES: usize = 1024;
const CLASSES: usize = MAX_CLASS_BYTES / CLASS_BYTES;
/// Alignment of pooled cells (chunks are page aligned and sizes are
/// multiples of 64). Cells needing more go to the system.
const CLASS_ALIGN: usize = 16;
/// Cells moved between a worker and the depot, or carved, at once.
const BATCH: usize = 64;
/// Free cells a worker keeps per class before handing a batch over.
const LOCAL_MAX: usize = 4 * BATCH;
/// Batches of free cells per class the depot keeps in memory however long
/// they sit (256 KiB of 64-byte cells up to 4 MiB of 1 KiB ones).
const DEPOT_KEEP_BATCHES: usize = 64;
/// Bytes mapped at once for one class's cells: one `mmap` per 8,192 cells
/// of 128 bytes, and only the pages cells are carved from get touched.
const CHUNK_BYTES: usize = 1 << 20;

/// A free cell, owned by whoever holds this value.
struct FreeCell(NonNull<u8>);

// SAFETY: a free cell is plain memory that nothing else references; moving
// the permission to reuse it between threads is safe.
unsafe impl Send for FreeCell {}

/// The class of `layout`, or `None` if it is not pooled.
fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > CLASS_ALIGN || layout.size() > MAX_CLASS_BYTES || layout.size() == 0 {
        return None;
    }
    Some(layout.size().div_ceil(CLASS_BYTES) - 1)
}

fn class_size(class: usize) -> usize {
    (class + 1) * CLASS_BYTES
}

/// Memory not yet carved into cells: `[next, end)` of a chunk mapping,
/// owned by one worker (or by the depot) for one class.
#[derive(Clone, Copy)]
struct Chunk {
    next: usize,
    end: usize,
}

impl Chunk {
    const EMPTY: Chunk = Chunk { next: 0, end: 0 };

    /// Pushes `n` new cells of `size` bytes onto `out`, lowest address
    /// last (popped first, so pages are touched in order); fewer if no
    /// chunk could be mapped.
    fn carve(&mut self, size: usize, n: usize, out: &mut Vec<FreeCell>) {
        let mut left = n;
        while left > 0 {
            if self.end - self.next < size {
                match Chunk::map() {
                    Some(c) => *self = c,
                    None => return,
                }
            }
            let k = left.min((self.end - self.next) / size);
            for i in (0..k).rev() {
                // Inside a live mapping, so not null.
                if let Some(p) = NonNull::new((self.next + i * size) as *mut u8) {
                    out.push(FreeCell(p));
                }
            }
            self.next += k * size;
            left -= k;
        }
    }

    /// A new chunk, never unmapped: its cells are recycled for the life of
    /// the process.
    fn map() -> Option<Chunk> {
        // SAFETY: an anonymous private mapping at an address of the
        // kernel's choosing aliases nothing.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                CHUNK_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        // A huge page would make the first spawn cost 2 MiB of resident
        // memory. Advice only: failure changes nothing we rely on.
        // SAFETY: the range was just mapped by us.
        unsafe { libc::madvise(p, CHUNK_BYTES, libc::MADV_NOHUGEPAGE) };
        Some(Chunk {
            next: p as usize,
            end: p as usize + CHUNK_BYTES,
        })
    }
}

/// A worker's free cells and uncarved memory, by class.
pub(crate) struct TaskCache {
    /// Free cells; at most `LOCAL_MAX` per class after a `free`.
    free: [Vec<FreeCell>; CLASSES],
    /// Where this worker carves new cells when its list and the depot are
    /// both empty.
    chunks: [Chunk; CLASSES],
}

/// Free cells shared by all workers and plain threads, by class.
struct Depot {
    /// Batches of `BATCH` free cells, handed over whole; the last pushed is
    /// taken first, so the front holds the batches idle the longest.
    batches: [Vec<Vec<FreeCell>>; CLASSES],
    /// Batches whose pages were released by `trim`; taken only when
    /// `batches` is empty.
    cold: [Vec<Vec<FreeCell>>; CLASSES],
    /// The fewest `batches` of each class since the last `trim`: that many
    /// at the front went untouched meanwhile.
    low_water: [usize; CLASSES],
    /// Cells freed or wanted off the workers, one at a time.
    loose: [Vec<FreeCell>; CLASSES],
    /// Where cells for threads off the workers are carved.
    chunks: [Chunk; CLASSES],
}

impl Depot {
    const fn new() -> Depot {
        Depot {
            batches: [const { Vec::new() }; CLASSES],
            cold: [const { Vec::new() }; CLASSES],
            low_water: [0; CLASSES],
            loose: [const { Vec::new() }; CLASSES],
            chunks: [Chunk::EMPTY; CLASSES],
        }
    }

    /// A batch of free cells of `class`, warm ones first.
    fn take_batch(&mut self, class: usize) -> Option<Vec<FreeCell>> {
        if let Some(batch) = self.batches[class].pop() {
            self.low_water[class] = self.low_water[class].min(self.batches[class].len());
            return Some(batch);
        }
        self.cold[class].pop()
    }
}

static DEPOT: Mutex<Depot> = Mutex::new(Depot::new());

impl TaskCache {
    pub(crate) fn new() -> TaskCache {
        TaskCache {
            free: std::array::from_fn(|_| Vec::new()),
            chunks: [Chunk::EMPTY; CLASSES],
        }
    }

    #[inline]
    fn alloc(&mut self, class: usize) -> Option<NonNull<u8>> {
        let list = &mut self.free[class];
        if let Some(c) = list.pop() {
            // Most likely freed on another worker, which ran it: fetch it
            // while this spawn proceeds.
            if let Some(next) = list.last() {
                prefetch::write(next.0.as_ptr(), class_size(class));
            }
            return Some(c.0);
        }
        self.refill(class)
    }

    /// Called with the class's list empty.
    #[cold]
    fn refill(&mut self, class: usize) -> Option<NonNull<u8>> {
        let list = &mut self.free[class];
        let batch = lock(&DEPOT).take_batch(class);
        match batch {
            Some(batch) => *list = batch,
            None => self.chunks[class].carve(class_size(class), BATCH, list),
        }
        list.pop().map(|c| c.0)
    }

    #[inline]
    fn free(&mut self, class: usize, cell: NonNull<u8>) {
        let list = &mut self.free[class];
        list.push(FreeCell(cell));
        if list.len() > LOCAL_MAX {
            self.spill(class);
        }
    }

    #[cold]
    fn spill(&mut self, class: usize) {
        let list = &mut self.free[class];
        let batch: Vec<FreeCell> = list.drain(list.len() - BATCH..).collect();
        lock(&DEPOT).batches[class].push(batch);
    }
}

/// A cell for a thread that is not a worker.
fn alloc_shared(class: usize) -> Option<NonNull<u8>> {
    let mut depot = lock(&DEPOT);
    let d = &mut *depot;
    if d.loose[class].is_empty() {
        match d.take_batch(class) {
            Some(batch) => d.loose[class] = batch,
            None => d.chunks[class].carve(class_size(class), BATCH, &mut d.loose[class]),
        }
    }
    d.loose[class].pop().map(|c| c.0)
}

/// Takes back a cell freed by a thread that is not a worker; a full batch of
/// them goes where workers refill from.
fn free_shared(class: usize, cell: NonNull<u8>) {
    let mut depot = lock(&DEPOT);
    let d = &mut *depot;
    d.loose[class].push(FreeCell(cell));
    if d.loose[class].len() >= 2 * BATCH {
        let len = d.loose[class].len();
        let batch: Vec<FreeCell> = d.loose[class].drain(len - BATCH..).collect();
        d.batches[class].push(batch);
    }
}

/// Releases the pages of free cells that sat in the depot, beyond
/// `DEPOT_KEEP_BATCHES` per class, since the last call. True while some
/// class keeps more than that: a later call may release them.
pub(crate) fn trim() -> bool {
    trim_depot(&DEPOT)
}

fn trim_depot(depot: &Mutex<Depot>) -> bool {
    let mut idle = Vec::new();
    let mut more = false;
    {
        let mut d = lock(depot);
        for class in 0..CLASSES {
            let n = d.low_water[class].saturating_sub(DEPOT_KEEP_BATCHES);
            if n > 0 {
                idle.push((class, d.batches[class].drain(..n).collect::<Vec<_>>()));
            }
            d.low_water[class] = d.batches[class].len();
            more |= d.low_water[class] > DEPOT_KEEP_BATCHES;
        }
    }
    // Outside the lock: sorting and `madvise` take a while, and these cells
    // are out of every list meanwhile.
    for (class, batches) in idle {
        let mut addrs: Vec<usize> = batches
            .iter()
            .flatten()
            .map(|c| c.0.as_ptr() as usize)
            .collect();
        release_pages(&mut addrs, class_size(class));
        lock(depot).cold[class].extend(batches);
    }
    more
}

/// Releases every page wholly covered by the free cells at `addrs`, each
/// `size` bytes: within each run of adjacent cells, the pages between its
/// first and last page boundary.
fn release_pages(addrs: &mut [usize], size: usize) {
    addrs.sort_unstable();
    let page = page_size();
    let mut i = 0;
    while i < addrs.len() {
        let start = addrs[i];
        let mut end = start + size;
        i += 1;
        while i < addrs.len() && addrs[i] == end {
            end += size;
            i += 1;
        }
        let (lo, hi) = (start.next_multiple_of(page), end / page * page);
        if hi > lo {
            // Adjacent cells tile their run, so every byte of [lo, hi) is
            // in a free cell the caller holds out of every list, inside a
            // chunk that is never unmapped.
            // SAFETY: nothing reads a free cell; its next owner writes it whole.
            unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_DONTNEED) };
        }
    }
}

/// Memory for a task cell of `layout`; never null (aborts on exhaustion, as
/// `Arc::new` does).
#[inline]
pub(crate) fn alloc(layout: Layout) -> NonNull<u8> {
    let Some(class) = class_of(layout) else {
        // SAFETY: `layout` has a non-zero size (a task cell holds its header).
        let p = unsafe { alloc::alloc(layout) };
        return NonNull::new(p).unwrap_or_else(|| alloc::handle_alloc_error(layout));
    };
    let cell = match Worker::current() {
        Some(w) => w.task_cache().alloc(class),
        None => alloc_shared(class),
    };
    cell.unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

/// Frees a cell from `alloc` with the same `layout`.
///
/// # Safety
/// `p` must come from `alloc(layout)` and not be used afterwards.
#[inline]
pub(crate) unsafe fn dealloc(p: NonNull<u8>, layout: Layout) {
    match class_of(layout) {
        Some(c) => match Worker::current() {
            Some(w) => w.task_cache().free(c, p),
            None => free_shared(c, p),
        },
        // SAFETY: unpooled cells are allocated with `layout` itself.
        None => unsafe { alloc::dealloc(p.as_ptr(), layout) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carved_cells_are_distinct_aligned_and_in_address_order() {
        // 192 bytes does not divide a chunk: the carve crosses into a
        // second chunk, leaving the first one's tail unused.
        let size = class_size(2);
        let n = CHUNK_BYTES / size + 10;
        let mut chunk = Chunk::EMPTY;
        let mut out = Vec::new();
        chunk.carve(size, n, &mut out);
        assert_eq!(out.len(), n);
        let popped: Vec<usize> = out.iter().rev().map(|c| c.0.as_ptr() as usize).collect();
        assert!(popped.iter().all(|a| a % CLASS_ALIGN == 0));
        // The second chunk's ten come first; then the first chunk's, in order.
        assert!(popped[10..].windows(2).all(|w| w[1] == w[0] + size));
        let mut sorted = popped.clone();
        sorted.sort_unstable();
        assert!(
            sorted.windows(2).all(|w| w[1] - w[0] >= size),
            "cells overlap"
        );
        for &a in &popped {
            // SAFETY: each cell is `size` bytes of a live mapping, owned by
            // this test alone.
            unsafe { ptr::write_bytes(a as *mut u8, 0xA5, size) };
        }
    }

    #[test]
    fn a_cell_freed_off_the_workers_is_reused() {
        // The largest class: no task of the other tests is this big.
        let layout = Layout::from_size_align(MAX_CLASS_BYTES - 8, 8).unwrap_or(Layout::new::<u8>());
        let a = alloc(layout);
        // SAFETY: `a` came from `alloc(layout)` and is not used again.
        unsafe { dealloc(a, layout) };
        let b = alloc(layout);
        assert_eq!(a, b);
        // SAFETY: as above.
        unsafe { dealloc(b, layout) };
    }

    /// A depot of its own holding `n` batches of class `class`, every cell
    /// filled with 0xA5.
    fn filled_depot(class: usize, n: usize) -> Mutex<Depot> {
        let mut d = Depot::new();
        for _ in 0..n {
            let mut batch = Vec::new();
            d.chunks[class].carve(class_size(class), BATCH, &mut batch);
            for c in &batch {
                // SAFETY: a fresh cell of `class_size(class)` bytes, ours.
                unsafe { ptr::write_bytes(c.0.as_ptr(), 0xA5, class_size(class)) };
            }
            d.batches[class].push(batch);
        }
        Mutex::new(d)
    }

    fn first_byte(batch: &[FreeCell], i: usize) -> u8 {
        // SAFETY: a free cell of a live mapping, ours; reading it is
        // defined (released pages read as zeros).
        unsafe { batch[i].0.as_ptr().read_volatile() }
    }

    #[test]
    fn trim_releases_only_batches_idle_for_a_whole_interval() {
        // 192-byte cells straddle page boundaries.
        let class = 2;
        let depot = filled_depot(class, DEPOT_KEEP_BATCHES + 10);
        // The first call only starts the interval.
        assert!(trim_depot(&depot));
        assert!(lock(&depot).cold[class].is_empty());
        // Taking a batch and giving it back makes it warm again.
        let warm = lock(&depot).take_batch(class);
        lock(&depot).batches[class].extend(warm);
        assert!(trim_depot(&depot));
        let d = lock(&depot);
        assert_eq!(
            d.cold[class].len(),
            9,
            "one batch below the watermark stayed"
        );
        assert_eq!(d.batches[class].len(), DEPOT_KEEP_BATCHES + 1);
        // Cells wholly on released pages read as zeros; kept ones do not.
        assert_eq!(first_byte(&d.cold[class][4], BATCH / 2), 0);
        assert_eq!(first_byte(&d.batches[class][DEPOT_KEEP_BATCHES], 0), 0xA5);
    }

    #[test]
    fn released_cells_are_used_after_warm_ones() {
        let class = 3;
        let depot = filled_depot(class, DEPOT_KEEP_BATCHES + 2);
        trim_depot(&depot);
        trim_depot(&depot);
        let mut d = lock(&depot);
        assert_eq!(d.cold[class].len(), 2);
        for _ in 0..DEPOT_KEEP_BATCHES {
            let batch = d.take_batch(class).unwrap_or_default();
            assert_eq!(first_byte(&batch, 0), 0xA5);
        }
        let batch = d.take_batch(class).unwrap_or_default();
        assert_eq!(batch.len(), BATCH);
        assert_eq!(first_byte(&batch, BATCH / 2), 0);
        // Released memory is usable: the next owner writes it.
        // SAFETY: a free cell of `class_size(class)` bytes, ours.
        unsafe { ptr::write_bytes(batch[0].0.as_ptr(), 0x5A, class_size(class)) };
        assert_eq!(first_byte(&batch, 0), 0x5A);
    }

    #[test]
    fn cells_beyond_the_classes_come_from_the_system() {
        for layout in [
            Layout::from_size_align(MAX_CLASS_BYTES + 1, 8),
            Layout::from_size_align(64, 4 * CLASS_ALIGN),
        ] {
            let layout = layout.unwrap_or(Layout::new::<u8>());
            assert_eq!(class_of(layout), None);
            let p = alloc(layout);
            assert_eq!(p.as_ptr() as usize % layout.align(), 0);
            // SAFETY: `p` came from `alloc(layout)` and is not used again.
            unsafe { dealloc(p, layout) };
        }
    }
}
