//! The default robots: they parse, have the conventional joints, move as their joint names say, and their
//! effort limits hold a heavy patient's arm against gravity everywhere in range.

use nalgebra::{Unit, Vector3};
use plexo_kinematics::anthropometrics::ArmAnthropometrics;
use plexo_kinematics::{
    DEFAULT_ROBOTS, Data, Model, default_robot_urdf, forward_kinematics, gravity_torque, potential_energy,
};

fn load(name: &str) -> Model {
    Model::from_urdf_str(default_robot_urdf(name).expect("embedded")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn handle_position(model: &Model, q: &[f64]) -> Vector3<f64> {
    let mut data = Data::new(model);
    forward_kinematics(model, &mut data, q);
    data.world_T_frame[model.frame_id("handle").expect("handle frame").0].translation.vector
}

#[test]
fn every_default_robot_parses_from_embedded_text_and_from_file() {
    for name in DEFAULT_ROBOTS {
        let embedded = load(name);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../assets/robots/{name}.urdf"));
        let from_file = Model::from_urdf_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(embedded.nv(), from_file.nv());
        assert_eq!(embedded.name(), name);
        assert!(embedded.total_mass() > 1.0, "{name} has mass");
    }
    assert!(default_robot_urdf("no-such-robot").is_none());
    assert_eq!(load("test-arm7").nv(), 7);
}

#[test]
fn default_exoskeletons_have_conventional_joint_order_and_frames() {
    let arm4 = load("plexo-arm4");
    let names: Vec<&str> = arm4.joints().iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["shoulder_abduction", "shoulder_flexion", "shoulder_rotation", "elbow_flexion"]);
    let arm6 = load("plexo-arm6");
    let names: Vec<&str> = arm6.joints().iter().map(|j| j.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "shoulder_abduction",
            "shoulder_flexion",
            "shoulder_rotation",
            "elbow_flexion",
            "forearm_pronation",
            "wrist_flexion"
        ]
    );
    for model in [&arm4, &arm6] {
        for frame in ["base_link", "upper_arm_link", "forearm_link", "handle"] {
            assert!(model.frame_id(frame).is_some(), "{} lacks frame {frame}", model.name());
        }
        for joint in model.joints() {
            let l = joint.limits;
            assert!(l.lower < 0.0 + 1e-12 && l.upper > 0.0, "{}: q = 0 inside the limits", joint.name);
            assert!(l.effort > 0.0 && l.velocity > 0.0, "{}: effort and velocity limits set", joint.name);
        }
    }
    assert!(arm6.frame_id("hand_link").is_some());
}

#[test]
fn arm_hangs_at_zero_with_realistic_lengths() {
    for name in ["plexo-arm4", "plexo-arm6"] {
        let model = load(name);
        let mut data = Data::new(&model);
        forward_kinematics(&model, &mut data, &vec![0.0; model.nv()]);
        let at = |frame: &str| data.world_T_frame[model.frame_id(frame).unwrap().0].translation.vector;
        assert!(at("upper_arm_link").norm() < 1e-12, "upper arm origin at the shoulder centre");
        assert!((at("forearm_link") - Vector3::new(0.0, 0.0, -0.30)).norm() < 1e-12, "elbow 0.30 m below");
        assert!((at("handle") - Vector3::new(0.0, 0.0, -0.64)).norm() < 1e-12, "palm 0.27 + 0.07 m below elbow");
    }
}

#[test]
fn joints_move_the_handle_as_their_names_say() {
    for name in ["plexo-arm4", "plexo-arm6"] {
        let model = load(name);
        let n = model.nv();
        let zero = vec![0.0; n];
        let base = handle_position(&model, &zero);
        let moved = |joint: &str, start: &[f64], dq: f64| {
            let mut q = start.to_vec();
            q[model.joint_index(joint).unwrap()] += dq;
            handle_position(&model, &q) - handle_position(&model, start)
        };
        let d = moved("shoulder_flexion", &zero, 0.2);
        assert!(d.x > 0.05 && d.z > 0.0 && d.y.abs() < 1e-9, "{name}: flexion forward and up, got {d:?}");
        let d = moved("shoulder_abduction", &zero, 0.2);
        assert!(d.y < -0.05 && d.z > 0.0 && d.x.abs() < 1e-9, "{name}: abduction lateral (-y) and up, got {d:?}");
        let d = moved("elbow_flexion", &zero, 0.2);
        assert!(d.x > 0.02 && d.z > 0.0, "{name}: elbow flexion forward and up, got {d:?}");
        // Internal rotation with the elbow flexed 90°: the forearm swings medially (+y, toward the belly).
        let mut elbow_flexed = zero.clone();
        elbow_flexed[model.joint_index("elbow_flexion").unwrap()] = std::f64::consts::FRAC_PI_2;
        let d = moved("shoulder_rotation", &elbow_flexed, 0.2);
        assert!(d.y > 0.02 && d.x < 0.0, "{name}: internal rotation moves the hand medially, got {d:?}");
        assert!(base.z < -0.6);
    }
    // Wrist flexion with neutral forearm moves the palm side (+y, medial) forward; pronation turns the palm
    // normal (+y at q = 0) backward (-x).
    let model = load("plexo-arm6");
    let mut data = Data::new(&model);
    let mut q = vec![0.0; 6];
    q[5] = 0.3;
    forward_kinematics(&model, &mut data, &q);
    let handle = data.world_T_frame[model.frame_id("handle").unwrap().0];
    assert!(handle.translation.vector.y > 0.01, "wrist flexion moves the palm medially");
    q[5] = 0.0;
    q[4] = 0.3;
    forward_kinematics(&model, &mut data, &q);
    let palm_normal = data.world_T_frame[model.frame_id("handle").unwrap().0].rotation * Vector3::y();
    assert!(palm_normal.x < -0.2, "pronation turns the palm backward, got {palm_normal:?}");
}

#[test]
fn payload_attach_detach_restores_the_model_exactly() {
    let mut model = load("plexo-arm4");
    let q = [0.4, 0.6, -0.2, 1.0];
    let mut data = Data::new(&model);
    let g0 = gravity_torque(&model, &mut data, &q).clone();
    let m0 = model.total_mass();
    let arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).unwrap();
    let down = Unit::new_normalize(-Vector3::z());
    let upper = model.attach_payload("upper_arm_link", &arm.upper_arm.to_rigid_body(down, Vector3::zeros())).unwrap();
    let fore = model.attach_payload("forearm_link", &arm.forearm.to_rigid_body(down, Vector3::zeros())).unwrap();
    assert!((model.total_mass() - m0 - arm.upper_arm.mass - arm.forearm.mass).abs() < 1e-12);
    let g1 = gravity_torque(&model, &mut data, &q).clone();
    // The arm adds weight: the shoulder flexion holding torque grows.
    assert!(g1[1].abs() > g0[1].abs() + 1.0, "g0 {g0:?} g1 {g1:?}");
    model.detach_payload(upper).unwrap();
    model.detach_payload(fore).unwrap();
    assert!(model.detach_payload(fore).is_err(), "detaching twice is an error");
    let g2 = gravity_torque(&model, &mut data, &q).clone();
    assert!((g2 - g0).abs().max() < 1e-12);
    assert_eq!(model.total_mass(), m0);
    assert!(model.attach_payload("no_such_frame", &arm.hand.to_rigid_body(down, Vector3::zeros())).is_err());
}

#[test]
fn payload_on_frame_equals_point_mass_moved_by_hand() {
    // A 1 kg point mass on the handle frame raises the potential energy by m g Δz of the handle.
    let mut model = load("plexo-arm6");
    let q = [0.3, 0.9, 0.2, 1.1, 0.4, -0.3];
    let mut data = Data::new(&model);
    let e0 = potential_energy(&model, &mut data, &q);
    model.attach_payload("handle", &plexo_kinematics::RigidBody::point_mass(1.0, Vector3::zeros())).unwrap();
    let e1 = potential_energy(&model, &mut data, &q);
    let z = handle_position(&model, &q).z;
    assert!((e1 - e0 - 9.81 * z).abs() < 1e-9, "ΔE {} vs m g z {}", e1 - e0, 9.81 * z);
}

#[test]
fn effort_limits_hold_a_heavy_patient_arm_against_gravity_everywhere_in_range() {
    // A tall, heavy patient (1.90 m, 110 kg, about the 95th percentile of adult men) is the design case for
    // holding torque; at least 15 % of each limit must remain for assistance.
    let arm = ArmAnthropometrics::from_height_mass(1.90, 110.0).unwrap();
    let down = Unit::new_normalize(-Vector3::z());
    for name in ["plexo-arm4", "plexo-arm6"] {
        let mut model = load(name);
        model.attach_payload("upper_arm_link", &arm.upper_arm.to_rigid_body(down, Vector3::zeros())).unwrap();
        model.attach_payload("forearm_link", &arm.forearm.to_rigid_body(down, Vector3::zeros())).unwrap();
        let (hand_frame, hand_offset) = if name == "plexo-arm6" {
            ("hand_link", Vector3::zeros())
        } else {
            ("forearm_link", Vector3::new(0.0, 0.0, -0.27))
        };
        model.attach_payload(hand_frame, &arm.hand.to_rigid_body(down, hand_offset)).unwrap();
        let mut data = Data::new(&model);
        let n = model.nv();
        let steps = 6;
        let mut worst = vec![0.0f64; n];
        let mut index = vec![0usize; n];
        'grid: loop {
            let q: Vec<f64> = model
                .joints()
                .iter()
                .zip(&index)
                .map(|(j, &k)| j.limits.lower + (j.limits.upper - j.limits.lower) * k as f64 / steps as f64)
                .collect();
            let g = gravity_torque(&model, &mut data, &q);
            for i in 0..n {
                worst[i] = worst[i].max(g[i].abs());
            }
            for k in index.iter_mut() {
                *k += 1;
                if *k <= steps {
                    continue 'grid;
                }
                *k = 0;
            }
            break;
        }
        for (joint, w) in model.joints().iter().zip(&worst) {
            println!("{name}/{}: {w:.2} of {} Nm", joint.name, joint.limits.effort);
            assert!(
                *w < 0.85 * joint.limits.effort,
                "{name}/{}: worst gravity torque {w:.2} Nm leaves < 15 % of the {} Nm limit",
                joint.name,
                joint.limits.effort
            );
        }
        println!("{name}: worst static gravity torques {worst:.2?} Nm");
    }
}
