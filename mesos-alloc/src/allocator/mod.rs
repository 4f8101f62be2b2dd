//! Mesos' hierarchical allocator, sans-IO.
//!
//! The master drives it through [`mesos_core::allocator::Allocator`]: events go in (frameworks,
//! agents, recovered resources with their `refuse_seconds` filters, suppress/revive, weights,
//! quota) and [`Allocator::allocate`] runs a cycle when one is due at the `now` it
//! is given. Events that upstream answers with an allocation (a framework added or activated,
//! a revive, an agent added) only *request* a cycle, and requests coalesce: however many
//! arrive, the next `allocate` runs one cycle. The periodic cycle comes every
//! `allocation_interval`. [`Allocator::poll_timeout`] says when the next is due.
//!
//! One cycle (see `cycle.rs`) runs the quota stage, then the fair-share stage, each over the
//! candidate agents in an order drawn from the seeded rng, and returns coarse-grained offers:
//! one `Allocation` per (framework, role, agent).

mod bag;
mod cycle;
mod explain;
mod filters;
mod ledger;
mod qty;
mod quota;
mod roles;
mod slab;
mod stages;
mod state;

pub(crate) use ledger::hold;

pub use explain::{Explanation, Reject, Rejections, WhyNoOffers};

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use mesos_core::allocator::{
    AgentSpec, Allocation, Allocator, AllocatorError, FrameworkSpec, Quota,
};
use mesos_core::ids::{AgentId, FrameworkId};
use mesos_core::resources::{validate_role, ResourceQuantities, Resources};
use mesos_core::time::Time;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::hash::FxHashMap;
use crate::sorter::{Sorter, SorterKind};

use self::bag::Bag;
use self::qty::Qty;
use self::slab::{AgentSlot, FwSlot, RoleSlot, Slab};
use self::state::{AgentState, FrameworkState, RoleState};

/// The longest `refuse_seconds` honoured (upstream caps at 365 days).
pub const MAX_REFUSE: Duration = Duration::from_secs(365 * 24 * 3600);

/// `Filters.refuse_seconds` when a DECLINE or ACCEPT carries no filters (the proto default).
/// [`Allocator::recover_resources`] takes `None` as "no filter" (rescinded or discarded
/// offers), so the master passes `Some(DEFAULT_REFUSE)` for a decline without filters.
pub const DEFAULT_REFUSE: Duration = Duration::from_secs(5);

/// Configuration, with Mesos' defaults.
#[derive(Clone, Debug)]
pub struct AllocatorConfig {
    /// Time between periodic cycles (`--allocation_interval`, 1 s). Also the shortest filter.
    pub allocation_interval: Duration,
    /// Global minimum offer size (`--min_allocatable_resources`, `cpus:0.01|mem:32`): an offer
    /// must hold at least one of these. Empty means any non-empty offer.
    pub min_allocatable: Vec<ResourceQuantities>,
    /// `--role_sorter`.
    pub role_sorter: SorterKind,
    /// `--framework_sorter`.
    pub framework_sorter: SorterKind,
    /// Seed of every random choice (agent order, random sorters).
    pub seed: u64,
    /// `--filter_gpu_resources`: agents with GPUs are only offered to GPU-capable frameworks.
    pub filter_gpu_resources: bool,
    /// How many of the last cycles [`HierarchicalAllocator::why_no_offers`] covers (ours, not
    /// a Mesos flag; 5 by default, at most 64).
    pub explain_cycles: usize,
}

impl Default for AllocatorConfig {
    fn default() -> Self {
        AllocatorConfig {
            allocation_interval: Duration::from_secs(1),
            min_allocatable: vec![
                ResourceQuantities::parse("cpus:0.01").unwrap_or_default(),
                ResourceQuantities::parse("mem:32").unwrap_or_default(),
            ],
            role_sorter: SorterKind::Drf,
            framework_sorter: SorterKind::Drf,
            seed: 0,
            filter_gpu_resources: true,
            explain_cycles: 5,
        }
    }
}

/// What the allocator knows about one role, for `/metrics`, `/roles` and tests.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleInfo {
    /// The role's weight (1 unless set).
    pub weight: f64,
    /// Frameworks tracked under the role.
    pub frameworks: usize,
    /// Scalars offered or allocated to the role (its own frameworks only, not sub-roles).
    pub allocated: ResourceQuantities,
}

/// The hierarchical DRF allocator (Mesos' `HierarchicalDRFAllocator`).
///
/// ```
/// use mesos_alloc::{AllocatorConfig, HierarchicalAllocator};
/// use mesos_core::allocator::{AgentSpec, Allocator, FrameworkSpec};
/// use mesos_core::ids::{AgentId, FrameworkId};
/// use mesos_core::resources::Resources;
/// use mesos_core::time::Time;
///
/// let mut alloc = HierarchicalAllocator::new(AllocatorConfig::default());
/// let spec = AgentSpec { total: Resources::parse("cpus:4;mem:1024").unwrap(), ..Default::default() };
/// alloc.add_agent(&AgentId::new("a1"), spec, &[]).unwrap();
/// let fw = FrameworkSpec { roles: vec!["web".into()], ..Default::default() };
/// alloc.add_framework(Time::ZERO, &FrameworkId::new("f1"), fw, &[], true).unwrap();
/// let offers = alloc.allocate(Time::ZERO);
/// assert_eq!(offers.len(), 1);
/// assert_eq!(&*offers[0].role, "web");
/// assert_eq!(offers[0].resources.cpus(), 4.0);
/// ```
#[derive(Debug)]
pub struct HierarchicalAllocator {
    pub(crate) config: AllocatorConfig,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) min_allocatable: Vec<Qty>,

    pub(crate) agents: Slab<AgentSlot, AgentState>,
    agent_index: FxHashMap<AgentId, u32>,

    pub(crate) frameworks: Slab<FwSlot, FrameworkState>,
    framework_index: FxHashMap<FrameworkId, u32>,

    pub(crate) roles: Slab<RoleSlot, RoleState>,
    role_index: FxHashMap<String, u32>,
    /// Role sorter client id -> role slot.
    pub(crate) role_of_client: Vec<u32>,
    pub(crate) role_sorter: Sorter,
    /// Framework sorter per role slot (kept beside `roles` so both can be borrowed at once).
    pub(crate) fw_sorters: Vec<Option<Sorter>>,

    weights: FxHashMap<String, f64>,
    pub(crate) quotas: BTreeMap<String, Quota>,
    /// Scalars reserved to each role (exact reservation role), over all agents.
    pub(crate) reserved_by_role: BTreeMap<String, Qty>,

    /// The pool every sorter measures shares against: all agents' scalars.
    pub(crate) cluster_total: Qty,
    pub(crate) total_version: u64,
    pub(crate) sorters_version: u64,

    /// Bumped when something may make a previously unofferable agent offerable (a framework
    /// or role appears or is revived, a filter goes, a minimum changes, quota changes).
    pub(crate) epoch: u64,
    filter_expiries: BinaryHeap<Reverse<(Time, u32, u32)>>,

    next_periodic: Time,
    requested: Option<Time>,
    request_all: bool,
    requested_agents: Vec<u32>,
    last_now: Time,
    seq: u64,
    runs: u64,
    /// The agents the last cycle looked at (for introspection).
    pub(crate) last_candidates: Vec<u32>,
    pub(crate) scratch: cycle::Scratch,
}

impl HierarchicalAllocator {
    /// An empty allocator.
    pub fn new(config: AllocatorConfig) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        let min_allocatable = config.min_allocatable.iter().map(qty::from_rq).collect();
        let role_sorter = Sorter::with_kind(config.role_sorter, config.seed ^ 0x5eed);
        HierarchicalAllocator {
            config,
            rng,
            min_allocatable,
            agents: Slab::default(),
            agent_index: FxHashMap::default(),
            frameworks: Slab::default(),
            framework_index: FxHashMap::default(),
            roles: Slab::default(),
            role_index: FxHashMap::default(),
            role_of_client: Vec::new(),
            role_sorter,
            fw_sorters: Vec::new(),
            weights: FxHashMap::default(),
            quotas: BTreeMap::new(),
            reserved_by_role: BTreeMap::new(),
            cluster_total: Qty::new(),
            total_version: 0,
            sorters_version: 0,
            epoch: 0,
            filter_expiries: BinaryHeap::new(),
            next_periodic: Time::ZERO,
            requested: None,
            request_all: false,
            requested_agents: Vec::new(),
            last_now: Time::ZERO,
            seq: 0,
            runs: 0,
            last_candidates: Vec::new(),
            scratch: cycle::Scratch::default(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &AllocatorConfig {
        &self.config
    }

    /// Number of allocation cycles run so far (`allocator/mesos/allocation_runs`).
    pub fn allocation_runs(&self) -> u64 {
        self.runs
    }

    /// True when the last cycle considered `agent` (periodic cycles and cycles requested
    /// by framework events cover every active agent; one requested by `add_agent` only that
    /// agent).
    pub fn last_cycle_covered(&self, agent: &AgentId) -> bool {
        self.agent_index
            .get(agent)
            .is_some_and(|a| self.last_candidates.contains(a))
    }

    /// Number of known agents.
    pub fn agent_count(&self) -> usize {
        self.agent_index.len()
    }

    /// Number of known frameworks.
    pub fn framework_count(&self) -> usize {
        self.framework_index.len()
    }

    /// What an agent has not offered or allocated, `None` for an unknown agent.
    pub fn available(&self, agent: &AgentId) -> Option<Resources> {
        let a = self.agent(agent).ok()?;
        Some(a.available.to_resources(None))
    }

    /// An agent's hostname and attributes, as given to `add_agent`.
    pub fn agent_info(
        &self,
        agent: &AgentId,
    ) -> Option<(&str, &mesos_core::attributes::Attributes)> {
        let a = self.agent(agent).ok()?;
        Some((a.cold.hostname.as_str(), &a.cold.attributes))
    }

    /// An agent's total.
    pub fn total(&self, agent: &AgentId) -> Option<Resources> {
        let a = self.agent(agent).ok()?;
        let mut total = a.available.clone();
        for (_, _, held) in &a.allocations {
            total.add(held);
        }
        Some(total.to_resources(None))
    }

    /// Everything offered or allocated on an agent, per (framework, role).
    pub fn allocated_on(&self, agent: &AgentId) -> Vec<(FrameworkId, String, Resources)> {
        let Ok(a) = self.agent(agent) else {
            return Vec::new();
        };
        a.allocations
            .iter()
            .filter_map(|(f, r, res)| {
                let fw = self.frameworks[*f as usize].as_ref()?;
                let role = self.roles[*r as usize].as_ref()?;
                Some((
                    fw.id.clone(),
                    role.name.clone(),
                    res.to_resources(Some(&role.arc)),
                ))
            })
            .collect()
    }

    /// Number of offer filters in force (expired ones may linger until the next cycle).
    pub fn filter_count(&self) -> usize {
        self.agents.iter().flatten().map(|a| a.filter_count()).sum()
    }

    /// True when the framework has a filter in force on `agent` for `role` at `now`.
    pub fn is_filtered(
        &self,
        now: Time,
        framework: &FrameworkId,
        agent: &AgentId,
        role: &str,
    ) -> bool {
        let (Some(&f), Some(&a), Some(&r)) = (
            self.framework_index.get(framework),
            self.agent_index.get(agent),
            self.role_index.get(role),
        ) else {
            return false;
        };
        self.agents[a as usize].as_ref().is_some_and(|agent| {
            agent
                .filters_of(f)
                .iter()
                .any(|x| x.role == r && x.expires > now)
        })
    }

    /// The roles the allocator tracks, with their state.
    pub fn roles(&self) -> Vec<(String, RoleInfo)> {
        let mut out: Vec<(String, RoleInfo)> = self
            .roles
            .iter()
            .flatten()
            .map(|r| {
                let mut allocated = ResourceQuantities::new();
                for (n, v) in r.allocated_all.iter() {
                    allocated.add(n, mesos_core::resources::Scalar::from_millis(*v));
                }
                (
                    r.name.clone(),
                    RoleInfo {
                        weight: self.weights.get(&r.name).copied().unwrap_or(1.0),
                        frameworks: r.frameworks,
                        allocated,
                    },
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The current role order (DRF by default), for introspection.
    pub fn role_order(&mut self) -> Vec<String> {
        self.sync_sorter_totals();
        self.role_sorter.sort()
    }

    /// Why frameworks were or were not offered agents over the last cycles (at most
    /// `AllocatorConfig::explain_cycles` of them): per active framework and subscribed role,
    /// the agents looked at, the offers made and, per [`Reject`] reason, the agents turned
    /// away. Counted where each check rejects (see [`Reject`] for the reasons).
    ///
    /// ```
    /// use mesos_alloc::{AllocatorConfig, HierarchicalAllocator, Reject};
    /// use mesos_core::allocator::{AgentSpec, Allocator, FrameworkSpec};
    /// use mesos_core::ids::{AgentId, FrameworkId};
    /// use mesos_core::resources::Resources;
    /// use mesos_core::time::Time;
    ///
    /// let mut alloc = HierarchicalAllocator::new(AllocatorConfig::default());
    /// let spec = AgentSpec { total: Resources::parse("cpus:4;mem:1024").unwrap(), ..Default::default() };
    /// alloc.add_agent(&AgentId::new("a1"), spec, &[]).unwrap();
    /// let fw = FrameworkSpec { roles: vec!["web".into()], ..Default::default() };
    /// alloc.add_framework(Time::ZERO, &FrameworkId::new("f1"), fw, &[], true).unwrap();
    /// alloc.suppress(&FrameworkId::new("f1"), &[]).unwrap();
    /// assert!(alloc.allocate(Time::ZERO).is_empty());
    /// let why = alloc.why_no_offers();
    /// let f1 = why.get(&FrameworkId::new("f1"), "web").unwrap();
    /// assert_eq!((f1.agents, f1.offered), (1, 0));
    /// assert_eq!(f1.rejected.get(Reject::Suppressed), 1);
    /// ```
    pub fn why_no_offers(&self) -> WhyNoOffers {
        let last = self.runs;
        let window = self.config.explain_cycles.min(64) as u64;
        let first = last.saturating_sub(window.saturating_sub(1)).max(1);
        let mut entries = Vec::new();
        for fw in self.frameworks.iter().flatten() {
            for e in &fw.roles {
                let mut ex = Explanation::new(fw.id.clone(), e.name.clone());
                for r in e.history.iter() {
                    if r.cycle != 0 && r.cycle >= first && r.cycle <= last {
                        ex.add(r);
                    }
                }
                if ex.cycles > 0 {
                    entries.push(ex);
                }
            }
        }
        entries.sort_by(|a, b| (&a.framework, &a.role).cmp(&(&b.framework, &b.role)));
        WhyNoOffers {
            first_cycle: if last == 0 { 0 } else { first },
            last_cycle: last,
            entries,
        }
    }

    /// The quota set for a role, if any.
    pub fn quota(&self, role: &str) -> Option<&Quota> {
        self.quotas.get(role)
    }

    /// Asks for a cycle over every agent at the next `allocate`.
    pub fn request_allocation(&mut self, now: Time) {
        self.request(now, None);
    }

    fn request(&mut self, now: Time, agent: Option<u32>) {
        self.requested = Some(self.requested.map_or(now, |t| t.min(now)));
        match agent {
            None => self.request_all = true,
            Some(a) => self.requested_agents.push(a),
        }
    }

    pub(crate) fn agent(&self, id: &AgentId) -> Result<&AgentState, AllocatorError> {
        self.agent_index
            .get(id)
            .and_then(|&i| self.agents.lookup(AgentSlot(i)))
            .ok_or_else(|| AllocatorError::UnknownAgent(id.clone()))
    }

    fn agent_idx(&self, id: &AgentId) -> Result<u32, AllocatorError> {
        self.agent_index
            .get(id)
            .copied()
            .ok_or_else(|| AllocatorError::UnknownAgent(id.clone()))
    }

    fn framework_idx(&self, id: &FrameworkId) -> Result<u32, AllocatorError> {
        self.framework_index
            .get(id)
            .copied()
            .ok_or_else(|| AllocatorError::UnknownFramework(id.clone()))
    }

    fn fw(&self, f: u32) -> &FrameworkState {
        self.frameworks.live(FwSlot(f))
    }

    fn fw_mut(&mut self, f: u32) -> &mut FrameworkState {
        self.frameworks.live_mut(FwSlot(f))
    }

    fn agent_mut(&mut self, a: u32) -> &mut AgentState {
        self.agents.live_mut(AgentSlot(a))
    }

    fn role_mut(&mut self, r: u32) -> &mut RoleState {
        self.roles.live_mut(RoleSlot(r))
    }

    /// Makes sure every sorter measures shares against the current cluster total.
    pub(crate) fn sync_sorter_totals(&mut self) {
        if self.sorters_version == self.total_version {
            return;
        }
        self.role_sorter.set_total(&self.cluster_total);
        for s in self.fw_sorters.iter_mut().flatten() {
            s.set_total(&self.cluster_total);
        }
        self.sorters_version = self.total_version;
    }

    fn quota_error(role: &str, reason: impl Into<String>) -> AllocatorError {
        AllocatorError::InvalidQuota {
            role: role.to_string(),
            reason: reason.into(),
        }
    }
}

impl Allocator for HierarchicalAllocator {
    fn add_framework(
        &mut self,
        now: Time,
        framework: &FrameworkId,
        spec: FrameworkSpec,
        used: &[(AgentId, Resources)],
        active: bool,
    ) -> Result<(), AllocatorError> {
        if self.framework_index.contains_key(framework) {
            return Err(AllocatorError::DuplicateFramework(framework.clone()));
        }
        self.validate_spec(&spec)?;
        // Validate `used` completely before changing anything.
        let mut plan = Vec::new();
        for (agent, res) in used {
            let a = self.agent_idx(agent)?;
            let groups = Self::group_by_role(&spec.roles, res)?;
            let avail = &self.agents.live(AgentSlot(a)).available;
            let mut want = Bag::default();
            for (role, part) in &groups {
                if !spec.roles.contains(role) {
                    return Err(AllocatorError::UnknownRole(role.clone()));
                }
                want.add(&Bag::from_resources(part));
            }
            if !avail.contains(&want) {
                return Err(AllocatorError::ExceedsAgent {
                    agent: agent.clone(),
                    resources: res.to_string(),
                });
            }
            plan.push((a, groups));
        }
        self.last_now = self.last_now.max(now);
        let state = FrameworkState::new(framework.clone(), active, spec.gpu_capable);
        let f = self.frameworks.insert(state).0;
        self.framework_index.insert(framework.clone(), f);
        self.apply_spec(f, &spec);
        for (a, groups) in plan {
            for (role, part) in groups {
                self.add_allocation(f, &role, a, part);
            }
        }
        if active {
            self.request(now, None);
        }
        Ok(())
    }

    fn update_framework(
        &mut self,
        framework: &FrameworkId,
        spec: FrameworkSpec,
    ) -> Result<(), AllocatorError> {
        let f = self.framework_idx(framework)?;
        self.validate_spec(&spec)?;
        // Filters of roles the framework leaves go.
        let gone: Vec<u32> = self
            .fw(f)
            .roles
            .iter()
            .filter(|e| !spec.roles.contains(&e.name))
            .map(|e| e.role)
            .collect();
        if !gone.is_empty() {
            self.clear_filters(f, |x| gone.contains(&x.role));
        }
        self.apply_spec(f, &spec);
        Ok(())
    }

    fn remove_framework(&mut self, framework: &FrameworkId) -> Result<(), AllocatorError> {
        let f = self.framework_idx(framework)?;
        // Whatever it still holds goes back to the agents.
        let mut held = Vec::new();
        for (a, agent) in self.agents.iter().enumerate() {
            if let Some(agent) = agent {
                for (x, r, res) in &agent.allocations {
                    if *x == f {
                        held.push((a as u32, *r, res.clone()));
                    }
                }
            }
        }
        for e in &mut self.fw_mut(f).roles {
            e.subscribed = false;
        }
        for (a, r, res) in held {
            self.remove_allocation(f, r, a, &res, None);
        }
        let roles: Vec<u32> = self.fw(f).roles.iter().map(|e| e.role).collect();
        for r in roles {
            self.untrack(f, r);
        }
        // Its slot may be reused: no filter of it may stay behind.
        self.clear_filters(f, |_| true);
        self.frameworks.remove(FwSlot(f));
        self.framework_index.remove(framework);
        Ok(())
    }

    fn activate_framework(&mut self, framework: &FrameworkId) -> Result<(), AllocatorError> {
        let f = self.framework_idx(framework)?;
        self.fw_mut(f).active = true;
        for i in 0..self.fw(f).roles.len() {
            self.refresh_activation(f, i);
        }
        self.epoch += 1;
        let now = self.last_now;
        self.request(now, None);
        Ok(())
    }

    fn deactivate_framework(&mut self, framework: &FrameworkId) -> Result<(), AllocatorError> {
        let f = self.framework_idx(framework)?;
        self.clear_filters(f, |_| true);
        let fw = self.fw_mut(f);
        fw.active = false;
        fw.filter_agents.clear();
        for i in 0..self.fw(f).roles.len() {
            self.refresh_activation(f, i);
        }
        Ok(())
    }

    fn add_agent(
        &mut self,
        agent: &AgentId,
        spec: AgentSpec,
        used: &[(FrameworkId, Resources)],
    ) -> Result<(), AllocatorError> {
        if self.agent_index.contains_key(agent) {
            return Err(AllocatorError::DuplicateAgent(agent.clone()));
        }
        let mut plan = Vec::new();
        let mut sum = Resources::new();
        for (fid, res) in used {
            let f = self.framework_idx(fid)?;
            let names: Vec<String> = self.fw(f).roles.iter().map(|e| e.name.clone()).collect();
            let groups = Self::group_by_role(&names, res)?;
            for (role, part) in &groups {
                validate_role(role).map_err(|e| AllocatorError::InvalidRole {
                    role: role.clone(),
                    reason: e.to_string(),
                })?;
                sum += part.unallocate();
            }
            plan.push((f, groups));
        }
        if !spec.total.contains(&sum) {
            return Err(AllocatorError::ExceedsAgent {
                agent: agent.clone(),
                resources: sum.to_string(),
            });
        }
        let state = AgentState::new(agent.clone(), spec);
        qty::add_all(
            &mut self.cluster_total,
            &state.available.scalar_quantities(),
        );
        for (role, name, v) in state.available.reserved_scalars() {
            qty::add(self.reserved_by_role.entry(role).or_default(), &name, v);
        }
        self.total_version += 1;
        let a = self.agents.insert(state).0;
        self.agent_index.insert(agent.clone(), a);
        for (f, groups) in plan {
            for (role, part) in groups {
                self.add_allocation(f, &role, a, part);
            }
        }
        let now = self.last_now;
        self.request(now, Some(a));
        Ok(())
    }

    fn remove_agent(&mut self, agent: &AgentId) -> Result<(), AllocatorError> {
        let a = self.agent_idx(agent)?;
        let held: Vec<(u32, u32, Bag)> = self.agents.live(AgentSlot(a)).allocations.clone();
        for (f, r, res) in held {
            self.remove_allocation(f, r, a, &res, None);
        }
        for fw in self.frameworks.iter_mut().flatten() {
            fw.filter_agents.remove(&a);
        }
        // Everything is back in `available`: it is the total now.
        let Some(state) = self.agents.remove(AgentSlot(a)) else {
            return Err(AllocatorError::UnknownAgent(agent.clone()));
        };
        qty::sub_all(
            &mut self.cluster_total,
            &state.available.scalar_quantities(),
        );
        for (role, name, v) in state.available.reserved_scalars() {
            if let Some(entry) = self.reserved_by_role.get_mut(&role) {
                qty::sub_all(entry, &vec![(name, v)]);
            }
        }
        self.total_version += 1;
        self.agent_index.remove(agent);
        self.requested_agents.retain(|&x| x != a);
        Ok(())
    }

    fn set_agent_active(&mut self, agent: &AgentId, active: bool) -> Result<(), AllocatorError> {
        let a = self.agent_idx(agent)?;
        let state = self.agent_mut(a);
        if state.active != active {
            state.active = active;
            // `available` is unchanged: a cached offer list stays valid.
            state.gen += 1;
            if active {
                let now = self.last_now;
                self.request(now, Some(a));
            }
        }
        Ok(())
    }

    fn recover_resources(
        &mut self,
        now: Time,
        framework: &FrameworkId,
        agent: &AgentId,
        resources: &Resources,
        refuse: Option<Duration>,
    ) -> Result<(), AllocatorError> {
        let f = self.framework_idx(framework)?;
        let a = self.agent_idx(agent)?;
        let parts = self.check_held(f, a, resources)?;
        self.last_now = self.last_now.max(now);
        let whole = (parts.len() == 1).then_some(resources);
        for (r, part) in parts {
            self.remove_allocation(f, r, a, &part, whole);
            if let Some(d) = refuse {
                if !d.is_zero() {
                    let timeout = d.max(self.config.allocation_interval).min(MAX_REFUSE);
                    let fw_role_live = self.fw(f).roles.iter().any(|e| e.role == r);
                    if fw_role_live {
                        self.add_filter(now, f, a, r, part.clone(), timeout);
                    }
                }
            }
        }
        Ok(())
    }

    fn suppress(
        &mut self,
        framework: &FrameworkId,
        roles: &[String],
    ) -> Result<(), AllocatorError> {
        let f = self.framework_idx(framework)?;
        let idx = self.role_entries(f, roles)?;
        for i in idx {
            self.fw_mut(f).roles[i].suppressed = true;
            self.refresh_activation(f, i);
        }
        Ok(())
    }

    fn revive(
        &mut self,
        now: Time,
        framework: &FrameworkId,
        roles: &[String],
    ) -> Result<(), AllocatorError> {
        let f = self.framework_idx(framework)?;
        let idx = self.role_entries(f, roles)?;
        self.last_now = self.last_now.max(now);
        let slots: Vec<u32> = idx.iter().map(|&i| self.fw(f).roles[i].role).collect();
        self.clear_filters(f, |x| slots.contains(&x.role));
        for i in idx {
            self.fw_mut(f).roles[i].suppressed = false;
            self.refresh_activation(f, i);
        }
        self.epoch += 1;
        self.request(now, None);
        Ok(())
    }

    fn set_weight(&mut self, role: &str, weight: f64) -> Result<(), AllocatorError> {
        validate_role(role).map_err(|e| AllocatorError::InvalidRole {
            role: role.to_string(),
            reason: e.to_string(),
        })?;
        if !weight.is_finite() || weight <= 0.0 {
            return Err(AllocatorError::InvalidWeight {
                role: role.to_string(),
                weight,
            });
        }
        self.weights.insert(role.to_string(), weight);
        self.role_sorter.update_weight(role, weight);
        Ok(())
    }

    fn set_quota(&mut self, role: &str, quota: Quota) -> Result<(), AllocatorError> {
        validate_role(role).map_err(|e| AllocatorError::InvalidRole {
            role: role.to_string(),
            reason: e.to_string(),
        })?;
        if role.contains('/') {
            return Err(Self::quota_error(
                role,
                "quota cannot be set on a nested role",
            ));
        }
        if role == "*" {
            return Err(Self::quota_error(
                role,
                "quota cannot be set on the default role `*`",
            ));
        }
        for (name, guarantee) in quota.guarantees.iter() {
            if let Some((_, limit)) = quota.limits.iter().find(|(n, _)| *n == name) {
                if guarantee > limit {
                    return Err(Self::quota_error(
                        role,
                        format!("guarantee {name}:{guarantee} is above the limit {name}:{limit}"),
                    ));
                }
            }
        }
        if quota == Quota::default() {
            self.quotas.remove(role);
        } else {
            self.quotas.insert(role.to_string(), quota);
        }
        self.epoch += 1;
        Ok(())
    }

    fn poll_timeout(&self) -> Option<Time> {
        Some(match self.requested {
            Some(t) => t.min(self.next_periodic),
            None => self.next_periodic,
        })
    }

    fn allocate(&mut self, now: Time) -> Vec<Allocation> {
        self.last_now = self.last_now.max(now);
        let periodic = now >= self.next_periodic;
        let requested = self.requested.is_some_and(|t| t <= now);
        if !periodic && !requested {
            return Vec::new();
        }
        let all = periodic || self.request_all;
        let mut candidates: Vec<u32> = if all {
            // Last cycle's list as the buffer: no growing through fresh pages every cycle.
            let mut c = std::mem::take(&mut self.last_candidates);
            c.clear();
            c.extend((0..self.agents.len() as u32).filter(|&a| self.agents[a as usize].is_some()));
            c
        } else {
            let mut c = std::mem::take(&mut self.requested_agents);
            c.sort_unstable();
            c.dedup();
            c
        };
        let in_scope = candidates.len();
        candidates.retain(|&a| self.agents[a as usize].as_ref().is_some_and(|s| s.active));
        let draining = (in_scope - candidates.len()) as u32;
        self.requested = None;
        self.request_all = false;
        self.requested_agents.clear();
        if periodic {
            self.next_periodic = now + self.config.allocation_interval;
        }
        self.expire_filters(now);
        self.runs += 1;
        self.cycle(now, candidates, draining)
    }
}
