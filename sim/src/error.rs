//! The crate's one error enum, [`SimError`], with structured fields; it implements [`plexo_hal::RobotError`].

use plexo_hal::{ErrorKind, Lifecycle, RobotError};

/// Errors of `plexo-sim`: building plants, loading patient profiles, driving the simulated robot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A patient profile could not be parsed (TOML syntax, unknown key, wrong type).
    #[error("patient profile {file}: {reason}")]
    ProfileParse {
        /// File name or embedded profile name.
        file: String,
        /// The parser's message (names the key and line).
        reason: String,
    },
    /// A patient-profile value is outside its allowed range.
    #[error("patient profile {file}: {key} = {value} is outside the allowed range {allowed}")]
    ProfileValue {
        /// File name or embedded profile name.
        file: String,
        /// Dotted key path, e.g. `joints.elbow_flexion.max_torque`.
        key: String,
        /// The offending value.
        value: f64,
        /// The allowed range with units, e.g. `[0, 200] Nm`.
        allowed: &'static str,
    },
    /// A robot joint has no entry in the patient profile.
    #[error("patient profile {file}: no [joints.{joint}] table for robot joint `{joint}`")]
    ProfileMissingJoint {
        /// File name or embedded profile name.
        file: String,
        /// The robot joint without a profile entry.
        joint: String,
    },
    /// A joint is in the profile's impairment model (`[joints.<name>]`) but not in its measured range of motion
    /// (`[spec.range_of_motion]`), or the other way round.
    #[error(
        "patient profile {file}: joint `{joint}` is missing from {missing} (the impairment model [joints.*] and \
         the range of motion [spec.range_of_motion] must describe the same joints)"
    )]
    ProfileJointTables {
        /// File name or embedded profile name.
        file: String,
        /// The joint.
        joint: String,
        /// The table it is missing from: `[spec.range_of_motion]` or `[joints]`.
        missing: &'static str,
    },
    /// The profile's patient specification (`[spec]`) is invalid; the error names the file and the key.
    #[error(transparent)]
    ProfileSpec(plexo_kinematics::KinematicsError),
    /// A saved virtual-patient state (the table [`plexo_hal::PatientHooks::restore_patient`] reads) has a missing,
    /// unknown or mistyped field.
    #[error("virtual patient state: {key}: {reason}")]
    InvalidPatientState {
        /// The field, e.g. `patient_state.effort`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No embedded profile has this name.
    #[error("no embedded patient profile `{name}`; available: {available}")]
    UnknownProfile {
        /// Requested name.
        name: String,
        /// Comma-separated list of embedded names.
        available: &'static str,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The kinematic model is unusable for this plant (missing frame, too many joints, bad inertia).
    #[error("model {model}: {reason}")]
    Model {
        /// Model name.
        model: String,
        /// What is wrong.
        reason: String,
    },
    /// An error from plexo-kinematics while building the plant.
    #[error("kinematics: {0}")]
    Kinematics(#[from] plexo_kinematics::KinematicsError),
    /// A configuration value (plant, motor, sensor or API argument) is invalid.
    #[error("{key}: {value} is invalid, allowed {allowed}")]
    InvalidParameter {
        /// Which parameter (`motors[2].gear_ratio`, `set_target.duration`, …).
        key: String,
        /// The offending value.
        value: f64,
        /// What is allowed, with units.
        allowed: &'static str,
    },
    /// A per-joint vector has the wrong length.
    #[error("{what} has {got} joints, robot has {expected}")]
    JointCountMismatch {
        /// What was passed (`command`, `state`, `target`).
        what: &'static str,
        /// Joints the robot has.
        expected: usize,
        /// Joints given.
        got: usize,
    },
    /// A command value is NaN or infinite.
    #[error("non-finite {field} for joint {joint}")]
    NonFiniteCommand {
        /// Joint index.
        joint: usize,
        /// Which field (`torque`, `drive_impedance.stiffness`, …).
        field: &'static str,
    },
    /// A drive-impedance gain is negative.
    #[error("negative {field} for joint {joint}")]
    NegativeGain {
        /// Joint index.
        joint: usize,
        /// `drive_impedance.stiffness` or `drive_impedance.damping`.
        field: &'static str,
    },
    /// A non-zero torque was commanded while the plant is not active.
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
    /// The simulation state became non-finite (the plant latched [`Lifecycle::Fault`]).
    #[error("simulation diverged at joint {joint}: {quantity} = {value}")]
    Diverged {
        /// Joint index.
        joint: usize,
        /// `position [rad]` or `velocity [rad/s]`.
        quantity: &'static str,
        /// Offending value.
        value: f64,
    },
    /// The plant latched a fault earlier; `reset` is required.
    #[error("plant is in Fault; call reset()")]
    Faulted,
}

impl RobotError for SimError {
    fn kind(&self) -> ErrorKind {
        match self {
            SimError::JointCountMismatch { .. }
            | SimError::NonFiniteCommand { .. }
            | SimError::NegativeGain { .. }
            | SimError::NotActive { .. } => ErrorKind::InvalidCommand,
            SimError::InvalidTransition { .. } => ErrorKind::InvalidState,
            SimError::Diverged { .. } | SimError::Faulted => ErrorKind::Fault,
            SimError::Io { .. } => ErrorKind::Other,
            SimError::ProfileParse { .. }
            | SimError::ProfileValue { .. }
            | SimError::ProfileMissingJoint { .. }
            | SimError::ProfileJointTables { .. }
            | SimError::ProfileSpec(_)
            | SimError::InvalidPatientState { .. }
            | SimError::UnknownProfile { .. }
            | SimError::Model { .. }
            | SimError::Kinematics(_)
            | SimError::InvalidParameter { .. } => ErrorKind::Configuration,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant maps to the kind its documentation implies (the match in `kind` lists them all, so a new
    /// variant must be classified explicitly).
    #[test]
    fn every_error_has_its_kind() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let cases = [
            (SimError::ProfileParse { file: "f".into(), reason: "r".into() }, ErrorKind::Configuration),
            (
                SimError::ProfileValue { file: "f".into(), key: "k".into(), value: 1.0, allowed: "[0, 0]" },
                ErrorKind::Configuration,
            ),
            (SimError::ProfileMissingJoint { file: "f".into(), joint: "j".into() }, ErrorKind::Configuration),
            (
                SimError::ProfileJointTables { file: "f".into(), joint: "j".into(), missing: "[joints]" },
                ErrorKind::Configuration,
            ),
            (
                SimError::ProfileSpec(plexo_kinematics::KinematicsError::PatientSpecParse {
                    file: "f".into(),
                    reason: "r".into(),
                }),
                ErrorKind::Configuration,
            ),
            (
                SimError::InvalidPatientState { key: "patient_state.effort".into(), reason: "missing".into() },
                ErrorKind::Configuration,
            ),
            (SimError::UnknownProfile { name: "n".into(), available: "a" }, ErrorKind::Configuration),
            (SimError::Io { path: "p".into(), source: io }, ErrorKind::Other),
            (SimError::Model { model: "m".into(), reason: "r".into() }, ErrorKind::Configuration),
            (
                SimError::Kinematics(plexo_kinematics::KinematicsError::LengthMismatch {
                    what: "armature",
                    expected: 4,
                    got: 3,
                }),
                ErrorKind::Configuration,
            ),
            (SimError::InvalidParameter { key: "k".into(), value: 0.0, allowed: "> 0" }, ErrorKind::Configuration),
            (SimError::JointCountMismatch { what: "command", expected: 4, got: 3 }, ErrorKind::InvalidCommand),
            (SimError::NonFiniteCommand { joint: 0, field: "torque" }, ErrorKind::InvalidCommand),
            (SimError::NegativeGain { joint: 0, field: "drive_impedance.stiffness" }, ErrorKind::InvalidCommand),
            (SimError::NotActive { state: Lifecycle::Disabled }, ErrorKind::InvalidCommand),
            (SimError::InvalidTransition { action: "enable", state: Lifecycle::Fault }, ErrorKind::InvalidState),
            (SimError::Diverged { joint: 0, quantity: "position [rad]", value: f64::NAN }, ErrorKind::Fault),
            (SimError::Faulted, ErrorKind::Fault),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error}");
        }
    }
}
