//! # plexo (the application)
//!
//! The runtime and tools around the Plexo crates: the control loop shared by simulation and hardware
//! ([`runtime`]), telemetry to Rerun ([`telemetry`]), configuration loading and session assembly ([`setup`]),
//! and the subcommands of the `plexo` binary ([`cli`]). See README.md for the commands.

// Transform names carry their frames (`world_T_link`), as in plexo-kinematics.
#![allow(non_snake_case)]

pub mod check_cmd;
pub mod cli;
mod error;
pub mod hardware;
pub mod model_cmd;
pub mod output;
pub mod reach_metrics;
pub mod realtime;
pub mod replay_cmd;
pub mod run_cmd;
pub mod runtime;
pub mod session_state;
pub mod setup;
pub mod sim_cmd;
pub mod summary;
pub mod telemetry;
pub mod timing;

pub use error::AppError;
