//! Per-trial statistics of the controller: accumulated every tick, closed at the trial end (where the per-trial
//! Emken law adapts) into [`TrialMetrics`].

use plexo_hal::{JointArray, JointState, MAX_JOINTS};

use super::{Controller, Mode};
use crate::aan::{self, AanLaw};
use crate::config::EmkenError;
use crate::tasks::TaskReference;

/// Per-trial metrics, returned by [`Controller::end_trial`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrialMetrics {
    /// RMS joint tracking error per joint [rad] (q_d − q).
    pub rms_error: JointArray<f64>,
    /// RMS over time of the norm of the assistive (mode) torque, gravity support and the previous mode's torque
    /// fading out at the trial's start ([`Controller::transfer_torque`]) excluded [Nm].
    pub assistance_rms: f64,
    /// RMS over time of the norm of the estimated patient torque [Nm].
    pub effort_rms: f64,
    /// Mean adapted Emken stiffness over the joints at trial end [Nm/rad].
    pub mean_stiffness: f64,
    /// Mean share of the patient's arm weight the robot carried over the trial [-] (the weight support, which is
    /// not in the assistance).
    pub arm_support: f64,
    /// Share of the arm's weight the assist-as-needed mode's torque carried on top of the support over the trial
    /// [-] ([`crate::aan::law_weight_share`]; the rest hold letting go of the arm at the trial's start counts: it
    /// is weight the robot carried); NaN outside the assisted modes or with no weight on the joints.
    pub law_weight_share: f64,
    /// Duration of the trial [s].
    pub duration: f64,
    /// Ticks accumulated.
    pub ticks: u64,
}

/// Statistics of the running trial. The per-trial Emken update uses only the error of the ticks in which that law
/// was in force (`emken_*`), so data from rests or other modes never adapts anything.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct TrialAccumulator {
    err2: [f64; MAX_JOINTS],
    assist2: f64,
    effort2: f64,
    ticks: u64,
    time: f64,
    /// Σ (q_d − q)² per joint over the ticks with the per-trial Emken law in force [rad²].
    emken_err2: [f64; MAX_JOINTS],
    /// Ticks with the per-trial Emken law in force.
    emken_ticks: u64,
    /// q_d − q per joint at the last tick with the per-trial Emken law in force: the trial's endpoint error [rad].
    emken_last_err: [f64; MAX_JOINTS],
    /// q_d − q per joint at the first tick with the per-trial Emken law in force at which the reference had
    /// arrived (phase 1: the planned movement time elapsed) [rad].
    emken_arrival_err: [f64; MAX_JOINTS],
    /// True once `emken_arrival_err` holds the arrival error.
    emken_arrived: bool,
    /// Ticks with an adaptive law (Emken, RBF) in force.
    adaptive_ticks: u64,
    /// Σ weight support over the ticks [-·ticks].
    support_sum: f64,
    /// Σ τ_assist·g_arm over the assisted ticks [Nm²] (the law's torque against the arm's weight).
    law_dot_gravity: f64,
    /// Σ g_arm·g_arm over the assisted ticks [Nm²].
    gravity_dot_gravity: f64,
}

/// Below this Σ g_arm·g_arm over a trial [Nm²] the arm's weight loads the joints too little to tell how much of it
/// the law carried (an arm hanging straight down): the support does not adapt.
const MIN_GRAVITY2: f64 = 1e-3;

impl Controller {
    /// Adds this tick to the running trial: the tracking error against `reference` [rad], the mode torque `tau`
    /// [Nm], the estimated patient torque [Nm] and, in the assisted mode, the law's torque against the arm's
    /// gravity torque `g_arm` [Nm], over `dt` [s]; the error also counts for the per-trial Emken law when that law
    /// is in force. Real-time safe.
    pub(super) fn accumulate_trial(
        &mut self,
        state: &JointState,
        reference: &TaskReference,
        tau: &JointArray<f64>,
        g_arm: &[f64; MAX_JOINTS],
        dt: f64,
    ) {
        let n = self.dof;
        let q = &state.position;
        let e = |j: usize| reference.position[j] - q[j];
        let assisted = self.settings.mode == Mode::ActiveAssisted;
        let emken_per_trial = assisted && self.settings.law == AanLaw::Emken && !self.config.aan.emken.continuous;
        let mut assist2 = 0.0;
        let mut effort2 = 0.0;
        let arrives = emken_per_trial && !self.trial.emken_arrived && reference.phase >= 1.0;
        self.trial.emken_arrived |= arrives;
        for j in 0..n {
            let e2 = e(j) * e(j);
            self.trial.err2[j] += e2;
            if emken_per_trial {
                self.trial.emken_err2[j] += e2;
                self.trial.emken_last_err[j] = e(j);
                if arrives {
                    self.trial.emken_arrival_err[j] = e(j);
                }
            }
            // The trial mode's own torque: the previous mode's fading torque (the rest hold letting go of the
            // arm at a trial's start) is not the mode's help. It is weight the robot carried, so the support's
            // measure of the weight the robot carried beyond the support keeps it.
            let own = tau[j] - self.transfer_torque[j];
            assist2 += own * own;
            effort2 += self.report.interaction_torque[j].powi(2);
            if assisted {
                self.trial.law_dot_gravity += tau[j] * g_arm[j];
                self.trial.gravity_dot_gravity += g_arm[j] * g_arm[j];
            }
        }
        self.trial.support_sum += self.support;
        self.trial.assist2 += assist2;
        self.trial.effort2 += effort2;
        self.trial.ticks += 1;
        self.trial.time += dt;
        self.trial.emken_ticks += u64::from(emken_per_trial);
        self.trial.adaptive_ticks += u64::from(assisted && matches!(self.settings.law, AanLaw::Emken | AanLaw::Rbf));
    }

    /// Ends a trial whose outcome the caller does not know (tests, tools): [`Controller::end_trial_with_outcome`]
    /// with the outcome unknown, so the task error's deadband applies. Allocation-free.
    pub fn end_trial(&mut self) -> TrialMetrics {
        self.end_trial_with_outcome(None)
    }

    /// Ends a trial: returns its metrics and, for the Emken law in per-trial mode, adapts the stiffness once from
    /// the trial's error over the ticks in which that law was in force (rests and other modes never adapt it).
    /// With [`crate::EmkenError::Task`] (default) the error is the joint-space distance from the target when the
    /// reference arrived or at the end, whichever is larger, beyond the deadband (`deadband_fraction` × the
    /// trial's tolerance); a trial known to have failed (`reached == Some(false)`) counts its whole distance —
    /// the deadband is a tolerance for patients who reach, never for a failure. With
    /// [`crate::EmkenError::Tracking`] it is per joint the larger of the RMS tracking error and the endpoint
    /// error. The endpoint term in both is Plexo's addition to Emken et al. 2007 (whose error is the trial's
    /// tracking error): a patient who tracks the reference closely but ends off the target (a planning bias, a
    /// short reach) fails the trial with a small RMS error. Counts the trial in [`AdaptationState::trials`] if an
    /// adaptive law (Emken, RBF) acted in it. Allocation-free.
    ///
    /// [`AdaptationState::trials`]: crate::AdaptationState::trials
    pub fn end_trial_with_outcome(&mut self, reached: Option<bool>) -> TrialMetrics {
        let n = self.dof;
        let ticks = self.trial.ticks.max(1) as f64;
        let mut rms_error = JointArray::splat(n, 0.0);
        for j in 0..n {
            rms_error[j] = (self.trial.err2[j] / ticks).sqrt();
        }
        if self.trial.emken_ticks > 0 {
            let c = &self.config.aan.emken;
            let mut emken_error = JointArray::splat(n, 0.0);
            match c.error {
                EmkenError::Task => {
                    // A trial that ended before its reference arrived: its last error is its arrival error.
                    let arrival = if self.trial.emken_arrived {
                        &self.trial.emken_arrival_err
                    } else {
                        &self.trial.emken_last_err
                    };
                    let window = if c.deadband_follows_window {
                        aan::emken_window_half_width(c, self.adaptation.assistance_scale, self.trial_tolerance)
                    } else {
                        0.0
                    };
                    let deadband = if reached == Some(false) {
                        0.0
                    } else {
                        (c.deadband_fraction * self.trial_tolerance).max(window)
                    };
                    aan::emken_task_error(&arrival[..n], &self.trial.emken_last_err[..n], deadband, &mut emken_error);
                    aan::emken_update_excess(&mut self.adaptation.emken_stiffness[..n], &emken_error, c);
                }
                EmkenError::Tracking => {
                    let emken_ticks = self.trial.emken_ticks as f64;
                    for j in 0..n {
                        emken_error[j] =
                            (self.trial.emken_err2[j] / emken_ticks).sqrt().max(self.trial.emken_last_err[j].abs());
                    }
                    aan::emken_update(&mut self.adaptation.emken_stiffness[..n], &emken_error, c);
                }
            }
        }
        if self.trial.adaptive_ticks > 0 {
            self.adaptation.trials += 1;
        }
        let law_share = aan::law_weight_share(self.trial.law_dot_gravity, self.trial.gravity_dot_gravity, MIN_GRAVITY2);
        if let (Some(floor), Some(share)) = (self.support_floor, law_share) {
            // From the support in force in the trial (the setting; the slew only delays it), never below the
            // block's prescription.
            let adapted = aan::support_update(self.settings.arm_support, share, &self.config.aan.support);
            self.adaptation.arm_support = Some(adapted.max(floor));
        }
        let metrics = TrialMetrics {
            rms_error,
            assistance_rms: (self.trial.assist2 / ticks).sqrt(),
            effort_rms: (self.trial.effort2 / ticks).sqrt(),
            mean_stiffness: self.adaptation.emken_stiffness[..n].iter().sum::<f64>() / n.max(1) as f64,
            arm_support: self.trial.support_sum / ticks,
            law_weight_share: law_share.unwrap_or(f64::NAN),
            duration: self.trial.time,
            ticks: self.trial.ticks,
        };
        self.trial = TrialAccumulator::default();
        metrics
    }

    /// Discards the statistics accumulated since the last trial end without adapting anything: call when a trial
    /// starts, so that the rest before it neither adapts a law nor enters the trial's metrics. Real-time safe.
    pub fn reset_trial_statistics(&mut self) {
        self.trial = TrialAccumulator::default();
    }
}
