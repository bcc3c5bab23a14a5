//! Plexo's test kit: what the tests, benchmarks and examples of every crate share, in one copy.
//!
//! A dev-only crate (`publish = false`): crates name it under `[dev-dependencies]` only, so no production build
//! links it. Each crate enables the features its tests use:
//!
//! - always, [`alloc`]: the counting global allocator behind every "allocates nothing" test. A test binary
//!   installs it with one line, [`install_counting_allocator!`], and measures with [`count_allocations`] or an
//!   [`AllocationWindow`].
//! - always, [`measure`]: small measurements the tests assert on (`max_abs_diff`).
//! - feature `robots`: [`robots`], the standard robots (plexo-arm4, plexo-arm6), the arm4's joint names, home
//!   posture and control period, drive-side impedance commands; a backend's joints from the URDF are `plexo_hal::JointInfo::from_model`.
//! - feature `sim`: [`patients`], the standard virtual patients and the plant configurations they start in;
//!   [`plant_step`], the workload of plexo-sim's plant-step benchmarks.
//! - feature `controller`: [`rig`], the closed loop controller + supervisor + plant as the runtime runs it (its
//!   set-up steps from rest to the home posture, mode switches, and the same loop run by a `Therapy` session), the
//!   shared controller configuration, ranges of motion, target sets and protocols, a scripted (plant-less)
//!   therapy, and the benchmarked tick workload.
//!
//! Test helpers panic (with a message) instead of returning errors: a test whose set-up fails has failed.

pub mod alloc;
pub mod measure;
#[cfg(feature = "sim")]
pub mod patients;
#[cfg(feature = "sim")]
pub mod plant_step;
#[cfg(feature = "controller")]
pub mod rig;
#[cfg(feature = "robots")]
pub mod robots;

pub use alloc::{AllocationWindow, CountingAllocator, allocations, assert_installed, count_allocations};
