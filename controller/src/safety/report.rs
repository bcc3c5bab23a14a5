//! What the controller tells the supervisor each tick besides its command: the controller → supervisor
//! interface, so that the controller needs nothing else of the supervisor.

use plexo_hal::JointArray;

/// What the controller tells the supervisor each tick besides its command.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ControllerReport {
    /// Estimated patient–robot interaction torque per joint [Nm] (momentum observer, fused with a cuff sensor
    /// when present). Used for spasm detection.
    pub interaction_torque: JointArray<f64>,
    /// Torque that holds the robot and the supported share of the arm against gravity [Nm]; used as the hold
    /// term in SafeStop and CompliantRelease. The controller computes it whenever the measured positions are
    /// finite, also on ticks whose other inputs are not (a NaN reference must not drop the arm).
    pub hold_torque: JointArray<f64>,
    /// False if any controller input (reference, gains, adapted parameters) was NaN or infinite this tick.
    pub inputs_finite: bool,
}

impl ControllerReport {
    /// A report with zero estimates and finite inputs for `dof` joints. Real-time safe.
    pub fn zeros(dof: usize) -> Self {
        Self {
            interaction_torque: JointArray::splat(dof, 0.0),
            hold_torque: JointArray::splat(dof, 0.0),
            inputs_finite: true,
        }
    }

    /// True if the inputs were finite and every estimate is finite. Real-time safe.
    pub(super) fn is_finite(&self) -> bool {
        self.inputs_finite && self.interaction_torque.all_finite() && self.hold_torque.all_finite()
    }
}
