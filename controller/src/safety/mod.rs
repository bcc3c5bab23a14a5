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
//!
//! Files: `config` ([`SafetyConfig`] and its ranges, the patient's [`RomLimit`], the per-joint limits merged from
//! configuration, robot and ROM), [`shaping`] (the limit stages as pure functions), `supervisor` (the state
//! machine, [`SafetySupervisor`]), `outcome` (what it reports: [`SafetyOutcome`], [`StopReason`], [`SafetyState`],
//! [`SafetyStats`]) and `report` (what the controller tells it: [`ControllerReport`]).

mod config;
pub(crate) mod outcome;
mod report;
pub mod shaping;
mod supervisor;

pub use config::{JointSafetyConfig, RomLimit, SafetyConfig};
pub use outcome::{LimitCounts, SafetyOutcome, SafetyState, SafetyStats, StopReason};
pub use report::ControllerReport;
pub use supervisor::SafetySupervisor;
