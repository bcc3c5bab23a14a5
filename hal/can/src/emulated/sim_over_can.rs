//! [`SimOverCan`]: a plant driven through the whole CAN stack — `CanRobot` frames on stepped virtual buses,
//! emulated drives decoding them and applying torque to any [`Robot`] plant, replies decoded by `CanRobot`.
//!
//! Recording the traffic (off by default). A recording that should hold the start-up — the drives' boot-up
//! messages, CiA 402 NMT and SDO configuration, MIT polls — starts before the first frame, in the constructor:
//! - a session (`plexo sim --over-can mit --candump <path>`): [`SimOverCan::new_with_candump`], then
//!   [`SimOverCan::finish_candump`] at the end. The buses push `Copy` records into a bounded channel that a
//!   writer thread drains into the can-utils candump file (`(seconds.micros) canN ID#DATA`, all buses in one
//!   time-ordered file): the tick never allocates or blocks, memory stays a few MB however long the session, a
//!   full channel drops records and `finish_candump` reports how many were written and dropped;
//! - a recorder of the caller's own (the app's candump file written beside its target and renamed when
//!   complete): [`SimOverCan::with_recording`], whose closure gets the buses before any frame is sent;
//! - a test that reads the log back: [`SimOverCan::with_recording`] with `VirtualBus::start_recording`, or
//!   [`SimOverCan::record_in_memory`] after the start-up (bounded, excess counted in
//!   `VirtualBus::stats().record_dropped`), then [`SimOverCan::candump_log`] or `buses()[b].recorded()`.
//!
//! [`SimOverCan::record_candump`] and [`SimOverCan::record_in_memory`] on a constructed `SimOverCan` still work,
//! but start after the start-up: their logs begin with the first cycle.

use std::sync::{Arc, Mutex, MutexGuard};

use core::time::Duration;

use crate::bus::CanBus;
use crate::can_robot::CanRobot;
use crate::candump;
use crate::config::{BusConfig, CanRobotConfig, Cia402Options, JointConfig, LinkLimits, MitOptions};
use crate::frame::CanFrame;
use crate::mit::MitFirmware;
use crate::planner::{BusPlan, DriveProtocol, bus_load};
use crate::recorder::{CandumpSummary, CandumpWriter};
use crate::virtual_bus::{Pump, PumpedNode, VirtualBus, VirtualBusConfig, VirtualNode};
use plexo_hal::{HalError, JointCommand, JointInfo, JointState, Lifecycle, PatientHooks, Robot, RobotError};

use super::cia402_drive::EmulatedCia402Drive;
use super::mit_motor::EmulatedMitMotor;

/// One emulated drive (enum dispatch: no trait objects in the loop).
#[derive(Clone, Debug)]
pub enum EmulatedDrive {
    /// CubeMars AK in MIT mode.
    Mit(EmulatedMitMotor),
    /// CiA 402 drive.
    Cia402(EmulatedCia402Drive),
}

impl EmulatedDrive {
    fn handle(&mut self, frame: &CanFrame, now: Duration) {
        match self {
            Self::Mit(m) => m.handle(frame, now),
            Self::Cia402(d) => d.handle(frame, now),
        }
    }

    /// Position [rad], velocity [rad/s] and torque [Nm] as the plant measured them (link side).
    fn measure(&mut self, q: f64, qd: f64, tau: f64) {
        match self {
            Self::Mit(m) => {
                m.measure(q, qd);
                m.measure_torque(tau);
            }
            Self::Cia402(d) => {
                d.measure(q, qd);
                d.measure_torque(tau);
            }
        }
    }

    fn torque(&mut self, now: Duration) -> f64 {
        match self {
            Self::Mit(m) => m.torque(now),
            Self::Cia402(d) => d.torque(now),
        }
    }
}

/// The emulated drives with their bus attachments; a [`Pump`] for request/response exchanges.
pub struct DriveSet {
    nodes: Vec<VirtualNode>,
    drives: Vec<(usize, EmulatedDrive)>,
    outbox: Vec<CanFrame>,
    tx_errors: u64,
}

impl DriveSet {
    /// Drive of joint `joint`.
    pub fn drive(&self, joint: usize) -> Option<&EmulatedDrive> {
        self.drives.get(joint).map(|(_, d)| d)
    }

    /// Drive of joint `joint`, mutable (fault injection: stale commands, error codes, reboots).
    pub fn drive_mut(&mut self, joint: usize) -> Option<&mut EmulatedDrive> {
        self.drives.get_mut(joint).map(|(_, d)| d)
    }

    /// Frames the drives could not send (e.g. their node was put bus-off).
    pub fn tx_errors(&self) -> u64 {
        self.tx_errors
    }

    /// Takes every frame waiting on the drives' nodes and hands it to the drives.
    fn process(&mut self) {
        for b in 0..self.nodes.len() {
            let now = self.nodes[b].now();
            while let Some(frame) = self.nodes[b].try_receive() {
                for (bus, drive) in &mut self.drives {
                    if *bus == b {
                        drive.handle(&frame, now);
                    }
                }
            }
        }
    }

    /// Runs timers, collects pending replies (with the cached measurement) and sends everything queued.
    fn flush(&mut self, timers: bool) {
        for (bus, drive) in &mut self.drives {
            let now = self.nodes[*bus].now();
            match drive {
                EmulatedDrive::Mit(m) => {
                    if let Some(f) = m.take_reply() {
                        self.outbox.push(f);
                    }
                }
                EmulatedDrive::Cia402(d) => {
                    if timers {
                        d.tick(now);
                    }
                    d.flush();
                    self.outbox.extend(d.drain_outbox());
                }
            }
            for frame in self.outbox.drain(..) {
                if self.nodes[*bus].transmit(&frame).is_err() {
                    self.tx_errors += 1;
                }
            }
        }
    }
}

impl Pump for DriveSet {
    fn pump(&mut self) {
        self.process();
        self.flush(false);
    }
}

fn lock(d: &Mutex<DriveSet>) -> MutexGuard<'_, DriveSet> {
    // Poisoned only if a test panicked while holding it; the data is still the last consistent state.
    d.lock().unwrap_or_else(|p| p.into_inner())
}

/// A candump file writer for `buses` at `path`, every bus recording into it from now on. Not real-time safe.
fn candump_writer(buses: &[VirtualBus], path: &std::path::Path) -> Result<CandumpWriter, HalError> {
    let names: Vec<String> = buses.iter().map(VirtualBus::name).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let writer = CandumpWriter::create(path, &refs, CANDUMP_CHANNEL_RECORDS)?;
    for (i, bus) in buses.iter().enumerate() {
        let sink = writer
            .sink(i)
            .ok_or_else(|| HalError::Config { key: "candump".into(), reason: format!("no sink for bus {i}") })?;
        bus.record_to(sink);
    }
    Ok(writer)
}

fn plant_error<E: RobotError>(context: &'static str) -> impl FnOnce(E) -> HalError {
    move |e| HalError::Backend { context, kind: e.kind(), detail: e.to_string() }
}

/// A plant behind emulated CAN drives; itself a [`Robot`].
///
/// `write`: `CanRobot` sends the command frames → the drives decode them (MIT law / CiA 402 target torque) →
/// `plant.write` for one period → virtual time advances one period → the drives reply with the plant's new
/// measurement (position, velocity and the plant's torque reading, quantised by the protocol). `read` returns
/// what `CanRobot` decoded. Deterministic: stepped virtual buses, single thread. The controller sees the same
/// sample timing as with the plant directly (the reply carries the state at the end of the period the command
/// acted in); the differences are the protocols' quantisation and clamping.
pub struct SimOverCan<P: Robot> {
    robot: CanRobot<PumpedNode<DriveSet>>,
    drives: Arc<Mutex<DriveSet>>,
    buses: Vec<VirtualBus>,
    plant: P,
    plant_state: JointState,
    plant_command: JointCommand,
    period: Duration,
    candump: Option<CandumpWriter>,
}

/// Host heartbeat period of [`SimOverCan::default_config`] [ms].
const MASTER_HEARTBEAT_MS: u16 = 50;

/// Records the channel of a candump file recording holds (≈ 100 bytes each): ≈ 3 s of a 4-joint MIT session at
/// 1 kHz, far more than the writer thread needs to catch up.
pub const CANDUMP_CHANNEL_RECORDS: usize = 1 << 14;

impl<P: Robot> SimOverCan<P> {
    /// A default configuration for `joints` over `protocol` at `rate_hz`: MIT joints as AK80-9 (AK10-9 above
    /// 18 Nm, AK80-64 above 65 Nm) on classic 1 Mbit/s buses; CiA 402 drives on CAN FD 1/5 Mbit/s; joints fill
    /// buses up to the 70 % worst-case load limit of the planner (`can0`, `can1`, …; CiA 402 heartbeats and the
    /// EMCY allowance included, so at 1 kHz one CiA 402 drive per bus). Ratio 1, node ids 1.., drive timeout
    /// 3 periods.
    pub fn default_config(
        joints: &[JointInfo],
        protocol: DriveProtocol,
        rate_hz: f64,
    ) -> Result<CanRobotConfig, HalError> {
        let data_bitrate = (protocol == DriveProtocol::Cia402).then_some(5_000_000);
        let canopen = protocol == DriveProtocol::Cia402;
        let plan = |n: usize| BusPlan {
            name: String::new(),
            bitrates: crate::timing::Bitrates { nominal: 1_000_000, data: data_bitrate.unwrap_or(1_000_000) },
            fd_brs: data_bitrate.is_some(),
            protocol,
            joints: n,
            master_heartbeat: canopen.then(|| Duration::from_millis(u64::from(MASTER_HEARTBEAT_MS))),
            drive_heartbeats: if canopen {
                vec![Duration::from_millis(u64::from(Cia402Options::default().heartbeat_ms)); n]
            } else {
                Vec::new()
            },
        };
        let per_bus = (1..=joints.len().max(1))
            .rev()
            .find(|n| bus_load(&plan(*n), rate_hz).load <= crate::planner::DEFAULT_LOAD_LIMIT)
            .unwrap_or(1);
        let n_buses = joints.len().div_ceil(per_bus).max(1);
        let buses =
            (0..n_buses).map(|b| BusConfig { name: format!("can{b}"), bitrate: 1_000_000, data_bitrate }).collect();
        let timeout_ms = ((3.0 * 1000.0 / rate_hz).ceil() as u32).max(1);
        let joints = joints
            .iter()
            .enumerate()
            .map(|(i, info)| {
                let motor = match info.torque_max {
                    t if t <= 18.0 => "AK80-9",
                    t if t <= 65.0 => "AK10-9",
                    _ => "AK80-64",
                };
                JointConfig {
                    name: info.name.clone(),
                    bus: format!("can{}", i / per_bus),
                    node_id: (i % per_bus) as u8 + 1,
                    protocol,
                    motor: if protocol == DriveProtocol::Mit { motor.into() } else { "generic".into() },
                    gear_ratio: 1.0,
                    direction: 1,
                    zero_offset: 0.0,
                    torque_constant: 1.0,
                    limits: LinkLimits {
                        position_min: info.position_min,
                        position_max: info.position_max,
                        velocity_max: info.velocity_max,
                        torque_max: info.torque_max,
                    },
                    mit: (protocol == DriveProtocol::Mit).then_some(MitOptions {
                        drive_timeout_ms: timeout_ms,
                        // The emulated motors use the same table: the manual's (V1.1).
                        firmware: Some(MitFirmware::V1_1),
                        ranges: None,
                        torque_field: Default::default(),
                        reply_can_id: 0,
                    }),
                    cia402: (protocol == DriveProtocol::Cia402).then_some(Cia402Options {
                        // Rated torque such that the joint's limit is 1000 ‰: full resolution of the target.
                        rated_torque_mnm: Some((info.torque_max * 1000.0).round().max(1.0) as u32),
                        ..Cia402Options::default()
                    }),
                }
            })
            .collect();
        let config = CanRobotConfig {
            control_rate_hz: rate_hz,
            // At most one control period (the configuration's bound), 500 µs at 1 kHz.
            reply_timeout_us: ((1e6 / rate_hz).floor() as u64).clamp(1, 500),
            max_missed_cycles: 3,
            bus_load_limit: crate::planner::DEFAULT_LOAD_LIMIT,
            master_node_id: 0x7F,
            master_heartbeat_ms: MASTER_HEARTBEAT_MS,
            temperature_warning_c: 60.0,
            temperature_limit_c: 80.0,
            buses,
            joints,
        };
        config.validate()?;
        Ok(config)
    }

    /// Builds the emulated drives for `config` on stepped virtual buses, enables the plant (the physics is
    /// always "powered"; torque comes only from the drives) and brings `CanRobot` up (SDO configuration, polls)
    /// — ending in `Disabled`. `config.joints` must be in the plant's joint order. Nothing is recorded: a
    /// recording of the start-up begins in [`SimOverCan::new_with_candump`] or [`SimOverCan::with_recording`];
    /// [`SimOverCan::record_candump`] or [`SimOverCan::record_in_memory`] afterwards record from the first
    /// cycle on. Not real-time safe.
    pub fn new(plant: P, config: CanRobotConfig) -> Result<Self, HalError> {
        Self::with_drives(plant, config, |_| {})
    }

    /// As [`SimOverCan::new`], with `setup` applied to the emulated drives before `CanRobot` configures them
    /// (fault injection at start-up: an SDO abort, a drive with another rated torque). Not real-time safe.
    pub fn with_drives(plant: P, config: CanRobotConfig, setup: impl FnOnce(&mut DriveSet)) -> Result<Self, HalError> {
        Self::build(plant, config, setup, |_| Ok::<(), HalError>(())).map(|(s, ())| s)
    }

    /// As [`SimOverCan::new`], with `start` called on the freshly made virtual buses (in `config.buses` order)
    /// before any frame is sent — before the drives' boot-up messages and `CanRobot`'s start-up (CiA 402 NMT and
    /// SDO configuration, MIT polls) — so that a recording it starts there (`VirtualBus::record_to` a
    /// [`CandumpWriter`] sink, `VirtualBus::start_recording`) holds the whole start-up. Returns what `start`
    /// returned (e.g. the recorder to finish at the end). If the start-up fails, that value is dropped with the
    /// error (a `CandumpWriter` flushes what it got when dropped); to keep the recording of a failed start-up,
    /// let `start` store it outside and return `()`. Not real-time safe.
    pub fn with_recording<T, E: From<HalError>>(
        plant: P,
        config: CanRobotConfig,
        start: impl FnOnce(&[VirtualBus]) -> Result<T, E>,
    ) -> Result<(Self, T), E> {
        Self::build(plant, config, |_| {}, start)
    }

    /// As [`SimOverCan::new`], recording every bus into the candump file `path` (created or truncated, 0600) from
    /// before the first frame: the log holds the start-up traffic (boot-up, NMT, SDO configuration) and then the
    /// session. Finish with [`SimOverCan::finish_candump`]; see [`SimOverCan::record_candump`] for the channel.
    /// If the start-up fails, the file keeps what was sent until then (the writer flushes when dropped). Not
    /// real-time safe.
    pub fn new_with_candump(plant: P, config: CanRobotConfig, path: &std::path::Path) -> Result<Self, HalError> {
        let (mut sim, writer) = Self::with_recording(plant, config, |buses| candump_writer(buses, path))?;
        sim.candump = Some(writer);
        Ok(sim)
    }

    fn build<T, E: From<HalError>>(
        mut plant: P,
        config: CanRobotConfig,
        setup: impl FnOnce(&mut DriveSet),
        start: impl FnOnce(&[VirtualBus]) -> Result<T, E>,
    ) -> Result<(Self, T), E> {
        config.validate()?;
        if config.joints.len() != plant.dof() {
            return Err(HalError::Config {
                key: "joints".into(),
                reason: format!("{} joints configured, the plant has {}", config.joints.len(), plant.dof()),
            }
            .into());
        }
        let buses: Vec<VirtualBus> = config
            .buses
            .iter()
            .map(|b| {
                let mut c = VirtualBusConfig::stepped(&b.name, b.bitrate);
                c.bitrates = b.bitrates();
                VirtualBus::new(c)
            })
            .collect();
        // Before the first frame (the boot-up messages below): a recording started here holds the start-up.
        let started = start(&buses)?;
        let period = config.period();
        let drive_nodes: Vec<VirtualNode> = buses.iter().map(|b| b.node("drives")).collect();
        let host_nodes: Vec<VirtualNode> = buses.iter().map(|b| b.node("plexo")).collect();
        let mut drives = Vec::with_capacity(config.joints.len());
        for j in &config.joints {
            let b = config.buses.iter().position(|b| b.name == j.bus).unwrap_or(0);
            let drive = match j.protocol {
                DriveProtocol::Mit => {
                    let m = j.mit.unwrap_or(MitOptions {
                        drive_timeout_ms: 0,
                        firmware: None,
                        ranges: None,
                        torque_field: Default::default(),
                        reply_can_id: 0,
                    });
                    let ranges = j.mit_ranges().ok_or_else(|| HalError::Config {
                        key: format!("joints.{}.motor", j.name),
                        reason: "no MIT ranges".into(),
                    })?;
                    EmulatedDrive::Mit(EmulatedMitMotor::new(
                        j.node_id,
                        m.reply_can_id,
                        ranges,
                        j.mapping(),
                        Duration::from_millis(u64::from(m.drive_timeout_ms)),
                    ))
                }
                DriveProtocol::Cia402 => {
                    let o = j.cia402.unwrap_or_default();
                    EmulatedDrive::Cia402(EmulatedCia402Drive::new(
                        j.node_id,
                        j.mapping(),
                        o.encoder_counts_per_rev,
                        o.rated_torque_mnm.unwrap_or(1000),
                        config.buses[b].data_bitrate.is_some(),
                    ))
                }
            };
            drives.push((b, drive));
        }
        plant.enable().map_err(plant_error("enabling the simulated plant"))?;
        let mut plant_state = JointState::zeros(plant.dof());
        plant.read(&mut plant_state).map_err(plant_error("reading the simulated plant"))?;
        for (i, (_, d)) in drives.iter_mut().enumerate() {
            d.measure(plant_state.position[i], plant_state.velocity[i], plant_state.torque[i]);
        }
        let mut set = DriveSet { nodes: drive_nodes, drives, outbox: Vec::with_capacity(16), tx_errors: 0 };
        setup(&mut set);
        let set = Arc::new(Mutex::new(set));
        lock(&set).flush(true); // boot-up messages
        let pumped = host_nodes.into_iter().map(|n| PumpedNode::new(n, Arc::clone(&set))).collect();
        let robot = CanRobot::new(config, pumped)?;
        let dof = plant.dof();
        let sim = Self {
            robot,
            drives: set,
            buses,
            plant,
            plant_state,
            plant_command: JointCommand::zeros(dof),
            period,
            candump: None,
        };
        Ok((sim, started))
    }

    /// The CAN robot (stats, config, EMCY).
    pub fn can_robot(&self) -> &CanRobot<PumpedNode<DriveSet>> {
        &self.robot
    }

    /// The virtual buses (fault injection, statistics, recording).
    pub fn buses(&self) -> &[VirtualBus] {
        &self.buses
    }

    /// The emulated drives (fault injection). Do not hold the guard across `read`/`write`.
    pub fn drives(&self) -> MutexGuard<'_, DriveSet> {
        lock(&self.drives)
    }

    /// The plant.
    pub fn plant(&self) -> &P {
        &self.plant
    }

    /// The plant, mutable (set-up, patient access).
    pub fn plant_mut(&mut self) -> &mut P {
        &mut self.plant
    }

    /// The plant's own state after the last period (ground truth, not what came over CAN).
    pub fn plant_state(&self) -> &JointState {
        &self.plant_state
    }

    /// Link torque the drives applied to the plant in the last period [Nm].
    pub fn applied_torque(&self) -> &[f64] {
        &self.plant_command.torque
    }

    /// Starts recording every bus into the candump file `path` (created or truncated), all buses in one
    /// time-ordered file, from now on: the start-up traffic (NMT, SDO configuration) is already over and not in
    /// the file — [`SimOverCan::new_with_candump`] records it too. The tick then only pushes `Copy` records into
    /// a bounded channel ([`CANDUMP_CHANNEL_RECORDS`]) that a writer thread drains: no allocation, no blocking, a
    /// full channel drops and counts. Finish with [`SimOverCan::finish_candump`] (dropping the `SimOverCan` also
    /// flushes the file, without reporting). Replaces an in-memory recording. Not real-time safe.
    pub fn record_candump(&mut self, path: &std::path::Path) -> Result<(), HalError> {
        if self.candump.is_some() {
            return Err(HalError::Config {
                key: "candump".into(),
                reason: format!("already recording; finish_candump before recording to {}", path.display()),
            });
        }
        self.candump = Some(candump_writer(&self.buses, path)?);
        Ok(())
    }

    /// Stops the candump file recording, waits for the writer to write everything queued and flush, and
    /// returns how many frames were written and dropped. Not real-time safe.
    pub fn finish_candump(&mut self) -> Result<CandumpSummary, HalError> {
        let writer = self.candump.take().ok_or_else(|| HalError::Config {
            key: "candump".into(),
            reason: "no candump recording was started (record_candump)".into(),
        })?;
        for bus in &self.buses {
            bus.stop_recording();
        }
        writer.finish()
    }

    /// Records every bus in memory from now on (after the start-up; [`SimOverCan::with_recording`] starts before
    /// it), at most `capacity_per_bus` frames each (reserved now; the excess is dropped
    /// and counted in `VirtualBus::stats().record_dropped`). For tests and short runs that read the log back
    /// ([`SimOverCan::candump_log`], `buses()[b].recorded()`). Not real-time safe.
    pub fn record_in_memory(&mut self, capacity_per_bus: usize) {
        for bus in &self.buses {
            bus.start_recording(capacity_per_bus);
        }
    }

    /// All buses' in-memory traffic as one candump log, ordered by time (empty unless
    /// [`SimOverCan::record_in_memory`] was called). Not real-time safe.
    pub fn candump_log(&self) -> String {
        let mut records: Vec<(Duration, String, CanFrame)> = self
            .buses
            .iter()
            .flat_map(|b| {
                let name = b.name();
                b.recorded().into_iter().map(move |(t, f)| (t, name.clone(), f))
            })
            .collect();
        records.sort_by_key(|r| r.0);
        let mut out = String::new();
        for (t, name, f) in &records {
            out.push_str(&candump::format_line(*t, name, f));
            out.push('\n');
        }
        out
    }

    /// Writes [`SimOverCan::candump_log`] (the in-memory recording) to `path`. Not real-time safe.
    pub fn save_candump(&self, path: &std::path::Path) -> Result<(), HalError> {
        std::fs::write(path, self.candump_log())
            .map_err(|source| HalError::Io { context: format!("writing candump log {}", path.display()), source })
    }

    fn step_plant(&mut self) -> Result<(), HalError> {
        let mut set = lock(&self.drives);
        set.process();
        for (i, (_, drive)) in set.drives.iter_mut().enumerate() {
            let now = self.buses.first().map_or(Duration::ZERO, |b| b.now());
            self.plant_command.torque[i] = drive.torque(now);
        }
        let stepped = self.plant.write(&self.plant_command).map_err(plant_error("simulated plant write"));
        for bus in &self.buses {
            bus.advance(self.period);
        }
        let read = self.plant.read(&mut self.plant_state).map_err(plant_error("simulated plant read"));
        for (i, (_, drive)) in set.drives.iter_mut().enumerate() {
            let s = &self.plant_state;
            drive.measure(s.position[i], s.velocity[i], s.torque[i]);
        }
        set.flush(true);
        stepped.and(read)
    }
}

impl<P: Robot> Robot for SimOverCan<P> {
    type Error = HalError;

    fn dof(&self) -> usize {
        self.robot.dof()
    }
    fn joints(&self) -> &[JointInfo] {
        self.robot.joints()
    }
    fn lifecycle(&self) -> Lifecycle {
        self.robot.lifecycle()
    }
    /// What `CanRobot` decoded from the drives' replies. Real-time safe.
    fn read(&mut self, state: &mut JointState) -> Result<(), HalError> {
        self.robot.read(state)
    }
    /// One period: command frames → drives → plant → replies. The plant advances even when the command is
    /// refused (the refused cycle is sent torque-free). Real-time safe apart from the plant's own behaviour.
    fn write(&mut self, command: &JointCommand) -> Result<(), HalError> {
        let sent = self.robot.write(command);
        let stepped = self.step_plant();
        sent.and(stepped)
    }
    fn enable(&mut self) -> Result<(), HalError> {
        self.robot.enable()
    }
    fn disable(&mut self) -> Result<(), HalError> {
        self.robot.disable()
    }
    /// E-stop over CAN; the drives process the torque-off frames at once.
    fn estop(&mut self) -> Result<(), HalError> {
        let r = self.robot.estop();
        lock(&self.drives).process();
        r
    }
    fn reset(&mut self) -> Result<(), HalError> {
        self.robot.reset()
    }
}

impl<P: Robot> Drop for SimOverCan<P> {
    /// Releases the buses' sinks so that the candump writer (if still recording) flushes the file when it drops.
    fn drop(&mut self) {
        if self.candump.is_some() {
            for bus in &self.buses {
                bus.stop_recording();
            }
        }
    }
}

/// The robot behind the drives keeps its simulation hooks: a simulated patient stays reachable through the CAN
/// stack (its errors wrapped as [`HalError::Backend`] with their kind).
impl<P: PatientHooks> PatientHooks for SimOverCan<P> {
    fn is_simulated(&self) -> bool {
        self.plant.is_simulated()
    }

    fn patient_goal(&mut self, goal: &plexo_hal::JointArray<f64>, duration: f64) -> Result<(), HalError> {
        self.plant.patient_goal(goal, duration).map_err(plant_error("virtual patient goal"))
    }

    fn patient_trial_end(&mut self, error: f64, success: bool, duration: f64) -> Result<(), HalError> {
        self.plant.patient_trial_end(error, success, duration).map_err(plant_error("virtual patient trial end"))
    }

    fn true_patient_torque(&self) -> Option<plexo_hal::JointArray<f64>> {
        self.plant.true_patient_torque()
    }

    fn true_voluntary_torque(&self) -> Option<plexo_hal::JointArray<f64>> {
        self.plant.true_voluntary_torque()
    }

    fn patient_state(&self) -> Option<toml::Table> {
        self.plant.patient_state()
    }

    fn restore_patient(&mut self, state: &toml::Table) -> Result<bool, HalError> {
        self.plant.restore_patient(state).map_err(plant_error("restoring the virtual patient"))
    }
}
