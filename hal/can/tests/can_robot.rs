//! `CanRobot` over a stepped `VirtualBus` with `EchoMotors` (no physics): the `Robot` contract, stale replies,
//! error frames, transmit errors. The full stack with emulated drives and a test plant is tested in
//! `src/emulated/tests.rs`. One cycle = `write`, `read`, then `VirtualBus::advance(period)`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use plexo_can::mit::{self, MitCodec, MitErrorCode, MitReply};
use plexo_can::testing::EchoMotors;
use plexo_can::{
    BusState, CanFrame, CanId, CanRobot, CanRobotConfig, Fault, FaultRule, FrameMatch, NodeId, PumpedNode, VirtualBus,
    VirtualBusConfig, controller, error_class,
};
use plexo_can::{CanBus, Pump, VirtualNode};
use plexo_hal::conformance::check_lifecycle_contract;
use plexo_hal::{
    DriveImpedance, ErrorKind, HalError, JointArray, JointCommand, JointFlags, JointState, Lifecycle, Robot, RobotError,
};

const PERIOD: Duration = Duration::from_millis(2);
/// Node index of the host on the bus (the echo motors are node 0).
const HOST: NodeId = NodeId(1);

fn config(joints: u8) -> CanRobotConfig {
    let mut text = String::from("control_rate_hz = 500.0\n[[buses]]\nname = \"can0\"\nbitrate = 1000000\n");
    for j in 1..=joints {
        text += &format!(
            "[[joints]]\nname = \"j{j}\"\nbus = \"can0\"\nnode_id = {j}\nprotocol = \"mit\"\nmotor = \"AK80-9\"\n\
             limits = {{ position_min = -1.0, position_max = 2.0, velocity_max = 6.0, torque_max = 15.0 }}\n\
             mit = {{ drive_timeout_ms = 6, firmware = \"V1.1\" }}\n"
        );
    }
    CanRobotConfig::from_toml(&text, "can_robot.rs").unwrap()
}

type Echo = PumpedNode<EchoMotors>;

fn rig(joints: u8) -> (VirtualBus, CanRobot<Echo>, Arc<Mutex<EchoMotors>>) {
    let config = config(joints);
    let bus = VirtualBus::new(VirtualBusConfig::stepped("can0", 1_000_000));
    let motors = config.joints.iter().map(|j| (j.node_id, j.mit_ranges().unwrap())).collect();
    let echo = Arc::new(Mutex::new(EchoMotors::new(bus.node("motors"), motors)));
    let robot = CanRobot::new(config, vec![PumpedNode::new(bus.node("plexo"), Arc::clone(&echo))]).unwrap();
    (bus, robot, echo)
}

/// A command the echo motors report back as the position: `position` [rad] on every joint.
fn at(dof: usize, position: f64) -> JointCommand {
    JointCommand {
        torque: JointArray::splat(dof, 0.0),
        drive_impedance: Some(DriveImpedance {
            position: JointArray::splat(dof, position),
            velocity: JointArray::splat(dof, 0.0),
            stiffness: JointArray::splat(dof, 1.0),
            damping: JointArray::splat(dof, 0.0),
        }),
    }
}

/// One cycle as on hardware: command, replies (the echo motors answer at once), then the rest of the period
/// passes before the next command.
fn cycle(
    bus: &VirtualBus,
    robot: &mut CanRobot<Echo>,
    cmd: &JointCommand,
    st: &mut JointState,
) -> Result<(), HalError> {
    let w = robot.write(cmd);
    let r = robot.read(st);
    bus.advance(PERIOD);
    w.and(r)
}

#[test]
fn can_robot_honours_the_robot_contract() {
    let (_bus, mut robot, _) = rig(3);
    let report = check_lifecycle_contract(&mut robot, None).unwrap();
    assert!(report.checks >= 24 && report.writes >= 11, "{report:?}");
}

#[test]
fn reply_arriving_before_the_next_command_is_stale_not_this_cycles_reply() {
    // A reply delayed past its cycle's read but arriving before the next command: it answers the earlier
    // command and must not count for the next cycle (whose own reply is lost here).
    let (bus, mut robot, _) = rig(1);
    robot.enable().unwrap();
    let mut st = JointState::zeros(1);
    cycle(&bus, &mut robot, &at(1, 0.008), &mut st).unwrap();
    assert!((st.position[0] - 0.008).abs() < 1e-3);
    bus.inject(FaultRule {
        fault: Fault::Delay(Duration::from_millis(1)),
        matches: FrameMatch::Id(CanId::Standard(0)),
        count: 1,
    });
    cycle(&bus, &mut robot, &at(1, 0.010), &mut st).unwrap();
    assert!(st.flags[0].contains(JointFlags::REPLY_MISSED), "the reply is 1 ms late: {:?}", st.flags[0]);
    // The late reply (position 0.010) arrived 1 ms later, during the rest of the period, before the next command.
    bus.inject(FaultRule { fault: Fault::Drop, matches: FrameMatch::Id(CanId::Standard(0)), count: 1 });
    cycle(&bus, &mut robot, &at(1, 0.012), &mut st).unwrap();
    assert_eq!(robot.stats().stale_replies, 1);
    assert!(st.flags[0].contains(JointFlags::REPLY_MISSED), "the stale reply did not stand in for the lost one");
    assert!((st.position[0] - 0.008).abs() < 1e-3, "stale data not applied: {}", st.position[0]);
    cycle(&bus, &mut robot, &at(1, 0.014), &mut st).unwrap();
    assert!(st.flags[0].is_empty(), "{:?}", st.flags[0]);
    assert!((st.position[0] - 0.014).abs() < 1e-3);
    assert_eq!(robot.stats().missed_replies, 2);
}

#[test]
fn error_passive_and_warning_are_counted_and_flagged_without_stopping() {
    let (bus, mut robot, _) = rig(2);
    robot.enable().unwrap();
    let mut st = JointState::zeros(2);
    let cmd = at(2, 0.0);
    cycle(&bus, &mut robot, &cmd, &mut st).unwrap();
    bus.raise_error(HOST, error_class::CONTROLLER, [0, controller::TX_WARNING, 0, 0, 0, 0, 0, 0]);
    cycle(&bus, &mut robot, &cmd, &mut st).unwrap();
    assert!(st.flags.iter().all(|f| f.contains(JointFlags::BUS_WARNING) && !f.is_fault()), "{:?}", st.flags);
    assert_eq!(robot.bus_state(0), Some(BusState::ErrorWarning));
    bus.raise_error(HOST, error_class::CONTROLLER, [0, controller::RX_PASSIVE, 0, 0, 0, 0, 0, 0]);
    cycle(&bus, &mut robot, &cmd, &mut st).unwrap();
    assert_eq!(robot.bus_state(0), Some(BusState::ErrorPassive), "visible in the next read");
    assert_eq!(robot.lifecycle(), Lifecycle::Active, "error passive still carries frames: no stop");
    bus.raise_error(HOST, error_class::CONTROLLER, [0, controller::RX_OVERFLOW, 0, 0, 0, 0, 0, 0]);
    bus.raise_error(HOST, error_class::NO_ACK, [0; 8]);
    bus.raise_error(HOST, error_class::CONTROLLER, [0, controller::ACTIVE, 0, 0, 0, 0, 0, 0]);
    cycle(&bus, &mut robot, &cmd, &mut st).unwrap();
    let s = robot.stats();
    assert_eq!((s.error_frames, s.bus_warnings, s.bus_passive, s.controller_overflows, s.no_ack), (5, 1, 1, 1, 1));
    assert_eq!(robot.bus_state(0), Some(BusState::ErrorActive), "back to error active");
    assert!(st.flags.iter().all(|f| f.is_empty()), "{:?}", st.flags);
}

#[test]
fn bus_off_reported_by_an_error_frame_faults_in_the_same_read() {
    let (bus, mut robot, _) = rig(1);
    robot.enable().unwrap();
    let mut st = JointState::zeros(1);
    cycle(&bus, &mut robot, &at(1, 0.0), &mut st).unwrap();
    robot.write(&at(1, 0.0)).unwrap();
    bus.raise_error(HOST, error_class::BUS_OFF, [0; 8]);
    let e = robot.read(&mut st).unwrap_err();
    assert!(matches!(&e, HalError::BusOff { bus } if bus == "can0"), "{e}");
    assert_eq!(robot.lifecycle(), Lifecycle::Fault);
    assert_eq!(robot.stats().bus_off, 1);
}

#[test]
fn implausible_position_jump_is_rejected_and_persisting_faults_with_encoder_flag() {
    let (bus, mut robot, _) = rig(1);
    robot.enable().unwrap();
    let mut st = JointState::zeros(1);
    cycle(&bus, &mut robot, &at(1, 0.0), &mut st).unwrap();
    // The echo motor "teleports" to 0.5 rad: at v_max 6 rad/s at most 2·6·0.002 + 0.02 = 0.044 rad is possible.
    for k in 1..=2 {
        cycle(&bus, &mut robot, &at(1, 0.5), &mut st).unwrap();
        assert!(st.flags[0].contains(JointFlags::REPLY_MISSED), "cycle {k}: {:?}", st.flags[0]);
        assert!(st.position[0].abs() < 1e-3, "cycle {k}: the jump was not taken: {}", st.position[0]);
    }
    let e = cycle(&bus, &mut robot, &at(1, 0.5), &mut st).unwrap_err();
    assert!(matches!(&e, HalError::ImplausibleReply { joint: 0, node_id: 1, cycles: 3, .. }), "{e}");
    assert!(e.to_string().contains("position jumped"), "{e}");
    assert_eq!(e.kind(), ErrorKind::Fault);
    assert!(st.flags[0].contains(JointFlags::ENCODER | JointFlags::NO_REPLY), "{:?}", st.flags[0]);
    assert_eq!(robot.stats().implausible_replies, 3);
}

#[test]
fn transmit_errors_of_refused_cycles_are_counted_not_swallowed() {
    let (bus, mut robot, _) = rig(2);
    robot.enable().unwrap();
    let mut st = JointState::zeros(2);
    cycle(&bus, &mut robot, &at(2, 0.0), &mut st).unwrap();
    bus.inject(FaultRule { fault: Fault::TxBufferFull, matches: FrameMatch::FromNode(HOST), count: 2 });
    let mut nan = JointCommand::zeros(2);
    nan.torque[1] = f64::NAN;
    let e = robot.write(&nan).unwrap_err();
    assert!(matches!(e, HalError::NonFiniteCommand { joint: 1, .. }), "the refusal is the error reported: {e}");
    assert_eq!(robot.stats().transmit_errors, 2, "both torque-free frames of the refused cycle failed");
    bus.advance(PERIOD);
    robot.read(&mut st).unwrap();
    assert!(st.flags.iter().all(|f| f.contains(JointFlags::REPLY_MISSED)));
}

#[test]
fn negative_drive_impedance_gains_are_refused_and_the_cycle_sent_torque_free() {
    // Before `JointCommand::check` only the simulator refused negative gains; over CAN a negative stiffness
    // reached the MIT codec (clamped to 0 there, only counted) or the host-side loop of CiA 402 (pushing away).
    let (bus, mut robot, echo) = rig(2);
    robot.enable().unwrap();
    let mut st = JointState::zeros(2);
    cycle(&bus, &mut robot, &at(2, 0.0), &mut st).unwrap();
    let answered = echo.lock().unwrap().answered();
    let mut push = at(2, 0.3);
    if let Some(d) = push.drive_impedance.as_mut() {
        d.stiffness[1] = -5.0;
    }
    let e = robot.write(&push).unwrap_err();
    assert!(matches!(e, HalError::NegativeGain { joint: 1, field: "drive_impedance.stiffness" }), "{e}");
    assert_eq!(e.kind(), ErrorKind::InvalidCommand);
    robot.read(&mut st).unwrap();
    bus.advance(PERIOD);
    assert_eq!(echo.lock().unwrap().answered(), answered + 2, "the refused cycle still polls both drives");
    assert!(st.position.iter().all(|q| q.abs() < 1e-3), "torque-free hold, not the commanded 0.3 rad: {st:?}");
    assert_eq!(robot.lifecycle(), Lifecycle::Active, "a refused command is not a fault");
}

#[test]
fn estop_discards_a_command_held_in_the_transmit_path() {
    // Regression: `discard_pending_tx` only cleared the bus-off queue; a command held by a Delay fault reached
    // the motor after the e-stop.
    let (bus, mut robot, echo) = rig(1);
    robot.enable().unwrap();
    let mut st = JointState::zeros(1);
    cycle(&bus, &mut robot, &at(1, 0.0), &mut st).unwrap();
    bus.start_recording(64);
    bus.inject(FaultRule {
        fault: Fault::Delay(Duration::from_millis(3)),
        matches: FrameMatch::FromNode(HOST),
        count: 1,
    });
    let mut push = JointCommand::zeros(1);
    push.torque[0] = 5.0;
    robot.write(&push).unwrap();
    robot.estop().unwrap();
    assert!(robot.stats().discarded_frames >= 1);
    for _ in 0..5 {
        bus.advance(PERIOD);
        let _ = robot.read(&mut st); // e-stopped: replies to the torque-off frame
    }
    let answered_after = echo.lock().unwrap().answered();
    let codec = plexo_can::mit::MitCodec::new(&plexo_can::mit::AkModel::Ak80_9.ranges());
    let pushes = bus
        .recorded()
        .iter()
        .filter_map(|(_, f)| (f.id() == CanId::Standard(1)).then(|| codec.decode_command(f.data())).flatten())
        .filter(|c| c.torque > 4.0)
        .count();
    assert_eq!(pushes, 0, "the held 5 Nm command never went on the wire");
    assert!(answered_after > 0);
}

/// An MIT motor (node 1) that answers every frame at once with a reply whose position counts the frames it has
/// answered (k · 0.01 rad for the k-th): which request a reply answers is visible in every value taken from it.
struct CountingMotor {
    node: VirtualNode,
    codec: MitCodec,
    answered: u32,
    /// Position [rad] of every non-special command received (the holds of `enable`).
    commanded: Vec<f64>,
}

impl Pump for CountingMotor {
    fn pump(&mut self) {
        while let Some(frame) = self.node.try_receive() {
            if frame.id() != CanId::Standard(1) {
                continue;
            }
            let data = frame.data();
            if data != mit::ENTER_MOTOR_MODE && data != mit::EXIT_MOTOR_MODE {
                self.commanded.push(self.codec.decode_command(data).map_or(f64::NAN, |c| c.position));
            }
            self.answered += 1;
            let reply = MitReply {
                motor_id: 1,
                position: 0.01 * f64::from(self.answered),
                velocity: 0.0,
                torque: 0.0,
                temperature: 30.0,
                error: MitErrorCode::None,
            };
            let frame = CanFrame::new(CanId::Standard(0), &self.codec.encode_reply(&reply)).unwrap();
            self.node.transmit(&frame).unwrap();
        }
    }
}

#[test]
fn enable_between_write_and_read_pairs_every_exchange_with_its_own_reply() {
    // Regression (issue 13 §5): `enable` ran between `write` and `read`, the idle poll's reply was still queued
    // and the first exchange took it as its answer: every request of the enable sequence was paired with the
    // previous one's reply, and the hold went out at a position one reply old.
    let config = config(1);
    let bus = VirtualBus::new(VirtualBusConfig::stepped("can0", 1_000_000));
    let ranges = config.joints[0].mit_ranges().unwrap();
    let motor = Arc::new(Mutex::new(CountingMotor {
        node: bus.node("motor"),
        codec: MitCodec::new(&ranges),
        answered: 0,
        commanded: Vec::new(),
    }));
    let mut robot = CanRobot::new(config, vec![PumpedNode::new(bus.node("plexo"), Arc::clone(&motor))]).unwrap();
    let start = motor.lock().unwrap().answered; // the start-up poll
    robot.write(&JointCommand::zeros(1)).unwrap(); // idle poll: reply `start + 1` stays queued (no read yet)
    robot.enable().unwrap();
    let m = motor.lock().unwrap();
    // enable: exit motor mode (answered `start + 2`: the measurement), hold, enter motor mode, hold.
    assert_eq!(m.answered, start + 5);
    let measured = 0.01 * f64::from(start + 2);
    assert_eq!(m.commanded.len(), 2, "two holds");
    for (k, q) in m.commanded.iter().enumerate() {
        assert!((q - measured).abs() < 1e-3, "hold {k} at {q} rad: must be the measurement {measured} rad");
    }
    drop(m);
    let stats = robot.stats();
    assert_eq!(stats.replies_before_exchange, 1, "the idle poll's reply was discarded before the first exchange");
    assert_eq!(stats.stale_replies, 0, "not a late reply of a control cycle");
}

#[test]
fn a_torque_clamped_to_the_joint_limit_is_not_sent_above_it() {
    // Regression (issue 13 §5): a 15 Nm clamp went out as 15.002 Nm (AK80-9's 12-bit torque field over ±18 Nm
    // rounds 15 Nm up to the code of 15.0022 Nm); at a limit the code is rounded toward zero.
    let (bus, mut robot, _) = rig(1);
    robot.enable().unwrap();
    let mut st = JointState::zeros(1);
    cycle(&bus, &mut robot, &JointCommand::zeros(1), &mut st).unwrap();
    for torque in [20.0, -20.0, 15.0, -15.0] {
        let mut push = JointCommand::zeros(1);
        push.torque[0] = torque;
        cycle(&bus, &mut robot, &push, &mut st).unwrap();
        // The echo motor reports the commanded torque as it decoded it.
        assert!(st.torque[0].abs() <= 15.0, "{torque} Nm went out as {} Nm", st.torque[0]);
        assert!(st.torque[0].abs() > 15.0 - 36.0 / 4095.0, "one code below the limit at most: {}", st.torque[0]);
    }
}
