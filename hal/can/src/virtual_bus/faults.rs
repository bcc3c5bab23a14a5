//! What [`super::VirtualBus::inject`] can do to frames: the [`Fault`], which frames it hits ([`FrameMatch`], by
//! identifier or by sending [`NodeId`]) and for how many ([`FaultRule`]). The bus applies them (see the list of faults in the module docs of
//! [`super::VirtualBus`]).

use core::time::Duration;

use crate::frame::{CanFrame, CanId};

/// Index of a node on a virtual bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeId(pub usize);

/// A fault to inject.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// The frame is lost.
    Drop,
    /// The frame is delivered this much later.
    Delay(Duration),
    /// The frame is delivered twice.
    Duplicate,
    /// The frame is delivered after the next frame.
    Reorder,
    /// Payload byte `byte` is XOR-ed with `xor` (no effect if the frame is shorter).
    Corrupt {
        /// Byte index.
        byte: usize,
        /// Bits to flip.
        xor: u8,
    },
    /// The sending node goes bus-off.
    BusOff,
    /// The transmit call fails with a full buffer.
    TxBufferFull,
}

/// Which frames a fault rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameMatch {
    /// Every frame.
    Any,
    /// Frames with exactly this identifier.
    Id(CanId),
    /// Frames whose raw identifier is in `low..=high`.
    IdRange(u32, u32),
    /// Frames sent by this node.
    FromNode(NodeId),
}

impl FrameMatch {
    pub(super) fn matches(&self, frame: &CanFrame, sender: usize) -> bool {
        match *self {
            FrameMatch::Any => true,
            FrameMatch::Id(id) => frame.id() == id,
            FrameMatch::IdRange(lo, hi) => (lo..=hi).contains(&frame.id().raw()),
            FrameMatch::FromNode(NodeId(n)) => n == sender,
        }
    }
}

/// A fault applied to the next `count` frames matching `matches`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultRule {
    /// The fault.
    pub fault: Fault,
    /// Which frames.
    pub matches: FrameMatch,
    /// How many frames (then the rule expires).
    pub count: u32,
}
