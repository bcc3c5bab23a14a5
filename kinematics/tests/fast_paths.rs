//! The specialised fast paths of forward kinematics and the Jacobian/dynamics pass (joints about a coordinate axis
//! of an unrotated frame, zero or single-axis origin offsets, translated-only frames) agree with the naive
//! definition `world_T_joint = world_T_parent · parent_T_joint · motion(q)` computed here with nalgebra's generic
//! isometries, for every axis (±x, ±y, ±z, oblique), every offset kind and both origin rotations.

// Transform names carry their frames (`world_T_joint`), per Plexo style.
#![allow(non_snake_case)]

mod common;

use nalgebra::{Isometry3, Matrix6xX, Translation3, UnitQuaternion, Vector3};
use plexo_kinematics::{
    Data, Joint, JointKind, Model, ModelBuilder, ReferenceFrame, RigidBody, forward_kinematics, frame_jacobian,
    joint_jacobians,
};

fn pose(t: [f64; 3], rpy: [f64; 3]) -> Isometry3<f64> {
    Isometry3::from_parts(
        Translation3::from(Vector3::from(t)),
        UnitQuaternion::from_euler_angles(rpy[0], rpy[1], rpy[2]),
    )
}

/// (kind, parent, parent_T_joint, axis).
type JointSpec = (JointKind, Option<usize>, Isometry3<f64>, Vector3<f64>);

/// A chain (with one branch) whose joints cover every axis/origin/offset combination the algorithms specialise.
fn every_path_model() -> Model {
    let body = RigidBody::new(0.7, Vector3::new(0.03, -0.02, 0.05), nalgebra::Matrix3::identity() * 0.004);
    let joints: Vec<JointSpec> = vec![
        (JointKind::Revolute, None, pose([0.0, 0.0, 0.1], [0.0, 0.0, 0.0]), Vector3::x()), // root, +x, along z
        (JointKind::Revolute, Some(0), pose([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]), -Vector3::x()), // −x, zero offset
        (JointKind::Revolute, Some(1), pose([0.2, 0.0, 0.0], [0.0, 0.0, 0.0]), Vector3::y()), // +y, along x
        (JointKind::Revolute, Some(2), pose([0.0, -0.15, 0.0], [0.0, 0.0, 0.0]), -Vector3::y()), // −y, along y
        (JointKind::Continuous, Some(3), pose([0.0, 0.0, -0.3], [0.0, 0.0, 0.0]), Vector3::z()), // +z, along z
        (JointKind::Revolute, Some(4), pose([0.05, 0.02, 0.1], [0.0, 0.0, 0.0]), -Vector3::z()), // −z, general
        (JointKind::Revolute, Some(5), pose([0.1, 0.0, 0.0], [0.3, -0.2, 0.5]), Vector3::z()), // z, rotated
        (JointKind::Revolute, Some(6), pose([0.0, 0.0, 0.0], [-0.4, 0.1, 0.0]), -Vector3::x()), // −x, rotated
        (JointKind::Revolute, Some(7), pose([0.0, 0.1, 0.0], [0.0, 0.0, 0.0]), Vector3::new(0.3, -0.5, 0.8)), // oblique
        (JointKind::Prismatic, Some(8), pose([0.0, 0.0, 0.07], [0.0, 0.0, 0.0]), Vector3::z()), // slide, unrotated
        (JointKind::Prismatic, Some(9), pose([0.01, 0.02, 0.03], [0.2, 0.3, -0.1]), Vector3::new(1.0, 1.0, 0.0)),
        (JointKind::Revolute, Some(4), pose([0.0, 0.0, 0.0], [0.0, 0.6, 0.0]), Vector3::y()), // branch, rotated
    ];
    let mut builder = ModelBuilder::new("every-path");
    for (k, (kind, parent, parent_T_joint, axis)) in joints.into_iter().enumerate() {
        builder = builder.joint(Joint::new(format!("j{k}"), kind, parent, parent_T_joint, axis).with_body(body));
    }
    builder
        .frame("base_marker", None, pose([0.3, 0.0, 0.0], [0.0, 0.0, 0.1]))
        .frame("along_x", Some(10), pose([0.12, 0.0, 0.0], [0.0, 0.0, 0.0]))
        .frame("along_y", Some(3), pose([0.0, -0.08, 0.0], [0.0, 0.0, 0.0]))
        .frame("along_z", Some(8), pose([0.0, 0.0, 0.2], [0.0, 0.0, 0.0]))
        .frame("general_translation", Some(6), pose([0.01, -0.02, 0.03], [0.0, 0.0, 0.0]))
        .frame("rotated", Some(11), pose([0.02, 0.0, 0.1], [0.5, 0.0, -0.3]))
        .build()
        .expect("valid model")
}

/// The naive placements of every joint frame: parent placement · origin · motion about/along the axis.
fn naive_world_T_joint(model: &Model, q: &[f64]) -> Vec<Isometry3<f64>> {
    let mut out: Vec<Isometry3<f64>> = Vec::new();
    for (joint, &qi) in model.joints().iter().zip(q) {
        let motion = match joint.kind {
            JointKind::Prismatic => {
                Isometry3::from_parts(Translation3::from(joint.axis.into_inner() * qi), UnitQuaternion::identity())
            }
            _ => Isometry3::from_parts(Translation3::identity(), UnitQuaternion::from_axis_angle(&joint.axis, qi)),
        };
        let parent = joint.parent.map_or(Isometry3::identity(), |p| out[p]);
        out.push(parent * joint.parent_T_joint * motion);
    }
    out
}

#[test]
fn forward_kinematics_fast_paths_match_the_naive_composition() {
    let model = every_path_model();
    let mut data = Data::new(&model);
    for seed in 0..20 {
        let q: Vec<f64> = common::pseudo_random(seed, model.nv()).iter().map(|r| 3.0 * r).collect();
        forward_kinematics(&model, &mut data, &q);
        let naive = naive_world_T_joint(&model, &q);
        for (k, (fast, slow)) in data.world_T_joint.iter().zip(&naive).enumerate() {
            let dp = (fast.translation.vector - slow.translation.vector).norm();
            let dr = fast.rotation.angle_to(&slow.rotation);
            assert!(dp < 1e-14 && dr < 1e-14, "joint j{k} (seed {seed}): Δp {dp:e} m, Δθ {dr:e} rad");
        }
        for (frame, world_T_frame) in model.frames().iter().zip(&data.world_T_frame) {
            let expected = frame.joint.map_or(Isometry3::identity(), |j| naive[j]) * frame.joint_T_frame;
            let dp = (world_T_frame.translation.vector - expected.translation.vector).norm();
            let dr = world_T_frame.rotation.angle_to(&expected.rotation);
            assert!(dp < 1e-14 && dr < 1e-14, "frame {} (seed {seed}): Δp {dp:e}, Δθ {dr:e}", frame.name);
        }
    }
}

#[test]
fn jacobian_pass_fast_paths_match_the_naive_composition() {
    // The matrix pass behind Jacobians and dynamics: joint Jacobian column k is (p_k × a_k, a_k) with a_k the
    // world axis and p_k the joint origin (rotational), or (a_k, 0) (prismatic).
    let model = every_path_model();
    let mut data = Data::new(&model);
    let n = model.nv();
    let mut local = Matrix6xX::zeros(n);
    for seed in 0..20 {
        let q: Vec<f64> = common::pseudo_random(100 + seed, n).iter().map(|r| 3.0 * r).collect();
        let naive = naive_world_T_joint(&model, &q);
        let jacobians = joint_jacobians(&model, &mut data, &q).clone();
        for (k, joint) in model.joints().iter().enumerate() {
            let axis = naive[k].rotation * joint.axis.into_inner();
            let p = naive[k].translation.vector;
            let (lin, ang) = if joint.kind.is_rotational() { (p.cross(&axis), axis) } else { (axis, Vector3::zeros()) };
            let column = jacobians.column(k);
            let err = (column.fixed_rows::<3>(0) - lin).norm().max((column.fixed_rows::<3>(3) - ang).norm());
            assert!(err < 1e-14, "joint j{k} (seed {seed}): column error {err:e}");
        }
        // Local and LocalWorldAligned Jacobians of frames of every source kind (translated along x, y, z,
        // generally translated, rotated): they use the frame's position and rotation from the matrix pass.
        for name in ["along_x", "along_y", "along_z", "general_translation", "rotated"] {
            let frame = model.frame_id(name).unwrap();
            let j = model.frames()[frame.0].joint.unwrap();
            let world_T_frame = naive[j] * model.frames()[frame.0].joint_T_frame;
            let frame_R_world = world_T_frame.rotation.inverse();
            for reference in [ReferenceFrame::Local, ReferenceFrame::LocalWorldAligned] {
                frame_jacobian(&model, &mut data, &q, frame, reference, &mut local);
                for (k, (joint, placement)) in model.joints().iter().zip(&naive).enumerate() {
                    if !model.is_ancestor(k, j) {
                        assert_eq!(local.column(k).norm(), 0.0);
                        continue;
                    }
                    let axis = placement.rotation * joint.axis.into_inner();
                    let (lin_world, ang_world) = if joint.kind.is_rotational() {
                        (axis.cross(&(world_T_frame.translation.vector - placement.translation.vector)), axis)
                    } else {
                        (axis, Vector3::zeros())
                    };
                    let (lin, ang) = match reference {
                        ReferenceFrame::Local => (frame_R_world * lin_world, frame_R_world * ang_world),
                        _ => (lin_world, ang_world),
                    };
                    let err = (local.fixed_view::<3, 1>(0, k) - lin)
                        .norm()
                        .max((local.fixed_view::<3, 1>(3, k) - ang).norm());
                    assert!(err < 1e-14, "{name} {reference:?} column j{k} (seed {seed}): error {err:e}");
                }
            }
        }
    }
}
