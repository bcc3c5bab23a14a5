//! Bus-load planner: worst-case bus load of a control loop (bit-stuffed frame times, every frame of a cycle),
//! refused above a limit with a suggestion of what would fit.
//!
//! Frames per control cycle:
//! - CubeMars MIT mode: per joint one 8-byte command and one 8-byte reply (classic CAN only: the AK drives do
//!   not speak CAN FD).
//! - CiA 402 cyclic synchronous torque: one SYNC (0 bytes) per bus, per joint RPDO1 (4 bytes), TPDO1 (8) and
//!   TPDO2 (4). On an FD bus with bit-rate switch the PDOs are timed as FD frames (CANopen FD drives).
//!
//! Heartbeats (1 byte every ≥ 100 ms per node), EMCY and error frames are not in the per-cycle sum: they are
//! what the default 70 % limit leaves room for (design notes, "a sane planning limit").

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
}

/// Planned load of one bus.
#[derive(Clone, Debug, PartialEq)]
pub struct BusLoad {
    /// Bus name.
    pub name: String,
    /// Frames per control cycle.
    pub frames_per_cycle: usize,
    /// Worst-case bus time per control cycle [s].
    pub time_per_cycle: Duration,
    /// Worst-case load at the loop rate (0.0–1.0+).
    pub load: f64,
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

/// Worst-case load of one bus at `rate_hz`. Pure function.
pub fn bus_load(plan: &BusPlan, rate_hz: f64) -> BusLoad {
    let (frames, time) = cycle_time(plan.protocol, plan.joints, plan.bitrates, plan.fd_brs);
    BusLoad {
        name: plan.name.clone(),
        frames_per_cycle: frames,
        time_per_cycle: time,
        load: time.as_secs_f64() * rate_hz,
    }
}

const STANDARD_RATES: [f64; 10] = [1000.0, 800.0, 500.0, 400.0, 333.0, 250.0, 200.0, 125.0, 100.0, 50.0];

/// Checks every bus at `rate_hz` against `limit` (fraction, e.g. 0.7). Returns the loads, or a
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
            "{} {} joints at {rate_hz} Hz need {} µs of {:.0} µs per cycle",
            plan.joints,
            plan.protocol.name(),
            load.time_per_cycle.as_micros(),
            1e6 / rate_hz
        );
        match STANDARD_RATES.iter().find(|r| **r <= max_rate) {
            Some(r) => suggestion += &format!("; fits at ≤ {max_rate:.0} Hz on this bus (e.g. {r} Hz)"),
            None => suggestion += &format!("; fits only below {max_rate:.0} Hz on this bus"),
        }
        let split = (2..=plan.joints).find(|k| {
            let per_bus = BusPlan { joints: plan.joints.div_ceil(*k), ..plan.clone() };
            bus_load(&per_bus, rate_hz).load <= limit
        });
        match split {
            Some(k) => {
                let per_bus = BusPlan { joints: plan.joints.div_ceil(k), ..plan.clone() };
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
        }
    }

    #[test]
    fn four_mit_joints_at_1khz_on_one_1mbit_bus_do_not_fit() {
        // 8 frames × 135 bits = 1080 µs per 1000 µs cycle = 108 % (design notes).
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
    }

    #[test]
    fn split_and_lower_rate_fit() {
        let loads = check_bus_load(&[mit_bus(2), BusPlan { name: "can1".into(), ..mit_bus(2) }], 1000.0, 0.7).unwrap();
        assert!((loads[0].load - 0.54).abs() < 1e-9);
        assert!(check_bus_load(&[mit_bus(4)], 500.0, 0.7).is_ok(), "54 % at 500 Hz");
    }

    #[test]
    fn cia402_counts_sync_and_three_pdos_per_joint() {
        let plan = BusPlan { protocol: DriveProtocol::Cia402, ..mit_bus(4) };
        let load = bus_load(&plan, 1000.0);
        // SYNC 55 bits + 4 × (RPDO 4 B: 34+32 → 66 + 16 stuff + 13 = 95; TPDO1 135; TPDO2 95) = 55 + 4·325.
        assert_eq!(load.frames_per_cycle, 13);
        assert_eq!(load.time_per_cycle, Duration::from_micros(55 + 4 * 325));
        assert!(check_bus_load(std::slice::from_ref(&plan), 1000.0, 0.7).is_err());
        let fd = BusPlan { fd_brs: true, bitrates: Bitrates { nominal: 1_000_000, data: 5_000_000 }, ..plan };
        assert!(check_bus_load(&[fd], 1000.0, 0.7).is_ok(), "CAN FD at 5 Mbit/s data phase fits");
    }
}
