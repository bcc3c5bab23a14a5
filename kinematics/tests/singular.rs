//! A singular mass matrix (a zero articulated-body pivot Dᵢ) never turns into a silent NaN: models singular at
//! q = 0 are rejected when built, and at an isolated singular configuration `aba` returns all-NaN (documented)
//! while `try_aba` returns an error naming the joint.

mod common;

use std::f64::consts::FRAC_PI_2;

use nalgebra::{DVector, Isometry3, Matrix3, Vector3};
use plexo_kinematics::{
    DEFAULT_ROBOTS, Data, Joint, JointKind, KinematicsError, Model, ModelBuilder, RigidBody, aba, rnea, try_aba,
};

fn revolute(name: &str, parent: Option<usize>, axis: Vector3<f64>) -> Joint {
    Joint::new(name, JointKind::Revolute, parent, Isometry3::identity(), axis)
}

#[test]
fn a_point_mass_on_its_own_joint_axis_is_rejected_at_build() {
    // The point mass sits on the z axis: it has mass but no inertia about the axis, so D = 0 at every q.
    let e = ModelBuilder::new("on-axis")
        .joint(revolute("spin", None, Vector3::z()).with_body(RigidBody::point_mass(1.0, Vector3::new(0.0, 0.0, 0.3))))
        .build()
        .unwrap_err();
    assert!(matches!(e, KinematicsError::NoInertiaAboutAxis { .. }), "{e:?}");
    assert!(e.to_string().contains("'spin'") && e.to_string().contains("armature"), "{e}");
    // Off the axis it is fine.
    assert!(
        ModelBuilder::new("off-axis")
            .joint(
                revolute("spin", None, Vector3::z()).with_body(RigidBody::point_mass(1.0, Vector3::new(0.1, 0.0, 0.3)))
            )
            .build()
            .is_ok()
    );
}

#[test]
fn two_coaxial_joints_with_a_massless_link_between_are_rejected_naming_the_first() {
    // Both joints turn the same body about the same axis: M is singular at every q (the first moves nothing of
    // its own and the second already provides that motion).
    let xml = r#"<robot name="coaxial">
  <link name="base"/>
  <link name="between"/>
  <link name="arm"><inertial><origin xyz="0.2 0 0"/><mass value="1"/>
    <inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01"/></inertial></link>
  <joint name="outer" type="revolute"><parent link="base"/><child link="between"/><axis xyz="0 0 1"/>
    <limit lower="-1" upper="1" effort="1" velocity="1"/></joint>
  <joint name="inner" type="revolute"><parent link="between"/><child link="arm"/><axis xyz="0 0 1"/>
    <limit lower="-1" upper="1" effort="1" velocity="1"/></joint>
</robot>"#;
    let e = Model::from_urdf_str(xml).unwrap_err();
    assert!(matches!(e, KinematicsError::NoInertiaAboutAxis { .. }), "{e:?}");
    assert!(e.to_string().contains("'outer'"), "{e}");

    // Armature on the outer joint (its motor's rotor) makes the model regular; removing it is rejected again.
    let arm = RigidBody::new(1.0, Vector3::new(0.2, 0.0, 0.0), Matrix3::identity() * 0.01);
    let model = ModelBuilder::new("coaxial")
        .joint(revolute("outer", None, Vector3::z()).with_armature(0.05))
        .joint(revolute("inner", Some(0), Vector3::z()).with_body(arm))
        .build()
        .expect("armature gives the outer joint inertia");
    let mut data = Data::new(&model);
    let (q, v, a) = ([0.3, -0.4], [1.0, 2.0], [0.5, -1.5]);
    let tau = rnea(&model, &mut data, &q, &v, &a).clone();
    let ddq = try_aba(&model, &mut data, &q, &v, tau.as_slice()).expect("regular");
    assert!((ddq - DVector::from_column_slice(&a)).abs().max() < 1e-9);
    let e = model.with_armature(&[0.0, 0.0]).unwrap_err();
    assert!(matches!(e, KinematicsError::NoInertiaAboutAxis { .. }), "{e:?}");
    assert!(e.to_string().contains("'outer'"), "{e}");
}

/// A spherical joint built from three revolute joints z, y, x with massless links between them, carrying one
/// body: regular at q = 0, singular at the gimbal lock q₂ = ±π/2 (axes 1 and 3 align).
fn gimbal(armature: f64) -> Model {
    let body =
        RigidBody::new(2.0, Vector3::new(0.05, 0.0, -0.2), Matrix3::from_diagonal(&Vector3::new(0.03, 0.04, 0.02)));
    ModelBuilder::new("gimbal")
        .joint(revolute("yaw", None, Vector3::z()).with_armature(armature))
        .joint(revolute("pitch", Some(0), Vector3::y()).with_armature(armature))
        .joint(revolute("roll", Some(1), Vector3::x()).with_body(body).with_armature(armature))
        .build()
        .expect("regular at q = 0")
}

#[test]
fn at_a_gimbal_lock_aba_returns_all_nan_and_try_aba_names_the_joint() {
    let model = gimbal(0.0);
    let mut data = Data::new(&model);
    let (v, tau) = ([0.2, -0.1, 0.4], [0.5, 0.1, -0.3]);
    let locked = [0.3, FRAC_PI_2, 0.2];
    let ddq = aba(&model, &mut data, &locked, &v, &tau);
    assert!(ddq.iter().all(|x| x.is_nan()), "every entry NaN, never a finite wrong number: {ddq}");
    let e = try_aba(&model, &mut data, &locked, &v, &tau).unwrap_err();
    match &e {
        KinematicsError::SingularMassMatrix { joint, pivot } => {
            assert!(["yaw", "pitch", "roll"].contains(&joint.as_str()), "{e}");
            assert!(pivot.abs() < 1e-12, "pivot {pivot}");
        }
        other => panic!("expected SingularMassMatrix, got {other:?}"),
    }
    assert!(e.to_string().contains("singular"), "{e}");
    assert!(data.ddq.iter().all(|x| x.is_nan()), "try_aba leaves no stale accelerations either");

    // Close to the lock (0.01 rad) the mass matrix is regular: ABA is finite and still inverts RNEA.
    let near = [0.3, FRAC_PI_2 - 0.01, 0.2];
    let a = [0.7, -0.2, 0.5];
    let tau = rnea(&model, &mut data, &near, &v, &a).clone();
    let ddq = try_aba(&model, &mut data, &near, &v, tau.as_slice()).expect("regular near the lock");
    assert!((ddq - DVector::from_column_slice(&a)).abs().max() < 1e-6);

    // With rotor armature the lock is harmless.
    let model = gimbal(0.01);
    let tau = rnea(&model, &mut data, &locked, &v, &a).clone();
    let ddq = try_aba(&model, &mut data, &locked, &v, tau.as_slice()).expect("armature regularises");
    assert!((ddq - DVector::from_column_slice(&a)).abs().max() < 1e-9);
}

#[test]
fn default_robots_can_never_reach_a_singular_mass_matrix() {
    // Dᵢ ≥ Sᵢᵀ Iᵢ Sᵢ (the joint's own body about its own axis): positive for every joint of the default robots, so
    // `aba` is defined at every configuration.
    for name in DEFAULT_ROBOTS {
        let model = common::robot(name);
        for joint in model.joints() {
            let b = &joint.body;
            let axis = joint.axis.into_inner();
            let own = if joint.kind.is_rotational() {
                let off_axis = b.com - axis * axis.dot(&b.com);
                axis.dot(&(b.inertia_com * axis)) + b.mass * off_axis.norm_squared()
            } else {
                b.mass
            };
            assert!(own > 1e-6, "{name}/{}: own inertia about the axis {own}", joint.name);
        }
    }
}
