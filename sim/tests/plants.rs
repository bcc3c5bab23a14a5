//! Plant-level tests: rapier vs articulated agreement, energy conservation, lifecycle, determinism.

mod common;

use common::{arm4, ideal_config, profile};
use plexo_hal::{ErrorKind, JointCommand, JointState, Lifecycle, Robot, RobotError};
use plexo_sim::{
    ArticulatedPlant, Integrator, MotorParams, PlantConfig, RapierOptions, RapierPlant, SimError, SimulatedPlant,
};

const Q0: [f64; 4] = [0.4, 0.6, 0.3, 1.2];

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Reference trajectory around mid-range, away from every joint limit: q_ref(t) [rad] and derivatives.
fn reference(t: f64) -> ([f64; 4], [f64; 4], [f64; 4]) {
    let centre = [0.5, 0.7, 0.0, 1.2];
    let amp = [0.25, 0.3, 0.3, 0.4];
    let w = [2.0, 1.5, 2.5, 3.0];
    let mut q = [0.0; 4];
    let mut v = [0.0; 4];
    let mut a = [0.0; 4];
    for i in 0..4 {
        q[i] = centre[i] + amp[i] * (w[i] * t).sin();
        v[i] = amp[i] * w[i] * (w[i] * t).cos();
        a[i] = -amp[i] * w[i] * w[i] * (w[i] * t).sin();
    }
    (q, v, a)
}

/// Open-loop torques: inverse dynamics (RNEA + armature) of the reference, precomputed so both plants receive
/// exactly the same torque sequence.
fn open_loop_torques(model: &plexo_kinematics::Model, armature: &[f64], steps: usize) -> Vec<[f64; 4]> {
    let mut data = plexo_kinematics::Data::new(model);
    (0..steps)
        .map(|k| {
            let (q, v, a) = reference(k as f64 * 1e-3);
            let tau = plexo_kinematics::rnea(model, &mut data, &q, &v, &a);
            [0, 1, 2, 3].map(|i| tau[i] + armature[i] * a[i])
        })
        .collect()
}

/// Releases both plants from the reference's initial state and drives them with the same command for
/// `seconds`: the inverse-dynamics torque of the reference plus a drive-side impedance loop (MIT mode) around
/// it — the open-loop arm alone is a chaotic multiple pendulum in which any two integrators part ways.
/// Returns the worst position [rad] and velocity [rad/s] difference.
fn compare(config: PlantConfig, integrator: Integrator, seconds: f64) -> (f64, f64) {
    let model = arm4();
    let mut a = ArticulatedPlant::new(&model, config.clone()).unwrap().with_integrator(integrator);
    let mut r = RapierPlant::new(&model, config, RapierOptions::default()).unwrap();
    let (q0, v0, _) = reference(0.0);
    a.set_state(&q0, &v0).unwrap();
    r.set_state(&q0, &v0).unwrap();
    a.enable().unwrap();
    r.enable().unwrap();
    let steps = (seconds / 1e-3).round() as usize;
    let armature: Vec<f64> = (0..4).map(|i| a.armature()[i]).collect();
    let torques = open_loop_torques(a.model(), &armature, steps);
    let (mut dq, mut dv) = (0.0_f64, 0.0_f64);
    for (k, tau) in torques.iter().enumerate() {
        let (q, v, _) = reference(k as f64 * 1e-3);
        let mut cmd = JointCommand::zeros(4);
        cmd.torque.copy_from_slice(tau);
        cmd.drive_impedance = Some(plexo_hal::DriveImpedance {
            position: plexo_hal::JointArray::from_slice(&q).unwrap(),
            velocity: plexo_hal::JointArray::from_slice(&v).unwrap(),
            stiffness: plexo_hal::JointArray::splat(4, 30.0),
            damping: plexo_hal::JointArray::splat(4, 1.0),
        });
        a.write(&cmd).unwrap();
        r.write(&cmd).unwrap();
        dq = dq.max(max_abs_diff(a.position(), r.position()));
        dv = dv.max(max_abs_diff(a.velocity(), r.velocity()));
    }
    // The run must be meaningful: the arm followed the reference, away from the limits.
    let (q_end, _, _) = reference(seconds - 1e-3);
    assert!(max_abs_diff(a.position(), &q_end) < 0.2, "articulated plant left the reference: {:?}", a.position());
    (dq, dv)
}

/// Same torque sequence, no feedback, over 0.5 s (before the chaotic divergence of the bare arm dominates).
#[test]
fn rapier_and_articulated_agree_open_loop_for_half_a_second() {
    let model = arm4();
    let config = ideal_config(&model, None, &Q0);
    let mut a = ArticulatedPlant::new(&model, config.clone()).unwrap();
    let mut r = RapierPlant::new(&model, config, RapierOptions::default()).unwrap();
    let (q0, v0, _) = reference(0.0);
    a.set_state(&q0, &v0).unwrap();
    r.set_state(&q0, &v0).unwrap();
    a.enable().unwrap();
    r.enable().unwrap();
    let mut dq = 0.0_f64;
    for tau in open_loop_torques(a.model(), &[0.0; 4], 500) {
        let mut cmd = JointCommand::zeros(4);
        cmd.torque.copy_from_slice(&tau);
        a.write(&cmd).unwrap();
        r.write(&cmd).unwrap();
        dq = dq.max(max_abs_diff(a.position(), r.position()));
    }
    eprintln!("open loop 0.5 s: max |Δq| = {dq:.2e} rad");
    assert!(dq < 1e-3, "max position difference {dq} rad");
}

/// Stated agreement bounds over 2 s (see sim/BENCHMARKS.md "Cross-check").
const AGREE_Q: f64 = 5e-4; // [rad]
const AGREE_V: f64 = 1e-2; // [rad/s]

#[test]
fn rapier_and_articulated_agree_for_2s_bare_robot() {
    let model = arm4();
    for integrator in [Integrator::SemiImplicitEuler, Integrator::Rk4] {
        let (dq, dv) = compare(ideal_config(&model, None, &Q0), integrator, 2.0);
        eprintln!("{integrator:?} bare: max |Δq| = {dq:.2e} rad, max |Δv| = {dv:.2e} rad/s");
        assert!(dq < AGREE_Q, "{integrator:?}: max position difference {dq} rad");
        assert!(dv < AGREE_V, "{integrator:?}: max velocity difference {dv} rad/s");
    }
}

#[test]
fn rapier_and_articulated_agree_for_2s_with_motors_and_patient() {
    let model = arm4();
    let mut config = ideal_config(&model, Some(profile("moderate")), &Q0);
    // Default motors (rotor inertia, friction, lag) with a limit high enough not to clip the open-loop torques.
    config.motors =
        Some(model.joints().iter().map(|_| MotorParams { torque_limit: 200.0, ..MotorParams::default() }).collect());
    let (dq, dv) = compare(config, Integrator::SemiImplicitEuler, 2.0);
    eprintln!("motors + moderate patient: max |Δq| = {dq:.2e} rad, max |Δv| = {dv:.2e} rad/s");
    assert!(dq < AGREE_Q, "max position difference {dq} rad");
    assert!(dv < AGREE_V, "max velocity difference {dv} rad/s");
}

fn energy_drift<P: SimulatedPlant>(mut plant: P, seconds: f64) -> (f64, f64) {
    let e0 = plant.energy();
    let mut worst = 0.0_f64;
    let zero = JointCommand::zeros(plant.dof());
    let mut swing = 0.0_f64;
    for _ in 0..(seconds / 1e-3).round() as usize {
        plant.write(&zero).unwrap();
        worst = worst.max((plant.energy() - e0).abs());
        swing = swing.max(plant.velocity().iter().fold(0.0_f64, |m, v| m.max(v.abs())));
    }
    (worst, swing)
}

/// plexo-arm4 with its joint limits opened to ±1000 rad, so a released arm swings without hitting a stop (a stop
/// is an inelastic impact and legitimately removes energy).
fn arm4_without_limits() -> plexo_kinematics::Model {
    let model = arm4();
    let mut b = plexo_kinematics::ModelBuilder::new("arm4-open");
    for j in model.joints() {
        let mut j = j.clone();
        j.limits.lower = -1.0e3;
        j.limits.upper = 1.0e3;
        b = b.joint(j);
    }
    b.build().unwrap()
}

/// A released arm (no friction, no torque, no patient) swinging freely and wildly (≈ 15 rad/s peaks).
fn passive_config() -> PlantConfig {
    ideal_config(&arm4_without_limits(), None, &[0.5, 0.9, 0.3, 1.2])
}

/// A smaller release (the light shoulder-rotation link still spins up to ≈ 20 rad/s).
fn gentle_config() -> PlantConfig {
    ideal_config(&arm4_without_limits(), None, &[0.2, 0.3, 0.1, 0.4])
}

#[test]
fn passive_articulated_rk4_conserves_energy_over_10s() {
    let plant =
        ArticulatedPlant::new(&arm4_without_limits(), passive_config()).unwrap().with_integrator(Integrator::Rk4);
    let (drift, swing) = energy_drift(plant, 10.0);
    eprintln!("RK4: max |ΔE| = {drift:.2e} J over 10 s (peak speed {swing:.1} rad/s)");
    assert!(swing > 1.0, "the arm must actually swing ({swing} rad/s)");
    assert!(drift < 1e-4, "RK4 energy drift {drift} J over 10 s");
}

#[test]
fn passive_articulated_euler_energy_stays_bounded_over_10s() {
    let plant = ArticulatedPlant::new(&arm4_without_limits(), gentle_config()).unwrap();
    let (drift, swing) = energy_drift(plant, 10.0);
    eprintln!("semi-implicit Euler: max |ΔE| = {drift:.2e} J over 10 s (peak speed {swing:.1} rad/s)");
    // Symplectic: bounded oscillation, no secular drift; measured 0.094 J with ~20 rad/s peak speeds.
    assert!(drift < 0.15, "semi-implicit Euler energy error {drift} J over 10 s");
}

#[test]
fn passive_rapier_energy_drift_is_bounded_over_10s() {
    let plant = RapierPlant::new(&arm4_without_limits(), gentle_config(), RapierOptions::default()).unwrap();
    let (drift, swing) = energy_drift(plant, 10.0);
    eprintln!("rapier: max |ΔE| = {drift:.2e} J over 10 s (peak speed {swing:.1} rad/s)");
    assert!(swing > 0.5);
    // Measured 0.070 J with ~22 rad/s peak speeds (rapier's semi-implicit Coriolis treatment).
    assert!(drift < 0.15, "rapier energy drift {drift} J over 10 s");
}

fn run_trace<P: SimulatedPlant>(mut plant: P, steps: usize) -> Vec<f64> {
    plant.enable().unwrap();
    if let Some(p) = plant.patient_mut() {
        p.set_target(&[0.3, 0.5, 0.2, 1.0], 1.0).unwrap();
    }
    let mut state = JointState::zeros(plant.dof());
    let mut out = Vec::new();
    let mut cmd = JointCommand::zeros(plant.dof());
    for k in 0..steps {
        cmd.torque[1] = (k as f64 * 0.01).sin();
        plant.write(&cmd).unwrap();
        plant.read(&mut state).unwrap();
        out.extend_from_slice(&state.position);
        out.extend_from_slice(&state.velocity);
        out.extend_from_slice(&plant.patient().unwrap().torques().total);
    }
    out
}

#[test]
fn same_seed_same_result_both_plants() {
    let model = arm4();
    let config = || PlantConfig::default().with_patient(profile("spastic"));
    let a1 = run_trace(ArticulatedPlant::new(&model, config()).unwrap(), 800);
    let a2 = run_trace(ArticulatedPlant::new(&model, config()).unwrap(), 800);
    assert_eq!(a1, a2);
    let r1 = run_trace(RapierPlant::new(&model, config(), RapierOptions::default()).unwrap(), 800);
    let r2 = run_trace(RapierPlant::new(&model, config(), RapierOptions::default()).unwrap(), 800);
    assert_eq!(r1, r2);
    // A different sensor seed changes the measured signal.
    let mut other = config();
    other.sensors.seed ^= 1;
    let a3 = run_trace(ArticulatedPlant::new(&model, other).unwrap(), 800);
    assert_ne!(a1, a3);
}

#[test]
fn time_advances_one_period_per_write_even_when_disabled() {
    let model = arm4();
    let mut config = PlantConfig::ideal(&model);
    config.period = core::time::Duration::from_micros(500);
    let mut plant = ArticulatedPlant::new(&model, config).unwrap();
    let mut state = JointState::zeros(4);
    for _ in 0..10 {
        plant.write(&JointCommand::zeros(4)).unwrap();
    }
    plant.read(&mut state).unwrap();
    assert_eq!(state.stamp, core::time::Duration::from_micros(5000));
    assert!((plant.time() - 0.005).abs() < 1e-12);
}

#[test]
fn lifecycle_rules_hold_for_both_plants() {
    fn check<P: SimulatedPlant>(mut plant: P) {
        let mut cmd = JointCommand::zeros(4);
        cmd.torque[3] = 1.0;
        // Disabled: non-zero torque rejected, no torque applied, time still advances.
        let err = plant.write(&cmd).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidCommand);
        assert!(plant.motor_torque().iter().all(|t| *t == 0.0));
        plant.enable().unwrap();
        plant.write(&cmd).unwrap();
        assert!(plant.motor_torque()[3] > 0.0);
        // NaN rejected, torque cut for that cycle.
        cmd.torque[0] = f64::NAN;
        assert!(matches!(plant.write(&cmd), Err(SimError::NonFiniteCommand { joint: 0, .. })));
        assert!(plant.motor_torque().iter().all(|t| *t == 0.0));
        // Wrong joint count.
        assert_eq!(plant.write(&JointCommand::zeros(3)).unwrap_err().kind(), ErrorKind::InvalidCommand);
        // E-stop latches; enable refused until reset.
        plant.estop().unwrap();
        assert_eq!(plant.lifecycle(), Lifecycle::EStopped);
        assert_eq!(plant.enable().unwrap_err().kind(), ErrorKind::InvalidState);
        cmd.torque[0] = 1.0;
        assert!(plant.write(&cmd).is_err());
        plant.reset().unwrap();
        assert_eq!(plant.lifecycle(), Lifecycle::Disabled);
        // After re-enable the first torque seen is the first command written (no stale command).
        plant.enable().unwrap();
        plant.write(&JointCommand::zeros(4)).unwrap();
        assert!(plant.motor_torque().iter().all(|t| *t == 0.0));
    }
    let model = arm4();
    check(ArticulatedPlant::new(&model, PlantConfig::default()).unwrap());
    check(RapierPlant::new(&model, PlantConfig::default(), RapierOptions::default()).unwrap());
}

#[test]
fn drive_impedance_holds_a_position() {
    let model = arm4();
    let mut plant = RapierPlant::new(&model, PlantConfig::default(), RapierOptions::default()).unwrap();
    plant.enable().unwrap();
    let mut cmd = JointCommand::zeros(4);
    let imp = plexo_hal::DriveImpedance {
        position: plexo_hal::JointArray::from_slice(&[0.3, 0.3, 0.0, 0.8]).unwrap(),
        velocity: plexo_hal::JointArray::splat(4, 0.0),
        stiffness: plexo_hal::JointArray::from_slice(&[150.0, 150.0, 60.0, 40.0]).unwrap(),
        damping: plexo_hal::JointArray::from_slice(&[8.0, 8.0, 2.0, 1.5]).unwrap(),
    };
    cmd.drive_impedance = Some(imp);
    for _ in 0..3000 {
        plant.write(&cmd).unwrap();
    }
    // Gravity sag of a stiff PD: within 0.12 rad of the set-point, and moving towards it from 0.
    for (i, (q, d)) in plant.position().iter().zip(imp.position.iter()).enumerate() {
        assert!((q - d).abs() < 0.12, "joint {i}: {q} vs {d}");
    }
    let mut neg = cmd;
    if let Some(i) = neg.drive_impedance.as_mut() {
        i.stiffness[2] = -1.0;
    }
    assert!(matches!(plant.write(&neg), Err(SimError::NegativeGain { joint: 2, .. })));
}

#[test]
fn torque_saturation_limits_delivered_torque() {
    let model = arm4();
    let config = PlantConfig {
        motors: Some(vec![MotorParams { torque_limit: 3.0, ..MotorParams::default() }; 4]),
        ..Default::default()
    };
    let mut plant = ArticulatedPlant::new(&model, config).unwrap();
    plant.enable().unwrap();
    let mut cmd = JointCommand::zeros(4);
    cmd.torque.fill(100.0);
    for _ in 0..50 {
        plant.write(&cmd).unwrap();
    }
    assert!(plant.motor_torque().iter().all(|t| (*t - 3.0).abs() < 1e-6), "{:?}", plant.motor_torque());
}

#[test]
fn joint_limits_hold_in_both_plants() {
    fn check<P: SimulatedPlant>(mut plant: P) {
        plant.enable().unwrap();
        let mut cmd = JointCommand::zeros(4);
        cmd.torque[3] = 8.0; // push the elbow into its upper limit
        for _ in 0..2000 {
            plant.write(&cmd).unwrap();
        }
        let upper = plant.joints()[3].position_max;
        assert!((plant.position()[3] - upper).abs() < 0.02, "{} vs {upper}", plant.position()[3]);
    }
    let model = arm4();
    check(ArticulatedPlant::new(&model, PlantConfig::default()).unwrap());
    check(RapierPlant::new(&model, PlantConfig::default(), RapierOptions::default()).unwrap());
}

#[test]
fn articulated_aba_and_crba_paths_agree() {
    let wiggle = |t: f64| [2.0 * (3.0 * t).sin(), 3.0 * (2.0 * t).sin(), 0.3 * (4.0 * t).sin(), 0.5 * (5.0 * t).sin()];
    // Rotor inertia 0 → ABA; tiny rotor inertia → CRBA + Cholesky. Nearly the same dynamics.
    let model = arm4();
    let base = ideal_config(&model, None, &Q0);
    let mut with_rotor = base.clone();
    with_rotor.motors = Some(
        model
            .joints()
            .iter()
            .map(|j| MotorParams { rotor_inertia: 1e-12, ..MotorParams::ideal(j.limits.effort) })
            .collect(),
    );
    let mut a = ArticulatedPlant::new(&model, base).unwrap();
    let mut b = ArticulatedPlant::new(&model, with_rotor).unwrap();
    assert!(a.uses_aba() && !b.uses_aba());
    a.enable().unwrap();
    b.enable().unwrap();
    for k in 0..1000 {
        let mut cmd = JointCommand::zeros(4);
        cmd.torque.copy_from_slice(&wiggle(k as f64 * 1e-3));
        a.write(&cmd).unwrap();
        b.write(&cmd).unwrap();
    }
    assert!(max_abs_diff(a.position(), b.position()) < 1e-6);
}

#[test]
fn table_collider_stops_the_forearm() {
    let model = arm4();
    let table = plexo_sim::TableParams { center: [0.3, -0.2, -0.45], half_extents: [0.5, 0.5, 0.02] };
    let options = RapierOptions { arm_colliders: true, table: Some(table), ..Default::default() };
    // Forearm horizontal in front, released above the table: it falls onto it and stays above its top.
    let config = ideal_config(&model, None, &[0.0, 0.0, 0.0, 1.57]);
    let mut plant = RapierPlant::new(&model, config.clone(), options).unwrap();
    let mut free = RapierPlant::new(&model, config, RapierOptions::default()).unwrap();
    let zero = JointCommand::zeros(4);
    for _ in 0..1500 {
        plant.write(&zero).unwrap();
        free.write(&zero).unwrap();
    }
    // Without the table the arm swings far; with it, it cannot fall through.
    let d = max_abs_diff(plant.position(), free.position());
    assert!(d > 0.1, "the table changed nothing ({d} rad)");
}
