//! Virtual-patient tests: passivity at zero strength, spasticity threshold, reaching, trial dynamics, profiles.

mod common;

use common::{arm4, arm6, ideal_config, profile};
use plexo_hal::{JointCommand, Robot};
use plexo_sim::patient::Mas;
use plexo_sim::{
    ArticulatedPlant, DEFAULT_PATIENTS, PatientProfile, PatientState, PlantConfig, SimError, SimulatedPlant,
    TrialOutcome, default_patient_toml,
};

/// Gravity compensation of the bare robot (what a transparent controller would command), applied every step.
fn run_with_robot_gravity_comp(plant: &mut ArticulatedPlant, robot: &plexo_kinematics::Model, steps: usize) {
    let mut data = plexo_kinematics::Data::new(robot);
    let mut cmd = JointCommand::zeros(plant.dof());
    for _ in 0..steps {
        let g = plexo_kinematics::gravity_torque(robot, &mut data, plant.position());
        cmd.torque.copy_from_slice(g.as_slice());
        plant.write(&cmd).unwrap();
    }
}

fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt()
}

const GOAL: [f64; 4] = [0.5, 0.8, 0.2, 1.3];

fn reach(name: &str, seconds: f64) -> f64 {
    let model = arm4();
    let mut config = PlantConfig::default().with_patient(profile(name));
    config.initial_position = Some(vec![0.05, 0.05, 0.0, 0.3]);
    let mut plant = ArticulatedPlant::new(&model, config).unwrap();
    plant.enable().unwrap();
    plant.patient_mut().unwrap().set_target(&GOAL, 1.5).unwrap();
    run_with_robot_gravity_comp(&mut plant, &model, (seconds / 1e-3) as usize);
    distance(plant.position(), &GOAL)
}

#[test]
fn healthy_profile_reaches_targets_unaided() {
    // "Unaided": the robot only carries its own weight; the patient moves its arm.
    let error = reach("healthy", 3.5);
    assert!(error < 0.1, "healthy final error {error} rad");
}

#[test]
fn severe_profile_does_not_reach_targets_unaided() {
    let error = reach("severe", 3.5);
    assert!(error > 0.3, "severe final error {error} rad");
}

#[test]
fn zero_strength_patient_is_passive() {
    let model = arm4();
    let mut p = profile("spastic");
    for j in p.joints.values_mut() {
        j.max_torque = 0.0;
    }
    p.tremor.amplitude = 0.5;
    let q0 = [0.6, 0.9, 0.2, 1.2];
    let mut plant = ArticulatedPlant::new(&model, ideal_config(&model, Some(p), &q0)).unwrap();
    plant.patient_mut().unwrap().set_target(&GOAL, 1.0).unwrap();
    let zero = JointCommand::zeros(4);
    // Passive tissue (spring about rest + damper) can only store or dissipate: with its spring energy counted,
    // total energy never grows (tolerance for the integrator).
    let names: Vec<String> = model.joints().iter().map(|j| j.name.clone()).collect();
    let total_energy = |plant: &mut ArticulatedPlant| {
        let profile = plant.patient().unwrap().profile().clone();
        let stored: f64 = (0..4)
            .map(|i| {
                let j = &profile.joints[&names[i]];
                0.5 * j.passive_stiffness * (plant.position()[i] - j.rest_position).powi(2)
            })
            .sum();
        plant.energy() + stored
    };
    let e_start = total_energy(&mut plant);
    let mut e_prev = e_start;
    for _ in 0..3000 {
        plant.write(&zero).unwrap();
        let t = plant.patient().unwrap().torques();
        for i in 0..4 {
            assert_eq!(t.active(i), 0.0, "joint {i} produced active torque");
            assert_eq!(t.total[i], t.passive[i]);
        }
        let e = total_energy(&mut plant);
        assert!(
            e <= e_prev + 1e-3,
            "energy grew from {e_prev} to {e} at t = {} q = {:?}",
            plant.time(),
            plant.position()
        );
        e_prev = e;
    }
    assert!(e_prev < e_start - 0.1, "the passive arm must dissipate energy ({e_start} -> {e_prev} J)");
}

#[test]
fn spasticity_torque_only_above_velocity_threshold() {
    let model = arm4();
    let p = profile("spastic");
    let elbow = &p.joints["elbow_flexion"];
    assert_eq!(elbow.mas, Mas::Three);
    let (gain, threshold) = elbow.reflex();
    let plant = ArticulatedPlant::new(&model, PlantConfig::default().with_patient(p.clone())).unwrap();
    let patient = plant.patient().unwrap();
    // Elbow flexors are stretched by extension (negative velocity).
    for v in [0.0, -0.5 * threshold, -threshold, 0.5, 3.0] {
        assert_eq!(patient.reflex_drive(3, v), 0.0, "no reflex at {v} rad/s");
    }
    let fast = -(threshold + 1.0);
    let drive = patient.reflex_drive(3, fast);
    assert!((drive - gain).abs() < 1e-12, "drive {drive} resists extension with gain {gain}");

    // In the plant: stretch the elbow slowly, then fast, with the robot; the reflex appears only when fast.
    let stretch = |speed: f64| {
        let mut config = PlantConfig::default().with_patient(p.clone());
        config.initial_position = Some(vec![0.0, 0.3, 0.0, 2.0]);
        let mut plant = ArticulatedPlant::new(&model, config).unwrap();
        plant.enable().unwrap();
        let mut imp = plexo_hal::DriveImpedance {
            stiffness: plexo_hal::JointArray::from_slice(&[200.0, 200.0, 100.0, 300.0]).unwrap(),
            damping: plexo_hal::JointArray::from_slice(&[10.0, 10.0, 5.0, 10.0]).unwrap(),
            velocity: plexo_hal::JointArray::splat(4, 0.0),
            ..Default::default()
        };
        let mut peak: f64 = 0.0;
        for k in 0..1200 {
            let t = k as f64 * 1e-3;
            // Ramp the stretch speed up over 0.3 s so the tracking loop does not overshoot it.
            let ramp = (t / 0.3).min(1.0);
            let travelled = if t < 0.3 { speed * t * t / 0.6 } else { speed * (t - 0.15) };
            let elbow_q = (2.0 - travelled).max(0.6);
            imp.position = plexo_hal::JointArray::from_slice(&[0.0, 0.3, 0.0, elbow_q]).unwrap();
            imp.velocity[3] = if elbow_q > 0.6 { -speed * ramp } else { 0.0 };
            let mut cmd = JointCommand::zeros(4);
            cmd.drive_impedance = Some(imp);
            plant.write(&cmd).unwrap();
            peak = peak.max(plant.patient().unwrap().torques().reflex[3].abs());
        }
        peak
    };
    assert_eq!(stretch(0.3 * threshold), 0.0, "slow stretch must not trigger the reflex");
    assert!(stretch(threshold + 1.5) > 0.3, "fast stretch must trigger a reflex torque");
}

#[test]
fn flexor_synergy_couples_abduction_effort_into_elbow_flexion() {
    let model = arm4();
    let mut config = PlantConfig::default().with_patient(profile("severe"));
    config.initial_position = Some(vec![0.0, 0.0, 0.0, 0.5]);
    let mut plant = ArticulatedPlant::new(&model, config).unwrap();
    plant.enable().unwrap();
    plant.patient_mut().unwrap().set_target(&[1.0, 0.0, 0.0, 0.5], 1.0).unwrap();
    let zero = JointCommand::zeros(4);
    let mut seen = false;
    for _ in 0..1500 {
        plant.write(&zero).unwrap();
        let t = plant.patient().unwrap().torques();
        if t.voluntary[0] > 0.5 {
            let c = plant.patient().unwrap().profile().synergy.abduction_to_elbow_flexion;
            assert!((t.synergy[3] - c * t.voluntary[0]).abs() < 1e-9);
            seen = true;
        }
    }
    assert!(seen, "the abduction effort never exceeded 0.5 Nm");
}

#[test]
fn tremor_is_band_limited_with_the_stated_rms() {
    let model = arm4();
    let mut p = profile("healthy");
    p.tremor.amplitude = 0.5;
    // The tremor is an open-loop signal (seeded noise through the band-pass), independent of the arm's motion: the
    // plant is left disabled (no motor torque) and only the tremor component of the patient's torque is examined.
    let mut plant = ArticulatedPlant::new(&model, PlantConfig::default().with_patient(p)).unwrap();
    assert_eq!(plant.lifecycle(), plexo_hal::Lifecycle::Disabled);
    let zero = JointCommand::zeros(4);
    let n = 20_000;
    let mut x = Vec::with_capacity(n);
    for _ in 0..n {
        plant.write(&zero).unwrap();
        x.push(plant.patient().unwrap().torques().tremor[1]);
    }
    let x = &x[2000..];
    let rms = (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt();
    assert!((rms - 0.5).abs() < 0.1, "tremor RMS {rms} Nm");
    // Power in 4–8 Hz vs total (naive DFT at 0.25 Hz resolution up to 50 Hz).
    let power = |f: f64| {
        let (mut re, mut im) = (0.0, 0.0);
        for (k, v) in x.iter().enumerate() {
            let ph = core::f64::consts::TAU * f * k as f64 * 1e-3;
            re += v * ph.cos();
            im += v * ph.sin();
        }
        re * re + im * im
    };
    let (mut band, mut total) = (0.0, 0.0);
    for k in 1..200 {
        let f = k as f64 * 0.25;
        let p = power(f);
        total += p;
        if (4.0..=8.0).contains(&f) {
            band += p;
        }
    }
    assert!(band / total > 0.6, "only {:.0} % of the tremor power in 4–8 Hz", 100.0 * band / total);
}

#[test]
fn slacking_when_robot_removes_error_and_effort_returns_with_error() {
    let model = arm4();
    let mut plant = ArticulatedPlant::new(&model, PlantConfig::default().with_patient(profile("moderate"))).unwrap();
    let patient = plant.patient_mut().unwrap();
    let f = patient.profile().slacking.forgetting;
    let e0 = patient.state().effort;
    for _ in 0..10 {
        patient.end_trial(&TrialOutcome { error: 0.0, success: true, duration: 2.0 }).unwrap();
    }
    let slacked = patient.state().effort;
    assert!((slacked - (e0 * f.powi(10)).max(patient.profile().slacking.min_effort)).abs() < 1e-12);
    assert!(slacked < 0.5 * e0);
    for _ in 0..5 {
        patient.end_trial(&TrialOutcome { error: 0.2, success: false, duration: 2.0 }).unwrap();
    }
    assert!(patient.state().effort > slacked + 0.2, "effort did not return with error");
}

#[test]
fn learning_needs_effortful_success_and_fatigue_recovers_at_rest() {
    let model = arm4();
    let mut config = PlantConfig::default().with_patient(profile("moderate"));
    config.initial_position = Some(vec![0.05, 0.05, 0.0, 0.3]);
    let mut plant = ArticulatedPlant::new(&model, config).unwrap();
    plant.enable().unwrap();
    let cap0 = plant.patient().unwrap().state().capacity;
    // Effortless success (no movement made): no learning.
    plant.patient_mut().unwrap().end_trial(&TrialOutcome { error: 0.0, success: true, duration: 1.0 }).unwrap();
    assert_eq!(plant.patient().unwrap().state().capacity, cap0);
    // Effortful practice: reach (robot only compensates itself), then report success.
    plant.patient_mut().unwrap().set_target(&GOAL, 1.5).unwrap();
    run_with_robot_gravity_comp(&mut plant, &model, 3000);
    let effort = plant.patient().unwrap().mean_trial_effort();
    assert!(effort > 0.05, "mean trial effort {effort}");
    let fatigue_after_work = plant.patient().unwrap().state().fatigue;
    assert!(fatigue_after_work > 0.0);
    let state =
        plant.patient_mut().unwrap().end_trial(&TrialOutcome { error: 0.02, success: true, duration: 3.0 }).unwrap();
    assert!(state.capacity > cap0, "capacity {} did not grow", state.capacity);
    // Failure teaches nothing.
    let after =
        plant.patient_mut().unwrap().end_trial(&TrialOutcome { error: 0.5, success: false, duration: 3.0 }).unwrap();
    assert_eq!(after.capacity, state.capacity);
    // Rest: fatigue decays.
    plant.patient_mut().unwrap().clear_target();
    run_with_robot_gravity_comp(&mut plant, &model, 5000);
    assert!(plant.patient().unwrap().state().fatigue < 0.9 * fatigue_after_work);
    // Capacity falls with fatigue.
    let mut tired = *plant.patient().unwrap().state();
    tired.fatigue = 1.0;
    let fresh_cap = plant.patient().unwrap().capacity_torque(1);
    plant.patient_mut().unwrap().restore(tired).unwrap();
    assert!(plant.patient().unwrap().capacity_torque(1) < fresh_cap);
}

#[test]
fn patient_state_round_trips_through_serde_and_resumes() {
    let model = arm4();
    let mut a = ArticulatedPlant::new(&model, PlantConfig::default().with_patient(profile("mild"))).unwrap();
    let pa = a.patient_mut().unwrap();
    pa.end_trial(&TrialOutcome { error: 0.1, success: true, duration: 1.0 }).unwrap();
    let json = serde_json::to_string(pa.state()).unwrap();
    let restored: PatientState = serde_json::from_str(&json).unwrap();
    assert_eq!(&restored, pa.state());
    let mut b = ArticulatedPlant::new(&model, PlantConfig::default().with_patient(profile("mild"))).unwrap();
    b.patient_mut().unwrap().restore(restored).unwrap();
    assert_eq!(b.patient().unwrap().state(), a.patient().unwrap().state());
    let mut bad = restored;
    bad.effort = 2.0;
    let err = b.patient_mut().unwrap().restore(bad).unwrap_err();
    assert!(err.to_string().contains("patient_state.effort"), "{err}");
}

#[test]
fn set_target_rejects_bad_input() {
    let model = arm4();
    let mut plant = ArticulatedPlant::new(&model, PlantConfig::default().with_patient(profile("mild"))).unwrap();
    let p = plant.patient_mut().unwrap();
    assert!(matches!(p.set_target(&[0.0; 3], 1.0), Err(SimError::JointCountMismatch { .. })));
    assert!(p.set_target(&[0.0, f64::NAN, 0.0, 0.0], 1.0).unwrap_err().to_string().contains("goal[1]"));
    assert!(p.set_target(&[0.0; 4], 0.0).unwrap_err().to_string().contains("set_target.duration"));
    assert!(p.target().is_none());
    p.set_target(&[0.1; 4], 1.0).unwrap();
    assert_eq!(p.target().unwrap().1, 1.0);
}

#[test]
fn every_embedded_profile_parses_and_builds_on_arm4_and_arm6() {
    for name in DEFAULT_PATIENTS {
        let p = PatientProfile::builtin(name).unwrap();
        assert_eq!(p.name, name);
        ArticulatedPlant::new(&arm4(), PlantConfig::default().with_patient(p.clone())).unwrap();
        ArticulatedPlant::new(&arm6(), PlantConfig::default().with_patient(p)).unwrap();
    }
    assert!(matches!(default_patient_toml("nope"), Err(SimError::UnknownProfile { .. })));
}

#[test]
fn bad_profile_errors_name_file_key_and_range() {
    let text = default_patient_toml("moderate").unwrap();
    let bad = text.replace("[joints.elbow_flexion]\nmax_torque = 24.0", "[joints.elbow_flexion]\nmax_torque = -3.0");
    assert_ne!(bad, text, "test edit must apply");
    let err = PatientProfile::from_toml_str(&bad, "my.toml").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("my.toml") && msg.contains("joints.elbow_flexion.max_torque") && msg.contains("[0, 200] Nm"),
        "{msg}"
    );

    let unknown = text.replace("[tremor]", "[tremor]\nfrequency = 3.0");
    let msg = PatientProfile::from_toml_str(&unknown, "x.toml").unwrap_err().to_string();
    assert!(msg.contains("x.toml") && msg.contains("frequency"), "{msg}");

    let bad_mas = text.replace("mas = \"2\"", "mas = \"5\"");
    assert_ne!(bad_mas, text, "test edit must apply");
    let msg = PatientProfile::from_toml_str(&bad_mas, "x.toml").unwrap_err().to_string();
    // The file, the table and key, the bad value and the allowed grades.
    assert!(
        msg.contains("x.toml")
            && msg.contains("[joints.elbow_flexion]")
            && msg.contains("mas = \"5\"")
            && msg.contains("expected one of `0`, `1`, `1+`, `2`, `3`, `4`"),
        "{msg}"
    );

    let delay = text.replace("delay = 0.13", "delay = 0.5");
    let msg = PatientProfile::from_toml_str(&delay, "x.toml").unwrap_err().to_string();
    assert!(msg.contains("neural.delay") && msg.contains("[0, 0.3] s"), "{msg}");

    // A robot joint missing from the profile.
    let mut p = PatientProfile::builtin("moderate").unwrap();
    p.joints.remove("shoulder_rotation");
    let err = ArticulatedPlant::new(&arm4(), PlantConfig::default().with_patient(p)).unwrap_err();
    assert!(err.to_string().contains("shoulder_rotation"), "{err}");
}

#[test]
fn profile_files_on_disk_match_the_embedded_ones() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/patients");
    for name in DEFAULT_PATIENTS {
        let from_file = PatientProfile::from_file(dir.join(format!("{name}.toml"))).unwrap();
        assert_eq!(from_file, PatientProfile::builtin(name).unwrap());
    }
}

/// Regression (3–4 Hz ringing of the hand in passive trials): `set_target` stepped the patient's arm-weight
/// feedforward in at once — 8 Nm at the shoulder of a relaxed patient whose arm the robot already carried —
/// kicking the arm out of the robot's stiff hold. The voluntary torque must start from what the patient exerts
/// (nothing, when relaxed) and change smoothly, also when a new target replaces one mid-movement.
#[test]
fn set_target_does_not_step_the_voluntary_torque() {
    let model = arm4();
    let q0 = [0.25, 0.6, 0.0, 1.3];
    let mut config = PlantConfig::default().with_patient(profile("healthy"));
    config.initial_position = Some(q0.to_vec());
    let mut plant = ArticulatedPlant::new(&model, config).unwrap();
    plant.enable().unwrap();
    let loaded = plant.model().clone();
    let mut data = plexo_kinematics::Data::new(&loaded);
    let mut cmd = JointCommand::zeros(4);
    // The robot holds the arm (stiff joint PD, robot + arm weight compensated): the patient can relax.
    let mut hold = |plant: &mut ArticulatedPlant| {
        let g = plexo_kinematics::gravity_torque(&loaded, &mut data, plant.position());
        for j in 0..4 {
            cmd.torque[j] = g[j] + 300.0 * (q0[j] - plant.position()[j]) - 10.0 * plant.velocity()[j];
        }
        plant.write(&cmd).unwrap();
        *plant.patient().unwrap().torques()
    };
    for _ in 0..500 {
        hold(&mut plant);
    }
    let goal = [0.6, 0.7, 0.2, 1.0];
    plant.patient_mut().unwrap().set_target(&goal, 2.0).unwrap();
    let mut previous = hold(&mut plant).voluntary;
    let (mut max_step, mut max_during_reaction) = (0.0f64, 0.0f64);
    for k in 1..1000 {
        if k == 600 {
            // A new target mid-movement.
            plant.patient_mut().unwrap().set_target(&q0, 2.0).unwrap();
        }
        let now = hold(&mut plant).voluntary;
        for j in 0..4 {
            max_step = max_step.max((now[j] - previous[j]).abs());
            if k < 100 {
                max_during_reaction = max_during_reaction.max(now[j].abs());
            }
        }
        previous = now;
    }
    // Before the fix: 7.9 Nm at the first step.
    assert!(max_during_reaction < 0.5, "voluntary torque within the reaction time: {max_during_reaction} Nm");
    assert!(max_step < 0.2, "largest voluntary torque change in one 1 ms step: {max_step} Nm");
}

/// Stiff joint hold (PD about `q_ref`) plus gravity compensation of robot and arm: the robot carries the arm.
fn hold_with_support(plant: &mut ArticulatedPlant, data: &mut plexo_kinematics::Data, q_ref: &[f64]) {
    let loaded = plant.model().clone();
    let g = plexo_kinematics::gravity_torque(&loaded, data, plant.position());
    let mut cmd = JointCommand::zeros(4);
    for j in 0..4 {
        cmd.torque[j] = g[j] + 300.0 * (q_ref[j] - plant.position()[j]) - 10.0 * plant.velocity()[j];
    }
    plant.write(&cmd).unwrap();
}

/// The patient does not push against a support it feels (the double support behind the 3–4 Hz ringing), and it
/// learns the support it meets while moving: none when only the robot's own weight is compensated.
#[test]
fn patient_expects_the_support_it_felt_at_rest_and_learns_the_support_it_meets() {
    let model = arm4();
    let q0 = [0.25, 0.6, 0.0, 1.3];
    let mut config = PlantConfig::default().with_patient(profile("moderate"));
    config.initial_position = Some(q0.to_vec());
    let mut plant = ArticulatedPlant::new(&model, config).unwrap();
    plant.enable().unwrap();
    let mut data = plexo_kinematics::Data::new(plant.model());
    assert_eq!(plant.patient().unwrap().expected_support(), 0.0, "prior: it carries its own arm");
    for _ in 0..1000 {
        hold_with_support(&mut plant, &mut data, &q0);
    }
    let felt = plant.patient().unwrap().expected_support();
    assert!(felt > 0.9, "relaxed in a robot that carries its arm, it feels support {felt}");
    // Reaches with only the robot's own weight compensated: the support it expected is not there.
    let goals = [[0.4, 0.9, 0.1, 1.1], q0];
    for trial in 0..6 {
        plant.patient_mut().unwrap().set_target(&goals[trial % 2], 1.5).unwrap();
        run_with_robot_gravity_comp(&mut plant, &model, 2500);
    }
    let learned = plant.patient().unwrap().expected_support();
    assert!(learned < 0.2, "after six unsupported reaches it still expects support {learned}");
    // It now carries its arm: the final posture is close to the goal.
    assert!(distance(plant.position(), &q0) < 0.1, "final error {} rad", distance(plant.position(), &q0));
}

#[test]
fn patient_resting_with_its_arm_hanging_feels_no_support() {
    let model = arm4();
    let mut config = PlantConfig::default().with_patient(profile("healthy"));
    config.initial_position = Some(vec![0.0, 0.0, 0.0, 0.0]);
    let mut plant = ArticulatedPlant::new(&model, config).unwrap();
    plant.enable().unwrap();
    run_with_robot_gravity_comp(&mut plant, &model, 1000);
    assert_eq!(plant.patient().unwrap().expected_support(), 0.0);
}

/// `clear_target` used to drop the voluntary torque (and the load integral) to zero in one sample.
#[test]
fn clear_target_relaxes_with_the_deactivation_time_constant() {
    let model = arm4();
    let mut config = PlantConfig::default().with_patient(profile("healthy"));
    config.initial_position = Some(vec![0.05, 0.05, 0.0, 0.3]);
    let mut plant = ArticulatedPlant::new(&model, config).unwrap();
    plant.enable().unwrap();
    plant.patient_mut().unwrap().set_target(&GOAL, 1.5).unwrap();
    run_with_robot_gravity_comp(&mut plant, &model, 2500);
    let before = plant.patient().unwrap().torques().voluntary;
    let peak = before.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(peak > 3.0, "the patient holds its arm up ({peak} Nm)");
    plant.patient_mut().unwrap().clear_target();
    let mut previous = before;
    let mut max_step: f64 = 0.0;
    let mut data = plexo_kinematics::Data::new(plant.model());
    let hold = *plant.position().first_chunk::<4>().unwrap();
    for k in 0..250 {
        hold_with_support(&mut plant, &mut data, &hold);
        let now = plant.patient().unwrap().torques().voluntary;
        for j in 0..4 {
            max_step = max_step.max((now[j] - previous[j]).abs());
            if k == 49 {
                // One deactivation time constant (50 ms): e^-1 of the torque exerted at clear_target.
                let expected = before[j] * (-1.0f64).exp();
                assert!((now[j] - expected).abs() < 0.02 * peak, "joint {j}: {} vs {expected} Nm", now[j]);
            }
        }
        previous = now;
    }
    // The first 1 ms of a 50 ms exponential decay is 2 % of the torque exerted: no step.
    assert!(max_step < 0.025 * peak, "largest step after clear_target: {max_step} Nm of {peak} Nm");
    assert!(previous.iter().all(|v| v.abs() < 0.01 * peak), "not relaxed after 0.25 s: {previous:?}");
}

/// End-of-range passive torque: zero inside the passive range, opposing the excursion beyond it with slope
/// `end_range_stiffness` at the boundary, growing exponentially (Riener & Edrich 1999), and capped at
/// 5 × `end_range_stiffness` Nm.
#[test]
fn passive_torque_rises_exponentially_beyond_the_range_and_is_capped() {
    let model = arm4();
    let p = profile("moderate");
    let plant = ArticulatedPlant::new(&model, PlantConfig::default().with_patient(p.clone())).unwrap();
    let patient = plant.patient().unwrap();
    let elbow = &p.joints["elbow_flexion"];
    let [lower, upper] = p.range_of("elbow_flexion").unwrap();
    let k = elbow.passive_stiffness;
    let k_end = elbow.end_range_stiffness;
    let spring = |q: f64| -k * (q - elbow.rest_position);
    // Inside the range: the linear spring only.
    for q in [lower + 1e-6, elbow.rest_position, 0.5 * (lower + upper), upper - 1e-6] {
        assert!((patient.passive_torque(3, q, 0.0) - spring(q)).abs() < 1e-9, "inside at {q}");
    }
    let end = |q: f64| patient.passive_torque(3, q, 0.0) - spring(q);
    // Beyond the upper bound it pushes back (negative), with slope k_end at the boundary.
    let h = 1e-6;
    let slope = (end(upper + h) - end(upper)) / h;
    assert!((slope + k_end).abs() < 1e-3 * k_end, "slope at the upper bound {slope} vs {}", -k_end);
    // Exponential growth: each further 0.1 rad multiplies the excess torque's derivative by e.
    let d1 = end(upper + 0.05) - end(upper + 0.05 - h);
    let d2 = end(upper + 0.15) - end(upper + 0.15 - h);
    assert!((d2 / d1 - core::f64::consts::E).abs() < 1e-3, "growth ratio {}", d2 / d1);
    // Below the lower bound it pushes up (positive), symmetric.
    assert!((end(lower - 0.05) + end(upper + 0.05)).abs() < 1e-9);
    assert!(end(lower - 0.05) > 0.0);
    // Capped at 5 k_end far outside.
    assert!((end(upper + 2.0) + 5.0 * k_end).abs() < 1e-9, "{}", end(upper + 2.0));
    assert!((end(lower - 2.0) - 5.0 * k_end).abs() < 1e-9);
    // Velocity adds the damping term everywhere.
    let b = elbow.passive_damping;
    assert!(
        (patient.passive_torque(3, upper + 0.05, 1.0) - patient.passive_torque(3, upper + 0.05, 0.0) + b).abs() < 1e-12
    );
}

/// The stretch reflex is graded by the Modified Ashworth Scale: the higher the grade, the lower the velocity
/// threshold and the larger the gain, so at any stretch velocity the reflex drive never falls with the grade and
/// MAS 0 has none.
#[test]
fn reflex_strength_rises_with_the_mas_grade() {
    let grades = [Mas::Zero, Mas::One, Mas::OnePlus, Mas::Two, Mas::Three, Mas::Four];
    let params: Vec<(f64, f64)> = grades.iter().map(|g| g.reflex_parameters()).collect();
    assert_eq!(params[0].0, 0.0, "MAS 0: no reflex");
    for w in params.windows(2) {
        let ((g0, t0), (g1, t1)) = (w[0], w[1]);
        assert!(g1 > g0 && t1 < t0, "grades must raise the gain and lower the threshold: {w:?}");
    }
    // In the patient model: the same elbow stretch (extension, negative velocity) with the elbow's grade swept.
    let model = arm4();
    for v in [-0.8, -1.5, -3.0] {
        let mut previous: f64 = 0.0;
        for grade in grades {
            let mut p = profile("moderate");
            p.joints.get_mut("elbow_flexion").unwrap().mas = grade;
            let plant = ArticulatedPlant::new(&model, PlantConfig::default().with_patient(p)).unwrap();
            let drive = plant.patient().unwrap().reflex_drive(3, v);
            // Resists the stretch: positive (flexing) torque against an extending velocity.
            assert!(drive >= 0.0, "{grade:?} at {v} rad/s: {drive}");
            assert!(drive >= previous, "{grade:?} at {v} rad/s: {drive} < {previous}");
            previous = drive;
        }
        assert!(previous > 0.0, "MAS 4 must respond at {v} rad/s");
    }
}

/// Regression: the app's sensor check leaves the robot torque-off for 0.5 s and the moderate patient's forearm
/// falls (≈ 1.2 rad/s) onto its elbow end range; the first trial's target arrived while it fell. The plan
/// continued the perceived fall (a 2 s quintic from −1.2 rad/s overshot to −0.16 rad, far below the 0.19 rad
/// passive range) and fed forward the end-range tissue torque of that posture: the patient pushed its elbow
/// into extension at its full 24 Nm capacity, overpowered the 8 Nm motor's safe-stop hold and hit the stop.
#[test]
fn a_target_set_while_the_relaxed_arm_falls_is_planned_from_rest_inside_the_range() {
    let model = arm4();
    let q0 = [0.1, 0.0, 0.3, 0.6];
    let mut config = PlantConfig::default().with_patient(profile("moderate"));
    config.initial_position = Some(q0.to_vec());
    let mut plant = ArticulatedPlant::new(&model, config).unwrap();
    plant.enable().unwrap();
    let zero = JointCommand::zeros(4);
    for _ in 0..450 {
        plant.write(&zero).unwrap();
    }
    assert!(plant.velocity()[3] < -0.3, "the forearm falls while the robot is off: {} rad/s", plant.velocity()[3]);
    let names: Vec<String> = model.joints().iter().map(|j| j.name.clone()).collect();
    let profile = plant.patient().unwrap().profile().clone();
    let range: Vec<[f64; 2]> = names.iter().map(|n| profile.range_of(n).unwrap()).collect();
    let capacity = plant.patient().unwrap().capacity_torque(3);

    let goal = [0.25, 0.976, 0.0, 0.685];
    plant.patient_mut().unwrap().set_target(&goal, 2.0).unwrap();
    // The robot carries its own weight only; the patient moves its arm.
    let robot = arm4();
    let mut data = plexo_kinematics::Data::new(&robot);
    let mut cmd = JointCommand::zeros(4);
    let (mut max_elbow_drive, mut lowest_elbow) = (0.0f64, f64::INFINITY);
    for _ in 0..2500 {
        let planned = plant.patient().unwrap().planned_position().unwrap();
        for j in 0..4 {
            assert!(
                (range[j][0]..=range[j][1]).contains(&planned[j]),
                "joint {} planned at {} rad, outside the patient's range {:?}",
                names[j],
                planned[j],
                range[j]
            );
        }
        let g = plexo_kinematics::gravity_torque(&robot, &mut data, plant.position());
        cmd.torque.copy_from_slice(g.as_slice());
        plant.write(&cmd).unwrap();
        let voluntary = plant.patient().unwrap().torques().voluntary[3];
        max_elbow_drive = max_elbow_drive.max(-voluntary);
        lowest_elbow = lowest_elbow.min(plant.position()[3]);
    }
    // Before the fix: −24 Nm (the capacity) and the elbow at its 0 rad hard stop.
    assert!(max_elbow_drive < 0.5 * capacity, "elbow extension drive {max_elbow_drive} Nm of {capacity} Nm capacity");
    assert!(lowest_elbow > range[3][0] - 0.1, "elbow fell to {lowest_elbow} rad (range from {} rad)", range[3][0]);
    assert!(
        (plant.position()[3] - goal[3]).abs() < 0.25,
        "the elbow moved towards its goal: at {} rad, goal {} rad",
        plant.position()[3],
        goal[3]
    );
}
