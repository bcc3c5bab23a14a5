//! Test doubles, not part of the production API: compiled for this crate's own tests and, for other crates'
//! tests and benchmarks, behind the `testing` feature (`plexo-can = { …, features = ["testing"] }` as a
//! dev-dependency).
//!
//! - [`EchoMotors`]: MIT motors answering every command at once with the commanded position (no physics), on a
//!   virtual bus through [`crate::PumpedNode`] or on any bus with [`EchoMotors::serve`];
//! - [`TestPlant`]: independent inertia + damping joints, a minimal [`plexo_hal::Robot`] to put behind the
//!   emulated drives ([`crate::emulated::SimOverCan`]) without a simulator.

mod echo_motors;
mod test_plant;

pub use echo_motors::EchoMotors;
pub use test_plant::TestPlant;
