//! What the supervisor tells the runtime: its state, the outcome of each tick, why it stopped, and its
//! statistics. Plain data that depends on nothing else in the crate (the error type names a [`SafetyState`]).

use serde::{Deserialize, Serialize};

/// State of the supervisor's state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SafetyState {
    /// Torque off; waiting for `request_enable`.
    Disabled,
    /// Soft-start ramp: the controller's torque is faded in from zero.
    Enabling,
    /// Normal operation with every limit enforced.
    Active,
    /// Spasm detected: no stiffness, damping and weight support only, until `request_resume`.
    CompliantRelease,
    /// IEC 60204-1 stop category 2: damped controlled stop, power kept, standstill monitored.
    SafeStop,
    /// IEC 60204-1 stop category 0: torque off, latched until `reset`.
    Fault,
}

impl SafetyState {
    /// True if the supervisor lets the controller's torque through (shaped and limited).
    pub const fn passes_controller_torque(self) -> bool {
        matches!(self, SafetyState::Enabling | SafetyState::Active)
    }
}

/// Why the supervisor stopped.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum StopReason {
    /// A state value (position, velocity, torque, sensor) is NaN or infinite.
    NonFiniteState,
    /// The controller's inputs (reference, gains, adapted parameters) or its estimates are not finite.
    NonFiniteController,
    /// The controller's command is NaN or infinite.
    NonFiniteCommand,
    /// The state, command or report has the wrong number of joints.
    JointCountMismatch {
        /// Joints of the robot.
        expected: usize,
        /// Joints received.
        got: usize,
    },
    /// A joint is beyond its effective position limit by more than the tolerance.
    PositionLimit {
        /// Joint index.
        joint: usize,
        /// Position [rad].
        position: f64,
    },
    /// A joint is faster than its velocity limit.
    VelocityLimit {
        /// Joint index.
        joint: usize,
        /// Velocity [rad/s].
        velocity: f64,
    },
    /// `apply` was not called within the watchdog timeout.
    Watchdog {
        /// Interval since the previous call [s].
        interval: f64,
    },
    /// The sensor time stamp stopped advancing, or every value stayed bit-identical.
    StaleSensor {
        /// Consecutive identical samples.
        samples: u32,
    },
    /// A drive reported a fault flag.
    DriveFault {
        /// Joint index.
        joint: usize,
    },
    /// In SafeStop the arm kept moving for the whole safe-stop timeout without coming to a standstill.
    StandstillTimeout,
    /// The operator asked for a controlled stop.
    OperatorStop,
    /// Emergency stop (latched).
    EStop,
}

/// What `apply` did this tick. The runtime writes the (possibly modified) command in every case; the outcome
/// tells it what happened and when to alert the operator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SafetyOutcome {
    /// Torque off (not enabled); the command was zeroed.
    Disabled,
    /// Soft-start ramp in progress; the controller's torque was scaled by `factor` ∈ [0, 1].
    Enabling {
        /// Ramp factor [-].
        factor: f64,
    },
    /// Normal operation. `limited` is true if a wall, the velocity fade, saturation or the rate limit changed
    /// the command.
    Active {
        /// Whether the command was modified.
        limited: bool,
    },
    /// Spasm: compliant release (damping and weight support only) until `request_resume`.
    CompliantRelease {
        /// The joint whose interaction torque exceeded its threshold.
        joint: usize,
    },
    /// Category-2 safe stop (damped, power on).
    SafeStop {
        /// Why.
        reason: StopReason,
        /// True once every joint is slower than the standstill velocity.
        standstill: bool,
    },
    /// Category-0 stop: torque off, latched until `reset`.
    Fault {
        /// Why.
        reason: StopReason,
    },
}

impl SafetyOutcome {
    /// True if the robot should be (or stay) torque-free: `Disabled` or `Fault`. The runtime may then also
    /// disable the drives. Real-time safe.
    pub const fn torque_off(&self) -> bool {
        matches!(self, SafetyOutcome::Disabled | SafetyOutcome::Fault { .. })
    }
}

/// Statistics of the supervisor, for telemetry.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SafetyStats {
    /// Ticks [count] whose interval exceeded `overrun_factor × period`.
    pub overruns: u64,
    /// Longest interval between two `apply` calls seen [s].
    pub max_interval: f64,
    /// Ticks [count of `apply` calls] in which the supervisor intervened with torque on: a shaping stage (or the
    /// bound on the drive gains) changed the controller's command in Enabling or Active (attributed per stage in
    /// [`Self::limited_by`]), or a stop replaced it with the damped hold (every CompliantRelease and SafeStop
    /// tick). Torque-off ticks (Disabled, Fault: command zeroed) and the soft-start scaling alone do not count.
    /// Not the same count as the runtime's "limited ticks" of a session, which are the ticks reported as
    /// [`SafetyOutcome::Active`] with `limited: true` only.
    pub intervention_ticks: u64,
    /// Of the ticks passing the controller's torque (Enabling, Active): ticks in which each stage of the
    /// shaping changed at least one joint's torque. A tick can count in several; together they tell a limit
    /// that protects (walls, saturation, velocity fade) from one that smooths (the rate limit clipping a
    /// noisy request).
    pub limited_by: LimitCounts,
    /// Total `apply` calls [count].
    pub ticks: u64,
}

/// Ticks [count] in which each shaping stage changed the controller's torque (see [`SafetyStats::limited_by`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitCounts {
    /// Torque saturation at the joint's torque limit.
    pub saturation: u64,
    /// Fade of the torque along a motion faster than the soft velocity.
    pub velocity_fade: u64,
    /// Soft walls before the range of motion (outward fade or push-back).
    pub walls: u64,
    /// Torque rate limit.
    pub rate: u64,
}
