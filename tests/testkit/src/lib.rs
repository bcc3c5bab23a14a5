//! Plexo's test kit: what the tests, benchmarks and examples of every crate share, in one copy.
//!
//! A dev-only crate (`publish = false`): crates name it under `[dev-dependencies]` only, so no production build
//! links it. Each crate enables the features its tests use:
//!
//! - always, [`alloc`]: the counting global allocator behind every "allocates nothing" test. A test binary
//!   installs it with one line, [`install_counting_allocator!`], and measures with [`count_allocations`] or an
//!   [`AllocationWindow`].
//! - feature `robots`: [`robots`], the standard robots (plexo-arm4, plexo-arm6), the arm4's joint names, home
//!   posture and control period, drive-side impedance commands; a backend's joints from the URDF are `plexo_hal::JointInfo::from_model`.
//! - feature `sim`: [`patients`], the standard virtual patients and the plant configurations they start in.
//! - feature `controller`: [`rig`], the closed loop controller + supervisor + plant as the runtime runs it, the
//!   shared controller configuration, ranges of motion and target sets, and the benchmarked tick workload.
//!
//! Test helpers panic (with a message) instead of returning errors: a test whose set-up fails has failed.

pub mod alloc;
#[cfg(feature = "sim")]
pub mod patients;
#[cfg(feature = "controller")]
pub mod rig;
#[cfg(feature = "robots")]
pub mod robots;

pub use alloc::{AllocationWindow, CountingAllocator, allocations, assert_installed, count_allocations};
