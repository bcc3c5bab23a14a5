//! Patient-initiated movements (`onset_timeout` of a block): the reference waits at the start for the patient's
//! movement onset, then starts where the patient is on its way; a patient who does not start gets the robot's
//! movement after the wait. Scripted arm (no plant): the test moves the measured posture itself.

use plexo_controller::{AanLaw, BlockSpec, Mode, Protocol, Session, TaskReference};
use plexo_controller::{minimum_jerk_phase_of, minimum_jerk_profile};
use plexo_hal::{JointArray, JointState};
use plexo_testkit::rig::{elbow_block, elbow_protocol, urdf_rom};
use plexo_testkit::robots::{DT, HOME, arm4};

const MOVEMENT_TIME: f64 = 1.5;
const WAIT: f64 = 0.8;
const ELBOW: usize = 3;

fn session(onset_timeout: f64) -> Session {
    let block = BlockSpec {
        movement_time: MOVEMENT_TIME,
        trial_timeout: 4.0,
        onset_timeout,
        ..elbow_block(Mode::ActiveAssisted, AanLaw::Emken, 1)
    };
    let protocol = Protocol { name: "onset".into(), ..elbow_protocol(vec![block]) };
    let robot = arm4();
    Session::new(&protocol, &robot, &urdf_rom(&robot)).expect("session")
}

fn at(q: &JointArray<f64>) -> JointState {
    let mut s = JointState::zeros(4);
    s.position = *q;
    s
}

/// Steps `session` with the arm at HOME until the first trial has started; returns the start time [s].
fn start_first_trial(session: &mut Session) -> f64 {
    let home = JointArray::from_slice(&HOME).unwrap();
    let mut t = 0.0;
    while !session.is_moving() {
        session.step(&at(&home), t);
        t += DT;
        assert!(t < 5.0, "the first trial never started");
    }
    t - DT
}

/// The elbow's goal of the first trial and its distance from HOME [rad].
fn goal(session: &Session) -> (JointArray<f64>, f64) {
    let goal = session.blocks()[0].trial_targets[0];
    (goal, goal[ELBOW] - HOME[ELBOW])
}

#[test]
fn a_reference_that_waits_for_the_onset_holds_the_start_until_the_robot_starts_it_after_the_wait() {
    let mut s = session(WAIT);
    let cue = start_first_trial(&mut s);
    let home = JointArray::from_slice(&HOME).unwrap();
    let mut t = cue + DT;
    let mut first_motion = None;
    while t < cue + WAIT + 0.5 {
        let (r, _) = s.step(&at(&home), t);
        if r.phase > 0.0 && first_motion.is_none() {
            first_motion = Some(t);
        }
        if first_motion.is_none() {
            assert_eq!(
                r.position[ELBOW],
                HOME[ELBOW],
                "waiting at t = {:.3} s: the reference holds the start",
                t - cue
            );
            assert_eq!(r.velocity[ELBOW], 0.0);
        }
        t += DT;
    }
    let started = first_motion.expect("the robot starts the movement after the wait") - cue;
    assert!((started - WAIT).abs() <= 2.0 * DT + 1e-9, "started {started:.4} s after the cue, wait {WAIT} s");
}

#[test]
fn at_the_onset_the_reference_starts_where_the_patient_is_and_finishes_on_the_planned_time() {
    let mut s = session(WAIT);
    let cue = start_first_trial(&mut s);
    let (goal, distance) = goal(&s);
    // The patient starts 0.2 s after the cue along a minimum-jerk movement of the planned duration.
    let patient_start = 0.2;
    let patient = |t: f64| {
        let (frac, _, _) = minimum_jerk_profile(((t - cue - patient_start) / MOVEMENT_TIME).max(0.0));
        let mut q = JointArray::from_slice(&HOME).unwrap();
        q[ELBOW] += distance * frac;
        q
    };
    let mut t = cue + DT;
    let mut onset: Option<(f64, TaskReference)> = None;
    let mut worst_lead: f64 = 0.0;
    while t < cue + patient_start + MOVEMENT_TIME {
        let q = patient(t);
        let (r, _) = s.step(&at(&q), t);
        if onset.is_none() && r.phase > 0.0 {
            onset = Some((t, r));
        }
        if onset.is_some() {
            worst_lead = worst_lead.max((r.position[ELBOW] - q[ELBOW]).abs());
        }
        t += DT;
    }
    let (t_onset, r) = onset.expect("the patient's movement was detected");
    let moved = (patient(t_onset)[ELBOW] - HOME[ELBOW]).abs();
    assert!(moved >= plexo_controller::DEFAULT_ONSET_DISTANCE, "onset after {moved} rad of movement");
    assert!(t_onset - cue < WAIT, "detected before the wait ran out ({:.3} s)", t_onset - cue);
    assert!(
        (r.position[ELBOW] - patient(t_onset)[ELBOW]).abs() < 1e-3,
        "the reference starts where the patient is: {} vs {}",
        r.position[ELBOW],
        patient(t_onset)[ELBOW]
    );
    // Started on the patient's own clock, the reference neither leads nor lags it by more than a few ticks of
    // motion (a reference started at the cue would lead it by 0.2 s, ~0.05 rad at mid-movement here).
    let peak_step = 1.875 * distance.abs() / MOVEMENT_TIME * DT;
    assert!(worst_lead < 3.0 * peak_step + 1e-3, "reference − patient up to {worst_lead} rad");
    // It arrives when the patient does: at the cue + reaction + planned duration, to a few ticks.
    let arrive = cue + patient_start + MOVEMENT_TIME;
    let (r_end, _) = s.step(&at(&goal), arrive + 2.0 * DT);
    assert!((r_end.phase - 1.0).abs() < 1e-9, "arrived by the patient's planned end: phase {}", r_end.phase);
}

#[test]
fn without_a_wait_the_reference_starts_at_the_cue() {
    let mut s = session(0.0);
    let cue = start_first_trial(&mut s);
    let home = JointArray::from_slice(&HOME).unwrap();
    let (r, _) = s.step(&at(&home), cue + 0.3);
    assert!((r.phase - 0.3 / MOVEMENT_TIME).abs() < 1e-9, "phase {} after 0.3 s", r.phase);
}

#[test]
fn an_onset_wait_longer_than_the_timeout_leaves_is_refused_naming_the_key() {
    let block = BlockSpec {
        movement_time: MOVEMENT_TIME,
        trial_timeout: 2.0,
        onset_timeout: 1.0,
        ..elbow_block(Mode::ActiveAssisted, AanLaw::Emken, 1)
    };
    let protocol = Protocol { name: "onset".into(), ..elbow_protocol(vec![block]) };
    let text = toml::to_string(&protocol).unwrap();
    let err = Protocol::from_toml_str(&text, "p.toml").unwrap_err().to_string();
    assert!(err.contains("onset_timeout") && err.contains("p.toml"), "{err}");
}

#[test]
fn minimum_jerk_phase_of_inverts_the_position_profile() {
    for tau in [0.0, 0.01, 0.1, 0.25, 0.5, 0.8, 1.0] {
        let (s, _, _) = minimum_jerk_profile(tau);
        let back = minimum_jerk_phase_of(s);
        // The position is matched to rounding; the phase as far as the flat ends of the profile let it be.
        assert!((minimum_jerk_profile(back).0 - s).abs() < 1e-12, "tau {tau}: s({back}) vs {s}");
        assert!((back - tau).abs() < 1e-4, "tau {tau}: {back}");
    }
    assert_eq!(minimum_jerk_phase_of(-1.0), minimum_jerk_phase_of(0.0));
    assert!((minimum_jerk_phase_of(2.0) - 1.0).abs() < 1e-4, "clamped to the end");
    assert!(minimum_jerk_phase_of(f64::NAN) < 1e-9, "NaN: the start, never a NaN phase");
}
