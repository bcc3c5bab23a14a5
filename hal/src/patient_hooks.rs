//! The runtime's link to a simulated patient: [`PatientHooks`], which a simulated backend implements beside
//! [`Robot`], and [`WithoutPatient`], which gives any hardware backend the "no virtual patient" answers.
//!
//! The runtime is generic over `R: Robot + PatientHooks`, so it never names a simulator type: the virtual
//! patient's state crosses sessions as an opaque TOML table that only the simulator reads and validates.

use crate::joint_array::JointArray;
use crate::lifecycle::Lifecycle;
use crate::robot::Robot;
use crate::types::{JointCommand, JointInfo, JointState};

/// Simulation-only hooks of a backend: the virtual patient's trial goal and outcome, its true torque, its state
/// across sessions, and whether the backend's clock is simulated. Every method has the hardware answer as its
/// default (no patient, wall clock), so a backend implements only what it has.
pub trait PatientHooks: Robot {
    /// True for a simulated plant: the supervisor's clock is then the simulated time, so an unpaced run is
    /// deterministic. Real-time safe.
    fn is_simulated(&self) -> bool {
        false
    }

    /// Tells the virtual patient the trial's goal posture [rad] and movement duration [s]. No-op on hardware
    /// (the patient sees the target on the screen). Real-time safe.
    fn patient_goal(&mut self, _goal: &JointArray<f64>, _duration: f64) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Tells the virtual patient how the trial went (drives its learning, slacking and fatigue); `error` is the
    /// joint-space distance to the target [rad], `duration` the trial's length [s]. No-op on hardware.
    fn patient_trial_end(&mut self, _error: f64, _success: bool, _duration: f64) -> Result<(), Self::Error> {
        Ok(())
    }

    /// The patient's true joint torque [Nm] (simulation only, to validate the estimate). Real-time safe.
    fn true_patient_torque(&self) -> Option<JointArray<f64>> {
        None
    }

    /// The virtual patient's trial-to-trial state, to carry to the next session, as a TOML table whose schema
    /// only the simulator knows. `None` without a virtual patient. Not real-time safe.
    fn patient_state(&self) -> Option<toml::Table> {
        None
    }

    /// Restores the virtual patient's state from an earlier session; returns `Ok(false)` when there is no
    /// virtual patient (hardware). Errors name the invalid field. Not real-time safe.
    fn restore_patient(&mut self, _state: &toml::Table) -> Result<bool, Self::Error> {
        Ok(false)
    }
}

/// A hardware backend seen by the runtime: every [`Robot`] call goes to the inner robot, every
/// [`PatientHooks`] answer is the default (no virtual patient, wall clock).
#[derive(Debug)]
pub struct WithoutPatient<R>(pub R);

impl<R: Robot> Robot for WithoutPatient<R> {
    type Error = R::Error;

    fn dof(&self) -> usize {
        self.0.dof()
    }

    fn joints(&self) -> &[JointInfo] {
        self.0.joints()
    }

    fn lifecycle(&self) -> Lifecycle {
        self.0.lifecycle()
    }

    fn read(&mut self, state: &mut JointState) -> Result<(), Self::Error> {
        self.0.read(state)
    }

    fn write(&mut self, command: &JointCommand) -> Result<(), Self::Error> {
        self.0.write(command)
    }

    fn enable(&mut self) -> Result<(), Self::Error> {
        self.0.enable()
    }

    fn disable(&mut self) -> Result<(), Self::Error> {
        self.0.disable()
    }

    fn estop(&mut self) -> Result<(), Self::Error> {
        self.0.estop()
    }

    fn reset(&mut self) -> Result<(), Self::Error> {
        self.0.reset()
    }
}

impl<R: Robot> PatientHooks for WithoutPatient<R> {}
