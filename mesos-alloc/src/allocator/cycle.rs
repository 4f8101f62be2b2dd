//! One allocation cycle (upstream's `__generateOffers`): the quota stage, then the
//! fair-share stage, each running the pipeline of `stages.rs` on every candidate agent.
//!
//! For each stage the candidate agents are put in a seeded random order, drawn again for each
//! stage. The quota stage runs only while some role's guarantees are unmet and takes the roles
//! it can still serve in DRF order (`quota::Stage1Order`); the fair-share stage takes every
//! role in role-sorter order. The first framework that passes the checks receives what the
//! stage allows it: in the fair-share stage without quota, everything the agent has left for
//! the role, so offers are coarse-grained.
//!
//! Agents are visited in random order, so each is a cache miss; the outer loop of the
//! fair-share stage prefetches the agents ahead of the one being served (see
//! `crate::prefetch`). At the end, the cycle's rejection counts are folded into each
//! framework's record (`explain.rs`).

use mesos_core::allocator::Allocation;
use mesos_core::time::Time;
use rand::seq::SliceRandom;

use super::explain::{CycleRecord, CycleTally};
use super::quota::Stage1Order;
use super::stages::{Out, Stage};
use super::HierarchicalAllocator;
use crate::hash::FxHashMap;
use crate::prefetch;
use crate::sorter::ClientId;

/// How many agents ahead of the one being served its record is prefetched, and (read from that
/// record, in cache by then) its heap blocks. See `crate::prefetch`.
const PREFETCH_RECORD: usize = 16;
const PREFETCH_BLOCKS: usize = 8;

/// A sorter update deferred to the end of the agent.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) role_client: ClientId,
    pub(crate) role: u32,
    pub(crate) fw_client: ClientId,
    /// Where the framework was in its sorter's order (a hint for re-placing it).
    pub(crate) fw_pos: usize,
    /// Its quantities, in `Scratch::pending_q`.
    pub(crate) q: std::ops::Range<usize>,
}

/// Buffers reused from agent to agent so a cycle allocates only what it returns.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub(crate) pending: Vec<Pending>,
    pub(crate) pending_q: Vec<(mesos_core::resources::Name, i64)>,
    /// The offer list built last (allocated to one role). Agents with the same available
    /// resources (a cluster of one machine type, all idle) are offered this very list instead
    /// of a copy each.
    pub(crate) last_built: mesos_core::resources::Resources,
}

impl HierarchicalAllocator {
    /// Runs a cycle over `agents` (active ones; `draining` inactive ones were left out).
    pub(crate) fn cycle(
        &mut self,
        now: Time,
        mut agents: Vec<u32>,
        draining: u32,
    ) -> Vec<Allocation> {
        self.sync_sorter_totals();
        let mut book = self.quota_book();
        let mut offers: Vec<Allocation> = Vec::new();
        let mut offer_at: FxHashMap<(u32, u32, u32), usize> = FxHashMap::default();
        let mut offered_agents: Vec<bool> = Vec::new();
        let mut touched = Vec::new();
        let mut tally = CycleTally {
            agents: agents.len() as u32 + draining,
            draining,
            ..CycleTally::default()
        };
        if book.unsatisfied > 0 {
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
                let mut out = Out {
                    offers: &mut offers,
                    offer_at: &mut offer_at,
                    touched: &mut touched,
                    tally: &mut tally,
                };
                let offered = self.serve_agent(now, a, Stage::Quota, list, &mut book, &mut out);
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
            let mut out = Out {
                offers: &mut offers,
                offer_at: &mut offer_at,
                touched: &mut touched,
                tally: &mut tally,
            };
            let offered = self.serve_agent(now, a, Stage::FairShare, None, &mut book, &mut out);
            if use_memo && !offered && !offered_agents.get(a as usize).copied().unwrap_or(false) {
                if let Some(agent) = self.agents[a as usize].as_mut() {
                    agent.idle_memo = (agent.gen, self.epoch);
                }
            }
        }
        self.last_candidates = agents;
        self.record_explanations(&tally);
        offers
    }

    /// Folds the cycle's counts into each framework's record of the last cycles and clears
    /// them for the next cycle.
    fn record_explanations(&mut self, tally: &CycleTally) {
        let cycle = self.runs;
        let Self {
            frameworks, roles, ..
        } = self;
        for fw in frameworks.iter_mut().flatten() {
            let active = fw.active;
            for e in &mut fw.roles {
                let t = std::mem::take(&mut e.tally);
                if !active || !e.subscribed {
                    continue;
                }
                let role = match roles.get(e.role as usize).and_then(Option::as_ref) {
                    Some(role) => role.tally,
                    None => Default::default(),
                };
                let record = CycleRecord::fold(cycle, &t, &role, e.suppressed, tally);
                let w = e.history.len();
                if w > 0 {
                    e.history[(cycle % w as u64) as usize] = record;
                }
            }
        }
        for role in roles.iter_mut().flatten() {
            role.tally = Default::default();
        }
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
}
