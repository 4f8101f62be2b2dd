//! Roles and the frameworks tracked under them: a role exists while some framework
//! subscribes to it or holds resources in it, with its slot in the role sorter and a framework
//! sorter of its own; each framework's entry per role says whether it is subscribed, suppressed
//! and what its minimum offer is, and so whether it is active in the role's sorter.

use mesos_core::allocator::{AllocatorError, FrameworkSpec};
use mesos_core::resources::validate_role;

use super::qty;
use super::slab::RoleSlot;
use super::state::{FwRole, RoleState};
use super::HierarchicalAllocator;
use crate::sorter::Sorter;

impl HierarchicalAllocator {
    /// Creates the role (and its framework sorter) on first use.
    pub(super) fn role_slot(&mut self, name: &str) -> u32 {
        if let Some(&r) = self.role_index.get(name) {
            return r;
        }
        let client = self.role_sorter.add(name);
        self.role_sorter.activate(name);
        let seed = self.config.seed ^ (self.seq.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        self.seq += 1;
        let mut sorter = Sorter::with_kind(self.config.framework_sorter, seed);
        sorter.set_total(&self.cluster_total);
        let state = RoleState::new(name.to_string(), client);
        let slot = self.roles.insert(state).0;
        // Framework sorters sit beside the roles, slot for slot.
        if self.fw_sorters.len() <= slot as usize {
            self.fw_sorters.resize_with(slot as usize + 1, || None);
        }
        self.fw_sorters[slot as usize] = Some(sorter);
        if self.role_of_client.len() <= client.index() {
            self.role_of_client.resize(client.index() + 1, u32::MAX);
        }
        self.role_of_client[client.index()] = slot;
        self.role_index.insert(name.to_string(), slot);
        self.epoch += 1;
        slot
    }

    /// Tracks framework `f` under `role` (creating the role), returning its role entry index.
    pub(super) fn track(&mut self, f: u32, role: &str) -> usize {
        let r = self.role_slot(role);
        if let Some(i) = self.fw(f).roles.iter().position(|x| x.role == r) {
            return i;
        }
        let fid = self.fw(f).id.clone();
        let client = match self.fw_sorters[r as usize].as_mut() {
            Some(sorter) => sorter.add(fid.as_str()),
            None => unreachable!("role slot {r} is live and has no framework sorter"),
        };
        let rs = self.role_mut(r);
        rs.frameworks += 1;
        if rs.fw_of_client.len() <= client.index() {
            rs.fw_of_client.resize(client.index() + 1, u32::MAX);
        }
        rs.fw_of_client[client.index()] = f;
        let window = self.config.explain_cycles.min(64);
        let fw = self.fw_mut(f);
        // Most frameworks have one role: the default growth (four entries) would hold three
        // unused ones per framework.
        fw.roles.reserve_exact(1);
        fw.roles.push(FwRole {
            role: r,
            name: role.to_string(),
            client,
            subscribed: false,
            suppressed: false,
            min_allocatable: None,
            allocations: 0,
            tally: Default::default(),
            history: vec![Default::default(); window].into_boxed_slice(),
        });
        let i = fw.roles.len() - 1;
        self.epoch += 1;
        i
    }

    /// Stops tracking `f` under role slot `r`; removes the role when nobody is left.
    pub(super) fn untrack(&mut self, f: u32, r: u32) {
        let fw = self.fw_mut(f);
        let Some(i) = fw.roles.iter().position(|x| x.role == r) else {
            return;
        };
        fw.roles.swap_remove(i);
        let fid = fw.id.clone();
        if let Some(s) = self.fw_sorters[r as usize].as_mut() {
            s.remove(fid.as_str());
        }
        let rs = self.role_mut(r);
        rs.frameworks -= 1;
        if rs.frameworks == 0 {
            let name = rs.name.clone();
            self.role_sorter.remove(&name);
            self.role_index.remove(&name);
            self.roles.remove(RoleSlot(r));
            self.fw_sorters[r as usize] = None;
        }
    }

    /// Whether framework `f` should be active in role entry `i`'s sorter.
    pub(super) fn refresh_activation(&mut self, f: u32, i: usize) {
        let fw = self.fw(f);
        let e = &fw.roles[i];
        let want = fw.active && e.subscribed && !e.suppressed;
        let (r, fid) = (e.role, fw.id.clone());
        if let Some(s) = self.fw_sorters[r as usize].as_mut() {
            if want && !s.is_active(fid.as_str()) {
                s.activate(fid.as_str());
                self.epoch += 1;
            } else if !want {
                s.deactivate(fid.as_str());
            }
        }
    }

    pub(super) fn validate_spec(&self, spec: &FrameworkSpec) -> Result<(), AllocatorError> {
        for role in &spec.roles {
            validate_role(role).map_err(|e| AllocatorError::InvalidRole {
                role: role.clone(),
                reason: e.to_string(),
            })?;
        }
        for role in &spec.suppressed_roles {
            if !spec.roles.contains(role) {
                return Err(AllocatorError::UnknownRole(role.clone()));
            }
        }
        for (role, _) in &spec.min_allocatable {
            if !spec.roles.contains(role) {
                return Err(AllocatorError::UnknownRole(role.clone()));
            }
        }
        Ok(())
    }

    /// Applies a spec to a framework already inserted (roles tracked, flags, minimums).
    pub(super) fn apply_spec(&mut self, f: u32, spec: &FrameworkSpec) {
        for role in &spec.roles {
            self.track(f, role);
        }
        let n = self.fw(f).roles.len();
        for i in 0..n {
            let name = self.fw(f).roles[i].name.clone();
            let subscribed = spec.roles.contains(&name);
            let suppressed = spec.suppressed_roles.contains(&name);
            let min = spec
                .min_allocatable
                .iter()
                .find(|(r, _)| *r == name)
                .map(|(_, list)| list.iter().map(qty::from_rq).collect());
            let fw = self.fw_mut(f);
            fw.gpu_capable = spec.gpu_capable;
            let e = &mut fw.roles[i];
            e.subscribed = subscribed;
            e.suppressed = suppressed;
            e.min_allocatable = min;
            self.refresh_activation(f, i);
        }
        // Roles left with nothing allocated and no subscription go.
        let stale: Vec<u32> = self
            .fw(f)
            .roles
            .iter()
            .filter(|e| !e.subscribed && e.allocations == 0)
            .map(|e| e.role)
            .collect();
        for r in stale {
            self.untrack(f, r);
        }
        self.epoch += 1;
    }

    /// Indices of the framework's role entries named in `roles` (all subscribed when empty).
    pub(super) fn role_entries(
        &self,
        f: u32,
        roles: &[String],
    ) -> Result<Vec<usize>, AllocatorError> {
        let fw = self.fw(f);
        if roles.is_empty() {
            return Ok((0..fw.roles.len())
                .filter(|&i| fw.roles[i].subscribed)
                .collect());
        }
        roles
            .iter()
            .map(|name| {
                fw.roles
                    .iter()
                    .position(|e| e.name == *name && e.subscribed)
                    .ok_or_else(|| AllocatorError::UnknownRole(name.clone()))
            })
            .collect()
    }
}
