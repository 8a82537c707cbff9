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
//! `CHUNK_BYTES` anonymous mappings, one run of cells per class, and are
//! never given back to the system: a freed cell is kept for the next spawn,
//! as Go keeps its dead goroutines' `g` structures. Each worker keeps freed
//! cells of each class in a local list (no lock, no atomics); past
//! `LOCAL_MAX` it hands a batch to the global depot, and an empty list takes
//! a batch back, so memory flows from the workers that free to those that
//! allocate at one lock per `BATCH` cells. Only when the depot is empty too
//! does a worker carve new cells, a batch at a time, from its own chunk.
//! Off the workers, cells come from and go to the depot one at a time.
//!
//! Retaining every cell bounds the memory at the peak number of live tasks
//! (128 bytes each for a closure of two references). Measured with the
//! spawn benchmark (a million tasks, a backlog of hundreds of thousands):
//! taking the backlog's cells from `malloc`, and freeing the excess back,
//! cost a third of the run in arena locks, heap growth by `mprotect` and
//! page faults; carving them from chunks made a spawn 136 -> 86 ns.

use std::alloc::{self, Layout};
use std::ptr::{self, NonNull};
use std::sync::Mutex;

use super::worker::Worker;
use super::{lock, prefetch};

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
    /// Batches of `BATCH` free cells, handed over whole.
    batches: [Vec<Vec<FreeCell>>; CLASSES],
    /// Cells freed or wanted off the workers, one at a time.
    loose: [Vec<FreeCell>; CLASSES],
    /// Where cells for threads off the workers are carved.
    chunks: [Chunk; CLASSES],
}

static DEPOT: Mutex<Depot> = Mutex::new(Depot {
    batches: [const { Vec::new() }; CLASSES],
    loose: [const { Vec::new() }; CLASSES],
    chunks: [Chunk::EMPTY; CLASSES],
});

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
        let batch = lock(&DEPOT).batches[class].pop();
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
        match d.batches[class].pop() {
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
