//! Conversions from plexo-kinematics types (nalgebra) to rapier's (glamx), shared by the robot multibody
//! ([`crate::RapierPlant`]) and the human arm on cuffs ([`crate::cuff`]).

use glamx::{DMat3, DQuat, DVec3};
use nalgebra::{Isometry3, Matrix3, Vector3};
use plexo_kinematics::{Joint, RigidBody};
use rapier3d_f64::glamx;
use rapier3d_f64::prelude::*;

/// A vector [any unit] as rapier's.
pub(crate) fn to_dvec(v: &Vector3<f64>) -> DVec3 {
    DVec3::new(v.x, v.y, v.z)
}

/// Rapier mass properties of `body` (in its body frame); a massless body gets a negligible point mass (rapier
/// needs positive mass on dynamic links).
pub(crate) fn mass_properties(body: &RigidBody) -> MassProperties {
    if body.mass > 0.0 {
        MassProperties::with_inertia_matrix(to_dvec(&body.com), body.mass, to_dmat3(&body.inertia_com))
    } else {
        MassProperties::new(DVec3::ZERO, 1e-6, DVec3::splat(1e-9))
    }
}

/// A reduced-coordinate revolute joint whose child body frame is the model's joint frame, so that rapier's
/// joint coordinate is the model's `q`; with the URDF limits if `limits`.
pub(crate) fn revolute_joint(joint: &Joint, limits: bool) -> GenericJoint {
    let axis = to_dvec(&joint.axis.into_inner());
    let align = DQuat::from_rotation_arc(DVec3::X, axis);
    let mut builder = GenericJointBuilder::new(JointAxesMask::LOCKED_REVOLUTE_AXES)
        .local_frame1(to_pose(&joint.parent_T_joint) * Pose::from_rotation(align))
        .local_frame2(Pose::from_rotation(align))
        .contacts_enabled(false);
    if limits && joint.limits.lower.is_finite() && joint.limits.upper.is_finite() {
        builder = builder.limits(JointAxis::AngX, [joint.limits.lower, joint.limits.upper]);
    }
    builder.build()
}

/// A placement (rotation, translation [m]) as rapier's pose.
pub(crate) fn to_pose(iso: &Isometry3<f64>) -> Pose {
    let q = iso.rotation.quaternion();
    Pose::from_parts(to_dvec(&iso.translation.vector), DQuat::from_xyzw(q.i, q.j, q.k, q.w))
}

/// A 3×3 matrix (inertia [kg m²]) as rapier's.
fn to_dmat3(m: &Matrix3<f64>) -> DMat3 {
    DMat3::from_cols(
        DVec3::new(m[(0, 0)], m[(1, 0)], m[(2, 0)]),
        DVec3::new(m[(0, 1)], m[(1, 1)], m[(2, 1)]),
        DVec3::new(m[(0, 2)], m[(1, 2)], m[(2, 2)]),
    )
}
