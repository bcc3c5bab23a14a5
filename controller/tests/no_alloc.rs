//! Allocation-freedom of the tick, proven with a counting global allocator:
//!
//! 1. every mode and law (passive joint and Cartesian, AAN fixed / Emken per trial / Emken continuous / RBF /
//!    tunnel, transparent, resistive with its elastic term, error augmentation with an offset) driven directly
//!    through `Controller::update` + `SafetySupervisor::apply`, with trial ends and block ends, and each counted
//!    window checked to have really run that mode (settings in force, non-zero mode torque, supervisor Active);
//! 2. the same modes as one block each of a protocol run through `Therapy` (session sequencing, rest holds, trial
//!    and block transitions, per-trial and per-block adaptation), each block checked to have run its own mode.

use std::time::Duration;

use plexo_controller::{
    AanLaw, BlockPerformance, BlockSpec, Controller, ControllerConfig, MinimumJerk, Mode, ModeSettings, Protocol,
    SafetyOutcome, SafetySupervisor, Session, Space, Therapy, TherapyEvent,
};
use plexo_hal::{JointArray, JointInfo, JointState};
use plexo_kinematics::anthropometrics::ArmAnthropometrics;
use plexo_testkit::allocations;
use plexo_testkit::rig::{elbow_rom_targets, urdf_rom};
use plexo_testkit::robots::{DT, HOME, arm4};

plexo_testkit::install_counting_allocator!();

/// The default configuration with every optional term switched on, so that each counted window runs all of a
/// mode's code: resistive elastic term, error-augmentation offset, friction compensation.
fn config(continuous_emken: bool) -> ControllerConfig {
    let mut config = ControllerConfig::default_config().unwrap();
    config.safety.soft_start_time = 0.1; // the shortest allowed
    config.resistive.elastic = vec![5.0; 4];
    config.error_augmentation.offset = vec![0.2; 4];
    config.friction.coulomb = vec![0.1; 4];
    config.friction.viscous = vec![0.02; 4];
    config.aan.emken.continuous = continuous_emken;
    config
}

/// Every mode/law/space, and whether the Emken law adapts continuously.
const CASES: [(Mode, AanLaw, Space, bool); 11] = [
    (Mode::Passive, AanLaw::Fixed, Space::Joint, false),
    (Mode::Passive, AanLaw::Fixed, Space::Cartesian, false),
    (Mode::ActiveAssisted, AanLaw::Fixed, Space::Joint, false),
    (Mode::ActiveAssisted, AanLaw::Emken, Space::Joint, false),
    (Mode::ActiveAssisted, AanLaw::Emken, Space::Joint, true),
    (Mode::ActiveAssisted, AanLaw::Rbf, Space::Joint, false),
    (Mode::ActiveAssisted, AanLaw::Tunnel, Space::Joint, false),
    (Mode::Transparent, AanLaw::Fixed, Space::Joint, false),
    (Mode::Resistive, AanLaw::Fixed, Space::Joint, false),
    (Mode::ErrorAugmentation, AanLaw::Fixed, Space::Joint, false),
    // Cartesian with the handle reference given explicitly (the other branch of the Cartesian law).
    (Mode::Passive, AanLaw::Fixed, Space::Cartesian, false),
];

/// A first-order "arm" that follows the reference with a 20 ms lag: it moves, so every law sees errors and
/// velocities, and the sensor never looks frozen.
fn follow(state: &mut JointState, reference: &JointArray<f64>, now: Duration) {
    for j in 0..4 {
        let step = 0.05 * (reference[j] - state.position[j]);
        state.position[j] += step;
        state.velocity[j] = step / DT;
    }
    state.torque[0] = 1e-6 * (now.as_micros() % 7) as f64;
    state.stamp = now;
}

#[test]
fn every_mode_and_law_ticks_without_allocating_when_driven_directly() {
    let model = arm4();
    let arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).unwrap();
    let rom = urdf_rom(&model);
    let home = JointArray::from_slice(&HOME).unwrap();
    let mut away = home;
    away[1] += 0.3;
    away[3] -= 0.4;
    for (case, (mode, law, space, continuous)) in CASES.into_iter().enumerate() {
        let config = config(continuous);
        let mut controller = Controller::new(&model, &config, &arm, "test").unwrap();
        let mut supervisor = SafetySupervisor::new(&config.safety, &JointInfo::from_model(&model), Some(&rom)).unwrap();
        let settings = ModeSettings { mode, law, space, arm_support: 0.7, error_gain: None };
        let explicit_handle = case == CASES.len() - 1;
        let mut handle_ref = plexo_kinematics::Data::new(controller.coupled_model());
        let handle = controller.coupled_model().frame_id("handle").unwrap();
        let mut state = JointState::zeros(4);
        state.position = home;
        controller.set_mode(settings).unwrap();
        controller.start(&state);
        supervisor.request_enable().unwrap();
        let mut now = Duration::from_secs(1);
        let mut t = 0.0;
        let mut movement = MinimumJerk { start: home, target: away, duration: 0.8 };
        let mut since = 0.0;
        let mut trials = 0;
        // Warm-up (first-call paths, the soft start), then the counted window.
        let mut max_mode_torque: f64 = 0.0;
        let mut counted = 0;
        let mut before = 0;
        for k in 0..3600 {
            if k == 600 {
                before = allocations();
                max_mode_torque = 0.0;
            }
            t += DT;
            now += Duration::from_millis(1);
            if t - since >= 1.0 {
                // Trial end (per-trial adaptation), a new movement back or out, every fourth trial a block end.
                controller.end_trial();
                controller.reset_trial_statistics();
                trials += 1;
                if trials % 4 == 0 {
                    controller.end_block(&BlockPerformance { trials: 4, successes: 3 });
                }
                movement = MinimumJerk { start: state.position, target: movement.start, duration: 0.8 };
                since = t;
            }
            let mut reference = movement.sample(t - since);
            if explicit_handle {
                plexo_kinematics::forward_kinematics(controller.coupled_model(), &mut handle_ref, &reference.position);
                reference.handle_position = Some(handle_ref.world_T_frame[handle.0].translation.vector);
            }
            follow(&mut state, &reference.position, now);
            let mut cmd = controller.update(&state, &reference, t);
            let outcome = supervisor.apply(&state, controller.report(), &mut cmd, now);
            if k >= 600 {
                counted += 1;
                assert!(
                    matches!(outcome, SafetyOutcome::Active { .. }),
                    "{mode:?}/{law:?}/{space:?}: supervisor {outcome:?}"
                );
                assert_eq!(controller.mode(), settings, "the case's settings stay in force");
                let m = controller.mode_torque().iter().fold(0.0f64, |m, v| m.max(v.abs()));
                max_mode_torque = max_mode_torque.max(m);
            }
        }
        let allocated = allocations() - before;
        println!("{mode:?}/{law:?}/{space:?} (continuous {continuous}): max |mode torque| {max_mode_torque:.3} Nm");
        assert_eq!(allocated, 0, "{mode:?}/{law:?}/{space:?} (continuous {continuous}): {allocated} allocations");
        assert_eq!(counted, 3000);
        assert!(
            max_mode_torque > 0.05,
            "{mode:?}/{law:?}/{space:?}: the mode produced no torque ({max_mode_torque} Nm) in the counted window"
        );
    }
}

fn block(name: &str, mode: Mode, law: AanLaw, space: Space) -> BlockSpec {
    BlockSpec {
        name: name.into(),
        mode,
        law,
        space,
        targets: "elbow".into(),
        repetitions: 1,
        movement_time: 1.5,
        trial_timeout: 2.0,
        tolerance: 0.03,
        dwell: 0.1,
        inter_trial_rest: 0.2,
        rest_after: 0.3,
        arm_support: 0.7,
        error_gain: None,
        progression: mode == Mode::ActiveAssisted,
        onset_timeout: 0.0,
        onset_distance: plexo_controller::DEFAULT_ONSET_DISTANCE,
    }
}

#[test]
fn therapy_runs_one_block_per_mode_without_allocating() {
    let model = arm4();
    let config = config(false);
    let arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).unwrap();
    let rom = urdf_rom(&model);
    let blocks: Vec<BlockSpec> = CASES[..CASES.len() - 1]
        .iter()
        .filter(|(.., continuous)| !continuous)
        .enumerate()
        .map(|(i, (mode, law, space, _))| block(&format!("block {i}"), *mode, *law, *space))
        .collect();
    let protocol = Protocol {
        name: "every mode".into(),
        description: "one block per mode and law".into(),
        target_sets: vec![elbow_rom_targets()],
        blocks,
    };
    let session = Session::new(&protocol, &model, &rom).unwrap();
    let mut therapy = Therapy::new(session, Controller::new(&model, &config, &arm, "test").unwrap());
    let mut supervisor = SafetySupervisor::new(&config.safety, &JointInfo::from_model(&model), Some(&rom)).unwrap();
    let mut state = JointState::zeros(4);
    state.position.copy_from_slice(&HOME);
    therapy.start(&state);
    supervisor.request_enable().unwrap();
    let n_blocks = protocol.blocks.len();
    let mut max_mode_torque = vec![0.0f64; n_blocks];
    let mut moving_ticks = vec![0usize; n_blocks];
    let mut trials_ended = 0;
    let mut now = Duration::from_secs(1);
    let mut t = 0.0;
    let mut before = None;
    let mut ended = false;
    while !ended && t < 120.0 {
        t += DT;
        now += Duration::from_millis(1);
        state.stamp = now;
        let (mut cmd, event) = therapy.update(&state, t);
        let outcome = supervisor.apply(&state, therapy.controller().report(), &mut cmd, now);
        // The arm follows this tick's reference until the next tick.
        let target = therapy.controller().reference().position;
        follow(&mut state, &target, now);
        assert!(matches!(outcome, SafetyOutcome::Active { .. } | SafetyOutcome::Enabling { .. }), "{outcome:?}");
        match event {
            // Count from the first trial on (the first ticks set up the session).
            TherapyEvent::TrialStarted { block: 0, trial: 0 } => before = Some(allocations()),
            TherapyEvent::TrialEnded(_) => trials_ended += 1,
            TherapyEvent::SessionEnded => ended = true,
            _ => {}
        }
        let b = therapy.session().current_block();
        if therapy.session().is_moving() {
            let spec = &therapy.session().blocks()[b].spec;
            let mode = therapy.controller().mode();
            assert_eq!((mode.mode, mode.law, mode.space), (spec.mode, spec.law, spec.space), "block {b}");
            moving_ticks[b] += 1;
            let m = therapy.controller().mode_torque().iter().fold(0.0f64, |m, v| m.max(v.abs()));
            max_mode_torque[b] = max_mode_torque[b].max(m);
        }
    }
    let allocated = allocations() - before.expect("the first trial started");
    assert!(ended, "the protocol finished within 120 s");
    assert_eq!(allocated, 0, "{allocated} allocations while running the session");
    assert_eq!(trials_ended, 2 * n_blocks);
    for (b, spec) in protocol.blocks.iter().enumerate() {
        println!(
            "block {b} ({:?}/{:?}/{:?}): max |mode torque| {:.3} Nm",
            spec.mode, spec.law, spec.space, max_mode_torque[b]
        );
        assert!(moving_ticks[b] > 1000, "block {b} ({:?}) moved for {} ticks only", spec.mode, moving_ticks[b]);
        assert!(
            max_mode_torque[b] > 0.05,
            "block {b} ({:?}/{:?}/{:?}): no mode torque ({} Nm)",
            spec.mode,
            spec.law,
            spec.space,
            max_mode_torque[b]
        );
    }
}
