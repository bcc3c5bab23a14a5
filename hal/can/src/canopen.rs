//! CANopen (CiA 301 application layer) and the CiA 402 drive profile: NMT, SYNC, heartbeat, EMCY, expedited SDO
//! with abort codes, PDO mapping and the controlword/statusword state machine.
//!
//! References: CiA 301 v4.2.0 (COB-IDs §7.3.5 predefined connection set, SDO §7.2.4.3, abort codes
//! §7.2.4.3.17, NMT §7.2.8.3.1, heartbeat §7.2.8.3.2, EMCY §7.2.7, PDO mapping §7.4.8.10 and its procedure) and
//! CiA 402-2 v4.1 (controlword 0x6040 / statusword 0x6041 bit patterns and state machine §6.2, modes of
//! operation 0x6060, cyclic synchronous torque mode = 10, target torque 0x6071 and torque actual 0x6077 in
//! per mille of the motor rated torque 0x6076 [mNm]).

use crate::frame::{CanFrame, CanId};

/// NMT command COB-ID.
pub const COB_NMT: u16 = 0x000;
/// SYNC COB-ID.
pub const COB_SYNC: u16 = 0x080;
/// EMCY base (+ node id).
pub const COB_EMCY: u16 = 0x080;
/// TPDO1 base (+ node id).
pub const COB_TPDO1: u16 = 0x180;
/// RPDO1 base (+ node id).
pub const COB_RPDO1: u16 = 0x200;
/// TPDO2 base (+ node id).
pub const COB_TPDO2: u16 = 0x280;
/// SDO server → client base (+ node id).
pub const COB_SDO_TX: u16 = 0x580;
/// SDO client → server base (+ node id).
pub const COB_SDO_RX: u16 = 0x600;
/// Heartbeat / boot-up base (+ node id).
pub const COB_HEARTBEAT: u16 = 0x700;

/// Object dictionary indices used by Plexo.
pub mod od {
    /// Error register (u8).
    pub const ERROR_REGISTER: u16 = 0x1001;
    /// Communication cycle period [µs] (u32).
    pub const COMMUNICATION_CYCLE_PERIOD: u16 = 0x1006;
    /// Consumer heartbeat time (sub 1..: u32 = node id << 16 | time [ms]).
    pub const CONSUMER_HEARTBEAT: u16 = 0x1016;
    /// Producer heartbeat time [ms] (u16, 0 = off).
    pub const PRODUCER_HEARTBEAT: u16 = 0x1017;
    /// RPDO1 communication parameter.
    pub const RPDO1_COMM: u16 = 0x1400;
    /// RPDO1 mapping.
    pub const RPDO1_MAP: u16 = 0x1600;
    /// TPDO1 communication parameter.
    pub const TPDO1_COMM: u16 = 0x1800;
    /// TPDO2 communication parameter.
    pub const TPDO2_COMM: u16 = 0x1801;
    /// TPDO1 mapping.
    pub const TPDO1_MAP: u16 = 0x1A00;
    /// TPDO2 mapping.
    pub const TPDO2_MAP: u16 = 0x1A01;
    /// Abort connection option code (i16): reaction to a communication loss.
    pub const ABORT_CONNECTION_OPTION: u16 = 0x6007;
    /// Controlword (u16).
    pub const CONTROLWORD: u16 = 0x6040;
    /// Statusword (u16).
    pub const STATUSWORD: u16 = 0x6041;
    /// Quick stop option code (i16).
    pub const QUICK_STOP_OPTION: u16 = 0x605A;
    /// Fault reaction option code (i16).
    pub const FAULT_REACTION_OPTION: u16 = 0x605E;
    /// Modes of operation (i8).
    pub const MODES_OF_OPERATION: u16 = 0x6060;
    /// Modes of operation display (i8).
    pub const MODES_OF_OPERATION_DISPLAY: u16 = 0x6061;
    /// Position actual value [increments] (i32).
    pub const POSITION_ACTUAL: u16 = 0x6064;
    /// Velocity actual value [velocity units] (i32).
    pub const VELOCITY_ACTUAL: u16 = 0x606C;
    /// Target torque [‰ of rated torque] (i16).
    pub const TARGET_TORQUE: u16 = 0x6071;
    /// Max torque [‰ of rated torque] (u16).
    pub const MAX_TORQUE: u16 = 0x6072;
    /// Motor rated torque [mNm] (u32).
    pub const MOTOR_RATED_TORQUE: u16 = 0x6076;
    /// Torque actual value [‰ of rated torque] (i16).
    pub const TORQUE_ACTUAL: u16 = 0x6077;
}

/// Cyclic synchronous torque mode (0x6060 value).
pub const MODE_CST: i8 = 10;

fn frame(cob: u16, data: &[u8]) -> CanFrame {
    // Every COB-ID built here is ≤ 0x7FF and every payload ≤ 8 bytes.
    CanFrame::new(CanId::Standard(cob), data).unwrap_or_default()
}

/// NMT commands (CiA 301 §7.2.8.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NmtCommand {
    /// 0x01: to Operational.
    Start,
    /// 0x02: to Stopped.
    Stop,
    /// 0x80: to Pre-operational.
    EnterPreOperational,
    /// 0x81: reset node.
    ResetNode,
    /// 0x82: reset communication.
    ResetCommunication,
}

impl NmtCommand {
    /// Command specifier byte.
    pub const fn code(self) -> u8 {
        match self {
            Self::Start => 0x01,
            Self::Stop => 0x02,
            Self::EnterPreOperational => 0x80,
            Self::ResetNode => 0x81,
            Self::ResetCommunication => 0x82,
        }
    }

    /// The NMT frame for `node` (0 = all nodes).
    pub fn frame(self, node: u8) -> CanFrame {
        frame(COB_NMT, &[self.code(), node])
    }

    /// Decodes an NMT frame into (command, addressed node).
    pub fn decode(f: &CanFrame) -> Option<(Self, u8)> {
        if f.id() != CanId::Standard(COB_NMT) || f.len() != 2 {
            return None;
        }
        let cmd = match f.data()[0] {
            0x01 => Self::Start,
            0x02 => Self::Stop,
            0x80 => Self::EnterPreOperational,
            0x81 => Self::ResetNode,
            0x82 => Self::ResetCommunication,
            _ => return None,
        };
        Some((cmd, f.data()[1]))
    }
}

/// The SYNC frame (no counter).
pub fn sync_frame() -> CanFrame {
    frame(COB_SYNC, &[])
}

/// NMT states as reported by heartbeat (CiA 301 §7.2.8.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NmtState {
    /// 0x00: boot-up message.
    BootUp,
    /// 0x04.
    Stopped,
    /// 0x05.
    Operational,
    /// 0x7F.
    PreOperational,
}

impl NmtState {
    /// State byte.
    pub const fn code(self) -> u8 {
        match self {
            Self::BootUp => 0x00,
            Self::Stopped => 0x04,
            Self::Operational => 0x05,
            Self::PreOperational => 0x7F,
        }
    }

    /// Decodes the state byte.
    pub const fn from_code(b: u8) -> Option<Self> {
        match b & 0x7F {
            0x00 => Some(Self::BootUp),
            0x04 => Some(Self::Stopped),
            0x05 => Some(Self::Operational),
            0x7F => Some(Self::PreOperational),
            _ => None,
        }
    }
}

/// A heartbeat (or boot-up) frame of `node`.
pub fn heartbeat_frame(node: u8, state: NmtState) -> CanFrame {
    frame(COB_HEARTBEAT + u16::from(node), &[state.code()])
}

/// Decodes a heartbeat frame into (node, state).
pub fn decode_heartbeat(f: &CanFrame) -> Option<(u8, NmtState)> {
    let id = f.id().raw();
    if f.id().is_extended() || !(0x701..=0x77F).contains(&id) || f.len() != 1 {
        return None;
    }
    Some(((id - 0x700) as u8, NmtState::from_code(f.data()[0])?))
}

/// An expedited SDO request (client → server, COB-ID 0x600 + node).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdoRequest {
    /// Write `len` (1..=4) bytes of `data` (little-endian) to `index:subindex`.
    Download {
        /// Object index.
        index: u16,
        /// Sub-index.
        subindex: u8,
        /// Value bytes, little-endian.
        data: [u8; 4],
        /// Number of valid bytes (1..=4).
        len: u8,
    },
    /// Read `index:subindex`.
    Upload {
        /// Object index.
        index: u16,
        /// Sub-index.
        subindex: u8,
    },
}

impl SdoRequest {
    /// A download of `value` as `len` bytes.
    pub fn write(index: u16, subindex: u8, value: u32, len: u8) -> Self {
        Self::Download { index, subindex, data: value.to_le_bytes(), len: len.clamp(1, 4) }
    }

    /// The request frame for `node`.
    ///
    /// Download command byte: ccs = 1 (bits 7..5 = 001), n = 4 − len (bits 3..2), e = 1, s = 1 →
    /// 0x2F / 0x2B / 0x27 / 0x23 for 1 / 2 / 3 / 4 bytes. Upload: ccs = 2 → 0x40.
    pub fn frame(&self, node: u8) -> CanFrame {
        let mut d = [0u8; 8];
        match *self {
            Self::Download { index, subindex, data, len } => {
                d[0] = 0x20 | ((4 - len.clamp(1, 4)) << 2) | 0x03;
                d[1..3].copy_from_slice(&index.to_le_bytes());
                d[3] = subindex;
                d[4..8].copy_from_slice(&data);
                for b in &mut d[4 + len.clamp(1, 4) as usize..] {
                    *b = 0;
                }
            }
            Self::Upload { index, subindex } => {
                d[0] = 0x40;
                d[1..3].copy_from_slice(&index.to_le_bytes());
                d[3] = subindex;
            }
        }
        frame(COB_SDO_RX + u16::from(node), &d)
    }

    /// Decodes a request frame addressed to `node` (what a drive does); `None` if it is not an expedited
    /// download or an upload request.
    pub fn decode(f: &CanFrame, node: u8) -> Option<Self> {
        if f.id() != CanId::Standard(COB_SDO_RX + u16::from(node)) || f.len() != 8 {
            return None;
        }
        let d = f.data();
        let index = u16::from_le_bytes([d[1], d[2]]);
        let subindex = d[3];
        match d[0] >> 5 {
            1 if d[0] & 0x03 == 0x03 => {
                let len = 4 - ((d[0] >> 2) & 0x03);
                Some(Self::Download { index, subindex, data: [d[4], d[5], d[6], d[7]], len })
            }
            2 => Some(Self::Upload { index, subindex }),
            _ => None,
        }
    }
}

/// An SDO response (server → client, COB-ID 0x580 + node).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdoResponse {
    /// Download confirmed (0x60).
    DownloadAck {
        /// Object index.
        index: u16,
        /// Sub-index.
        subindex: u8,
    },
    /// Expedited upload data (0x43/0x47/0x4B/0x4F).
    Upload {
        /// Object index.
        index: u16,
        /// Sub-index.
        subindex: u8,
        /// Value bytes, little-endian.
        data: [u8; 4],
        /// Number of valid bytes.
        len: u8,
    },
    /// Transfer aborted (0x80) with a CiA 301 abort code.
    Abort {
        /// Object index.
        index: u16,
        /// Sub-index.
        subindex: u8,
        /// Abort code.
        code: u32,
    },
    /// A segmented upload was started (0x41): Plexo only uses expedited transfers.
    SegmentedUpload {
        /// Object index.
        index: u16,
        /// Sub-index.
        subindex: u8,
    },
}

impl SdoResponse {
    /// Index and sub-index the response refers to.
    pub const fn object(&self) -> (u16, u8) {
        match *self {
            Self::DownloadAck { index, subindex }
            | Self::Upload { index, subindex, .. }
            | Self::Abort { index, subindex, .. }
            | Self::SegmentedUpload { index, subindex } => (index, subindex),
        }
    }

    /// The uploaded value as an unsigned integer (little-endian, `len` bytes).
    pub fn value(&self) -> Option<u32> {
        match *self {
            Self::Upload { data, len, .. } => {
                let mut b = [0u8; 4];
                b[..len as usize].copy_from_slice(&data[..len as usize]);
                Some(u32::from_le_bytes(b))
            }
            _ => None,
        }
    }

    /// The response frame from `node`.
    pub fn frame(&self, node: u8) -> CanFrame {
        let mut d = [0u8; 8];
        let (index, subindex) = self.object();
        d[1..3].copy_from_slice(&index.to_le_bytes());
        d[3] = subindex;
        match *self {
            Self::DownloadAck { .. } => d[0] = 0x60,
            Self::Upload { data, len, .. } => {
                d[0] = 0x40 | ((4 - len.clamp(1, 4)) << 2) | 0x03;
                d[4..4 + len.clamp(1, 4) as usize].copy_from_slice(&data[..len.clamp(1, 4) as usize]);
            }
            Self::Abort { code, .. } => {
                d[0] = 0x80;
                d[4..8].copy_from_slice(&code.to_le_bytes());
            }
            Self::SegmentedUpload { .. } => d[0] = 0x41,
        }
        frame(COB_SDO_TX + u16::from(node), &d)
    }

    /// Decodes a response frame from `node`.
    pub fn decode(f: &CanFrame, node: u8) -> Option<Self> {
        if f.id() != CanId::Standard(COB_SDO_TX + u16::from(node)) || f.len() != 8 {
            return None;
        }
        let d = f.data();
        let index = u16::from_le_bytes([d[1], d[2]]);
        let subindex = d[3];
        match d[0] {
            0x60 => Some(Self::DownloadAck { index, subindex }),
            0x80 => Some(Self::Abort { index, subindex, code: u32::from_le_bytes([d[4], d[5], d[6], d[7]]) }),
            0x41 => Some(Self::SegmentedUpload { index, subindex }),
            c if c & 0xE3 == 0x43 => {
                Some(Self::Upload { index, subindex, data: [d[4], d[5], d[6], d[7]], len: 4 - ((c >> 2) & 0x03) })
            }
            0x42 => Some(Self::Upload { index, subindex, data: [d[4], d[5], d[6], d[7]], len: 4 }),
            _ => None,
        }
    }
}

/// SDO abort codes (CiA 301 v4.2.0 §7.2.4.3.17, table 22).
pub mod abort {
    /// Toggle bit not alternated.
    pub const TOGGLE_BIT: u32 = 0x0503_0000;
    /// SDO protocol timed out.
    pub const TIMEOUT: u32 = 0x0504_0000;
    /// Client/server command specifier not valid or unknown.
    pub const COMMAND_SPECIFIER: u32 = 0x0504_0001;
    /// Unsupported access to an object.
    pub const UNSUPPORTED_ACCESS: u32 = 0x0601_0000;
    /// Attempt to read a write-only object.
    pub const WRITE_ONLY: u32 = 0x0601_0001;
    /// Attempt to write a read-only object.
    pub const READ_ONLY: u32 = 0x0601_0002;
    /// Object does not exist in the object dictionary.
    pub const NO_OBJECT: u32 = 0x0602_0000;
    /// Object cannot be mapped to the PDO.
    pub const NOT_MAPPABLE: u32 = 0x0604_0041;
    /// The number and length of the objects to be mapped would exceed the PDO length.
    pub const PDO_TOO_LONG: u32 = 0x0604_0042;
    /// General parameter incompatibility.
    pub const PARAMETER_INCOMPATIBLE: u32 = 0x0604_0043;
    /// Access failed due to a hardware error.
    pub const HARDWARE: u32 = 0x0606_0000;
    /// Data type does not match, length of service parameter does not match.
    pub const LENGTH_MISMATCH: u32 = 0x0607_0010;
    /// Sub-index does not exist.
    pub const NO_SUBINDEX: u32 = 0x0609_0011;
    /// Invalid value for parameter (download only).
    pub const INVALID_VALUE: u32 = 0x0609_0030;
    /// Value of parameter written too high.
    pub const VALUE_TOO_HIGH: u32 = 0x0609_0031;
    /// Value of parameter written too low.
    pub const VALUE_TOO_LOW: u32 = 0x0609_0032;
    /// General error.
    pub const GENERAL: u32 = 0x0800_0000;
    /// Data cannot be transferred or stored because of the present device state.
    pub const DEVICE_STATE: u32 = 0x0800_0022;
}

/// Meaning of an SDO abort code (CiA 301 table 22).
pub const fn abort_meaning(code: u32) -> &'static str {
    match code {
        abort::TOGGLE_BIT => "toggle bit not alternated",
        abort::TIMEOUT => "SDO protocol timed out",
        abort::COMMAND_SPECIFIER => "command specifier not valid or unknown",
        0x0504_0002 => "invalid block size",
        0x0504_0005 => "out of memory",
        abort::UNSUPPORTED_ACCESS => "unsupported access to an object",
        abort::WRITE_ONLY => "attempt to read a write-only object",
        abort::READ_ONLY => "attempt to write a read-only object",
        abort::NO_OBJECT => "object does not exist in the object dictionary",
        abort::NOT_MAPPABLE => "object cannot be mapped to the PDO",
        abort::PDO_TOO_LONG => "mapped objects would exceed the PDO length",
        abort::PARAMETER_INCOMPATIBLE => "general parameter incompatibility",
        0x0604_0047 => "general internal incompatibility in the device",
        abort::HARDWARE => "access failed due to a hardware error",
        abort::LENGTH_MISMATCH => "data type or length does not match",
        0x0607_0012 => "data type does not match, length too high",
        0x0607_0013 => "data type does not match, length too low",
        abort::NO_SUBINDEX => "sub-index does not exist",
        abort::INVALID_VALUE => "invalid value for parameter",
        abort::VALUE_TOO_HIGH => "value of parameter written too high",
        abort::VALUE_TOO_LOW => "value of parameter written too low",
        0x0609_0036 => "maximum value is less than minimum value",
        0x060A_0023 => "resource not available: SDO connection",
        abort::GENERAL => "general error",
        0x0800_0020 => "data cannot be transferred or stored to the application",
        0x0800_0021 => "data cannot be transferred because of local control",
        abort::DEVICE_STATE => "data cannot be transferred because of the present device state",
        0x0800_0023 => "object dictionary not present or dynamic generation failed",
        0x0800_0024 => "no data available",
        _ => "unknown abort code",
    }
}

/// An emergency message (CiA 301 §7.2.7.3.1: error code u16, error register u8, 5 manufacturer bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Emcy {
    /// Emergency error code (0x0000 = error reset / no error).
    pub code: u16,
    /// Error register (object 0x1001).
    pub register: u8,
    /// Manufacturer-specific bytes.
    pub vendor: [u8; 5],
}

impl Emcy {
    /// The EMCY frame from `node`.
    pub fn frame(&self, node: u8) -> CanFrame {
        let mut d = [0u8; 8];
        d[..2].copy_from_slice(&self.code.to_le_bytes());
        d[2] = self.register;
        d[3..].copy_from_slice(&self.vendor);
        frame(COB_EMCY + u16::from(node), &d)
    }

    /// Decodes an EMCY frame from `node` (SYNC, which shares 0x080, is not an EMCY).
    pub fn decode(f: &CanFrame, node: u8) -> Option<Self> {
        if node == 0 || f.id() != CanId::Standard(COB_EMCY + u16::from(node)) || f.len() != 8 {
            return None;
        }
        let d = f.data();
        Some(Self { code: u16::from_le_bytes([d[0], d[1]]), register: d[2], vendor: [d[3], d[4], d[5], d[6], d[7]] })
    }

    /// True unless this is an "error reset / no error" message.
    pub const fn is_error(&self) -> bool {
        self.code != 0
    }

    /// Meaning of the error code: the CiA 402 / CiA 301 code where Plexo knows it, else its class.
    pub const fn meaning(&self) -> &'static str {
        match self.code {
            0x0000 => "error reset or no error",
            0x2310 => "continuous over-current",
            0x2320 => "short circuit / earth leakage",
            0x3210 => "DC link over-voltage",
            0x3220 => "DC link under-voltage",
            0x4210 => "drive temperature too high",
            0x4310 => "motor temperature too high",
            0x7305 => "incremental sensor 1 (encoder) fault",
            0x8110 => "CAN overrun (objects lost)",
            0x8120 => "CAN in error passive mode",
            0x8130 => "life guard or heartbeat error",
            0x8140 => "recovered from bus-off",
            0x8611 => "following error",
            c => match c >> 12 {
                0x1 => "generic error",
                0x2 => "current",
                0x3 => "voltage",
                0x4 => "temperature",
                0x5 => "device hardware",
                0x6 => "device software",
                0x7 => "additional modules",
                0x8 => "monitoring / communication",
                0x9 => "external error",
                0xF => "additional functions / device specific",
                _ => "unknown",
            },
        }
    }

    /// Joint flags the code implies.
    pub const fn flags(&self) -> plexo_hal::JointFlags {
        use plexo_hal::JointFlags as F;
        match self.code >> 12 {
            0x0 => F::NONE,
            0x2 | 0x3 => F::POWER,
            0x4 => F::OVER_TEMPERATURE,
            0x7 if self.code & 0xFF00 == 0x7300 => F::ENCODER,
            _ => F::DRIVE_FAULT,
        }
    }
}

/// Controlword commands (CiA 402-2 §6.2.1, table 21).
pub mod controlword {
    /// Shutdown: → Ready to switch on.
    pub const SHUTDOWN: u16 = 0x0006;
    /// Switch on: → Switched on.
    pub const SWITCH_ON: u16 = 0x0007;
    /// Enable operation: → Operation enabled.
    pub const ENABLE_OPERATION: u16 = 0x000F;
    /// Disable voltage: → Switch on disabled (torque off).
    pub const DISABLE_VOLTAGE: u16 = 0x0000;
    /// Quick stop: → Quick stop active.
    pub const QUICK_STOP: u16 = 0x0002;
    /// Fault reset (rising edge of bit 7).
    pub const FAULT_RESET: u16 = 0x0080;
}

/// States of the CiA 402 drive state machine (CiA 402-2 §6.2, figure 18).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cia402State {
    /// Not ready to switch on (initialising).
    NotReadyToSwitchOn,
    /// Switch on disabled (no torque, high voltage may be off).
    SwitchOnDisabled,
    /// Ready to switch on.
    ReadyToSwitchOn,
    /// Switched on (power stage on, no torque).
    SwitchedOn,
    /// Operation enabled (torque follows the target).
    OperationEnabled,
    /// Quick stop active.
    QuickStopActive,
    /// Fault reaction active.
    FaultReactionActive,
    /// Fault.
    Fault,
}

impl Cia402State {
    /// Decodes a statusword (table 30: bits 6, 5, 3, 2, 1, 0).
    pub const fn from_statusword(sw: u16) -> Self {
        if sw & 0x4F == 0x00 {
            Self::NotReadyToSwitchOn
        } else if sw & 0x4F == 0x40 {
            Self::SwitchOnDisabled
        } else if sw & 0x6F == 0x21 {
            Self::ReadyToSwitchOn
        } else if sw & 0x6F == 0x23 {
            Self::SwitchedOn
        } else if sw & 0x6F == 0x27 {
            Self::OperationEnabled
        } else if sw & 0x6F == 0x07 {
            Self::QuickStopActive
        } else if sw & 0x4F == 0x0F {
            Self::FaultReactionActive
        } else {
            // sw & 0x4F == 0x08, and any pattern outside the table is treated as a fault.
            Self::Fault
        }
    }

    /// The statusword bits of this state (bit 4 "voltage enabled" set when the power stage is on; bit 5 "quick
    /// stop" set when quick stop is *not* active).
    pub const fn statusword(self) -> u16 {
        match self {
            Self::NotReadyToSwitchOn => 0x0000,
            Self::SwitchOnDisabled => 0x0040,
            Self::ReadyToSwitchOn => 0x0021,
            Self::SwitchedOn => 0x0033,
            Self::OperationEnabled => 0x0037,
            Self::QuickStopActive => 0x0017,
            Self::FaultReactionActive => 0x001F,
            Self::Fault => 0x0008,
        }
    }

    /// True if the drive can produce torque in this state.
    pub const fn produces_torque(self) -> bool {
        matches!(self, Self::OperationEnabled | Self::QuickStopActive | Self::FaultReactionActive)
    }
}

/// A PDO mapping entry (CiA 301 §7.4.8.10): index << 16 | sub-index << 8 | length [bits].
pub const fn mapping_entry(index: u16, subindex: u8, bits: u8) -> u32 {
    ((index as u32) << 16) | ((subindex as u32) << 8) | bits as u32
}

/// RPDO1 as Plexo maps it: controlword (u16) + target torque (i16, ‰).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rpdo1 {
    /// Controlword 0x6040.
    pub controlword: u16,
    /// Target torque 0x6071 [‰ of rated torque].
    pub target_torque: i16,
}

impl Rpdo1 {
    /// Mapping entries.
    pub const MAPPING: [u32; 2] = [mapping_entry(od::CONTROLWORD, 0, 16), mapping_entry(od::TARGET_TORQUE, 0, 16)];

    /// The PDO frame to `node`.
    pub fn frame(&self, node: u8) -> CanFrame {
        let c = self.controlword.to_le_bytes();
        let t = self.target_torque.to_le_bytes();
        frame(COB_RPDO1 + u16::from(node), &[c[0], c[1], t[0], t[1]])
    }

    /// Decodes the PDO addressed to `node`.
    pub fn decode(f: &CanFrame, node: u8) -> Option<Self> {
        if f.id() != CanId::Standard(COB_RPDO1 + u16::from(node)) || f.len() != 4 {
            return None;
        }
        let d = f.data();
        Some(Self { controlword: u16::from_le_bytes([d[0], d[1]]), target_torque: i16::from_le_bytes([d[2], d[3]]) })
    }
}

/// TPDO1 as Plexo maps it: statusword (u16) + position actual (i32) + torque actual (i16, ‰).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tpdo1 {
    /// Statusword 0x6041.
    pub statusword: u16,
    /// Position actual 0x6064 [increments].
    pub position: i32,
    /// Torque actual 0x6077 [‰ of rated torque].
    pub torque: i16,
}

impl Tpdo1 {
    /// Mapping entries.
    pub const MAPPING: [u32; 3] = [
        mapping_entry(od::STATUSWORD, 0, 16),
        mapping_entry(od::POSITION_ACTUAL, 0, 32),
        mapping_entry(od::TORQUE_ACTUAL, 0, 16),
    ];

    /// The PDO frame from `node`.
    pub fn frame(&self, node: u8) -> CanFrame {
        let mut d = [0u8; 8];
        d[..2].copy_from_slice(&self.statusword.to_le_bytes());
        d[2..6].copy_from_slice(&self.position.to_le_bytes());
        d[6..].copy_from_slice(&self.torque.to_le_bytes());
        frame(COB_TPDO1 + u16::from(node), &d)
    }

    /// Decodes the PDO from `node`.
    pub fn decode(f: &CanFrame, node: u8) -> Option<Self> {
        if f.id() != CanId::Standard(COB_TPDO1 + u16::from(node)) || f.len() != 8 {
            return None;
        }
        let d = f.data();
        Some(Self {
            statusword: u16::from_le_bytes([d[0], d[1]]),
            position: i32::from_le_bytes([d[2], d[3], d[4], d[5]]),
            torque: i16::from_le_bytes([d[6], d[7]]),
        })
    }
}

/// TPDO2 as Plexo maps it: velocity actual (i32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tpdo2 {
    /// Velocity actual 0x606C [increments/s, as configured].
    pub velocity: i32,
}

impl Tpdo2 {
    /// Mapping entries.
    pub const MAPPING: [u32; 1] = [mapping_entry(od::VELOCITY_ACTUAL, 0, 32)];

    /// The PDO frame from `node`.
    pub fn frame(&self, node: u8) -> CanFrame {
        frame(COB_TPDO2 + u16::from(node), &self.velocity.to_le_bytes())
    }

    /// Decodes the PDO from `node`.
    pub fn decode(f: &CanFrame, node: u8) -> Option<Self> {
        if f.id() != CanId::Standard(COB_TPDO2 + u16::from(node)) || f.len() != 4 {
            return None;
        }
        let d = f.data();
        Some(Self { velocity: i32::from_le_bytes([d[0], d[1], d[2], d[3]]) })
    }
}

/// The SDO writes that map RPDO1/TPDO1/TPDO2 of `node` as above, following the CiA 301 procedure: invalidate
/// the PDO (COB-ID bit 31), set transmission type (1 = synchronous, every SYNC), clear the mapping count, write
/// the entries, set the count, re-validate the COB-ID.
pub fn pdo_mapping_writes(node: u8) -> Vec<SdoRequest> {
    const INVALID: u32 = 1 << 31;
    let mut w = Vec::with_capacity(24);
    let pdos: [(u16, u16, u16, &[u32]); 3] = [
        (od::RPDO1_COMM, od::RPDO1_MAP, COB_RPDO1, &Rpdo1::MAPPING),
        (od::TPDO1_COMM, od::TPDO1_MAP, COB_TPDO1, &Tpdo1::MAPPING),
        (od::TPDO2_COMM, od::TPDO2_MAP, COB_TPDO2, &Tpdo2::MAPPING),
    ];
    for (comm, map, cob, entries) in pdos {
        let cob_id = u32::from(cob + u16::from(node));
        w.push(SdoRequest::write(comm, 1, cob_id | INVALID, 4));
        w.push(SdoRequest::write(comm, 2, 1, 1));
        w.push(SdoRequest::write(map, 0, 0, 1));
        for (i, e) in entries.iter().enumerate() {
            w.push(SdoRequest::write(map, i as u8 + 1, *e, 4));
        }
        w.push(SdoRequest::write(map, 0, entries.len() as u32, 1));
        w.push(SdoRequest::write(comm, 1, cob_id, 4));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_nmt_sync_heartbeat() {
        // CiA 301 §7.2.8.3.1: NMT is COB-ID 0 with [command specifier, node id].
        assert_eq!(NmtCommand::Start.frame(5).to_string(), "000#0105");
        assert_eq!(NmtCommand::EnterPreOperational.frame(0).to_string(), "000#8000");
        assert_eq!(NmtCommand::decode(&NmtCommand::ResetNode.frame(3)), Some((NmtCommand::ResetNode, 3)));
        assert_eq!(sync_frame().to_string(), "080#");
        // Heartbeat 0x700 + node, 1 byte state: operational = 0x05, boot-up = 0x00.
        assert_eq!(heartbeat_frame(5, NmtState::Operational).to_string(), "705#05");
        assert_eq!(decode_heartbeat(&heartbeat_frame(0x7F, NmtState::BootUp)), Some((0x7F, NmtState::BootUp)));
        assert_eq!(
            decode_heartbeat(&heartbeat_frame(5, NmtState::PreOperational)),
            Some((5, NmtState::PreOperational))
        );
    }

    #[test]
    fn golden_sdo_frames() {
        // Write 0x6060:00 = 10 (i8): ccs=1, n=3, e=1, s=1 → 0b0010_1111 = 0x2F; index LE 60 60; sub 00; data 0A.
        let w = SdoRequest::write(od::MODES_OF_OPERATION, 0, 10, 1);
        assert_eq!(w.frame(5).to_string(), "605#2F6060000A000000");
        assert_eq!(SdoRequest::decode(&w.frame(5), 5), Some(w));
        // Write 0x1017:00 = 100 ms (u16): n=2 → 0x2B; 100 = 0x0064 LE → 64 00.
        assert_eq!(SdoRequest::write(od::PRODUCER_HEARTBEAT, 0, 100, 2).frame(5).to_string(), "605#2B17100064000000");
        // Write u32 0x1016:01 = node 0x7E, 300 ms → 0x007E012C; n=0 → 0x23.
        let hb = SdoRequest::write(od::CONSUMER_HEARTBEAT, 1, (0x7E << 16) | 300, 4);
        assert_eq!(hb.frame(5).to_string(), "605#23161001 2C017E00".replace(' ', ""));
        // Read 0x6076:00: ccs=2 → 0x40.
        let r = SdoRequest::Upload { index: od::MOTOR_RATED_TORQUE, subindex: 0 };
        assert_eq!(r.frame(5).to_string(), "605#4076600000000000");
        assert_eq!(SdoRequest::decode(&r.frame(5), 5), Some(r));
        // Upload response, 4 bytes (0x43), rated torque 1270 mNm = 0x04F6.
        let up = SdoResponse::Upload { index: od::MOTOR_RATED_TORQUE, subindex: 0, data: [0xF6, 0x04, 0, 0], len: 4 };
        assert_eq!(up.frame(5).to_string(), "585#43766000F6040000");
        assert_eq!(SdoResponse::decode(&up.frame(5), 5).unwrap().value(), Some(1270));
        // Upload of a u16 (0x4B) keeps only 2 bytes.
        let sw = SdoResponse::Upload { index: od::STATUSWORD, subindex: 0, data: [0x37, 0x02, 0, 0], len: 2 };
        assert_eq!(sw.frame(5).to_string(), "585#4B41600037020000");
        assert_eq!(SdoResponse::decode(&sw.frame(5), 5).unwrap().value(), Some(0x0237));
        // Download ack 0x60; abort 0x80 with code LE: 0x06020000 → 00 00 02 06.
        let ack = SdoResponse::DownloadAck { index: od::CONTROLWORD, subindex: 0 };
        assert_eq!(ack.frame(5).to_string(), "585#6040600000000000");
        let ab = SdoResponse::Abort { index: 0x2000, subindex: 1, code: abort::NO_OBJECT };
        assert_eq!(ab.frame(5).to_string(), "585#8000200100000206");
        assert_eq!(SdoResponse::decode(&ab.frame(5), 5), Some(ab));
        assert_eq!(abort_meaning(abort::NO_OBJECT), "object does not exist in the object dictionary");
        assert_eq!(abort_meaning(abort::VALUE_TOO_HIGH), "value of parameter written too high");
        assert!(SdoResponse::decode(&ab.frame(5), 6).is_none(), "other node");
    }

    #[test]
    fn golden_emcy() {
        // EMCY 0x80 + node: code 0x4310 LE → 10 43, error register 0x09 (generic + temperature), vendor bytes.
        let e = Emcy { code: 0x4310, register: 0x09, vendor: [1, 2, 3, 4, 5] };
        assert_eq!(e.frame(5).to_string(), "085#1043090102030405");
        let d = Emcy::decode(&e.frame(5), 5).unwrap();
        assert_eq!(d, e);
        assert_eq!(d.meaning(), "motor temperature too high");
        assert!(d.flags().contains(plexo_hal::JointFlags::OVER_TEMPERATURE));
        assert!(Emcy::decode(&sync_frame(), 0).is_none());
        assert!(!Emcy { code: 0, register: 0, vendor: [0; 5] }.is_error());
    }

    #[test]
    fn golden_pdos() {
        // RPDO1: controlword 0x000F, target torque −250 ‰ = 0xFF06 LE → 06 FF.
        let r = Rpdo1 { controlword: controlword::ENABLE_OPERATION, target_torque: -250 };
        assert_eq!(r.frame(5).to_string(), "205#0F0006FF");
        assert_eq!(Rpdo1::decode(&r.frame(5), 5), Some(r));
        // TPDO1: statusword 0x0237 (op enabled + remote), position 100000 = 0x000186A0, torque 500 = 0x01F4.
        let t = Tpdo1 { statusword: 0x0237, position: 100_000, torque: 500 };
        assert_eq!(t.frame(5).to_string(), "185#3702A0860100F401");
        assert_eq!(Tpdo1::decode(&t.frame(5), 5), Some(t));
        let v = Tpdo2 { velocity: -2 };
        assert_eq!(v.frame(5).to_string(), "285#FEFFFFFF");
        assert_eq!(Tpdo2::decode(&v.frame(5), 5), Some(v));
        // Mapping entries: 0x6040 sub 0, 16 bit → 0x60400010.
        assert_eq!(Rpdo1::MAPPING, [0x6040_0010, 0x6071_0010]);
        assert_eq!(Tpdo1::MAPPING, [0x6041_0010, 0x6064_0020, 0x6077_0010]);
    }

    #[test]
    fn mapping_procedure_invalidates_first_and_validates_last() {
        let w = pdo_mapping_writes(5);
        assert_eq!(w[0], SdoRequest::write(od::RPDO1_COMM, 1, 0x8000_0205, 4));
        assert_eq!(w[2], SdoRequest::write(od::RPDO1_MAP, 0, 0, 1));
        assert_eq!(*w.last().unwrap(), SdoRequest::write(od::TPDO2_COMM, 1, 0x285, 4));
        assert_eq!(w.len(), 3 * 5 + 2 + 3 + 1);
    }

    #[test]
    fn statusword_decoding_covers_every_state() {
        use Cia402State::*;
        for s in [
            NotReadyToSwitchOn,
            SwitchOnDisabled,
            ReadyToSwitchOn,
            SwitchedOn,
            OperationEnabled,
            QuickStopActive,
            FaultReactionActive,
            Fault,
        ] {
            assert_eq!(Cia402State::from_statusword(s.statusword()), s);
            // Manufacturer bits (8, 14, 15), remote (9) and warning (7) do not change the state.
            assert_eq!(Cia402State::from_statusword(s.statusword() | 0xC380), s);
        }
    }
}
