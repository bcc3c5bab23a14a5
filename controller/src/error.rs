//! The one error enum of `plexo-controller`, with structured fields naming the file, key and joint at fault.
//! It depends only on the supervisor's state vocabulary (`safety::outcome`), which depends on nothing in the crate.

use crate::safety::outcome::SafetyState;

/// Errors of `plexo-controller`: configuration, protocol files and model set-up. Never raised in the tick: the
/// real-time path reports problems through [`crate::SafetyOutcome`], not through errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControllerError {
    /// A configuration or protocol file could not be parsed (syntax, unknown key, wrong type).
    #[error("{file}: {message}")]
    Parse {
        /// File name (or `<embedded default: NAME>` for a built-in default).
        file: String,
        /// The parser's message, which names the key and the line.
        message: String,
    },
    /// A value is outside its allowed range or inconsistent with another value.
    #[error("{file}: {key} = {value}: {reason}")]
    OutOfRange {
        /// File name.
        file: String,
        /// Dotted key path, e.g. `safety.joints[2].torque_max`.
        key: String,
        /// The offending value, as text.
        value: String,
        /// The allowed range or the rule that was broken.
        reason: String,
    },
    /// A joint named in the configuration does not exist in the robot, or one of the robot's joints is missing.
    #[error("{file}: joint `{joint}`: {reason}")]
    JointMismatch {
        /// File name.
        file: String,
        /// Joint name.
        joint: String,
        /// What does not match.
        reason: String,
    },
    /// A protocol or configuration asked for by name does not exist.
    #[error("unknown {what} `{name}`; available: {available}")]
    UnknownName {
        /// What kind of thing (`protocol`, `frame`, `target set`).
        what: &'static str,
        /// The requested name.
        name: String,
        /// Comma-separated list of valid names.
        available: String,
    },
    /// A file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// File name.
        file: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The kinematic model rejected an operation (payload attachment, missing frame).
    #[error("model: {context}: {message}")]
    Model {
        /// What was being done.
        context: String,
        /// The kinematics error, as text.
        message: String,
    },
    /// An operator request is not allowed in the supervisor's current state.
    #[error("cannot {action} while the safety supervisor is {state:?}")]
    InvalidTransition {
        /// The request (`enable`, `resume`, `reset`).
        action: &'static str,
        /// Current supervisor state.
        state: SafetyState,
    },
    /// A request that is not allowed in the current state of a session (e.g. resuming an adaptation state after
    /// the session started).
    #[error("cannot {action}: {reason}")]
    InvalidRequest {
        /// The request.
        action: &'static str,
        /// Why not now.
        reason: String,
    },
    /// A task could not be built (unreachable target, empty range of motion).
    #[error("task `{task}`: {reason}")]
    Task {
        /// Task or target-set name.
        task: String,
        /// Why.
        reason: String,
    },
}

impl ControllerError {
    /// Shorthand for an [`ControllerError::OutOfRange`] error.
    pub(crate) fn range(file: &str, key: impl Into<String>, value: impl ToString, reason: impl Into<String>) -> Self {
        Self::OutOfRange { file: file.to_owned(), key: key.into(), value: value.to_string(), reason: reason.into() }
    }
}

/// Checks `lo <= value <= hi` (and finiteness), naming file and key on failure.
pub(crate) fn check_range(file: &str, key: &str, value: f64, lo: f64, hi: f64) -> Result<(), ControllerError> {
    if value.is_finite() && value >= lo && value <= hi {
        Ok(())
    } else {
        Err(ControllerError::range(file, key, value, format!("allowed range [{lo}, {hi}]")))
    }
}
