//! The interface between the master and an allocator, so the master state machine can be driven
//! by any policy (`mesos-alloc`'s hierarchical DRF allocator, or a test double) without this crate
//! depending on one.
//!
//! It mirrors Mesos' `mesos::allocator::Allocator` with time made explicit: nothing here sleeps;
//! the master asks [`Allocator::poll_timeout`] when the allocator next wants to run and calls
//! [`Allocator::allocate`] with the current time when it is due or when an event asked for it.

use std::sync::Arc;
use std::time::Duration;

use crate::attributes::Attributes;
use crate::ids::{AgentId, FrameworkId};
use crate::resources::{ResourceQuantities, Resources};
use crate::time::Time;

/// What the allocator needs to know about a framework.
#[derive(Clone, Debug, Default)]
pub struct FrameworkSpec {
    /// The roles the framework subscribes to (one for non-MULTI_ROLE frameworks).
    pub roles: Vec<String>,
    /// Roles it does not want offers for right now (SUBSCRIBE's `suppressed_roles`).
    pub suppressed_roles: Vec<String>,
    /// Per-role minimum allocatable resources (`offer_filters.min_allocatable_resources`);
    /// a role absent here uses the allocator's global minimum.
    pub min_allocatable: Vec<(String, Vec<ResourceQuantities>)>,
    /// Whether the framework can receive `gpus` (GPU_RESOURCES capability).
    pub gpu_capable: bool,
}

/// What the allocator needs to know about an agent.
#[derive(Clone, Debug, Default)]
pub struct AgentSpec {
    /// The agent's hostname (used by whitelists and placement views).
    pub hostname: String,
    /// Everything the agent has, reservations included.
    pub total: Resources,
    /// The agent's attributes.
    pub attributes: Attributes,
}

/// One offer decided by an allocation cycle: resources of one agent for one framework in one role.
/// The resources carry `allocation_role == role`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// Who receives the offer.
    pub framework: FrameworkId,
    /// The role it is offered under, shared with the allocation roles of `resources` (an
    /// allocator builds one offer per agent per cycle; sharing the name spares a copy each).
    pub role: Arc<str>,
    /// Where the resources are.
    pub agent: AgentId,
    /// What is offered.
    pub resources: Resources,
}

/// Why an allocator refused an operation. The allocator's state is unchanged when one is returned.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AllocatorError {
    /// The framework was never added or was removed.
    #[error("unknown framework `{0}`")]
    UnknownFramework(FrameworkId),
    /// The framework is already known.
    #[error("framework `{0}` is already added")]
    DuplicateFramework(FrameworkId),
    /// The agent was never added or was removed.
    #[error("unknown agent `{0}`")]
    UnknownAgent(AgentId),
    /// The agent is already known.
    #[error("agent `{0}` is already added")]
    DuplicateAgent(AgentId),
    /// The role is not known to the allocator, or not subscribed by the framework.
    #[error("unknown role `{0}`")]
    UnknownRole(String),
    /// A role name breaks Mesos' role rules.
    #[error("invalid role `{role}`: {reason}")]
    InvalidRole {
        /// The role.
        role: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A weight must be a finite number above zero.
    #[error("invalid weight {weight} for role `{role}`: a weight must be finite and above zero")]
    InvalidWeight {
        /// The role.
        role: String,
        /// The weight given.
        weight: f64,
    },
    /// A quota is malformed (guarantees above limits, nested role, ...).
    #[error("invalid quota for role `{role}`: {reason}")]
    InvalidQuota {
        /// The role.
        role: String,
        /// Why it is invalid.
        reason: String,
    },
    /// Resources handed back or used exceed what the agent has.
    #[error("resources `{resources}` exceed what agent `{agent}` has available")]
    ExceedsAgent {
        /// The agent.
        agent: AgentId,
        /// The resources in question, in text form.
        resources: String,
    },
}

/// A role's quota: guaranteed amounts and upper limits (a name absent from `limits` is unlimited).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quota {
    /// Amounts the role is guaranteed to be offered when the cluster has them.
    pub guarantees: ResourceQuantities,
    /// Amounts the role may never exceed; an absent name means no limit.
    pub limits: ResourceQuantities,
}

/// An allocation policy driven by the master. All methods take `now` where time matters and
/// never read a clock themselves.
pub trait Allocator {
    /// Adds a framework with what it already uses per agent (after a master failover); `used`
    /// resources carry their allocation role.
    /// An active framework triggers an allocation.
    fn add_framework(
        &mut self,
        now: Time,
        framework: &FrameworkId,
        spec: FrameworkSpec,
        used: &[(AgentId, Resources)],
        active: bool,
    ) -> Result<(), AllocatorError>;

    /// Changes a framework's roles, suppressed roles or minimums; filters of removed roles go.
    fn update_framework(
        &mut self,
        framework: &FrameworkId,
        spec: FrameworkSpec,
    ) -> Result<(), AllocatorError>;

    /// Forgets a framework; its resources must have been recovered first.
    fn remove_framework(&mut self, framework: &FrameworkId) -> Result<(), AllocatorError>;

    /// The framework's scheduler (re)connected: offer to it again.
    fn activate_framework(&mut self, framework: &FrameworkId) -> Result<(), AllocatorError>;

    /// The scheduler disconnected: no offers, all filters cleared, its share remembered.
    fn deactivate_framework(&mut self, framework: &FrameworkId) -> Result<(), AllocatorError>;

    /// Adds an agent with what frameworks already use on it; triggers an allocation there.
    fn add_agent(
        &mut self,
        agent: &AgentId,
        spec: AgentSpec,
        used: &[(FrameworkId, Resources)],
    ) -> Result<(), AllocatorError>;

    /// Forgets an agent and every filter about it.
    fn remove_agent(&mut self, agent: &AgentId) -> Result<(), AllocatorError>;

    /// Stops (false) or resumes (true) offering an agent's resources, e.g. while it is disconnected.
    fn set_agent_active(&mut self, agent: &AgentId, active: bool) -> Result<(), AllocatorError>;

    /// Returns offered or used resources to the agent's pool. `resources` come as they were
    /// offered, i.e. allocated to their role (`allocation_role` set). With `refuse`, the framework is not
    /// offered these resources again (or a subset) on that agent in that role until the filter
    /// expires: `Some(d)` is clamped to [allocation interval, 365 days]; `Some(ZERO)` means no filter.
    fn recover_resources(
        &mut self,
        now: Time,
        framework: &FrameworkId,
        agent: &AgentId,
        resources: &Resources,
        refuse: Option<Duration>,
    ) -> Result<(), AllocatorError>;

    /// Stops offers to the framework in `roles` (all of its roles when empty). Filters stay.
    fn suppress(&mut self, framework: &FrameworkId, roles: &[String])
        -> Result<(), AllocatorError>;

    /// Clears filters and resumes offers in `roles` (all when empty); triggers an allocation.
    fn revive(
        &mut self,
        now: Time,
        framework: &FrameworkId,
        roles: &[String],
    ) -> Result<(), AllocatorError>;

    /// Sets a role's weight (default 1).
    fn set_weight(&mut self, role: &str, weight: f64) -> Result<(), AllocatorError>;

    /// Sets a role's quota (top-level roles only).
    fn set_quota(&mut self, role: &str, quota: Quota) -> Result<(), AllocatorError>;

    /// When the allocator next wants [`Allocator::allocate`] called: the next periodic cycle, or
    /// `now`-ish when an event asked for one, or a filter expiry. `None` when idle forever.
    fn poll_timeout(&self) -> Option<Time>;

    /// Runs one allocation cycle if one is due at `now` (a requested or periodic one), expiring
    /// filters first, and returns the offers it decided. Returns nothing when no cycle was due.
    fn allocate(&mut self, now: Time) -> Vec<Allocation>;
}
