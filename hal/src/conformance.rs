//! Checks of the [`Robot`] contract (documented on the trait) that every backend's tests run: `CanRobot`
//! (`plexo-can`: `hal/can/tests/can_robot.rs`), `SimOverCan` (`hal/can/src/emulated/tests.rs`) and the simulated
//! plants (`plexo-sim`). Test support, not for the
//! real-time path.
//!
//! [`check_lifecycle_contract`] drives a fresh backend (in [`Lifecycle::Disabled`]) through the lifecycle and
//! checks, in order: joint count and names; a wrong-size `read` is refused; zero commands are accepted and
//! non-zero, wrong-size and non-finite ones refused with [`ErrorKind::InvalidCommand`] while not active; every
//! write — also a refused one — paces a simulated backend by exactly one period; `enable` → `Active`; a
//! non-finite command is refused while active without leaving `Active`; `estop` latches [`Lifecycle::EStopped`],
//! refuses torque and `enable` ([`ErrorKind::InvalidState`]); `reset` → `Disabled` and never re-enables; `enable`
//! and `disable` round-trip. The backend ends `Disabled`.

use core::time::Duration;

use crate::error::{ErrorKind, RobotError};
use crate::lifecycle::Lifecycle;
use crate::robot::Robot;
use crate::types::{JointCommand, JointState};

/// A violated clause of the contract.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("Robot contract violated at `{check}`: {detail}")]
pub struct ConformanceFailure {
    /// The clause (short name of the check).
    pub check: &'static str,
    /// What happened instead.
    pub detail: String,
}

fn fail<T>(check: &'static str, detail: impl Into<String>) -> Result<T, ConformanceFailure> {
    Err(ConformanceFailure { check, detail: detail.into() })
}

/// What the check exercised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ConformanceReport {
    /// Clauses checked.
    pub checks: u32,
    /// `write` calls made.
    pub writes: u32,
}

struct Checker<'a, R: Robot> {
    robot: &'a mut R,
    state: JointState,
    period: Option<Duration>,
    report: ConformanceReport,
}

impl<R: Robot> Checker<'_, R> {
    fn ok(&mut self) {
        self.report.checks += 1;
    }

    fn expect_lifecycle(&mut self, check: &'static str, want: Lifecycle) -> Result<(), ConformanceFailure> {
        let got = self.robot.lifecycle();
        if got != want {
            return fail(check, format!("lifecycle {got:?}, expected {want:?}"));
        }
        self.ok();
        Ok(())
    }

    /// Writes `command`, expecting `Ok` (`None`) or an error of kind `Some(kind)`; then reads and checks that a
    /// simulated backend advanced by exactly one period.
    fn write(
        &mut self,
        check: &'static str,
        command: &JointCommand,
        want: Option<ErrorKind>,
    ) -> Result<(), ConformanceFailure> {
        let before = self.state.stamp;
        let result = self.robot.write(command);
        self.report.writes += 1;
        match (&result, want) {
            (Ok(()), None) => {}
            (Err(e), Some(kind)) if e.kind() == kind => {}
            (Ok(()), Some(kind)) => return fail(check, format!("accepted, expected an error of kind {kind:?}")),
            (Err(e), _) => return fail(check, format!("error {e} (kind {:?}), expected {want:?}", e.kind())),
        }
        self.ok();
        if let Some(period) = self.period {
            // Reading after a fault may report the fault; only the time stamp matters here.
            if let Err(e) = self.robot.read(&mut self.state)
                && e.kind() == ErrorKind::InvalidCommand
            {
                return fail(check, format!("read after write refused the state buffer: {e}"));
            }
            let advanced = self.state.stamp.saturating_sub(before);
            if self.state.stamp < before || advanced.abs_diff(period) > Duration::from_micros(1) {
                return fail(
                    check,
                    format!("a write must pace one period {period:?}; time went {before:?} → {:?}", self.state.stamp),
                );
            }
            self.ok();
        }
        Ok(())
    }
}

/// Drives a fresh backend (lifecycle `Disabled`) through the contract; `period` is `Some(control period)` for a
/// simulated backend (time must advance by exactly one period per `write`), `None` for hardware-like backends
/// whose clock runs on its own. Ends in `Disabled`. Not real-time safe.
pub fn check_lifecycle_contract<R: Robot>(
    robot: &mut R,
    period: Option<Duration>,
) -> Result<ConformanceReport, ConformanceFailure> {
    let dof = robot.dof();
    if dof == 0 || robot.joints().len() != dof {
        return fail("dof", format!("dof() = {dof}, joints().len() = {}", robot.joints().len()));
    }
    if robot.joints().iter().any(|j| {
        j.name.is_empty() || j.position_min >= j.position_max || j.position_min.is_nan() || j.position_max.is_nan()
    }) {
        return fail("joints", "every joint needs a name and position_min < position_max");
    }
    let mut c = Checker { robot, state: JointState::zeros(dof), period, report: ConformanceReport::default() };
    c.ok();
    c.expect_lifecycle("starts disabled", Lifecycle::Disabled)?;

    let mut wrong = JointState::zeros(dof + 1);
    if c.robot.read(&mut wrong).is_ok() {
        return fail("read with the wrong joint count", "accepted a state buffer of dof + 1 joints");
    }
    c.ok();
    if let Err(e) = c.robot.read(&mut c.state) {
        return fail("read while disabled", e.to_string());
    }
    if !c.state.is_finite() {
        return fail("read while disabled", format!("non-finite state {:?}", c.state));
    }
    c.ok();

    let zero = JointCommand::zeros(dof);
    let mut torque = JointCommand::zeros(dof);
    torque.torque[0] = 0.01;
    let mut nan = JointCommand::zeros(dof);
    nan.torque[dof - 1] = f64::NAN;
    let wrong_size = JointCommand::zeros(dof + 1);

    c.write("zero command while disabled is accepted", &zero, None)?;
    c.write("torque while disabled is refused", &torque, Some(ErrorKind::InvalidCommand))?;
    c.write("wrong joint count is refused", &wrong_size, Some(ErrorKind::InvalidCommand))?;
    c.write("non-finite command is refused", &nan, Some(ErrorKind::InvalidCommand))?;
    c.expect_lifecycle("refused writes do not change the lifecycle", Lifecycle::Disabled)?;

    if let Err(e) = c.robot.enable() {
        return fail("enable from disabled", e.to_string());
    }
    c.expect_lifecycle("enable → active", Lifecycle::Active)?;
    c.write("zero command while active", &zero, None)?;
    c.write("non-finite command is refused while active", &nan, Some(ErrorKind::InvalidCommand))?;
    c.expect_lifecycle("a refused command does not leave active", Lifecycle::Active)?;
    c.write("torque while active", &torque, None)?;

    // The latch must hold even if sending torque off failed (the error reports what could not be sent).
    let _estop_result = c.robot.estop();
    c.expect_lifecycle("estop latches", Lifecycle::EStopped)?;
    c.write("torque while e-stopped is refused", &torque, Some(ErrorKind::InvalidCommand))?;
    c.write("zero command while e-stopped is accepted", &zero, None)?;
    match c.robot.enable() {
        Err(e) if e.kind() == ErrorKind::InvalidState => c.ok(),
        Err(e) => return fail("enable while e-stopped is refused", format!("error of kind {:?}: {e}", e.kind())),
        Ok(()) => return fail("enable while e-stopped is refused", "enable succeeded"),
    }
    c.expect_lifecycle("estop latches until reset", Lifecycle::EStopped)?;

    if let Err(e) = c.robot.reset() {
        return fail("reset from e-stopped", e.to_string());
    }
    c.expect_lifecycle("reset → disabled", Lifecycle::Disabled)?;
    c.write("reset never re-enables", &torque, Some(ErrorKind::InvalidCommand))?;
    if let Err(e) = c.robot.enable() {
        return fail("enable after reset", e.to_string());
    }
    c.expect_lifecycle("enable after reset", Lifecycle::Active)?;
    if let Err(e) = c.robot.disable() {
        return fail("disable", e.to_string());
    }
    c.expect_lifecycle("disable → disabled", Lifecycle::Disabled)?;
    c.write("zero command after disable", &zero, None)?;
    Ok(c.report)
}
