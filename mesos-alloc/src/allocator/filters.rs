//! Offer filters: a decline's `refuse_seconds` keeps what was refused from being offered
//! again to the framework, in the role, on the agent, until it expires (at least one allocation
//! interval, at most `MAX_REFUSE`). Filters live with their agent (see `AgentState::filter_fws`
//! and `state::Declines`); an ordered heap of expiries drops them, and each framework keeps the
//! agents it may have filters on so clearing them (revive, deactivate, remove) does not scan
//! every agent.

use std::cmp::Reverse;
use std::time::Duration;

use mesos_core::time::Time;

use super::bag::Bag;
use super::state::OfferFilter;
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
