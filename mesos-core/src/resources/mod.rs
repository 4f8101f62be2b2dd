//! Mesos' resource model: named scalars, ranges and sets, with reservations and allocation roles.
//!
//! A [`Resources`] value is a list of [`Resource`] entries in which no two entries share an
//! identity (name, type, reservations, allocation role): adding merges into the matching entry,
//! subtracting more than an entry holds drops it, and entries that become empty disappear. This is
//! the arithmetic the allocator and the master do millions of times, so scalars are fixed-point
//! integers ([`Scalar`]) and ranges stay normalised ([`Ranges`]).
//!
//! ```
//! use mesos_core::resources::Resources;
//!
//! let total: Resources = "cpus:4;mem:1024;ports:[31000-32000]".parse().unwrap();
//! let task = Resources::parse("cpus:1.5;mem:256;ports:[31000-31000]").unwrap();
//! assert!(total.contains(&task));
//! let left = &total - &task;
//! assert_eq!(left.to_string(), "cpus:2.5; mem:768; ports:[31001-32000]");
//! assert_eq!(left.scalar("cpus"), Some(2.5));
//! ```

mod json;
mod parse;
mod quantities;
mod ranges;
mod resource;
mod scalar;
mod value;

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::str::FromStr;
use std::sync::Arc;

pub use json::JsonFormat;
pub use parse::{validate_role, ResourcesError};
pub use quantities::ResourceQuantities;
pub use ranges::{Range, Ranges};
pub use resource::{Name, Reservation, ReservationType, Resource};
pub use scalar::Scalar;
pub use value::{Set, Value, ValueType};

/// A bag of resources with Mesos semantics. `==` is semantic: order does not matter.
///
/// The entry list is shared between clones until one of them changes (copy on write): an
/// offer's resources travel from the allocator to the master, into the framework's offer and
/// back with its decline, and each of those copies costs a reference count, not a list.
#[derive(Clone, Default)]
pub struct Resources {
    /// `None` when empty, so empty values (the common default) allocate nothing.
    entries: Option<Arc<Vec<Resource>>>,
}

impl Resources {
    /// No resources.
    pub const fn new() -> Self {
        Resources { entries: None }
    }

    /// No resources, with room for `n` entries (for builders that know how many they add).
    pub fn with_capacity(n: usize) -> Self {
        Resources {
            entries: (n > 0).then(|| Arc::new(Vec::with_capacity(n))),
        }
    }

    /// True when both are clones of one non-empty list that neither has changed since.
    ///
    /// This is identity, not equality (use `==` for that): it tells in constant time that
    /// resources came back exactly as they were handed out, e.g. a declined offer.
    ///
    /// ```
    /// use mesos_core::resources::Resources;
    ///
    /// let offer = Resources::parse("cpus:2;mem:512").unwrap();
    /// let declined = offer.clone();
    /// assert!(declined.ptr_eq(&offer));
    /// let mut changed = offer.clone();
    /// changed -= &Resources::parse("cpus:1").unwrap();
    /// assert!(!changed.ptr_eq(&offer));
    /// assert!(!Resources::parse("cpus:2;mem:512").unwrap().ptr_eq(&offer));
    /// ```
    pub fn ptr_eq(&self, other: &Resources) -> bool {
        match (&self.entries, &other.entries) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Where the shared list lives (null when empty), for callers that prefetch the reference
    /// counts before cloning many lists in an order the processor cannot predict. Nothing may
    /// be read through it.
    pub fn list_addr(&self) -> *const u8 {
        self.entries
            .as_ref()
            .map_or(std::ptr::null(), |a| Arc::as_ptr(a).cast())
    }

    /// The entries as a slice.
    fn list(&self) -> &[Resource] {
        self.entries.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The entries for changing: copied first when shared with a clone.
    fn list_mut(&mut self) -> &mut Vec<Resource> {
        Arc::make_mut(self.entries.get_or_insert_with(Default::default))
    }

    /// Parses the text form (`cpus:2;mem:1024;ports:[31000-32000];disks:{a,b}`, `cpus(role):1`)
    /// or, when it starts with `[`, the v1 JSON array. Unreserved entries get the role `*`.
    pub fn parse(text: &str) -> Result<Resources, ResourcesError> {
        parse::parse(text, "*")
    }

    /// Like [`Resources::parse`], with entries that name no role reserved to `default_role`
    /// (Mesos' `--default_role`).
    pub fn parse_with_role(text: &str, default_role: &str) -> Result<Resources, ResourcesError> {
        parse::parse(text, default_role)
    }

    /// Reads the v1 JSON array form.
    pub fn from_json(text: &str) -> Result<Resources, ResourcesError> {
        json::from_json_str(text, "*")
    }

    /// The v1 JSON array in the given reservation format.
    pub fn to_json(&self, format: JsonFormat) -> serde_json::Value {
        serde_json::Value::Array(
            self.list()
                .iter()
                .map(|r| json::resource_to_json(r, format))
                .collect(),
        )
    }

    /// Releases spare capacity (for values kept for a long time, like a task's resources).
    pub fn shrink_to_fit(&mut self) {
        // A shared list is left as it is: copying it to save its spare room would cost more.
        if let Some(v) = self.entries.as_mut().and_then(Arc::get_mut) {
            v.shrink_to_fit();
        }
    }

    /// The entries.
    pub fn iter(&self) -> std::slice::Iter<'_, Resource> {
        self.list().iter()
    }

    /// Number of entries (not of resource names: `cpus` and `cpus(r)` are two entries).
    pub fn len(&self) -> usize {
        self.list().len()
    }

    /// True when there is nothing.
    pub fn is_empty(&self) -> bool {
        self.list().is_empty()
    }

    /// Adds one entry, merging it into the entry of the same identity; empty entries are dropped.
    pub fn push(&mut self, resource: Resource) {
        if resource.value.is_empty() {
            return;
        }
        match self.list().iter().position(|e| e.addable(&resource)) {
            Some(i) => self.list_mut()[i].value.add(&resource.value),
            None => self.list_mut().push(resource),
        }
    }

    /// Adds one entry by reference.
    pub fn add_resource(&mut self, resource: &Resource) {
        if resource.value.is_empty() {
            return;
        }
        match self.list().iter().position(|e| e.addable(resource)) {
            Some(i) => self.list_mut()[i].value.add(&resource.value),
            None => self.list_mut().push(resource.clone()),
        }
    }

    /// Subtracts one entry; the matching entry is dropped when nothing (or less) is left.
    pub fn subtract_resource(&mut self, resource: &Resource) {
        if let Some(i) = self.list().iter().position(|e| e.addable(resource)) {
            let list = self.list_mut();
            if !list[i].value.subtract(&resource.value) {
                list.remove(i);
                if list.is_empty() {
                    self.entries = None;
                }
            }
        }
    }

    /// True when one entry of `self` holds all of `resource`.
    pub fn contains_resource(&self, resource: &Resource) -> bool {
        resource.value.is_empty()
            || self
                .list()
                .iter()
                .any(|e| e.addable(resource) && resource.value.le(&e.value))
    }

    /// True when every entry of `other` is held by `self`.
    pub fn contains(&self, other: &Resources) -> bool {
        other.list().iter().all(|r| self.contains_resource(r))
    }

    /// The sum of the scalar entries named `name` over all roles and allocations, or `None`
    /// when there is no such scalar.
    pub fn scalar(&self, name: &str) -> Option<f64> {
        self.scalar_value(&Name::from(name)).map(Scalar::as_f64)
    }

    /// Like [`Resources::scalar`] in fixed point.
    pub fn scalar_value(&self, name: &Name) -> Option<Scalar> {
        let mut found = None;
        for e in self.list() {
            if let (true, Value::Scalar(s)) = (&e.name == name, &e.value) {
                found = Some(found.unwrap_or(Scalar::ZERO) + *s);
            }
        }
        found
    }

    /// `cpus`, 0 when absent.
    pub fn cpus(&self) -> f64 {
        self.scalar("cpus").unwrap_or(0.0)
    }

    /// `mem` in MB, 0 when absent.
    pub fn mem(&self) -> f64 {
        self.scalar("mem").unwrap_or(0.0)
    }

    /// `disk` in MB, 0 when absent.
    pub fn disk(&self) -> f64 {
        self.scalar("disk").unwrap_or(0.0)
    }

    /// All ranges named `name`, merged over roles (e.g. the offered `ports`).
    pub fn ranges(&self, name: &str) -> Ranges {
        let name = Name::from(name);
        let mut out = Ranges::default();
        for e in self.list() {
            if let (true, Value::Ranges(r)) = (e.name == name, &e.value) {
                out.add(r);
            }
        }
        out
    }

    /// The `ports` ranges, merged over roles.
    pub fn ports(&self) -> Ranges {
        self.ranges("ports")
    }

    /// The entries for which `keep` holds.
    pub fn filter(&self, mut keep: impl FnMut(&Resource) -> bool) -> Resources {
        let kept: Vec<Resource> = self.list().iter().filter(|r| keep(r)).cloned().collect();
        Resources {
            entries: (!kept.is_empty()).then(|| Arc::new(kept)),
        }
    }

    /// The unreserved entries.
    pub fn unreserved(&self) -> Resources {
        self.filter(Resource::is_unreserved)
    }

    /// The reserved entries (to any role).
    pub fn reserved(&self) -> Resources {
        self.filter(|r| !r.is_unreserved())
    }

    /// The entries reserved to exactly `role` (most refined reservation).
    pub fn reserved_to(&self, role: &str) -> Resources {
        self.filter(|r| !r.is_unreserved() && r.reservation_role() == role)
    }

    /// The entries `role` may be offered (see [`Resource::is_allocatable_to`]).
    pub fn allocatable_to(&self, role: &str) -> Resources {
        self.filter(|r| r.is_allocatable_to(role))
    }

    /// The same resources with every reservation removed (entries re-merged).
    pub fn to_unreserved(&self) -> Resources {
        self.list()
            .iter()
            .map(|r| Resource {
                reservations: Vec::new(),
                ..r.clone()
            })
            .collect()
    }

    /// The same resources allocated to `role`.
    pub fn allocate(&self, role: &str) -> Resources {
        let role: Arc<str> = Arc::from(role);
        self.list()
            .iter()
            .map(|r| Resource {
                allocation_role: Some(role.clone()),
                ..r.clone()
            })
            .collect()
    }

    /// The same resources with the allocation role cleared (entries re-merged).
    pub fn unallocate(&self) -> Resources {
        self.list()
            .iter()
            .map(|r| Resource {
                allocation_role: None,
                ..r.clone()
            })
            .collect()
    }

    /// The scalar entries only, summed per name: what the DRF sorter counts.
    pub fn scalar_quantities(&self) -> ResourceQuantities {
        ResourceQuantities::from_resources_filtered(self, true)
    }

    /// Quantities of every entry per name (ranges count values, sets count items).
    pub fn quantities(&self) -> ResourceQuantities {
        ResourceQuantities::from_resources_filtered(self, false)
    }

    /// Checks that `resource`'s name is not already used with another type.
    fn check_type(&self, resource: &Resource) -> Result<(), ResourcesError> {
        let t = resource.value.value_type();
        match self
            .list()
            .iter()
            .find(|e| e.name == resource.name && e.value.value_type() != t)
        {
            Some(e) => Err(ResourcesError::TypeConflict {
                name: resource.name.to_string(),
                first: e.value.value_type().as_str(),
                second: t.as_str(),
            }),
            None => Ok(()),
        }
    }
}

impl FromStr for Resources {
    type Err = ResourcesError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Resources::parse(s)
    }
}

impl FromIterator<Resource> for Resources {
    fn from_iter<I: IntoIterator<Item = Resource>>(iter: I) -> Self {
        let mut out = Resources::new();
        for r in iter {
            out.push(r);
        }
        out
    }
}

impl From<Resource> for Resources {
    fn from(r: Resource) -> Self {
        let mut out = Resources::new();
        out.push(r);
        out
    }
}

impl IntoIterator for Resources {
    type Item = Resource;
    type IntoIter = std::vec::IntoIter<Resource>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries
            .map(Arc::unwrap_or_clone)
            .unwrap_or_default()
            .into_iter()
    }
}

impl<'a> IntoIterator for &'a Resources {
    type Item = &'a Resource;
    type IntoIter = std::slice::Iter<'a, Resource>;
    fn into_iter(self) -> Self::IntoIter {
        self.list().iter()
    }
}

impl PartialEq for Resources {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other)
            || (self.len() == other.len() && self.contains(other) && other.contains(self))
    }
}

impl Eq for Resources {}

/// Mesos' text form: entries joined by `; `, `{}` when empty.
impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.list().is_empty() {
            return f.write_str("{}");
        }
        for (i, r) in self.list().iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            r.fmt(f)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Resources({self})")
    }
}

impl AddAssign<&Resources> for Resources {
    fn add_assign(&mut self, rhs: &Resources) {
        for r in rhs.list() {
            self.add_resource(r);
        }
    }
}

impl AddAssign<Resources> for Resources {
    fn add_assign(&mut self, rhs: Resources) {
        if self.is_empty() {
            // Nothing to merge into: take the list as it is (shared, if it is).
            *self = rhs;
            return;
        }
        for r in rhs {
            self.push(r);
        }
    }
}

impl SubAssign<&Resources> for Resources {
    fn sub_assign(&mut self, rhs: &Resources) {
        for r in rhs.list() {
            self.subtract_resource(r);
        }
    }
}

impl SubAssign<Resources> for Resources {
    fn sub_assign(&mut self, rhs: Resources) {
        *self -= &rhs;
    }
}

macro_rules! binop {
    ($trait:ident, $method:ident, $assign:ident) => {
        impl $trait<&Resources> for &Resources {
            type Output = Resources;
            fn $method(self, rhs: &Resources) -> Resources {
                let mut out = self.clone();
                out.$assign(rhs);
                out
            }
        }
        impl $trait<Resources> for &Resources {
            type Output = Resources;
            fn $method(self, rhs: Resources) -> Resources {
                let mut out = self.clone();
                out.$assign(rhs);
                out
            }
        }
        impl $trait<&Resources> for Resources {
            type Output = Resources;
            fn $method(mut self, rhs: &Resources) -> Resources {
                self.$assign(rhs);
                self
            }
        }
        impl $trait<Resources> for Resources {
            type Output = Resources;
            fn $method(mut self, rhs: Resources) -> Resources {
                self.$assign(rhs);
                self
            }
        }
    };
}

binop!(Add, add, add_assign);
binop!(Sub, sub, sub_assign);

impl std::iter::Sum for Resources {
    fn sum<I: Iterator<Item = Resources>>(iter: I) -> Resources {
        iter.fold(Resources::new(), |a, b| a + b)
    }
}

impl<'a> std::iter::Sum<&'a Resources> for Resources {
    fn sum<I: Iterator<Item = &'a Resources>>(iter: I) -> Resources {
        iter.fold(Resources::new(), |a, b| a + b)
    }
}

#[cfg(test)]
mod tests;
