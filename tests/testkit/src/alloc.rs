//! The counting global allocator: proves that a piece of code (a control tick, a plant step, an algorithm after
//! `Data::new`) makes no heap allocation.
//!
//! It forwards every call to [`std::alloc::System`] unchanged and counts, per thread, the calls that obtain
//! memory (`alloc`, `alloc_zeroed`, `realloc`; `dealloc` is not counted). Counting is per thread so that the
//! test harness, other tests running in parallel and background threads (telemetry writers, candump writers)
//! do not disturb the measurement of the thread under test.
//!
//! # Installing it (one line per test binary) and measuring
//!
//! A global allocator belongs to a whole binary, so each integration-test file that measures allocations
//! installs it once, at its top level, with [`install_counting_allocator!`](crate::install_counting_allocator)
//! (the same as `#[global_allocator] static GLOBAL: plexo_testkit::CountingAllocator =
//! plexo_testkit::CountingAllocator;`):
//!
//! ```
//! plexo_testkit::install_counting_allocator!();
//!
//! fn main() {
//!     let mut state = [0.0_f64; 4];
//!     let n = plexo_testkit::count_allocations(|| {
//!         for k in 0..1000 {
//!             state[k % 4] += 0.001; // a tick that works in place
//!         }
//!     });
//!     assert_eq!(n, 0, "allocations in 1000 ticks");
//!     let n = plexo_testkit::count_allocations(|| drop(std::hint::black_box(vec![0u8; 64])));
//!     assert_eq!(n, 1);
//! }
//! ```
//!
//! [`count_allocations`] and [`AllocationWindow::open`] first check that the counting allocator is the binary's
//! global allocator ([`assert_installed`]) and panic if it is not: without it every count would be 0 and an
//! allocation test would pass without measuring anything.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Allocations made by this thread since it started. A `const` initialiser: on Linux the slot is a native
    /// thread-local, reading or bumping it never allocates (no re-entrancy into the allocator).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Counts one allocation on the current thread. `try_with`: during thread teardown, after the slot is
/// destroyed, allocations are not counted instead of panicking inside the allocator.
fn count_one() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

/// A global allocator that forwards to [`System`] and counts the allocations of each thread.
///
/// Install it with [`install_counting_allocator!`](crate::install_counting_allocator) (or a `#[global_allocator]`
/// static of this type); read the counts with [`allocations`], [`count_allocations`] or [`AllocationWindow`].
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAllocator;

// SAFETY: every method forwards to the system allocator with the caller's arguments unchanged, so it inherits
// `System`'s guarantees; counting only touches a `const`-initialised thread-local `Cell` (no allocation, no lock,
// no re-entrancy into the allocator).
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Installs [`CountingAllocator`] as the global allocator of the test binary it is written in (at module level,
/// once per binary).
#[macro_export]
macro_rules! install_counting_allocator {
    () => {
        #[global_allocator]
        static PLEXO_TESTKIT_COUNTING_ALLOCATOR: $crate::CountingAllocator = $crate::CountingAllocator;
    };
}

/// Allocations (`alloc`, `alloc_zeroed`, `realloc` calls) made by the current thread since it started; always 0
/// when [`CountingAllocator`] is not the global allocator. Take differences, or use [`count_allocations`].
pub fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Panics unless [`CountingAllocator`] is the global allocator of this binary (it makes and frees one small
/// allocation to find out). Called by [`count_allocations`] and [`AllocationWindow::open`], so that a test that
/// forgot [`install_counting_allocator!`](crate::install_counting_allocator) fails instead of measuring 0.
pub fn assert_installed() {
    let before = allocations();
    drop(std::hint::black_box(Box::new(std::hint::black_box(0u64))));
    assert!(
        allocations() > before,
        "plexo_testkit::CountingAllocator is not the global allocator of this test binary: add \
         `plexo_testkit::install_counting_allocator!();` at its top level"
    );
}

/// Runs `f` on the current thread and returns how many allocations it made there (allocations made by other
/// threads meanwhile are not counted).
///
/// # Panics
/// If [`CountingAllocator`] is not installed (see [`assert_installed`]).
pub fn count_allocations(f: impl FnOnce()) -> u64 {
    let window = AllocationWindow::open();
    f();
    window.allocations()
}

/// A measuring window over the current thread's allocations, for measurements that do not fit in one closure
/// (e.g. a loop whose state is borrowed elsewhere): open it, run the code, read [`AllocationWindow::allocations`].
#[derive(Debug)]
pub struct AllocationWindow {
    start: u64,
}

impl AllocationWindow {
    /// Opens a window at the current allocation count of this thread.
    ///
    /// # Panics
    /// If [`CountingAllocator`] is not installed (see [`assert_installed`]).
    pub fn open() -> Self {
        assert_installed();
        Self { start: allocations() }
    }

    /// Allocations made by the current thread since the window was opened. Must be read on the thread that
    /// opened it (the counts are per thread).
    pub fn allocations(&self) -> u64 {
        allocations() - self.start
    }
}
