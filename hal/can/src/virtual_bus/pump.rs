//! [`PumpedNode`]: a [`VirtualNode`] that runs a [`Pump`] (emulated drives, test responders) when its receive
//! queue is empty, so blocking request/response exchanges run single-threaded and deterministic.

use std::sync::{Arc, Mutex};

use core::time::Duration;

use plexo_hal::HalError;

use super::wire::VirtualNode;
use crate::bus::{BusState, CanBus};
use crate::frame::CanFrame;

/// Something that answers frames on a stepped bus when a reader finds its queue empty: emulated drives, test
/// responders. Lets blocking request/response exchanges (SDO, enable sequences) run single-threaded.
pub trait Pump {
    /// Processes every frame waiting for the pumped participants and queues their replies.
    fn pump(&mut self);
}

/// A [`VirtualNode`] whose `receive` first runs a [`Pump`] when the queue is empty, so that the pumped
/// participants answer within the same call (deterministic, single-threaded request/response).
pub struct PumpedNode<P: Pump> {
    node: VirtualNode,
    pump: Arc<Mutex<P>>,
}

impl<P: Pump> PumpedNode<P> {
    /// Wraps `node`; `pump` is shared with whoever else drives the participants.
    pub fn new(node: VirtualNode, pump: Arc<Mutex<P>>) -> Self {
        Self { node, pump }
    }

    /// The wrapped node.
    pub fn node(&self) -> &VirtualNode {
        &self.node
    }
}

impl<P: Pump> CanBus for PumpedNode<P> {
    type Error = HalError;

    fn name(&self) -> &str {
        self.node.name()
    }
    fn transmit(&mut self, frame: &CanFrame) -> Result<(), HalError> {
        self.node.transmit(frame)
    }
    fn receive(&mut self, timeout: Duration) -> Result<Option<CanFrame>, HalError> {
        if let Some(frame) = self.node.receive(Duration::ZERO)? {
            return Ok(Some(frame));
        }
        {
            // Poisoned only if a participant panicked while holding it; the data is still the last consistent state.
            let mut pump = self.pump.lock().unwrap_or_else(|p| p.into_inner());
            pump.pump();
        }
        self.node.receive(timeout)
    }
    fn state(&self) -> BusState {
        self.node.state()
    }
    fn discard_pending_tx(&mut self) -> Result<usize, HalError> {
        self.node.discard_pending_tx()
    }
    fn recover(&mut self) -> Result<(), HalError> {
        self.node.recover()
    }
    fn now(&self) -> Duration {
        self.node.now()
    }
}
