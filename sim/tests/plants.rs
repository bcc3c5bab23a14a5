//! Plant-level tests: rapier vs articulated agreement, energy conservation, lifecycle, determinism.

use plexo_hal::{ErrorKind, JointCommand, JointState, Lifecycle, Robot, RobotError};
use plexo_sim::{
    ArticulatedPlant, Integrator, MotorParams, PlantConfig, RapierOptions, RapierPlant, SimError, SimulatedPlant,
};
use plexo_testkit::patients::{ideal_config, profile};
use plexo_testkit::robots::{arm4, drive_impedance};

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
        cmd.drive_impedance = Some(drive_impedance(&q, &v, 30.0, 1.0));
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

/// A posture below the horizontal where gravity compensation makes a *stable* equilibrium: the gravity stiffness
/// `∂g/∂q` is positive definite there (asserted), so the open-loop arm under the same torques oscillates gently
/// about it instead of falling or tumbling chaotically.
const Q_STABLE: [f64; 4] = [0.25, -0.32, 0.84, 0.9];

/// The same torque time series for both plants, precomputed: gravity compensation of `Q_STABLE` plus smooth
/// sinusoids (non-commensurate 0.7–1.9 Hz, 0.2–0.8 Nm) [Nm].
fn stable_open_loop_torques(model: &plexo_kinematics::Model, steps: usize) -> Vec<[f64; 4]> {
    let mut data = plexo_kinematics::Data::new(model);
    let g = plexo_kinematics::gravity_torque(model, &mut data, &Q_STABLE).clone();
    let amp = [0.5, 0.6, 0.05, 0.2];
    let freq = [2.3, 2.9, 3.7, 3.1];
    (0..steps)
        .map(|k| {
            let t = k as f64 * 1e-3;
            // Ramped in over 0.25 s so the start is smooth.
            let ramp = (t / 0.25).min(1.0);
            [0, 1, 2, 3].map(|i| g[i] + ramp * amp[i] * (core::f64::consts::TAU * freq[i] * t).sin())
        })
        .collect()
}

/// "Released from the same state with the same torques, the two plants agree": both plants start at rest at
/// `Q_STABLE` and receive exactly the same torque samples (no feedback of any kind; asserted equal every step) for
/// 5 s; ideal actuators, no patient (its torque would depend on each plant's own state). The arm oscillates
/// undamped about the stable equilibrium (up to 0.16 rad), away from the joint limits.
///
/// Measured on plexo-arm4: semi-implicit Euler 3.8e-4 rad / 1.6e-3 rad/s after 2 s and 7.0e-4 rad / 4.8e-3 rad/s
/// after 5 s; with rotor inertia (armature in both plants) 1.4e-4 rad / 6.7e-4 rad/s; RK4 1.1e-3 rad / 3.4e-3
/// rad/s. The difference is a phase drift: the two schemes integrate the same ODE with the same step but treat the
/// velocity products (Coriolis, gyroscopic) differently, which shifts each undamped mode's frequency by O(dt);
/// the gap grows linearly with time and the oscillation amplitude, not exponentially (no chaos on this orbit).
/// Stated bounds over 5 s: 2e-3 rad and 1.5e-2 rad/s (Euler), 3e-3 rad and 1e-2 rad/s (RK4), ≈ 3× the measured.
#[test]
fn rapier_and_articulated_agree_open_loop_under_identical_torques_for_5s() {
    let model = arm4();
    // The equilibrium is stable: the gravity stiffness is positive definite (Cholesky succeeds).
    let mut data = plexo_kinematics::Data::new(&model);
    let mut k = nalgebra::DMatrix::zeros(4, 4);
    let h = 1e-6;
    for j in 0..4 {
        let (mut up, mut down) = (Q_STABLE, Q_STABLE);
        up[j] += h;
        down[j] -= h;
        let gu = plexo_kinematics::gravity_torque(&model, &mut data, &up).clone();
        let gd = plexo_kinematics::gravity_torque(&model, &mut data, &down).clone();
        for i in 0..4 {
            k[(i, j)] = (gu[i] - gd[i]) / (2.0 * h);
        }
    }
    let k_sym = (&k + k.transpose()) * 0.5;
    let stiffness = k_sym.symmetric_eigenvalues();
    eprintln!("gravity stiffness eigenvalues at Q_STABLE: {:?} Nm/rad", stiffness.as_slice());
    assert!(stiffness.min() > 0.1, "gravity stiffness at Q_STABLE is not positive definite: {k}");

    let steps = 5000;
    let torques = stable_open_loop_torques(&model, steps);
    // (name, rotor inertia [kg m²], integrator, bound |Δq| [rad], bound |Δv| [rad/s])
    type Case = (&'static str, Option<[f64; 4]>, Integrator, f64, f64);
    let cases: [Case; 3] = [
        ("ideal motors, Euler", None, Integrator::SemiImplicitEuler, 2e-3, 1.5e-2),
        ("rotor inertia, Euler", Some([0.02, 0.015, 0.005, 0.004]), Integrator::SemiImplicitEuler, 2e-3, 1.5e-2),
        ("ideal motors, RK4", None, Integrator::Rk4, 3e-3, 1e-2),
    ];
    for (name, rotor, integrator, bound_q, bound_v) in cases {
        let mut config = ideal_config(&model, None, &Q_STABLE);
        if let Some(rotor) = rotor {
            config.motors = Some(
                model
                    .joints()
                    .iter()
                    .zip(rotor)
                    .map(|(j, r)| MotorParams { rotor_inertia: r, ..MotorParams::ideal(j.limits.effort) })
                    .collect(),
            );
        }
        let mut a = ArticulatedPlant::new(&model, config.clone()).unwrap().with_integrator(integrator);
        let mut r = RapierPlant::new(&model, config, RapierOptions::default()).unwrap();
        a.enable().unwrap();
        r.enable().unwrap();
        let (mut dq, mut dv, mut swing) = (0.0_f64, 0.0_f64, 0.0_f64);
        for (step, tau) in torques.iter().enumerate() {
            if step == 1999 {
                eprintln!("{name}: after 2 s, max |Δq| = {dq:.2e} rad, max |Δv| = {dv:.2e} rad/s");
            }
            let mut cmd = JointCommand::zeros(4);
            cmd.torque.copy_from_slice(tau);
            a.write(&cmd).unwrap();
            r.write(&cmd).unwrap();
            dq = dq.max(max_abs_diff(a.position(), r.position()));
            dv = dv.max(max_abs_diff(a.velocity(), r.velocity()));
            swing = swing.max(max_abs_diff(a.position(), &Q_STABLE));
            // Same torques: both plants deliver exactly the commanded torque (ideal motors, no friction).
            assert_eq!(a.applied_torque(), r.applied_torque());
        }
        eprintln!("{name}: 5 s open loop, max |Δq| = {dq:.2e} rad, max |Δv| = {dv:.2e} rad/s (swing {swing:.3} rad)");
        // Meaningful: the arm really moves, and stays in the small-oscillation regime inside the limits.
        assert!(swing > 0.05 && swing < 0.5, "{name}: swing {swing} rad");
        assert!(dq < bound_q, "{name}: max position difference {dq} rad");
        assert!(dv < bound_v, "{name}: max velocity difference {dv} rad/s");
    }
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
    // Each seed matters: a different sensor seed changes the measured signal, a different patient seed (its tremor)
    // the patient's torque and hence the motion; with both seeds the same, everything is the same.
    let mut other_sensors = config();
    other_sensors.sensors.seed ^= 1;
    let a3 = run_trace(ArticulatedPlant::new(&model, other_sensors).unwrap(), 800);
    assert_ne!(a1, a3);
    let mut other_patient = config();
    if let Some(p) = other_patient.patient.as_mut() {
        p.seed ^= 1;
    }
    let a4 = run_trace(ArticulatedPlant::new(&model, other_patient.clone()).unwrap(), 800);
    assert_ne!(a1, a4, "the patient seed must change the result");
    assert_eq!(a4, run_trace(ArticulatedPlant::new(&model, other_patient.clone()).unwrap(), 800));
    let r4 = run_trace(RapierPlant::new(&model, other_patient, RapierOptions::default()).unwrap(), 800);
    assert_ne!(r1, r4, "the patient seed must change the rapier result too");
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

/// The ArticulatedPlant integrates the rotor inertia through plexo-kinematics' ABA with joint armature; checked
/// against an independent solve `q̈ = (M + diag(armature))⁻¹ (τ − h)` (CRBA and nonlinear effects of the model
/// without armature, nalgebra's Cholesky) over one semi-implicit Euler step from several states.
#[test]
fn articulated_plant_rotor_inertia_matches_an_independent_mass_matrix_solve() {
    let model = arm4();
    let armature = [0.02, 0.015, 0.005, 0.004];
    let mut config = ideal_config(&model, None, &Q0);
    config.motors = Some(
        model
            .joints()
            .iter()
            .zip(armature)
            .map(|(j, a)| MotorParams { rotor_inertia: a, ..MotorParams::ideal(j.limits.effort) })
            .collect(),
    );
    let mut plant = ArticulatedPlant::new(&model, config).unwrap();
    plant.enable().unwrap();
    assert_eq!(plant.armature(), &armature[..], "ideal motors have gear ratio 1");
    let mut data = plexo_kinematics::Data::new(&model);
    let dt = 1e-3;
    for (k, (q0, v0, tau)) in [
        ([0.4, 0.6, 0.3, 1.2], [0.0; 4], [1.0, 2.0, 0.5, 0.3]),
        ([0.2, 1.1, -0.4, 0.7], [0.5, -0.3, 1.0, -0.8], [-2.0, 6.0, 0.1, 1.5]),
        ([0.9, 0.3, 0.6, 1.9], [-1.0, 0.8, -0.4, 2.0], [0.0; 4]),
    ]
    .into_iter()
    .enumerate()
    {
        plant.set_state(&q0, &v0).unwrap();
        let mut cmd = JointCommand::zeros(4);
        cmd.torque.copy_from_slice(&tau);
        plant.write(&cmd).unwrap();
        let mut m = plexo_kinematics::crba(&model, &mut data, &q0).clone();
        for i in 0..4 {
            m[(i, i)] += armature[i];
        }
        let h = plexo_kinematics::nonlinear_effects(&model, &mut data, &q0, &v0).clone();
        let rhs = nalgebra::DVector::from_iterator(4, (0..4).map(|i| tau[i] - h[i]));
        let qdd = m.cholesky().expect("positive definite").solve(&rhs);
        for i in 0..4 {
            let v1 = v0[i] + dt * qdd[i];
            let q1 = q0[i] + dt * v1;
            assert!((plant.velocity()[i] - v1).abs() < 1e-9, "state {k} joint {i}: v {} vs {v1}", plant.velocity()[i]);
            assert!((plant.position()[i] - q1).abs() < 1e-12, "state {k} joint {i}: q {} vs {q1}", plant.position()[i]);
        }
    }
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
