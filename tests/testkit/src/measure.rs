//! Small measurements the tests assert on.

/// The largest absolute element-wise difference of `a` and `b` (over the shorter length); 0 for empty slices.
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::max_abs_diff;

    #[test]
    fn max_abs_diff_is_the_largest_deviation_of_either_sign() {
        assert_eq!(max_abs_diff(&[1.0, 2.0, 3.0], &[1.5, 0.0, 3.0]), 2.0);
        assert_eq!(max_abs_diff(&[], &[]), 0.0);
    }
}
