//! The patient's trial-to-trial dynamics: slacking, motor learning and fatigue, and the state that carries
//! them across trials and sessions ([`PatientState`]). Models and citations: the [`crate::patient`] module docs.

use serde::{Deserialize, Serialize};

use super::profile::{FatigueProfile, LearningProfile, PatientProfile, SlackingProfile};
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

/// Slacking, learning and fatigue: the [`PatientState`] and the effort spent in the current trial.
#[derive(Clone, Copy, Debug)]
pub(super) struct TrialDynamics {
    pub(super) state: PatientState,
    learning: LearningProfile,
    slacking: SlackingProfile,
    fatigue: FatigueProfile,
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
        };
        Self {
            state,
            learning: profile.learning,
            slacking: profile.slacking,
            fatigue: profile.fatigue,
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

    /// Ends a trial: effort (slacking) and capacity (learning) from the outcome and the effort spent.
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
        if outcome.success {
            st.capacity += l.rate * mean_effort * (l.max_capacity - st.capacity).max(0.0);
            st.successful_trials += 1;
        }
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
        self.state = state;
        Ok(())
    }
}
