//! The controller against the real plexo-arm4 model (no plant): arm-weight support, mode torques with the
//! intended sign, Cartesian impedance, protocol loading and target generation, configuration errors.

use plexo_controller::{
    AanLaw, Controller, ControllerConfig, ControllerError, Mode, ModeSettings, Protocol, RomLimit, Session, Space,
    TaskReference, default_protocol_toml,
};
use plexo_hal::{JointArray, JointState};
use plexo_kinematics::anthropometrics::ArmAnthropometrics;
use plexo_kinematics::{Data, forward_kinematics, gravity_torque};
use plexo_testkit::rig::urdf_rom;
use plexo_testkit::robots::arm4;

fn controller() -> Controller {
    let config = ControllerConfig::default_config().unwrap();
    let arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).unwrap();
    Controller::new(&arm4(), &config, &arm, "controller.toml").unwrap()
}

fn state(q: [f64; 4], qd: [f64; 4]) -> JointState {
    let mut s = JointState::zeros(4);
    s.position.copy_from_slice(&q);
    s.velocity.copy_from_slice(&qd);
    s
}

fn settings(mode: Mode) -> ModeSettings {
    ModeSettings { mode, law: AanLaw::Fixed, space: Space::Joint, arm_support: 1.0, error_gain: None }
}

const Q: [f64; 4] = [0.4, 0.7, 0.1, 1.2];

#[test]
fn arm_support_fraction_interpolates_between_robot_and_robot_plus_arm_gravity() {
    let robot = arm4();
    let mut c = controller();
    let mut data = Data::new(&robot);
    let g_robot = gravity_torque(&robot, &mut data, &Q).clone();
    let mut coupled_data = Data::new(c.coupled_model());
    let g_coupled = gravity_torque(c.coupled_model(), &mut coupled_data, &Q).clone();
    let arm_mass = c.coupled_model().total_mass() - robot.total_mass();
    let expected_arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).unwrap().total_mass();
    assert!((arm_mass - expected_arm).abs() < 1e-9, "arm mass {arm_mass} vs {expected_arm}");
    let s = state(Q, [0.0; 4]);
    let r = TaskReference::hold(&s.position);
    for alpha in [0.0, 0.5, 1.0] {
        c.set_mode(ModeSettings { arm_support: alpha, ..settings(Mode::Transparent) }).unwrap();
        c.start(&s); // the support takes its setting at once on (re-)start, and slews otherwise
        let cmd = c.update(&s, &r, 0.0);
        for j in 0..4 {
            let expected = g_robot[j] + alpha * (g_coupled[j] - g_robot[j]);
            assert!(
                (cmd.torque[j] - expected).abs() < 1e-9,
                "alpha {alpha} joint {j}: {} vs {expected}",
                cmd.torque[j]
            );
        }
    }
    // The arm loads the shoulder flexion joint noticeably when the arm is raised forward.
    assert!((g_coupled[1] - g_robot[1]).abs() > 2.0, "arm gravity at shoulder flexion {}", g_coupled[1] - g_robot[1]);
}

fn mode_torque(c: &mut Controller, s: &JointState, r: &TaskReference) -> JointArray<f64> {
    c.update(s, r, 0.0);
    *c.mode_torque()
}

#[test]
fn arm_support_slews_to_a_new_setting_at_the_configured_rate() {
    let mut c = controller();
    let s = state(Q, [0.0; 4]);
    let r = TaskReference::hold(&s.position);
    c.set_mode(ModeSettings { arm_support: 0.0, ..settings(Mode::Transparent) }).unwrap();
    c.start(&s);
    let zero = c.update(&s, &r, 0.0).torque[1];
    c.set_mode(ModeSettings { arm_support: 1.0, ..settings(Mode::Transparent) }).unwrap();
    c.start(&s);
    let full = c.update(&s, &r, 0.0).torque[1];
    c.set_mode(ModeSettings { arm_support: 0.0, ..settings(Mode::Transparent) }).unwrap();
    let rate = c.config().gravity.support_rate;
    let mut t = 0.0;
    let mut torque = full;
    // After a quarter of the slew time, a quarter of the way.
    let ticks = (0.25 / rate / 0.001).round() as usize;
    for _ in 0..ticks {
        t += 0.001;
        torque = c.update(&s, &r, t).torque[1];
    }
    let expected = full - 0.25 * (full - zero);
    assert!((torque - expected).abs() < 0.01 * (full - zero).abs(), "{torque} vs {expected}");
    assert!((c.arm_support() - 0.75).abs() < 0.01, "{}", c.arm_support());
    // Back up: a quarter of the full range in a quarter of the rise time.
    c.set_mode(ModeSettings { arm_support: 1.0, ..settings(Mode::Transparent) }).unwrap();
    let ticks = (0.25 / rate / 0.001).round() as usize;
    for _ in 0..ticks {
        t += 0.001;
        c.update(&s, &r, t);
    }
    assert!((c.arm_support() - 1.0).abs() < 0.01, "{}", c.arm_support());
}

#[test]
fn passive_impedance_pulls_towards_the_reference() {
    let mut c = controller();
    c.set_mode(settings(Mode::Passive)).unwrap();
    let s = state(Q, [0.0; 4]);
    let mut r = TaskReference::hold(&s.position);
    r.position[3] += 0.1;
    let tau = mode_torque(&mut c, &s, &r);
    let k = c.config().impedance.stiffness[3];
    assert!((tau[3] - k * 0.1).abs() < 1e-6, "{} vs {}", tau[3], k * 0.1);
    assert!(tau[0].abs() < 1e-6);
}

#[test]
fn resistive_mode_opposes_velocity_with_the_configured_damping() {
    let mut c = controller();
    c.set_mode(settings(Mode::Resistive)).unwrap();
    let s = state(Q, [0.0, 0.5, 0.0, -1.0]);
    let tau = mode_torque(&mut c, &s, &TaskReference::hold(&s.position));
    // Resistance plus the residual transparent damping the resistive mode is built on.
    let b: Vec<f64> =
        c.config().resistive.viscous.iter().zip(&c.config().transparent.damping).map(|(r, t)| r + t).collect();
    assert!((tau[1] + b[1] * 0.5).abs() < 1e-9 && (tau[3] - b[3] * 1.0).abs() < 1e-9, "{tau:?}");
}

#[test]
fn error_augmentation_pushes_away_from_the_reference_by_gain_minus_one() {
    let mut c = controller();
    c.set_mode(ModeSettings { error_gain: Some(3.0), ..settings(Mode::ErrorAugmentation) }).unwrap();
    let s = state(Q, [0.0; 4]);
    let mut r = TaskReference::hold(&s.position);
    r.position[3] += 0.05; // the arm lags behind the reference by 0.05 rad
    let tau = mode_torque(&mut c, &s, &r);
    let k = c.config().error_augmentation.stiffness[3];
    assert!((tau[3] - (-(3.0 - 1.0) * k * 0.05)).abs() < 1e-9, "{}", tau[3]);
    c.set_mode(ModeSettings { error_gain: Some(1.0), ..settings(Mode::ErrorAugmentation) }).unwrap();
    assert!(mode_torque(&mut c, &s, &r)[3].abs() < 1e-12, "gain 1 = no augmentation");
    assert!(c.set_mode(ModeSettings { error_gain: Some(3.5), ..settings(Mode::ErrorAugmentation) }).is_err());
}

#[test]
fn cartesian_impedance_force_maps_through_the_jacobian_transpose() {
    let robot = arm4();
    let mut c = controller();
    c.set_mode(ModeSettings { space: Space::Cartesian, ..settings(Mode::Passive) }).unwrap();
    let s = state(Q, [0.0; 4]);
    let mut data = Data::new(&robot);
    forward_kinematics(&robot, &mut data, &Q);
    let handle = robot.frame_id("handle").unwrap();
    let p = data.world_T_frame[handle.0].translation.vector;
    let mut r = TaskReference::hold(&s.position);
    // Ask the handle to be 2 cm higher, joints otherwise at the current posture.
    r.handle_position = Some(p + nalgebra::Vector3::new(0.0, 0.0, 0.02));
    let tau = mode_torque(&mut c, &s, &r);
    // Virtual work: a small joint motion along tau moves the handle upward.
    let eps = 1e-4;
    let mut q2 = Q;
    for j in 0..4 {
        q2[j] += eps * tau[j];
    }
    forward_kinematics(&robot, &mut data, &q2);
    let p2 = data.world_T_frame[handle.0].translation.vector;
    assert!(p2.z > p.z, "torque raises the handle: dz = {}", p2.z - p.z);
    // Power balance: τ·q̇ = F·ẋ for q̇ = τ (null-space part has no Cartesian effect).
    let f = c.config().cartesian.stiffness * 0.02;
    let dz = (p2.z - p.z) / eps;
    let tau_sq: f64 = tau.iter().map(|t| t * t).sum();
    assert!((tau_sq - f * dz).abs() < 0.05 * tau_sq, "τ·τ = {tau_sq}, F·dz = {}", f * dz);
}

#[test]
fn transparent_mode_adds_configured_friction_compensation_and_residual_damping() {
    let mut config = ControllerConfig::default_config().unwrap();
    config.friction.coulomb = vec![0.5; 4];
    config.friction.viscous = vec![0.2; 4];
    config.transparent.damping = vec![0.1; 4];
    let arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).unwrap();
    let mut c = Controller::new(&arm4(), &config, &arm, "test").unwrap();
    c.set_mode(settings(Mode::Transparent)).unwrap();
    let s = state(Q, [1.0, -1.0, 0.0, 0.5]);
    let tau = mode_torque(&mut c, &s, &TaskReference::hold(&s.position));
    // Coulomb (saturated tanh) + viscous compensation − residual damping.
    assert!((tau[0] - (0.5 + 0.2 - 0.1)).abs() < 1e-6 && (tau[1] + 0.6).abs() < 1e-6 && tau[2].abs() < 1e-9, "{tau:?}");
}

/// Regression: a NaN in the reference zeroed the hold torque, so the supervisor's safe stop damped only and the
/// arm sank. The state is valid: the hold torque (gravity + the supported share of the arm) must still be
/// computed and reported, and the command holds the arm.
#[test]
fn nan_reference_flags_the_report_and_still_computes_the_hold_torque() {
    let mut c = controller();
    let s = state(Q, [0.0; 4]);
    let hold = TaskReference::hold(&s.position);
    c.set_mode(ModeSettings { arm_support: 0.5, ..settings(Mode::Transparent) }).unwrap();
    c.start(&s);
    c.update(&s, &hold, 0.0);
    let expected = c.report().hold_torque;
    assert!(expected.iter().any(|t| t.abs() > 1.0), "the arm posture needs gravity torque: {expected:?}");
    let mut bad = hold;
    bad.velocity[2] = f64::NAN;
    for (k, reference) in [bad, TaskReference { phase: f64::INFINITY, ..hold }].iter().enumerate() {
        let cmd = c.update(&s, reference, 0.001 * (k + 1) as f64);
        assert!(!c.report().inputs_finite, "case {k}: non-finite input flagged");
        for j in 0..4 {
            assert!((c.report().hold_torque[j] - expected[j]).abs() < 1e-9, "case {k} joint {j}");
            assert!((cmd.torque[j] - expected[j]).abs() < 1e-9, "case {k}: the command is the hold torque");
        }
    }
    // A reference with the wrong number of joints is bad input too; the hold torque still comes from the state.
    let short = TaskReference::hold(&JointArray::from_slice(&Q[..3]).unwrap());
    c.update(&s, &short, 0.01);
    assert!(!c.report().inputs_finite);
    assert!((c.report().hold_torque[1] - expected[1]).abs() < 1e-9);
    // A NaN position leaves nothing to hold against.
    let mut s_nan = s;
    s_nan.position[0] = f64::NAN;
    let cmd = c.update(&s_nan, &hold, 0.02);
    assert!(!c.report().inputs_finite && cmd.is_zero() && c.report().hold_torque.iter().all(|t| *t == 0.0));
}

#[test]
fn resistive_elastic_term_pulls_back_to_the_trial_start_posture() {
    let mut config = ControllerConfig::default_config().unwrap();
    config.resistive.elastic = vec![8.0, 6.0, 4.0, 5.0];
    let arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).unwrap();
    let mut c = Controller::new(&arm4(), &config, &arm, "test").unwrap();
    c.set_mode(settings(Mode::Resistive)).unwrap();
    let s = state(Q, [0.0, 0.4, 0.0, 0.0]);
    let mut r = TaskReference::hold(&s.position);
    // The trial started 0.2 rad lower at the shoulder and 0.3 rad more extended at the elbow.
    r.start[1] = Q[1] - 0.2;
    r.start[3] = Q[3] + 0.3;
    let tau = mode_torque(&mut c, &s, &r);
    let b = |j: usize| config.resistive.viscous[j] + config.transparent.damping[j];
    assert!((tau[1] - (-6.0 * 0.2 - b(1) * 0.4)).abs() < 1e-9, "spring + damper: {}", tau[1]);
    assert!((tau[3] - 5.0 * 0.3).abs() < 1e-9, "elastic pull back towards the start: {}", tau[3]);
    assert!(tau[0].abs() < 1e-12, "no displacement, no motion: no resistance");
    // The reference position is irrelevant to resistance: only the start posture anchors the spring.
    r.position[3] += 0.5;
    assert!((mode_torque(&mut c, &s, &r)[3] - 5.0 * 0.3).abs() < 1e-9);
    assert_eq!(c.assist_stiffness()[1], 6.0);
}

#[test]
fn error_augmentation_offset_adds_a_constant_bias_within_the_torque_bound() {
    let mut config = ControllerConfig::default_config().unwrap();
    config.error_augmentation.offset = vec![0.5, -1.0, 0.0, 2.0];
    config.error_augmentation.torque_max = 2.5;
    let arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).unwrap();
    let mut c = Controller::new(&arm4(), &config, &arm, "test").unwrap();
    c.set_mode(ModeSettings { error_gain: Some(2.0), ..settings(Mode::ErrorAugmentation) }).unwrap();
    let s = state(Q, [0.0; 4]);
    let mut r = TaskReference::hold(&s.position);
    let tau = mode_torque(&mut c, &s, &r);
    assert!((tau[0] - 0.5).abs() < 1e-12 && (tau[1] + 1.0).abs() < 1e-12 && tau[2].abs() < 1e-12, "{tau:?}");
    // Offset plus augmentation: elbow error −0.05 rad (arm behind) → −K_e·0.05 + 2 Nm.
    r.position[3] += 0.05;
    let k = config.error_augmentation.stiffness[3];
    let tau = mode_torque(&mut c, &s, &r);
    assert!((tau[3] - (2.0 - k * 0.05)).abs() < 1e-12, "{}", tau[3]);
    // Beyond twice `error_max` the error is not augmented: an arm 1 rad off its path feels the offset only.
    r.position[3] = Q[3] - 1.0;
    assert!((mode_torque(&mut c, &s, &r)[3] - 2.0).abs() < 1e-12, "{}", mode_torque(&mut c, &s, &r)[3]);
    // The sum is bounded by torque_max: with a stiff augmentation, an error at `error_max` cannot push harder
    // than 2.5 Nm.
    config.error_augmentation.stiffness[3] = 50.0;
    let mut c = Controller::new(&arm4(), &config, &arm, "test").unwrap();
    c.set_mode(ModeSettings { error_gain: Some(2.0), ..settings(Mode::ErrorAugmentation) }).unwrap();
    r.position[3] = Q[3] + config.error_augmentation.error_max;
    assert!((mode_torque(&mut c, &s, &r)[3] - (-2.5)).abs() < 1e-12, "{}", mode_torque(&mut c, &s, &r)[3]);
    r.position[3] = Q[3] - config.error_augmentation.error_max;
    assert!((mode_torque(&mut c, &s, &r)[3] - 2.5).abs() < 1e-12, "{}", mode_torque(&mut c, &s, &r)[3]);
}

/// Jacobian (linear rows, LocalWorldAligned) and position of the handle at `q` on the coupled model.
fn handle_jacobian(c: &Controller, q: &[f64; 4]) -> (nalgebra::Matrix3x4<f64>, nalgebra::Vector3<f64>) {
    let model = c.coupled_model();
    let mut data = Data::new(model);
    let handle = model.frame_id("handle").unwrap();
    let mut jac = nalgebra::Matrix6xX::zeros(4);
    plexo_kinematics::frame_jacobian(
        model,
        &mut data,
        q,
        handle,
        plexo_kinematics::ReferenceFrame::LocalWorldAligned,
        &mut jac,
    );
    forward_kinematics(model, &mut data, q);
    (jac.fixed_view::<3, 4>(0, 0).into_owned(), data.world_T_frame[handle.0].translation.vector)
}

#[test]
fn cartesian_nullspace_term_moves_the_posture_without_a_hand_force() {
    let mut c = controller();
    c.set_mode(ModeSettings { space: Space::Cartesian, ..settings(Mode::Passive) }).unwrap();
    let s = state(Q, [0.0; 4]);
    let (jv, x) = handle_jacobian(&c, &Q);
    let mut r = TaskReference::hold(&s.position);
    r.handle_position = Some(x); // the hand is where it should be: no Cartesian force
    // The posture reference differs along the arm's self-motion (the 1-D null space of the 3 × 4 J_v: the elbow
    // swivelling about the shoulder–hand line) and by a component that would move the hand.
    // Null vector of the 3 × 4 J_v by cofactors: n_j = (−1)^j det(J_v without column j).
    let minor = |j: usize| {
        let cols: Vec<usize> = (0..4).filter(|&k| k != j).collect();
        nalgebra::Matrix3::from_columns(&[jv.column(cols[0]), jv.column(cols[1]), jv.column(cols[2])]).determinant()
    };
    let self_motion =
        nalgebra::Vector4::from_iterator((0..4).map(|j| if j % 2 == 0 { minor(j) } else { -minor(j) })).normalize();
    assert!((jv * self_motion).norm() < 1e-9, "4-DOF arm, 3-D hand position: one self-motion direction");
    for j in 0..4 {
        r.position[j] += 0.2 * self_motion[j];
    }
    r.position[3] += 0.05;
    let cfg = c.config().cartesian.clone();
    let mut config = c.config().clone();
    config.impedance.feedforward = false;
    let arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).unwrap();
    let mut c = Controller::new(&arm4(), &config, &arm, "test").unwrap();
    c.set_mode(ModeSettings { space: Space::Cartesian, ..settings(Mode::Passive) }).unwrap();
    let tau = mode_torque(&mut c, &s, &r);
    // Expected: τ = N z, z = K_n (q_d − q), N = I − J_vᵀ(J_v J_vᵀ + λ²I)⁻¹ J_v.
    let z = nalgebra::Vector4::from_iterator((0..4).map(|j| cfg.nullspace_stiffness[j] * (r.position[j] - Q[j])));
    let inv = (jv * jv.transpose() + nalgebra::Matrix3::identity() * cfg.damping_lambda).try_inverse().unwrap();
    let expected = z - jv.transpose() * (inv * (jv * z));
    for j in 0..4 {
        assert!((tau[j] - expected[j]).abs() < 1e-9, "joint {j}: {} vs {}", tau[j], expected[j]);
    }
    // The posture term acts along the self-motion (pulls towards q_d) …
    let tau_v = nalgebra::Vector4::from_iterator(tau.iter().copied());
    let along = tau_v.dot(&self_motion);
    assert!((along - 10.0 * 0.2).abs() < 0.05, "self-motion torque {along} Nm vs K_n · 0.2 rad = 2 Nm");
    // … and the projection removes what would push the hand: the equivalent hand force (J Jᵀ)⁻¹ J τ of the
    // projected torque is a small fraction (λ²-regularised) of the unprojected posture torque's.
    let to_hand = (jv * jv.transpose()).try_inverse().unwrap() * jv;
    let (projected, raw) = ((to_hand * tau_v).norm(), (to_hand * z).norm());
    assert!(raw > 1.0, "the posture reference has a hand-moving part ({raw} N)");
    assert!(projected < 0.2 * raw, "hand force {projected} N after projection vs {raw} N without");
}

/// Regression: without an explicit handle reference the desired handle position was read from the measured
/// posture's placements, so x_d − x was always zero and the Cartesian spring never acted. x_d must be FK(q_d).
#[test]
fn cartesian_reference_defaults_to_the_handle_at_the_joint_reference() {
    let mut config = ControllerConfig::default_config().unwrap();
    config.impedance.feedforward = false;
    config.cartesian.nullspace_stiffness = vec![0.0; 4];
    config.cartesian.nullspace_damping = vec![0.0; 4];
    let arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).unwrap();
    let mut c = Controller::new(&arm4(), &config, &arm, "test").unwrap();
    c.set_mode(ModeSettings { space: Space::Cartesian, ..settings(Mode::Passive) }).unwrap();
    let s = state(Q, [0.0; 4]);
    let mut q_d = Q;
    q_d[3] += 0.2;
    q_d[1] -= 0.1;
    let r = TaskReference::hold(&JointArray::from_slice(&q_d).unwrap());
    let implicit = mode_torque(&mut c, &s, &r);
    let (jv, x) = handle_jacobian(&c, &Q);
    let (_, x_d) = handle_jacobian(&c, &q_d);
    assert!((x_d - x).norm() > 0.02, "the reference moves the hand {} m", (x_d - x).norm());
    let expected = jv.transpose() * ((x_d - x) * config.cartesian.stiffness);
    for j in 0..4 {
        assert!((implicit[j] - expected[j]).abs() < 1e-9, "joint {j}: {} vs {}", implicit[j], expected[j]);
    }
    // The same as giving the handle position explicitly.
    let explicit = mode_torque(&mut c, &s, &TaskReference { handle_position: Some(x_d), ..r });
    for j in 0..4 {
        assert!((implicit[j] - explicit[j]).abs() < 1e-9);
    }
}

#[test]
fn zero_cartesian_damping_lambda_is_rejected_by_the_configuration() {
    let mut config = ControllerConfig::default_config().unwrap();
    config.cartesian.damping_lambda = 0.0;
    let err = config.validate(4, "c.toml").unwrap_err().to_string();
    assert!(err.contains("c.toml") && err.contains("cartesian.damping_lambda") && err.contains("0.000001"), "{err}");
    let arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).unwrap();
    assert!(Controller::new(&arm4(), &config, &arm, "c.toml").is_err());
}

/// At the straight-arm singularity (elbow extended) J Jᵀ loses rank; with λ² > 0 the Cartesian law stays finite
/// and bounded instead of falling back to zero.
#[test]
fn cartesian_impedance_stays_finite_and_bounded_at_the_singularity() {
    let mut c = controller();
    c.set_mode(ModeSettings { space: Space::Cartesian, ..settings(Mode::Passive) }).unwrap();
    let straight = [0.0, 0.0, 0.0, 0.0];
    let s = state(straight, [0.0; 4]);
    let mut r = TaskReference::hold(&s.position);
    r.position[2] += 0.2;
    let (_, x) = handle_jacobian(&c, &straight);
    r.handle_position = Some(x + nalgebra::Vector3::new(0.0, 0.0, -0.01)); // pull along the arm
    let cmd = c.update(&s, &r, 0.0);
    assert!(cmd.is_finite() && c.report().inputs_finite);
    let tau = *c.mode_torque();
    assert!(tau.iter().all(|t| t.abs() < 100.0), "{tau:?}");
    assert!(tau.iter().any(|t| t.abs() > 1e-3), "the posture term still acts: {tau:?}");
}

#[test]
fn restoring_an_adaptation_state_names_the_field_that_does_not_fit() {
    use plexo_controller::{ADAPTATION_STATE_VERSION, AdaptationState};
    let mut c = controller();
    let good = c.adaptation().clone();
    let check = |c: &mut Controller, state: AdaptationState, field: &str| {
        let err = c.restore_adaptation(state).unwrap_err().to_string();
        assert!(err.contains(field) && err.contains("adaptation state"), "{field}: {err}");
    };
    check(&mut c, AdaptationState { version: ADAPTATION_STATE_VERSION + 1, ..good.clone() }, "version");
    check(&mut c, AdaptationState { dof: 6, ..good.clone() }, "dof");
    check(&mut c, AdaptationState { rbf_centers: 7, ..good.clone() }, "rbf_centers");
    let mut nan = good.clone();
    nan.emken_stiffness[2] = f64::NAN;
    check(&mut c, nan, "emken_stiffness[2]");
    let mut inf = good.clone();
    inf.rbf_weights[1][4] = f64::INFINITY;
    check(&mut c, inf, "rbf_weights[1][4]");
    check(&mut c, AdaptationState { assistance_scale: -1.0, ..good.clone() }, "assistance_scale");
    check(&mut c, AdaptationState { duration_scale: f64::NAN, ..good.clone() }, "duration_scale");
    check(&mut c, AdaptationState { tunnel_width: -0.1, ..good.clone() }, "tunnel_width");
    assert_eq!(c.adaptation(), &good, "a rejected state changes nothing");
    // A state missing a field or with an unknown one does not parse; the error names the file and the key.
    let text = good.to_toml_string().unwrap().replace("rbf_centers", "rbf_centres");
    let err = AdaptationState::from_toml_str(&text, "saved.toml").unwrap_err().to_string();
    assert!(err.contains("saved.toml") && err.contains("rbf_centres"), "{err}");
}
#[test]
fn default_protocols_parse_and_prepare_on_arm4() {
    let robot = arm4();
    let rom = urdf_rom(&robot);
    for name in plexo_controller::DEFAULT_PROTOCOLS {
        let p = Protocol::default_protocol(name).unwrap();
        let session = Session::new(&p, &robot, &rom).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!session.blocks().is_empty());
        for b in session.blocks() {
            assert!(!b.trial_targets.is_empty());
            for t in &b.trial_targets {
                for (j, q) in t.iter().enumerate() {
                    assert!(*q >= rom[j].min && *q <= rom[j].max, "{name}/{}: target outside ROM", b.spec.name);
                }
            }
        }
    }
    let p = Protocol::default_protocol("center-out").unwrap();
    let minutes = p.nominal_duration() / 60.0;
    assert!((8.0..=13.0).contains(&minutes), "default center-out session lasts {minutes:.1} min");
}

#[test]
fn center_out_radius_scales_with_the_patient_rom() {
    let robot = arm4();
    let full = urdf_rom(&robot);
    let mut narrow = full.clone();
    narrow[3] = RomLimit { min: 1.05, max: 1.55 }; // elbow barely moves
    narrow[1] = RomLimit { min: 0.35, max: 0.85 };
    let p = Protocol::default_protocol("center-out").unwrap();
    let wide_r = Session::new(&p, &robot, &full).unwrap().blocks()[0].radius;
    let narrow_r = Session::new(&p, &robot, &narrow).unwrap().blocks()[0].radius;
    assert!(wide_r > 0.01 && narrow_r < wide_r, "radius {narrow_r} (narrow ROM) vs {wide_r} (full)");
}

#[test]
fn protocol_errors_name_file_key_and_range() {
    let text = default_protocol_toml("center-out").unwrap().replace("movement_time = 2.0", "movement_time = 20.0");
    let err = Protocol::from_toml_str(&text, "my.toml").unwrap_err().to_string();
    assert!(err.contains("my.toml") && err.contains("movement_time") && err.contains("[0.3, 10]"), "{err}");
    let text = default_protocol_toml("center-out").unwrap().replace("dwell = 0.3", "dwel = 0.3");
    let err = Protocol::from_toml_str(&text, "my.toml").unwrap_err();
    assert!(matches!(err, ControllerError::Parse { .. }) && err.to_string().contains("dwel"), "{err}");
    assert!(Protocol::default_protocol("nope").unwrap_err().to_string().contains("center-out"));
}

#[test]
fn config_errors_name_key_and_joint_count() {
    let mut config = ControllerConfig::default_config().unwrap();
    config.impedance.stiffness.pop();
    let err = config.validate(4, "c.toml").unwrap_err().to_string();
    assert!(err.contains("impedance.stiffness") && err.contains("need 4 values"), "{err}");
    let text = plexo_controller::DEFAULT_CONTROLLER_TOML.replace("gain = 60.0", "gain = 5000.0");
    let config = ControllerConfig::from_toml_str(&text, "c.toml").unwrap();
    let err = config.validate(4, "c.toml").unwrap_err().to_string();
    assert!(err.contains("observer.gain") && err.contains("5000"), "{err}");
}

#[test]
fn adaptation_state_restores_with_bounds() {
    let mut c = controller();
    let mut saved = c.adaptation().clone();
    saved.emken_stiffness[0] = 1e6;
    saved.assistance_scale = 0.01;
    saved.trials = 42;
    let text = saved.to_toml_string().unwrap();
    let clamped =
        c.restore_adaptation(plexo_controller::AdaptationState::from_toml_str(&text, "saved").unwrap()).unwrap();
    let k_max = c.config().aan.emken.k_max;
    let a_min = c.config().aan.progression.assistance_min;
    assert_eq!(c.adaptation().emken_stiffness[0], k_max);
    assert_eq!(c.adaptation().assistance_scale, a_min);
    assert_eq!(c.adaptation().trials, 42);
    let fields: Vec<&str> = clamped.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["emken_stiffness[0]", "assistance_scale"], "the clamped values are reported");
    assert_eq!((clamped[0].saved, clamped[0].restored), (1e6, k_max));
}

/// Passive mode adds the inverse-dynamics feed-forward of the reference, M(q)q̈_d + C(q, q̇_d)q̇_d + g(q), less
/// the gravity already in the hold torque; for a still reference that is exactly zero (no RNEA pass is needed).
#[test]
fn passive_feedforward_is_the_inverse_dynamics_of_the_reference() {
    let mut c = controller();
    c.set_mode(settings(Mode::Passive)).unwrap();
    let s = state(Q, [0.0; 4]);
    let mut r = TaskReference::hold(&s.position);
    r.velocity.copy_from_slice(&[0.3, -0.5, 0.2, 0.8]);
    r.acceleration.copy_from_slice(&[1.0, 2.0, -1.5, 0.5]);
    let tau = mode_torque(&mut c, &s, &r);
    let model = c.coupled_model().clone();
    let mut data = Data::new(&model);
    let ff = plexo_kinematics::rnea(&model, &mut data, &Q, &r.velocity, &r.acceleration).clone();
    let g = gravity_torque(&model, &mut data, &Q).clone();
    let d = &c.config().impedance.damping;
    for j in 0..4 {
        let expected = d[j] * r.velocity[j] + ff[j] - g[j];
        assert!((tau[j] - expected).abs() < 1e-9, "joint {j}: {} vs {expected}", tau[j]);
    }
    assert!((0..4).any(|j| (ff[j] - g[j]).abs() > 0.1), "the feed-forward is not trivial here");
    // Still reference: no feed-forward beyond gravity, to rounding.
    let still = TaskReference::hold(&s.position);
    assert!(mode_torque(&mut c, &s, &still).iter().all(|t| t.abs() < 1e-12));
}
