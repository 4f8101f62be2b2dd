//! Scalar resource values in Mesos' fixed point: three decimal digits, kept as an integer.
//!
//! Mesos compares and adds scalars after `llround(v * 1000)`, so `0.1 + 0.2 == 0.3` holds and no
//! drift accumulates over millions of allocations. We keep the integer itself instead of
//! re-quantising an `f64` after every step: the results are the same and arithmetic is exact.

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

/// A non-negative or negative quantity with three decimal digits (`1.5` is `Scalar::from_millis(1500)`).
///
/// ```
/// use mesos_core::resources::Scalar;
/// let a = Scalar::from_f64(0.1).unwrap() + Scalar::from_f64(0.2).unwrap();
/// assert_eq!(a, Scalar::from_f64(0.3).unwrap());
/// assert_eq!(a.to_string(), "0.3");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scalar(i64);

impl Scalar {
    /// Zero.
    pub const ZERO: Scalar = Scalar(0);

    /// A scalar from thousandths (`1500` is `1.5`).
    pub const fn from_millis(millis: i64) -> Self {
        Scalar(millis)
    }

    /// A scalar from whole units.
    pub const fn from_units(units: i64) -> Self {
        Scalar(units * 1000)
    }

    /// Rounds `value` to three decimals, half away from zero, as Mesos' `toFixed` does.
    /// Returns `None` for NaN, infinities and values whose thousandths do not fit in an `i64`.
    pub fn from_f64(value: f64) -> Option<Self> {
        if !value.is_finite() {
            return None;
        }
        let scaled = (value * 1000.0).round();
        // i64::MAX as f64 rounds up to 2^63, which itself does not fit.
        const LIMIT: f64 = 9.223_372_036_854_775e18;
        if !(-LIMIT..LIMIT).contains(&scaled) {
            return None;
        }
        Some(Scalar(scaled as i64))
    }

    /// The value in thousandths.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// The value as a float (exact up to the float's precision).
    pub fn as_f64(self) -> f64 {
        (self.0 / 1000) as f64 + (self.0 % 1000) as f64 / 1000.0
    }

    /// True when the value is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// True when the value is below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// `self - other`, but never below zero.
    pub fn saturating_sub(self, other: Scalar) -> Scalar {
        Scalar(self.0.saturating_sub(other.0).max(0))
    }
}

impl Add for Scalar {
    type Output = Scalar;
    fn add(self, rhs: Scalar) -> Scalar {
        Scalar(self.0.saturating_add(rhs.0))
    }
}

impl Sub for Scalar {
    type Output = Scalar;
    fn sub(self, rhs: Scalar) -> Scalar {
        Scalar(self.0.saturating_sub(rhs.0))
    }
}

impl AddAssign for Scalar {
    fn add_assign(&mut self, rhs: Scalar) {
        *self = *self + rhs;
    }
}

impl SubAssign for Scalar {
    fn sub_assign(&mut self, rhs: Scalar) {
        *self = *self - rhs;
    }
}

impl std::iter::Sum for Scalar {
    fn sum<I: Iterator<Item = Scalar>>(iter: I) -> Scalar {
        iter.fold(Scalar::ZERO, |a, b| a + b)
    }
}

/// Prints like Mesos: up to three decimals, no trailing zeros (`2`, `45.55`, `0.001`).
impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (units, frac) = (abs / 1000, abs % 1000);
        if frac == 0 {
            write!(f, "{sign}{units}")
        } else {
            let digits = format!("{frac:03}");
            write!(f, "{sign}{units}.{}", digits.trim_end_matches('0'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(Scalar::from_f64(0.0005).unwrap().millis(), 1);
        assert_eq!(Scalar::from_f64(0.0004).unwrap().millis(), 0);
        assert_eq!(Scalar::from_f64(-0.0005).unwrap().millis(), -1);
        assert_eq!(Scalar::from_f64(2.0015).unwrap().millis(), 2002);
    }

    #[test]
    fn rejects_non_finite_and_huge() {
        assert_eq!(Scalar::from_f64(f64::NAN), None);
        assert_eq!(Scalar::from_f64(f64::INFINITY), None);
        assert_eq!(Scalar::from_f64(1e300), None);
        assert!(Scalar::from_f64(9e15).is_some());
    }

    #[test]
    fn displays_without_trailing_zeros() {
        assert_eq!(Scalar::from_millis(2000).to_string(), "2");
        assert_eq!(Scalar::from_millis(45550).to_string(), "45.55");
        assert_eq!(Scalar::from_millis(1).to_string(), "0.001");
        assert_eq!(Scalar::from_millis(-1500).to_string(), "-1.5");
    }

    #[test]
    fn float_sums_do_not_drift() {
        let tenth = Scalar::from_f64(0.1).unwrap();
        let total: Scalar = std::iter::repeat_n(tenth, 1_000_000).sum();
        assert_eq!(total, Scalar::from_units(100_000));
        assert_eq!(Scalar::from_millis(1500).as_f64(), 1.5);
    }
}
