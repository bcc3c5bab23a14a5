//! The virtual stroke patient strapped into the exoskeleton.
//!
//! # Model (per joint, once per control period)
//! ```text
//! τ_patient = τ_voluntary + τ_synergy + τ_reflex + τ_tremor + τ_passive
//! ```
//! - **Voluntary** (weakness, delay, minimum-jerk): on [`Patient::set_target`] the patient plans a minimum-jerk
//!   movement (Flash & Hogan 1985, J Neurosci 5(7)) to the goal (as its skill allows: see "Skill" below), starting one sensorimotor delay later
//!   (reaction time; until then it keeps doing what it did). From rest, or after the previous movement ended,
//!   the plan starts at rest where it perceives the arm (Hoff & Arbib 1993, J Mot Behav 25(3)); goal and plan
//!   stay inside the patient's passive range of motion (nobody plans beyond it); the drive engages
//!   smoothly from the torque exerted then (over 150 ms); a target changed mid-movement is re-planned from the
//!   current plan's state (quintic with the same position, velocity and acceleration), so the command has no jump.
//!   It tracks the plan with an internal model of the limb it moves (arm + exoskeleton inertia `M(q)` incl.
//!   rotor inertia; its own arm's gravity and passive tissue torque, both × `internal_model_gain`):
//!   `u = effort · (k ((1 − s) g_arm + τ_tissue)(q_plan) + M (q̈_plan + ω² e_pos + 2ζω e_vel) + I)`, with the
//!   position error seen `neural.delay` ago (long-latency/voluntary feedback) and the velocity error seen
//!   `neural.reflex_delay` ago (short-latency feedback; latencies after Pruszynski & Scott 2012, Exp Brain Res
//!   218), `ω = 2π·feedback_bandwidth` (computed-torque structure, the same margin on every joint). The internal
//!   model is refreshed at 50 Hz. `u` is saturated at the **capacity** `max_torque × capacity × (1 −
//!   max_capacity_loss × fatigue)` (weakness).
//! - **Support and load adaptation**: `s` is the fraction of its arm's weight the patient expects the
//!   environment (the robot) to carry — people do not push against a support they feel. Before its first
//!   movement the relaxed patient feels it (`S = M q̈ + g_arm − τ_tissue`, projected on the arm's weight); after
//!   that it is learned from movement experience in two rates (Smith, Ghazizadeh & Shadmehr 2006, PLoS Biol
//!   4(6)): the fast load correction `I` (integral of the delayed position error, `İ = M ω²/T_i · e_pos`) is
//!   consolidated into `s` with a 2 s time constant, so a learned load carries over to other postures and
//!   trials; `I` fades at rest (20 s).
//! - **Relaxation**: [`Patient::clear_target`] lets the voluntary torque decay with the muscle deactivation
//!   time constant (50 ms, Thelen 2003, J Biomech Eng 125(1)). Muscle activation (15 ms) is part of the
//!   effective sensorimotor delay and is not modelled separately (as a lag inside the delayed loop it made
//!   the error-augmentation closed loop unstable).
//! - **Flexor synergy**: positive (abducting) voluntary shoulder-abduction torque adds
//!   `abduction_to_elbow_flexion ×` that torque as elbow-flexion torque (Dewald et al. 1995, Brain 118;
//!   Dewald & Beer 2001, Muscle Nerve 24).
//! - **Spasticity**: velocity-dependent stretch reflex (Lance 1980): when the stretch velocity seen
//!   `reflex_delay` seconds ago exceeds the threshold, the reflex drive is `gain × (stretch velocity −
//!   threshold)`, filtered by a first-order activation (`activation_time`) and opposed to the stretch. Gain and
//!   threshold are graded by the Modified Ashworth Scale ([`Mas::reflex_parameters`]).
//! - **Tremor**: Gaussian white noise through a 4th-order 4–8 Hz band-pass, scaled to the profile's RMS torque
//!   (seeded). The band is the project's specification; physiological tremor's mechanical component oscillates at
//!   the segment's `√(K/I)` (Elble 2003), postural hand tremor modally at ≈ 7 Hz (Wade, Gresty & Findley 1982,
//!   Arch Neurol 39(6)); see [`TremorProfile`].
//! - **Passive**: `−k (q − rest) − b q̇` plus an exponential end-of-range torque beyond the passive range
//!   (exponential passive moments after Riener & Edrich 1999, J Biomech 32). Acts without delay.
//!
//! Every active part (voluntary, synergy, reflex, tremor) is bounded by the joint's `max_torque`: a joint with
//! `max_torque = 0` is purely passive.
//!
//! # Skill: what limits the unassisted movement besides strength ([`SkillProfile`])
//! The skill `σ = clamp(x_f + x_s, 0, 1)` is the state of the patient's internal model of the task (below). The
//! profile's deficits are those of the unskilled patient (σ = 0) and shrink with σ:
//! - **Planning error**: the planned goal carries an endpoint bias `(1 − σ) · endpoint_bias` in a fixed direction
//!   per patient, and the intermediate submovement goals an aim (initial direction) error `(1 − σ) · aim_error ·
//!   amplitude` perpendicular to the movement, in a random direction each trial; the last submovement corrects
//!   the aim error (a single-submovement reach keeps it). Both seeded.
//! - **Submovements** (Rohrer et al. 2002, J Neurosci 22(18): recovery = fewer, more blended submovements): a
//!   reach is `1 + round((1 − σ) · submovements)` minimum-jerk submovements to equally spaced sub-goals, each
//!   started from the state of the previous one (no jump) with overlap `σ · blend`; their durations are set so the
//!   reach lasts the requested time. Unskilled: separate speed peaks; skilled: one blended movement.
//! - **Signal-dependent motor noise** (Harris & Wolpert 1998, Nature 394): the voluntary torque is multiplied by
//!   `1 + c ξ`, `ξ` unit-variance Gaussian noise low-passed by two 40 ms lags (seeded),
//!   `c = motor_noise · (1 − σ/2)`; bounded by the capacity.
//!
//! # Trial-to-trial dynamics ([`Patient::end_trial`])
//! - **Slacking** (Emken, Bobrow & Reinkensmeyer 2007, J NeuroEng Rehabil 4:8): the effort follows
//!   `effort ← clamp(f · effort + g · error, min_effort, 1)`; when the robot removes the error the effort
//!   decays geometrically by the forgetting factor `f`; it is full from the error `(1 − f)/g` up.
//! - **Internal model of the task** (two-rate model of Smith, Ghazizadeh & Shadmehr 2006, PLoS Biol 4(6)):
//!   after every trial `x_f ← clamp(A_f x_f + B_f e, 0, 1)`, `x_s ← clamp(A_s x_s + B_s e, 0, 1)` with
//!   `e = min(error / error_scale, 3) · min(1, mean_effort / 0.05)`: the task error the patient experienced
//!   (enlarged by error augmentation, removed by guidance), counted only as far as the patient moved
//!   voluntarily. Defaults `A_f = 0.92, B_f = 0.03, A_s = 0.996, B_s = 0.004` are Smith et al.'s (force-field
//!   adaptation); applying them per reaching trial, the error normalisation and the engagement weight are
//!   modelling choices.
//! - **Capacity growth with dose** (use-dependent, after Reinkensmeyer et al. 2012, J NeuroEng Rehabil 9:20):
//!   after every trial, success or not, `capacity ← capacity + rate · mean_effort · (max_capacity − capacity)`,
//!   where `mean_effort` is the mean relative voluntary torque over the trial: effortless (robot-driven)
//!   repetitions teach nothing; bounded by `max_capacity`.
//! - **Fatigue** (one-compartment simplification of Xia & Frey Law 2008, J Biomech 41(14)), integrated every
//!   period: `dF/dt = rate · u (1 − F) − recovery_rate · (1 − u) F`, with `u` the mean relative voluntary
//!   torque; it recovers at rest ([`Patient::clear_target`]).
//! - **Between sessions** ([`Patient::restore`], [`Patient::rest`]): the expected support learned by the last
//!   trial end is carried over (`PatientState::expected_support`); the patient rests `fatigue.session_gap`
//!   seconds (default one day) before the first period of the resumed session: `F ← F · exp(−recovery_rate ·
//!   gap)`, `x_f ← x_f · exp(−gap / 60 s)`, `x_s ← x_s · exp(−gap / 90 days)` (time constants: modelling choices);
//!   capacity and effort carry over unchanged.
//!
//! The state that persists between sessions is [`PatientState`] (serde; capacity, effort, fatigue, trial
//! counts and the internal model `model_fast`, `model_slow`): save it with [`Patient::state`], resume with
//! [`Patient::restore`].

mod profile;
mod signal;
mod skill;
mod tissue;
mod trial;
mod voluntary;

pub use profile::{
    FatigueProfile, JointProfile, LearningProfile, Mas, NeuralProfile, PatientProfile, SkillProfile, SlackingProfile,
    SpasticityProfile, StretchDirection, SynergyProfile, TremorProfile,
};
pub use trial::{PatientState, TrialOutcome};

use plexo_hal::JointArray;
use plexo_kinematics::Model;

use crate::SimError;
use signal::DelayLine;
use skill::Skill;
use tissue::{Reflex, Tissue, Tremor};
use trial::TrialDynamics;
use voluntary::{Senses, Voluntary};

/// The patient's torque contributions per joint [Nm], positive in the joint's positive direction.
/// This is the TRUE human joint torque (simulation only), for validating effort estimators.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PatientTorques {
    /// Voluntary muscle torque [Nm].
    pub voluntary: JointArray<f64>,
    /// Flexor-synergy torque [Nm].
    pub synergy: JointArray<f64>,
    /// Stretch-reflex (spasticity) torque [Nm].
    pub reflex: JointArray<f64>,
    /// Tremor torque [Nm].
    pub tremor: JointArray<f64>,
    /// Passive tissue torque (stiffness, damping, end of range) [Nm].
    pub passive: JointArray<f64>,
    /// Sum of all the above [Nm]: what the patient applies to the robot's joints.
    pub total: JointArray<f64>,
}

impl PatientTorques {
    fn zeros(dof: usize) -> Self {
        let z = JointArray::splat(dof, 0.0);
        Self { voluntary: z, synergy: z, reflex: z, tremor: z, passive: z, total: z }
    }

    /// The patient's own motor drive per joint [Nm]: voluntary + flexor synergy (the synergy is muscle torque the
    /// voluntary shoulder-abduction command recruits, so it is part of what the patient does, not of the
    /// environment); reflex, tremor and passive tissue excluded. The ground truth of task effort.
    pub fn voluntary_drive(&self) -> JointArray<f64> {
        let mut drive = self.voluntary;
        for (d, s) in drive.iter_mut().zip(self.synergy.iter()) {
            *d += s;
        }
        drive
    }

    /// Active (muscle) torque [Nm]: everything except the passive part.
    pub fn active(&self, joint: usize) -> f64 {
        self.voluntary[joint] + self.synergy[joint] + self.reflex[joint] + self.tremor[joint]
    }
}

/// The virtual patient. Built by the plants from a [`PatientProfile`]; reach it with `plant.patient()` /
/// `plant.patient_mut()`.
#[derive(Clone, Debug)]
pub struct Patient {
    profile: PatientProfile,
    dof: usize,
    dt: f64,
    steps: u64,
    /// Maximum voluntary torque per joint at full capacity [Nm]; bounds every active torque.
    max_torque: JointArray<f64>,
    /// Flexor synergy: (shoulder-abduction joint, elbow joint, elbow-flexion torque per abduction torque).
    synergy: Option<(usize, usize, f64)>,
    /// Short-latency (stretch-reflex) delay [periods].
    reflex_delay_steps: usize,
    history: DelayLine,
    voluntary: Voluntary,
    tissue: Tissue,
    reflex: Reflex,
    tremor: Tremor,
    trial: TrialDynamics,
    skill: Skill,
    /// A restored state still has to rest `fatigue.session_gap` before its first period (the next session).
    rest_pending: bool,
    /// The voluntary command of the last period before motor noise [Nm] (relaxation and the onset of a new
    /// movement start from it, so the noise is not applied twice).
    command: JointArray<f64>,
    torques: PatientTorques,
}

/// Seed offset of the skill's random parts (planning error, motor noise), so they are independent of the tremor.
const SKILL_SEED: u64 = 0x5EED_5C11_1A8B_0001;

impl Patient {
    /// Builds the patient for a robot.
    ///
    /// - `robot`: the robot's kinematic model without the arm; `loaded`: the same with the arm segments attached
    ///   (see [`crate::attach_arm`]); their difference is the patient's internal model of its arm's weight.
    /// - `armature`: reflected rotor inertia per joint [kg m²], part of the inertia the patient moves.
    /// - `dt`: control period [s].
    ///
    /// Errors name the profile and the robot joint missing from it. Not real-time safe (allocates).
    pub fn new(
        profile: &PatientProfile,
        robot: &Model,
        loaded: &Model,
        armature: &[f64],
        dt: f64,
    ) -> Result<Self, SimError> {
        let file = format!("profile `{}`", profile.name);
        profile.validate(&file)?;
        let dof = robot.nv();
        if armature.len() != dof || loaded.nv() != dof {
            return Err(SimError::JointCountMismatch { what: "patient armature", expected: dof, got: armature.len() });
        }
        if !(dt.is_finite() && dt > 0.0) {
            return Err(SimError::InvalidParameter { key: "period".into(), value: dt, allowed: "(0, inf) s" });
        }
        let mut max_torque = JointArray::splat(dof, 0.0);
        let mut tissue = Tissue::new(dof);
        let mut reflex = Reflex::new(dof, profile.spasticity.activation_time, dt);
        for (i, joint) in robot.joints().iter().enumerate() {
            let jp = profile
                .joints
                .get(&joint.name)
                .ok_or_else(|| SimError::ProfileMissingJoint { file: file.clone(), joint: joint.name.clone() })?;
            let range = profile.range_of(&joint.name).ok_or_else(|| SimError::ProfileJointTables {
                file: file.clone(),
                joint: joint.name.clone(),
                missing: "[spec.range_of_motion]",
            })?;
            max_torque[i] = jp.max_torque;
            tissue.set_joint(i, jp, range);
            reflex.set_joint(i, jp);
        }
        let synergy = match (robot.joint_index("shoulder_abduction"), robot.joint_index("elbow_flexion")) {
            (Some(a), Some(e)) if profile.synergy.abduction_to_elbow_flexion > 0.0 => {
                Some((a, e, profile.synergy.abduction_to_elbow_flexion))
            }
            _ => None,
        };
        let voluntary = Voluntary::new(&profile.neural, robot, loaded, armature, dt);
        Ok(Self {
            profile: profile.clone(),
            dof,
            dt,
            steps: 0,
            max_torque,
            synergy,
            reflex_delay_steps: (profile.neural.reflex_delay / dt).round() as usize,
            history: DelayLine::new(voluntary.history_len(), dof),
            voluntary,
            tissue,
            reflex,
            tremor: Tremor::new(&profile.tremor, dof, 1.0 / dt, profile.seed),
            trial: TrialDynamics::new(profile),
            skill: Skill::new(&profile.skill, &max_torque, dt, profile.seed ^ SKILL_SEED),
            rest_pending: false,
            command: JointArray::splat(dof, 0.0),
            torques: PatientTorques::zeros(dof),
        })
    }

    /// The profile the patient was built from.
    pub fn profile(&self) -> &PatientProfile {
        &self.profile
    }

    /// Number of joints.
    pub fn dof(&self) -> usize {
        self.dof
    }

    /// Patient time [s] (advances with the plant).
    pub fn time(&self) -> f64 {
        self.steps as f64 * self.dt
    }

    /// Sets the current movement target: the patient plans a minimum-jerk movement to `goal` [rad] lasting
    /// `duration` [s], starting one sensorimotor delay from now (see the module docs for how it starts and how a
    /// previous target is replaced). Replaces any previous target.
    /// Real-time safe (no allocation).
    pub fn set_target(&mut self, goal: &[f64], duration: f64) -> Result<(), SimError> {
        if goal.len() != self.dof {
            return Err(SimError::JointCountMismatch { what: "target", expected: self.dof, got: goal.len() });
        }
        if let Some(i) = goal.iter().position(|g| !g.is_finite()) {
            return Err(SimError::InvalidParameter {
                key: format!("set_target.goal[{i}]"),
                value: goal[i],
                allowed: "finite [rad]",
            });
        }
        if !(duration.is_finite() && duration > 0.0) {
            return Err(SimError::InvalidParameter {
                key: "set_target.duration".into(),
                value: duration,
                allowed: "(0, inf) s",
            });
        }
        let sigma = self.trial.state.skill();
        self.voluntary.set_target(goal, duration, self.time(), &self.history, &self.tissue, &mut self.skill, sigma);
        self.trial.start_trial();
        Ok(())
    }

    /// Clears the target: the patient rests — its voluntary torque decays with the deactivation time constant,
    /// fatigue recovers. Real-time safe.
    pub fn clear_target(&mut self) {
        self.voluntary.clear_target(self.command);
    }

    /// The current target `(goal [rad], duration [s])`, if any.
    pub fn target(&self) -> Option<(&[f64], f64)> {
        self.voluntary.target()
    }

    /// The planned (minimum-jerk) position of each joint now [rad], if a target is set.
    pub fn planned_position(&self) -> Option<JointArray<f64>> {
        self.voluntary.planned_position(self.time(), &self.tissue)
    }

    /// Ends a trial: updates effort (slacking), capacity (dose) and the internal model (skill) from the outcome
    /// (`error`: the task error the patient experienced [rad]) and the effort spent during the trial. Returns the
    /// new state. Real-time safe.
    pub fn end_trial(&mut self, outcome: &TrialOutcome) -> Result<PatientState, SimError> {
        let state = self.trial.end_trial(outcome)?;
        self.trial.state.expected_support = Some(self.voluntary.expected_support());
        Ok(PatientState { expected_support: self.trial.state.expected_support, ..state })
    }

    /// Mean relative voluntary torque (0–1) since the trial began (the last `set_target` or `end_trial`).
    pub fn mean_trial_effort(&self) -> f64 {
        self.trial.mean_trial_effort()
    }

    /// Capacity, effort, fatigue and trial counts.
    pub fn state(&self) -> &PatientState {
        &self.trial.state
    }

    /// Resumes a saved state, taken as the end of the previous session, including the support the patient
    /// learned to expect (if saved). The state reads back exactly as saved;
    /// before the first period that follows, the patient rests `fatigue.session_gap` seconds ([`Patient::rest`]:
    /// fatigue recovers, the fast internal-model process decays). The noise generators are re-seeded from the
    /// profile seed and the trial count, so a resumed run is reproducible. Errors name the field at fault.
    pub fn restore(&mut self, state: PatientState) -> Result<(), SimError> {
        self.trial.restore(state)?;
        if let Some(support) = state.expected_support {
            self.voluntary.restore_support(support);
        }
        let seed = self.profile.seed ^ state.trials.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.tremor.reseed(seed);
        self.skill.reseed(seed ^ SKILL_SEED);
        self.rest_pending = true;
        Ok(())
    }

    /// Rest of `seconds` [s] without movement, e.g. between sessions: fatigue recovers by the rest law
    /// `dF/dt = −recovery_rate · F`, the fast process of the internal model decays (60 s), the slow one barely
    /// (90 days). Cancels the rest a [`Patient::restore`] would apply. Errors on a negative or non-finite time.
    pub fn rest(&mut self, seconds: f64) -> Result<(), SimError> {
        if !(seconds.is_finite() && seconds >= 0.0) {
            return Err(SimError::InvalidParameter {
                key: "rest.seconds".into(),
                value: seconds,
                allowed: "[0, inf) s",
            });
        }
        self.trial.rest(seconds);
        self.rest_pending = false;
        Ok(())
    }

    /// Skill in [0, 1]: the fraction of the task its internal model has learned (see [`PatientState::skill`]).
    pub fn skill(&self) -> f64 {
        self.trial.state.skill()
    }

    /// Maximum voluntary torque of joint `i` right now [Nm]: `max_torque × capacity × (1 − loss × fatigue)`.
    pub fn capacity_torque(&self, i: usize) -> f64 {
        let (capacity, unfatigued) = self.trial.strength();
        self.max_torque[i] * capacity * unfatigued
    }

    /// The fraction of its arm's weight the patient expects the environment to carry during movements (1 = it
    /// expects full support and does not lift its arm itself; negative = it expects its arm heavier than its
    /// internal model). Simulation only.
    pub fn expected_support(&self) -> f64 {
        self.voluntary.expected_support()
    }

    /// The torques of the last step [Nm] (true values, simulation only).
    pub fn torques(&self) -> &PatientTorques {
        &self.torques
    }

    /// Passive torque of joint `i` at `q` [rad], `v` [rad/s]: stiffness, damping and end-of-range [Nm].
    pub fn passive_torque(&self, i: usize, q: f64, v: f64) -> f64 {
        self.tissue.passive_torque(i, q, v)
    }

    /// Reflex drive of joint `i` for velocity `v` [rad/s] before activation filtering [Nm]: zero at or below
    /// the velocity threshold.
    pub fn reflex_drive(&self, i: usize, v: f64) -> f64 {
        self.reflex.drive(i, v)
    }

    /// Sets the state history to a constant `q`, `v` (after the plant state was set directly).
    pub(crate) fn reset_history(&mut self, q: &[f64], v: &[f64]) {
        self.history.fill(q, v);
        self.reflex.reset();
    }

    /// One control period: takes the true joint state `q` [rad], `v` [rad/s] and returns the patient's torques
    /// [Nm]. Real-time safe (no allocation).
    pub(crate) fn step(&mut self, q: &[f64], v: &[f64]) -> &PatientTorques {
        if self.rest_pending {
            self.trial.rest(self.profile.fatigue.session_gap);
            self.rest_pending = false;
        }
        self.history.push(q, v);
        let n = self.dof;

        // Voluntary (the voluntary torque of the last period is still needed).
        let mut capacity = JointArray::splat(n, 0.0);
        for (i, c) in capacity.iter_mut().enumerate() {
            *c = self.capacity_torque(i);
        }
        let senses = Senses {
            t: self.time(),
            steps: self.steps,
            history: &self.history,
            tissue: &self.tissue,
            capacity: &capacity,
            effort: self.trial.state.effort,
            previous: self.command,
        };
        self.command = self.voluntary.step(&senses);
        self.torques.voluntary = self.command;
        // Signal-dependent motor noise (Harris & Wolpert 1998), within the capacity.
        let sigma = self.trial.state.skill();
        for i in 0..n {
            let noisy = self.torques.voluntary[i] * self.skill.noise_factor(i, sigma);
            self.torques.voluntary[i] = noisy.clamp(-capacity[i], capacity[i]);
        }
        let mut relative_effort = 0.0;
        let mut active_joints = 0usize;
        for i in 0..n {
            if self.max_torque[i] > 0.0 {
                relative_effort += self.torques.voluntary[i].abs() / self.max_torque[i];
                active_joints += 1;
            }
        }
        let u = if active_joints > 0 { (relative_effort / active_joints as f64).min(1.0) } else { 0.0 };

        // Flexor synergy.
        if let Some((abd, elbow, c)) = self.synergy {
            let limit = self.max_torque[elbow];
            self.torques.synergy[elbow] = (c * self.torques.voluntary[abd].max(0.0)).min(limit);
        }

        // Stretch reflex, tremor, passive.
        let (_, v_reflex) = self.history.get(self.reflex_delay_steps);
        let v_reflex = *v_reflex;
        for i in 0..n {
            let limit = self.max_torque[i];
            self.torques.reflex[i] = self.reflex.step(i, v_reflex[i], limit);
            self.torques.tremor[i] = self.tremor.step(i, limit);
            self.torques.passive[i] = self.tissue.passive_torque(i, q[i], v[i]);
            self.torques.total[i] = self.torques.voluntary[i]
                + self.torques.synergy[i]
                + self.torques.reflex[i]
                + self.torques.tremor[i]
                + self.torques.passive[i];
        }

        // Fatigue (continuous) and trial effort bookkeeping.
        self.trial.step(u, self.dt, self.voluntary.has_target());
        self.steps += 1;
        &self.torques
    }
}
