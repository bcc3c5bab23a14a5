//! [`CanRobot`]: the [`Robot`] implementation over CAN buses, composing CubeMars MIT-mode and CiA 402 drives.
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
//! - `enable()` starts from the measured position with zero torque: MIT sends a zero-gain zero-torque command
//!   at the measured position *before* entering motor mode (a stale command in the drive would otherwise kick
//!   the arm); CiA 402 writes target torque 0 before the enable sequence;
//! - drive-side watchdogs: CiA 402 heartbeat consumer (0x1016, 3× the host heartbeat), abort connection option
//!   (0x6007), communication cycle period (0x1006), quick stop and fault reaction options (0x605A, 0x605E) are
//!   written at start-up; MIT timeouts must be set with the CubeMars tool (the protocol cannot) and are
//!   required in the config;
//! - NaN/Inf or wrong-size commands are refused and that cycle is sent with zero torque;
//! - values outside a protocol field or the joint's torque limit are clamped, counted
//!   ([`CanRobotStats::clamped_values`]) and flagged `CLAMPED`, never wrapped;
//! - every frame that cannot be queued is counted ([`CanRobotStats::transmit_errors`]) and the first error of a
//!   call is returned (on a refused cycle the refusal is returned and the transmit failures only counted).

use core::time::Duration;

use crate::can::{BusState, CanBus, CanFrame, CanId, ErrorFrameInfo};
use crate::canopen::{
    self, COB_EMCY, COB_HEARTBEAT, COB_TPDO1, COB_TPDO2, Cia402State, Emcy, NmtCommand, NmtState, Rpdo1, SdoRequest,
    SdoResponse, Tpdo1, Tpdo2, controlword, od,
};
use crate::config::{CanRobotConfig, Cia402Options, JointLimits, JointMapping, MitTorqueField};
use crate::mit::{self, MitCodec, MitCommand, MitReply};
use crate::planner::Protocol;
use crate::{HalError, JointCommand, JointFlags, JointInfo, JointState, Lifecycle, Robot};

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
}

struct BusSlot<B> {
    bus: B,
    protocol: Protocol,
    /// CAN FD with bit-rate switch: PDOs go as FD frames (CANopen FD).
    fd: bool,
    joints: Vec<usize>,
    /// Controller state as the last error frame reported it (ErrorActive until one arrives).
    reported: BusState,
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

/// Plausibility bounds of replies (see the module docs).
const PLAUSIBLE_SPEED_FACTOR: f64 = 2.0;
/// Position margin of the jump bound [rad] (encoder noise, quantisation, timing jitter).
const PLAUSIBLE_POSITION_MARGIN: f64 = 0.02;
/// Velocity bound: `VELOCITY_FACTOR · v_max + VELOCITY_MARGIN` [rad/s].
const PLAUSIBLE_VELOCITY_FACTOR: f64 = 4.0;
const PLAUSIBLE_VELOCITY_MARGIN: f64 = 1.0;
/// CiA 402 torque bound: `1.25 · max torque + 20 ‰`.
const PLAUSIBLE_TORQUE_FACTOR: f64 = 1.25;
const PLAUSIBLE_TORQUE_MARGIN_PERMILLE: f64 = 20.0;

/// Why a reply was rejected (kept for the error message).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Rejection {
    /// Position jumped from `from` to `to` [rad] where at most `bound` [rad] was possible.
    Jump { from: f64, to: f64, bound: f64 },
    /// Velocity `value` [rad/s] beyond `bound`.
    Velocity { value: f64, bound: f64 },
    /// Torque `value` [‰] beyond `bound`.
    Torque { value: f64, bound: f64 },
}

impl core::fmt::Display for Rejection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Rejection::Jump { from, to, bound } => {
                write!(f, "position jumped {from:.4} → {to:.4} rad (at most {bound:.4} rad possible)")
            }
            Rejection::Velocity { value, bound } => write!(f, "velocity {value:.3} rad/s beyond {bound:.3} rad/s"),
            Rejection::Torque { value, bound } => write!(f, "torque {value:.0} ‰ beyond {bound:.0} ‰"),
        }
    }
}

const GOT_MAIN: u8 = 1;
const GOT_VELOCITY: u8 = 2;

struct JointSlot {
    bus: usize,
    node: u8,
    protocol: Protocol,
    map: JointMapping,
    limits: JointLimits,
    codec: MitCodec,
    torque_field: MitTorqueField,
    torque_constant: f64,
    reply_id: u16,
    cia: Cia402Options,
    rated_torque: f64,
    counts_per_rad: f64,
    // Runtime.
    awaiting: bool,
    got: u8,
    missed: u32,
    last_reply: Duration,
    position: f64,
    velocity: f64,
    torque: f64,
    temperature: f64,
    drive_flags: JointFlags,
    clamped: bool,
    statusword: u16,
    last_heartbeat: Duration,
    nmt: Option<NmtState>,
    emcy: Option<Emcy>,
    /// Time of the last accepted position sample (None after start-up and reset).
    accepted_at: Option<Duration>,
    /// A reply of this cycle was rejected as implausible.
    rejected: bool,
    /// Consecutive missed cycles in which a reply was rejected as implausible.
    implausible_cycles: u32,
    last_rejection: Option<Rejection>,
}

impl JointSlot {
    fn required(&self) -> u8 {
        match self.protocol {
            Protocol::Mit => GOT_MAIN,
            Protocol::Cia402 => GOT_MAIN | GOT_VELOCITY,
        }
    }

    /// Quantisation of the reported position at the link [rad].
    fn position_step(&self) -> f64 {
        match self.protocol {
            Protocol::Mit => self.codec.position_step() / self.map.ratio,
            Protocol::Cia402 => 1.0 / (self.counts_per_rad * self.map.ratio),
        }
    }

    /// Checks a reported link position [rad] at `now` against the last accepted one.
    fn check_position(&self, position: f64, now: Duration) -> Option<Rejection> {
        let since = self.accepted_at?;
        let elapsed = now.saturating_sub(since).as_secs_f64();
        let speed = self.limits.velocity_max.max(self.velocity.abs());
        let bound = PLAUSIBLE_SPEED_FACTOR * speed * elapsed + PLAUSIBLE_POSITION_MARGIN + 2.0 * self.position_step();
        ((position - self.position).abs() > bound).then_some(Rejection::Jump {
            from: self.position,
            to: position,
            bound,
        })
    }

    /// Checks a reported link velocity [rad/s].
    fn check_velocity(&self, velocity: f64) -> Option<Rejection> {
        let bound = PLAUSIBLE_VELOCITY_FACTOR * self.limits.velocity_max + PLAUSIBLE_VELOCITY_MARGIN;
        (velocity.abs() > bound).then_some(Rejection::Velocity { value: velocity, bound })
    }
}

/// Attempts of a blocking exchange before giving up; each waits `EXCHANGE_SLICE` on hardware (100 ms total).
const EXCHANGE_ATTEMPTS: u32 = 100;
const EXCHANGE_SLICE: Duration = Duration::from_millis(1);
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
    last_master_heartbeat: Option<Duration>,
    all_mit: bool,
    stats: CanRobotStats,
    /// Set while `write` drains what arrived before its command: replies then are stale.
    before_command: bool,
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
            let protocol = joints.first().map_or(Protocol::Mit, |j| config.joints[*j].protocol);
            slots.push(BusSlot {
                bus,
                protocol,
                fd: bc.data_bitrate.is_some(),
                joints,
                reported: BusState::ErrorActive,
            });
        }
        let joints = config
            .joints
            .iter()
            .map(|j| {
                let cia = j.cia402.unwrap_or_default();
                JointSlot {
                    bus: config.buses.iter().position(|b| b.name == j.bus).unwrap_or(0),
                    node: j.node_id,
                    protocol: j.protocol,
                    map: j.mapping(),
                    limits: j.limits,
                    codec: MitCodec::new(&j.mit_ranges().unwrap_or(crate::mit::AkModel::Ak80_9.ranges())),
                    torque_field: j.mit.map(|m| m.torque_field).unwrap_or_default(),
                    torque_constant: j.torque_constant,
                    reply_id: j.mit.map_or(0, |m| m.reply_can_id),
                    cia,
                    rated_torque: 1.0,
                    counts_per_rad: f64::from(cia.encoder_counts_per_rev) / core::f64::consts::TAU,
                    awaiting: false,
                    got: 0,
                    missed: 0,
                    last_reply: Duration::ZERO,
                    position: 0.0,
                    velocity: 0.0,
                    torque: 0.0,
                    temperature: 0.0,
                    drive_flags: JointFlags::NONE,
                    clamped: false,
                    statusword: 0,
                    last_heartbeat: Duration::ZERO,
                    nmt: None,
                    emcy: None,
                    accepted_at: None,
                    rejected: false,
                    implausible_cycles: 0,
                    last_rejection: None,
                }
            })
            .collect();
        let info = config.joints.iter().map(|j| j.info()).collect();
        let all_mit = config.joints.iter().all(|j| j.protocol == Protocol::Mit);
        let reply_timeout = Duration::from_micros(config.reply_timeout_us);
        let mut robot = Self {
            config,
            buses: slots,
            joints,
            info,
            lifecycle: Lifecycle::Fault,
            reply_timeout,
            last_master_heartbeat: None,
            all_mit,
            stats: CanRobotStats::default(),
            before_command: false,
        };
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
        self.joints.get(joint).and_then(|j| j.emcy)
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
        self.joints[j].rejected = true;
        self.joints[j].last_rejection = Some(why);
    }

    fn handle_frame(&mut self, b: usize, frame: &CanFrame) {
        if frame.is_error() {
            self.handle_error_frame(b, frame);
            return;
        }
        let CanId::Standard(id) = frame.id() else { return };
        let now = self.buses[b].bus.now();
        let stale = self.before_command;
        match self.buses[b].protocol {
            Protocol::Mit => {
                let Some(&motor) = frame.data().first() else { return };
                let Some(&j) = self.buses[b].joints.iter().find(|&&j| self.joints[j].node == motor) else { return };
                let joint = &self.joints[j];
                if id != joint.reply_id && id != u16::from(joint.node) {
                    return;
                }
                let Some(reply) = joint.codec.decode_reply(frame.data()) else { return };
                if stale {
                    self.stats.stale_replies += 1;
                    return;
                }
                let drive_torque = match joint.torque_field {
                    MitTorqueField::Torque => reply.torque,
                    MitTorqueField::Current => reply.torque * joint.torque_constant,
                };
                let position = joint.map.link_position(reply.position);
                let velocity = joint.map.link_velocity(reply.velocity);
                if let Some(why) = joint.check_position(position, now).or_else(|| joint.check_velocity(velocity)) {
                    // A fault code is taken even from a rejected reply: the safe direction.
                    self.joints[j].drive_flags.insert(reply.error.flags());
                    self.reject(j, why);
                    return;
                }
                let joint = &mut self.joints[j];
                joint.position = position;
                joint.velocity = velocity;
                joint.torque = joint.map.link_torque(drive_torque);
                joint.temperature = reply.temperature;
                joint.drive_flags = reply.error.flags();
                joint.got |= GOT_MAIN;
                joint.last_reply = now;
                joint.accepted_at = Some(now);
            }
            Protocol::Cia402 => {
                let base = id & 0x780;
                let node = (id & 0x7F) as u8;
                let Some(&j) = self.buses[b].joints.iter().find(|&&j| self.joints[j].node == node) else { return };
                match base {
                    COB_TPDO1 => {
                        let Some(p) = Tpdo1::decode(frame, node) else { return };
                        if stale {
                            self.stats.stale_replies += 1;
                            return;
                        }
                        let joint = &self.joints[j];
                        let position = joint.map.link_position(f64::from(p.position) / joint.counts_per_rad);
                        let torque_bound = PLAUSIBLE_TORQUE_FACTOR * f64::from(joint.cia.max_torque_permille)
                            + PLAUSIBLE_TORQUE_MARGIN_PERMILLE;
                        let torque = f64::from(p.torque);
                        let why = joint.check_position(position, now).or_else(|| {
                            (torque.abs() > torque_bound)
                                .then_some(Rejection::Torque { value: torque, bound: torque_bound })
                        });
                        if let Some(why) = why {
                            self.reject(j, why);
                            return;
                        }
                        let joint = &mut self.joints[j];
                        joint.statusword = p.statusword;
                        joint.position = position;
                        joint.torque = joint.map.link_torque(torque / 1000.0 * joint.rated_torque);
                        joint.got |= GOT_MAIN;
                        joint.last_reply = now;
                        joint.accepted_at = Some(now);
                    }
                    COB_TPDO2 => {
                        let Some(p) = Tpdo2::decode(frame, node) else { return };
                        if stale {
                            self.stats.stale_replies += 1;
                            return;
                        }
                        let joint = &self.joints[j];
                        let velocity = joint.map.link_velocity(f64::from(p.velocity) / joint.counts_per_rad);
                        if let Some(why) = joint.check_velocity(velocity) {
                            self.reject(j, why);
                            return;
                        }
                        let joint = &mut self.joints[j];
                        joint.velocity = velocity;
                        joint.got |= GOT_VELOCITY;
                    }
                    COB_EMCY => {
                        if let Some(e) = Emcy::decode(frame, node)
                            && e.is_error()
                        {
                            let joint = &mut self.joints[j];
                            joint.drive_flags.insert(e.flags());
                            joint.emcy = Some(e);
                        }
                    }
                    COB_HEARTBEAT => {
                        if let Some((_, state)) = canopen::decode_heartbeat(frame) {
                            let joint = &mut self.joints[j];
                            joint.nmt = Some(state);
                            joint.last_heartbeat = now;
                        }
                    }
                    _ => {}
                }
            }
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
            let waiting = self.buses[b]
                .joints
                .iter()
                .any(|&j| self.joints[j].awaiting && self.joints[j].got != self.joints[j].required());
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
        for joint in &mut self.joints {
            if joint.awaiting {
                if joint.got & joint.required() == joint.required() {
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
        for (i, joint) in self.joints.iter().enumerate() {
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
            if joint.protocol == Protocol::Cia402 {
                let hb_timeout = Duration::from_millis(3 * u64::from(joint.cia.heartbeat_ms));
                if now.saturating_sub(joint.last_heartbeat) > hb_timeout {
                    return Some(HalError::DriveFault {
                        joint: i,
                        detail: format!(
                            "node {}: heartbeat lost ({:?} since the last one, consumer timeout {hb_timeout:?})",
                            joint.node,
                            now.saturating_sub(joint.last_heartbeat)
                        ),
                    });
                }
                if let Some(state @ (NmtState::BootUp | NmtState::Stopped | NmtState::PreOperational)) = joint.nmt {
                    return Some(HalError::DriveFault {
                        joint: i,
                        detail: format!("node {}: NMT state {state:?} (drive rebooted or stopped)", joint.node),
                    });
                }
                let state = Cia402State::from_statusword(joint.statusword);
                if matches!(state, Cia402State::Fault | Cia402State::FaultReactionActive) {
                    return Some(HalError::DriveFault {
                        joint: i,
                        detail: format!(
                            "node {}: CiA 402 state {state:?}, last EMCY {:?}",
                            joint.node,
                            joint.emcy.map(|e| (e.code, e.meaning()))
                        ),
                    });
                }
                if self.lifecycle == Lifecycle::Active && state != Cia402State::OperationEnabled {
                    return Some(HalError::DriveFault {
                        joint: i,
                        detail: format!("node {}: drive left operation enabled (state {state:?})", joint.node),
                    });
                }
            }
            if joint.protocol == Protocol::Mit && joint.temperature >= self.config.temperature_limit_c {
                return Some(HalError::LimitViolation {
                    joint: i,
                    quantity: "motor temperature [°C]",
                    value: joint.temperature,
                    min: f64::NEG_INFINITY,
                    max: self.config.temperature_limit_c,
                });
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
            if self.buses[b].protocol == Protocol::Cia402 && !self.buses[b].joints.is_empty() {
                self.transmit(b, &hb, first_error);
            }
        }
    }

    /// Torque-free polling frames (lifecycle not Active): MIT exit motor mode (the motor answers with its
    /// state), CiA 402 RPDO with *disable voltage* and zero target, then SYNC.
    fn send_idle(&mut self, first: &mut Option<HalError>) {
        self.maybe_master_heartbeat(first);
        for b in 0..self.buses.len() {
            for k in 0..self.buses[b].joints.len() {
                let j = self.buses[b].joints[k];
                let node = self.joints[j].node;
                let frame = match self.joints[j].protocol {
                    Protocol::Mit => mit::special_frame(node, mit::EXIT_MOTOR_MODE),
                    Protocol::Cia402 => {
                        Rpdo1 { controlword: controlword::DISABLE_VOLTAGE, target_torque: 0 }.frame(node)
                    }
                };
                self.transmit(b, &frame, first);
                self.joints[j].awaiting = true;
            }
            if self.buses[b].protocol == Protocol::Cia402 && !self.buses[b].joints.is_empty() {
                self.transmit(b, &canopen::sync_frame(), first);
            }
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
                self.joints[j].awaiting = true;
            }
            if self.buses[b].protocol == Protocol::Cia402 && !self.buses[b].joints.is_empty() {
                self.transmit(b, &canopen::sync_frame(), first);
            }
        }
    }

    fn command_frame(&mut self, j: usize, command: &JointCommand, zero: bool) -> CanFrame {
        let joint = &mut self.joints[j];
        let mut clamped = 0u64;
        let limit = joint.limits.torque_max;
        let mut clamp_link = |t: f64| {
            let c = t.clamp(-limit, limit);
            if c != t {
                clamped += 1;
            }
            c
        };
        let frame = match joint.protocol {
            Protocol::Mit => {
                let cmd = if zero {
                    MitCommand::hold_free(joint.map.drive_position(joint.position))
                } else {
                    let tau = clamp_link(command.torque[j]);
                    let mut cmd = MitCommand::hold_free(joint.map.drive_position(joint.position));
                    cmd.torque = joint.map.drive_torque(tau);
                    if let Some(d) = &command.drive_impedance {
                        cmd.position = joint.map.drive_position(d.position[j]);
                        cmd.velocity = joint.map.drive_velocity(d.velocity[j]);
                        cmd.kp = joint.map.drive_gain(d.stiffness[j]);
                        cmd.kd = joint.map.drive_gain(d.damping[j]);
                    }
                    if joint.torque_field == MitTorqueField::Current {
                        cmd.torque /= joint.torque_constant;
                    }
                    cmd
                };
                match cmd.frame_with(joint.node, &joint.codec) {
                    Some((frame, c)) => {
                        clamped += u64::from(c.fields);
                        frame
                    }
                    // Unreachable for finite commands (checked in `write`); never send garbage: torque-free.
                    None => mit::special_frame(joint.node, mit::EXIT_MOTOR_MODE),
                }
            }
            Protocol::Cia402 => {
                let mut tau = 0.0;
                if !zero {
                    tau = command.torque[j];
                    if let Some(d) = &command.drive_impedance {
                        // CiA 402 has no drive-side impedance loop in CST mode: close it here at the loop rate.
                        tau += d.stiffness[j] * (d.position[j] - joint.position)
                            + d.damping[j] * (d.velocity[j] - joint.velocity);
                    }
                    tau = clamp_link(tau);
                }
                let permille = joint.map.drive_torque(tau) / joint.rated_torque * 1000.0;
                let max = f64::from(joint.cia.max_torque_permille.min(i16::MAX as u16));
                let sent = permille.clamp(-max, max);
                if sent != permille {
                    clamped += 1;
                }
                Rpdo1 { controlword: controlword::ENABLE_OPERATION, target_torque: sent.round() as i16 }
                    .frame(joint.node)
            }
        };
        if clamped > 0 {
            joint.clamped = true;
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
                let node = self.joints[j].node;
                let frame = match self.joints[j].protocol {
                    Protocol::Mit => mit::special_frame(node, mit::EXIT_MOTOR_MODE),
                    Protocol::Cia402 => Rpdo1 {
                        controlword: if quick_stop { controlword::QUICK_STOP } else { controlword::DISABLE_VOLTAGE },
                        target_torque: 0,
                    }
                    .frame(node),
                };
                if !self.transmit(b, &frame, &mut first) {
                    self.stats.torque_off_failures += 1;
                }
            }
            if self.buses[b].protocol == Protocol::Cia402
                && !self.buses[b].joints.is_empty()
                && !self.transmit(b, &canopen::sync_frame(), &mut first)
            {
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
    // Blocking exchanges (not real-time safe).

    fn exchange<T>(
        &mut self,
        j: usize,
        request: &CanFrame,
        mut matcher: impl FnMut(&CanFrame) -> Option<T>,
    ) -> Result<T, HalError> {
        let b = self.joints[j].bus;
        let start = self.buses[b].bus.now();
        self.buses[b].bus.transmit(request)?;
        for _ in 0..EXCHANGE_ATTEMPTS {
            match self.buses[b].bus.receive(EXCHANGE_SLICE)? {
                Some(frame) => {
                    self.handle_frame(b, &frame);
                    if let Some(t) = matcher(&frame) {
                        return Ok(t);
                    }
                }
                None => {
                    if self.buses[b].bus.state() == BusState::BusOff {
                        return Err(HalError::BusOff { bus: self.bus_name(b) });
                    }
                }
            }
        }
        Err(HalError::ReplyTimeout {
            joint: j,
            node_id: self.joints[j].node,
            cycles: 0,
            elapsed: self.buses[b].bus.now().saturating_sub(start),
        })
    }

    fn mit_exchange(&mut self, j: usize, request: CanFrame) -> Result<MitReply, HalError> {
        let (node, reply_id, codec) = (self.joints[j].node, self.joints[j].reply_id, self.joints[j].codec);
        self.exchange(j, &request, |f| match f.id() {
            CanId::Standard(id) if (id == reply_id || id == u16::from(node)) && f.data().first() == Some(&node) => {
                codec.decode_reply(f.data())
            }
            _ => None,
        })
    }

    fn sdo(&mut self, j: usize, request: SdoRequest) -> Result<SdoResponse, HalError> {
        let node = self.joints[j].node;
        let object = match request {
            SdoRequest::Download { index, subindex, .. } | SdoRequest::Upload { index, subindex } => (index, subindex),
        };
        let response =
            self.exchange(j, &request.frame(node), |f| SdoResponse::decode(f, node).filter(|r| r.object() == object))?;
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

    fn sdo_write(&mut self, j: usize, index: u16, subindex: u8, value: u32, len: u8) -> Result<(), HalError> {
        self.sdo(j, SdoRequest::write(index, subindex, value, len)).map(|_| ())
    }

    fn sdo_read(&mut self, j: usize, index: u16, subindex: u8) -> Result<u32, HalError> {
        let r = self.sdo(j, SdoRequest::Upload { index, subindex })?;
        r.value().ok_or_else(|| HalError::Protocol {
            joint: j,
            node_id: self.joints[j].node,
            detail: format!("no value in the upload of {index:#06x}:{subindex}"),
        })
    }

    fn expect_state(&mut self, j: usize, want: Cia402State) -> Result<(), HalError> {
        let mut state = Cia402State::NotReadyToSwitchOn;
        for _ in 0..10 {
            let sw = self.sdo_read(j, od::STATUSWORD, 0)? as u16;
            self.joints[j].statusword = sw;
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
            detail: format!("node {}: state {state:?}, expected {want:?}", self.joints[j].node),
        })
    }

    /// Start-up of one drive (also used by `reset`).
    fn configure_joint(&mut self, j: usize) -> Result<(), HalError> {
        let node = self.joints[j].node;
        // The arm may have moved arbitrarily while the drive was unobserved: no jump check against old data.
        self.joints[j].accepted_at = None;
        match self.joints[j].protocol {
            Protocol::Mit => {
                self.mit_exchange(j, mit::special_frame(node, mit::EXIT_MOTOR_MODE))?;
            }
            Protocol::Cia402 => {
                let b = self.joints[j].bus;
                self.buses[b].bus.transmit(&NmtCommand::EnterPreOperational.frame(node))?;
                let o = self.joints[j].cia;
                let period_us = (1e6 / self.config.control_rate_hz).round() as u32;
                let consumer_ms = 3 * u32::from(self.config.master_heartbeat_ms);
                let writes: [(u16, u8, u32, u8); 10] = [
                    (od::CONTROLWORD, 0, u32::from(controlword::DISABLE_VOLTAGE), 2),
                    (od::TARGET_TORQUE, 0, 0, 2),
                    (od::MODES_OF_OPERATION, 0, canopen::MODE_CST as u32, 1),
                    (od::QUICK_STOP_OPTION, 0, o.quick_stop_option as u16 as u32, 2),
                    (od::FAULT_REACTION_OPTION, 0, o.fault_reaction_option as u16 as u32, 2),
                    (od::ABORT_CONNECTION_OPTION, 0, o.abort_connection_option as u16 as u32, 2),
                    (od::COMMUNICATION_CYCLE_PERIOD, 0, period_us, 4),
                    (od::PRODUCER_HEARTBEAT, 0, u32::from(o.heartbeat_ms), 2),
                    (od::CONSUMER_HEARTBEAT, 1, (u32::from(self.config.master_node_id) << 16) | consumer_ms, 4),
                    (od::MAX_TORQUE, 0, u32::from(o.max_torque_permille), 2),
                ];
                for (index, sub, value, len) in writes {
                    self.sdo_write(j, index, sub, value, len)?;
                }
                for w in canopen::pdo_mapping_writes(node) {
                    self.sdo(j, w)?;
                }
                let rated = self.sdo_read(j, od::MOTOR_RATED_TORQUE, 0)?;
                if rated == 0 || o.rated_torque_mnm.is_some_and(|r| r != rated) {
                    return Err(HalError::Config {
                        key: format!("joints[{j}].cia402.rated_torque_mnm"),
                        reason: format!(
                            "drive node {node} reports 0x6076 = {rated} mNm, config expects {:?} (drive reset to \
                             factory parameters?)",
                            o.rated_torque_mnm
                        ),
                    });
                }
                self.joints[j].rated_torque = f64::from(rated) / 1000.0;
                let mode = self.sdo_read(j, od::MODES_OF_OPERATION_DISPLAY, 0)? as u8 as i8;
                if mode != canopen::MODE_CST {
                    return Err(HalError::Protocol {
                        joint: j,
                        node_id: node,
                        detail: format!("modes of operation display {mode}, expected {} (CST)", canopen::MODE_CST),
                    });
                }
                self.buses[b].bus.transmit(&NmtCommand::Start.frame(node))?;
                self.joints[j].nmt = Some(NmtState::Operational);
                self.joints[j].last_heartbeat = self.buses[b].bus.now();
            }
        }
        let joint = &mut self.joints[j];
        joint.missed = 0;
        joint.drive_flags = JointFlags::NONE;
        joint.emcy = None;
        Ok(())
    }

    fn enable_joint(&mut self, j: usize) -> Result<(), HalError> {
        let node = self.joints[j].node;
        match self.joints[j].protocol {
            Protocol::Mit => {
                let measured = self.mit_exchange(j, mit::special_frame(node, mit::EXIT_MOTOR_MODE))?;
                if measured.error != mit::MitErrorCode::None {
                    return Err(HalError::DriveFault {
                        joint: j,
                        detail: format!("node {node}: {:?}", measured.error),
                    });
                }
                // No kick: overwrite whatever command the drive holds with a torque-free one at the measured
                // position *before* entering motor mode.
                let codec = self.joints[j].codec;
                let hold = MitCommand::hold_free(measured.position).frame_with(node, &codec).map(|(f, _)| f).ok_or(
                    HalError::Protocol { joint: j, node_id: node, detail: "measured position not finite".into() },
                )?;
                self.mit_exchange(j, hold)?;
                self.mit_exchange(j, mit::special_frame(node, mit::ENTER_MOTOR_MODE))?;
                self.mit_exchange(j, hold)?;
            }
            Protocol::Cia402 => {
                self.sdo_write(j, od::TARGET_TORQUE, 0, 0, 2)?;
                self.sdo_write(j, od::CONTROLWORD, 0, u32::from(controlword::SHUTDOWN), 2)?;
                self.expect_state(j, Cia402State::ReadyToSwitchOn)?;
                self.sdo_write(j, od::CONTROLWORD, 0, u32::from(controlword::SWITCH_ON), 2)?;
                self.expect_state(j, Cia402State::SwitchedOn)?;
                self.sdo_write(j, od::CONTROLWORD, 0, u32::from(controlword::ENABLE_OPERATION), 2)?;
                self.expect_state(j, Cia402State::OperationEnabled)?;
            }
        }
        Ok(())
    }
}

impl<B: CanBus<Error = HalError>> Robot for CanRobot<B> {
    type Error = HalError;

    fn dof(&self) -> usize {
        self.joints.len()
    }

    fn joints(&self) -> &[JointInfo] {
        &self.info
    }

    fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    /// Collects the replies of the last `write` and detects faults (see the module docs). The state is filled
    /// even when a fault is returned. Real-time safe.
    fn read(&mut self, state: &mut JointState) -> Result<(), HalError> {
        if state.dof() != self.joints.len() {
            return Err(HalError::JointCountMismatch { expected: self.joints.len(), got: state.dof() });
        }
        let mut first = None;
        for b in 0..self.buses.len() {
            if let Err(e) = self.drain_bus(b) {
                first.get_or_insert(e);
            }
        }
        let fault = self.finish_cycle();
        state.stamp = self.buses.first().map_or(Duration::ZERO, |b| b.bus.now());
        let mut temperatures = crate::JointArray::splat(self.joints.len(), 0.0);
        let max_missed = self.config.max_missed_cycles;
        let mut warning = [false; crate::MAX_JOINTS];
        for (b, w) in warning.iter_mut().enumerate().take(self.buses.len()) {
            *w = matches!(self.bus_state(b), Some(BusState::ErrorWarning | BusState::ErrorPassive));
        }
        for (i, joint) in self.joints.iter_mut().enumerate() {
            state.position[i] = joint.position;
            state.velocity[i] = joint.velocity;
            state.torque[i] = joint.torque;
            temperatures[i] = joint.temperature;
            let mut flags = joint.drive_flags;
            if joint.missed >= max_missed {
                flags.insert(JointFlags::NO_REPLY);
                if matches!(joint.last_rejection, Some(Rejection::Jump { .. })) && joint.implausible_cycles > 0 {
                    flags.insert(JointFlags::ENCODER);
                }
            } else if joint.missed > 0 {
                flags.insert(JointFlags::REPLY_MISSED);
            }
            if warning.get(joint.bus).copied().unwrap_or(false) {
                flags.insert(JointFlags::BUS_WARNING);
            }
            if joint.clamped {
                flags.insert(JointFlags::CLAMPED);
                joint.clamped = false;
            }
            let enabled = match joint.protocol {
                Protocol::Mit => self.lifecycle == Lifecycle::Active,
                Protocol::Cia402 => Cia402State::from_statusword(joint.statusword) == Cia402State::OperationEnabled,
            };
            if !enabled {
                flags.insert(JointFlags::NOT_ENABLED);
            }
            if joint.protocol == Protocol::Mit {
                if joint.temperature >= self.config.temperature_limit_c {
                    flags.insert(JointFlags::OVER_TEMPERATURE);
                } else if joint.temperature >= self.config.temperature_warning_c {
                    flags.insert(JointFlags::WARNING_TEMPERATURE);
                }
            }
            state.flags[i] = flags;
        }
        state.temperature = if self.all_mit { Some(temperatures) } else { None };
        if let Some(e) = fault {
            self.safe_stop();
            return Err(e);
        }
        first.map_or(Ok(()), Err)
    }

    /// Sends this cycle's command (see the module docs for refused input). First handles what arrived since
    /// the last `read` (replies then are stale). Real-time safe.
    fn write(&mut self, command: &JointCommand) -> Result<(), HalError> {
        let mut first = None;
        self.drain_before_command(&mut first);
        let n = self.joints.len();
        let active = self.lifecycle == Lifecycle::Active;
        let refusal = if command.dof() != n || command.drive_impedance.is_some_and(|d| d.position.len() != n) {
            Some(HalError::JointCountMismatch { expected: n, got: command.dof() })
        } else if !command.is_finite() {
            let bad = |a: &crate::JointArray<f64>| a.iter().position(|v| !v.is_finite());
            let (joint, field) = if let Some(j) = bad(&command.torque) {
                (j, "torque")
            } else {
                let d = command.drive_impedance.unwrap_or_default();
                [
                    (&d.position, "position"),
                    (&d.velocity, "velocity"),
                    (&d.stiffness, "stiffness"),
                    (&d.damping, "damping"),
                ]
                .into_iter()
                .find_map(|(a, f)| bad(a).map(|j| (j, f)))
                .unwrap_or((0, "drive_impedance"))
            };
            Some(HalError::NonFiniteCommand { joint, field })
        } else {
            None
        };
        if let Some(refusal) = refusal {
            // The refused cycle still paces the drives, torque-free; its transmit failures are counted in
            // `stats.transmit_errors`, the refusal is the error reported.
            if active {
                self.send_active(&JointCommand::zeros(n), true, &mut first);
            } else {
                self.send_idle(&mut first);
            }
            return Err(refusal);
        }
        if active {
            self.send_active(command, false, &mut first);
            return first.map_or(Ok(()), Err);
        }
        self.send_idle(&mut first);
        if !command.is_zero() {
            return Err(HalError::NotActive { state: self.lifecycle });
        }
        first.map_or(Ok(()), Err)
    }

    fn enable(&mut self) -> Result<(), HalError> {
        match self.lifecycle {
            Lifecycle::Active => return Ok(()),
            Lifecycle::Disabled => {}
            state => return Err(HalError::InvalidTransition { action: "enable", state }),
        }
        if let Some(b) = (0..self.buses.len()).find(|&b| self.bus_state(b) == Some(BusState::BusOff)) {
            self.safe_stop();
            return Err(HalError::BusOff { bus: self.bus_name(b) });
        }
        for b in 0..self.buses.len() {
            self.stats.discarded_frames += self.buses[b].bus.discard_pending_tx()? as u64;
        }
        for j in 0..self.joints.len() {
            if let Err(e) = self.enable_joint(j) {
                // Torque-off failures are counted in `stats.torque_off_failures`; the enable failure is the
                // error reported.
                let _ = self.torque_off(false);
                return Err(e);
            }
        }
        for joint in &mut self.joints {
            joint.missed = 0;
            joint.implausible_cycles = 0;
            joint.awaiting = false;
            joint.got = 0;
            joint.rejected = false;
        }
        self.lifecycle = Lifecycle::Active;
        Ok(())
    }

    fn disable(&mut self) -> Result<(), HalError> {
        match self.lifecycle {
            Lifecycle::Disabled => Ok(()),
            Lifecycle::Active => {
                self.lifecycle = Lifecycle::Disabled;
                self.torque_off(false)
            }
            state => Err(HalError::InvalidTransition { action: "disable", state }),
        }
    }

    /// Latches `EStopped` first (so the latch holds whatever fails below), discards queued frames, sends torque
    /// off. Real-time safe in the sense of the [`Robot`] contract: no blocking and no unbounded loop — one
    /// discard and one non-blocking transmit per torque-off frame. Allocation-free on the virtual bus; on
    /// SocketCAN each transmit is a `write` syscall (the socket is not reopened: frames already in the kernel
    /// queue cannot be discarded from user space and go out before the torque-off frames, see
    /// `SocketCanBus::discard_pending_tx`). An error allocates its message; failures are counted in
    /// [`CanRobotStats::torque_off_failures`].
    fn estop(&mut self) -> Result<(), HalError> {
        self.lifecycle = Lifecycle::EStopped;
        for joint in &mut self.joints {
            joint.awaiting = false;
        }
        self.torque_off(true)
    }

    /// Discards queued frames, restarts bus-off controllers (explicit recovery), re-initialises every drive
    /// (fault reset for CiA 402) and returns to `Disabled`. Not real-time safe.
    fn reset(&mut self) -> Result<(), HalError> {
        match self.lifecycle {
            Lifecycle::EStopped | Lifecycle::Fault => {}
            Lifecycle::Disabled => return Ok(()),
            state => return Err(HalError::InvalidTransition { action: "reset", state }),
        }
        for b in 0..self.buses.len() {
            self.stats.discarded_frames += self.buses[b].bus.discard_pending_tx()? as u64;
            if self.bus_state(b) == Some(BusState::BusOff) {
                self.buses[b].bus.recover()?;
            }
            self.buses[b].reported = BusState::ErrorActive;
            // Error frames and stale replies from before the reset are not news any more.
            for _ in 0..MAX_FRAMES_PER_READ {
                if self.buses[b].bus.receive(Duration::ZERO)?.is_none() {
                    break;
                }
            }
        }
        for j in 0..self.joints.len() {
            if self.joints[j].protocol == Protocol::Cia402 {
                self.sdo_write(j, od::CONTROLWORD, 0, u32::from(controlword::DISABLE_VOLTAGE), 2)?;
                self.sdo_write(j, od::CONTROLWORD, 0, u32::from(controlword::FAULT_RESET), 2)?;
            }
            self.configure_joint(j)?;
        }
        for joint in &mut self.joints {
            joint.awaiting = false;
            joint.got = 0;
            joint.clamped = false;
            joint.rejected = false;
            joint.implausible_cycles = 0;
            joint.last_rejection = None;
        }
        self.lifecycle = Lifecycle::Disabled;
        Ok(())
    }
}
