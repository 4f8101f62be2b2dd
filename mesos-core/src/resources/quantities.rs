//! Per-name amounts without roles or reservations (Mesos' `ResourceQuantities`).
//!
//! The DRF sorter, quota and min-allocatable checks only care about "how much cpus, how much mem",
//! so they work on this flat, name-sorted list instead of full [`Resources`].

use std::fmt;

use super::{Name, Resources, ResourcesError, Scalar, Value};

/// A name-sorted list of `(name, amount)`; a missing name means zero.
///
/// ```
/// use mesos_core::resources::{ResourceQuantities, Scalar};
/// let q = ResourceQuantities::parse("cpus:1;mem:10").unwrap();
/// assert_eq!(q.get("cpus"), Scalar::from_units(1));
/// assert_eq!(q.get("gpus"), Scalar::ZERO);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ResourceQuantities(Vec<(Name, Scalar)>);

impl ResourceQuantities {
    /// Nothing.
    pub const fn new() -> Self {
        ResourceQuantities(Vec::new())
    }

    /// Parses `cpus:1;mem:10`: scalars only, negatives rejected, zeros dropped (as Mesos).
    pub fn parse(text: &str) -> Result<Self, ResourcesError> {
        let mut out = ResourceQuantities::new();
        for token in text.split(';').filter(|t| !t.trim().is_empty()) {
            let parts: Vec<&str> = token.split(':').collect();
            let [name, value] = parts.as_slice() else {
                return Err(ResourcesError::NotNameValue {
                    token: token.trim().to_string(),
                });
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(ResourcesError::EmptyName {
                    token: token.trim().to_string(),
                });
            }
            let value: String = value.chars().filter(|c| !c.is_whitespace()).collect();
            let s = super::parse::parse_scalar(name, &value)?;
            out.add(&Name::from(name), s);
        }
        Ok(out)
    }

    pub(super) fn from_resources_filtered(resources: &Resources, scalars_only: bool) -> Self {
        let mut out = ResourceQuantities::new();
        for r in resources {
            if scalars_only && !matches!(r.value, Value::Scalar(_)) {
                continue;
            }
            out.add(&r.name, r.value.quantity());
        }
        out
    }

    /// The amount of `name` (zero when absent).
    pub fn get(&self, name: &str) -> Scalar {
        self.0
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map_or(Scalar::ZERO, |(_, s)| *s)
    }

    /// The amount of `name` (zero when absent).
    pub fn get_name(&self, name: &Name) -> Scalar {
        match self.0.binary_search_by(|(n, _)| n.cmp(name)) {
            Ok(i) => self.0[i].1,
            Err(_) => Scalar::ZERO,
        }
    }

    /// Adds `amount` of `name`; a result of zero or less removes the name.
    pub fn add(&mut self, name: &Name, amount: Scalar) {
        match self.0.binary_search_by(|(n, _)| n.cmp(name)) {
            Ok(i) => {
                self.0[i].1 += amount;
                if self.0[i].1 <= Scalar::ZERO {
                    self.0.remove(i);
                }
            }
            Err(i) if amount > Scalar::ZERO => self.0.insert(i, (name.clone(), amount)),
            Err(_) => {}
        }
    }

    /// Subtracts, saturating at zero; names only on the right are ignored.
    pub fn subtract(&mut self, other: &ResourceQuantities) {
        for (n, s) in &other.0 {
            if let Ok(i) = self.0.binary_search_by(|(m, _)| m.cmp(n)) {
                self.0[i].1 -= *s;
                if self.0[i].1 <= Scalar::ZERO {
                    self.0.remove(i);
                }
            }
        }
    }

    /// Adds every amount of `other`.
    pub fn add_all(&mut self, other: &ResourceQuantities) {
        for (n, s) in &other.0 {
            self.add(n, *s);
        }
    }

    /// True when every name of `other` is here with at least its amount.
    pub fn contains(&self, other: &ResourceQuantities) -> bool {
        other.0.iter().all(|(n, s)| self.get_name(n) >= *s)
    }

    /// The `(name, amount)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&Name, Scalar)> {
        self.0.iter().map(|(n, s)| (n, *s))
    }

    /// True when every amount is zero.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ResourceQuantities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("{}");
        }
        for (i, (n, s)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{n}:{s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ResourceQuantities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceQuantities({self})")
    }
}
