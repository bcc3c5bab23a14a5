//! The Rerun entity paths and timelines of a Plexo recording: the one place that names them, for the writer,
//! the blueprint, `plexo replay` and the tests that read a recording back.
//!
//! - `world/robot/<link>`: link pose (`Transform3D`, world_T_link; static for links on the fixed base) and, below
//!   it, `visual_<k>` geometry from the URDF (primitives, and meshes as `Asset3D`) and `patient_<segment>`: the
//!   patient's upper arm, forearm and hand as capsules sized from the anthropometric model ([`patient_segment`])
//! - `world/hand`: current handle position; `world/hand_paths/<block>/<trial>`: the hand path of every trial
//!   (line strips, logged at the trial's end; [`hand_path`])
//! - `world/target`: the current target; `world/targets`: the upcoming targets of the block
//! - the time series, one entity per plot group ([`SERIES_GROUPS`]), each row holding every quantity of the group
//!   as instances (quantity-major: all joints of the first quantity, then of the next; [`SeriesGroup::instance`]),
//!   each instance named `<joint> <quantity> [<unit>]` by the entity's static `SeriesLines`, over the
//!   [`SIM_TIME`] timeline only:
//!   - `joints/position`: `q`, `q_ref` [deg] (2 × joints instances)
//!   - `joints/torque`: `tau_cmd`, `tau_patient_est` and, in simulation, `tau_patient_true` [Nm] (3 × joints
//!     instances; 2 × joints on hardware, which has no true patient torque)
//!   - `joints/stiffness`: `stiffness` [Nm/rad] (one instance per joint)
//!   - `session/effort`: `assistance` [Nm], `patient_effort_share` [0-1] (2 instances)
//! - `joints/<joint>/<series>`: what `plexo replay --save` writes from a candump log ([`REPLAY_SERIES`] over
//!   [`CAN_TIME`])
//! - `session/trials/{success,final_error_mm,sparc}`: one point per trial at its end ([`TRIAL_SERIES`])
//! - `session/blocks/<block>`: one bar per block at height = block index, from its start to its end, named
//!   `block <k>: <name>` ([`block_marker`])
//! - `events`: trial, block and safety events (text log); `annotations`: block boundaries
//!
//! Earlier recordings hold other layouts of the same series, which `plexo replay` still lists: before issue 14
//! `joints/<joint>/<series>` in rad with both the `tick` and the `sim_time` timelines; from issue 14's first
//! round to its size round one entity per quantity (`joints/q`, `joints/q_ref`, `joints/tau_cmd`,
//! `joints/tau_patient_est`, `joints/tau_patient_true`, `joints/stiffness`, one instance per joint) and
//! `session/assistance`, `session/patient_effort_share`.

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
/// Assistance: norm of the therapy-mode torque [Nm] (a session quantity).
pub const ASSISTANCE: &str = "assistance";
/// Patient share of the task-directed effort [0–1] (a session quantity; NaN outside trials).
pub const PATIENT_EFFORT_SHARE: &str = "patient_effort_share";

/// One time-series entity of a session recording: the quantities one plot group shows, as instances of every row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesGroup {
    /// Entity path.
    pub path: &'static str,
    /// Its quantities, in instance order.
    pub quantities: &'static [&'static str],
    /// One instance per joint and quantity (joint series), or one per quantity (session series).
    pub per_joint: bool,
}

/// `joints/position`: measured and reference joint position [deg].
pub const POSITION: SeriesGroup = SeriesGroup { path: "joints/position", quantities: &[Q, Q_REF], per_joint: true };
/// `joints/torque`: commanded, estimated patient and (simulation only, the last `dof` instances) true patient
/// joint torque [Nm].
pub const TORQUE: SeriesGroup =
    SeriesGroup { path: "joints/torque", quantities: &[TAU_CMD, TAU_PATIENT_EST, TAU_PATIENT_TRUE], per_joint: true };
/// `joints/stiffness`: assistance stiffness per joint [Nm/rad] (changes once per trial).
pub const STIFFNESS_GROUP: SeriesGroup =
    SeriesGroup { path: "joints/stiffness", quantities: &[STIFFNESS], per_joint: true };
/// `session/effort`: assistance [Nm] and the patient's effort share [0-1].
pub const EFFORT: SeriesGroup =
    SeriesGroup { path: "session/effort", quantities: &[ASSISTANCE, PATIENT_EFFORT_SHARE], per_joint: false };
/// Every time-series entity of a session recording (the per-trial points and block markers apart).
pub const SERIES_GROUPS: [SeriesGroup; 4] = [POSITION, TORQUE, STIFFNESS_GROUP, EFFORT];

impl SeriesGroup {
    /// Instances of a full row for `dof` joints.
    pub fn instances(&self, dof: usize) -> usize {
        self.quantities.len() * if self.per_joint { dof } else { 1 }
    }

    /// The instance of `quantity` (of joint `joint` for a joint group, which needs one) in a row of `dof`
    /// joints: quantity-major, `quantity index × dof + joint`. `None`: not one of the group's.
    pub fn instance(&self, quantity: &str, joint: Option<usize>, dof: usize) -> Option<usize> {
        let k = self.quantities.iter().position(|q| *q == quantity)?;
        match (self.per_joint, joint) {
            (true, Some(j)) if j < dof => Some(k * dof + j),
            (false, None) => Some(k),
            _ => None,
        }
    }

    /// The legend name of every instance for the joints `joints` (in the model's order): `<joint> <quantity>
    /// [<unit>]` (e.g. `elbow_flexion q_ref [deg]`), or `<quantity> [<unit>]` with spaces for a session group
    /// (`patient effort share [0-1]`).
    pub fn names(&self, joints: &[String]) -> Vec<String> {
        self.quantities
            .iter()
            .flat_map(|&quantity| {
                let unit = series_unit(quantity);
                if self.per_joint {
                    joints.iter().map(|j| format!("{j} {quantity} [{unit}]")).collect::<Vec<_>>()
                } else {
                    vec![format!("{} [{unit}]", quantity.replace('_', " "))]
                }
            })
            .collect()
    }
}

/// The unit of a series quantity as the recording stores and names it (`deg`, `Nm`, `Nm/rad`, `0-1`).
pub fn series_unit(quantity: &str) -> &'static str {
    match quantity {
        Q | Q_REF => "deg",
        STIFFNESS => "Nm/rad",
        PATIENT_EFFORT_SHARE => "0-1",
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
