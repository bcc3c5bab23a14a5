//! Task-directed patient effort and robot assistance per trial: measures that mean what they say.
//!
//! # Definitions
//!
//! The **task direction** is the direction of the desired motion, u = q̇_ref / ‖q̇_ref‖, defined while the
//! reference moves. Both measures integrate a torque projected on it, weighted by the reference speed ‖q̇_ref‖:
//!
//! ```text
//! P_x(t) = τ_x(t) · q̇_ref(t) = (τ_x · u) ‖q̇_ref‖          [W]  power of τ_x along the desired motion
//! W_x    = Σ_windows max(0, ∫_window P_x dt)                [J]  positive work along the desired motion
//! ```
//!
//! - **Patient task effort** W_patient: x = the patient's own **voluntary** joint torque τ_vol — its motor drive
//!   (voluntary command + the flexor synergy it recruits, which is muscle torque of the patient, not of the
//!   environment). Passive tissue, stretch reflex and tremor are excluded; so is the arm weight the robot supports
//!   (the robot's hold torque, never the patient's). The torque with which the patient itself holds or lifts the
//!   part of its arm's weight the robot does not support IS voluntary effort and is counted, through its
//!   projection: holding the arm still during a horizontal reach is (nearly) orthogonal to the desired motion and
//!   adds (nearly) nothing; lifting the arm towards a higher target is positive work along it.
//! - **Assistance** W_assist: x = τ_assist, the robot's therapy-mode torque: the mode/law torque of
//!   [`Controller::mode_torque`] (impedance, feed-forward of the reference, assist-as-needed law, resistance,
//!   augmentation) minus the friction compensation it contains in the patient-led modes (transparent, resistive,
//!   error augmentation: it cancels the robot's own friction, like gravity compensation) and minus the previous
//!   mode's torque still fading out after a switch ([`Controller::transfer_torque`]: at a trial's start, the rest
//!   hold letting go of the arm — not the trial mode's help). Excluded, because it is
//!   not in the mode torque: the hold torque g_robot(q) + α·g_arm(q) (the robot's own weight and the supported
//!   share α of the arm's weight, [`crate::ControllerReport::hold_torque`]).
//! - **Effort share** = W_patient / (W_patient + W_assist) per trial, `None` when both are below
//!   [`MIN_TASK_WORK`] (a hold, a rest: no task to share).
//!
//! Why power along the reference (and not τ·u alone, with a joint-space or a mass-weighted norm)? The pairing of
//! a torque with a velocity, τ·q̇_ref, is a power and is the same in any joint coordinates: it needs no metric to
//! compare a shoulder and an elbow, whereas a normalised u needs one (the Euclidean norm of q̇ mixes joints
//! arbitrarily; a mass-weighted norm needs M(q)). Weighting by ‖q̇_ref‖ also gives the slow start and end of a
//! minimum-jerk movement — where the task direction is least defined and holding torques dominate — their small
//! share of the task. Using the DESIRED velocity rather than the actual one credits a patient who pushes towards
//! the target but is too weak to move (the arm stalls: actual work 0), and credits nothing to a limp arm the
//! robot drags along (its tissue torque opposes the motion: negative power).
//!
//! Sources: effort as the patient's own force or positive mechanical work towards the task, and its decrease
//! when a robot assists ("slacking"): Reinkensmeyer et al. 2009, J Neuroeng Rehabil 6:37 (slacking); Emken,
//! Bobrow & Reinkensmeyer 2007, J Neuroeng Rehabil 4:8 (effort minimisation under assistance); Wolbrecht,
//! Chan, Reinkensmeyer & Bobrow 2008, IEEE TNSRE 16(3) (assist-as-needed that forgets so the patient has to
//! work). Clinical robots report the robot's and the patient's work separately (Kinarm and InMotion/MIT-Manus
//! report patient- and robot-generated work/power per trial). The projection on the desired motion and the
//! windowed rectification are this module's choices, stated above.
//!
//! # Tremor, reflex, passive tissue
//!
//! - Tremor (4–8 Hz, zero mean) cancels in the integral: the power is integrated over windows of
//!   [`EFFORT_WINDOW`] = 0.25 s — one tremor period at 4 Hz, two at 8 Hz — before the positive part is taken, so
//!   a zero-mean oscillation times the slowly varying q̇_ref integrates to ≈ 0 in each window instead of being
//!   rectified (a per-tick max(0, ·) would count half of every tremor cycle as effort). The unit test
//!   `tremor_cancels_in_the_windowed_integral` shows it.
//! - A stretch reflex opposes the stretch, i.e. the motion the robot imposes: its power along the desired motion
//!   is negative and the positive part removes it (a reflex is not subtracted, it is not modelled in clinic).
//! - Passive tissue is identified in clinic on a relaxed passive block ([`PassiveTissueFit`]: a per-joint
//!   linear stiffness, damping and offset, least squares) and subtracted from the observer's estimate.
//!
//! # Clinic estimate
//!
//! τ̂_vol = τ̂_human − τ̂_passive(q, q̇), τ̂_human the momentum observer's estimate ([`Controller::patient_torque`]:
//! with the arm in the observer's model, the muscle and tissue torque of the patient alone) and τ̂_passive the
//! fitted tissue model. [`TaskEffortMeter`] accumulates both works over a trial, allocation-free; the ground truth
//! of a simulation (the virtual patient's voluntary drive, `plexo_hal::PatientHooks::true_voluntary_torque`)
//! goes through the same integral ([`TaskEffortMeter::add_true_voluntary`]), so that estimate and truth differ
//! only by the torque estimate.
//!
//! The tissue fit identifies the tissue as the observer sees it (its first-order lag and unmodelled robot
//! dynamics correlate with q and q̇ too), which is what has to be removed from that same observer's estimate. It
//! needs a block in which the patient is RELAXED while the robot moves the arm; a passive block in which the
//! patient moves along would fold its voluntary torque into the "tissue" and hide it.
//!
//! Why the arm weight the patient holds itself is not subtracted: the observer (arm in its model) sees the
//! patient's muscle torque, and holding/lifting its own unsupported arm weight is voluntary muscle torque; its
//! share along a horizontal reach is ≈ 0 by the projection, its share along a rising reach is real positive work.
//! Subtracting the model share (1 − α)·g_arm(q) [= g_coupled(q) − hold torque] assumes the patient holds it: a
//! paralysed arm does not (it sags onto the assistance), so the subtraction credits it with effort whenever the
//! reference descends. Measured in closed loop (`controller/tests/effort_measures.rs`, center-out, Emken, 30 %
//! support): with the subtraction the paralysed arm scores 6.3 % (without: 0.0 %), and mild / moderate / severe
//! / spastic patients score 12 / 23 / 6 / 38 % against a true 68 / 67 / 58 / 70 % (without: 66 / 66 / 57 / 70 %).
//!
//! # Validation (closed loop, `controller/tests/effort_measures.rs`)
//!
//! Estimated (true) effort share, and the old ‖τ̂‖ / (‖τ̂‖ + ‖τ_mode‖) share for the same condition: paralysed
//! arm in the assisted block 0.0 % (0.0 %; old 18.8 %); relaxed arm in passive mode 0.0–2.9 % (0.0 %; old
//! 49 %); healthy arm in transparent mode 99.1 % (99.1 %; old 97.3 %); assisted blocks of mild, moderate,
//! severe, spastic patients within 1.3 points of the truth per block (≤ 4.6 points mean per trial).
//!
//! Units: torques [Nm], velocities [rad/s], powers [W], works [J], shares [-] in 0..=1.

use plexo_hal::{JointArray, MAX_JOINTS};
use serde::{Deserialize, Serialize};

use crate::controller::{Controller, Mode};

/// Integration window of the power before rectification [s] (see the module docs: tremor cancels).
pub const EFFORT_WINDOW: f64 = 0.25;

/// Below this total work [J] a trial has no task to share: the share is `None`.
pub const MIN_TASK_WORK: f64 = 1e-4;

/// The robot's therapy-mode torque towards the task, τ_assist [Nm], into `out`: [`Controller::mode_torque`] minus
/// the previous mode's torque still fading out after a switch ([`Controller::transfer_torque`]: at a trial's start,
/// the rest hold letting go of the arm) and minus the friction compensation it contains in the patient-led modes
/// (transparent, resistive, error augmentation), computed from the configured [`crate::FrictionConfig`] as the
/// controller does (c·tanh(q̇/v_s) + b·q̇ at the measured velocity `velocity` [rad/s]). The hold torque (robot and
/// supported arm weight) is not in the mode torque. Call after the tick's [`Controller::update`]. Real-time safe.
pub fn assistance_torque(controller: &Controller, velocity: &[f64], out: &mut JointArray<f64>) {
    let n = controller.dof().min(velocity.len());
    let (mode, transfer) = (controller.mode_torque(), controller.transfer_torque());
    let f = &controller.config().friction;
    let compensated = matches!(controller.mode().mode, Mode::Transparent | Mode::Resistive | Mode::ErrorAugmentation);
    *out = JointArray::splat(n, 0.0);
    for j in 0..n {
        let friction = if compensated {
            f.coulomb[j] * (velocity[j] / f.smoothing_velocity).tanh() + f.viscous[j] * velocity[j]
        } else {
            0.0
        };
        out[j] = mode[j] - transfer[j] - friction;
    }
}

/// Per-joint passive tissue torque τ_passive = τ₀ − k·q − b·q̇ [Nm] (linear spring-damper about a rest angle,
/// the model fitted to hypertonic elbows by McCrea, Eng & Hodgson 2003, J Neurosci Methods 128; its rest angle is
/// τ₀/k). The output of [`PassiveTissueFit::solve`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PassiveTissueModel {
    /// Stiffness k per joint [Nm/rad].
    pub stiffness: JointArray<f64>,
    /// Damping b per joint [Nm s/rad].
    pub damping: JointArray<f64>,
    /// Torque at q = 0, q̇ = 0 per joint, τ₀ [Nm] (also absorbs a constant bias of the torque estimate).
    pub offset: JointArray<f64>,
    /// Joints whose stiffness and damping were identified (moved enough); the others have k = b = 0 and τ₀ =
    /// the mean torque. Entries beyond the joint count are false.
    pub identified: [bool; MAX_JOINTS],
}

impl PassiveTissueModel {
    /// No tissue model (zero torque) for `dof` joints: the estimate is then the observer's torque unchanged.
    /// Real-time safe.
    pub fn none(dof: usize) -> Self {
        let z = JointArray::splat(dof, 0.0);
        Self { stiffness: z, damping: z, offset: z, identified: [false; MAX_JOINTS] }
    }

    /// Passive torque of joint `j` at `q` [rad], `qd` [rad/s] [Nm]. Real-time safe.
    pub fn torque(&self, j: usize, q: f64, qd: f64) -> f64 {
        self.offset[j] - self.stiffness[j] * q - self.damping[j] * qd
    }
}

/// Least-squares identification of a [`PassiveTissueModel`] from samples of a relaxed passive block (the robot
/// moves the arm, the patient is asked to relax): per joint, the regression of the estimated patient torque on
/// (1, q, q̇). Accumulates the sums of the normal equations (no sample is stored, allocation-free) and solves the
/// centred 2 × 2 system in closed form.
#[derive(Clone, Copy, Debug)]
pub struct PassiveTissueFit {
    dof: usize,
    count: u64,
    /// Per joint: Σq, Σq̇, Στ, Σq², Σqq̇, Σq̇², Σqτ, Σq̇τ.
    sums: [[f64; 8]; MAX_JOINTS],
}

/// A joint is identified when its position varies by at least this much (standard deviation) [rad].
pub const MIN_PASSIVE_EXCURSION: f64 = 0.02;

impl PassiveTissueFit {
    /// An empty fit for `dof` joints (at most [`MAX_JOINTS`]). Real-time safe.
    pub fn new(dof: usize) -> Self {
        Self { dof: dof.min(MAX_JOINTS), count: 0, sums: [[0.0; 8]; MAX_JOINTS] }
    }

    /// Number of samples so far. Real-time safe.
    pub fn samples(&self) -> u64 {
        self.count
    }

    /// Adds one sample: measured position `q` [rad], velocity `qd` [rad/s] and estimated patient torque `tau`
    /// [Nm] (the observer's). A sample with a NaN/Inf value or a wrong length is skipped (returns false).
    /// Real-time safe.
    pub fn add(&mut self, q: &[f64], qd: &[f64], tau: &[f64]) -> bool {
        let n = self.dof;
        if q.len() < n || qd.len() < n || tau.len() < n {
            return false;
        }
        if !(q[..n].iter().chain(&qd[..n]).chain(&tau[..n]).all(|x| x.is_finite())) {
            return false;
        }
        for j in 0..n {
            let (x, v, t) = (q[j], qd[j], tau[j]);
            let s = &mut self.sums[j];
            s[0] += x;
            s[1] += v;
            s[2] += t;
            s[3] += x * x;
            s[4] += x * v;
            s[5] += v * v;
            s[6] += x * t;
            s[7] += v * t;
        }
        self.count += 1;
        true
    }

    /// The least-squares model, `None` before 2 samples. A joint whose position did not vary by
    /// [`MIN_PASSIVE_EXCURSION`] (or whose position and velocity are collinear) keeps k = b = 0 and gets its mean
    /// torque as offset (`identified = false`). Real-time safe.
    pub fn solve(&self) -> Option<PassiveTissueModel> {
        if self.count < 2 {
            return None;
        }
        let n = self.dof;
        let c = self.count as f64;
        let mut model = PassiveTissueModel::none(n);
        for j in 0..n {
            let s = &self.sums[j];
            let (mq, mv, mt) = (s[0] / c, s[1] / c, s[2] / c);
            // Centred (co)variances.
            let sqq = s[3] / c - mq * mq;
            let sqv = s[4] / c - mq * mv;
            let svv = s[5] / c - mv * mv;
            let sqt = s[6] / c - mq * mt;
            let svt = s[7] / c - mv * mt;
            let det = sqq * svv - sqv * sqv;
            let excited = sqq >= MIN_PASSIVE_EXCURSION * MIN_PASSIVE_EXCURSION;
            // Collinear regressors (relative determinant ≈ 0) cannot be separated.
            if !excited || det <= 1e-9 * sqq * svv || !det.is_finite() {
                model.offset[j] = mt;
                continue;
            }
            let a = (svv * sqt - sqv * svt) / det;
            let b = (sqq * svt - sqv * sqt) / det;
            model.stiffness[j] = -a;
            model.damping[j] = -b;
            model.offset[j] = mt - a * mq - b * mv;
            model.identified[j] = true;
        }
        Some(model)
    }
}

/// Positive work of a torque along the desired motion, windowed (see the module docs). Allocation-free.
#[derive(Clone, Copy, Debug, Default)]
struct TaskWork {
    /// Σ max(0, window work) of the closed windows [J].
    positive: f64,
    /// Work of the open window [J].
    window: f64,
}

impl TaskWork {
    fn add(&mut self, power: f64, dt: f64) {
        self.window += power * dt;
    }

    fn close_window(&mut self) {
        self.positive += self.window.max(0.0);
        self.window = 0.0;
    }
}

/// One trial's measures (see the module docs for the definitions).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskEffort {
    /// Estimated patient task effort W_patient [J] (observer − passive tissue model).
    pub effort: f64,
    /// Assistance W_assist [J].
    pub assistance: f64,
    /// Estimated effort share [-], `None` when effort and assistance are both below [`MIN_TASK_WORK`].
    pub share: Option<f64>,
    /// True patient task effort [J] from the simulated patient's voluntary torque, if it was fed.
    pub true_effort: Option<f64>,
    /// True effort share [-] (true effort against the same assistance), if the truth was fed and the work is not
    /// ~0.
    pub true_share: Option<f64>,
    /// Duration integrated [s].
    pub duration: f64,
}

/// The effort share W_patient / (W_patient + W_assist) [-], `None` when both are below [`MIN_TASK_WORK`].
/// Real-time safe.
pub fn effort_share(effort: f64, assistance: f64) -> Option<f64> {
    let total = effort + assistance;
    (total >= MIN_TASK_WORK && total.is_finite()).then(|| effort / total)
}

/// Per-trial accumulator of patient task effort and assistance. Feed it once per control tick
/// ([`Self::update`]), read and restart it at the end of each trial ([`Self::finish_trial`]). Allocation-free;
/// every method is real-time safe.
#[derive(Clone, Copy, Debug)]
pub struct TaskEffortMeter {
    dof: usize,
    passive: PassiveTissueModel,
    window: f64,
    elapsed_in_window: f64,
    duration: f64,
    effort: TaskWork,
    assistance: TaskWork,
    truth: TaskWork,
    truth_fed: bool,
}

impl TaskEffortMeter {
    /// A meter for `dof` joints with the clinic's passive tissue model (use [`PassiveTissueModel::none`] before a
    /// passive block has been fitted) and the integration window [`EFFORT_WINDOW`]. Real-time safe.
    pub fn new(dof: usize, passive: PassiveTissueModel) -> Self {
        Self {
            dof: dof.min(MAX_JOINTS),
            passive,
            window: EFFORT_WINDOW,
            elapsed_in_window: 0.0,
            duration: 0.0,
            effort: TaskWork::default(),
            assistance: TaskWork::default(),
            truth: TaskWork::default(),
            truth_fed: false,
        }
    }

    /// Replaces the passive tissue model (after a new passive calibration block). Real-time safe.
    pub fn set_passive_model(&mut self, passive: PassiveTissueModel) {
        self.passive = passive;
    }

    /// The passive tissue model in use. Real-time safe.
    pub fn passive_model(&self) -> &PassiveTissueModel {
        &self.passive
    }

    /// The estimated voluntary torque τ̂_vol = τ̂_human − τ̂_passive(q, q̇) of joint `j` [Nm]. Real-time safe.
    pub fn voluntary_estimate(&self, j: usize, q: f64, qd: f64, tau_human: f64) -> f64 {
        tau_human - self.passive.torque(j, q, qd)
    }

    /// One control tick of length `dt` [s]: measured position `q` [rad] and velocity `qd` [rad/s], reference
    /// velocity `qd_ref` [rad/s] ([`Controller::reference`]), the observer's patient torque `tau_human` [Nm]
    /// ([`Controller::patient_torque`]) and the robot's assistance torque `tau_assist` [Nm]
    /// ([`assistance_torque`]). A tick with a NaN/Inf input or a wrong length is skipped (returns false).
    /// Feed the simulation's truth of the same tick, if any, with [`Self::add_true_voluntary`] BEFORE this call.
    /// Real-time safe.
    pub fn update(
        &mut self,
        q: &[f64],
        qd: &[f64],
        qd_ref: &[f64],
        tau_human: &[f64],
        tau_assist: &[f64],
        dt: f64,
    ) -> bool {
        let n = self.dof;
        let inputs = [q, qd, qd_ref, tau_human, tau_assist];
        if !(dt.is_finite() && dt >= 0.0) || inputs.iter().any(|x| x.len() < n || !x[..n].iter().all(|v| v.is_finite()))
        {
            return false;
        }
        let (mut p_effort, mut p_assist) = (0.0, 0.0);
        for j in 0..n {
            p_effort += self.voluntary_estimate(j, q[j], qd[j], tau_human[j]) * qd_ref[j];
            p_assist += tau_assist[j] * qd_ref[j];
        }
        self.effort.add(p_effort, dt);
        self.assistance.add(p_assist, dt);
        self.duration += dt;
        self.elapsed_in_window += dt;
        if self.elapsed_in_window >= self.window - 1e-9 {
            self.close_windows();
        }
        true
    }

    /// Feeds the true voluntary torque `tau_voluntary` [Nm] of the tick about to be passed to [`Self::update`]
    /// (simulation: `PatientHooks::true_voluntary_torque`), with the same `qd_ref` [rad/s] and `dt` [s]. Skipped
    /// (false) on NaN/Inf or a wrong length. Real-time safe.
    pub fn add_true_voluntary(&mut self, qd_ref: &[f64], tau_voluntary: &[f64], dt: f64) -> bool {
        let n = self.dof;
        if qd_ref.len() < n
            || tau_voluntary.len() < n
            || !dt.is_finite()
            || !qd_ref[..n].iter().chain(&tau_voluntary[..n]).all(|v| v.is_finite())
        {
            return false;
        }
        let power: f64 = (0..n).map(|j| tau_voluntary[j] * qd_ref[j]).sum();
        self.truth.add(power, dt);
        self.truth_fed = true;
        true
    }

    fn close_windows(&mut self) {
        self.effort.close_window();
        self.assistance.close_window();
        self.truth.close_window();
        self.elapsed_in_window = 0.0;
    }

    /// The measures of the trial so far, including the open window (does not restart). Real-time safe.
    pub fn current(&self) -> TaskEffort {
        let mut copy = *self;
        copy.close_windows();
        let effort = copy.effort.positive;
        let assistance = copy.assistance.positive;
        let true_effort = self.truth_fed.then_some(copy.truth.positive);
        TaskEffort {
            effort,
            assistance,
            share: effort_share(effort, assistance),
            true_effort,
            true_share: true_effort.and_then(|e| effort_share(e, assistance)),
            duration: self.duration,
        }
    }

    /// Ends the trial: returns its measures and restarts the accumulators (the passive model stays). Real-time
    /// safe.
    pub fn finish_trial(&mut self) -> TaskEffort {
        let result = self.current();
        *self = Self::new(self.dof, self.passive);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Synthetic relaxed passive block: τ = τ₀ − k q − b q̇ (+ small zero-mean disturbance) along sinusoids of
    /// different frequencies per joint; the fit recovers k, b and τ₀.
    #[test]
    fn passive_fit_recovers_known_stiffness_damping_and_offset() {
        let (k, b, t0) = ([2.0, 0.5, 0.0, 1.2], [0.3, 0.05, 0.1, 0.2], [0.4, -0.1, 0.05, 1.0]);
        let mut fit = PassiveTissueFit::new(4);
        let dt = 0.001;
        for i in 0..20_000 {
            let t = i as f64 * dt;
            let mut q = [0.0; 4];
            let mut qd = [0.0; 4];
            let mut tau = [0.0; 4];
            for j in 0..4 {
                let w = 2.0 + j as f64; // [rad/s]
                let amp = if j == 2 { 0.0 } else { 0.5 }; // joint 2 does not move
                q[j] = 0.6 + amp * (w * t).sin();
                qd[j] = amp * w * (w * t).cos();
                let noise = 0.05 * (2.0 * core::f64::consts::PI * 6.0 * t + j as f64).sin();
                tau[j] = t0[j] - k[j] * q[j] - b[j] * qd[j] + noise;
            }
            assert!(fit.add(&q, &qd, &tau));
        }
        assert!(!fit.add(&[f64::NAN; 4], &[0.0; 4], &[0.0; 4]), "a NaN sample is skipped");
        let m = fit.solve().unwrap();
        for j in [0, 1, 3] {
            assert!(m.identified[j]);
            assert!((m.stiffness[j] - k[j]).abs() < 0.01, "k[{j}] = {}", m.stiffness[j]);
            assert!((m.damping[j] - b[j]).abs() < 0.01, "b[{j}] = {}", m.damping[j]);
            assert!((m.offset[j] - t0[j]).abs() < 0.01, "τ₀[{j}] = {}", m.offset[j]);
        }
        // The joint that did not move: no stiffness or damping, its mean torque as offset.
        assert!(!m.identified[2]);
        assert_eq!((m.stiffness[2], m.damping[2]), (0.0, 0.0));
        assert!((m.offset[2] - (t0[2] - k[2] * 0.6)).abs() < 0.01, "{}", m.offset[2]);
        assert!(PassiveTissueFit::new(4).solve().is_none(), "no samples, no model");
    }

    /// A 1-s reference at constant velocity and constant torques: the works are the analytic τ·q̇_ref·T, and the
    /// share is their ratio; a torque opposing the motion does no positive work.
    #[test]
    fn meter_integrates_positive_work_along_the_reference() {
        let mut meter = TaskEffortMeter::new(2, PassiveTissueModel::none(2));
        let dt = 0.001;
        let qd_ref = [0.5, -0.2]; // [rad/s]
        let tau_h = [2.0, -1.0]; // power 1.0 + 0.2 = 1.2 W
        let tau_a = [0.4, 1.0]; // power 0.2 − 0.2 = 0 W
        for _ in 0..1000 {
            assert!(meter.add_true_voluntary(&qd_ref, &[1.0, 0.0], dt)); // 0.5 W
            assert!(meter.update(&[0.0; 2], &[0.0; 2], &qd_ref, &tau_h, &tau_a, dt));
        }
        let m = meter.finish_trial();
        assert!((m.effort - 1.2).abs() < 1e-9, "{m:?}");
        assert!(m.assistance.abs() < 1e-9, "{m:?}");
        assert!((m.share.unwrap() - 1.0).abs() < 1e-9);
        assert!((m.true_effort.unwrap() - 0.5).abs() < 1e-9);
        assert!((m.duration - 1.0).abs() < 1e-9);
        // Robot pushing with the motion, patient against it: share 0.
        for _ in 0..1000 {
            meter.update(&[0.0; 2], &[0.0; 2], &qd_ref, &[-2.0, 0.0], &[2.0, 0.0], dt);
        }
        let m = meter.finish_trial();
        assert_eq!(m.effort, 0.0);
        assert!((m.assistance - 1.0).abs() < 1e-9);
        assert_eq!(m.share, Some(0.0));
        assert_eq!(m.true_effort, None, "restarted: no truth fed this trial");
        // A still reference: no task, no share.
        for _ in 0..1000 {
            meter.update(&[0.0; 2], &[0.0; 2], &[0.0; 2], &tau_h, &tau_a, dt);
        }
        assert_eq!(meter.finish_trial().share, None);
        assert!(!meter.update(&[0.0; 2], &[0.0; 2], &[f64::NAN; 2], &tau_h, &tau_a, dt));
    }

    /// Zero-mean tremor (4–8 Hz, 1 Nm amplitude, larger than the 0.3 Nm voluntary torque) changes the effort of a
    /// minimum-jerk-like movement by < 3 %; rectified per tick it would add > 40 %.
    #[test]
    fn tremor_cancels_in_the_windowed_integral() {
        let dt = 0.001;
        let duration = 2.0;
        let run = |tremor_hz: f64, amplitude: f64| {
            let mut meter = TaskEffortMeter::new(1, PassiveTissueModel::none(1));
            let mut per_tick = 0.0;
            for i in 0..(duration / dt) as usize {
                let t = i as f64 * dt;
                let s = t / duration;
                let qd_ref = 30.0 * s * s * (1.0 - s) * (1.0 - s) / duration; // minimum-jerk speed profile
                let tau = 0.3 + amplitude * (2.0 * core::f64::consts::PI * tremor_hz * t + 0.7).sin();
                meter.update(&[0.0], &[0.0], &[qd_ref], &[tau], &[0.0], dt);
                per_tick += (tau * qd_ref).max(0.0) * dt;
            }
            (meter.finish_trial().effort, per_tick)
        };
        let (clean, _) = run(0.0, 0.0);
        assert!((clean - 0.3).abs() < 1e-3, "0.3 Nm over 1 rad = 0.3 J: {clean}");
        for hz in [4.0, 5.0, 6.0, 7.0, 8.0] {
            let (windowed, rectified) = run(hz, 1.0);
            assert!((windowed - clean).abs() < 0.03 * clean, "{hz} Hz: {windowed} J vs {clean} J");
            assert!(rectified > 1.4 * clean, "{hz} Hz: per-tick rectification {rectified} J");
        }
    }

    #[test]
    fn effort_share_is_none_without_task_work() {
        assert_eq!(effort_share(0.0, 0.0), None);
        assert_eq!(effort_share(1e-5, 1e-5), None);
        assert_eq!(effort_share(1.0, 3.0), Some(0.25));
        assert_eq!(effort_share(f64::NAN, 1.0), None);
    }

    /// The voluntary estimate subtracts the tissue model: a relaxed joint whose torque IS the model scores 0.
    #[test]
    fn passive_model_is_subtracted_from_the_observer_torque() {
        let mut passive = PassiveTissueModel::none(1);
        passive.stiffness[0] = 2.0;
        passive.damping[0] = 0.5;
        passive.offset[0] = 1.0;
        let mut meter = TaskEffortMeter::new(1, passive);
        let dt = 0.001;
        for i in 0..1000 {
            let q = 0.5 * i as f64 * dt;
            let tissue = passive.torque(0, q, 0.5);
            assert!((meter.voluntary_estimate(0, q, 0.5, tissue + 0.2) - 0.2).abs() < 1e-12);
            meter.update(&[q], &[0.5], &[0.5], &[tissue], &[1.0], dt);
        }
        let m = meter.finish_trial();
        assert!(m.effort.abs() < 1e-12, "{m:?}");
        assert_eq!(m.share, Some(0.0));
    }
}
