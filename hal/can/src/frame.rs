//! [`CanFrame`]: one `Copy` frame type for classic CAN 2.0 (≤ 8 bytes), CAN FD (≤ 64 bytes), remote and error
//! frames, with the identifier as [`CanId`].

use core::fmt;

/// A CAN identifier: 11-bit standard (CAN 2.0A) or 29-bit extended (CAN 2.0B).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CanId {
    /// 11-bit identifier, 0..=0x7FF.
    Standard(u16),
    /// 29-bit identifier, 0..=0x1FFF_FFFF.
    Extended(u32),
}

impl CanId {
    /// Largest standard identifier.
    pub const STANDARD_MAX: u16 = 0x7FF;
    /// Largest extended identifier.
    pub const EXTENDED_MAX: u32 = 0x1FFF_FFFF;

    /// A standard identifier, or `None` above 0x7FF.
    pub const fn standard(id: u16) -> Option<Self> {
        if id <= Self::STANDARD_MAX { Some(Self::Standard(id)) } else { None }
    }

    /// An extended identifier, or `None` above 0x1FFF_FFFF.
    pub const fn extended(id: u32) -> Option<Self> {
        if id <= Self::EXTENDED_MAX { Some(Self::Extended(id)) } else { None }
    }

    /// The numeric identifier without format flags.
    pub const fn raw(self) -> u32 {
        match self {
            Self::Standard(id) => id as u32,
            Self::Extended(id) => id,
        }
    }

    /// True for a 29-bit identifier.
    pub const fn is_extended(self) -> bool {
        matches!(self, Self::Extended(_))
    }
}

/// Frame flag bits (private representation).
const FLAG_FD: u8 = 1 << 0;
const FLAG_BRS: u8 = 1 << 1;
const FLAG_ESI: u8 = 1 << 2;
const FLAG_RTR: u8 = 1 << 3;
const FLAG_ERR: u8 = 1 << 4;

/// Linux SocketCAN error-class bits carried in the identifier of an error frame (`linux/can/error.h`); the
/// virtual bus produces the same encoding so both backends are decoded by one function.
pub mod error_class {
    /// TX timeout (by the netdevice driver).
    pub const TX_TIMEOUT: u32 = 0x0000_0001;
    /// Lost arbitration.
    pub const LOST_ARBITRATION: u32 = 0x0000_0002;
    /// Controller problems (details in data[1], see [`super::controller`]).
    pub const CONTROLLER: u32 = 0x0000_0004;
    /// Protocol violations.
    pub const PROTOCOL: u32 = 0x0000_0008;
    /// Transceiver status.
    pub const TRANSCEIVER: u32 = 0x0000_0010;
    /// No acknowledge on transmission.
    pub const NO_ACK: u32 = 0x0000_0020;
    /// Bus off.
    pub const BUS_OFF: u32 = 0x0000_0040;
    /// Bus error.
    pub const BUS_ERROR: u32 = 0x0000_0080;
    /// Controller restarted.
    pub const RESTARTED: u32 = 0x0000_0100;
    /// Mask of all class bits.
    pub const MASK: u32 = 0x1FFF_FFFF;
    /// The flag SocketCAN sets in `can_id` of an error frame (used in candump logs).
    pub const FLAG: u32 = 0x2000_0000;
}

/// Controller status bits of an error frame's data[1] (`linux/can/error.h`).
pub mod controller {
    /// RX buffer overflow.
    pub const RX_OVERFLOW: u8 = 0x01;
    /// TX buffer overflow.
    pub const TX_OVERFLOW: u8 = 0x02;
    /// Reached warning level for RX errors.
    pub const RX_WARNING: u8 = 0x04;
    /// Reached warning level for TX errors.
    pub const TX_WARNING: u8 = 0x08;
    /// Reached error-passive level for RX errors.
    pub const RX_PASSIVE: u8 = 0x10;
    /// Reached error-passive level for TX errors.
    pub const TX_PASSIVE: u8 = 0x20;
    /// Recovered to error-active state.
    pub const ACTIVE: u8 = 0x40;
}

/// Valid CAN FD payload lengths (ISO 11898-1:2015, DLC 0..15).
pub const FD_LENGTHS: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64];

/// One CAN frame: classic data (≤ 8 bytes), CAN FD (≤ 64 bytes, valid FD lengths), remote request or error
/// frame. `Copy`, no heap: frames cross channels and live in fixed buffers on real-time paths.
///
/// ```
/// use plexo_can::{CanFrame, CanId};
/// let f = CanFrame::new(CanId::Standard(0x601), &[0x40, 0x41, 0x60, 0x00]).unwrap();
/// assert_eq!(f.data(), &[0x40, 0x41, 0x60, 0x00]);
/// assert_eq!(f.to_string(), "601#40416000");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CanFrame {
    id: CanId,
    len: u8,
    flags: u8,
    data: [u8; 64],
}

impl CanFrame {
    /// A classic data frame, `None` if `data` is longer than 8 bytes. Real-time safe.
    pub fn new(id: CanId, data: &[u8]) -> Option<Self> {
        if data.len() > 8 {
            return None;
        }
        let mut frame = Self { id, len: data.len() as u8, flags: 0, data: [0; 64] };
        frame.data[..data.len()].copy_from_slice(data);
        Some(frame)
    }

    /// A classic 8-byte data frame (infallible: the length is right by type). Real-time safe; the codecs' fast
    /// path (no length check, no `Option`).
    #[inline]
    pub const fn classic8(id: CanId, data: [u8; 8]) -> Self {
        let mut bytes = [0u8; 64];
        let mut i = 0;
        while i < 8 {
            bytes[i] = data[i];
            i += 1;
        }
        Self { id, len: 8, flags: 0, data: bytes }
    }

    /// A classic data frame with a standard identifier; `None` if the id or length is invalid. Real-time safe.
    pub fn standard(id: u16, data: &[u8]) -> Option<Self> {
        Self::new(CanId::standard(id)?, data)
    }

    /// A CAN FD data frame. The payload is zero-padded to the next valid FD length (as SocketCAN does);
    /// `None` above 64 bytes. `bit_rate_switch` sends the data phase at the data bitrate. Real-time safe.
    pub fn new_fd(id: CanId, data: &[u8], bit_rate_switch: bool) -> Option<Self> {
        if data.len() > 64 {
            return None;
        }
        let len = FD_LENGTHS.iter().copied().find(|&l| l as usize >= data.len())?;
        let mut frame = Self { id, len, flags: FLAG_FD, data: [0; 64] };
        if bit_rate_switch {
            frame.flags |= FLAG_BRS;
        }
        frame.data[..data.len()].copy_from_slice(data);
        Some(frame)
    }

    /// A classic remote-transmission request with data length code `dlc` (≤ 8).
    pub fn remote(id: CanId, dlc: u8) -> Option<Self> {
        if dlc > 8 {
            return None;
        }
        Some(Self { id, len: dlc, flags: FLAG_RTR, data: [0; 64] })
    }

    /// An error frame in the SocketCAN encoding: `class` is a set of [`error_class`] bits, `data` the 8 detail
    /// bytes.
    pub fn error(class: u32, data: [u8; 8]) -> Self {
        let mut frame = Self { id: CanId::Extended(class & error_class::MASK), len: 8, flags: FLAG_ERR, data: [0; 64] };
        frame.data[..8].copy_from_slice(&data);
        frame
    }

    /// The identifier (for an error frame: the error class bits as an extended id).
    pub const fn id(&self) -> CanId {
        self.id
    }

    /// The payload (empty for a remote frame).
    pub fn data(&self) -> &[u8] {
        if self.is_remote() { &[] } else { &self.data[..self.len as usize] }
    }

    /// Payload length in bytes (the requested length for a remote frame).
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// True if the frame carries no data bytes.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True for a CAN FD frame.
    pub const fn is_fd(&self) -> bool {
        self.flags & FLAG_FD != 0
    }

    /// True for a CAN FD frame whose data phase uses the data bitrate.
    pub const fn is_brs(&self) -> bool {
        self.flags & FLAG_BRS != 0
    }

    /// True if the FD error-state indicator is set (transmitter error passive).
    pub const fn is_esi(&self) -> bool {
        self.flags & FLAG_ESI != 0
    }

    /// Sets or clears the FD error-state indicator (ignored for classic frames).
    pub fn set_esi(&mut self, on: bool) {
        if self.is_fd() {
            if on {
                self.flags |= FLAG_ESI;
            } else {
                self.flags &= !FLAG_ESI;
            }
        }
    }

    /// True for a remote-transmission request.
    pub const fn is_remote(&self) -> bool {
        self.flags & FLAG_RTR != 0
    }

    /// True for an error frame (reported by the controller, never sent on the wire).
    pub const fn is_error(&self) -> bool {
        self.flags & FLAG_ERR != 0
    }

    /// Error class bits of an error frame ([`error_class`]), 0 for other frames.
    pub const fn error_class(&self) -> u32 {
        if self.is_error() { self.id.raw() } else { 0 }
    }

    /// Mutable payload (for fault injection and in-place encoders). Real-time safe.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data[..self.len as usize]
    }
}

impl Default for CanFrame {
    fn default() -> Self {
        Self { id: CanId::Standard(0), len: 0, flags: 0, data: [0; 64] }
    }
}

/// Formats the frame as in a candump log (`ID#DATA`, `ID#R`, `ID##<flags>DATA`), uppercase hex as can-utils
/// writes it.
impl fmt::Display for CanFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_error() {
            write!(f, "{:08X}#", self.id.raw() | error_class::FLAG)?;
        } else {
            match self.id {
                CanId::Standard(id) => write!(f, "{id:03X}#")?,
                CanId::Extended(id) => write!(f, "{id:08X}#")?,
            }
        }
        if self.is_remote() {
            f.write_str("R")?;
            if self.len > 0 {
                write!(f, "{}", self.len)?;
            }
            return Ok(());
        }
        if self.is_fd() {
            // can-utils' flags digit: CANFD_BRS 0x01, CANFD_ESI 0x02, CANFD_FDF 0x04 (set on every FD frame).
            let flags = u8::from(self.is_brs()) | (u8::from(self.is_esi()) << 1) | 0x04;
            write!(f, "#{flags:X}")?;
        }
        for byte in self.data() {
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CanFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CanFrame({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_rejects_more_than_8_bytes_and_fd_pads_to_valid_length() {
        assert!(CanFrame::standard(0x123, &[0; 9]).is_none());
        assert!(CanFrame::standard(0x800, &[]).is_none(), "11-bit id limit");
        let fd = CanFrame::new_fd(CanId::Standard(0x123), &[1; 9], true).unwrap();
        assert_eq!(fd.len(), 12, "9 bytes pad to the FD length 12");
        assert_eq!(&fd.data()[9..], &[0, 0, 0]);
        assert!(fd.is_fd() && fd.is_brs());
        assert!(CanFrame::new_fd(CanId::Standard(1), &[0; 65], false).is_none());
        let eight = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(CanFrame::classic8(CanId::Standard(0x10), eight), CanFrame::standard(0x10, &eight).unwrap());
    }

    #[test]
    fn display_matches_candump_text() {
        assert_eq!(CanFrame::standard(0x80, &[]).unwrap().to_string(), "080#");
        let ext = CanFrame::new(CanId::Extended(0x1234567), &[0xDE, 0xAD]).unwrap();
        assert_eq!(ext.to_string(), "01234567#DEAD");
        assert_eq!(CanFrame::remote(CanId::Standard(0x701), 1).unwrap().to_string(), "701#R1");
        let fd = CanFrame::new_fd(CanId::Standard(0x1), &[0xAB], true).unwrap();
        assert_eq!(fd.to_string(), "001##5AB");
        let err = CanFrame::error(error_class::BUS_OFF, [0; 8]);
        assert_eq!(err.to_string(), "20000040#0000000000000000");
        assert_eq!(err.error_class(), error_class::BUS_OFF);
    }
}
