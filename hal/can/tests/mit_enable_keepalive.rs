//! The MIT enable keeps every motor already in motor mode commanded while the later joints are enabled: its
//! hold command (zero gains, zero torque) goes out again at the control period, so the drive's CAN timeout
//! (`mit.drive_timeout_ms`) never expires between its enable and the first cycle.
//!
//! The stepped `VirtualBus` never lets time pass while the host waits, and the emulated motors answer at once,
//! so a gap in the commands would not show there. As `tests/enable_keepalive.rs` does for CiA 402, this test
//! runs `CanRobot` over virtual buses behind a small discrete-event clock: each motor answers a frame
//! `REPLY_LATENCY` after it (0.5 ms: the DFKI mini-cheetah-tmotor-python-can driver measured ≈ 800–1500
//! command–reply round trips per second with one motor over USB adapters, i.e. 0.7–1.25 ms each), a
//! `receive(timeout)` that finds nothing advances every bus's clock to the next answer or to the end of the
//! timeout, whichever comes first, and the motors' CAN timeout is checked whenever the clock moves. Everything
//! on the wire is recorded with its end-of-transmission time from before the first frame.

mod common;

use std::sync::{Arc, Mutex};

use core::time::Duration;

use common::{DiscreteWorld, HostNode};
use plexo_can::emulated::EmulatedMitMotor;
use plexo_can::mit::{self, AkModel};
use plexo_can::{CanBus as _, CanFrame, CanId, CanRobot, CanRobotConfig, VirtualBus, VirtualBusConfig, VirtualNode};
use plexo_hal::{JointCommand, JointState, Lifecycle, Robot};

/// Time a motor takes to answer a frame.
const REPLY_LATENCY: Duration = Duration::from_micros(500);
/// The drives' CAN timeout, as on the plexo-arm4 hardware (`assets/configs/plexo-arm4-hardware.toml`).
const DRIVE_TIMEOUT: Duration = Duration::from_millis(3);

/// Four AK80-64 on two buses at 1 kHz, like the plexo-arm4 hardware configuration.
const CONFIG: &str = r#"
control_rate_hz = 1000.0
reply_timeout_us = 900
[[buses]]
name = "can0"
bitrate = 1000000
[[buses]]
name = "can1"
bitrate = 1000000

[[joints]]
name = "a"
bus = "can0"
node_id = 1
protocol = "mit"
motor = "AK80-64"
limits = { position_min = -1.0, position_max = 1.0, velocity_max = 2.0, torque_max = 20.0 }
mit = { drive_timeout_ms = 3 }
[[joints]]
name = "b"
bus = "can0"
node_id = 2
protocol = "mit"
motor = "AK80-64"
limits = { position_min = -1.0, position_max = 1.0, velocity_max = 2.0, torque_max = 20.0 }
mit = { drive_timeout_ms = 3 }
[[joints]]
name = "c"
bus = "can1"
node_id = 3
protocol = "mit"
motor = "AK80-64"
limits = { position_min = -1.0, position_max = 1.0, velocity_max = 2.0, torque_max = 20.0 }
mit = { drive_timeout_ms = 3 }
[[joints]]
name = "d"
bus = "can1"
node_id = 4
protocol = "mit"
motor = "AK80-64"
limits = { position_min = -1.0, position_max = 1.0, velocity_max = 2.0, torque_max = 20.0 }
mit = { drive_timeout_ms = 3 }
"#;

/// The motors, their side of every bus and the replies they will send later.
struct World {
    buses: Vec<VirtualBus>,
    nodes: Vec<VirtualNode>,
    motors: Vec<(usize, EmulatedMitMotor)>,
    scheduled: Vec<(Duration, usize, CanFrame)>,
}

impl DiscreteWorld for World {
    fn buses(&self) -> &[VirtualBus] {
        &self.buses
    }

    fn scheduled(&self) -> &[(Duration, usize, CanFrame)] {
        &self.scheduled
    }

    /// Runs the motors' CAN timeout, hands every frame on the motors' nodes to them (replies scheduled
    /// `REPLY_LATENCY` later) and sends what is due.
    fn step(&mut self) {
        let now = self.now();
        for (_, m) in &mut self.motors {
            // Checks the CAN timeout (the motor leaves motor mode when no frame came for that long).
            m.torque(now);
        }
        for b in 0..self.nodes.len() {
            while let Some(frame) = self.nodes[b].try_receive() {
                for (bus, m) in &mut self.motors {
                    if *bus != b {
                        continue;
                    }
                    m.handle(&frame, now);
                    if let Some(reply) = m.take_reply() {
                        self.scheduled.push((now + REPLY_LATENCY, b, reply));
                    }
                }
            }
        }
        let mut i = 0;
        while i < self.scheduled.len() {
            if self.scheduled[i].0 <= now {
                let (_, b, f) = self.scheduled.remove(i);
                self.nodes[b].transmit(&f).expect("motor transmit");
            } else {
                i += 1;
            }
        }
    }
}

#[test]
fn regression_mit_motors_in_motor_mode_got_no_command_while_the_next_joints_were_enabled() {
    let config = CanRobotConfig::from_toml(CONFIG, "mit-keepalive.toml").unwrap();
    let period = config.period();
    let buses: Vec<VirtualBus> =
        config.buses.iter().map(|b| VirtualBus::new(VirtualBusConfig::stepped(&b.name, b.bitrate))).collect();
    for bus in &buses {
        bus.start_recording(1 << 16);
    }
    let nodes = buses.iter().map(|b| b.node("motors")).collect();
    let motors = config
        .joints
        .iter()
        .map(|j| {
            let b = config.buses.iter().position(|b| b.name == j.bus).unwrap();
            (b, EmulatedMitMotor::new(j.node_id, 0, AkModel::Ak80_64.ranges(), j.mapping(), DRIVE_TIMEOUT))
        })
        .collect();
    let world = Arc::new(Mutex::new(World { buses: buses.clone(), nodes, motors, scheduled: Vec::new() }));
    let hosts = buses.iter().map(|b| HostNode { node: b.node("plexo"), world: Arc::clone(&world) }).collect();
    let mut robot = CanRobot::new(config, hosts).unwrap();

    let n = robot.dof();
    let mut state = JointState::zeros(n);
    let mut cycle = |robot: &mut CanRobot<HostNode<World>>| {
        let start = buses[0].now();
        robot.write(&JointCommand::zeros(n)).unwrap();
        robot.read(&mut state).unwrap();
        world.lock().unwrap().advance_to(start + period);
    };
    for _ in 0..5 {
        cycle(&mut robot);
    }
    let enable_start = buses[0].now();
    robot.enable().unwrap();
    let enable_end = buses[0].now();
    assert_eq!(robot.lifecycle(), Lifecycle::Active);
    let enable_time = enable_end - enable_start;
    // Four exchanges per joint (poll, hold, enter motor mode, hold), one reply latency each, joints one after
    // another: the first motor waits for the other three joints' 12 exchanges (6 ms > the 3 ms timeout).
    assert!(enable_time >= 16 * REPLY_LATENCY, "the enable took {enable_time:?}: the reply latency is modelled");
    for _ in 0..5 {
        cycle(&mut robot);
    }

    // No motor left motor mode: its CAN timeout never expired.
    {
        let world = world.lock().unwrap();
        for (_, m) in &world.motors {
            assert_eq!(m.timeouts(), 0, "motor {}: CAN timeout expired during the enable", m.id());
            assert!(m.motor_mode(), "motor {} is out of motor mode", m.id());
        }
    }
    assert!(robot.stats().keep_alive_commands > 0, "{:?}", robot.stats());

    // Per motor: the frames addressed to it from its *enter motor mode* to the first cycle after the enable are
    // never more than one control period (plus the frames queued before it on the wire) apart.
    let tolerance = Duration::from_micros(300);
    let mut report = Vec::new();
    for bus in &buses {
        let log = bus.recorded();
        assert_eq!(bus.stats().record_dropped, 0);
        let mut ids: Vec<u16> = log
            .iter()
            .filter_map(|(_, f)| match f.id() {
                CanId::Standard(id) if id != 0 => Some(id),
                _ => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let to_motor: Vec<(Duration, CanFrame)> =
                log.iter().filter(|(_, f)| f.id() == CanId::Standard(id)).copied().collect();
            let entered = to_motor
                .iter()
                .find(|(t, f)| *t >= enable_start && f.data() == mit::ENTER_MOTOR_MODE)
                .map(|(t, _)| *t)
                .unwrap();
            let times: Vec<Duration> =
                to_motor.iter().map(|(t, _)| *t).filter(|t| *t >= entered && *t <= enable_end + 2 * period).collect();
            let (gap, at) = times.windows(2).map(|w| (w[1] - w[0], w[1])).max().unwrap_or_default();
            report.push(format!(
                "{} motor {id}: in motor mode from {entered:?}, {} frames to it until the cycles resumed, largest \
                 gap {gap:?} (ending at {at:?}); enable {enable_time:?}",
                bus.name(),
                times.len()
            ));
            assert!(
                gap <= period + tolerance && gap < DRIVE_TIMEOUT,
                "{} motor {id}: command gap {gap:?} ending at {at:?} > {period:?} + {tolerance:?} (drive timeout \
                 {DRIVE_TIMEOUT:?})",
                bus.name()
            );
        }
    }
    println!("{}", report.join("\n"));
}
