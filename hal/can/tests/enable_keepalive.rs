//! The CiA 402 enable sequence keeps the bus's keep-alive: SYNC at the control period on every CANopen bus whose
//! cyclic SYNC runs, and the host heartbeat when due, while its blocking SDO transfers wait for the drives.
//!
//! The stepped `VirtualBus` never lets time pass while the host waits, and the emulated drives answer an SDO at
//! once, so a gap in the keep-alive would not show there. This test runs `CanRobot` over virtual buses behind a
//! small discrete-event clock: the drives answer every SDO `SDO_LATENCY` after the request (real drives serve
//! SDOs in a background task: ≈ 0.5–2 ms), a `receive(timeout)` that finds nothing advances every bus's clock
//! to the next drive answer or to the end of the timeout, whichever comes first, and the drives' timers
//! (heartbeat producer, heartbeat consumer, SYNC watchdog) run whenever the clock moves. Everything on the wire
//! is recorded with its end-of-transmission time from before the first frame.

mod common;

use std::sync::{Arc, Mutex};

use core::time::Duration;

use common::{DiscreteWorld, HostNode};
use plexo_can::canopen::{COB_SYNC, Cia402State};
use plexo_can::emulated::EmulatedCia402Drive;
use plexo_can::{CanBus as _, CanFrame, CanId, CanRobot, CanRobotConfig, VirtualBus, VirtualBusConfig, VirtualNode};
use plexo_hal::{JointCommand, JointState, Lifecycle, Robot};

/// Time a drive takes to answer an SDO request.
const SDO_LATENCY: Duration = Duration::from_millis(1);
/// Host heartbeat period [ms]; the drives' consumer time is 3× this (12 ms), shorter than a whole enable
/// sequence of three drives without keep-alive.
const MASTER_HEARTBEAT_MS: u16 = 4;

const CONFIG: &str = r#"
control_rate_hz = 500.0
master_heartbeat_ms = 4
[[buses]]
name = "can0"
bitrate = 1000000
data_bitrate = 5000000
[[buses]]
name = "can1"
bitrate = 1000000
data_bitrate = 5000000

[[joints]]
name = "a"
bus = "can0"
node_id = 1
protocol = "cia402"
motor = "generic"
limits = { position_min = -1.0, position_max = 1.0, velocity_max = 2.0, torque_max = 5.0 }
cia402 = { rated_torque_mnm = 5000 }
[[joints]]
name = "b"
bus = "can0"
node_id = 2
protocol = "cia402"
motor = "generic"
limits = { position_min = -1.0, position_max = 1.0, velocity_max = 2.0, torque_max = 5.0 }
cia402 = { rated_torque_mnm = 5000 }
[[joints]]
name = "c"
bus = "can1"
node_id = 3
protocol = "cia402"
motor = "generic"
limits = { position_min = -1.0, position_max = 1.0, velocity_max = 2.0, torque_max = 5.0 }
cia402 = { rated_torque_mnm = 5000 }
"#;

/// The drives, their side of every bus and the frames they will send later (SDO answers).
struct World {
    buses: Vec<VirtualBus>,
    nodes: Vec<VirtualNode>,
    drives: Vec<(usize, EmulatedCia402Drive)>,
    scheduled: Vec<(Duration, usize, CanFrame)>,
}

impl DiscreteWorld for World {
    fn buses(&self) -> &[VirtualBus] {
        &self.buses
    }

    fn scheduled(&self) -> &[(Duration, usize, CanFrame)] {
        &self.scheduled
    }

    /// Hands every frame on the drives' nodes to the drives (SDO answers scheduled `SDO_LATENCY` later, the
    /// rest at once), runs their timers and sends what is due.
    fn step(&mut self) {
        let now = self.now();
        for b in 0..self.nodes.len() {
            while let Some(frame) = self.nodes[b].try_receive() {
                let sdo = matches!(frame.id(), CanId::Standard(id) if (0x600..0x680).contains(&id));
                for (bus, drive) in &mut self.drives {
                    if *bus != b {
                        continue;
                    }
                    drive.handle(&frame, now);
                    let out: Vec<CanFrame> = drive.drain_outbox().collect();
                    for f in out {
                        let due = if sdo { now + SDO_LATENCY } else { now };
                        self.scheduled.push((due, b, f));
                    }
                }
            }
        }
        for (bus, drive) in &mut self.drives {
            drive.tick(now);
            drive.flush();
            let out: Vec<CanFrame> = drive.drain_outbox().collect();
            self.scheduled.extend(out.into_iter().map(|f| (now, *bus, f)));
        }
        let mut i = 0;
        while i < self.scheduled.len() {
            if self.scheduled[i].0 <= now {
                let (_, b, f) = self.scheduled.remove(i);
                self.nodes[b].transmit(&f).expect("drive transmit");
            } else {
                i += 1;
            }
        }
    }
}

/// Gaps between consecutive times, with the time the largest one ended.
fn largest_gap(times: &[Duration]) -> (Duration, Duration) {
    times.windows(2).map(|w| (w[1] - w[0], w[1])).max().unwrap_or_default()
}

#[test]
fn regression_enable_sdos_starved_sync_and_host_heartbeat_of_drives_already_enabled() {
    let config = CanRobotConfig::from_toml(CONFIG, "keepalive.toml").unwrap();
    let period = config.period();
    let buses: Vec<VirtualBus> = config
        .buses
        .iter()
        .map(|b| {
            let mut c = VirtualBusConfig::stepped(&b.name, b.bitrate);
            c.bitrates = b.bitrates();
            VirtualBus::new(c)
        })
        .collect();
    for bus in &buses {
        bus.start_recording(1 << 16);
    }
    let nodes = buses.iter().map(|b| b.node("drives")).collect();
    let drives = config
        .joints
        .iter()
        .map(|j| {
            let b = config.buses.iter().position(|b| b.name == j.bus).unwrap();
            (b, EmulatedCia402Drive::new(j.node_id, j.mapping(), 1 << 17, 5000, true))
        })
        .collect();
    let world = Arc::new(Mutex::new(World { buses: buses.clone(), nodes, drives, scheduled: Vec::new() }));
    let hosts = buses.iter().map(|b| HostNode { node: b.node("plexo"), world: Arc::clone(&world) }).collect();
    let mut robot = CanRobot::new(config, hosts).unwrap();

    let n = robot.dof();
    let mut state = JointState::zeros(n);
    let mut cycle = |robot: &mut CanRobot<HostNode<World>>, command: &JointCommand| {
        let start = buses[0].now();
        robot.write(command).unwrap();
        robot.read(&mut state).unwrap();
        world.lock().unwrap().advance_to(start + period);
    };
    // The cyclic loop runs (SYNC every period, host heartbeat every 4 ms), torque-free.
    for _ in 0..10 {
        cycle(&mut robot, &JointCommand::zeros(n));
    }
    let enable_start = buses[0].now();
    robot.enable().unwrap();
    let enable_end = buses[0].now();
    assert_eq!(robot.lifecycle(), Lifecycle::Active);
    for _ in 0..10 {
        cycle(&mut robot, &JointCommand::zeros(n));
    }
    let enable_time = enable_end - enable_start;
    // Three drives × 7 SDOs (target torque, shutdown, statusword, switch on, statusword, enable, statusword).
    assert!(enable_time >= 21 * SDO_LATENCY, "the enable took {enable_time:?}: the SDO latency is modelled");

    // Every drive is still enabled: none lost SYNC (0x8100) or the host heartbeat (0x8130) meanwhile.
    {
        let world = world.lock().unwrap();
        for (_, d) in &world.drives {
            assert_eq!(d.state(), Cia402State::OperationEnabled, "node {}: {:?}", d.node(), d.emcy_sent());
            assert!(d.emcy_sent().is_empty(), "node {}: {:?}", d.node(), d.emcy_sent());
        }
    }

    // SYNC on each bus: never more than one period (plus the frames it may queue behind on the wire) apart,
    // from the cyclic loop through the enable into the active cycles.
    let tolerance = Duration::from_micros(300);
    let mut report = Vec::new();
    for bus in &buses {
        let log = bus.recorded();
        assert_eq!(bus.stats().record_dropped, 0);
        let first_sync = log.iter().find(|(_, f)| f.id() == CanId::Standard(COB_SYNC)).unwrap().0;
        let syncs: Vec<Duration> =
            log.iter().filter(|(_, f)| f.id() == CanId::Standard(COB_SYNC)).map(|(t, _)| *t).collect();
        let (gap, at) = largest_gap(&syncs);
        let during: Vec<Duration> = syncs
            .iter()
            .copied()
            .filter(|t| *t >= enable_start.saturating_sub(period) && *t <= enable_end + period)
            .collect();
        let (gap_enable, _) = largest_gap(&during);
        report.push(format!(
            "{}: enable {enable_time:?}, {} SYNC during it, largest SYNC gap {gap_enable:?} (whole run {gap:?} \
             ending at {at:?}, first SYNC {first_sync:?})",
            bus.name(),
            during.len()
        ));
        assert!(
            gap <= period + tolerance,
            "{}: SYNC gap {gap:?} ending at {at:?} > {period:?} + {tolerance:?}",
            bus.name()
        );
        // The host heartbeat, 1 byte on 0x77F. The cyclic loop sends it in the first cycle at least
        // `master_heartbeat_ms` after the last one, so across the whole run a gap is at most that plus one control
        // period (after the enable the cycles resume on another phase); while the enable waits, the keep-alive
        // sends it when due. The drives' consumer time is 3 × the period.
        let heartbeats: Vec<Duration> =
            log.iter().filter(|(_, f)| f.id() == CanId::Standard(0x77F)).map(|(t, _)| *t).collect();
        let hb_period = Duration::from_millis(u64::from(MASTER_HEARTBEAT_MS));
        let (hb_gap, hb_at) = largest_gap(&heartbeats);
        let in_enable: Vec<Duration> = heartbeats
            .iter()
            .copied()
            .filter(|t| *t >= enable_start.saturating_sub(hb_period) && *t <= enable_end + tolerance)
            .collect();
        let (hb_gap_enable, hb_at_enable) = largest_gap(&in_enable);
        report.push(format!(
            "{}: {} host heartbeats during the enable, largest gap {hb_gap_enable:?} (whole run {hb_gap:?})",
            bus.name(),
            in_enable.len()
        ));
        assert!(in_enable.len() >= 5, "{}: {in_enable:?}", bus.name());
        assert!(
            hb_gap_enable <= hb_period + tolerance,
            "{}: host heartbeat gap {hb_gap_enable:?} ending at {hb_at_enable:?} during the enable > {hb_period:?} + \
             {tolerance:?}",
            bus.name()
        );
        assert!(
            hb_gap <= hb_period + period,
            "{}: host heartbeat gap {hb_gap:?} ending at {hb_at:?} > {hb_period:?} + one period",
            bus.name()
        );
    }
    println!("{}", report.join("\n"));
}
