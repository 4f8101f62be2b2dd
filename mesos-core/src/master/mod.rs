//! The Mesos master as a sans-IO state machine.
//!
//! The master tracks frameworks, agents, offers and tasks. It never does I/O: the shell (the
//! `mesos-master` daemon, or a test, or the simulator) feeds it inputs with the current time and
//! carries out what it asks for:
//!
//! - inputs: [`Master::subscribe`], [`Master::handle_call`], [`Master::disconnect_framework`],
//!   [`Master::register_agent`], [`Master::handle_agent`], [`Master::disconnect_agent`],
//!   [`Master::handle_timeout`];
//! - outputs: drain [`Master::poll_output`] after every input until it returns `None`, then sleep
//!   until [`Master::poll_timeout`] and call [`Master::handle_timeout`].
//!
//! Offers come from an [`Allocator`] (the hierarchical DRF allocator of `mesos-alloc` in the
//! daemons); the master turns its decisions into offers, validates what frameworks do with them,
//! and tells agents what to run. Durable facts (admitted agents, frameworks, id counters) are
//! emitted as [`Record`]s so a restarted master can be rebuilt with [`Master::recover`] plus the
//! agents' reregistrations.

mod accept;
mod agents;
mod calls;
mod frameworks;
mod offers;
mod records;
mod tasks;
mod types;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use records::Registry;
pub use types::*;

// The agent protocol moved to `crate::protocol`; re-exported so existing paths keep working.
pub use crate::protocol::{
    AgentCommand, AgentMessage, AgentRegistration, FrameworkRef, ReportedTask,
};

use crate::allocator::{Allocator, AllocatorError, FrameworkSpec};
use crate::ids::{AgentId, FrameworkId, OfferId, TaskId};
use crate::resources::Resources;
use crate::task::{StatusUuid, TaskState, TaskStateMachine};
use crate::time::Time;

/// A task as the master knows it.
#[derive(Clone, Debug)]
pub struct Task {
    /// The task as launched.
    pub info: TaskInfo,
    /// Its framework.
    pub framework_id: FrameworkId,
    /// The role its resources are allocated to.
    pub role: String,
    /// The latest known state.
    pub state: TaskStateMachine,
    /// The state of the update being delivered to the framework (what reconciliation reports).
    pub status_update_state: Option<TaskState>,
    /// The uuid of that update.
    pub status_update_uuid: Option<StatusUuid>,
    /// The health its latest status reported, when it has a health check.
    pub healthy: Option<bool>,
    /// Every state change with its time.
    pub statuses: Vec<StatusEntry>,
    /// True once its resources went back to the allocator.
    pub released: bool,
    /// When its agent became unreachable.
    pub unreachable_time: Option<Time>,
}

impl Task {
    /// The task's id.
    pub fn id(&self) -> &TaskId {
        &self.info.task_id
    }

    /// The agent it runs on.
    pub fn agent_id(&self) -> &AgentId {
        &self.info.agent_id
    }
}

/// A framework as the master knows it.
#[derive(Clone, Debug)]
pub struct Framework {
    /// Its id.
    pub id: FrameworkId,
    /// Its info.
    pub info: FrameworkInfo,
    /// Whether a scheduler is subscribed right now.
    pub connected: bool,
    /// Whether it receives offers.
    pub active: bool,
    /// Known from a previous master run, scheduler not yet back.
    pub recovered: bool,
    /// The current subscription's stream id.
    pub stream_id: Option<String>,
    /// Suppressed roles.
    pub suppressed_roles: Vec<String>,
    /// When it first subscribed.
    pub registered_time: Time,
    /// When it last resubscribed.
    pub reregistered_time: Option<Time>,
    /// When its scheduler disconnected or it was removed.
    pub unregistered_time: Option<Time>,
    /// Its tasks that are not terminal-and-acknowledged.
    pub tasks: BTreeMap<TaskId, Box<Task>>,
    /// Its finished tasks, newest last, bounded.
    pub completed_tasks: VecDeque<Box<Task>>,
    /// Its outstanding offers.
    pub offers: BTreeSet<OfferId>,
    failover_deadline: Option<Time>,
}

/// An agent as the master knows it.
#[derive(Clone, Debug)]
pub struct Agent {
    /// Its id.
    pub id: AgentId,
    /// Its hostname.
    pub hostname: String,
    /// Its address.
    pub address: Address,
    /// Everything it has.
    pub total: Resources,
    /// Its attributes.
    pub attributes: crate::attributes::Attributes,
    /// Its version.
    pub version: String,
    /// Whether its connection is up (offers are made only then).
    pub active: bool,
    /// When it registered.
    pub registered_time: Time,
    /// When it last reregistered.
    pub reregistered_time: Option<Time>,
    /// The tasks on it.
    pub tasks: BTreeSet<(FrameworkId, TaskId)>,
    /// Outstanding offers of its resources.
    pub offers: BTreeSet<OfferId>,
    last_heard: Time,
    next_ping: Time,
}

/// An outstanding offer.
#[derive(Clone, Debug)]
pub struct OfferRecord {
    /// The offer as sent.
    pub offer: Offer,
    /// When it was made.
    pub created: Time,
    expires: Option<Time>,
}

/// Counters exported as Mesos' metrics.
#[derive(Clone, Debug, Default)]
pub struct MasterCounters {
    /// Offers sent.
    pub offers_sent: u64,
    /// Offers accepted.
    pub offers_accepted: u64,
    /// Offers declined.
    pub offers_declined: u64,
    /// Offers rescinded.
    pub offers_rescinded: u64,
    /// Tasks launched.
    pub tasks_launched: u64,
    /// Tasks refused at launch (TASK_ERROR).
    pub tasks_error: u64,
    /// Status updates accepted from agents.
    pub valid_status_updates: u64,
    /// Status updates that could not be applied.
    pub invalid_status_updates: u64,
    /// Calls handled, by type.
    pub calls: BTreeMap<&'static str, u64>,
    /// Agents that became unreachable.
    pub agents_unreachable: u64,
    /// Agents that registered.
    pub agent_registrations: u64,
    /// Agents that reregistered.
    pub agent_reregistrations: u64,
    /// Tasks that reached each terminal state (counted once per task, not capped like the
    /// completed-task lists).
    pub tasks_terminal: BTreeMap<TaskState, u64>,
    /// Tasks given up as LOST that came back with their agent.
    pub tasks_revived: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Offer(OfferId),
    AgentPing(AgentId),
    Failover(FrameworkId),
    RecoveredAgents,
}

/// The master state machine over an allocator `A`.
pub struct Master<A: Allocator> {
    config: MasterConfig,
    allocator: A,
    rng: ChaCha8Rng,
    info: MasterInfo,
    start_time: Time,
    frameworks: BTreeMap<FrameworkId, Framework>,
    completed_frameworks: VecDeque<Framework>,
    agents: BTreeMap<AgentId, Agent>,
    recovered_agents: BTreeMap<AgentId, (String, Address)>,
    recovered_deadline: Option<Time>,
    unreachable_agents: BTreeMap<AgentId, Time>,
    gone_agents: BTreeSet<AgentId>,
    offers: BTreeMap<OfferId, OfferRecord>,
    timers: BTreeSet<(Time, Timer)>,
    outputs: VecDeque<Output>,
    next_framework: u64,
    next_agent: u64,
    next_offer: u64,
    counters: MasterCounters,
}

/// The default `refuse_seconds` of DECLINE and ACCEPT filters.
pub const DEFAULT_REFUSE_SECONDS: f64 = 5.0;

impl<A: Allocator> Master<A> {
    /// A fresh master. Its id is drawn from `config.seed`.
    pub fn new(config: MasterConfig, allocator: A, now: Time) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let id = uuid_text(rng.gen());
        let info = MasterInfo {
            id,
            address: config.address.clone(),
            version: config.version.clone(),
        };
        Master {
            config,
            allocator,
            rng,
            info,
            start_time: now,
            frameworks: BTreeMap::new(),
            completed_frameworks: VecDeque::new(),
            agents: BTreeMap::new(),
            recovered_agents: BTreeMap::new(),
            recovered_deadline: None,
            unreachable_agents: BTreeMap::new(),
            gone_agents: BTreeSet::new(),
            offers: BTreeMap::new(),
            timers: BTreeSet::new(),
            outputs: VecDeque::new(),
            next_framework: 0,
            next_agent: 0,
            next_offer: 0,
            counters: MasterCounters::default(),
        }
    }

    /// A master rebuilt from the records a previous run persisted. Frameworks come back
    /// disconnected (their schedulers resubscribe), agents as "recovered" until they
    /// reregister or `agent_reregister_timeout` passes.
    pub fn recover(config: MasterConfig, allocator: A, now: Time, records: &[Record]) -> Self {
        let mut m = Master::new(config, allocator, now);
        let registry = Registry::fold(records);
        if let Some((next_framework, next_agent)) = registry.counters {
            m.next_framework = next_framework;
            m.next_agent = next_agent;
        }
        m.recovered_agents = registry.agents;
        let frameworks = registry.frameworks;
        for (id, info) in frameworks {
            m.add_recovered_framework(now, id, info);
        }
        if !m.recovered_agents.is_empty() {
            let deadline = now + m.config.agent_reregister_timeout;
            m.recovered_deadline = Some(deadline);
            m.timers.insert((deadline, Timer::RecoveredAgents));
        }
        m
    }

    // ---------------------------------------------------------------- accessors

    /// What the master says about itself.
    pub fn info(&self) -> &MasterInfo {
        &self.info
    }

    /// The configuration.
    pub fn config(&self) -> &MasterConfig {
        &self.config
    }

    /// When the master started.
    pub fn start_time(&self) -> Time {
        self.start_time
    }

    /// The allocator.
    pub fn allocator(&self) -> &A {
        &self.allocator
    }

    /// The allocator, mutably (weights, quota).
    pub fn allocator_mut(&mut self) -> &mut A {
        &mut self.allocator
    }

    /// Frameworks that are not removed.
    pub fn frameworks(&self) -> impl Iterator<Item = &Framework> {
        self.frameworks.values()
    }

    /// One framework.
    pub fn framework(&self, id: &FrameworkId) -> Option<&Framework> {
        self.frameworks.get(id)
    }

    /// Removed frameworks, newest last.
    pub fn completed_frameworks(&self) -> impl Iterator<Item = &Framework> {
        self.completed_frameworks.iter()
    }

    /// Registered agents.
    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        self.agents.values()
    }

    /// One registered agent.
    pub fn agent(&self, id: &AgentId) -> Option<&Agent> {
        self.agents.get(id)
    }

    /// Agents known from a previous run that have not reregistered yet.
    pub fn recovered_agents(&self) -> impl Iterator<Item = (&AgentId, &(String, Address))> {
        self.recovered_agents.iter()
    }

    /// Unreachable agents with the time they became so.
    pub fn unreachable_agents(&self) -> impl Iterator<Item = (&AgentId, &Time)> {
        self.unreachable_agents.iter()
    }

    /// Outstanding offers.
    pub fn offers(&self) -> impl Iterator<Item = &OfferRecord> {
        self.offers.values()
    }

    /// The counters.
    pub fn counters(&self) -> &MasterCounters {
        &self.counters
    }

    /// Resources of outstanding offers on an agent.
    pub fn offered_on(&self, agent: &Agent) -> Resources {
        agent
            .offers
            .iter()
            .filter_map(|o| self.offers.get(o))
            .map(|o| &o.offer.resources)
            .sum()
    }

    /// Resources used by tasks on an agent (tasks whose resources are not released).
    pub fn used_on(&self, agent: &Agent) -> Resources {
        agent
            .tasks
            .iter()
            .filter_map(|(f, t)| self.frameworks.get(f).and_then(|fw| fw.tasks.get(t)))
            .filter(|t| !t.released)
            .map(|t| &t.info.resources)
            .sum()
    }

    // ---------------------------------------------------------------- outputs and time

    /// The next thing for the shell to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The earliest time [`Master::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Time> {
        let timer = self.timers.first().map(|(t, _)| *t);
        match (timer, self.allocator.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires every timer due at `now` and runs the allocator when it is due.
    pub fn handle_timeout(&mut self, now: Time) {
        while let Some((due, timer)) = self.timers.first().cloned() {
            if due > now {
                break;
            }
            self.timers.remove(&(due, timer.clone()));
            match timer {
                Timer::Offer(id) => {
                    if self.offers.get(&id).is_some_and(|o| o.expires == Some(due)) {
                        self.rescind_offer(now, &id, true);
                    }
                }
                Timer::AgentPing(id) => self.agent_ping(now, &id, due),
                Timer::Failover(id) => {
                    let due_now = self
                        .frameworks
                        .get(&id)
                        .is_some_and(|f| !f.connected && f.failover_deadline == Some(due));
                    if due_now {
                        self.remove_framework(now, &id, "failover timeout elapsed");
                    }
                }
                Timer::RecoveredAgents => {
                    if self.recovered_deadline == Some(due) {
                        self.recovered_deadline = None;
                        let ids: Vec<AgentId> = self.recovered_agents.keys().cloned().collect();
                        for id in ids {
                            self.recovered_agents.remove(&id);
                            self.outputs
                                .push_back(Output::Persist(Record::AgentRemoved { id }));
                        }
                    }
                }
            }
        }
        if self.allocator.poll_timeout().is_some_and(|t| t <= now) {
            let allocations = self.allocator.allocate(now);
            self.make_offers(now, allocations);
        }
    }

    // ---------------------------------------------------------------- helpers

    fn count_call(&mut self, name: &'static str) {
        *self.counters.calls.entry(name).or_default() += 1;
    }

    fn persist_counters(&mut self) {
        self.outputs.push_back(Output::Persist(Record::Counters {
            next_framework: self.next_framework,
            next_agent: self.next_agent,
        }));
    }
}

fn subscribed(id: &FrameworkId, info: &MasterInfo, heartbeat: Duration) -> Output {
    Output::Framework(
        id.clone(),
        Event::Subscribed {
            framework_id: id.clone(),
            heartbeat_interval: heartbeat,
            master_info: info.clone(),
        },
    )
}

fn framework_spec(info: &FrameworkInfo, suppressed: &[String]) -> FrameworkSpec {
    FrameworkSpec {
        roles: info.effective_roles(),
        suppressed_roles: suppressed.to_vec(),
        min_allocatable: Vec::new(),
        gpu_capable: info.has_capability("GPU_RESOURCES"),
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, item: T, max: usize) {
    q.push_back(item);
    while q.len() > max {
        q.pop_front();
    }
}

/// A UUID-shaped string (version 4 layout) from 128 random bits.
fn uuid_text(bits: u128) -> String {
    let mut b = bits.to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    StatusUuid(b).to_string()
}

impl From<AllocatorError> for CallError {
    fn from(e: AllocatorError) -> Self {
        CallError::Invalid {
            call: "ALLOCATOR",
            reason: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
