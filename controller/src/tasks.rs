//! Tasks: minimum-jerk movements, center-out target sets scaled to the patient's range of motion, and joint
//! range-of-motion exercises.

use nalgebra::{Matrix3, Matrix6xX, Vector3};
use plexo_hal::{JointArray, MAX_JOINTS};
use plexo_kinematics::{Data, FrameId, Model, ReferenceFrame, forward_kinematics, frame_jacobian};

use crate::error::ControllerError;
use crate::safety::RomLimit;

/// What the controller should do this tick: a joint-space reference (with its straight-line path for free-timing
/// laws) and optionally a Cartesian reference of the handle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskReference {
    /// Desired joint positions q_d [rad].
    pub position: JointArray<f64>,
    /// Desired joint velocities q̇_d [rad/s].
    pub velocity: JointArray<f64>,
    /// Desired joint accelerations q̈_d [rad/s²].
    pub acceleration: JointArray<f64>,
    /// Start posture of the current movement [rad] (path start for the tunnel and the resistive anchor).
    pub start: JointArray<f64>,
    /// Target posture of the current movement [rad].
    pub target: JointArray<f64>,
    /// Phase of the movement s ∈ [0, 1] (0 at the start, 1 once the planned duration has elapsed).
    pub phase: f64,
    /// Desired handle position in the world frame, world_p_handle [m], for Cartesian impedance.
    pub handle_position: Option<Vector3<f64>>,
    /// Desired handle velocity in the world frame [m/s].
    pub handle_velocity: Vector3<f64>,
}

impl TaskReference {
    /// Hold still at `q` [rad]. Real-time safe.
    pub fn hold(q: &JointArray<f64>) -> Self {
        let zero = JointArray::splat(q.len(), 0.0);
        Self {
            position: *q,
            velocity: zero,
            acceleration: zero,
            start: *q,
            target: *q,
            phase: 1.0,
            handle_position: None,
            handle_velocity: Vector3::zeros(),
        }
    }

    /// True if every number is finite. Real-time safe.
    pub fn is_finite(&self) -> bool {
        self.position.all_finite()
            && self.velocity.all_finite()
            && self.acceleration.all_finite()
            && self.start.all_finite()
            && self.target.all_finite()
            && self.phase.is_finite()
            && self.handle_position.is_none_or(|p| p.iter().all(|v| v.is_finite()))
            && self.handle_velocity.iter().all(|v| v.is_finite())
    }
}

/// Minimum-jerk profile (Flash & Hogan 1985, J Neurosci 5(7)): normalised position, velocity and acceleration
/// at normalised time τ = t/T ∈ [0, 1]: s = 10τ³ − 15τ⁴ + 6τ⁵. Real-time safe.
pub fn minimum_jerk_profile(tau: f64) -> (f64, f64, f64) {
    let t = tau.clamp(0.0, 1.0);
    let (t2, t3) = (t * t, t * t * t);
    let s = t3 * (10.0 - 15.0 * t + 6.0 * t2);
    let ds = 30.0 * t2 * (1.0 - 2.0 * t + t2);
    let dds = 60.0 * t * (1.0 - 3.0 * t + 2.0 * t2);
    (s, ds, dds)
}

/// The normalised time τ ∈ [0, 1] at which the minimum-jerk position s(τ) = `fraction` (clamped to [0, 1]); the
/// inverse of [`minimum_jerk_profile`]'s position, by bisection to 1e-9 (s is monotonic). Real-time safe.
pub fn minimum_jerk_phase_of(fraction: f64) -> f64 {
    let target = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        if minimum_jerk_profile(mid).0 < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// A minimum-jerk point-to-point movement in joint space.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinimumJerk {
    /// Start posture [rad].
    pub start: JointArray<f64>,
    /// Target posture [rad].
    pub target: JointArray<f64>,
    /// Duration T [s] (> 0).
    pub duration: f64,
}

impl MinimumJerk {
    /// The reference at time `t` [s] since the movement started; holds the target after T. Real-time safe.
    pub fn sample(&self, t: f64) -> TaskReference {
        let n = self.start.len();
        let d = self.duration.max(1e-6);
        let (s, ds, dds) = minimum_jerk_profile(t / d);
        let mut r = TaskReference::hold(&self.start);
        r.target = self.target;
        for j in 0..n {
            let delta = self.target[j] - self.start[j];
            r.position[j] = self.start[j] + delta * s;
            r.velocity[j] = delta * ds / d;
            r.acceleration[j] = delta * dds / (d * d);
        }
        r.phase = (t / d).clamp(0.0, 1.0);
        r
    }

    /// Peak joint speed of the movement [rad/s] (1.875·Δ/T, at mid-movement).
    pub fn peak_velocity(&self) -> f64 {
        let d = self.duration.max(1e-6);
        self.start.iter().zip(self.target.iter()).map(|(a, b)| (b - a).abs()).fold(0.0, f64::max) * 1.875 / d
    }
}

/// Damped-least-squares inverse kinematics of a frame's position, staying inside `rom` and pulled towards
/// `posture` in the null space. Not real-time safe (allocates a Jacobian); used when a task set is built.
/// Returns the joint solution and the remaining position error [m].
pub fn inverse_kinematics_position(
    model: &Model,
    data: &mut Data,
    frame: FrameId,
    world_p_target: &Vector3<f64>,
    posture: &[f64],
    rom: &[RomLimit],
) -> (JointArray<f64>, f64) {
    let n = model.nv();
    let mut q = JointArray::from_slice(posture).expect("posture has at most MAX_JOINTS joints");
    let mut jac = Matrix6xX::<f64>::zeros(n);
    let lambda2 = 1e-4;
    let mut err_norm = f64::INFINITY;
    for _ in 0..300 {
        forward_kinematics(model, data, &q);
        let p = data.world_T_frame[frame.0].translation.vector;
        let err = world_p_target - p;
        err_norm = err.norm();
        if err_norm < 1e-5 {
            break;
        }
        frame_jacobian(model, data, &q, frame, ReferenceFrame::LocalWorldAligned, &mut jac);
        let jv = jac.fixed_rows::<3>(0);
        let jjt: Matrix3<f64> = jv * jv.transpose() + Matrix3::identity() * lambda2;
        let Some(inv) = jjt.try_inverse() else { break };
        let y = inv * err;
        let mut dq = [0.0; MAX_JOINTS];
        for j in 0..n {
            dq[j] = jv.column(j).dot(&y);
        }
        // Null-space pull towards the posture: (I − J⁺J)(posture − q), with J⁺ = Jᵀ(JJᵀ+λ²I)⁻¹.
        let mut z = [0.0; MAX_JOINTS];
        for j in 0..n {
            z[j] = 0.1 * (posture[j] - q[j]);
        }
        let mut jz = Vector3::zeros();
        for j in 0..n {
            jz += jv.column(j) * z[j];
        }
        let yz = inv * jz;
        for j in 0..n {
            dq[j] += z[j] - jv.column(j).dot(&yz);
        }
        for j in 0..n {
            q[j] = (q[j] + dq[j].clamp(-0.2, 0.2)).clamp(rom[j].min, rom[j].max);
        }
    }
    (q, err_norm)
}

/// Center-out targets: `count` points on a circle of radius `radius_fraction × r_max` around the handle position
/// at `home`, in the horizontal plane through it, where r_max is the largest radius (≤ `radius_cap` [m]) at which
/// every target is reachable inside the patient's ROM shrunk by `rom_margin` [rad] on each side. Joints with
/// `held[j]` stay at their home value in every target (a forearm and wrist the protocol does not exercise);
/// `held` empty = none held. Returns the joint-space targets and the radius used [m]. Not real-time safe.
#[allow(clippy::too_many_arguments)]
pub fn center_out_targets(
    model: &Model,
    frame: FrameId,
    home: &[f64],
    rom: &[RomLimit],
    count: usize,
    radius_fraction: f64,
    radius_cap: f64,
    rom_margin: f64,
    held: &[bool],
) -> Result<(Vec<JointArray<f64>>, f64), ControllerError> {
    let task = "center_out";
    if count == 0 || count > 32 {
        return Err(ControllerError::Task { task: task.into(), reason: format!("count {count} outside [1, 32]") });
    }
    let mut data = Data::new(model);
    let inner: Vec<RomLimit> = rom
        .iter()
        .map(|r| RomLimit { min: r.min + rom_margin, max: (r.max - rom_margin).max(r.min + rom_margin) })
        .collect();
    for (j, (h, r)) in home.iter().zip(&inner).enumerate() {
        if *h < r.min || *h > r.max {
            return Err(ControllerError::Task {
                task: task.into(),
                reason: format!(
                    "home posture of joint {j} ({h} rad) is outside the ROM [{}, {}] with margin",
                    r.min, r.max
                ),
            });
        }
    }
    // A held joint's bounds shrink to its home value: the inverse kinematics cannot move it.
    let inner: Vec<RomLimit> = inner
        .iter()
        .zip(home)
        .enumerate()
        .map(|(j, (r, &h))| if held.get(j).copied().unwrap_or(false) { RomLimit { min: h, max: h } } else { *r })
        .collect();
    forward_kinematics(model, &mut data, home);
    let centre = data.world_T_frame[frame.0].translation.vector;
    let solve = |radius: f64, data: &mut Data| -> Option<Vec<JointArray<f64>>> {
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let a = 2.0 * core::f64::consts::PI * i as f64 / count as f64;
            let p = centre + Vector3::new(radius * a.cos(), radius * a.sin(), 0.0);
            let (q, err) = inverse_kinematics_position(model, data, frame, &p, home, &inner);
            if err > 1e-3 {
                return None;
            }
            out.push(q);
        }
        Some(out)
    };
    let (mut lo, mut hi) = (0.0, radius_cap);
    if solve(hi, &mut data).is_some() {
        lo = hi;
    } else {
        for _ in 0..20 {
            let mid = 0.5 * (lo + hi);
            if solve(mid, &mut data).is_some() { lo = mid } else { hi = mid }
        }
    }
    if lo < 0.01 {
        return Err(ControllerError::Task {
            task: task.into(),
            reason: format!(
                "no reachable circle of at least 1 cm around the home posture within the ROM (r_max = {lo:.4} m)"
            ),
        });
    }
    let radius = radius_fraction * lo;
    let targets = solve(radius, &mut data).ok_or_else(|| ControllerError::Task {
        task: task.into(),
        reason: format!("radius {radius} m not reachable"),
    })?;
    Ok((targets, radius))
}

/// Joint range-of-motion exercise: two postures equal to `home` except joint `joint`, which goes to the low and
/// the high end of its ROM, each shrunk by `(1 − range_fraction)/2` of the range. Not real-time safe.
pub fn joint_rom_targets(
    home: &[f64],
    rom: &[RomLimit],
    joint: usize,
    range_fraction: f64,
) -> Result<[JointArray<f64>; 2], ControllerError> {
    let r = rom.get(joint).ok_or_else(|| ControllerError::Task {
        task: "joint_rom".into(),
        reason: format!("joint index {joint} outside the robot's {} joints", rom.len()),
    })?;
    let margin = 0.5 * (1.0 - range_fraction.clamp(0.0, 1.0)) * (r.max - r.min);
    let mut low = JointArray::from_slice(home).expect("at most MAX_JOINTS");
    let mut high = low;
    low[joint] = r.min + margin;
    high[joint] = r.max - margin;
    Ok([low, high])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_jerk_boundary_conditions_and_symmetry() {
        let (s0, v0, a0) = minimum_jerk_profile(0.0);
        let (s1, v1, a1) = minimum_jerk_profile(1.0);
        assert_eq!((s0, v0, a0), (0.0, 0.0, 0.0));
        assert!((s1 - 1.0).abs() < 1e-12 && v1.abs() < 1e-12 && a1.abs() < 1e-12);
        let (sm, vm, am) = minimum_jerk_profile(0.5);
        assert!((sm - 0.5).abs() < 1e-12 && (vm - 1.875).abs() < 1e-12 && am.abs() < 1e-12);
        // Velocity is the derivative of position (finite difference).
        let h = 1e-6;
        let fd = (minimum_jerk_profile(0.3 + h).0 - minimum_jerk_profile(0.3 - h).0) / (2.0 * h);
        assert!((fd - minimum_jerk_profile(0.3).1).abs() < 1e-6);
    }

    #[test]
    fn minimum_jerk_movement_scales_with_distance_and_duration() {
        let m = MinimumJerk {
            start: JointArray::from_slice(&[0.0, 1.0]).unwrap(),
            target: JointArray::from_slice(&[0.5, 0.0]).unwrap(),
            duration: 2.0,
        };
        let mid = m.sample(1.0);
        assert!((mid.position[0] - 0.25).abs() < 1e-12 && (mid.position[1] - 0.5).abs() < 1e-12);
        assert!((mid.velocity[0] - 0.5 * 1.875 / 2.0).abs() < 1e-12);
        assert!((m.peak_velocity() - 1.0 * 1.875 / 2.0).abs() < 1e-12);
        let end = m.sample(5.0);
        assert_eq!(end.position, m.target);
        assert_eq!(end.phase, 1.0);
    }

    #[test]
    fn joint_rom_targets_respect_the_fraction() {
        let rom = [RomLimit { min: 0.0, max: 2.0 }, RomLimit { min: -1.0, max: 1.0 }];
        let [lo, hi] = joint_rom_targets(&[0.5, 0.0], &rom, 1, 0.8).unwrap();
        assert!((lo[1] + 0.8).abs() < 1e-12 && (hi[1] - 0.8).abs() < 1e-12);
        assert_eq!(lo[0], 0.5);
        assert!(joint_rom_targets(&[0.5, 0.0], &rom, 5, 0.8).is_err());
    }
}
