//! Closed-loop and fault-injection tests of the CAN stack: `CanRobot` ↔ virtual bus ↔ emulated drives ↔ plant.
//! Every fault test states its reaction and the bound in control cycles (one cycle = `write` then `read`; the
//! plant advances one period in `write`). Every `VirtualBus` fault runs through the stack for both protocols.

use core::time::Duration;

use crate::canopen::{Cia402State, NmtCommand, Rpdo1, SdoRequest, SdoResponse, abort, od};
use crate::config::JointMapping;
use crate::frame::{CanFrame, CanId, controller, error_class};
use crate::mit::{self, AkModel, MitCommand, MitErrorCode};
use crate::planner::DriveProtocol;
use crate::virtual_bus::{Fault, FaultRule, FrameMatch, NodeId};
use plexo_hal::conformance::check_lifecycle_contract;
use plexo_hal::{ErrorKind, HalError, JointCommand, JointFlags, JointState, Lifecycle, Robot, RobotError};

use super::{EmulatedDrive, SimOverCan};
use crate::testing::TestPlant;

const RATE: f64 = 500.0;
const DT: f64 = 1.0 / RATE;
/// The host's node on every virtual bus (the drives' node is 0).
const HOST: NodeId = NodeId(1);
const DRIVES: NodeId = NodeId(0);
/// Zero is not representable in the symmetric 12-bit MIT torque field: 0 Nm packs to 2048 (of 0..=4095), which
/// decodes to +half an LSB = 36 Nm / 4095 / 2 = 4.4 mNm for the AK80-9. "Torque-free" over MIT means ≤ this.
const MIT_ZERO_RESIDUAL: f64 = 36.0 / 4095.0 / 2.0 + 1e-12;
const BOTH: [DriveProtocol; 2] = [DriveProtocol::Mit, DriveProtocol::Cia402];
/// Frames kept per bus by the in-memory recording of these tests.
const LOG: usize = 1 << 14;

fn torque_free(applied: &[f64]) -> bool {
    applied.iter().all(|t| t.abs() <= MIT_ZERO_RESIDUAL)
}

fn sim(protocol: DriveProtocol, dof: usize) -> SimOverCan<TestPlant> {
    let plant = TestPlant::new(dof, 0.05, 0.2, DT);
    let config = SimOverCan::<TestPlant>::default_config(plant.joints(), protocol, RATE).unwrap();
    let mut s = SimOverCan::new(plant, config).unwrap();
    s.record_in_memory(LOG);
    s
}

fn enabled(mut s: SimOverCan<TestPlant>) -> (SimOverCan<TestPlant>, JointState) {
    s.enable().unwrap();
    let mut st = JointState::zeros(s.dof());
    s.write(&JointCommand::zeros(s.dof())).unwrap();
    s.read(&mut st).unwrap();
    (s, st)
}

fn active(protocol: DriveProtocol, dof: usize) -> (SimOverCan<TestPlant>, JointState) {
    enabled(sim(protocol, dof))
}

/// Two joints, joint 0 on `can0`, joint 1 on `can1`.
fn two_buses(protocol: DriveProtocol) -> (SimOverCan<TestPlant>, JointState) {
    let plant = TestPlant::new(2, 0.05, 0.2, DT);
    let mut config = SimOverCan::<TestPlant>::default_config(plant.joints(), protocol, RATE).unwrap();
    assert_eq!(config.buses.len(), 1, "the default fits both joints on one bus");
    let mut can1 = config.buses[0].clone();
    can1.name = "can1".into();
    config.buses.push(can1);
    config.joints[1].bus = "can1".into();
    let mut s = SimOverCan::new(plant, config).unwrap();
    s.record_in_memory(LOG);
    enabled(s)
}

fn torque_cmd(dof: usize, joint: usize, tau: f64) -> JointCommand {
    let mut c = JointCommand::zeros(dof);
    c.torque[joint] = tau;
    c
}

fn cycle(s: &mut SimOverCan<TestPlant>, cmd: &JointCommand, st: &mut JointState) -> Result<(), HalError> {
    let w = s.write(cmd);
    let r = s.read(st);
    w.and(r)
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

/// CAN id of joint `joint`'s reply frame that carries its position (MIT reply id 0, CiA 402 TPDO1).
fn reply_id(protocol: DriveProtocol, joint: usize) -> CanId {
    match protocol {
        DriveProtocol::Mit => CanId::Standard(0),
        DriveProtocol::Cia402 => CanId::Standard(0x181 + joint as u16),
    }
}

/// CAN id of joint `joint`'s command frame (MIT command = motor id, CiA 402 RPDO1).
fn command_id(protocol: DriveProtocol, joint: usize) -> CanId {
    match protocol {
        DriveProtocol::Mit => CanId::Standard(1 + joint as u16),
        DriveProtocol::Cia402 => CanId::Standard(0x201 + joint as u16),
    }
}

/// Link torque [Nm] a recorded command frame of joint `joint` asks for (TestPlant joints: 15 Nm limit = AK80-9
/// over MIT, rated torque 15 Nm over CiA 402).
fn commanded_torque(protocol: DriveProtocol, joint: usize, frame: &CanFrame) -> Option<f64> {
    if frame.id() != command_id(protocol, joint) {
        return None;
    }
    match protocol {
        DriveProtocol::Mit => MitCommand::decode(frame.data(), &AkModel::Ak80_9.ranges()).map(|c| c.torque),
        DriveProtocol::Cia402 => {
            let node = 1 + joint as u8;
            let classic = CanFrame::new(frame.id(), frame.data())?;
            Rpdo1::decode(&classic, node).map(|r| f64::from(r.target_torque) / 1000.0 * 15.0)
        }
    }
}

/// How many command frames on bus 0 asked joint `joint` for `tau` [Nm] (within the field's resolution).
fn frames_asking(s: &SimOverCan<TestPlant>, protocol: DriveProtocol, joint: usize, tau: f64) -> usize {
    s.buses()[0]
        .recorded()
        .iter()
        .filter_map(|(_, f)| commanded_torque(protocol, joint, f))
        .filter(|t| (t - tau).abs() < 0.05)
        .count()
}

// ---------------------------------------------------------------------------------------------------------
// The contract and the closed loop over CAN.

#[test]
fn sim_over_can_honours_the_robot_contract_for_both_protocols() {
    for protocol in BOTH {
        let mut s = sim(protocol, 2);
        let report = check_lifecycle_contract(&mut s, Some(Duration::from_secs_f64(DT)))
            .unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
        assert!(report.writes >= 11, "{protocol:?}: {report:?}");
    }
}

fn pd(st: &JointState, target: f64) -> JointCommand {
    let mut c = JointCommand::zeros(st.dof());
    for i in 0..st.dof() {
        c.torque[i] = 20.0 * (target - st.position[i]) - 1.0 * st.velocity[i];
    }
    c
}

fn closed_loop_deviation(protocol: DriveProtocol) -> (f64, f64) {
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
    let (dev, err) = closed_loop_deviation(DriveProtocol::Mit);
    assert!(dev < 2e-3, "max deviation {dev} rad");
    assert!(err < 0.05, "the direct loop itself converges ({err})");
}

#[test]
fn closed_loop_over_cia402_matches_direct_simulation() {
    // Quantisation: 2^17 counts/rev (48 µrad), torque in ‰ of 15 Nm (15 mNm). Stated bound: 2 mrad.
    let (dev, _) = closed_loop_deviation(DriveProtocol::Cia402);
    assert!(dev < 2e-3, "max deviation {dev} rad");
}

#[test]
fn sim_over_can_is_deterministic_and_logs_parse() {
    let run = || {
        let (mut s, mut st) = active(DriveProtocol::Cia402, 2);
        for k in 0..50 {
            cycle(&mut s, &torque_cmd(2, k % 2, 1.0), &mut st).unwrap();
        }
        (st, s.candump_log())
    };
    let (a, log_a) = run();
    let (b, log_b) = run();
    assert_eq!(a, b);
    assert_eq!(log_a, log_b, "bit-for-bit reproducible");
    let records = crate::candump::parse_log(&log_a).unwrap();
    assert!(records.iter().any(|r| r.frame.id() == CanId::Standard(0x080)), "SYNC in the log");
    assert!(records.windows(2).all(|w| w[0].time <= w[1].time));
}

// ---------------------------------------------------------------------------------------------------------
// Recording.

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("plexo-can-emulated-{}-{name}.log", std::process::id()))
}

#[test]
fn candump_file_recording_writes_every_frame_of_both_buses_in_time_order() {
    for protocol in BOTH {
        let (mut s, mut st) = two_buses(protocol);
        let path = temp(&format!("session-{}", protocol.name()));
        s.record_candump(&path).unwrap();
        assert!(matches!(s.record_candump(&path), Err(HalError::Config { .. })), "one recording at a time");
        let before: u64 = s.buses().iter().map(|b| b.stats().frames).sum();
        for k in 0..500 {
            cycle(&mut s, &torque_cmd(2, k % 2, 0.5), &mut st).unwrap();
        }
        let on_wire: u64 = s.buses().iter().map(|b| b.stats().frames).sum::<u64>() - before;
        let summary = s.finish_candump().unwrap();
        assert_eq!(summary.dropped, 0, "{protocol:?}");
        assert_eq!(summary.written, on_wire, "{protocol:?}: every frame put on the wire is in the file");
        let text = std::fs::read_to_string(&path).unwrap();
        let records = crate::candump::parse_log(&text).unwrap();
        assert_eq!(records.len() as u64, on_wire);
        assert!(records.windows(2).all(|w| w[0].time <= w[1].time), "{protocol:?}: time-ordered");
        for bus in ["can0", "can1"] {
            assert!(records.iter().any(|r| r.ifname == bus), "{protocol:?}: {bus} in the file");
        }
        assert!(s.finish_candump().is_err(), "nothing left to finish");
        std::fs::remove_file(&path).unwrap();
    }
}

/// `(index, subindex)` of every SDO request `CanRobot`'s CiA 402 start-up sends to `node`, in order: the
/// configuration writes (controlword, target torque, mode, options, watchdogs, max torque), the PDO mapping
/// (CiA 301 procedure), then the reads of the rated torque and the mode display.
fn cia402_startup_sdo_objects(node: u8) -> Vec<(u16, u8)> {
    let mut objects = vec![
        (od::CONTROLWORD, 0),
        (od::TARGET_TORQUE, 0),
        (od::MODES_OF_OPERATION, 0),
        (od::QUICK_STOP_OPTION, 0),
        (od::FAULT_REACTION_OPTION, 0),
        (od::ABORT_CONNECTION_OPTION, 0),
        (od::COMMUNICATION_CYCLE_PERIOD, 0),
        (od::PRODUCER_HEARTBEAT, 0),
        (od::CONSUMER_HEARTBEAT, 1),
        (od::MAX_TORQUE, 0),
    ];
    objects.extend(crate::canopen::pdo_mapping_writes(node).iter().map(|w| match *w {
        SdoRequest::Download { index, subindex, .. } | SdoRequest::Upload { index, subindex } => (index, subindex),
    }));
    objects.extend([(od::MOTOR_RATED_TORQUE, 0), (od::MODES_OF_OPERATION_DISPLAY, 0)]);
    objects
}

/// Checks that `log` (one bus, in time order) holds the whole CiA 402 start-up of every node in `nodes` before
/// its first PDO: the boot-up message, NMT pre-operational, every configuration SDO in order, each answered
/// before the next, and NMT start. Returns how many frames came before the first PDO.
fn assert_cia402_startup_before_the_first_pdo(log: &[CanFrame], nodes: &[u8], what: &str) -> usize {
    let pdo = |f: &CanFrame| matches!(f.id(), CanId::Standard(id) if (0x180..0x580).contains(&id));
    let first_pdo = log.iter().position(pdo).unwrap_or_else(|| panic!("{what}: no PDO in the log"));
    let startup = &log[..first_pdo];
    for &node in nodes {
        let n = u16::from(node);
        let boot = startup.iter().position(|f| f.id() == CanId::Standard(0x700 + n) && f.data() == [0]);
        let nmt = |cmd: NmtCommand| startup.iter().position(|f| NmtCommand::decode(f) == Some((cmd, node)));
        let (Some(boot), Some(pre_op), Some(start)) =
            (boot, nmt(NmtCommand::EnterPreOperational), nmt(NmtCommand::Start))
        else {
            panic!("{what}: node {node}: boot-up, NMT pre-operational or NMT start missing before the first PDO");
        };
        assert!(boot < pre_op && pre_op < start, "{what}: node {node}: boot-up {boot}, pre-op {pre_op}, start {start}");
        let mut objects = Vec::new();
        let mut answered = true;
        for f in &startup[pre_op..start] {
            if let Some(req) = SdoRequest::decode(f, node) {
                assert!(answered, "{what}: node {node}: SDO request {req:?} before the previous one was answered");
                objects.push(match req {
                    SdoRequest::Download { index, subindex, .. } | SdoRequest::Upload { index, subindex } => {
                        (index, subindex)
                    }
                });
                answered = false;
            } else if SdoResponse::decode(f, node).is_some() {
                answered = true;
            }
        }
        assert!(answered, "{what}: node {node}: the last SDO was not answered before NMT start");
        assert_eq!(objects, cia402_startup_sdo_objects(node), "{what}: node {node}: SDO configuration in order");
    }
    first_pdo
}

#[test]
fn regression_a_sim_over_can_recording_lacked_the_start_up_nmt_and_sdo_frames() {
    // Before: `plexo sim --over-can cia402 --candump FILE` started the recording on a constructed `SimOverCan`,
    // after `CanRobot` had configured the drives: the log began with the first cycle's PDOs.
    let plant = || TestPlant::new(4, 0.05, 0.2, DT);
    let config = SimOverCan::<TestPlant>::default_config(plant().joints(), DriveProtocol::Cia402, RATE).unwrap();
    assert_eq!(config.buses.len(), 2, "3 drives on can0, 1 on can1 at 500 Hz");
    let nodes_on =
        |bus: &str| -> Vec<u8> { config.joints.iter().filter(|j| j.bus == bus).map(|j| j.node_id).collect() };
    let run = |s: &mut SimOverCan<TestPlant>| {
        let mut st = JointState::zeros(4);
        for _ in 0..3 {
            cycle(s, &JointCommand::zeros(4), &mut st).unwrap();
        }
        s.enable().unwrap();
        for k in 0..20 {
            cycle(s, &torque_cmd(4, k % 4, 0.5), &mut st).unwrap();
        }
    };

    // In memory, started by `with_recording` before the first frame.
    let (mut s, ()) = SimOverCan::with_recording(plant(), config.clone(), |buses| {
        for bus in buses {
            bus.start_recording(LOG);
        }
        Ok::<(), HalError>(())
    })
    .unwrap();
    run(&mut s);
    for (b, bus) in s.buses().iter().enumerate() {
        let log: Vec<CanFrame> = bus.recorded().into_iter().map(|(_, f)| f).collect();
        let nodes = nodes_on(&bus.name());
        assert_cia402_startup_before_the_first_pdo(&log, &nodes, "in memory");
        // The very first frame on the bus is a drive's boot-up message, at time 0.
        assert_eq!(log[0].id(), CanId::Standard(0x700 + u16::from(nodes[0])), "bus {b}");
        assert_eq!(bus.recorded()[0].0, core::time::Duration::from_micros(65), "end of the first frame");
    }

    // The candump file of `new_with_candump`, as `plexo sim --candump` writes it: all buses in one file.
    let path = temp("startup");
    let mut s = SimOverCan::new_with_candump(plant(), config.clone(), &path).unwrap();
    run(&mut s);
    let on_wire: u64 = s.buses().iter().map(|b| b.stats().frames).sum();
    let summary = s.finish_candump().unwrap();
    assert_eq!((summary.written, summary.dropped), (on_wire, 0), "every frame since the first is in the file");
    let records = crate::candump::parse_log(&std::fs::read_to_string(&path).unwrap()).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(records.windows(2).all(|w| w[0].time <= w[1].time), "time-ordered");
    for bus in ["can0", "can1"] {
        let log: Vec<CanFrame> = records.iter().filter(|r| r.ifname == bus).map(|r| r.frame).collect();
        assert_cia402_startup_before_the_first_pdo(&log, &nodes_on(bus), "candump file");
    }

    // The old way still works and still starts at the first cycle (documented): no SDO in its log.
    let mut s = SimOverCan::new(plant(), config).unwrap();
    s.record_in_memory(LOG);
    run(&mut s);
    let log = s.buses()[0].recorded();
    assert!(matches!(log[0].1.id(), CanId::Standard(id) if (0x180..0x580).contains(&id) || id == 0x77F));
}

// ---------------------------------------------------------------------------------------------------------
// Safety (issue 5 §5) — reaction and bound in cycles.

#[test]
fn lost_replies_three_cycles_safe_stop_both_protocols() {
    for protocol in BOTH {
        let (mut s, mut st) = active(protocol, 2);
        s.buses()[0].inject(FaultRule { fault: Fault::Drop, matches: FrameMatch::FromNode(DRIVES), count: u32::MAX });
        let cmd = torque_cmd(2, 0, 1.0);
        for k in 1..=2 {
            cycle(&mut s, &cmd, &mut st).unwrap();
            assert!(st.flags[0].contains(JointFlags::REPLY_MISSED), "{protocol:?} cycle {k}: {:?}", st.flags[0]);
            assert!(!st.flags[0].is_fault(), "{protocol:?} cycle {k}: one or two missing replies are advisory");
            assert_eq!(s.lifecycle(), Lifecycle::Active, "{protocol:?} cycle {k}: not yet");
        }
        s.write(&cmd).unwrap();
        let e = s.read(&mut st).unwrap_err();
        assert!(matches!(e, HalError::ReplyTimeout { joint: 0, node_id: 1, cycles: 3, .. }), "{protocol:?}: {e}");
        assert!(e.to_string().contains("joint 0 (node 1) silent for 3 cycles"), "{e}");
        assert!(st.flags[0].contains(JointFlags::NO_REPLY) && st.flags[0].is_fault(), "{:?}", st.flags[0]);
        assert_eq!(s.lifecycle(), Lifecycle::Fault);
        s.write(&JointCommand::zeros(2)).unwrap();
        assert_eq!(s.applied_torque(), &[0.0, 0.0], "{protocol:?}: torque-off reached the drives in the next period");
    }
    // MIT: the torque-off of the 3rd read is exit-motor-mode for both motors.
    let (mut s, mut st) = active(DriveProtocol::Mit, 2);
    s.buses()[0].inject(FaultRule { fault: Fault::Drop, matches: FrameMatch::FromNode(DRIVES), count: u32::MAX });
    for _ in 0..3 {
        let _ = cycle(&mut s, &torque_cmd(2, 0, 1.0), &mut st); // the 3rd cycle returns the timeout
    }
    let rec = s.buses()[0].recorded();
    let last: Vec<_> = rec[rec.len() - 2..].iter().map(|(_, f)| f.data().to_vec()).collect();
    assert_eq!(last, vec![mit::EXIT_MOTOR_MODE.to_vec(); 2]);
}

#[test]
fn single_lost_reply_is_tolerated_and_recovers_in_the_next_cycle() {
    for protocol in BOTH {
        let (mut s, mut st) = active(protocol, 2);
        s.buses()[0].inject(FaultRule { fault: Fault::Drop, matches: FrameMatch::Id(reply_id(protocol, 0)), count: 1 });
        cycle(&mut s, &torque_cmd(2, 0, 1.0), &mut st).unwrap();
        assert!(st.flags[0].contains(JointFlags::REPLY_MISSED) && !st.flags[1].contains(JointFlags::REPLY_MISSED));
        cycle(&mut s, &torque_cmd(2, 0, 1.0), &mut st).unwrap();
        assert!(st.flags[0].is_empty(), "{protocol:?}: recovered: {:?}", st.flags[0]);
        assert_eq!(s.can_robot().stats().missed_replies, 1);
    }
}

#[test]
fn link_drop_does_not_leave_motor_holding_last_command() {
    // Field failure: the motor keeps its last command when the link drops. The drive timeout (3 periods,
    // required in the config) switches it off; the host faults after 3 silent cycles.
    let (mut s, mut st) = active(DriveProtocol::Mit, 1);
    let cmd = torque_cmd(1, 0, 4.0);
    cycle(&mut s, &cmd, &mut st).unwrap();
    s.buses()[0].inject(FaultRule { fault: Fault::Drop, matches: FrameMatch::FromNode(HOST), count: u32::MAX });
    let mut applied = Vec::new();
    for _ in 0..5 {
        let _ = s.write(&cmd); // refused (NotActive) once the host has faulted; the plant still advances
        let _ = s.read(&mut st); // the 3rd returns the timeout
        applied.push(s.applied_torque()[0]);
    }
    assert!(applied[..3].iter().all(|t| (t - 4.0).abs() < 0.02), "{applied:?}");
    assert_eq!(&applied[3..], &[0.0, 0.0], "off from the 4th period: timeout 6 ms = 3 periods");
    assert_eq!(with_mit(&s, 0, |m| m.timeouts()), 1);
    assert_eq!(s.lifecycle(), Lifecycle::Fault);
}

/// After the host went bus-off, the drive keeps its last command until its own watchdog ends it (MIT CAN
/// timeout 6 ms; CiA 402 SYNC loss 3 × 0x1006 = 6 ms) — returns the applied torque of joint `joint` for the
/// next `n` periods.
fn torque_after_host_lost(s: &mut SimOverCan<TestPlant>, joint: usize, n: usize) -> Vec<f64> {
    let mut st = JointState::zeros(s.dof());
    (0..n)
        .map(|_| {
            let _ = s.write(&JointCommand::zeros(s.dof())); // bus-off: the frames queue or fail
            let _ = s.read(&mut st); // Fault: no news
            s.applied_torque()[joint]
        })
        .collect()
}

#[test]
fn bus_off_turns_torque_off_with_a_clear_error_and_recovers_only_on_reset_both_protocols() {
    for protocol in BOTH {
        let (mut s, mut st) = active(protocol, 2);
        cycle(&mut s, &torque_cmd(2, 0, 3.0), &mut st).unwrap();
        assert!((s.applied_torque()[0] - 3.0).abs() < 0.02);
        s.buses()[0].inject(FaultRule { fault: Fault::BusOff, matches: FrameMatch::FromNode(HOST), count: 1 });
        let _ = s.write(&torque_cmd(2, 0, 3.0)); // queued in the bus-off controller
        let e = s.read(&mut st).unwrap_err();
        assert!(matches!(&e, HalError::BusOff { bus } if bus == "can0"), "{protocol:?}: {e}");
        assert_eq!(e.kind(), ErrorKind::Disconnected);
        assert_eq!(s.lifecycle(), Lifecycle::Fault, "{protocol:?}: reaction in the same cycle");
        // The host cannot reach the drive: it holds the last command (3 Nm) until its watchdog (6 ms = 3
        // periods after the last frame it received), then torque stays off.
        let applied = torque_after_host_lost(&mut s, 0, 20);
        let off = applied.iter().position(|t| *t == 0.0).unwrap_or(usize::MAX);
        assert!(off <= 3, "{protocol:?}: torque still on {off} periods after the fault: {applied:?}");
        assert!(applied[..off].iter().all(|t| (t - 3.0).abs() < 0.02), "{protocol:?}: {applied:?}");
        assert!(applied[off..].iter().all(|t| *t == 0.0), "{protocol:?}: torque stays off: {applied:?}");
        // No automatic recovery.
        for _ in 0..10 {
            assert!(matches!(s.write(&torque_cmd(2, 0, 1.0)), Err(HalError::NotActive { .. })));
            let _ = s.read(&mut st); // still Fault
            assert_eq!(s.lifecycle(), Lifecycle::Fault);
        }
        assert!(matches!(s.enable(), Err(HalError::InvalidTransition { .. })));
        s.reset().unwrap();
        assert_eq!(s.lifecycle(), Lifecycle::Disabled);
        s.enable().unwrap();
        cycle(&mut s, &torque_cmd(2, 0, 1.0), &mut st).unwrap();
        assert!((s.applied_torque()[0] - 1.0).abs() < 0.02, "{protocol:?}: {:?}", s.applied_torque());
        assert_eq!(frames_asking(&s, protocol, 0, 3.0), 1, "{protocol:?}: the queued 3 Nm frame never left");
    }
}

#[test]
fn bus_off_on_one_of_two_buses_turns_torque_off_on_all_buses() {
    for protocol in BOTH {
        let (mut s, mut st) = two_buses(protocol);
        let cmd = JointCommand { torque: plexo_hal::JointArray::splat(2, 2.0), drive_impedance: None };
        cycle(&mut s, &cmd, &mut st).unwrap();
        assert!(s.applied_torque().iter().all(|t| (t - 2.0).abs() < 0.02));
        s.buses()[0].inject(FaultRule { fault: Fault::BusOff, matches: FrameMatch::FromNode(HOST), count: 1 });
        let _ = s.write(&cmd);
        let e = s.read(&mut st).unwrap_err();
        assert!(matches!(&e, HalError::BusOff { bus } if bus == "can0"), "{protocol:?}: {e}");
        // can1 is healthy: its drive got the torque-off in that read and is off in the very next period.
        let can1 = torque_after_host_lost(&mut s, 1, 1);
        assert_eq!(can1, vec![0.0], "{protocol:?}: joint 1 (can1) off in the next period");
        // can0's drive ends its torque with its own watchdog within 3 periods.
        let can0 = torque_after_host_lost(&mut s, 0, 10);
        assert!(can0[2..].iter().all(|t| *t == 0.0), "{protocol:?}: joint 0 (can0): {can0:?}");
        assert!(s.applied_torque() == [0.0, 0.0]);
    }
}

fn tx_frames_dropped_by_estop(protocol: DriveProtocol, fault: Fault) -> (usize, Vec<f64>, u64) {
    let dof = if protocol == DriveProtocol::Mit && fault == Fault::Reorder { 2 } else { 1 };
    let joint = dof - 1;
    let (mut s, mut st) = active(protocol, dof);
    cycle(&mut s, &torque_cmd(dof, joint, 3.0), &mut st).unwrap();
    s.buses()[0].inject(FaultRule { fault, matches: FrameMatch::Id(command_id(protocol, joint)), count: 1 });
    if protocol == DriveProtocol::Cia402 && fault == Fault::Reorder {
        // The held RPDO would be released by the SYNC that follows it; keep the SYNC from being queued (ENOBUFS)
        // so that the RPDO is still held when the e-stop comes.
        s.buses()[0].inject(FaultRule {
            fault: Fault::TxBufferFull,
            matches: FrameMatch::Id(CanId::Standard(0x080)),
            count: 1,
        });
    }
    let _ = s.write(&torque_cmd(dof, joint, 3.0)); // the held frame; CiA 402 + Reorder: the SYNC fails
    let _ = s.read(&mut st); // the reply may be missing
    assert_eq!(s.buses()[0].node_label(HOST).as_deref(), Some("plexo"));
    s.estop().unwrap();
    let mut applied = Vec::new();
    s.write(&JointCommand::zeros(dof)).unwrap();
    applied.push(s.applied_torque()[joint]);
    s.reset().unwrap();
    s.enable().unwrap();
    for _ in 0..10 {
        cycle(&mut s, &JointCommand::zeros(dof), &mut st).unwrap();
        applied.push(s.applied_torque()[joint]);
    }
    (frames_asking(&s, protocol, joint, 3.0), applied, s.can_robot().stats().discarded_frames)
}

#[test]
fn estop_discards_commands_held_by_delay_or_reorder_and_none_is_sent_after_release() {
    // Regression: `discard_pending_tx` cleared only the bus-off queue; frames held by Delay/Reorder survived the
    // e-stop and reached the drive (CiA 402: a held RPDO replaced the quick stop in the drive's latch).
    for protocol in BOTH {
        for fault in [Fault::Delay(Duration::from_millis(5)), Fault::Reorder] {
            let (asked, applied, discarded) = tx_frames_dropped_by_estop(protocol, fault);
            assert_eq!(asked, 1, "{protocol:?} {fault:?}: only the frame sent before the e-stop asked for 3 Nm");
            assert!(discarded >= 1, "{protocol:?} {fault:?}: the held frame was discarded");
            assert!(torque_free(&applied), "{protocol:?} {fault:?}: torque after the e-stop: {applied:?}");
        }
    }
}

#[test]
fn estop_release_never_sends_frames_queued_during_bus_off() {
    for protocol in BOTH {
        let (mut s, mut st) = active(protocol, 1);
        cycle(&mut s, &torque_cmd(1, 0, 3.0), &mut st).unwrap();
        // The controller goes bus-off: the next command frames wait in its queue (as in the Linux driver).
        s.buses()[0].inject(FaultRule { fault: Fault::BusOff, matches: FrameMatch::FromNode(HOST), count: 1 });
        let _ = s.write(&torque_cmd(1, 0, 3.0));
        let _ = s.write(&torque_cmd(1, 0, 3.0));
        s.estop().unwrap();
        assert_eq!(s.lifecycle(), Lifecycle::EStopped);
        s.reset().unwrap();
        s.enable().unwrap();
        for _ in 0..5 {
            cycle(&mut s, &JointCommand::zeros(1), &mut st).unwrap();
            assert!(torque_free(s.applied_torque()), "{protocol:?}: {:?}", s.applied_torque());
        }
        assert_eq!(frames_asking(&s, protocol, 0, 3.0), 1, "{protocol:?}: the queued frames never left");
        assert!(s.can_robot().stats().discarded_frames >= 2);
    }
}

#[test]
fn estop_latches_and_turns_torque_off_at_once() {
    for protocol in BOTH {
        let (mut s, mut st) = active(protocol, 2);
        cycle(&mut s, &torque_cmd(2, 1, 2.0), &mut st).unwrap();
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
    let mut s = sim(DriveProtocol::Mit, 1);
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
    let map = JointMapping { ratio: 1.0, direction: 1.0, zero_offset: 0.0 };
    let mut m = super::EmulatedMitMotor::new(1, 0, AkModel::Ak80_9.ranges(), map, Duration::from_millis(6));
    m.set_stale_command(MitCommand { position: 1.0, velocity: 0.0, kp: 50.0, kd: 1.0, torque: 2.0 });
    m.handle(&mit::special_frame(1, mit::ENTER_MOTOR_MODE), Duration::ZERO);
    assert!(m.torque(Duration::ZERO) > 17.0, "50 Nm/rad · 1 rad + 2 Nm, clamped to 18 Nm");
}

#[test]
fn stale_cia402_target_torque_is_cleared_before_enable() {
    let mut s = sim(DriveProtocol::Cia402, 1);
    with_cia(&s, 0, |d| d.set_stale_target(800));
    s.enable().unwrap();
    assert_eq!(with_cia(&s, 0, |d| d.target_torque()), 0);
    s.write(&JointCommand::zeros(1)).unwrap();
    assert_eq!(s.applied_torque(), &[0.0]);
}

#[test]
fn nan_effort_is_never_sent_to_motors() {
    for protocol in BOTH {
        let (mut s, mut st) = active(protocol, 2);
        let mut cmd = torque_cmd(2, 0, 1.0);
        cmd.torque[1] = f64::NAN;
        let e = s.write(&cmd).unwrap_err();
        assert!(matches!(e, HalError::NonFiniteCommand { joint: 1, field: "torque" }), "{e}");
        assert!(torque_free(s.applied_torque()), "the refused cycle is torque-free: {:?}", s.applied_torque());
        s.read(&mut st).unwrap();
        assert!(st.is_finite());
        for (_, f) in s.buses()[0].recorded() {
            for j in 0..2 {
                if let Some(t) = commanded_torque(protocol, j, &f) {
                    assert!(t.is_finite() && t.abs() <= 1.0 + 0.05, "{protocol:?}: {f:?}");
                }
            }
        }
    }
}

#[test]
fn out_of_range_command_is_clamped_and_flagged() {
    for protocol in BOTH {
        let (mut s, mut st) = active(protocol, 1);
        cycle(&mut s, &torque_cmd(1, 0, 100.0), &mut st).unwrap();
        assert!(st.flags[0].contains(JointFlags::CLAMPED));
        assert!(!st.flags[0].is_fault(), "clamping is not a fault");
        let t = s.applied_torque()[0];
        assert!((t - 15.0).abs() < 0.02, "{protocol:?}: joint limit 15 Nm, not wrapped: {t}");
        assert_eq!(s.can_robot().stats().clamped_values, 1, "{protocol:?}");
        cycle(&mut s, &torque_cmd(1, 0, 1.0), &mut st).unwrap();
        assert!(!st.flags[0].contains(JointFlags::CLAMPED), "flag is per cycle");
    }
}

#[test]
fn cia402_permille_beyond_max_torque_is_clamped_and_counted() {
    let plant = TestPlant::new(1, 0.05, 0.2, DT);
    let mut config = SimOverCan::<TestPlant>::default_config(plant.joints(), DriveProtocol::Cia402, RATE).unwrap();
    if let Some(o) = config.joints[0].cia402.as_mut() {
        o.max_torque_permille = 500; // ±7.5 Nm of the 15 Nm rated torque
    }
    let (mut s, mut st) = enabled(SimOverCan::new(plant, config).unwrap());
    // 10 Nm is within the joint limit (15 Nm) but 667 ‰ > 500 ‰.
    cycle(&mut s, &torque_cmd(1, 0, 10.0), &mut st).unwrap();
    assert!(st.flags[0].contains(JointFlags::CLAMPED), "{:?}", st.flags[0]);
    assert_eq!(s.can_robot().stats().clamped_values, 1);
    assert!((s.applied_torque()[0] - 7.5).abs() < 1e-9, "{:?}", s.applied_torque());
    // Beyond the joint limit too: both clamps count.
    cycle(&mut s, &torque_cmd(1, 0, -40.0), &mut st).unwrap();
    assert_eq!(s.can_robot().stats().clamped_values, 3);
    assert!((s.applied_torque()[0] + 7.5).abs() < 1e-9);
}

#[test]
fn mit_drive_error_code_faults_in_one_cycle() {
    let (mut s, mut st) = active(DriveProtocol::Mit, 2);
    with_mit(&s, 1, |m| m.error = MitErrorCode::OverCurrent);
    s.write(&torque_cmd(2, 1, 1.0)).unwrap();
    let e = s.read(&mut st).unwrap_err();
    assert!(matches!(e, HalError::DriveFault { joint: 1, .. }), "{e}");
    assert!(st.flags[1].contains(JointFlags::POWER));
    assert_eq!(s.lifecycle(), Lifecycle::Fault);
}

#[test]
fn motor_temperature_warns_then_faults() {
    let (mut s, mut st) = active(DriveProtocol::Mit, 1);
    with_mit(&s, 0, |m| m.temperature = 65.0);
    cycle(&mut s, &JointCommand::zeros(1), &mut st).unwrap();
    assert!(st.flags[0].contains(JointFlags::WARNING_TEMPERATURE));
    assert_eq!(st.temperature.unwrap()[0], 65.0);
    with_mit(&s, 0, |m| m.temperature = 85.0);
    s.write(&JointCommand::zeros(1)).unwrap();
    let e = s.read(&mut st).unwrap_err();
    assert!(matches!(e, HalError::LimitViolation { joint: 0, .. }), "{e}");
}

#[test]
fn cia402_emcy_faults_in_one_cycle_with_decoded_meaning() {
    let (mut s, mut st) = active(DriveProtocol::Cia402, 2);
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
    let (mut s, mut st) = active(DriveProtocol::Cia402, 1);
    s.buses()[0].inject(FaultRule {
        fault: Fault::Drop,
        matches: FrameMatch::Id(CanId::Standard(0x080)),
        count: u32::MAX,
    });
    let mut disabled_at = None;
    for k in 1..=5 {
        let _ = cycle(&mut s, &torque_cmd(1, 0, 1.0), &mut st); // faults in the 3rd read (no TPDO)
        if disabled_at.is_none() && with_cia(&s, 0, |d| d.state()) != Cia402State::OperationEnabled {
            disabled_at = Some(k);
        }
    }
    assert!(disabled_at.is_some_and(|k| (3..=4).contains(&k)), "{disabled_at:?}");
    assert_eq!(s.lifecycle(), Lifecycle::Fault, "host: no TPDO for 3 cycles");
}

#[test]
fn cia402_drive_heartbeat_lost_faults_the_host_within_its_consumer_time() {
    // The drive's heartbeat (0x701, 100 ms) stops while its PDOs still flow: the host's consumer (3 × 100 ms)
    // faults. Bound: > 300 ms after the last heartbeat, which came at most 100 ms before the loss → between
    // cycle 101 (200 ms + 2 ms) and cycle 151 (300 ms + 2 ms) at 500 Hz.
    let (mut s, mut st) = active(DriveProtocol::Cia402, 1);
    s.buses()[0].inject(FaultRule {
        fault: Fault::Drop,
        matches: FrameMatch::Id(CanId::Standard(0x701)),
        count: u32::MAX,
    });
    let mut fault = None;
    for k in 1..=200 {
        if let Err(e) = cycle(&mut s, &torque_cmd(1, 0, 1.0), &mut st) {
            fault = Some((k, e));
            break;
        }
    }
    let (k, e) = fault.expect("heartbeat loss detected");
    assert!((101..=151).contains(&k), "fault at cycle {k}");
    assert!(matches!(&e, HalError::DriveFault { joint: 0, detail } if detail.contains("heartbeat lost")), "{e}");
    s.write(&JointCommand::zeros(1)).unwrap();
    assert_eq!(s.applied_torque(), &[0.0], "torque off in the next period");
}

#[test]
fn cia402_host_heartbeat_lost_disables_the_drive_and_the_host_sees_it() {
    // The host's heartbeat (0x77F, 50 ms) stops: the drive's consumer (3 × 50 ms, written at start-up) trips,
    // sends EMCY 0x8130 and disables (abort connection option 2). Bound: > 150 ms after the last heartbeat, sent
    // at most 50 ms before the loss → between cycle 51 and cycle 77; the host faults in the same read.
    let (mut s, mut st) = active(DriveProtocol::Cia402, 1);
    s.buses()[0].inject(FaultRule {
        fault: Fault::Drop,
        matches: FrameMatch::Id(CanId::Standard(0x77F)),
        count: u32::MAX,
    });
    let mut fault = None;
    for k in 1..=120 {
        if let Err(e) = cycle(&mut s, &torque_cmd(1, 0, 1.0), &mut st) {
            fault = Some((k, e));
            break;
        }
        assert!((s.applied_torque()[0] - 1.0).abs() < 0.02, "cycle {k}: still enabled");
    }
    let (k, e) = fault.expect("the drive's heartbeat consumer tripped");
    assert!((51..=77).contains(&k), "fault at cycle {k}");
    assert!(matches!(e, HalError::DriveFault { joint: 0, .. }), "{e}");
    assert_eq!(s.can_robot().last_emcy(0).map(|e| e.code), Some(0x8130), "heartbeat error EMCY");
    assert_eq!(with_cia(&s, 0, |d| d.state()), Cia402State::SwitchOnDisabled);
    s.write(&JointCommand::zeros(1)).unwrap();
    assert_eq!(s.applied_torque(), &[0.0], "the drive itself took the torque off: none in the next period");
}

#[test]
fn cia402_drive_reboot_is_detected_and_reset_reconfigures() {
    let (mut s, mut st) = active(DriveProtocol::Cia402, 1);
    with_cia(&s, 0, |d| d.reboot());
    s.write(&JointCommand::zeros(1)).unwrap();
    let e = s.read(&mut st).unwrap_err();
    assert!(e.to_string().contains("BootUp"), "{e}");
    s.reset().unwrap();
    s.enable().unwrap();
    cycle(&mut s, &torque_cmd(1, 0, 1.0), &mut st).unwrap();
    assert!((s.applied_torque()[0] - 1.0).abs() < 0.02, "re-mapped PDOs carry the torque again");
}

#[test]
fn cia402_sdo_abort_reaches_the_caller_as_sdo_abort() {
    // At start-up: the drive refuses the heartbeat consumer object.
    let plant = TestPlant::new(1, 0.05, 0.2, DT);
    let config = SimOverCan::<TestPlant>::default_config(plant.joints(), DriveProtocol::Cia402, RATE).unwrap();
    let e = SimOverCan::with_drives(plant, config, |d| match d.drive_mut(0) {
        Some(EmulatedDrive::Cia402(c)) => c.refuse_object(od::CONSUMER_HEARTBEAT, abort::UNSUPPORTED_ACCESS),
        _ => unreachable!("a CiA 402 configuration"),
    })
    .err()
    .expect("start-up must fail");
    assert!(
        matches!(e, HalError::SdoAbort { joint: 0, node_id: 1, index: 0x1016, subindex: 1, code: 0x0601_0000, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("0x1016:1 aborted with 0x06010000 (unsupported access to an object)"), "{e}");
    assert_eq!(e.kind(), ErrorKind::Fault);
    // At enable: the drive refuses the target torque: enable fails, nothing is enabled, no torque.
    let mut s = sim(DriveProtocol::Cia402, 1);
    with_cia(&s, 0, |d| d.refuse_object(od::TARGET_TORQUE, abort::DEVICE_STATE));
    let e = s.enable().unwrap_err();
    assert!(matches!(e, HalError::SdoAbort { index: 0x6071, code: abort::DEVICE_STATE, .. }), "{e}");
    assert_eq!(s.lifecycle(), Lifecycle::Disabled);
    assert_ne!(with_cia(&s, 0, |d| d.state()), Cia402State::OperationEnabled);
    s.write(&JointCommand::zeros(1)).unwrap();
    assert_eq!(s.applied_torque(), &[0.0]);
}

#[test]
fn cia402_rated_torque_mismatch_is_refused_naming_the_key() {
    // A drive reset to factory parameters reports another rated torque: every ‰ would be scaled wrongly.
    let plant = TestPlant::new(1, 0.05, 0.2, DT);
    let config = SimOverCan::<TestPlant>::default_config(plant.joints(), DriveProtocol::Cia402, RATE).unwrap();
    let e = SimOverCan::with_drives(plant, config, |d| match d.drive_mut(0) {
        Some(EmulatedDrive::Cia402(c)) => c.set_rated_torque(2_000),
        _ => unreachable!("a CiA 402 configuration"),
    })
    .err()
    .expect("start-up must fail");
    assert!(matches!(&e, HalError::Config { key, .. } if key == "joints[0].cia402.rated_torque_mnm"), "{e}");
    assert!(e.to_string().contains("2000 mNm"), "{e}");
    // The same when the drive is swapped while running: detected at reboot, refused at reset, no torque.
    let (mut s, mut st) = active(DriveProtocol::Cia402, 1);
    with_cia(&s, 0, |d| {
        d.reboot();
        d.set_rated_torque(2_000);
    });
    assert!(cycle(&mut s, &JointCommand::zeros(1), &mut st).is_err());
    let e = s.reset().unwrap_err();
    assert!(matches!(&e, HalError::Config { key, .. } if key == "joints[0].cia402.rated_torque_mnm"), "{e}");
    assert_eq!(s.lifecycle(), Lifecycle::Fault, "stays latched");
    assert!(s.enable().is_err());
}

// ---------------------------------------------------------------------------------------------------------
// Every VirtualBus fault through the whole stack, both protocols.

#[test]
fn delayed_reply_flags_one_cycle_then_recovers() {
    for protocol in BOTH {
        let (mut s, mut st) = active(protocol, 2);
        s.buses()[0].inject(FaultRule {
            fault: Fault::Delay(Duration::from_millis(1)),
            matches: FrameMatch::Id(reply_id(protocol, 0)),
            count: 1,
        });
        cycle(&mut s, &JointCommand::zeros(2), &mut st).unwrap();
        assert!(st.flags[0].contains(JointFlags::REPLY_MISSED), "{protocol:?}: {:?}", st.flags);
        assert!(!st.flags[1].contains(JointFlags::REPLY_MISSED));
        cycle(&mut s, &JointCommand::zeros(2), &mut st).unwrap();
        assert!(!st.flags[0].contains(JointFlags::REPLY_MISSED), "{protocol:?}: recovered in the next cycle");
    }
}

#[test]
fn persistent_delay_faults_at_onset_or_lags_by_fewer_cycles_than_the_limit() {
    // No sequence numbers: a reply delayed into a later cycle's window looks fresh. What the host does see is
    // the onset: ⌈(d + T)/T⌉ − 1 consecutive cycles without a reply. d = 3 ms at T = 2 ms: 2 missed cycles, then
    // every reply is 2 cycles old (< max_missed_cycles = 3, tolerated). d = 5 ms: 3 missed → fault.
    let (mut s, mut st) = active(DriveProtocol::Mit, 1);
    s.buses()[0].inject(FaultRule {
        fault: Fault::Delay(Duration::from_millis(3)),
        matches: FrameMatch::Id(CanId::Standard(0)),
        count: u32::MAX,
    });
    let mut history = Vec::new();
    for k in 0..40 {
        let tau = if k < 20 { 1.0 } else { -1.0 };
        cycle(&mut s, &torque_cmd(1, 0, tau), &mut st).unwrap();
        history.push((s.plant_state().position[0], st.position[0], st.flags[0]));
    }
    assert!(history[..2].iter().all(|h| h.2.contains(JointFlags::REPLY_MISSED)), "onset: {:?}", &history[..3]);
    assert!(history[2..].iter().all(|h| h.2.is_empty()), "steady state looks clean");
    let step = AkModel::Ak80_9.ranges().position_max * 2.0 / 65535.0;
    for k in 4..40 {
        let (truth_2_before, reported) = (history[k - 2].0, history[k].1);
        assert!((reported - truth_2_before).abs() <= step, "cycle {k}: data is exactly 2 cycles old");
    }
    let (mut s, mut st) = active(DriveProtocol::Mit, 1);
    s.buses()[0].inject(FaultRule {
        fault: Fault::Delay(Duration::from_millis(5)),
        matches: FrameMatch::Id(CanId::Standard(0)),
        count: u32::MAX,
    });
    cycle(&mut s, &JointCommand::zeros(1), &mut st).unwrap();
    cycle(&mut s, &JointCommand::zeros(1), &mut st).unwrap();
    assert!(matches!(cycle(&mut s, &JointCommand::zeros(1), &mut st), Err(HalError::ReplyTimeout { cycles: 3, .. })));
}

#[test]
fn duplicated_and_reordered_replies_are_harmless() {
    for protocol in BOTH {
        for fault in [Fault::Duplicate, Fault::Reorder] {
            let (mut s, mut st) = active(protocol, 2);
            // MIT replies of both joints share id 0: a second reorder in the same cycle would hold joint 1's reply
            // past the cycle, so reorder once; duplicate three cycles in a row.
            let count = if fault == Fault::Reorder { 1 } else { 3 };
            s.buses()[0].inject(FaultRule { fault, matches: FrameMatch::Id(reply_id(protocol, 0)), count });
            for _ in 0..3 {
                cycle(&mut s, &torque_cmd(2, 0, 2.0), &mut st).unwrap();
                assert!(st.flags.iter().all(|f| f.is_empty()), "{protocol:?} {fault:?}: {:?}", st.flags);
                for i in 0..2 {
                    let d = (st.position[i] - s.plant_state().position[i]).abs();
                    assert!(d < 1e-3, "{protocol:?} {fault:?}: joint {i} off by {d}");
                }
            }
            assert_eq!(s.can_robot().stats().missed_replies, 0);
        }
    }
}

#[test]
fn duplicated_and_reordered_commands_are_harmless() {
    for protocol in BOTH {
        for fault in [Fault::Duplicate, Fault::Reorder] {
            let (mut s, mut st) = active(protocol, 2);
            s.buses()[0].inject(FaultRule { fault, matches: FrameMatch::Id(command_id(protocol, 0)), count: 3 });
            for _ in 0..3 {
                cycle(&mut s, &torque_cmd(2, 0, 2.0), &mut st).unwrap();
                assert!((s.applied_torque()[0] - 2.0).abs() < 0.02, "{protocol:?} {fault:?}: {:?}", s.applied_torque());
            }
        }
    }
}

/// With `dof` joints, corrupts byte `byte` of the next `count` position replies with `xor` (MIT replies of all
/// joints share id 0: use one joint to corrupt only joint 0's), runs `count` cycles and returns the results.
fn corrupted(
    protocol: DriveProtocol,
    dof: usize,
    byte: usize,
    xor: u8,
    count: u32,
) -> (SimOverCan<TestPlant>, Vec<Result<(), HalError>>, JointState) {
    let (mut s, mut st) = active(protocol, dof);
    cycle(&mut s, &torque_cmd(dof, 0, 0.5), &mut st).unwrap();
    s.buses()[0].inject(FaultRule {
        fault: Fault::Corrupt { byte, xor },
        matches: FrameMatch::Id(reply_id(protocol, 0)),
        count,
    });
    let results = (0..count).map(|_| cycle(&mut s, &torque_cmd(dof, 0, 0.5), &mut st)).collect();
    (s, results, st)
}

#[test]
fn corrupted_reply_id_is_not_decoded_onto_any_joint() {
    // MIT: motor id byte 0x01 → 0x41: no such motor; the reply must not land on any joint.
    let (mut s, results, st) = corrupted(DriveProtocol::Mit, 2, 0, 0x40, 1);
    assert!(results[0].is_ok());
    assert!(st.flags[0].contains(JointFlags::REPLY_MISSED) && st.flags[1].is_empty(), "{:?}", st.flags);
    let mut st = st;
    cycle(&mut s, &torque_cmd(2, 0, 0.5), &mut st).unwrap();
    assert!(st.flags[0].is_empty());
}

#[test]
fn corrupted_position_or_torque_is_rejected_as_implausible_and_persisting_faults() {
    // Position high bytes: MIT byte 1 (p15..8: 0x10 = 4096 LSB = 1.56 rad); CiA 402 TPDO1 byte 5 (position
    // MSB: 2^24 counts = 804 rad). Torque: CiA 402 TPDO1 byte 7 (torque MSB: 0x10 = 4096 ‰ beyond 1270 ‰).
    // Each is far beyond the jump bound 2·v_max·Δt + 0.02 rad, which grows with the time since the last accepted
    // reply: 0.06 rad after one cycle, 0.14 rad after three (TestPlant v_max 10 rad/s, Δt 2 ms). A smaller
    // persistent offset (e.g. 0x01 in MIT byte 1 = 98 mrad) would be accepted after two cycles and then be
    // indistinguishable from an encoder offset.
    for (protocol, byte, xor) in
        [(DriveProtocol::Mit, 1, 0x10), (DriveProtocol::Cia402, 5, 0x01), (DriveProtocol::Cia402, 7, 0x10)]
    {
        let (mut s, results, mut st) = corrupted(protocol, 1, byte, xor, 1);
        assert!(results[0].is_ok(), "{protocol:?} byte {byte}: one corrupt frame is tolerated");
        assert!(st.flags[0].contains(JointFlags::REPLY_MISSED), "{protocol:?} byte {byte}: {:?}", st.flags[0]);
        assert!(
            (st.position[0] - s.plant_state().position[0]).abs() < 0.01,
            "{protocol:?}: the bad value was not taken"
        );
        assert_eq!(s.can_robot().stats().implausible_replies, 1, "{protocol:?} byte {byte}");
        cycle(&mut s, &torque_cmd(1, 0, 0.5), &mut st).unwrap();
        assert!(st.flags[0].is_empty(), "{protocol:?} byte {byte}: recovers in the next cycle");
        // Persisting: safe stop in the 3rd cycle, torque off in the next period.
        let (mut s, results, st) = corrupted(protocol, 1, byte, xor, 3);
        assert!(results[..2].iter().all(Result::is_ok), "{protocol:?} byte {byte}: {results:?}");
        let e = results[2].as_ref().unwrap_err();
        assert!(matches!(e, HalError::ImplausibleReply { joint: 0, cycles: 3, .. }), "{protocol:?} byte {byte}: {e}");
        assert_eq!(s.lifecycle(), Lifecycle::Fault);
        assert!(st.flags[0].contains(JointFlags::NO_REPLY), "{protocol:?}: {:?}", st.flags[0]);
        s.write(&JointCommand::zeros(1)).unwrap();
        assert!(s.applied_torque().iter().all(|t| *t == 0.0), "{protocol:?}: {:?}", s.applied_torque());
    }
}

#[test]
fn corrupted_mit_torque_field_stays_within_the_drive_range_and_is_not_a_fault() {
    // Any 12-bit torque code is a valid torque inside the drive's range: a corrupted torque field cannot be
    // told from a real reading. Its effect is bounded to one sample within ±18 Nm, and the next cycle is clean.
    let (mut s, results, mut st) = corrupted(DriveProtocol::Mit, 1, 5, 0xFF, 1);
    assert!(results[0].is_ok());
    assert!(st.torque[0].is_finite() && st.torque[0].abs() <= 18.0, "{}", st.torque[0]);
    assert!((st.torque[0] - 0.5).abs() > 0.1, "the corruption did change the reading: {}", st.torque[0]);
    assert!(st.flags[0].is_empty(), "{:?}", st.flags[0]);
    cycle(&mut s, &torque_cmd(1, 0, 0.5), &mut st).unwrap();
    assert!((st.torque[0] - 0.5).abs() < 0.02, "the next reading is correct: {}", st.torque[0]);
}

#[test]
fn tx_buffer_full_is_reported_and_persistent_loss_faults_both_protocols() {
    for protocol in BOTH {
        let (mut s, mut st) = active(protocol, 1);
        s.buses()[0].inject(FaultRule {
            fault: Fault::TxBufferFull,
            matches: FrameMatch::FromNode(HOST),
            count: u32::MAX,
        });
        for k in 1..=2 {
            let e = s.write(&torque_cmd(1, 0, 1.0)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::BufferFull, "{protocol:?} cycle {k}");
            s.read(&mut st).unwrap();
            assert!(st.flags[0].contains(JointFlags::REPLY_MISSED), "{protocol:?} cycle {k}");
        }
        let _ = s.write(&torque_cmd(1, 0, 1.0)); // BufferFull again
        assert!(matches!(s.read(&mut st), Err(HalError::ReplyTimeout { cycles: 3, .. })), "{protocol:?}");
        assert!(s.can_robot().stats().transmit_errors >= 3, "{protocol:?}: counted");
        // The drives stop on their own watchdogs (MIT CAN timeout, CiA 402 SYNC loss) within 3 more periods.
        let applied = torque_after_host_lost(&mut s, 0, 4);
        assert_eq!(applied[3], 0.0, "{protocol:?}: {applied:?}");
    }
}

#[test]
fn bus_error_frames_are_counted_and_flagged_without_stopping_both_protocols() {
    for protocol in BOTH {
        let (mut s, mut st) = active(protocol, 2);
        s.buses()[0].raise_error(HOST, error_class::CONTROLLER, [0, controller::TX_PASSIVE, 0, 0, 0, 0, 0, 0]);
        s.buses()[0].raise_error(HOST, error_class::CONTROLLER, [0, controller::RX_OVERFLOW, 0, 0, 0, 0, 0, 0]);
        cycle(&mut s, &torque_cmd(2, 0, 1.0), &mut st).unwrap();
        assert!(st.flags.iter().all(|f| f.contains(JointFlags::BUS_WARNING) && !f.is_fault()), "{:?}", st.flags);
        let stats = s.can_robot().stats();
        assert_eq!((stats.error_frames, stats.bus_passive, stats.controller_overflows), (2, 1, 1), "{protocol:?}");
        assert!((s.applied_torque()[0] - 1.0).abs() < 0.02, "{protocol:?}: still running");
        s.buses()[0].raise_error(HOST, error_class::CONTROLLER, [0, controller::ACTIVE, 0, 0, 0, 0, 0, 0]);
        cycle(&mut s, &torque_cmd(2, 0, 1.0), &mut st).unwrap();
        assert!(st.flags.iter().all(|f| f.is_empty()), "{protocol:?}: cleared when error active again");
    }
}

#[test]
fn dof_mismatch_between_config_and_plant_is_refused() {
    let plant = TestPlant::new(2, 0.05, 0.2, DT);
    let config = SimOverCan::<TestPlant>::default_config(&plant.joints()[..1], DriveProtocol::Mit, RATE).unwrap();
    let e = SimOverCan::new(plant, config).err().expect("1 joint configured for a 2-joint plant");
    assert!(e.to_string().contains("1 joints configured, the plant has 2"), "{e}");
}

#[test]
fn a_host_that_stops_talking_leaves_every_drive_torque_free_within_the_stated_bound_both_protocols() {
    // Issue 13 §1: a stalled or dead host sends nothing more (no command, no SYNC, no heartbeat). The drives' own
    // timeouts (MIT CAN timeout; CiA 402 SYNC loss / heartbeat consumer with 0x6007) take the torque off within
    // `CanRobotConfig::host_loss_torque_off_bound` (≤ 150 ms for any valid configuration) — here checked on the
    // emulated drives, and also with the SYNC supervision of the CiA 402 drive switched off (heartbeat only).
    for (protocol, sync_supervised) in
        [(DriveProtocol::Mit, true), (DriveProtocol::Cia402, true), (DriveProtocol::Cia402, false)]
    {
        let (mut s, mut st) = active(protocol, 2);
        if !sync_supervised {
            for j in 0..2 {
                with_cia(&s, j, |d| d.stop_sync_supervision());
            }
        }
        let bound = s.can_robot().config().host_loss_torque_off_bound();
        assert!(bound <= Duration::from_millis(150), "{bound:?}");
        let cmd = torque_cmd(2, 0, 2.0);
        let mut cmd = cmd;
        cmd.torque[1] = -1.5;
        cycle(&mut s, &cmd, &mut st).unwrap();
        assert!(!torque_free(s.applied_torque()), "{protocol:?}: torque applied before the host goes silent");
        s.buses()[0].inject(FaultRule { fault: Fault::Drop, matches: FrameMatch::FromNode(HOST), count: u32::MAX });
        let periods = (bound.as_secs_f64() / DT).ceil() as usize + 1;
        let mut off_after = None;
        for k in 1..=periods + 50 {
            let _ = s.write(&cmd); // nothing reaches the bus; the plant and the drives' clocks advance one period
            let _ = s.read(&mut st);
            if torque_free(s.applied_torque()) {
                off_after = Some(k);
                break;
            }
        }
        let k = off_after.unwrap_or_else(|| panic!("{protocol:?}: the drives kept torque after the host went silent"));
        assert!(
            k <= periods,
            "{protocol:?} (SYNC supervised: {sync_supervised}): torque-free after {k} periods, bound {bound:?} = {periods}"
        );
    }
}
