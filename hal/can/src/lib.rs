//! # plexo-can
//!
//! The CAN backend of Plexo, one implementation of [`plexo_hal::Robot`]:
//! - the bus layer: the `Copy` [`CanFrame`], the [`CanBus`] trait, [`socketcan`] (Linux SocketCAN, classic and
//!   FD), the in-memory [`VirtualBus`] with fault injection ([`virtual_bus`]), bit [`timing`], the [`candump`]
//!   log format and the bounded candump file [`recorder`];
//! - the drive protocols: [`mit`] (CubeMars AK, MIT mode) and [`canopen`] (CiA 301 / CiA 402);
//! - the hardware configuration ([`CanRobotConfig`]: buses, joints, link-side limits) and the bus-load
//!   [`planner`] it runs;
//! - [`CanRobot`], the `Robot` over CAN (its safety behaviour at the top of `src/can_robot/mod.rs`);
//! - [`emulated`]: CubeMars MIT and CiA 402 drives that stand in front of any `Robot` ([`emulated::SimOverCan`]),
//!   so the whole stack runs in simulation through real frames, with the fault-injection tests of the stack.
//!
//! `CanRobot` does not implement [`plexo_hal::PatientHooks`] (hardware has no virtual patient: the runtime wraps
//! it in [`plexo_hal::WithoutPatient`]); `SimOverCan` forwards the hooks of the robot behind it.
//! Test doubles live in `testing`, behind the `testing` feature.

mod bus;
mod can_robot;
pub mod candump;
pub mod canopen;
mod config;
pub mod emulated;
mod frame;
pub mod mit;
pub mod planner;
pub mod recorder;
pub mod socketcan;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod timing;
pub mod virtual_bus;

pub use bus::{BusState, CanBus, ErrorFrameInfo};
pub use can_robot::{CanRobot, CanRobotStats};
pub use config::{
    BusConfig, CanRobotConfig, Cia402Options, JointConfig, JointMapping, LinkLimits, MAX_DATA_BITRATE,
    MAX_TEMPERATURE_LIMIT_C, MitOptions, MitTorqueField,
};
pub use frame::{CanFrame, CanId, FD_LENGTHS, controller, error_class};
pub use planner::DriveProtocol;
pub use virtual_bus::{
    BusStats, ClockMode, Fault, FaultRule, FrameMatch, NodeId, Pump, PumpedNode, VirtualBus, VirtualBusConfig,
    VirtualNode,
};
