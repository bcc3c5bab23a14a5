//! The [`Robot`] implementation of [`CanRobot`]: the cycle's `read` and `write`, and the lifecycle transitions
//! (see the safety behaviour in the module docs of `CanRobot`).

use core::time::Duration;

use plexo_hal::{HalError, JointArray, JointCommand, JointFlags, JointInfo, JointState, Lifecycle, MAX_JOINTS, Robot};

use super::plausibility::Rejection;
use super::{CanRobot, MAX_FRAMES_PER_READ, driver};
use crate::bus::{BusState, CanBus};

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
        let mut temperatures = JointArray::splat(self.joints.len(), 0.0);
        let max_missed = self.config.max_missed_cycles;
        let mut warning = [false; MAX_JOINTS];
        for (b, w) in warning.iter_mut().enumerate().take(self.buses.len()) {
            *w = matches!(self.bus_state(b), Some(BusState::ErrorWarning | BusState::ErrorPassive));
        }
        for (i, slot) in self.joints.iter_mut().enumerate() {
            let joint = &mut slot.core;
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
            if !slot.driver.is_enabled(self.lifecycle) {
                flags.insert(JointFlags::NOT_ENABLED);
            }
            if slot.driver.reports_temperature() {
                if joint.temperature >= self.config.temperature_limit_c {
                    flags.insert(JointFlags::OVER_TEMPERATURE);
                } else if joint.temperature >= self.config.temperature_warning_c {
                    flags.insert(JointFlags::WARNING_TEMPERATURE);
                }
            }
            state.flags[i] = flags;
        }
        state.temperature = if self.all_report_temperature { Some(temperatures) } else { None };
        if let Some(e) = fault {
            self.safe_stop();
            return Err(e);
        }
        first.map_or(Ok(()), Err)
    }

    /// Sends this cycle's command (see the module docs for refused input: [`JointCommand::check`]). First
    /// handles what arrived since the last `read` (replies then are stale). Real-time safe.
    fn write(&mut self, command: &JointCommand) -> Result<(), HalError> {
        let mut first = None;
        self.drain_before_command(&mut first);
        let n = self.joints.len();
        let active = self.lifecycle == Lifecycle::Active;
        if let Err(refusal) = command.check(n) {
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
        self.holds.iter_mut().for_each(|h| *h = None);
        for j in 0..self.joints.len() {
            if let Err(e) = driver::enable(self, j) {
                // Torque-off failures are counted in `stats.torque_off_failures`; the enable failure is the
                // error reported.
                let _ = self.torque_off(false);
                return Err(e);
            }
        }
        // The cyclic commands take over from the enable's hold keep-alive.
        self.holds.iter_mut().for_each(|h| *h = None);
        for slot in &mut self.joints {
            let joint = &mut slot.core;
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
    /// [`super::CanRobotStats::torque_off_failures`].
    fn estop(&mut self) -> Result<(), HalError> {
        self.lifecycle = Lifecycle::EStopped;
        for slot in &mut self.joints {
            slot.core.awaiting = false;
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
            // The cyclic SYNC restarts with the first cycle after the reset: none while the drives are
            // reconfigured (see `CanRobot::keep_alive`).
            self.buses[b].last_sync = None;
            // Error frames and stale replies from before the reset are not news any more.
            for _ in 0..MAX_FRAMES_PER_READ {
                if self.buses[b].bus.receive(Duration::ZERO)?.is_none() {
                    break;
                }
            }
        }
        for j in 0..self.joints.len() {
            driver::clear_fault(self, j)?;
            self.configure_joint(j)?;
        }
        for slot in &mut self.joints {
            let joint = &mut slot.core;
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
