//! [`Driver`]: the joint drivers of a robot in one enum (static dispatch, no trait objects in the loop). Each
//! method forwards to the protocol's [`JointDriver`] implementation; this file is the only place that lists the
//! protocols.

use core::time::Duration;

use plexo_hal::{HalError, JointCommand, Lifecycle};

use super::cia402_driver::Cia402Driver;
use super::joint::{DriveLink, JointCore, JointDriver, Received};
use super::mit_driver::MitDriver;
use crate::config::{CanRobotConfig, JointConfig};
use crate::frame::CanFrame;
use crate::mit::AkModel;
use crate::planner::DriveProtocol;

/// The driver of one joint.
#[derive(Clone, Copy, Debug)]
pub(super) enum Driver {
    /// CubeMars AK in MIT mode.
    Mit(MitDriver),
    /// CiA 402 drive (cyclic synchronous torque).
    Cia402(Cia402Driver),
}

macro_rules! forward {
    ($self:ident, $d:ident => $e:expr) => {
        match $self {
            Driver::Mit($d) => $e,
            Driver::Cia402($d) => $e,
        }
    };
}

impl Driver {
    /// The driver of joint `j` of `config`.
    pub fn new(j: &JointConfig, config: &CanRobotConfig) -> Self {
        match j.protocol {
            DriveProtocol::Mit => Driver::Mit(MitDriver {
                codec: crate::mit::MitCodec::new(&j.mit_ranges().unwrap_or(AkModel::Ak80_9.ranges())),
                torque_field: j.mit.map(|m| m.torque_field).unwrap_or_default(),
                torque_constant: j.torque_constant,
                reply_id: j.mit.map_or(0, |m| m.reply_can_id),
            }),
            DriveProtocol::Cia402 => Driver::Cia402(Cia402Driver::new(j.cia402.unwrap_or_default(), config)),
        }
    }

    /// See [`JointDriver::required_replies`].
    pub fn required_replies(&self) -> u8 {
        forward!(self, d => d.required_replies())
    }

    /// See [`JointDriver::owns`].
    pub fn owns(&self, node: u8, id: u16, frame: &CanFrame) -> bool {
        forward!(self, d => d.owns(node, id, frame))
    }

    /// See [`JointDriver::receive`].
    pub fn receive(
        &mut self,
        joint: &mut JointCore,
        id: u16,
        frame: &CanFrame,
        now: Duration,
        stale: bool,
    ) -> Received {
        forward!(self, d => d.receive(joint, id, frame, now, stale))
    }

    /// See [`JointDriver::command_frame`].
    pub fn command_frame(&self, joint: &JointCore, command: Option<(&JointCommand, usize)>) -> (CanFrame, u64) {
        forward!(self, d => d.command_frame(joint, command))
    }

    /// See [`JointDriver::idle_frame`].
    pub fn idle_frame(&self, node: u8) -> CanFrame {
        forward!(self, d => d.idle_frame(node))
    }

    /// See [`JointDriver::torque_off_frame`].
    pub fn torque_off_frame(&self, node: u8, quick_stop: bool) -> CanFrame {
        forward!(self, d => d.torque_off_frame(node, quick_stop))
    }

    /// See [`JointDriver::fault`].
    pub fn fault(
        &self,
        joint: &JointCore,
        index: usize,
        now: Duration,
        lifecycle: Lifecycle,
        config: &CanRobotConfig,
    ) -> Option<HalError> {
        forward!(self, d => d.fault(joint, index, now, lifecycle, config))
    }

    /// See [`JointDriver::is_enabled`].
    pub fn is_enabled(&self, lifecycle: Lifecycle) -> bool {
        forward!(self, d => d.is_enabled(lifecycle))
    }

    /// See [`JointDriver::reports_temperature`].
    pub fn reports_temperature(&self) -> bool {
        forward!(self, d => d.reports_temperature())
    }
}

/// A robot whose joints the blocking sequences of every protocol can run on.
pub(super) trait Link: DriveLink<MitDriver> + DriveLink<Cia402Driver> {
    /// Joint `j`'s driver.
    fn driver_at(&self, j: usize) -> &Driver;
}

/// Start-up of joint `j`'s drive (see [`JointDriver::configure`]). Not real-time safe.
pub(super) fn configure<L: Link>(link: &mut L, j: usize) -> Result<(), HalError> {
    if matches!(link.driver_at(j), Driver::Mit(_)) {
        MitDriver::configure(link, j)
    } else {
        Cia402Driver::configure(link, j)
    }
}

/// Enable of joint `j`'s drive (see [`JointDriver::enable`]). Not real-time safe.
pub(super) fn enable<L: Link>(link: &mut L, j: usize) -> Result<(), HalError> {
    if matches!(link.driver_at(j), Driver::Mit(_)) { MitDriver::enable(link, j) } else { Cia402Driver::enable(link, j) }
}

/// Fault reset of joint `j`'s drive (see [`JointDriver::clear_fault`]). Not real-time safe.
pub(super) fn clear_fault<L: Link>(link: &mut L, j: usize) -> Result<(), HalError> {
    if matches!(link.driver_at(j), Driver::Mit(_)) {
        MitDriver::clear_fault(link, j)
    } else {
        Cia402Driver::clear_fault(link, j)
    }
}
