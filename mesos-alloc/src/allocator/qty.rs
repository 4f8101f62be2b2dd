//! Small per-name quantity vectors for quota and headroom arithmetic inside a cycle.
//!
//! `Vec<(Name, i64)>` in thousandths: clusters have a handful of scalar names, so a linear
//! scan beats any map, and none of these values ever leaves the allocator.

use mesos_core::resources::{Name, ResourceQuantities, Resource, Resources, Scalar, Value};

pub(crate) type Qty = Vec<(Name, i64)>;

pub(crate) fn get(q: &Qty, name: &Name) -> i64 {
    q.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v)
}

pub(crate) fn add(q: &mut Qty, name: &Name, v: i64) {
    match q.iter_mut().find(|(n, _)| n == name) {
        Some((_, w)) => *w += v,
        None => q.push((name.clone(), v)),
    }
    q.retain(|(_, v)| *v > 0);
}

pub(crate) fn add_all(q: &mut Qty, other: &Qty) {
    for (n, v) in other {
        add(q, n, *v);
    }
}

/// `q - other`, saturating at zero; names that reach zero disappear.
pub(crate) fn sub_all(q: &mut Qty, other: &Qty) {
    for (n, v) in other {
        if let Some((_, w)) = q.iter_mut().find(|(m, _)| m == n) {
            *w -= *v;
        }
    }
    q.retain(|(_, v)| *v > 0);
}

/// True when `q` holds at least `other` of every name.
pub(crate) fn contains(q: &Qty, other: &Qty) -> bool {
    other.iter().all(|(n, v)| get(q, n) >= *v)
}

pub(crate) fn from_rq(rq: &ResourceQuantities) -> Qty {
    rq.iter()
        .filter(|(_, s)| s.millis() > 0)
        .map(|(n, s)| (n.clone(), s.millis()))
        .collect()
}

/// Quantities of every entry (ranges count values, sets count items), as min-allocatable
/// checks compare them.
pub(crate) fn all_quantities(r: &Resources) -> Qty {
    let mut q = Qty::with_capacity(4);
    for e in r {
        add(&mut q, &e.name, e.value.quantity().millis());
    }
    q
}

/// Scalar quantities only.
pub(crate) fn scalars(r: &Resources) -> Qty {
    let mut q = Qty::with_capacity(4);
    for e in r {
        if let Value::Scalar(s) = &e.value {
            add(&mut q, &e.name, s.millis());
        }
    }
    q
}

/// Unreserved scalar quantities only (what quota and headroom count as "consumed").
pub(crate) fn unreserved_scalars(r: &Resources) -> Qty {
    let mut q = Qty::with_capacity(4);
    for e in r {
        if let (true, Value::Scalar(s)) = (e.is_unreserved(), &e.value) {
            add(&mut q, &e.name, s.millis());
        }
    }
    q
}

/// Shrinks scalar entries to `target` per name (Mesos' `shrinkResources`, without its
/// shuffle: entries are taken in order). A name absent from `target` counts as zero, or as
/// unlimited when `absent_unlimited` (limits).
pub(crate) fn shrink(r: &Resources, target: &Qty, absent_unlimited: bool) -> Resources {
    let mut left = target.clone();
    let mut out = Resources::new();
    for e in r {
        let Value::Scalar(s) = &e.value else {
            continue;
        };
        let Some(slot) = left.iter_mut().find(|(n, _)| *n == e.name) else {
            if absent_unlimited {
                out.add_resource(e);
            }
            continue;
        };
        let take = s.millis().min(slot.1);
        if take <= 0 {
            continue;
        }
        slot.1 -= take;
        let mut piece: Resource = e.clone();
        piece.value = Value::Scalar(Scalar::from_millis(take));
        out.push(piece);
    }
    out
}
