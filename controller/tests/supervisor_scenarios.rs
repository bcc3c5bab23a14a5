//! Scenario tests of the safety supervisor's state machine: one test per hazard of SAFETY.md.

use core::time::Duration;

use plexo_controller::{
    ControllerConfig, ControllerReport, RomLimit, SafetyOutcome, SafetyState, SafetySupervisor, StopReason,
};
use plexo_hal::{JointCommand, JointFlags, JointInfo, JointState};
use plexo_testkit::robots::arm4_joints_with;

const DOF: usize = 4;
const PERIOD_US: u64 = 1000;

fn joints() -> Vec<JointInfo> {
    use std::f64::consts::{FRAC_PI_2, FRAC_PI_3, FRAC_PI_6, PI};
    // plexo-arm4 URDF limits.
    let limits = [(-0.0873, FRAC_PI_2), (-FRAC_PI_6, 2.0 * FRAC_PI_3), (-FRAC_PI_3, FRAC_PI_3), (0.0, 0.75 * PI)];
    arm4_joints_with(limits, 2.5, 40.0)
}

fn rom() -> Vec<RomLimit> {
    vec![
        RomLimit { min: 0.0, max: 1.2 },
        RomLimit { min: -0.3, max: 1.5 },
        RomLimit { min: -0.6, max: 0.8 },
        RomLimit { min: 0.1, max: 2.0 },
    ]
}

struct Rig {
    sup: SafetySupervisor,
    now: Duration,
    state: JointState,
    report: ControllerReport,
}

impl Rig {
    fn new() -> Self {
        let config = ControllerConfig::default_config().unwrap();
        let sup = SafetySupervisor::new(&config.safety, &joints(), Some(&rom())).unwrap();
        let mut state = JointState::zeros(DOF);
        state.position.copy_from_slice(&[0.5, 0.5, 0.0, 1.0]);
        Self { sup, now: Duration::from_secs(1), state, report: ControllerReport::zeros(DOF) }
    }

    /// One tick with a constant controller command of `tau` on every joint.
    fn tick(&mut self, tau: f64) -> (SafetyOutcome, JointCommand) {
        self.now += Duration::from_micros(PERIOD_US);
        self.state.stamp += Duration::from_micros(PERIOD_US);
        // Keep the sensor alive (a real sensor never repeats bit-identical values for long).
        self.state.torque[0] = (self.state.stamp.as_micros() % 7) as f64 * 1e-6;
        let mut cmd = JointCommand::zeros(DOF);
        cmd.torque.fill(tau);
        let out = self.sup.apply(&self.state, &self.report, &mut cmd, self.now);
        (out, cmd)
    }

    fn run_active(&mut self, tau: f64) {
        self.sup.request_enable().unwrap();
        self.run_active_from_enabling(tau);
    }

    /// Ticks through the soft start after an enable request.
    fn run_active_from_enabling(&mut self, tau: f64) {
        if self.sup.state() == SafetyState::Disabled {
            self.sup.request_enable().unwrap();
        }
        for _ in 0..1100 {
            self.tick(tau);
        }
        assert_eq!(self.sup.state(), SafetyState::Active);
    }
}

#[test]
fn disabled_outputs_zero_torque() {
    let mut rig = Rig::new();
    let (out, cmd) = rig.tick(5.0);
    assert_eq!(out, SafetyOutcome::Disabled);
    assert!(cmd.is_zero());
}

#[test]
fn enable_ramps_from_zero_without_jump_and_reaches_active() {
    let mut rig = Rig::new();
    rig.sup.request_enable().unwrap();
    let (out, cmd) = rig.tick(10.0);
    assert_eq!(out, SafetyOutcome::Enabling { factor: 0.0 });
    assert_eq!(cmd.torque[0], 0.0, "first command after enable is exactly the torque before it (zero)");
    let mut prev = 0.0;
    let mut max_step: f64 = 0.0;
    let mut ticks_to_full = None;
    for k in 1..1500 {
        let (_, cmd) = rig.tick(10.0);
        max_step = max_step.max((cmd.torque[0] - prev).abs());
        prev = cmd.torque[0];
        if ticks_to_full.is_none() && (cmd.torque[0] - 10.0).abs() < 1e-9 {
            ticks_to_full = Some(k);
        }
    }
    let soft_start_ticks = (rig.sup.config().soft_start_time * 1e6 / PERIOD_US as f64) as usize;
    assert!(max_step <= 10.0 / soft_start_ticks as f64 + 1e-9, "ramp step {max_step} too large");
    assert_eq!(ticks_to_full, Some(soft_start_ticks), "full torque exactly after the soft-start time");
    assert_eq!(rig.sup.state(), SafetyState::Active);
}

#[test]
fn nan_in_state_stops_and_escalates_to_fault_when_it_persists() {
    let mut rig = Rig::new();
    rig.run_active(2.0);
    rig.state.velocity[2] = f64::NAN;
    let (out, cmd) = rig.tick(2.0);
    assert!(matches!(out, SafetyOutcome::SafeStop { reason: StopReason::NonFiniteState, .. }), "{out:?}");
    assert!(cmd.is_finite());
    let samples = rig.sup.config().nonfinite_fault_samples;
    let mut last = out;
    for _ in 0..samples {
        last = rig.tick(2.0).0;
    }
    assert_eq!(last, SafetyOutcome::Fault { reason: StopReason::NonFiniteState });
    assert!(rig.tick(2.0).1.is_zero(), "category 0: torque off");
}

#[test]
fn nan_in_reference_or_gains_stops() {
    let mut rig = Rig::new();
    rig.run_active(2.0);
    rig.report.inputs_finite = false;
    let (out, _) = rig.tick(2.0);
    assert!(matches!(out, SafetyOutcome::SafeStop { reason: StopReason::NonFiniteController, .. }), "{out:?}");
}

#[test]
fn nan_in_command_stops_with_finite_output() {
    let mut rig = Rig::new();
    rig.run_active(2.0);
    let (out, cmd) = rig.tick(f64::INFINITY);
    assert!(matches!(out, SafetyOutcome::SafeStop { reason: StopReason::NonFiniteCommand, .. }), "{out:?}");
    assert!(cmd.is_finite());
    // A category-2 stop keeps the (rate-limited) hold: no step in torque.
    let step = rig.sup.torque_rate_max(0) * rig.sup.config().period;
    assert!((cmd.torque[0] - 2.0).abs() <= step + 1e-9);
}

#[test]
fn watchdog_overrun_stops() {
    let mut rig = Rig::new();
    rig.run_active(1.0);
    rig.now += Duration::from_millis(50);
    let (out, _) = rig.tick(1.0);
    assert!(matches!(out, SafetyOutcome::SafeStop { reason: StopReason::Watchdog { .. }, .. }), "{out:?}");
    assert!(rig.sup.stats().overruns >= 1);
}

#[test]
fn stale_time_stamp_stops() {
    let mut rig = Rig::new();
    rig.run_active(1.0);
    let stamp = rig.state.stamp;
    let mut out = SafetyOutcome::Disabled;
    for _ in 0..=rig.sup.config().stale_samples {
        out = rig.tick(1.0).0;
        rig.state.stamp = stamp;
    }
    assert!(matches!(out, SafetyOutcome::SafeStop { reason: StopReason::StaleSensor { .. }, .. }), "{out:?}");
    // Still stale on the next tick: the stop cannot be monitored, torque off.
    let out = rig.tick(1.0).0;
    assert!(matches!(out, SafetyOutcome::Fault { reason: StopReason::StaleSensor { .. } }), "{out:?}");
}

#[test]
fn spasm_releases_compliantly_and_resumes_only_on_request() {
    let mut rig = Rig::new();
    rig.report.hold_torque.fill(3.0);
    rig.run_active(5.0);
    rig.report.interaction_torque[3] = 25.0; // above the elbow threshold
    rig.state.velocity[3] = 0.4;
    let ticks = (rig.sup.config().spasm_time * 1e6 / PERIOD_US as f64) as usize;
    for _ in 0..ticks - 1 {
        assert!(matches!(rig.tick(5.0).0, SafetyOutcome::Active { .. }), "not before the spasm time");
    }
    let (out, _) = rig.tick(5.0);
    assert_eq!(out, SafetyOutcome::CompliantRelease { joint: 3 });
    // Damping and weight support only: the commanded 5 Nm stiffness torque is ignored.
    let mut cmd = JointCommand::zeros(DOF);
    for _ in 0..500 {
        cmd = rig.tick(5.0).1;
    }
    let expected = 3.0 - rig.sup.config().release_damping * 0.4;
    assert!((cmd.torque[3] - expected).abs() < 1e-9, "{} vs {expected}", cmd.torque[3]);
    assert!(cmd.drive_impedance.is_none(), "no drive stiffness in release");
    rig.report.interaction_torque[3] = 0.0;
    for _ in 0..500 {
        assert!(matches!(rig.tick(5.0).0, SafetyOutcome::CompliantRelease { .. }), "stays released");
    }
    rig.sup.request_resume().unwrap();
    let (out, cmd) = rig.tick(5.0);
    assert!(matches!(out, SafetyOutcome::Enabling { .. }));
    assert!((cmd.torque[3] - expected).abs() < 1e-9, "resume fades from the release torque: {}", cmd.torque[3]);
}

#[test]
fn estop_latches_until_reset() {
    let mut rig = Rig::new();
    rig.run_active(4.0);
    rig.sup.estop();
    let (out, cmd) = rig.tick(4.0);
    assert_eq!(out, SafetyOutcome::Fault { reason: StopReason::EStop });
    assert!(cmd.is_zero());
    assert!(rig.sup.request_enable().is_err(), "no enable while latched");
    assert!(rig.sup.request_resume().is_err());
    for _ in 0..100 {
        assert!(rig.tick(4.0).1.is_zero());
    }
    rig.sup.reset().unwrap();
    assert_eq!(rig.tick(4.0).0, SafetyOutcome::Disabled, "reset never re-enables by itself");
    rig.sup.request_enable().unwrap();
    assert_eq!(rig.tick(4.0).1.torque[0], 0.0, "after reset the ramp starts from zero again");
}

#[test]
fn drive_fault_flag_cuts_torque() {
    let mut rig = Rig::new();
    rig.run_active(4.0);
    rig.state.flags[2] = JointFlags::NO_REPLY;
    let (out, cmd) = rig.tick(4.0);
    assert_eq!(out, SafetyOutcome::Fault { reason: StopReason::DriveFault { joint: 2 } });
    assert!(cmd.is_zero());
}

#[test]
fn soft_wall_fades_outward_torque_and_pushes_back_before_the_rom_limit() {
    let mut rig = Rig::new();
    rig.run_active(0.0);
    let (_, hi) = rig.sup.effective_limits(3);
    assert_eq!(hi, 2.0, "patient ROM (2.0) is tighter than the hard limit (2.356)");
    let w = rig.sup.wall_width(3);
    // Half-way into the wall: outward torque halved, spring pushes back.
    rig.state.position[3] = hi - 0.5 * w;
    let mut cmd = JointCommand::zeros(DOF);
    for _ in 0..200 {
        cmd = rig.tick(4.0).1;
    }
    let config = ControllerConfig::default_config().unwrap();
    let k = config.safety.joints.iter().find(|c| c.name == "elbow_flexion").unwrap().wall_stiffness;
    let expected = 4.0 * 0.5 - k * 0.5 * w;
    assert!((cmd.torque[3] - expected).abs() < 1e-9, "{} vs {expected}", cmd.torque[3]);
    // At the limit: no outward torque at all.
    rig.state.position[3] = hi;
    for _ in 0..200 {
        cmd = rig.tick(4.0).1;
    }
    assert!(cmd.torque[3] <= -k * w + 1e-9, "{}", cmd.torque[3]);
}

#[test]
fn position_beyond_rom_tolerance_stops() {
    let mut rig = Rig::new();
    rig.run_active(0.0);
    let (lo, _) = rig.sup.effective_limits(0);
    rig.state.position[0] = lo - rig.sup.config().position_tolerance - 0.01;
    let (out, _) = rig.tick(0.0);
    assert!(
        matches!(out, SafetyOutcome::SafeStop { reason: StopReason::PositionLimit { joint: 0, .. }, .. }),
        "{out:?}"
    );
}

#[test]
fn regression_an_arm_resting_just_outside_the_rom_stopped_the_session_at_enable() {
    // Seen in `plexo sim --seed 11`: in the torque-off sensor check the moderate patient's elbow sagged under
    // gravity to 0.1499 rad, 0.0501 rad below its ROM (0.2), and the first Enabling tick safe-stopped.
    let mut rig = Rig::new();
    let (lo, _) = rig.sup.effective_limits(3);
    let tol = rig.sup.config().position_tolerance;
    let out_by = tol + 0.04; // beyond the tolerance, within enable_outside_max
    assert!(out_by <= rig.sup.config().enable_outside_max);
    rig.state.position[3] = lo - out_by;
    rig.sup.request_enable().unwrap();
    let mut pushed = 0.0;
    for _ in 0..1100 {
        let (out, cmd) = rig.tick(0.0);
        assert!(!matches!(out, SafetyOutcome::SafeStop { .. }), "{out:?}");
        pushed = cmd.torque[3];
    }
    assert_eq!(rig.sup.state(), SafetyState::Active);
    assert!(pushed > 1.0, "the soft wall pushes the joint back inside: {pushed} Nm");

    // Coming back shrinks the allowance: it may not drift out again past its new distance plus the tolerance.
    rig.state.position[3] = lo - 0.01;
    rig.tick(0.0);
    rig.state.position[3] = lo - 0.01 - tol - 0.005;
    let (out, _) = rig.tick(0.0);
    assert!(
        matches!(out, SafetyOutcome::SafeStop { reason: StopReason::PositionLimit { joint: 3, .. }, .. }),
        "{out:?}"
    );
}

#[test]
fn enabling_far_outside_the_rom_stops_and_moving_further_out_after_enable_stops() {
    let mut rig = Rig::new();
    let (lo, _) = rig.sup.effective_limits(3);
    let c = rig.sup.config().clone();
    rig.state.position[3] = lo - c.position_tolerance - c.enable_outside_max - 0.01;
    rig.sup.request_enable().unwrap();
    let (out, cmd) = rig.tick(3.0);
    assert!(
        matches!(out, SafetyOutcome::SafeStop { reason: StopReason::PositionLimit { joint: 3, .. }, .. }),
        "{out:?}"
    );
    // The stop holds (spring to the posture clamped into the range) but starts from zero at the rate limit.
    let rate = c.joints.iter().find(|j| j.name == "elbow_flexion").unwrap().torque_rate_max;
    assert!(cmd.torque.iter().all(|t| t.abs() <= rate * c.period + 1e-9), "a jump at enable: {:?}", cmd.torque);

    // Enabled 0.08 rad outside: going further out than where it started (+ tolerance) stops.
    let mut rig = Rig::new();
    rig.state.position[3] = lo - 0.08;
    rig.sup.request_enable().unwrap();
    rig.tick(0.0);
    rig.state.position[3] = lo - 0.08 - c.position_tolerance + 0.001;
    assert!(!matches!(rig.tick(0.0).0, SafetyOutcome::SafeStop { .. }));
    rig.state.position[3] = lo - 0.08 - c.position_tolerance - 0.001;
    assert!(matches!(rig.tick(0.0).0, SafetyOutcome::SafeStop { reason: StopReason::PositionLimit { .. }, .. }));

    // The allowance is per enable: after a disable and a re-enable inside the range the normal tolerance holds.
    let mut rig = Rig::new();
    rig.state.position[3] = lo - 0.08;
    rig.sup.request_enable().unwrap();
    rig.tick(0.0);
    rig.sup.request_disable().unwrap();
    rig.tick(0.0);
    rig.state.position[3] = lo + 0.2;
    rig.sup.request_enable().unwrap();
    rig.tick(0.0);
    rig.state.position[3] = lo - c.position_tolerance - 0.01;
    assert!(matches!(rig.tick(0.0).0, SafetyOutcome::SafeStop { reason: StopReason::PositionLimit { .. }, .. }));
}

#[test]
fn overspeed_stops_with_damping_and_escalates_without_standstill() {
    let mut rig = Rig::new();
    rig.run_active(0.0);
    rig.state.velocity[1] = rig.sup.velocity_max(1) + 0.1;
    let (out, _) = rig.tick(0.0);
    assert!(matches!(out, SafetyOutcome::SafeStop { reason: StopReason::VelocityLimit { joint: 1, .. }, .. }));
    rig.state.velocity[1] = 1.0; // the arm keeps moving (e.g. pushed)
    let mut cmd = JointCommand::zeros(DOF);
    for _ in 0..100 {
        cmd = rig.tick(0.0).1;
    }
    assert!(cmd.torque[1] < 0.0, "the damper opposes the motion");
    let timeout_ticks = (rig.sup.config().safe_stop_timeout * 1e6 / PERIOD_US as f64) as usize;
    let mut out = SafetyOutcome::Disabled;
    for _ in 0..timeout_ticks {
        out = rig.tick(0.0).0;
    }
    assert_eq!(out, SafetyOutcome::Fault { reason: StopReason::StandstillTimeout });
}

#[test]
fn velocity_fade_removes_torque_along_fast_motion() {
    let mut rig = Rig::new();
    rig.run_active(3.0);
    let vmax = rig.sup.velocity_max(0);
    rig.state.velocity[0] = 0.95 * vmax;
    let mut cmd = JointCommand::zeros(DOF);
    for _ in 0..100 {
        cmd = rig.tick(3.0).1;
    }
    let c = rig.sup.config();
    let (soft, brake) = (c.velocity_soft_fraction, c.velocity_brake_damping);
    let expected = 3.0 * (1.0 - 0.95) / (1.0 - soft) - brake * (0.95 - soft) * vmax;
    assert!((cmd.torque[0] - expected).abs() < 1e-9, "{} vs {expected}", cmd.torque[0]);
    assert_eq!(cmd.torque[1], 3.0, "a slow joint is untouched");
}

/// A joint of inertia `inertia` [kg m²] pushed by `external` [Nm] that the robot does not command (gravity on an
/// arm whose help was withdrawn, the patient's own push), from rest, with the robot commanding nothing: the
/// highest speed [rad/s] over `seconds`, and whether the supervisor stopped.
fn free_motion_under_the_supervisor(
    rig: &mut Rig,
    joint: usize,
    inertia: f64,
    external: f64,
    seconds: f64,
) -> (f64, bool) {
    let dt = PERIOD_US as f64 * 1e-6;
    let mut peak: f64 = 0.0;
    for _ in 0..(seconds / dt) as usize {
        let (out, cmd) = rig.tick(0.0);
        if matches!(out, SafetyOutcome::SafeStop { .. }) {
            return (peak, true);
        }
        let acceleration = (external + cmd.torque[joint]) / inertia;
        rig.state.velocity[joint] += acceleration * dt;
        rig.state.position[joint] += rig.state.velocity[joint] * dt;
        peak = peak.max(rig.state.velocity[joint].abs());
    }
    (peak, false)
}

#[test]
fn regression_an_arm_falling_freely_in_a_transparent_block_tripped_the_velocity_stop() {
    // EFFICACY.md (held-out profiles): a patient's forearm extended at 3 rad/s in the transparent block — the robot
    // drove nothing, so the velocity fade had nothing to take away, and the session stopped. The brake slows such a
    // motion above the soft velocity: a 3 Nm push on a 0.15 kg m² forearm (20 rad/s²) settles below the limit.
    let mut rig = Rig::new();
    rig.run_active(0.0);
    rig.state.position[3] = 1.9;
    let vmax = rig.sup.velocity_max(3);
    let (peak, stopped) = free_motion_under_the_supervisor(&mut rig, 3, 0.15, -3.0, 0.5);
    assert!(!stopped && peak < vmax, "braked: peak {peak} rad/s of {vmax}");
    assert!(peak > rig.sup.config().velocity_soft_fraction * vmax, "the brake acts only above the soft velocity");

    // Without the brake the same push reaches the limit and stops.
    let mut config = ControllerConfig::default_config().unwrap();
    config.safety.velocity_brake_damping = 0.0;
    let mut rig = Rig::new();
    rig.sup = SafetySupervisor::new(&config.safety, &joints(), Some(&rom())).unwrap();
    rig.run_active(0.0);
    rig.state.position[3] = 1.9;
    let (_, stopped) = free_motion_under_the_supervisor(&mut rig, 3, 0.15, -3.0, 0.5);
    assert!(stopped, "without the brake the free motion trips the velocity stop");
}

#[test]
fn wrong_joint_count_faults() {
    let mut rig = Rig::new();
    rig.run_active(1.0);
    let state = JointState::zeros(3);
    let mut cmd = JointCommand::zeros(3);
    rig.now += Duration::from_micros(PERIOD_US);
    let out = rig.sup.apply(&state, &rig.report, &mut cmd, rig.now);
    assert_eq!(out, SafetyOutcome::Fault { reason: StopReason::JointCountMismatch { expected: 4, got: 3 } });
    assert!(cmd.is_zero() && cmd.dof() == 4);
}

/// A frozen sensor: the time stamp advances but position, velocity and torque repeat bit for bit. After exactly
/// `frozen_samples` (500) repeats the supervisor stops; if the values are still frozen on the next tick the stop
/// cannot be monitored and it faults.
#[test]
fn frozen_sensor_stops_after_500_bit_identical_samples_then_faults() {
    let mut rig = Rig::new();
    rig.run_active(1.0);
    let frozen = rig.sup.config().frozen_samples;
    assert_eq!(frozen, 500);
    let values = rig.state;
    let mut cmd = JointCommand::zeros(DOF);
    for repeat in 1..=frozen {
        rig.now += Duration::from_micros(PERIOD_US);
        let mut state = values;
        state.stamp = rig.now; // the stamp advances: only the values are frozen
        cmd.torque.fill(1.0);
        let out = rig.sup.apply(&state, &rig.report, &mut cmd, rig.now);
        if repeat < frozen {
            assert!(matches!(out, SafetyOutcome::Active { .. }), "repeat {repeat}: {out:?}");
        } else {
            assert_eq!(
                out,
                SafetyOutcome::SafeStop { reason: StopReason::StaleSensor { samples: frozen }, standstill: true },
                "stop at exactly {frozen} identical samples"
            );
        }
    }
    rig.now += Duration::from_micros(PERIOD_US);
    let mut state = values;
    state.stamp = rig.now;
    let out = rig.sup.apply(&state, &rig.report, &mut cmd, rig.now);
    assert_eq!(out, SafetyOutcome::Fault { reason: StopReason::StaleSensor { samples: frozen + 1 } });
    assert!(cmd.is_zero());
}

/// A live sensor whose values change by one bit just before every 500th sample never trips the detector.
#[test]
fn sensor_changing_by_one_bit_is_not_frozen() {
    let mut rig = Rig::new();
    rig.run_active(1.0);
    let mut state = rig.state;
    let mut cmd = JointCommand::zeros(DOF);
    for k in 1..=3000u32 {
        rig.now += Duration::from_micros(PERIOD_US);
        state.stamp = rig.now;
        if k % 499 == 0 {
            state.position[2] = f64::from_bits(state.position[2].to_bits() ^ 1);
        }
        cmd.torque.fill(1.0);
        let out = rig.sup.apply(&state, &rig.report, &mut cmd, rig.now);
        assert!(matches!(out, SafetyOutcome::Active { .. }), "tick {k}: {out:?}");
    }
}

#[test]
fn request_disable_cuts_torque_without_a_fault_and_re_enable_ramps_from_zero() {
    let mut rig = Rig::new();
    rig.run_active(6.0);
    rig.sup.request_disable().unwrap();
    let (out, cmd) = rig.tick(6.0);
    assert_eq!(out, SafetyOutcome::Disabled);
    assert!(cmd.is_zero(), "torque off at once");
    assert_eq!(rig.sup.stop_reason(), None, "a disable is not a fault");
    rig.sup.request_enable().unwrap();
    let (out, cmd) = rig.tick(6.0);
    assert!(matches!(out, SafetyOutcome::Enabling { .. }));
    assert_eq!(cmd.torque[0], 0.0, "the ramp starts from zero again");
    // From a safe stop a disable is allowed too; from a fault (e-stop) only `reset` leaves.
    rig.run_active_from_enabling(6.0);
    rig.sup.request_stop(rig.now);
    assert_eq!(rig.sup.state(), SafetyState::SafeStop);
    rig.sup.request_disable().unwrap();
    assert_eq!(rig.sup.state(), SafetyState::Disabled);
    rig.sup.estop();
    assert!(matches!(
        rig.sup.request_disable(),
        Err(plexo_controller::ControllerError::InvalidTransition { state: SafetyState::Fault, .. })
    ));
    assert!(rig.tick(6.0).1.is_zero());
}

#[test]
fn request_stop_holds_with_damping_stays_stopped_at_standstill_and_needs_reset() {
    let mut rig = Rig::new();
    rig.report.hold_torque.fill(3.0);
    rig.run_active(5.0);
    // Not from Disabled: nothing to stop.
    let mut idle = Rig::new();
    idle.sup.request_stop(idle.now);
    assert_eq!(idle.sup.state(), SafetyState::Disabled);

    rig.state.velocity[1] = 0.5;
    rig.sup.request_stop(rig.now);
    let (out, cmd) = rig.tick(5.0);
    assert_eq!(out, SafetyOutcome::SafeStop { reason: StopReason::OperatorStop, standstill: false });
    // Category 2: from the 5 Nm command towards hold − damping·q̇, one rate-limited step.
    let step = rig.sup.torque_rate_max(1) * rig.sup.config().period;
    assert!((cmd.torque[1] - (5.0 - step)).abs() < 1e-9, "{}", cmd.torque[1]);
    let mut cmd = cmd;
    for _ in 0..200 {
        cmd = rig.tick(5.0).1;
    }
    let damping = rig.sup.config().safe_stop_damping;
    assert!((cmd.torque[1] - (3.0 - damping * 0.5)).abs() < 1e-9, "damped hold: {}", cmd.torque[1]);
    assert!((cmd.torque[0] - 3.0).abs() < 1e-9, "a still joint gets the hold torque: {}", cmd.torque[0]);
    // Standing still: the stop is held indefinitely (no standstill timeout), power kept.
    rig.state.velocity[1] = 0.0;
    let timeout_ticks = (rig.sup.config().safe_stop_timeout * 1e6 / PERIOD_US as f64) as usize;
    for k in 0..2 * timeout_ticks {
        let (out, cmd) = rig.tick(5.0);
        assert_eq!(out, SafetyOutcome::SafeStop { reason: StopReason::OperatorStop, standstill: true });
        if k >= 10 {
            assert!((cmd.torque[1] - 3.0).abs() < 1e-9, "hold torque once the damping term has ramped out");
        }
    }
    assert!(rig.sup.request_enable().is_err(), "no enable out of a stop without reset");
    rig.sup.reset().unwrap();
    assert_eq!(rig.tick(5.0).0, SafetyOutcome::Disabled);
}

#[test]
fn set_rom_applies_only_while_disabled_and_rejects_bad_ranges() {
    let mut rig = Rig::new();
    let mut narrow = rom();
    narrow[3] = RomLimit { min: 0.5, max: 1.5 };
    rig.sup.set_rom(&joints(), &narrow).unwrap();
    assert_eq!(rig.sup.effective_limits(3), (0.5, 1.5));
    // The new ROM is enforced: the elbow at 1.6 rad (inside the old ROM) is now beyond the limit + tolerance.
    rig.run_active(0.0);
    assert!(matches!(
        rig.sup.set_rom(&joints(), &rom()),
        Err(plexo_controller::ControllerError::InvalidTransition { state: SafetyState::Active, .. })
    ));
    assert_eq!(rig.sup.effective_limits(3), (0.5, 1.5), "unchanged while active");
    rig.state.position[3] = 1.5 + rig.sup.config().position_tolerance + 0.01;
    let (out, _) = rig.tick(0.0);
    assert!(
        matches!(out, SafetyOutcome::SafeStop { reason: StopReason::PositionLimit { joint: 3, .. }, .. }),
        "{out:?}"
    );
    rig.sup.request_disable().unwrap();
    let mut empty = rom();
    empty[2] = RomLimit { min: 0.4, max: 0.4 };
    let err = rig.sup.set_rom(&joints(), &empty).unwrap_err().to_string();
    assert!(err.contains("rom[2]") && err.contains("shoulder_rotation"), "{err}");
    let mut outside = rom();
    outside[0] = RomLimit { min: 2.0, max: 3.0 }; // beyond the abduction hard limit (π/2)
    let err = rig.sup.set_rom(&joints(), &outside).unwrap_err().to_string();
    assert!(err.contains("rom[0]") && err.contains("does not overlap"), "{err}");
    assert!(rig.sup.set_rom(&joints(), &rom()[..3]).is_err(), "one range per joint");
}

/// Regression: a huge but finite state value overflowed a wall term to −∞, which the old saturation turned into
/// zero torque; it must saturate with its sign (full push-back inside the torque limit).
#[test]
fn huge_finite_position_saturates_the_wall_push_back_instead_of_zeroing_it() {
    let mut rig = Rig::new();
    rig.run_active(0.0);
    rig.state.position[3] = 1e300;
    rig.state.velocity[3] = 1e300;
    let (out, cmd) = rig.tick(0.0);
    assert!(matches!(out, SafetyOutcome::SafeStop { .. }), "{out:?}");
    let step = rig.sup.torque_rate_max(3) * rig.sup.config().period;
    assert!((cmd.torque[3] + step).abs() < 1e-9, "first step of the push-back: {}", cmd.torque[3]);
    let mut cmd = cmd;
    for _ in 0..200 {
        cmd = rig.tick(0.0).1;
        assert!(cmd.is_finite());
    }
    assert_eq!(cmd.torque[3], -rig.sup.torque_max(3), "full push-back into the range");
}

/// A NaN velocity does not remove the hold: gravity is known from the position, so the category-2 stop keeps
/// holding (without damping) until the NaN persists for `nonfinite_fault_samples` and the stop faults.
#[test]
fn nan_velocity_keeps_the_hold_torque_until_the_fault() {
    let mut rig = Rig::new();
    rig.report.hold_torque.fill(3.0);
    rig.run_active(3.0);
    rig.state.velocity[1] = f64::NAN;
    let samples = rig.sup.config().nonfinite_fault_samples;
    for k in 1..samples {
        let (out, cmd) = rig.tick(3.0);
        assert!(matches!(out, SafetyOutcome::SafeStop { reason: StopReason::NonFiniteState, .. }), "{k}: {out:?}");
        assert_eq!(cmd.torque[1], 3.0, "NaN sample {k}: hold kept, no damping from an unknown velocity");
    }
    let (out, cmd) = rig.tick(3.0);
    assert_eq!(out, SafetyOutcome::Fault { reason: StopReason::NonFiniteState }, "at NaN sample {samples}");
    assert!(cmd.is_zero());
}

/// The supervisor tells which limit shaped the torque: a clinical engineer reading "N ticks limited" must be able
/// to tell a protecting limit (walls, saturation, velocity fade) from the rate limit smoothing a noisy request.
#[test]
fn limited_ticks_are_attributed_to_the_stage_that_changed_the_torque() {
    let mut rig = Rig::new();
    rig.run_active(0.0);
    let counts = |rig: &Rig| rig.sup.stats().limited_by;
    let start = counts(&rig);
    // Inside the range, slow, a steady moderate request: nothing limits.
    for _ in 0..50 {
        rig.tick(1.0);
    }
    let steady = counts(&rig);
    assert_eq!(steady.saturation, start.saturation);
    assert_eq!(steady.walls, start.walls);
    assert_eq!(steady.velocity_fade, start.velocity_fade);
    let settled = steady.rate; // the step 0 -> 1 Nm takes a few rate-limited ticks
    for _ in 0..20 {
        rig.tick(1.0);
    }
    assert_eq!(counts(&rig).rate, settled, "a steady request is not rate-limited");

    // A request far above the torque limit: saturated (and rate-limited while the output climbs).
    let before = counts(&rig);
    for _ in 0..10 {
        rig.tick(1e3);
    }
    let after = counts(&rig);
    assert_eq!(after.saturation - before.saturation, 10);
    assert_eq!(after.rate - before.rate, 10, "the output climbs at the rate limit");
    assert_eq!(after.walls, before.walls);

    // Back to a small request once the output has come down, then into the elbow's upper wall zone.
    for _ in 0..2000 {
        rig.tick(0.5);
    }
    let (_, hi) = rig.sup.effective_limits(3);
    rig.state.position[3] = hi - 0.5 * rig.sup.wall_width(3);
    let before = counts(&rig);
    rig.tick(0.5);
    assert_eq!(counts(&rig).walls - before.walls, 1);
    rig.state.position[3] = 1.9;
    for _ in 0..2000 {
        rig.tick(0.5);
    }

    // Fast motion along the torque: faded.
    rig.state.velocity[0] = 0.95 * rig.sup.velocity_max(0);
    let before = counts(&rig);
    rig.tick(0.5);
    assert_eq!(counts(&rig).velocity_fade - before.velocity_fade, 1);
    assert!(rig.sup.stats().intervention_ticks >= after.saturation, "every attributed tick is a limited tick");
}
