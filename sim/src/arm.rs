//! The patient's arm segments as payloads on the robot model (rigid attachment).

use nalgebra::{Unit, Vector3};
use plexo_kinematics::{Data, Model, PatientSpec, RigidBody, forward_kinematics};

use crate::SimError;

/// Frames the segments attach to: upper arm → `upper_arm_link` (origin at the shoulder centre), forearm →
/// `forearm_link` (origin at the elbow axis), hand → `handle` (origin at the palm centre, where the hand's
/// centre of mass is put).
pub const ARM_FRAMES: [&str; 3] = ["upper_arm_link", "forearm_link", "handle"];

/// The three arm segments of the patient `spec` describes (de Leva 1996 via [`PatientSpec::arm`]) as rigid bodies
/// expressed in the frames of [`ARM_FRAMES`]. Segment axes point where the arm points at q = 0 (straight down, −z world).
pub fn arm_payloads(model: &Model, spec: &PatientSpec) -> Result<[(&'static str, RigidBody); 3], SimError> {
    let arm = spec.arm()?;
    let mut data = Data::new(model);
    forward_kinematics(model, &mut data, &vec![0.0; model.nv()]);
    let down = Vector3::new(0.0, 0.0, -1.0);
    let mut out = Vec::with_capacity(3);
    for (name, segment) in ARM_FRAMES.iter().zip([arm.upper_arm, arm.forearm, arm.hand]) {
        let id = model.frame_id(name).ok_or_else(|| SimError::Model {
            model: model.name().to_owned(),
            reason: format!("no frame `{name}` to attach the patient's arm segment to"),
        })?;
        let world_t_frame = data.world_T_frame[id.0];
        let axis = Unit::new_normalize(world_t_frame.rotation.inverse() * down);
        // Upper arm and forearm start at their frame origin; the hand's CoM sits at the handle.
        let offset = if *name == "handle" { -axis.into_inner() * segment.com_from_proximal } else { Vector3::zeros() };
        out.push((*name, segment.to_rigid_body(axis, offset)));
    }
    Ok([out[0], out[1], out[2]])
}

/// A copy of `model` with the arm segments of the patient `spec` describes attached rigidly. Not real-time safe.
pub fn attach_arm(model: &Model, spec: &PatientSpec) -> Result<Model, SimError> {
    let mut loaded = model.clone();
    for (frame, rb) in arm_payloads(model, spec)? {
        loaded.attach_payload(frame, &rb)?;
    }
    Ok(loaded)
}
