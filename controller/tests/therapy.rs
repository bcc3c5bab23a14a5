//! Trial sequencing and per-trial adaptation through `Session` and `Therapy` on plexo-arm4, with a scripted arm
//! (no plant): dwell and timeout of a trial, exactly one adaptation per trial, resuming a saved state.

use plexo_controller::{
    AanLaw, BlockSpec, ControllerConfig, ControllerError, EmkenError, Mode, Protocol, REST_HOLD, Session, SessionEvent,
    Therapy, TherapyEvent, aan,
};
use plexo_hal::{JointArray, JointState};
use plexo_testkit::rig::{elbow_block as block, elbow_protocol as protocol, scripted_therapy, urdf_rom};
use plexo_testkit::robots::{DT, HOME, arm4};

fn state_at(q: &JointArray<f64>, t: f64) -> JointState {
    let mut s = JointState::zeros(4);
    s.position = *q;
    s.stamp = std::time::Duration::from_secs_f64(t);
    s
}

fn offset(q: &JointArray<f64>, joint: usize, by: f64) -> JointArray<f64> {
    let mut q = *q;
    q[joint] += by;
    q
}

/// Starts the first trial of a one-block session; returns the session, the trial's target and its start time.
fn first_trial() -> (Session, JointArray<f64>, f64) {
    let model = arm4();
    let mut session =
        Session::new(&protocol(vec![block(Mode::Passive, AanLaw::Fixed, 1)]), &model, &urdf_rom(&model)).unwrap();
    let home = JointArray::from_slice(&HOME).unwrap();
    let mut t = 0.0;
    loop {
        let (_, event) = session.step(&state_at(&home, t), t);
        if let SessionEvent::TrialStarted { block: 0, trial: 0 } = event {
            let target = session.blocks()[0].trial_targets[0];
            return (session, target, t);
        }
        t += DT;
        assert!(t < 5.0, "no trial started");
    }
}

/// Steps the session from `t` while the arm is at `q`, for `duration` [s]; returns the first trial end (with its
/// time) if one happens, and the time reached.
fn hold_at(session: &mut Session, q: &JointArray<f64>, t: &mut f64, duration: f64) -> Option<(bool, f64, f64)> {
    let end = *t + duration;
    while *t < end - 1e-9 {
        *t += DT;
        if let (_, SessionEvent::TrialEnded { reached, duration, .. }) = session.step(&state_at(q, *t), *t) {
            return Some((reached, duration, *t));
        }
    }
    None
}

#[test]
fn leaving_the_tolerance_restarts_the_dwell() {
    let (mut session, target, start) = first_trial();
    let spec = session.blocks()[0].spec.clone();
    let mut t = start;
    let inside = offset(&target, 3, 0.8 * spec.tolerance);
    let outside = offset(&target, 3, 1.5 * spec.tolerance);
    // In the tolerance for less than the dwell, out, then in again: the dwell starts over.
    assert_eq!(hold_at(&mut session, &inside, &mut t, 0.8 * spec.dwell), None, "dwell not complete yet");
    assert_eq!(hold_at(&mut session, &outside, &mut t, 0.1), None, "left the tolerance");
    let back = t + DT;
    assert_eq!(
        hold_at(&mut session, &inside, &mut t, spec.dwell - 0.01),
        None,
        "0.8 + 0.97 dwell inside in total, but not in one stretch: no end"
    );
    let (reached, duration, end) = hold_at(&mut session, &inside, &mut t, 0.1).expect("the trial ends");
    assert!(reached, "target reached");
    assert!(
        (end - back - spec.dwell).abs() < 1.5 * DT,
        "ends one dwell ({}) after re-entering: {end} vs {back}",
        spec.dwell
    );
    assert!((duration - (end - start)).abs() < 1e-9, "duration from the trial start");
}

#[test]
fn staying_in_the_tolerance_for_the_dwell_ends_the_trial_as_reached() {
    let (mut session, target, start) = first_trial();
    let spec = session.blocks()[0].spec.clone();
    let mut t = start;
    // The arm gets there 0.5 s into the trial.
    assert_eq!(hold_at(&mut session, &offset(&target, 3, 0.3), &mut t, 0.5), None);
    let arrived = t + DT;
    let (reached, _, end) = hold_at(&mut session, &target, &mut t, 2.0).expect("the trial ends");
    assert!(reached);
    assert!(
        (end - arrived - spec.dwell).abs() < 1.5 * DT,
        "ends {} s after arriving, dwell {}",
        end - arrived,
        spec.dwell
    );
}

#[test]
fn a_trial_that_never_reaches_the_target_ends_at_the_timeout_as_failed() {
    let (mut session, target, start) = first_trial();
    let spec = session.blocks()[0].spec.clone();
    let mut t = start;
    // Hovering just outside the tolerance for the whole trial.
    let near = offset(&target, 3, 1.2 * spec.tolerance);
    let (reached, duration, end) = hold_at(&mut session, &near, &mut t, spec.trial_timeout + 1.0).expect("timeout");
    assert!(!reached, "not reached");
    assert!((duration - spec.trial_timeout).abs() < 1.5 * DT, "ends at the timeout: {duration} s");
    assert!((end - start - spec.trial_timeout).abs() < 1.5 * DT);
    // The next trial follows after the inter-trial rest.
    let mut next = None;
    while t < end + spec.inter_trial_rest + 0.1 {
        t += DT;
        if let (_, SessionEvent::TrialStarted { trial, .. }) = session.step(&state_at(&near, t), t) {
            next = Some((trial, t));
            break;
        }
    }
    let (trial, at) = next.expect("second trial");
    assert_eq!(trial, 1);
    assert!((at - end - spec.inter_trial_rest).abs() < 1.5 * DT, "after the rest: {}", at - end);
}

fn therapy(blocks: Vec<BlockSpec>) -> Therapy {
    scripted_therapy(&protocol(blocks), &ControllerConfig::default_config().unwrap())
}

/// Regression: at each trial start `Therapy` switched to the block's mode and then called `end_trial` to discard
/// the rest period's statistics — which, in an Emken block, ran an extra Emken update on the rest data (forgetting
/// ≈ f² per trial instead of f) and counted the trial twice. Each trial must adapt exactly once, on its own ticks,
/// and rests must adapt nothing.
#[test]
fn regression_therapy_adapted_emken_twice_per_trial() {
    // The tracking error is a function of the trial's RMS error, which the record carries.
    let mut cfg = ControllerConfig::default_config().unwrap();
    cfg.aan.emken.error = EmkenError::Tracking;
    let mut therapy = scripted_therapy(&protocol(vec![block(Mode::ActiveAssisted, AanLaw::Emken, 3)]), &cfg);
    let emken = therapy.controller().config().aan.emken.clone();
    let home = JointArray::from_slice(&HOME).unwrap();
    let mut state = state_at(&home, 0.0);
    therapy.start(&state);
    let mut t = 0.0;
    let mut k_before_trial = therapy.controller().adaptation().emken_stiffness;
    let mut k_last = k_before_trial;
    let mut trials_before = therapy.controller().adaptation().trials;
    let (mut moving_ticks, mut ended, mut adapted) = (0u64, 0, 0);
    while ended < 6 {
        t += DT;
        state.stamp = std::time::Duration::from_secs_f64(t);
        let (_, event) = therapy.update(&state, t);
        let k_now = therapy.controller().adaptation().emken_stiffness;
        match event {
            TherapyEvent::TrialStarted { .. } => {
                assert_eq!(k_now, k_last, "a trial start adapts nothing (the rest data is discarded)");
                assert_eq!(therapy.controller().adaptation().trials, trials_before);
                k_before_trial = k_now;
                moving_ticks = 1;
            }
            TherapyEvent::TrialEnded(record) => {
                ended += 1;
                // Exactly one Emken update, from the trial's own RMS error.
                let mut expected = k_before_trial;
                aan::emken_update(&mut expected[..4], &record.metrics.rms_error, &emken);
                for j in 0..4 {
                    assert!(
                        (k_now[j] - expected[j]).abs() < 1e-12,
                        "trial {ended} joint {j}: {} vs {}",
                        k_now[j],
                        expected[j]
                    );
                }
                adapted += usize::from(k_now != k_before_trial);
                assert_eq!(record.metrics.ticks, moving_ticks, "the metrics cover the trial's own ticks");
                assert_eq!(therapy.controller().adaptation().trials, trials_before + 1, "counted once");
                trials_before += 1;
            }
            TherapyEvent::SessionEnded => break,
            _ => {
                if therapy.session().is_moving() {
                    moving_ticks += 1;
                } else {
                    assert_eq!(k_now, k_last, "rests adapt nothing");
                    assert_eq!(therapy.controller().mode(), REST_HOLD);
                }
            }
        }
        k_last = k_now;
        // The arm lags the reference by ~0.1 s, so the trials have errors above the deadband.
        let target = therapy.controller().reference().position;
        for j in 0..4 {
            let step = 0.01 * (target[j] - state.position[j]);
            state.position[j] += step;
            state.velocity[j] = step / DT;
        }
    }
    assert_eq!(ended, 6);
    assert!(adapted >= 3, "the error grew the stiffness in most trials ({adapted} of 6 changed it)");
}

/// Runs the first trial of a one-block Emken session (default configuration: the task error) with the scripted
/// arm either held at home or following the reference; returns the stiffness before and after the trial, the
/// trial's target and the reach tolerance.
fn emken_task_trial(cfg: &ControllerConfig, follow_reference: bool) -> ([f64; 4], [f64; 4], JointArray<f64>, f64) {
    emken_task_trial_off_by(cfg, follow_reference, 0.0)
}

/// [`emken_task_trial`] with the following arm `elbow_offset` [rad] off the reference at the elbow.
fn emken_task_trial_off_by(
    cfg: &ControllerConfig,
    follow_reference: bool,
    elbow_offset: f64,
) -> ([f64; 4], [f64; 4], JointArray<f64>, f64) {
    let mut therapy = scripted_therapy(&protocol(vec![block(Mode::ActiveAssisted, AanLaw::Emken, 1)]), cfg);
    let home = JointArray::from_slice(&HOME).unwrap();
    let mut state = state_at(&home, 0.0);
    therapy.start(&state);
    let mut t = 0.0;
    let mut before = None;
    loop {
        t += DT;
        state.stamp = std::time::Duration::from_secs_f64(t);
        let (_, event) = therapy.update(&state, t);
        let k = therapy.controller().adaptation().emken_stiffness;
        match event {
            TherapyEvent::TrialStarted { .. } => before = Some(k),
            TherapyEvent::TrialEnded(record) => {
                let spec = &therapy.session().blocks()[0];
                let target = spec.trial_targets[0];
                let tolerance = spec.spec.tolerance;
                assert_eq!(record.reached, follow_reference, "reached only when following");
                let before = before.expect("the trial started");
                return (before[..4].try_into().unwrap(), k[..4].try_into().unwrap(), target, tolerance);
            }
            _ => {}
        }
        if follow_reference && therapy.session().is_moving() {
            state.position = therapy.controller().reference().position;
            state.position[3] += elbow_offset;
        }
        assert!(t < 20.0, "the trial never ended");
    }
}

/// The task-error Emken law ([`EmkenError::Task`], the default) adapts on how far from the target the arm is when
/// the reference arrives: with a deadband of half the tolerance an arm that follows the reference onto the target
/// gets only forgetting; an arm that stays at home fails the trial and gets stiffness in proportion to its whole
/// distance (a failure is never inside the deadband).
#[test]
fn emken_task_error_adapts_on_the_distance_from_the_target_when_the_reference_arrives() {
    let mut cfg = ControllerConfig::default_config().unwrap();
    assert_eq!(cfg.aan.emken.error, EmkenError::Task);
    cfg.aan.emken.deadband_fraction = 0.5;
    let emken = &cfg.aan.emken;
    let (before, after, _, _) = emken_task_trial(&cfg, true);
    for j in 0..4 {
        assert!((after[j] - emken.forgetting * before[j]).abs() < 1e-9, "joint {j}: {after:?} from {before:?}");
    }
    let (before, after, target, _) = emken_task_trial(&cfg, false);
    let home = JointArray::from_slice(&HOME).unwrap();
    let error: Vec<f64> = (0..4).map(|j| target[j] - home[j]).collect();
    let mut excess = [0.0; 4];
    aan::emken_task_error(&error, &error, 0.0, &mut excess);
    assert!(excess.iter().any(|&x| x > 0.1), "the elbow target is far from home: {excess:?}");
    let mut expected = before;
    aan::emken_update_excess(&mut expected, &excess, emken);
    for j in 0..4 {
        assert!((after[j] - expected[j]).abs() < 1e-9, "joint {j}: {} vs {}", after[j], expected[j]);
    }
    assert!(after[3] > before[3], "the elbow, which missed its target, is stiffened");
}
/// With `deadband_follows_window`, an arm that arrives inside the window of free movement (where the law applies no
/// torque) and reaches its target gets only forgetting: an error the law leaves to the patient does not stiffen
/// it either. Without it, the same arrival error stiffens the law.
#[test]
fn an_arrival_error_inside_the_window_stiffens_the_emken_law_only_when_the_deadband_does_not_follow_the_window() {
    let mut cfg = ControllerConfig::default_config().unwrap();
    cfg.aan.emken.deadband_fraction = 0.0;
    let tolerance = 0.05; // [rad] the scripted block's tolerance (checked below)
    let window = aan::emken_window_half_width(&cfg.aan.emken, 1.0, tolerance);
    assert!(window > 0.01, "the shipped window at full help: {window} rad");
    let offset = 0.7 * window; // inside the window, so within the tolerance too: the trial succeeds
    cfg.aan.emken.deadband_follows_window = true;
    let (before, after, _, block_tolerance) = emken_task_trial_off_by(&cfg, true, offset);
    assert_eq!(block_tolerance, tolerance);
    for j in 0..4 {
        assert!((after[j] - cfg.aan.emken.forgetting * before[j]).abs() < 1e-9, "joint {j}: {after:?} from {before:?}");
    }
    cfg.aan.emken.deadband_follows_window = false;
    let (before, after, _, _) = emken_task_trial_off_by(&cfg, true, offset);
    assert!(
        after[3] > cfg.aan.emken.forgetting * before[3] + 1.0,
        "without it the elbow's arrival error stiffens the law: {} from {}",
        after[3],
        before[3]
    );
}

#[test]
fn resume_is_only_allowed_before_the_session_starts() {
    let mut therapy = therapy(vec![block(Mode::Passive, AanLaw::Fixed, 1)]);
    let saved = therapy.adaptation_state();
    assert_eq!(&saved, therapy.controller().adaptation());
    let home = JointArray::from_slice(&HOME).unwrap();
    therapy.resume_from(saved.clone()).unwrap();
    therapy.update(&state_at(&home, 0.0), 0.0);
    let err = therapy.resume_from(saved).unwrap_err();
    assert!(matches!(err, ControllerError::InvalidRequest { .. }), "{err}");
    assert!(err.to_string().contains("already started"), "{err}");
}

#[test]
fn a_home_by_joint_name_serves_robots_with_more_joints_and_the_joints_it_leaves_out_are_held_at_neutral() {
    // Regression (issue 13 §4): the embedded center-out protocol's 4-value home refused plexo-arm6 ("need 6
    // values"). A home by joint name fits both robots; on arm6 the forearm and wrist stay at 0 rad in every
    // center-out target (the inverse kinematics may not use them).
    let protocol = Protocol::default_protocol("center-out").unwrap();
    let arm4 = arm4();
    let four = Session::new(&protocol, &arm4, &urdf_rom(&arm4)).unwrap();
    let model = plexo_testkit::robots::arm6();
    let six = Session::new(&protocol, &model, &urdf_rom(&model)).unwrap();
    let (pronation, wrist) =
        (model.joint_index("forearm_pronation").unwrap(), model.joint_index("wrist_flexion").unwrap());
    for block in six.blocks() {
        assert!(!block.trial_targets.is_empty(), "{}", block.spec.name);
        for target in &block.trial_targets {
            assert_eq!((target[pronation], target[wrist]), (0.0, 0.0), "{}: {target:?}", block.spec.name);
        }
    }
    // The shoulder and elbow return to the same centre (every second center-out target is the home).
    let centre = |s: &Session| s.blocks()[0].trial_targets[1];
    for j in 0..4 {
        assert!(
            (centre(&four)[j] - centre(&six)[j]).abs() < 1e-12,
            "joint {j}: {:?} / {:?}",
            centre(&four),
            centre(&six)
        );
    }
    // A name that is not a joint of the robot is refused, naming it.
    let text = plexo_controller::default_protocol_toml("center-out")
        .unwrap()
        .replace("shoulder_rotation = 0.0", "shoulder_rot = 0.0");
    let typo = Protocol::from_toml_str(&text, "typo.toml").unwrap();
    let err = Session::new(&typo, &arm4, &urdf_rom(&arm4)).unwrap_err().to_string();
    assert!(err.contains("shoulder_rot") && err.contains("not a joint"), "{err}");
    // A list of the wrong length says how many values and which joints.
    let text = plexo_controller::default_protocol_toml("center-out").unwrap().replacen(
        "home = { shoulder_abduction = 0.25, shoulder_flexion = 0.6, shoulder_rotation = 0.0, elbow_flexion = 1.3 }",
        "home = [0.25, 0.6, 0.0, 1.3]",
        2,
    );
    let listed = Protocol::from_toml_str(&text, "listed.toml").unwrap();
    assert!(Session::new(&listed, &arm4, &urdf_rom(&arm4)).is_ok());
    let err = Session::new(&listed, &model, &urdf_rom(&model)).unwrap_err().to_string();
    assert!(err.contains("need 6 values") && err.contains("wrist_flexion"), "{err}");
}

/// A block start after a block with more weight support hands the load over in steps: each trial's support is
/// withdrawn by at most `gravity.support_withdraw_step` from the trial before (added support acts at once), and the
/// arm-weight support adapts (`aan.support`) only on trials run at the support it set. Regression (EFFICACY.md,
/// safety stops): the first tunnel-law trial after the full-support warm-up lost 70 % of the support in 0.35 s and
/// the forearm fell to the velocity stop.
#[test]
fn weight_support_is_withdrawn_in_steps_at_a_block_start_and_adapts_only_at_its_setting() {
    let full = block(Mode::Passive, AanLaw::Fixed, 1);
    let assisted = BlockSpec { arm_support: 0.3, ..block(Mode::ActiveAssisted, AanLaw::Emken, 3) };
    let back = block(Mode::Passive, AanLaw::Fixed, 1);
    // The session's first trial starts at its block's setting (no step from the controller's initial support).
    let first = BlockSpec { arm_support: 0.2, ..block(Mode::Passive, AanLaw::Fixed, 1) };
    let mut probe = scripted_therapy(&protocol(vec![first]), &ControllerConfig::default_config().unwrap());
    let home = JointArray::from_slice(&HOME).unwrap();
    let mut state = state_at(&home, 0.0);
    probe.start(&state);
    let mut t = 0.0;
    loop {
        t += DT;
        state.stamp = std::time::Duration::from_secs_f64(t);
        if let (_, TherapyEvent::TrialStarted { .. }) = probe.update(&state, t) {
            assert_eq!(probe.controller().mode().arm_support, 0.2, "the first trial at its block's setting");
            break;
        }
        assert!(t < 60.0, "a trial starts");
    }
    let mut therapy =
        scripted_therapy(&protocol(vec![full, assisted, back]), &ControllerConfig::default_config().unwrap());
    let step = therapy.controller().config().gravity.support_withdraw_step;
    let home = JointArray::from_slice(&HOME).unwrap();
    let mut state = state_at(&home, 0.0);
    therapy.start(&state);
    let mut t = 0.0;
    let mut supports: Vec<(usize, f64, Option<f64>)> = Vec::new();
    loop {
        t += DT;
        state.stamp = std::time::Duration::from_secs_f64(t);
        let (_, event) = therapy.update(&state, t);
        match event {
            TherapyEvent::TrialStarted { block, .. } => {
                supports.push((block, therapy.controller().mode().arm_support, None));
            }
            TherapyEvent::TrialEnded(_) => {
                supports.last_mut().unwrap().2 = therapy.controller().adaptation().arm_support;
            }
            TherapyEvent::SessionEnded => break,
            _ => {}
        }
        // The arm follows the reference closely (a strong patient).
        let target = therapy.controller().reference().position;
        for j in 0..4 {
            state.position[j] += 0.2 * (target[j] - state.position[j]);
        }
        assert!(t < 300.0, "the session ends");
    }
    let assisted: Vec<_> = supports.iter().filter(|s| s.0 == 1).collect();
    let expected = [1.0 - step, 1.0 - 2.0 * step, 0.3];
    for (k, want) in expected.iter().enumerate() {
        assert!((assisted[k].1 - want).abs() < 1e-12, "trial {k}: support {} vs {want}", assisted[k].1);
    }
    assert!(assisted[..2].iter().all(|s| s.2.is_none()), "no adaptation while still withdrawing: {assisted:?}");
    assert!(assisted[2].2.is_some(), "the first trial at the setting adapts: {assisted:?}");
    for pair in assisted.windows(2) {
        assert!(pair[0].1 - pair[1].1 <= step + 1e-12, "withdrawn by more than a step: {pair:?}");
    }
    let last_block: Vec<_> = supports.iter().filter(|s| s.0 == 2).collect();
    assert_eq!(last_block[0].1, 1.0, "added support acts at once");
}
