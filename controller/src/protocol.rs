//! Therapy protocols (`assets/protocols/*.toml`) and the trial sequencer.
//!
//! A protocol is a list of blocks; each block has a mode (and AAN law), a target set, repetitions, a movement
//! duration, a trial timeout, a reach tolerance with a dwell time, and rests. A trial is one minimum-jerk
//! movement from the **measured** posture at trial start to the next target; it ends when the arm stays within
//! the tolerance for the dwell time (success) or at the timeout (failure).
//!
//! [`Session`] turns a protocol into references tick by tick (allocation-free after construction);
//! [`Therapy`] couples a session with a [`Controller`] and applies the per-trial and per-block adaptation.

use plexo_hal::{JointArray, JointCommand, JointState};
use plexo_kinematics::Model;
use serde::{Deserialize, Serialize};

use crate::aan::{AanLaw, AdaptationState, BlockPerformance, ClampedValue, Progression};
use crate::controller::{Controller, Mode, ModeSettings, Space, TrialMetrics};
use crate::error::{ControllerError, check_range};
use crate::safety::RomLimit;
use crate::tasks::{MinimumJerk, TaskReference, center_out_targets, joint_rom_targets};

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
    /// Home posture [rad], one value per joint (the centre of center-out, the rest posture of ROM exercises).
    pub home: Vec<f64>,
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

    /// Checks ranges and references (joint counts are checked against the robot in [`Session::new`]).
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
            for (j, h) in s.home.iter().enumerate() {
                check_range(file, &k(&format!("home[{j}]")), *h, -std::f64::consts::PI, std::f64::consts::PI)?;
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

/// A block ready to run: settings and the sequence of trial targets.
#[derive(Clone, Debug)]
pub struct PreparedBlock {
    /// The block's specification.
    pub spec: BlockSpec,
    /// Target posture of each trial, in order [rad].
    pub trial_targets: Vec<JointArray<f64>>,
    /// Center-out radius used [m] (0 for joint ROM sets).
    pub radius: f64,
}

impl PreparedBlock {
    /// The controller settings of this block.
    pub fn settings(&self) -> ModeSettings {
        ModeSettings {
            mode: self.spec.mode,
            law: self.spec.law,
            space: self.spec.space,
            arm_support: self.spec.arm_support,
            error_gain: self.spec.error_gain,
        }
    }
}

/// What happened in a session tick.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SessionEvent {
    /// Nothing new.
    None,
    /// A block started (the controller's mode changes now).
    BlockStarted {
        /// Block index.
        block: usize,
    },
    /// A trial started.
    TrialStarted {
        /// Block index.
        block: usize,
        /// Trial index within the block.
        trial: usize,
    },
    /// A trial ended.
    TrialEnded {
        /// Block index.
        block: usize,
        /// Trial index within the block.
        trial: usize,
        /// True if the target was reached (tolerance held for the dwell time) before the timeout.
        reached: bool,
        /// Time from trial start to the end [s].
        duration: f64,
    },
    /// A block ended.
    BlockEnded {
        /// Block index.
        block: usize,
    },
    /// Every block is done; the reference holds the last posture.
    SessionEnded,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    NotStarted,
    Moving { start: f64 },
    InterTrialRest { until: f64 },
    BlockRest { until: f64 },
    BlockFinished,
    Done,
}

/// The trial sequencer. `step` is allocation-free.
#[derive(Clone, Debug)]
pub struct Session {
    blocks: Vec<PreparedBlock>,
    block: usize,
    trial: usize,
    phase: Phase,
    movement: MinimumJerk,
    hold: JointArray<f64>,
    in_tolerance_since: Option<f64>,
    duration_scale: f64,
    end_reported: bool,
}

impl Session {
    /// Prepares every block of `protocol` for `model` and the patient's ROM (one range per joint; the tighter of
    /// it and the robot's limits applies): computes center-out targets by inverse kinematics of the `handle`
    /// frame and ROM-exercise targets. Not real-time safe.
    pub fn new(protocol: &Protocol, model: &Model, rom: &[RomLimit]) -> Result<Self, ControllerError> {
        let n = model.nv();
        let file = format!("protocol `{}`", protocol.name);
        // A protocol built in code has not been through `from_toml_str`: every block's settings must be valid
        // here, so that switching modes during the session cannot fail.
        protocol.validate(&file)?;
        if rom.len() != n {
            return Err(ControllerError::range("patient ROM", "rom", rom.len(), format!("need {n} ranges")));
        }
        let effective: Vec<RomLimit> = model
            .joints()
            .iter()
            .zip(rom)
            .map(|(j, r)| RomLimit { min: r.min.max(j.limits.lower), max: r.max.min(j.limits.upper) })
            .collect();
        for (i, r) in effective.iter().enumerate() {
            if r.min.partial_cmp(&r.max) != Some(std::cmp::Ordering::Less) {
                return Err(ControllerError::JointMismatch {
                    file: "patient ROM".into(),
                    joint: model.joints()[i].name.clone(),
                    reason: "ROM does not overlap the robot's limits".into(),
                });
            }
        }
        let handle = model.frame_id("handle").ok_or_else(|| ControllerError::UnknownName {
            what: "frame",
            name: "handle".into(),
            available: model.frames().iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", "),
        })?;
        let mut blocks = Vec::with_capacity(protocol.blocks.len());
        for b in &protocol.blocks {
            let set = protocol.target_sets.iter().find(|s| s.name == b.targets).expect("validated reference");
            if set.home.len() != n {
                return Err(ControllerError::range(
                    &file,
                    format!("target_sets ({}).home", set.name),
                    format!("{:?}", set.home),
                    format!("need {n} values (one per joint of `{}`)", model.name()),
                ));
            }
            let (targets, radius) = match set.kind {
                TargetKind::CenterOut => center_out_targets(
                    model,
                    handle,
                    &set.home,
                    &effective,
                    set.count.unwrap_or(8),
                    set.radius_fraction.unwrap_or(0.8),
                    set.radius_cap.unwrap_or(0.15),
                    set.rom_margin.unwrap_or(0.1),
                )?,
                TargetKind::JointRom => {
                    let name = set.joint.as_deref().unwrap_or_default();
                    let j = model.joint_index(name).ok_or_else(|| ControllerError::JointMismatch {
                        file: file.clone(),
                        joint: name.into(),
                        reason: format!("target set `{}`: not a joint of `{}`", set.name, model.name()),
                    })?;
                    let pair = joint_rom_targets(&set.home, &effective, j, set.range_fraction.unwrap_or(0.8))?;
                    (pair.to_vec(), 0.0)
                }
            };
            let home = JointArray::from_slice(&set.home).expect("n <= MAX_JOINTS");
            let mut trial_targets = Vec::new();
            for _ in 0..b.repetitions {
                for t in &targets {
                    trial_targets.push(*t);
                    if set.kind == TargetKind::CenterOut {
                        trial_targets.push(home);
                    }
                }
            }
            blocks.push(PreparedBlock { spec: b.clone(), trial_targets, radius });
        }
        let zero = JointArray::splat(n, 0.0);
        Ok(Self {
            blocks,
            block: 0,
            trial: 0,
            phase: Phase::NotStarted,
            movement: MinimumJerk { start: zero, target: zero, duration: 1.0 },
            hold: zero,
            in_tolerance_since: None,
            duration_scale: 1.0,
            end_reported: false,
        })
    }

    /// The prepared blocks.
    pub fn blocks(&self) -> &[PreparedBlock] {
        &self.blocks
    }

    /// Index of the current block.
    pub fn current_block(&self) -> usize {
        self.block
    }

    /// Index of the current trial within the block.
    pub fn current_trial(&self) -> usize {
        self.trial
    }

    /// True while a trial's movement is under way (false during rests, between blocks and after the end).
    /// Real-time safe.
    pub fn is_moving(&self) -> bool {
        matches!(self.phase, Phase::Moving { .. })
    }

    /// True once every block is done.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// True once the first [`Session::step`] has run. Real-time safe.
    pub fn is_started(&self) -> bool {
        self.phase != Phase::NotStarted
    }

    /// Scale applied to the movement time of the following trials (progression). Real-time safe.
    pub fn set_duration_scale(&mut self, scale: f64) {
        if scale.is_finite() && scale > 0.0 {
            self.duration_scale = scale;
        }
    }

    /// Holds the measured posture (call at enable/resume: the first reference equals the measured state).
    /// Real-time safe.
    pub fn hold_at(&mut self, state: &JointState) {
        self.hold = state.position;
        if let Phase::Moving { .. } = self.phase {
            // An interrupted trial restarts from where the arm is.
            self.phase = Phase::InterTrialRest { until: f64::NEG_INFINITY };
        }
    }

    fn start_trial(&mut self, q: &JointArray<f64>, t: f64) {
        let b = &self.blocks[self.block];
        self.movement = MinimumJerk {
            start: *q,
            target: b.trial_targets[self.trial],
            duration: b.spec.movement_time * self.duration_scale,
        };
        self.in_tolerance_since = None;
        self.phase = Phase::Moving { start: t };
    }

    /// Advances the sequencer at time `t` [s] with the measured state and returns the reference and what
    /// happened. At most one event per tick. Real-time safe (no allocation).
    pub fn step(&mut self, state: &JointState, t: f64) -> (TaskReference, SessionEvent) {
        let q = &state.position;
        match self.phase {
            Phase::NotStarted => {
                self.block = 0;
                self.trial = 0;
                self.hold = *q;
                self.phase = Phase::InterTrialRest { until: t };
                (TaskReference::hold(q), SessionEvent::BlockStarted { block: 0 })
            }
            Phase::InterTrialRest { until } | Phase::BlockRest { until } if t < until => {
                (TaskReference::hold(&self.hold), SessionEvent::None)
            }
            Phase::BlockRest { .. } => {
                self.hold = *q;
                self.phase = Phase::InterTrialRest { until: t };
                (TaskReference::hold(q), SessionEvent::BlockStarted { block: self.block })
            }
            Phase::InterTrialRest { .. } => {
                self.start_trial(q, t);
                let r = self.movement.sample(0.0);
                (r, SessionEvent::TrialStarted { block: self.block, trial: self.trial })
            }
            Phase::Moving { start } => {
                let elapsed = t - start;
                let reference = self.movement.sample(elapsed);
                let spec = &self.blocks[self.block].spec;
                let dist2: f64 = q.iter().zip(self.movement.target.iter()).map(|(a, b)| (a - b) * (a - b)).sum();
                if dist2.sqrt() <= spec.tolerance {
                    self.in_tolerance_since.get_or_insert(t);
                } else {
                    self.in_tolerance_since = None;
                }
                let reached = self.in_tolerance_since.is_some_and(|since| t - since >= spec.dwell);
                if !(reached || elapsed >= spec.trial_timeout) {
                    return (reference, SessionEvent::None);
                }
                let event =
                    SessionEvent::TrialEnded { block: self.block, trial: self.trial, reached, duration: elapsed };
                self.hold = *q;
                self.trial += 1;
                let rest = spec.inter_trial_rest;
                if self.trial < self.blocks[self.block].trial_targets.len() {
                    self.phase = Phase::InterTrialRest { until: t + rest };
                } else {
                    // Block end is reported on the next tick (one event per tick).
                    self.phase = Phase::BlockFinished;
                }
                (TaskReference::hold(q), event)
            }
            Phase::BlockFinished => {
                let block = self.block;
                self.trial = 0;
                if block + 1 >= self.blocks.len() {
                    self.phase = Phase::Done;
                } else {
                    self.block += 1;
                    self.phase = Phase::BlockRest { until: t + self.blocks[block].spec.rest_after };
                }
                (TaskReference::hold(&self.hold), SessionEvent::BlockEnded { block })
            }
            Phase::Done if !self.end_reported => {
                self.end_reported = true;
                (TaskReference::hold(&self.hold), SessionEvent::SessionEnded)
            }
            Phase::Done => (TaskReference::hold(&self.hold), SessionEvent::None),
        }
    }
}

/// A completed trial, as [`Therapy::update`] reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrialRecord {
    /// Block index.
    pub block: usize,
    /// Trial index within the block.
    pub trial: usize,
    /// Target reached in time.
    pub reached: bool,
    /// Controller metrics of the trial.
    pub metrics: TrialMetrics,
}

/// What [`Therapy::update`] returns besides the command.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TherapyEvent {
    /// Nothing new.
    None,
    /// A block started with these settings.
    BlockStarted {
        /// Block index.
        block: usize,
        /// Controller settings now in force.
        settings: ModeSettings,
    },
    /// A trial started.
    TrialStarted {
        /// Block index.
        block: usize,
        /// Trial index.
        trial: usize,
    },
    /// A trial ended (adaptation already applied).
    TrialEnded(TrialRecord),
    /// A block ended; `progression` is set when the block applies the progression rule.
    BlockEnded {
        /// Block index.
        block: usize,
        /// Block performance.
        performance: BlockPerformance,
        /// Progression decision, if applied.
        progression: Option<Progression>,
    },
    /// The session is over; the session ended flag stays set and the reference holds still.
    SessionEnded,
}

/// The controller settings during rests: passive hold of the posture at the end of the trial, full arm support.
pub const REST_HOLD: ModeSettings =
    ModeSettings { mode: Mode::Passive, law: AanLaw::Fixed, space: Space::Joint, arm_support: 1.0, error_gain: None };

/// A session and its controller: one call per tick gives the command for the supervisor. The block's mode acts
/// during each trial's movement; during rests the arm is held ([`REST_HOLD`]).
#[derive(Clone, Debug)]
pub struct Therapy {
    session: Session,
    controller: Controller,
    performance: BlockPerformance,
}

impl Therapy {
    /// Couples a prepared session with a controller.
    pub fn new(session: Session, controller: Controller) -> Self {
        Self { session, controller, performance: BlockPerformance::default() }
    }

    /// The controller (for `report()` to the supervisor, telemetry and the adaptation state).
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// Mutable access to the controller (restore adaptation, change configuration between sessions).
    pub fn controller_mut(&mut self) -> &mut Controller {
        &mut self.controller
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Call before `SafetySupervisor::request_enable`/`request_resume`: the reference holds the measured posture
    /// and the observer restarts, so the first command is the hold torque. Real-time safe.
    pub fn start(&mut self, state: &JointState) {
        self.session.hold_at(state);
        self.controller.start(state);
    }

    /// Snapshot of everything the therapy has learnt — every AAN law's state (Emken stiffness, RBF weights,
    /// tunnel width) and the Krebs progression (assistance and movement-duration scales) — to save at the end of
    /// a session ([`AdaptationState::save`]) and resume the next one from ([`Therapy::resume_from`]).
    /// Not real-time safe (clones).
    pub fn adaptation_state(&self) -> AdaptationState {
        self.controller.adaptation().clone()
    }

    /// Resumes the adaptation of an earlier session: its first trial starts with the saved assistance, not the
    /// configured defaults, and its movements with the saved duration scale. Call before the first
    /// [`Therapy::update`]. Rejects a state of another format version, joint count or RBF basis, or with NaN/Inf
    /// or negative values, naming the field; values outside the current configuration's bounds are clamped and
    /// returned. Not real-time safe.
    pub fn resume_from(&mut self, state: AdaptationState) -> Result<Vec<ClampedValue>, ControllerError> {
        if self.session.is_started() {
            return Err(ControllerError::InvalidRequest {
                action: "resume the adaptation state",
                reason: "the session has already started; resume before the first update".into(),
            });
        }
        let clamped = self.controller.restore_adaptation(state)?;
        self.session.set_duration_scale(self.controller.adaptation().duration_scale);
        Ok(clamped)
    }

    /// One tick: session step, controller update, per-trial/per-block adaptation. Each trial adapts the laws
    /// exactly once, on the trial's own data: the statistics of the rest before a trial are discarded when it
    /// starts, and the trial is closed (per-trial adaptation) before the rest hold takes over. Real-time safe
    /// (no allocation).
    pub fn update(&mut self, state: &JointState, t: f64) -> (JointCommand, TherapyEvent) {
        let (reference, event) = self.session.step(state, t);
        let mut out = TherapyEvent::None;
        match event {
            SessionEvent::BlockStarted { block } => {
                let settings = self.session.blocks[block].settings();
                out = TherapyEvent::BlockStarted { block, settings };
                self.performance = BlockPerformance::default();
                self.session.set_duration_scale(self.controller.adaptation().duration_scale);
            }
            SessionEvent::TrialStarted { block, trial } => {
                // The block's mode acts during the movement only. Its settings were validated when the session
                // was prepared (`Session::new`), so the switch cannot fail.
                self.controller.set_validated_mode(self.session.blocks[block].settings());
                // The rest before the trial must neither adapt a law nor enter the trial's metrics.
                self.controller.reset_trial_statistics();
                out = TherapyEvent::TrialStarted { block, trial };
            }
            SessionEvent::TrialEnded { block, trial, reached, .. } => {
                // Close the trial on its own ticks (the movement), before this tick's rest hold.
                let metrics = self.controller.end_trial();
                self.performance.trials += 1;
                self.performance.successes += u32::from(reached);
                out = TherapyEvent::TrialEnded(TrialRecord { block, trial, reached, metrics });
            }
            _ => {}
        }
        if !self.session.is_moving() && self.controller.mode() != REST_HOLD {
            // Rests, block breaks and the session end: hold the arm where it is with full weight support — a
            // patient who relaxes after a trial must not drop the arm (seen in closed loop in transparent mode).
            // The controller slews the weight support, so the change is smooth.
            self.controller.set_validated_mode(REST_HOLD);
        }
        let command = self.controller.update(state, &reference, t);
        match event {
            SessionEvent::BlockEnded { block } => {
                let progression = if self.session.blocks[block].spec.progression
                    && self.session.blocks[block].spec.mode == Mode::ActiveAssisted
                {
                    Some(self.controller.end_block(&self.performance))
                } else {
                    None
                };
                out = TherapyEvent::BlockEnded { block, performance: self.performance, progression };
            }
            SessionEvent::SessionEnded => out = TherapyEvent::SessionEnded,
            _ => {}
        }
        (command, out)
    }
}
