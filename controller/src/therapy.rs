//! A session and its controller: one call per tick gives the command for the supervisor, with the per-trial and
//! per-block adaptation of the assist-as-needed laws.

use plexo_hal::{JointCommand, JointState};

use crate::aan::{AanLaw, AdaptationState, BlockPerformance, ClampedValue, Progression};
use crate::controller::{Controller, Mode, ModeSettings, Space, TrialMetrics};
use crate::error::ControllerError;
use crate::session::{Session, SessionEvent, TrialPlan};

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
    /// A trial started; its goal, start time and (scaled) movement duration are
    /// [`Therapy::current_trial_plan`] from this tick on.
    TrialStarted {
        /// Block index.
        block: usize,
        /// Trial index.
        trial: usize,
    },
    /// A trial ended (adaptation already applied).
    TrialEnded(TrialRecord),
    /// A block ended; `progression` is set when the block applies the progression rule (the block-end decision
    /// on the trials since the sliding window's last decision; the window decides after every trial too).
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
    /// Weight support of the last trial's movement [-]: the next trial's support is withdrawn from it by at most
    /// `gravity.support_withdraw_step`. `None` before the session's first trial, which starts at its block's
    /// setting (a first block of unassisted probes stays unassisted).
    movement_support: Option<f64>,
}

impl Therapy {
    /// Couples a prepared session with a controller.
    pub fn new(session: Session, controller: Controller) -> Self {
        Self { session, controller, performance: BlockPerformance::default(), movement_support: None }
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

    /// The plan of the current trial — goal posture [rad], start time [s] and movement duration [s] as the
    /// reference actually runs it (after the progression's duration scale) — from the tick that reports
    /// [`TherapyEvent::TrialStarted`] until the next trial starts; `None` before the first trial. The runtime
    /// forwards it to the patient (the virtual patient's goal and movement time), so that the patient is asked
    /// for the movement the reference and the assist-as-needed laws expect. Real-time safe.
    pub fn current_trial_plan(&self) -> Option<TrialPlan> {
        self.session.trial_plan().copied()
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

    /// True if block `block` applies the progression rule (an active-assisted block with `progression` set).
    fn progression_applies(&self, block: usize) -> bool {
        let spec = &self.session.blocks()[block].spec;
        spec.progression && spec.mode == Mode::ActiveAssisted
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
                let settings = self.session.blocks()[block].settings();
                out = TherapyEvent::BlockStarted { block, settings };
                self.performance = BlockPerformance::default();
                self.session.set_duration_scale(self.controller.adaptation().duration_scale);
            }
            SessionEvent::TrialStarted { block, trial } => {
                // The block's mode acts during the movement only. Its settings were validated when the session
                // was prepared (`Session::new`), so the switch cannot fail. An assisted block with the progression
                // rule adapts the arm-weight support (`aan.support`): its trials run with the adapted support, which
                // adds to the block's prescription and is never below it. The support is withdrawn by at most
                // `gravity.support_withdraw_step` per trial (a block start after a block with more support hands the
                // load over in steps); it adapts only on a trial run at its setting.
                let mut settings = self.session.blocks()[block].settings();
                let prescribed = settings.arm_support;
                let adaptive = self.progression_applies(block) && self.controller.config().aan.support.adaptive;
                if adaptive {
                    settings.arm_support = self.controller.adaptation().arm_support.unwrap_or(0.0).max(prescribed);
                }
                let target = settings.arm_support;
                let step = self.controller.config().gravity.support_withdraw_step;
                settings.arm_support = self.movement_support.map_or(target, |last| target.max(last - step));
                self.movement_support = Some(settings.arm_support);
                self.controller.set_validated_mode(settings);
                let at_setting = settings.arm_support == target;
                self.controller.set_support_adaptation((adaptive && at_setting).then_some(prescribed));
                // The protocol validated the tolerance (0.005..=0.5 rad) when the session was prepared.
                self.controller.set_validated_trial_tolerance(self.session.blocks()[block].spec.tolerance);
                // The rest before the trial must neither adapt a law nor enter the trial's metrics.
                self.controller.reset_trial_statistics();
                out = TherapyEvent::TrialStarted { block, trial };
            }
            SessionEvent::TrialEnded { block, trial, reached, .. } => {
                // Close the trial on its own ticks (the movement), before this tick's rest hold.
                let metrics = self.controller.end_trial_with_outcome(Some(reached));
                self.performance.trials += 1;
                self.performance.successes += u32::from(reached);
                if self.progression_applies(block) {
                    // Sliding-window progression: the next trial is planned with the scales it decided.
                    self.controller.record_trial_outcome(reached);
                    self.session.set_duration_scale(self.controller.adaptation().duration_scale);
                }
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
                let progression = if self.progression_applies(block) {
                    // The block end decides on the trials the window has not decided on yet.
                    let pending = self.controller.adaptation().pending_performance();
                    let decision = self.controller.end_block(&pending);
                    self.session.set_duration_scale(self.controller.adaptation().duration_scale);
                    Some(decision)
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
