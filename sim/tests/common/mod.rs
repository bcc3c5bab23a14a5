//! Shared helpers of the integration tests.
#![allow(dead_code)]

use plexo_kinematics::Model;
use plexo_sim::{PatientProfile, PlantConfig};

pub fn arm4() -> Model {
    Model::from_urdf_str(plexo_kinematics::default_robot_urdf("plexo-arm4").expect("embedded")).expect("valid URDF")
}

pub fn arm6() -> Model {
    Model::from_urdf_str(plexo_kinematics::default_robot_urdf("plexo-arm6").expect("embedded")).expect("valid URDF")
}

pub fn profile(name: &str) -> PatientProfile {
    PatientProfile::builtin(name).expect("embedded profile")
}

/// Ideal actuators and sensors, the given patient, initial position `q0`.
pub fn ideal_config(model: &Model, patient: Option<PatientProfile>, q0: &[f64]) -> PlantConfig {
    let mut c = PlantConfig::ideal(model);
    c.patient = patient;
    c.initial_position = Some(q0.to_vec());
    c
}
