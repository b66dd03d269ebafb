//! Per-thread memory accounting, for per-query memory budgets.
//!
//! Every allocation the process makes through [`CountingAllocator`] (the programs
//! install it as Rust's global allocator) and every allocation SQLite makes (the engine
//! routes SQLite's allocator here with [`note_alloc`]/[`note_free`]) moves a counter of
//! the live bytes of the thread that made it. A query runs on one thread (its
//! generators on coroutines of that same thread), so the growth of that counter while
//! the query runs is the query's memory: SQLite's for the statement, the rows the
//! generators build, the result rows the caller keeps.
//!
//! A [`Window`] opens the accounting of one query: it remembers where the counter
//! stood, resets the peak and sets the budget. [`over_budget`] says whether the peak
//! went past it (even for a moment between two checks), and [`admit`] lets an allocator
//! that can fail cleanly (SQLite's) refuse an allocation that would cross it, so a
//! single huge allocation never happens at all.
//!
//! What this cannot see: memory a query makes another thread allocate (a generator
//! that spawns helper threads), and memory freed on another thread than the one that
//! allocated it counts as freed there (the allocating thread's figure stays high, the
//! freeing thread's goes down). The daemon's query threads allocate and free their own
//! work, so both effects are small there; the process-wide watchdog remains the backstop.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

const NO_BUDGET: isize = isize::MAX;

// Per-thread counters: a thread's own allocations move only its own figures, with no
// atomic or lock on the allocation path. Const-initialised and without destructors, so
// the allocator may use them at any point of a thread's life.
thread_local! {
    /// Bytes this thread allocated minus the bytes it freed (negative when it frees
    /// what others allocated).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The highest `LIVE` since the last [`Window::open`].
    static PEAK: Cell<isize> = const { Cell::new(0) };
    /// The highest `LIVE` the open window allows.
    static LIMIT: Cell<isize> = const { Cell::new(NO_BUDGET) };
    /// An allocation was refused for crossing the budget.
    static REFUSED: Cell<bool> = const { Cell::new(false) };
}

/// Counts `bytes` allocated on this thread.
#[inline]
pub fn note_alloc(bytes: usize) {
    let live = LIVE.get().wrapping_add(bytes as isize);
    LIVE.set(live);
    if live > PEAK.get() {
        PEAK.set(live);
    }
}

/// Counts `bytes` freed on this thread.
#[inline]
pub fn note_free(bytes: usize) {
    LIVE.set(LIVE.get().wrapping_sub(bytes as isize));
}

/// Whether `bytes` more may be allocated on this thread within the open window's
/// budget; when not, the refusal is remembered (the query stops for memory).
#[inline]
pub fn admit(bytes: usize) -> bool {
    let limit = LIMIT.get();
    if limit == NO_BUDGET || LIVE.get().saturating_add(bytes as isize) <= limit {
        return true;
    }
    REFUSED.set(true);
    false
}

/// Whether the open window's budget was crossed on this thread: the peak went past it,
/// or an allocation was refused. Always false without a window (another thread, or no
/// budget).
#[inline]
pub fn over_budget() -> bool {
    let limit = LIMIT.get();
    limit != NO_BUDGET && (PEAK.get() > limit || REFUSED.get())
}

/// The live bytes this thread has allocated (see the module's caveats).
pub fn live_bytes() -> isize {
    LIVE.get()
}

/// The accounting of one query on the current thread.
#[derive(Debug, PartialEq, Eq)]
pub struct Window {
    base: isize,
}

impl Window {
    /// Starts counting from here; `budget` is how many bytes the query may grow by.
    pub fn open(budget: Option<u64>) -> Window {
        let base = LIVE.get();
        PEAK.set(base);
        REFUSED.set(false);
        LIMIT.set(match budget {
            Some(b) => base.saturating_add(isize::try_from(b).unwrap_or(isize::MAX - 1)),
            None => NO_BUDGET,
        });
        Window { base }
    }

    /// The most the thread grew by since the window opened, in bytes.
    pub fn peak(&self) -> u64 {
        PEAK.get().saturating_sub(self.base).max(0) as u64
    }

    /// Ends the budget (the counters keep running); returns the peak growth.
    pub fn close(self) -> u64 {
        self.peak()
    }
}

impl Drop for Window {
    /// A budget never outlives its query, even one that unwound.
    fn drop(&mut self) {
        LIMIT.set(NO_BUDGET);
    }
}

/// A global allocator that counts each thread's live bytes around another allocator
/// (the system's by default). Install it in a program with
/// `#[global_allocator] static ALLOC: CountingAllocator = CountingAllocator::SYSTEM;`.
/// It never refuses an allocation (Rust aborts on a failed one); budgets act at the
/// next check.
#[derive(Debug, Default)]
pub struct CountingAllocator<A = System> {
    inner: A,
}

impl CountingAllocator<System> {
    pub const SYSTEM: CountingAllocator<System> = CountingAllocator { inner: System };
}

impl<A> CountingAllocator<A> {
    pub const fn new(inner: A) -> Self {
        CountingAllocator { inner }
    }
}

// SAFETY: every call is forwarded unchanged to the inner allocator; the counting only
// reads the layout's size and touches this thread's own counters (no allocation).
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAllocator<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { self.inner.alloc(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { self.inner.alloc_zeroed(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { self.inner.dealloc(ptr, layout) };
        note_free(layout.size());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note_free(layout.size());
            note_alloc(new_size);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_sees_the_peak_and_the_budget() {
        // The test binary uses the system allocator: drive the counters directly.
        let window = Window::open(Some(1000));
        note_alloc(600);
        note_free(600);
        note_alloc(300);
        assert_eq!(window.peak(), 600);
        assert!(!over_budget());
        assert!(admit(700));
        assert!(
            !admit(701),
            "700 + 300 reaches the budget exactly; one more crosses it"
        );
        assert!(over_budget(), "a refused allocation stops the query");
        note_free(300);
        assert_eq!(window.close(), 600);
        assert!(!over_budget(), "no window, no budget");
        assert!(admit(usize::MAX / 2));

        let window = Window::open(Some(100));
        note_alloc(150);
        note_free(150);
        assert!(over_budget(), "a moment above the budget counts");
        assert_eq!(window.close(), 150);

        // Other threads have their own figures.
        let window = Window::open(Some(10));
        std::thread::spawn(|| note_alloc(1 << 20)).join().unwrap();
        assert!(!over_budget());
        assert_eq!(window.close(), 0);
    }

    #[test]
    fn the_allocator_counts_what_passes_through_it() {
        let counting = CountingAllocator::SYSTEM;
        let window = Window::open(None);
        let layout = Layout::from_size_align(4096, 8).unwrap();
        // SAFETY: a non-zero layout; the pointer is freed with the same layout, and
        // reallocated with a valid size.
        unsafe {
            let p = counting.alloc(layout);
            assert!(!p.is_null());
            let q = counting.realloc(p, layout, 8192);
            assert!(!q.is_null());
            counting.dealloc(q, Layout::from_size_align(8192, 8).unwrap());
        }
        assert_eq!(window.close(), 8192);
    }
}
