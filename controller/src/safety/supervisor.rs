//! The supervisor's state machine: the checks that stop, the soft start, spasm detection, and the command it
//! writes in each state (the controller's torque through the limit stages of [`super::shaping`], or the damped
//! hold of a stop). See the [module documentation](super) for the states and their transitions.

use core::time::Duration;

use plexo_hal::{JointArray, JointCommand, JointInfo, JointState, MAX_JOINTS};

use super::config::{CONFIG_FILE, EffectiveLimits, RomLimit, SafetyConfig, effective_limits};
use super::outcome::{SafetyOutcome, SafetyState, SafetyStats, StopReason};
use super::report::ControllerReport;
use super::shaping::{Shaped, changed, rate_limit, saturate, soft_walls, velocity_fade};
use crate::error::ControllerError;

/// The safety supervisor. See the module documentation.
#[derive(Clone, Debug)]
pub struct SafetySupervisor {
    config: SafetyConfig,
    dof: usize,
    /// Per-joint limits after merging configuration, robot and patient ROM.
    limits: [EffectiveLimits; MAX_JOINTS],
    state: SafetyState,
    reason: Option<StopReason>,
    enable_requested: bool,
    ramp_start: Option<Duration>,
    last_apply: Option<Duration>,
    prev_torque: JointArray<f64>,
    ramp_from: JointArray<f64>,
    spasm_timer: JointArray<f64>,
    spasm_joint: usize,
    last_stamp: Option<Duration>,
    stale_count: u32,
    last_values: Option<(JointArray<f64>, JointArray<f64>, JointArray<f64>)>,
    frozen_count: u32,
    nonfinite_count: u32,
    safe_stop_since: Duration,
    /// Start of the current stretch of motion in SafeStop (reset by every standstill sample).
    moving_since: Duration,
    /// Posture held in SafeStop [rad], per joint once a finite position was seen after the stop began.
    stop_anchor: JointArray<f64>,
    stop_anchored: [bool; MAX_JOINTS],
    /// Distance beyond each joint's effective limit tolerated now [rad]: `position_tolerance`, or more for a joint
    /// enabled outside its range (`enable_outside_max`), shrinking as it comes back.
    limit_allowance: [f64; MAX_JOINTS],
    /// The allowance is latched from the first finite sample after (re-)enabling.
    allowance_pending: bool,
    stats: SafetyStats,
}

impl SafetySupervisor {
    /// Builds a supervisor for the robot's `joints` (names, hard limits), the configuration and the patient's
    /// range of motion (`rom[i]` for joint `i`; `None` = the robot's hard limits). Validates every number and
    /// names the key at fault. Not real-time safe.
    pub fn new(config: &SafetyConfig, joints: &[JointInfo], rom: Option<&[RomLimit]>) -> Result<Self, ControllerError> {
        config.validate(CONFIG_FILE)?;
        let limits = effective_limits(config, joints, rom)?;
        let dof = joints.len();
        Ok(Self {
            config: config.clone(),
            dof,
            limits,
            state: SafetyState::Disabled,
            reason: None,
            enable_requested: false,
            ramp_start: None,
            last_apply: None,
            prev_torque: JointArray::splat(dof, 0.0),
            ramp_from: JointArray::splat(dof, 0.0),
            spasm_timer: JointArray::splat(dof, 0.0),
            spasm_joint: 0,
            last_stamp: None,
            stale_count: 0,
            last_values: None,
            frozen_count: 0,
            nonfinite_count: 0,
            safe_stop_since: Duration::ZERO,
            moving_since: Duration::ZERO,
            stop_anchor: JointArray::splat(dof, 0.0),
            stop_anchored: [false; MAX_JOINTS],
            limit_allowance: [config.position_tolerance; MAX_JOINTS],
            allowance_pending: false,
            stats: SafetyStats::default(),
        })
    }

    /// Number of joints.
    pub fn dof(&self) -> usize {
        self.dof
    }

    /// Current state. Real-time safe.
    pub fn state(&self) -> SafetyState {
        self.state
    }

    /// The reason of the current SafeStop or Fault, if any. Real-time safe.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.reason
    }

    /// Tick statistics (overruns, longest interval). Real-time safe.
    pub fn stats(&self) -> SafetyStats {
        self.stats
    }

    /// The effective position limits of joint `joint` [rad]: the tighter of hard limit and patient ROM.
    pub fn effective_limits(&self, joint: usize) -> (f64, f64) {
        (self.limits[joint].lower, self.limits[joint].upper)
    }

    /// The robot's hard limits of joint `joint` [rad].
    pub fn hard_limits(&self, joint: usize) -> (f64, f64) {
        self.limits[joint].hard
    }

    /// Torque saturation of joint `joint` [Nm].
    pub fn torque_max(&self, joint: usize) -> f64 {
        self.limits[joint].torque_max
    }

    /// Torque-rate limit of joint `joint` [Nm/s].
    pub fn torque_rate_max(&self, joint: usize) -> f64 {
        self.limits[joint].torque_rate_max
    }

    /// Soft-wall width of joint `joint` after clipping to a quarter of the range [rad].
    pub fn wall_width(&self, joint: usize) -> f64 {
        self.limits[joint].wall_width
    }

    /// Velocity limit of joint `joint` [rad/s].
    pub fn velocity_max(&self, joint: usize) -> f64 {
        self.limits[joint].velocity_max
    }

    /// The posture the current SafeStop holds for joint `joint` [rad] (latched at the first finite sample after
    /// the stop began, clamped into the effective limits); `None` outside SafeStop or before it latched.
    /// Real-time safe.
    pub fn stop_anchor(&self, joint: usize) -> Option<f64> {
        (self.state == SafetyState::SafeStop && self.stop_anchored[joint]).then(|| self.stop_anchor[joint])
    }

    /// The configuration.
    pub fn config(&self) -> &SafetyConfig {
        &self.config
    }

    /// Replaces the patient's ROM (e.g. after a new assessment). Only while Disabled. Not real-time safe.
    pub fn set_rom(&mut self, joints: &[JointInfo], rom: &[RomLimit]) -> Result<(), ControllerError> {
        if self.state != SafetyState::Disabled {
            return Err(ControllerError::InvalidTransition { action: "change the ROM", state: self.state });
        }
        *self = Self::new(&self.config, joints, Some(rom))?;
        Ok(())
    }

    /// Operator: Disabled → Enabling. The ramp starts at the next `apply`. The runtime must make the
    /// controller hold the **measured** state before this (e.g. `Controller::start`), so the first torque is
    /// the hold torque, faded in from zero. Real-time safe.
    pub fn request_enable(&mut self) -> Result<(), ControllerError> {
        if self.state != SafetyState::Disabled {
            return Err(ControllerError::InvalidTransition { action: "enable", state: self.state });
        }
        self.enter(SafetyState::Enabling, None);
        self.enable_requested = true;
        Ok(())
    }

    /// Operator: CompliantRelease → Enabling (a new soft start). As for enabling, the controller must first
    /// re-latch its reference on the measured state. Real-time safe.
    pub fn request_resume(&mut self) -> Result<(), ControllerError> {
        if self.state != SafetyState::CompliantRelease {
            return Err(ControllerError::InvalidTransition { action: "resume", state: self.state });
        }
        self.enter(SafetyState::Enabling, None);
        self.enable_requested = true;
        Ok(())
    }

    /// Operator: controlled stop (category 2) from any torque state. Real-time safe.
    pub fn request_stop(&mut self, now: Duration) {
        if matches!(self.state, SafetyState::Enabling | SafetyState::Active | SafetyState::CompliantRelease) {
            self.safe_stop_since = now;
            self.moving_since = now;
            self.enter(SafetyState::SafeStop, Some(StopReason::OperatorStop));
        }
    }

    /// Operator: torque off without a fault (end of session, arm resting). From Enabling, Active,
    /// CompliantRelease or SafeStop; a Fault needs `reset`. Real-time safe.
    pub fn request_disable(&mut self) -> Result<(), ControllerError> {
        if self.state == SafetyState::Fault {
            return Err(ControllerError::InvalidTransition { action: "disable", state: self.state });
        }
        self.enter(SafetyState::Disabled, None);
        Ok(())
    }

    /// Emergency stop: category 0 (torque off at the next `apply`), latched until `reset`. Real-time safe.
    pub fn estop(&mut self) {
        self.enter(SafetyState::Fault, Some(StopReason::EStop));
    }

    /// Operator: SafeStop/Fault (including an e-stop) → Disabled, after the cause is cleared. Never re-enables by
    /// itself. Real-time safe.
    pub fn reset(&mut self) -> Result<(), ControllerError> {
        if !matches!(self.state, SafetyState::SafeStop | SafetyState::Fault | SafetyState::Disabled) {
            return Err(ControllerError::InvalidTransition { action: "reset", state: self.state });
        }
        self.enter(SafetyState::Disabled, None);
        Ok(())
    }

    fn enter(&mut self, state: SafetyState, reason: Option<StopReason>) {
        if state == SafetyState::Fault && self.state == SafetyState::Fault {
            return; // keep the first (latched) reason
        }
        self.state = state;
        self.reason = reason;
        self.enable_requested = false;
        self.ramp_start = None;
        self.nonfinite_count = 0;
        self.spasm_timer.fill(0.0);
        // A new stop holds the posture where it begins (latched at the next finite sample of each joint).
        self.stop_anchored = [false; MAX_JOINTS];
        if matches!(state, SafetyState::Disabled | SafetyState::Fault) {
            self.prev_torque.fill(0.0);
        }
        // A (re-)enable fades from the torque applied now (zero after Disabled, the hold torque after a
        // compliant release) to the controller's torque: no step either way.
        self.ramp_from = self.prev_torque;
        // Position allowances are latched again from the posture at a (re-)enable and dropped when torque goes
        // off; a release or a stop keeps them (a joint still coming back inside is not stopped for it).
        if matches!(state, SafetyState::Enabling | SafetyState::Disabled | SafetyState::Fault) {
            self.limit_allowance = [self.config.position_tolerance; MAX_JOINTS];
        }
        self.allowance_pending = state == SafetyState::Enabling;
    }

    fn safe_stop(&mut self, reason: StopReason, now: Duration) {
        if matches!(self.state, SafetyState::Enabling | SafetyState::Active | SafetyState::CompliantRelease) {
            self.safe_stop_since = now;
            self.moving_since = now;
            self.enter(SafetyState::SafeStop, Some(reason));
        }
    }

    fn fault(&mut self, reason: StopReason) {
        if self.state != SafetyState::Disabled {
            self.enter(SafetyState::Fault, Some(reason));
        }
    }

    /// Checks and limits `command` for this tick, advancing the state machine. Call after **every** controller
    /// update, also while disabled (the command is then zeroed). `now` is a monotonic clock [s since any epoch];
    /// the watchdog measures the interval between calls with it. Real-time safe: no allocation, bounded time.
    pub fn apply(
        &mut self,
        state: &JointState,
        report: &ControllerReport,
        command: &mut JointCommand,
        now: Duration,
    ) -> SafetyOutcome {
        let n = self.dof;
        self.stats.ticks += 1;
        // --- tick watchdog
        let interval = self.last_apply.map_or(0.0, |last| now.saturating_sub(last).as_secs_f64());
        self.last_apply = Some(now);
        self.stats.max_interval = self.stats.max_interval.max(interval);
        if interval > self.config.overrun_factor * self.config.period {
            self.stats.overruns += 1;
        }
        // --- structural checks: a wrong joint count cannot be limited joint by joint
        if state.dof() != n || command.dof() != n {
            let got = if state.dof() != n { state.dof() } else { command.dof() };
            self.fault(StopReason::JointCountMismatch { expected: n, got });
            *command = JointCommand::zeros(n);
            return self.outcome(false, now);
        }
        if let Some(joint) = state.first_faulted_joint() {
            self.fault(StopReason::DriveFault { joint });
        }
        // --- stale / frozen sensor
        let stale = self.update_stale(state);
        let state_finite = state.is_finite();
        // --- position allowances: latched at the (re-)enable, shrinking as a joint comes back inside
        if state_finite && self.state.passes_controller_torque() {
            self.update_limit_allowance(state);
        }
        // --- checks that stop the controller
        if self.state.passes_controller_torque() || self.state == SafetyState::CompliantRelease {
            if interval > self.config.watchdog_timeout {
                self.safe_stop(StopReason::Watchdog { interval }, now);
            } else if !state_finite {
                self.safe_stop(StopReason::NonFiniteState, now);
            } else if let Some(samples) = stale {
                self.safe_stop(StopReason::StaleSensor { samples }, now);
            } else if !report.is_finite() || report.interaction_torque.len() != n || report.hold_torque.len() != n {
                self.safe_stop(StopReason::NonFiniteController, now);
            } else if !command.is_finite() {
                self.safe_stop(StopReason::NonFiniteCommand, now);
            } else if let Some(reason) = self.limit_violation(state) {
                self.safe_stop(reason, now);
            }
        }
        if self.state == SafetyState::SafeStop {
            self.nonfinite_count = if state_finite { 0 } else { self.nonfinite_count + 1 };
            if self.nonfinite_count >= self.config.nonfinite_fault_samples {
                self.fault(StopReason::NonFiniteState);
            } else if let Some(samples) = stale
                && self.safe_stop_since < now
            {
                // Still stale after the tick that entered the stop: the standstill cannot be monitored.
                self.fault(StopReason::StaleSensor { samples });
            } else if self.standstill(state) {
                self.moving_since = now;
            } else if now.saturating_sub(self.moving_since).as_secs_f64() > self.config.safe_stop_timeout {
                // Standstill monitoring: the arm moved for the whole timeout without a single standstill sample
                // (never came to rest, or is being pushed around). A noisy sample at rest does not count.
                self.fault(StopReason::StandstillTimeout);
            }
        }
        // --- spasm detection (only while the controller acts)
        if self.state.passes_controller_torque() {
            let dt = interval.min(self.config.watchdog_timeout);
            for j in 0..n {
                if report.interaction_torque[j].abs() > self.limits[j].spasm_threshold {
                    self.spasm_timer[j] += dt;
                } else {
                    self.spasm_timer[j] = 0.0;
                }
                if self.spasm_timer[j] >= self.config.spasm_time && self.config.spasm_time >= 0.0 && dt > 0.0 {
                    self.spasm_joint = j;
                    self.enter(SafetyState::CompliantRelease, None);
                    break;
                }
            }
        }
        // --- soft-start ramp
        let mut factor = 1.0;
        if self.state == SafetyState::Enabling {
            let start = *self.ramp_start.get_or_insert(now);
            let elapsed = now.saturating_sub(start).as_secs_f64();
            factor = if self.config.soft_start_time > 0.0 {
                (elapsed / self.config.soft_start_time).clamp(0.0, 1.0)
            } else {
                1.0
            };
            if factor >= 1.0 {
                self.state = SafetyState::Active;
            }
        }
        // --- produce the command
        let limited = match self.state {
            SafetyState::Disabled | SafetyState::Fault => {
                *command = JointCommand::zeros(n);
                self.prev_torque.fill(0.0);
                false
            }
            SafetyState::Enabling | SafetyState::Active => {
                let shaped = self.shape_controller_command(state, command, factor);
                let counts = &mut self.stats.limited_by;
                counts.saturation += u64::from(shaped.saturation);
                counts.velocity_fade += u64::from(shaped.velocity_fade);
                counts.walls += u64::from(shaped.walls);
                counts.rate += u64::from(shaped.rate);
                shaped.any()
            }
            SafetyState::CompliantRelease => {
                self.damped_hold(state, report, command, self.config.release_damping, 0.0);
                true
            }
            SafetyState::SafeStop => {
                let (d, k) = (self.config.safe_stop_damping, self.config.safe_stop_stiffness);
                self.damped_hold(state, report, command, d, k);
                true
            }
        };
        if limited {
            self.stats.intervention_ticks += 1;
        }
        self.outcome(limited, now)
    }

    fn outcome(&self, limited: bool, _now: Duration) -> SafetyOutcome {
        match self.state {
            SafetyState::Disabled => SafetyOutcome::Disabled,
            SafetyState::Enabling => SafetyOutcome::Enabling { factor: self.ramp_factor_hint() },
            SafetyState::Active => SafetyOutcome::Active { limited },
            SafetyState::CompliantRelease => SafetyOutcome::CompliantRelease { joint: self.spasm_joint },
            SafetyState::SafeStop => SafetyOutcome::SafeStop {
                reason: self.reason.unwrap_or(StopReason::OperatorStop),
                standstill: self.last_standstill(),
            },
            SafetyState::Fault => SafetyOutcome::Fault { reason: self.reason.unwrap_or(StopReason::EStop) },
        }
    }

    fn ramp_factor_hint(&self) -> f64 {
        match (self.ramp_start, self.last_apply) {
            (Some(start), Some(now)) if self.config.soft_start_time > 0.0 => {
                (now.saturating_sub(start).as_secs_f64() / self.config.soft_start_time).clamp(0.0, 1.0)
            }
            _ => 0.0,
        }
    }

    fn last_standstill(&self) -> bool {
        self.last_values.as_ref().is_some_and(|(_, v, _)| v.iter().all(|v| v.abs() <= self.config.standstill_velocity))
    }

    fn standstill(&self, state: &JointState) -> bool {
        state.velocity.iter().all(|v| v.abs() <= self.config.standstill_velocity)
    }

    fn update_stale(&mut self, state: &JointState) -> Option<u32> {
        if self.last_stamp == Some(state.stamp) {
            self.stale_count = self.stale_count.saturating_add(1);
        } else {
            self.stale_count = 0;
        }
        self.last_stamp = Some(state.stamp);
        let same = self.last_values.as_ref().is_some_and(|(p, v, t)| {
            bit_equal(p, &state.position) && bit_equal(v, &state.velocity) && bit_equal(t, &state.torque)
        });
        self.frozen_count = if same { self.frozen_count.saturating_add(1) } else { 0 };
        self.last_values = Some((state.position, state.velocity, state.torque));
        if self.config.stale_samples > 0 && self.stale_count >= self.config.stale_samples {
            Some(self.stale_count)
        } else if self.config.frozen_samples > 0 && self.frozen_count >= self.config.frozen_samples {
            Some(self.frozen_count)
        } else {
            None
        }
    }

    /// How far `q` lies outside joint `j`'s effective limits [rad] (0 inside).
    fn outside(&self, j: usize, q: f64) -> f64 {
        let l = &self.limits[j];
        (l.lower - q).max(q - l.upper).max(0.0)
    }

    /// At the first finite sample after a (re-)enable, a joint outside its effective limits by at most
    /// `enable_outside_max` is allowed to stay as far out as it is (plus the tolerance); on every later sample
    /// the allowance shrinks to how far out the joint is now (never below the tolerance): it may come back, not
    /// go further. Real-time safe.
    fn update_limit_allowance(&mut self, state: &JointState) {
        let tol = self.config.position_tolerance;
        for j in 0..self.dof {
            let excess = self.outside(j, state.position[j]);
            if self.allowance_pending {
                self.limit_allowance[j] = if excess <= self.config.enable_outside_max { tol + excess } else { tol };
            } else {
                self.limit_allowance[j] = self.limit_allowance[j].min(tol + excess).max(tol);
            }
        }
        self.allowance_pending = false;
    }

    fn limit_violation(&self, state: &JointState) -> Option<StopReason> {
        for j in 0..self.dof {
            let (q, v, l) = (state.position[j], state.velocity[j], &self.limits[j]);
            if self.outside(j, q) > self.limit_allowance[j] {
                return Some(StopReason::PositionLimit { joint: j, position: q });
            }
            if v.abs() > l.velocity_max {
                return Some(StopReason::VelocityLimit { joint: j, velocity: v });
            }
        }
        None
    }

    /// Walls, velocity fade, saturation and rate limit of one joint's total torque `tau` [Nm]. `q`/`qd` must be
    /// finite (the callers check). `wall_scale` ∈ [0, 1] scales the wall's spring–damper (the soft-start factor
    /// while enabling: a resting arm often lies in a wall zone, e.g. hanging against the abduction stop, and a
    /// full-strength wall at enable would kick it); the fade of outward torque always acts in full.
    ///
    /// The request is saturated first, so an oversized command keeps its direction but never outweighs the
    /// wall's push-back. Huge but finite inputs (a sensor reporting 1e300 rad) can overflow a wall term to ±∞:
    /// that saturates with its sign — the wall pushes back with the full torque limit, and the damper brakes with
    /// it — rather than collapsing to zero. No NaN can arise for finite `q`/`qd`; should one ever reach the final
    /// stage it is treated as zero torque, reached at the rate limit (see [`Self::saturate_and_rate_limit`]).
    fn shape_joint(&self, j: usize, tau: f64, q: f64, qd: f64, wall_scale: f64) -> (f64, Shaped) {
        let l = &self.limits[j];
        let mut shaped = Shaped::default();
        let requested = tau;
        let tau = saturate(requested, l.torque_max);
        shaped.saturation = requested.is_nan() || changed(tau, requested);
        let faded = velocity_fade(
            tau,
            qd,
            l.velocity_max,
            self.config.velocity_soft_fraction,
            self.config.velocity_brake_damping,
        );
        shaped.velocity_fade = changed(faded, tau);
        let walled = soft_walls(faded, q, qd, &l.walls(), wall_scale);
        shaped.walls = changed(walled, faded);
        let out = self.saturate_and_rate_limit(j, walled);
        let saturated = walled.clamp(-l.torque_max, l.torque_max);
        shaped.saturation |= changed(saturated, walled);
        shaped.rate = changed(out, saturated);
        (out, shaped)
    }

    /// Saturation and rate limit of joint `j`'s torque [Nm]. ±∞ saturates with its sign. NaN has no direction:
    /// it is treated as zero torque, approached at the rate limit from the previous output (defensive: the
    /// callers never produce one from finite inputs).
    fn saturate_and_rate_limit(&self, j: usize, tau: f64) -> f64 {
        let l = &self.limits[j];
        let step = l.torque_rate_max * self.config.period;
        rate_limit(saturate(tau, l.torque_max), self.prev_torque[j], step).clamp(-l.torque_max, l.torque_max)
    }

    fn shape_controller_command(&mut self, state: &JointState, command: &mut JointCommand, factor: f64) -> Shaped {
        let mut limited = false;
        let mut shaped = Shaped::default();
        let stiffness_max = self.config.drive_stiffness_max;
        let damping_max = self.config.drive_damping_max;
        for j in 0..self.dof {
            let (q, qd) = (state.position[j], state.velocity[j]);
            let l = self.limits[j];
            // Fold a drive-side impedance into the total torque it would produce now, with bounded gains.
            let mut drive_part = 0.0;
            if let Some(d) = command.drive_impedance.as_mut() {
                let k0 = d.stiffness[j];
                let b0 = d.damping[j];
                d.stiffness[j] = (k0 * factor).clamp(0.0, stiffness_max);
                d.damping[j] = (b0 * factor).clamp(0.0, damping_max);
                d.position[j] = d.position[j].clamp(l.lower, l.upper);
                d.velocity[j] = d.velocity[j].clamp(-l.velocity_max, l.velocity_max);
                limited |= d.stiffness[j] != k0 * factor || d.damping[j] != b0 * factor;
                drive_part = d.stiffness[j] * (d.position[j] - q) + d.damping[j] * (d.velocity[j] - qd);
            }
            let requested = factor * command.torque[j] + (1.0 - factor) * self.ramp_from[j] + drive_part;
            let (total, joint_shaped) = self.shape_joint(j, requested, q, qd, factor);
            shaped.merge(joint_shaped);
            limited |= changed(total, requested);
            command.torque[j] = total - drive_part;
            self.prev_torque[j] = total;
        }
        // Bounded drive gains count as saturation; any other difference (none is known) as well, so that a
        // limited tick always has a cause.
        if limited && !shaped.any() {
            shaped.saturation = true;
        }
        shaped
    }

    /// The hold of SafeStop and CompliantRelease: the controller's hold torque (gravity of the robot + the
    /// supported share of the arm, computed whenever the measured positions are finite) plus, in SafeStop, a
    /// spring of `stiffness` to the posture where the stop began (bounded by `safe_stop_hold_max`), minus
    /// `damping`·q̇, through walls, saturation and the rate limit. With an unknown (NaN/Inf) velocity the hold
    /// still acts, without damping; with an unknown position there is nothing to hold against and the torque
    /// fades to zero at the rate limit (a persisting NaN escalates to Fault).
    fn damped_hold(
        &mut self,
        state: &JointState,
        report: &ControllerReport,
        command: &mut JointCommand,
        damping: f64,
        stiffness: f64,
    ) {
        let n = self.dof;
        let hold_max = self.config.safe_stop_hold_max;
        for j in 0..n {
            let (q, qd) = (state.position[j], state.velocity[j]);
            let hold = report.hold_torque.get(j).copied().filter(|h| h.is_finite()).unwrap_or(0.0);
            let tau = if q.is_finite() {
                let v = if qd.is_finite() { qd } else { 0.0 };
                let mut spring = 0.0;
                if stiffness > 0.0 {
                    if !self.stop_anchored[j] {
                        let l = &self.limits[j];
                        self.stop_anchor[j] = q.clamp(l.lower, l.upper);
                        self.stop_anchored[j] = true;
                    }
                    spring = (stiffness * (self.stop_anchor[j] - q)).clamp(-hold_max, hold_max);
                }
                self.shape_joint(j, hold + spring - damping * v, q, v, 1.0).0
            } else {
                self.saturate_and_rate_limit(j, 0.0)
            };
            command.torque[j] = tau;
            self.prev_torque[j] = tau;
        }
        command.torque = self.prev_torque;
        command.drive_impedance = None;
    }
}

fn bit_equal(a: &JointArray<f64>, b: &JointArray<f64>) -> bool {
    a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.to_bits() == y.to_bits())
}
