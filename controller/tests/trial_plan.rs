//! One source of truth for each trial's task: the [`TrialPlan`] that `Therapy::current_trial_plan` reports is
//! the movement the reference actually runs — same goal, start time and (progression-scaled) duration — whatever
//! the duration scale. Scripted arm (no plant): the reference is a function of time alone.

use plexo_controller::{AanLaw, AdaptationState, BlockSpec, ControllerConfig, Mode, Protocol, TherapyEvent, TrialPlan};
use plexo_hal::{JointArray, JointState};
use plexo_testkit::rig::{elbow_block, elbow_protocol, scripted_therapy};
use plexo_testkit::robots::{DT, HOME};

/// One active-assisted Emken block of elbow range-of-motion trials with a 1.5 s movement time.
fn protocol() -> Protocol {
    let block = BlockSpec {
        name: "aan".into(),
        movement_time: 1.5,
        trial_timeout: 6.0,
        progression: true,
        ..elbow_block(Mode::ActiveAssisted, AanLaw::Emken, 1)
    };
    Protocol { name: "plan".into(), ..elbow_protocol(vec![block]) }
}

/// The default configuration with movements that may be sped up to 0.6 × their prescribed time (the shipped floor
/// is 1: never faster), so that scales below 1 are tested too.
fn speed_up_config() -> ControllerConfig {
    let mut cfg = ControllerConfig::default_config().unwrap();
    cfg.aan.progression.duration_min = 0.6;
    cfg
}

/// Runs the first trial with the arm held still at home, under `duration_scale`; returns the plan reported at the
/// trial start and the reference's measured movement time [s] (first tick at which q_d reaches the goal and
/// q̇_d vanishes, minus the tick that started the trial).
fn first_trial(duration_scale: f64) -> (TrialPlan, f64, f64) {
    let cfg = speed_up_config();
    let mut therapy = scripted_therapy(&protocol(), &cfg);
    let saved = AdaptationState { duration_scale, ..AdaptationState::new(4, &cfg.aan) };
    assert!(therapy.resume_from(saved).unwrap().is_empty(), "scale {duration_scale} within the bounds");
    assert!(therapy.current_trial_plan().is_none(), "no plan before the first trial");
    let mut state = JointState::zeros(4);
    state.position = JointArray::from_slice(&HOME).unwrap();
    therapy.start(&state);
    let mut plan = None;
    let mut t = 0.0;
    loop {
        state.stamp = std::time::Duration::from_secs_f64(t);
        let (_, event) = therapy.update(&state, t);
        if let TherapyEvent::TrialStarted { block, trial } = event {
            let p = therapy.current_trial_plan().expect("a trial started");
            assert_eq!((p.block, p.trial), (block, trial));
            assert_eq!(p.goal, therapy.session().blocks()[block].trial_targets[trial], "the plan's goal");
            assert!((p.start_time - t).abs() < 1e-12, "the plan starts on the tick that starts the trial");
            plan = Some(p);
        }
        if let Some(p) = plan {
            let r = therapy.controller().reference();
            let at_goal = (0..4).all(|j| (r.position[j] - p.goal[j]).abs() < 1e-12 && r.velocity[j] == 0.0);
            if at_goal {
                return (p, t - p.start_time, r.phase);
            }
        }
        t += DT;
        assert!(t < 10.0, "the reference never reached the goal");
    }
}

/// The plan's duration is the reference's actual movement time (to one tick) under any duration scale in the
/// configured bounds, and it is `movement_time × duration_scale`, not the protocol's unscaled `movement_time`.
#[test]
fn trial_plan_duration_is_the_references_movement_time_under_any_duration_scale() {
    let cfg = speed_up_config();
    let p = &cfg.aan.progression;
    let movement_time = protocol().blocks[0].movement_time;
    for scale in [p.duration_min, 0.73, 1.0, 1.21, p.duration_max] {
        let (plan, measured, phase) = first_trial(scale);
        println!(
            "duration scale {scale:.2}: plan {:.3} s, reference reached the goal after {measured:.3} s",
            plan.duration
        );
        assert!((plan.duration - movement_time * scale).abs() < 1e-12, "scaled duration {}", plan.duration);
        assert!((measured - plan.duration).abs() <= DT + 1e-9, "plan {} s vs reference {measured} s", plan.duration);
        assert!((phase - 1.0).abs() < 1e-9, "the reference's phase completes at the planned duration: {phase}");
    }
}
