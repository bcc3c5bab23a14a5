//! # plexo-hal
//!
//! The hardware abstraction of Plexo: the [`Robot`] trait the runtime drives, the types it exchanges
//! ([`JointState`], [`JointCommand`], [`JointInfo`], [`Lifecycle`]) and the errors with a [`RobotError::kind`].
//! Simulated plants (`plexo-sim`) and CAN-bus drives implement the same trait, so the controller never knows
//! which one it runs against.

pub mod can;
mod error;
mod joint_array;
pub mod mit;
mod robot;
mod types;

pub use error::{ErrorKind, HalError, RobotError};
pub use joint_array::{JointArray, MAX_JOINTS};
pub use robot::Robot;
pub use types::{DriveImpedance, JointCommand, JointFlags, JointInfo, JointState, Lifecycle};
