//! The virtual stroke patient strapped into the exoskeleton.
//!
//! # Model (per joint, once per control period)
//! ```text
//! τ_patient = τ_voluntary + τ_synergy + τ_reflex + τ_tremor + τ_passive
//! ```
//! - **Voluntary** (weakness, delay, minimum-jerk): on [`Patient::set_target`] the patient plans a minimum-jerk
//!   movement (Flash & Hogan 1985, J Neurosci 5(7)) to the goal, starting one sensorimotor delay later
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
//! # Trial-to-trial dynamics ([`Patient::end_trial`])
//! - **Slacking** (Emken, Bobrow & Reinkensmeyer 2007, J NeuroEng Rehabil 4:8): the effort follows
//!   `effort ← clamp(f · effort + g · error, min_effort, 1)`; when the robot removes the error the effort
//!   decays geometrically by the forgetting factor `f`.
//! - **Motor learning** (use-dependent, after Reinkensmeyer et al. 2012, J NeuroEng Rehabil 9:20): after a
//!   successful trial `capacity ← capacity + rate · mean_effort · (max_capacity − capacity)`, where
//!   `mean_effort` is the mean relative voluntary torque over the trial: effortless (robot-driven) success
//!   teaches nothing.
//! - **Fatigue** (one-compartment simplification of Xia & Frey Law 2008, J Biomech 41(14)), integrated every
//!   period: `dF/dt = rate · u (1 − F) − recovery_rate · (1 − u) F`, with `u` the mean relative voluntary
//!   torque; it recovers at rest ([`Patient::clear_target`]).
//!
//! The state that persists between sessions is [`PatientState`] (serde): save it with [`Patient::state`],
//! resume with [`Patient::restore`].

mod profile;
mod signal;

pub use profile::{
    FatigueProfile, JointProfile, LearningProfile, Mas, NeuralProfile, PatientProfile, SlackingProfile,
    SpasticityProfile, StretchDirection, SynergyProfile, TremorProfile,
};

use plexo_hal::{JointArray, MAX_JOINTS};
use plexo_kinematics::{Data, Model};
use rand::{Rng, SeedableRng, rngs::SmallRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::SimError;
use signal::{BandPass, DelayLine, Quintic};

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

    /// Active (muscle) torque [Nm]: everything except the passive part.
    pub fn active(&self, joint: usize) -> f64 {
        self.voluntary[joint] + self.synergy[joint] + self.reflex[joint] + self.tremor[joint]
    }
}

/// What the patient carries from trial to trial and session to session (serde; save and resume it).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientState {
    /// Strength capacity as a fraction of the profile's `max_torque` (raised by learning), ≥ 0.
    pub capacity: f64,
    /// Effort: scale of the voluntary drive (lowered by slacking), in [0, 1].
    pub effort: f64,
    /// Fatigue level, in [0, 1].
    pub fatigue: f64,
    /// Trials completed.
    pub trials: u64,
    /// Trials completed successfully.
    pub successful_trials: u64,
}

/// How a trial ended, as the task/runtime judged it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialOutcome {
    /// The trial's error [rad] (e.g. final or RMS joint-space distance to the target), ≥ 0.
    pub error: f64,
    /// Whether the trial counted as a success.
    pub success: bool,
    /// Trial duration [s], > 0.
    pub duration: f64,
}

/// Per-joint parameters resolved from the profile.
#[derive(Clone, Copy, Debug)]
struct JointParams {
    max_torque: JointArray<f64>,
    k: JointArray<f64>,
    b: JointArray<f64>,
    rest: JointArray<f64>,
    lower: JointArray<f64>,
    upper: JointArray<f64>,
    k_end: JointArray<f64>,
    reflex_gain: JointArray<f64>,
    reflex_threshold: JointArray<f64>,
    /// +1: positive velocity stretches, −1: negative stretches, 0: both.
    stretch_sign: JointArray<f64>,
    armature: JointArray<f64>,
}

/// The patient's internal model: gravity of its arm segments alone, `g_loaded(q) − g_robot(q)`, and the inertia
/// of the limb it moves (arm + exoskeleton), from the plant's kinematic models.
#[derive(Clone, Debug)]
struct InternalModel {
    robot: Model,
    loaded: Model,
    robot_data: Data,
    loaded_data: Data,
}

impl InternalModel {
    fn arm_gravity(&mut self, q: &[f64], out: &mut [f64]) {
        let g_loaded = plexo_kinematics::gravity_torque(&self.loaded, &mut self.loaded_data, q);
        for (o, g) in out.iter_mut().zip(g_loaded.iter()) {
            *o = *g;
        }
        let g_robot = plexo_kinematics::gravity_torque(&self.robot, &mut self.robot_data, q);
        for (o, g) in out.iter_mut().zip(g_robot.iter()) {
            *o -= *g;
        }
    }

    fn mass_matrix(&mut self, q: &[f64], armature: &[f64], out: &mut [[f64; MAX_JOINTS]; MAX_JOINTS]) {
        let m = plexo_kinematics::crba(&self.loaded, &mut self.loaded_data, q);
        for (i, row) in out.iter_mut().enumerate().take(q.len()) {
            for (j, x) in row.iter_mut().enumerate().take(q.len()) {
                *x = m[(i, j)];
            }
            row[i] += armature[i];
        }
    }
}

/// The voluntary movement plan: the current quintic segment and the one it replaced (still needed for the
/// delayed feedback, which compares the arm `delay` seconds ago with the plan at that time).
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// Before `cur.t0`: the previous segment (holding still when the plan started from rest).
    prev: Quintic,
    cur: Quintic,
    goal: JointArray<f64>,
    duration: f64,
    /// The drive's engagement at the start of a new movement (`None` once it replaced a moving plan).
    onset: Option<Onset>,
}

/// Engagement of the voluntary drive at the start of a new movement: from the torque exerted at `t0` (captured
/// then) to the full command, smoothly over [`ONSET_TIME`].
#[derive(Clone, Copy, Debug)]
struct Onset {
    t0: f64,
    /// The movement starts from rest: until `t0` the patient stays relaxed.
    from_rest: bool,
    from: Option<JointArray<f64>>,
}

impl Plan {
    fn eval(&self, i: usize, t: f64) -> (f64, f64, f64) {
        self.segment(t).eval(i, t)
    }

    /// Positions [rad], velocities [rad/s] and accelerations [rad/s²] of all joints at `t` [s].
    fn eval_all(&self, t: f64, q: &mut [f64], v: &mut [f64], a: &mut [f64]) {
        self.segment(t).eval_all(t, q, v, a);
    }

    fn positions(&self, t: f64, q: &mut [f64]) {
        self.segment(t).positions(t, q);
    }

    fn velocities(&self, t: f64, v: &mut [f64]) {
        self.segment(t).velocities(t, v);
    }

    fn segment(&self, t: f64) -> &Quintic {
        if t < self.cur.t0 { &self.prev } else { &self.cur }
    }
}

/// Period of the internal-model refreshes (arm gravity at the plan, inertia at the perceived posture) [s]: 50 Hz;
/// between refreshes the gravity along a 1.5 s reach changes by < 0.1 Nm, the inertia by ~1 %.
const INTERNAL_MODEL_PERIOD: f64 = 0.02;
/// Engagement of the voluntary drive at the start of a movement [s] (minimum-jerk blend from the torque exerted
/// then). A modelling choice: long enough that the drive does not step (≤ 0.1 Nm per 1 ms for an 8 Nm arm-weight
/// command), short against the movement (1.5–3 s).
const ONSET_TIME: f64 = 0.15;
/// Muscle deactivation time constant [s]: the voluntary torque decays this fast when the patient relaxes
/// (Thelen 2003, J Biomech Eng 125(1): 50 ms; activation is faster, 15 ms, and is part of the effective
/// sensorimotor delay of the feedback loop).
const DEACTIVATION_TIME: f64 = 0.05;
/// Time constant [s] with which the fast load correction is consolidated into the expected weight support
/// (two-rate motor adaptation, Smith, Ghazizadeh & Shadmehr 2006, PLoS Biol 4(6)). A modelling choice.
const CONSOLIDATION_TIME: f64 = 2.0;
/// Decay time [s] of the fast load correction at rest (it is forgotten within a few tens of seconds of rest;
/// a modelling choice).
const LOAD_MEMORY_TIME: f64 = 20.0;
/// Low-pass time constant [s] of the support the relaxed patient feels (a modelling choice).
const PROBE_TIME: f64 = 0.05;
/// Below this RMS of the arm's weight torque [Nm] the support cannot be felt or learned (e.g. the arm hangs).
const SUPPORT_MIN_WEIGHT: f64 = 1.0;
/// Lower bound of the expected support: −4 = "five times heavier than the internal model" (the load
/// correction is scaled by the effort, so a slacking patient that still has to lift its arm learns a large
/// expected load).
const SUPPORT_MIN: f64 = -4.0;
/// Steps over which the relaxed arm's acceleration is estimated (10 ms).
const SUPPORT_ACCEL_STEPS: usize = 10;

/// The virtual patient. Built by the plants from a [`PatientProfile`]; reach it with `plant.patient()` /
/// `plant.patient_mut()`.
#[derive(Clone, Debug)]
pub struct Patient {
    profile: PatientProfile,
    dof: usize,
    dt: f64,
    steps: u64,
    p: JointParams,
    synergy: Option<(usize, usize, f64)>,
    delay_steps: usize,
    reflex_delay_steps: usize,
    reflex_alpha: f64,
    history: DelayLine,
    plan: Option<Plan>,
    /// Voluntary torque left over from the last movement, decaying with the deactivation time [Nm].
    relaxing: JointArray<f64>,
    /// Expected weight support: the fraction of its arm's weight the patient expects the environment to carry
    /// during movements, in [`SUPPORT_MIN`, 1] (negative: heavier than its internal model). Felt at rest before
    /// the first movement, then learned from movement experience.
    support: f64,
    /// Whether the patient has moved yet (after that, rest no longer sets the expected support).
    has_moved: bool,
    /// Fast load correction [Nm] (the integral term of the voluntary feedback, in torque per unit effort).
    integral: JointArray<f64>,
    reflex_activation: JointArray<f64>,
    tremor: JointArray<[BandPassSlot; 2]>,
    tremor_input_std: f64,
    rng: SmallRng,
    state: PatientState,
    trial_effort: f64,
    trial_time: f64,
    internal: InternalModel,
    arm_gravity: JointArray<f64>,
    mass: [[f64; MAX_JOINTS]; MAX_JOINTS],
    model_decimation: u64,
    omega: f64,
    zeta: f64,
    relax_decay: f64,
    memory_decay: f64,
    torques: PatientTorques,
}

/// `BandPass` wrapped so it satisfies `JointArray`'s `Copy + Default` bound.
#[derive(Clone, Copy, Debug, Default)]
struct BandPassSlot(BandPass);

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
        let z = JointArray::splat(dof, 0.0);
        let mut p = JointParams {
            max_torque: z,
            k: z,
            b: z,
            rest: z,
            lower: z,
            upper: z,
            k_end: z,
            reflex_gain: z,
            reflex_threshold: z,
            stretch_sign: z,
            armature: z,
        };
        p.armature.copy_from_slice(armature);
        for (i, joint) in robot.joints().iter().enumerate() {
            let jp = profile
                .joints
                .get(&joint.name)
                .ok_or_else(|| SimError::ProfileMissingJoint { file: file.clone(), joint: joint.name.clone() })?;
            p.max_torque[i] = jp.max_torque;
            p.k[i] = jp.passive_stiffness;
            p.b[i] = jp.passive_damping;
            p.rest[i] = jp.rest_position;
            [p.lower[i], p.upper[i]] = profile.range_of(&joint.name).ok_or_else(|| SimError::ProfileJointTables {
                file: file.clone(),
                joint: joint.name.clone(),
                missing: "[spec.range_of_motion]",
            })?;
            p.k_end[i] = jp.end_range_stiffness;
            let (gain, threshold) = jp.reflex();
            p.reflex_gain[i] = gain;
            p.reflex_threshold[i] = threshold;
            p.stretch_sign[i] = match jp.stretch_direction {
                StretchDirection::Positive => 1.0,
                StretchDirection::Negative => -1.0,
                StretchDirection::Both => 0.0,
            };
        }
        let synergy = match (robot.joint_index("shoulder_abduction"), robot.joint_index("elbow_flexion")) {
            (Some(a), Some(e)) if profile.synergy.abduction_to_elbow_flexion > 0.0 => {
                Some((a, e, profile.synergy.abduction_to_elbow_flexion))
            }
            _ => None,
        };
        let delay_steps = (profile.neural.delay / dt).round() as usize;
        let reflex_delay_steps = (profile.neural.reflex_delay / dt).round() as usize;
        let fs = 1.0 / dt;
        let t = &profile.tremor;
        // Two cascaded band-pass biquads (4th order) for a clean 4–8 Hz band.
        let section = if t.high_hz < fs / 2.0 { BandPass::new(t.low_hz, t.high_hz, fs) } else { BandPass::default() };
        let tremor_filter = [BandPassSlot(section), BandPassSlot(section)];
        // Unit-variance white noise through a filter with impulse response h has output variance Σ h²: scale
        // the input so the tremor torque has the profile's RMS exactly (in expectation).
        let gain2 = {
            let mut f = tremor_filter;
            (0..(20.0 * fs) as usize)
                .map(|k| {
                    let x = if k == 0 { 1.0 } else { 0.0 };
                    let mid = f[0].0.step(x);
                    let y = f[1].0.step(mid);
                    y * y
                })
                .sum::<f64>()
        };
        let tremor_input_std = if gain2 > 0.0 { t.amplitude / gain2.sqrt() } else { 0.0 };
        let state = PatientState {
            capacity: profile.learning.initial_capacity,
            effort: profile.slacking.initial_effort,
            fatigue: 0.0,
            trials: 0,
            successful_trials: 0,
        };
        Ok(Self {
            profile: profile.clone(),
            dof,
            dt,
            steps: 0,
            p,
            synergy,
            delay_steps,
            reflex_delay_steps,
            reflex_alpha: 1.0 - (-dt / profile.spasticity.activation_time).exp(),
            history: DelayLine::new(delay_steps.max(reflex_delay_steps + SUPPORT_ACCEL_STEPS) + 1, dof),
            plan: None,
            relaxing: z,
            support: 0.0,
            has_moved: false,
            integral: z,
            reflex_activation: z,
            tremor: JointArray::splat(dof, tremor_filter),
            tremor_input_std,
            rng: SmallRng::seed_from_u64(profile.seed),
            state,
            trial_effort: 0.0,
            trial_time: 0.0,
            internal: InternalModel {
                robot_data: Data::new(robot),
                loaded_data: Data::new(loaded),
                robot: robot.clone(),
                loaded: loaded.clone(),
            },
            arm_gravity: z,
            mass: [[0.0; MAX_JOINTS]; MAX_JOINTS],
            model_decimation: ((INTERNAL_MODEL_PERIOD / dt).round() as u64).max(1),
            omega: core::f64::consts::TAU * profile.neural.feedback_bandwidth,
            zeta: profile.neural.feedback_damping_ratio,
            relax_decay: (-dt / DEACTIVATION_TIME).exp(),
            memory_decay: (-dt / LOAD_MEMORY_TIME).exp(),
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
        let n = self.dof;
        // Nobody plans a movement beyond their own range of motion: a goal outside the passive range is reached
        // as far as the range allows (planning into the end range would also feed forward the end-range tissue
        // torque of a posture the arm cannot take — tens of Nm pushing against it).
        let mut goal_arr = JointArray::splat(n, 0.0);
        for i in 0..n {
            goal_arr[i] = goal[i].clamp(self.p.lower[i], self.p.upper[i]);
        }
        let t0 = self.time() + self.delay_steps as f64 * self.dt;
        // The movement starts one reaction time (the delay) from now; until then the previous plan (or rest)
        // continues. A plan that is still moving then is replaced without a jump: the new segment starts in the
        // state the old plan would have (position, velocity, acceleration). Otherwise the movement starts where the
        // patient perceives the arm (one delay old; replanning from the sensed state, Hoff & Arbib 1993,
        // J Mot Behav 25(3)) and the drive engages smoothly from the torque exerted then.
        let perceived = *self.history.get(self.delay_steps).0;
        let moving = self.plan.filter(|old| t0 < old.cur.t0 + old.cur.duration);
        // A movement that does not continue a moving plan starts from rest at the perceived posture (inside the
        // range): the motion of a relaxed or holding arm is the environment's doing (gravity while the robot is
        // off, the robot moving it), not a voluntary velocity to continue — continuing it would plan an
        // overshoot (a 1.2 rad/s fall into a 2 s plan overshoots by ~0.3 rad).
        let (mut q0, mut v0, mut a0) = (perceived, JointArray::splat(n, 0.0), JointArray::splat(n, 0.0));
        for i in 0..n {
            q0[i] = q0[i].clamp(self.p.lower[i], self.p.upper[i]);
        }
        if let Some(old) = moving {
            for i in 0..n {
                (q0[i], v0[i], a0[i]) = old.eval(i, t0);
            }
        }
        let cur = Quintic::new(t0, duration, &q0, &v0, &a0, &goal_arr);
        let prev = match self.plan {
            Some(old) if t0 < old.cur.t0 => old.prev,
            Some(old) => old.cur,
            None => Quintic::hold(&perceived),
        };
        let onset = match moving {
            Some(old) => old.onset,
            None => Some(Onset { t0, from_rest: self.plan.is_none(), from: None }),
        };
        self.plan = Some(Plan { prev, cur, goal: goal_arr, duration, onset });
        // Refresh the internal model at the plan's start: the last refresh (at 50 Hz) may date from the end of
        // the previous trial, at another posture.
        let start = q0;
        let mut g = self.arm_gravity;
        self.internal.arm_gravity(&start, &mut g);
        self.arm_gravity = g;
        let armature = self.p.armature;
        self.internal.mass_matrix(&start, &armature[..], &mut self.mass);
        self.trial_effort = 0.0;
        self.trial_time = 0.0;
        Ok(())
    }

    /// Clears the target: the patient rests — its voluntary torque decays with the deactivation time constant,
    /// fatigue recovers. Real-time safe.
    pub fn clear_target(&mut self) {
        self.plan = None;
        self.relaxing = self.torques.voluntary;
    }

    /// The current target `(goal [rad], duration [s])`, if any.
    pub fn target(&self) -> Option<(&[f64], f64)> {
        self.plan.as_ref().map(|p| (&p.goal[..], p.duration))
    }

    /// The planned (minimum-jerk) position of each joint now [rad], if a target is set.
    pub fn planned_position(&self) -> Option<JointArray<f64>> {
        let plan = self.plan.as_ref()?;
        let mut q = JointArray::splat(self.dof, 0.0);
        for (i, qi) in q.iter_mut().enumerate() {
            *qi = plan.eval(i, self.time()).0.clamp(self.p.lower[i], self.p.upper[i]);
        }
        Some(q)
    }

    /// Ends a trial: updates effort (slacking), capacity (learning) from the outcome and the effort spent
    /// during the trial. Returns the new state. Real-time safe.
    pub fn end_trial(&mut self, outcome: &TrialOutcome) -> Result<PatientState, SimError> {
        if !(outcome.error.is_finite() && outcome.error >= 0.0) {
            return Err(SimError::InvalidParameter {
                key: "trial.error".into(),
                value: outcome.error,
                allowed: "[0, inf) rad",
            });
        }
        if !(outcome.duration.is_finite() && outcome.duration > 0.0) {
            return Err(SimError::InvalidParameter {
                key: "trial.duration".into(),
                value: outcome.duration,
                allowed: "(0, inf) s",
            });
        }
        let s = &self.profile.slacking;
        let l = &self.profile.learning;
        let mean_effort = self.mean_trial_effort();
        let st = &mut self.state;
        st.effort = (s.forgetting * st.effort + s.error_gain * outcome.error).clamp(s.min_effort, 1.0);
        if outcome.success {
            st.capacity += l.rate * mean_effort * (l.max_capacity - st.capacity).max(0.0);
            st.successful_trials += 1;
        }
        st.trials += 1;
        self.trial_effort = 0.0;
        self.trial_time = 0.0;
        Ok(self.state)
    }

    /// Mean relative voluntary torque (0–1) since the trial began (the last `set_target` or `end_trial`).
    pub fn mean_trial_effort(&self) -> f64 {
        if self.trial_time > 0.0 { self.trial_effort / self.trial_time } else { 0.0 }
    }

    /// Capacity, effort, fatigue and trial counts.
    pub fn state(&self) -> &PatientState {
        &self.state
    }

    /// Resumes a saved state (e.g. from the previous session). The noise generator is re-seeded from the
    /// profile seed and the trial count, so a resumed run is reproducible. Errors name the field at fault.
    pub fn restore(&mut self, state: PatientState) -> Result<(), SimError> {
        let bad = |key: &str, value: f64, allowed| SimError::InvalidParameter {
            key: format!("patient_state.{key}"),
            value,
            allowed,
        };
        if !(state.capacity.is_finite() && (0.0..=2.0).contains(&state.capacity)) {
            return Err(bad("capacity", state.capacity, "[0, 2]"));
        }
        if !(state.effort.is_finite() && (0.0..=1.0).contains(&state.effort)) {
            return Err(bad("effort", state.effort, "[0, 1]"));
        }
        if !(state.fatigue.is_finite() && (0.0..=1.0).contains(&state.fatigue)) {
            return Err(bad("fatigue", state.fatigue, "[0, 1]"));
        }
        self.state = state;
        self.rng = SmallRng::seed_from_u64(self.profile.seed ^ state.trials.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        Ok(())
    }

    /// Maximum voluntary torque of joint `i` right now [Nm]: `max_torque × capacity × (1 − loss × fatigue)`.
    pub fn capacity_torque(&self, i: usize) -> f64 {
        let loss = self.profile.fatigue.max_capacity_loss * self.state.fatigue;
        self.p.max_torque[i] * self.state.capacity * (1.0 - loss)
    }

    /// The fraction of its arm's weight the patient expects the environment to carry during movements (1 = it
    /// expects full support and does not lift its arm itself; negative = it expects its arm heavier than its
    /// internal model). Simulation only.
    pub fn expected_support(&self) -> f64 {
        self.support
    }

    /// The torques of the last step [Nm] (true values, simulation only).
    pub fn torques(&self) -> &PatientTorques {
        &self.torques
    }

    /// Passive torque of joint `i` at `q` [rad], `v` [rad/s]: stiffness, damping and end-of-range [Nm].
    pub fn passive_torque(&self, i: usize, q: f64, v: f64) -> f64 {
        let p = &self.p;
        let mut tau = -p.k[i] * (q - p.rest[i]) - p.b[i] * v;
        // Exponential end-of-range torque with slope k_end at the boundary and a 0.1 rad growth length,
        // capped so an explicit step stays bounded.
        const GROWTH: f64 = 10.0; // [1/rad]
        let cap = 5.0 * p.k_end[i];
        if q > p.upper[i] {
            tau -= (p.k_end[i] / GROWTH * ((GROWTH * (q - p.upper[i])).exp() - 1.0)).min(cap);
        } else if q < p.lower[i] {
            tau += (p.k_end[i] / GROWTH * ((GROWTH * (p.lower[i] - q)).exp() - 1.0)).min(cap);
        }
        tau
    }

    /// Reflex drive of joint `i` for velocity `v` [rad/s] before activation filtering [Nm]: zero at or below
    /// the velocity threshold.
    pub fn reflex_drive(&self, i: usize, v: f64) -> f64 {
        let p = &self.p;
        let stretch = match p.stretch_sign[i] {
            s if s > 0.0 => v,
            s if s < 0.0 => -v,
            _ => v.abs(),
        };
        if stretch <= p.reflex_threshold[i] || p.reflex_gain[i] == 0.0 {
            return 0.0;
        }
        // Opposes the stretching velocity.
        -v.signum() * p.reflex_gain[i] * (stretch - p.reflex_threshold[i])
    }

    /// At rest, before any movement experience: the support the relaxed patient feels, from its arm's perceived
    /// (short-latency) motion and its internal model: `S = M q̈ + g_arm − τ_tissue − τ_voluntary`, projected on
    /// the arm's weight, low-passed over [`PROBE_TIME`].
    fn probe_support(&mut self) {
        let k = SUPPORT_ACCEL_STEPS;
        let (q, v) = self.history.get(self.reflex_delay_steps);
        let (q, v) = (*q, *v);
        let (_, v_before) = self.history.get(self.reflex_delay_steps + k);
        let v_before = *v_before;
        if self.steps.is_multiple_of(self.model_decimation) {
            let mut g = self.arm_gravity;
            self.internal.arm_gravity(&q, &mut g);
            self.arm_gravity = g;
            let armature = self.p.armature;
            self.internal.mass_matrix(&q, &armature[..], &mut self.mass);
        }
        let gain = self.profile.neural.internal_model_gain;
        let (mut sg, mut gg) = (0.0, 0.0);
        for i in 0..self.dof {
            let accel = |j: usize| (v[j] - v_before[j]) / (k as f64 * self.dt);
            let inertial: f64 = (0..self.dof).map(|j| self.mass[i][j] * accel(j)).sum();
            let g = gain * self.arm_gravity[i];
            let held = inertial + g - self.passive_torque(i, q[i], v[i]) - self.torques.voluntary[i];
            sg += held * g;
            gg += g * g;
        }
        if gg < SUPPORT_MIN_WEIGHT * SUPPORT_MIN_WEIGHT {
            return;
        }
        let felt = (sg / gg).clamp(0.0, 1.0);
        self.support += self.dt / PROBE_TIME * (felt - self.support);
    }

    /// The voluntary command of this period under `plan` at time `t` [s] [Nm], saturated at the capacity; also
    /// updates the load adaptation (integral and expected support).
    ///
    /// `u = effort · (k ((1 − s) g_arm + τ_tissue)(q_plan) + M (q̈_plan + ω² e_pos + 2ζω e_vel) + I)` with the
    /// position error `e_pos` seen `neural.delay` ago (long-latency/voluntary feedback), the velocity error
    /// `e_vel` seen `neural.reflex_delay` ago (short-latency feedback; Pruszynski & Scott 2012, Exp Brain Res
    /// 218: short-latency 20–45 ms, long-latency 50–100 ms, voluntary > 100 ms), `k = internal_model_gain`, `s`
    /// the expected support and `I` the fast load correction (`İ = M ω²/T_i · e_pos`, with anti-windup).
    fn voluntary_command(&mut self, plan: &Plan, t: f64) -> JointArray<f64> {
        let n = self.dof;
        let (q_seen, _) = self.history.get(self.delay_steps);
        let q_seen = *q_seen;
        let t_seen = t - self.delay_steps as f64 * self.dt;
        let (_, v_fast) = self.history.get(self.reflex_delay_steps);
        let v_fast = *v_fast;
        let t_fast = t - self.reflex_delay_steps as f64 * self.dt;
        let gain = self.profile.neural.internal_model_gain;
        if self.steps.is_multiple_of(self.model_decimation) {
            let mut q_plan = JointArray::splat(n, 0.0);
            plan.positions(t, &mut q_plan);
            let mut g = self.arm_gravity;
            self.internal.arm_gravity(&q_plan, &mut g);
            self.arm_gravity = g;
            let armature = self.p.armature;
            self.internal.mass_matrix(&q_seen, &armature[..], &mut self.mass);
        }
        let (w, z) = (self.omega, self.zeta);
        let ki = w * w / self.profile.neural.integral_time;
        // The plan now (feed-forward), when the position was seen and when the velocity was seen.
        let (mut q_now, mut v_now, mut a_now) = ([0.0; MAX_JOINTS], [0.0; MAX_JOINTS], [0.0; MAX_JOINTS]);
        let (mut q_ref, mut v_ref) = ([0.0; MAX_JOINTS], [0.0; MAX_JOINTS]);
        plan.eval_all(t, &mut q_now[..n], &mut v_now[..n], &mut a_now[..n]);
        plan.positions(t_seen, &mut q_ref[..n]);
        plan.velocities(t_fast, &mut v_ref[..n]);
        // A re-planned movement to a goal at the end of the range may overshoot it slightly: the plan stops at
        // the range.
        for i in 0..n {
            let (lo, hi) = (self.p.lower[i], self.p.upper[i]);
            if !(lo..=hi).contains(&q_now[i]) {
                (q_now[i], v_now[i], a_now[i]) = (q_now[i].clamp(lo, hi), 0.0, 0.0);
            }
            if !(lo..=hi).contains(&q_ref[i]) {
                (q_ref[i], v_ref[i]) = (q_ref[i].clamp(lo, hi), 0.0);
            }
        }
        let mut acc = [0.0; MAX_JOINTS];
        let mut err = [0.0; MAX_JOINTS];
        for i in 0..n {
            err[i] = q_ref[i] - q_seen[i];
            acc[i] = a_now[i] + w * w * err[i] + 2.0 * z * w * (v_ref[i] - v_fast[i]);
        }
        let load = 1.0 - self.support;
        let effort = self.state.effort;
        let mut command = JointArray::splat(n, 0.0);
        for i in 0..n {
            let cap = self.capacity_torque(i);
            if cap <= 0.0 {
                continue;
            }
            let inertial: f64 = (0..n).map(|j| self.mass[i][j] * acc[j]).sum();
            let tissue = -self.passive_torque(i, q_now[i], v_now[i]);
            let u = effort * (gain * (load * self.arm_gravity[i] + tissue) + inertial + self.integral[i]);
            // Anti-windup: integrate only while not saturated, or when the error unwinds the integral.
            if u.abs() < cap || err[i] * self.integral[i] < 0.0 {
                self.integral[i] += ki * self.mass[i][i] * err[i] * self.dt;
            }
            command[i] = u.clamp(-cap, cap);
        }
        // Two-rate adaptation: the part of the fast correction that lies along the arm's weight is consolidated
        // into the expected support, which carries over to other postures and trials; the command is unchanged
        // by the transfer.
        let (mut ig, mut gg) = (0.0, 0.0);
        for i in 0..n {
            let g = gain * self.arm_gravity[i];
            ig += self.integral[i] * g;
            gg += g * g;
        }
        if gg >= SUPPORT_MIN_WEIGHT * SUPPORT_MIN_WEIGHT {
            let old = self.support;
            self.support = (old - ig / gg * self.dt / CONSOLIDATION_TIME).clamp(SUPPORT_MIN, 1.0);
            for i in 0..n {
                self.integral[i] += (self.support - old) * gain * self.arm_gravity[i];
            }
        }
        command
    }

    /// Sets the state history to a constant `q`, `v` (after the plant state was set directly).
    pub(crate) fn reset_history(&mut self, q: &[f64], v: &[f64]) {
        self.history.fill(q, v);
        self.reflex_activation.fill(0.0);
    }

    /// One control period: takes the true joint state `q` [rad], `v` [rad/s] and returns the patient's torques
    /// [Nm]. Real-time safe (no allocation).
    pub(crate) fn step(&mut self, q: &[f64], v: &[f64]) -> &PatientTorques {
        self.history.push(q, v);
        let t = self.time();
        let n = self.dof;
        // The torques are written in place; the voluntary torque of the last period is still needed.
        let previous = self.torques.voluntary;

        // Voluntary.
        let mut relative_effort = 0.0;
        let mut active_joints = 0usize;
        for x in self.relaxing.iter_mut() {
            *x *= self.relax_decay;
        }
        if let Some(mut plan) = self.plan {
            let reacting_from_rest = plan.onset.is_some_and(|o| o.from_rest && t < o.t0);
            if reacting_from_rest {
                // Still relaxed: it keeps feeling the support (also when it is withdrawn as the movement is cued).
                if !self.has_moved {
                    self.probe_support();
                }
                self.torques.voluntary = self.relaxing;
            } else {
                // From now on the expected support comes from movement experience.
                self.has_moved = true;
                self.torques.voluntary = self.voluntary_command(&plan, t);
            }
            // A new movement engages from the torque exerted at its start; until then (reaction time) the previous
            // regime continues: rest, or holding the previous goal.
            if let Some(onset) = plan.onset.as_mut()
                && t >= onset.t0
            {
                let from = *onset.from.get_or_insert(previous);
                let s = ((t - onset.t0) / ONSET_TIME).min(1.0);
                let blend = s * s * s * (10.0 - 15.0 * s + 6.0 * s * s);
                for i in 0..n {
                    self.torques.voluntary[i] = from[i] + blend * (self.torques.voluntary[i] - from[i]);
                }
                if s >= 1.0 {
                    plan.onset = None;
                }
                self.plan = Some(plan);
            }
        } else {
            // At rest the patient relaxes (deactivation) and the fast load correction fades; before its first
            // movement it feels how much of its arm's weight the environment carries.
            for x in self.integral.iter_mut() {
                *x *= self.memory_decay;
            }
            if !self.has_moved {
                self.probe_support();
            }
            self.torques.voluntary = self.relaxing;
        }
        for i in 0..n {
            if self.p.max_torque[i] > 0.0 {
                relative_effort += self.torques.voluntary[i].abs() / self.p.max_torque[i];
                active_joints += 1;
            }
        }
        let u = if active_joints > 0 { (relative_effort / active_joints as f64).min(1.0) } else { 0.0 };

        // Flexor synergy.
        if let Some((abd, elbow, c)) = self.synergy {
            let limit = self.p.max_torque[elbow];
            self.torques.synergy[elbow] = (c * self.torques.voluntary[abd].max(0.0)).min(limit);
        }

        // Stretch reflex, tremor, passive.
        let (_, v_reflex) = self.history.get(self.reflex_delay_steps);
        let v_reflex = *v_reflex;
        for i in 0..n {
            let limit = self.p.max_torque[i];
            let drive = self.reflex_drive(i, v_reflex[i]);
            self.reflex_activation[i] += self.reflex_alpha * (drive - self.reflex_activation[i]);
            self.torques.reflex[i] = self.reflex_activation[i].clamp(-limit, limit);
            let noise: f64 = self.rng.sample(StandardNormal);
            let [a, b] = &mut self.tremor[i];
            let tremor = b.0.step(a.0.step(self.tremor_input_std * noise));
            self.torques.tremor[i] = tremor.clamp(-limit, limit);
            self.torques.passive[i] = self.passive_torque(i, q[i], v[i]);
            self.torques.total[i] = self.torques.voluntary[i]
                + self.torques.synergy[i]
                + self.torques.reflex[i]
                + self.torques.tremor[i]
                + self.torques.passive[i];
        }

        // Fatigue (continuous) and trial effort bookkeeping.
        let f = &self.profile.fatigue;
        let st = &mut self.state;
        st.fatigue += self.dt * (f.rate * u * (1.0 - st.fatigue) - f.recovery_rate * (1.0 - u) * st.fatigue);
        st.fatigue = st.fatigue.clamp(0.0, 1.0);
        if self.plan.is_some() {
            self.trial_effort += u * self.dt;
            self.trial_time += self.dt;
        }
        self.steps += 1;
        &self.torques
    }
}
