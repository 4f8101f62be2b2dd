//! Offer filters: a decline's `refuse_seconds` keeps what was refused from being offered
//! again to the framework, in the role, on the agent, until it expires (at least one allocation
//! interval, at most `MAX_REFUSE`). Filters live with their agent (see `AgentState::filter_fws`
//! and `state::Declines`); an ordered heap of expiries drops them, and each framework keeps the
//! agents it may have filters on so clearing them (revive, deactivate, remove) does not scan
//! every agent.

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Duration;

use mesos_core::time::Time;

use super::bag::Bag;
use super::state::AgentState;
use super::HierarchicalAllocator;

impl HierarchicalAllocator {
    pub(super) fn add_filter(
        &mut self,
        now: Time,
        f: u32,
        a: u32,
        r: u32,
        refused: Bag,
        timeout: Duration,
    ) {
        let expires = now + timeout;
        let agent = self.agent_mut(a);
        agent.add_filter(f, r, refused, expires);
        self.fw_mut(f).filter_agents.insert(a);
        self.filter_expiries.push(Reverse((expires, f, a)));
    }

    /// Drops filters that expired by `now`.
    pub(super) fn expire_filters(&mut self, now: Time) {
        let mut any = false;
        while let Some(Reverse((t, f, a))) = self.filter_expiries.peek().copied() {
            if t > now {
                break;
            }
            self.filter_expiries.pop();
            if let Some(agent) = self.agents[a as usize].as_mut() {
                any |= agent.retain_filters(|x| x.framework != f || x.expires > now) > 0;
            }
        }
        if any {
            self.epoch += 1;
        }
    }

    /// Removes framework `f`'s filters for which `drop` holds, on every agent it filtered.
    pub(super) fn clear_filters(&mut self, f: u32, drop: impl Fn(&OfferFilter) -> bool) {
        let agents: Vec<u32> = self.fw(f).filter_agents.iter().copied().collect();
        for a in agents {
            if let Some(agent) = self.agents[a as usize].as_mut() {
                agent.retain_filters(|x| x.framework != f || !drop(x));
            }
        }
    }
}

/// A refusal: `refused` (unallocated) is not offered again to the framework on this agent in
/// this role, nor anything it contains, until `expires`.
#[derive(Debug)]
pub(crate) struct OfferFilter {
    pub(crate) framework: u32,
    pub(crate) role: u32,
    pub(crate) refused: Arc<Bag>,
    pub(crate) expires: Time,
}

/// Offer filters on an agent and what they refuse.
#[derive(Debug, Default)]
pub(crate) struct Declines {
    /// The last refused resources, shared by the filters that refuse the same thing.
    last_refused: Option<Arc<Bag>>,
    /// Sorted by framework slot, in the order of `AgentState::filter_fws`.
    filters: Vec<OfferFilter>,
}

impl AgentState {
    /// The filters of framework slot `f` (a contiguous run, the list being sorted).
    pub(crate) fn filters_of(&self, f: u32) -> &[OfferFilter] {
        if self.filter_mask & (1 << (f % 32)) == 0 {
            return &[];
        }
        let start = self.filter_fws.partition_point(|&x| x < f);
        let len = self.filter_fws[start..].partition_point(|&x| x == f);
        match &self.cold.declines {
            Some(d) if len > 0 => &d.filters[start..start + len],
            _ => &[],
        }
    }

    /// Number of filters here (expired ones included until they are dropped).
    pub(crate) fn filter_count(&self) -> usize {
        self.filter_fws.len()
    }

    /// Adds a filter of framework slot `framework` in role slot `role`, keeping the list sorted
    /// by framework.
    pub(crate) fn add_filter(&mut self, framework: u32, role: u32, refused: Bag, expires: Time) {
        let d = self.cold.declines.get_or_insert_with(Box::default);
        // Declines of the same offer repeat the same resources: share one copy.
        let refused = match &d.last_refused {
            Some(prev) if **prev == refused => prev.clone(),
            _ => {
                let arc = Arc::new(refused);
                d.last_refused = Some(arc.clone());
                arc
            }
        };
        let at = self.filter_fws.partition_point(|&x| x <= framework);
        self.filter_fws.insert(at, framework);
        d.filters.insert(
            at,
            OfferFilter {
                framework,
                role,
                refused,
                expires,
            },
        );
        self.filter_mask |= 1 << (framework % 32);
    }

    /// Keeps the filters for which `keep` holds; returns how many went.
    pub(crate) fn retain_filters(&mut self, mut keep: impl FnMut(&OfferFilter) -> bool) -> usize {
        let before = self.filter_fws.len();
        self.filter_fws.clear();
        if let Some(d) = &mut self.cold.declines {
            d.filters.retain(|x| keep(x));
            self.filter_fws
                .extend(d.filters.iter().map(|x| x.framework));
            if d.filters.is_empty() {
                self.cold.declines = None;
            }
        }
        self.filter_mask = self.filter_fws.iter().fold(0, |m, x| m | 1 << (x % 32));
        before - self.filter_fws.len()
    }
}
