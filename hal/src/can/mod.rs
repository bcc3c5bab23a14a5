//! The CAN bus layer: the `Copy` [`CanFrame`], the [`CanBus`] trait, the SocketCAN backend, the in-memory
//! [`VirtualBus`], bit timing, the candump log format and the bounded candump file recorder ([`recorder`]).

mod bus;
pub mod candump;
mod frame;
pub mod recorder;
pub mod socketcan;
pub mod timing;
mod virtual_bus;

pub use bus::{BusState, CanBus, ErrorFrameInfo};
pub use frame::{CanFrame, CanId, FD_LENGTHS, controller, error_class};
pub use virtual_bus::{
    BusStats, ClockMode, Fault, FaultRule, FrameMatch, NodeId, Pump, PumpedNode, VirtualBus, VirtualBusConfig,
    VirtualNode,
};
