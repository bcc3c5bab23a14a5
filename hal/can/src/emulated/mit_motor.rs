//! An emulated CubeMars AK motor in MIT mode, frame by frame (manual V1.0.8 §5.3, see `crate::mit`).
//!
//! Behaviour modelled after the firmware, including the parts that caused field failures:
//! - the motor stores the last command frame even while motor mode is off, and applies it when motor mode is
//!   entered (the "kick with a stale command");
//! - every frame addressed to it (command or special code) is answered with its state;
//! - with a CAN timeout > 0 the motor leaves motor mode (torque off) when no frame arrived for that long; with 0
//!   (factory default) it keeps applying the last command forever;
//! - `τ = clamp(τ_ff + Kp (p − p_m) + Kd (v − v_m), ±T_max)` at the output shaft, evaluated each period;
//! - the reply's torque is what the plant's torque sensing reports ([`EmulatedMitMotor::measure_torque`]: the
//!   real drive estimates it from the measured q-axis current), or the commanded law without a plant reading.

use core::time::Duration;

use crate::config::JointMapping;
use crate::frame::{CanFrame, CanId};
use crate::mit::{self, MitCodec, MitCommand, MitErrorCode, MitRanges, MitReply};

/// One emulated AK motor.
#[derive(Clone, Debug)]
pub struct EmulatedMitMotor {
    id: u8,
    reply_id: u16,
    ranges: MitRanges,
    codec: MitCodec,
    map: JointMapping,
    timeout: Duration,
    motor_mode: bool,
    command: MitCommand,
    last_frame: Duration,
    zero: f64,
    reply_pending: bool,
    /// Temperature reported [°C].
    pub temperature: f64,
    /// Error code reported (and, if not `None`, torque off).
    pub error: MitErrorCode,
    position: f64,
    velocity: f64,
    delivered: f64,
    measured_torque: Option<f64>,
    timeouts: u32,
}

impl EmulatedMitMotor {
    /// A motor with id `id`, replying on CAN id `reply_id`, with `ranges`, mounted with `map` (drive ↔ link),
    /// CAN timeout `timeout` (zero = none, the factory default).
    pub fn new(id: u8, reply_id: u16, ranges: MitRanges, map: JointMapping, timeout: Duration) -> Self {
        Self {
            id,
            reply_id,
            ranges,
            codec: MitCodec::new(&ranges),
            map,
            timeout,
            motor_mode: false,
            command: MitCommand::default(),
            last_frame: Duration::ZERO,
            zero: 0.0,
            reply_pending: false,
            temperature: 30.0,
            error: MitErrorCode::None,
            position: 0.0,
            velocity: 0.0,
            delivered: 0.0,
            measured_torque: None,
            timeouts: 0,
        }
    }

    /// Motor id.
    pub fn id(&self) -> u8 {
        self.id
    }

    /// True while in motor mode.
    pub fn motor_mode(&self) -> bool {
        self.motor_mode
    }

    /// The command the drive holds (output side).
    pub fn command(&self) -> MitCommand {
        self.command
    }

    /// Plants a command in the drive's buffer as if an earlier session had left it there (test set-up for the
    /// stale-command kick).
    pub fn set_stale_command(&mut self, command: MitCommand) {
        self.command = command;
    }

    /// How many times the CAN timeout switched the motor off.
    pub fn timeouts(&self) -> u32 {
        self.timeouts
    }

    /// Handles one frame from the bus; sets a reply pending if it was addressed to this motor.
    pub fn handle(&mut self, frame: &CanFrame, now: Duration) {
        if frame.id() != CanId::Standard(u16::from(self.id)) || frame.is_remote() {
            return;
        }
        let Ok(data) = <[u8; 8]>::try_from(frame.data()) else { return };
        self.last_frame = now;
        if mit::is_special(&data) {
            match data[7] {
                0xFC => self.motor_mode = self.error == MitErrorCode::None,
                0xFD => self.motor_mode = false,
                _ => {
                    self.zero = self.raw_position();
                    self.position = 0.0;
                }
            }
        } else if let Some(cmd) = self.codec.decode_command(&data) {
            self.command = cmd;
        }
        self.reply_pending = true;
    }

    fn raw_position(&self) -> f64 {
        self.position + self.zero
    }

    /// Updates the measurement from the plant (link side): position [rad], velocity [rad/s].
    pub fn measure(&mut self, link_position: f64, link_velocity: f64) {
        self.position = self.map.drive_position(link_position) - self.zero;
        self.velocity = self.map.drive_velocity(link_velocity);
    }

    /// Updates the torque reading from the plant's torque sensing (link side) [Nm]: what the reply reports.
    pub fn measure_torque(&mut self, link_torque: f64) {
        self.measured_torque = Some(self.map.drive_torque(link_torque));
    }

    /// Link-side torque [Nm] the motor applies during the period starting at `now`.
    pub fn torque(&mut self, now: Duration) -> f64 {
        if self.motor_mode && !self.timeout.is_zero() && now.saturating_sub(self.last_frame) > self.timeout {
            self.motor_mode = false;
            self.timeouts += 1;
        }
        if !self.motor_mode || self.error != MitErrorCode::None {
            self.delivered = 0.0;
            return 0.0;
        }
        let c = self.command;
        let tau = c.torque + c.kp * (c.position - self.position) + c.kd * (c.velocity - self.velocity);
        self.delivered = tau.clamp(-self.ranges.torque_max, self.ranges.torque_max);
        self.map.link_torque(self.delivered)
    }

    /// The pending reply, if any (clears it).
    pub fn take_reply(&mut self) -> Option<CanFrame> {
        if !std::mem::take(&mut self.reply_pending) {
            return None;
        }
        let reply = MitReply {
            motor_id: self.id,
            position: self.position,
            velocity: self.velocity,
            torque: self.measured_torque.unwrap_or(self.delivered),
            temperature: self.temperature,
            error: self.error,
        };
        CanFrame::new(CanId::Standard(self.reply_id), &self.codec.encode_reply(&reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mit::AkModel;

    fn motor() -> EmulatedMitMotor {
        let map = JointMapping { ratio: 1.0, direction: 1.0, zero_offset: 0.0 };
        EmulatedMitMotor::new(3, 0, AkModel::Ak80_9.ranges(), map, Duration::from_millis(10))
    }

    #[test]
    fn applies_the_mit_law_only_in_motor_mode() {
        let mut m = motor();
        let r = AkModel::Ak80_9.ranges();
        let (cmd, _) =
            MitCommand { position: 1.0, velocity: 0.0, kp: 10.0, kd: 0.0, torque: 0.5 }.frame(3, &r).unwrap();
        m.measure(0.5, 0.0);
        m.handle(&cmd, Duration::ZERO);
        assert_eq!(m.torque(Duration::ZERO), 0.0, "not in motor mode");
        m.handle(&mit::special_frame(3, mit::ENTER_MOTOR_MODE), Duration::ZERO);
        let tau = m.torque(Duration::ZERO);
        assert!((tau - 5.5).abs() < 0.02, "0.5 + 10·(1 − 0.5) = 5.5, got {tau}");
        let reply = MitReply::decode(m.take_reply().unwrap().data(), &r).unwrap();
        assert_eq!(reply.motor_id, 3);
        assert!(m.take_reply().is_none(), "one reply per frame");
    }

    #[test]
    fn can_timeout_switches_torque_off() {
        let mut m = motor();
        let r = AkModel::Ak80_9.ranges();
        m.handle(&mit::special_frame(3, mit::ENTER_MOTOR_MODE), Duration::ZERO);
        m.handle(&MitCommand { torque: 2.0, ..MitCommand::default() }.frame(3, &r).unwrap().0, Duration::ZERO);
        assert!(m.torque(Duration::from_millis(10)).abs() > 1.9);
        assert_eq!(m.torque(Duration::from_millis(11)), 0.0);
        assert!(!m.motor_mode() && m.timeouts() == 1);
    }
}
