//! A discrete-event world for the keep-alive tests: virtual buses on one shared clock, emulated drives whose
//! answers are scheduled after a latency, and the host's `CanBus` whose `receive(timeout)` lets the clock run to
//! the next scheduled answer or to the end of the timeout (shared by `enable_keepalive` and
//! `mit_enable_keepalive`).

use std::sync::{Arc, Mutex};

use core::time::Duration;

use plexo_can::{CanBus, CanFrame, VirtualBus, VirtualNode};
use plexo_hal::HalError;

/// The drives' side of the world.
pub trait DiscreteWorld: Send {
    /// The buses (one shared clock: the first bus's).
    fn buses(&self) -> &[VirtualBus];
    /// Frames scheduled for transmission: (due time, bus index, frame).
    fn scheduled(&self) -> &[(Duration, usize, CanFrame)];
    /// Hands the frames on the drives' nodes to the drives, runs their timers and sends what is due.
    fn step(&mut self);

    /// The shared clock.
    fn now(&self) -> Duration {
        self.buses()[0].now()
    }

    /// Moves every bus's clock to `t`.
    fn advance_to(&mut self, t: Duration) {
        for bus in self.buses() {
            let now = bus.now();
            if t > now {
                bus.advance(t - now);
            }
        }
    }

    /// The next scheduled transmission.
    fn next_due(&self) -> Option<Duration> {
        self.scheduled().iter().map(|s| s.0).min()
    }
}

/// The host's node on bus `b`: a `receive(timeout)` that finds nothing lets the clock run to the next drive or motor
/// answer or to the end of the timeout.
pub struct HostNode<W> {
    pub node: VirtualNode,
    pub world: Arc<Mutex<W>>,
}

impl<W: DiscreteWorld> CanBus for HostNode<W> {
    type Error = HalError;

    fn name(&self) -> &str {
        self.node.name()
    }
    fn transmit(&mut self, frame: &CanFrame) -> Result<(), HalError> {
        self.node.transmit(frame)
    }
    fn receive(&mut self, timeout: Duration) -> Result<Option<CanFrame>, HalError> {
        let mut world = self.world.lock().unwrap();
        let until = world.now() + timeout;
        loop {
            world.step();
            if let Some(frame) = self.node.receive(Duration::ZERO)? {
                return Ok(Some(frame));
            }
            let now = world.now();
            match world.next_due() {
                Some(due) if due <= until && due > now => world.advance_to(due),
                _ if until > now => {
                    world.advance_to(until);
                    world.step();
                    return self.node.receive(Duration::ZERO);
                }
                _ => return Ok(None),
            }
        }
    }
    fn state(&self) -> plexo_can::BusState {
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
