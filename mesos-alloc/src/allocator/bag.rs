//! `Bag`: the allocator's compact form of unallocated resources.
//!
//! `mesos_core::resources::Resources` is a list of general entries (96 bytes each, with
//! reservation stacks and allocation roles); agents are mostly made of a few unreserved
//! scalars and one `ports` range list. A `Bag` keeps those in fixed slots (`[i64; 4]` for
//! cpus, mem, disk, gpus and one [`Ranges`] for ports) and everything else (reservations,
//! other names, sets) in a `Resources` remainder, so the hot paths of a cycle are integer
//! arithmetic and the per-agent state stays small. Conversions to and from `Resources` happen
//! at the API boundary only.

use std::sync::Arc;

use mesos_core::resources::{Name, Ranges, Resource, Resources, Scalar, Value};

use super::qty::{self, Qty};

/// The names with a fixed slot.
const SLOTS: [Name; 4] = [Name::Cpus, Name::Mem, Name::Disk, Name::Gpus];

fn slot(name: &Name) -> Option<usize> {
    match name {
        Name::Cpus => Some(0),
        Name::Mem => Some(1),
        Name::Disk => Some(2),
        Name::Gpus => Some(3),
        _ => None,
    }
}

/// Unallocated resources; see the module documentation.
#[derive(Clone, Debug, Default)]
pub(crate) struct Bag {
    /// Unreserved cpus, mem, disk, gpus, in thousandths.
    scalars: [i64; 4],
    /// Unreserved `ports`.
    ports: Ranges,
    /// Everything else, unallocated.
    rest: Resources,
}

impl PartialEq for Bag {
    fn eq(&self, other: &Bag) -> bool {
        self.scalars == other.scalars && self.ports == other.ports && self.rest == other.rest
    }
}

impl Bag {
    /// From resources in any allocation state (the allocation role is dropped).
    pub(crate) fn from_resources(r: &Resources) -> Bag {
        let mut bag = Bag::default();
        for e in r {
            bag.push(e);
        }
        bag
    }

    fn push(&mut self, e: &Resource) {
        if e.is_unreserved() {
            match (&e.value, slot(&e.name)) {
                (Value::Scalar(s), Some(i)) => {
                    self.scalars[i] += s.millis();
                    return;
                }
                (Value::Ranges(r), _) if e.name == Name::Ports => {
                    self.ports.add(r);
                    return;
                }
                _ => {}
            }
        }
        if e.allocation_role.is_some() {
            let mut e = e.clone();
            e.allocation_role = None;
            self.rest.push(e);
        } else {
            self.rest.add_resource(e);
        }
    }

    /// As `Resources`, allocated to `role` when given.
    pub(crate) fn to_resources(&self, role: Option<&Arc<str>>) -> Resources {
        // Sized exactly: an offer is built per agent per cycle, and growing from empty would
        // go through the reallocation path for nothing.
        let n = self.scalars.iter().filter(|v| **v > 0).count()
            + usize::from(!self.ports.is_empty())
            + self.rest.len();
        let mut out = Resources::with_capacity(n);
        let tag = |mut r: Resource| {
            r.allocation_role = role.cloned();
            r
        };
        for (i, v) in self.scalars.iter().enumerate() {
            if *v > 0 {
                out.push(tag(Resource::new(
                    SLOTS[i].clone(),
                    Value::Scalar(Scalar::from_millis(*v)),
                )));
            }
        }
        if !self.ports.is_empty() {
            out.push(tag(Resource::ranges(Name::Ports, self.ports.clone())));
        }
        for e in &self.rest {
            out.push(tag(e.clone()));
        }
        out
    }

    /// True when `list` is what [`Bag::to_resources`] makes of this bag, whatever role it was
    /// allocated to: the same entries in the same order. Reads `list`, makes nothing.
    pub(crate) fn same_as_list(&self, list: &Resources) -> bool {
        let mut entries = list.iter();
        let unreserved = |e: &Resource, name: &Name| e.name == *name && e.reservations.is_empty();
        for (i, v) in self.scalars.iter().enumerate() {
            if *v <= 0 {
                continue;
            }
            match entries.next() {
                Some(e)
                    if unreserved(e, &SLOTS[i])
                        && matches!(&e.value, Value::Scalar(s) if s.millis() == *v) => {}
                _ => return false,
            }
        }
        if !self.ports.is_empty() {
            match entries.next() {
                Some(e)
                    if unreserved(e, &Name::Ports)
                        && matches!(&e.value, Value::Ranges(r) if *r == self.ports) => {}
                _ => return false,
            }
        }
        for r in &self.rest {
            match entries.next() {
                Some(e)
                    if e.name == r.name
                        && e.reservations == r.reservations
                        && e.value == r.value => {}
                _ => return false,
            }
        }
        entries.next().is_none()
    }

    /// Prefetches the bag's heap blocks (see `crate::prefetch`).
    pub(crate) fn prefetch(&self) {
        let ports = self.ports.ranges();
        crate::prefetch::lines(ports.as_ptr(), std::mem::size_of_val(ports));
        let rest = self.rest.list_addr();
        if !rest.is_null() {
            crate::prefetch::line(rest);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.scalars.iter().all(|v| *v <= 0) && self.ports.is_empty() && self.rest.is_empty()
    }

    pub(crate) fn add(&mut self, other: &Bag) {
        for (a, b) in self.scalars.iter_mut().zip(other.scalars) {
            *a += b;
        }
        if !other.ports.is_empty() {
            self.ports.add(&other.ports);
        }
        if !other.rest.is_empty() {
            self.rest += &other.rest;
        }
    }

    /// Subtracts, dropping what goes to zero or below (as `Resources` does).
    pub(crate) fn sub(&mut self, other: &Bag) {
        for (a, b) in self.scalars.iter_mut().zip(other.scalars) {
            *a = (*a - b).max(0);
        }
        if !other.ports.is_empty() {
            self.ports.subtract(&other.ports);
        }
        if !other.rest.is_empty() {
            self.rest -= &other.rest;
        }
    }

    pub(crate) fn contains(&self, other: &Bag) -> bool {
        self.scalars.iter().zip(other.scalars).all(|(a, b)| *a >= b)
            && self.ports.contains(&other.ports)
            && self.rest.contains(&other.rest)
    }

    /// True when something is reserved (then what a role may have depends on the role).
    pub(crate) fn has_reserved(&self) -> bool {
        self.rest.iter().any(|r| !r.is_unreserved())
    }

    /// True when ranges or sets are present.
    pub(crate) fn has_non_scalars(&self) -> bool {
        !self.ports.is_empty()
            || self
                .rest
                .iter()
                .any(|r| !matches!(r.value, Value::Scalar(_)))
    }

    /// The part `role` may be offered: everything unreserved, and reservations to the role or
    /// its ancestors.
    pub(crate) fn allocatable_to(&self, role: &str) -> Bag {
        Bag {
            scalars: self.scalars,
            ports: self.ports.clone(),
            rest: self.rest.allocatable_to(role),
        }
    }

    /// The quantity of one name (a range list counts its values, a set its items).
    pub(crate) fn quantity(&self, name: &Name) -> i64 {
        let mut q = match slot(name) {
            Some(i) => self.scalars[i].max(0),
            None if *name == Name::Ports => {
                i64::try_from(self.ports.count()).map_or(i64::MAX, |n| n.saturating_mul(1000))
            }
            None => 0,
        };
        for e in &self.rest {
            if e.name == *name {
                q = q.saturating_add(e.value.quantity().millis());
            }
        }
        q
    }

    /// Upstream's `allocatable`: not empty, and holding at least one of the minimums (an
    /// empty list accepts anything).
    pub(crate) fn allocatable(&self, mins: &[Qty]) -> bool {
        !self.is_empty()
            && (mins.is_empty()
                || mins
                    .iter()
                    .any(|m| m.iter().all(|(n, v)| self.quantity(n) >= *v)))
    }

    /// Calls `f(name, amount, unreserved)` for every scalar.
    pub(crate) fn for_each_scalar(&self, mut f: impl FnMut(&Name, i64, bool)) {
        for (i, v) in self.scalars.iter().enumerate() {
            if *v > 0 {
                f(&SLOTS[i], *v, true);
            }
        }
        for e in &self.rest {
            if let Value::Scalar(s) = &e.value {
                f(&e.name, s.millis(), e.is_unreserved());
            }
        }
    }

    /// Scalar quantities (reserved included): what sorters count.
    pub(crate) fn scalar_quantities(&self) -> Qty {
        let mut q = Qty::with_capacity(4);
        for (i, v) in self.scalars.iter().enumerate() {
            if *v > 0 {
                q.push((SLOTS[i].clone(), *v));
            }
        }
        for e in &self.rest {
            if let Value::Scalar(s) = &e.value {
                qty::add(&mut q, &e.name, s.millis());
            }
        }
        q
    }

    /// Unreserved scalar quantities: what quota counts as consumed.
    pub(crate) fn unreserved_scalar_quantities(&self) -> Qty {
        let mut q = Qty::with_capacity(4);
        for (i, v) in self.scalars.iter().enumerate() {
            if *v > 0 {
                q.push((SLOTS[i].clone(), *v));
            }
        }
        for e in &self.rest {
            if let (true, Value::Scalar(s)) = (e.is_unreserved(), &e.value) {
                qty::add(&mut q, &e.name, s.millis());
            }
        }
        q
    }

    /// Scalars reserved to each role: `(role, name, amount)`.
    pub(crate) fn reserved_scalars(&self) -> Vec<(String, Name, i64)> {
        self.rest
            .iter()
            .filter_map(|e| match (&e.value, e.is_unreserved()) {
                (Value::Scalar(s), false) => {
                    Some((e.reservation_role().to_string(), e.name.clone(), s.millis()))
                }
                _ => None,
            })
            .collect()
    }

    /// Splits into (unreserved scalars, everything else).
    pub(crate) fn split_unreserved_scalars(&self) -> (Bag, Bag) {
        let mut scalars = Bag {
            scalars: self.scalars,
            ..Bag::default()
        };
        let mut other = Bag {
            ports: self.ports.clone(),
            ..Bag::default()
        };
        for e in &self.rest {
            if e.is_unreserved() && matches!(e.value, Value::Scalar(_)) {
                scalars.rest.add_resource(e);
            } else {
                other.rest.add_resource(e);
            }
        }
        (scalars, other)
    }

    /// Shrinks scalars to `target` per name (Mesos' `shrinkResources`, taking entries in
    /// order). A name absent from `target` counts as zero, or as unlimited when
    /// `absent_unlimited`. Non-scalars are kept.
    pub(crate) fn shrink(&self, target: &Qty, absent_unlimited: bool) -> Bag {
        let mut left = target.clone();
        let mut take = |name: &Name, v: i64| -> i64 {
            match left.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => {
                    let t = v.min(slot.1).max(0);
                    slot.1 -= t;
                    t
                }
                None if absent_unlimited => v,
                None => 0,
            }
        };
        let mut out = Bag {
            ports: self.ports.clone(),
            ..Bag::default()
        };
        for ((out, v), name) in out.scalars.iter_mut().zip(self.scalars).zip(&SLOTS) {
            if v > 0 {
                *out = take(name, v);
            }
        }
        for e in &self.rest {
            match &e.value {
                Value::Scalar(s) => {
                    let t = take(&e.name, s.millis());
                    if t > 0 {
                        let mut piece = e.clone();
                        piece.value = Value::Scalar(Scalar::from_millis(t));
                        out.rest.push(piece);
                    }
                }
                _ => out.rest.add_resource(e),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bag(text: &str) -> Bag {
        Bag::from_resources(&Resources::parse(text).unwrap())
    }

    #[test]
    fn a_bag_is_the_same_as_its_own_list_in_any_role() {
        for text in [
            "cpus:1;mem:64;ports:[1-2,7-8]",
            "cpus:1;cpus(r):2;foo:3;disks:{d1};vlans:[5-9]",
            "ports:[1-1]",
        ] {
            let b = bag(text);
            let role: Arc<str> = Arc::from("r");
            assert!(b.same_as_list(&b.to_resources(Some(&role))), "{text}");
            assert!(b.same_as_list(&b.to_resources(None)), "{text}");
        }
        assert!(Bag::default().same_as_list(&Resources::new()));
    }

    #[test]
    fn any_difference_makes_a_bag_not_the_same_as_a_list() {
        let b = bag("cpus:1;mem:64;ports:[1-2,7-8]");
        for other in [
            "cpus:1;mem:65;ports:[1-2,7-8]",
            "cpus:1;mem:64;ports:[1-2,7-9]",
            "cpus:1;mem:64",
            "cpus:1;mem:64;ports:[1-2,7-8];gpus:1",
            "cpus:1;mem:64;ports:[1-2,7-8];foo:1",
            "cpus(r):1;mem:64;ports:[1-2,7-8]",
        ] {
            assert!(!b.same_as_list(&bag(other).to_resources(None)), "{other}");
        }
    }
}
