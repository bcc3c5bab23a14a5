//! One full control tick on plexo-arm4: model update (gravity ×2, nonlinear effects, mass matrix) + momentum
//! observer + AAN law + impedance + safety supervisor. Also per-mode variants.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use plexo_controller::{AanLaw, Controller, Mode, SafetySupervisor, Space, TaskReference};
use plexo_hal::JointState;
use plexo_testkit::rig::TickWorkload;

fn setup(mode: Mode, law: AanLaw, space: Space) -> (Controller, SafetySupervisor, JointState, TaskReference) {
    let TickWorkload { controller, supervisor, state, reference } = TickWorkload::new(mode, law, space);
    (controller, supervisor, state, reference)
}

fn bench_tick(c: &mut Criterion) {
    let cases = [
        ("tick_arm4_aan_emken", Mode::ActiveAssisted, AanLaw::Emken, Space::Joint),
        ("tick_arm4_aan_fixed", Mode::ActiveAssisted, AanLaw::Fixed, Space::Joint),
        ("tick_arm4_aan_rbf", Mode::ActiveAssisted, AanLaw::Rbf, Space::Joint),
        ("tick_arm4_aan_tunnel", Mode::ActiveAssisted, AanLaw::Tunnel, Space::Joint),
        ("tick_arm4_passive_joint_ff", Mode::Passive, AanLaw::Fixed, Space::Joint),
        ("tick_arm4_passive_cartesian", Mode::Passive, AanLaw::Fixed, Space::Cartesian),
        ("tick_arm4_transparent", Mode::Transparent, AanLaw::Fixed, Space::Joint),
        ("tick_arm4_resistive", Mode::Resistive, AanLaw::Fixed, Space::Joint),
        ("tick_arm4_error_augmentation", Mode::ErrorAugmentation, AanLaw::Fixed, Space::Joint),
    ];
    for (name, mode, law, space) in cases {
        let (mut controller, mut supervisor, mut state, reference) = setup(mode, law, space);
        let mut now = Duration::from_secs(1);
        let mut t = 0.0;
        c.bench_function(name, |b| {
            b.iter(|| {
                t += 0.001;
                now += Duration::from_millis(1);
                state.stamp = now;
                state.position[0] += 1e-9; // never frozen
                let mut cmd = controller.update(black_box(&state), black_box(&reference), t);
                let outcome = supervisor.apply(&state, controller.report(), &mut cmd, now);
                black_box((cmd, outcome))
            })
        });
    }
}

/// Reference: the dynamics part alone (nonlinear effects + mass matrix + forward kinematics of robot + arm), to
/// separate the kinematics library's share from the controller's own work in a loaded machine.
fn bench_model_only(c: &mut Criterion) {
    let (controller, _, state, _) = setup(Mode::Transparent, AanLaw::Fixed, Space::Joint);
    let model = controller.coupled_model().clone();
    let mut data = plexo_kinematics::Data::new(&model);
    c.bench_function("model_update_only_arm4", |b| {
        b.iter(|| {
            plexo_kinematics::nonlinear_effects(&model, &mut data, black_box(&state.position), &state.velocity);
            plexo_kinematics::crba(&model, &mut data, &state.position);
            plexo_kinematics::forward_kinematics(&model, &mut data, &state.position);
            black_box(data.mass_matrix[(0, 0)])
        })
    });
}

/// On-CPU time of this thread [ns] from /proc/thread-self/schedstat (Linux), None elsewhere. Wall-clock figures on a
/// shared, overloaded machine include preemption; this one does not.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

/// Prints the on-CPU time per tick (mean over 200 000 ticks) next to criterion's wall-clock figures.
fn cpu_time_per_tick(_c: &mut Criterion) {
    for (name, mode, law, space) in [
        ("aan_emken", Mode::ActiveAssisted, AanLaw::Emken, Space::Joint),
        ("passive_cartesian", Mode::Passive, AanLaw::Fixed, Space::Cartesian),
    ] {
        let (mut controller, mut supervisor, mut state, reference) = setup(mode, law, space);
        let mut now = Duration::from_secs(1);
        let ticks = 200_000u32;
        let Some(start) = thread_cpu_ns() else { return };
        for k in 0..ticks {
            now += Duration::from_millis(1);
            state.stamp = now;
            state.position[0] += 1e-9;
            let mut cmd = controller.update(black_box(&state), black_box(&reference), f64::from(k) * 1e-3);
            black_box(supervisor.apply(&state, controller.report(), &mut cmd, now));
        }
        if let Some(end) = thread_cpu_ns() {
            println!("on-CPU time per tick ({name}): {:.3} µs", (end - start) as f64 / f64::from(ticks) / 1000.0);
        }
    }
}

criterion_group!(benches, bench_model_only, bench_tick, cpu_time_per_tick);
criterion_main!(benches);
