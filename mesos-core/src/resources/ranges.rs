//! Ranges values (`[31000-32000, 33000-33005]`) kept normalised.
//!
//! Every `Ranges` is sorted by start with overlapping or adjacent ranges merged, the form Mesos
//! calls "coalesced". Keeping it normalised at all times makes equality structural and lets
//! containment and subtraction run as one linear sweep.

use std::fmt;

/// One inclusive range `begin..=end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Range {
    /// First value in the range.
    pub begin: u64,
    /// Last value in the range (inclusive).
    pub end: u64,
}

impl Range {
    /// A range; `begin` must not exceed `end` (callers validate input first).
    pub const fn new(begin: u64, end: u64) -> Self {
        Range { begin, end }
    }

    /// How many values the range holds.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.begin).saturating_add(1)
    }

    /// Never true: a range holds at least one value. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A normalised set of inclusive ranges.
///
/// ```
/// use mesos_core::resources::{Range, Ranges};
/// let r = Ranges::new([Range::new(5, 7), Range::new(1, 4), Range::new(10, 10)]);
/// assert_eq!(r.to_string(), "[1-7, 10-10]");
/// assert_eq!(r.count(), 8);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ranges(Vec<Range>);

impl Ranges {
    /// Normalises any ranges (each must have `begin <= end`; inverted ones are dropped).
    pub fn new(ranges: impl IntoIterator<Item = Range>) -> Self {
        let mut v: Vec<Range> = ranges.into_iter().filter(|r| r.begin <= r.end).collect();
        v.sort_unstable();
        Ranges(coalesce_sorted(v))
    }

    /// A single range.
    pub fn single(begin: u64, end: u64) -> Self {
        Ranges::new([Range::new(begin, end)])
    }

    /// The ranges, sorted and disjoint.
    pub fn ranges(&self) -> &[Range] {
        &self.0
    }

    /// Iterates over the ranges.
    pub fn iter(&self) -> impl Iterator<Item = &Range> {
        self.0.iter()
    }

    /// True when no value is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of values held (Mesos' quantity of a ranges resource).
    pub fn count(&self) -> u64 {
        self.0
            .iter()
            .map(Range::len)
            .fold(0u64, u64::saturating_add)
    }

    /// True when `value` lies in one of the ranges.
    pub fn contains_value(&self, value: u64) -> bool {
        let idx = self.0.partition_point(|r| r.end < value);
        self.0.get(idx).is_some_and(|r| r.begin <= value)
    }

    /// True when every range of `other` lies inside one range of `self`.
    pub fn contains(&self, other: &Ranges) -> bool {
        let mut i = 0;
        for r in &other.0 {
            while i < self.0.len() && self.0[i].end < r.begin {
                i += 1;
            }
            match self.0.get(i) {
                Some(l) if l.begin <= r.begin && r.end <= l.end => {}
                _ => return false,
            }
        }
        true
    }

    /// Adds `other` (union).
    pub fn add(&mut self, other: &Ranges) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            self.0.clone_from(&other.0);
            return;
        }
        let mut merged = Vec::with_capacity(self.0.len() + other.0.len());
        let (mut i, mut j) = (0, 0);
        while i < self.0.len() || j < other.0.len() {
            let take_left = j >= other.0.len() || (i < self.0.len() && self.0[i] <= other.0[j]);
            if take_left {
                merged.push(self.0[i]);
                i += 1;
            } else {
                merged.push(other.0[j]);
                j += 1;
            }
        }
        self.0 = coalesce_sorted(merged);
    }

    /// Removes every value of `other` (difference); values not present are ignored.
    pub fn subtract(&mut self, other: &Ranges) {
        if other.is_empty() || self.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(self.0.len() + 1);
        let mut j = 0;
        for l in &self.0 {
            let mut cur = *l;
            let mut alive = true;
            while j < other.0.len() && other.0[j].end < cur.begin {
                j += 1;
            }
            let mut k = j;
            while alive && k < other.0.len() && other.0[k].begin <= cur.end {
                let r = other.0[k];
                if r.begin > cur.begin {
                    out.push(Range::new(cur.begin, r.begin - 1));
                }
                if r.end >= cur.end {
                    alive = false;
                } else {
                    cur.begin = r.end + 1;
                    k += 1;
                }
            }
            if alive {
                out.push(cur);
            }
        }
        self.0 = out;
    }

    /// Iterates over every single value, lowest first.
    pub fn values(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().flat_map(|r| r.begin..=r.end)
    }
}

fn coalesce_sorted(v: Vec<Range>) -> Vec<Range> {
    let mut out: Vec<Range> = Vec::with_capacity(v.len());
    for r in v {
        match out.last_mut() {
            Some(last) if r.begin <= last.end.saturating_add(1) => {
                last.end = last.end.max(r.end);
            }
            _ => out.push(r),
        }
    }
    out
}

impl FromIterator<Range> for Ranges {
    fn from_iter<I: IntoIterator<Item = Range>>(iter: I) -> Self {
        Ranges::new(iter)
    }
}

/// Mesos' text form: `[a-b, c-d]`.
impl fmt::Display for Ranges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}-{}", r.begin, r.end)?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(v: &[(u64, u64)]) -> Ranges {
        Ranges::new(v.iter().map(|&(a, b)| Range::new(a, b)))
    }

    #[test]
    fn merges_overlapping_and_adjacent() {
        assert_eq!(rs(&[(1, 3), (4, 6)]).ranges(), &[Range::new(1, 6)]);
        assert_eq!(rs(&[(1, 5), (2, 3)]).ranges(), &[Range::new(1, 5)]);
        assert_eq!(
            rs(&[(10, 20), (1, 2)]).ranges(),
            &[Range::new(1, 2), Range::new(10, 20)]
        );
    }

    #[test]
    fn subtract_splits() {
        let mut a = rs(&[(1, 10)]);
        a.subtract(&rs(&[(3, 4), (8, 8)]));
        assert_eq!(a, rs(&[(1, 2), (5, 7), (9, 10)]));
        a.subtract(&rs(&[(100, 200)]));
        assert_eq!(a, rs(&[(1, 2), (5, 7), (9, 10)]));
        a.subtract(&rs(&[(0, 6)]));
        assert_eq!(a, rs(&[(7, 7), (9, 10)]));
        a.subtract(&rs(&[(0, u64::MAX)]));
        assert!(a.is_empty());
    }

    #[test]
    fn contains_needs_one_enclosing_range() {
        let a = rs(&[(1, 5), (7, 9)]);
        assert!(a.contains(&rs(&[(2, 3), (8, 9)])));
        assert!(!a.contains(&rs(&[(4, 8)])));
        assert!(a.contains(&Ranges::default()));
        assert!(a.contains_value(7) && !a.contains_value(6));
    }

    #[test]
    fn extremes_do_not_overflow() {
        let a = rs(&[(0, u64::MAX)]);
        assert_eq!(a.count(), u64::MAX);
        let mut b = rs(&[(u64::MAX - 1, u64::MAX)]);
        b.add(&rs(&[(0, 0)]));
        assert_eq!(b.ranges().len(), 2);
    }
}
