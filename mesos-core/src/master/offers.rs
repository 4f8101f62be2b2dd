//! Offers: turning the allocator's decisions into offers, and taking them back (expiry,
//! rescission, an agent or framework going away).

use std::collections::BTreeMap;

use super::{Event, Master, Offer, OfferRecord, Output, Timer};
use crate::allocator::{Allocation, Allocator};
use crate::ids::{FrameworkId, OfferId};
use crate::time::Time;

impl<A: Allocator> Master<A> {
    pub(super) fn make_offers(&mut self, now: Time, allocations: Vec<Allocation>) {
        let mut per_framework: BTreeMap<FrameworkId, Vec<Offer>> = BTreeMap::new();
        for a in allocations {
            let usable = self
                .frameworks
                .get(&a.framework)
                .is_some_and(|f| f.connected && f.active)
                && self.agents.get(&a.agent).is_some_and(|ag| ag.active);
            if !usable {
                let _ = self.allocator.recover_resources(
                    now,
                    &a.framework,
                    &a.agent,
                    &a.resources,
                    None,
                );
                continue;
            }
            let Some(agent) = self.agents.get_mut(&a.agent) else {
                continue;
            };
            let id = OfferId::new(format!("{}-O{}", self.info.id, self.next_offer));
            self.next_offer += 1;
            let executor_ids = Vec::new();
            let offer = Offer {
                id: id.clone(),
                framework_id: a.framework.clone(),
                agent_id: a.agent.clone(),
                hostname: agent.hostname.clone(),
                agent_address: agent.address.clone(),
                role: a.role.to_string(),
                resources: a.resources,
                attributes: agent.attributes.clone(),
                executor_ids,
            };
            agent.offers.insert(id.clone());
            let expires = self.config.offer_timeout.map(|d| now + d);
            if let Some(t) = expires {
                self.timers.insert((t, Timer::Offer(id.clone())));
            }
            if let Some(f) = self.frameworks.get_mut(&a.framework) {
                f.offers.insert(id.clone());
            }
            self.offers.insert(
                id,
                OfferRecord {
                    offer: offer.clone(),
                    created: now,
                    expires,
                },
            );
            per_framework.entry(a.framework).or_default().push(offer);
        }
        for (fw, offers) in per_framework {
            self.counters.offers_sent += offers.len() as u64;
            self.outputs
                .push_back(Output::Framework(fw, Event::Offers(offers)));
        }
    }

    /// Removes an offer; with `recover`, its resources go back to the allocator (no filter).
    pub(super) fn remove_offer(&mut self, now: Time, id: &OfferId, recover: bool) -> Option<Offer> {
        let record = self.offers.remove(id)?;
        let o = record.offer;
        if let Some(f) = self.frameworks.get_mut(&o.framework_id) {
            f.offers.remove(id);
        }
        if let Some(a) = self.agents.get_mut(&o.agent_id) {
            a.offers.remove(id);
        }
        if let Some(t) = record.expires {
            self.timers.remove(&(t, Timer::Offer(id.clone())));
        }
        if recover {
            let _ = self.allocator.recover_resources(
                now,
                &o.framework_id,
                &o.agent_id,
                &o.resources,
                None,
            );
        }
        Some(o)
    }

    pub(super) fn rescind_offer(&mut self, now: Time, id: &OfferId, recover: bool) {
        if let Some(o) = self.remove_offer(now, id, recover) {
            self.counters.offers_rescinded += 1;
            if self
                .frameworks
                .get(&o.framework_id)
                .is_some_and(|f| f.connected)
            {
                self.outputs
                    .push_back(Output::Framework(o.framework_id, Event::Rescind(o.id)));
            }
        }
    }
}
