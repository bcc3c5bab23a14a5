//! The controller against the real plexo-arm4 model (no plant): arm-weight support, mode torques with the
//! intended sign, Cartesian impedance, protocol loading and target generation, configuration errors.

use plexo_controller::{
    AanLaw, Controller, ControllerConfig, ControllerError, Mode, ModeSettings, Protocol, RomLimit, Session, Space,
    TaskReference, default_protocol_toml,
};
use plexo_hal::{JointArray, JointState};
use plexo_kinematics::anthropometrics::ArmAnthropometrics;
use plexo_kinematics::{Data, Model, forward_kinematics, gravity_torque};

fn arm4() -> Model {
    Model::from_urdf_str(plexo_kinematics::default_robot_urdf("plexo-arm4").unwrap()).unwrap()
}

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

#[test]
fn nan_reference_gives_zero_command_and_flags_the_report() {
    let mut c = controller();
    let s = state(Q, [0.0; 4]);
    let mut r = TaskReference::hold(&s.position);
    r.velocity[2] = f64::NAN;
    let cmd = c.update(&s, &r, 0.0);
    assert!(cmd.is_zero() && !c.report().inputs_finite);
}

#[test]
fn default_protocols_parse_and_prepare_on_arm4() {
    let robot = arm4();
    let rom: Vec<RomLimit> =
        robot.joints().iter().map(|j| RomLimit { min: j.limits.lower, max: j.limits.upper }).collect();
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
    let full: Vec<RomLimit> =
        robot.joints().iter().map(|j| RomLimit { min: j.limits.lower, max: j.limits.upper }).collect();
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
    saved.trials = 42;
    let text = toml::to_string(&saved).unwrap();
    c.restore_adaptation(toml::from_str(&text).unwrap()).unwrap();
    assert_eq!(c.adaptation().emken_stiffness[0], c.config().aan.emken.k_max);
    assert_eq!(c.adaptation().trials, 42);
}
