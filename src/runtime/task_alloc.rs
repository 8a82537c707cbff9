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
//! So cells of up to `MAX_CLASS_BYTES` come in 64-byte classes. Each worker
//! keeps freed cells of each class in a local list (no lock, no atomics);
//! past `LOCAL_MAX` it hands a batch to the global depot, and an empty list
//! takes a batch back, so memory flows from the workers that free to those
//! that allocate at one lock per `BATCH` cells. Beyond the depot's cap
//! cells go back to the system allocator, which bounds what is retained.
//! Off the workers, cells come from and go to the system allocator.

use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::Mutex;

use super::lock;
use super::worker::Worker;

/// Size step of the classes; cells of one class share one layout.
const CLASS_BYTES: usize = 64;
/// Largest pooled cell; bigger closures are rare and go to the system.
const MAX_CLASS_BYTES: usize = 1024;
const CLASSES: usize = MAX_CLASS_BYTES / CLASS_BYTES;
/// Alignment of pooled cells. Cells needing more go to the system.
const CLASS_ALIGN: usize = 16;
/// Cells moved between a worker and the depot at once.
const BATCH: usize = 64;
/// Free cells a worker keeps per class before handing a batch over.
const LOCAL_MAX: usize = 4 * BATCH;
/// Batches the depot keeps per class (4096 cells); more are freed.
const DEPOT_MAX_BATCHES: usize = 64;

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

fn class_layout(class: usize) -> Layout {
    // (class + 1) * 64 is a non-zero multiple of 16 well below isize::MAX.
    Layout::from_size_align((class + 1) * CLASS_BYTES, CLASS_ALIGN).unwrap_or(Layout::new::<u128>())
}

/// A worker's free cells, by class.
pub(crate) struct TaskCache {
    free: [Vec<FreeCell>; CLASSES],
}

/// Batches of free cells shared by all workers, by class.
static DEPOT: Mutex<[Vec<Vec<FreeCell>>; CLASSES]> = Mutex::new([const { Vec::new() }; CLASSES]);

impl TaskCache {
    pub(crate) fn new() -> TaskCache {
        TaskCache {
            free: std::array::from_fn(|_| Vec::new()),
        }
    }

    #[inline]
    fn alloc(&mut self, class: usize) -> Option<NonNull<u8>> {
        let list = &mut self.free[class];
        if let Some(c) = list.pop() {
            if let Some(next) = list.last() {
                prefetch_for_write(next.0, class_layout(class).size());
            }
            return Some(c.0);
        }
        self.refill(class)
    }

    #[cold]
    fn refill(&mut self, class: usize) -> Option<NonNull<u8>> {
        let list = &mut self.free[class];
        if list.is_empty()
            && let Some(batch) = lock(&DEPOT)[class].pop()
        {
            *list = batch;
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
        {
            let batch: Vec<FreeCell> = list.drain(list.len() - BATCH..).collect();
            let mut depot = lock(&DEPOT);
            if depot[class].len() < DEPOT_MAX_BATCHES {
                depot[class].push(batch);
            } else {
                drop(depot);
                for c in batch {
                    // SAFETY: every pooled cell of `class` was allocated by
                    // `alloc` with `class_layout(class)` and is unused now.
                    unsafe { alloc::dealloc(c.0.as_ptr(), class_layout(class)) };
                }
            }
        }
    }
}

/// Asks the CPU to fetch `bytes` at `p` for writing. A free cell was most
/// likely freed on another worker (spawns run where they are stolen to), so
/// its lines sit modified in that core's cache; fetching the next cell while
/// this spawn proceeds hides that transfer, which otherwise stalled the
/// spawner at its next atomic instruction.
#[inline]
fn prefetch_for_write(p: NonNull<u8>, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    for off in (0..bytes).step_by(64) {
        // SAFETY: a prefetch is a hint: it has no architectural effect and
        // cannot fault, whatever the address.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_ET0 }>(
                p.as_ptr().wrapping_add(off).cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, bytes);
}

/// Memory for a task cell of `layout`; never null (aborts on exhaustion, as
/// `Arc::new` does).
#[inline]
pub(crate) fn alloc(layout: Layout) -> NonNull<u8> {
    let (layout, class) = match class_of(layout) {
        Some(c) => (class_layout(c), Some(c)),
        None => (layout, None),
    };
    if let Some(c) = class
        && let Some(w) = Worker::current()
        && let Some(p) = w.task_cache().alloc(c)
    {
        return p;
    }
    // SAFETY: `layout` has a non-zero size (a task cell holds its header).
    let p = unsafe { alloc::alloc(layout) };
    NonNull::new(p).unwrap_or_else(|| alloc::handle_alloc_error(layout))
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
            // SAFETY: pooled cells are allocated with `class_layout(c)`.
            None => unsafe { alloc::dealloc(p.as_ptr(), class_layout(c)) },
        },
        // SAFETY: unpooled cells are allocated with `layout` itself.
        None => unsafe { alloc::dealloc(p.as_ptr(), layout) },
    }
}
