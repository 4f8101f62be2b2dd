//! The three value kinds a resource can hold, and sets.

use std::fmt;

use super::{Ranges, Scalar};

/// A set value (`{sda1, sdb1}`); items keep their first-seen order, as in Mesos.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Set(Vec<String>);

impl Set {
    /// A set from items; duplicates after the first are dropped.
    pub fn new<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Self {
        let mut s = Set::default();
        for item in items {
            let item = item.into();
            if !s.0.contains(&item) {
                s.0.push(item);
            }
        }
        s
    }

    /// The items in order.
    pub fn items(&self) -> &[String] {
        &self.0
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the set has no item.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `item` is in the set.
    pub fn contains_item(&self, item: &str) -> bool {
        self.0.iter().any(|i| i == item)
    }

    /// True when every item of `other` is in `self`.
    pub fn contains(&self, other: &Set) -> bool {
        other.0.iter().all(|i| self.contains_item(i))
    }

    /// Union, keeping `self`'s items first.
    pub fn add(&mut self, other: &Set) {
        for item in &other.0 {
            if !self.contains_item(item) {
                self.0.push(item.clone());
            }
        }
    }

    /// Removes the items of `other`.
    pub fn subtract(&mut self, other: &Set) {
        self.0.retain(|i| !other.contains_item(i));
    }

    /// Order-insensitive equality (what `Resources ==` uses).
    pub fn same_items(&self, other: &Set) -> bool {
        self.len() == other.len() && self.contains(other)
    }
}

/// Mesos' text form: `{a, b}`.
impl fmt::Display for Set {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.0.join(", "))
    }
}

/// The type of a resource value, as in `Value.Type` (TEXT is never a resource type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueType {
    /// A number with three decimals.
    Scalar,
    /// Inclusive integer ranges.
    Ranges,
    /// A set of strings.
    Set,
}

impl ValueType {
    /// The v1 JSON name: `SCALAR`, `RANGES` or `SET`.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Scalar => "SCALAR",
            ValueType::Ranges => "RANGES",
            ValueType::Set => "SET",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resource's value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// `cpus:2.5`
    Scalar(Scalar),
    /// `ports:[31000-32000]`
    Ranges(Ranges),
    /// `disks:{a,b}`
    Set(Set),
}

impl Value {
    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Scalar(_) => ValueType::Scalar,
            Value::Ranges(_) => ValueType::Ranges,
            Value::Set(_) => ValueType::Set,
        }
    }

    /// True for a zero scalar, no ranges or no items: such entries are dropped.
    pub fn is_empty(&self) -> bool {
        match self {
            Value::Scalar(s) => s.is_zero(),
            Value::Ranges(r) => r.is_empty(),
            Value::Set(s) => s.is_empty(),
        }
    }

    /// The quantity Mesos uses for min-allocatable checks: the scalar, the number of values
    /// in the ranges, or the number of items (in thousandths, as a [`Scalar`]).
    pub fn quantity(&self) -> Scalar {
        match self {
            Value::Scalar(s) => *s,
            Value::Ranges(r) => Scalar::from_millis(
                i64::try_from(r.count())
                    .unwrap_or(i64::MAX / 1000)
                    .saturating_mul(1000),
            ),
            Value::Set(s) => Scalar::from_units(i64::try_from(s.len()).unwrap_or(i64::MAX / 1000)),
        }
    }

    /// `self <= other` for values of the same type; false across types.
    pub(crate) fn le(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => a <= b,
            (Value::Ranges(a), Value::Ranges(b)) => b.contains(a),
            (Value::Set(a), Value::Set(b)) => b.contains(a),
            _ => false,
        }
    }

    /// Adds a value of the same type; a different type is ignored (callers check first).
    pub(crate) fn add(&mut self, other: &Value) {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => *a += *b,
            (Value::Ranges(a), Value::Ranges(b)) => a.add(b),
            (Value::Set(a), Value::Set(b)) => a.add(b),
            _ => {}
        }
    }

    /// Subtracts a value of the same type; returns false when nothing (or less than nothing) is left.
    pub(crate) fn subtract(&mut self, other: &Value) -> bool {
        match (&mut *self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => {
                *a -= *b;
                !a.is_negative() && !a.is_zero()
            }
            (Value::Ranges(a), Value::Ranges(b)) => {
                a.subtract(b);
                !a.is_empty()
            }
            (Value::Set(a), Value::Set(b)) => {
                a.subtract(b);
                !a.is_empty()
            }
            _ => true,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Scalar(s) => s.fmt(f),
            Value::Ranges(r) => r.fmt(f),
            Value::Set(s) => s.fmt(f),
        }
    }
}
