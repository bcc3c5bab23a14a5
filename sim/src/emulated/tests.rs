//! Closed-loop and fault-injection tests of the CAN stack: `CanRobot` ↔ virtual bus ↔ emulated drives ↔ plant.
//! Every fault test states its reaction and the bound in control cycles (one cycle = `write` then `read`).

use core::time::Duration;

use plexo_hal::can::{CanId, Fault, FaultRule, FrameMatch, NodeId, candump};
use plexo_hal::canopen::Cia402State;
use plexo_hal::mit::{self, AkModel, MitCommand, MitErrorCode};
use plexo_hal::planner::Protocol;
use plexo_hal::{ErrorKind, HalError, JointCommand, JointFlags, JointState, Lifecycle, Robot, RobotError};

use super::{EmulatedDrive, SimOverCan, TestPlant};

const RATE: f64 = 500.0;
const DT: f64 = 1.0 / RATE;
/// The host's node on every virtual bus (the drives' node is 0).
const HOST: NodeId = NodeId(1);
const DRIVES: NodeId = NodeId(0);
/// Zero is not representable in the symmetric 12-bit MIT torque field: 0 Nm packs to 2048 (of 0..=4095), which
/// decodes to +half an LSB = 36 Nm / 4095 / 2 = 4.4 mNm for the AK80-9. "Torque-free" over MIT means ≤ this.
const MIT_ZERO_RESIDUAL: f64 = 36.0 / 4095.0 / 2.0 + 1e-12;

fn torque_free(applied: &[f64]) -> bool {
    applied.iter().all(|t| t.abs() <= MIT_ZERO_RESIDUAL)
}

fn sim(protocol: Protocol, dof: usize) -> SimOverCan<TestPlant> {
    let plant = TestPlant::new(dof, 0.05, 0.2, DT);
    let config = SimOverCan::<TestPlant>::default_config(plant.joints(), protocol, RATE).unwrap();
    SimOverCan::new(plant, config).unwrap()
}

fn active(protocol: Protocol, dof: usize) -> (SimOverCan<TestPlant>, JointState) {
    let mut s = sim(protocol, dof);
    s.enable().unwrap();
    let mut st = JointState::zeros(dof);
    s.write(&JointCommand::zeros(dof)).unwrap();
    s.read(&mut st).unwrap();
    (s, st)
}

fn torque_cmd(dof: usize, joint: usize, tau: f64) -> JointCommand {
    let mut c = JointCommand::zeros(dof);
    c.torque[joint] = tau;
    c
}

fn with_mit<R>(s: &SimOverCan<TestPlant>, joint: usize, f: impl FnOnce(&mut super::EmulatedMitMotor) -> R) -> R {
    let mut d = s.drives();
    match d.drive_mut(joint) {
        Some(EmulatedDrive::Mit(m)) => f(m),
        other => panic!("joint {joint} is not an MIT drive: {other:?}"),
    }
}

fn with_cia<R>(s: &SimOverCan<TestPlant>, joint: usize, f: impl FnOnce(&mut super::EmulatedCia402Drive) -> R) -> R {
    let mut d = s.drives();
    match d.drive_mut(joint) {
        Some(EmulatedDrive::Cia402(c)) => f(c),
        other => panic!("joint {joint} is not a CiA 402 drive: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Closed loop over CAN matches the direct simulation.

fn pd(st: &JointState, target: f64) -> JointCommand {
    let mut c = JointCommand::zeros(st.dof());
    for i in 0..st.dof() {
        c.torque[i] = 20.0 * (target - st.position[i]) - 1.0 * st.velocity[i];
    }
    c
}

fn closed_loop_deviation(protocol: Protocol) -> (f64, f64) {
    let mut direct = TestPlant::new(2, 0.05, 0.2, DT);
    direct.enable().unwrap();
    let mut over_can = sim(protocol, 2);
    over_can.enable().unwrap();
    let (mut a, mut b) = (JointState::zeros(2), JointState::zeros(2));
    let mut max_dev: f64 = 0.0;
    for _ in 0..1000 {
        direct.read(&mut a).unwrap();
        over_can.read(&mut b).unwrap();
        direct.write(&pd(&a, 0.5)).unwrap();
        over_can.write(&pd(&b, 0.5)).unwrap();
        let mut after = JointState::zeros(2);
        direct.read(&mut after).unwrap();
        for i in 0..2 {
            max_dev = max_dev.max((after.position[i] - over_can.plant_state().position[i]).abs());
        }
    }
    direct.read(&mut a).unwrap();
    (max_dev, (a.position[0] - 0.5).abs())
}

#[test]
fn closed_loop_over_mit_matches_direct_simulation() {
    // Differences come only from quantisation: 16-bit position over 25 rad (0.38 mrad), 12-bit torque over
    // 36 Nm (8.8 mNm). Stated bound: 2 mrad over a 1 s step response to 0.5 rad.
    let (dev, err) = closed_loop_deviation(Protocol::Mit);
    assert!(dev < 2e-3, "max deviation {dev} rad");
    assert!(err < 0.05, "the direct loop itself converges ({err})");
}

#[test]
fn closed_loop_over_cia402_matches_direct_simulation() {
    // Quantisation: 2^17 counts/rev (48 µrad), torque in ‰ of 15 Nm (15 mNm). Stated bound: 2 mrad.
    let (dev, _) = closed_loop_deviation(Protocol::Cia402);
    assert!(dev < 2e-3, "max deviation {dev} rad");
}

#[test]
fn sim_over_can_is_deterministic_and_logs_parse() {
    let run = || {
        let (mut s, mut st) = active(Protocol::Cia402, 2);
        for k in 0..50 {
            s.write(&torque_cmd(2, k % 2, 1.0)).unwrap();
            s.read(&mut st).unwrap();
        }
        (st, s.candump_log())
    };
    let (a, log_a) = run();
    let (b, log_b) = run();
    assert_eq!(a, b);
    assert_eq!(log_a, log_b, "bit-for-bit reproducible");
    let records = candump::parse_log(&log_a).unwrap();
    assert!(records.iter().any(|r| r.frame.id() == CanId::Standard(0x080)), "SYNC in the log");
    assert!(records.windows(2).all(|w| w[0].time <= w[1].time));
}

// ---------------------------------------------------------------------------------------------------------
// Safety (§5) — reaction and bound in cycles.

#[test]
fn lost_replies_three_cycles_safe_stop_mit() {
    let (mut s, mut st) = active(Protocol::Mit, 2);
    s.buses()[0].inject(FaultRule { fault: Fault::Drop, matches: FrameMatch::FromNode(DRIVES), count: u32::MAX });
    let cmd = torque_cmd(2, 0, 1.0);
    for cycle in 1..=2 {
        s.write(&cmd).unwrap();
        s.read(&mut st).unwrap();
        assert!(st.flags[0].contains(JointFlags::NO_REPLY), "cycle {cycle}");
        assert_eq!(s.lifecycle(), Lifecycle::Active, "cycle {cycle}: not yet");
    }
    s.write(&cmd).unwrap();
    let e = s.read(&mut st).unwrap_err();
    assert!(matches!(e, HalError::ReplyTimeout { joint: 0, node_id: 1, cycles: 3, .. }), "{e}");
    assert!(e.to_string().contains("joint 0 (node 1) silent for 3 cycles"), "{e}");
    assert_eq!(s.lifecycle(), Lifecycle::Fault);
    // Torque-off went out in the same read: the last frames are exit-motor-mode for both motors.
    let rec = s.buses()[0].recorded();
    let last: Vec<_> = rec[rec.len() - 2..].iter().map(|(_, f)| f.data().to_vec()).collect();
    assert_eq!(last, vec![mit::EXIT_MOTOR_MODE.to_vec(); 2]);
    s.write(&JointCommand::zeros(2)).unwrap();
    assert_eq!(s.applied_torque(), &[0.0, 0.0], "no torque in the next period");
}

#[test]
fn lost_replies_three_cycles_safe_stop_cia402() {
    let (mut s, mut st) = active(Protocol::Cia402, 1);
    for (lo, hi) in [(0x181, 0x1FF), (0x281, 0x2FF)] {
        s.buses()[0].inject(FaultRule { fault: Fault::Drop, matches: FrameMatch::IdRange(lo, hi), count: u32::MAX });
    }
    for _ in 1..=2 {
        s.write(&torque_cmd(1, 0, 2.0)).unwrap();
        s.read(&mut st).unwrap();
    }
    s.write(&torque_cmd(1, 0, 2.0)).unwrap();
    let e = s.read(&mut st).unwrap_err();
    assert!(matches!(e, HalError::ReplyTimeout { joint: 0, node_id: 1, cycles: 3, .. }), "{e}");
    s.write(&JointCommand::zeros(1)).unwrap();
    assert_eq!(s.applied_torque(), &[0.0]);
    assert_eq!(with_cia(&s, 0, |d| d.state()), Cia402State::SwitchOnDisabled, "disable voltage reached the drive");
}

#[test]
fn link_drop_does_not_leave_motor_holding_last_command() {
    // Field failure: the motor keeps its last command when the link drops. The drive timeout (3 periods,
    // required in the config) switches it off; the host faults after 3 silent cycles.
    let (mut s, mut st) = active(Protocol::Mit, 1);
    let cmd = torque_cmd(1, 0, 4.0);
    s.write(&cmd).unwrap();
    s.read(&mut st).unwrap();
    s.buses()[0].inject(FaultRule { fault: Fault::Drop, matches: FrameMatch::FromNode(HOST), count: u32::MAX });
    let mut applied = Vec::new();
    for _ in 0..5 {
        let _ = s.write(&cmd); // refused (NotActive) once the host has faulted; the plant still advances
        let _ = s.read(&mut st);
        applied.push(s.applied_torque()[0]);
    }
    assert!(applied[..3].iter().all(|t| (t - 4.0).abs() < 0.02), "{applied:?}");
    assert_eq!(&applied[3..], &[0.0, 0.0], "off from the 4th period: timeout 6 ms = 3 periods");
    assert_eq!(with_mit(&s, 0, |m| m.timeouts()), 1);
    assert_eq!(s.lifecycle(), Lifecycle::Fault);
}

#[test]
fn bus_off_turns_torque_off_with_a_clear_error_and_recovers_only_on_reset() {
    let (mut s, mut st) = active(Protocol::Mit, 2);
    s.buses()[0].inject(FaultRule { fault: Fault::BusOff, matches: FrameMatch::FromNode(HOST), count: 1 });
    s.write(&torque_cmd(2, 0, 3.0)).unwrap();
    let e = s.read(&mut st).unwrap_err();
    assert!(matches!(&e, HalError::BusOff { bus } if bus == "can0"), "{e}");
    assert_eq!(e.kind(), ErrorKind::Disconnected);
    assert_eq!(s.lifecycle(), Lifecycle::Fault, "reaction in the same cycle");
    // The host cannot reach the drives: their CAN timeout ends the torque within 3 periods + 1.
    let mut off_after = None;
    for k in 1..=4 {
        let _ = s.write(&JointCommand::zeros(2));
        if s.applied_torque() == [0.0, 0.0] && off_after.is_none() {
            off_after = Some(k);
        }
    }
    assert!(off_after.is_some_and(|k| k <= 4), "{off_after:?}");
    // No automatic recovery.
    for _ in 0..10 {
        assert!(matches!(s.write(&torque_cmd(2, 0, 1.0)), Err(HalError::NotActive { .. })));
        let _ = s.read(&mut st);
        assert_eq!(s.lifecycle(), Lifecycle::Fault);
    }
    assert!(matches!(s.enable(), Err(HalError::InvalidTransition { .. })));
    s.reset().unwrap();
    assert_eq!(s.lifecycle(), Lifecycle::Disabled);
    s.enable().unwrap();
    s.write(&torque_cmd(2, 0, 1.0)).unwrap();
    s.read(&mut st).unwrap();
    assert!((s.applied_torque()[0] - 1.0).abs() < 0.02);
}

#[test]
fn estop_release_never_sends_queued_frames() {
    let (mut s, mut st) = active(Protocol::Mit, 1);
    let r = AkModel::Ak80_9.ranges();
    s.write(&torque_cmd(1, 0, 3.0)).unwrap();
    s.read(&mut st).unwrap();
    // The controller goes bus-off: the next command frames wait in its queue (as in the Linux driver).
    s.buses()[0].inject(FaultRule { fault: Fault::BusOff, matches: FrameMatch::FromNode(HOST), count: 1 });
    s.write(&torque_cmd(1, 0, 3.0)).unwrap();
    s.write(&torque_cmd(1, 0, 3.0)).unwrap();
    s.estop().unwrap();
    assert_eq!(s.lifecycle(), Lifecycle::EStopped);
    s.reset().unwrap();
    s.enable().unwrap();
    for _ in 0..5 {
        s.write(&JointCommand::zeros(1)).unwrap();
        s.read(&mut st).unwrap();
    }
    let with_torque = s.buses()[0]
        .recorded()
        .iter()
        .filter(|(_, f)| f.id() == CanId::Standard(1))
        .filter_map(|(_, f)| MitCommand::decode(f.data(), &r))
        .filter(|c| (c.torque - 3.0).abs() < 0.05)
        .count();
    assert_eq!(with_torque, 1, "only the frame sent before the bus-off; the queued ones never left");
    assert!(s.can_robot().stats().discarded_frames >= 2);
}

#[test]
fn estop_latches_and_turns_torque_off_at_once() {
    for protocol in [Protocol::Mit, Protocol::Cia402] {
        let (mut s, mut st) = active(protocol, 2);
        s.write(&torque_cmd(2, 1, 2.0)).unwrap();
        s.read(&mut st).unwrap();
        assert!(s.applied_torque()[1].abs() > 1.9);
        s.estop().unwrap();
        s.write(&JointCommand::zeros(2)).unwrap();
        assert_eq!(s.applied_torque(), &[0.0, 0.0], "{protocol:?}: the first period after the e-stop");
        assert!(matches!(s.write(&torque_cmd(2, 1, 2.0)), Err(HalError::NotActive { state: Lifecycle::EStopped })));
        s.read(&mut st).unwrap();
        assert_eq!(s.lifecycle(), Lifecycle::EStopped);
        s.reset().unwrap();
        s.write(&JointCommand::zeros(2)).unwrap();
        assert_eq!(s.applied_torque(), &[0.0, 0.0], "{protocol:?}: reset never re-sends the old command");
    }
}

#[test]
fn enter_motor_mode_with_stale_command_does_not_kick() {
    let mut s = sim(Protocol::Mit, 1);
    let stale = MitCommand { position: 1.0, velocity: 0.0, kp: 50.0, kd: 1.0, torque: 2.0 };
    with_mit(&s, 0, |m| m.set_stale_command(stale));
    s.enable().unwrap();
    assert_eq!(with_mit(&s, 0, |m| m.command()).kp, 0.0, "zero-gain command in the drive before motor mode");
    s.write(&JointCommand::zeros(1)).unwrap();
    assert!(torque_free(s.applied_torque()), "no kick in the first period: {:?}", s.applied_torque());
    assert!(s.plant_state().position[0].abs() < 1e-6);
}

#[test]
fn emulated_motor_reproduces_the_kick_hazard() {
    // Negative control: entering motor mode directly with a stale command does produce torque, so the test
    // above would fail if `enable` did not clear the command first.
    let map = plexo_hal::JointMapping { ratio: 1.0, direction: 1.0, zero_offset: 0.0 };
    let mut m = super::EmulatedMitMotor::new(1, 0, AkModel::Ak80_9.ranges(), map, Duration::from_millis(6));
    m.set_stale_command(MitCommand { position: 1.0, velocity: 0.0, kp: 50.0, kd: 1.0, torque: 2.0 });
    m.handle(&mit::special_frame(1, mit::ENTER_MOTOR_MODE), Duration::ZERO);
    assert!(m.torque(Duration::ZERO) > 17.0, "50 Nm/rad · 1 rad + 2 Nm, clamped to 18 Nm");
}

#[test]
fn stale_cia402_target_torque_is_cleared_before_enable() {
    let mut s = sim(Protocol::Cia402, 1);
    with_cia(&s, 0, |d| d.set_stale_target(800));
    s.enable().unwrap();
    assert_eq!(with_cia(&s, 0, |d| d.target_torque()), 0);
    s.write(&JointCommand::zeros(1)).unwrap();
    assert_eq!(s.applied_torque(), &[0.0]);
}

#[test]
fn nan_effort_is_never_sent_to_motors() {
    let (mut s, mut st) = active(Protocol::Mit, 2);
    let mut cmd = torque_cmd(2, 0, 1.0);
    cmd.torque[1] = f64::NAN;
    let e = s.write(&cmd).unwrap_err();
    assert!(matches!(e, HalError::NonFiniteCommand { joint: 1, field: "torque" }), "{e}");
    assert!(torque_free(s.applied_torque()), "the refused cycle is torque-free: {:?}", s.applied_torque());
    s.read(&mut st).unwrap();
    assert!(st.is_finite());
    let r = AkModel::Ak80_9.ranges();
    for (_, f) in s.buses()[0].recorded() {
        if let Some(c) = MitCommand::decode(f.data(), &r) {
            assert!(c.torque.is_finite() && c.kp.is_finite());
        }
    }
}

#[test]
fn out_of_range_command_is_clamped_and_flagged() {
    let (mut s, mut st) = active(Protocol::Mit, 1);
    s.write(&torque_cmd(1, 0, 100.0)).unwrap();
    s.read(&mut st).unwrap();
    assert!(st.flags[0].contains(JointFlags::CLAMPED));
    assert!(!st.flags[0].is_fault(), "clamping is not a fault");
    assert!((s.applied_torque()[0] - 15.0).abs() < 0.01, "joint limit 15 Nm, not wrapped: {}", s.applied_torque()[0]);
    assert_eq!(s.can_robot().stats().clamped_values, 1);
    s.write(&torque_cmd(1, 0, 1.0)).unwrap();
    s.read(&mut st).unwrap();
    assert!(!st.flags[0].contains(JointFlags::CLAMPED), "flag is per cycle");
}

#[test]
fn mit_drive_error_code_faults_in_one_cycle() {
    let (mut s, mut st) = active(Protocol::Mit, 2);
    with_mit(&s, 1, |m| m.error = MitErrorCode::OverCurrent);
    s.write(&torque_cmd(2, 1, 1.0)).unwrap();
    let e = s.read(&mut st).unwrap_err();
    assert!(matches!(e, HalError::DriveFault { joint: 1, .. }), "{e}");
    assert!(st.flags[1].contains(JointFlags::POWER));
    assert_eq!(s.lifecycle(), Lifecycle::Fault);
}

#[test]
fn motor_temperature_warns_then_faults() {
    let (mut s, mut st) = active(Protocol::Mit, 1);
    with_mit(&s, 0, |m| m.temperature = 65.0);
    s.write(&JointCommand::zeros(1)).unwrap();
    s.read(&mut st).unwrap();
    assert!(st.flags[0].contains(JointFlags::WARNING_TEMPERATURE));
    assert_eq!(st.temperature.unwrap()[0], 65.0);
    with_mit(&s, 0, |m| m.temperature = 85.0);
    s.write(&JointCommand::zeros(1)).unwrap();
    let e = s.read(&mut st).unwrap_err();
    assert!(matches!(e, HalError::LimitViolation { joint: 0, .. }), "{e}");
}

#[test]
fn cia402_emcy_faults_in_one_cycle_with_decoded_meaning() {
    let (mut s, mut st) = active(Protocol::Cia402, 2);
    with_cia(&s, 0, |d| d.inject_fault(0x4310));
    s.write(&JointCommand::zeros(2)).unwrap();
    let e = s.read(&mut st).unwrap_err();
    assert!(e.to_string().contains("motor temperature too high"), "{e}");
    assert_eq!(s.can_robot().last_emcy(0).map(|e| e.code), Some(0x4310));
    assert!(st.flags[0].contains(JointFlags::OVER_TEMPERATURE));
    // Fault reset happens only on an explicit reset.
    s.reset().unwrap();
    assert_eq!(with_cia(&s, 0, |d| d.state()), Cia402State::SwitchOnDisabled);
    s.enable().unwrap();
}

#[test]
fn cia402_sync_loss_trips_the_drive_watchdog() {
    // Drive-side timeout configured by Plexo (0x1006 + 0x6007): without SYNC for > 3 cycles the drive disables.
    let (mut s, mut st) = active(Protocol::Cia402, 1);
    s.buses()[0].inject(FaultRule {
        fault: Fault::Drop,
        matches: FrameMatch::Id(CanId::Standard(0x080)),
        count: u32::MAX,
    });
    let mut disabled_at = None;
    for k in 1..=5 {
        let _ = s.write(&torque_cmd(1, 0, 1.0));
        let _ = s.read(&mut st);
        if disabled_at.is_none() && with_cia(&s, 0, |d| d.state()) != Cia402State::OperationEnabled {
            disabled_at = Some(k);
        }
    }
    assert!(disabled_at.is_some_and(|k| k <= 4), "{disabled_at:?}");
    assert_eq!(s.lifecycle(), Lifecycle::Fault, "host: no TPDO for 3 cycles");
}

#[test]
fn cia402_drive_reboot_is_detected_and_reset_reconfigures() {
    let (mut s, mut st) = active(Protocol::Cia402, 1);
    with_cia(&s, 0, |d| d.reboot());
    s.write(&JointCommand::zeros(1)).unwrap();
    let e = s.read(&mut st).unwrap_err();
    assert!(e.to_string().contains("BootUp"), "{e}");
    s.reset().unwrap();
    s.enable().unwrap();
    s.write(&torque_cmd(1, 0, 1.0)).unwrap();
    s.read(&mut st).unwrap();
    assert!((s.applied_torque()[0] - 1.0).abs() < 0.02, "re-mapped PDOs carry the torque again");
}

// ---------------------------------------------------------------------------------------------------------
// Every VirtualBus fault through the whole stack.

#[test]
fn delayed_reply_flags_one_cycle_then_recovers() {
    let (mut s, mut st) = active(Protocol::Mit, 2);
    s.buses()[0].inject(FaultRule {
        fault: Fault::Delay(Duration::from_millis(3)),
        matches: FrameMatch::Id(CanId::Standard(0)),
        count: 1,
    });
    s.write(&JointCommand::zeros(2)).unwrap();
    s.read(&mut st).unwrap();
    assert!(st.flags[0].contains(JointFlags::NO_REPLY) && !st.flags[1].contains(JointFlags::NO_REPLY));
    s.write(&JointCommand::zeros(2)).unwrap();
    s.read(&mut st).unwrap();
    assert!(!st.flags[0].contains(JointFlags::NO_REPLY), "recovered in the next cycle");
}

#[test]
fn duplicated_and_reordered_replies_are_harmless() {
    for fault in [Fault::Duplicate, Fault::Reorder] {
        let (mut s, mut st) = active(Protocol::Mit, 2);
        s.buses()[0].inject(FaultRule { fault, matches: FrameMatch::Id(CanId::Standard(0)), count: 1 });
        s.write(&torque_cmd(2, 0, 2.0)).unwrap();
        s.read(&mut st).unwrap();
        assert!(st.flags.iter().all(|f| f.is_empty() || *f == JointFlags::NONE), "{fault:?}: {:?}", st.flags);
        for i in 0..2 {
            assert!((st.position[i] - s.plant_state().position[i]).abs() < 1e-3, "{fault:?}");
        }
    }
}

#[test]
fn corrupted_reply_is_rejected_not_decoded() {
    let (mut s, mut st) = active(Protocol::Mit, 2);
    // Motor id byte 0x01 → 0x41: no such motor; the reply must not land on any joint.
    s.buses()[0].inject(FaultRule {
        fault: Fault::Corrupt { byte: 0, xor: 0x40 },
        matches: FrameMatch::Id(CanId::Standard(0)),
        count: 1,
    });
    s.write(&torque_cmd(2, 0, 2.0)).unwrap();
    s.read(&mut st).unwrap();
    assert!(st.flags[0].contains(JointFlags::NO_REPLY));
    s.write(&torque_cmd(2, 0, 2.0)).unwrap();
    s.read(&mut st).unwrap();
    assert!(!st.flags[0].contains(JointFlags::NO_REPLY));
}

#[test]
fn tx_buffer_full_is_reported_and_persistent_loss_faults() {
    let (mut s, mut st) = active(Protocol::Mit, 1);
    s.buses()[0].inject(FaultRule { fault: Fault::TxBufferFull, matches: FrameMatch::FromNode(HOST), count: u32::MAX });
    for cycle in 1..=2 {
        let e = s.write(&torque_cmd(1, 0, 1.0)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BufferFull, "cycle {cycle}");
        s.read(&mut st).unwrap();
        assert!(st.flags[0].contains(JointFlags::NO_REPLY));
    }
    let _ = s.write(&torque_cmd(1, 0, 1.0));
    assert!(matches!(s.read(&mut st), Err(HalError::ReplyTimeout { cycles: 3, .. })));
}
