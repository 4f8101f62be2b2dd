//! The allocator's records of agents, frameworks and roles (offer filters are in `filters.rs`).

use std::sync::Arc;

use mesos_core::allocator::AgentSpec;
use mesos_core::attributes::Attributes;
use mesos_core::ids::{AgentId, FrameworkId};
use mesos_core::resources::Resources;

use super::bag::Bag;
use super::explain::{CycleRecord, FwTally, Tally};
use super::filters::Declines;
use super::qty::Qty;
use crate::hash::FxHashSet;
use crate::sorter::ClientId;

/// `idle_memo` of an agent no cycle has found idle.
pub(crate) const NEVER: (u64, u64) = (u64::MAX, u64::MAX);

/// One agent: what it has, what is offered or used, and what is left.
///
/// What a cycle reads of an agent fits in three cache lines (the struct is 192 bytes, aligned
/// to 64): cycles visit agents in random order, so every line of it is a cache miss. What a
/// cycle does not read lives behind `cold`.
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct AgentState {
    pub(crate) id: AgentId,
    pub(crate) cold: Box<AgentCold>,
    /// What is neither offered nor allocated. (The total is `available` plus every
    /// allocation; it is not stored twice.)
    pub(crate) available: Bag,
    /// Offered or used resources per (framework slot, role slot).
    pub(crate) allocations: Vec<(u32, u32, Bag)>,
    pub(crate) active: bool,
    pub(crate) has_gpus: bool,
    /// True when any entry of the total is reserved: the quick path skips role filtering.
    pub(crate) has_reservations: bool,
    /// True when the total has ranges or sets (ports): such agents are never skipped as
    /// "scalars only".
    pub(crate) has_non_scalars: bool,
    /// Bit `f % 32` is set when framework slot `f` may have a filter here: most probes of a
    /// cycle are for frameworks without one, and this answers them without reading the list.
    pub(crate) filter_mask: u32,
    /// Bumped whenever `available` or `active` changes.
    pub(crate) gen: u64,
    /// `(gen, epoch)` of the last cycle that found nothing to offer here (`NEVER` if none:
    /// no agent reaches that generation).
    pub(crate) idle_memo: (u64, u64),
    /// The framework slot of each offer filter on this agent, sorted; the filters themselves
    /// are in `cold.declines`, in the same order. A cycle looks up the framework it is about to
    /// offer to in this short list (four bytes a filter, so a few cache lines to prefetch
    /// even with dozens of filters) and reads a filter only when there is one.
    pub(crate) filter_fws: Vec<u32>,
    /// The resources of the last offer of the whole of `available` (allocated to its role),
    /// or empty.
    ///
    /// Invariant: when not empty, `available` is either empty (that offer is out) or equal to
    /// it. A declined offer comes back as the very list handed out (`Resources::ptr_eq`), and
    /// the next offer of the agent is then this list again: one reference count instead of
    /// building a list of entries and a copy of the port ranges per agent per cycle.
    pub(crate) offer_cache: Resources,
    /// The role `offer_cache` is allocated to, `None` when it is empty. Compared by pointer:
    /// holding it keeps the name alive, so no other role's name can take its address.
    pub(crate) offer_role: Option<Arc<str>>,
}

/// The parts of an agent that allocation cycles do not read.
#[derive(Debug)]
pub(crate) struct AgentCold {
    /// Kept for whitelists and offer constraints (neither implemented yet) and for callers.
    pub(crate) hostname: String,
    pub(crate) attributes: Attributes,
    /// What declines left here; allocated with the first filter.
    pub(crate) declines: Option<Box<Declines>>,
}

impl AgentState {
    pub(crate) fn new(id: AgentId, spec: AgentSpec) -> Self {
        let available = Bag::from_resources(&spec.total);
        let has_gpus = spec
            .total
            .iter()
            .any(|r| r.name == mesos_core::resources::Name::Gpus);
        let has_reservations = available.has_reserved();
        let has_non_scalars = available.has_non_scalars();
        AgentState {
            id,
            cold: Box::new(AgentCold {
                hostname: spec.hostname,
                attributes: spec.attributes,
                declines: None,
            }),
            available,
            allocations: Vec::new(),
            active: true,
            has_gpus,
            has_reservations,
            has_non_scalars,
            filter_mask: 0,
            gen: 0,
            idle_memo: NEVER,
            filter_fws: Vec::new(),
            offer_cache: Resources::new(),
            offer_role: None,
        }
    }

    /// Records a change of `available` (or of `active`) that keeps no offer list valid.
    pub(crate) fn changed(&mut self) {
        self.gen += 1;
        self.offer_cache = Resources::new();
        self.offer_role = None;
    }

    /// The cached offer list if it can be offered to `role` now (see `offer_cache`). Reads
    /// only this record, not the list.
    pub(crate) fn cached_offer(&self, role: &Arc<str>) -> Option<&Resources> {
        match &self.offer_role {
            Some(r) if Arc::ptr_eq(r, role) && !self.available.is_empty() => {
                Some(&self.offer_cache)
            }
            _ => None,
        }
    }

    /// Remembers `offer` (all of `available`, allocated to `role`) as the cached offer list.
    pub(crate) fn cache_offer(&mut self, offer: &Resources, role: &Arc<str>) {
        self.offer_cache = offer.clone();
        self.offer_role = Some(role.clone());
    }
}

/// A framework's relation to one role it subscribes to or still holds resources in.
#[derive(Debug)]
pub(crate) struct FwRole {
    pub(crate) role: u32,
    pub(crate) name: String,
    /// Its handle in the role's framework sorter.
    pub(crate) client: ClientId,
    pub(crate) subscribed: bool,
    pub(crate) suppressed: bool,
    /// Per-role minimum offer (`offer_filters.min_allocatable_resources`); `None` = global.
    pub(crate) min_allocatable: Option<Vec<Qty>>,
    /// Number of agents where it holds something in this role.
    pub(crate) allocations: u32,
    /// Its own checks' counts in the running cycle (see `explain.rs`).
    pub(crate) tally: FwTally,
    /// Its records of the last cycles, a ring indexed by cycle number.
    pub(crate) history: Box<[CycleRecord]>,
}

#[derive(Debug)]
pub(crate) struct FrameworkState {
    pub(crate) id: FrameworkId,
    pub(crate) active: bool,
    pub(crate) gpu_capable: bool,
    pub(crate) roles: Vec<FwRole>,
    /// Agent slots where this framework may have offer filters (a superset: expired ones
    /// are not taken out), so clearing its filters does not scan every agent.
    pub(crate) filter_agents: FxHashSet<u32>,
}

impl FrameworkState {
    pub(crate) fn new(id: FrameworkId, active: bool, gpu_capable: bool) -> Self {
        FrameworkState {
            id,
            active,
            gpu_capable,
            roles: Vec::new(),
            filter_agents: FxHashSet::default(),
        }
    }
}

/// A role with at least one framework tracked under it.
#[derive(Debug)]
pub(crate) struct RoleState {
    pub(crate) name: String,
    /// The name shared by every resource allocated to the role.
    pub(crate) arc: Arc<str>,
    /// The top-level role (`a` for `a/b/c`), where quota lives.
    pub(crate) top: String,
    /// `name == top`.
    pub(crate) is_top: bool,
    pub(crate) client: ClientId,
    pub(crate) frameworks: usize,
    /// Framework sorter client id -> framework slot.
    pub(crate) fw_of_client: Vec<u32>,
    /// Unreserved scalars offered or allocated to this role (counts toward quota).
    pub(crate) allocated_unreserved: Qty,
    /// All scalars offered or allocated to this role.
    pub(crate) allocated_all: Qty,
    /// The role's checks' counts in the running cycle (see `explain.rs`).
    pub(crate) tally: Tally,
}

impl RoleState {
    pub(crate) fn new(name: String, client: ClientId) -> Self {
        let top = name.split('/').next().unwrap_or("").to_string();
        RoleState {
            is_top: top == name,
            arc: Arc::from(name.as_str()),
            name,
            top,
            client,
            frameworks: 0,
            fw_of_client: Vec::new(),
            allocated_unreserved: Qty::new(),
            allocated_all: Qty::new(),
            tally: Tally::default(),
        }
    }
}

#[cfg(test)]
mod layout {
    /// The hot record stays three cache lines (see `AgentState`).
    #[test]
    fn agent_state_is_three_cache_lines() {
        assert_eq!(std::mem::size_of::<Option<super::AgentState>>(), 192);
    }
}
