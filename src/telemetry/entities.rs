//! The Rerun entity paths and timelines of a Plexo recording: the one place that names them, for the writer,
//! `plexo replay` and the tests that read a recording back. Stable: recordings of earlier sessions use them.
//!
//! - `world/robot/<link>`: link pose (`Transform3D`, world_T_link; static for links on the fixed base) and, below
//!   it, `visual_<k>` geometry from the URDF (primitives, and meshes as `Asset3D`) and `patient_<segment>`: the
//!   patient's upper arm, forearm and hand as capsules sized from the anthropometric model ([`patient_segment`])
//! - `world/hand`: current handle position; `world/hand_paths/<block>/<trial>`: the hand path of every trial
//!   (line strips, logged at the trial's end; [`hand_path`])
//! - `world/target`: the current target; `world/targets`: the upcoming targets of the block
//! - `joints/<series>`: the joint time series ([`JOINT_SERIES`]), one entity per quantity with one scalar
//!   instance per joint (in the model's joint order; the static `SeriesLines` of the entity names each instance
//!   `<joint> <series> [<unit>]`), over the [`SIM_TIME`] timeline only
//! - `joints/<joint>/<series>`: what `plexo replay --save` writes from a candump log ([`REPLAY_SERIES`] over
//!   [`CAN_TIME`])
//! - `session/assistance`, `session/patient_effort_share`: time series
//! - `session/trials/{success,final_error_mm,sparc}`: one point per trial at its end ([`TRIAL_SERIES`])
//! - `session/blocks/<block>`: one bar per block at height = block index, from its start to its end, named
//!   `block <k>: <name>` ([`block_marker`])
//! - `events`: trial, block and safety events (text log); `annotations`: block boundaries
//!
//! Recordings written before the joint series were grouped per quantity (issue 14) hold
//! `joints/<joint>/<series>` in rad, with both the `tick` and the `sim_time` timelines.

/// The world frame (z up).
pub const WORLD: &str = "world";
/// The handle's current position.
pub const HAND: &str = "world/hand";
/// Parent of the hand paths of every trial ([`hand_path`]).
pub const HAND_PATHS: &str = "world/hand_paths";
/// The current trial's target.
pub const TARGET: &str = "world/target";
/// The block's upcoming targets.
pub const TARGETS: &str = "world/targets";
/// Assistance: norm of the therapy-mode torque [Nm].
pub const ASSISTANCE: &str = "session/assistance";
/// Patient share of the task-directed effort [0–1].
pub const PATIENT_EFFORT_SHARE: &str = "session/patient_effort_share";
/// Per trial, at its end: 1 if the target was reached, 0 if not (one point per trial).
pub const TRIAL_SUCCESS: &str = "session/trials/success";
/// Per trial, at its end: final distance of the handle to the target [mm].
pub const TRIAL_FINAL_ERROR: &str = "session/trials/final_error_mm";
/// Per trial, at its end: SPARC smoothness of the hand speed [-] (≈ −1.6 for one smooth reach).
pub const TRIAL_SPARC: &str = "session/trials/sparc";
/// The per-trial series with their display names.
pub const TRIAL_SERIES: [(&str, &str); 3] = [
    (TRIAL_SUCCESS, "trial reached [1/0]"),
    (TRIAL_FINAL_ERROR, "trial final error [mm]"),
    (TRIAL_SPARC, "trial SPARC [-]"),
];
/// Parent of the block markers ([`block_marker`]).
pub const BLOCKS: &str = "session/blocks";
/// Trial, block and safety events.
pub const EVENTS: &str = "events";
/// Block boundaries.
pub const ANNOTATIONS: &str = "annotations";

/// Measured joint position [deg] (`plexo replay --save`: [rad]).
pub const Q: &str = "q";
/// Reference joint position [deg].
pub const Q_REF: &str = "q_ref";
/// Commanded torque after the safety supervisor [Nm].
pub const TAU_CMD: &str = "tau_cmd";
/// Estimated patient torque [Nm].
pub const TAU_PATIENT_EST: &str = "tau_patient_est";
/// True patient torque [Nm] (simulation only).
pub const TAU_PATIENT_TRUE: &str = "tau_patient_true";
/// Assistance stiffness [Nm/rad].
pub const STIFFNESS: &str = "stiffness";
/// Every joint series of a session recording (`joints/<series>`, one instance per joint).
pub const JOINT_SERIES: [&str; 6] = [Q, Q_REF, TAU_CMD, TAU_PATIENT_EST, TAU_PATIENT_TRUE, STIFFNESS];

/// The unit of a joint series as the recording stores and names it (`deg`, `Nm`, `Nm/rad`).
pub fn series_unit(series: &str) -> &'static str {
    match series {
        Q | Q_REF => "deg",
        STIFFNESS => "Nm/rad",
        _ => "Nm",
    }
}
/// The per-joint series `plexo replay --save` decodes from a candump log: position [rad], velocity [rad/s],
/// torque [Nm].
pub const REPLAY_SERIES: [&str; 3] = [Q, "qd", "tau"];

/// Timeline: control-loop tick (recordings written before issue 14; a session recording now has only
/// [`SIM_TIME`]).
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

/// `joints/<series>`: one joint time series of a session recording, one instance per joint.
pub fn joints(series: &str) -> String {
    format!("joints/{series}")
}

/// `joints/<joint>/<series>`: one joint's series as `plexo replay --save` writes it (and as recordings before
/// issue 14 held them).
pub fn joint_series(joint: &str, series: &str) -> String {
    format!("joints/{joint}/{series}")
}

/// `world/hand_paths/<block>/<trial>`: the hand path of one trial (block and trial indices, 0-based).
pub fn hand_path(block: usize, trial: usize) -> String {
    format!("{HAND_PATHS}/{block}/{trial}")
}

/// `session/blocks/<block>`: the marker of one block (a bar at height `block` from the block's start to its end).
pub fn block_marker(block: usize) -> String {
    format!("{BLOCKS}/{block}")
}

/// The patient's arm segments and the robot links they are attached to (as `plexo_controller::attach_patient_arm`
/// attaches them): upper arm to `upper_arm_link`, forearm to `forearm_link`, hand to `handle`.
pub const PATIENT_SEGMENTS: [(&str, &str); 3] =
    [("upper_arm", "upper_arm_link"), ("forearm", "forearm_link"), ("hand", "handle")];

/// `world/robot/<link>/patient_<segment>`: one segment of the patient's arm, in its link's frame.
pub fn patient_segment(link: &str, segment: &str) -> String {
    format!("{}/patient_{segment}", robot_link(link))
}
