//! One allocation cycle: the quota stage, then the fair-share stage (upstream's
//! `__generateOffers`).
//!
//! For each candidate agent (in a seeded random order, drawn again for each stage), roles are
//! taken in role-sorter order and, within a role, frameworks in that role's sorter order. The
//! first framework that passes the checks (capability, minimum offer size, offer filters)
//! receives what the stage allows it: in the fair-share stage without quota, everything the
//! agent has left for the role, so offers are coarse-grained.
//!
//! Sorter updates for an agent's offers are applied after that agent: upstream iterates over
//! copies of the sorted lists taken before the agent's offers, so deferring the updates gives
//! the same order while letting the loops read the sorters in place.

use std::collections::BTreeSet;

use std::sync::Arc;

use mesos_core::allocator::Allocation;
use mesos_core::resources::Resources;
use mesos_core::time::Time;
use rand::seq::SliceRandom;

use super::bag::Bag;
use super::qty::{self, Qty};
use super::HierarchicalAllocator;
use crate::hash::FxHashMap;
use crate::prefetch;
use crate::sorter::ClientId;

/// Quota state of one top-level role during a cycle.
#[derive(Debug)]
struct QuotaEntry {
    guarantees: Qty,
    /// `None`: no limits at all. A name absent from `Some` limits is unlimited.
    limits: Option<Qty>,
    consumed: Qty,
    /// Tracked roles under this top-level role (itself included).
    roles: usize,
    /// The top-level role itself has frameworks (only then can stage 1 serve it).
    served: bool,
    capped: bool,
    satisfied: bool,
}

impl QuotaEntry {
    fn unsatisfied(&self) -> Qty {
        let mut u = self.guarantees.clone();
        qty::sub_all(&mut u, &self.consumed);
        u
    }

    /// Limits minus consumption, for shrinking (absent names stay unlimited).
    fn limit_room(&self) -> Option<Qty> {
        self.limits.as_ref().map(|l| {
            l.iter()
                .map(|(n, v)| (n.clone(), (v - qty::get(&self.consumed, n)).max(0)))
                .collect()
        })
    }
}

/// Quota bookkeeping for a cycle (upstream's consumed quota and headroom).
#[derive(Debug, Default)]
struct QuotaBook {
    entries: Vec<QuotaEntry>,
    /// Role slot -> entry of its top-level role.
    role_entry: Vec<Option<usize>>,
    required_headroom: Qty,
    available_headroom: Qty,
    /// Roles (tracked) whose top-level role is not capped by its limits.
    uncapped_roles: usize,
    /// Entries stage 1 can still serve.
    unsatisfied: usize,
}

impl QuotaBook {
    /// True when any quota is set, so consumption must be followed.
    fn tracking(&self) -> bool {
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
    fn consume(&mut self, r: u32, uq: &Qty, names: &Qty) {
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

/// How many agents ahead of the one being served its record is prefetched, and (read from that
/// record, in cache by then) its heap blocks. See `crate::prefetch`.
const PREFETCH_RECORD: usize = 16;
const PREFETCH_BLOCKS: usize = 8;

/// A sorter update deferred to the end of the agent.
#[derive(Debug)]
pub(crate) struct Pending {
    role_client: ClientId,
    role: u32,
    fw_client: ClientId,
    /// Where the framework was in its sorter's order (a hint for re-placing it).
    fw_pos: usize,
    /// Its quantities, in `Scratch::pending_q`.
    q: std::ops::Range<usize>,
}

/// Buffers reused from agent to agent so a cycle allocates only what it returns.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pending: Vec<Pending>,
    pending_q: Vec<(mesos_core::resources::Name, i64)>,
    /// The offer list built last (allocated to one role). Agents with the same available
    /// resources (a cluster of one machine type, all idle) are offered this very list instead
    /// of a copy each.
    last_built: Resources,
}

impl HierarchicalAllocator {
    fn quota_book(&self) -> QuotaBook {
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

    pub(crate) fn cycle(&mut self, now: Time, mut agents: Vec<u32>) -> Vec<Allocation> {
        self.sync_sorter_totals();
        let mut book = self.quota_book();
        let mut offers: Vec<Allocation> = Vec::new();
        let mut offer_at: FxHashMap<(u32, u32, u32), usize> = FxHashMap::default();
        let mut offered_agents: Vec<bool> = Vec::new();
        let stage1 = book.unsatisfied > 0;
        let mut touched = Vec::new();
        if stage1 {
            offered_agents = vec![false; self.agents.len()];
            agents.shuffle(&mut self.rng);
            self.role_sorter.prepare();
            let mut order = Stage1Order::build(self, &book);
            for &a in &agents {
                if book.unsatisfied == 0 {
                    break;
                }
                touched.clear();
                let list = order.as_ref().map(|o| &o.set);
                let offered = self.serve_agent(
                    now,
                    a,
                    true,
                    list,
                    &mut touched,
                    &mut book,
                    &mut offers,
                    &mut offer_at,
                );
                if offered {
                    offered_agents[a as usize] = true;
                    if let Some(o) = order.as_mut() {
                        self.role_sorter.prepare();
                        for &r in &touched {
                            o.update(self, &book, r);
                        }
                    }
                }
            }
        }
        agents.shuffle(&mut self.rng);
        // Busy clusters offer most agents every cycle; growing the vector by doubling would
        // copy it and fault in fresh pages several times.
        offers.reserve(agents.len());
        let use_memo = self.quotas.is_empty();
        for (i, &a) in agents.iter().enumerate() {
            if let Some(&b) = agents.get(i + PREFETCH_RECORD) {
                self.prefetch_record(b);
            }
            if let Some(&b) = agents.get(i + PREFETCH_BLOCKS) {
                self.prefetch_blocks(b);
            }
            let offered = self.serve_agent(
                now,
                a,
                false,
                None,
                &mut touched,
                &mut book,
                &mut offers,
                &mut offer_at,
            );
            if use_memo && !offered && !offered_agents.get(a as usize).copied().unwrap_or(false) {
                if let Some(agent) = self.agents[a as usize].as_mut() {
                    agent.idle_memo = (agent.gen, self.epoch);
                }
            }
        }
        self.last_candidates = agents;
        offers
    }

    /// Prefetches agent `a`'s record (three cache lines; see `AgentState`).
    fn prefetch_record(&self, a: u32) {
        if let Some(slot) = self.agents.get(a as usize) {
            prefetch::lines(slot, std::mem::size_of_val(slot));
        }
    }

    /// Prefetches what serving agent `a` reads or writes outside its record: the reference
    /// counts of its id and of its cached offer list (both cloned into the offer), or else its
    /// port list (copied into a new one), its allocations (searched, and added to) and the
    /// frameworks of its filters (binary-searched). The record itself was prefetched earlier and is read
    /// from cache here.
    fn prefetch_blocks(&self, a: u32) {
        let Some(agent) = self.agents.get(a as usize).and_then(Option::as_ref) else {
            return;
        };
        prefetch::arc_counts(agent.id.as_str());
        if agent.offer_role.is_some() {
            prefetch::arc_counts(agent.offer_cache.list_addr());
        } else {
            agent.available.prefetch();
        }
        // Its entries, and the slot after them where an offer to a new (framework, role) goes:
        // a store to a line not in cache would hold up the next locked instruction.
        let held = agent
            .allocations
            .len()
            .min(agent.allocations.capacity().saturating_sub(1))
            + 1;
        prefetch::lines(
            agent.allocations.as_ptr(),
            held * std::mem::size_of::<(u32, u32, super::bag::Bag)>(),
        );
        if agent.filter_mask != 0 {
            prefetch::lines(
                agent.filter_fws.as_ptr(),
                std::mem::size_of_val(agent.filter_fws.as_slice()),
            );
        }
    }

    /// Runs one stage on one agent; returns whether anything was offered.
    #[allow(clippy::too_many_arguments)]
    fn serve_agent(
        &mut self,
        now: Time,
        a: u32,
        stage1: bool,
        list: Option<&BTreeSet<(Stage1Key, u32)>>,
        touched: &mut Vec<u32>,
        book: &mut QuotaBook,
        offers: &mut Vec<Allocation>,
        offer_at: &mut FxHashMap<(u32, u32, u32), usize>,
    ) -> bool {
        let epoch = self.epoch;
        let use_memo = self.quotas.is_empty();
        let Self {
            role_sorter,
            fw_sorters,
            roles,
            frameworks,
            agents,
            role_of_client,
            min_allocatable,
            config,
            cluster_total,
            scratch,
            ..
        } = self;
        let Some(agent) = agents[a as usize].as_mut() else {
            return false;
        };
        if agent.available.is_empty() {
            return false;
        }
        if use_memo && agent.idle_memo == (agent.gen, epoch) {
            return false;
        }
        if !stage1 && book.uncapped_roles == 0 && !agent.has_reservations && !agent.has_non_scalars
        {
            return false;
        }
        let Scratch {
            pending,
            pending_q,
            last_built,
        } = scratch;
        role_sorter.prepare();
        let role_order = match list {
            Some(set) => RoleOrder::List(set.iter()),
            None => RoleOrder::Sorter(role_sorter.order(), role_of_client),
        };
        for r in role_order {
            if agent.available.is_empty() {
                break;
            }
            if stage1 && book.unsatisfied == 0 {
                break;
            }
            let Some(role) = roles.get_mut(r as usize).and_then(Option::as_mut) else {
                continue;
            };
            let rc = role.client;
            let entry = book.role_entry.get(r as usize).copied().flatten();
            if stage1 {
                let Some(i) = entry else { continue };
                let e = &book.entries[i];
                if !role.is_top || e.guarantees.is_empty() || e.satisfied {
                    continue;
                }
            } else if let Some(i) = entry {
                if book.entries[i].capped && !agent.has_reservations && !agent.has_non_scalars {
                    continue;
                }
            }
            let Some(sorter) = fw_sorters.get_mut(r as usize).and_then(Option::as_mut) else {
                continue;
            };
            sorter.prepare();
            // Disjoint borrows of the role: its name is read while its totals grow.
            let super::state::RoleState {
                arc: role_arc,
                fw_of_client,
                allocated_all,
                allocated_unreserved,
                ..
            } = role;
            // Without reservations, limits or headroom to keep, the role may have the whole
            // agent: no copy is made until an offer is.
            let whole = !stage1
                && !agent.has_reservations
                && entry.is_none_or(|i| book.entries[i].limits.is_none())
                && book.required_headroom.is_empty();
            let mut cache: Option<Cached> = None;
            for (fw_pos, fc) in sorter.order().enumerate() {
                let Some(&f) = fw_of_client.get(fc.index()) else {
                    continue;
                };
                let Some(fw) = frameworks.get(f as usize).and_then(Option::as_ref) else {
                    continue;
                };
                if cache.as_ref().is_none_or(|c| c.gen != agent.gen) {
                    cache = Some(if whole {
                        Cached {
                            gen: agent.gen,
                            avail_empty: agent.available.is_empty(),
                            avail: None,
                            offer: None,
                        }
                    } else {
                        let avail = if agent.has_reservations {
                            agent.available.allocatable_to(role_arc)
                        } else {
                            agent.available.clone()
                        };
                        let offer = if stage1 {
                            let i = entry.unwrap_or(0);
                            Self::quota_offer(&avail, &book.entries[i], book)
                        } else {
                            Self::fair_offer(&avail, entry.map(|i| &book.entries[i]), book)
                        };
                        Cached {
                            gen: agent.gen,
                            avail_empty: avail.is_empty(),
                            avail: Some(avail),
                            offer: Some(offer),
                        }
                    });
                }
                let Some(c) = cache.as_ref() else { continue };
                if c.avail_empty {
                    break;
                }
                if config.filter_gpu_resources && agent.has_gpus && !fw.gpu_capable {
                    continue;
                }
                let Some(fr) = fw.roles.iter().position(|e| e.role == r) else {
                    continue;
                };
                let mins = fw.roles[fr]
                    .min_allocatable
                    .as_deref()
                    .unwrap_or(min_allocatable.as_slice());
                let to_offer = c.offer.as_ref().unwrap_or(&agent.available);
                let avail = c.avail.as_ref().unwrap_or(&agent.available);
                if !avail.allocatable(mins) || (c.avail.is_some() && !to_offer.allocatable(mins)) {
                    continue;
                }
                if agent
                    .filters_of(f)
                    .iter()
                    .any(|x| x.role == r && x.expires > now && x.refused.contains(to_offer))
                {
                    continue;
                }
                // Offer.
                let (offered, resources) = match &c.offer {
                    None => {
                        // The whole of `available`: the cached list when it is that.
                        let resources = match agent.cached_offer(role_arc) {
                            Some(cached) => cached.clone(),
                            None => {
                                let list = list_for(last_built, &agent.available, role_arc);
                                agent.cache_offer(&list, role_arc);
                                list
                            }
                        };
                        agent.gen += 1;
                        (std::mem::take(&mut agent.available), resources)
                    }
                    Some(o) => {
                        agent.available.sub(o);
                        agent.changed();
                        (o.clone(), o.to_resources(Some(role_arc)))
                    }
                };
                let q_start = pending_q.len();
                offered.for_each_scalar(|name, v, unreserved| {
                    pending_q.push((name.clone(), v));
                    qty::add(allocated_all, name, v);
                    if unreserved {
                        qty::add(allocated_unreserved, name, v);
                    }
                });
                if book.tracking() {
                    let uq = offered.unreserved_scalar_quantities();
                    book.consume(r, &uq, cluster_total);
                }
                let new_entry = super::hold(&mut agent.allocations, f, r, offered);
                let fw_client = fw.roles[fr].client;
                let fw_id = fw.id.clone();
                if new_entry {
                    if let Some(fw) = frameworks[f as usize].as_mut() {
                        fw.roles[fr].allocations += 1;
                    }
                }
                pending.push(Pending {
                    role_client: rc,
                    role: r,
                    fw_client,
                    fw_pos,
                    q: q_start..pending_q.len(),
                });
                let merge_into = if offer_at.is_empty() {
                    None
                } else {
                    offer_at.get(&(f, r, a)).copied()
                };
                match merge_into {
                    Some(i) => offers[i].resources += resources,
                    None => {
                        if stage1 || !offer_at.is_empty() {
                            offer_at.insert((f, r, a), offers.len());
                        }
                        offers.push(Allocation {
                            framework: fw_id,
                            role: role_arc.clone(),
                            agent: agent.id.clone(),
                            resources,
                        });
                    }
                }
                if stage1 && book.unsatisfied == 0 {
                    break;
                }
            }
        }
        let offered = !pending.is_empty();
        for p in pending.drain(..) {
            touched.push(p.role);
            let q = &pending_q[p.q];
            role_sorter.change(p.role_client, q, 1, true);
            if let Some(s) = fw_sorters[p.role as usize].as_mut() {
                s.change(p.fw_client, q, 1, true);
                s.hint(p.fw_client, p.fw_pos);
            }
        }
        pending_q.clear();
        offered
    }

    /// Stage 1: unmet guarantees first, then what limits and spare headroom allow.
    fn quota_offer(avail: &Bag, e: &QuotaEntry, book: &QuotaBook) -> Bag {
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
    fn fair_offer(avail: &Bag, e: Option<&QuotaEntry>, book: &QuotaBook) -> Bag {
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
}

/// `available` as an offer list allocated to `role`: the list built last when it is that
/// (see `Scratch::last_built`), else a new one, which becomes the last built.
fn list_for(last_built: &mut Resources, available: &Bag, role: &Arc<str>) -> Resources {
    let same_role = last_built.iter().next().is_some_and(|e| {
        e.allocation_role
            .as_ref()
            .is_some_and(|x| Arc::ptr_eq(x, role))
    });
    if !(same_role && available.same_as_list(last_built)) {
        *last_built = available.to_resources(Some(role));
    }
    last_built.clone()
}

/// What a role could get on the agent being served, valid while the agent's `gen` holds.
struct Cached {
    gen: u64,
    avail_empty: bool,
    /// What the role may have here; `None`: the agent's whole available resources.
    avail: Option<Bag>,
    /// What it would be offered; `None`: the agent's whole available resources.
    offer: Option<Bag>,
}

/// Where stage 1 takes its roles from: the role sorter's order, or (DRF) the same order
/// restricted to the roles stage 1 can still serve.
enum RoleOrder<'a> {
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
struct Stage1Order {
    set: BTreeSet<(Stage1Key, u32)>,
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
    fn build(alloc: &HierarchicalAllocator, book: &QuotaBook) -> Option<Stage1Order> {
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
    fn update(&mut self, alloc: &HierarchicalAllocator, book: &QuotaBook, r: u32) {
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
