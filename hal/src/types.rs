//! The data every backend exchanges with the runtime: joint state, joint command (and its one validation,
//! [`JointCommand::check`]), joint description.

use core::time::Duration;

use crate::error::HalError;
use crate::joint_array::JointArray;

/// Fault and status flags of one joint, as a drive reports them or a backend derives them.
///
/// A small bit set (not a crate: four lines of logic). Any flag except the advisory ones
/// ([`JointFlags::WARNING_TEMPERATURE`], [`JointFlags::CLAMPED`], [`JointFlags::REPLY_MISSED`],
/// [`JointFlags::BUS_WARNING`]) means the joint cannot be trusted to produce torque.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct JointFlags(u16);

impl JointFlags {
    /// No flag set.
    pub const NONE: Self = Self(0);
    /// The drive reports a fault (any vendor error code). See the backend's log for the code.
    pub const DRIVE_FAULT: Self = Self(1 << 0);
    /// Over-current / over-voltage / under-voltage reported by the drive.
    pub const POWER: Self = Self(1 << 1);
    /// Motor or drive temperature above the hard limit.
    pub const OVER_TEMPERATURE: Self = Self(1 << 2);
    /// Motor or drive temperature above the soft limit (torque is derated, not stopped).
    pub const WARNING_TEMPERATURE: Self = Self(1 << 3);
    /// Encoder fault or implausible position (jump, stuck value).
    pub const ENCODER: Self = Self(1 << 4);
    /// The link to the drive is lost: no valid reply for the backend's limit of consecutive cycles (CAN:
    /// `max_missed_cycles`, default 3); the backend has latched a fault. The values are the last good ones.
    pub const NO_REPLY: Self = Self(1 << 5);
    /// The drive is not in its torque-enabled state.
    pub const NOT_ENABLED: Self = Self(1 << 6);
    /// A value was out of the protocol's range and had to be clamped before sending.
    pub const CLAMPED: Self = Self(1 << 7);
    /// Advisory: this cycle's reply is missing or was rejected (late, implausible), fewer times in a row than the
    /// backend's limit; the values are the last good ones, at most that many cycles old. At the limit the backend
    /// faults and sets [`JointFlags::NO_REPLY`].
    pub const REPLY_MISSED: Self = Self(1 << 8);
    /// Advisory: the joint's CAN controller reports error warning or error passive (errors on the bus; frames
    /// still flow). Telemetry shows it; loss of frames is caught by the reply accounting.
    pub const BUS_WARNING: Self = Self(1 << 9);
    /// The flags that do not forbid torque.
    const ADVISORY: u16 = Self::WARNING_TEMPERATURE.0 | Self::CLAMPED.0 | Self::REPLY_MISSED.0 | Self::BUS_WARNING.0;

    /// Raw bits.
    pub const fn bits(self) -> u16 {
        self.0
    }
    /// True if every flag of `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
    /// True if any flag of `other` is set in `self`.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }
    /// Clears the flags of `other`.
    pub fn remove(&mut self, other: Self) {
        self.0 &= !other.0;
    }
    /// True if no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// True if a flag that forbids torque is set (everything but the advisory temperature warning, clamping,
    /// a single missed reply and a bus warning).
    pub const fn is_fault(self) -> bool {
        self.0 & !Self::ADVISORY != 0
    }
}

impl core::ops::BitOr for JointFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl core::fmt::Debug for JointFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [(JointFlags, &str); 10] = [
            (JointFlags::DRIVE_FAULT, "DRIVE_FAULT"),
            (JointFlags::POWER, "POWER"),
            (JointFlags::OVER_TEMPERATURE, "OVER_TEMPERATURE"),
            (JointFlags::WARNING_TEMPERATURE, "WARNING_TEMPERATURE"),
            (JointFlags::ENCODER, "ENCODER"),
            (JointFlags::NO_REPLY, "NO_REPLY"),
            (JointFlags::NOT_ENABLED, "NOT_ENABLED"),
            (JointFlags::CLAMPED, "CLAMPED"),
            (JointFlags::REPLY_MISSED, "REPLY_MISSED"),
            (JointFlags::BUS_WARNING, "BUS_WARNING"),
        ];
        let mut list = f.debug_set();
        for (flag, name) in NAMES {
            if self.contains(flag) {
                list.entry(&format_args!("{name}"));
            }
        }
        list.finish()
    }
}

/// One sample of the robot's joints, filled by `Robot::read`.
///
/// Allocation-free and `Copy`: the runtime keeps one and the telemetry thread receives copies.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct JointState {
    /// Monotonic time of the sample since the backend started [s]. On hardware the receive time of the last
    /// reply; in simulation the simulated time.
    pub stamp: Duration,
    /// Joint positions [rad] (link side, after gear ratio, direction and zero offset).
    pub position: JointArray<f64>,
    /// Joint velocities [rad/s].
    pub velocity: JointArray<f64>,
    /// Joint torques [Nm] at the link: measured by the drive (current × torque constant × gear ratio) or, in
    /// simulation, the torque the motor model actually delivered.
    pub torque: JointArray<f64>,
    /// Patient–robot interaction torque per joint [Nm] from a cuff force/torque sensor, if the robot has one.
    /// Positive when the patient pushes the joint in its positive direction.
    pub interaction_torque: Option<JointArray<f64>>,
    /// Motor winding or drive temperature per joint [°C], if the drives report it.
    pub temperature: Option<JointArray<f64>>,
    /// Status and fault flags per joint.
    pub flags: JointArray<JointFlags>,
}

impl JointState {
    /// A zeroed state for `dof` joints with no sensors beyond position, velocity and torque. Real-time safe.
    pub fn zeros(dof: usize) -> Self {
        Self {
            stamp: Duration::ZERO,
            position: JointArray::splat(dof, 0.0),
            velocity: JointArray::splat(dof, 0.0),
            torque: JointArray::splat(dof, 0.0),
            interaction_torque: None,
            temperature: None,
            flags: JointArray::splat(dof, JointFlags::NONE),
        }
    }

    /// Number of joints.
    pub fn dof(&self) -> usize {
        self.position.len()
    }

    /// True if every number in the state is finite (the first check the safety supervisor makes).
    /// Real-time safe.
    pub fn is_finite(&self) -> bool {
        self.position.all_finite()
            && self.velocity.all_finite()
            && self.torque.all_finite()
            && self.interaction_torque.is_none_or(|t| t.all_finite())
            && self.temperature.is_none_or(|t| t.all_finite())
    }

    /// Index of the first joint with a fault flag, if any. Real-time safe.
    pub fn first_faulted_joint(&self) -> Option<usize> {
        self.flags.iter().position(|f| f.is_fault())
    }
}

/// Set-points for drives that close a local impedance loop (CubeMars "MIT mode"):
/// `τ_motor = τ_ff + stiffness (position − q) + damping (velocity − q̇)`, all at the link side.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct DriveImpedance {
    /// Desired position [rad].
    pub position: JointArray<f64>,
    /// Desired velocity [rad/s].
    pub velocity: JointArray<f64>,
    /// Stiffness [Nm/rad], ≥ 0.
    pub stiffness: JointArray<f64>,
    /// Damping [Nm·s/rad], ≥ 0.
    pub damping: JointArray<f64>,
}

/// What the runtime sends to the robot each cycle, after the safety supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct JointCommand {
    /// Feed-forward joint torque [Nm] at the link side.
    pub torque: JointArray<f64>,
    /// Optional drive-side impedance loop. `None` for pure torque control (the default and the only mode
    /// backends without a local loop support).
    pub drive_impedance: Option<DriveImpedance>,
}

impl JointCommand {
    /// A zero-torque command for `dof` joints (drives hold no torque). Real-time safe.
    pub fn zeros(dof: usize) -> Self {
        Self { torque: JointArray::splat(dof, 0.0), drive_impedance: None }
    }

    /// Number of joints.
    pub fn dof(&self) -> usize {
        self.torque.len()
    }

    /// True if the command asks for no torque at all: zero feed-forward and no drive impedance (or an impedance
    /// with zero gains). Real-time safe.
    pub fn is_zero(&self) -> bool {
        self.torque.iter().all(|t| *t == 0.0)
            && self.drive_impedance.is_none_or(|d| d.stiffness.iter().chain(d.damping.iter()).all(|g| *g == 0.0))
    }

    /// The one validation of a command every backend runs before acting on it: `dof` joints in the torque and
    /// in every drive-impedance array ([`HalError::JointCountMismatch`]), every value finite
    /// ([`HalError::NonFiniteCommand`], field `torque` or `drive_impedance.<field>`), stiffness [Nm/rad] and
    /// damping [Nm·s/rad] not negative ([`HalError::NegativeGain`]). Checked in that order; the error names the
    /// first offending joint. Whether torque is allowed in the current lifecycle is the backend's check.
    /// Real-time safe (no allocation).
    pub fn check(&self, dof: usize) -> Result<(), HalError> {
        if self.torque.len() != dof {
            return Err(HalError::JointCountMismatch { expected: dof, got: self.torque.len() });
        }
        if let Some(joint) = self.torque.iter().position(|t| !t.is_finite()) {
            return Err(HalError::NonFiniteCommand { joint, field: "torque" });
        }
        let Some(imp) = &self.drive_impedance else { return Ok(()) };
        let fields: [(&JointArray<f64>, &'static str); 4] = [
            (&imp.position, "drive_impedance.position"),
            (&imp.velocity, "drive_impedance.velocity"),
            (&imp.stiffness, "drive_impedance.stiffness"),
            (&imp.damping, "drive_impedance.damping"),
        ];
        for (values, _) in fields {
            if values.len() != dof {
                return Err(HalError::JointCountMismatch { expected: dof, got: values.len() });
            }
        }
        for (values, field) in fields {
            if let Some(joint) = values.iter().position(|x| !x.is_finite()) {
                return Err(HalError::NonFiniteCommand { joint, field });
            }
        }
        for (values, field) in &fields[2..] {
            if let Some(joint) = values.iter().position(|x| *x < 0.0) {
                return Err(HalError::NegativeGain { joint, field });
            }
        }
        Ok(())
    }

    /// True if every number in the command is finite. Real-time safe.
    pub fn is_finite(&self) -> bool {
        self.torque.all_finite()
            && self.drive_impedance.is_none_or(|d| {
                d.position.all_finite() && d.velocity.all_finite() && d.stiffness.all_finite() && d.damping.all_finite()
            })
    }
}

/// Static description of one joint as the backend knows it (from the URDF and the drive configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct JointInfo {
    /// Joint name, as in the URDF.
    pub name: String,
    /// Lower position limit [rad].
    pub position_min: f64,
    /// Upper position limit [rad].
    pub position_max: f64,
    /// Velocity limit [rad/s] (absolute).
    pub velocity_max: f64,
    /// Torque limit [Nm] at the link (absolute).
    pub torque_max: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_fault_classification() {
        assert!(!JointFlags::NONE.is_fault());
        assert!(!JointFlags::WARNING_TEMPERATURE.is_fault());
        assert!(!(JointFlags::WARNING_TEMPERATURE | JointFlags::CLAMPED).is_fault());
        assert!(!(JointFlags::REPLY_MISSED | JointFlags::BUS_WARNING).is_fault(), "advisory only");
        assert!(JointFlags::NO_REPLY.is_fault());
        assert!((JointFlags::CLAMPED | JointFlags::ENCODER).is_fault());
        let mut f = JointFlags::NONE;
        f.insert(JointFlags::POWER);
        assert!(f.contains(JointFlags::POWER));
        f.remove(JointFlags::POWER);
        assert!(f.is_empty());
        assert_eq!(format!("{:?}", JointFlags::ENCODER | JointFlags::POWER), "{POWER, ENCODER}");
    }

    #[test]
    fn state_finiteness_covers_optional_sensors() {
        let mut s = JointState::zeros(4);
        assert!(s.is_finite());
        let mut tau = JointArray::splat(4, 0.0);
        tau[3] = f64::NAN;
        s.interaction_torque = Some(tau);
        assert!(!s.is_finite());
    }

    #[test]
    fn command_zero_and_finite() {
        let mut c = JointCommand::zeros(3);
        assert!(c.is_zero() && c.is_finite());
        c.drive_impedance = Some(DriveImpedance {
            position: JointArray::splat(3, 0.2),
            velocity: JointArray::splat(3, 0.0),
            stiffness: JointArray::splat(3, 10.0),
            damping: JointArray::splat(3, 0.0),
        });
        assert!(!c.is_zero(), "a drive impedance with stiffness produces torque");
        c.torque[0] = f64::INFINITY;
        assert!(!c.is_finite());
    }

    fn impedance(dof: usize, stiffness: f64) -> DriveImpedance {
        DriveImpedance {
            position: JointArray::splat(dof, 0.1),
            velocity: JointArray::splat(dof, 0.0),
            stiffness: JointArray::splat(dof, stiffness),
            damping: JointArray::splat(dof, 1.0),
        }
    }

    #[test]
    fn check_accepts_a_valid_command_with_and_without_impedance() {
        let mut c = JointCommand::zeros(4);
        c.torque[2] = -3.0;
        assert!(c.check(4).is_ok());
        c.drive_impedance = Some(impedance(4, 0.0));
        assert!(c.check(4).is_ok(), "zero gains are allowed");
    }

    #[test]
    fn check_rejects_wrong_joint_counts() {
        let c = JointCommand::zeros(3);
        assert!(matches!(c.check(4), Err(HalError::JointCountMismatch { expected: 4, got: 3 })));
        let mut c = JointCommand::zeros(4);
        c.drive_impedance = Some(impedance(3, 1.0));
        assert!(matches!(c.check(4), Err(HalError::JointCountMismatch { expected: 4, got: 3 })));
    }

    #[test]
    fn check_names_the_first_non_finite_field() {
        let mut c = JointCommand::zeros(4);
        c.torque[1] = f64::NAN;
        assert!(matches!(c.check(4), Err(HalError::NonFiniteCommand { joint: 1, field: "torque" })));
        let mut c = JointCommand::zeros(4);
        let mut imp = impedance(4, 1.0);
        imp.velocity[3] = f64::INFINITY;
        c.drive_impedance = Some(imp);
        let e = c.check(4).unwrap_err();
        assert!(matches!(e, HalError::NonFiniteCommand { joint: 3, field: "drive_impedance.velocity" }), "{e}");
        assert_eq!(crate::error::RobotError::kind(&e), crate::error::ErrorKind::InvalidCommand);
    }

    #[test]
    fn check_rejects_negative_gains() {
        let mut c = JointCommand::zeros(4);
        let mut imp = impedance(4, 1.0);
        imp.damping[2] = -0.5;
        c.drive_impedance = Some(imp);
        let e = c.check(4).unwrap_err();
        assert!(matches!(e, HalError::NegativeGain { joint: 2, field: "drive_impedance.damping" }), "{e}");
        assert_eq!(crate::error::RobotError::kind(&e), crate::error::ErrorKind::InvalidCommand);
        c.drive_impedance = Some(impedance(4, -10.0));
        assert!(matches!(c.check(4), Err(HalError::NegativeGain { joint: 0, field: "drive_impedance.stiffness" })));
    }

    #[test]
    fn first_faulted_joint_skips_warnings() {
        let mut s = JointState::zeros(3);
        s.flags[0] = JointFlags::WARNING_TEMPERATURE;
        s.flags[2] = JointFlags::NO_REPLY;
        assert_eq!(s.first_faulted_joint(), Some(2));
    }
}
