//! The standard virtual patients (plexo-sim's built-in profiles) and the plant configurations the tests start
//! them in.

use plexo_kinematics::Model;
use plexo_sim::{PatientProfile, PlantConfig};

/// A built-in patient profile by name (`"healthy"`, `"moderate"`, `"spastic"`, …).
pub fn profile(name: &str) -> PatientProfile {
    PatientProfile::builtin(name).expect("embedded profile")
}

/// The patient's rest posture on `robot` [rad], in the model's joint order.
pub fn rest_posture(robot: &Model, profile: &PatientProfile) -> Vec<f64> {
    robot.joints().iter().map(|j| profile.joints[&j.name].rest_position).collect()
}

/// Ideal actuators and sensors, the given patient, initial position `q0` [rad].
pub fn ideal_config(model: &Model, patient: Option<PatientProfile>, q0: &[f64]) -> PlantConfig {
    let mut c = PlantConfig::ideal(model);
    c.patient = patient;
    c.initial_position = Some(q0.to_vec());
    c
}

/// The default plant (default motors with friction, lag and rotor inertia, default encoders) with `profile`'s
/// patient, starting at the patient's rest posture.
pub fn at_rest_config(robot: &Model, profile: &PatientProfile) -> PlantConfig {
    let config = PlantConfig { initial_position: Some(rest_posture(robot, profile)), ..PlantConfig::default() };
    config.with_patient(profile.clone())
}
