//! Errors of the HAL: one crate error enum with structured fields, and the [`RobotError`] trait every backend's
//! error implements so the runtime can react by [`ErrorKind`] without knowing the backend.

use core::time::Duration;

use crate::lifecycle::Lifecycle;

/// What kind of failure a backend reports; the runtime's reaction depends only on this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A reply or frame did not arrive in time.
    Timeout,
    /// A drive reported a fault.
    Fault,
    /// The link to the robot is gone (interface down, bus-off, peer silent).
    Disconnected,
    /// A joint is outside its position, velocity, torque or temperature limit.
    LimitViolation,
    /// The command is malformed: wrong joint count, NaN/Inf, torque while not active.
    InvalidCommand,
    /// The operation is not allowed in the current lifecycle state (e.g. `enable` while e-stopped).
    InvalidState,
    /// The transmit queue is full (e.g. SocketCAN ENOBUFS).
    BufferFull,
    /// A configuration value is wrong (node id, bitrate, joint map).
    Configuration,
    /// Anything else (I/O error of the operating system).
    Other,
}

/// Implemented by every backend's error type (after embedded-hal's `Error::kind()`).
pub trait RobotError: std::error::Error + Send + Sync + 'static {
    /// The kind of failure.
    fn kind(&self) -> ErrorKind;
}

/// Errors of `plexo-hal`'s own checks (`JointCommand::check`, lifecycle) and of the CAN backend
/// (`plexo-can`: buses, codecs, drives), which reports through this enum.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HalError {
    /// The command has a different number of joints than the robot.
    #[error("command has {got} joints, robot has {expected}")]
    JointCountMismatch {
        /// Joints the robot has.
        expected: usize,
        /// Joints in the command.
        got: usize,
    },
    /// A command value is NaN or infinite.
    #[error("non-finite {field} for joint {joint}")]
    NonFiniteCommand {
        /// Joint index.
        joint: usize,
        /// Which field (`torque`, `stiffness`, …).
        field: &'static str,
    },
    /// A drive-impedance gain (stiffness or damping) is negative: it would push the joint away from its set-point.
    #[error("negative {field} for joint {joint}")]
    NegativeGain {
        /// Joint index.
        joint: usize,
        /// `drive_impedance.stiffness` or `drive_impedance.damping`.
        field: &'static str,
    },
    /// A torque command arrived while the robot is not active.
    #[error("torque commanded while the robot is {state:?}")]
    NotActive {
        /// Current lifecycle state.
        state: Lifecycle,
    },
    /// A lifecycle transition is not allowed.
    #[error("cannot {action} while {state:?}")]
    InvalidTransition {
        /// The requested transition (`enable`, `reset`, …).
        action: &'static str,
        /// Current lifecycle state.
        state: Lifecycle,
    },
    /// No reply from a node within the allowed time.
    #[error("joint {joint} (node {node_id}) silent for {cycles} cycles ({elapsed:?})")]
    ReplyTimeout {
        /// Joint index.
        joint: usize,
        /// CAN node id.
        node_id: u8,
        /// Consecutive cycles without a reply.
        cycles: u32,
        /// Time since the last reply.
        elapsed: Duration,
    },
    /// A drive's replies were rejected as implausible (position jump faster than physics allows, torque beyond
    /// the drive's limit) for `cycles` consecutive cycles: a corrupted link or a failing encoder.
    #[error("joint {joint} (node {node_id}): replies implausible for {cycles} cycles: {detail}")]
    ImplausibleReply {
        /// Joint index.
        joint: usize,
        /// CAN node id.
        node_id: u8,
        /// Consecutive cycles without an acceptable reply.
        cycles: u32,
        /// What was implausible, with the values.
        detail: String,
    },
    /// A drive reported a fault.
    #[error("joint {joint} drive fault: {detail}")]
    DriveFault {
        /// Joint index.
        joint: usize,
        /// Decoded fault description (vendor code, EMCY text).
        detail: String,
    },
    /// The CAN controller went bus-off; torque is off until an explicit recovery.
    #[error("CAN bus {bus} is bus-off")]
    BusOff {
        /// Interface name.
        bus: String,
    },
    /// The transmit queue is full.
    #[error("CAN bus {bus}: transmit buffer full")]
    TxBufferFull {
        /// Interface name.
        bus: String,
    },
    /// A joint is outside a limit.
    #[error("joint {joint}: {quantity} {value} outside [{min}, {max}]")]
    LimitViolation {
        /// Joint index.
        joint: usize,
        /// Which quantity (`position [rad]`, `temperature [°C]`, …).
        quantity: &'static str,
        /// Offending value.
        value: f64,
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// Invalid configuration.
    #[error("configuration: {key}: {reason}")]
    Config {
        /// The key or item at fault (`joints[2].node_id`).
        key: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A CAN frame could not be built or has an impossible shape (too long, bad identifier).
    #[error("invalid CAN frame: {reason}")]
    InvalidFrame {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A CANopen SDO transfer was aborted by the drive (CiA 301 abort code, decoded).
    #[error("joint {joint} (node {node_id}): SDO {index:#06x}:{subindex} aborted with {code:#010x} ({meaning})")]
    SdoAbort {
        /// Joint index.
        joint: usize,
        /// CANopen node id.
        node_id: u8,
        /// Object index.
        index: u16,
        /// Object sub-index.
        subindex: u8,
        /// Abort code (CiA 301 §7.2.4.3.17).
        code: u32,
        /// Meaning of the abort code.
        meaning: &'static str,
    },
    /// A drive answered something the protocol does not allow at this point.
    #[error("joint {joint} (node {node_id}): protocol error: {detail}")]
    Protocol {
        /// Joint index.
        joint: usize,
        /// CAN node id.
        node_id: u8,
        /// What was expected and what arrived.
        detail: String,
    },
    /// A candump log line could not be parsed.
    #[error("candump log line {line}: {reason}")]
    LogParse {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The planned worst-case bus load is above the limit.
    #[error("bus {bus}: worst-case load {load_percent:.1} % exceeds the limit {limit_percent:.1} %; {suggestion}")]
    BusOverload {
        /// Bus name.
        bus: String,
        /// Worst-case load [%].
        load_percent: f64,
        /// Limit [%].
        limit_percent: f64,
        /// What would fit (lower rate, bus split).
        suggestion: String,
    },
    /// An error of another backend wrapped by a CAN composite (e.g. the simulated plant behind emulated drives).
    #[error("{context}: {detail}")]
    Backend {
        /// Which backend / operation.
        context: &'static str,
        /// The backend's error kind, kept for the runtime's reaction.
        kind: ErrorKind,
        /// The backend's error message.
        detail: String,
    },
    /// An operating-system I/O error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl RobotError for HalError {
    fn kind(&self) -> ErrorKind {
        match self {
            HalError::JointCountMismatch { .. } | HalError::NonFiniteCommand { .. } | HalError::NegativeGain { .. } => {
                ErrorKind::InvalidCommand
            }
            HalError::NotActive { .. } => ErrorKind::InvalidCommand,
            HalError::InvalidTransition { .. } => ErrorKind::InvalidState,
            HalError::ReplyTimeout { .. } => ErrorKind::Timeout,
            HalError::DriveFault { .. } | HalError::ImplausibleReply { .. } => ErrorKind::Fault,
            HalError::BusOff { .. } => ErrorKind::Disconnected,
            HalError::TxBufferFull { .. } => ErrorKind::BufferFull,
            HalError::LimitViolation { .. } => ErrorKind::LimitViolation,
            HalError::Config { .. } => ErrorKind::Configuration,
            HalError::Io { .. } => ErrorKind::Other,
            HalError::InvalidFrame { .. } => ErrorKind::InvalidCommand,
            HalError::Backend { kind, .. } => *kind,
            HalError::SdoAbort { .. } | HalError::Protocol { .. } => ErrorKind::Fault,
            HalError::LogParse { .. } | HalError::BusOverload { .. } => ErrorKind::Configuration,
        }
    }
}
