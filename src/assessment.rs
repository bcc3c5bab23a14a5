//! `--assess-rom`: a range-of-motion assessment the robot runs (`plexo sim|run --patient-id ID --assess-rom
//! [FILE]`), which updates the stored patient's measured range of motion from what the robot measured.
//!
//! # Protocol
//!
//! An assessment file (`assets/protocols/rom-assessment.toml`, embedded as `rom-assessment`; [`AssessmentSpec`])
//! lists the joints in the order they are assessed. Each joint gets one **transparent** block (the robot carries
//! its own links and `arm_support` of the arm's weight and adds no stiffness): the patient moves the joint, one
//! at a time, to its low and its high extreme `repetitions` times (on hardware the therapist may move it instead:
//! the robot resists with nothing but friction compensation and the walls). The targets the patient is asked to
//! reach are where the soft zones of the widened walls (below) begin, beyond the stored range; the patient's own
//! range — in simulation the virtual patient's passive tissue, end-of-range stiffness and strength — bounds what
//! it reaches.
//!
//! # Measurement
//!
//! Per trial the analysis thread takes each joint's **held** extremes: the lowest and highest positions the joint
//! stayed at or beyond for at least [`HELD_EXTREME_TIME`] (0.5 s) in total (order statistics of the trial's
//! joint path at 200 Hz; [`crate::telemetry::analysis::held_extremes`]): a spike, a jerk or a tremor peak never
//! counts. A joint's measured range is the lowest held low and the highest held high of its block's trials (the
//! best of the repetitions, as a goniometric active ROM is the best of a few attempts).
//!
//! # Safety
//!
//! - The supervisor's position walls open by at most `widen` [rad] beyond the stored range on each side (hard
//!   range 0..=[`MAX_WIDEN`] = 15°), and never beyond the robot's own limits (the supervisor takes the tighter of
//!   the robot's limits and these walls; [`widened_walls`]). One assessment can therefore move a range end by at
//!   most `widen`: ranges widen gradually, assessment after assessment.
//! - Velocity and torque limits are those of therapy (configuration, robot and the patient's personal limits,
//!   the tightest) scaled by `velocity_scale` and `torque_scale` (both ≤ 1: never looser than therapy).
//! - The widening is explicit: `--assess-rom` (only with `--patient-id`), the file's `widen`; it is printed and
//!   logged before the loop and written into the summary (`assessment` in `<session>.summary.json`).
//! - Every command goes through the same supervisor as in therapy; nothing here touches the tick.
//! - The measured ranges are stored only after a run that **completed** every block (no safety stop, no
//!   signal, no `--trials`/`--duration` limit, no robot error); any other end stores nothing and says why
//!   ([`store_decision`]). The session itself and its trials are stored as any session's.
//! - A held extreme inside the soft wall may have been bounded by the wall, not by the patient: it is flagged
//!   (`at_wall`). Where such a wall was the robot's own limit and the stored end lies beyond it, the stored end
//!   is kept (the robot cannot measure beyond its range).

use std::path::Path;
use std::thread::JoinHandle;

use plexo_controller::{
    AanLaw, BlockSpec, ControllerConfig, DEFAULT_ONSET_DISTANCE, Mode, Posture, Protocol, RomLimit, Space, TargetKind,
    TargetSetSpec,
};
use plexo_hal::JointInfo;
use plexo_kinematics::anthropometrics::ArmAnthropometrics;
use plexo_kinematics::{JointSafetyLimits, Model};
use serde::{Deserialize, Serialize};

use crate::AppError;
use crate::runtime::SessionEnd;
use crate::setup::{self, Loaded, SessionParts};
use crate::store::Store;
use crate::telemetry::analysis::HELD_EXTREME_TIME;
use crate::telemetry::{FinishedTrial, TrialSink};

/// The largest widening of the walls beyond the stored range one assessment may ask for [rad] (15°): three
/// times the goniometer's ±5° error, a quarter of a typical elbow range.
pub const MAX_WIDEN: f64 = 15.0 * std::f64::consts::PI / 180.0;

/// The embedded assessment (`--assess-rom` without a file).
pub const DEFAULT_ASSESSMENT: &str = "rom-assessment";

/// Reach tolerance of an assessment trial [rad]: a target is the wall itself, which a patient pushing into the
/// soft wall rarely gets within 0.02 rad of; a trial that does ends after holding there for `hold`.
const TOLERANCE: f64 = 0.02;

/// An assessment file. See `assets/protocols/rom-assessment.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssessmentSpec {
    /// Name (the session's name starts with it).
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The joints, in the order they are assessed (robot joint names, each once).
    pub joints: Vec<String>,
    /// The posture the other joints hold while one is assessed [rad] (by joint name or one value per joint).
    pub home: Posture,
    /// Low-high pairs per joint, 1..=5.
    pub repetitions: u32,
    /// Planned time of each movement to an extreme [s], 1..=10.
    pub movement_time: f64,
    /// Time to hold each extreme [s], 2·[`HELD_EXTREME_TIME`]..=5 (a trial lasts `movement_time + hold`).
    pub hold: f64,
    /// Rest between trials [s], 0..=30.
    pub rest: f64,
    /// Share of the arm's weight the robot carries [-], 0..=1.
    pub arm_support: f64,
    /// How far the walls may open beyond the stored range on each side [rad], 0..=[`MAX_WIDEN`].
    pub widen: f64,
    /// Velocity limits as a fraction of therapy's [-], 0.2..=1.
    pub velocity_scale: f64,
    /// Torque limits as a fraction of therapy's [-], 0.3..=1.
    pub torque_scale: f64,
}

impl AssessmentSpec {
    /// Parses and validates an assessment file; errors name `file` and the key.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Self, AppError> {
        let spec: Self = toml::from_str(text).map_err(|e| AppError::Config {
            file: file.to_owned(),
            key: "(document)".into(),
            reason: e.to_string(),
        })?;
        spec.validate(file)?;
        Ok(spec)
    }

    fn validate(&self, file: &str) -> Result<(), AppError> {
        let range = |key: &str, v: f64, lo: f64, hi: f64, unit: &str| {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(AppError::Config {
                    file: file.to_owned(),
                    key: key.to_owned(),
                    reason: format!("{v} is outside the allowed range [{lo:.4}, {hi:.4}]{unit}"),
                })
            }
        };
        range("repetitions", f64::from(self.repetitions), 1.0, 5.0, "")?;
        range("movement_time", self.movement_time, 1.0, 10.0, " s")?;
        range("hold", self.hold, 2.0 * HELD_EXTREME_TIME, 5.0, " s")?;
        range("rest", self.rest, 0.0, 30.0, " s")?;
        range("arm_support", self.arm_support, 0.0, 1.0, "")?;
        range("widen", self.widen, 0.0, MAX_WIDEN, " rad (at most 15 degrees beyond the stored range)")?;
        range("velocity_scale", self.velocity_scale, 0.2, 1.0, " (never looser than therapy)")?;
        range("torque_scale", self.torque_scale, 0.3, 1.0, " (never looser than therapy)")?;
        if self.joints.is_empty() {
            return Err(AppError::Config {
                file: file.to_owned(),
                key: "joints".into(),
                reason: "empty: name the joints to assess, in order".into(),
            });
        }
        for (i, j) in self.joints.iter().enumerate() {
            if self.joints[..i].contains(j) {
                return Err(AppError::Config {
                    file: file.to_owned(),
                    key: format!("joints[{i}]"),
                    reason: format!("`{j}` is assessed twice"),
                });
            }
        }
        Ok(())
    }

    /// The therapy protocol the assessment runs: one transparent block per joint (in order) whose targets are the
    /// low and high ends of that joint's range (in [`prepare`]: where the soft walls begin).
    pub fn to_protocol(&self) -> Protocol {
        let target_sets = self
            .joints
            .iter()
            .map(|j| TargetSetSpec {
                name: j.clone(),
                kind: TargetKind::JointRom,
                home: self.home.clone(),
                count: None,
                radius_fraction: None,
                radius_cap: None,
                rom_margin: None,
                joint: Some(j.clone()),
                range_fraction: Some(1.0),
            })
            .collect();
        let blocks = self
            .joints
            .iter()
            .enumerate()
            .map(|(i, j)| BlockSpec {
                name: format!("assess {j}"),
                mode: Mode::Transparent,
                law: AanLaw::Emken,
                space: Space::Joint,
                targets: j.clone(),
                repetitions: self.repetitions,
                movement_time: self.movement_time,
                trial_timeout: self.movement_time + self.hold,
                tolerance: TOLERANCE,
                dwell: self.hold,
                inter_trial_rest: self.rest,
                rest_after: if i + 1 == self.joints.len() { 0.0 } else { self.rest },
                arm_support: self.arm_support,
                error_gain: None,
                progression: false,
                onset_timeout: 0.0,
                onset_distance: DEFAULT_ONSET_DISTANCE,
            })
            .collect();
        Protocol { name: self.name.clone(), description: self.description.clone(), target_sets, blocks }
    }
}

/// An assessment file, or the embedded [`DEFAULT_ASSESSMENT`].
pub fn load(spec: &str) -> Result<Loaded<AssessmentSpec>, AppError> {
    let path = Path::new(spec);
    if path.exists() {
        let source = path.display().to_string();
        let text = crate::files::read_input(path, crate::files::MAX_CONFIG_BYTES)?;
        return Ok(Loaded { value: AssessmentSpec::from_toml_str(&text, &source)?, source });
    }
    if spec == DEFAULT_ASSESSMENT {
        let source = format!("{DEFAULT_ASSESSMENT} (embedded)");
        let text = include_str!("../assets/protocols/rom-assessment.toml");
        return Ok(Loaded { value: AssessmentSpec::from_toml_str(text, &source)?, source });
    }
    Err(AppError::NotFound {
        what: "range-of-motion assessment",
        name: spec.to_owned(),
        hint: "an assessment .toml path (see assets/protocols/rom-assessment.toml), or rom-assessment (embedded)",
    })
}

/// The walls of an assessment per joint: the stored range opened by `widen` [rad] on each side (at most
/// [`MAX_WIDEN`]), never beyond the robot's joint limits (`joints`). Pure.
pub fn widened_walls(stored: &[RomLimit], joints: &[JointInfo], widen: f64) -> Vec<RomLimit> {
    let widen = widen.clamp(0.0, MAX_WIDEN);
    stored
        .iter()
        .zip(joints)
        .map(|(r, j)| RomLimit { min: (r.min - widen).max(j.position_min), max: (r.max + widen).min(j.position_max) })
        .collect()
}

/// Whether a run that ended with `end` may store its measurement: only a run that completed every block.
pub fn store_decision(end: &SessionEnd) -> Result<(), String> {
    match end {
        SessionEnd::Completed => Ok(()),
        other => Err(format!(
            "the assessment did not complete ({other}): nothing is stored, the patient's range of motion is unchanged"
        )),
    }
}

/// One joint of a prepared assessment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AssessedJoint {
    /// Robot joint name.
    pub joint: String,
    /// Index in the robot's joints.
    #[serde(skip)]
    pub index: usize,
    /// The protocol block that assesses it.
    pub block: usize,
    /// The stored range before the assessment [rad].
    pub stored_rad: [f64; 2],
    /// The supervisor's effective position limits during the assessment [rad] (walls ∩ robot limits).
    pub walls_rad: [f64; 2],
    /// Width of the soft wall inside each limit [rad].
    pub wall_width_rad: f64,
    /// Velocity limit during the assessment, and in therapy [rad/s].
    pub velocity_max_rad_s: [f64; 2],
    /// Torque limit during the assessment, and in therapy [Nm].
    pub torque_max_nm: [f64; 2],
    /// The measured range [rad] (after the run).
    pub measured_rad: Option<[f64; 2]>,
    /// Whether each measured end lies inside the soft wall (the wall may have bounded it).
    pub at_wall: [bool; 2],
    /// The range stored [rad] (after a completed run).
    pub new_rad: Option<[f64; 2]>,
}

/// A prepared assessment: its joints, walls and limits, and (while the session runs) the collector of the
/// analysis thread's finished trials.
pub struct AssessmentRun {
    /// Where the assessment file came from.
    pub source: String,
    /// The widening asked for [rad].
    pub widen: f64,
    /// The assessed joints, in order.
    pub joints: Vec<AssessedJoint>,
    collector: Option<JoinHandle<Vec<FinishedTrial>>>,
    trials: Vec<FinishedTrial>,
    decision: Option<Result<(), String>>,
}

/// Builds an assessment session: the protocol of `assessment`, the supervisor's walls opened by its `widen`
/// beyond `stored` (the patient's stored range, one per robot joint), velocity and torque limits of therapy
/// (configuration, `joints`, `personal`) scaled down. Prints and logs the walls and limits. Not real-time safe.
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    model: &Model,
    controller: &Loaded<ControllerConfig>,
    assessment: &Loaded<AssessmentSpec>,
    arm: &ArmAnthropometrics,
    stored: &[RomLimit],
    personal: &[JointSafetyLimits],
    joints: &[JointInfo],
) -> Result<(Loaded<Protocol>, SessionParts, AssessmentRun), AppError> {
    let spec = &assessment.value;
    let protocol = Loaded { value: spec.to_protocol(), source: assessment.source.clone() };
    let mut assessed = Vec::with_capacity(spec.joints.len());
    for (block, name) in spec.joints.iter().enumerate() {
        let index = model.joints().iter().position(|j| &j.name == name).ok_or_else(|| AppError::Config {
            file: assessment.source.clone(),
            key: format!("joints[{block}]"),
            reason: format!("`{name}` is not a joint of the robot ({})", joint_names(model)),
        })?;
        assessed.push((name.clone(), index, block));
    }
    // Therapy's limits: the session as therapy would build it on the stored range.
    let therapy = setup::build_session(model, controller, &protocol, arm, stored, personal, joints)?.supervisor;
    // Only the assessed joints' walls open; every other joint keeps the stored range.
    let mut walls = widened_walls(stored, joints, spec.widen);
    for (j, w) in walls.iter_mut().enumerate() {
        if !assessed.iter().any(|(_, index, _)| *index == j) {
            *w = stored[j];
        }
    }
    let scaled: Vec<JointSafetyLimits> = (0..model.nv())
        .map(|j| JointSafetyLimits {
            max_velocity: Some(therapy.velocity_max(j) * spec.velocity_scale),
            max_torque: Some(therapy.torque_max(j) * spec.torque_scale),
        })
        .collect();
    let mut parts = setup::build_session(model, controller, &protocol, arm, &walls, &scaled, joints)?;
    // The targets: where the soft walls begin (the walls' ends less the wall width), so that the patient is
    // asked to go as far as the joint moves freely, not to press into the wall's spring (whose stored energy,
    // released with the patient's effort at the trial's end, threw the light shoulder rotation past its
    // velocity limit in simulation).
    let aims: Vec<RomLimit> = walls
        .iter()
        .enumerate()
        .map(|(j, w)| {
            let (lo, hi) = parts.supervisor.effective_limits(j);
            let width = parts.supervisor.wall_width(j);
            RomLimit { min: (lo + width).max(w.min), max: (hi - width).min(w.max) }
        })
        .collect();
    let aimed = setup::build_session(model, controller, &protocol, arm, &aims, &scaled, joints)?;
    parts.therapy = aimed.therapy;
    parts.blocks = aimed.blocks;
    let joints: Vec<AssessedJoint> = assessed
        .into_iter()
        .map(|(joint, index, block)| {
            let (lo, hi) = parts.supervisor.effective_limits(index);
            AssessedJoint {
                joint,
                index,
                block,
                stored_rad: [stored[index].min, stored[index].max],
                walls_rad: [lo, hi],
                wall_width_rad: parts.supervisor.wall_width(index),
                velocity_max_rad_s: [parts.supervisor.velocity_max(index), therapy.velocity_max(index)],
                torque_max_nm: [parts.supervisor.torque_max(index), therapy.torque_max(index)],
                measured_rad: None,
                at_wall: [false; 2],
                new_rad: None,
            }
        })
        .collect();
    println!(
        "range-of-motion assessment {}: the walls open by at most {:.3} rad ({:.1} deg) beyond the stored range, \
         within the robot's limits; velocity x{}, torque x{} of therapy",
        assessment.source,
        spec.widen,
        spec.widen.to_degrees(),
        spec.velocity_scale,
        spec.torque_scale
    );
    for j in &joints {
        println!(
            "  {:<20} stored [{:.3}, {:.3}] rad -> walls [{:.3}, {:.3}] rad; velocity <= {:.2} rad/s, torque <= {:.1} Nm",
            j.joint,
            j.stored_rad[0],
            j.stored_rad[1],
            j.walls_rad[0],
            j.walls_rad[1],
            j.velocity_max_rad_s[0],
            j.torque_max_nm[0]
        );
        tracing::info!(
            joint = j.joint,
            stored = ?j.stored_rad,
            walls = ?j.walls_rad,
            velocity_max = j.velocity_max_rad_s[0],
            torque_max = j.torque_max_nm[0],
            "assessment walls widened"
        );
    }
    let run = AssessmentRun {
        source: assessment.source.clone(),
        widen: spec.widen,
        joints,
        collector: None,
        trials: Vec::new(),
        decision: None,
    };
    Ok((protocol, parts, run))
}

fn joint_names(model: &Model) -> String {
    model.joints().iter().map(|j| j.name.as_str()).collect::<Vec<_>>().join(", ")
}

impl AssessmentRun {
    /// The sink the analysis thread sends finished trials to: a thread of its own keeps each trial's held
    /// extremes and forwards the trial to `forward` (the patient store's writer). Not real-time safe.
    pub fn tee(&mut self, forward: Option<TrialSink>) -> Result<TrialSink, AppError> {
        let (sink, trials) = crossbeam::channel::unbounded::<FinishedTrial>();
        let thread = std::thread::Builder::new()
            .name("plexo-assessment".into())
            .spawn(move || {
                let mut kept = Vec::new();
                for t in trials {
                    if let Some(f) = &forward {
                        let _ = f.send(t.clone());
                    }
                    if !t.held_extremes_rad.is_empty() {
                        kept.push(t);
                    }
                }
                kept
            })
            .map_err(|e| AppError::Telemetry(format!("cannot start the assessment thread: {e}")))?;
        self.collector = Some(thread);
        Ok(sink)
    }

    /// Waits for the collector (every sender must be gone: the telemetry has finished). Idempotent.
    pub fn collect(&mut self) {
        if let Some(thread) = self.collector.take() {
            match thread.join() {
                Ok(trials) => self.trials = trials,
                Err(_) => tracing::error!("the assessment thread panicked: nothing is measured"),
            }
        }
    }

    /// After the run: the measured range per joint from the collected trials, and whether it may be stored
    /// ([`store_decision`]; a joint without a held extreme also refuses). Returns the summary's `assessment`
    /// section. Not real-time safe.
    pub fn finish(&mut self, end: &SessionEnd) -> serde_json::Value {
        self.collect();
        let mut decision = store_decision(end);
        for j in &mut self.joints {
            let held: Vec<[f64; 2]> = self
                .trials
                .iter()
                .filter(|t| t.row.block == j.block)
                .filter_map(|t| t.held_extremes_rad.get(j.index).copied())
                .filter(|[lo, hi]| lo.is_finite() && hi.is_finite())
                .collect();
            let lo = held.iter().map(|h| h[0]).reduce(f64::min);
            let hi = held.iter().map(|h| h[1]).reduce(f64::max);
            let (Some(lo), Some(hi)) = (lo, hi) else {
                if decision.is_ok() {
                    decision = Err(format!("no held position of {} was measured: nothing is stored", j.joint));
                }
                continue;
            };
            // The supervisor keeps the joint within the walls plus its tolerance; what lies beyond the wall
            // is the wall's compliance, not the patient's range.
            let [wlo, whi] = j.walls_rad;
            let measured = [lo.clamp(wlo, whi), hi.clamp(wlo, whi)];
            j.at_wall = [measured[0] <= wlo + j.wall_width_rad, measured[1] >= whi - j.wall_width_rad];
            j.measured_rad = Some(measured);
            // A wall at the robot's own limit with the stored end beyond it: the robot cannot measure there.
            let new_lo = if j.at_wall[0] && j.stored_rad[0] < wlo { j.stored_rad[0] } else { measured[0] };
            let new_hi = if j.at_wall[1] && j.stored_rad[1] > whi { j.stored_rad[1] } else { measured[1] };
            if new_lo >= new_hi && decision.is_ok() {
                decision = Err(format!("{} measured an empty range [{new_lo:.3}, {new_hi:.3}] rad", j.joint));
            }
            j.new_rad = Some([new_lo, new_hi]);
        }
        if decision.is_err() {
            for j in &mut self.joints {
                j.new_rad = None;
            }
        }
        println!("range-of-motion assessment ({}):", self.source);
        for j in &self.joints {
            match (j.measured_rad, j.new_rad) {
                (Some(m), new) => println!(
                    "  {:<20} stored [{:.3}, {:.3}] rad, walls [{:.3}, {:.3}], measured [{:.3}, {:.3}]{}{}",
                    j.joint,
                    j.stored_rad[0],
                    j.stored_rad[1],
                    j.walls_rad[0],
                    j.walls_rad[1],
                    m[0],
                    m[1],
                    match j.at_wall {
                        [false, false] => String::new(),
                        [lo, hi] => format!(
                            " (at the wall:{}{}; assess again to widen further)",
                            if lo { " low" } else { "" },
                            if hi { " high" } else { "" }
                        ),
                    },
                    new.map_or_else(String::new, |n| format!(" -> new range [{:.3}, {:.3}]", n[0], n[1]))
                ),
                (None, _) => println!("  {:<20} nothing measured", j.joint),
            }
        }
        if let Err(reason) = &decision {
            println!("{reason}");
            tracing::warn!("{reason}");
        }
        let json = serde_json::json!({
            "protocol": self.source,
            "widen_rad": self.widen,
            "held_extreme_time_s": HELD_EXTREME_TIME,
            "joints": self.joints,
            "stored": decision.is_ok(),
            "not_stored_because": decision.as_ref().err(),
        });
        self.decision = Some(decision);
        json
    }

    /// Stores the measured ranges of a run [`Self::finish`] accepted as the patient's new range of motion, with
    /// the history entry naming the session, the assessment and the widening. Does nothing for a run it refused.
    /// Not real-time safe.
    pub fn store(&self, store: &mut Store, patient: &str, session: &str) -> Result<bool, AppError> {
        if !matches!(self.decision, Some(Ok(()))) {
            return Ok(false);
        }
        let mut spec = store.patient(patient)?.spec;
        let mut changes = Vec::new();
        for j in &self.joints {
            let Some(new) = j.new_rad else { continue };
            spec.range_of_motion.insert(j.joint.clone(), new);
            changes.push(format!(
                "{} [{:.3}, {:.3}] -> [{:.3}, {:.3}]",
                j.joint, j.stored_rad[0], j.stored_rad[1], new[0], new[1]
            ));
        }
        spec.validate(&format!("{} (patient {patient})", store.path().display()), "")?;
        let reason = format!(
            "robot assessment {} in session {session} (transparent, walls <= {:.3} rad beyond the stored range): {} rad",
            self.source,
            self.widen,
            changes.join(", ")
        );
        store.update_spec(&spec, &reason)?;
        println!("patient {patient}: range of motion updated from the assessment (recorded in the spec history)");
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(lo: f64, hi: f64) -> JointInfo {
        JointInfo { name: "j".into(), position_min: lo, position_max: hi, velocity_max: 2.0, torque_max: 10.0 }
    }

    /// The walls open by the widening asked for, never by more than 15 degrees, never beyond the robot.
    #[test]
    fn the_walls_widen_by_at_most_the_margin_and_never_beyond_the_robot() {
        let stored = [RomLimit { min: 0.3, max: 1.5 }, RomLimit { min: -0.5, max: 0.9 }];
        let robot = [info(0.0, 2.3), info(-0.55, 1.0)];
        let w = widened_walls(&stored, &robot, 0.1);
        assert!((w[0].min - 0.2).abs() < 1e-12 && (w[0].max - 1.6).abs() < 1e-12);
        assert_eq!((w[1].min, w[1].max), (-0.55, 1.0), "clipped to the robot's limits");
        // A widening above the hard maximum is clipped to it (and the file refuses it: below).
        let w = widened_walls(&stored, &robot, 1.0);
        assert!((w[0].min - (0.3 - MAX_WIDEN)).abs() < 1e-12 && (w[0].max - (1.5 + MAX_WIDEN)).abs() < 1e-12);
        for (r, s) in w.iter().zip(&stored) {
            assert!(s.min - r.min <= MAX_WIDEN + 1e-12 && r.max - s.max <= MAX_WIDEN + 1e-12);
        }
    }

    #[test]
    fn an_assessment_file_that_widens_too_far_or_loosens_therapys_limits_is_refused_naming_the_key() {
        let text = include_str!("../assets/protocols/rom-assessment.toml");
        let spec = AssessmentSpec::from_toml_str(text, "a.toml").unwrap();
        assert!(spec.widen > 0.0 && spec.widen <= MAX_WIDEN);
        for (key, bad) in [("widen", "0.5"), ("velocity_scale", "1.5"), ("torque_scale", "2.0"), ("hold", "0.2")] {
            let edited: String = text
                .lines()
                .map(|l| if l.starts_with(&format!("{key} ")) { format!("{key} = {bad}") } else { l.to_owned() })
                .collect::<Vec<_>>()
                .join("\n");
            let e = AssessmentSpec::from_toml_str(&edited, "a.toml").unwrap_err().to_string();
            assert!(e.contains("a.toml") && e.contains(key), "{key}: {e}");
        }
    }

    /// Only a run that completed every block stores: a safety stop, a fault, a signal, a limit or a robot
    /// error leaves the stored range unchanged.
    #[test]
    fn only_a_completed_assessment_may_store_its_measurement() {
        use plexo_controller::StopReason;
        assert!(store_decision(&SessionEnd::Completed).is_ok());
        for end in [
            SessionEnd::TrialLimit,
            SessionEnd::TimeLimit,
            SessionEnd::OperatorStop,
            SessionEnd::Signal(2),
            SessionEnd::SignalTorqueOff(15),
            SessionEnd::Safety(StopReason::EStop),
            SessionEnd::Robot("drive fault".into()),
        ] {
            let e = store_decision(&end).unwrap_err();
            assert!(e.contains("nothing is stored"), "{end}: {e}");
        }
    }

    #[test]
    fn the_protocol_has_one_transparent_block_per_joint_in_order_aiming_at_the_range_ends() {
        let spec = load(DEFAULT_ASSESSMENT).unwrap().value;
        let p = spec.to_protocol();
        p.validate("generated").unwrap();
        assert_eq!(p.blocks.len(), spec.joints.len());
        for (b, j) in p.blocks.iter().zip(&spec.joints) {
            assert_eq!((b.mode, &b.targets), (Mode::Transparent, j));
            assert!(b.dwell >= 2.0 * HELD_EXTREME_TIME, "a reached extreme is held long enough to count");
        }
        assert!(p.target_sets.iter().all(|s| s.range_fraction == Some(1.0) && s.kind == TargetKind::JointRom));
    }
}
