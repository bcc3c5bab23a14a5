//! [`EchoMotors`]: MIT motors that echo their command, for tests and benchmarks of `CanRobot` without physics.

use crate::bus::CanBus;
use crate::frame::{CanFrame, CanId};
use crate::mit::{MitCodec, MitErrorCode, MitRanges, MitReply};
use crate::virtual_bus::{Pump, VirtualNode};

/// A minimal set of MIT motors for tests and benchmarks: every frame addressed to one of them is answered at
/// once with a reply whose position and velocity are the commanded ones (no physics, no state machine). Use the
/// emulated drives ([`crate::emulated`]) for faithful behaviour. A [`crate::Pump`] for
/// [`crate::PumpedNode`] on a virtual bus; [`EchoMotors::serve`] answers on any [`crate::CanBus`]
/// (e.g. a SocketCAN `vcan0` in a responder thread).
pub struct EchoMotors<B = VirtualNode> {
    node: B,
    motors: Vec<(u8, MitCodec)>,
    tx_errors: u64,
    answered: u64,
}

impl<B: CanBus> EchoMotors<B> {
    /// Motors `(id, ranges)` on `node`.
    pub fn new(node: B, motors: Vec<(u8, MitRanges)>) -> Self {
        Self { node, motors: motors.iter().map(|(id, r)| (*id, MitCodec::new(r))).collect(), tx_errors: 0, answered: 0 }
    }

    /// Replies that could not be sent (full transmit queue, bus-off): they show up as missing replies on the
    /// host side, which is what tests check.
    pub fn tx_errors(&self) -> u64 {
        self.tx_errors
    }

    /// Frames answered so far.
    pub fn answered(&self) -> u64 {
        self.answered
    }

    fn answer(&mut self, frame: &CanFrame) {
        let Some(&(id, codec)) =
            self.motors.iter().find(|(id, _)| frame.id() == CanId::Standard(u16::from(*id)) && !frame.is_error())
        else {
            return;
        };
        let cmd = codec.decode_command(frame.data()).unwrap_or_default();
        let reply = MitReply {
            motor_id: id,
            position: cmd.position,
            velocity: cmd.velocity,
            torque: cmd.torque,
            temperature: 30.0,
            error: MitErrorCode::None,
        };
        if let Some(f) = CanFrame::new(CanId::Standard(0), &codec.encode_reply(&reply)) {
            self.answered += 1;
            if self.node.transmit(&f).is_err() {
                self.tx_errors += 1;
            }
        }
    }

    /// Answers every frame that arrives within `timeout` of each other until none does; returns how many
    /// frames were answered. Not real-time safe (for responder threads).
    pub fn serve(&mut self, timeout: core::time::Duration) -> Result<u64, B::Error> {
        let before = self.answered;
        while let Some(frame) = self.node.receive(timeout)? {
            self.answer(&frame);
        }
        Ok(self.answered - before)
    }
}

impl Pump for EchoMotors<VirtualNode> {
    fn pump(&mut self) {
        while let Some(frame) = self.node.try_receive() {
            self.answer(&frame);
        }
    }
}
