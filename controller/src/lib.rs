//! # plexo-controller
//!
//! The torque a patient feels: impedance and assist-as-needed control laws, the patient-effort observer,
//! therapy modes, tasks and protocols, and the safety supervisor every command passes through.
//!
//! The runtime owns the loop; one tick is
//!
//! ```text
//! robot.read(&mut state)
//! let (mut cmd, event) = therapy.update(&state, t);            // Session → Controller (pure step)
//! let outcome = supervisor.apply(&state, therapy.controller().report(), &mut cmd, now);
//! robot.write(&cmd)                                            // always the supervised command
//! ```
//!
//! - [`Controller`]: `update(&state, &reference, t) -> JointCommand`, allocation-free; adaptation state in
//!   [`AdaptationState`] (serde, versioned) to resume across sessions: save [`Therapy::adaptation_state`] at the
//!   end of a session ([`AdaptationState::save`]) and start the next one with [`Therapy::resume_from`]
//!   ([`AdaptationState::load`]).
//! - [`SafetySupervisor`]: `apply(..) -> SafetyOutcome`; see `SAFETY.md` for every limit and its reasoning.
//! - [`Protocol`] / [`Session`] / [`Therapy`]: protocol files, trial sequencing, per-trial and per-block
//!   adaptation.

// Per-joint index loops mirror the equations (τ_j = K_j e_j + …) over several arrays at once.
#![allow(clippy::needless_range_loop)]

pub mod aan;
mod config;
mod controller;
pub mod effort;
mod error;
pub mod observer;
mod protocol;
pub mod safety;
mod session;
pub mod tasks;
mod therapy;

pub use aan::{ADAPTATION_STATE_VERSION, AanLaw, AdaptationState, BlockPerformance, ClampedValue, Progression};
pub use config::{
    AanConfig, CartesianConfig, ControllerConfig, DEFAULT_CONTROLLER_TOML, DEFAULT_EMKEN_DEADBAND_FRACTION,
    EmkenConfig, EmkenError, ErrorAugmentationConfig, FrictionConfig, GravityConfig, ImpedanceConfig,
    MIN_DAMPING_LAMBDA, ObserverConfig, ProgressionConfig, RbfConfig, ResistiveConfig, SupportAdaptationConfig,
    TunnelConfig, default_controller_toml,
};
pub use controller::{
    Controller, DEFAULT_TRIAL_TOLERANCE, Mode, ModeSettings, Space, TrialMetrics, attach_patient_arm,
};
pub use error::ControllerError;
pub use observer::MomentumObserver;
pub use protocol::{
    BlockSpec, DEFAULT_ONSET_DISTANCE, DEFAULT_PROTOCOLS, Posture, Protocol, TargetKind, TargetSetSpec,
    default_protocol_toml,
};
pub use safety::{
    ControllerReport, JointSafetyConfig, LimitCounts, RomLimit, SafetyConfig, SafetyOutcome, SafetyState, SafetyStats,
    SafetySupervisor, StopReason,
};
pub use session::{PreparedBlock, Session, SessionEvent, TrialPlan};
pub use tasks::{MinimumJerk, TaskReference, minimum_jerk_phase_of, minimum_jerk_profile};
pub use therapy::{REST_HOLD, Therapy, TherapyEvent, TrialRecord};
