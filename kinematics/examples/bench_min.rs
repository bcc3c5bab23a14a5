//! Best-case timings of every algorithm on the default robots: the minimum over 200 batches of 200 calls.
//!
//! Criterion (`cargo bench -p plexo-kinematics`) reports means, which on a shared, loaded machine measure the
//! load as much as the code. The minimum over many short batches is a robust estimate of the undisturbed cost.
//! Run with `cargo run --release -p plexo-kinematics --example bench_min`.

use std::hint::black_box;
use std::time::Instant;

use nalgebra::Matrix6xX;
use plexo_kinematics::{
    Data, Model, ReferenceFrame, aba, crba, default_robot_urdf, forward_kinematics, frame_jacobian_from_data,
    gravity_torque, joint_jacobians, rnea,
};

/// Minimum over batches of the mean time per call [ns].
fn min_ns(mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..200 {
        let start = Instant::now();
        for _ in 0..200 {
            f();
        }
        best = best.min(start.elapsed().as_nanos() as f64 / 200.0);
    }
    best
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("| robot | fk | jacobians | rnea | gravity | crba | aba | aba (armature) |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, tip) in [("plexo-arm4", "handle"), ("plexo-arm6", "handle"), ("test-arm7", "tool")] {
        let model = Model::from_urdf_str(default_robot_urdf(name).ok_or("missing robot")?)?;
        let mut data = Data::new(&model);
        let n = model.nv();
        let q: Vec<f64> = (0..n).map(|i| 0.3 + 0.1 * i as f64).collect();
        let v: Vec<f64> = (0..n).map(|i| 0.5 - 0.2 * i as f64).collect();
        let a: Vec<f64> = (0..n).map(|i| -0.4 + 0.15 * i as f64).collect();
        let tip = model.frame_id(tip).ok_or("missing tip frame")?;
        let mut jacobian = Matrix6xX::zeros(n);
        let fk = min_ns(|| {
            forward_kinematics(&model, &mut data, black_box(&q));
            black_box(&data.world_T_frame);
        });
        let jacobians = min_ns(|| {
            joint_jacobians(&model, &mut data, black_box(&q));
            for reference in [ReferenceFrame::World, ReferenceFrame::Local, ReferenceFrame::LocalWorldAligned] {
                frame_jacobian_from_data(&model, &mut data, tip, reference, &mut jacobian);
            }
            black_box(&jacobian);
        });
        let inverse = min_ns(|| {
            black_box(rnea(&model, &mut data, black_box(&q), &v, &a));
        });
        let gravity = min_ns(|| {
            black_box(gravity_torque(&model, &mut data, black_box(&q)));
        });
        let mass = min_ns(|| {
            black_box(crba(&model, &mut data, black_box(&q)));
        });
        let forward = min_ns(|| {
            black_box(aba(&model, &mut data, black_box(&q), &v, &a));
        });
        let with_armature = model.with_armature(&vec![0.05; n])?;
        let forward_armature = min_ns(|| {
            black_box(aba(&with_armature, &mut data, black_box(&q), &v, &a));
        });
        println!(
            "| {name} ({n} DOF) | {fk:.0} ns | {jacobians:.0} ns | {inverse:.0} ns | {gravity:.0} ns | {mass:.0} ns | {forward:.0} ns | {forward_armature:.0} ns |"
        );
    }
    Ok(())
}
