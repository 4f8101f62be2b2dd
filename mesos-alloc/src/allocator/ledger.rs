//! The allocation ledger: what each framework holds on each agent per role (offered or used),
//! kept in three places that must agree, and changed only here: the agent's `available` and
//! `allocations`, the role's totals (quota), and the sorters' allocations (shares).
//!
//! Invariant: for every agent, `available` plus its allocations is its total; a role's totals
//! are the sum of its allocations over the agents; each sorter client's allocation is the sum
//! of its (framework, role) allocations. The property tests (`tests/invariants.rs`) check the
//! first from the outside.

use std::sync::Arc;

use mesos_core::allocator::AllocatorError;
use mesos_core::resources::Resources;

use super::bag::Bag;
use super::qty;
use super::slab::{AgentSlot, RoleSlot};
use super::HierarchicalAllocator;

impl HierarchicalAllocator {
    /// Resolves the role of each entry of `used` (its allocation role, or the framework's only
    /// role) and groups them.
    pub(super) fn group_by_role(
        roles: &[String],
        used: &Resources,
    ) -> Result<Vec<(String, Resources)>, AllocatorError> {
        let mut out: Vec<(String, Resources)> = Vec::new();
        for e in used {
            let role = match &e.allocation_role {
                Some(r) => r.to_string(),
                None if roles.len() == 1 => roles[0].clone(),
                None => return Err(AllocatorError::UnknownRole(String::new())),
            };
            let mut e = e.clone();
            e.allocation_role = Some(Arc::from(role.as_str()));
            match out.iter_mut().find(|(r, _)| *r == role) {
                Some((_, res)) => res.push(e),
                None => out.push((role, Resources::from(e))),
            }
        }
        Ok(out)
    }

    /// Records `res` (allocated to `role`) as offered or used by `f` on agent `a`.
    pub(super) fn add_allocation(&mut self, f: u32, role: &str, a: u32, res: Resources) {
        let i = self.track(f, role);
        let r = self.fw(f).roles[i].role;
        self.fw_mut(f).roles[i].allocations += 1;
        let bag = Bag::from_resources(&res);
        let q = bag.scalar_quantities();
        let uq = bag.unreserved_scalar_quantities();
        let agent = self.agent_mut(a);
        agent.available.sub(&bag);
        agent.changed();
        hold(&mut agent.allocations, f, r, bag);
        let rs = self.roles.live_mut(RoleSlot(r));
        qty::add_all(&mut rs.allocated_unreserved, &uq);
        qty::add_all(&mut rs.allocated_all, &q);
        let rc = rs.client;
        let fc = self.fw(f).roles[i].client;
        self.role_sorter.change(rc, &q, 1, true);
        if let Some(s) = self.fw_sorters[r as usize].as_mut() {
            s.change(fc, &q, 1, true);
        }
    }

    /// Checks that `f` holds every resource of `res` on agent `a`.
    pub(super) fn check_held(
        &self,
        f: u32,
        a: u32,
        res: &Resources,
    ) -> Result<Vec<(u32, Bag)>, AllocatorError> {
        let fw = self.fw(f);
        let agent = self.agents.live(AgentSlot(a));
        let exceeds = || AllocatorError::ExceedsAgent {
            agent: agent.id.clone(),
            resources: res.to_string(),
        };
        // What the framework holds here, per role slot.
        let held: Vec<(u32, &Bag)> = agent
            .allocations
            .iter()
            .filter(|(x, _, _)| *x == f)
            .map(|(_, r, bag)| (*r, bag))
            .collect();
        let mut out: Vec<(u32, Bag)> = Vec::new();
        for e in res {
            // An entry names its role (offers and tasks of MULTI_ROLE frameworks do); without
            // one it belongs to the framework's only role, or else to the first role holding it.
            let r = match &e.allocation_role {
                Some(role) => fw
                    .roles
                    .iter()
                    .find(|x| *x.name == **role)
                    .map(|x| x.role)
                    .ok_or_else(exceeds)?,
                None if fw.roles.len() == 1 => fw.roles[0].role,
                None => {
                    let one = Bag::from_resources(&Resources::from(e.clone()));
                    held.iter()
                        .find(|(r, bag)| {
                            let mut want = out
                                .iter()
                                .find(|(x, _)| x == r)
                                .map(|(_, b)| b.clone())
                                .unwrap_or_default();
                            want.add(&one);
                            bag.contains(&want)
                        })
                        .map(|(r, _)| *r)
                        .ok_or_else(exceeds)?
                }
            };
            let one = Bag::from_resources(&Resources::from(e.clone()));
            match out.iter_mut().find(|(x, _)| *x == r) {
                Some((_, bag)) => bag.add(&one),
                None => out.push((r, one)),
            }
        }
        for (r, part) in &out {
            match held.iter().find(|(x, _)| x == r) {
                Some((_, bag)) if bag.contains(part) => {}
                _ => return Err(exceeds()),
            }
        }
        Ok(out)
    }

    /// Returns `part` (allocated to role slot `r`) of `f` on `a` to the agent.
    ///
    /// `back` is the list `part` was recovered from, when it was one list of one role: if it is
    /// the agent's cached offer and nothing was available, `available` becomes that offer again
    /// and the cache stays valid (see `AgentState::offer_cache`).
    pub(super) fn remove_allocation(
        &mut self,
        f: u32,
        r: u32,
        a: u32,
        part: &Bag,
        back: Option<&Resources>,
    ) {
        let q = part.scalar_quantities();
        let uq = part.unreserved_scalar_quantities();
        let agent = self.agent_mut(a);
        let restores =
            agent.available.is_empty() && back.is_some_and(|b| b.ptr_eq(&agent.offer_cache));
        agent.available.add(part);
        if restores {
            agent.gen += 1;
        } else {
            agent.changed();
        }
        let mut emptied = false;
        if let Some(pos) = agent
            .allocations
            .iter()
            .position(|(x, y, _)| *x == f && *y == r)
        {
            agent.allocations[pos].2.sub(part);
            if agent.allocations[pos].2.is_empty() {
                agent.allocations.swap_remove(pos);
                emptied = true;
            }
        }
        let rs = self.roles.live_mut(RoleSlot(r));
        qty::sub_all(&mut rs.allocated_unreserved, &uq);
        qty::sub_all(&mut rs.allocated_all, &q);
        let rc = rs.client;
        let Some(i) = self.fw(f).roles.iter().position(|e| e.role == r) else {
            return;
        };
        let fc = self.fw(f).roles[i].client;
        self.role_sorter.change(rc, &q, -1, false);
        if let Some(s) = self.fw_sorters[r as usize].as_mut() {
            s.change(fc, &q, -1, false);
        }
        if emptied {
            let e = &mut self.fw_mut(f).roles[i];
            e.allocations -= 1;
            if e.allocations == 0 && !e.subscribed {
                self.untrack(f, r);
            }
        }
        if !self.quotas.is_empty() {
            self.epoch += 1;
        }
    }
}

/// Adds `bag` to the (framework, role) entry of an agent's allocations. A new entry's vector
/// grows one slot at a time: most agents hold one or two entries, and the default growth
/// (four slots) would double their memory.
pub(crate) fn hold(allocations: &mut Vec<(u32, u32, Bag)>, f: u32, r: u32, bag: Bag) -> bool {
    match allocations.iter_mut().find(|(x, y, _)| *x == f && *y == r) {
        Some((_, _, existing)) => {
            existing.add(&bag);
            false
        }
        None => {
            allocations.reserve_exact(1);
            allocations.push((f, r, bag));
            true
        }
    }
}
