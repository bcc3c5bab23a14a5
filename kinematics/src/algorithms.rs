//! Kinematics and dynamics algorithms. All run in the world frame with compact spatial algebra (see
//! [`crate::spatial`]) and allocate nothing: every buffer lives in [`Data`]. All are real-time safe.
//!
//! Each algorithm takes the configuration `q` ([rad] or [m]) and recomputes the joint placements, so results are
//! always consistent with the arguments. Only [`forward_kinematics`] writes [`Data::world_T_joint`] and
//! [`Data::world_T_frame`]. Slices must have length [`Model::nv`]; a wrong length is a programming
//! error and panics with a message naming the argument.

use nalgebra::{
    DMatrix, DVector, Isometry3, Matrix3, Matrix6xX, Quaternion, Translation3, UnitQuaternion, Vector3, Vector6,
};

use crate::data::Workspace;
use crate::model::{FrameSource, JointCache, JointMotion, Offset};
use crate::spatial::{Force, Inertia, Motion};
use crate::trig::sin_cos;
use crate::{Data, FrameId, KinematicsError, Model};

/// Expression of a frame Jacobian (as in Pinocchio).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReferenceFrame {
    /// Spatial velocity in world axes, linear part = velocity of the body point at the world origin.
    World,
    /// Velocity of the frame origin and angular velocity, both in the frame's own axes.
    Local,
    /// Velocity of the frame origin and angular velocity, both in world axes.
    LocalWorldAligned,
}

#[inline]
fn check_len(name: &str, slice: &[f64], nv: usize) {
    assert!(slice.len() == nv, "{name} has length {}, the model has {nv} joints", slice.len());
}

/// World rotation matrices, positions and motion subspaces of every joint for configuration `q` (used by the
/// Jacobians and dynamics), composed as matrices along the chain. A joint about a coordinate axis of its frame
/// with `rpy="0 0 0"` (most URDF joints) costs one plane rotation of two parent columns (12 flops): no quaternion
/// product, no conversion, and its world axis is a column of its rotation.
fn fk_joints(model: &Model, work: &mut Workspace, q: &[f64]) {
    check_len("q", q, model.nv());
    const IDENTITY: Matrix3<f64> = Matrix3::new(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0);
    for (i, c) in model.cache.iter().enumerate() {
        let (rot, axis, pos) = match c.parent {
            Some(p) => joint_placement(c, &work.rot[p], &work.pos[p], q[i]),
            None => joint_placement(c, &IDENTITY, &Vector3::zeros(), q[i]),
        };
        work.rot[i] = rot;
        work.s[i] = motion_subspace(c.rotational, &axis, &pos);
        work.pos[i] = pos;
    }
    work.matrices_current = true;
}

/// World rotation, world axis and world position of joint `c` at angle (or offset) `q`, given its parent's world
/// rotation and position.
#[inline(always)]
fn joint_placement(
    c: &JointCache,
    parent_rot: &Matrix3<f64>,
    parent_pos: &Vector3<f64>,
    q: f64,
) -> (Matrix3<f64>, Vector3<f64>, Vector3<f64>) {
    match c.motion {
        JointMotion::RevoluteAligned { index, sign } => {
            let (s, co) = sin_cos(q);
            let s = sign * s;
            let frame = if c.origin_is_identity { *parent_rot } else { mat_mul(parent_rot, &c.origin_matrix) };
            let pos = parent_pos + matrix_times_offset(parent_rot, &c.origin_offset);
            let (rot, axis) = match index {
                0 => rotate_columns::<1, 2>(&frame, co, s, 0),
                1 => rotate_columns::<2, 0>(&frame, co, s, 1),
                _ => rotate_columns::<0, 1>(&frame, co, s, 2),
            };
            (rot, axis * sign, pos)
        }
        JointMotion::RevoluteGeneral => {
            let (s, co) = sin_cos(q);
            let local = c.rot_fixed + c.rot_cos * co + c.rot_sin * s;
            let pos = parent_pos + matrix_times_offset(parent_rot, &c.origin_offset);
            (mat_mul(parent_rot, &local), mat_vec(parent_rot, &c.axis_parent), pos)
        }
        JointMotion::Prismatic => {
            let frame = if c.origin_is_identity { *parent_rot } else { mat_mul(parent_rot, &c.origin_matrix) };
            let pos = parent_pos + mat_vec(parent_rot, &(c.origin_trans + c.axis_parent * q));
            (frame, mat_vec(parent_rot, &c.axis_parent), pos)
        }
    }
}

/// `m` rotated by θ (given cos θ, sin θ) about its own column `K` (the third index, which it returns unchanged
/// as the rotation axis): columns A, B become `cos θ a + sin θ b` and `cos θ b − sin θ a`, with (A, B) = (y, z)
/// for x, (z, x) for y, (x, y) for z.
#[inline(always)]
fn rotate_columns<const A: usize, const B: usize>(
    m: &Matrix3<f64>,
    cos: f64,
    sin: f64,
    k: usize,
) -> (Matrix3<f64>, Vector3<f64>) {
    let (a, b) = (m.fixed_view::<3, 1>(0, A).into_owned(), m.fixed_view::<3, 1>(0, B).into_owned());
    let mut out = *m;
    out.fixed_view_mut::<3, 1>(0, A).copy_from(&(a * cos + b * sin));
    out.fixed_view_mut::<3, 1>(0, B).copy_from(&(b * cos - a * sin));
    let axis = Vector3::new(m[(0, k)], m[(1, k)], m[(2, k)]);
    (out, axis)
}

/// `m · offset`.
#[inline(always)]
fn matrix_times_offset(m: &Matrix3<f64>, offset: &Offset) -> Vector3<f64> {
    match *offset {
        Offset::Zero => Vector3::zeros(),
        Offset::Along { index, length } => Vector3::new(m[(0, index)], m[(1, index)], m[(2, index)]) * length,
        Offset::General(v) => mat_vec(m, &v),
    }
}

/// `q · offset` (rotation of the offset by the unit quaternion): along an axis, `length` times the rotation
/// matrix column, formed from the quaternion directly (9 flops instead of 30).
#[inline(always)]
fn quaternion_times_offset(q: &UnitQuaternion<f64>, offset: &Offset) -> Vector3<f64> {
    match *offset {
        Offset::Zero => Vector3::zeros(),
        Offset::Along { index, length } => {
            let (w, x, y, z) = (q.w, q.i, q.j, q.k);
            let l2 = length + length;
            match index {
                0 => Vector3::new(length - l2 * (y * y + z * z), l2 * (x * y + w * z), l2 * (x * z - w * y)),
                1 => Vector3::new(l2 * (x * y - w * z), length - l2 * (x * x + z * z), l2 * (y * z + w * x)),
                _ => Vector3::new(l2 * (x * z + w * y), l2 * (y * z - w * x), length - l2 * (x * x + y * y)),
            }
        }
        Offset::General(v) => q * v,
    }
}

/// `r · s · rᵀ` for a symmetric `s`: `t = r s`, then only the six distinct entries of `t rᵀ` (75 flops, not 90).
#[inline(always)]
fn rotate_symmetric(r: &Matrix3<f64>, s: &Matrix3<f64>) -> Matrix3<f64> {
    let t = mat_mul(r, s);
    let entry = |a: usize, b: usize| t[(a, 0)] * r[(b, 0)] + t[(a, 1)] * r[(b, 1)] + t[(a, 2)] * r[(b, 2)];
    let (xx, yy, zz, xy, xz, yz) = (entry(0, 0), entry(1, 1), entry(2, 2), entry(0, 1), entry(0, 2), entry(1, 2));
    Matrix3::new(xx, xy, xz, xy, yy, yz, xz, yz, zz)
}

/// `a · b`, written out column by column.
#[inline(always)]
fn mat_mul(a: &Matrix3<f64>, b: &Matrix3<f64>) -> Matrix3<f64> {
    let c0 = mat_vec(a, &b.column(0).into_owned());
    let c1 = mat_vec(a, &b.column(1).into_owned());
    let c2 = mat_vec(a, &b.column(2).into_owned());
    Matrix3::from_columns(&[c0, c1, c2])
}

/// `m · v`, written out (nalgebra's generic product is slower here).
#[inline(always)]
fn mat_vec(m: &Matrix3<f64>, v: &Vector3<f64>) -> Vector3<f64> {
    Vector3::new(
        m[(0, 0)] * v.x + m[(0, 1)] * v.y + m[(0, 2)] * v.z,
        m[(1, 0)] * v.x + m[(1, 1)] * v.y + m[(1, 2)] * v.z,
        m[(2, 0)] * v.x + m[(2, 1)] * v.y + m[(2, 2)] * v.z,
    )
}

/// Rotation matrix of a unit quaternion (12 multiplies).
#[inline(always)]
fn quaternion_matrix(q: &UnitQuaternion<f64>) -> Matrix3<f64> {
    let (w, x, y, z) = (q.w, q.i, q.j, q.k);
    let (x2, y2, z2) = (x + x, y + y, z + z);
    let (xx, yy, zz) = (x * x2, y * y2, z * z2);
    let (xy, xz, yz) = (x * y2, x * z2, y * z2);
    let (wx, wy, wz) = (w * x2, w * y2, w * z2);
    Matrix3::new(1.0 - yy - zz, xy - wz, xz + wy, xy + wz, 1.0 - xx - zz, yz - wx, xz - wy, yz + wx, 1.0 - xx - yy)
}

#[inline(always)]
fn motion_subspace(rotational: bool, axis_world: &Vector3<f64>, pos: &Vector3<f64>) -> Motion {
    if rotational {
        Motion { ang: *axis_world, lin: pos.cross(axis_world) }
    } else {
        Motion { ang: Vector3::zeros(), lin: *axis_world }
    }
}

/// Rebuilds the matrix-path buffers from [`Data::world_T_joint`] (after [`forward_kinematics`]).
fn matrices_from_placements(model: &Model, data: &mut Data) {
    let w = &mut data.work;
    for (i, c) in model.cache.iter().enumerate() {
        let placement = &data.world_T_joint[i];
        let pos = placement.translation.vector;
        let rot = quaternion_matrix(&placement.rotation);
        w.s[i] = motion_subspace(c.rotational, &(rot * c.axis), &pos);
        w.rot[i] = rot;
        w.pos[i] = pos;
    }
    w.matrices_current = true;
}

/// World position [m] of a frame's origin from the joint buffers.
#[inline]
fn frame_position(model: &Model, w: &Workspace, frame: FrameId, joint: usize) -> Vector3<f64> {
    match model.frame_source[frame.0] {
        FrameSource::JointTranslation(_, ref offset) => w.pos[joint] + matrix_times_offset(&w.rot[joint], offset),
        FrameSource::JointOffset(_) => {
            w.pos[joint] + mat_vec(&w.rot[joint], &model.frames()[frame.0].joint_T_frame.translation.vector)
        }
        FrameSource::Joint(_) | FrameSource::Base => w.pos[joint],
    }
}

/// Rotation matrix from world axes to a frame's axes, from the joint buffers.
#[inline]
fn frame_R_world(model: &Model, w: &Workspace, frame: FrameId, joint: usize) -> Matrix3<f64> {
    match model.frame_source[frame.0] {
        FrameSource::JointOffset(_) => mat_mul(&w.rot[joint], &model.frame_rot[frame.0]).transpose(),
        _ => w.rot[joint].transpose(),
    }
}

/// World spatial inertia of every body (after `fk_joints`).
fn update_world_inertias(model: &Model, work: &mut Workspace) {
    for (i, c) in model.cache.iter().enumerate() {
        let r = &work.rot[i];
        let com_world = mat_vec(r, &c.com) + work.pos[i];
        work.inertia[i] = Inertia::from_com(c.mass, &com_world, &rotate_symmetric(r, &c.inertia_com));
    }
}

/// Forward kinematics: fills [`Data::world_T_joint`] and [`Data::world_T_frame`] for configuration `q`.
pub fn forward_kinematics(model: &Model, data: &mut Data, q: &[f64]) {
    data.check(model);
    check_len("q", q, model.nv());
    let world_T_joint = &mut data.world_T_joint;
    for (i, c) in model.cache.iter().enumerate() {
        let qi = q[i];
        world_T_joint[i] = match (c.motion, c.parent) {
            // About a coordinate axis e of the parent-aligned frame: R_parent ⊗ (cos(q/2), sin(q/2) e) =
            // cos(q/2) R_parent + sin(q/2) (R_parent ⊗ e), where ⊗ e permutes components (8 flops, no product).
            (JointMotion::RevoluteAligned { index, sign }, Some(p)) if c.origin_is_identity => {
                let (s, co) = sin_cos(0.5 * qi);
                let parent = &world_T_joint[p];
                let a = parent.rotation.quaternion();
                let times_axis = match index {
                    0 => Quaternion::new(-a.i, a.w, a.k, -a.j),
                    1 => Quaternion::new(-a.j, -a.k, a.w, a.i),
                    _ => Quaternion::new(-a.k, a.j, -a.i, a.w),
                };
                let rot = UnitQuaternion::new_unchecked(a * co + times_axis * (sign * s));
                let pos = parent.translation.vector + quaternion_times_offset(&parent.rotation, &c.origin_offset);
                Isometry3::from_parts(Translation3::from(pos), rot)
            }
            (_, parent) if c.rotational => {
                // R_origin ⊗ (cos(q/2), sin(q/2) axis) = cos(q/2) R_origin + sin(q/2) (R_origin ⊗ axis).
                let (s, co) = sin_cos(0.5 * qi);
                let local = UnitQuaternion::new_unchecked(c.origin_rot.into_inner() * co + c.origin_axis * s);
                match parent {
                    Some(p) => {
                        let parent = &world_T_joint[p];
                        let pos =
                            parent.translation.vector + quaternion_times_offset(&parent.rotation, &c.origin_offset);
                        Isometry3::from_parts(Translation3::from(pos), parent.rotation * local)
                    }
                    None => Isometry3::from_parts(Translation3::from(c.origin_trans), local),
                }
            }
            (_, parent) => {
                let parent_T_joint =
                    Isometry3::from_parts(Translation3::from(c.origin_trans + c.axis_parent * qi), c.origin_rot);
                match parent {
                    Some(p) => world_T_joint[p] * parent_T_joint,
                    None => parent_T_joint,
                }
            }
        };
    }
    data.work.matrices_current = false;
    for ((out, source), f) in data.world_T_frame.iter_mut().zip(&model.frame_source).zip(model.frames()) {
        *out = match *source {
            FrameSource::Joint(j) => world_T_joint[j],
            FrameSource::JointTranslation(j, ref offset) => {
                let joint = &world_T_joint[j];
                let pos = joint.translation.vector + quaternion_times_offset(&joint.rotation, offset);
                Isometry3::from_parts(Translation3::from(pos), joint.rotation)
            }
            FrameSource::JointOffset(j) => world_T_joint[j] * f.joint_T_frame,
            FrameSource::Base => f.joint_T_frame,
        };
    }
}

/// All joint Jacobians in the World convention: column `k` is the unit twist of joint `k` (linear rows 0..3 =
/// velocity of the body point at the world origin [m/s per rad/s], angular rows 3..6), in
/// [`Data::joint_jacobians`]. Frame Jacobians at the same `q` can then be read cheaply with
/// [`frame_jacobian_from_data`].
pub fn joint_jacobians<'d>(model: &Model, data: &'d mut Data, q: &[f64]) -> &'d Matrix6xX<f64> {
    data.check(model);
    fk_joints(model, &mut data.work, q);
    for (col, s) in data.joint_jacobians.as_mut_slice().chunks_exact_mut(6).zip(&data.work.s) {
        col.copy_from_slice(&[s.lin.x, s.lin.y, s.lin.z, s.ang.x, s.ang.y, s.ang.z]);
    }
    &data.joint_jacobians
}

/// Jacobian of frame `frame` (6 × nv, linear rows 0..3 [m/s per rad/s], angular rows 3..6) expressed in
/// `reference`, at configuration `q`. Columns of joints that do not move the frame are zero. `jacobian` must be
/// 6 × nv (allocate it once).
pub fn frame_jacobian(
    model: &Model,
    data: &mut Data,
    q: &[f64],
    frame: FrameId,
    reference: ReferenceFrame,
    jacobian: &mut Matrix6xX<f64>,
) {
    data.check(model);
    fk_joints(model, &mut data.work, q);
    frame_jacobian_from_data(model, data, frame, reference, jacobian);
}

/// Like [`frame_jacobian`] but reuses the joint placements of the last algorithm run on `data` (e.g.
/// [`forward_kinematics`], [`joint_jacobians`], [`rnea`]) at the wanted configuration: several frames or
/// references cost one forward-kinematics pass.
pub fn frame_jacobian_from_data(
    model: &Model,
    data: &mut Data,
    frame: FrameId,
    reference: ReferenceFrame,
    jacobian: &mut Matrix6xX<f64>,
) {
    data.check(model);
    assert!(
        jacobian.ncols() == model.nv(),
        "jacobian has {} columns, the model has {} joints",
        jacobian.ncols(),
        model.nv()
    );
    jacobian.as_mut_slice().fill(0.0);
    let Some(j) = model.frames()[frame.0].joint else {
        return;
    };
    if !data.work.matrices_current {
        matrices_from_placements(model, data);
    }
    let w = &data.work;
    let columns = jacobian.as_mut_slice();
    let (start, end) = model.ancestor_range[j];
    let ancestors = &model.ancestors[start..end];
    // Column-major storage: column k is the 6 consecutive entries at 6k.
    let mut write = |k: usize, lin: Vector3<f64>, ang: Vector3<f64>| {
        columns[6 * k..6 * k + 6].copy_from_slice(&[lin.x, lin.y, lin.z, ang.x, ang.y, ang.z]);
    };
    match reference {
        ReferenceFrame::World => {
            for &k in ancestors {
                write(k, w.s[k].lin, w.s[k].ang);
            }
        }
        ReferenceFrame::LocalWorldAligned => {
            let p = frame_position(model, w, frame, j);
            for &k in ancestors {
                let s = &w.s[k];
                write(k, s.lin + s.ang.cross(&p), s.ang);
            }
        }
        ReferenceFrame::Local => {
            let p = frame_position(model, w, frame, j);
            let frame_R_world = frame_R_world(model, w, frame, j);
            for &k in ancestors {
                let s = &w.s[k];
                write(k, mat_vec(&frame_R_world, &(s.lin + s.ang.cross(&p))), mat_vec(&frame_R_world, &s.ang));
            }
        }
    }
}

/// The acceleration bias J̇(q, q̇)·q̇ of frame `frame` (linear part first): the frame's acceleration when q̈ = 0, so
/// that its acceleration is `J q̈ + J̇ q̇` with the Jacobian of the same `reference`:
/// - `LocalWorldAligned`: classical acceleration of the frame origin [m/s²] and angular acceleration [rad/s²],
///   world axes;
/// - `Local`: the same two vectors in the frame's axes (as Pinocchio's classical acceleration in LOCAL);
/// - `World`: the spatial acceleration in the World convention, d/dt(J_World)·q̇.
pub fn frame_classical_acceleration_bias(
    model: &Model,
    data: &mut Data,
    q: &[f64],
    v: &[f64],
    frame: FrameId,
    reference: ReferenceFrame,
) -> Vector6<f64> {
    data.check(model);
    check_len("v", v, model.nv());
    fk_joints(model, &mut data.work, q);
    let Some(j) = model.frames()[frame.0].joint else {
        return Vector6::zeros();
    };
    let w = &mut data.work;
    // Only the frame's ancestors matter; walk them base-first.
    let (start, end) = model.ancestor_range[j];
    for &k in model.ancestors[start..end].iter().rev() {
        let (vp, ap) = match model.cache[k].parent {
            Some(p) => (w.v[p], w.a[p]),
            None => (Motion::ZERO, Motion::ZERO),
        };
        let sq = w.s[k].scale(v[k]);
        w.v[k] = vp.add(&sq);
        w.a[k] = ap.add(&w.v[k].cross_motion(&sq));
    }
    let p = frame_position(model, w, frame, j);
    let (vel, acc) = (w.v[j], w.a[j]);
    if reference == ReferenceFrame::World {
        return Vector6::new(acc.lin.x, acc.lin.y, acc.lin.z, acc.ang.x, acc.ang.y, acc.ang.z);
    }
    let p_dot = vel.lin + vel.ang.cross(&p);
    let mut lin = acc.lin + acc.ang.cross(&p) + vel.ang.cross(&p_dot);
    let mut ang = acc.ang;
    if reference == ReferenceFrame::Local {
        let rot = frame_R_world(model, w, frame, j);
        lin = rot * lin;
        ang = rot * ang;
    }
    Vector6::new(lin.x, lin.y, lin.z, ang.x, ang.y, ang.z)
}

/// Recursive Newton–Euler core: τ = M(q) a + C(q, v) v + g(q) into `out`. `v`/`a` of `None` mean zero.
fn rnea_core(
    model: &Model,
    w: &mut Workspace,
    q: &[f64],
    v: Option<&[f64]>,
    a: Option<&[f64]>,
    out: &mut DVector<f64>,
) {
    fk_joints(model, w, q);
    update_world_inertias(model, w);
    // Gravity enters as an upward acceleration of the base (Featherstone's trick).
    let a_base = Motion { ang: Vector3::zeros(), lin: -model.gravity() };
    for (i, c) in model.cache.iter().enumerate() {
        let (vp, ap) = match c.parent {
            Some(p) => (w.v[p], w.a[p]),
            None => (Motion::ZERO, a_base),
        };
        let s = w.s[i];
        let qd = v.map_or(0.0, |v| v[i]);
        let qdd = a.map_or(0.0, |a| a[i]);
        let sq = s.scale(qd);
        let vi = vp.add(&sq);
        let ai = ap.add_scaled(&s, qdd).add(&vi.cross_motion(&sq));
        let inertia = &w.inertia[i];
        w.f[i] = inertia.mul_motion(&ai).add(&vi.cross_force(&inertia.mul_motion(&vi)));
        w.v[i] = vi;
        w.a[i] = ai;
    }
    for i in (0..model.nv()).rev() {
        let c = &model.cache[i];
        // The armature (reflected rotor inertia) adds armatureᵢ·q̈ᵢ to the joint's own torque.
        let rotor = a.map_or(0.0, |a| c.armature * a[i]);
        out[i] = w.s[i].dot(&w.f[i]) + rotor;
        if let Some(p) = c.parent {
            w.f[p] = w.f[p].add(&w.f[i]);
        }
    }
}

/// Inverse dynamics (recursive Newton–Euler): joint torques τ [Nm] that produce accelerations `a` [rad/s²] at
/// position `q` [rad] and velocity `v` [rad/s], gravity, payloads and armature ([`Model::armature`]: τᵢ +=
/// armatureᵢ·aᵢ) included. Result in [`Data::tau`].
pub fn rnea<'d>(model: &Model, data: &'d mut Data, q: &[f64], v: &[f64], a: &[f64]) -> &'d DVector<f64> {
    data.check(model);
    check_len("v", v, model.nv());
    check_len("a", a, model.nv());
    rnea_core(model, &mut data.work, q, Some(v), Some(a), &mut data.tau);
    &data.tau
}

/// Nonlinear effects C(q, q̇) q̇ + g(q) [Nm] (RNEA with q̈ = 0). Result in [`Data::nonlinear_effects`].
pub fn nonlinear_effects<'d>(model: &Model, data: &'d mut Data, q: &[f64], v: &[f64]) -> &'d DVector<f64> {
    data.check(model);
    check_len("v", v, model.nv());
    rnea_core(model, &mut data.work, q, Some(v), None, &mut data.nonlinear_effects);
    &data.nonlinear_effects
}

/// Generalized gravity g(q) [Nm]: the torques that hold the robot (and payloads) still at `q`. Result in
/// [`Data::gravity_torque`].
pub fn gravity_torque<'d>(model: &Model, data: &'d mut Data, q: &[f64]) -> &'d DVector<f64> {
    data.check(model);
    let w = &mut data.work;
    fk_joints(model, w, q);
    let g = model.gravity();
    for (i, c) in model.cache.iter().enumerate() {
        // Wrench needed to hold the body against gravity: force −m g at the CoM, as a moment about the origin.
        let h = (w.rot[i] * c.com + w.pos[i]) * c.mass;
        w.f[i] = Force { ang: -h.cross(&g), lin: -g * c.mass };
    }
    for i in (0..model.nv()).rev() {
        data.gravity_torque[i] = w.s[i].dot(&w.f[i]);
        if let Some(p) = model.cache[i].parent {
            w.f[p] = w.f[p].add(&w.f[i]);
        }
    }
    &data.gravity_torque
}

/// Joint-space mass matrix M(q) [kg m²] by the composite-rigid-body algorithm, full symmetric, in
/// [`Data::mass_matrix`]; the armature ([`Model::armature`]) is on its diagonal.
pub fn crba<'d>(model: &Model, data: &'d mut Data, q: &[f64]) -> &'d DMatrix<f64> {
    data.check(model);
    let w = &mut data.work;
    fk_joints(model, w, q);
    update_world_inertias(model, w);
    w.composite.copy_from_slice(&w.inertia);
    for i in (0..model.nv()).rev() {
        if let Some(p) = model.cache[i].parent {
            let ci = w.composite[i];
            w.composite[p].add_assign(&ci);
        }
    }
    let n = model.nv();
    // Column-major n × n storage: entry (i, j) at i + n j.
    let m = data.mass_matrix.as_mut_slice();
    m.fill(0.0);
    for i in 0..n {
        let force = w.composite[i].mul_motion(&w.s[i]);
        let (start, end) = model.ancestor_range[i];
        for &j in &model.ancestors[start..end] {
            let mij = w.s[j].dot(&force);
            m[i + n * j] = mij;
            m[j + n * i] = mij;
        }
        // The armature sits on the diagonal only.
        m[i + n * i] += model.cache[i].armature;
    }
    &data.mass_matrix
}

/// Relative size below which an articulated inertia about a joint axis counts as zero (a singular mass matrix):
/// `Dᵢ ≤ PIVOT_TOLERANCE · Σₖ Iᴬᵢ[k,k] Sᵢ[k]² + armatureᵢ` is twelve digits of cancellation, far below any
/// physical body (a 1 g, 1 mm link 1 m from the origin is ~10⁻⁶) and far above round-off (~10⁻¹⁵).
const PIVOT_TOLERANCE: f64 = 1e-12;

/// Forward dynamics by the articulated-body algorithm: joint accelerations q̈ [rad/s²] under torques `tau` [Nm]
/// at `q`, `v`, gravity, payloads and armature included (the armature adds to each joint's articulated inertia
/// about its axis, `Dᵢ = Sᵢᵀ Iᴬᵢ Sᵢ + armatureᵢ`), so it inverts [`rnea`] and solves `M q̈ = τ − h` with the
/// [`crba`] mass matrix (armature on its diagonal) and h from [`nonlinear_effects`]. Result in [`Data::ddq`].
///
/// **Singular configurations.** q̈ is undefined where the mass matrix is singular, i.e. where some `Dᵢ` is zero.
/// [`ModelBuilder::build`](crate::ModelBuilder::build) rejects models for which that holds at q = 0 (e.g. a joint
/// whose bodies have no inertia about its axis), and it can never happen when every joint's own body (or its
/// armature) has inertia about the joint axis — true of the default robots, whose links all have
/// positive-definite inertias. It can happen at isolated configurations of models with massless intermediate
/// links and no armature (e.g. the gimbal lock of three such coincident revolute joints). There, `aba` fills
/// every entry of [`Data::ddq`] with NaN, never a finite wrong number; use [`try_aba`] to get an error naming the
/// joint instead.
pub fn aba<'d>(model: &Model, data: &'d mut Data, q: &[f64], v: &[f64], tau: &[f64]) -> &'d DVector<f64> {
    if aba_core(model, data, q, v, tau).is_some() {
        data.ddq.as_mut_slice().fill(f64::NAN);
    }
    &data.ddq
}

/// [`aba`] that reports a singular mass matrix ([`KinematicsError::SingularMassMatrix`], naming the joint whose
/// articulated inertia about its axis vanished) instead of returning NaN. Real-time safe: allocates only to build
/// the error.
pub fn try_aba<'d>(
    model: &Model,
    data: &'d mut Data,
    q: &[f64],
    v: &[f64],
    tau: &[f64],
) -> Result<&'d DVector<f64>, KinematicsError> {
    match aba_core(model, data, q, v, tau) {
        None => Ok(&data.ddq),
        Some((joint, pivot)) => {
            data.ddq.as_mut_slice().fill(f64::NAN);
            Err(KinematicsError::SingularMassMatrix { joint: model.joints()[joint].name.clone(), pivot })
        }
    }
}

/// The first joint (leaf to root) whose articulated inertia about its axis is zero at q = 0, if any (used by the
/// model's validation; allocates).
pub(crate) fn singular_joint_at_zero(model: &Model) -> Option<usize> {
    let mut data = Data::new(model);
    let zero = vec![0.0; model.nv()];
    aba_core(model, &mut data, &zero, &zero, &zero).map(|(joint, _)| joint)
}

/// The articulated-body algorithm into [`Data::ddq`]; returns the first joint (leaf to root) whose pivot `Dᵢ`
/// is not positive, with that pivot, in which case `ddq` is meaningless.
fn aba_core(model: &Model, data: &mut Data, q: &[f64], v: &[f64], tau: &[f64]) -> Option<(usize, f64)> {
    data.check(model);
    check_len("v", v, model.nv());
    check_len("tau", tau, model.nv());
    let w = &mut data.work;
    fk_joints(model, w, q);
    update_world_inertias(model, w);
    for (i, c) in model.cache.iter().enumerate() {
        let vp = match c.parent {
            Some(p) => w.v[p],
            None => Motion::ZERO,
        };
        let sq = w.s[i].scale(v[i]);
        let vi = vp.add(&sq);
        w.c[i] = vi.cross_motion(&sq);
        let inertia = &w.inertia[i];
        w.ia[i] = inertia.to_matrix();
        w.pa[i] = vi.cross_force(&inertia.mul_motion(&vi)).to_vector();
        w.v[i] = vi;
    }
    let mut singular = None;
    for i in (0..model.nv()).rev() {
        let s = w.s[i].to_vector();
        let ia = &w.ia[i];
        let u_vec = ia * s;
        let armature = model.cache[i].armature;
        // D = Sᵀ Iᴬ S + armature: the rotor inertia adds to the inertia felt about the joint axis.
        let d = s.dot(&u_vec) + armature;
        let scale = (0..6).map(|k| ia[(k, k)] * s[k] * s[k]).sum::<f64>() + armature;
        // `d <= tolerance` or NaN. Keep going: the result is discarded, so no division guard is needed.
        if d.partial_cmp(&(PIVOT_TOLERANCE * scale)) != Some(std::cmp::Ordering::Greater) {
            singular.get_or_insert((i, d));
        }
        let u = tau[i] - s.dot(&w.pa[i]);
        w.u_vec[i] = u_vec;
        w.d[i] = d;
        w.u[i] = u;
        if let Some(p) = model.cache[i].parent {
            let c = w.c[i].to_vector();
            let inv_d = 1.0 / d;
            // pᵃ = pᴬ + Iᵃ c + U D⁻¹ u with Iᵃ = Iᴬ − U D⁻¹ Uᵀ, so Iᵃ c = Iᴬ c − U D⁻¹ (Uᵀ c).
            let ia_c = w.ia[i] * c;
            let pa = w.pa[i] + ia_c + u_vec * ((u - u_vec.dot(&c)) * inv_d);
            let mut ia = w.ia[i];
            ia.ger(-inv_d, &u_vec, &u_vec, 1.0);
            w.ia[p] += ia;
            w.pa[p] += pa;
        }
    }
    let a_base = Motion { ang: Vector3::zeros(), lin: -model.gravity() };
    for (i, c) in model.cache.iter().enumerate() {
        let ap = match c.parent {
            Some(p) => w.a[p],
            None => a_base,
        };
        let a_prime = ap.add(&w.c[i]).to_vector();
        let qdd = (w.u[i] - w.u_vec[i].dot(&a_prime)) / w.d[i];
        data.ddq[i] = qdd;
        w.a[i] = Motion::from_vector(&a_prime).add_scaled(&w.s[i], qdd);
    }
    singular
}

/// Kinetic energy ½ q̇ᵀ M(q) q̇ [J], with the mass matrix of [`crba`]: the rotors' ½ Σ armatureᵢ q̇ᵢ² included.
pub fn kinetic_energy(model: &Model, data: &mut Data, q: &[f64], v: &[f64]) -> f64 {
    data.check(model);
    check_len("v", v, model.nv());
    let w = &mut data.work;
    fk_joints(model, w, q);
    update_world_inertias(model, w);
    let mut energy = 0.0;
    for (i, c) in model.cache.iter().enumerate() {
        let vp = match c.parent {
            Some(p) => w.v[p],
            None => Motion::ZERO,
        };
        w.v[i] = vp.add_scaled(&w.s[i], v[i]);
        energy += 0.5 * (w.v[i].dot(&w.inertia[i].mul_motion(&w.v[i])) + c.armature * v[i] * v[i]);
    }
    energy
}

/// Gravitational potential energy −Σ mᵢ g·cᵢ [J] of the moving bodies (zero with every CoM at the world origin).
pub fn potential_energy(model: &Model, data: &mut Data, q: &[f64]) -> f64 {
    data.check(model);
    let w = &mut data.work;
    fk_joints(model, w, q);
    let g = model.gravity();
    model.cache.iter().enumerate().map(|(i, c)| -c.mass * g.dot(&(w.rot[i] * c.com + w.pos[i]))).sum()
}
