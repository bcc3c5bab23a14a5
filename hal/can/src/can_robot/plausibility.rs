//! Plausibility checks of drive replies (see the module docs of `CanRobot`): a reply that would move a joint
//! faster than physics allows, or report a velocity or torque far beyond the drive's limits, is rejected like a
//! missing one. Pure functions of the values; the joint state is kept by the caller.

use core::time::Duration;

/// Position jump bound: `SPEED_FACTOR · max(v_max, |q̇|) · Δt + POSITION_MARGIN + 2 · quantisation`.
const SPEED_FACTOR: f64 = 2.0;
/// Position margin of the jump bound [rad] (encoder noise, quantisation, timing jitter).
const POSITION_MARGIN: f64 = 0.02;
/// Velocity bound: `VELOCITY_FACTOR · v_max + VELOCITY_MARGIN` [rad/s].
const VELOCITY_FACTOR: f64 = 4.0;
const VELOCITY_MARGIN: f64 = 1.0;
/// CiA 402 torque bound: `1.25 · max torque + 20 ‰`.
const TORQUE_FACTOR: f64 = 1.25;
const TORQUE_MARGIN_PERMILLE: f64 = 20.0;

/// Why a reply was rejected (kept for the error message).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Rejection {
    /// Position jumped from `from` to `to` [rad] where at most `bound` [rad] was possible.
    Jump { from: f64, to: f64, bound: f64 },
    /// Velocity `value` [rad/s] beyond `bound`.
    Velocity { value: f64, bound: f64 },
    /// Torque `value` [‰] beyond `bound`.
    Torque { value: f64, bound: f64 },
}

impl core::fmt::Display for Rejection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Rejection::Jump { from, to, bound } => {
                write!(f, "position jumped {from:.4} → {to:.4} rad (at most {bound:.4} rad possible)")
            }
            Rejection::Velocity { value, bound } => write!(f, "velocity {value:.3} rad/s beyond {bound:.3} rad/s"),
            Rejection::Torque { value, bound } => write!(f, "torque {value:.0} ‰ beyond {bound:.0} ‰"),
        }
    }
}

/// The last accepted sample of a joint, what a new position is checked against.
#[derive(Clone, Copy, Debug)]
pub(super) struct LastAccepted {
    /// Position [rad].
    pub position: f64,
    /// Velocity [rad/s].
    pub velocity: f64,
    /// When it was accepted (bus time).
    pub at: Duration,
}

/// Checks a reported link position [rad] at `now` against the last accepted sample (none after start-up and
/// reset: then anything goes). `velocity_max` [rad/s] is the joint's limit, `step` [rad] the position
/// quantisation of the protocol at the link.
pub(super) fn check_position(
    last: Option<LastAccepted>,
    velocity_max: f64,
    step: f64,
    position: f64,
    now: Duration,
) -> Option<Rejection> {
    let last = last?;
    let elapsed = now.saturating_sub(last.at).as_secs_f64();
    let speed = velocity_max.max(last.velocity.abs());
    let bound = SPEED_FACTOR * speed * elapsed + POSITION_MARGIN + 2.0 * step;
    ((position - last.position).abs() > bound).then_some(Rejection::Jump { from: last.position, to: position, bound })
}

/// Checks a reported link velocity [rad/s] against the joint's limit `velocity_max` [rad/s].
pub(super) fn check_velocity(velocity_max: f64, velocity: f64) -> Option<Rejection> {
    let bound = VELOCITY_FACTOR * velocity_max + VELOCITY_MARGIN;
    (velocity.abs() > bound).then_some(Rejection::Velocity { value: velocity, bound })
}

/// Checks a reported CiA 402 torque [‰ of rated] against the drive's max torque (0x6072) [‰].
pub(super) fn check_torque_permille(max_torque_permille: u16, torque: f64) -> Option<Rejection> {
    let bound = TORQUE_FACTOR * f64::from(max_torque_permille) + TORQUE_MARGIN_PERMILLE;
    (torque.abs() > bound).then_some(Rejection::Torque { value: torque, bound })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_bound_grows_with_time_and_speed() {
        let last = Some(LastAccepted { position: 0.0, velocity: 0.0, at: Duration::ZERO });
        let now = Duration::from_millis(2);
        // 2 · 6 rad/s · 2 ms + 0.02 rad = 0.044 rad.
        assert!(check_position(last, 6.0, 0.0, 0.04, now).is_none());
        assert!(matches!(check_position(last, 6.0, 0.0, 0.05, now), Some(Rejection::Jump { .. })));
        assert!(check_position(None, 6.0, 0.0, 3.0, now).is_none(), "no reference after start-up");
    }

    #[test]
    fn velocity_and_torque_bounds() {
        assert!(check_velocity(6.0, 25.0).is_none());
        assert!(check_velocity(6.0, -25.5).is_some());
        assert!(check_torque_permille(1000, 1270.0).is_none());
        assert!(check_torque_permille(1000, 1271.0).is_some());
    }
}
