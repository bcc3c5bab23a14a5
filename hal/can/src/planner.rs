//! Bus-load planner: worst-case bus load of a control loop (bit-stuffed frame times, every frame that can fall
//! into one control period), refused above a limit with a suggestion of what would fit.
//!
//! Cyclic frames, every control period:
//! - CubeMars MIT mode: per joint one 8-byte command and one 8-byte reply (classic CAN only: the AK drives do
//!   not speak CAN FD). MIT drives send nothing unsolicited, so an MIT bus carries nothing else.
//! - CiA 402 cyclic synchronous torque: one SYNC (0 bytes) per bus, per joint RPDO1 (4 bytes), TPDO1 (8) and
//!   TPDO2 (4). On an FD bus with bit-rate switch the PDOs are timed as FD frames (CANopen FD drives).
//!
//! Acyclic frames on a CiA 402 bus (classic frames at the nominal bitrate, also on an FD bus: `CanRobot` and
//! the drives send them classic):
//! - the host heartbeat, 1 byte on 0x700 + `master_node_id`, every `master_heartbeat_ms`;
//! - each drive's heartbeat producer (0x1017, `heartbeat_ms`), 1 byte on 0x700 + node;
//! - EMCY, 8 bytes on 0x080 + node.
//!
//! Two figures per bus ([`BusLoad`]):
//! - **worst case** (what the limit is checked against): the cyclic frames, plus every heartbeat that can fall
//!   into the same period — a producer of period P sends at most ⌈T / P⌉ frames in a window of one control
//!   period T, and all producers can be in phase — plus an **EMCY allowance of one 8-byte EMCY per drive in
//!   that same period**. The assumption: a drive sends at most one EMCY per control period (a fault and its
//!   EMCY end the session: `CanRobot` faults in the read that sees an error EMCY and sends torque off, so a
//!   burst is one EMCY per drive at a time, all drives at once in the worst case, e.g. a supply dip seen by
//!   every drive). Plexo does not write the EMCY inhibit time 0x1015, so a drive that repeats EMCY faster
//!   (an EMCY storm) is not covered by the plan; the 30 % the default limit leaves free and the reply
//!   accounting (late replies) are the margin for it, for error frames and for retransmissions;
//! - **average**: the cyclic frames plus the heartbeats at their mean rate (T / P frames per period); no EMCY
//!   (none in fault-free operation).
//!
//! Every frame is timed with worst-case bit stuffing ([`crate::timing::frame_duration`]). Pure functions.

use core::time::Duration;

use crate::timing::{Bitrates, FrameFormat, frame_duration};
use plexo_hal::HalError;

/// Drive protocol of a joint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriveProtocol {
    /// CubeMars AK MIT mode.
    Mit,
    /// CANopen CiA 402, cyclic synchronous torque.
    Cia402,
}

impl DriveProtocol {
    /// Name as in configs and the CLI (`mit`, `cia402`).
    pub const fn name(self) -> &'static str {
        match self {
            DriveProtocol::Mit => "mit",
            DriveProtocol::Cia402 => "cia402",
        }
    }
}

/// Default planning limit: 70 % worst-case load.
pub const DEFAULT_LOAD_LIMIT: f64 = 0.70;

/// One bus as the planner sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct BusPlan {
    /// Bus name.
    pub name: String,
    /// Bitrates [bit/s].
    pub bitrates: Bitrates,
    /// CAN FD with bit-rate switch available (used by CiA 402 PDOs only).
    pub fd_brs: bool,
    /// Drive protocol of the joints on this bus.
    pub protocol: DriveProtocol,
    /// Joints on this bus.
    pub joints: usize,
    /// Host heartbeat period on this bus (`master_heartbeat_ms`); CiA 402 buses only (ignored on MIT buses),
    /// `None` or zero: not sent.
    pub master_heartbeat: Option<Duration>,
    /// Heartbeat producer period (0x1017, `cia402.heartbeat_ms`) of each drive on this bus; CiA 402 buses
    /// only. A zero period, or a joint beyond the list, produces no heartbeat.
    pub drive_heartbeats: Vec<Duration>,
}

impl BusPlan {
    /// This bus with only `joints` of its joints: those with the shortest heartbeat periods (the worst case),
    /// for the split suggestion.
    fn with_joints(&self, joints: usize) -> BusPlan {
        let mut drive_heartbeats = self.drive_heartbeats.clone();
        drive_heartbeats.sort_by_key(|p| if p.is_zero() { Duration::MAX } else { *p });
        drive_heartbeats.truncate(joints);
        BusPlan { joints, drive_heartbeats, ..self.clone() }
    }
}

/// Planned load of one bus.
#[derive(Clone, Debug, PartialEq)]
pub struct BusLoad {
    /// Bus name.
    pub name: String,
    /// Frames in one control period, worst case: the cyclic frames plus every heartbeat that can fall into
    /// the period plus the EMCY allowance (module docs).
    pub frames_per_cycle: usize,
    /// Worst-case bus time in one control period (the frames of `frames_per_cycle`) [s].
    pub time_per_cycle: Duration,
    /// Worst-case load at the loop rate, `time_per_cycle` × rate (0.0–1.0+): what the limit is checked against.
    pub load: f64,
    /// Cyclic frames per control period (commands, replies, SYNC).
    pub cyclic_frames: usize,
    /// Bus time of the cyclic frames per control period [s].
    pub cyclic_time: Duration,
    /// Average bus time per control period: the cyclic frames plus the heartbeats at their mean rate [s].
    pub average_time: Duration,
    /// Average load at the loop rate (0.0–1.0+).
    pub average_load: f64,
}

fn cycle_time(protocol: DriveProtocol, joints: usize, bitrates: Bitrates, fd_brs: bool) -> (usize, Duration) {
    let pdo = |len: u8| {
        if fd_brs { FrameFormat { extended: false, fd: true, brs: true, len } } else { FrameFormat::classic(len) }
    };
    let t = |f: FrameFormat| frame_duration(f, bitrates, true);
    match protocol {
        DriveProtocol::Mit => (2 * joints, 2 * joints as u32 * t(FrameFormat::classic(8))),
        DriveProtocol::Cia402 => {
            let per_joint = t(pdo(4)) + t(pdo(8)) + t(pdo(4));
            let sync = if joints > 0 { t(FrameFormat::classic(0)) } else { Duration::ZERO };
            (3 * joints + usize::from(joints > 0), sync + joints as u32 * per_joint)
        }
    }
}

/// Acyclic frames of one control period `period` on a bus: (worst-case frames, worst-case time, average time
/// [s]). Heartbeats: ⌈period / P⌉ frames in the worst case, period / P on average; one EMCY per drive in the
/// worst case only (module docs). MIT buses carry none.
fn acyclic_time(plan: &BusPlan, period: f64) -> (usize, Duration, f64) {
    if plan.protocol != DriveProtocol::Cia402 || plan.joints == 0 {
        return (0, Duration::ZERO, 0.0);
    }
    let heartbeat = frame_duration(FrameFormat::classic(1), plan.bitrates, true);
    let emcy = frame_duration(FrameFormat::classic(8), plan.bitrates, true);
    let producers = plan.master_heartbeat.into_iter().chain(plan.drive_heartbeats.iter().take(plan.joints).copied());
    let (mut frames, mut average) = (0usize, 0.0);
    for p in producers.filter(|p| !p.is_zero()) {
        let per_period = period / p.as_secs_f64();
        // ⌈T / P⌉, robust to the rounding of T = 1 / rate (T = P exactly is one frame, not two).
        frames += ((per_period - 1e-9).ceil() as usize).max(1);
        average += per_period;
    }
    let worst = frames as u32 * heartbeat + plan.joints as u32 * emcy;
    (frames + plan.joints, worst, average * heartbeat.as_secs_f64())
}

/// Worst-case and average load of one bus at `rate_hz` (module docs). Pure function.
pub fn bus_load(plan: &BusPlan, rate_hz: f64) -> BusLoad {
    let (cyclic_frames, cyclic_time) = cycle_time(plan.protocol, plan.joints, plan.bitrates, plan.fd_brs);
    let (acyclic_frames, acyclic_worst, acyclic_average) = acyclic_time(plan, 1.0 / rate_hz);
    let time = cyclic_time + acyclic_worst;
    let average_time = cyclic_time + Duration::from_secs_f64(acyclic_average);
    BusLoad {
        name: plan.name.clone(),
        frames_per_cycle: cyclic_frames + acyclic_frames,
        time_per_cycle: time,
        load: time.as_secs_f64() * rate_hz,
        cyclic_frames,
        cyclic_time,
        average_time,
        average_load: average_time.as_secs_f64() * rate_hz,
    }
}

const STANDARD_RATES: [f64; 10] = [1000.0, 800.0, 500.0, 400.0, 333.0, 250.0, 200.0, 125.0, 100.0, 50.0];

/// Checks every bus's worst-case load at `rate_hz` against `limit` (fraction, e.g. 0.7). Returns the loads, or a
/// [`HalError::BusOverload`] for the first bus above the limit, naming the rate and the bus split that would fit.
pub fn check_bus_load(plans: &[BusPlan], rate_hz: f64, limit: f64) -> Result<Vec<BusLoad>, HalError> {
    if !(rate_hz.is_finite() && rate_hz > 0.0) {
        return Err(HalError::Config { key: "control_rate_hz".into(), reason: format!("{rate_hz} must be > 0") });
    }
    if !(limit.is_finite() && limit > 0.0 && limit <= 1.0) {
        return Err(HalError::Config { key: "bus_load_limit".into(), reason: format!("{limit} must be in (0, 1]") });
    }
    let loads: Vec<BusLoad> = plans.iter().map(|p| bus_load(p, rate_hz)).collect();
    for (plan, load) in plans.iter().zip(&loads) {
        if load.load <= limit {
            continue;
        }
        let max_rate = limit / load.time_per_cycle.as_secs_f64();
        let mut suggestion = format!(
            "{} {} joints at {rate_hz} Hz need {} µs of {:.0} µs per cycle in the worst case",
            plan.joints,
            plan.protocol.name(),
            load.time_per_cycle.as_micros(),
            1e6 / rate_hz
        );
        // At a lower rate a period can hold more heartbeats (⌈T / P⌉): the suggested rate is checked itself.
        match STANDARD_RATES.iter().find(|r| **r <= max_rate && bus_load(plan, **r).load <= limit) {
            Some(r) => suggestion += &format!("; fits at ≤ {max_rate:.0} Hz on this bus (e.g. {r} Hz)"),
            None => suggestion += &format!("; fits only below {max_rate:.0} Hz on this bus"),
        }
        let split = (2..=plan.joints).find(|k| {
            let per_bus = plan.with_joints(plan.joints.div_ceil(*k));
            bus_load(&per_bus, rate_hz).load <= limit
        });
        match split {
            Some(k) => {
                let per_bus = plan.with_joints(plan.joints.div_ceil(k));
                suggestion += &format!(
                    ", or split over {k} buses ({} joints each, {:.1} % each)",
                    per_bus.joints,
                    100.0 * bus_load(&per_bus, rate_hz).load
                );
            }
            None => suggestion += ", and no split of these joints fits at this rate",
        }
        if plan.protocol == DriveProtocol::Cia402 && !plan.fd_brs {
            suggestion += ", or use CAN FD with bit-rate switch";
        }
        return Err(HalError::BusOverload {
            bus: plan.name.clone(),
            load_percent: 100.0 * load.load,
            limit_percent: 100.0 * limit,
            suggestion,
        });
    }
    Ok(loads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mit_bus(joints: usize) -> BusPlan {
        BusPlan {
            name: "can0".into(),
            bitrates: Bitrates::classic(1_000_000),
            fd_brs: false,
            protocol: DriveProtocol::Mit,
            joints,
            master_heartbeat: None,
            drive_heartbeats: Vec::new(),
        }
    }

    /// `joints` CiA 402 drives on a classic 1 Mbit/s bus, host heartbeat 50 ms, drive heartbeats 100 ms (the
    /// configuration defaults).
    fn cia402_bus(joints: usize) -> BusPlan {
        BusPlan {
            protocol: DriveProtocol::Cia402,
            master_heartbeat: Some(Duration::from_millis(50)),
            drive_heartbeats: vec![Duration::from_millis(100); joints],
            ..mit_bus(joints)
        }
    }

    #[test]
    fn four_mit_joints_at_1khz_on_one_1mbit_bus_do_not_fit() {
        // 8 frames × 135 bits = 1080 µs per 1000 µs cycle = 108 % (design notes). MIT drives send nothing
        // unsolicited: the worst case is the cyclic traffic.
        let err = check_bus_load(&[mit_bus(4)], 1000.0, DEFAULT_LOAD_LIMIT).unwrap_err();
        let HalError::BusOverload { bus, load_percent, limit_percent, suggestion } = &err else {
            panic!("expected BusOverload, got {err}");
        };
        assert_eq!(bus, "can0");
        assert!((load_percent - 108.0).abs() < 1e-9, "{load_percent}");
        assert_eq!(*limit_percent, 70.0);
        // 0.7 / 1080 µs = 648 Hz → 500 Hz; two buses of 2 joints: 540 µs → 54 %.
        assert!(suggestion.contains("≤ 648 Hz") && suggestion.contains("e.g. 500 Hz"), "{suggestion}");
        assert!(suggestion.contains("split over 2 buses (2 joints each, 54.0 %"), "{suggestion}");
        assert_eq!(plexo_hal::RobotError::kind(&err), plexo_hal::ErrorKind::Configuration);
        let load = bus_load(&mit_bus(4), 1000.0);
        assert_eq!((load.frames_per_cycle, load.cyclic_frames), (8, 8));
        let us = Duration::from_micros(1080);
        assert_eq!((load.time_per_cycle, load.cyclic_time, load.average_time), (us, us, us));
    }

    #[test]
    fn split_and_lower_rate_fit() {
        let loads = check_bus_load(&[mit_bus(2), BusPlan { name: "can1".into(), ..mit_bus(2) }], 1000.0, 0.7).unwrap();
        assert!((loads[0].load - 0.54).abs() < 1e-9);
        assert!(check_bus_load(&[mit_bus(4)], 500.0, 0.7).is_ok(), "54 % at 500 Hz");
    }

    #[test]
    fn cia402_counts_sync_and_three_pdos_per_joint() {
        let load = bus_load(&cia402_bus(4), 1000.0);
        // SYNC 55 bits + 4 × (RPDO 4 B: 34+32 → 66 + 16 stuff + 13 = 95; TPDO1 135; TPDO2 95) = 55 + 4·325.
        assert_eq!(load.cyclic_frames, 13);
        assert_eq!(load.cyclic_time, Duration::from_micros(55 + 4 * 325));
        assert!(check_bus_load(&[cia402_bus(4)], 1000.0, 0.7).is_err());
        let fd =
            |n| BusPlan { fd_brs: true, bitrates: Bitrates { nominal: 1_000_000, data: 5_000_000 }, ..cia402_bus(n) };
        assert!(check_bus_load(&[fd(1)], 1000.0, 0.7).is_ok(), "one drive on CAN FD at 5 Mbit/s data phase fits");
        // FD + BRS, standard id: 34 nominal bits (17 arbitration + 4 stuff + 13 tail) + data phase at 5 Mbit/s,
        // 4 bytes: 37 + 9 stuff + 4 + CRC 17 + 6 fixed = 73 bits (14.6 µs) → 48.6 µs; 8 bytes: 69 + 17 + 4 + 17 +
        // 6 = 113 bits (22.6 µs) → 56.6 µs. One drive: 55 + 48.6 + 56.6 + 48.6 = 208.8 µs cyclic; + 2 heartbeats
        // (65 µs each) + 1 EMCY (135 µs) = 473.8 µs worst case; average + 65 · (1/50 + 1/100) = 210.75 µs.
        let one = bus_load(&fd(1), 1000.0);
        assert_eq!(
            (one.cyclic_time, one.time_per_cycle),
            (Duration::from_nanos(208_800), Duration::from_nanos(473_800))
        );
        assert!((one.average_time.as_secs_f64() * 1e6 - 210.75).abs() < 1e-3, "{:?}", one.average_time);
        // Two drives: 55 + 2 · 153.8 + 3 · 65 + 2 · 135 = 827.6 µs > 700 µs: one drive per FD bus at 1 kHz.
        assert_eq!(bus_load(&fd(2), 1000.0).time_per_cycle, Duration::from_nanos(827_600));
    }

    #[test]
    fn regression_cia402_worst_case_counted_only_the_cyclic_frames_not_heartbeats_and_emcy() {
        // Before: 4 CiA 402 drives on 1 Mbit/s at 500 Hz were planned at 1355 µs of 2000 µs (67.8 %, "fits")
        // although the host heartbeat, four drive heartbeats and four EMCY can fall into the same period.
        // Heartbeat (1 byte): 34 + 8 = 42 stuffed bits + ⌊41/4⌋ = 10 stuff + 13 = 65 bits = 65 µs.
        // EMCY (8 bytes): 135 µs. Worst case at 500 Hz (T = 2 ms ≤ every heartbeat period: one each):
        // 1355 + (1 + 4) · 65 + 4 · 135 = 1355 + 325 + 540 = 2220 µs = 111 %.
        let load = bus_load(&cia402_bus(4), 500.0);
        assert_eq!(load.frames_per_cycle, 13 + 5 + 4);
        assert_eq!(load.time_per_cycle, Duration::from_micros(2220));
        assert!((load.load - 1.11).abs() < 1e-9, "{}", load.load);
        // Average: 1355 + 65 · (2/50 + 4 · 2/100) = 1355 + 65 · 0.12 = 1362.8 µs = 68.14 %.
        assert!((load.average_time.as_secs_f64() * 1e6 - 1362.8).abs() < 1e-3, "{:?}", load.average_time);
        assert!((load.average_load - 0.6814).abs() < 1e-6, "{}", load.average_load);
        let err = check_bus_load(&[cia402_bus(4)], 500.0, DEFAULT_LOAD_LIMIT).unwrap_err();
        let HalError::BusOverload { load_percent, suggestion, .. } = &err else { panic!("{err}") };
        assert!((load_percent - 111.0).abs() < 1e-9, "{load_percent}");
        // 0.7 / 2220 µs = 315 Hz → 250 Hz; two buses of 2: 55 + 650 + 195 + 270 = 1170 µs = 58.5 %.
        assert!(suggestion.contains("≤ 315 Hz") && suggestion.contains("e.g. 250 Hz"), "{suggestion}");
        assert!(suggestion.contains("split over 2 buses (2 joints each, 58.5 %"), "{suggestion}");
        // Three drives: 55 + 975 + 4 · 65 + 3 · 135 = 1695 µs = 84.75 % > 70 %; two: 1170 µs = 58.5 % fits.
        assert_eq!(bus_load(&cia402_bus(3), 500.0).time_per_cycle, Duration::from_micros(1695));
        assert!(check_bus_load(&[cia402_bus(2)], 500.0, DEFAULT_LOAD_LIMIT).is_ok());
    }

    #[test]
    fn heartbeats_shorter_than_the_period_count_every_frame_that_fits_in_it() {
        // At 100 Hz (T = 10 ms) with drive heartbeats of 3 ms and the host's 50 ms: ⌈10/3⌉ = 4 frames per
        // drive and 1 host heartbeat fit into one period in the worst case; on average 10/3 and 10/50.
        let plan = BusPlan { drive_heartbeats: vec![Duration::from_millis(3); 2], ..cia402_bus(2) };
        let load = bus_load(&plan, 100.0);
        // Cyclic 55 + 2 · 325 = 705; acyclic (1 + 2 · 4) · 65 + 2 · 135 = 585 + 270 = 855.
        assert_eq!(load.frames_per_cycle, 7 + 9 + 2, "SYNC + 3 PDOs × 2, 9 heartbeats, 2 EMCY");
        assert_eq!(load.time_per_cycle, Duration::from_micros(705 + 855));
        let average = 705.0 + 65.0 * (10.0 / 50.0 + 2.0 * 10.0 / 3.0);
        assert!((load.average_time.as_secs_f64() * 1e6 - average).abs() < 1e-3, "{:?}", load.average_time);
        // A heartbeat period equal to the control period is one frame per period, not two.
        let equal = BusPlan { master_heartbeat: Some(Duration::from_millis(10)), ..plan.clone() };
        assert_eq!(bus_load(&equal, 100.0).frames_per_cycle, load.frames_per_cycle);
        // A zero period (producer off) sends nothing.
        let off = BusPlan { master_heartbeat: None, drive_heartbeats: vec![Duration::ZERO; 2], ..plan };
        assert_eq!(bus_load(&off, 100.0).time_per_cycle, Duration::from_micros(705 + 270));
    }

    #[test]
    fn the_configuration_carries_the_heartbeat_periods_into_the_plan() {
        let text = r#"
control_rate_hz = 500.0
master_heartbeat_ms = 20
[[buses]]
name = "can0"
bitrate = 1000000
[[joints]]
name = "a"
bus = "can0"
node_id = 1
protocol = "cia402"
motor = "generic"
limits = { position_min = -1.0, position_max = 1.0, velocity_max = 2.0, torque_max = 5.0 }
cia402 = { heartbeat_ms = 40 }
[[joints]]
name = "b"
bus = "can0"
node_id = 2
protocol = "cia402"
motor = "generic"
limits = { position_min = -1.0, position_max = 1.0, velocity_max = 2.0, torque_max = 5.0 }
"#;
        let c = crate::config::CanRobotConfig::from_toml(text, "r.toml").unwrap();
        let plans = c.bus_plans();
        assert_eq!(plans[0].master_heartbeat, Some(Duration::from_millis(20)));
        assert_eq!(plans[0].drive_heartbeats, vec![Duration::from_millis(40), Duration::from_millis(100)]);
        // 55 + 2 · 325 + 3 · 65 + 2 · 135 = 1170 µs; average 705 + 65 · (2/20 + 2/40 + 2/100) = 716.05 µs.
        let load = bus_load(&plans[0], 500.0);
        assert_eq!(load.time_per_cycle, Duration::from_micros(1170));
        assert!((load.average_time.as_secs_f64() * 1e6 - 716.05).abs() < 1e-3, "{:?}", load.average_time);
    }
}
