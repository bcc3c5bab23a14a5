//! The [`Robot`] trait: the one interface the runtime drives, implemented by the simulated plants (plexo-sim)
//! and by the CAN backend (plexo-can).

use crate::error::RobotError;
use crate::lifecycle::Lifecycle;
use crate::types::{JointCommand, JointInfo, JointState};

/// A robot the runtime can drive: simulated or real.
///
/// The runtime owns the loop, once per control period:
/// `read(&mut state)` → controller update → safety supervisor → `write(&command)`.
///
/// Contract every implementation honours (checked by [`crate::conformance::check_lifecycle_contract`], which
/// the tests of `CanRobot`, `SimOverCan` and the simulated plants run):
/// - `read` and `write` are **real-time safe**: no heap allocation, no blocking beyond the backend's bounded
///   reply timeout, no unbounded loops.
/// - Torque is only produced in [`Lifecycle::Active`]. In `Disabled` and `EStopped`, `write` accepts a zero
///   command and rejects a non-zero one with an `InvalidCommand` error; the joints stay torque-free either way
///   and the write still paces the cycle (a simulated plant advances one period, a CAN backend polls its drives
///   torque-free so the state stays observable).
/// - In [`Lifecycle::Fault`] no torque is produced either, and a backend whose own state can no longer be
///   trusted refuses every `write` with an error of kind `Fault` without advancing (a diverged simulation:
///   `SimError::Faulted`; stepping a non-finite state is meaningless). A backend that can still observe the
///   joints keeps accepting zero commands and pacing (CAN: torque-free polls, so standstill can be monitored and
///   logged). The runtime treats a `Fault`-kind error from a backend already in `Fault` as the echo of the latched
///   fault, not as a new one. Why not "always accept and advance": a safety-critical HAL must not pretend a state
///   it cannot compute; why not "always refuse": real drives must stay observable after a fault.
/// - `write` with a command that fails [`JointCommand::check`] (wrong joint count, any NaN/Inf value, a negative
///   drive-impedance gain) is rejected (`InvalidCommand`) and no torque is applied for that cycle (the cycle is still paced, torque-free).
/// - `estop` latches: torque off at once, every queued command discarded; only `reset` leaves
///   [`Lifecycle::EStopped`], into [`Lifecycle::Disabled`], and never re-sends an old command.
/// - `enable` never makes the arm jump: the first torque the joints see is the first command written after it.
/// - A simulated backend advances its time by exactly one control period per `write` it paces (every write
///   except in `Fault` after divergence).
pub trait Robot {
    /// The backend's error type.
    type Error: RobotError;

    /// Number of actuated joints.
    fn dof(&self) -> usize;

    /// Static description of each joint (names, limits), in joint order.
    fn joints(&self) -> &[JointInfo];

    /// Current lifecycle state.
    fn lifecycle(&self) -> Lifecycle;

    /// Reads the newest joint state into `state` (which must have `dof()` joints). Real-time safe.
    fn read(&mut self, state: &mut JointState) -> Result<(), Self::Error>;

    /// Sends one command for this cycle. Real-time safe.
    fn write(&mut self, command: &JointCommand) -> Result<(), Self::Error>;

    /// `Disabled` → `Active`: enables the drives with zero torque. Not real-time safe (may wait for the drives'
    /// state machines).
    fn enable(&mut self) -> Result<(), Self::Error>;

    /// `Active` → `Disabled`: torque off, drives disabled. Not real-time safe.
    fn disable(&mut self) -> Result<(), Self::Error>;

    /// Emergency stop: torque off at once and latch [`Lifecycle::EStopped`]. Real-time safe (bounded, no
    /// blocking; a backend documents any system calls it makes, e.g. `CanRobot` over SocketCAN writes the
    /// torque-off frames); must succeed locally even when the link is down (the error reports what could not be
    /// sent, the latch holds anyway).
    fn estop(&mut self) -> Result<(), Self::Error>;

    /// `EStopped`/`Fault` → `Disabled` after the cause is cleared, by explicit operator request.
    /// Not real-time safe.
    fn reset(&mut self) -> Result<(), Self::Error>;
}
