//! # plexo-sim
//!
//! The simulation side of Plexo: two plants that implement [`plexo_hal::Robot`] exactly like the CAN backend,
//! a shared actuator/sensor model, and a virtual stroke patient.
//!
//! - [`RapierPlant`]: a rapier3d-f64 multibody built from a [`plexo_kinematics::Model`] (no second URDF parser),
//!   joint limits as rapier constraints, reflected rotor inertia as rapier's per-DoF armature, optional colliders
//!   (arm capsules, table) and optional compliant cuffs with interaction-torque sensing ([`CuffParams`] via
//!   [`RapierOptions::cuffs`]: the patient's arm as its own bodies on spring–damper cuffs, the patient's torques
//!   acting between the human segments, cuff sensors reporting `JointState::interaction_torque`; model in
//!   [`cuff`]). Without cuffs, and in [`ArticulatedPlant`], the arm segments are attached rigidly.
//! - [`ArticulatedPlant`]: the same dynamics integrated with plexo-kinematics (ABA, with the motors' reflected
//!   rotor inertia as joint armature), semi-implicit Euler or RK4 ([`Integrator`]) — the fast plant for sweeps and the
//!   cross-check of rapier.
//! - [`MotorBank`] / [`SensorBank`] (one implementation, used by both): gear ratio and reflected inertia,
//!   torque saturation, torque bandwidth, viscous + Coulomb friction; encoder resolution and noise, velocity by
//!   filtered differentiation, torque-sensor noise. Everything random is seeded.
//! - [`Patient`]: weakness, passive stiffness/damping and end-of-range torque, MAS-graded spasticity, flexor
//!   synergy, tremor, sensorimotor delay, minimum-jerk voluntary control, learning, slacking and fatigue
//!   (models and citations in [`patient`]). Profiles: `assets/patients/*.toml`, embedded
//!   ([`default_patient_toml`], [`PatientProfile::builtin`]).
//!
//! - [`plexo_hal::PatientHooks`] for both plants: the runtime's link to the virtual patient (trial goal and
//!   outcome, true torque, state across sessions as a TOML table: [`patient_state_to_table`]).
//!
//! Simulated time advances by exactly one control period (default 1 ms, [`PlantConfig::period`]) per `write`.
//!
//! # The API the runtime uses
//! ```
//! use plexo_hal::{JointCommand, JointState, Robot};
//! use plexo_sim::{ArticulatedPlant, PatientProfile, PlantConfig, SimulatedPlant, TrialOutcome};
//!
//! let model = plexo_kinematics::Model::from_urdf_str(plexo_kinematics::default_robot_urdf("plexo-arm4").unwrap())?;
//! let profile = PatientProfile::builtin("moderate")?;           // or PatientProfile::from_file(path)
//! let mut plant = ArticulatedPlant::new(&model, PlantConfig::default().with_patient(profile))?;
//! // (RapierPlant::new(&model, config, RapierOptions::default()) is used the same way.)
//! plant.enable()?;
//!
//! // The task tells the patient where to go: goal [rad] in joint space, movement duration [s].
//! plant.patient_mut().unwrap().set_target(&[0.3, 0.4, 0.0, 1.0], 1.5)?;
//! let mut state = JointState::zeros(plant.dof());
//! for _ in 0..500 {
//!     plant.read(&mut state)?;
//!     plant.write(&JointCommand::zeros(plant.dof()))?;   // controller + safety output goes here
//! }
//! let patient = plant.patient().unwrap();
//! let true_torque = patient.torques().total;                 // TRUE human torque [Nm], sim only
//! assert!(true_torque.all_finite());
//! // End of trial: the outcome drives learning, slacking and fatigue; then rest.
//! let new_state = plant.patient_mut().unwrap().end_trial(&TrialOutcome { error: 0.1, success: true, duration: 0.5 })?;
//! plant.patient_mut().unwrap().clear_target();
//! let saved = serde_json::to_string(&new_state)?;           // resume later with Patient::restore
//! # let _ = saved;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Per-joint quantities live in parallel fixed arrays; indexed loops over joints read clearer than zipped iterators.
#![allow(clippy::needless_range_loop)]

mod arm;
mod articulated;
mod core;
pub mod cuff;
mod error;
pub mod motor;
pub mod patient;
mod patient_hooks;
mod profiles;
mod rapier_convert;
mod rapier_plant;
pub mod sensor;

pub use arm::{ARM_FRAMES, arm_payloads, attach_arm};
pub use articulated::{ArticulatedPlant, Integrator};
pub use core::PlantConfig;
pub use cuff::CuffParams;
pub use error::SimError;
pub use motor::{MotorBank, MotorParams};
pub use patient::{Patient, PatientProfile, PatientState, PatientTorques, SkillProfile, TrialOutcome};
pub use patient_hooks::{patient_state_from_table, patient_state_to_table};
pub use profiles::{DEFAULT_PATIENTS, default_patient_toml};
pub use rapier_plant::{RapierOptions, RapierPlant, TableParams};
pub use sensor::{SensorBank, SensorParams};

/// Simulation-only access common to both plants (besides [`plexo_hal::Robot`]): the true state, the patient,
/// energy. None of these exist on hardware; the controller must not use them.
pub trait SimulatedPlant: plexo_hal::Robot<Error = SimError> {
    /// The model the plant integrates (with the rigidly attached arm, if any; the bare robot when the arm is on
    /// cuffs, [`RapierOptions::cuffs`]).
    fn model(&self) -> &plexo_kinematics::Model;
    /// Simulated time [s].
    fn time(&self) -> f64;
    /// True joint positions [rad].
    fn position(&self) -> &[f64];
    /// True joint velocities [rad/s].
    fn velocity(&self) -> &[f64];
    /// Sets the true state `q` [rad], `v` [rad/s] (test set-up, "release from"); sensors and the patient's
    /// delayed history restart from it. Not real-time safe.
    fn set_state(&mut self, q: &[f64], v: &[f64]) -> Result<(), SimError>;
    /// Generalized torque applied to the joints in the last period [Nm] (motor + friction + rigid patient).
    fn applied_torque(&self) -> &[f64];
    /// Torque the motors delivered in the last period [Nm].
    fn motor_torque(&self) -> &[f64];
    /// Reflected rotor inertia per joint [kg m²] (added to the mass-matrix diagonal).
    fn armature(&self) -> &[f64];
    /// Mechanical energy [J]: kinetic (incl. rotor inertia) + gravitational potential.
    fn energy(&mut self) -> f64;
    /// The virtual patient, if one is strapped in.
    fn patient(&self) -> Option<&patient::Patient>;
    /// The virtual patient, mutable: `set_target`, `clear_target`, `end_trial`, `restore`.
    fn patient_mut(&mut self) -> Option<&mut patient::Patient>;
}
