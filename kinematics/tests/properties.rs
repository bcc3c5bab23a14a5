//! Property tests over random configurations, velocities and torques.

mod common;

use nalgebra::{DVector, Matrix6xX};
use plexo_kinematics::{
    Data, Model, ReferenceFrame, aba, crba, forward_kinematics, frame_jacobian, gravity_torque, kinetic_energy,
    nonlinear_effects, rnea,
};
use proptest::prelude::*;

fn models() -> Vec<(Model, &'static str)> {
    common::all_models()
}

/// Number of models in `common::all_models()` (checked by `model_count_matches`).
const MODELS: usize = 5;

#[test]
fn model_count_matches() {
    assert_eq!(models().len(), MODELS, "update MODELS so the property tests cover every model");
}

fn state(n: usize) -> impl Strategy<Value = (Vec<f64>, Vec<f64>, Vec<f64>)> {
    (
        prop::collection::vec(-3.0..3.0f64, n),
        prop::collection::vec(-4.0..4.0f64, n),
        prop::collection::vec(-20.0..20.0f64, n),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn forward_then_inverse_dynamics_round_trip(model_index in 0usize..MODELS, seed_state in state(7)) {
        let (model, _) = &models()[model_index];
        let n = model.nv();
        let (q, v, tau) = (&seed_state.0[..n], &seed_state.1[..n], &seed_state.2[..n]);
        let mut data = Data::new(model);
        let ddq = aba(model, &mut data, q, v, tau).clone();
        let tau_back = rnea(model, &mut data, q, v, ddq.as_slice()).clone();
        let err = (tau_back - DVector::from_column_slice(tau)).abs().max();
        prop_assert!(err < 1e-8 * (1.0 + ddq.abs().max()), "{}: {err}", model.name());
        // M q̈ + h = τ with CRBA and the nonlinear effects.
        let m = crba(model, &mut data, q).clone();
        let h = nonlinear_effects(model, &mut data, q, v).clone();
        let err = (&m * &ddq + h - DVector::from_column_slice(tau)).abs().max();
        prop_assert!(err < 1e-8 * (1.0 + ddq.abs().max()));
    }

    #[test]
    fn mass_matrix_is_positive_definite_and_energy_positive(model_index in 0usize..MODELS, s in state(7)) {
        let (model, _) = &models()[model_index];
        let n = model.nv();
        let mut data = Data::new(model);
        let m = crba(model, &mut data, &s.0[..n]).clone();
        prop_assert!(m.clone().cholesky().is_some());
        let e = kinetic_energy(model, &mut data, &s.0[..n], &s.1[..n]);
        prop_assert!(e >= 0.0);
        // Gravity only depends on position: g(q) = RNEA(q, 0, 0) regardless of v.
        let g = gravity_torque(model, &mut data, &s.0[..n]).clone();
        let zero = vec![0.0; n];
        let tau = rnea(model, &mut data, &s.0[..n], &zero, &zero).clone();
        prop_assert!((g - tau).abs().max() < 1e-10);
    }

    #[test]
    fn frame_placements_are_rigid_and_jacobian_references_agree(model_index in 0usize..MODELS, s in state(7)) {
        let (model, tip) = &models()[model_index];
        let n = model.nv();
        let q = &s.0[..n];
        let mut data = Data::new(model);
        forward_kinematics(model, &mut data, q);
        for pose in &data.world_T_frame {
            prop_assert!((pose.rotation.norm() - 1.0).abs() < 1e-12);
            prop_assert!(pose.translation.vector.iter().all(|x| x.is_finite()));
        }
        let frame = model.frame_id(tip).unwrap();
        let p = data.world_T_frame[frame.0].translation.vector;
        let r = data.world_T_frame[frame.0].rotation;
        let mut world = Matrix6xX::zeros(n);
        let mut lwa = Matrix6xX::zeros(n);
        let mut local = Matrix6xX::zeros(n);
        frame_jacobian(model, &mut data, q, frame, ReferenceFrame::World, &mut world);
        frame_jacobian(model, &mut data, q, frame, ReferenceFrame::LocalWorldAligned, &mut lwa);
        frame_jacobian(model, &mut data, q, frame, ReferenceFrame::Local, &mut local);
        for k in 0..n {
            let w_lin = world.fixed_view::<3, 1>(0, k).into_owned();
            let ang = world.fixed_view::<3, 1>(3, k).into_owned();
            let lwa_lin = lwa.fixed_view::<3, 1>(0, k).into_owned();
            prop_assert!((lwa_lin - (w_lin + ang.cross(&p))).norm() < 1e-12);
            let local_lin = local.fixed_view::<3, 1>(0, k).into_owned();
            prop_assert!((r * local_lin - lwa_lin).norm() < 1e-12);
        }
    }
}
