//! The patient's trial-to-trial dynamics: slacking, capacity growth with dose, the two-rate internal model of
//! the task (skill) and fatigue, and the state that carries them across trials and sessions ([`PatientState`]). Models and citations: the [`crate::patient`] module docs.

use serde::{Deserialize, Serialize};

use super::profile::{FatigueProfile, LearningProfile, PatientProfile, SkillProfile, SlackingProfile};
use crate::SimError;

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
    /// Fast process `x_f` of the internal model of the task, in [0, 1] (Smith, Ghazizadeh & Shadmehr 2006).
    /// Optional in saved states (default 0: a state saved before issue 12 had no internal model).
    #[serde(default)]
    pub model_fast: f64,
    /// Slow process `x_s` of the internal model of the task, in [0, 1]. Optional in saved states (default 0).
    #[serde(default)]
    pub model_slow: f64,
    /// The fraction of its arm's weight the patient expected the environment to carry, learned from movement
    /// experience ([`crate::Patient::expected_support`]), as of the last trial end, in [−4, 1]; `None` before
    /// any trial (and in states saved before issue 12): the resumed patient then feels the support at rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_support: Option<f64>,
}

impl PatientState {
    /// Skill `σ = clamp(x_f + x_s, 0, 1)`: the fraction of the task the internal model has learned.
    pub fn skill(&self) -> f64 {
        (self.model_fast + self.model_slow).clamp(0.0, 1.0)
    }
}

/// Mean relative voluntary torque over a trial at and above which the patient is fully engaged: the trial's
/// error drives its internal model in proportion to `min(1, mean_effort / ENGAGED_EFFORT)` (a modelling
/// choice: an error teaches the motor command that made it; an arm moved only by the robot teaches nothing).
const ENGAGED_EFFORT: f64 = 0.05;
/// Largest normalised error one trial feeds the internal model (a missed trial counts at most 3 units; a
/// modelling choice that bounds the update of a wildly failed or perturbed trial).
const MAX_MODEL_ERROR: f64 = 3.0;
/// Time constant [s] of the fast process's decay during rest between sessions (a modelling choice: the fast
/// process is labile and mostly lost after minutes of rest; cf. Criscimagna-Hemminger & Shadmehr 2008, J Neurosci
/// 28(39), where decay during a set break is that of the fast state).
const FAST_REST_TIME: f64 = 60.0;
/// Time constant [s] of the slow process's decay during rest between sessions: 90 days (a modelling choice:
/// consolidated motor skill is retained across days and weeks).
const SLOW_REST_TIME: f64 = 90.0 * 86_400.0;

/// How a trial ended, as the task/runtime judged it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialOutcome {
    /// The trial's error [rad] (e.g. final or RMS joint-space distance to the target), ≥ 0: the task error the
    /// patient experienced; it drives slacking and the internal model of the task.
    pub error: f64,
    /// Whether the trial counted as a success.
    pub success: bool,
    /// Trial duration [s], > 0.
    pub duration: f64,
}

/// Slacking, learning and fatigue: the [`PatientState`] and the effort spent in the current trial.
#[derive(Clone, Copy, Debug)]
pub(super) struct TrialDynamics {
    pub(super) state: PatientState,
    learning: LearningProfile,
    slacking: SlackingProfile,
    fatigue: FatigueProfile,
    skill: SkillProfile,
    /// Relative voluntary torque integrated over the current trial [s].
    trial_effort: f64,
    /// Time spent in the current trial [s].
    trial_time: f64,
}

impl TrialDynamics {
    /// The profile's starting state: initial capacity and effort, no fatigue, no trials.
    pub(super) fn new(profile: &PatientProfile) -> Self {
        let state = PatientState {
            capacity: profile.learning.initial_capacity,
            effort: profile.slacking.initial_effort,
            fatigue: 0.0,
            trials: 0,
            successful_trials: 0,
            model_fast: 0.0,
            model_slow: 0.0,
            expected_support: None,
        };
        Self {
            state,
            learning: profile.learning,
            slacking: profile.slacking,
            fatigue: profile.fatigue,
            skill: profile.skill,
            trial_effort: 0.0,
            trial_time: 0.0,
        }
    }

    /// Starts counting a new trial's effort.
    pub(super) fn start_trial(&mut self) {
        self.trial_effort = 0.0;
        self.trial_time = 0.0;
    }

    /// Fraction of the nominal strength available now: `capacity × (1 − max_capacity_loss × fatigue)`, as the
    /// factors `(capacity, 1 − loss)`.
    pub(super) fn strength(&self) -> (f64, f64) {
        let loss = self.fatigue.max_capacity_loss * self.state.fatigue;
        (self.state.capacity, 1.0 - loss)
    }

    /// One period `dt` [s] at mean relative voluntary torque `u` (0–1): fatigue follows
    /// `dF/dt = rate · u (1 − F) − recovery_rate · (1 − u) F`; during a trial the effort is accumulated.
    pub(super) fn step(&mut self, u: f64, dt: f64, in_trial: bool) {
        let f = &self.fatigue;
        let st = &mut self.state;
        st.fatigue += dt * (f.rate * u * (1.0 - st.fatigue) - f.recovery_rate * (1.0 - u) * st.fatigue);
        st.fatigue = st.fatigue.clamp(0.0, 1.0);
        if in_trial {
            self.trial_effort += u * dt;
            self.trial_time += dt;
        }
    }

    /// Mean relative voluntary torque (0–1) since the trial began.
    pub(super) fn mean_trial_effort(&self) -> f64 {
        if self.trial_time > 0.0 { self.trial_effort / self.trial_time } else { 0.0 }
    }

    /// Rest of `seconds` [s] without movement (e.g. between sessions): fatigue recovers by the rest law
    /// `dF/dt = −recovery_rate · F`, the fast internal-model process decays with [`FAST_REST_TIME`], the slow one
    /// with [`SLOW_REST_TIME`]. Capacity and effort are unchanged.
    pub(super) fn rest(&mut self, seconds: f64) {
        let st = &mut self.state;
        st.fatigue *= (-self.fatigue.recovery_rate * seconds).exp();
        st.model_fast *= (-seconds / FAST_REST_TIME).exp();
        st.model_slow *= (-seconds / SLOW_REST_TIME).exp();
    }

    /// Ends a trial from the outcome and the effort spent (`mean_effort`, the mean relative voluntary torque):
    /// - effort (slacking, Emken et al. 2007): `effort ← clamp(f · effort + g · error, min_effort, 1)`;
    /// - capacity grows with the dose of the patient's own effort, success or not:
    ///   `capacity ← capacity + rate · mean_effort · (max_capacity − capacity)`;
    /// - internal model (Smith et al. 2006): `x_i ← clamp(A_i x_i + B_i e, 0, 1)` with
    ///   `e = min(error / error_scale, 3) · min(1, mean_effort / 0.05)`.
    pub(super) fn end_trial(&mut self, outcome: &TrialOutcome) -> Result<PatientState, SimError> {
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
        let s = &self.slacking;
        let l = &self.learning;
        let mean_effort = self.mean_trial_effort();
        let st = &mut self.state;
        st.effort = (s.forgetting * st.effort + s.error_gain * outcome.error).clamp(s.min_effort, 1.0);
        st.capacity += l.rate * mean_effort * (l.max_capacity - st.capacity).max(0.0);
        if outcome.success {
            st.successful_trials += 1;
        }
        let k = &self.skill;
        let engagement = (mean_effort / ENGAGED_EFFORT).min(1.0);
        let e = (outcome.error / k.error_scale).min(MAX_MODEL_ERROR) * engagement;
        st.model_fast = (k.fast_retention * st.model_fast + k.fast_rate * e).clamp(0.0, 1.0);
        st.model_slow = (k.slow_retention * st.model_slow + k.slow_rate * e).clamp(0.0, 1.0);
        st.trials += 1;
        self.trial_effort = 0.0;
        self.trial_time = 0.0;
        Ok(self.state)
    }

    /// Takes a saved state after checking it; errors name the field at fault.
    pub(super) fn restore(&mut self, state: PatientState) -> Result<(), SimError> {
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
        if !(state.model_fast.is_finite() && (0.0..=1.0).contains(&state.model_fast)) {
            return Err(bad("model_fast", state.model_fast, "[0, 1]"));
        }
        if !(state.model_slow.is_finite() && (0.0..=1.0).contains(&state.model_slow)) {
            return Err(bad("model_slow", state.model_slow, "[0, 1]"));
        }
        if let Some(s) = state.expected_support
            && !(s.is_finite() && (super::voluntary::SUPPORT_MIN..=1.0).contains(&s))
        {
            return Err(bad("expected_support", s, "[-4, 1]"));
        }
        self.state = state;
        Ok(())
    }
}
