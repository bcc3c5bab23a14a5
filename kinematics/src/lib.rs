//! # plexo-kinematics
//!
//! Kinematic and dynamic model of an upper-limb exoskeleton and the patient's arm, for Plexo's controller and
//! simulator. In the style of Pinocchio: an immutable [`Model`] (parsed from URDF or built in code), a [`Data`]
//! that owns every buffer, and free functions `algo(&model, &mut data, q, …)` that never allocate after
//! [`Data::new`]:
//!
//! - [`forward_kinematics`]: placement of every joint and named frame;
//! - [`joint_jacobians`], [`frame_jacobian`], [`frame_jacobian_from_data`] ([`ReferenceFrame`] World, Local,
//!   LocalWorldAligned) and the bias [`frame_classical_acceleration_bias`] (J̇·q̇);
//! - [`rnea`] inverse dynamics, [`gravity_torque`], [`nonlinear_effects`];
//! - [`crba`] mass matrix, [`aba`] forward dynamics ([`try_aba`] reports a singular mass matrix as an error);
//! - [`kinetic_energy`], [`potential_energy`].
//!
//! Conventions: world frame x forward, y left, z up; gravity (0, 0, −9.81) m/s²; angles [rad], torques [Nm];
//! Jacobians and 6-vectors put the linear part first. Spatial algebra follows Featherstone (2008) and is done in
//! the world frame (see the `spatial` module source).
//!
//! The patient's arm is added with [`Model::attach_payload`] using segment parameters from
//! [`anthropometrics`] (de Leva 1996); the patient those come from is a [`PatientSpec`] (pseudonymous id, body
//! size, side, measured range of motion and personal safety limits), what a clinic knows of a real patient.
//!
//! ```
//! use plexo_kinematics::{forward_kinematics, Data, Model};
//!
//! let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/robots/plexo-arm4.urdf");
//! let model = Model::from_urdf_file(path)?;
//! let mut data = Data::new(&model);
//! let q = vec![0.0; model.nv()];
//! forward_kinematics(&model, &mut data, &q);
//! let handle = model.frame_id("handle").expect("plexo-arm4 has a handle frame");
//! let world_T_handle = data.world_T_frame[handle.0];
//! println!("handle at q = 0: {:?} m", world_T_handle.translation.vector);
//! // Arm hanging: the handle is below the shoulder.
//! assert!(world_T_handle.translation.vector.z < -0.5);
//! # Ok::<(), plexo_kinematics::KinematicsError>(())
//! ```

// Transform names carry their frames (`world_T_joint`: joint frame expressed in the world), per Plexo's style.
#![allow(non_snake_case)]

mod algorithms;
pub mod anthropometrics;
mod builder;
mod data;
mod error;
mod model;
mod patient_spec;
mod spatial;
mod trig;
mod urdf;
mod urdf_schema;

pub use algorithms::{
    ReferenceFrame, aba, crba, forward_kinematics, frame_classical_acceleration_bias, frame_jacobian,
    frame_jacobian_from_data, gravity_torque, joint_jacobians, kinetic_energy, nonlinear_effects, potential_energy,
    rnea, try_aba,
};
pub use builder::ModelBuilder;
pub use data::Data;
pub use error::KinematicsError;
pub use model::{Frame, FrameId, Joint, JointKind, JointLimits, Model, PayloadId, RigidBody, STANDARD_GRAVITY};
pub use patient_spec::{JointSafetyLimits, MAX_ID_LEN, PATIENT_HEIGHT_RANGE, PATIENT_MASS_RANGE, PatientSpec, Side};
pub use urdf::locate_urdf_error;

/// Names of the robots embedded in this crate (see [`default_robot_urdf`]).
pub const DEFAULT_ROBOTS: [&str; 3] = ["plexo-arm4", "plexo-arm6", "test-arm7"];

/// The URDF text of a default robot embedded at compile time ("plexo-arm4", "plexo-arm6", "test-arm7"), so the
/// application works from any directory. `None` for other names.
pub fn default_robot_urdf(name: &str) -> Option<&'static str> {
    match name {
        "plexo-arm4" => Some(include_str!("../../assets/robots/plexo-arm4.urdf")),
        "plexo-arm6" => Some(include_str!("../../assets/robots/plexo-arm6.urdf")),
        "test-arm7" => Some(include_str!("../../assets/robots/test-arm7.urdf")),
        _ => None,
    }
}
