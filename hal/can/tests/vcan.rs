//! Real-socket tests over a Linux `vcan0` interface (feature `vcan-tests`; this development kernel has none).
//! Run on Linux, with vcan0 otherwise idle (see hal/README.md):
//!
//! ```text
//! sudo modprobe vcan
//! sudo ip link add dev vcan0 type vcan && sudo ip link set vcan0 mtu 72 && sudo ip link set up vcan0
//! cargo test -p plexo-can --features vcan-tests -- --test-threads 1
//! ```
//!
//! - `CanRobot` over `SocketCanBus` with MIT echo motors answering from another socket on a responder thread
//!   (`EchoMotors::serve`): start-up, enable, cycles, e-stop, reset — the same code path as on `can0`.
//! - Error frames: a raw socket writes SocketCAN error frames (`CAN_ERR_FLAG` set, as `cansend vcan0
//!   20000004#0020000000000000` does); vcan delivers them to the other sockets with the error filter on, so
//!   `SocketCanBus` decodes them exactly as it would a controller's report.

#![cfg(feature = "vcan-tests")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use plexo_can::socketcan::SocketCanBus;
use plexo_can::testing::EchoMotors;
use plexo_can::{BusState, CanBus, CanRobot, CanRobotConfig, controller, error_class};
use plexo_hal::{DriveImpedance, HalError, JointArray, JointCommand, JointState, Lifecycle, Robot};
use socketcan::{CanErrorFrame, CanSocket, Socket};

const CONFIG: &str = r#"
control_rate_hz = 200.0
# A responder thread on a loaded test machine can be late: a generous reply timeout (at most one period).
reply_timeout_us = 5000
[[buses]]
name = "vcan0"
bitrate = 1000000
[[joints]]
name = "j1"
bus = "vcan0"
node_id = 1
protocol = "mit"
motor = "AK80-9"
limits = { position_min = -1.0, position_max = 2.0, velocity_max = 6.0, torque_max = 15.0 }
mit = { drive_timeout_ms = 20, firmware = "V1.1" }
[[joints]]
name = "j2"
bus = "vcan0"
node_id = 2
protocol = "mit"
motor = "AK70-10"
limits = { position_min = -1.0, position_max = 2.0, velocity_max = 6.0, torque_max = 12.0 }
mit = { drive_timeout_ms = 20, firmware = "V1.1" }
"#;

/// Echo motors on their own vcan0 socket, answering until stopped.
/// Returns the stop flag and the thread, which yields (frames answered, replies it could not send).
fn responder(config: &CanRobotConfig) -> (Arc<AtomicBool>, std::thread::JoinHandle<(u64, u64)>) {
    let motors = config.joints.iter().map(|j| (j.node_id, j.mit_ranges().unwrap())).collect();
    let bus = SocketCanBus::open("vcan0", false).expect("vcan0 must exist (see hal/README.md)");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let mut echo = EchoMotors::new(bus, motors);
        while !flag.load(Ordering::Relaxed) {
            echo.serve(Duration::from_millis(20)).expect("receiving on vcan0");
        }
        (echo.answered(), echo.tx_errors())
    });
    (stop, thread)
}

fn slowly_to(position: f64) -> JointCommand {
    JointCommand {
        torque: JointArray::splat(2, 0.0),
        drive_impedance: Some(DriveImpedance {
            position: JointArray::splat(2, position),
            velocity: JointArray::splat(2, 0.0),
            stiffness: JointArray::splat(2, 5.0),
            damping: JointArray::splat(2, 0.1),
        }),
    }
}

#[test]
fn can_robot_runs_over_vcan0_with_echo_motors() {
    let config = CanRobotConfig::from_toml(CONFIG, "vcan.rs").unwrap();
    let (stop, thread) = responder(&config);
    let mut robot = CanRobot::new(config, vec![SocketCanBus::open("vcan0", false).unwrap()]).unwrap();
    assert_eq!(robot.lifecycle(), Lifecycle::Disabled);
    robot.enable().unwrap();
    let mut state = JointState::zeros(2);
    // 0.5 mrad per 5 ms cycle: far below the plausibility bound, so every echo is accepted.
    for k in 1..=200 {
        robot.write(&slowly_to(0.0005 * f64::from(k))).unwrap();
        robot.read(&mut state).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!((state.position[0] - 0.1).abs() < 2e-3, "{:?}", state.position);
    assert!((state.position[1] - 0.1).abs() < 2e-3, "{:?}", state.position);
    assert!(robot.stats().missed_replies <= 2, "{:?}", robot.stats());
    robot.estop().unwrap();
    assert_eq!(robot.lifecycle(), Lifecycle::EStopped);
    assert!(matches!(robot.write(&slowly_to(0.1)), Err(HalError::NotActive { .. })));
    robot.reset().unwrap();
    assert_eq!(robot.lifecycle(), Lifecycle::Disabled);
    stop.store(true, Ordering::Relaxed);
    let (answered, tx_errors) = thread.join().unwrap();
    assert!(answered >= 400, "the echo motors answered every cycle: {answered}");
    assert_eq!(tx_errors, 0, "the responder could send every reply");
}

#[test]
fn error_frames_on_vcan0_are_decoded_and_set_the_bus_state() {
    let mut bus = SocketCanBus::open("vcan0", false).expect("vcan0 must exist (see hal/README.md)");
    let injector = CanSocket::open("vcan0").unwrap();
    while bus.receive(Duration::from_millis(10)).unwrap().is_some() {}
    let passive =
        CanErrorFrame::new_error(error_class::CONTROLLER, &[0, controller::TX_PASSIVE, 0, 0, 0, 0, 0, 0]).unwrap();
    injector.write_frame(&passive).expect("writing an error frame on vcan0");
    let got = bus.receive(Duration::from_secs(1)).unwrap().expect("the error frame");
    assert!(got.is_error() && got.error_class() & error_class::CONTROLLER != 0, "{got:?}");
    assert_eq!(bus.state(), BusState::ErrorPassive);
    let off = CanErrorFrame::new_error(error_class::BUS_OFF, &[0; 8]).unwrap();
    injector.write_frame(&off).unwrap();
    bus.receive(Duration::from_secs(1)).unwrap().expect("the bus-off frame");
    assert_eq!(bus.state(), BusState::BusOff);
    assert!(matches!(bus.transmit(&plexo_can::CanFrame::standard(0x1, &[]).unwrap()), Err(HalError::BusOff { .. })));
    bus.recover().unwrap();
    assert_eq!(bus.state(), BusState::ErrorActive, "explicit recovery only");
}

#[test]
fn can_robot_faults_on_a_bus_off_error_frame_from_vcan0() {
    let config = CanRobotConfig::from_toml(CONFIG, "vcan.rs").unwrap();
    let (stop, thread) = responder(&config);
    let mut robot = CanRobot::new(config, vec![SocketCanBus::open("vcan0", false).unwrap()]).unwrap();
    robot.enable().unwrap();
    let mut state = JointState::zeros(2);
    robot.write(&slowly_to(0.0)).unwrap();
    robot.read(&mut state).unwrap();
    let injector = CanSocket::open("vcan0").unwrap();
    injector.write_frame(&CanErrorFrame::new_error(error_class::BUS_OFF, &[0; 8]).unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    // The write drains the error frame first; the read reports the bus-off and latches Fault.
    let _ = robot.write(&slowly_to(0.0)); // BusOff: the SocketCAN backend refuses to transmit
    let e = robot.read(&mut state).unwrap_err();
    assert!(matches!(&e, HalError::BusOff { bus } if bus == "vcan0"), "{e}");
    assert_eq!(robot.lifecycle(), Lifecycle::Fault);
    assert_eq!(robot.stats().bus_off, 1);
    stop.store(true, Ordering::Relaxed);
    // The responder's socket saw the bus-off frame too, so its own transmits may have been refused.
    let (answered, _) = thread.join().unwrap();
    assert!(answered > 0);
}
