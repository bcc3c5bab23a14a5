//! Plexo's test kit: what the tests, benchmarks and examples of every crate share, in one copy.
//!
//! A dev-only crate (`publish = false`): crates name it under `[dev-dependencies]` only, so no production build
//! links it.
//!
//! - [`alloc`]: the counting global allocator behind every "allocates nothing" test. A test binary installs it
//!   with one line, [`install_counting_allocator!`], and measures with [`count_allocations`] or an
//!   [`AllocationWindow`].

pub mod alloc;

pub use alloc::{AllocationWindow, CountingAllocator, allocations, assert_installed, count_allocations};
