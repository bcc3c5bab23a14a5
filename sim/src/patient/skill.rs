//! The patient's motor skill in the movement itself: planning error (aim and endpoint bias), submovements and
//! their blending, and signal-dependent motor noise, all graded by the skill `σ` in [0, 1] that the two-rate
//! internal model ([`super::trial`]) learns. Models and citations: the [`crate::patient`] module docs ("Skill").

use plexo_hal::JointArray;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use rand_distr::StandardNormal;

use super::profile::SkillProfile;

/// Most submovements a reach is planned as (1 + the profile's maximum of 5 extra).
pub(super) const MAX_SUBMOVEMENTS: usize = 6;

/// Time constant of each of the two cascaded first-order lags that shape the motor noise [s]: the noise enters
/// the neural command and is low-passed by the muscle (force twitch contraction times of tens of ms; Harris &
/// Wolpert 1998 low-pass their signal-dependent noise through the muscle's second-order dynamics). A modelling
/// choice that keeps the torque free of 1 ms steps.
const NOISE_TIME: f64 = 0.04;
/// Fraction of the motor noise left at full skill (practice lowers movement variability; a modelling choice).
const SKILLED_NOISE: f64 = 0.5;

/// A reach as the patient plans it: `count` minimum-jerk submovements of `each` seconds, started `interval`
/// seconds apart, the `k`-th to `goals[k]`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Submovements {
    pub count: usize,
    pub goals: [JointArray<f64>; MAX_SUBMOVEMENTS],
    /// Duration of each submovement [s].
    pub each: f64,
    /// Time between the starts of successive submovements [s].
    pub interval: f64,
}

/// Seeded planning error and motor noise of one patient.
#[derive(Clone, Debug)]
pub(super) struct Skill {
    profile: SkillProfile,
    dof: usize,
    /// Joints that can move voluntarily (max torque > 0): planning errors only displace those.
    active: JointArray<f64>,
    /// Fixed direction of the endpoint bias (unit norm over the active joints).
    bias_direction: JointArray<f64>,
    rng: SmallRng,
    /// Noise filter states (two cascaded lags per joint).
    noise: [JointArray<f64>; 2],
    noise_decay: f64,
    noise_input: f64,
}

impl Skill {
    /// The skill of a patient with `dof` joints whose maximum torques are `max_torque` [Nm], at period `dt` [s],
    /// seeded with `seed`. Not real-time safe (draws the bias direction).
    pub(super) fn new(profile: &SkillProfile, max_torque: &JointArray<f64>, dt: f64, seed: u64) -> Self {
        let dof = max_torque.len();
        let mut active = JointArray::splat(dof, 0.0);
        for i in 0..dof {
            active[i] = if max_torque[i] > 0.0 { 1.0 } else { 0.0 };
        }
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut bias_direction = JointArray::splat(dof, 0.0);
        random_unit(&mut rng, &active, None, &mut bias_direction);
        let a = (-dt / NOISE_TIME).exp();
        let b = 1.0 - a;
        // Variance of unit white noise through b²/(1 − a z⁻¹)²: b⁴ (1 + a²) / (1 − a²)³.
        let gain2 = b.powi(4) * (1.0 + a * a) / (1.0 - a * a).powi(3);
        let z = JointArray::splat(dof, 0.0);
        Self {
            profile: *profile,
            dof,
            active,
            bias_direction,
            rng,
            noise: [z, z],
            noise_decay: a,
            noise_input: 1.0 / gain2.sqrt(),
        }
    }

    /// Re-seeds the random parts (a resumed patient is reproducible); the bias direction is the patient's own and
    /// stays.
    pub(super) fn reseed(&mut self, seed: u64) {
        self.rng = SmallRng::seed_from_u64(seed);
        let z = JointArray::splat(self.dof, 0.0);
        self.noise = [z, z];
    }

    /// Plans a reach from `q0` to `goal` [rad] lasting `duration` [s] at skill `sigma`: submovement count,
    /// blending, endpoint bias and aim error (see [`SkillProfile`]). Real-time safe.
    pub(super) fn plan(&mut self, sigma: f64, q0: &[f64], goal: &[f64], duration: f64) -> Submovements {
        let p = &self.profile;
        let n = self.dof;
        let deficit = 1.0 - sigma.clamp(0.0, 1.0);
        let count = (1 + (deficit * f64::from(p.submovements)).round() as usize).min(MAX_SUBMOVEMENTS);
        let overlap = sigma.clamp(0.0, 1.0) * p.blend;
        let each = duration / (1.0 + (count as f64 - 1.0) * (1.0 - overlap));
        let interval = (1.0 - overlap) * each;
        // Endpoint bias (fixed direction) and this trial's aim error (random direction perpendicular to the
        // movement, over the active joints).
        let mut target = JointArray::splat(n, 0.0);
        let mut span = JointArray::splat(n, 0.0);
        for i in 0..n {
            target[i] = goal[i] + deficit * p.endpoint_bias * self.bias_direction[i];
            span[i] = (target[i] - q0[i]) * self.active[i];
        }
        let amplitude = span.iter().map(|x| x * x).sum::<f64>().sqrt();
        let mut aim = JointArray::splat(n, 0.0);
        if p.aim_error > 0.0 {
            random_unit(&mut self.rng, &self.active, Some(&span), &mut aim);
        }
        let aim_size = deficit * p.aim_error * amplitude;
        let mut goals = [JointArray::splat(n, 0.0); MAX_SUBMOVEMENTS];
        for (k, g) in goals.iter_mut().enumerate().take(count) {
            let frac = (k + 1) as f64 / count as f64;
            // The last submovement corrects the aim error, unless there is only one.
            let aim_frac = if k + 1 < count {
                frac
            } else if count == 1 {
                1.0
            } else {
                0.0
            };
            for i in 0..n {
                g[i] = q0[i] + frac * (target[i] - q0[i]) + aim_frac * aim_size * aim[i];
            }
        }
        Submovements { count, goals, each, interval }
    }

    /// Multiplicative signal-dependent noise factor of joint `i` this period at skill `sigma`: `1 + c ξ` with `ξ`
    /// unit-variance low-passed Gaussian noise and `c = motor_noise × (1 − (1 − SKILLED_NOISE) σ)`. Call once
    /// per joint per period. Real-time safe.
    pub(super) fn noise_factor(&mut self, i: usize, sigma: f64) -> f64 {
        let c = self.profile.motor_noise * (1.0 - (1.0 - SKILLED_NOISE) * sigma.clamp(0.0, 1.0));
        if c <= 0.0 {
            return 1.0;
        }
        let w: f64 = self.rng.sample(StandardNormal);
        let (a, b) = (self.noise_decay, 1.0 - self.noise_decay);
        self.noise[0][i] = a * self.noise[0][i] + b * self.noise_input * w;
        self.noise[1][i] = a * self.noise[1][i] + b * self.noise[0][i];
        1.0 + c * self.noise[1][i]
    }
}

/// A random unit vector over the `active` joints (Gaussian direction), perpendicular to `normal` if given (and
/// non-zero); zero if no direction is left.
fn random_unit(
    rng: &mut SmallRng,
    active: &JointArray<f64>,
    normal: Option<&JointArray<f64>>,
    out: &mut JointArray<f64>,
) {
    for i in 0..out.len() {
        let w: f64 = rng.sample(StandardNormal);
        out[i] = w * active[i];
    }
    if let Some(nrm) = normal {
        let nn: f64 = nrm.iter().map(|x| x * x).sum();
        if nn > 1e-12 {
            let dot: f64 = out.iter().zip(nrm.iter()).map(|(a, b)| a * b).sum();
            for i in 0..out.len() {
                out[i] -= dot / nn * nrm[i];
            }
        }
    }
    let norm = out.iter().map(|x| x * x).sum::<f64>().sqrt();
    for x in out.iter_mut() {
        *x = if norm > 1e-12 { *x / norm } else { 0.0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> SkillProfile {
        SkillProfile {
            aim_error: 0.3,
            endpoint_bias: 0.1,
            submovements: 3,
            blend: 0.6,
            motor_noise: 0.1,
            ..Default::default()
        }
    }

    #[test]
    fn an_unskilled_plan_has_more_separate_submovements_and_larger_errors_than_a_skilled_one() {
        let max = JointArray::from_slice(&[10.0, 10.0, 0.0, 10.0]).unwrap();
        let mut skill = Skill::new(&profile(), &max, 1e-3, 7);
        let (q0, goal) = ([0.0; 4], [0.5, 0.8, 0.2, 1.3]);
        let raw = skill.plan(0.0, &q0, &goal, 2.0);
        assert_eq!(raw.count, 4);
        assert!((raw.interval - raw.each).abs() < 1e-12, "no overlap at skill 0");
        assert!((raw.interval * 3.0 + raw.each - 2.0).abs() < 1e-12, "the reach lasts the requested time");
        let end = raw.goals[raw.count - 1];
        let bias = (0..4).map(|i| (end[i] - goal[i]).powi(2)).sum::<f64>().sqrt();
        assert!((bias - 0.1).abs() < 1e-9, "endpoint bias {bias}");
        assert_eq!(end[2], goal[2], "a paralysed joint is not displaced by the plan");
        let skilled = skill.plan(1.0, &q0, &goal, 2.0);
        assert_eq!(skilled.count, 1);
        assert!((0..4).all(|i| (skilled.goals[0][i] - goal[i]).abs() < 1e-12), "full skill plans the goal");
        let mid = skill.plan(0.5, &q0, &goal, 2.0);
        assert!(mid.count == 3 && mid.interval < mid.each, "blended: {mid:?}");
    }

    #[test]
    fn motor_noise_is_seeded_and_scales_with_the_deficit() {
        let max = JointArray::splat(2, 10.0);
        let sd = |sigma: f64, seed: u64| {
            let mut s = Skill::new(&profile(), &max, 1e-3, seed);
            let xs: Vec<f64> = (0..20_000).map(|_| s.noise_factor(0, sigma) - 1.0).collect();
            (xs.iter().map(|x| x * x).sum::<f64>() / xs.len() as f64).sqrt()
        };
        let (raw, skilled) = (sd(0.0, 1), sd(1.0, 1));
        let mut s = Skill::new(&profile(), &max, 1e-3, 3);
        let xs: Vec<f64> = (0..20_000).map(|_| s.noise_factor(0, 0.0)).collect();
        let step = xs.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f64::max);
        assert!(step < 0.02 * 0.1 / 0.1 * 0.5, "largest 1 ms step of the noise factor {step}");
        assert_eq!(raw, sd(0.0, 1), "same seed, same noise");
        assert!((raw - 0.1).abs() < 0.03, "unskilled noise sd {raw}");
        assert!((skilled / raw - 0.5).abs() < 0.1, "skilled/unskilled {}", skilled / raw);
    }
}
