//! The limit stages a joint torque passes through, as pure functions (libfranka's `limitRate` style: no state,
//! the caller keeps the previous output). The supervisor applies them to the total torque of each joint in this
//! order, and attributes a limited tick to every stage that changed the torque ([`Shaped`]):
//!
//! ```text
//! request ─► saturate ─► velocity_fade ─► soft_walls ─► saturate ─► rate_limit ─► saturate ─► output
//! ```
//!
//! The request is saturated first, so an oversized command keeps its direction but never outweighs a wall's
//! push-back; the rate limit comes last, so no stage can step the output faster than the torque-rate limit.

/// The soft walls of one joint: a spring–damper zone of `width` inside each effective position limit.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SoftWalls {
    /// Lower effective position limit [rad] (the tighter of the robot's hard limit and the patient's ROM).
    pub lower: f64,
    /// Upper effective position limit [rad].
    pub upper: f64,
    /// Width of each wall inside its limit [rad].
    pub width: f64,
    /// Wall spring [Nm/rad] per radian of penetration into the wall zone.
    pub stiffness: f64,
    /// Wall damper [Nm·s/rad], acting only on a motion into the wall.
    pub damping: f64,
}

/// Saturation: `tau` [Nm] clamped to ±`torque_max` [Nm]. ±∞ saturates with its sign; NaN has no direction and
/// becomes zero torque. Real-time safe.
pub fn saturate(tau: f64, torque_max: f64) -> f64 {
    if tau.is_nan() { 0.0 } else { tau.clamp(-torque_max, torque_max) }
}

/// Velocity fade and brake: a torque `tau` [Nm] along the motion `qd` [rad/s] fades linearly to zero between the
/// soft velocity `soft_fraction × velocity_max` and `velocity_max` [rad/s] (zero beyond); a torque against the
/// motion (braking) and any torque below the soft velocity pass unchanged. Above the soft velocity a brake
/// `−brake_damping · (|qd| − v_soft) · sign(qd)` [Nm] is added, so that a motion the robot does not drive (an arm
/// falling when help is withdrawn, a patient's own overshoot in a transparent block) is slowed before it reaches
/// the velocity limit and stops the session. Real-time safe.
pub fn velocity_fade(tau: f64, qd: f64, velocity_max: f64, soft_fraction: f64, brake_damping: f64) -> f64 {
    let v_soft = soft_fraction * velocity_max;
    let over = qd.abs() - v_soft;
    if over <= 0.0 {
        return tau;
    }
    let faded =
        if tau * qd > 0.0 { tau * ((velocity_max - qd.abs()) / (velocity_max - v_soft)).clamp(0.0, 1.0) } else { tau };
    faded - (brake_damping * over).copysign(qd)
}

/// Soft walls at position `q` [rad] moving at `qd` [rad/s]: inside a wall zone, the outward part of `tau` [Nm]
/// fades to zero at the limit (a zero-width wall cuts it at once), and a spring–damper scaled by `scale` ∈ [0, 1]
/// pushes back (the damper only on a motion into the wall). `scale` is the soft-start factor while enabling: a
/// resting arm often lies in a wall zone, and a full-strength wall at enable would kick it; a zero `scale` skips
/// the spring–damper, so no 0·∞ can arise. Huge but finite inputs can overflow the spring–damper to ±∞, which the
/// following saturation turns into the full push-back; no NaN arises for finite `q`, `qd` and `tau`.
/// Real-time safe.
pub fn soft_walls(tau: f64, q: f64, qd: f64, walls: &SoftWalls, scale: f64) -> f64 {
    let mut tau = tau;
    let upper_start = walls.upper - walls.width;
    if q > upper_start {
        let pen = q - upper_start;
        if tau > 0.0 {
            tau *= if walls.width > 0.0 { (1.0 - pen / walls.width).clamp(0.0, 1.0) } else { 0.0 };
        }
        if scale > 0.0 {
            tau -= scale * (walls.stiffness * pen + walls.damping * qd.max(0.0));
        }
    }
    let lower_start = walls.lower + walls.width;
    if q < lower_start {
        let pen = lower_start - q;
        if tau < 0.0 {
            tau *= if walls.width > 0.0 { (1.0 - pen / walls.width).clamp(0.0, 1.0) } else { 0.0 };
        }
        if scale > 0.0 {
            tau += scale * (walls.stiffness * pen + walls.damping * (-qd).max(0.0));
        }
    }
    tau
}

/// Rate limit: `tau` [Nm] within `max_step` [Nm] (= torque-rate limit [Nm/s] × period [s]) of the previous
/// output `previous` [Nm]. `previous` and `max_step` must be finite, `max_step` ≥ 0. Real-time safe.
pub fn rate_limit(tau: f64, previous: f64, max_step: f64) -> f64 {
    tau.clamp(previous - max_step, previous + max_step)
}

/// Which stages changed one joint's (or, merged, one tick's) torque.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Shaped {
    /// [`saturate`] changed the torque (also: a NaN request, or bounded drive gains).
    pub(crate) saturation: bool,
    /// [`velocity_fade`] changed it.
    pub(crate) velocity_fade: bool,
    /// [`soft_walls`] changed it.
    pub(crate) walls: bool,
    /// [`rate_limit`] changed it.
    pub(crate) rate: bool,
}

impl Shaped {
    /// True if any stage changed the torque.
    pub(crate) fn any(self) -> bool {
        self.saturation || self.velocity_fade || self.walls || self.rate
    }

    /// Adds the stages of `other` (a tick is limited by a stage if any joint is).
    pub(crate) fn merge(&mut self, other: Shaped) {
        self.saturation |= other.saturation;
        self.velocity_fade |= other.velocity_fade;
        self.walls |= other.walls;
        self.rate |= other.rate;
    }
}

/// `a` and `b` differ beyond rounding [Nm].
pub(crate) fn changed(a: f64, b: f64) -> bool {
    (a - b).abs() > 1e-12 * (1.0 + b.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WALLS: SoftWalls = SoftWalls { lower: -1.0, upper: 1.0, width: 0.2, stiffness: 100.0, damping: 10.0 };

    #[test]
    fn saturate_clamps_keeps_the_sign_of_infinity_and_zeroes_nan() {
        assert_eq!(saturate(5.0, 10.0), 5.0);
        assert_eq!(saturate(25.0, 10.0), 10.0);
        assert_eq!(saturate(-25.0, 10.0), -10.0);
        assert_eq!(saturate(f64::INFINITY, 10.0), 10.0);
        assert_eq!(saturate(f64::NEG_INFINITY, 10.0), -10.0);
        assert_eq!(saturate(f64::NAN, 10.0), 0.0);
    }

    #[test]
    fn velocity_fade_acts_only_along_a_motion_faster_than_the_soft_velocity() {
        // Soft velocity 0.8 × 2 = 1.6 rad/s.
        assert_eq!(velocity_fade(10.0, 1.0, 2.0, 0.8, 0.0), 10.0, "below the soft velocity");
        assert_eq!(velocity_fade(-10.0, 1.9, 2.0, 0.8, 0.0), -10.0, "braking passes");
        assert!((velocity_fade(10.0, 1.8, 2.0, 0.8, 0.0) - 5.0).abs() < 1e-12, "halfway between soft and limit");
        assert!((velocity_fade(-10.0, -1.8, 2.0, 0.8, 0.0) + 5.0).abs() < 1e-12, "symmetric");
        assert_eq!(velocity_fade(10.0, 2.0, 2.0, 0.8, 0.0), 0.0, "zero at the limit");
        assert_eq!(velocity_fade(10.0, 3.0, 2.0, 0.8, 0.0), 0.0, "zero beyond it");
    }

    #[test]
    fn the_velocity_brake_opposes_a_motion_faster_than_the_soft_velocity_and_grows_with_it() {
        // Soft velocity 0.8 × 2 = 1.6 rad/s, brake 5 Nm s/rad.
        assert_eq!(velocity_fade(0.0, 1.6, 2.0, 0.8, 5.0), 0.0, "nothing at the soft velocity");
        assert_eq!(velocity_fade(3.0, -1.0, 2.0, 0.8, 5.0), 3.0, "nothing below it");
        assert!((velocity_fade(0.0, 1.8, 2.0, 0.8, 5.0) + 1.0).abs() < 1e-12, "a free motion is braked");
        assert!((velocity_fade(0.0, -1.8, 2.0, 0.8, 5.0) - 1.0).abs() < 1e-12, "in either direction");
        assert!((velocity_fade(10.0, 1.8, 2.0, 0.8, 5.0) - 4.0).abs() < 1e-12, "a drive along it fades, then brakes");
        assert!((velocity_fade(-2.0, 1.8, 2.0, 0.8, 5.0) + 3.0).abs() < 1e-12, "braking passes and adds up");
        assert!((velocity_fade(0.0, 2.4, 2.0, 0.8, 5.0) + 4.0).abs() < 1e-12, "it keeps growing past the limit");
    }

    #[test]
    fn soft_walls_pass_torque_outside_the_wall_zones() {
        assert_eq!(soft_walls(3.0, 0.0, 5.0, &WALLS, 1.0), 3.0);
        assert_eq!(soft_walls(-3.0, 0.79, -5.0, &WALLS, 1.0), -3.0);
    }

    #[test]
    fn soft_walls_fade_outward_torque_and_push_back() {
        // Halfway into the upper wall (penetration 0.1 rad), at rest: outward torque halved, spring 10 Nm back.
        let tau = soft_walls(4.0, 0.9, 0.0, &WALLS, 1.0);
        assert!((tau - (2.0 - 10.0)).abs() < 1e-12, "{tau}");
        // Inward torque is not faded; moving outward adds the damper (10 Nm·s/rad × 1 rad/s).
        let tau = soft_walls(-4.0, 0.9, 1.0, &WALLS, 1.0);
        assert!((tau - (-4.0 - 10.0 - 10.0)).abs() < 1e-12, "{tau}");
        // Moving back inside: no damping against the return.
        let tau = soft_walls(0.0, 0.9, -1.0, &WALLS, 1.0);
        assert!((tau + 10.0).abs() < 1e-12, "{tau}");
        // The lower wall mirrors it.
        let tau = soft_walls(-4.0, -0.9, -1.0, &WALLS, 1.0);
        assert!((tau - (-2.0 + 10.0 + 10.0)).abs() < 1e-12, "{tau}");
        // At and beyond the limit no outward torque is left.
        assert!(soft_walls(4.0, 1.05, 0.0, &WALLS, 0.0) == 0.0);
    }

    #[test]
    fn soft_walls_scale_the_spring_damper_but_not_the_outward_fade() {
        let half = soft_walls(4.0, 0.9, 0.0, &WALLS, 0.5);
        assert!((half - (2.0 - 5.0)).abs() < 1e-12, "{half}");
        // A zero scale skips the spring–damper, also with an infinite stiffness (no 0·∞ = NaN).
        let stiff = SoftWalls { stiffness: f64::INFINITY, ..WALLS };
        let unscaled = soft_walls(4.0, 0.9, 0.0, &stiff, 0.0);
        assert!((unscaled - 2.0).abs() < 1e-12, "{unscaled}");
    }

    #[test]
    fn a_zero_width_wall_cuts_outward_torque_beyond_the_limit() {
        let walls = SoftWalls { width: 0.0, ..WALLS };
        assert_eq!(soft_walls(4.0, 1.0, 0.0, &walls, 0.0), 4.0, "at the limit: not inside a zero-width wall");
        assert_eq!(soft_walls(4.0, 1.01, 0.0, &walls, 0.0), 0.0);
        assert_eq!(soft_walls(-4.0, -1.01, 0.0, &walls, 0.0), 0.0);
    }

    #[test]
    fn soft_walls_overflow_to_infinity_not_nan() {
        let tau = soft_walls(0.0, 1e300, 1e300, &SoftWalls { stiffness: 1e10, ..WALLS }, 1.0);
        assert_eq!(tau, f64::NEG_INFINITY);
        assert_eq!(saturate(tau, 10.0), -10.0, "the next saturation pushes back with the full limit");
    }

    #[test]
    fn rate_limit_bounds_the_step_from_the_previous_output() {
        assert_eq!(rate_limit(5.0, 0.0, 1.0), 1.0);
        assert_eq!(rate_limit(-5.0, 0.0, 1.0), -1.0);
        assert_eq!(rate_limit(0.5, 0.0, 1.0), 0.5);
        assert_eq!(rate_limit(f64::INFINITY, 2.0, 1.0), 3.0);
        assert_eq!(rate_limit(7.0, 7.0, 0.0), 7.0);
    }

    #[test]
    fn changed_ignores_rounding_and_shaped_merges_stages() {
        assert!(!changed(1.0 + 1e-15, 1.0));
        assert!(changed(1.0 + 1e-9, 1.0));
        let mut tick = Shaped { rate: true, ..Shaped::default() };
        assert!(tick.any());
        tick.merge(Shaped { walls: true, ..Shaped::default() });
        assert_eq!(tick, Shaped { walls: true, rate: true, ..Shaped::default() });
        assert!(!Shaped::default().any());
    }
}
