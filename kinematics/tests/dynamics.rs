//! Dynamics and differential kinematics checked against closed forms, finite differences and each other:
//! a wrong sign, frame or unit in any algorithm breaks one of these.

// Transform names carry their frames (`world_T_frame`), per Plexo style.
#![allow(non_snake_case)]

mod common;

use common::{all_models, pseudo_random, robot};
use nalgebra::{DMatrix, DVector, Isometry3, Matrix3, Matrix6xX, Vector3, Vector6};
use plexo_kinematics::{
    Data, Joint, JointKind, Model, ModelBuilder, ReferenceFrame, RigidBody, aba, crba, forward_kinematics,
    frame_classical_acceleration_bias, frame_jacobian, frame_jacobian_from_data, gravity_torque, joint_jacobians,
    kinetic_energy, nonlinear_effects, potential_energy, rnea,
};

const G: f64 = 9.81;

struct TwoLink {
    m1: f64,
    m2: f64,
    l1: f64,
    lc1: f64,
    lc2: f64,
    i1: f64,
    i2: f64,
}

/// Planar 2-link arm moving in the x-y plane (joint axes +z), gravity along −y, angles from the +x axis.
fn two_link_model(p: &TwoLink) -> Model {
    // Thin-rod-like inertia: I about z and y, a small value about x (satisfies the triangle inequality).
    let rod = |m: f64, lc: f64, i: f64| {
        RigidBody::new(m, Vector3::new(lc, 0.0, 0.0), Matrix3::from_diagonal(&Vector3::new(1e-4, i, i)))
    };
    ModelBuilder::new("two-link")
        .gravity(Vector3::new(0.0, -G, 0.0))
        .joint(
            Joint::new("shoulder", JointKind::Revolute, None, Isometry3::identity(), Vector3::z())
                .with_body(rod(p.m1, p.lc1, p.i1)),
        )
        .joint(
            Joint::new("elbow", JointKind::Revolute, Some(0), Isometry3::translation(p.l1, 0.0, 0.0), Vector3::z())
                .with_body(rod(p.m2, p.lc2, p.i2)),
        )
        .build()
        .expect("valid model")
}

#[test]
fn two_link_planar_arm_matches_textbook_closed_form() {
    // Spong, Hutchinson & Vidyasagar, "Robot Modeling and Control", §7.4 (two-link planar RR arm).
    let p = TwoLink { m1: 2.0, m2: 1.3, l1: 0.5, lc1: 0.22, lc2: 0.18, i1: 0.04, i2: 0.015 };
    let model = two_link_model(&p);
    let mut data = Data::new(&model);
    for seed in 0..20 {
        let r = pseudo_random(seed, 6);
        let (q, v, a) = ([2.0 * r[0], 2.5 * r[1]], [3.0 * r[2], 3.0 * r[3]], [5.0 * r[4], 5.0 * r[5]]);
        let (c2, s2) = (q[1].cos(), q[1].sin());
        let m11 = p.m1 * p.lc1 * p.lc1 + p.m2 * (p.l1 * p.l1 + p.lc2 * p.lc2 + 2.0 * p.l1 * p.lc2 * c2) + p.i1 + p.i2;
        let m12 = p.m2 * (p.lc2 * p.lc2 + p.l1 * p.lc2 * c2) + p.i2;
        let m22 = p.m2 * p.lc2 * p.lc2 + p.i2;
        let h = -p.m2 * p.l1 * p.lc2 * s2;
        let coriolis = [h * (2.0 * v[0] * v[1] + v[1] * v[1]), -h * v[0] * v[0]];
        let g = [
            (p.m1 * p.lc1 + p.m2 * p.l1) * G * q[0].cos() + p.m2 * p.lc2 * G * (q[0] + q[1]).cos(),
            p.m2 * p.lc2 * G * (q[0] + q[1]).cos(),
        ];
        let m = crba(&model, &mut data, &q).clone();
        let expected_m = DMatrix::from_row_slice(2, 2, &[m11, m12, m12, m22]);
        assert!((&m - &expected_m).abs().max() < 1e-12, "M {m} vs {expected_m}");
        let gq = gravity_torque(&model, &mut data, &q).clone();
        assert!((gq[0] - g[0]).abs() < 1e-12 && (gq[1] - g[1]).abs() < 1e-12, "g {gq} vs {g:?}");
        let nle = nonlinear_effects(&model, &mut data, &q, &v).clone();
        for i in 0..2 {
            assert!((nle[i] - coriolis[i] - g[i]).abs() < 1e-12, "nle[{i}]");
        }
        let tau = rnea(&model, &mut data, &q, &v, &a).clone();
        for i in 0..2 {
            let expected = expected_m[(i, 0)] * a[0] + expected_m[(i, 1)] * a[1] + coriolis[i] + g[i];
            assert!((tau[i] - expected).abs() < 1e-12, "tau[{i}] {} vs {expected}", tau[i]);
        }
        let e = kinetic_energy(&model, &mut data, &q, &v);
        let expected_e = 0.5 * (m11 * v[0] * v[0] + 2.0 * m12 * v[0] * v[1] + m22 * v[1] * v[1]);
        assert!((e - expected_e).abs() < 1e-12);
        let u = potential_energy(&model, &mut data, &q);
        let expected_u = G * (p.m1 * p.lc1 * q[0].sin() + p.m2 * (p.l1 * q[0].sin() + p.lc2 * (q[0] + q[1]).sin()));
        assert!((u - expected_u).abs() < 1e-12);
    }
}

fn random_state(model: &Model, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = model.nv();
    let r = pseudo_random(seed, 3 * n);
    let q = (0..n).map(|i| 1.5 * r[i]).collect();
    let v = (0..n).map(|i| 2.0 * r[n + i]).collect();
    let a = (0..n).map(|i| 3.0 * r[2 * n + i]).collect();
    (q, v, a)
}

#[test]
fn crba_equals_rnea_columns_and_is_symmetric_positive_definite() {
    for (model, _) in all_models() {
        let mut data = Data::new(&model);
        let n = model.nv();
        for seed in 0..10 {
            let (q, v, _) = random_state(&model, seed);
            let m = crba(&model, &mut data, &q).clone();
            let bias = rnea(&model, &mut data, &q, &v, &vec![0.0; n]).clone();
            for k in 0..n {
                let mut e = vec![0.0; n];
                e[k] = 1.0;
                let column = rnea(&model, &mut data, &q, &v, &e) - &bias;
                assert!((column - m.column(k)).abs().max() < 1e-10, "{}: column {k}", model.name());
            }
            assert!((&m - m.transpose()).abs().max() < 1e-14);
            assert!(m.clone().cholesky().is_some(), "{}: M positive definite", model.name());
            let nle = nonlinear_effects(&model, &mut data, &q, &v);
            assert!((nle - &bias).abs().max() < 1e-12);
        }
    }
}

#[test]
fn aba_inverts_rnea() {
    for (model, _) in all_models() {
        let mut data = Data::new(&model);
        for seed in 0..10 {
            let (q, v, a) = random_state(&model, 100 + seed);
            let tau = rnea(&model, &mut data, &q, &v, &a).clone();
            let ddq = aba(&model, &mut data, &q, &v, tau.as_slice());
            let err = (ddq - DVector::from_column_slice(&a)).abs().max();
            assert!(err < 1e-9, "{}: aba(rnea(a)) − a = {err}", model.name());
        }
    }
}

/// Angular velocity ω with R(q + h dq) ≈ exp(h [ω]×) R(q), by central differences.
fn finite_difference_twist(model: &Model, q: &[f64], dq: &[f64], frame: usize, h: f64) -> (Vector3<f64>, Vector3<f64>) {
    let mut data = Data::new(model);
    let mut pose = |s: f64| {
        let qs: Vec<f64> = q.iter().zip(dq).map(|(q, d)| q + s * d).collect();
        forward_kinematics(model, &mut data, &qs);
        data.world_T_frame[frame]
    };
    let (plus, minus) = (pose(h), pose(-h));
    let linear = (plus.translation.vector - minus.translation.vector) / (2.0 * h);
    let angular = (plus.rotation * minus.rotation.inverse()).scaled_axis() / (2.0 * h);
    (linear, angular)
}

#[test]
fn frame_jacobians_match_finite_differences_of_forward_kinematics() {
    let h = 1e-6;
    for (model, tip) in all_models() {
        let n = model.nv();
        let mut data = Data::new(&model);
        let mut jac = Matrix6xX::zeros(n);
        for frame_name in [tip, model.frames()[model.frames().len() / 2].name.as_str()] {
            let frame = model.frame_id(frame_name).unwrap();
            for seed in 0..5 {
                let (q, _, _) = random_state(&model, 200 + seed);
                forward_kinematics(&model, &mut data, &q);
                let world_T_frame = data.world_T_frame[frame.0];
                let p = world_T_frame.translation.vector;
                let frame_R_world = world_T_frame.rotation.inverse();
                for reference in [ReferenceFrame::World, ReferenceFrame::Local, ReferenceFrame::LocalWorldAligned] {
                    frame_jacobian(&model, &mut data, &q, frame, reference, &mut jac);
                    for k in 0..n {
                        let mut dq = vec![0.0; n];
                        dq[k] = 1.0;
                        let (p_dot, omega) = finite_difference_twist(&model, &q, &dq, frame.0, h);
                        let (lin, ang) = match reference {
                            ReferenceFrame::LocalWorldAligned => (p_dot, omega),
                            ReferenceFrame::World => (p_dot - omega.cross(&p), omega),
                            ReferenceFrame::Local => (frame_R_world * p_dot, frame_R_world * omega),
                        };
                        let column = jac.column(k);
                        let expected = Vector6::new(lin.x, lin.y, lin.z, ang.x, ang.y, ang.z);
                        let err = (column - expected).abs().max();
                        assert!(err < 1e-7, "{} {frame_name} {reference:?} column {k}: error {err}", model.name());
                    }
                }
            }
        }
    }
}

#[test]
fn frame_jacobian_from_data_agrees_with_frame_jacobian_and_joint_jacobians() {
    for (model, tip) in all_models() {
        let n = model.nv();
        let mut data = Data::new(&model);
        let (q, _, _) = random_state(&model, 7);
        let frame = model.frame_id(tip).unwrap();
        let mut direct = Matrix6xX::zeros(n);
        let mut cached = Matrix6xX::zeros(n);
        frame_jacobian(&model, &mut data, &q, frame, ReferenceFrame::World, &mut direct);
        let all = joint_jacobians(&model, &mut data, &q).clone();
        frame_jacobian_from_data(&model, &mut data, frame, ReferenceFrame::World, &mut cached);
        assert_eq!(direct, cached);
        // In the World convention a frame Jacobian is the joint Jacobians of its supporting joints.
        let j = model.frames()[frame.0].joint.unwrap();
        for k in 0..n {
            let expected = if model.is_ancestor(k, j) { all.column(k).into_owned() } else { Vector6::zeros() };
            assert_eq!(direct.column(k).into_owned(), expected);
        }
    }
    // Base frame: nothing moves it.
    let model = robot("plexo-arm4");
    let mut data = Data::new(&model);
    let mut jac = Matrix6xX::from_element(4, 1.0);
    frame_jacobian(&model, &mut data, &[0.1; 4], model.frame_id("base_link").unwrap(), ReferenceFrame::Local, &mut jac);
    assert_eq!(jac.abs().max(), 0.0);
}

#[test]
fn acceleration_bias_matches_finite_differences() {
    let h = 1e-4;
    for (model, tip) in all_models() {
        let n = model.nv();
        let frame = model.frame_id(tip).unwrap();
        let mut data = Data::new(&model);
        let mut jac = Matrix6xX::zeros(n);
        for seed in 0..4 {
            let (q, v, _) = random_state(&model, 300 + seed);
            let at = |s: f64| -> Vec<f64> { q.iter().zip(&v).map(|(q, v)| q + s * v).collect() };
            // Position and velocity of the frame along q(t) = q + t v (q̈ = 0).
            let mut position = |s: f64| {
                forward_kinematics(&model, &mut data, &at(s));
                data.world_T_frame[frame.0]
            };
            let (pm, p0, pp) = (position(-h), position(0.0), position(h));
            let p_ddot = (pp.translation.vector - 2.0 * p0.translation.vector + pm.translation.vector) / (h * h);
            let mut velocity = |s: f64, reference: ReferenceFrame| -> Vector6<f64> {
                frame_jacobian(&model, &mut data, &at(s), frame, reference, &mut jac);
                &jac * DVector::from_column_slice(&v)
            };
            let lwa_dot = (velocity(h, ReferenceFrame::LocalWorldAligned)
                - velocity(-h, ReferenceFrame::LocalWorldAligned))
                / (2.0 * h);
            let world_dot = (velocity(h, ReferenceFrame::World) - velocity(-h, ReferenceFrame::World)) / (2.0 * h);
            let alpha = lwa_dot.fixed_rows::<3>(3).into_owned();
            let frame_R_world = p0.rotation.inverse();

            let lwa =
                frame_classical_acceleration_bias(&model, &mut data, &q, &v, frame, ReferenceFrame::LocalWorldAligned);
            let expected = Vector6::new(p_ddot.x, p_ddot.y, p_ddot.z, alpha.x, alpha.y, alpha.z);
            assert!((lwa - expected).abs().max() < 1e-5, "{} LWA {lwa} vs {expected}", model.name());
            assert!((lwa - lwa_dot).abs().max() < 1e-5, "{} LWA = d/dt(J) q̇", model.name());

            let world = frame_classical_acceleration_bias(&model, &mut data, &q, &v, frame, ReferenceFrame::World);
            assert!((world - world_dot).abs().max() < 1e-5, "{} World {world} vs {world_dot}", model.name());

            let local = frame_classical_acceleration_bias(&model, &mut data, &q, &v, frame, ReferenceFrame::Local);
            let lin = frame_R_world * p_ddot;
            let ang = frame_R_world * alpha;
            let expected = Vector6::new(lin.x, lin.y, lin.z, ang.x, ang.y, ang.z);
            assert!((local - expected).abs().max() < 1e-5, "{} Local {local} vs {expected}", model.name());
        }
    }
}

#[test]
fn gravity_torque_is_the_gradient_of_potential_energy() {
    let h = 1e-6;
    for (model, _) in all_models() {
        let n = model.nv();
        let mut data = Data::new(&model);
        for seed in 0..5 {
            let (q, _, _) = random_state(&model, 400 + seed);
            let g = gravity_torque(&model, &mut data, &q).clone();
            for k in 0..n {
                let mut qp = q.clone();
                let mut qm = q.clone();
                qp[k] += h;
                qm[k] -= h;
                let du =
                    (potential_energy(&model, &mut data, &qp) - potential_energy(&model, &mut data, &qm)) / (2.0 * h);
                assert!((g[k] - du).abs() < 1e-6, "{} joint {k}: g {} vs dU/dq {du}", model.name(), g[k]);
            }
            // And it is RNEA at rest.
            let zero = vec![0.0; n];
            let tau = rnea(&model, &mut data, &q, &zero, &zero);
            assert!((tau - &g).abs().max() < 1e-12);
        }
    }
}

#[test]
fn kinetic_energy_is_half_vt_m_v() {
    for (model, _) in all_models() {
        let mut data = Data::new(&model);
        let (q, v, _) = random_state(&model, 500);
        let m = crba(&model, &mut data, &q).clone();
        let vv = DVector::from_column_slice(&v);
        let expected = 0.5 * vv.dot(&(&m * &vv));
        let e = kinetic_energy(&model, &mut data, &q, &v);
        assert!((e - expected).abs() < 1e-12 * expected.max(1.0));
    }
}

/// RK4 on the state (q, v, W) with q̈ from ABA and Ẇ = q̇ᵀτ(t), the work done by the joint torques.
fn integrate_work(
    model: &Model,
    q0: &[f64],
    v0: &[f64],
    torque: impl Fn(f64) -> Vec<f64>,
    dt: f64,
    steps: usize,
) -> (Vec<f64>, Vec<f64>, f64) {
    let n = model.nv();
    let mut data = Data::new(model);
    let mut deriv = |t: f64, x: &[f64]| -> Vec<f64> {
        let (q, v) = (&x[..n], &x[n..2 * n]);
        let tau = torque(t);
        let ddq = aba(model, &mut data, q, v, &tau);
        let power: f64 = v.iter().zip(&tau).map(|(v, t)| v * t).sum();
        v.iter().copied().chain(ddq.iter().copied()).chain(std::iter::once(power)).collect()
    };
    let mut x: Vec<f64> = q0.iter().chain(v0).copied().chain(std::iter::once(0.0)).collect();
    for step in 0..steps {
        let t = step as f64 * dt;
        let add = |x: &[f64], k: &[f64], s: f64| -> Vec<f64> { x.iter().zip(k).map(|(x, k)| x + s * k).collect() };
        let k1 = deriv(t, &x);
        let k2 = deriv(t + dt / 2.0, &add(&x, &k1, dt / 2.0));
        let k3 = deriv(t + dt / 2.0, &add(&x, &k2, dt / 2.0));
        let k4 = deriv(t + dt, &add(&x, &k3, dt));
        for i in 0..x.len() {
            x[i] += dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
    }
    (x[..n].to_vec(), x[n..2 * n].to_vec(), x[2 * n])
}

#[test]
fn energy_rate_equals_joint_power_along_an_integrated_trajectory() {
    for (model, _) in all_models() {
        let n = model.nv();
        let mut data = Data::new(&model);
        let (q0, v0, _) = random_state(&model, 600);
        let energy = |data: &mut Data, q: &[f64], v: &[f64]| {
            kinetic_energy(&model, data, q, v) + potential_energy(&model, data, q)
        };
        let e0 = energy(&mut data, &q0, &v0);
        // Driven: E(T) − E(0) = ∫ q̇ᵀ τ dt.
        let torque = |t: f64| (0..n).map(|i| 0.3 * (3.0 * t + i as f64).sin()).collect::<Vec<f64>>();
        let (q, v, work) = integrate_work(&model, &q0, &v0, torque, 1e-3, 500);
        let e1 = energy(&mut data, &q, &v);
        assert!(work.abs() > 1e-3, "the torques do work");
        assert!(
            ((e1 - e0) - work).abs() < 1e-6 * (1.0 + work.abs()),
            "{}: ΔE {} vs work {work}",
            model.name(),
            e1 - e0
        );
        // Passive: energy conserved.
        let (q, v, work) = integrate_work(&model, &q0, &v0, |_| vec![0.0; n], 1e-3, 500);
        assert_eq!(work, 0.0);
        let e1 = energy(&mut data, &q, &v);
        assert!((e1 - e0).abs() < 1e-6 * (1.0 + e0.abs()), "{}: passive ΔE {}", model.name(), e1 - e0);
    }
}

#[test]
fn frame_jacobian_from_data_after_forward_kinematics_uses_that_configuration_not_a_stale_one() {
    for (model, tip) in all_models() {
        let n = model.nv();
        let mut data = Data::new(&model);
        let frame = model.frame_id(tip).unwrap();
        let (q_old, v, a) = random_state(&model, 11);
        let (q, _, _) = random_state(&model, 12);
        let mut expected = Matrix6xX::zeros(n);
        let mut cached = Matrix6xX::zeros(n);
        for reference in [ReferenceFrame::World, ReferenceFrame::Local, ReferenceFrame::LocalWorldAligned] {
            frame_jacobian(&model, &mut data, &q, frame, reference, &mut expected);
            // Another algorithm at another configuration, then forward kinematics at q.
            rnea(&model, &mut data, &q_old, &v, &a);
            forward_kinematics(&model, &mut data, &q);
            frame_jacobian_from_data(&model, &mut data, frame, reference, &mut cached);
            assert!((&cached - &expected).abs().max() < 1e-12, "{} {reference:?}", model.name());
        }
    }
}
