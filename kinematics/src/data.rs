//! [`Data`]: every buffer the algorithms write, allocated once by [`Data::new`].

use nalgebra::{DMatrix, DVector, Isometry3, Matrix3, Matrix6, Matrix6xX, Vector3, Vector6};

use crate::Model;
use crate::spatial::{Force, Inertia, Motion};

/// Work buffers of the algorithms (private).
#[derive(Clone, Debug)]
pub(crate) struct Workspace {
    /// World rotation matrix of each joint frame.
    pub rot: Vec<Matrix3<f64>>,
    /// World position of each joint frame origin [m].
    pub pos: Vec<Vector3<f64>>,
    /// Joint motion subspace (unit twist) in world coordinates.
    pub s: Vec<Motion>,
    /// Body spatial inertia in world coordinates.
    pub inertia: Vec<Inertia>,
    /// Composite inertia (CRBA).
    pub composite: Vec<Inertia>,
    /// Body twists (world).
    pub v: Vec<Motion>,
    /// Body spatial accelerations (world).
    pub a: Vec<Motion>,
    /// Body forces (world).
    pub f: Vec<Force>,
    /// ABA: velocity-product acceleration `v × S q̇`.
    pub c: Vec<Motion>,
    /// ABA: articulated inertias (angular first).
    pub ia: Vec<Matrix6<f64>>,
    /// ABA: articulated bias forces (moment first).
    pub pa: Vec<Vector6<f64>>,
    /// ABA: `U = Iᴬ S`.
    pub u_vec: Vec<Vector6<f64>>,
    /// ABA: `D = Sᵀ U`.
    pub d: Vec<f64>,
    /// ABA: `u = τ − Sᵀ pᴬ`.
    pub u: Vec<f64>,
    /// True when `rot`, `pos` and `s` hold the configuration of the last algorithm run; false after
    /// `forward_kinematics`, which computes only [`Data::world_T_joint`].
    pub matrices_current: bool,
}

/// Results and work buffers of the algorithms for one [`Model`]. Create once with [`Data::new`] (allocates), then
/// every algorithm runs without allocating. A `Data` must only be used with the model it was made for, or with a
/// clone of it (payloads may change; the number of joints and frames may not).
#[derive(Clone, Debug)]
pub struct Data {
    /// Placement of every joint frame in the world, after [`crate::forward_kinematics`].
    pub world_T_joint: Vec<Isometry3<f64>>,
    /// Placement of every frame of [`Model::frames`] in the world, after [`crate::forward_kinematics`].
    pub world_T_frame: Vec<Isometry3<f64>>,
    /// Joint Jacobians in the World convention (6 × nv, linear rows first), after [`crate::joint_jacobians`].
    pub joint_jacobians: Matrix6xX<f64>,
    /// Joint torques [Nm] from [`crate::rnea`].
    pub tau: DVector<f64>,
    /// Generalized gravity g(q) [Nm] from [`crate::gravity_torque`].
    pub gravity_torque: DVector<f64>,
    /// Nonlinear effects C(q, q̇) q̇ + g(q) [Nm] from [`crate::nonlinear_effects`].
    pub nonlinear_effects: DVector<f64>,
    /// Joint-space mass matrix M(q) [kg m²] (full, symmetric) from [`crate::crba`].
    pub mass_matrix: DMatrix<f64>,
    /// Joint accelerations [rad/s²] from [`crate::aba`].
    pub ddq: DVector<f64>,
    pub(crate) work: Workspace,
    nv: usize,
    nframes: usize,
}

impl Data {
    /// Allocates every buffer for `model`. Not real-time safe; everything after it is.
    pub fn new(model: &Model) -> Data {
        let n = model.nv();
        Data {
            world_T_joint: vec![Isometry3::identity(); n],
            world_T_frame: vec![Isometry3::identity(); model.frames().len()],
            joint_jacobians: Matrix6xX::zeros(n),
            tau: DVector::zeros(n),
            gravity_torque: DVector::zeros(n),
            nonlinear_effects: DVector::zeros(n),
            mass_matrix: DMatrix::zeros(n, n),
            ddq: DVector::zeros(n),
            work: Workspace {
                rot: vec![Matrix3::identity(); n],
                pos: vec![Vector3::zeros(); n],
                s: vec![Motion::ZERO; n],
                inertia: vec![Inertia::ZERO; n],
                composite: vec![Inertia::ZERO; n],
                v: vec![Motion::ZERO; n],
                a: vec![Motion::ZERO; n],
                f: vec![Force::ZERO; n],
                c: vec![Motion::ZERO; n],
                ia: vec![Matrix6::zeros(); n],
                pa: vec![Vector6::zeros(); n],
                u_vec: vec![Vector6::zeros(); n],
                d: vec![0.0; n],
                u: vec![0.0; n],
                matrices_current: false,
            },
            nv: n,
            nframes: model.frames().len(),
        }
    }

    /// Panics with a clear message if this `Data` was not made for `model` (a programming error).
    #[inline]
    pub(crate) fn check(&self, model: &Model) {
        assert!(
            self.nv == model.nv() && self.nframes == model.frames().len(),
            "Data was created for a model with {} joints and {} frames, used with model '{}' ({} joints, {} frames)",
            self.nv,
            self.nframes,
            model.name(),
            model.nv(),
            model.frames().len()
        );
    }
}
