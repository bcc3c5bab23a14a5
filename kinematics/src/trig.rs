//! Fast, accurate `sin_cos` for joint angles: the libm call dominates forward kinematics otherwise.
//!
//! Cody–Waite reduction by π/2 (three-part split of π/2 so `k · part` is exact for |k| < 2²⁰), then Taylor series
//! of sin and cos on |r| ≤ π/4 truncated where the next term is below 10⁻¹⁸, evaluated with Estrin's scheme. Arguments beyond ±10⁵ rad (or NaN)
//! fall back to the standard library.

use std::f64::consts::FRAC_2_PI;

// π/2 = PIO2_1 + PIO2_2 + PIO2_3, the first two with 33 significant bits.
const PIO2_1: f64 = 1.570_796_326_734_125_6;
const PIO2_2: f64 = 6.077_100_506_506_192e-11;
const PIO2_3: f64 = 2.022_266_248_795_950_6e-21;

#[inline(always)]
pub(crate) fn sin_cos(x: f64) -> (f64, f64) {
    if x.is_nan() || x.abs() >= 1e5 {
        return x.sin_cos();
    }
    // Round to nearest without a libm call (no SSE4.1 `roundsd` on baseline x86-64): adding 1.5·2⁵² pushes the
    // fraction bits out of the mantissa. Exact for |x·2/π| < 2⁵¹.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let k = (x * FRAC_2_PI + ROUND) - ROUND;
    let r = ((x - k * PIO2_1) - k * PIO2_2) - k * PIO2_3;
    let z = r * r;
    let z2 = z * z;
    let z4 = z2 * z2;
    let z8 = z4 * z4;
    // Taylor series on |r| ≤ π/4 (next terms < 10⁻¹⁸), evaluated by Estrin's scheme in z = r² for a short
    // dependency chain. sin r = r Σ (−1)ⁿ zⁿ/(2n+1)!, n = 0..8; cos r = Σ (−1)ⁿ zⁿ/(2n)!, n = 0..9.
    let s = r
        * ((1.0 - z * (1.0 / 6.0))
            + z2 * (1.0 / 120.0 - z * (1.0 / 5040.0))
            + z4 * ((1.0 / 362_880.0 - z * (1.0 / 39_916_800.0))
                + z2 * (1.0 / 6_227_020_800.0 - z * (1.0 / 1_307_674_368_000.0)))
            + z8 * (1.0 / 355_687_428_096_000.0));
    let c = (1.0 - 0.5 * z)
        + z2 * (1.0 / 24.0 - z * (1.0 / 720.0))
        + z4 * ((1.0 / 40_320.0 - z * (1.0 / 3_628_800.0)) + z2 * (1.0 / 479_001_600.0 - z * (1.0 / 87_178_291_200.0)))
        + z8 * (1.0 / 20_922_789_888_000.0 - z * (1.0 / 6_402_373_705_728_000.0));
    match (k as i64) & 3 {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_library_to_a_few_ulp() {
        let mut worst: f64 = 0.0;
        let mut x = -1000.0;
        while x < 1000.0 {
            let (s, c) = sin_cos(x);
            let (s0, c0) = x.sin_cos();
            worst = worst.max((s - s0).abs()).max((c - c0).abs());
            x += 0.000_731;
        }
        assert!(worst < 1e-15, "worst error {worst}");
        for special in [0.0, -0.0, std::f64::consts::FRAC_PI_2, std::f64::consts::PI, -std::f64::consts::PI, 1e6, -3e7]
        {
            let (s, c) = sin_cos(special);
            let (s0, c0) = special.sin_cos();
            assert!((s - s0).abs() < 1e-15 && (c - c0).abs() < 1e-15, "{special}");
        }
        let (s, c) = sin_cos(f64::NAN);
        assert!(s.is_nan() && c.is_nan());
        let (s, _) = sin_cos(f64::INFINITY);
        assert!(s.is_nan());
    }
}
