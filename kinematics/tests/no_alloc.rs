//! Proof that no algorithm allocates after `Data::new`: a counting global allocator counts heap allocations made
//! by the current thread between two points.

mod common;

use nalgebra::Matrix6xX;
use plexo_kinematics::{
    Data, ReferenceFrame, aba, crba, forward_kinematics, frame_classical_acceleration_bias, frame_jacobian,
    frame_jacobian_from_data, gravity_torque, joint_jacobians, kinetic_energy, nonlinear_effects, potential_energy,
    rnea, try_aba,
};
use plexo_testkit::allocations;

plexo_testkit::install_counting_allocator!();

#[test]
fn counting_allocator_sees_allocations() {
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 64]);
    assert!(allocations() > before, "the counter works");
    drop(v);
}

#[test]
fn no_algorithm_allocates_after_data_new() {
    let models = common::all_models();
    assert!(
        models.iter().any(|(m, _)| m.armature().iter().any(|&a| a > 0.0)),
        "the armature terms of RNEA, CRBA, ABA and the kinetic energy are covered"
    );
    for (model, tip) in models {
        let n = model.nv();
        let mut data = Data::new(&model);
        let mut jac = Matrix6xX::zeros(n);
        let frame = model.frame_id(tip).unwrap();
        let q: Vec<f64> = (0..n).map(|i| 0.1 * i as f64).collect();
        let v: Vec<f64> = (0..n).map(|i| 0.3 - 0.1 * i as f64).collect();
        let a: Vec<f64> = (0..n).map(|i| 0.2 * i as f64).collect();
        let before = allocations();
        let mut sink = 0.0;
        for _ in 0..3 {
            forward_kinematics(&model, &mut data, &q);
            joint_jacobians(&model, &mut data, &q);
            for reference in [ReferenceFrame::World, ReferenceFrame::Local, ReferenceFrame::LocalWorldAligned] {
                frame_jacobian(&model, &mut data, &q, frame, reference, &mut jac);
                frame_jacobian_from_data(&model, &mut data, frame, reference, &mut jac);
                sink += frame_classical_acceleration_bias(&model, &mut data, &q, &v, frame, reference)[0];
            }
            sink += rnea(&model, &mut data, &q, &v, &a)[0];
            sink += gravity_torque(&model, &mut data, &q)[0];
            sink += nonlinear_effects(&model, &mut data, &q, &v)[0];
            sink += crba(&model, &mut data, &q)[(0, 0)];
            let tau: &[f64] = &a;
            sink += aba(&model, &mut data, &q, &v, tau)[0];
            sink += try_aba(&model, &mut data, &q, &v, tau).expect("regular configuration")[0];
            sink += kinetic_energy(&model, &mut data, &q, &v);
            sink += potential_energy(&model, &mut data, &q);
        }
        let after = allocations();
        assert!(sink.is_finite());
        assert_eq!(after - before, 0, "{}: algorithms allocated {} times", model.name(), after - before);
    }
}
