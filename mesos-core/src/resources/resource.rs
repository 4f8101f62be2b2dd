//! One resource entry: a name, a value, where it is reserved and to whom it is allocated.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use super::{Ranges, Scalar, Set, Value};

/// A resource name. The common names are variants so that comparing and cloning them costs
/// nothing on the allocator's hot paths; any other name is kept as shared text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Name {
    /// `cpus`
    Cpus,
    /// `mem` (MB)
    Mem,
    /// `disk` (MB)
    Disk,
    /// `gpus`
    Gpus,
    /// `ports`
    Ports,
    /// Any other name.
    Other(Arc<str>),
}

impl Name {
    /// The name's text.
    pub fn as_str(&self) -> &str {
        match self {
            Name::Cpus => "cpus",
            Name::Mem => "mem",
            Name::Disk => "disk",
            Name::Gpus => "gpus",
            Name::Ports => "ports",
            Name::Other(s) => s,
        }
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Self {
        match s {
            "cpus" => Name::Cpus,
            "mem" => Name::Mem,
            "disk" => Name::Disk,
            "gpus" => Name::Gpus,
            "ports" => Name::Ports,
            other => Name::Other(Arc::from(other)),
        }
    }
}

impl From<String> for Name {
    fn from(s: String) -> Self {
        Name::from(s.as_str())
    }
}

/// Names order alphabetically, as Mesos' `ResourceQuantities` keeps them.
impl Ord for Name {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a reservation was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReservationType {
    /// Made by the agent's `--resources` flag (`cpus(role):2`).
    Static,
    /// Made at run time by a RESERVE operation.
    Dynamic,
}

impl ReservationType {
    /// `STATIC` or `DYNAMIC`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationType::Static => "STATIC",
            ReservationType::Dynamic => "DYNAMIC",
        }
    }
}

/// One level of a reservation stack (`ReservationInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reservation {
    /// Static or dynamic.
    pub kind: ReservationType,
    /// The role the resources are reserved to.
    pub role: Arc<str>,
    /// Who made a dynamic reservation.
    pub principal: Option<String>,
    /// Labels of a dynamic reservation, as key and optional value.
    pub labels: Vec<(String, Option<String>)>,
}

impl Reservation {
    /// A static reservation to `role`.
    pub fn static_to(role: impl AsRef<str>) -> Self {
        Reservation {
            kind: ReservationType::Static,
            role: Arc::from(role.as_ref()),
            principal: None,
            labels: Vec::new(),
        }
    }
}

/// One resource entry.
///
/// Two entries merge into one when they have the same name, type, reservations and allocation
/// role (Mesos' `addable`); a [`super::Resources`] holds at most one entry per such identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Resource {
    /// The name (`cpus`, `mem`, `ports`, ...).
    pub name: Name,
    /// The amount.
    pub value: Value,
    /// The reservation stack, most refined last; empty means unreserved (role `*`).
    pub reservations: Vec<Reservation>,
    /// The role the resource is allocated to (set on offered and used resources).
    pub allocation_role: Option<Arc<str>>,
}

impl Resource {
    /// An unreserved, unallocated resource.
    pub fn new(name: impl Into<Name>, value: Value) -> Self {
        Resource {
            name: name.into(),
            value,
            reservations: Vec::new(),
            allocation_role: None,
        }
    }

    /// An unreserved scalar resource (`value` rounded to three decimals; NaN and infinities give 0).
    pub fn scalar(name: impl Into<Name>, value: f64) -> Self {
        Resource::new(
            name,
            Value::Scalar(Scalar::from_f64(value).unwrap_or(Scalar::ZERO)),
        )
    }

    /// An unreserved ranges resource.
    pub fn ranges(name: impl Into<Name>, ranges: Ranges) -> Self {
        Resource::new(name, Value::Ranges(ranges))
    }

    /// An unreserved set resource.
    pub fn set(name: impl Into<Name>, set: Set) -> Self {
        Resource::new(name, Value::Set(set))
    }

    /// The same resource statically reserved to `role` (`*` leaves it unreserved).
    pub fn reserved_to(mut self, role: &str) -> Self {
        self.reservations.clear();
        if role != "*" {
            self.reservations.push(Reservation::static_to(role));
        }
        self
    }

    /// The same resource allocated to `role`.
    pub fn allocated_to(mut self, role: &str) -> Self {
        self.allocation_role = Some(Arc::from(role));
        self
    }

    /// The role of the most refined reservation, or `*` when unreserved.
    pub fn reservation_role(&self) -> &str {
        self.reservations.last().map_or("*", |r| &r.role)
    }

    /// True when the resource carries no reservation.
    pub fn is_unreserved(&self) -> bool {
        self.reservations.is_empty()
    }

    /// True when `role` may be offered this resource: unreserved, reserved to `role`, or reserved
    /// to an ancestor of `role` (resources of `a/b` are allocatable to `a/b/c`, not to `a`).
    pub fn is_allocatable_to(&self, role: &str) -> bool {
        match self.reservations.last() {
            None => true,
            Some(r) => {
                let reserved = &*r.role;
                role == reserved
                    || (role.len() > reserved.len()
                        && role.starts_with(reserved)
                        && role.as_bytes()[reserved.len()] == b'/')
            }
        }
    }

    /// True when `other` can merge into `self` (same identity).
    pub fn addable(&self, other: &Resource) -> bool {
        self.name == other.name
            && self.value.value_type() == other.value.value_type()
            && self.allocation_role == other.allocation_role
            && self.reservations == other.reservations
    }
}

/// Prints one entry as in the text form, e.g. `cpus(role1):2` or `ports:[1-2]`.
impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name.as_str())?;
        if let Some(role) = &self.allocation_role {
            write!(f, "(allocated: {role})")?;
        }
        match self.reservations.as_slice() {
            [] => {}
            [r] if r.kind == ReservationType::Static
                && r.principal.is_none()
                && r.labels.is_empty() =>
            {
                write!(f, "({})", r.role)?;
            }
            stack => {
                f.write_str("(reservations: [")?;
                for (i, r) in stack.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "({},{}", r.kind.as_str(), r.role)?;
                    if let Some(p) = &r.principal {
                        write!(f, ",{p}")?;
                    }
                    f.write_str(")")?;
                }
                f.write_str("])")?;
            }
        }
        write!(f, ":{}", self.value)
    }
}
