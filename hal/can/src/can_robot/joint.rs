//! What `CanRobot` keeps per joint whatever its protocol ([`JointCore`]), and the [`JointDriver`] trait each
//! drive protocol implements (`mit_driver.rs`, `cia402_driver.rs`), with the [`DriveLink`] its blocking
//! sequences (start-up, enable, fault reset) exchange frames through.

use core::time::Duration;

use plexo_hal::{HalError, JointCommand, JointFlags, Lifecycle};

use super::plausibility::{self, LastAccepted, Rejection};
use crate::canopen::Emcy;
use crate::config::{CanRobotConfig, JointMapping, LinkLimits};
use crate::frame::CanFrame;

/// Reply part: the main reply (MIT reply, CiA 402 TPDO1).
pub(super) const GOT_MAIN: u8 = 1;
/// Reply part: the velocity (CiA 402 TPDO2).
pub(super) const GOT_VELOCITY: u8 = 2;

/// Per-joint state shared by every protocol: addressing, mapping, the last accepted values and the reply
/// accounting of the current cycle.
pub(super) struct JointCore {
    /// Index of the joint's bus.
    pub bus: usize,
    /// CAN node id of the drive.
    pub node: u8,
    /// Drive ↔ link mapping.
    pub map: JointMapping,
    /// Link-side limits (torque commands are clamped to `torque_max`).
    pub limits: LinkLimits,
    /// A reply is expected this cycle.
    pub awaiting: bool,
    /// Reply parts received this cycle (`GOT_*` bits).
    pub got: u8,
    /// Consecutive cycles without a complete reply.
    pub missed: u32,
    /// Bus time of the last accepted main reply.
    pub last_reply: Duration,
    /// Last accepted link position [rad].
    pub position: f64,
    /// Last accepted link velocity [rad/s].
    pub velocity: f64,
    /// Last accepted link torque [Nm].
    pub torque: f64,
    /// Last reported motor temperature [°C] (MIT drives; 0 otherwise).
    pub temperature: f64,
    /// Flags the drive reported.
    pub drive_flags: JointFlags,
    /// A command value was clamped since the last `read`.
    pub clamped: bool,
    /// Last EMCY with an error (CiA 402 drives) since the last start-up.
    pub emcy: Option<Emcy>,
    /// Time of the last accepted position sample (None after start-up and reset).
    pub accepted_at: Option<Duration>,
    /// A reply of this cycle was rejected as implausible.
    pub rejected: bool,
    /// Consecutive missed cycles in which a reply was rejected as implausible.
    pub implausible_cycles: u32,
    /// Why the last reply was rejected.
    pub last_rejection: Option<Rejection>,
}

impl JointCore {
    /// A joint on bus `bus`, drive `node`, nothing received yet.
    pub fn new(bus: usize, node: u8, map: JointMapping, limits: LinkLimits) -> Self {
        Self {
            bus,
            node,
            map,
            limits,
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
            emcy: None,
            accepted_at: None,
            rejected: false,
            implausible_cycles: 0,
            last_rejection: None,
        }
    }

    /// Checks a reported link position [rad] at `now` against the last accepted one; `step` is the protocol's
    /// position quantisation at the link [rad].
    pub fn check_position(&self, position: f64, now: Duration, step: f64) -> Option<Rejection> {
        let last = self.accepted_at.map(|at| LastAccepted { position: self.position, velocity: self.velocity, at });
        plausibility::check_position(last, self.limits.velocity_max, step, position, now)
    }

    /// Checks a reported link velocity [rad/s].
    pub fn check_velocity(&self, velocity: f64) -> Option<Rejection> {
        plausibility::check_velocity(self.limits.velocity_max, velocity)
    }

    /// Clamps a link torque [Nm] to the joint's limit, counting a clamp in `clamped`.
    pub fn clamp_torque(&self, torque: f64, clamped: &mut u64) -> f64 {
        let limit = self.limits.torque_max;
        let c = torque.clamp(-limit, limit);
        if c != torque {
            *clamped += 1;
        }
        c
    }
}

/// What a driver made of a frame of its joint.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Received {
    /// Not a reply (or not decodable): nothing to count.
    Ignored,
    /// A reply that arrived before this cycle's command: discarded.
    Stale,
    /// A reply taken into the joint's state.
    Accepted,
    /// A reply rejected as implausible (it counts as missing).
    Rejected(Rejection),
}

/// One drive protocol as `CanRobot` uses it. The real-time methods work on the joint's [`JointCore`]; the
/// blocking sequences run over a [`DriveLink`] (the robot keeps handling every other frame meanwhile).
pub(super) trait JointDriver: Sized {
    /// The reply parts (`GOT_*` bits) a cycle needs from this joint.
    fn required_replies(&self) -> u8;

    /// Quantisation of the reported position at the link [rad].
    fn position_step(&self, map: &JointMapping) -> f64;

    /// True if `frame` (standard identifier `id`) comes from this joint's drive `node`.
    fn owns(&self, node: u8, id: u16, frame: &CanFrame) -> bool;

    /// Takes a frame this joint owns into `joint` (`stale`: received before this cycle's command). Real-time
    /// safe.
    fn receive(&mut self, joint: &mut JointCore, id: u16, frame: &CanFrame, now: Duration, stale: bool) -> Received;

    /// The frame of an active cycle for joint `index` of `command`, or a torque-free one for `None` (a refused
    /// cycle); with the number of values clamped. Real-time safe.
    fn command_frame(&self, joint: &JointCore, command: Option<(&JointCommand, usize)>) -> (CanFrame, u64);

    /// The torque-free polling frame (lifecycle not active).
    fn idle_frame(&self, node: u8) -> CanFrame;

    /// The torque-off frame (`quick_stop`: e-stop).
    fn torque_off_frame(&self, node: u8, quick_stop: bool) -> CanFrame;

    /// A protocol-specific fault of joint `index` at the end of a cycle (heartbeat, drive state, temperature).
    fn fault(
        &self,
        joint: &JointCore,
        index: usize,
        now: Duration,
        lifecycle: Lifecycle,
        config: &CanRobotConfig,
    ) -> Option<HalError>;

    /// True if the drive produces torque on command in `lifecycle`.
    fn is_enabled(&self, lifecycle: Lifecycle) -> bool;

    /// True if the protocol reports the motor temperature.
    fn reports_temperature(&self) -> bool;

    /// Start-up of joint `j`'s drive, torque-free (also after a reset). Not real-time safe.
    fn configure<L: DriveLink<Self>>(link: &mut L, j: usize) -> Result<(), HalError>;

    /// Enables joint `j`'s drive without a kick: the first torque is the first command written after it.
    /// Not real-time safe.
    fn enable<L: DriveLink<Self>>(link: &mut L, j: usize) -> Result<(), HalError>;

    /// Clears a latched drive fault before `configure` on reset. Not real-time safe.
    fn clear_fault<L: DriveLink<Self>>(link: &mut L, j: usize) -> Result<(), HalError>;
}

/// What the blocking sequences of a driver `D` need from the robot. Not real-time safe.
pub(super) trait DriveLink<D> {
    /// Joint `j`'s driver, if it is a `D`.
    fn driver(&mut self, j: usize) -> Option<&mut D>;

    /// Joint `j`'s shared state.
    fn joint(&mut self, j: usize) -> &mut JointCore;

    /// Queues `frame` on joint `j`'s bus.
    fn send(&mut self, j: usize, frame: &CanFrame) -> Result<(), HalError>;

    /// Bus time of joint `j`'s bus.
    fn now(&self, j: usize) -> Duration;

    /// From now until the running `enable()` ends (or torque goes off), the blocking exchanges of the other
    /// joints re-send `frame` (last sent to joint `j` at bus time `sent`) at the control period: joint `j`'s drive
    /// is enabled and supervises its command stream (MIT CAN timeout).
    fn hold_during_exchanges(&mut self, j: usize, frame: &CanFrame, sent: Duration);

    /// Sends `request` to joint `j`'s bus and waits (bounded) for the first frame `matcher` accepts; every
    /// frame received meanwhile is handled as usual (heartbeats, EMCY, error frames).
    fn exchange<T>(
        &mut self,
        j: usize,
        request: &CanFrame,
        matcher: impl FnMut(&CanFrame) -> Option<T>,
    ) -> Result<T, HalError>;
}

/// Joint `j`'s driver of type `D`, or an error if the joint speaks another protocol (a wiring mistake inside
/// `CanRobot`, never a drive's fault).
pub(super) fn driver_of<D, L: DriveLink<D>>(link: &mut L, j: usize) -> Result<&mut D, HalError> {
    link.driver(j).ok_or_else(|| HalError::Config {
        key: format!("joints[{j}].protocol"),
        reason: "internal: a drive sequence ran on a joint of another protocol".into(),
    })
}
