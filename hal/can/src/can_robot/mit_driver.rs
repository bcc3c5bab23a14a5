//! The CubeMars MIT-mode joint driver: one command frame per cycle, answered by one reply (position, velocity,
//! torque or current, temperature, error code); start-up and enable by the special frames.

use core::time::Duration;

use plexo_hal::{HalError, JointCommand, Lifecycle};

use super::joint::{DriveLink, GOT_MAIN, JointCore, JointDriver, Received, driver_of};
use crate::config::{CanRobotConfig, JointMapping, MitTorqueField};
use crate::frame::{CanFrame, CanId};
use crate::mit::{self, MitCodec, MitCommand, MitErrorCode, MitReply};

/// A joint driven by a CubeMars AK motor in MIT mode.
#[derive(Clone, Copy, Debug)]
pub(super) struct MitDriver {
    /// The motor's field ranges, precomputed.
    pub codec: MitCodec,
    /// What the reply's torque field carries on this firmware.
    pub torque_field: MitTorqueField,
    /// Torque constant [Nm/A] (for a current field).
    pub torque_constant: f64,
    /// CAN id the motor replies with (0 on current firmware; else its node id).
    pub reply_id: u16,
}

impl MitDriver {
    /// Sends `request` and waits for the motor's reply.
    fn exchange<L: DriveLink<Self>>(link: &mut L, j: usize, request: CanFrame) -> Result<MitReply, HalError> {
        let node = link.joint(j).node;
        let d = *driver_of(link, j)?;
        link.exchange(j, &request, |f| match f.id() {
            CanId::Standard(id) if (id == d.reply_id || id == u16::from(node)) && f.data().first() == Some(&node) => {
                d.codec.decode_reply(f.data())
            }
            _ => None,
        })
    }
}

impl JointDriver for MitDriver {
    fn required_replies(&self) -> u8 {
        GOT_MAIN
    }

    fn position_step(&self, map: &JointMapping) -> f64 {
        self.codec.position_step() / map.ratio
    }

    fn owns(&self, node: u8, id: u16, frame: &CanFrame) -> bool {
        frame.data().first() == Some(&node) && (id == self.reply_id || id == u16::from(node))
    }

    fn receive(&mut self, joint: &mut JointCore, _id: u16, frame: &CanFrame, now: Duration, stale: bool) -> Received {
        let Some(reply) = self.codec.decode_reply(frame.data()) else { return Received::Ignored };
        if stale {
            return Received::Stale;
        }
        let drive_torque = match self.torque_field {
            MitTorqueField::Torque => reply.torque,
            MitTorqueField::Current => reply.torque * self.torque_constant,
        };
        let position = joint.map.link_position(reply.position);
        let velocity = joint.map.link_velocity(reply.velocity);
        let step = self.position_step(&joint.map);
        if let Some(why) = joint.check_position(position, now, step).or_else(|| joint.check_velocity(velocity)) {
            // A fault code is taken even from a rejected reply: the safe direction.
            joint.drive_flags.insert(reply.error.flags());
            return Received::Rejected(why);
        }
        joint.position = position;
        joint.velocity = velocity;
        joint.torque = joint.map.link_torque(drive_torque);
        joint.temperature = reply.temperature;
        joint.drive_flags = reply.error.flags();
        joint.got |= GOT_MAIN;
        joint.last_reply = now;
        joint.accepted_at = Some(now);
        Received::Accepted
    }

    fn command_frame(&self, joint: &JointCore, command: Option<(&JointCommand, usize)>) -> (CanFrame, u64) {
        let mut clamped = 0;
        let map = &joint.map;
        let cmd = match command {
            None => MitCommand::hold_free(map.drive_position(joint.position)),
            Some((command, j)) => {
                let tau = joint.clamp_torque(command.torque[j], &mut clamped);
                let mut cmd = MitCommand::hold_free(map.drive_position(joint.position));
                cmd.torque = map.drive_torque(tau);
                if let Some(d) = &command.drive_impedance {
                    cmd.position = map.drive_position(d.position[j]);
                    cmd.velocity = map.drive_velocity(d.velocity[j]);
                    cmd.kp = map.drive_gain(d.stiffness[j]);
                    cmd.kd = map.drive_gain(d.damping[j]);
                }
                if self.torque_field == MitTorqueField::Current {
                    cmd.torque /= self.torque_constant;
                }
                cmd
            }
        };
        // At the joint's torque limit the code is rounded toward zero: a clamped torque never goes out above it.
        let mut torque_limit = (joint.limits.torque_max / map.ratio).abs();
        if self.torque_field == MitTorqueField::Current {
            torque_limit /= self.torque_constant;
        }
        match cmd.frame_within(joint.node, &self.codec, torque_limit) {
            Some((frame, c)) => (frame, clamped + u64::from(c.fields)),
            // Unreachable for checked commands (`JointCommand::check` in `write`); never send garbage:
            // torque-free.
            None => (mit::special_frame(joint.node, mit::EXIT_MOTOR_MODE), clamped),
        }
    }

    fn idle_frame(&self, node: u8) -> CanFrame {
        mit::special_frame(node, mit::EXIT_MOTOR_MODE)
    }

    fn torque_off_frame(&self, node: u8, _quick_stop: bool) -> CanFrame {
        mit::special_frame(node, mit::EXIT_MOTOR_MODE)
    }

    fn fault(
        &self,
        joint: &JointCore,
        index: usize,
        _now: Duration,
        _lifecycle: Lifecycle,
        config: &CanRobotConfig,
    ) -> Option<HalError> {
        (joint.temperature >= config.temperature_limit_c).then_some(HalError::LimitViolation {
            joint: index,
            quantity: "motor temperature [°C]",
            value: joint.temperature,
            min: f64::NEG_INFINITY,
            max: config.temperature_limit_c,
        })
    }

    fn is_enabled(&self, lifecycle: Lifecycle) -> bool {
        lifecycle == Lifecycle::Active
    }

    fn reports_temperature(&self) -> bool {
        true
    }

    /// Polls the motor with *exit motor mode* (it answers with its state).
    fn configure<L: DriveLink<Self>>(link: &mut L, j: usize) -> Result<(), HalError> {
        let node = link.joint(j).node;
        Self::exchange(link, j, mit::special_frame(node, mit::EXIT_MOTOR_MODE))?;
        Ok(())
    }

    /// Measures the position torque-free, overwrites whatever command the drive holds with a zero-gain
    /// zero-torque one at that position, enters motor mode and sends the hold again; the later joints'
    /// exchanges then repeat that hold at the control period until `enable()` ends.
    fn enable<L: DriveLink<Self>>(link: &mut L, j: usize) -> Result<(), HalError> {
        let node = link.joint(j).node;
        let measured = Self::exchange(link, j, mit::special_frame(node, mit::EXIT_MOTOR_MODE))?;
        if measured.error != MitErrorCode::None {
            return Err(HalError::DriveFault { joint: j, detail: format!("node {node}: {:?}", measured.error) });
        }
        // No kick: overwrite whatever command the drive holds with a torque-free one at the measured
        // position *before* entering motor mode.
        let codec = driver_of(link, j)?.codec;
        let hold = MitCommand::hold_free(measured.position)
            .frame_with(node, &codec)
            .map(|(f, _)| f)
            .ok_or(HalError::Protocol { joint: j, node_id: node, detail: "measured position not finite".into() })?;
        Self::exchange(link, j, hold)?;
        Self::exchange(link, j, mit::special_frame(node, mit::ENTER_MOTOR_MODE))?;
        let sent = link.now(j);
        Self::exchange(link, j, hold)?;
        // In motor mode from here on: its CAN timeout runs from the hold just sent. Until the cyclic commands
        // start, the next joints' exchanges keep sending it this hold at the control period
        // (`CanRobot::keep_alive`).
        link.hold_during_exchanges(j, &hold, sent);
        Ok(())
    }

    /// Nothing to clear: the motor has no latched state beyond motor mode, which `configure` leaves.
    fn clear_fault<L: DriveLink<Self>>(_link: &mut L, _j: usize) -> Result<(), HalError> {
        Ok(())
    }
}
