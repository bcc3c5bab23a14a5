//! [`CanRobot`]: the [`Robot`] implementation over CAN buses, composing CubeMars MIT-mode and CiA 402 drives.
//!
//! Files: this one holds the robot (buses, cycle, reply accounting, sending, blocking exchanges); `robot_impl.rs`
//! the [`Robot`] implementation; `joint.rs` the per-joint state and the `JointDriver` trait that
//! `mit_driver.rs` and `cia402_driver.rs` implement (dispatched in `driver.rs`); `plausibility.rs` the reply
//! bounds.
//!
//! One control cycle, driven by the runtime: `write(command)` sends one command frame per joint (MIT) or one
//! RPDO per joint plus a SYNC per bus (CiA 402), then `read(state)` collects the replies (MIT reply; TPDO1 +
//! TPDO2), waiting at most `reply_timeout_us` on hardware.
//!
//! Safety behaviour (hazard → reaction → bound):
//! - a joint without its reply for `max_missed_cycles` (3) consecutive cycles → lifecycle `Fault`, torque-off
//!   frames to every drive, [`HalError::ReplyTimeout`] naming joint and node, in the `read` of the 3rd cycle;
//!   before that each missing cycle is flagged [`JointFlags::REPLY_MISSED`] (advisory: the values are the last
//!   good ones), at the limit [`JointFlags::NO_REPLY`] (a fault flag);
//! - a reply only counts for the cycle whose command it answers: frames received before this cycle's command
//!   (drained at the start of `write`) are late answers to an earlier one, discarded and counted
//!   ([`CanRobotStats::stale_replies`]). Neither MIT replies nor CiA 402 PDOs carry a sequence number, so a reply
//!   delayed by more than a whole cycle that lands inside a later cycle's window cannot be told from a fresh one.
//!   What the host does see is the onset: a delay that makes the replies land k cycles late leaves k consecutive
//!   cycles without a reply — k ≥ `max_missed_cycles` faults as above, otherwise the data lag by k ≤
//!   `max_missed_cycles` − 1 cycles (2 by default), flagged while it builds up. A delay that grows by less than a
//!   cycle per cycle (a saturating bus) is not caught this way; the bus-load planner keeps the load ≤ 70 %;
//! - implausible replies are rejected like missing ones and counted ([`CanRobotStats::implausible_replies`]):
//!   a position jump larger than `2 · max(v_max, |q̇|) · Δt + 0.02 rad` since the last accepted reply, a
//!   velocity beyond `4 · v_max + 1 rad/s`, a CiA 402 torque beyond `1.25 ·` max torque (0x6072) `+ 20 ‰`; a
//!   fault code in a rejected MIT reply is still taken (the safe direction). Persisting for `max_missed_cycles`
//!   → `Fault`, [`JointFlags::ENCODER`], [`HalError::ImplausibleReply`]. A corrupted bit that changes a value by
//!   less than these bounds cannot be told from real motion: the bounds limit what one corrupt frame can inject;
//! - error frames are counted by kind in [`CanRobotStats`] (overflow, no ACK, warning, passive, bus-off); error
//!   warning / passive are shown as [`JointFlags::BUS_WARNING`] on that bus's joints (advisory: frames still
//!   flow, and frames that do not are caught by the reply accounting) and by [`CanRobot::bus_state`];
//! - bus-off (controller state or error frame) → `Fault`, torque off on the other buses, [`HalError::BusOff`],
//!   in the next `read`;
//! - a drive fault (MIT error code, EMCY, CiA 402 fault state, leaving *operation enabled*, heartbeat lost or
//!   drive rebooted, temperature above the hard limit) → `Fault` in the `read` that sees it;
//! - recovery only through `reset()`, which discards every queued frame before it restarts a bus-off
//!   controller, so no command queued before an e-stop or fault is ever sent;
//! - `estop()` latches first, discards queued frames (the bus-off queue and frames held back in the transmit path;
//!   on SocketCAN frames already in the kernel queue cannot be discarded, but they precede the torque-off frames,
//!   which are the last word), then sends torque off (MIT exit motor mode, CiA 402 quick stop) — no old command
//!   is ever re-sent, not after `reset()` either;
//! - every blocking exchange (start-up, enable, reset) is paired with its own reply: what arrived before its
//!   request (the reply to the last cycle's poll when `enable` runs between `write` and `read`) is handled first
//!   and discarded ([`CanRobotStats::replies_before_exchange`]), so the enable sequence never takes an older reply
//!   for the measurement its hold command is built on;
//! - while a blocking exchange waits for a drive, the CiA 402 buses keep their cyclic keep-alive: SYNC alone
//!   at the control period on every bus whose cyclic SYNC runs, and the host heartbeat when due
//!   ([`CanRobotStats::keep_alive_syncs`], [`CanRobotStats::keep_alive_heartbeats`]); the wait is sliced so
//!   neither is late by more than the frames queued before it on the wire. A drive enabled by SDO early in
//!   `enable()` thus keeps its SYNC watchdog and heartbeat consumer fed while the next drives' SDOs run (with
//!   1 ms per SDO answer a 7-SDO enable left an 18 ms gap and the first drive dropped out). Not during
//!   start-up or reset: why in `CanRobot::keep_alive`. Likewise every MIT motor that `enable()` already put in
//!   motor mode gets its hold command (zero gains, zero torque, at the position measured before it entered
//!   motor mode) again at the control period while the later joints are enabled
//!   ([`CanRobotStats::keep_alive_commands`]): before, it got no frame at all until the first cycle, and with
//!   0.5 ms per MIT reply four joints' enable (4 exchanges each) outlasted a 3 ms drive CAN timeout, so the
//!   first motors dropped out of motor mode before the session started;
//! - `enable()` starts from the measured position with zero torque: MIT sends a zero-gain zero-torque command
//!   at the measured position *before* entering motor mode (a stale command in the drive would otherwise kick
//!   the arm); CiA 402 writes target torque 0 before the enable sequence;
//! - drive-side watchdogs: CiA 402 heartbeat consumer (0x1016, 3× the host heartbeat), abort connection option
//!   (0x6007), communication cycle period (0x1006), quick stop and fault reaction options (0x605A, 0x605E) are
//!   written at start-up; MIT timeouts must be set with the CubeMars tool (the protocol cannot) and are
//!   required in the config;
//! - commands failing [`JointCommand::check`] (wrong size, NaN/Inf, negative drive-impedance gains) are refused
//!   and that cycle is sent with zero torque;
//! - values outside a protocol field or the joint's torque limit are clamped, counted
//!   ([`CanRobotStats::clamped_values`]) and flagged `CLAMPED`, never wrapped; an MIT torque at the joint's limit
//!   is quantised toward zero, so it never goes out above the limit (at most one code, 2·τ_max/4095, below);
//! - every frame that cannot be queued is counted ([`CanRobotStats::transmit_errors`]) and the first error of a
//!   call is returned (on a refused cycle the refusal is returned and the transmit failures only counted).

use core::time::Duration;

use plexo_hal::{HalError, JointCommand, JointInfo, Lifecycle};

mod cia402_driver;
mod driver;
mod joint;
mod mit_driver;
mod plausibility;
mod robot_impl;

use self::cia402_driver::Cia402Driver;
use self::driver::{Driver, Link};
use self::joint::{DriveLink, JointCore, Received};
use self::mit_driver::MitDriver;
use self::plausibility::Rejection;
use crate::bus::{BusState, CanBus, ErrorFrameInfo};
use crate::canopen::{self, Emcy, NmtState};
use crate::config::CanRobotConfig;
use crate::frame::{CanFrame, CanId};
use crate::planner::DriveProtocol;

/// Counters of what the CAN backend had to correct or could not do (for telemetry).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CanRobotStats {
    /// Command values clamped to a protocol or joint range.
    pub clamped_values: u64,
    /// Replies missing at the end of a cycle.
    pub missed_replies: u64,
    /// Frames of a torque-off broadcast that could not be sent (the drive-side timeout is the backstop).
    pub torque_off_failures: u64,
    /// Frames discarded from transmit queues on e-stop, fault or reset.
    pub discarded_frames: u64,
    /// Frames that could not be queued for transmission (full queue, bus-off, I/O error), in any cycle —
    /// also those of refused cycles, whose refusal is the error returned.
    pub transmit_errors: u64,
    /// Replies received before this cycle's command (late answers to an earlier one): discarded.
    pub stale_replies: u64,
    /// Replies received before a blocking exchange's request (the reply to the last cycle's poll when `enable`
    /// runs between `write` and `read`): discarded, so that every exchange is paired with its own reply.
    pub replies_before_exchange: u64,
    /// Replies rejected as implausible (position jump, velocity or torque beyond physical bounds).
    pub implausible_replies: u64,
    /// Error frames received, all kinds.
    pub error_frames: u64,
    /// Error frames reporting the error-warning level (an error counter ≥ 96).
    pub bus_warnings: u64,
    /// Error frames reporting error passive (an error counter ≥ 128).
    pub bus_passive: u64,
    /// Error frames reporting a controller receive or transmit buffer overflow (frames lost).
    pub controller_overflows: u64,
    /// Error frames reporting no acknowledge (no other node on the bus).
    pub no_ack: u64,
    /// Error frames reporting bus-off.
    pub bus_off: u64,
    /// SYNC frames a blocking exchange sent to keep the control period while it waited (CiA 402 buses).
    pub keep_alive_syncs: u64,
    /// Host heartbeats a blocking exchange sent while it waited (CiA 402 buses).
    pub keep_alive_heartbeats: u64,
    /// Hold commands a blocking exchange re-sent to MIT motors already in motor mode while it waited (the
    /// enable of the next joints), so that their CAN timeout never expires during `enable()`.
    pub keep_alive_commands: u64,
}

struct BusSlot<B> {
    bus: B,
    /// A CANopen bus (CiA 402 drives): SYNC after the RPDOs, host heartbeat.
    canopen: bool,
    /// CAN FD with bit-rate switch: PDOs go as FD frames (CANopen FD).
    fd: bool,
    joints: Vec<usize>,
    /// Controller state as the last error frame reported it (ErrorActive until one arrives).
    reported: BusState,
    /// Bus time of the last SYNC queued on this bus since start-up or the last reset (`None`: the cyclic SYNC
    /// has not started; blocking exchanges then send none, see [`CanRobot::keep_alive`]).
    last_sync: Option<Duration>,
}

/// Severity order of bus states.
const fn bus_state_rank(s: BusState) -> u8 {
    match s {
        BusState::ErrorActive => 0,
        BusState::ErrorWarning => 1,
        BusState::ErrorPassive => 2,
        BusState::BusOff => 3,
    }
}

/// One joint: the state every protocol shares and its protocol's driver.
struct JointSlot {
    core: JointCore,
    driver: Driver,
}

/// Attempts of a blocking exchange before giving up; each waits `EXCHANGE_SLICE` on hardware (100 ms total).
const EXCHANGE_ATTEMPTS: u32 = 100;
const EXCHANGE_SLICE: Duration = Duration::from_millis(1);
/// How long a blocking exchange waits for its reply (on a clock that advances).
const EXCHANGE_TIMEOUT: Duration = Duration::from_millis(100);
/// Most frames one `read` takes from one bus (bounds the loop under a frame flood).
const MAX_FRAMES_PER_READ: usize = 256;

/// A robot whose joints are CAN drives. Generic over the bus backend (SocketCAN, virtual bus).
pub struct CanRobot<B: CanBus<Error = HalError>> {
    config: CanRobotConfig,
    buses: Vec<BusSlot<B>>,
    joints: Vec<JointSlot>,
    info: Vec<JointInfo>,
    lifecycle: Lifecycle,
    reply_timeout: Duration,
    /// Control period (SYNC cadence of the blocking exchanges' keep-alive).
    period: Duration,
    last_master_heartbeat: Option<Duration>,
    all_report_temperature: bool,
    stats: CanRobotStats,
    /// Set while `write` (or a blocking exchange) drains what arrived before its command: replies then are
    /// stale.
    before_command: bool,
    /// Set while a blocking exchange drains what arrived before its request.
    before_exchange: bool,
    /// Per joint: the hold command an MIT motor already in motor mode gets again at the control period while
    /// later joints are enabled, with the bus time it was last sent (see [`CanRobot::keep_alive`]). Set by the
    /// MIT enable, cleared when `enable()` ends (the cyclic commands take over) or torque goes off.
    holds: Vec<Option<(CanFrame, Duration)>>,
}

impl<B: CanBus<Error = HalError>> CanRobot<B> {
    /// Validates `config` (including the bus-load limit), matches `buses` to `config.buses` by name, and brings
    /// every drive up torque-free: MIT motors are polled with *exit motor mode*; CiA 402 drives are put in
    /// pre-operational, configured by SDO (modes, options, watchdogs, PDO mapping), checked (rated torque, mode)
    /// and started. Ends in [`Lifecycle::Disabled`]. Not real-time safe.
    pub fn new(config: CanRobotConfig, buses: Vec<B>) -> Result<Self, HalError> {
        config.validate()?;
        let mut by_name: Vec<Option<B>> = buses.into_iter().map(Some).collect();
        let mut slots = Vec::with_capacity(config.buses.len());
        for (b, bc) in config.buses.iter().enumerate() {
            let pos =
                by_name.iter().position(|x| x.as_ref().is_some_and(|x| x.name() == bc.name)).ok_or_else(|| {
                    HalError::Config {
                        key: format!("buses[{b}].name"),
                        reason: format!("no bus object named {:?}", bc.name),
                    }
                })?;
            let bus = by_name[pos].take().ok_or_else(|| HalError::Config {
                key: format!("buses[{b}].name"),
                reason: "bus object already used".into(),
            })?;
            let joints: Vec<usize> = (0..config.joints.len()).filter(|j| config.joints[*j].bus == bc.name).collect();
            let protocol = joints.first().map_or(DriveProtocol::Mit, |j| config.joints[*j].protocol);
            slots.push(BusSlot {
                bus,
                canopen: protocol == DriveProtocol::Cia402,
                fd: bc.data_bitrate.is_some(),
                joints,
                reported: BusState::ErrorActive,
                last_sync: None,
            });
        }
        let joints: Vec<JointSlot> = config
            .joints
            .iter()
            .map(|j| JointSlot {
                core: JointCore::new(
                    config.buses.iter().position(|b| b.name == j.bus).unwrap_or(0),
                    j.node_id,
                    j.mapping(),
                    j.limits,
                ),
                driver: Driver::new(j, &config),
            })
            .collect();
        let info = config.joints.iter().map(|j| j.info()).collect();
        let all_report_temperature = joints.iter().all(|j| j.driver.reports_temperature());
        let reply_timeout = Duration::from_micros(config.reply_timeout_us);
        let period = config.period();
        let mut robot = Self {
            config,
            buses: slots,
            joints,
            info,
            lifecycle: Lifecycle::Fault,
            reply_timeout,
            period,
            last_master_heartbeat: None,
            all_report_temperature,
            stats: CanRobotStats::default(),
            before_command: false,
            before_exchange: false,
            holds: Vec::new(),
        };
        robot.holds = vec![None; robot.joints.len()];
        for j in 0..robot.joints.len() {
            robot.configure_joint(j)?;
        }
        robot.lifecycle = Lifecycle::Disabled;
        Ok(robot)
    }

    /// The configuration.
    pub fn config(&self) -> &CanRobotConfig {
        &self.config
    }

    /// Bus `index` (in `config.buses` order).
    pub fn bus(&self, index: usize) -> Option<&B> {
        self.buses.get(index).map(|b| &b.bus)
    }

    /// Counters (clamped values, missed, stale and implausible replies, transmit and torque-off failures,
    /// discarded frames, error frames by kind).
    pub fn stats(&self) -> CanRobotStats {
        self.stats
    }

    /// State of bus `index`'s controller: the worse of what the backend reports and what the last error frame
    /// said (warning and passive are advisory, see the module docs). `None` for an unknown index.
    pub fn bus_state(&self, index: usize) -> Option<BusState> {
        let b = self.buses.get(index)?;
        let reported = b.bus.state();
        Some(if bus_state_rank(b.reported) > bus_state_rank(reported) { b.reported } else { reported })
    }

    /// Last EMCY received from joint `joint`'s drive (CiA 402), if any since the last reset.
    pub fn last_emcy(&self, joint: usize) -> Option<Emcy> {
        self.joints.get(joint).and_then(|j| j.core.emcy)
    }

    fn bus_name(&self, b: usize) -> String {
        self.buses[b].bus.name().to_owned()
    }

    // ---------------------------------------------------------------------------------------------------
    // Frame handling (real-time safe).

    fn handle_error_frame(&mut self, b: usize, frame: &CanFrame) {
        self.stats.error_frames += 1;
        let Some(info) = ErrorFrameInfo::decode(frame) else { return };
        self.stats.bus_off += u64::from(info.bus_off);
        self.stats.bus_passive += u64::from(info.passive);
        self.stats.bus_warnings += u64::from(info.warning);
        self.stats.controller_overflows += u64::from(info.overflow);
        self.stats.no_ack += u64::from(info.no_ack);
        if let Some(state) = info.state() {
            self.buses[b].reported = state;
        }
    }

    /// Rejects an implausible reply of joint `j` (it then counts as missing for this cycle).
    fn reject(&mut self, j: usize, why: Rejection) {
        self.stats.implausible_replies += 1;
        self.joints[j].core.rejected = true;
        self.joints[j].core.last_rejection = Some(why);
    }

    fn handle_frame(&mut self, b: usize, frame: &CanFrame) {
        if frame.is_error() {
            self.handle_error_frame(b, frame);
            return;
        }
        let CanId::Standard(id) = frame.id() else { return };
        let now = self.buses[b].bus.now();
        let stale = self.before_command;
        let joints = &self.joints;
        let Some(&j) = self.buses[b].joints.iter().find(|&&j| joints[j].driver.owns(joints[j].core.node, id, frame))
        else {
            return;
        };
        let JointSlot { core, driver } = &mut self.joints[j];
        match driver.receive(core, id, frame, now, stale) {
            Received::Ignored | Received::Accepted => {}
            Received::Stale if self.before_exchange => self.stats.replies_before_exchange += 1,
            Received::Stale => self.stats.stale_replies += 1,
            Received::Rejected(why) => self.reject(j, why),
        }
    }

    /// Handles what arrived since the last `read` and before this cycle's command: heartbeats, EMCY and error
    /// frames as usual, replies as stale (they answer an earlier command). Real-time safe.
    fn drain_before_command(&mut self, first_error: &mut Option<HalError>) {
        self.before_command = true;
        for b in 0..self.buses.len() {
            for _ in 0..MAX_FRAMES_PER_READ {
                match self.buses[b].bus.receive(Duration::ZERO) {
                    Ok(Some(frame)) => self.handle_frame(b, &frame),
                    Ok(None) => break,
                    Err(e) => {
                        first_error.get_or_insert(e);
                        break;
                    }
                }
            }
        }
        self.before_command = false;
    }

    /// Takes the replies of the last write from bus `b`, waiting up to the reply timeout while some are missing.
    fn drain_bus(&mut self, b: usize) -> Result<(), HalError> {
        let deadline = self.buses[b].bus.now() + self.reply_timeout;
        for _ in 0..MAX_FRAMES_PER_READ {
            let waiting = self.buses[b].joints.iter().any(|&j| {
                let joint = &self.joints[j];
                joint.core.awaiting && joint.core.got != joint.driver.required_replies()
            });
            let timeout = if waiting { deadline.saturating_sub(self.buses[b].bus.now()) } else { Duration::ZERO };
            match self.buses[b].bus.receive(timeout)? {
                Some(frame) => self.handle_frame(b, &frame),
                None => break,
            }
        }
        Ok(())
    }

    /// End of a cycle: missed-reply accounting and fault detection. Real-time safe (allocates only to build the
    /// error of a fault).
    fn finish_cycle(&mut self) -> Option<HalError> {
        let now = self.buses.first().map_or(Duration::ZERO, |b| b.bus.now());
        for JointSlot { core: joint, driver } in &mut self.joints {
            if joint.awaiting {
                let required = driver.required_replies();
                if joint.got & required == required {
                    joint.missed = 0;
                    joint.implausible_cycles = 0;
                } else {
                    joint.missed += 1;
                    self.stats.missed_replies += 1;
                    if joint.rejected {
                        joint.implausible_cycles += 1;
                    }
                }
            }
            joint.awaiting = false;
            joint.got = 0;
            joint.rejected = false;
        }
        if matches!(self.lifecycle, Lifecycle::EStopped | Lifecycle::Fault) {
            return None;
        }
        if let Some(b) = (0..self.buses.len()).find(|&b| self.bus_state(b) == Some(BusState::BusOff)) {
            return Some(HalError::BusOff { bus: self.bus_name(b) });
        }
        let max_missed = self.config.max_missed_cycles;
        for (i, JointSlot { core: joint, driver }) in self.joints.iter().enumerate() {
            if joint.missed >= max_missed {
                if joint.implausible_cycles > 0 {
                    return Some(HalError::ImplausibleReply {
                        joint: i,
                        node_id: joint.node,
                        cycles: joint.missed,
                        detail: joint.last_rejection.map_or_else(String::new, |r| r.to_string()),
                    });
                }
                return Some(HalError::ReplyTimeout {
                    joint: i,
                    node_id: joint.node,
                    cycles: joint.missed,
                    elapsed: now.saturating_sub(joint.last_reply),
                });
            }
            if let Some(fault) = driver.fault(joint, i, now, self.lifecycle, &self.config) {
                return Some(fault);
            }
            if joint.drive_flags.is_fault() {
                return Some(HalError::DriveFault {
                    joint: i,
                    detail: format!(
                        "node {}: drive reports {:?}, EMCY {:?}",
                        joint.node,
                        joint.drive_flags,
                        joint.emcy.map(|e| (e.code, e.meaning()))
                    ),
                });
            }
        }
        None
    }

    // ---------------------------------------------------------------------------------------------------
    // Sending (real-time safe).

    /// PDOs go as FD frames with bit-rate switch on an FD bus (the planner assumes so). Real-time safe.
    fn on_bus(&self, b: usize, frame: &CanFrame) -> CanFrame {
        if self.buses[b].fd && (0x180..0x580).contains(&frame.id().raw()) && !frame.id().is_extended() {
            CanFrame::new_fd(frame.id(), frame.data(), true).unwrap_or(*frame)
        } else {
            *frame
        }
    }

    /// Queues one frame; a failure is counted in `stats.transmit_errors` and the first one kept.
    fn transmit(&mut self, b: usize, frame: &CanFrame, first_error: &mut Option<HalError>) -> bool {
        let frame = self.on_bus(b, frame);
        match self.buses[b].bus.transmit(&frame) {
            Ok(()) => true,
            Err(e) => {
                self.stats.transmit_errors += 1;
                first_error.get_or_insert(e);
                false
            }
        }
    }

    fn maybe_master_heartbeat(&mut self, first_error: &mut Option<HalError>) {
        let Some(now) = self.buses.first().map(|b| b.bus.now()) else { return };
        let period = Duration::from_millis(u64::from(self.config.master_heartbeat_ms));
        if self.last_master_heartbeat.is_some_and(|t| now.saturating_sub(t) < period) {
            return;
        }
        self.last_master_heartbeat = Some(now);
        let hb = canopen::heartbeat_frame(self.config.master_node_id, NmtState::Operational);
        for b in 0..self.buses.len() {
            if self.buses[b].canopen && !self.buses[b].joints.is_empty() {
                self.transmit(b, &hb, first_error);
            }
        }
    }

    /// Ends a bus's cycle: a SYNC on a CANopen bus. Returns false if it could not be queued (the attempt still
    /// counts as this period's SYNC for the keep-alive: the failure is counted, not retried at once).
    fn sync(&mut self, b: usize, first: &mut Option<HalError>) -> bool {
        if self.buses[b].canopen && !self.buses[b].joints.is_empty() {
            self.buses[b].last_sync = Some(self.buses[b].bus.now());
            return self.transmit(b, &canopen::sync_frame(), first);
        }
        true
    }

    /// Keep-alive of a blocking exchange (start-up, enable, reset) while it waits for a drive: what the cyclic
    /// loop would have sent on the CANopen buses had it run. Returns how long until the next one is due.
    ///
    /// - SYNC, alone, on every CiA 402 bus whose cyclic SYNC runs (a SYNC was sent since start-up or the last
    ///   reset), whenever a control period has passed since the last one: a drive already in *operation
    ///   enabled* supervises SYNC (0x1006; the emulated drive faults after 3 periods without) while the next
    ///   drive's SDOs run — before, a 7-SDO enable sequence left an 18 ms gap and the first drive dropped out.
    ///   No RPDO goes with it, so a SYNC applies no new command (CiA 301: a synchronous RPDO's data is taken
    ///   over at the first SYNC after its reception, once; the last idle cycle's RPDO was taken over by that
    ///   cycle's SYNC): a drive enabled by SDO holds the target torque 0 written before its enable sequence,
    ///   a drive not yet enabled only answers with its TPDOs, as in an idle cycle. Plexo leaves the RPDO event
    ///   timer (0x1400:5) at 0, so drives do not expect an RPDO with each SYNC. During start-up and reset the
    ///   cyclic SYNC has not (re)started and none is sent: the drives are being reconfigured in
    ///   pre-operational, where CiA 301 processes no PDO, and starting a drive's SYNC supervision before the
    ///   cyclic loop runs would only arm a watchdog that the pause until the first cycle (an operator's
    ///   confirmation) could trip.
    /// - The host heartbeat on every CiA 402 bus once the host has started it (the first cycle), when due: a
    ///   drive's heartbeat consumer (0x1016, 3 × `master_heartbeat_ms`) must not expire during a long enable or
    ///   a reset's reconfiguration. Not during start-up: the consumer starts with the first heartbeat
    ///   received (CiA 301 §7.2.8.3.2.2), and should start with the cyclic loop that keeps it.
    ///
    /// - On MIT buses (no SYNC, no heartbeat in that protocol): the hold command of every motor the running
    ///   `enable()` already put in motor mode, whenever a control period has passed since its last frame. The
    ///   drive's CAN timeout (`mit.drive_timeout_ms`, 3 ms on the plexo-arm4 hardware) takes it out of motor
    ///   mode after that long without a frame; the hold is the zero-gain, zero-torque command at the position
    ///   measured before it entered motor mode — the command its enable established — so re-sending it applies
    ///   nothing new. Each re-send is answered by a reply, which the exchange handles as usual.
    ///
    /// Transmit failures are counted in `stats.transmit_errors`; the exchange's own bus-off check reports a
    /// dead bus. Not real-time safe.
    fn keep_alive(&mut self) -> Duration {
        let mut first = None;
        let mut next = EXCHANGE_SLICE;
        let canopen = self.buses.iter().any(|b| b.canopen && !b.joints.is_empty());
        if let (true, Some(last), Some(now)) =
            (canopen, self.last_master_heartbeat, self.buses.first().map(|b| b.bus.now()))
        {
            let period = Duration::from_millis(u64::from(self.config.master_heartbeat_ms));
            let since = now.saturating_sub(last);
            if since >= period {
                self.maybe_master_heartbeat(&mut first);
                self.stats.keep_alive_heartbeats += 1;
                next = next.min(period);
            } else {
                next = next.min(period - since);
            }
        }
        for j in 0..self.holds.len() {
            let Some((frame, last)) = self.holds[j] else { continue };
            let b = self.joints[j].core.bus;
            let now = self.buses[b].bus.now();
            let since = now.saturating_sub(last);
            if since >= self.period {
                self.transmit(b, &frame, &mut first);
                self.holds[j] = Some((frame, now));
                self.stats.keep_alive_commands += 1;
                next = next.min(self.period);
            } else {
                next = next.min(self.period - since);
            }
        }
        for b in 0..self.buses.len() {
            let Some(last) = self.buses[b].last_sync else { continue };
            let since = self.buses[b].bus.now().saturating_sub(last);
            if since >= self.period {
                self.sync(b, &mut first);
                self.stats.keep_alive_syncs += 1;
                next = next.min(self.period);
            } else {
                next = next.min(self.period - since);
            }
        }
        next
    }

    /// Torque-free polling frames (lifecycle not Active): MIT exit motor mode (the motor answers with its
    /// state), CiA 402 RPDO with *disable voltage* and zero target, then SYNC.
    fn send_idle(&mut self, first: &mut Option<HalError>) {
        self.maybe_master_heartbeat(first);
        for b in 0..self.buses.len() {
            for k in 0..self.buses[b].joints.len() {
                let j = self.buses[b].joints[k];
                let frame = self.joints[j].driver.idle_frame(self.joints[j].core.node);
                self.transmit(b, &frame, first);
                self.joints[j].core.awaiting = true;
            }
            self.sync(b, first);
        }
    }

    /// Active cycle. With `zero` every joint gets a torque-free command (refused input).
    fn send_active(&mut self, command: &JointCommand, zero: bool, first: &mut Option<HalError>) {
        self.maybe_master_heartbeat(first);
        for b in 0..self.buses.len() {
            for k in 0..self.buses[b].joints.len() {
                let j = self.buses[b].joints[k];
                let frame = self.command_frame(j, command, zero);
                self.transmit(b, &frame, first);
                self.joints[j].core.awaiting = true;
            }
            self.sync(b, first);
        }
    }

    fn command_frame(&mut self, j: usize, command: &JointCommand, zero: bool) -> CanFrame {
        let JointSlot { core, driver } = &mut self.joints[j];
        let (frame, clamped) = driver.command_frame(core, (!zero).then_some((command, j)));
        if clamped > 0 {
            core.clamped = true;
            self.stats.clamped_values += clamped;
        }
        frame
    }

    /// Discards queued frames and sends torque off to every drive. `quick_stop` uses the CiA 402 quick stop
    /// (e-stop) instead of disable voltage. Returns the first error; every failure (a discard or a torque-off
    /// frame that could not be queued) is counted in `stats.torque_off_failures` (frames also in
    /// `stats.transmit_errors`).
    fn torque_off(&mut self, quick_stop: bool) -> Result<(), HalError> {
        let mut first = None;
        self.holds.iter_mut().for_each(|h| *h = None);
        for b in 0..self.buses.len() {
            match self.buses[b].bus.discard_pending_tx() {
                Ok(n) => self.stats.discarded_frames += n as u64,
                Err(e) => {
                    self.stats.torque_off_failures += 1;
                    first.get_or_insert(e);
                }
            }
            for k in 0..self.buses[b].joints.len() {
                let j = self.buses[b].joints[k];
                let frame = self.joints[j].driver.torque_off_frame(self.joints[j].core.node, quick_stop);
                if !self.transmit(b, &frame, &mut first) {
                    self.stats.torque_off_failures += 1;
                }
            }
            if !self.sync(b, &mut first) {
                self.stats.torque_off_failures += 1;
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn safe_stop(&mut self) {
        self.lifecycle = Lifecycle::Fault;
        // Every failure is counted in `stats.torque_off_failures`; the fault being reported is the primary
        // error, and the drive-side timeouts are the backstop for frames that could not be sent.
        let _ = self.torque_off(false);
    }

    // ---------------------------------------------------------------------------------------------------
    // Blocking sequences (not real-time safe): the drivers' start-up, enable and fault reset run over the
    // `DriveLink` implementations below.

    /// Start-up of one drive (also used by `reset`).
    fn configure_joint(&mut self, j: usize) -> Result<(), HalError> {
        // The arm may have moved arbitrarily while the drive was unobserved: no jump check against old data.
        self.joints[j].core.accepted_at = None;
        driver::configure(self, j)?;
        let joint = &mut self.joints[j].core;
        joint.missed = 0;
        joint.drive_flags = plexo_hal::JointFlags::NONE;
        joint.emcy = None;
        Ok(())
    }
}

impl<B: CanBus<Error = HalError>> CanRobot<B> {
    fn exchange_frames<T>(
        &mut self,
        j: usize,
        request: &CanFrame,
        mut matcher: impl FnMut(&CanFrame) -> Option<T>,
    ) -> Result<T, HalError> {
        let b = self.joints[j].core.bus;
        let start = self.buses[b].bus.now();
        // Pair the exchange with its own reply: what arrived before the request (the reply to the last cycle's
        // command when `enable` runs between `write` and `read`, a late answer to an earlier exchange) is handled
        // first, replies as stale, so the matcher only sees what came after the request.
        let mut drained = Ok(());
        self.before_command = true;
        self.before_exchange = true;
        for _ in 0..MAX_FRAMES_PER_READ {
            match self.buses[b].bus.receive(Duration::ZERO) {
                Ok(Some(frame)) => self.handle_frame(b, &frame),
                Ok(None) => break,
                Err(e) => {
                    drained = Err(e);
                    break;
                }
            }
        }
        self.before_command = false;
        self.before_exchange = false;
        drained?;
        self.keep_alive();
        self.buses[b].bus.transmit(request)?;
        // Bounded twice: by time on a clock that advances (hardware, a wall-clock bus), by the number of polls
        // on one that does not (a stepped virtual bus, whose receive never waits). The keep-alive may shorten
        // the waits below `EXCHANGE_SLICE`, so the poll bound allows for as many waits as fit in the timeout.
        let deadline = start + EXCHANGE_TIMEOUT;
        let max_polls =
            EXCHANGE_ATTEMPTS as u128 * (1 + EXCHANGE_SLICE.as_nanos() / self.period.as_nanos().max(1)).max(1);
        let (mut empty, mut frames) = (0u128, 0u128);
        while empty < max_polls
            && frames < max_polls * MAX_FRAMES_PER_READ as u128
            && self.buses[b].bus.now() < deadline
        {
            let slice = self.keep_alive().min(EXCHANGE_SLICE);
            match self.buses[b].bus.receive(slice)? {
                Some(frame) => {
                    frames += 1;
                    self.handle_frame(b, &frame);
                    if let Some(t) = matcher(&frame) {
                        return Ok(t);
                    }
                }
                None => {
                    empty += 1;
                    if self.buses[b].bus.state() == BusState::BusOff {
                        return Err(HalError::BusOff { bus: self.bus_name(b) });
                    }
                }
            }
        }
        Err(HalError::ReplyTimeout {
            joint: j,
            node_id: self.joints[j].core.node,
            cycles: 0,
            elapsed: self.buses[b].bus.now().saturating_sub(start),
        })
    }
}

macro_rules! drive_link {
    ($driver:ident, $variant:ident) => {
        impl<B: CanBus<Error = HalError>> DriveLink<$driver> for CanRobot<B> {
            fn driver(&mut self, j: usize) -> Option<&mut $driver> {
                match &mut self.joints[j].driver {
                    Driver::$variant(d) => Some(d),
                    _ => None,
                }
            }
            fn joint(&mut self, j: usize) -> &mut JointCore {
                &mut self.joints[j].core
            }
            fn send(&mut self, j: usize, frame: &CanFrame) -> Result<(), HalError> {
                let b = self.joints[j].core.bus;
                self.buses[b].bus.transmit(frame)
            }
            fn now(&self, j: usize) -> Duration {
                self.buses[self.joints[j].core.bus].bus.now()
            }
            fn hold_during_exchanges(&mut self, j: usize, frame: &CanFrame, sent: Duration) {
                self.holds[j] = Some((*frame, sent));
            }
            fn exchange<T>(
                &mut self,
                j: usize,
                request: &CanFrame,
                matcher: impl FnMut(&CanFrame) -> Option<T>,
            ) -> Result<T, HalError> {
                self.exchange_frames(j, request, matcher)
            }
        }
    };
}
drive_link!(MitDriver, Mit);
drive_link!(Cia402Driver, Cia402);

impl<B: CanBus<Error = HalError>> Link for CanRobot<B> {
    fn driver_at(&self, j: usize) -> &Driver {
        &self.joints[j].driver
    }
}
