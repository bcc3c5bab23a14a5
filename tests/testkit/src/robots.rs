//! The standard robots of the tests: plexo-arm4 and plexo-arm6 as the crate embeds them, the arm4's joint names
//! and home posture, hand-made joint descriptions for supervisor tests.

use plexo_hal::{DriveImpedance, JointArray, JointCommand, JointInfo};
use plexo_kinematics::Model;

/// plexo-arm4's joints, in the model's order.
pub const ARM4_JOINTS: [&str; 4] = ["shoulder_abduction", "shoulder_flexion", "shoulder_rotation", "elbow_flexion"];

/// The home posture of the center-out task on plexo-arm4 [rad], in [`ARM4_JOINTS`] order.
pub const HOME: [f64; 4] = [0.25, 0.6, 0.0, 1.3];

/// The control period of the tests [s] (1 kHz).
pub const DT: f64 = 0.001;

/// The embedded plexo-arm4 model (4 DOF: shoulder abduction, flexion, rotation; elbow flexion).
pub fn arm4() -> Model {
    builtin("plexo-arm4")
}

/// The embedded plexo-arm6 model (plexo-arm4 with forearm pronation and wrist flexion).
pub fn arm6() -> Model {
    builtin("plexo-arm6")
}

fn builtin(name: &str) -> Model {
    Model::from_urdf_str(plexo_kinematics::default_robot_urdf(name).expect("embedded robot")).expect("valid URDF")
}

/// plexo-arm4's joints with hand-chosen limits instead of the URDF's: `positions[i]` = (min, max) [rad] of joint
/// `i`, the same velocity limit [rad/s] and torque limit [Nm] for all. For supervisor tests that need limits of
/// their own; a backend with the URDF's limits uses [`JointInfo::from_model`].
pub fn arm4_joints_with(positions: [(f64, f64); 4], velocity_max: f64, torque_max: f64) -> Vec<JointInfo> {
    ARM4_JOINTS
        .iter()
        .zip(positions)
        .map(|(name, (position_min, position_max))| JointInfo {
            name: (*name).into(),
            position_min,
            position_max,
            velocity_max,
            torque_max,
        })
        .collect()
}

/// A drive-side impedance on every joint: set-point `q` [rad] and `v` [rad/s], the same `stiffness` [Nm/rad] and
/// `damping` [Nm·s/rad] for all joints.
pub fn drive_impedance(q: &[f64], v: &[f64], stiffness: f64, damping: f64) -> DriveImpedance {
    let n = q.len();
    DriveImpedance {
        position: JointArray::from_slice(q).expect("at most MAX_JOINTS joints"),
        velocity: JointArray::from_slice(v).expect("one velocity per joint"),
        stiffness: JointArray::splat(n, stiffness),
        damping: JointArray::splat(n, damping),
    }
}

/// A command that holds the robot at `q` [rad] with a drive-side impedance loop (`stiffness` [Nm/rad], `damping`
/// [Nm·s/rad] on every joint) and no feed-forward torque.
pub fn impedance_hold(q: &[f64], stiffness: f64, damping: f64) -> JointCommand {
    let mut cmd = JointCommand::zeros(q.len());
    cmd.drive_impedance = Some(drive_impedance(q, &vec![0.0; q.len()], stiffness, damping));
    cmd
}
