//! Therapy protocols (`assets/protocols/*.toml`): what a session is made of.
//!
//! A protocol is a list of blocks; each block has a mode (and AAN law), a target set, repetitions, a movement
//! duration, a trial timeout, a reach tolerance with a dwell time, and rests. [`crate::Session`] turns a protocol
//! into references tick by tick; [`crate::Therapy`] couples a session with a controller.

use serde::{Deserialize, Serialize};

use crate::aan::AanLaw;
use crate::controller::{Mode, Space};
use crate::error::{ControllerError, check_range};

/// Names of the embedded default protocols.
pub const DEFAULT_PROTOCOLS: [&str; 2] = ["center-out", "rom-exercise"];

/// The embedded TOML text of a default protocol by name (`center-out`, `rom-exercise`), for users to copy.
pub fn default_protocol_toml(name: &str) -> Option<&'static str> {
    match name {
        "center-out" => Some(include_str!("../../assets/protocols/center-out.toml")),
        "rom-exercise" => Some(include_str!("../../assets/protocols/rom-exercise.toml")),
        _ => None,
    }
}

/// Kind of target set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// N targets on a horizontal circle around the handle at the home posture, radius scaled to the ROM.
    CenterOut,
    /// One joint between the ends of its ROM, the others at home.
    JointRom,
}

/// A named set of targets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSetSpec {
    /// Name blocks refer to.
    pub name: String,
    /// Kind.
    pub kind: TargetKind,
    /// Home posture [rad] (the centre of center-out, the rest posture of ROM exercises): one value per joint, or
    /// values by joint name so that one protocol serves robots with more joints ([`Posture`]).
    pub home: Posture,
    /// center_out: number of targets, 1..=32.
    #[serde(default)]
    pub count: Option<usize>,
    /// center_out: fraction of the largest radius reachable within the ROM [-], (0, 1].
    #[serde(default)]
    pub radius_fraction: Option<f64>,
    /// center_out: largest radius considered [m], (0, 0.4].
    #[serde(default)]
    pub radius_cap: Option<f64>,
    /// center_out: margin kept from each ROM end [rad], [0, 0.5].
    #[serde(default)]
    pub rom_margin: Option<f64>,
    /// joint_rom: joint name.
    #[serde(default)]
    pub joint: Option<String>,
    /// joint_rom: fraction of the ROM used [-], (0, 1].
    #[serde(default)]
    pub range_fraction: Option<f64>,
}

/// A posture in a protocol [rad]: `[0.25, 0.6, 0.0, 1.3]` (one value per joint of the robot, in its order) or
/// `{ shoulder_abduction = 0.25, elbow_flexion = 1.3 }` (by joint name; a joint not named is at 0 rad — the
/// anatomical neutral of the Plexo convention: arm hanging, forearm and wrist neutral — clamped into the range the
/// target set allows it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Posture {
    /// One value per joint, in the robot's joint order [rad].
    Ordered(Vec<f64>),
    /// Values by joint name [rad].
    Named(std::collections::BTreeMap<String, f64>),
}

impl Posture {
    /// The values named or listed, with a label each (`home[1]`, `home.elbow_flexion`) for range checks.
    fn labelled(&self) -> Vec<(String, f64)> {
        match self {
            Self::Ordered(v) => v.iter().enumerate().map(|(j, x)| (format!("home[{j}]"), *x)).collect(),
            Self::Named(m) => m.iter().map(|(name, x)| (format!("home.{name}"), *x)).collect(),
        }
    }

    /// Which of `joints` the posture names (all of them for a list).
    pub fn names(&self, joints: &[&str]) -> Vec<bool> {
        match self {
            Self::Ordered(_) => vec![true; joints.len()],
            Self::Named(m) => joints.iter().map(|j| m.contains_key(*j)).collect(),
        }
    }

    /// The posture for the robot whose joints are `joints` (names, in order): a joint not named is at 0 rad
    /// clamped into `range[j]` = (min, max) [rad]. Errors name the key: a list of the wrong length, or a name that
    /// is not a joint of the robot. Not real-time safe.
    pub fn resolve(
        &self,
        joints: &[&str],
        range: &[(f64, f64)],
        file: &str,
        key: &str,
    ) -> Result<Vec<f64>, ControllerError> {
        match self {
            Self::Ordered(v) if v.len() == joints.len() => Ok(v.clone()),
            Self::Ordered(v) => Err(ControllerError::range(
                file,
                key,
                format!("{v:?}"),
                format!(
                    "need {} values, one per joint ({}), or a table by joint name",
                    joints.len(),
                    joints.join(", ")
                ),
            )),
            Self::Named(m) => {
                if let Some(unknown) = m.keys().find(|k| !joints.contains(&k.as_str())) {
                    return Err(ControllerError::JointMismatch {
                        file: file.to_owned(),
                        joint: unknown.clone(),
                        reason: format!("{key}: not a joint of the robot ({})", joints.join(", ")),
                    });
                }
                Ok(joints
                    .iter()
                    .zip(range)
                    .map(|(j, &(lo, hi))| m.get(*j).copied().unwrap_or_else(|| 0.0_f64.clamp(lo, hi.max(lo))))
                    .collect())
            }
        }
    }
}

/// One block of trials.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSpec {
    /// Block name (for logs and reports).
    pub name: String,
    /// Therapy mode.
    pub mode: Mode,
    /// AAN law for `active_assisted` (default `emken`).
    #[serde(default = "default_law")]
    pub law: AanLaw,
    /// Space of the passive impedance (default `joint`).
    #[serde(default)]
    pub space: Space,
    /// Target set name.
    pub targets: String,
    /// Repetitions of the whole target set, 1..=100.
    pub repetitions: u32,
    /// Planned movement duration [s], 0.3..=10 (scaled by the progression state).
    pub movement_time: f64,
    /// Trial timeout [s], ≥ movement_time, ≤ 60.
    pub trial_timeout: f64,
    /// Reach tolerance: joint-space distance to the target [rad], 0.005..=0.5.
    pub tolerance: f64,
    /// Time the arm must stay within the tolerance [s], 0..=5.
    pub dwell: f64,
    /// Rest between trials [s], 0..=60.
    pub inter_trial_rest: f64,
    /// Rest after the block [s], 0..=600.
    pub rest_after: f64,
    /// Share of the arm weight the robot carries [-], 0..=1.
    pub arm_support: f64,
    /// Error-augmentation gain [-], 1..=3 (default: configuration).
    #[serde(default)]
    pub error_gain: Option<f64>,
    /// Apply the performance-based progression (Krebs 2003) after this block.
    #[serde(default)]
    pub progression: bool,
    /// Patient-initiated movement: the longest wait for the patient's movement onset after the go cue [s],
    /// 0..=`trial_timeout` − `movement_time` (default 0: the reference starts at the cue). With a wait, the
    /// reference holds the start posture until the arm has moved `onset_distance` towards the goal and then starts
    /// where the patient is on its way; if the patient has not started after the wait, the robot starts the
    /// movement. A reference that starts at the cue leads every patient by its reaction time, and an impedance that
    /// tracks it pulls the arm through that lead (see [`crate::Session`]).
    #[serde(default)]
    pub onset_timeout: f64,
    /// Movement onset: joint-space displacement from the start towards the goal [rad], 0.001..=`tolerance`
    /// (default [`DEFAULT_ONSET_DISTANCE`]); used with `onset_timeout` > 0.
    #[serde(default = "default_onset_distance")]
    pub onset_distance: f64,
}

/// Default [`BlockSpec::onset_distance`] [rad] (0.3°: above encoder noise and tremor at rest, well inside every
/// shipped tolerance).
pub const DEFAULT_ONSET_DISTANCE: f64 = 0.005;

fn default_onset_distance() -> f64 {
    DEFAULT_ONSET_DISTANCE
}

fn default_law() -> AanLaw {
    AanLaw::Emken
}

/// A therapy protocol file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    /// Protocol name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Target sets.
    pub target_sets: Vec<TargetSetSpec>,
    /// Blocks, in order.
    pub blocks: Vec<BlockSpec>,
}

impl Protocol {
    /// Parses a protocol from TOML; `file` names the source in errors. Checks every range and reference.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Self, ControllerError> {
        let p: Protocol = toml::from_str(text)
            .map_err(|e| ControllerError::Parse { file: file.to_owned(), message: e.to_string() })?;
        p.validate(file)?;
        Ok(p)
    }

    /// Reads and parses a protocol file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self, ControllerError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| ControllerError::Io { file: file.clone(), source })?;
        Self::from_toml_str(&text, &file)
    }

    /// A default protocol by name (see [`DEFAULT_PROTOCOLS`]).
    pub fn default_protocol(name: &str) -> Result<Self, ControllerError> {
        let text = default_protocol_toml(name).ok_or_else(|| ControllerError::UnknownName {
            what: "protocol",
            name: name.to_owned(),
            available: DEFAULT_PROTOCOLS.join(", "),
        })?;
        Self::from_toml_str(text, &format!("<embedded default: {name}.toml>"))
    }

    /// Checks ranges and references (joint counts are checked against the robot in [`crate::Session::new`]).
    pub fn validate(&self, file: &str) -> Result<(), ControllerError> {
        if self.blocks.is_empty() {
            return Err(ControllerError::range(file, "blocks", 0, "need at least one [[blocks]]"));
        }
        for (i, s) in self.target_sets.iter().enumerate() {
            let k = |name: &str| format!("target_sets[{i}] ({}).{name}", s.name);
            let need = |v: Option<f64>, key: &str, lo: f64, hi: f64| -> Result<(), ControllerError> {
                match v {
                    Some(x) => check_range(file, &k(key), x, lo, hi),
                    None => Err(ControllerError::range(
                        file,
                        k(key),
                        "missing",
                        format!("required for kind {:?}, range [{lo}, {hi}]", s.kind),
                    )),
                }
            };
            match s.kind {
                TargetKind::CenterOut => {
                    need(s.count.map(|c| c as f64), "count", 1.0, 32.0)?;
                    need(s.radius_fraction, "radius_fraction", 0.05, 1.0)?;
                    need(s.radius_cap, "radius_cap", 0.01, 0.4)?;
                    need(s.rom_margin, "rom_margin", 0.0, 0.5)?;
                }
                TargetKind::JointRom => {
                    if s.joint.is_none() {
                        return Err(ControllerError::range(file, k("joint"), "missing", "required for kind JointRom"));
                    }
                    need(s.range_fraction, "range_fraction", 0.05, 1.0)?;
                }
            }
            for (label, h) in s.home.labelled() {
                check_range(file, &k(&label), h, -std::f64::consts::PI, std::f64::consts::PI)?;
            }
        }
        for (i, b) in self.blocks.iter().enumerate() {
            let k = |name: &str| format!("blocks[{i}] ({}).{name}", b.name);
            if !self.target_sets.iter().any(|s| s.name == b.targets) {
                return Err(ControllerError::UnknownName {
                    what: "target set",
                    name: b.targets.clone(),
                    available: self.target_sets.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
                });
            }
            check_range(file, &k("repetitions"), b.repetitions as f64, 1.0, 100.0)?;
            check_range(file, &k("movement_time"), b.movement_time, 0.3, 10.0)?;
            check_range(file, &k("trial_timeout"), b.trial_timeout, b.movement_time, 60.0)?;
            check_range(file, &k("tolerance"), b.tolerance, 0.005, 0.5)?;
            check_range(file, &k("dwell"), b.dwell, 0.0, 5.0)?;
            check_range(file, &k("inter_trial_rest"), b.inter_trial_rest, 0.0, 60.0)?;
            check_range(file, &k("rest_after"), b.rest_after, 0.0, 600.0)?;
            check_range(file, &k("arm_support"), b.arm_support, 0.0, 1.0)?;
            if let Some(g) = b.error_gain {
                check_range(file, &k("error_gain"), g, 1.0, 3.0)?;
            }
            check_range(file, &k("onset_timeout"), b.onset_timeout, 0.0, b.trial_timeout - b.movement_time)?;
            check_range(file, &k("onset_distance"), b.onset_distance, 0.001, b.tolerance)?;
        }
        Ok(())
    }

    /// Planned duration of the session [s] if every trial takes its movement time plus dwell.
    pub fn nominal_duration(&self) -> f64 {
        self.blocks
            .iter()
            .map(|b| {
                let set = self.target_sets.iter().find(|s| s.name == b.targets);
                let per_rep = match set.map(|s| s.kind) {
                    Some(TargetKind::CenterOut) => 2 * set.and_then(|s| s.count).unwrap_or(0),
                    _ => 2,
                };
                let trials = per_rep as f64 * b.repetitions as f64;
                trials * (b.movement_time + b.dwell + b.inter_trial_rest) + b.rest_after
            })
            .sum()
    }
}
