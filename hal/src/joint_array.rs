//! [`JointArray`]: a fixed-capacity, `Copy` per-joint vector used on every real-time path.

use core::ops::{Deref, DerefMut};

/// Most joints one robot may have. Fixed so that states and commands are `Copy`, live on the stack and cross
/// threads without allocation. 8 covers the 4- and 6-joint exoskeletons and a 7-DOF test arm.
pub const MAX_JOINTS: usize = 8;

/// A per-joint vector of length `len() <= MAX_JOINTS` with inline storage (no heap).
///
/// Dereferences to a slice of exactly `len()` elements, so `a[i]`, `a.iter()` and slice methods work.
///
/// ```
/// use plexo_hal::JointArray;
/// let mut torque = JointArray::splat(4, 0.0_f64);
/// torque[2] = 1.5;
/// assert_eq!(torque.len(), 4);
/// assert_eq!(&torque[..], &[0.0, 0.0, 1.5, 0.0]);
/// ```
#[derive(Clone, Copy, PartialEq)]
pub struct JointArray<T: Copy> {
    len: usize,
    values: [T; MAX_JOINTS],
}

impl<T: Copy + Default> JointArray<T> {
    /// `len` copies of `value`. Real-time safe.
    ///
    /// # Panics
    /// If `len > MAX_JOINTS` (a configuration error caught when a robot is built, never in the loop).
    pub fn splat(len: usize, value: T) -> Self {
        assert!(len <= MAX_JOINTS, "{len} joints exceed MAX_JOINTS = {MAX_JOINTS}");
        let mut values = [T::default(); MAX_JOINTS];
        values[..len].fill(value);
        Self { len, values }
    }

    /// A copy of `slice`, or `None` if it is longer than [`MAX_JOINTS`]. Real-time safe.
    pub fn from_slice(slice: &[T]) -> Option<Self> {
        if slice.len() > MAX_JOINTS {
            return None;
        }
        let mut values = [T::default(); MAX_JOINTS];
        values[..slice.len()].copy_from_slice(slice);
        Some(Self { len: slice.len(), values })
    }
}

impl<T: Copy + Default> Default for JointArray<T> {
    fn default() -> Self {
        Self { len: 0, values: [T::default(); MAX_JOINTS] }
    }
}

impl<T: Copy> Deref for JointArray<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.values[..self.len]
    }
}

impl<T: Copy> DerefMut for JointArray<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.values[..self.len]
    }
}

impl<T: Copy + core::fmt::Debug> core::fmt::Debug for JointArray<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl JointArray<f64> {
    /// True if every element is finite (no NaN, no ±Inf). Real-time safe.
    pub fn all_finite(&self) -> bool {
        self.iter().all(|v| v.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_slice_rejects_too_many_joints() {
        assert!(JointArray::from_slice(&[0.0_f64; MAX_JOINTS + 1]).is_none());
        let a = JointArray::from_slice(&[1.0, 2.0]).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[1], 2.0);
    }

    #[test]
    fn all_finite_detects_nan_and_inf() {
        let mut a = JointArray::splat(3, 0.0);
        assert!(a.all_finite());
        a[1] = f64::NAN;
        assert!(!a.all_finite());
        a[1] = f64::INFINITY;
        assert!(!a.all_finite());
    }

    #[test]
    fn elements_past_len_are_invisible() {
        let a = JointArray::splat(2, 7.0);
        assert_eq!(a.iter().count(), 2);
        assert_eq!(format!("{a:?}"), "[7.0, 7.0]");
    }
}
