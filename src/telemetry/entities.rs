//! The Rerun entity paths and timelines of a Plexo recording: the one place that names them, for the writer,
//! `plexo replay` and the tests that read a recording back. Stable: recordings of earlier sessions use them.
//!
//! - `world/robot/<link>`: link pose (`Transform3D`, world_T_link) and, below it, `visual_<k>` geometry from the URDF
//! - `world/hand`: current handle position; `world/hand_path`: the hand path of each trial (line strips)
//! - `world/target`: the current target; `world/targets`: the upcoming targets of the block
//! - `joints/<joint>/<series>`: per-joint time series ([`JOINT_SERIES`]; `plexo replay --save` writes
//!   [`REPLAY_SERIES`] over [`CAN_TIME`])
//! - `session/assistance`, `session/patient_effort_share`: time series
//! - `events`: trial, block and safety events (text log); `annotations`: block boundaries

/// The world frame (z up).
pub const WORLD: &str = "world";
/// The handle's current position.
pub const HAND: &str = "world/hand";
/// The hand path of each trial.
pub const HAND_PATH: &str = "world/hand_path";
/// The current trial's target.
pub const TARGET: &str = "world/target";
/// The block's upcoming targets.
pub const TARGETS: &str = "world/targets";
/// Assistance: norm of the therapy-mode torque [Nm].
pub const ASSISTANCE: &str = "session/assistance";
/// Patient share of the task-directed effort [0–1].
pub const PATIENT_EFFORT_SHARE: &str = "session/patient_effort_share";
/// Trial, block and safety events.
pub const EVENTS: &str = "events";
/// Block boundaries.
pub const ANNOTATIONS: &str = "annotations";

/// Measured joint position [rad].
pub const Q: &str = "q";
/// Reference joint position [rad].
pub const Q_REF: &str = "q_ref";
/// Commanded torque after the safety supervisor [Nm].
pub const TAU_CMD: &str = "tau_cmd";
/// Estimated patient torque [Nm].
pub const TAU_PATIENT_EST: &str = "tau_patient_est";
/// True patient torque [Nm] (simulation only).
pub const TAU_PATIENT_TRUE: &str = "tau_patient_true";
/// Assistance stiffness [Nm/rad].
pub const STIFFNESS: &str = "stiffness";
/// Every per-joint series of a session recording.
pub const JOINT_SERIES: [&str; 6] = [Q, Q_REF, TAU_CMD, TAU_PATIENT_EST, TAU_PATIENT_TRUE, STIFFNESS];
/// The per-joint series `plexo replay --save` decodes from a candump log: position [rad], velocity [rad/s],
/// torque [Nm].
pub const REPLAY_SERIES: [&str; 3] = [Q, "qd", "tau"];

/// Timeline: control-loop tick.
pub const TICK: &str = "tick";
/// Timeline: simulated or wall time since the start [s].
pub const SIM_TIME: &str = "sim_time";
/// Timeline of a decoded candump log [s].
pub const CAN_TIME: &str = "can_time";

/// `world/robot/<link>`: a link's pose.
pub fn robot_link(link: &str) -> String {
    format!("{WORLD}/robot/{link}")
}

/// `world/robot/<link>/visual_<k>`: the `k`-th visual of a link, in the link frame.
pub fn link_visual(link: &str, k: usize) -> String {
    format!("{}/visual_{k}", robot_link(link))
}

/// `joints/<joint>/<series>`: one per-joint time series.
pub fn joint_series(joint: &str, series: &str) -> String {
    format!("joints/{joint}/{series}")
}
