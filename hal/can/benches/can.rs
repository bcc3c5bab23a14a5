//! Criterion benchmarks of the CAN stack: codec encode + decode per frame, and one `CanRobot` read + write
//! cycle for 4 MIT joints over the virtual bus. Figures in hal/BENCHMARKS.md.

use std::hint::black_box;
use std::sync::{Arc, Mutex};

use criterion::{Criterion, criterion_group, criterion_main};
use plexo_can::canopen::{Rpdo1, Tpdo1};
use plexo_can::mit::{AkModel, MitCodec, MitCommand, MitErrorCode, MitReply};
use plexo_can::testing::EchoMotors;
use plexo_can::{CanRobot, CanRobotConfig, PumpedNode, VirtualBus, VirtualBusConfig};
use plexo_hal::{JointCommand, JointState, Robot};

fn codec(c: &mut Criterion) {
    // The per-joint codec is built once (as CanRobot and the emulated motor keep it).
    let codec = MitCodec::new(&AkModel::Ak80_9.ranges());
    let cmd = MitCommand { position: 0.7, velocity: -1.2, kp: 30.0, kd: 0.8, torque: 2.5 };
    c.bench_function("mit_command_encode_decode", |b| {
        b.iter(|| {
            let (frame, _) = black_box(cmd).frame_with(black_box(3), black_box(&codec)).unwrap();
            black_box(codec.decode_command(frame.data()))
        })
    });
    let reply = MitReply {
        motor_id: 3,
        position: 0.7,
        velocity: -1.2,
        torque: 2.5,
        temperature: 35.0,
        error: MitErrorCode::None,
    };
    c.bench_function("mit_reply_encode_decode", |b| {
        b.iter(|| black_box(codec.decode_reply(&black_box(&codec).encode_reply(&black_box(reply)))))
    });
    c.bench_function("cia402_pdo_encode_decode", |b| {
        b.iter(|| {
            let rx = Rpdo1 { controlword: 0x0F, target_torque: black_box(-250) }.frame(5);
            let tx = Tpdo1 { statusword: 0x0237, position: black_box(100_000), torque: 500 }.frame(5);
            black_box((Rpdo1::decode(&rx, 5), Tpdo1::decode(&tx, 5)))
        })
    });
}

fn robot_cycle(c: &mut Criterion) {
    let mut text = String::from("control_rate_hz = 500.0\n[[buses]]\nname = \"can0\"\nbitrate = 1000000\n");
    for j in 1..=4 {
        text += &format!(
            "[[joints]]\nname = \"j{j}\"\nbus = \"can0\"\nnode_id = {j}\nprotocol = \"mit\"\nmotor = \"AK80-9\"\n\
             limits = {{ position_min = -1.0, position_max = 2.0, velocity_max = 6.0, torque_max = 15.0 }}\n\
             mit = {{ drive_timeout_ms = 6, firmware = \"V1.1\" }}\n"
        );
    }
    let config = CanRobotConfig::from_toml(&text, "bench").unwrap();
    let bus = VirtualBus::new(VirtualBusConfig::stepped("can0", 1_000_000));
    let motors = config.joints.iter().map(|j| (j.node_id, j.mit_ranges().unwrap())).collect();
    let echo = Arc::new(Mutex::new(EchoMotors::new(bus.node("motors"), motors)));
    let mut robot = CanRobot::new(config, vec![PumpedNode::new(bus.node("plexo"), echo)]).unwrap();
    robot.enable().unwrap();
    let mut state = JointState::zeros(4);
    let mut command = JointCommand::zeros(4);
    command.torque[1] = 1.5;
    c.bench_function("can_robot_cycle_4_mit_joints_virtual_bus", |b| {
        b.iter(|| {
            robot.write(black_box(&command)).unwrap();
            robot.read(&mut state).unwrap();
            black_box(state.position[0])
        })
    });
}

criterion_group!(benches, codec, robot_cycle);
criterion_main!(benches);
