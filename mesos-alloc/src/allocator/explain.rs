//! Why no offers: what the checks of the last cycles rejected, per framework, role and reason
//! (in the manner of Nomad's `AllocMetric`).
//!
//! Every check of a cycle's pipeline (`stages.rs`) that turns an agent away says why with a
//! [`Reject`], and the count is taken where it happens, on the smallest record that the
//! rejection is about:
//!
//! - a framework's checks (GPU, minimum offer size, offer filter) on its role entry;
//! - a role's checks (quota limit reached, nothing here the role may have) on the role, which
//!   stands for every framework in it;
//! - an agent's checks (nothing available, unchanged since found unofferable, every role at its
//!   limit) and inactive agents once per cycle, which stand for every framework.
//!
//! At the end of the cycle those counts are folded into one [`CycleRecord`] per framework and
//! role, kept in a ring of the last `AllocatorConfig::explain_cycles` cycles. What no check
//! rejected and did not get the agent went to someone ahead in the sort order:
//! [`Reject::FairShare`], computed as the remainder, so the hot loop never visits the
//! frameworks that an agent did not reach.
//!
//! Only the fair-share stage is counted: it looks at every candidate agent for every role, so
//! each agent is counted once per framework and role per cycle. Rejections in the quota stage
//! are not lost: the fair-share stage meets the same agent again (or finds it exhausted).

use mesos_core::ids::FrameworkId;

/// Why a framework was not offered an agent in one of its roles.
///
/// The names (`as_str`) are stable; they are what `/master/state` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Reject {
    /// The agent is deactivated (draining or down for maintenance): no cycle looks at it.
    AgentDraining,
    /// The framework suppressed offers for this role: it is not in the sort order.
    Suppressed,
    /// Nothing on the agent was left unoffered and unallocated when the fair-share stage
    /// reached it (used by tasks, outstanding in offers, or given to quota guarantees).
    Exhausted,
    /// The agent was found to have nothing offerable before, and neither the agent nor the
    /// frameworks, filters or minimums have changed since: it was skipped without checks (the
    /// earlier cycle counted the reasons).
    Unchanged,
    /// The role's quota limit is reached (or what is left under it is below the minimum).
    QuotaLimit,
    /// What the role may have here, less the headroom other roles' unmet guarantees need, is
    /// below the minimum offer size.
    QuotaHeadroom,
    /// Everything left on the agent is reserved for other roles.
    ReservedForOthers,
    /// The agent has GPUs and the framework is not GPU-capable (`--filter_gpu_resources`).
    GpuAgent,
    /// What the framework could be offered is below the minimum offer size
    /// (`--min_allocatable_resources` or the framework's own per-role minimum).
    BelowMinAllocatable,
    /// An offer filter of the framework (a decline's `refuse_seconds`) covers what would be
    /// offered.
    Filtered,
    /// The agent went to roles or frameworks ahead in the sort order (DRF or random).
    FairShare,
}

/// Number of [`Reject`] reasons.
pub(crate) const REASONS: usize = 11;

impl Reject {
    /// Every reason, in the order of `as_str` output.
    pub const ALL: [Reject; REASONS] = [
        Reject::AgentDraining,
        Reject::Suppressed,
        Reject::Exhausted,
        Reject::Unchanged,
        Reject::QuotaLimit,
        Reject::QuotaHeadroom,
        Reject::ReservedForOthers,
        Reject::GpuAgent,
        Reject::BelowMinAllocatable,
        Reject::Filtered,
        Reject::FairShare,
    ];

    /// The reason's name in snake case (`"filtered"`, `"quota_limit"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::AgentDraining => "agent_draining",
            Reject::Suppressed => "suppressed",
            Reject::Exhausted => "exhausted",
            Reject::Unchanged => "unchanged",
            Reject::QuotaLimit => "quota_limit",
            Reject::QuotaHeadroom => "quota_headroom",
            Reject::ReservedForOthers => "reserved_for_others",
            Reject::GpuAgent => "gpu_agent",
            Reject::BelowMinAllocatable => "below_min_allocatable",
            Reject::Filtered => "filtered",
            Reject::FairShare => "fair_share",
        }
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts per reason within one cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally([u32; REASONS]);

impl Tally {
    #[inline(always)]
    pub(crate) fn add(&mut self, why: Reject) {
        self.0[why as usize] += 1;
    }

    pub(crate) fn set(&mut self, why: Reject, n: u32) {
        self.0[why as usize] = n;
    }

    pub(crate) fn add_n(&mut self, why: Reject, n: u32) {
        self.0[why as usize] += n;
    }

    pub(crate) fn merge(&mut self, other: &Tally) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    pub(crate) fn sum(&self) -> u32 {
        self.0.iter().sum()
    }
}

/// A framework's counts in one role during the running cycle (its own checks only).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FwTally {
    /// Offers made to it (one per agent).
    pub(crate) offered: u32,
    /// Agents the fair-share stage offered it (for the fair-share remainder).
    pub(crate) fair_offered: u32,
    pub(crate) rejected: Tally,
}

/// What the agent-level checks and the candidate list found in one cycle.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CycleTally {
    /// Agents in the cycle's scope (inactive ones included).
    pub(crate) agents: u32,
    /// Of those, inactive ones.
    pub(crate) draining: u32,
    /// Agents the fair-share stage found with nothing available.
    pub(crate) exhausted: u32,
    /// Agents skipped as unchanged since found unofferable.
    pub(crate) unchanged: u32,
    /// Agents skipped because every role was at its quota limit.
    pub(crate) all_capped: u32,
    /// Agents whose roles the fair-share stage went through.
    pub(crate) reached: u32,
}

/// One framework's counts in one role for one cycle.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CycleRecord {
    /// The cycle's number (`allocation_runs` after it ran); 0: none recorded.
    pub(crate) cycle: u64,
    pub(crate) agents: u32,
    pub(crate) offered: u32,
    pub(crate) rejected: Tally,
}

impl CycleRecord {
    /// Folds a framework's, its role's and the cycle's counts into the record of one cycle.
    pub(crate) fn fold(
        cycle: u64,
        fw: &FwTally,
        role: &Tally,
        suppressed: bool,
        c: &CycleTally,
    ) -> CycleRecord {
        let mut rejected = Tally::default();
        if suppressed {
            rejected.set(Reject::Suppressed, c.agents - c.draining);
        } else {
            rejected = fw.rejected;
            rejected.merge(role);
            // Every agent the fair-share stage reached was offered to it, rejected by one
            // of its own or its role's checks, or taken by someone ahead in the order.
            let accounted = fw.fair_offered + rejected.sum();
            rejected.set(Reject::FairShare, c.reached.saturating_sub(accounted));
            rejected.add_n(Reject::Exhausted, c.exhausted);
            rejected.add_n(Reject::Unchanged, c.unchanged);
            rejected.add_n(Reject::QuotaLimit, c.all_capped);
        }
        rejected.set(Reject::AgentDraining, c.draining);
        CycleRecord {
            cycle,
            agents: c.agents,
            offered: fw.offered,
            rejected,
        }
    }
}

/// Counts per reason, summed over cycles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rejections([u64; REASONS]);

impl Rejections {
    /// How many agents were turned away for `why`.
    pub fn get(&self, why: Reject) -> u64 {
        self.0[why as usize]
    }

    /// All reasons, in [`Reject::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Reject, u64)> + '_ {
        Reject::ALL.iter().map(|&r| (r, self.0[r as usize]))
    }

    /// The sum over reasons.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    fn add(&mut self, t: &Tally) {
        for (a, b) in self.0.iter_mut().zip(t.0) {
            *a += u64::from(b);
        }
    }
}

/// Why one framework was or was not offered agents in one role, over the cycles of a
/// [`WhyNoOffers`] snapshot.
///
/// In a cycle without quota, `offered + rejected.total() == agents`: every agent the cycles
/// looked at is counted once, as an offer or under one reason. With quota, an agent offered to
/// the role's guarantee in the quota stage may also be counted by the fair-share stage
/// (usually as [`Reject::Exhausted`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The framework.
    pub framework: FrameworkId,
    /// The role (the framework subscribes to it).
    pub role: String,
    /// Cycles of the snapshot that considered the framework in this role.
    pub cycles: u32,
    /// Agents those cycles looked at, summed over the cycles.
    pub agents: u64,
    /// Offers made to it (one per agent and cycle).
    pub offered: u64,
    /// Agents not offered, per reason.
    pub rejected: Rejections,
}

impl Explanation {
    pub(crate) fn new(framework: FrameworkId, role: String) -> Self {
        Explanation {
            framework,
            role,
            cycles: 0,
            agents: 0,
            offered: 0,
            rejected: Rejections::default(),
        }
    }

    pub(crate) fn add(&mut self, r: &CycleRecord) {
        self.cycles += 1;
        self.agents += u64::from(r.agents);
        self.offered += u64::from(r.offered);
        self.rejected.add(&r.rejected);
    }
}

/// Why frameworks were not offered agents, over the allocator's last cycles: what
/// [`HierarchicalAllocator::why_no_offers`](super::HierarchicalAllocator::why_no_offers)
/// returns. Active frameworks only, in each role they subscribe to, sorted by framework and
/// role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WhyNoOffers {
    /// The first cycle covered (cycles are numbered from 1, as `allocation_runs` counts them).
    pub first_cycle: u64,
    /// The last cycle covered (0 when none ran yet).
    pub last_cycle: u64,
    /// One entry per (framework, role) considered in those cycles.
    pub entries: Vec<Explanation>,
}

impl WhyNoOffers {
    /// The entry of `framework` in `role`.
    pub fn get(&self, framework: &FrameworkId, role: &str) -> Option<&Explanation> {
        self.entries
            .iter()
            .find(|e| e.framework == *framework && e.role == role)
    }
}
