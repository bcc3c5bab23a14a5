//! Property tests of the safety supervisor: for arbitrary states, commands, controller reports and timing —
//! including NaN, infinities and huge values — every output stays within torque, torque-rate, position-wall
//! and ROM limits, and is finite.

use core::time::Duration;

use plexo_controller::{ControllerConfig, ControllerReport, RomLimit, SafetyOutcome, SafetyState, SafetySupervisor};
use plexo_hal::{DriveImpedance, JointArray, JointCommand, JointFlags, JointInfo, JointState};
use plexo_testkit::robots::arm4_joints_with;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

const DOF: usize = 4;

fn joints() -> Vec<JointInfo> {
    arm4_joints_with([(-0.3, 1.6), (-0.6, 2.0), (-0.8, 1.0), (0.0, 2.4)], 4.0, 40.0)
}

fn rom() -> Vec<RomLimit> {
    vec![
        RomLimit { min: -0.2, max: 1.2 },
        RomLimit { min: -0.5, max: 1.5 },
        RomLimit { min: -0.6, max: 0.8 },
        RomLimit { min: 0.1, max: 2.0 },
    ]
}

fn supervisor() -> SafetySupervisor {
    let config = ControllerConfig::default_config().expect("embedded default config parses");
    SafetySupervisor::new(&config.safety, &joints(), Some(&rom())).expect("valid supervisor")
}

/// A supervisor with the shortest soft start the configuration allows (0.1 s), so that short random sequences
/// spend most ticks passing the controller's torque (Enabling, then Active).
fn active_supervisor() -> SafetySupervisor {
    let mut config = ControllerConfig::default_config().expect("embedded default config parses");
    config.safety.soft_start_time = 0.1; // the shortest allowed: 0 would switch the ramp off
    let mut sup = SafetySupervisor::new(&config.safety, &joints(), Some(&rom())).expect("valid supervisor");
    sup.request_enable().expect("disabled at start");
    sup
}

/// A number that is usually reasonable, sometimes huge, sometimes NaN/±Inf.
fn wild(scale: f64, sane_weight: u32) -> impl Strategy<Value = f64> {
    prop_oneof![
        sane_weight => -scale..scale,
        1 => -1e12..1e12f64,
        1 => Just(f64::MAX),
        1 => Just(-f64::MAX),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
    ]
}

fn arr(scale: f64, sane_weight: u32) -> impl Strategy<Value = JointArray<f64>> {
    proptest::collection::vec(wild(scale, sane_weight), DOF).prop_map(|v| JointArray::from_slice(&v).unwrap())
}

#[derive(Clone, Debug)]
struct Tick {
    state: JointState,
    command: JointCommand,
    report: ControllerReport,
    dt_us: u64,
    action: u8,
}

/// `sane_weight`: relative weight of ordinary numbers against each of huge, NaN, +Inf, −Inf.
fn tick(position_scale: f64, velocity_scale: f64, sane_weight: u32) -> impl Strategy<Value = Tick> {
    (
        arr(position_scale, sane_weight).prop_map(|mut q| {
            // Centre the positions on the middle of the patient ROM (see `rom()`).
            for (j, v) in q.iter_mut().enumerate() {
                *v += [0.5, 0.5, 0.1, 1.05][j];
            }
            q
        }),
        arr(velocity_scale, sane_weight),
        arr(100.0, sane_weight),
        arr(100.0, sane_weight),
        prop::option::of((arr(3.0, sane_weight), arr(5.0, sane_weight), arr(1e4, sane_weight), arr(1e3, sane_weight))),
        arr(50.0, sane_weight),
        any::<bool>(),
        prop_oneof![20 * sane_weight => Just(1000u64), 1 => 0u64..100_000],
        0u8..if sane_weight > 100 { 255 } else { 40 },
        any::<bool>(),
    )
        .prop_map(|(q, qd, tau_meas, tau_cmd, drive, interaction, inputs_finite, dt_us, action, fault_flag)| {
            let mut state = JointState::zeros(DOF);
            state.position = q;
            state.velocity = qd;
            state.torque = tau_meas;
            if fault_flag && action == 7 {
                state.flags[1] = JointFlags::DRIVE_FAULT;
            }
            let drive_impedance = drive.map(|(position, velocity, stiffness, damping)| DriveImpedance {
                position,
                velocity,
                stiffness,
                damping,
            });
            let command = JointCommand { torque: tau_cmd, drive_impedance };
            let mut report = ControllerReport::zeros(DOF);
            report.interaction_torque = interaction;
            report.hold_torque = tau_cmd;
            report.inputs_finite = inputs_finite || action > 2;
            Tick { state, command, report, dt_us, action }
        })
}

/// Total torque the joint sees this tick [Nm]: feed-forward plus the drive's impedance at the measured state.
fn total_torque(cmd: &JointCommand, state: &JointState, j: usize) -> f64 {
    let mut t = cmd.torque[j];
    if let Some(d) = cmd.drive_impedance {
        t += d.stiffness[j] * (d.position[j] - state.position[j]) + d.damping[j] * (d.velocity[j] - state.velocity[j]);
    }
    t
}

/// The invariants of one supervised output, with the previous output's total torque per joint.
struct Invariants {
    prev: [f64; DOF],
}

impl Invariants {
    fn new() -> Self {
        Self { prev: [0.0; DOF] }
    }

    /// Checks the output `cmd` of `sup.apply(state, ..) = outcome`: finite; zero when torque is off; within the
    /// torque and torque-rate limits; never pushing further out at or beyond an effective (ROM ∩ hard) position
    /// limit; passing the controller's torque (Enabling/Active) only while every joint is within its velocity
    /// limit; drive-side impedance within its bounds. Returns true if the controller's torque was passed.
    fn check(
        &mut self,
        sup: &SafetySupervisor,
        state: &JointState,
        cmd: &JointCommand,
        outcome: SafetyOutcome,
    ) -> Result<bool, TestCaseError> {
        let period = sup.config().period;
        prop_assert!(cmd.is_finite(), "non-finite output {cmd:?}");
        if outcome.torque_off() {
            prop_assert!(cmd.is_zero(), "{outcome:?} must output zero torque, got {cmd:?}");
            prop_assert!(matches!(sup.state(), SafetyState::Disabled | SafetyState::Fault));
            self.prev = [0.0; DOF];
            return Ok(false);
        }
        let passed = matches!(outcome, SafetyOutcome::Active { .. } | SafetyOutcome::Enabling { .. });
        for (j, prev_j) in self.prev.iter_mut().enumerate() {
            let tau = total_torque(cmd, state, j);
            let tmax = sup.torque_max(j);
            let step = sup.torque_rate_max(j) * period;
            let eps = 1e-9 * (1.0 + tau.abs());
            prop_assert!(tau.abs() <= tmax + eps, "joint {j}: |{tau}| > {tmax} ({outcome:?})");
            prop_assert!(
                (tau - *prev_j).abs() <= step + eps,
                "joint {j}: rate {} > {step} ({outcome:?})",
                (tau - *prev_j).abs()
            );
            let (q, qd) = (state.position[j], state.velocity[j]);
            let (lo, hi) = sup.effective_limits(j);
            // At or beyond an effective limit the output never pushes further out, except what the rate limit
            // needs to bring the previous torque back (also with an unknown velocity: the hold still acts).
            if q.is_finite() {
                if q >= hi {
                    prop_assert!(tau <= (*prev_j - step).max(0.0) + eps, "joint {j} at upper limit pushed out: {tau}");
                }
                if q <= lo {
                    prop_assert!(tau >= (*prev_j + step).min(0.0) - eps, "joint {j} at lower limit pushed out: {tau}");
                }
            }
            // Velocity limit: the controller's torque only ever passes with every joint within its limit.
            if passed {
                prop_assert!(
                    qd.is_finite() && qd.abs() <= sup.velocity_max(j),
                    "joint {j}: {outcome:?} at {qd} rad/s (limit {})",
                    sup.velocity_max(j)
                );
            }
            if let Some(d) = cmd.drive_impedance {
                prop_assert!(d.stiffness[j] >= 0.0 && d.stiffness[j] <= sup.config().drive_stiffness_max);
                prop_assert!(d.damping[j] >= 0.0 && d.damping[j] <= sup.config().drive_damping_max);
                prop_assert!(d.position[j] >= lo && d.position[j] <= hi);
                prop_assert!(d.velocity[j].abs() <= sup.velocity_max(j));
            }
            *prev_j = tau;
        }
        Ok(passed)
    }
}

/// An arbitrary operator request. Refusals (`Err`) are legitimate in most states and the property is about what
/// the supervisor outputs after any sequence of requests, so their results are deliberately not inspected.
fn operator_action(sup: &mut SafetySupervisor, action: u8, k: usize, now: Duration) {
    match action {
        0 => {
            let _ = sup.request_enable(); // refused unless Disabled (see above)
        }
        1 => {
            let _ = sup.request_resume(); // refused unless CompliantRelease
        }
        2 => {
            let _ = sup.reset(); // refused while Enabling/Active/CompliantRelease
        }
        3 if k.is_multiple_of(5) => sup.estop(),
        4 => sup.request_stop(now),
        5 if k.is_multiple_of(7) => {
            let _ = sup.request_disable(); // refused in Fault
        }
        _ => {}
    }
}

/// Runs `ticks` through `sup` and checks every invariant on every output. Returns the number of ticks in which
/// the controller's torque was passed through (Enabling/Active), to check coverage.
fn check_sequence(mut sup: SafetySupervisor, ticks: Vec<Tick>) -> Result<usize, TestCaseError> {
    let mut now = Duration::from_secs(10);
    let mut stamp = Duration::ZERO;
    let mut passed = 0;
    let mut invariants = Invariants::new();
    for (k, mut t) in ticks.into_iter().enumerate() {
        operator_action(&mut sup, t.action, k, now);
        now += Duration::from_micros(t.dt_us);
        stamp += Duration::from_micros(1000);
        t.state.stamp = stamp;
        let mut cmd = t.command;
        let outcome = sup.apply(&t.state, &t.report, &mut cmd, now);
        passed += usize::from(invariants.check(&sup, &t.state, &cmd, outcome)?);
    }
    Ok(passed)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Arbitrary operator actions and wild inputs from the Disabled state.
    #[test]
    fn output_never_exceeds_torque_rate_wall_or_rom_limits(ticks in proptest::collection::vec(tick(3.0, 5.0, 8), 1..120)) {
        check_sequence(supervisor(), ticks)?;
    }

    /// Plausible states (mostly inside the ROM, some in the walls and beyond) from the Active state with wild
    /// commands, gains and drive impedances: the shaping path itself.
    #[test]
    fn active_shaping_never_exceeds_limits(ticks in proptest::collection::vec(tick(0.7, 2.0, 5000), 1..200)) {
        check_sequence(active_supervisor(), ticks)?;
    }
}

/// The Active-state property must actually exercise the shaping path: over a deterministic sample of its
/// sequences, most ticks pass the controller's torque (Enabling/Active) rather than sitting in a stop.
#[test]
fn active_property_covers_the_active_state() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::collection::vec(tick(0.7, 2.0, 5000), 50..200);
    let mut total = 0;
    for _ in 0..50 {
        let ticks = strategy.new_tree(&mut runner).unwrap().current();
        total += check_sequence(active_supervisor(), ticks).unwrap();
    }
    assert!(total > 1000, "only {total} ticks in Enabling/Active over 50 sequences");
}

// ---------------------------------------------------------------------------------------------------------------
// Controller → supervisor: arbitrary references, gains, mode settings and adaptation states through
// `Controller::update`, then `SafetySupervisor::apply`, on the real plexo-arm4 model.

mod through_the_controller {
    use super::*;
    use plexo_controller::{AanLaw, AdaptationState, Controller, Mode, ModeSettings, Space, TaskReference};

    use plexo_kinematics::anthropometrics::ArmAnthropometrics;
    use plexo_testkit::robots::{HOME, arm4};

    /// Gains within their configured ranges (the configuration loader rejects anything else), drawn anywhere in
    /// those ranges, extremes included.
    #[derive(Clone, Debug)]
    struct Gains {
        stiffness: Vec<f64>,
        damping: Vec<f64>,
        cartesian: (f64, f64, f64),
        nullspace: Vec<f64>,
        ea: (f64, Vec<f64>, Vec<f64>, f64),
        resistive: (Vec<f64>, Vec<f64>),
        emken: (f64, f64),
        rbf: (f64, f64, f64),
        tunnel: (f64, f64),
        observer_gain: f64,
    }

    fn per_joint(lo: f64, hi: f64) -> impl Strategy<Value = Vec<f64>> {
        proptest::collection::vec(prop_oneof![1 => Just(lo), 1 => Just(hi), 4 => lo..=hi], DOF)
    }

    fn gains() -> impl Strategy<Value = Gains> {
        (
            (per_joint(0.0, 5000.0), per_joint(0.0, 200.0)),
            (0.0..=20_000.0f64, 0.0..=2000.0f64, prop_oneof![Just(1e-6), 1e-6..=1.0f64]),
            per_joint(0.0, 500.0),
            (1.0..=3.0f64, per_joint(0.0, 200.0), per_joint(-10.0, 10.0), 0.0..=50.0f64),
            (per_joint(0.0, 50.0), per_joint(0.0, 200.0)),
            (0.0..=1e5f64, 0.0..=1.0f64),
            (0.0..=1e4f64, 0.0..=100.0f64, 0.0..=1000.0f64),
            (0.0..=2000.0f64, 0.0..=10.0f64),
            0.1..=500.0f64,
        )
            .prop_map(|((stiffness, damping), cartesian, nullspace, ea, resistive, emken, rbf, tunnel, og)| {
                Gains { stiffness, damping, cartesian, nullspace, ea, resistive, emken, rbf, tunnel, observer_gain: og }
            })
    }

    fn configured(g: &Gains) -> ControllerConfig {
        let mut c = ControllerConfig::default_config().expect("embedded default config parses");
        c.safety.soft_start_time = 0.1; // the shortest allowed: 0 would switch the ramp off
        c.impedance.stiffness = g.stiffness.clone();
        c.impedance.damping = g.damping.clone();
        (c.cartesian.stiffness, c.cartesian.damping, c.cartesian.damping_lambda) = g.cartesian;
        c.cartesian.nullspace_stiffness = g.nullspace.clone();
        c.error_augmentation.gain = g.ea.0;
        c.error_augmentation.stiffness = g.ea.1.clone();
        c.error_augmentation.offset = g.ea.2.clone();
        c.error_augmentation.torque_max = g.ea.3;
        c.resistive.viscous = g.resistive.0.clone();
        c.resistive.elastic = g.resistive.1.clone();
        c.aan.emken.gain = g.emken.0;
        c.aan.emken.forgetting = g.emken.1;
        (c.aan.rbf.learning_rate, c.aan.rbf.weight_max, c.aan.rbf.stiffness) = g.rbf;
        (c.aan.tunnel.stiffness, c.aan.tunnel.flow_torque) = g.tunnel;
        c.observer.gain = g.observer_gain;
        c
    }

    #[derive(Clone, Debug)]
    struct Step {
        position: JointArray<f64>,
        velocity: JointArray<f64>,
        torque: JointArray<f64>,
        reference: TaskReference,
        settings: Option<(u8, u8, bool, f64, Option<f64>)>,
        action: u8,
    }

    fn reference(sane: u32) -> impl Strategy<Value = TaskReference> {
        (
            arr(0.8, sane),
            arr(3.0, sane),
            arr(30.0, sane),
            arr(0.8, sane),
            arr(0.8, sane),
            wild(1.0, sane),
            prop::option::of((wild(0.6, sane), wild(0.6, sane), wild(0.6, sane))),
        )
            .prop_map(|(mut position, velocity, acceleration, mut start, mut target, phase, handle)| {
                for j in 0..DOF {
                    position[j] += HOME[j];
                    start[j] += HOME[j];
                    target[j] += HOME[j];
                }
                let mut r = TaskReference::hold(&position);
                r.velocity = velocity;
                r.acceleration = acceleration;
                r.start = start;
                r.target = target;
                r.phase = phase.abs().min(1.0);
                if phase.is_nan() {
                    r.phase = f64::NAN;
                }
                r.handle_position = handle.map(|(x, y, z)| nalgebra::Vector3::new(x, y, z));
                r
            })
    }

    /// `sane`: weight of ordinary numbers (see `wild`); `posture`/`speed`: scale of the state around the home
    /// posture [rad] and of the joint speeds [rad/s]; `first_action`: operator requests are actions below 6.
    fn step(sane: u32, posture: f64, speed: f64, first_action: u8) -> impl Strategy<Value = Step> {
        (
            arr(posture, sane),
            arr(speed, sane),
            arr(30.0, sane),
            reference(sane),
            prop::option::weighted(
                0.1,
                (0u8..5, 0u8..4, any::<bool>(), wild(0.6, sane), prop::option::of(0.5..3.5f64)),
            ),
            first_action..60,
        )
            .prop_map(|(mut position, velocity, torque, reference, settings, action)| {
                for j in 0..DOF {
                    position[j] += HOME[j];
                }
                Step { position, velocity, torque, reference, settings, action }
            })
    }

    fn settings((mode, law, cartesian, support, gain): (u8, u8, bool, f64, Option<f64>)) -> ModeSettings {
        let mode = [Mode::Passive, Mode::ActiveAssisted, Mode::Transparent, Mode::Resistive, Mode::ErrorAugmentation]
            [mode as usize];
        let law = [AanLaw::Fixed, AanLaw::Emken, AanLaw::Rbf, AanLaw::Tunnel][law as usize];
        let space = if cartesian { Space::Cartesian } else { Space::Joint };
        ModeSettings { mode, law, space, arm_support: support.abs(), error_gain: gain }
    }

    /// A saved adaptation state with arbitrary (possibly absurd) adapted values.
    fn adaptation() -> impl Strategy<Value = Option<(f64, f64, f64, f64)>> {
        prop::option::of((0.0..1e6f64, -1e4..1e4f64, 0.0..100.0f64, 0.0..100.0f64))
    }

    fn run(gains: &Gains, saved: Option<(f64, f64, f64, f64)>, steps: Vec<Step>) -> Result<usize, TestCaseError> {
        let model = arm4();
        let config = configured(gains);
        prop_assert!(config.validate(DOF, "generated").is_ok(), "{:?}", config.validate(DOF, "generated"));
        let arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).expect("valid body");
        let mut controller = Controller::new(&model, &config, &arm, "generated").expect("valid configuration");
        if let Some((k, w, scale, duration)) = saved {
            let mut state = AdaptationState::new(DOF, &config.aan);
            state.emken_stiffness[..DOF].fill(k);
            state.rbf_weights[1].fill(w);
            state.assistance_scale = scale;
            state.duration_scale = duration;
            let clamped = controller.restore_adaptation(state).expect("finite, non-negative values are accepted");
            let a = controller.adaptation();
            prop_assert!(a.emken_stiffness[0] <= config.aan.emken.k_max && a.assistance_scale <= 2.0);
            prop_assert!(clamped.iter().all(|c| c.restored != c.saved));
        }
        let joints = JointInfo::from_model(&model);
        let rom: Vec<RomLimit> = joints.iter().map(|j| RomLimit { min: j.position_min, max: j.position_max }).collect();
        let mut sup = SafetySupervisor::new(&config.safety, &joints, Some(&rom)).expect("valid supervisor");
        sup.request_enable().expect("disabled at start");
        let mut invariants = Invariants::new();
        let mut now = Duration::from_secs(10);
        let mut passed = 0;
        let mut state = JointState::zeros(DOF);
        for (k, s) in steps.into_iter().enumerate() {
            if let Some(choice) = s.settings {
                let wanted = settings(choice);
                match controller.set_mode(wanted) {
                    Ok(()) => prop_assert_eq!(controller.mode(), wanted),
                    // Out-of-range settings are refused and the previous ones stay in force.
                    Err(_) => prop_assert!(wanted.validate("generated").is_err()),
                }
            }
            operator_action(&mut sup, s.action, k, now);
            now += Duration::from_millis(1);
            state.stamp = now;
            state.position = s.position;
            state.velocity = s.velocity;
            state.torque = s.torque;
            let mut cmd = controller.update(&state, &s.reference, k as f64 * 1e-3);
            let report = *controller.report();
            let sane_posture = state.position.iter().all(|q| q.is_finite() && q.abs() < 10.0);
            if sane_posture {
                prop_assert!(report.hold_torque.all_finite(), "hold torque {:?}", report.hold_torque);
            }
            if !(state.is_finite() && s.reference.is_finite()) {
                prop_assert!(!report.inputs_finite, "non-finite input reported as finite");
            }
            let outcome = sup.apply(&state, &report, &mut cmd, now);
            passed += usize::from(invariants.check(&sup, &state, &cmd, outcome)?);
        }
        Ok(passed)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

        /// Arbitrary gains, mode settings and adaptation states, references with NaN, ±Inf, ±f64::MAX and 1e12,
        /// through the controller and the supervisor: the output never exceeds the limits.
        #[test]
        fn controller_output_through_the_supervisor_never_exceeds_limits(
            gains in gains(),
            saved in adaptation(),
            steps in proptest::collection::vec(step(60, 0.6, 2.0, 0), 1..120),
        ) {
            run(&gains, saved, steps)?;
        }
    }

    /// The controller property must exercise the controller's torque path: mostly sane inputs over a
    /// deterministic sample keep the supervisor Active for most ticks.
    #[test]
    fn controller_property_covers_the_active_state() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        // Calm states near the home posture and no operator requests: what a running session looks like.
        let strategy = (gains(), adaptation(), proptest::collection::vec(step(1_000_000, 0.05, 0.2, 10), 100..150));
        let mut total = 0;
        for _ in 0..10 {
            let (g, saved, steps) = strategy.new_tree(&mut runner).unwrap().current();
            total += run(&g, saved, steps).unwrap();
        }
        assert!(total > 600, "only {total} ticks in Enabling/Active over 10 sequences");
    }
}
