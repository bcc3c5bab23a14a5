//! # plexo-hal
//!
//! The hardware abstraction of Plexo: the [`Robot`] trait the runtime drives, the types it exchanges
//! ([`JointState`], [`JointCommand`], [`JointInfo`], [`Lifecycle`]) and the errors with a [`RobotError::kind`].
//! Simulated plants (`plexo-sim`) and CAN-bus drives implement the same trait, so the controller never knows
//! which one it runs against; [`conformance`] checks the trait's contract and every backend's tests run it.
//! The CAN side: [`can`] (frames, the `CanBus` trait, SocketCAN, the in-memory `VirtualBus` with fault injection,
//! candump recording), [`mit`] and [`canopen`] (drive protocols), [`CanRobot`] (the `Robot` over CAN, its safety
//! behaviour at the top of `src/can_robot.rs`) and [`planner`] (bus load).

pub mod can;
mod can_robot;
pub mod canopen;
mod config;
pub mod conformance;
mod error;
mod joint_array;
mod joint_info_model;
pub mod mit;
pub mod planner;
mod patient_hooks;
mod robot;
mod types;

pub use can_robot::{CanRobot, CanRobotStats};
pub use config::{
    BusConfig, CanRobotConfig, Cia402Options, JointConfig, JointLimits, JointMapping, MitOptions, MitTorqueField,
};
pub use error::{ErrorKind, HalError, RobotError};
pub use joint_array::{JointArray, MAX_JOINTS};
pub use patient_hooks::{PatientHooks, WithoutPatient};
pub use robot::Robot;
pub use types::{DriveImpedance, JointCommand, JointFlags, JointInfo, JointState, Lifecycle};
