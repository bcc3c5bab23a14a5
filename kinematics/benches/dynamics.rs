//! Criterion benchmarks of the kinematics and dynamics algorithms on the default robots.
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use nalgebra::Matrix6xX;
use plexo_kinematics::{
    Data, Model, ReferenceFrame, aba, crba, default_robot_urdf, forward_kinematics, frame_jacobian_from_data,
    gravity_torque, joint_jacobians, rnea,
};

fn bench_robot(c: &mut Criterion, name: &str, tip: &str) {
    let model = Model::from_urdf_str(default_robot_urdf(name).expect("embedded robot")).expect("valid URDF");
    let mut data = Data::new(&model);
    let n = model.nv();
    let q: Vec<f64> = (0..n).map(|i| 0.3 + 0.1 * i as f64).collect();
    let v: Vec<f64> = (0..n).map(|i| 0.5 - 0.2 * i as f64).collect();
    let a: Vec<f64> = (0..n).map(|i| -0.4 + 0.15 * i as f64).collect();
    let tip = model.frame_id(tip).expect("tip frame");
    let mut jac = Matrix6xX::zeros(n);
    let mut group = c.benchmark_group(name);
    group.bench_function("fk", |b| {
        b.iter(|| {
            forward_kinematics(&model, &mut data, black_box(&q));
            black_box(&data.world_T_frame);
        })
    });
    group.bench_function("jacobians", |b| {
        b.iter(|| {
            joint_jacobians(&model, &mut data, black_box(&q));
            for reference in [ReferenceFrame::World, ReferenceFrame::Local, ReferenceFrame::LocalWorldAligned] {
                frame_jacobian_from_data(&model, &mut data, tip, reference, &mut jac);
            }
            black_box(&jac);
        })
    });
    // Each closure black-boxes the result so the optimiser cannot drop any of the work.
    group.bench_function("rnea", |b| {
        b.iter(|| {
            black_box(rnea(&model, &mut data, black_box(&q), black_box(&v), black_box(&a)));
        })
    });
    group.bench_function("gravity", |b| {
        b.iter(|| {
            black_box(gravity_torque(&model, &mut data, black_box(&q)));
        })
    });
    group.bench_function("crba", |b| {
        b.iter(|| {
            black_box(crba(&model, &mut data, black_box(&q)));
        })
    });
    group.bench_function("aba", |b| {
        b.iter(|| {
            black_box(aba(&model, &mut data, black_box(&q), black_box(&v), black_box(&a)));
        })
    });
    // The same with reflected rotor inertia on every joint: the armature must not slow ABA down.
    let with_armature = model.with_armature(&vec![0.05; n]).expect("valid armature");
    group.bench_function("aba_armature", |b| {
        b.iter(|| {
            black_box(aba(&with_armature, &mut data, black_box(&q), black_box(&v), black_box(&a)));
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_robot(c, "plexo-arm4", "handle");
    bench_robot(c, "plexo-arm6", "handle");
    bench_robot(c, "test-arm7", "tool");
}

criterion_group!(kinematics, benches);
criterion_main!(kinematics);
