//! The [`CanBus`] trait: the small interface every CAN backend implements (SocketCAN, the virtual bus).

use core::time::Duration;

use super::frame::{CanFrame, controller, error_class};
use plexo_hal::RobotError;

/// Fault confinement state of the local CAN controller (ISO 11898-1 §12.1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BusState {
    /// Normal operation (error counters < 96).
    ErrorActive,
    /// An error counter reached the warning level (≥ 96).
    ErrorWarning,
    /// An error counter reached 128: the controller only sends passive error flags.
    ErrorPassive,
    /// TX error counter reached 256: the controller is off the bus until an explicit recovery.
    BusOff,
}

/// A CAN interface: transmit, receive with timeout, error frames and bus state surfaced.
///
/// After embedded-hal / socketcan-rs: small, with an associated error type whose `kind()` tells the caller how
/// to react. Error frames are returned by [`CanBus::receive`] like other frames (`frame.is_error()`), and the
/// controller state is available from [`CanBus::state`].
pub trait CanBus {
    /// The backend's error type.
    type Error: RobotError;

    /// Interface name (`can0`, `vcan0`, the virtual bus name), as written in candump logs.
    fn name(&self) -> &str;

    /// Queues one frame for transmission. Real-time safe (never blocks: a full queue is an error of kind
    /// `BufferFull`, bus-off of kind `Disconnected`).
    fn transmit(&mut self, frame: &CanFrame) -> Result<(), Self::Error>;

    /// Receives the next frame, waiting at most `timeout`; `Ok(None)` if none arrived. Real-time safe with a
    /// bounded timeout. A virtual bus in stepped mode never waits.
    fn receive(&mut self, timeout: Duration) -> Result<Option<CanFrame>, Self::Error>;

    /// Current controller state.
    fn state(&self) -> BusState;

    /// Discards frames queued for transmission but not yet sent; returns how many were discarded (if the
    /// backend can tell). Called on every e-stop and fault so that no stale command ever reaches a drive.
    fn discard_pending_tx(&mut self) -> Result<usize, Self::Error>;

    /// Leaves bus-off by explicit request (never automatically). Not real-time safe.
    fn recover(&mut self) -> Result<(), Self::Error>;

    /// Monotonic time of the interface [s since it was opened]: wall time for hardware, virtual time for a
    /// stepped virtual bus.
    fn now(&self) -> Duration;
}

/// What an error frame says, decoded from the SocketCAN encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ErrorFrameInfo {
    /// The controller went bus-off.
    pub bus_off: bool,
    /// The controller restarted (left bus-off).
    pub restarted: bool,
    /// The controller reports error-passive.
    pub passive: bool,
    /// The controller reports the warning level.
    pub warning: bool,
    /// Receive or transmit buffer overflow.
    pub overflow: bool,
    /// No acknowledge: no other node on the bus.
    pub no_ack: bool,
    /// The controller reports it is back to error active (data\[1\] = `CAN_ERR_CRTL_ACTIVE`).
    pub recovered: bool,
}

impl ErrorFrameInfo {
    /// Decodes an error frame; `None` for other frames. Real-time safe.
    pub fn decode(frame: &CanFrame) -> Option<Self> {
        if !frame.is_error() {
            return None;
        }
        let class = frame.error_class();
        let ctrl = if class & error_class::CONTROLLER != 0 { frame.data().get(1).copied().unwrap_or(0) } else { 0 };
        Some(Self {
            bus_off: class & error_class::BUS_OFF != 0,
            restarted: class & error_class::RESTARTED != 0,
            passive: ctrl & (controller::RX_PASSIVE | controller::TX_PASSIVE) != 0,
            warning: ctrl & (controller::RX_WARNING | controller::TX_WARNING) != 0,
            overflow: ctrl & (controller::RX_OVERFLOW | controller::TX_OVERFLOW) != 0,
            no_ack: class & error_class::NO_ACK != 0,
            recovered: ctrl & controller::ACTIVE != 0,
        })
    }

    /// The bus state this error frame implies, if it implies one.
    pub fn state(&self) -> Option<BusState> {
        if self.bus_off {
            Some(BusState::BusOff)
        } else if self.passive {
            Some(BusState::ErrorPassive)
        } else if self.warning {
            Some(BusState::ErrorWarning)
        } else if self.restarted || self.recovered {
            Some(BusState::ErrorActive)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_frame_decoding() {
        let f = CanFrame::error(error_class::BUS_OFF, [0; 8]);
        let info = ErrorFrameInfo::decode(&f).unwrap();
        assert!(info.bus_off);
        assert_eq!(info.state(), Some(BusState::BusOff));
        let f = CanFrame::error(error_class::CONTROLLER, [0, controller::TX_PASSIVE, 0, 0, 0, 0, 0, 0]);
        assert_eq!(ErrorFrameInfo::decode(&f).unwrap().state(), Some(BusState::ErrorPassive));
        assert!(ErrorFrameInfo::decode(&CanFrame::standard(0x40, &[]).unwrap()).is_none());
    }
}
