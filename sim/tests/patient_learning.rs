//! The virtual patient learns the way patients do (issue 12 §2): an error-driven two-rate internal model that
//! improves the unassisted movement and persists across sessions, error augmentation vs plain practice vs heavy
//! guidance, rest between sessions, a paralysed arm, effort that responds to the error.
//!
//! Articulated plant (arm4), ideal actuators; the "robot" is a few lines of torque law per condition:
//! transparent (it carries its own weight only), guidance (stiff PD on the robot's minimum-jerk reference, arm
//! weight carried), error augmentation (its own weight plus a torque pushing away from the reference).

use plexo_hal::{JointCommand, Robot};
use plexo_kinematics::{Data, Model};
use plexo_sim::{
    ArticulatedPlant, PatientProfile, PatientState, SimulatedPlant, TrialOutcome, patient_state_from_table,
    patient_state_to_table,
};
use plexo_testkit::patients::{ideal_config, profile};
use plexo_testkit::robots::arm4;

const DT: f64 = 1e-3;
const HOME: [f64; 4] = [0.2, 0.4, 0.0, 0.9];
/// Centre-out targets around HOME [rad].
const TARGETS: [[f64; 4]; 4] =
    [[0.45, 0.75, 0.15, 1.3], [0.1, 0.8, -0.1, 0.5], [0.45, 0.2, 0.1, 1.2], [0.05, 0.25, -0.15, 1.4]];
/// Movement time the reference and the patient are given [s]; each trial lasts it plus HOLD.
const MOVE: f64 = 1.5;
const HOLD: f64 = 1.0;

/// What the robot does during a trial.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Robot4 {
    /// Carries its own weight only: the patient moves its arm unassisted.
    Transparent,
    /// Carries robot and arm weight and holds the arm on the reference (PD 300 Nm/rad, 10 Nm s/rad).
    Guidance,
    /// Carries its own weight and pushes away from the reference with `k` Nm/rad (shoulder; half at the elbow).
    Augment(f64),
}

/// Per-trial measures (joint space).
#[derive(Clone, Copy, Debug, Default)]
struct Measures {
    /// RMS tracking error vs the reference, norm over joints [rad] (what the runtime reports to the patient).
    rms: f64,
    /// Final distance to the target [rad].
    final_error: f64,
    /// Speed peaks (local maxima of the joint-space speed, 10 % hysteresis).
    peaks: f64,
    /// Spectral arc length of the speed profile (SPARC, Balasubramanian et al. 2015; closer to 0 = smoother).
    sparc: f64,
}

struct Course {
    plant: ArticulatedPlant,
    robot: Model,
    robot_data: Data,
    loaded_data: Data,
}

fn minimum_jerk(q0: &[f64; 4], goal: &[f64; 4], t: f64) -> ([f64; 4], [f64; 4]) {
    let s = (t / MOVE).clamp(0.0, 1.0);
    let p = s * s * s * (10.0 - 15.0 * s + 6.0 * s * s);
    let dp = if t < MOVE { 30.0 * s * s * (1.0 - s) * (1.0 - s) / MOVE } else { 0.0 };
    let mut q = [0.0; 4];
    let mut v = [0.0; 4];
    for i in 0..4 {
        q[i] = q0[i] + p * (goal[i] - q0[i]);
        v[i] = dp * (goal[i] - q0[i]);
    }
    (q, v)
}

impl Course {
    fn new(profile: PatientProfile) -> Self {
        let robot = arm4();
        let plant = ArticulatedPlant::new(&robot, ideal_config(&robot, Some(profile), &HOME)).unwrap();
        let robot_data = Data::new(&robot);
        let loaded_data = Data::new(plant.model());
        let mut course = Self { plant, robot, robot_data, loaded_data };
        course.plant.enable().unwrap();
        course
    }

    fn state(&self) -> PatientState {
        *self.plant.patient().unwrap().state()
    }

    /// One trial from where the arm is to `goal`, ended with the RMS error as the runtime reports it.
    fn trial(&mut self, goal: &[f64; 4], robot: Robot4) -> Measures {
        let mut q0 = [0.0; 4];
        q0.copy_from_slice(self.plant.position());
        self.plant.patient_mut().unwrap().set_target(goal, MOVE).unwrap();
        let steps = ((MOVE + HOLD) / DT) as usize;
        let mut sq = [0.0; 4];
        let mut speed = Vec::with_capacity(steps);
        let mut cmd = JointCommand::zeros(4);
        for k in 0..steps {
            let t = k as f64 * DT;
            let (q_ref, v_ref) = minimum_jerk(&q0, goal, t);
            let q = self.plant.position().to_vec();
            let v = self.plant.velocity().to_vec();
            let g_robot = plexo_kinematics::gravity_torque(&self.robot, &mut self.robot_data, &q);
            for j in 0..4 {
                cmd.torque[j] = g_robot[j];
                sq[j] += (q_ref[j] - q[j]).powi(2);
            }
            match robot {
                Robot4::Transparent => {}
                Robot4::Guidance => {
                    let g = plexo_kinematics::gravity_torque(self.plant.model(), &mut self.loaded_data, &q);
                    for j in 0..4 {
                        cmd.torque[j] = g[j] + 300.0 * (q_ref[j] - q[j]) + 10.0 * (v_ref[j] - v[j]);
                    }
                }
                Robot4::Augment(k) => {
                    for j in 0..4 {
                        let kj = if j == 3 { 0.5 * k } else { k };
                        cmd.torque[j] += kj * (q[j] - q_ref[j]);
                    }
                }
            }
            self.plant.write(&cmd).unwrap();
            speed.push(v.iter().map(|x| x * x).sum::<f64>().sqrt());
        }
        let rms = (sq.iter().sum::<f64>() / steps as f64).sqrt();
        let final_error = self.plant.position().iter().zip(goal).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
        let patient = self.plant.patient_mut().unwrap();
        patient.end_trial(&TrialOutcome { error: rms, success: final_error < 0.1, duration: MOVE + HOLD }).unwrap();
        patient.clear_target();
        Measures { rms, final_error, peaks: peaks(&speed), sparc: sparc(&speed) }
    }

    /// `n` centre-out trials (out and back) under `robot`; the mean measures of the outward reaches.
    fn block(&mut self, n: usize, robot: Robot4) -> Measures {
        let mut sum = Measures::default();
        for k in 0..n {
            let m = self.trial(&TARGETS[k % TARGETS.len()], robot);
            self.trial(&HOME, robot);
            sum.rms += m.rms;
            sum.final_error += m.final_error;
            sum.peaks += m.peaks;
            sum.sparc += m.sparc;
        }
        let n = n as f64;
        Measures { rms: sum.rms / n, final_error: sum.final_error / n, peaks: sum.peaks / n, sparc: sum.sparc / n }
    }

    /// The unassisted probe block: every target once.
    fn probe(&mut self) -> Measures {
        self.block(TARGETS.len(), Robot4::Transparent)
    }

    /// The next session: a new plant with the saved state restored through the session state file's TOML table.
    fn next_session(&self, profile: PatientProfile) -> Course {
        let text = toml::to_string(&patient_state_to_table(&self.state())).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let mut next = Course::new(profile);
        next.plant.patient_mut().unwrap().restore(patient_state_from_table(&table).unwrap()).unwrap();
        next
    }
}

/// Local maxima of `speed` (smoothed over 100 ms, against tremor and noise) with 10 % (of the maximum)
/// hysteresis.
fn peaks(raw: &[f64]) -> f64 {
    let w = 100;
    let speed: Vec<f64> = (0..raw.len())
        .map(|k| raw[k.saturating_sub(w / 2)..(k + w / 2).min(raw.len())].iter().sum::<f64>() / w as f64)
        .collect();
    let max = speed.iter().cloned().fold(0.0, f64::max);
    let h = 0.1 * max;
    let (mut count, mut rising, mut extreme) = (0, true, 0.0_f64);
    for &s in &speed {
        if rising {
            if s > extreme {
                extreme = s;
            } else if s < extreme - h {
                count += 1;
                rising = false;
                extreme = s;
            }
        } else if s < extreme {
            extreme = s;
        } else if s > extreme + h {
            rising = true;
            extreme = s;
        }
    }
    if rising && extreme > h {
        count += 1;
    }
    count as f64
}

/// SPARC of a speed profile sampled at 1 kHz (Balasubramanian, Melendez-Calderon, Roby-Brami & Burdet 2015,
/// J NeuroEng Rehabil 12:112): arc length of the normalised magnitude spectrum up to the adaptive cut-off
/// (amplitude threshold 0.05, at most 10 Hz), zero padding to 4× the next power of two. Down-sampled to 100 Hz.
fn sparc(speed: &[f64]) -> f64 {
    let x: Vec<f64> = speed.iter().step_by(10).copied().collect();
    let fs = 100.0;
    let n = (x.len().next_power_of_two() * 4) as f64;
    let df = fs / n;
    let bins = (10.0 / df) as usize;
    let mag: Vec<f64> = (0..=bins)
        .map(|k| {
            let w = core::f64::consts::TAU * k as f64 / n;
            let (re, im) = x
                .iter()
                .enumerate()
                .fold((0.0, 0.0), |(re, im), (t, v)| (re + v * (w * t as f64).cos(), im - v * (w * t as f64).sin()));
            (re * re + im * im).sqrt()
        })
        .collect();
    let m0 = mag[0].max(1e-12);
    let m: Vec<f64> = mag.iter().map(|v| v / m0).collect();
    let cut = m.iter().rposition(|&v| v >= 0.05).unwrap_or(0).max(1);
    let fc = cut as f64 * df;
    -(1..=cut).map(|k| ((df / fc).powi(2) + (m[k] - m[k - 1]).powi(2)).sqrt()).sum::<f64>()
}

/// A patient not in the repository: a moderate-to-mild arm with its own strength, tone, seed and skill deficit.
fn constructed() -> PatientProfile {
    let mut p = profile("moderate");
    p.name = "constructed".into();
    p.seed = 9_176;
    p.tremor.amplitude = 0.06;
    p.learning.initial_capacity = 0.9;
    p.slacking.error_gain = 1.0;
    for (name, j) in p.joints.iter_mut() {
        j.max_torque *= if name.starts_with("shoulder") { 0.9 } else { 1.2 };
        j.passive_stiffness *= 0.8;
    }
    p.skill.aim_error = 0.35;
    p.skill.endpoint_bias = 0.12;
    p.skill.submovements = 3;
    p.skill.blend = 0.7;
    p.skill.motor_noise = 0.05;
    p
}

#[test]
fn practice_improves_the_unassisted_movement_and_the_improvement_persists_into_the_next_session() {
    let profile = constructed();
    let mut s1 = Course::new(profile.clone());
    let before = s1.probe();
    let skill0 = s1.state().skill();
    s1.block(150, Robot4::Transparent);
    let after = s1.probe();
    let end = s1.state();
    let mut s2 = s1.next_session(profile);
    assert_eq!(s2.state(), end, "the saved state reads back exactly");
    let next = s2.probe();
    let start2 = s2.state();
    println!("before {before:?} skill {skill0:.3}\nafter  {after:?} {end:?}\nnext   {next:?} {start2:?}");
    assert!(after.final_error < 0.7 * before.final_error, "final error {before:?} -> {after:?}");
    assert!(after.peaks < before.peaks, "speed peaks {before:?} -> {after:?}");
    assert!(after.sparc > before.sparc, "SPARC {before:?} -> {after:?}");
    // Next session: the slow process carries the improvement (the fast one decayed during the rest and is
    // re-learned in the probe).
    assert!(start2.model_slow > 0.99 * end.model_slow && end.model_slow > 0.2, "slow process {end:?} -> {start2:?}");
    assert!(next.final_error < 0.8 * before.final_error, "next-session probe error {before:?} -> {next:?}");
    assert!(next.peaks < before.peaks, "next-session speed peaks {before:?} -> {next:?}");
    assert!(next.sparc > before.sparc, "next-session SPARC {before:?} -> {next:?}");
}

/// Same seed, same course: the random parts (planning error, motor noise, tremor) are seeded.
#[test]
fn a_learning_course_is_deterministic() {
    let run = || {
        let mut c = Course::new(constructed());
        let m = c.block(6, Robot4::Transparent);
        (m.rms, m.final_error, c.state())
    };
    assert_eq!(run(), run());
}

/// Error augmentation enlarges the error the patient experiences and so drives its internal model faster than
/// plain practice; heavy guidance removes the error, the patient learns less (good during training, weaker
/// probe: the guidance effect, Marchal-Crespo & Reinkensmeyer 2009) and slacks.
#[test]
fn error_augmentation_learns_faster_than_plain_practice_and_guidance_learns_least() {
    for profile in [constructed(), profile("mild"), profile("moderate")] {
        let mut results = Vec::new();
        for robot in [Robot4::Transparent, Robot4::Augment(0.6), Robot4::Guidance] {
            let mut c = Course::new(profile.clone());
            let training = c.block(20, robot);
            let trained = c.state();
            let mut next = c.next_session(profile.clone());
            let probe = next.probe();
            println!("{} {robot:?}: training {training:?}\n  {trained:?}\n  probe {probe:?}", profile.name);
            results.push((training, trained, probe));
        }
        let [(plain_t, plain, plain_p), (ea_t, ea, ea_p), (guided_t, guided, guided_p)] = results[..] else {
            unreachable!()
        };
        let name = &profile.name;
        // A fixed negative stiffness enlarges the error by a patient-dependent gain (1.3–3× here).
        assert!(ea_t.rms > 1.2 * plain_t.rms, "{name}: augmentation enlarges the error {ea_t:?} vs {plain_t:?}");
        assert!(guided_t.rms < 0.5 * plain_t.rms, "{name}: guidance removes the error {guided_t:?}");
        assert!(ea.model_slow > plain.model_slow, "{name}: EA slow process {ea:?} vs plain {plain:?}");
        assert!(plain.model_slow > guided.model_slow, "{name}: plain {plain:?} vs guided {guided:?}");
        // Effort responds to the conditions (Emken et al. 2007): it slacks when the robot removes the error and
        // stays up when the error is there.
        assert!(guided.effort < 0.5, "{name}: guided effort {guided:?}");
        assert!(plain.effort > guided.effort + 0.3 && ea.effort >= plain.effort, "{name}: {plain:?} {ea:?}");
        // The next session's unassisted probe: augmentation at least as good as plain practice (the difference
        // is small after 20 trials: 1–7 % in final error here), guidance clearly worse: it learned little, it
        // slacked, and it learned to expect the robot to carry its arm — effort and expected support carry into
        // the next session.
        assert!(ea_p.final_error < plain_p.final_error, "{name}: probe after EA {ea_p:?} vs plain {plain_p:?}");
        assert!(ea_p.rms < plain_p.rms, "{name}: probe after EA {ea_p:?} vs plain {plain_p:?}");
        assert!(guided_p.final_error > 1.5 * plain_p.final_error, "{name}: {guided_p:?} vs plain {plain_p:?}");
    }
}

/// Fatigue recovers during the rest between sessions (`fatigue.session_gap`, by the rest law
/// `dF/dt = −recovery_rate · F`), the fast process of the internal model decays, the slow one stays.
#[test]
fn fatigue_recovers_and_the_fast_process_decays_between_sessions() {
    for gap in [86_400.0, 30.0] {
        let mut profile = constructed();
        profile.fatigue.session_gap = gap;
        let mut s1 = Course::new(profile.clone());
        s1.block(20, Robot4::Transparent);
        let end = s1.state();
        assert!(end.fatigue > 0.02 && end.model_fast > 0.05, "a worked session leaves fatigue: {end:?}");
        let mut s2 = s1.next_session(profile.clone());
        assert_eq!(s2.state(), end, "restore reads back as saved; the rest comes with the session's first period");
        s2.plant.write(&JointCommand::zeros(4)).unwrap();
        let rested = s2.state();
        let r = profile.fatigue.recovery_rate;
        let expected = end.fatigue * (-r * gap).exp();
        // One period of the session has passed after the rest (fatigue integrates it too).
        assert!((rested.fatigue - expected).abs() < 1e-4, "gap {gap} s: fatigue {} vs {expected}", rested.fatigue);
        assert!((rested.model_fast - end.model_fast * (-gap / 60.0).exp()).abs() < 1e-12, "gap {gap}: {rested:?}");
        assert!(rested.model_slow <= end.model_slow && rested.model_slow > 0.98 * end.model_slow, "{rested:?}");
        assert_eq!((rested.capacity, rested.effort, rested.trials), (end.capacity, end.effort, end.trials));
    }
    // An explicit rest replaces the pending one; a bad time is refused by name.
    let mut c = Course::new(constructed());
    c.block(5, Robot4::Transparent);
    let tired = c.state();
    let p = c.plant.patient_mut().unwrap();
    p.restore(tired).unwrap();
    p.rest(0.0).unwrap();
    assert_eq!(*p.state(), tired, "no rest, no recovery");
    assert!(p.rest(f64::NAN).unwrap_err().to_string().contains("rest.seconds"));
}

/// A paralysed arm (every max_torque 0) exerts nothing and learns nothing, whatever the robot does to it; a
/// single paralysed joint of a working arm exerts nothing either.
#[test]
fn a_paralysed_arm_learns_nothing_and_exerts_nothing() {
    let mut profile = constructed();
    for j in profile.joints.values_mut() {
        j.max_torque = 0.0;
    }
    for robot in [Robot4::Transparent, Robot4::Augment(0.6), Robot4::Guidance] {
        let mut c = Course::new(profile.clone());
        let start = c.state();
        for k in 0..6 {
            c.trial(&TARGETS[k % 4], robot);
            let t = c.plant.patient().unwrap().torques();
            assert!((0..4).all(|j| t.voluntary[j] == 0.0 && t.active(j) == 0.0), "{robot:?}: {t:?}");
        }
        let end = c.state();
        assert_eq!((end.model_fast, end.model_slow, end.capacity), (0.0, 0.0, start.capacity), "{robot:?}: {end:?}");
        assert_eq!(c.plant.patient().unwrap().skill(), 0.0);
    }
    // One paralysed joint (the elbow) of an otherwise working arm.
    let mut profile = constructed();
    profile.joints.get_mut("elbow_flexion").unwrap().max_torque = 0.0;
    let mut c = Course::new(profile);
    let robot = c.robot.clone();
    let elbow = robot.joint_index("elbow_flexion").unwrap();
    for goal in TARGETS {
        c.plant.patient_mut().unwrap().set_target(&goal, MOVE).unwrap();
        let mut cmd = JointCommand::zeros(4);
        for _ in 0..((MOVE + HOLD) / DT) as usize {
            let g = plexo_kinematics::gravity_torque(&robot, &mut c.robot_data, c.plant.position());
            cmd.torque.copy_from_slice(g.as_slice());
            c.plant.write(&cmd).unwrap();
            let t = c.plant.patient().unwrap().torques();
            assert_eq!(t.voluntary[elbow], 0.0);
            assert_eq!(c.plant.patient().unwrap().capacity_torque(elbow), 0.0);
        }
        let p = c.plant.patient_mut().unwrap();
        p.end_trial(&TrialOutcome { error: 0.2, success: false, duration: MOVE + HOLD }).unwrap();
        p.clear_target();
    }
    assert!(c.state().model_slow > 0.0, "the working joints still learn the task");
}

/// A state saved before the internal model existed (no `model_fast`/`model_slow`) still loads, with an
/// untrained internal model; a bad internal-model value is refused by name.
#[test]
fn an_old_saved_state_loads_with_an_untrained_internal_model_and_bad_values_are_named() {
    let old: toml::Table =
        toml::from_str("capacity = 1.2\neffort = 0.8\nfatigue = 0.1\ntrials = 40\nsuccessful_trials = 30\n").unwrap();
    let state = patient_state_from_table(&old).unwrap();
    assert_eq!((state.model_fast, state.model_slow, state.skill()), (0.0, 0.0, 0.0));
    assert_eq!((state.capacity, state.trials), (1.2, 40));
    let json: PatientState =
        serde_json::from_str(r#"{"capacity":1.2,"effort":0.8,"fatigue":0.1,"trials":40,"successful_trials":30}"#)
            .unwrap();
    assert_eq!(json, state, "serde (the session state file) defaults the same way");
    let mut c = Course::new(constructed());
    c.plant.patient_mut().unwrap().restore(state).unwrap();
    for (field, value, named) in [
        ("model_fast", toml::Value::Float(1.5), "patient_state.model_fast"),
        ("model_slow", toml::Value::Float(-0.1), "patient_state.model_slow"),
        ("model_slow", toml::Value::String("high".into()), "patient_state.model_slow"),
    ] {
        let mut table = old.clone();
        table.insert(field.into(), value);
        let e = patient_state_from_table(&table).and_then(|s| c.plant.patient_mut().unwrap().restore(s)).unwrap_err();
        assert!(e.to_string().contains(named), "{field}: {e}");
    }
}

/// The skill deficits and their validation: a bad `[skill]` value is named with file, key and range.
#[test]
fn bad_skill_values_are_named_with_file_key_and_range() {
    type Break = fn(&mut PatientProfile);
    let cases: [(&str, Break); 4] = [
        ("skill.aim_error", |p| p.skill.aim_error = 2.0),
        ("skill.submovements", |p| p.skill.submovements = 9),
        ("skill.fast_rate", |p| p.skill.fast_rate = 0.5 * p.skill.slow_rate),
        ("fatigue.session_gap", |p| p.fatigue.session_gap = -1.0),
    ];
    for (key, break_it) in cases {
        let mut p = constructed();
        break_it(&mut p);
        let e = p.validate("c.toml").unwrap_err().to_string();
        assert!(e.contains("c.toml") && e.contains(key), "{key}: {e}");
    }
    // A profile without [skill] and without session_gap still parses: a skilled patient, a one-day gap.
    let text = plexo_sim::default_patient_toml("moderate").unwrap();
    let start = text.find("[skill]").unwrap();
    let end = start + text[start..].find("\n\n").unwrap();
    let stripped = format!("{}{}", &text[..start], &text[end..]).replace("session_gap = 86400.0", "");
    let p = PatientProfile::from_toml_str(&stripped, "old.toml").unwrap();
    assert_eq!(p.skill, plexo_sim::patient::SkillProfile::default());
    assert_eq!(p.fatigue.session_gap, 86_400.0);
}

/// The support the patient learned to expect (none: the robot carried only itself) is carried into the next
/// session, where a robot that holds the arm at rest does not make it expect support again.
#[test]
fn the_learned_expected_support_carries_into_the_next_session() {
    let mut s1 = Course::new(constructed());
    s1.block(4, Robot4::Transparent);
    let end = s1.state();
    let learned = end.expected_support.expect("saved at the trial end");
    assert_eq!(learned, s1.plant.patient().unwrap().expected_support());
    assert!(learned < 0.3, "unsupported practice: expected support {learned}");
    let mut s2 = s1.next_session(constructed());
    assert_eq!(s2.plant.patient().unwrap().expected_support(), learned);
    // Rest with the robot carrying the arm (guidance hold at HOME): a new patient would feel the support.
    let mut data = Data::new(s2.plant.model());
    let mut cmd = JointCommand::zeros(4);
    for _ in 0..1000 {
        let q = s2.plant.position().to_vec();
        let g = plexo_kinematics::gravity_torque(s2.plant.model(), &mut data, &q);
        for j in 0..4 {
            cmd.torque[j] = g[j] + 300.0 * (HOME[j] - q[j]) - 10.0 * s2.plant.velocity()[j];
        }
        s2.plant.write(&cmd).unwrap();
    }
    assert_eq!(s2.plant.patient().unwrap().expected_support(), learned, "the resumed patient does not re-probe");
    let table = patient_state_to_table(&end);
    assert_eq!(table.get("expected_support").and_then(toml::Value::as_float), Some(learned));
}
