//! The trial sequencer: a [`Protocol`] prepared for a robot and a patient, turned into references tick by tick.
//!
//! A trial is one minimum-jerk movement from the **measured** posture at trial start to the next target; it ends
//! when the arm stays within the tolerance for the dwell time (success) or at the timeout (failure).
//! [`Session`] is allocation-free after construction.

use plexo_hal::{JointArray, JointState};
use plexo_kinematics::Model;

use crate::controller::ModeSettings;
use crate::error::ControllerError;
use crate::protocol::{BlockSpec, Protocol, TargetKind};
use crate::safety::RomLimit;
use crate::tasks::{MinimumJerk, TaskReference, center_out_targets, joint_rom_targets, minimum_jerk_phase_of};

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

/// The plan of one trial — its goal, start and timing — as the reference generator runs it: the single source of
/// truth for the trial's task. The minimum-jerk reference is built from it, the assist-as-needed laws see it
/// through that reference (`start`, `target`, `phase`), and the runtime forwards it to the patient (the virtual
/// patient's `set_target(goal, duration)`), so that robot and patient are asked for the same movement.
/// `duration` is the movement time **after** the progression's duration scale, not the protocol's
/// `movement_time`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrialPlan {
    /// Block index.
    pub block: usize,
    /// Trial index within the block.
    pub trial: usize,
    /// Measured posture at the trial start, where the reference starts [rad].
    pub start: JointArray<f64>,
    /// Goal posture [rad].
    pub goal: JointArray<f64>,
    /// Time at which the movement started [s] (the `t` of the tick that started the trial).
    pub start_time: f64,
    /// Movement duration of the reference [s]: the block's `movement_time` × the duration scale in force.
    pub duration: f64,
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
    /// A trial: `start` is the go cue's time [s]; `origin` the time at which the reference's own clock reads 0
    /// (`None` while a patient-initiated trial waits for the movement onset).
    Moving {
        start: f64,
        origin: Option<f64>,
    },
    InterTrialRest {
        until: f64,
    },
    BlockRest {
        until: f64,
    },
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
    plan: Option<TrialPlan>,
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
            // Joints the protocol does not name rest at neutral, inside the range the target set may use, and
            // center-out reaches leave them there.
            let margin = if set.kind == TargetKind::CenterOut { set.rom_margin.unwrap_or(0.1) } else { 0.0 };
            let range: Vec<(f64, f64)> = effective.iter().map(|r| (r.min + margin, r.max - margin)).collect();
            let names: Vec<&str> = model.joints().iter().map(|j| j.name.as_str()).collect();
            let home = set.home.resolve(&names, &range, &file, &format!("target_sets ({}).home", set.name))?;
            let (targets, radius) = match set.kind {
                TargetKind::CenterOut => center_out_targets(
                    model,
                    handle,
                    &home,
                    &effective,
                    set.count.unwrap_or(8),
                    set.radius_fraction.unwrap_or(0.8),
                    set.radius_cap.unwrap_or(0.15),
                    set.rom_margin.unwrap_or(0.1),
                    // Joints a by-name home leaves out are not exercised: held at their neutral home.
                    &set.home.names(&names).iter().map(|named| !named).collect::<Vec<_>>(),
                )?,
                TargetKind::JointRom => {
                    let name = set.joint.as_deref().unwrap_or_default();
                    let j = model.joint_index(name).ok_or_else(|| ControllerError::JointMismatch {
                        file: file.clone(),
                        joint: name.into(),
                        reason: format!("target set `{}`: not a joint of `{}`", set.name, model.name()),
                    })?;
                    let pair = joint_rom_targets(&home, &effective, j, set.range_fraction.unwrap_or(0.8))?;
                    (pair.to_vec(), 0.0)
                }
            };
            let home = JointArray::from_slice(&home).expect("n <= MAX_JOINTS");
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
            plan: None,
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

    /// The plan of the current trial (from its start until the next trial starts; `None` before the first
    /// trial). The reference of the trial is generated from exactly this plan. Real-time safe.
    pub fn trial_plan(&self) -> Option<&TrialPlan> {
        self.plan.as_ref()
    }

    /// The duration scale the next trial will be planned with [-]. Real-time safe.
    pub fn duration_scale(&self) -> f64 {
        self.duration_scale
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
        let plan = TrialPlan {
            block: self.block,
            trial: self.trial,
            start: *q,
            goal: b.trial_targets[self.trial],
            start_time: t,
            duration: b.spec.movement_time * self.duration_scale,
        };
        // The reference is generated from the plan and nothing else.
        self.movement = MinimumJerk { start: plan.start, target: plan.goal, duration: plan.duration };
        self.plan = Some(plan);
        self.in_tolerance_since = None;
        // Without an onset wait the reference starts at the cue.
        let origin = (self.blocks[self.block].spec.onset_timeout <= 0.0).then_some(t);
        self.phase = Phase::Moving { start: t, origin };
    }

    /// The reference's clock origin [s] for a trial cued at `start` that has no origin yet, at time `t` [s] with
    /// the arm at `q`: the onset of the patient's movement, or the end of the wait. At the onset, the arm has moved
    /// d = (q − q₀)·u towards the goal (u the unit direction from the start q₀ to the goal, A the distance);
    /// the reference then starts from the minimum-jerk phase τ₀ with s(τ₀) = d/A, i.e. where a minimum-jerk
    /// movement of the planned duration T that has covered d would be, so it neither pulls the patient back to
    /// the start nor leads it: origin = t − τ₀·T. `None` while the patient has not started and the wait lasts.
    /// Real-time safe.
    fn reference_origin(&self, q: &JointArray<f64>, start: f64, t: f64) -> Option<f64> {
        let spec = &self.blocks[self.block].spec;
        let m = &self.movement;
        let (mut along, mut distance2) = (0.0, 0.0);
        for j in 0..q.len() {
            let delta = m.target[j] - m.start[j];
            along += (q[j] - m.start[j]) * delta;
            distance2 += delta * delta;
        }
        let distance = distance2.sqrt();
        if distance > 0.0 && along / distance >= spec.onset_distance {
            // The covered fraction is capped at the mid-point: past it the patient is not starting but moving.
            let covered = (along / distance2).min(0.5);
            return Some(t - minimum_jerk_phase_of(covered) * m.duration);
        }
        (t - start >= spec.onset_timeout).then_some(t)
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
            Phase::Moving { start, origin } => {
                let elapsed = t - start;
                let origin = origin.or_else(|| self.reference_origin(q, start, t));
                self.phase = Phase::Moving { start, origin };
                // Waiting for the onset, the reference holds the start (phase 0).
                let reference = self.movement.sample(origin.map_or(0.0, |o| t - o));
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
