//! The CANopen CiA 402 joint driver (cyclic synchronous torque): one RPDO per cycle and a SYNC per bus, answered
//! by TPDO1 (statusword, position, torque) and TPDO2 (velocity); EMCY and heartbeats; start-up, enable and fault
//! reset by SDO.

use core::time::Duration;

use plexo_hal::{HalError, JointCommand, Lifecycle};

use super::joint::{DriveLink, GOT_MAIN, GOT_VELOCITY, JointCore, JointDriver, Received, driver_of};
use super::plausibility;
use crate::canopen::{
    self, COB_EMCY, COB_HEARTBEAT, COB_TPDO1, COB_TPDO2, Cia402State, Emcy, NmtCommand, NmtState, Rpdo1, SdoRequest,
    SdoResponse, Tpdo1, Tpdo2, controlword, od,
};
use crate::config::{CanRobotConfig, Cia402Options, JointMapping};
use crate::frame::CanFrame;

/// A joint driven by a CiA 402 drive.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cia402Driver {
    /// The configured options.
    pub options: Cia402Options,
    /// Rated torque (0x6076) [Nm], read at start-up.
    pub rated_torque: f64,
    /// Encoder counts per radian at the drive.
    pub counts_per_rad: f64,
    /// Communication cycle period written to 0x1006 [µs].
    pub cycle_period_us: u32,
    /// Host node id and consumer heartbeat time [ms] written to 0x1016:1 (`node << 16 | ms`).
    pub consumer_heartbeat: u32,
    /// Last statusword received.
    pub statusword: u16,
    /// Bus time of the drive's last heartbeat.
    pub last_heartbeat: Duration,
    /// NMT state of the drive's last heartbeat.
    pub nmt: Option<NmtState>,
}

impl Cia402Driver {
    /// A driver with `options` for a robot configured as `config`.
    pub fn new(options: Cia402Options, config: &CanRobotConfig) -> Self {
        Self {
            options,
            rated_torque: 1.0,
            counts_per_rad: f64::from(options.encoder_counts_per_rev) / core::f64::consts::TAU,
            cycle_period_us: (1e6 / config.control_rate_hz).round() as u32,
            consumer_heartbeat: (u32::from(config.master_node_id) << 16) | (3 * u32::from(config.master_heartbeat_ms)),
            statusword: 0,
            last_heartbeat: Duration::ZERO,
            nmt: None,
        }
    }
}

/// One SDO transfer with joint `j`'s drive; aborts and unexpected answers are errors.
fn sdo<L: DriveLink<Cia402Driver>>(link: &mut L, j: usize, request: SdoRequest) -> Result<SdoResponse, HalError> {
    let node = link.joint(j).node;
    let object = match request {
        SdoRequest::Download { index, subindex, .. } | SdoRequest::Upload { index, subindex } => (index, subindex),
    };
    let response =
        link.exchange(j, &request.frame(node), |f| SdoResponse::decode(f, node).filter(|r| r.object() == object))?;
    match response {
        SdoResponse::Abort { index, subindex, code } => Err(HalError::SdoAbort {
            joint: j,
            node_id: node,
            index,
            subindex,
            code,
            meaning: canopen::abort_meaning(code),
        }),
        SdoResponse::SegmentedUpload { index, subindex } => Err(HalError::Protocol {
            joint: j,
            node_id: node,
            detail: format!("{index:#06x}:{subindex} answered with a segmented upload; expected expedited"),
        }),
        r @ (SdoResponse::DownloadAck { .. } | SdoResponse::Upload { .. }) => {
            let expect_upload = matches!(request, SdoRequest::Upload { .. });
            if expect_upload != matches!(r, SdoResponse::Upload { .. }) {
                return Err(HalError::Protocol { joint: j, node_id: node, detail: format!("unexpected {r:?}") });
            }
            Ok(r)
        }
    }
}

fn sdo_write<L: DriveLink<Cia402Driver>>(
    link: &mut L,
    j: usize,
    index: u16,
    subindex: u8,
    value: u32,
    len: u8,
) -> Result<(), HalError> {
    sdo(link, j, SdoRequest::write(index, subindex, value, len)).map(|_| ())
}

fn sdo_read<L: DriveLink<Cia402Driver>>(link: &mut L, j: usize, index: u16, subindex: u8) -> Result<u32, HalError> {
    let r = sdo(link, j, SdoRequest::Upload { index, subindex })?;
    r.value().ok_or_else(|| HalError::Protocol {
        joint: j,
        node_id: link.joint(j).node,
        detail: format!("no value in the upload of {index:#06x}:{subindex}"),
    })
}

/// Reads the statusword (up to 10 times) until the drive is in `want`; a fault state ends the wait.
fn expect_state<L: DriveLink<Cia402Driver>>(link: &mut L, j: usize, want: Cia402State) -> Result<(), HalError> {
    let mut state = Cia402State::NotReadyToSwitchOn;
    for _ in 0..10 {
        let sw = sdo_read(link, j, od::STATUSWORD, 0)? as u16;
        driver_of(link, j)?.statusword = sw;
        state = Cia402State::from_statusword(sw);
        if state == want {
            return Ok(());
        }
        if state == Cia402State::Fault {
            break;
        }
    }
    Err(HalError::DriveFault {
        joint: j,
        detail: format!("node {}: state {state:?}, expected {want:?}", link.joint(j).node),
    })
}

impl JointDriver for Cia402Driver {
    fn required_replies(&self) -> u8 {
        GOT_MAIN | GOT_VELOCITY
    }

    fn position_step(&self, map: &JointMapping) -> f64 {
        1.0 / (self.counts_per_rad * map.ratio)
    }

    fn owns(&self, node: u8, id: u16, _frame: &CanFrame) -> bool {
        (id & 0x7F) as u8 == node
    }

    fn receive(&mut self, joint: &mut JointCore, id: u16, frame: &CanFrame, now: Duration, stale: bool) -> Received {
        let node = joint.node;
        match id & 0x780 {
            COB_TPDO1 => {
                let Some(p) = Tpdo1::decode(frame, node) else { return Received::Ignored };
                if stale {
                    return Received::Stale;
                }
                let position = joint.map.link_position(f64::from(p.position) / self.counts_per_rad);
                let torque = f64::from(p.torque);
                let why = joint
                    .check_position(position, now, self.position_step(&joint.map))
                    .or_else(|| plausibility::check_torque_permille(self.options.max_torque_permille, torque));
                if let Some(why) = why {
                    return Received::Rejected(why);
                }
                self.statusword = p.statusword;
                joint.position = position;
                joint.torque = joint.map.link_torque(torque / 1000.0 * self.rated_torque);
                joint.got |= GOT_MAIN;
                joint.last_reply = now;
                joint.accepted_at = Some(now);
                Received::Accepted
            }
            COB_TPDO2 => {
                let Some(p) = Tpdo2::decode(frame, node) else { return Received::Ignored };
                if stale {
                    return Received::Stale;
                }
                let velocity = joint.map.link_velocity(f64::from(p.velocity) / self.counts_per_rad);
                if let Some(why) = joint.check_velocity(velocity) {
                    return Received::Rejected(why);
                }
                joint.velocity = velocity;
                joint.got |= GOT_VELOCITY;
                Received::Accepted
            }
            COB_EMCY => {
                if let Some(e) = Emcy::decode(frame, node)
                    && e.is_error()
                {
                    joint.drive_flags.insert(e.flags());
                    joint.emcy = Some(e);
                }
                Received::Ignored
            }
            COB_HEARTBEAT => {
                if let Some((_, state)) = canopen::decode_heartbeat(frame) {
                    self.nmt = Some(state);
                    self.last_heartbeat = now;
                }
                Received::Ignored
            }
            _ => Received::Ignored,
        }
    }

    /// CiA 402 has no drive-side impedance loop in CST mode: a drive impedance is closed here at the loop rate.
    fn command_frame(&self, joint: &JointCore, command: Option<(&JointCommand, usize)>) -> (CanFrame, u64) {
        let mut clamped = 0;
        let mut tau = 0.0;
        if let Some((command, j)) = command {
            tau = command.torque[j];
            if let Some(d) = &command.drive_impedance {
                tau +=
                    d.stiffness[j] * (d.position[j] - joint.position) + d.damping[j] * (d.velocity[j] - joint.velocity);
            }
            tau = joint.clamp_torque(tau, &mut clamped);
        }
        let permille = joint.map.drive_torque(tau) / self.rated_torque * 1000.0;
        let max = f64::from(self.options.max_torque_permille.min(i16::MAX as u16));
        let sent = permille.clamp(-max, max);
        if sent != permille {
            clamped += 1;
        }
        let frame =
            Rpdo1 { controlword: controlword::ENABLE_OPERATION, target_torque: sent.round() as i16 }.frame(joint.node);
        (frame, clamped)
    }

    fn idle_frame(&self, node: u8) -> CanFrame {
        Rpdo1 { controlword: controlword::DISABLE_VOLTAGE, target_torque: 0 }.frame(node)
    }

    fn torque_off_frame(&self, node: u8, quick_stop: bool) -> CanFrame {
        let controlword = if quick_stop { controlword::QUICK_STOP } else { controlword::DISABLE_VOLTAGE };
        Rpdo1 { controlword, target_torque: 0 }.frame(node)
    }

    fn fault(
        &self,
        joint: &JointCore,
        index: usize,
        now: Duration,
        lifecycle: Lifecycle,
        _config: &CanRobotConfig,
    ) -> Option<HalError> {
        let node = joint.node;
        let hb_timeout = Duration::from_millis(3 * u64::from(self.options.heartbeat_ms));
        if now.saturating_sub(self.last_heartbeat) > hb_timeout {
            return Some(HalError::DriveFault {
                joint: index,
                detail: format!(
                    "node {node}: heartbeat lost ({:?} since the last one, consumer timeout {hb_timeout:?})",
                    now.saturating_sub(self.last_heartbeat)
                ),
            });
        }
        if let Some(state @ (NmtState::BootUp | NmtState::Stopped | NmtState::PreOperational)) = self.nmt {
            return Some(HalError::DriveFault {
                joint: index,
                detail: format!("node {node}: NMT state {state:?} (drive rebooted or stopped)"),
            });
        }
        let state = Cia402State::from_statusword(self.statusword);
        if matches!(state, Cia402State::Fault | Cia402State::FaultReactionActive) {
            return Some(HalError::DriveFault {
                joint: index,
                detail: format!(
                    "node {node}: CiA 402 state {state:?}, last EMCY {:?}",
                    joint.emcy.map(|e| (e.code, e.meaning()))
                ),
            });
        }
        if lifecycle == Lifecycle::Active && state != Cia402State::OperationEnabled {
            return Some(HalError::DriveFault {
                joint: index,
                detail: format!("node {node}: drive left operation enabled (state {state:?})"),
            });
        }
        None
    }

    fn is_enabled(&self, _lifecycle: Lifecycle) -> bool {
        Cia402State::from_statusword(self.statusword) == Cia402State::OperationEnabled
    }

    fn reports_temperature(&self) -> bool {
        false
    }

    /// Pre-operational, SDO configuration (modes, options, watchdogs, PDO mapping), checks (rated torque, mode),
    /// then NMT start.
    fn configure<L: DriveLink<Self>>(link: &mut L, j: usize) -> Result<(), HalError> {
        let node = link.joint(j).node;
        link.send(j, &NmtCommand::EnterPreOperational.frame(node))?;
        let d = *driver_of(link, j)?;
        let o = d.options;
        let writes: [(u16, u8, u32, u8); 10] = [
            (od::CONTROLWORD, 0, u32::from(controlword::DISABLE_VOLTAGE), 2),
            (od::TARGET_TORQUE, 0, 0, 2),
            (od::MODES_OF_OPERATION, 0, canopen::MODE_CST as u32, 1),
            (od::QUICK_STOP_OPTION, 0, o.quick_stop_option as u16 as u32, 2),
            (od::FAULT_REACTION_OPTION, 0, o.fault_reaction_option as u16 as u32, 2),
            (od::ABORT_CONNECTION_OPTION, 0, o.abort_connection_option as u16 as u32, 2),
            (od::COMMUNICATION_CYCLE_PERIOD, 0, d.cycle_period_us, 4),
            (od::PRODUCER_HEARTBEAT, 0, u32::from(o.heartbeat_ms), 2),
            (od::CONSUMER_HEARTBEAT, 1, d.consumer_heartbeat, 4),
            (od::MAX_TORQUE, 0, u32::from(o.max_torque_permille), 2),
        ];
        for (index, sub, value, len) in writes {
            sdo_write(link, j, index, sub, value, len)?;
        }
        for w in canopen::pdo_mapping_writes(node) {
            sdo(link, j, w)?;
        }
        let rated = sdo_read(link, j, od::MOTOR_RATED_TORQUE, 0)?;
        if rated == 0 || o.rated_torque_mnm.is_some_and(|r| r != rated) {
            return Err(HalError::Config {
                key: format!("joints[{j}].cia402.rated_torque_mnm"),
                reason: format!(
                    "drive node {node} reports 0x6076 = {rated} mNm, config expects {:?} (drive reset to factory \
                     parameters?)",
                    o.rated_torque_mnm
                ),
            });
        }
        driver_of(link, j)?.rated_torque = f64::from(rated) / 1000.0;
        let mode = sdo_read(link, j, od::MODES_OF_OPERATION_DISPLAY, 0)? as u8 as i8;
        if mode != canopen::MODE_CST {
            return Err(HalError::Protocol {
                joint: j,
                node_id: node,
                detail: format!("modes of operation display {mode}, expected {} (CST)", canopen::MODE_CST),
            });
        }
        link.send(j, &NmtCommand::Start.frame(node))?;
        let now = link.now(j);
        let d = driver_of(link, j)?;
        d.nmt = Some(NmtState::Operational);
        d.last_heartbeat = now;
        Ok(())
    }

    /// Target torque 0, then *shutdown* → *switch on* → *enable operation*, checking each state.
    fn enable<L: DriveLink<Self>>(link: &mut L, j: usize) -> Result<(), HalError> {
        sdo_write(link, j, od::TARGET_TORQUE, 0, 0, 2)?;
        sdo_write(link, j, od::CONTROLWORD, 0, u32::from(controlword::SHUTDOWN), 2)?;
        expect_state(link, j, Cia402State::ReadyToSwitchOn)?;
        sdo_write(link, j, od::CONTROLWORD, 0, u32::from(controlword::SWITCH_ON), 2)?;
        expect_state(link, j, Cia402State::SwitchedOn)?;
        sdo_write(link, j, od::CONTROLWORD, 0, u32::from(controlword::ENABLE_OPERATION), 2)?;
        expect_state(link, j, Cia402State::OperationEnabled)?;
        Ok(())
    }

    /// *Disable voltage*, then *fault reset*.
    fn clear_fault<L: DriveLink<Self>>(link: &mut L, j: usize) -> Result<(), HalError> {
        sdo_write(link, j, od::CONTROLWORD, 0, u32::from(controlword::DISABLE_VOLTAGE), 2)?;
        sdo_write(link, j, od::CONTROLWORD, 0, u32::from(controlword::FAULT_RESET), 2)
    }
}
