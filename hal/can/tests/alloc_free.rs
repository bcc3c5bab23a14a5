//! `CanRobot::read` + `write` allocate nothing (counting global allocator, current thread only).

use std::sync::{Arc, Mutex};

use plexo_can::testing::EchoMotors;
use plexo_can::{CanRobot, CanRobotConfig, PumpedNode, VirtualBus, VirtualBusConfig};
use plexo_hal::{DriveImpedance, JointArray, JointCommand, JointState, Robot};
use plexo_testkit::allocations;

plexo_testkit::install_counting_allocator!();

const CONFIG: &str = r#"
control_rate_hz = 500.0
[[buses]]
name = "can0"
bitrate = 1000000
[[joints]]
name = "shoulder_abduction"
bus = "can0"
node_id = 1
protocol = "mit"
motor = "AK80-9"
limits = { position_min = -1.0, position_max = 2.0, velocity_max = 6.0, torque_max = 15.0 }
mit = { drive_timeout_ms = 6, firmware = "V1.1" }
[[joints]]
name = "shoulder_flexion"
bus = "can0"
node_id = 2
protocol = "mit"
motor = "AK80-9"
direction = -1
limits = { position_min = -1.0, position_max = 2.0, velocity_max = 6.0, torque_max = 15.0 }
mit = { drive_timeout_ms = 6, firmware = "V1.1" }
[[joints]]
name = "shoulder_rotation"
bus = "can0"
node_id = 3
protocol = "mit"
motor = "AK60-6"
gear_ratio = 2.0
limits = { position_min = -1.0, position_max = 1.0, velocity_max = 6.0, torque_max = 10.0 }
mit = { drive_timeout_ms = 6, firmware = "V1.1" }
[[joints]]
name = "elbow_flexion"
bus = "can0"
node_id = 4
protocol = "mit"
motor = "AK70-10"
limits = { position_min = -0.1, position_max = 2.4, velocity_max = 6.0, torque_max = 12.0 }
mit = { drive_timeout_ms = 6, firmware = "V1.1" }
"#;

#[test]
fn can_robot_read_write_cycle_allocates_nothing() {
    let config = CanRobotConfig::from_toml(CONFIG, "alloc_free.rs").unwrap();
    let bus = VirtualBus::new(VirtualBusConfig::stepped("can0", 1_000_000));
    let motors = config.joints.iter().map(|j| (j.node_id, j.mit_ranges().unwrap())).collect();
    let echo = Arc::new(Mutex::new(EchoMotors::new(bus.node("motors"), motors)));
    let host = PumpedNode::new(bus.node("plexo"), echo);
    let mut robot = CanRobot::new(config, vec![host]).unwrap();
    robot.enable().unwrap();
    let mut state = JointState::zeros(4);
    let mut command = JointCommand::zeros(4);
    let mut impedance = DriveImpedance {
        position: JointArray::splat(4, 0.0),
        velocity: JointArray::splat(4, 0.0),
        stiffness: JointArray::splat(4, 20.0),
        damping: JointArray::splat(4, 1.0),
    };
    // The echo motors report the commanded position at once: ramp it (0.015 rad per 2 ms cycle) so that the
    // replies stay physically plausible (CanRobot rejects jumps faster than 2·v_max).
    let period = std::time::Duration::from_millis(2);
    for k in 1..=20 {
        impedance.position = JointArray::splat(4, 0.015 * f64::from(k));
        command.drive_impedance = Some(impedance);
        robot.write(&command).unwrap();
        bus.advance(period);
        robot.read(&mut state).unwrap();
    }
    let before = allocations();
    for k in 0..1000 {
        command.torque[k % 4] = 0.001 * k as f64;
        robot.write(&command).unwrap();
        bus.advance(period);
        robot.read(&mut state).unwrap();
    }
    let after = allocations();
    assert_eq!(after - before, 0, "allocations in 1000 read+write cycles");
    // The cycles did real work: the echo motors report the commanded position back.
    assert!((state.position[0] - 0.3).abs() < 1e-3, "{:?}", state.position);
    assert!((state.position[2] - 0.3).abs() < 1e-3, "gear ratio 2 maps back to the link: {:?}", state.position);
    assert!(state.flags.iter().all(|f| !f.is_fault()), "{:?}", state.flags);
    // The counter does count on this thread.
    let probe: Vec<u8> = Vec::with_capacity(16);
    assert!(allocations() > after && probe.capacity() >= 16);
}
