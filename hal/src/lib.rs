//! # plexo-hal
//!
//! The hardware abstraction of Plexo: the [`Robot`] trait the runtime drives, the types it exchanges
//! ([`JointState`], [`JointCommand`], [`JointInfo`], [`Lifecycle`]) and the errors with a [`RobotError::kind`].
//! Simulated plants (`plexo-sim`) and the CAN backend (`plexo-can`) implement the same trait, so the controller
//! never knows which one it runs against; [`JointCommand::check`] is the one validation of a command every
//! backend runs, and [`conformance`] checks the trait's contract (every backend's tests run it).
//! [`PatientHooks`] links the runtime to a simulated patient; hardware backends are wrapped in [`WithoutPatient`].
//!
//! This crate knows no bus, codec or simulator: it depends on nothing but `thiserror` and `toml`.

pub mod conformance;
mod error;
mod joint_array;
mod joint_info_model;
mod lifecycle;
mod patient_hooks;
mod robot;
mod types;

pub use error::{ErrorKind, HalError, RobotError};
pub use joint_array::{JointArray, MAX_JOINTS};
pub use lifecycle::Lifecycle;
pub use patient_hooks::{PatientHooks, WithoutPatient};
pub use robot::Robot;
pub use types::{DriveImpedance, JointCommand, JointFlags, JointInfo, JointState};
