//! The checks one stage makes on one agent, as a pipeline of small named steps (in the manner
//! of Nomad's feasibility iterators): each accepts, or rejects with a [`Reject`] that is
//! counted where it happens (see `explain.rs`).
//!
//! For one agent, in order (cheap and agent-wide first):
//!
//! 1. agent: [`has_available`], [`changed_since_idle`], [`some_role_uncapped`];
//! 2. the roles in role-sorter order ([`RoleOrder`]), each through [`role_in_stage`] and, once
//!    what it may have here is known, [`role_has_allocatable`];
//! 3. the role's frameworks in its framework sorter's order (suppressed and inactive ones are
//!    not in it), each through [`gpu_aware`], [`min_allocatable_here`] and [`not_filtered`];
//! 4. the first framework through gets what the stage allows it ([`HierarchicalAllocator::offer`]).
//!
//! Sorter updates for an agent's offers are applied after that agent: upstream iterates over
//! copies of the sorted lists taken before the agent's offers, so deferring the updates gives
//! the same order while letting the loops read the sorters in place.

use std::collections::BTreeSet;
use std::sync::Arc;

use mesos_core::allocator::Allocation;
use mesos_core::resources::Resources;
use mesos_core::time::Time;

use super::bag::Bag;
use super::cycle::{Pending, Scratch};
use super::explain::{CycleTally, Reject};
use super::qty::{self, Qty};
use super::quota::{QuotaBook, QuotaEntry, RoleOrder, Stage1Key};
use super::state::{AgentState, FrameworkState, RoleState};
use super::HierarchicalAllocator;
use crate::hash::FxHashMap;

/// The two stages of a cycle (upstream's two passes in `__generateOffers`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Unmet quota guarantees first: only top-level roles with guarantees still unmet, offered
    /// their guarantees and what limits and spare headroom allow beyond.
    Quota,
    /// Everyone in fair-share order, within quota limits and the headroom that unmet
    /// guarantees elsewhere still need. Its rejections are the ones counted.
    FairShare,
}

// ---- agent steps --------------------------------------------------------------------------

/// The agent has something neither offered nor allocated.
#[inline(always)]
pub(crate) fn has_available(agent: &AgentState) -> Result<(), Reject> {
    if agent.available.is_empty() {
        Err(Reject::Exhausted)
    } else {
        Ok(())
    }
}

/// The agent changed, or something that could make it offerable did (`epoch`), since a cycle
/// last found nothing to offer on it. `memo_epoch` is `None` when no memo is kept (quota set).
#[inline(always)]
pub(crate) fn changed_since_idle(
    agent: &AgentState,
    memo_epoch: Option<u64>,
) -> Result<(), Reject> {
    match memo_epoch {
        Some(epoch) if agent.idle_memo == (agent.gen, epoch) => Err(Reject::Unchanged),
        _ => Ok(()),
    }
}

/// In the fair-share stage, some role is still below its quota limits, or the agent has
/// resources limits do not cap (reservations, ranges and sets).
#[inline(always)]
pub(crate) fn some_role_uncapped(
    stage: Stage,
    book: &QuotaBook,
    agent: &AgentState,
) -> Result<(), Reject> {
    if stage == Stage::FairShare
        && book.uncapped_roles == 0
        && !agent.has_reservations
        && !agent.has_non_scalars
    {
        Err(Reject::QuotaLimit)
    } else {
        Ok(())
    }
}

// ---- role steps ---------------------------------------------------------------------------

/// Why a role does not go on to its frameworks on this agent.
pub(crate) enum RoleSkip {
    /// The stage does not serve the role (the quota stage serves only top-level roles with
    /// guarantees still unmet): not a rejection.
    NotInStage,
    /// Rejected, for every framework of the role.
    Rejected(Reject),
}

/// The stage serves the role here: the quota stage only top-level roles with unmet
/// guarantees; the fair-share stage every role, except one at its quota limit on an agent with
/// nothing the limit does not cap.
#[inline(always)]
pub(crate) fn role_in_stage(
    stage: Stage,
    role: &RoleState,
    entry: Option<&QuotaEntry>,
    agent: &AgentState,
) -> Result<(), RoleSkip> {
    match stage {
        Stage::Quota => match entry {
            Some(e) if role.is_top && !e.guarantees.is_empty() && !e.satisfied => Ok(()),
            _ => Err(RoleSkip::NotInStage),
        },
        Stage::FairShare => match entry {
            Some(e) if e.capped && !agent.has_reservations && !agent.has_non_scalars => {
                Err(RoleSkip::Rejected(Reject::QuotaLimit))
            }
            _ => Ok(()),
        },
    }
}

/// Something on the agent may go to the role (everything left is not reserved for others).
#[inline(always)]
pub(crate) fn role_has_allocatable(c: &Cached) -> Result<(), Reject> {
    if c.avail_empty {
        Err(Reject::ReservedForOthers)
    } else {
        Ok(())
    }
}

// ---- framework steps ----------------------------------------------------------------------

/// GPU agents go only to GPU-capable frameworks (`--filter_gpu_resources`).
#[inline(always)]
pub(crate) fn gpu_aware(
    filter_gpu: bool,
    agent: &AgentState,
    fw: &FrameworkState,
) -> Result<(), Reject> {
    if filter_gpu && agent.has_gpus && !fw.gpu_capable {
        Err(Reject::GpuAgent)
    } else {
        Ok(())
    }
}

/// What the role may have here, and what it would be offered after quota limits and
/// headroom, each hold at least one of the minimums `mins`.
#[inline(always)]
pub(crate) fn min_allocatable_here(
    stage: Stage,
    c: &Cached,
    agent: &AgentState,
    mins: &[Qty],
    entry: Option<&QuotaEntry>,
    book: &QuotaBook,
) -> Result<(), Reject> {
    let avail = c.avail.as_ref().unwrap_or(&agent.available);
    if !avail.allocatable(mins) {
        return Err(Reject::BelowMinAllocatable);
    }
    match &c.offer {
        Some(offer) if c.avail.is_some() && !offer.allocatable(mins) => {
            Err(if stage == Stage::FairShare {
                book.shrink_reason(avail, entry, mins)
            } else {
                Reject::QuotaHeadroom
            })
        }
        _ => Ok(()),
    }
}

/// No offer filter of framework slot `f` in role slot `r` in force at `now` covers `to_offer`.
#[inline(always)]
pub(crate) fn not_filtered(
    agent: &AgentState,
    f: u32,
    r: u32,
    now: Time,
    to_offer: &Bag,
) -> Result<(), Reject> {
    if agent
        .filters_of(f)
        .iter()
        .any(|x| x.role == r && x.expires > now && x.refused.contains(to_offer))
    {
        Err(Reject::Filtered)
    } else {
        Ok(())
    }
}

/// What a role could get on the agent being served, valid while the agent's `gen` holds.
pub(crate) struct Cached {
    gen: u64,
    avail_empty: bool,
    /// What the role may have here; `None`: the agent's whole available resources.
    avail: Option<Bag>,
    /// What it would be offered; `None`: the agent's whole available resources.
    offer: Option<Bag>,
}

/// Where one stage's offers go while a cycle runs.
pub(crate) struct Out<'a> {
    pub(crate) offers: &'a mut Vec<Allocation>,
    /// (framework, role, agent) -> index in `offers`, so the fair-share stage adds to an
    /// offer the quota stage made instead of making a second one.
    pub(crate) offer_at: &'a mut FxHashMap<(u32, u32, u32), usize>,
    /// Role slots that received something on the agent (the quota stage re-keys them).
    pub(crate) touched: &'a mut Vec<u32>,
    pub(crate) tally: &'a mut CycleTally,
}

impl HierarchicalAllocator {
    /// Runs one stage's pipeline on agent `a`; returns whether anything was offered.
    ///
    /// `list` is the quota stage's own role order (see `quota::Stage1Order`); without it the
    /// roles come in role-sorter order.
    pub(crate) fn serve_agent(
        &mut self,
        now: Time,
        a: u32,
        stage: Stage,
        list: Option<&BTreeSet<(Stage1Key, u32)>>,
        book: &mut QuotaBook,
        out: &mut Out<'_>,
    ) -> bool {
        let counting = stage == Stage::FairShare;
        let memo_epoch = self.quotas.is_empty().then_some(self.epoch);
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
        let agent_ok = has_available(agent)
            .and_then(|()| changed_since_idle(agent, memo_epoch))
            .and_then(|()| some_role_uncapped(stage, book, agent));
        if let Err(why) = agent_ok {
            if counting {
                match why {
                    Reject::Exhausted => out.tally.exhausted += 1,
                    Reject::Unchanged => out.tally.unchanged += 1,
                    _ => out.tally.all_capped += 1,
                }
            }
            return false;
        }
        if counting {
            out.tally.reached += 1;
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
            if stage == Stage::Quota && book.unsatisfied == 0 {
                break;
            }
            let Some(role) = roles.get_mut(r as usize).and_then(Option::as_mut) else {
                continue;
            };
            let entry = book.role_entry.get(r as usize).copied().flatten();
            match role_in_stage(stage, role, entry.map(|i| &book.entries[i]), agent) {
                Ok(()) => {}
                Err(RoleSkip::NotInStage) => continue,
                Err(RoleSkip::Rejected(why)) => {
                    if counting {
                        role.tally.add(why);
                    }
                    continue;
                }
            }
            let Some(sorter) = fw_sorters.get_mut(r as usize).and_then(Option::as_mut) else {
                continue;
            };
            sorter.prepare();
            let rc = role.client;
            // Disjoint borrows of the role: its name is read while its totals grow.
            let RoleState {
                arc: role_arc,
                fw_of_client,
                allocated_all,
                allocated_unreserved,
                tally: role_tally,
                ..
            } = role;
            // Without reservations, limits or headroom to keep, the role may have the whole
            // agent: no copy is made until an offer is.
            let whole = stage == Stage::FairShare
                && !agent.has_reservations
                && entry.is_none_or(|i| book.entries[i].limits.is_none())
                && book.required_headroom.is_empty();
            let mut cache: Option<Cached> = None;
            let mut offered_here = false;
            for (fw_pos, fc) in sorter.order().enumerate() {
                let Some(&f) = fw_of_client.get(fc.index()) else {
                    continue;
                };
                let Some(fw) = frameworks.get_mut(f as usize).and_then(Option::as_mut) else {
                    continue;
                };
                if cache.as_ref().is_none_or(|c| c.gen != agent.gen) {
                    cache = Some(Self::what_role_may_get(
                        stage, whole, agent, role_arc, entry, book,
                    ));
                }
                let Some(c) = cache.as_ref() else { continue };
                if let Err(why) = role_has_allocatable(c) {
                    // Before any offer here it is about the role; after one, the frameworks
                    // left were beaten to it (the fair-share remainder).
                    if counting && !offered_here {
                        role_tally.add(why);
                    }
                    break;
                }
                let Some(fr) = fw.roles.iter().position(|e| e.role == r) else {
                    continue;
                };
                let mins = fw.roles[fr]
                    .min_allocatable
                    .as_deref()
                    .unwrap_or(min_allocatable.as_slice());
                let to_offer = c.offer.as_ref().unwrap_or(&agent.available);
                let feasible = gpu_aware(config.filter_gpu_resources, agent, fw)
                    .and_then(|()| {
                        min_allocatable_here(
                            stage,
                            c,
                            agent,
                            mins,
                            entry.map(|i| &book.entries[i]),
                            book,
                        )
                    })
                    .and_then(|()| not_filtered(agent, f, r, now, to_offer));
                if let Err(why) = feasible {
                    if counting {
                        fw.roles[fr].tally.rejected.add(why);
                    }
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
                offered_here = true;
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
                let e = &mut fw.roles[fr];
                if new_entry {
                    e.allocations += 1;
                }
                if counting {
                    e.tally.fair_offered += 1;
                }
                pending.push(Pending {
                    role_client: rc,
                    role: r,
                    fw_client: e.client,
                    fw_pos,
                    q: q_start..pending_q.len(),
                });
                let merge_into = if out.offer_at.is_empty() {
                    None
                } else {
                    out.offer_at.get(&(f, r, a)).copied()
                };
                match merge_into {
                    Some(i) => out.offers[i].resources += resources,
                    None => {
                        if stage == Stage::Quota || !out.offer_at.is_empty() {
                            out.offer_at.insert((f, r, a), out.offers.len());
                        }
                        e.tally.offered += 1;
                        out.offers.push(Allocation {
                            framework: fw.id.clone(),
                            role: role_arc.clone(),
                            agent: agent.id.clone(),
                            resources,
                        });
                    }
                }
                if stage == Stage::Quota && book.unsatisfied == 0 {
                    break;
                }
            }
        }
        let offered = !pending.is_empty();
        for p in pending.drain(..) {
            out.touched.push(p.role);
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

    /// What the role may have on the agent and what the stage would offer it.
    #[inline(always)]
    fn what_role_may_get(
        stage: Stage,
        whole: bool,
        agent: &AgentState,
        role: &Arc<str>,
        entry: Option<usize>,
        book: &QuotaBook,
    ) -> Cached {
        if whole {
            return Cached {
                gen: agent.gen,
                avail_empty: agent.available.is_empty(),
                avail: None,
                offer: None,
            };
        }
        let avail = if agent.has_reservations {
            agent.available.allocatable_to(role)
        } else {
            agent.available.clone()
        };
        let offer = match stage {
            Stage::Quota => {
                let i = entry.unwrap_or(0);
                QuotaBook::quota_offer(&avail, &book.entries[i], book)
            }
            Stage::FairShare => {
                QuotaBook::fair_offer(&avail, entry.map(|i| &book.entries[i]), book)
            }
        };
        Cached {
            gen: agent.gen,
            avail_empty: avail.is_empty(),
            avail: Some(avail),
            offer: Some(offer),
        }
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
