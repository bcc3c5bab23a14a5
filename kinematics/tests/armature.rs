//! Joint armature (reflected rotor inertia): every algorithm sees the same `M(q) + diag(armature)`.
//!
//! The generic tests (`dynamics.rs`, `properties.rs`, `no_alloc.rs`) also run on `common::tree_with_armature`, so
//! CRBA = RNEA columns, ABA ∘ RNEA = id, dE/dt = q̇ᵀτ and allocation-freedom are all checked with armature too.
//! These tests pin the armature terms themselves against the same model without armature.

mod common;

use common::{TREE_ARMATURE, pseudo_random, robot, tree_with_armature, tree_with_prismatic};
use nalgebra::{DMatrix, DVector, Isometry3, Matrix3, Vector3};
use plexo_kinematics::{
    Data, Joint, JointKind, KinematicsError, Model, ModelBuilder, RigidBody, aba, crba, gravity_torque, kinetic_energy,
    nonlinear_effects, rnea,
};

fn state(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let r = pseudo_random(seed, 3 * n);
    (
        (0..n).map(|i| 1.5 * r[i]).collect(),
        (0..n).map(|i| 2.0 * r[n + i]).collect(),
        (0..n).map(|i| 3.0 * r[2 * n + i]).collect(),
    )
}

/// Pairs (model without armature, the same with armature) covering a tree with a prismatic joint and the
/// 7-DOF arm.
fn pairs() -> Vec<(Model, Model)> {
    let arm7 = robot("test-arm7");
    let arm7_armature: Vec<f64> = (0..7).map(|i| 0.02 + 0.05 * i as f64).collect();
    let arm7_with = arm7.with_armature(&arm7_armature).unwrap();
    vec![(tree_with_prismatic(), tree_with_armature()), (arm7, arm7_with)]
}

#[test]
fn crba_with_armature_is_crba_plus_the_armature_diagonal() {
    for (plain, with) in pairs() {
        let mut data = Data::new(&plain);
        let armature = DMatrix::from_diagonal(&DVector::from_column_slice(with.armature()));
        assert!(armature.max() > 0.0);
        for seed in 0..10 {
            let (q, _, _) = state(plain.nv(), seed);
            let m = crba(&plain, &mut data, &q).clone();
            let m_with = crba(&with, &mut data, &q).clone();
            let err = (&m_with - (&m + &armature)).abs().max();
            assert!(err < 1e-14, "{}: M_armature − (M + diag) = {err}", plain.name());
        }
    }
}

#[test]
fn rnea_with_armature_adds_armature_times_acceleration_and_nothing_else() {
    for (plain, with) in pairs() {
        let mut data = Data::new(&plain);
        for seed in 0..10 {
            let (q, v, a) = state(plain.nv(), 20 + seed);
            let tau = rnea(&plain, &mut data, &q, &v, &a).clone();
            let tau_with = rnea(&with, &mut data, &q, &v, &a).clone();
            for i in 0..plain.nv() {
                let expected = tau[i] + with.armature()[i] * a[i];
                assert!((tau_with[i] - expected).abs() < 1e-12, "{} joint {i}", plain.name());
            }
            // Velocity and gravity terms do not involve the rotor (it spins about a fixed axis of its link).
            let h = nonlinear_effects(&plain, &mut data, &q, &v).clone();
            let h_with = nonlinear_effects(&with, &mut data, &q, &v).clone();
            assert!((h - h_with).abs().max() < 1e-14);
            let g = gravity_torque(&plain, &mut data, &q).clone();
            let g_with = gravity_torque(&with, &mut data, &q).clone();
            assert!((g - g_with).abs().max() < 1e-14);
        }
    }
}

#[test]
fn aba_with_armature_inverts_rnea_with_armature_and_solves_m_plus_armature() {
    for (plain, with) in pairs() {
        let n = plain.nv();
        let mut data = Data::new(&plain);
        for seed in 0..10 {
            let (q, v, a) = state(n, 40 + seed);
            let tau = rnea(&with, &mut data, &q, &v, &a).clone();
            let ddq = aba(&with, &mut data, &q, &v, tau.as_slice()).clone();
            let err = (&ddq - DVector::from_column_slice(&a)).abs().max();
            assert!(err < 1e-9, "{}: aba(rnea(a)) − a = {err}", with.name());
            // Independently: (M + diag(armature)) q̈ = τ − h, solved densely.
            let m = crba(&plain, &mut data, &q).clone()
                + DMatrix::from_diagonal(&DVector::from_column_slice(with.armature()));
            let h = nonlinear_effects(&plain, &mut data, &q, &v).clone();
            let dense = m.cholesky().expect("positive definite").solve(&(&tau - h));
            assert!((&ddq - dense).abs().max() < 1e-9);
            // And the armature matters: without it the same torques give other accelerations.
            let ddq_plain = aba(&plain, &mut data, &q, &v, tau.as_slice());
            assert!((ddq_plain - &ddq).abs().max() > 1e-3, "{}: armature had no effect", with.name());
        }
    }
}

#[test]
fn one_joint_with_armature_matches_the_closed_form() {
    // A pendulum about z (gravity along −y): (I_axis + m l² + A) q̈ = τ − m g l cos q.
    let (m, l, i_axis, armature) = (1.3, 0.4, 0.02, 0.25);
    let body =
        RigidBody::new(m, Vector3::new(l, 0.0, 0.0), Matrix3::from_diagonal(&Vector3::new(0.001, 0.019, i_axis)));
    let model = ModelBuilder::new("pendulum")
        .gravity(Vector3::new(0.0, -9.81, 0.0))
        .joint(
            Joint::new("hinge", JointKind::Revolute, None, Isometry3::identity(), Vector3::z())
                .with_body(body)
                .with_armature(armature),
        )
        .build()
        .unwrap();
    assert_eq!(model.armature(), &[armature]);
    let mut data = Data::new(&model);
    let (q, v, tau) = (0.7, 1.9, 3.0);
    let inertia = i_axis + m * l * l + armature;
    let expected = (tau - m * 9.81 * l * f64::cos(q)) / inertia;
    let ddq = aba(&model, &mut data, &[q], &[v], &[tau])[0];
    assert!((ddq - expected).abs() < 1e-12, "q̈ {ddq} vs {expected}");
    assert!((crba(&model, &mut data, &[q])[(0, 0)] - inertia).abs() < 1e-12);
    let e = kinetic_energy(&model, &mut data, &[q], &[v]);
    assert!((e - 0.5 * inertia * v * v).abs() < 1e-12, "rotor energy included: {e}");
}

#[test]
fn kinetic_energy_includes_the_rotor_energy() {
    for (plain, with) in pairs() {
        let mut data = Data::new(&plain);
        let (q, v, _) = state(plain.nv(), 77);
        let rotor: f64 = with.armature().iter().zip(&v).map(|(a, v)| 0.5 * a * v * v).sum();
        let e = kinetic_energy(&plain, &mut data, &q, &v);
        let e_with = kinetic_energy(&with, &mut data, &q, &v);
        assert!(rotor > 0.0);
        assert!((e_with - e - rotor).abs() < 1e-12, "{}", plain.name());
        let m = crba(&with, &mut data, &q).clone();
        let vv = DVector::from_column_slice(&v);
        assert!((e_with - 0.5 * vv.dot(&(&m * &vv))).abs() < 1e-12);
    }
}

#[test]
fn armature_defaults_to_zero_and_with_armature_keeps_the_rest_of_the_model() {
    let mut plain = tree_with_prismatic();
    assert!(plain.armature().iter().all(|&a| a == 0.0));
    assert!(plain.joints().iter().all(|j| j.armature == 0.0));
    plain.attach_payload("left_tool", &RigidBody::point_mass(0.8, Vector3::new(0.0, 0.1, 0.0))).unwrap();
    let with = plain.with_armature(&TREE_ARMATURE).unwrap();
    assert_eq!(with.armature(), &TREE_ARMATURE);
    for (joint, a) in with.joints().iter().zip(TREE_ARMATURE) {
        assert_eq!(joint.armature, a);
    }
    assert_eq!(with.total_mass(), plain.total_mass(), "payloads kept");
    assert!(plain.armature().iter().all(|&a| a == 0.0), "the original model is unchanged");
    // Back to zero armature: identical dynamics to the original.
    let back = with.with_armature(&[0.0; 5]).unwrap();
    let mut data = Data::new(&plain);
    let (q, v, a) = state(5, 3);
    let tau = rnea(&plain, &mut data, &q, &v, &a).clone();
    assert_eq!(rnea(&back, &mut data, &q, &v, &a), &tau);
}

#[test]
fn invalid_armature_is_rejected_naming_the_joint() {
    let model = tree_with_prismatic();
    let e = model.with_armature(&[0.1; 4]).unwrap_err();
    assert!(matches!(e, KinematicsError::LengthMismatch { what: "armature", expected: 5, got: 4 }), "{e:?}");
    assert!(e.to_string().contains("armature"), "{e}");
    for bad in [-0.01, f64::NAN, f64::INFINITY] {
        let mut armature = [0.1; 5];
        armature[2] = bad;
        let e = model.with_armature(&armature).unwrap_err();
        assert!(matches!(e, KinematicsError::InvalidArmature { .. }), "{e:?}");
        assert!(e.to_string().contains("'left'"), "{e} names the joint");
    }
    let body = RigidBody::point_mass(1.0, Vector3::new(0.5, 0.0, 0.0));
    let e = ModelBuilder::new("m")
        .joint(
            Joint::new("elbow", JointKind::Revolute, None, Isometry3::identity(), Vector3::z())
                .with_body(body)
                .with_armature(-1.0),
        )
        .build()
        .unwrap_err();
    assert!(matches!(e, KinematicsError::InvalidArmature { .. }), "{e:?}");
    assert!(e.to_string().contains("'elbow'"), "{e}");
}
