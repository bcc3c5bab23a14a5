//! The safety supervisor: the last stage between any controller and the motors.
//!
//! The runtime applies it after **every** controller update, in every mode:
//!
//! ```text
//! robot.read(&mut state) → controller.update(..) → supervisor.apply(&state, controller.report(), &mut cmd, now)
//!                        → robot.write(&cmd)          (and react to the returned SafetyOutcome)
//! ```
//!
//! It owns the safety state machine (IEC 60204-1 stop categories, see `SAFETY.md`):
//!
//! ```text
//!  Disabled ──request_enable──► Enabling ──ramp done──► Active ──spasm──► CompliantRelease
//!     ▲                            │                       │                  │ request_resume → Enabling
//!     │ reset()                    └──────── any check fails (NaN, limit, watchdog, stale) ──► SafeStop (cat. 2)
//!     │                                                                                          │ timeout, NaN
//!     └──────────────────────── reset() ◄──── Fault (cat. 0, torque off, latched; estop()) ◄─────┘ persists,
//!                                                                                                 drive fault
//! ```
//!
//! Every output it writes is finite, within the per-joint torque limit, within the torque-rate limit of the
//! previous output (except when torque is cut to zero in `Fault`/`Disabled`), and never pushes a joint further
//! beyond its effective position limit (the tighter of the robot's hard limit and the patient's ROM).
//!
//! Non-finite and absurd values: a NaN/Inf anywhere in the state, the controller's report or the command stops
//! (category 2) with the hold torque the controller computed from the measured posture; a NaN/Inf *position*
//! leaves nothing to hold against, so that joint's torque fades to zero at the rate limit and a persisting NaN
//! escalates to Fault. Huge finite values (1e300) that overflow a limit term saturate with their sign (full
//! push-back or braking within the torque limit) instead of collapsing to zero.

use core::time::Duration;

use plexo_hal::{JointArray, JointCommand, JointInfo, JointState, MAX_JOINTS};
use serde::{Deserialize, Serialize};

use crate::error::{ControllerError, check_range};

/// Configuration of the supervisor (the `[safety]` table of `controller.toml`). Every number is explained in
/// `SAFETY.md`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyConfig {
    /// Nominal control period [s] (0.001 = 1 kHz). Used for the torque-rate limit and the overrun count.
    pub period: f64,
    /// Longest allowed interval between two `apply` calls [s] before a safe stop (Franka: 20 missed 1 kHz
    /// commands = 0.02 s).
    pub watchdog_timeout: f64,
    /// A tick counts as an overrun when its interval exceeds `overrun_factor × period` [-] (statistics only).
    pub overrun_factor: f64,
    /// Soft-start ramp duration on enable and on resume [s] (Open-Source Leg SDK: ~1 s).
    pub soft_start_time: f64,
    /// Distance beyond an effective position limit that triggers a safe stop [rad].
    pub position_tolerance: f64,
    /// Largest distance outside an effective position limit at which a joint may still be enabled [rad]. A
    /// relaxed arm in a torque-off robot can rest outside the patient's range (gravity against a contracture:
    /// an elbow hanging at 8.6° below a ROM that starts at 11.5°); such a joint enables, the soft wall brings it
    /// back inside, and it may never move further out than where it was enabled (the allowance shrinks as it
    /// comes back, down to `position_tolerance`). Farther outside, enabling stops (`PositionLimit`).
    pub enable_outside_max: f64,
    /// Fraction of the velocity limit above which torque along the motion is faded out [-].
    pub velocity_soft_fraction: f64,
    /// Joint damping applied in SafeStop [Nm·s/rad].
    pub safe_stop_damping: f64,
    /// Stiffness of the SafeStop position hold [Nm/rad]: a spring to the posture measured when the stop began
    /// (clamped into the effective limits), as a drive's safe operating stop (IEC 61800-5-2 SS2/SOS) holds the
    /// stop position. Without it the patient's passive tissue drifts a gravity-compensated arm out of standstill.
    pub safe_stop_stiffness: f64,
    /// Largest torque of the SafeStop position spring per joint [Nm]: it holds against passive tissue, tone and
    /// tremor but never fights a deliberate push or a spasm harder than this.
    pub safe_stop_hold_max: f64,
    /// Joint damping applied in CompliantRelease [Nm·s/rad].
    pub release_damping: f64,
    /// Speed below which every joint counts as standing still [rad/s].
    pub standstill_velocity: f64,
    /// Standstill monitoring in SafeStop [s]: a stretch of motion (some joint faster than `standstill_velocity`)
    /// longer than this without a single standstill sample escalates to Fault — the arm did not come to rest
    /// after the stop began, or is being moved against the stop.
    pub safe_stop_timeout: f64,
    /// Consecutive non-finite state samples in SafeStop before escalating to Fault [-].
    pub nonfinite_fault_samples: u32,
    /// Consecutive samples with a non-advancing time stamp that count as a stale sensor [-]; 0 disables.
    pub stale_samples: u32,
    /// Consecutive samples with bit-identical position, velocity and torque that count as a frozen sensor [-];
    /// 0 disables.
    pub frozen_samples: u32,
    /// How long the estimated interaction torque must exceed a joint's spasm threshold [s].
    pub spasm_time: f64,
    /// Largest drive-side stiffness accepted in a command [Nm/rad].
    pub drive_stiffness_max: f64,
    /// Largest drive-side damping accepted in a command [Nm·s/rad].
    pub drive_damping_max: f64,
    /// Per-joint limits, one entry per robot joint, by name.
    pub joints: Vec<JointSafetyConfig>,
}

/// Per-joint limits of the supervisor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JointSafetyConfig {
    /// Joint name, as in the URDF.
    pub name: String,
    /// Torque saturation [Nm] (the tighter of this and the robot's effort limit applies).
    pub torque_max: f64,
    /// Torque-rate limit [Nm/s] (Franka: 1000 Nm/s).
    pub torque_rate_max: f64,
    /// Velocity limit [rad/s] (the tighter of this and the robot's limit applies).
    pub velocity_max: f64,
    /// Width of the soft wall inside each effective position limit [rad].
    pub wall_width: f64,
    /// Soft-wall spring [Nm/rad].
    pub wall_stiffness: f64,
    /// Soft-wall damper, acting only when moving into the wall [Nm·s/rad].
    pub wall_damping: f64,
    /// Estimated interaction torque that counts as a spasm when held for `spasm_time` [Nm].
    pub spasm_threshold: f64,
}

/// The patient's range of motion for one joint [rad] (from the patient profile / clinical assessment).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RomLimit {
    /// Lowest position the patient tolerates [rad].
    pub min: f64,
    /// Highest position the patient tolerates [rad].
    pub max: f64,
}

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

/// What the controller tells the supervisor each tick besides its command.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ControllerReport {
    /// Estimated patient–robot interaction torque per joint [Nm] (momentum observer, fused with a cuff sensor
    /// when present). Used for spasm detection.
    pub interaction_torque: JointArray<f64>,
    /// Torque that holds the robot and the supported share of the arm against gravity [Nm]; used as the hold
    /// term in SafeStop and CompliantRelease. The controller computes it whenever the measured positions are
    /// finite, also on ticks whose other inputs are not (a NaN reference must not drop the arm).
    pub hold_torque: JointArray<f64>,
    /// False if any controller input (reference, gains, adapted parameters) was NaN or infinite this tick.
    pub inputs_finite: bool,
}

impl ControllerReport {
    /// A report with zero estimates and finite inputs for `dof` joints. Real-time safe.
    pub fn zeros(dof: usize) -> Self {
        Self {
            interaction_torque: JointArray::splat(dof, 0.0),
            hold_torque: JointArray::splat(dof, 0.0),
            inputs_finite: true,
        }
    }

    fn is_finite(&self) -> bool {
        self.inputs_finite && self.interaction_torque.all_finite() && self.hold_torque.all_finite()
    }
}

/// Limits of one joint after merging configuration, robot and patient ROM.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct JointLimitsRt {
    lower: f64,
    upper: f64,
    wall_width: f64,
    wall_stiffness: f64,
    wall_damping: f64,
    velocity_max: f64,
    torque_max: f64,
    torque_rate_max: f64,
    spasm_threshold: f64,
}

/// Statistics of the supervisor, for telemetry.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SafetyStats {
    /// Ticks whose interval exceeded `overrun_factor × period`.
    pub overruns: u64,
    /// Longest interval between two `apply` calls seen [s].
    pub max_interval: f64,
    /// Ticks in which the command was modified by a limit.
    pub limited_ticks: u64,
    /// Of the ticks passing the controller's torque (Enabling, Active): ticks in which each stage of the
    /// shaping changed at least one joint's torque. A tick can count in several; together they tell a limit
    /// that protects (walls, saturation, velocity fade) from one that smooths (the rate limit clipping a
    /// noisy request).
    pub limited_by: LimitCounts,
    /// Total `apply` calls.
    pub ticks: u64,
}

/// Ticks in which each shaping stage changed the controller's torque (see [`SafetyStats::limited_by`]).
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

/// Which shaping stages changed one joint's (or one tick's) torque.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Shaped {
    saturation: bool,
    velocity_fade: bool,
    walls: bool,
    rate: bool,
}

impl Shaped {
    fn any(self) -> bool {
        self.saturation || self.velocity_fade || self.walls || self.rate
    }

    fn merge(&mut self, other: Shaped) {
        self.saturation |= other.saturation;
        self.velocity_fade |= other.velocity_fade;
        self.walls |= other.walls;
        self.rate |= other.rate;
    }
}

/// `a` and `b` differ beyond rounding [Nm].
fn changed(a: f64, b: f64) -> bool {
    (a - b).abs() > 1e-12 * (1.0 + b.abs())
}

/// The safety supervisor. See the module documentation.
#[derive(Clone, Debug)]
pub struct SafetySupervisor {
    config: SafetyConfig,
    dof: usize,
    limits: [JointLimitsRt; MAX_JOINTS],
    hard: [(f64, f64); MAX_JOINTS],
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

const CONFIG_FILE: &str = "controller.toml [safety]";

impl SafetyConfig {
    /// Checks every number against its documented range; errors name `file` and the dotted key
    /// (`safety.soft_start_time`). [`ControllerConfig::validate`](crate::ControllerConfig::validate) calls it, so a
    /// bad `[safety]` table is reported against the file it came from. Not real-time safe.
    pub fn validate(&self, file: &str) -> Result<(), ControllerError> {
        SafetySupervisor::validate(self, file)
    }
}

impl SafetySupervisor {
    /// Builds a supervisor for the robot's `joints` (names, hard limits), the configuration and the patient's
    /// range of motion (`rom[i]` for joint `i`; `None` = the robot's hard limits). Validates every number and
    /// names the key at fault. Not real-time safe.
    pub fn new(config: &SafetyConfig, joints: &[JointInfo], rom: Option<&[RomLimit]>) -> Result<Self, ControllerError> {
        Self::validate(config, CONFIG_FILE)?;
        let file = CONFIG_FILE;
        if joints.len() > MAX_JOINTS {
            return Err(ControllerError::range(file, "joints", joints.len(), format!("at most {MAX_JOINTS} joints")));
        }
        for c in &config.joints {
            if !joints.iter().any(|j| j.name == c.name) {
                return Err(ControllerError::JointMismatch {
                    file: file.into(),
                    joint: c.name.clone(),
                    reason: "not a joint of the robot".into(),
                });
            }
        }
        if let Some(rom) = rom
            && rom.len() != joints.len()
        {
            return Err(ControllerError::range(
                "patient ROM",
                "rom",
                rom.len(),
                format!("need one range per robot joint ({})", joints.len()),
            ));
        }
        let mut limits = [JointLimitsRt::default(); MAX_JOINTS];
        let mut hard = [(0.0, 0.0); MAX_JOINTS];
        for (i, info) in joints.iter().enumerate() {
            let c =
                config.joints.iter().find(|c| c.name == info.name).ok_or_else(|| ControllerError::JointMismatch {
                    file: file.into(),
                    joint: info.name.clone(),
                    reason: "robot joint has no [[safety.joints]] entry".into(),
                })?;
            if info.position_min.partial_cmp(&info.position_max) != Some(core::cmp::Ordering::Less) {
                return Err(ControllerError::JointMismatch {
                    file: "robot".into(),
                    joint: info.name.clone(),
                    reason: format!("position limits [{}, {}] are empty", info.position_min, info.position_max),
                });
            }
            let (mut lower, mut upper) = (info.position_min, info.position_max);
            if let Some(r) = rom.map(|r| r[i]) {
                let key = format!("rom[{}] ({})", i, info.name);
                if !(r.min.is_finite() && r.max.is_finite() && r.min < r.max) {
                    return Err(ControllerError::range(
                        "patient ROM",
                        key,
                        format!("[{}, {}]", r.min, r.max),
                        "need finite min < max",
                    ));
                }
                lower = lower.max(r.min);
                upper = upper.min(r.max);
                if lower >= upper {
                    return Err(ControllerError::range(
                        "patient ROM",
                        key,
                        format!("[{}, {}]", r.min, r.max),
                        format!("does not overlap the robot's limits [{}, {}]", info.position_min, info.position_max),
                    ));
                }
            }
            // The two walls must not overlap: at most a quarter of the effective range each.
            let wall_width = c.wall_width.min(0.25 * (upper - lower));
            let torque_max = if info.torque_max.is_finite() && info.torque_max > 0.0 {
                c.torque_max.min(info.torque_max)
            } else {
                c.torque_max
            };
            let velocity_max = if info.velocity_max.is_finite() && info.velocity_max > 0.0 {
                c.velocity_max.min(info.velocity_max)
            } else {
                c.velocity_max
            };
            limits[i] = JointLimitsRt {
                lower,
                upper,
                wall_width,
                wall_stiffness: c.wall_stiffness,
                wall_damping: c.wall_damping,
                velocity_max,
                torque_max,
                torque_rate_max: c.torque_rate_max,
                spasm_threshold: c.spasm_threshold,
            };
            hard[i] = (info.position_min, info.position_max);
        }
        let dof = joints.len();
        Ok(Self {
            config: config.clone(),
            dof,
            limits,
            hard,
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

    fn validate(c: &SafetyConfig, f: &str) -> Result<(), ControllerError> {
        check_range(f, "safety.period", c.period, 1e-5, 0.1)?;
        check_range(f, "safety.watchdog_timeout", c.watchdog_timeout, c.period, 1.0)?;
        check_range(f, "safety.overrun_factor", c.overrun_factor, 1.0, 100.0)?;
        check_range(f, "safety.soft_start_time", c.soft_start_time, 0.0, 10.0)?;
        check_range(f, "safety.position_tolerance", c.position_tolerance, 0.0, 0.5)?;
        check_range(f, "safety.enable_outside_max", c.enable_outside_max, 0.0, 0.5)?;
        check_range(f, "safety.velocity_soft_fraction", c.velocity_soft_fraction, 0.0, 0.99)?;
        check_range(f, "safety.safe_stop_damping", c.safe_stop_damping, 0.0, 100.0)?;
        check_range(f, "safety.safe_stop_stiffness", c.safe_stop_stiffness, 0.0, 500.0)?;
        check_range(f, "safety.safe_stop_hold_max", c.safe_stop_hold_max, 0.0, 50.0)?;
        check_range(f, "safety.release_damping", c.release_damping, 0.0, 100.0)?;
        check_range(f, "safety.standstill_velocity", c.standstill_velocity, 0.0, 1.0)?;
        check_range(f, "safety.safe_stop_timeout", c.safe_stop_timeout, 0.01, 60.0)?;
        check_range(f, "safety.nonfinite_fault_samples", c.nonfinite_fault_samples as f64, 1.0, 10_000.0)?;
        check_range(f, "safety.stale_samples", c.stale_samples as f64, 0.0, 100_000.0)?;
        check_range(f, "safety.frozen_samples", c.frozen_samples as f64, 0.0, 1_000_000.0)?;
        check_range(f, "safety.spasm_time", c.spasm_time, 0.0, 10.0)?;
        check_range(f, "safety.drive_stiffness_max", c.drive_stiffness_max, 0.0, 5000.0)?;
        check_range(f, "safety.drive_damping_max", c.drive_damping_max, 0.0, 100.0)?;
        for (i, j) in c.joints.iter().enumerate() {
            let k = |name: &str| format!("safety.joints[{i}] ({}).{name}", j.name);
            check_range(f, &k("torque_max"), j.torque_max, 0.0, 500.0)?;
            check_range(f, &k("torque_rate_max"), j.torque_rate_max, 1.0, 100_000.0)?;
            check_range(f, &k("velocity_max"), j.velocity_max, 0.01, 50.0)?;
            check_range(f, &k("wall_width"), j.wall_width, 0.0, 1.0)?;
            check_range(f, &k("wall_stiffness"), j.wall_stiffness, 0.0, 10_000.0)?;
            check_range(f, &k("wall_damping"), j.wall_damping, 0.0, 1000.0)?;
            check_range(f, &k("spasm_threshold"), j.spasm_threshold, 0.0, 500.0)?;
        }
        Ok(())
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
        self.hard[joint]
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
            self.stats.limited_ticks += 1;
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
        let mut tau = if tau.is_nan() { 0.0 } else { tau.clamp(-l.torque_max, l.torque_max) };
        shaped.saturation = requested.is_nan() || changed(tau, requested);
        // Velocity fade: torque along the motion fades to zero between soft fraction and the limit.
        let v_soft = self.config.velocity_soft_fraction * l.velocity_max;
        if qd.abs() > v_soft && tau * qd > 0.0 {
            let before = tau;
            tau *= ((l.velocity_max - qd.abs()) / (l.velocity_max - v_soft)).clamp(0.0, 1.0);
            shaped.velocity_fade = changed(tau, before);
        }
        let before_walls = tau;
        // Upper wall: outward torque fades to zero at the limit, a spring–damper pushes back. (A zero
        // `wall_scale` skips the spring–damper, so no 0·∞ can arise.)
        let upper_start = l.upper - l.wall_width;
        if q > upper_start {
            let pen = q - upper_start;
            if tau > 0.0 {
                tau *= if l.wall_width > 0.0 { (1.0 - pen / l.wall_width).clamp(0.0, 1.0) } else { 0.0 };
            }
            if wall_scale > 0.0 {
                tau -= wall_scale * (l.wall_stiffness * pen + l.wall_damping * qd.max(0.0));
            }
        }
        let lower_start = l.lower + l.wall_width;
        if q < lower_start {
            let pen = lower_start - q;
            if tau < 0.0 {
                tau *= if l.wall_width > 0.0 { (1.0 - pen / l.wall_width).clamp(0.0, 1.0) } else { 0.0 };
            }
            if wall_scale > 0.0 {
                tau += wall_scale * (l.wall_stiffness * pen + l.wall_damping * (-qd).max(0.0));
            }
        }
        shaped.walls = changed(tau, before_walls);
        let out = self.saturate_and_rate_limit(j, tau);
        let saturated = tau.clamp(-l.torque_max, l.torque_max);
        shaped.saturation |= changed(saturated, tau);
        shaped.rate = changed(out, saturated);
        (out, shaped)
    }

    /// Saturation and rate limit of joint `j`'s torque [Nm]. ±∞ saturates with its sign. NaN has no direction:
    /// it is treated as zero torque, approached at the rate limit from the previous output (defensive: the
    /// callers never produce one from finite inputs).
    fn saturate_and_rate_limit(&self, j: usize, tau: f64) -> f64 {
        let l = &self.limits[j];
        let tau = if tau.is_nan() { 0.0 } else { tau };
        let tau = tau.clamp(-l.torque_max, l.torque_max);
        let step = l.torque_rate_max * self.config.period;
        let prev = self.prev_torque[j];
        tau.clamp(prev - step, prev + step).clamp(-l.torque_max, l.torque_max)
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
