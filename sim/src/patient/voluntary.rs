//! The patient's voluntary control: the minimum-jerk movement plan, its delayed computed-torque tracking with an
//! internal model of the limb, the drive's onset and relaxation, and the load adaptation (expected support and
//! fast load correction). Models and citations: the [`crate::patient`] module docs.

use plexo_hal::{JointArray, MAX_JOINTS};
use plexo_kinematics::{Data, Model};

use super::profile::NeuralProfile;
use super::signal::{DelayLine, Quintic};
use super::skill::{Skill, Submovements};
use super::tissue::Tissue;

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
pub(super) const SUPPORT_MIN: f64 = -4.0;
/// Steps over which the relaxed arm's acceleration is estimated (10 ms).
const SUPPORT_ACCEL_STEPS: usize = 10;

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
    /// The reach's submovements; `cur` is submovement `next − 1`.
    subs: Submovements,
    next: usize,
    /// Start of submovement `next` [s].
    next_t0: f64,
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

/// What the voluntary controller perceives and may exert in one period.
pub(super) struct Senses<'a> {
    /// Patient time now [s].
    pub t: f64,
    /// Periods since the start (the internal model is refreshed every few).
    pub steps: u64,
    /// The arm's past states.
    pub history: &'a DelayLine,
    /// The passive tissue (range of motion and the tissue torque the internal model predicts).
    pub tissue: &'a Tissue,
    /// Maximum voluntary torque per joint now [Nm] (weakness, capacity, fatigue).
    pub capacity: &'a JointArray<f64>,
    /// Scale of the voluntary drive (slacking), in [0, 1].
    pub effort: f64,
    /// The voluntary torque of the last period [Nm].
    pub previous: JointArray<f64>,
}

/// The voluntary controller: plan, tracking, onset, relaxation and load adaptation.
#[derive(Clone, Debug)]
pub(super) struct Voluntary {
    dof: usize,
    dt: f64,
    /// Voluntary (long-latency) feedback delay [periods].
    delay_steps: usize,
    /// Short-latency feedback delay [periods].
    reflex_delay_steps: usize,
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
    internal: InternalModel,
    /// Reflected rotor inertia per joint [kg m²], part of the inertia the patient moves.
    armature: JointArray<f64>,
    arm_gravity: JointArray<f64>,
    mass: [[f64; MAX_JOINTS]; MAX_JOINTS],
    model_decimation: u64,
    /// Fraction of the arm's weight and tissue torque the internal model predicts.
    internal_model_gain: f64,
    /// Integral time constant of the load adaptation [s].
    integral_time: f64,
    omega: f64,
    zeta: f64,
    relax_decay: f64,
    memory_decay: f64,
}

impl Voluntary {
    /// The voluntary controller of a patient with `neural` parameters, moving the limb of `robot` with the arm
    /// segments (`loaded`) and `armature` [kg m²], at period `dt` [s]. Not real-time safe (allocates).
    pub(super) fn new(neural: &NeuralProfile, robot: &Model, loaded: &Model, armature: &[f64], dt: f64) -> Self {
        let dof = robot.nv();
        let z = JointArray::splat(dof, 0.0);
        let mut arm = z;
        arm.copy_from_slice(armature);
        Self {
            dof,
            dt,
            delay_steps: (neural.delay / dt).round() as usize,
            reflex_delay_steps: (neural.reflex_delay / dt).round() as usize,
            plan: None,
            relaxing: z,
            support: 0.0,
            has_moved: false,
            integral: z,
            internal: InternalModel {
                robot_data: Data::new(robot),
                loaded_data: Data::new(loaded),
                robot: robot.clone(),
                loaded: loaded.clone(),
            },
            armature: arm,
            arm_gravity: z,
            mass: [[0.0; MAX_JOINTS]; MAX_JOINTS],
            model_decimation: ((INTERNAL_MODEL_PERIOD / dt).round() as u64).max(1),
            internal_model_gain: neural.internal_model_gain,
            integral_time: neural.integral_time,
            omega: core::f64::consts::TAU * neural.feedback_bandwidth,
            zeta: neural.feedback_damping_ratio,
            relax_decay: (-dt / DEACTIVATION_TIME).exp(),
            memory_decay: (-dt / LOAD_MEMORY_TIME).exp(),
        }
    }

    /// Periods of joint-state history the controller looks back (delays and the support probe's acceleration
    /// estimate), plus the current one.
    pub(super) fn history_len(&self) -> usize {
        self.delay_steps.max(self.reflex_delay_steps + SUPPORT_ACCEL_STEPS) + 1
    }

    /// The expected weight support (see [`crate::Patient::expected_support`]).
    pub(super) fn expected_support(&self) -> f64 {
        self.support
    }

    /// Takes a learned expected support (from a saved state, checked by the caller): the patient has moved
    /// before, rest no longer sets it.
    pub(super) fn restore_support(&mut self, support: f64) {
        self.support = support;
        self.has_moved = true;
    }

    /// Whether a movement target is set.
    pub(super) fn has_target(&self) -> bool {
        self.plan.is_some()
    }

    /// The current target `(goal [rad], duration [s])`, if any.
    pub(super) fn target(&self) -> Option<(&[f64], f64)> {
        self.plan.as_ref().map(|p| (&p.goal[..], p.duration))
    }

    /// The planned position of each joint at `t` [s], inside the range of motion [rad], if a target is set.
    pub(super) fn planned_position(&self, t: f64, tissue: &Tissue) -> Option<JointArray<f64>> {
        let plan = self.plan.as_ref()?;
        let mut q = JointArray::splat(self.dof, 0.0);
        for (i, qi) in q.iter_mut().enumerate() {
            *qi = tissue.clamp_to_range(i, plan.eval(i, t).0);
        }
        Some(q)
    }

    /// Plans a minimum-jerk movement to `goal` [rad] (checked by the caller) lasting `duration` [s], starting one
    /// delay after `now` [s] (see the module docs of [`crate::patient`]). Real-time safe.
    ///
    /// The reach is planned as the submovements `skill` gives at skill `sigma` (planning error, blending): the
    /// first starts now, each later one re-plans from the state of the current one (position, velocity,
    /// acceleration) when it starts, so blended submovements merge into one speed profile.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn set_target(
        &mut self,
        goal: &[f64],
        duration: f64,
        now: f64,
        history: &DelayLine,
        tissue: &Tissue,
        skill: &mut Skill,
        sigma: f64,
    ) {
        let n = self.dof;
        // Nobody plans a movement beyond their own range of motion: a goal outside the passive range is reached
        // as far as the range allows (planning into the end range would also feed forward the end-range tissue
        // torque of a posture the arm cannot take — tens of Nm pushing against it).
        let mut goal_arr = JointArray::splat(n, 0.0);
        for i in 0..n {
            goal_arr[i] = tissue.clamp_to_range(i, goal[i]);
        }
        let t0 = now + self.delay_steps as f64 * self.dt;
        // The movement starts one reaction time (the delay) from now; until then the previous plan (or rest)
        // continues. A plan that is still moving then is replaced without a jump: the new segment starts in the
        // state the old plan would have (position, velocity, acceleration). Otherwise the movement starts where the
        // patient perceives the arm (one delay old; replanning from the sensed state, Hoff & Arbib 1993,
        // J Mot Behav 25(3)) and the drive engages smoothly from the torque exerted then.
        let perceived = *history.get(self.delay_steps).0;
        let moving = self.plan.filter(|old| t0 < old.cur.t0 + old.cur.duration);
        // A movement that does not continue a moving plan starts from rest at the perceived posture (inside the
        // range): the motion of a relaxed or holding arm is the environment's doing (gravity while the robot is
        // off, the robot moving it), not a voluntary velocity to continue — continuing it would plan an
        // overshoot (a 1.2 rad/s fall into a 2 s plan overshoots by ~0.3 rad).
        let (mut q0, mut v0, mut a0) = (perceived, JointArray::splat(n, 0.0), JointArray::splat(n, 0.0));
        for i in 0..n {
            q0[i] = tissue.clamp_to_range(i, q0[i]);
        }
        if let Some(old) = moving {
            for i in 0..n {
                (q0[i], v0[i], a0[i]) = old.eval(i, t0);
            }
        }
        let mut subs = skill.plan(sigma, &q0, &goal_arr, duration);
        for g in subs.goals.iter_mut().take(subs.count) {
            for i in 0..n {
                g[i] = tissue.clamp_to_range(i, g[i]);
            }
        }
        let cur = Quintic::new(t0, subs.each, &q0, &v0, &a0, &subs.goals[0]);
        let prev = match self.plan {
            Some(old) if t0 < old.cur.t0 => old.prev,
            Some(old) => old.cur,
            None => Quintic::hold(&perceived),
        };
        let onset = match moving {
            Some(old) => old.onset,
            None => Some(Onset { t0, from_rest: self.plan.is_none(), from: None }),
        };
        self.plan =
            Some(Plan { prev, cur, goal: goal_arr, duration, onset, subs, next: 1, next_t0: t0 + subs.interval });
        // Refresh the internal model at the plan's start: the last refresh (at 50 Hz) may date from the end of
        // the previous trial, at another posture.
        let start = q0;
        let mut g = self.arm_gravity;
        self.internal.arm_gravity(&start, &mut g);
        self.arm_gravity = g;
        let armature = self.armature;
        self.internal.mass_matrix(&start, &armature[..], &mut self.mass);
    }

    /// Clears the target: the voluntary torque `exerted` now [Nm] decays with the deactivation time constant.
    pub(super) fn clear_target(&mut self, exerted: JointArray<f64>) {
        self.plan = None;
        self.relaxing = exerted;
    }

    /// One period: the voluntary torque [Nm]. Real-time safe (no allocation).
    pub(super) fn step(&mut self, senses: &Senses) -> JointArray<f64> {
        let t = senses.t;
        let n = self.dof;
        let mut voluntary;
        for x in self.relaxing.iter_mut() {
            *x *= self.relax_decay;
        }
        if let Some(mut plan) = self.plan {
            // The next submovement starts from the current one's state.
            while plan.next < plan.subs.count && t >= plan.next_t0 {
                let t0 = plan.next_t0;
                let (mut q0, mut v0, mut a0) = ([0.0; MAX_JOINTS], [0.0; MAX_JOINTS], [0.0; MAX_JOINTS]);
                plan.cur.eval_all(t0, &mut q0[..n], &mut v0[..n], &mut a0[..n]);
                plan.prev = plan.cur;
                plan.cur = Quintic::new(t0, plan.subs.each, &q0[..n], &v0[..n], &a0[..n], &plan.subs.goals[plan.next]);
                plan.next += 1;
                plan.next_t0 += plan.subs.interval;
            }
            self.plan = Some(plan);
            let reacting_from_rest = plan.onset.is_some_and(|o| o.from_rest && t < o.t0);
            if reacting_from_rest {
                // Still relaxed: it keeps feeling the support (also when it is withdrawn as the movement is cued).
                if !self.has_moved {
                    self.probe_support(senses);
                }
                voluntary = self.relaxing;
            } else {
                // From now on the expected support comes from movement experience.
                self.has_moved = true;
                voluntary = self.command(&plan, senses);
            }
            // A new movement engages from the torque exerted at its start; until then (reaction time) the previous
            // regime continues: rest, or holding the previous goal.
            if let Some(onset) = plan.onset.as_mut()
                && t >= onset.t0
            {
                let from = *onset.from.get_or_insert(senses.previous);
                let s = ((t - onset.t0) / ONSET_TIME).min(1.0);
                let blend = s * s * s * (10.0 - 15.0 * s + 6.0 * s * s);
                for i in 0..n {
                    voluntary[i] = from[i] + blend * (voluntary[i] - from[i]);
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
                self.probe_support(senses);
            }
            voluntary = self.relaxing;
        }
        voluntary
    }

    /// At rest, before any movement experience: the support the relaxed patient feels, from its arm's perceived
    /// (short-latency) motion and its internal model: `S = M q̈ + g_arm − τ_tissue − τ_voluntary`, projected on
    /// the arm's weight, low-passed over [`PROBE_TIME`].
    fn probe_support(&mut self, senses: &Senses) {
        let k = SUPPORT_ACCEL_STEPS;
        let (q, v) = senses.history.get(self.reflex_delay_steps);
        let (q, v) = (*q, *v);
        let (_, v_before) = senses.history.get(self.reflex_delay_steps + k);
        let v_before = *v_before;
        if senses.steps.is_multiple_of(self.model_decimation) {
            let mut g = self.arm_gravity;
            self.internal.arm_gravity(&q, &mut g);
            self.arm_gravity = g;
            let armature = self.armature;
            self.internal.mass_matrix(&q, &armature[..], &mut self.mass);
        }
        let gain = self.internal_model_gain;
        let (mut sg, mut gg) = (0.0, 0.0);
        for i in 0..self.dof {
            let accel = |j: usize| (v[j] - v_before[j]) / (k as f64 * self.dt);
            let inertial: f64 = (0..self.dof).map(|j| self.mass[i][j] * accel(j)).sum();
            let g = gain * self.arm_gravity[i];
            let held = inertial + g - senses.tissue.passive_torque(i, q[i], v[i]) - senses.previous[i];
            sg += held * g;
            gg += g * g;
        }
        if gg < SUPPORT_MIN_WEIGHT * SUPPORT_MIN_WEIGHT {
            return;
        }
        let felt = (sg / gg).clamp(0.0, 1.0);
        self.support += self.dt / PROBE_TIME * (felt - self.support);
    }

    /// The voluntary command of this period under `plan` [Nm], saturated at the capacity; also updates the load
    /// adaptation (integral and expected support).
    ///
    /// `u = effort · (k ((1 − s) g_arm + τ_tissue)(q_plan) + M (q̈_plan + ω² e_pos + 2ζω e_vel) + I)` with the
    /// position error `e_pos` seen `neural.delay` ago (long-latency/voluntary feedback), the velocity error
    /// `e_vel` seen `neural.reflex_delay` ago (short-latency feedback; Pruszynski & Scott 2012, Exp Brain Res
    /// 218: short-latency 20–45 ms, long-latency 50–100 ms, voluntary > 100 ms), `k = internal_model_gain`, `s`
    /// the expected support and `I` the fast load correction (`İ = M ω²/T_i · e_pos`, with anti-windup).
    fn command(&mut self, plan: &Plan, senses: &Senses) -> JointArray<f64> {
        let n = self.dof;
        let t = senses.t;
        let tissue = senses.tissue;
        let (q_seen, _) = senses.history.get(self.delay_steps);
        let q_seen = *q_seen;
        let t_seen = t - self.delay_steps as f64 * self.dt;
        let (_, v_fast) = senses.history.get(self.reflex_delay_steps);
        let v_fast = *v_fast;
        let t_fast = t - self.reflex_delay_steps as f64 * self.dt;
        let gain = self.internal_model_gain;
        if senses.steps.is_multiple_of(self.model_decimation) {
            let mut q_plan = JointArray::splat(n, 0.0);
            plan.positions(t, &mut q_plan);
            let mut g = self.arm_gravity;
            self.internal.arm_gravity(&q_plan, &mut g);
            self.arm_gravity = g;
            let armature = self.armature;
            self.internal.mass_matrix(&q_seen, &armature[..], &mut self.mass);
        }
        let (w, z) = (self.omega, self.zeta);
        let ki = w * w / self.integral_time;
        // The plan now (feed-forward), when the position was seen and when the velocity was seen.
        let (mut q_now, mut v_now, mut a_now) = ([0.0; MAX_JOINTS], [0.0; MAX_JOINTS], [0.0; MAX_JOINTS]);
        let (mut q_ref, mut v_ref) = ([0.0; MAX_JOINTS], [0.0; MAX_JOINTS]);
        plan.eval_all(t, &mut q_now[..n], &mut v_now[..n], &mut a_now[..n]);
        plan.positions(t_seen, &mut q_ref[..n]);
        plan.velocities(t_fast, &mut v_ref[..n]);
        // A re-planned movement to a goal at the end of the range may overshoot it slightly: the plan stops at
        // the range.
        for i in 0..n {
            let (lo, hi) = (tissue.lower[i], tissue.upper[i]);
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
        let effort = senses.effort;
        let mut command = JointArray::splat(n, 0.0);
        for i in 0..n {
            let cap = senses.capacity[i];
            if cap <= 0.0 {
                continue;
            }
            let inertial: f64 = (0..n).map(|j| self.mass[i][j] * acc[j]).sum();
            let tissue = -tissue.passive_torque(i, q_now[i], v_now[i]);
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
}
