//! Property tests of the safety supervisor: for arbitrary states, commands, controller reports and timing —
//! including NaN, infinities and huge values — every output stays within torque, torque-rate, position-wall
//! and ROM limits, and is finite.

use core::time::Duration;

use plexo_controller::{ControllerConfig, ControllerReport, RomLimit, SafetyOutcome, SafetyState, SafetySupervisor};
use plexo_hal::{DriveImpedance, JointArray, JointCommand, JointFlags, JointInfo, JointState};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

const DOF: usize = 4;

fn joints() -> Vec<JointInfo> {
    let names = ["shoulder_abduction", "shoulder_flexion", "shoulder_rotation", "elbow_flexion"];
    let limits = [(-0.3, 1.6), (-0.6, 2.0), (-0.8, 1.0), (0.0, 2.4)];
    names
        .iter()
        .zip(limits)
        .map(|(n, (lo, hi))| JointInfo {
            name: (*n).into(),
            position_min: lo,
            position_max: hi,
            velocity_max: 4.0,
            torque_max: 40.0,
        })
        .collect()
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

/// A supervisor without soft start, so that short random sequences spend most ticks in Active.
fn active_supervisor() -> SafetySupervisor {
    let mut config = ControllerConfig::default_config().expect("embedded default config parses");
    config.safety.soft_start_time = 0.0;
    let mut sup = SafetySupervisor::new(&config.safety, &joints(), Some(&rom())).expect("valid supervisor");
    sup.request_enable().expect("disabled at start");
    sup
}

/// A number that is usually reasonable, sometimes huge, sometimes NaN/±Inf.
fn wild(scale: f64, sane_weight: u32) -> impl Strategy<Value = f64> {
    prop_oneof![
        sane_weight => -scale..scale,
        1 => -1e12..1e12f64,
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

/// Runs `ticks` through `sup` and checks every invariant on every output. Returns the number of ticks in which
/// the controller's torque was passed through (Enabling/Active), to check coverage.
fn check_sequence(mut sup: SafetySupervisor, ticks: Vec<Tick>) -> Result<usize, TestCaseError> {
    let period = sup.config().period;
    let mut now = Duration::from_secs(10);
    let mut prev = [0.0f64; DOF];
    let mut stamp = Duration::ZERO;
    let mut passed = 0;
    for (k, mut t) in ticks.into_iter().enumerate() {
        match t.action {
            0 => {
                let _ = sup.request_enable();
            }
            1 => {
                let _ = sup.request_resume();
            }
            2 => {
                let _ = sup.reset();
            }
            3 if k % 5 == 0 => sup.estop(),
            4 => sup.request_stop(now),
            _ => {}
        }
        now += Duration::from_micros(t.dt_us);
        stamp += Duration::from_micros(1000);
        t.state.stamp = stamp;
        let mut cmd = t.command;
        let outcome = sup.apply(&t.state, &t.report, &mut cmd, now);
        prop_assert!(cmd.is_finite(), "non-finite output {cmd:?}");
        if outcome.torque_off() {
            prop_assert!(cmd.is_zero(), "{outcome:?} must output zero torque, got {cmd:?}");
            prop_assert!(matches!(sup.state(), SafetyState::Disabled | SafetyState::Fault));
            prev = [0.0; DOF];
            continue;
        }
        if matches!(outcome, SafetyOutcome::Active { .. } | SafetyOutcome::Enabling { .. }) {
            passed += 1;
        }
        for (j, prev_j) in prev.iter_mut().enumerate() {
            let tau = total_torque(&cmd, &t.state, j);
            let tmax = sup.torque_max(j);
            let step = sup.torque_rate_max(j) * period;
            let eps = 1e-9 * (1.0 + tau.abs());
            prop_assert!(tau.abs() <= tmax + eps, "joint {j}: |{tau}| > {tmax} ({outcome:?})");
            prop_assert!(
                (tau - *prev_j).abs() <= step + eps,
                "joint {j}: rate {} > {step} ({outcome:?})",
                (tau - *prev_j).abs()
            );
            let q = t.state.position[j];
            let (lo, hi) = sup.effective_limits(j);
            // At or beyond an effective (ROM ∩ hard) limit the output never pushes further out, except what the
            // rate limit needs to bring the previous torque back.
            if q.is_finite() && t.state.velocity[j].is_finite() {
                if q >= hi {
                    prop_assert!(tau <= (*prev_j - step).max(0.0) + eps, "joint {j} at upper limit pushed out: {tau}");
                }
                if q <= lo {
                    prop_assert!(tau >= (*prev_j + step).min(0.0) - eps, "joint {j} at lower limit pushed out: {tau}");
                }
            }
            if let Some(d) = cmd.drive_impedance {
                prop_assert!(d.stiffness[j] >= 0.0 && d.stiffness[j] <= sup.config().drive_stiffness_max);
                prop_assert!(d.damping[j] >= 0.0 && d.damping[j] <= sup.config().drive_damping_max);
                prop_assert!(d.position[j] >= lo && d.position[j] <= hi);
            }
            *prev_j = tau;
        }
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
