//! Small per-name quantity vectors for quota and headroom arithmetic inside a cycle.
//!
//! `Vec<(Name, i64)>` in thousandths: clusters have a handful of scalar names, so a linear
//! scan beats any map, and none of these values ever leaves the allocator.

use mesos_core::resources::{Name, ResourceQuantities};

pub(crate) type Qty = Vec<(Name, i64)>;

pub(crate) fn get(q: &Qty, name: &Name) -> i64 {
    q.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v)
}

pub(crate) fn add(q: &mut Qty, name: &Name, v: i64) {
    match q.iter_mut().find(|(n, _)| n == name) {
        Some((_, w)) => {
            *w += v;
            if *w <= 0 {
                q.retain(|(_, v)| *v > 0);
            }
        }
        None if v > 0 => q.push((name.clone(), v)),
        None => {}
    }
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
