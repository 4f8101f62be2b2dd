//! Quota inside a cycle: the book of guarantees, limits and headroom (upstream's consumed
//! quota and required/available headroom), what each stage may offer a role on an agent, and
//! the order in which the quota stage takes the roles it can still serve.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::bag::Bag;
use super::explain::Reject;
use super::qty::{self, Qty};
use super::HierarchicalAllocator;
use crate::hash::FxHashMap;

/// Quota state of one top-level role during a cycle.
#[derive(Debug)]
pub(crate) struct QuotaEntry {
    pub(crate) guarantees: Qty,
    /// `None`: no limits at all. A name absent from `Some` limits is unlimited.
    pub(crate) limits: Option<Qty>,
    consumed: Qty,
    /// Tracked roles under this top-level role (itself included).
    roles: usize,
    /// The top-level role itself has frameworks (only then can stage 1 serve it).
    served: bool,
    pub(crate) capped: bool,
    pub(crate) satisfied: bool,
}

impl QuotaEntry {
    fn unsatisfied(&self) -> Qty {
        let mut u = self.guarantees.clone();
        qty::sub_all(&mut u, &self.consumed);
        u
    }

    /// Limits minus consumption, for shrinking (absent names stay unlimited).
    pub(crate) fn limit_room(&self) -> Option<Qty> {
        self.limits.as_ref().map(|l| {
            l.iter()
                .map(|(n, v)| (n.clone(), (v - qty::get(&self.consumed, n)).max(0)))
                .collect()
        })
    }
}

/// Quota bookkeeping for a cycle (upstream's consumed quota and headroom).
#[derive(Debug, Default)]
pub(crate) struct QuotaBook {
    pub(crate) entries: Vec<QuotaEntry>,
    /// Role slot -> entry of its top-level role.
    pub(crate) role_entry: Vec<Option<usize>>,
    pub(crate) required_headroom: Qty,
    available_headroom: Qty,
    /// Roles (tracked) whose top-level role is not capped by its limits.
    pub(crate) uncapped_roles: usize,
    /// Entries stage 1 can still serve.
    pub(crate) unsatisfied: usize,
}

impl QuotaBook {
    /// True when any quota is set, so consumption must be followed.
    pub(crate) fn tracking(&self) -> bool {
        !self.entries.is_empty()
    }

    fn is_capped(e: &QuotaEntry, names: &Qty) -> bool {
        match &e.limits {
            None => false,
            Some(l) => names.iter().all(|(n, _)| {
                l.iter()
                    .find(|(m, _)| m == n)
                    .is_some_and(|(_, v)| qty::get(&e.consumed, n) >= *v)
            }),
        }
    }

    /// Records `uq` (unreserved scalars) newly offered to role slot `r`, of which `guaranteed`
    /// was given to meet its guarantees.
    pub(crate) fn consume(&mut self, r: u32, uq: &Qty, names: &Qty) {
        qty::sub_all(&mut self.available_headroom, uq);
        let Some(Some(i)) = self.role_entry.get(r as usize).copied() else {
            return;
        };
        let e = &mut self.entries[i];
        // The part that meets unmet guarantees no longer needs headroom.
        let unsatisfied = e.unsatisfied();
        let met: Qty = unsatisfied
            .iter()
            .map(|(n, v)| (n.clone(), (*v).min(qty::get(uq, n))))
            .collect();
        qty::sub_all(&mut self.required_headroom, &met);
        qty::add_all(&mut e.consumed, uq);
        if !e.capped && Self::is_capped(e, names) {
            e.capped = true;
            self.uncapped_roles -= e.roles;
        }
        if !e.satisfied && qty::contains(&e.consumed, &e.guarantees) {
            e.satisfied = true;
            if e.served {
                self.unsatisfied -= 1;
            }
        }
    }
}

impl HierarchicalAllocator {
    pub(crate) fn quota_book(&self) -> QuotaBook {
        let mut book = QuotaBook::default();
        let tracked = self.roles.iter().flatten().count();
        book.uncapped_roles = tracked;
        if self.quotas.is_empty() {
            return book;
        }
        let mut by_top: FxHashMap<&str, usize> = FxHashMap::default();
        for (name, quota) in &self.quotas {
            by_top.insert(name.as_str(), book.entries.len());
            let limits = if quota.limits.is_empty() {
                None
            } else {
                Some(qty::from_rq(&quota.limits))
            };
            book.entries.push(QuotaEntry {
                guarantees: qty::from_rq(&quota.guarantees),
                limits,
                consumed: Qty::new(),
                roles: 0,
                served: false,
                capped: false,
                satisfied: false,
            });
        }
        for (role, q) in &self.reserved_by_role {
            let top = role.split('/').next().unwrap_or("");
            if let Some(&i) = by_top.get(top) {
                qty::add_all(&mut book.entries[i].consumed, q);
            }
        }
        book.role_entry = vec![None; self.roles.len()];
        let mut allocated_unreserved = Qty::new();
        for (slot, role) in self.roles.iter().enumerate() {
            let Some(role) = role else { continue };
            qty::add_all(&mut allocated_unreserved, &role.allocated_unreserved);
            if let Some(&i) = by_top.get(role.top.as_str()) {
                book.role_entry[slot] = Some(i);
                let e = &mut book.entries[i];
                qty::add_all(&mut e.consumed, &role.allocated_unreserved);
                e.roles += 1;
                if role.is_top {
                    e.served = true;
                }
            }
        }
        for e in &mut book.entries {
            let u = e.unsatisfied();
            qty::add_all(&mut book.required_headroom, &u);
            e.satisfied = u.is_empty();
            if !e.satisfied && e.served {
                book.unsatisfied += 1;
            }
            if Self::capped_names_ok(e, &self.cluster_total) {
                e.capped = true;
                book.uncapped_roles -= e.roles;
            }
        }
        // Unreserved, unallocated scalars of the whole cluster.
        let mut headroom = self.cluster_total.clone();
        for q in self.reserved_by_role.values() {
            qty::sub_all(&mut headroom, q);
        }
        qty::sub_all(&mut headroom, &allocated_unreserved);
        book.available_headroom = headroom;
        book
    }

    fn capped_names_ok(e: &QuotaEntry, names: &Qty) -> bool {
        QuotaBook::is_capped(e, names)
    }
}

impl QuotaBook {
    /// Stage 1: unmet guarantees first, then what limits and spare headroom allow.
    pub(crate) fn quota_offer(avail: &Bag, e: &QuotaEntry, book: &QuotaBook) -> Bag {
        let (unreserved_scalars, other) = avail.split_unreserved_scalars();
        let guaranteed = unreserved_scalars.shrink(&e.unsatisfied(), false);
        if guaranteed.is_empty() {
            return Bag::default();
        }
        let mut offer = guaranteed.clone();
        offer.add(&other);
        let mut rest = unreserved_scalars;
        rest.sub(&guaranteed);
        let mut extra = match e.limit_room() {
            Some(mut room) => {
                let given = guaranteed.scalar_quantities();
                for (n, v) in &mut room {
                    *v = (*v - qty::get(&given, n)).max(0);
                }
                rest.shrink(&room, true)
            }
            None => rest,
        };
        let mut surplus = book.available_headroom.clone();
        qty::sub_all(&mut surplus, &book.required_headroom);
        extra = extra.shrink(&surplus, false);
        offer.add(&extra);
        offer
    }

    /// Stage 2: everything the role may have here, within its limits and the headroom that
    /// unmet guarantees elsewhere still need.
    pub(crate) fn fair_offer(avail: &Bag, e: Option<&QuotaEntry>, book: &QuotaBook) -> Bag {
        let limited = e.is_some_and(|e| e.limits.is_some());
        if !limited && book.required_headroom.is_empty() {
            return avail.clone();
        }
        let (mut scalars, mut offer) = avail.split_unreserved_scalars();
        if let Some(room) = e.and_then(QuotaEntry::limit_room) {
            scalars = scalars.shrink(&room, true);
        }
        if !book.required_headroom.is_empty() {
            let mut surplus = book.available_headroom.clone();
            qty::sub_all(&mut surplus, &book.required_headroom);
            scalars = scalars.shrink(&surplus, false);
        }
        offer.add(&scalars);
        offer
    }

    /// Which of the fair-share stage's shrinks took what the role may have here below the
    /// minimum `mins`: its own limits ([`Reject::QuotaLimit`]) or, the limits leaving enough,
    /// the headroom other roles' unmet guarantees need ([`Reject::QuotaHeadroom`]). Only
    /// asked after a rejection, so it may recompute.
    pub(crate) fn shrink_reason(
        &self,
        avail: &Bag,
        e: Option<&QuotaEntry>,
        mins: &[Qty],
    ) -> Reject {
        if let Some(room) = e.and_then(QuotaEntry::limit_room) {
            let (scalars, mut offer) = avail.split_unreserved_scalars();
            offer.add(&scalars.shrink(&room, true));
            if !offer.allocatable(mins) || self.required_headroom.is_empty() {
                return Reject::QuotaLimit;
            }
        }
        Reject::QuotaHeadroom
    }
}

/// Where stage 1 takes its roles from: the role sorter's order, or (DRF) the same order
/// restricted to the roles stage 1 can still serve.
pub(crate) enum RoleOrder<'a> {
    Sorter(crate::sorter::Order<'a>, &'a [u32]),
    List(std::collections::btree_set::Iter<'a, (Stage1Key, u32)>),
}

impl Iterator for RoleOrder<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        match self {
            RoleOrder::Sorter(order, role_of_client) => loop {
                let rc = order.next()?;
                if let Some(&r) = role_of_client.get(rc.index()) {
                    return Some(r);
                }
            },
            RoleOrder::List(iter) => iter.next().map(|(_, r)| *r),
        }
    }
}

/// A top-level role's place among the root's children in the DRF role sorter:
/// (share, allocation count, name), compared as upstream's `compareDRF` does.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Stage1Key(f64, u64, Arc<str>);

impl Eq for Stage1Key {}

impl PartialOrd for Stage1Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Stage1Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .total_cmp(&other.0)
            .then(self.1.cmp(&other.1))
            .then_with(|| self.2.as_bytes().cmp(other.2.as_bytes()))
    }
}

/// The roles stage 1 may still serve, in role-sorter order.
///
/// Stage 1 only serves top-level roles with unmet guarantees; these are top-level clients,
/// so their relative order is that of their top-level nodes among the root's children.
/// Walking the whole role order for each agent would skip every satisfied role again and
/// again (upstream's cost with thousands of quota roles); this set holds only the eligible
/// ones, re-keyed as their allocations change.
pub(crate) struct Stage1Order {
    pub(crate) set: BTreeSet<(Stage1Key, u32)>,
    key_of: FxHashMap<u32, Stage1Key>,
}

impl Stage1Order {
    fn eligible(alloc: &HierarchicalAllocator, book: &QuotaBook, r: u32) -> bool {
        let Some(role) = alloc.roles.get(r as usize).and_then(Option::as_ref) else {
            return false;
        };
        let Some(Some(i)) = book.role_entry.get(r as usize) else {
            return false;
        };
        let e = &book.entries[*i];
        role.is_top && !e.guarantees.is_empty() && !e.satisfied
    }

    fn key(alloc: &HierarchicalAllocator, r: u32) -> Option<Stage1Key> {
        let role = alloc.roles.get(r as usize)?.as_ref()?;
        let (share, count) = alloc.role_sorter.top_key(role.client)?;
        Some(Stage1Key(share, count, role.arc.clone()))
    }

    /// `None` when the role sorter is not DRF (then stage 1 walks the sorter's order).
    pub(crate) fn build(alloc: &HierarchicalAllocator, book: &QuotaBook) -> Option<Stage1Order> {
        let mut order = Stage1Order {
            set: BTreeSet::new(),
            key_of: FxHashMap::default(),
        };
        for r in 0..alloc.roles.len() as u32 {
            if Self::eligible(alloc, book, r) {
                let key = Self::key(alloc, r)?;
                order.set.insert((key.clone(), r));
                order.key_of.insert(r, key);
            }
        }
        Some(order)
    }

    /// Re-keys role `r` after its allocation changed (the role sorter must be prepared).
    pub(crate) fn update(&mut self, alloc: &HierarchicalAllocator, book: &QuotaBook, r: u32) {
        if let Some(old) = self.key_of.remove(&r) {
            self.set.remove(&(old, r));
        }
        if Self::eligible(alloc, book, r) {
            if let Some(key) = Self::key(alloc, r) {
                self.set.insert((key.clone(), r));
                self.key_of.insert(r, key);
            }
        }
    }
}
