//! Closed loop on plexo-sim's `ArticulatedPlant` with the virtual patient, as the runtime runs it
//! (`read → Therapy/Controller → SafetySupervisor → write`): a safe stop on bad input holds the arm, and a second
//! session resumed from the first one's saved adaptation state starts where the first one ended.
//!
//! `cargo test -p plexo-controller --test closed_loop_sessions -- --nocapture` prints the measured figures.

// Per-joint index loops mirror the equations over several arrays at once.
#![allow(clippy::needless_range_loop)]

use std::time::Duration;

use plexo_controller::{
    AdaptationState, BlockSpec, ControllerConfig, ModeSettings, Protocol, SafetyOutcome, Session, StopReason,
    TaskReference, Therapy, TherapyEvent,
};
use plexo_hal::{JointArray, Robot};
use plexo_sim::{PatientState, SimulatedPlant};
use plexo_testkit::rig::{ClosedLoop, patient_plays_trial, sim_actuator_config};
use plexo_testkit::robots::DT;

/// The moderate or given patient resting with the drives off, then enabled (soft start, hold) and moved passively
/// to the home posture of the center-out task, every tick of the move Active.
fn at_home(patient: &str, cfg: &ControllerConfig, patient_state: Option<PatientState>) -> ClosedLoop {
    let mut rig = ClosedLoop::resting(patient, cfg, patient_state);
    rig.enable();
    rig.controller.set_mode(ModeSettings::passive()).unwrap();
    let to_home = rig.to_home();
    for k in 0..3500 {
        let outcome = rig.step(&to_home.sample(k as f64 * DT));
        assert!(matches!(outcome, SafetyOutcome::Active { .. }), "{outcome:?}");
    }
    rig
}

/// Regression: a NaN in the reference made the controller report a zero hold torque, so the category-2 stop only
/// damped: the arm sank, missed the standstill and dropped with torque off after the safe-stop timeout — although
/// the measured state was valid and gravity could be held. The stop must hold the arm.
#[test]
fn nan_reference_stops_with_the_arm_held_instead_of_dropped() {
    let cfg = sim_actuator_config();
    let mut rig = at_home("moderate", &cfg, None);
    let held_at = JointArray::from_slice(rig.plant.position()).unwrap();
    let mut bad = TaskReference::hold(&held_at);
    bad.position[1] = f64::NAN;
    let timeout = cfg.safety.safe_stop_timeout;
    let ticks = ((timeout + 3.0) / DT) as usize;
    let mut max_sink: f64 = 0.0;
    let mut last_outcome = SafetyOutcome::Disabled;
    let mut standstill_at = None;
    for k in 0..ticks {
        let outcome = rig.step(&bad);
        assert!(
            matches!(outcome, SafetyOutcome::SafeStop { reason: StopReason::NonFiniteController, .. }),
            "tick {k}: {outcome:?}"
        );
        if let SafetyOutcome::SafeStop { standstill: true, .. } = outcome {
            standstill_at.get_or_insert(k as f64 * DT);
        }
        let q = rig.plant.position();
        max_sink = (0..4).fold(max_sink, |m, j| m.max((q[j] - held_at[j]).abs()));
        last_outcome = outcome;
    }
    let final_speed = rig.plant.velocity().iter().fold(0.0f64, |m, v| m.max(v.abs()));
    println!(
        "NaN reference: safe stop held for {:.1} s, standstill after {:?} s, max joint deviation {max_sink:.4} rad, \
         final speed {final_speed:.4} rad/s",
        ticks as f64 * DT,
        standstill_at
    );
    assert!(matches!(last_outcome, SafetyOutcome::SafeStop { standstill: true, .. }), "{last_outcome:?}");
    assert!(standstill_at.is_some_and(|t| t < timeout), "standstill within the safe-stop timeout");
    // The stop holds the posture with a spring (safe operating stop): the arm settles where the spring balances
    // the patient's passive tissue (≈ 1 Nm / 30 Nm/rad ≈ 0.035 rad for the moderate profile), then stands still.
    assert!(max_sink < 0.05, "the arm moved {max_sink} rad during the stop (sinking)");
    assert!(final_speed < cfg.safety.standstill_velocity);
}

/// A short assist-as-needed session: one Emken block of center-out reaches (4 targets, out and back) with the
/// progression rule.
fn short_protocol() -> Protocol {
    let mut p = Protocol::default_protocol("center-out").unwrap();
    p.target_sets[0].count = Some(4);
    let mut block: BlockSpec = p.blocks[1].clone();
    block.repetitions = 1;
    block.rest_after = 1.0;
    p.blocks = vec![block];
    p
}

/// What a session's first trial ran with.
#[derive(Debug)]
struct FirstTrial {
    /// Assistance stiffness in force during the first trial [Nm/rad] (`Controller::assist_stiffness`).
    stiffness: JointArray<f64>,
    /// Planned movement duration of the first trial [s], from the reference's phase.
    duration: f64,
}

/// Runs `protocol` through `Therapy` on `rig`'s plant with the patient aiming at each trial's target; returns
/// what the first trial ran with, the final adaptation state and the patient's state at the end.
fn run_session(
    rig: ClosedLoop,
    protocol: &Protocol,
    resume: Option<AdaptationState>,
) -> (FirstTrial, AdaptationState, PatientState) {
    let ClosedLoop { robot, mut plant, controller, mut supervisor, mut state, rom, .. } = rig;
    let session = Session::new(protocol, &robot, &rom).unwrap();
    let mut therapy = Therapy::new(session, controller);
    if let Some(saved) = resume {
        let clamped = therapy.resume_from(saved.clone()).unwrap();
        assert!(clamped.is_empty(), "same configuration: nothing clamped ({clamped:?})");
        assert_eq!(therapy.controller().adaptation(), &saved, "resumed exactly");
    }
    plant.read(&mut state).unwrap();
    therapy.start(&state);
    let mut t = 0.0;
    let mut first: Option<FirstTrial> = None;
    let mut trial_start = None;
    loop {
        plant.read(&mut state).unwrap();
        let (mut cmd, event) = therapy.update(&state, t);
        let outcome =
            supervisor.apply(&state, therapy.controller().report(), &mut cmd, Duration::from_secs(1) + state.stamp);
        assert!(matches!(outcome, SafetyOutcome::Active { .. }), "t = {t}: {outcome:?}");
        patient_plays_trial(&therapy, &mut plant, &event);
        match event {
            TherapyEvent::TrialStarted { .. } => {
                trial_start.get_or_insert(t);
            }
            TherapyEvent::SessionEnded => break,
            _ => {}
        }
        // Half a second into the first trial: what is it running with?
        if let Some(start) = trial_start
            && first.is_none()
            && t - start >= 0.5 - 1e-9
        {
            let phase = therapy.controller().reference().phase;
            first =
                Some(FirstTrial { stiffness: therapy.controller().assist_stiffness(), duration: (t - start) / phase });
        }
        plant.write(&cmd).unwrap();
        t += DT;
        assert!(t < 200.0, "session did not end");
    }
    let patient = *plant.patient().unwrap().state();
    (first.expect("a trial ran"), therapy.adaptation_state(), patient)
}

/// Session 2 resumed from session 1's saved adaptation state (through a file, as the app saves it) starts with
/// session 1's final assistance and movement duration; a session without the saved state starts from the
/// configured defaults.
#[test]
fn second_session_resumes_the_first_sessions_assistance() {
    let mut cfg = sim_actuator_config();
    // Progression thresholds at zero make every block count as a success ("harder"), so the Krebs scales
    // certainly change in session 1 and their carry-over is tested, whatever the patient's success rate.
    cfg.aan.progression.success_low = 0.0;
    cfg.aan.progression.success_high = 0.0;
    // A withdrawal every 2 trials and an assistance floor one withdrawal away: help reaches its floor first, then
    // the movement is shortened (the progression's order), so both scales change within the 8 trials.
    cfg.aan.progression.window = 2;
    cfg.aan.progression.rescue_window = 2;
    cfg.aan.progression.assistance_min = 0.9;
    // A movement that may be sped up past its prescription (the shipped floor is 1: never faster).
    cfg.aan.progression.duration_min = 0.6;
    let protocol = short_protocol();
    let (first_1, saved, patient) = run_session(at_home("moderate", &cfg, None), &protocol, None);
    let defaults = AdaptationState::new(4, &cfg.aan);
    println!(
        "session 1: first trial stiffness {:?} Nm/rad, final Emken stiffness {:?} Nm/rad, assistance scale {:.3}, \
         duration scale {:.3}, {} adaptive trials",
        first_1.stiffness,
        &saved.emken_stiffness[..4],
        saved.assistance_scale,
        saved.duration_scale,
        saved.trials
    );
    for j in 0..4 {
        assert!((first_1.stiffness[j] - cfg.aan.emken.initial).abs() < 1e-12, "session 1 starts at the default");
    }
    assert!((first_1.duration - protocol.blocks[0].movement_time).abs() < 0.01, "{}", first_1.duration);
    assert_eq!(saved.trials, 8, "8 adaptive trials");
    assert_eq!(saved.blocks, 1);
    assert!(saved.emken_stiffness[..4] != defaults.emken_stiffness[..4], "session 1 adapted the stiffness");
    assert!(saved.assistance_scale < 1.0 && saved.duration_scale < 1.0, "session 1 progressed (harder)");

    // Save and load as the app does between sessions.
    let path = std::env::temp_dir().join(format!("plexo-adaptation-{}.toml", std::process::id()));
    saved.save(&path).unwrap();
    let loaded = AdaptationState::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded, saved, "the file round-trips exactly");

    let (first_2, _, _) = run_session(at_home("moderate", &cfg, Some(patient)), &protocol, Some(loaded));
    println!(
        "session 2 (resumed): first trial stiffness {:?} Nm/rad, movement {:.3} s",
        first_2.stiffness, first_2.duration
    );
    for j in 0..4 {
        let expected = saved.assistance_scale * saved.emken_stiffness[j];
        assert!(
            (first_2.stiffness[j] - expected).abs() < 1e-9,
            "joint {j}: session 2 starts with {} Nm/rad, session 1 ended with {expected}",
            first_2.stiffness[j]
        );
    }
    let expected_duration = protocol.blocks[0].movement_time * saved.duration_scale;
    assert!((first_2.duration - expected_duration).abs() < 0.01, "{} vs {expected_duration}", first_2.duration);

    // Control: the same second session without the saved state starts from the defaults.
    let (fresh, _, _) = run_session(at_home("moderate", &cfg, Some(patient)), &protocol, None);
    for j in 0..4 {
        assert!((fresh.stiffness[j] - cfg.aan.emken.initial).abs() < 1e-12);
    }
    assert!((fresh.duration - protocol.blocks[0].movement_time).abs() < 0.01);
}
