//! # plexo (the application)
//!
//! The runtime and tools around the Plexo crates: the control loop shared by simulation and hardware
//! ([`runtime`]), the telemetry pipeline (analysis and Rerun recording, [`telemetry`]), configuration loading
//! and session assembly ([`setup`]), and the subcommands of the `plexo` binary ([`cli`]). See README.md for the
//! commands.
//!
//! Modules are public only where a test or the binary needs them.

// Transform names carry their frames (`world_T_link`), as in plexo-kinematics.
#![allow(non_snake_case)]

mod analyze_cmd;
pub mod assessment;
mod can_log;
mod check_cmd;
pub mod cli;
mod error;
mod files;
mod hardware;
mod model_cmd;
mod options;
mod patient_cmd;
mod patient_report;
mod progress;
mod reach_metrics;
mod realtime;
pub mod replay_cmd;
mod report;
mod run_cmd;
pub mod runtime;
mod session;
mod session_state;
pub mod setup;
mod signals;
mod sim_cmd;
mod smoothness;
pub mod store;
pub mod study;
mod summary;
pub mod telemetry;
mod timing;
pub mod tune;

pub use error::AppError;
pub use summary::{BlockSummary, SessionSummary, TRIAL_COLUMNS, TrialRow, trials_csv};
pub use timing::TimingSummary;
