//! [`JointInfo`] from the robot's kinematic model: the joints a backend reports when its limits are the URDF's.

use plexo_kinematics::Model;

use crate::JointInfo;

impl JointInfo {
    /// One [`JointInfo`] per joint of `model`, in the model's joint order, with the URDF's limits: position
    /// bounds [rad] (infinite for a continuous joint), velocity limit [rad/s], effort limit as the torque limit
    /// [Nm]. A backend whose actuators limit the torque further (a motor's peak torque through its gear) replaces
    /// `torque_max` afterwards.
    ///
    /// Not real-time safe (allocates the names).
    ///
    /// ```
    /// let urdf = plexo_kinematics::default_robot_urdf("plexo-arm4").unwrap();
    /// let model = plexo_kinematics::Model::from_urdf_str(urdf).unwrap();
    /// let joints = plexo_hal::JointInfo::from_model(&model);
    /// assert_eq!(joints.len(), model.nv());
    /// assert_eq!(joints[3].name, "elbow_flexion");
    /// assert_eq!(joints[3].torque_max, model.joints()[3].limits.effort);
    /// ```
    pub fn from_model(model: &Model) -> Vec<JointInfo> {
        model
            .joints()
            .iter()
            .map(|j| JointInfo {
                name: j.name.clone(),
                position_min: j.limits.lower,
                position_max: j.limits.upper,
                velocity_max: j.limits.velocity,
                torque_max: j.limits.effort,
            })
            .collect()
    }
}
