//! Emulated CAN drives and sim-over-CAN.
//!
//! [`EmulatedMitMotor`] (CubeMars AK, MIT mode) and [`EmulatedCia402Drive`] (CANopen CiA 402, cyclic
//! synchronous torque) speak their protocols frame by frame on `crate::VirtualBus`, with their state
//! machines, timeouts and faults, and apply torque to any [`plexo_hal::Robot`] plant. [`SimOverCan`] composes
//! `CanRobot` → virtual buses → emulated drives → plant into one deterministic [`plexo_hal::Robot`], so the
//! whole stack runs in simulation through real protocol frames (`plexo sim --over-can mit|cia402`), and can
//! record every frame to a candump file ([`SimOverCan::record_candump`] / [`SimOverCan::finish_candump`]).
//! `SimOverCan<R>` forwards [`plexo_hal::PatientHooks`] to `R`, so a simulated patient behind the drives stays
//! reachable by the runtime.
//!
//! The fault-injection tests of the whole stack (`tests.rs`: every `VirtualBus` fault for both protocols, with
//! its reaction and bound in cycles) run it with `testing::TestPlant`.
//!
//! ```
//! use plexo_can::DriveProtocol;
//! use plexo_can::emulated::SimOverCan;
//! use plexo_can::testing::TestPlant;
//! use plexo_hal::{JointCommand, JointState, Robot};
//!
//! let plant = TestPlant::new(4, 0.05, 0.2, 0.001);
//! let config = SimOverCan::<TestPlant>::default_config(&plant.joints().to_vec(), DriveProtocol::Mit, 500.0)?;
//! let mut sim = SimOverCan::new(plant, config)?;
//! sim.record_in_memory(4096); // a session records to a file instead: sim.record_candump(path)?
//! sim.enable()?;
//! let mut state = JointState::zeros(4);
//! let mut command = JointCommand::zeros(4);
//! command.torque[3] = 1.0;
//! for _ in 0..100 {
//!     sim.read(&mut state)?;
//!     sim.write(&command)?;
//! }
//! assert!(sim.plant_state().position[3] > 0.0);
//! let log = sim.candump_log(); // one `(seconds.micros) can0 ID#DATA` line per frame
//! assert!(log.lines().count() >= 800, "100 cycles × 4 joints × (command + reply)");
//! # Ok::<(), plexo_hal::HalError>(())
//! ```

mod cia402_drive;
mod mit_motor;
mod sim_over_can;
#[cfg(test)]
mod tests;

pub use cia402_drive::EmulatedCia402Drive;
pub use mit_motor::EmulatedMitMotor;
pub use sim_over_can::{CANDUMP_CHANNEL_RECORDS, DriveSet, EmulatedDrive, SimOverCan};
