//! [`VirtualBus`]: an in-memory multi-node CAN bus with bit-timed occupancy, fault injection on demand and
//! bounded candump recording. Nodes ([`VirtualNode`]) implement [`crate::CanBus`]. Files: `wire.rs` the bus and its nodes,
//! `faults.rs` what can be injected, `pump.rs` the single-threaded request/response helper ([`PumpedNode`]).
//!
//! Two clocks:
//! - [`ClockMode::Stepped`]: virtual time, advanced only by [`VirtualBus::advance`]; `receive` never waits. Used
//!   by single-threaded closed-loop tests and `SimOverCan`, which are bit-for-bit reproducible.
//! - [`ClockMode::Wall`]: monotonic wall time; `receive` blocks on the node's crossbeam channel up to its
//!   timeout, so drives can run on other threads.
//!
//! Each frame put on the wire starts when the bus is free (`max(now, busy_until)`) and occupies it for its
//! worst-case bit-stuffed duration ([`crate::timing`]); its log timestamp is the end of transmission. Frames are
//! delivered to every other node — never back to the sender, also not after a delay or a reorder (like
//! SocketCAN without `recv_own_msgs`). Receivers get a frame at the `transmit` call (so that request/response
//! exchanges complete within one virtual instant); its timestamp is when it finishes on the wire.
//!
//! Arbitration: frames handed to [`crate::CanBus::transmit`] go on the wire in call order (the calls are sequential, so
//! each frame is alone in its slot). Frames held back by a `Delay` fault that become due in the same
//! [`VirtualBus::advance`] contend for the bus like frames waiting in several controllers: whenever the bus
//! becomes free, the frame with the highest priority among those ready wins (ISO 11898-1 bitwise arbitration:
//! the lower 11-bit base identifier wins; at equal base a standard data frame beats a standard remote frame,
//! which beats any extended frame; then the lower 18-bit extension, data before remote).
//!
//! Fault injection ([`VirtualBus::inject`], the fault types in `faults.rs`) applies a [`Fault`] to the next `count` frames matching a
//! [`FrameMatch`]:
//! - `Drop`: the frame is lost (never on the wire, not logged);
//! - `Delay(d)`: the frame leaves the sender's controller `d` later (held in its transmit path: a busy mailbox,
//!   the driver queue);
//! - `Duplicate`: delivered twice (as after a lost ACK and retransmission);
//! - `Reorder`: held back in the sender's transmit path and delivered right after that sender's next frame (a
//!   controller sending a later frame first);
//! - `Corrupt { byte, xor }`: payload byte `byte` XOR `xor` (a fault CRC does not catch: gateway/firmware bug);
//! - `BusOff`: the sending node goes bus-off: the frame stays in its transmit queue, an error frame is
//!   delivered to it, further frames queue (as in the Linux driver) until its queue is full; recovery only
//!   through [`crate::CanBus::recover`], which first sends whatever is still queued — hence callers discard;
//! - `TxBufferFull`: the transmit call fails with `TxBufferFull` (SocketCAN `ENOBUFS`).
//!
//! [`crate::CanBus::discard_pending_tx`] drops everything the node still holds: its bus-off queue and its frames held by
//! `Delay` and `Reorder`, so that nothing queued before an e-stop ever reaches a drive.
//! [`VirtualBus::raise_error`] delivers an error frame to a node as its controller would report it (error
//! warning / passive, overflow, no ACK, bus-off, restart); the node's [`crate::CanBus::state`] follows it.
//!
//! Recording never allocates on the bus path: [`VirtualBus::start_recording`] keeps at most `capacity` frames in
//! memory (reserved up front, the excess dropped and counted in [`BusStats::record_dropped`]), and
//! [`VirtualBus::record_to`] streams `Copy` records into the bounded channel of a
//! [`crate::recorder::CandumpWriter`] thread, which writes the candump file (a full channel drops and counts,
//! never blocks). Log timestamps are monotonic per bus.

mod faults;
mod pump;
mod wire;

pub use faults::{Fault, FaultRule, FrameMatch, NodeId};
pub use pump::{Pump, PumpedNode};
pub use wire::{BusStats, ClockMode, VirtualBus, VirtualBusConfig, VirtualNode};
