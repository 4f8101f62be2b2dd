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
mod qty;
mod quota;
mod stages;
mod state;

pub use explain::{Explanation, Reject, Rejections, WhyNoOffers};

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
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
use self::state::{AgentState, FrameworkState, FwRole, OfferFilter, RoleState};

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

    pub(crate) agents: Vec<Option<AgentState>>,
    agent_index: FxHashMap<AgentId, u32>,
    free_agents: Vec<u32>,

    pub(crate) frameworks: Vec<Option<FrameworkState>>,
    framework_index: FxHashMap<FrameworkId, u32>,
    free_frameworks: Vec<u32>,

    pub(crate) roles: Vec<Option<RoleState>>,
    role_index: FxHashMap<String, u32>,
    free_roles: Vec<u32>,
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
            agents: Vec::new(),
            agent_index: FxHashMap::default(),
            free_agents: Vec::new(),
            frameworks: Vec::new(),
            framework_index: FxHashMap::default(),
            free_frameworks: Vec::new(),
            roles: Vec::new(),
            role_index: FxHashMap::default(),
            free_roles: Vec::new(),
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
            .and_then(|&i| self.agents[i as usize].as_ref())
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
        self.frameworks[f as usize]
            .as_ref()
            .expect("framework slot in the index is live")
    }

    fn fw_mut(&mut self, f: u32) -> &mut FrameworkState {
        self.frameworks[f as usize]
            .as_mut()
            .expect("framework slot in the index is live")
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

    /// Creates the role (and its framework sorter) on first use.
    fn role_slot(&mut self, name: &str) -> u32 {
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
        let slot = match self.free_roles.pop() {
            Some(s) => {
                self.roles[s as usize] = Some(state);
                self.fw_sorters[s as usize] = Some(sorter);
                s
            }
            None => {
                self.roles.push(Some(state));
                self.fw_sorters.push(Some(sorter));
                (self.roles.len() - 1) as u32
            }
        };
        if self.role_of_client.len() <= client.index() {
            self.role_of_client.resize(client.index() + 1, u32::MAX);
        }
        self.role_of_client[client.index()] = slot;
        self.role_index.insert(name.to_string(), slot);
        self.epoch += 1;
        slot
    }

    /// Tracks framework `f` under `role` (creating the role), returning its role entry index.
    fn track(&mut self, f: u32, role: &str) -> usize {
        let r = self.role_slot(role);
        if let Some(i) = self.fw(f).roles.iter().position(|x| x.role == r) {
            return i;
        }
        let fid = self.fw(f).id.clone();
        let sorter = self.fw_sorters[r as usize]
            .as_mut()
            .expect("live role has a sorter");
        let client = sorter.add(fid.as_str());
        let rs = self.roles[r as usize].as_mut().expect("live role");
        rs.frameworks += 1;
        if rs.fw_of_client.len() <= client.index() {
            rs.fw_of_client.resize(client.index() + 1, u32::MAX);
        }
        rs.fw_of_client[client.index()] = f;
        let window = self.config.explain_cycles.min(64);
        let fw = self.fw_mut(f);
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
    fn untrack(&mut self, f: u32, r: u32) {
        let fw = self.fw_mut(f);
        let Some(i) = fw.roles.iter().position(|x| x.role == r) else {
            return;
        };
        fw.roles.swap_remove(i);
        let fid = fw.id.clone();
        if let Some(s) = self.fw_sorters[r as usize].as_mut() {
            s.remove(fid.as_str());
        }
        let rs = self.roles[r as usize].as_mut().expect("live role");
        rs.frameworks -= 1;
        if rs.frameworks == 0 {
            let name = rs.name.clone();
            self.role_sorter.remove(&name);
            self.role_index.remove(&name);
            self.roles[r as usize] = None;
            self.fw_sorters[r as usize] = None;
            self.free_roles.push(r);
        }
    }

    /// Whether framework `f` should be active in role entry `i`'s sorter.
    fn refresh_activation(&mut self, f: u32, i: usize) {
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

    fn validate_spec(&self, spec: &FrameworkSpec) -> Result<(), AllocatorError> {
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
    fn apply_spec(&mut self, f: u32, spec: &FrameworkSpec) {
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

    /// Resolves the role of each entry of `used` (its allocation role, or the framework's only
    /// role) and groups them.
    fn group_by_role(
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
    pub(crate) fn add_allocation(&mut self, f: u32, role: &str, a: u32, res: Resources) {
        let i = self.track(f, role);
        let r = self.fw(f).roles[i].role;
        self.fw_mut(f).roles[i].allocations += 1;
        let bag = Bag::from_resources(&res);
        let q = bag.scalar_quantities();
        let uq = bag.unreserved_scalar_quantities();
        let agent = self.agents[a as usize].as_mut().expect("live agent");
        agent.available.sub(&bag);
        agent.changed();
        hold(&mut agent.allocations, f, r, bag);
        let rs = self.roles[r as usize].as_mut().expect("live role");
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
    fn check_held(
        &self,
        f: u32,
        a: u32,
        res: &Resources,
    ) -> Result<Vec<(u32, Bag)>, AllocatorError> {
        let fw = self.fw(f);
        let agent = self.agents[a as usize].as_ref().expect("live agent");
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
    fn remove_allocation(&mut self, f: u32, r: u32, a: u32, part: &Bag, back: Option<&Resources>) {
        let q = part.scalar_quantities();
        let uq = part.unreserved_scalar_quantities();
        let agent = self.agents[a as usize].as_mut().expect("live agent");
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
        let rs = self.roles[r as usize].as_mut().expect("live role");
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

    fn add_filter(&mut self, now: Time, f: u32, a: u32, r: u32, refused: Bag, timeout: Duration) {
        let expires = now + timeout;
        let agent = self.agents[a as usize].as_mut().expect("live agent");
        agent.add_filter(f, r, refused, expires);
        self.fw_mut(f).filter_agents.insert(a);
        self.filter_expiries.push(Reverse((expires, f, a)));
    }

    /// Drops filters that expired by `now`.
    fn expire_filters(&mut self, now: Time) {
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
    fn clear_filters(&mut self, f: u32, drop: impl Fn(&OfferFilter) -> bool) {
        let agents: Vec<u32> = self.fw(f).filter_agents.iter().copied().collect();
        for a in agents {
            if let Some(agent) = self.agents[a as usize].as_mut() {
                agent.retain_filters(|x| x.framework != f || !drop(x));
            }
        }
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
            let avail = &self.agents[a as usize]
                .as_ref()
                .expect("live agent")
                .available;
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
        let f = match self.free_frameworks.pop() {
            Some(f) => {
                self.frameworks[f as usize] = Some(state);
                f
            }
            None => {
                self.frameworks.push(Some(state));
                (self.frameworks.len() - 1) as u32
            }
        };
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
        self.frameworks[f as usize] = None;
        self.framework_index.remove(framework);
        self.free_frameworks.push(f);
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
        let a = match self.free_agents.pop() {
            Some(a) => {
                self.agents[a as usize] = Some(state);
                a
            }
            None => {
                self.agents.push(Some(state));
                (self.agents.len() - 1) as u32
            }
        };
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
        let held: Vec<(u32, u32, Bag)> = self.agents[a as usize]
            .as_ref()
            .expect("live agent")
            .allocations
            .clone();
        for (f, r, res) in held {
            self.remove_allocation(f, r, a, &res, None);
        }
        for fw in self.frameworks.iter_mut().flatten() {
            fw.filter_agents.remove(&a);
        }
        // Everything is back in `available`: it is the total now.
        let state = self.agents[a as usize].take().expect("live agent");
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
        self.free_agents.push(a);
        self.requested_agents.retain(|&x| x != a);
        Ok(())
    }

    fn set_agent_active(&mut self, agent: &AgentId, active: bool) -> Result<(), AllocatorError> {
        let a = self.agent_idx(agent)?;
        let state = self.agents[a as usize].as_mut().expect("live agent");
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

impl HierarchicalAllocator {
    /// Indices of the framework's role entries named in `roles` (all subscribed when empty).
    fn role_entries(&self, f: u32, roles: &[String]) -> Result<Vec<usize>, AllocatorError> {
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
