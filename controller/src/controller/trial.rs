//! Per-trial statistics of the controller: accumulated every tick, closed at the trial end (where the per-trial
//! Emken law adapts) into [`TrialMetrics`].

use plexo_hal::{JointArray, JointState, MAX_JOINTS};

use super::{Controller, Mode};
use crate::aan::{self, AanLaw};
use crate::tasks::TaskReference;

/// Per-trial metrics, returned by [`Controller::end_trial`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrialMetrics {
    /// RMS joint tracking error per joint [rad] (q_d − q).
    pub rms_error: JointArray<f64>,
    /// RMS over time of the norm of the assistive (mode) torque, gravity support excluded [Nm].
    pub assistance_rms: f64,
    /// RMS over time of the norm of the estimated patient torque [Nm].
    pub effort_rms: f64,
    /// Mean adapted Emken stiffness over the joints at trial end [Nm/rad].
    pub mean_stiffness: f64,
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
    /// Ticks with an adaptive law (Emken, RBF) in force.
    adaptive_ticks: u64,
}

impl Controller {
    /// Adds this tick to the running trial: the tracking error against `reference` [rad], the mode torque `tau`
    /// [Nm] and the estimated patient torque [Nm], over `dt` [s]; the error also counts for the per-trial Emken
    /// law when that law is in force. Real-time safe.
    pub(super) fn accumulate_trial(
        &mut self,
        state: &JointState,
        reference: &TaskReference,
        tau: &JointArray<f64>,
        dt: f64,
    ) {
        let n = self.dof;
        let q = &state.position;
        let e = |j: usize| reference.position[j] - q[j];
        let assisted = self.settings.mode == Mode::ActiveAssisted;
        let emken_per_trial = assisted && self.settings.law == AanLaw::Emken && !self.config.aan.emken.continuous;
        let mut assist2 = 0.0;
        let mut effort2 = 0.0;
        for j in 0..n {
            let e2 = e(j) * e(j);
            self.trial.err2[j] += e2;
            if emken_per_trial {
                self.trial.emken_err2[j] += e2;
                self.trial.emken_last_err[j] = e(j);
            }
            assist2 += tau[j] * tau[j];
            effort2 += self.report.interaction_torque[j].powi(2);
        }
        self.trial.assist2 += assist2;
        self.trial.effort2 += effort2;
        self.trial.ticks += 1;
        self.trial.time += dt;
        self.trial.emken_ticks += u64::from(emken_per_trial);
        self.trial.adaptive_ticks += u64::from(assisted && matches!(self.settings.law, AanLaw::Emken | AanLaw::Rbf));
    }

    /// Ends a trial: returns its metrics and, for the Emken law in per-trial mode, adapts the stiffness once from
    /// the trial's error over the ticks in which that law was in force (rests and other modes never adapt it):
    /// per joint the larger of the RMS tracking error and the endpoint error at the last such tick. The endpoint
    /// term is Plexo's addition to Emken et al. 2007 (whose error is the trial's tracking error): a patient who
    /// tracks the reference closely but ends off the target (a planning bias, a short reach) fails the trial with
    /// a small RMS error; counting the endpoint error lets the law raise help for the failure that matters.
    /// Counts the trial in [`AdaptationState::trials`] if an adaptive law (Emken, RBF) acted in it.
    /// Allocation-free.
    pub fn end_trial(&mut self) -> TrialMetrics {
        let n = self.dof;
        let ticks = self.trial.ticks.max(1) as f64;
        let mut rms_error = JointArray::splat(n, 0.0);
        for j in 0..n {
            rms_error[j] = (self.trial.err2[j] / ticks).sqrt();
        }
        if self.trial.emken_ticks > 0 {
            let emken_ticks = self.trial.emken_ticks as f64;
            let mut emken_error = JointArray::splat(n, 0.0);
            for j in 0..n {
                emken_error[j] =
                    (self.trial.emken_err2[j] / emken_ticks).sqrt().max(self.trial.emken_last_err[j].abs());
            }
            aan::emken_update(&mut self.adaptation.emken_stiffness[..n], &emken_error, &self.config.aan.emken);
        }
        if self.trial.adaptive_ticks > 0 {
            self.adaptation.trials += 1;
        }
        let metrics = TrialMetrics {
            rms_error,
            assistance_rms: (self.trial.assist2 / ticks).sqrt(),
            effort_rms: (self.trial.effort2 / ticks).sqrt(),
            mean_stiffness: self.adaptation.emken_stiffness[..n].iter().sum::<f64>() / n.max(1) as f64,
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
