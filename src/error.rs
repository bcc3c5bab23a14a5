//! The app's error type: every failure names the file, key, joint or item it is about.

/// Errors of the `plexo` application.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// A robot model failed to load.
    #[error(transparent)]
    Kinematics(#[from] plexo_kinematics::KinematicsError),
    /// A controller, protocol or safety configuration is invalid (the message names file, key and range).
    #[error(transparent)]
    Controller(#[from] plexo_controller::ControllerError),
    /// A simulation setting or patient profile is invalid.
    #[error(transparent)]
    Sim(#[from] plexo_sim::SimError),
    /// A hardware (CAN) configuration or operation failed.
    #[error(transparent)]
    Hal(#[from] plexo_hal::HalError),
    /// The robot backend failed while running (read, write, enable).
    #[error("robot: {0}")]
    Robot(String),
    /// The session ended with a safety stop or a backend error (the robot was left torque-free).
    #[error("session aborted: {0}")]
    SessionAborted(String),
    /// A named item (robot, patient, protocol) is neither a file nor an embedded default.
    #[error("{what} '{name}' not found: expected {hint}")]
    NotFound {
        /// What was looked up.
        what: &'static str,
        /// The name given.
        name: String,
        /// What would have been accepted.
        hint: &'static str,
    },
    /// A configuration file is invalid.
    #[error("{file}: {key}: {reason}")]
    Config {
        /// The file (or embedded default name).
        file: String,
        /// The key at fault (`blocks[2].mode`).
        key: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// An I/O error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The patient store (SQLite database) failed or refused an operation.
    #[error("patient store {db}: {reason}")]
    Store {
        /// The database file.
        db: String,
        /// What failed, and why.
        reason: String,
    },
    /// A recording given to `plexo analyze` is malformed (the message names the line).
    #[error("{file}:{line}: {reason}")]
    Recording {
        /// The file.
        file: String,
        /// The 1-based line number (0: the file as a whole).
        line: usize,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// Telemetry could not be set up or written.
    #[error("telemetry: {0}")]
    Telemetry(String),
    /// A signal (SIGINT, SIGTERM, SIGHUP) stopped the session; the robot was left torque-free and the outputs
    /// written. The process exits with 128 + `signal` ([`AppError::exit_code`]).
    #[error("session {end}")]
    Signal {
        /// The signal's number.
        signal: i32,
        /// How the session ended.
        end: String,
    },
    /// The operator did not confirm a hardware run.
    #[error("refusing to drive hardware without --i-confirm-the-patient-is-safe (see `plexo run --help`)")]
    NotConfirmed,
}

impl AppError {
    /// The process exit status for this error: 128 + the signal's number for a stop by a signal (the shell's
    /// convention: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Signal { signal, .. } => u8::try_from(128 + signal).unwrap_or(1),
            _ => 1,
        }
    }
}
