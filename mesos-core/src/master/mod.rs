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

mod types;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use types::*;

use crate::allocator::{Allocator, AllocatorError, FrameworkSpec};
use crate::ids::{AgentId, FrameworkId, OfferId, TaskId};
use crate::resources::{validate_role, Resources};
use crate::task::{Reason, Source, StatusUuid, TaskState, TaskStateMachine, TaskStatus};
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
        let mut frameworks: BTreeMap<FrameworkId, FrameworkInfo> = BTreeMap::new();
        for r in records {
            match r {
                Record::AgentAdmitted {
                    id,
                    hostname,
                    address,
                } => {
                    m.recovered_agents
                        .insert(id.clone(), (hostname.clone(), address.clone()));
                }
                Record::AgentRemoved { id } => {
                    m.recovered_agents.remove(id);
                }
                Record::FrameworkAdded { id, info } => {
                    frameworks.insert(id.clone(), info.clone());
                }
                Record::FrameworkRemoved { id } => {
                    frameworks.remove(id);
                }
                Record::Counters {
                    next_framework,
                    next_agent,
                } => {
                    m.next_framework = m.next_framework.max(*next_framework);
                    m.next_agent = m.next_agent.max(*next_agent);
                }
            }
        }
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

    fn add_recovered_framework(&mut self, now: Time, id: FrameworkId, info: FrameworkInfo) {
        let spec = framework_spec(&info, &[]);
        if self
            .allocator
            .add_framework(now, &id, spec, &[], false)
            .is_err()
        {
            return;
        }
        let failover = info.failover().max(self.config.agent_reregister_timeout);
        let deadline = now + failover;
        self.timers.insert((deadline, Timer::Failover(id.clone())));
        self.frameworks.insert(
            id.clone(),
            Framework {
                id,
                info,
                connected: false,
                active: false,
                recovered: true,
                stream_id: None,
                suppressed_roles: Vec::new(),
                registered_time: now,
                reregistered_time: None,
                unregistered_time: None,
                tasks: BTreeMap::new(),
                completed_tasks: VecDeque::new(),
                offers: BTreeSet::new(),
                failover_deadline: Some(deadline),
            },
        );
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

    fn make_offers(&mut self, now: Time, allocations: Vec<crate::allocator::Allocation>) {
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
    fn remove_offer(&mut self, now: Time, id: &OfferId, recover: bool) -> Option<Offer> {
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

    fn rescind_offer(&mut self, now: Time, id: &OfferId, recover: bool) {
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

    // ---------------------------------------------------------------- frameworks

    /// SUBSCRIBE: a new framework, or a scheduler reattaching to its framework (`framework_id`
    /// is the call's top-level id, which must match `framework_info.id` when both are set).
    pub fn subscribe(
        &mut self,
        now: Time,
        framework_id: Option<FrameworkId>,
        mut info: FrameworkInfo,
        suppressed_roles: Vec<String>,
    ) -> Result<Subscription, CallError> {
        self.count_call("SUBSCRIBE");
        let invalid = |reason: String| CallError::Invalid {
            call: "SUBSCRIBE",
            reason,
        };
        if info.name.trim().is_empty() {
            return Err(invalid("'framework_info.name' must be set".into()));
        }
        match (&framework_id, &info.id) {
            (Some(a), Some(b)) if a != b => {
                return Err(invalid(format!(
                    "'framework_id' ({a}) differs from 'framework_info.id' ({b})"
                )))
            }
            (Some(a), None) => info.id = Some(a.clone()),
            _ => {}
        }
        if !info.has_capability("MULTI_ROLE") && !info.roles.is_empty() {
            return Err(invalid(
                "'framework_info.roles' is set without the MULTI_ROLE capability".into(),
            ));
        }
        let roles = info.effective_roles();
        for role in roles.iter().chain(&suppressed_roles) {
            validate_role(role).map_err(|e| invalid(e.to_string()))?;
        }
        if let Some(r) = suppressed_roles.iter().find(|r| !roles.contains(r)) {
            return Err(invalid(format!(
                "suppressed role `{r}` is not one of the framework's roles"
            )));
        }
        let stream_id = uuid_text(self.rng.gen());
        let id = match info.id.clone() {
            Some(id) if self.completed_frameworks.iter().any(|f| f.id == id) => {
                return Err(CallError::Removed(id));
            }
            Some(id) => id,
            None => {
                let id = FrameworkId::new(format!("{}-{:04}", self.info.id, self.next_framework));
                self.next_framework += 1;
                self.persist_counters();
                id
            }
        };
        info.id = Some(id.clone());
        let spec = framework_spec(&info, &suppressed_roles);
        if let Some(f) = self.frameworks.get_mut(&id) {
            // Failover or reconnection: replace the stream, keep tasks.
            if let Some(old) = f.stream_id.take() {
                self.outputs.push_back(Output::CloseStream {
                    framework_id: id.clone(),
                    stream_id: old,
                });
            }
            f.info = info.clone();
            f.connected = true;
            f.active = true;
            f.recovered = false;
            f.stream_id = Some(stream_id.clone());
            f.suppressed_roles = suppressed_roles;
            f.reregistered_time = Some(now);
            f.failover_deadline = None;
            self.outputs
                .push_back(subscribed(&id, &self.info, self.config.heartbeat_interval));
            let _ = self.allocator.update_framework(&id, spec);
            let _ = self.allocator.activate_framework(&id);
            let roles: Vec<String> = Vec::new();
            let _ = self.allocator.revive(now, &id, &roles);
        } else {
            self.allocator
                .add_framework(now, &id, spec, &[], true)
                .map_err(|e| invalid(e.to_string()))?;
            self.frameworks.insert(
                id.clone(),
                Framework {
                    id: id.clone(),
                    info: info.clone(),
                    connected: true,
                    active: true,
                    recovered: false,
                    stream_id: Some(stream_id.clone()),
                    suppressed_roles,
                    registered_time: now,
                    reregistered_time: None,
                    unregistered_time: None,
                    tasks: BTreeMap::new(),
                    completed_tasks: VecDeque::new(),
                    offers: BTreeSet::new(),
                    failover_deadline: None,
                },
            );
            self.outputs
                .push_back(subscribed(&id, &self.info, self.config.heartbeat_interval));
        }
        self.outputs
            .push_back(Output::Persist(Record::FrameworkAdded {
                id: id.clone(),
                info,
            }));
        Ok(Subscription {
            framework_id: id,
            stream_id,
        })
    }

    /// The subscription stream `stream_id` of a framework closed. If it is still the current one,
    /// the framework is disconnected: no offers (outstanding ones go back), and it is removed
    /// after its failover timeout unless a scheduler resubscribes.
    pub fn disconnect_framework(&mut self, now: Time, framework: &FrameworkId, stream_id: &str) {
        let Some(f) = self.frameworks.get_mut(framework) else {
            return;
        };
        if f.stream_id.as_deref() != Some(stream_id) {
            return;
        }
        f.stream_id = None;
        f.connected = false;
        f.active = false;
        f.unregistered_time = Some(now);
        let failover = f.info.failover();
        let offers: Vec<OfferId> = f.offers.iter().cloned().collect();
        let _ = self.allocator.deactivate_framework(framework);
        for o in offers {
            self.remove_offer(now, &o, true);
        }
        if failover.is_zero() {
            self.remove_framework(
                now,
                framework,
                "scheduler disconnected (failover_timeout is 0)",
            );
        } else {
            let deadline = now + failover;
            if let Some(f) = self.frameworks.get_mut(framework) {
                f.failover_deadline = Some(deadline);
            }
            self.timers
                .insert((deadline, Timer::Failover(framework.clone())));
        }
    }

    fn remove_framework(&mut self, now: Time, id: &FrameworkId, why: &str) {
        let Some(f) = self.frameworks.get(id) else {
            return;
        };
        let offers: Vec<OfferId> = f.offers.iter().cloned().collect();
        for o in offers {
            self.remove_offer(now, &o, true);
        }
        let Some(mut f) = self.frameworks.remove(id) else {
            return;
        };
        let mut agents_told = BTreeSet::new();
        let tasks = std::mem::take(&mut f.tasks);
        for (task_id, mut task) in tasks {
            let agent = task.agent_id().clone();
            if self.agents.contains_key(&agent) && agents_told.insert(agent.clone()) {
                self.outputs.push_back(Output::Agent(
                    agent.clone(),
                    AgentCommand::ShutdownFramework {
                        framework_id: id.clone(),
                    },
                ));
            }
            if !task.released {
                let _ =
                    self.allocator
                        .recover_resources(now, id, &agent, &task.info.resources, None);
                task.released = true;
            }
            if !task.state.state().is_terminal() {
                let _ = task.state.apply(TaskState::Killed);
                *self
                    .counters
                    .tasks_terminal
                    .entry(TaskState::Killed)
                    .or_default() += 1;
                task.statuses.push(StatusEntry {
                    state: TaskState::Killed,
                    timestamp: now,
                });
            }
            if let Some(a) = self.agents.get_mut(&agent) {
                a.tasks.remove(&(id.clone(), task_id));
            }
            push_bounded(
                &mut f.completed_tasks,
                task,
                self.config.max_completed_tasks_per_framework,
            );
        }
        let _ = self.allocator.remove_framework(id);
        if let Some(stream_id) = f.stream_id.take() {
            self.outputs.push_back(Output::CloseStream {
                framework_id: id.clone(),
                stream_id,
            });
        }
        f.connected = false;
        f.active = false;
        f.unregistered_time = Some(now);
        let _ = why; // the shell logs removals from the outputs it sees
        push_bounded(
            &mut self.completed_frameworks,
            f,
            self.config.max_completed_frameworks,
        );
        self.outputs
            .push_back(Output::Persist(Record::FrameworkRemoved { id: id.clone() }));
    }

    /// A call from a subscribed framework. `stream_id` is the request's `Mesos-Stream-Id`.
    pub fn handle_call(
        &mut self,
        now: Time,
        framework: &FrameworkId,
        stream_id: &str,
        call: Call,
    ) -> Result<(), CallError> {
        self.count_call(call.name());
        let Some(f) = self.frameworks.get(framework) else {
            if self.completed_frameworks.iter().any(|f| &f.id == framework) {
                return Err(CallError::Removed(framework.clone()));
            }
            return Err(CallError::UnknownFramework(framework.clone()));
        };
        if !f.connected {
            return Err(CallError::NotSubscribed(framework.clone()));
        }
        if f.stream_id.as_deref() != Some(stream_id) {
            return Err(CallError::StreamMismatch {
                framework: framework.clone(),
                given: stream_id.to_string(),
            });
        }
        match call {
            Call::Teardown => {
                self.remove_framework(now, framework, "TEARDOWN");
                Ok(())
            }
            Call::Accept {
                offer_ids,
                operations,
                filters,
            } => {
                self.accept(now, framework, offer_ids, operations, filters);
                Ok(())
            }
            Call::Decline { offer_ids, filters } => {
                self.counters.offers_declined += offer_ids.len() as u64;
                self.accept(now, framework, offer_ids, Vec::new(), filters);
                Ok(())
            }
            Call::Revive { roles } => {
                self.check_roles(framework, &roles, "REVIVE")?;
                if let Some(f) = self.frameworks.get_mut(framework) {
                    if roles.is_empty() {
                        f.suppressed_roles.clear();
                    } else {
                        f.suppressed_roles.retain(|r| !roles.contains(r));
                    }
                }
                let _ = self.allocator.revive(now, framework, &roles);
                Ok(())
            }
            Call::Suppress { roles } => {
                self.check_roles(framework, &roles, "SUPPRESS")?;
                if let Some(f) = self.frameworks.get_mut(framework) {
                    let all = f.info.effective_roles();
                    for r in if roles.is_empty() { &all } else { &roles } {
                        if !f.suppressed_roles.contains(r) {
                            f.suppressed_roles.push(r.clone());
                        }
                    }
                }
                let _ = self.allocator.suppress(framework, &roles);
                Ok(())
            }
            Call::Kill { task_id, agent_id } => {
                self.kill(now, framework, task_id, agent_id);
                Ok(())
            }
            Call::Shutdown {
                executor_id,
                agent_id,
            } => {
                // Command tasks: the executor id is the task id.
                let task_id = TaskId::new(executor_id.as_str());
                self.kill(now, framework, task_id, Some(agent_id));
                Ok(())
            }
            Call::Acknowledge {
                agent_id,
                task_id,
                uuid,
            } => {
                self.acknowledge(framework, agent_id, task_id, uuid);
                Ok(())
            }
            Call::Reconcile { tasks } => {
                self.reconcile(now, framework, tasks);
                Ok(())
            }
            Call::Message {
                agent_id,
                executor_id,
                data,
            } => {
                if self.agents.get(&agent_id).is_some_and(|a| a.active) {
                    self.outputs.push_back(Output::Agent(
                        agent_id,
                        AgentCommand::FrameworkMessage {
                            framework_id: framework.clone(),
                            executor_id,
                            data,
                        },
                    ));
                }
                Ok(())
            }
            Call::Request => Ok(()),
            Call::UpdateFramework {
                mut framework_info,
                suppressed_roles,
            } => {
                if framework_info.id.as_ref().is_some_and(|id| id != framework) {
                    return Err(CallError::Invalid {
                        call: "UPDATE_FRAMEWORK",
                        reason: "'framework_info.id' does not match the framework".into(),
                    });
                }
                framework_info.id = Some(framework.clone());
                for role in framework_info
                    .effective_roles()
                    .iter()
                    .chain(&suppressed_roles)
                {
                    validate_role(role).map_err(|e| CallError::Invalid {
                        call: "UPDATE_FRAMEWORK",
                        reason: e.to_string(),
                    })?;
                }
                let spec = framework_spec(&framework_info, &suppressed_roles);
                self.allocator
                    .update_framework(framework, spec)
                    .map_err(|e| CallError::Invalid {
                        call: "UPDATE_FRAMEWORK",
                        reason: e.to_string(),
                    })?;
                if let Some(f) = self.frameworks.get_mut(framework) {
                    f.info = framework_info.clone();
                    f.suppressed_roles = suppressed_roles;
                }
                self.outputs
                    .push_back(Output::Persist(Record::FrameworkAdded {
                        id: framework.clone(),
                        info: framework_info,
                    }));
                Ok(())
            }
        }
    }

    fn check_roles(
        &self,
        framework: &FrameworkId,
        roles: &[String],
        call: &'static str,
    ) -> Result<(), CallError> {
        let Some(f) = self.frameworks.get(framework) else {
            return Ok(());
        };
        let subscribed = f.info.effective_roles();
        match roles.iter().find(|r| !subscribed.contains(r)) {
            Some(r) => Err(CallError::Invalid {
                call,
                reason: format!("role `{r}` is not one of the framework's roles"),
            }),
            None => Ok(()),
        }
    }

    fn accept(
        &mut self,
        now: Time,
        framework: &FrameworkId,
        offer_ids: Vec<OfferId>,
        operations: Vec<Operation>,
        filters: Option<Filters>,
    ) {
        let partition_aware = self
            .frameworks
            .get(framework)
            .is_some_and(|f| f.info.partition_aware());
        // Validate the offers first: all known, ours, on one agent, no duplicates.
        let mut error: Option<String> = None;
        let mut seen = BTreeSet::new();
        let mut agent: Option<AgentId> = None;
        for id in &offer_ids {
            match self.offers.get(id) {
                None => error = Some(format!("Offer {id} is no longer valid")),
                Some(o) if &o.offer.framework_id != framework => {
                    error = Some(format!("Offer {id} belongs to another framework"))
                }
                Some(o) => match &agent {
                    Some(a) if a != &o.offer.agent_id => {
                        error = Some("Aggregated offers must belong to one single agent".into())
                    }
                    _ => agent = Some(o.offer.agent_id.clone()),
                },
            }
            if !seen.insert(id.clone()) {
                error = Some(format!("Offer {id} appears more than once"));
            }
        }
        if offer_ids.is_empty() && !operations.is_empty() {
            error = Some("No offers specified".into());
        }
        let mut offered = Resources::new();
        let mut role = String::from("*");
        for id in &offer_ids {
            let valid = self
                .offers
                .get(id)
                .is_some_and(|o| &o.offer.framework_id == framework);
            if valid {
                if let Some(o) = self.remove_offer(now, id, false) {
                    role = o.role.clone();
                    offered += o.resources;
                }
            }
        }
        if let Some(message) = error {
            for op in &operations {
                if let Operation::InvalidTask {
                    task_id,
                    agent_id,
                    reason,
                } = op
                {
                    self.master_update(
                        framework,
                        task_id.clone(),
                        agent_id.clone(),
                        TaskState::Error,
                        Reason::TaskInvalid,
                        reason,
                        now,
                    );
                }
                if let Operation::Launch(tasks) = op {
                    for t in tasks {
                        let state = if partition_aware {
                            TaskState::Dropped
                        } else {
                            TaskState::Lost
                        };
                        self.master_update(
                            framework,
                            t.task_id.clone(),
                            Some(t.agent_id.clone()),
                            state,
                            Reason::InvalidOffers,
                            &message,
                            now,
                        );
                    }
                }
            }
            if let Some(agent) = &agent {
                if !offered.is_empty() {
                    let _ = self
                        .allocator
                        .recover_resources(now, framework, agent, &offered, None);
                }
            }
            return;
        }
        let Some(agent_id) = agent else { return };
        let agent_id_of_offers = agent_id.clone();
        if !operations.is_empty() {
            self.counters.offers_accepted += offer_ids.len() as u64;
        }
        let mut remaining = offered;
        let mut launched_ids: BTreeSet<TaskId> = BTreeSet::new();
        for op in operations {
            match op {
                Operation::Launch(tasks) => {
                    for mut task in tasks {
                        // Resources without allocation info get the offer's role, as Mesos injects it.
                        if task.resources.iter().any(|r| r.allocation_role.is_none()) {
                            task.resources = task.resources.unallocate().allocate(&role);
                        }
                        match self.validate_task(
                            framework,
                            &agent_id,
                            &task,
                            &remaining,
                            &launched_ids,
                        ) {
                            Err(message) => {
                                self.counters.tasks_error += 1;
                                self.master_update(
                                    framework,
                                    task.task_id.clone(),
                                    Some(agent_id.clone()),
                                    TaskState::Error,
                                    Reason::TaskInvalid,
                                    &message,
                                    now,
                                );
                            }
                            Ok(()) => {
                                remaining -= &task.resources;
                                launched_ids.insert(task.task_id.clone());
                                self.launch(now, framework, &role, task);
                            }
                        }
                    }
                }
                Operation::Unsupported(_) => {}
                Operation::InvalidTask {
                    task_id,
                    agent_id,
                    reason,
                } => {
                    self.counters.tasks_error += 1;
                    self.master_update(
                        framework,
                        task_id,
                        agent_id.or_else(|| Some(agent_id_of_offers.clone())),
                        TaskState::Error,
                        Reason::TaskInvalid,
                        &reason,
                        now,
                    );
                }
            }
        }
        if !remaining.is_empty() {
            let refuse = filters
                .unwrap_or_default()
                .refuse_seconds
                .unwrap_or(DEFAULT_REFUSE_SECONDS);
            let refuse = if refuse.is_finite() && refuse >= 0.0 {
                Duration::from_secs_f64(refuse.min(31_536_000.0))
            } else {
                Duration::from_secs_f64(DEFAULT_REFUSE_SECONDS)
            };
            let _ = self.allocator.recover_resources(
                now,
                framework,
                &agent_id,
                &remaining,
                Some(refuse),
            );
        }
    }

    fn validate_task(
        &self,
        framework: &FrameworkId,
        agent: &AgentId,
        task: &TaskInfo,
        remaining: &Resources,
        launched: &BTreeSet<TaskId>,
    ) -> Result<(), String> {
        if task.task_id.as_str().is_empty() {
            return Err("Task ID must not be empty".into());
        }
        let duplicate = launched.contains(&task.task_id)
            || self
                .frameworks
                .get(framework)
                .is_some_and(|f| f.tasks.contains_key(&task.task_id));
        if duplicate {
            return Err(format!("Task has duplicate ID: {}", task.task_id));
        }
        if &task.agent_id != agent {
            return Err(format!(
                "Task uses agent {} but the offers are for agent {agent}",
                task.agent_id
            ));
        }
        if task.resources.is_empty() {
            return Err("Task uses no resources".into());
        }
        if !remaining.contains(&task.resources) {
            return Err(format!(
                "Task uses more resources {} than available {}",
                task.resources, remaining
            ));
        }
        match (&task.command, &task.executor) {
            (Some(_), Some(_)) | (None, None) => {
                return Err("Task should have at least one (but not both) of CommandInfo or ExecutorInfo present".into())
            }
            (None, Some(_)) => {
                return Err("Custom executors are not supported by this master; use a command task".into())
            }
            (Some(c), None) => {
                if c.value.as_deref().unwrap_or("").trim().is_empty() && (c.is_shell() || c.arguments.is_empty()) {
                    return Err("Task's command has no value".into());
                }
            }
        }
        Ok(())
    }

    fn launch(&mut self, now: Time, framework: &FrameworkId, role: &str, task: TaskInfo) {
        let Some(f) = self.frameworks.get_mut(framework) else {
            return;
        };
        let agent_id = task.agent_id.clone();
        let fref = FrameworkRef {
            id: framework.clone(),
            info: f.info.clone(),
        };
        let mut info = task.clone();
        // Kept as long as the task lives: no spare capacity.
        info.resources.shrink_to_fit();
        let record = Task {
            info,
            framework_id: framework.clone(),
            role: role.to_string(),
            state: TaskStateMachine::new(),
            status_update_state: None,
            status_update_uuid: None,
            healthy: None,
            statuses: vec![StatusEntry {
                state: TaskState::Staging,
                timestamp: now,
            }],
            released: false,
            unreachable_time: None,
        };
        f.tasks.insert(task.task_id.clone(), Box::new(record));
        if let Some(a) = self.agents.get_mut(&agent_id) {
            a.tasks.insert((framework.clone(), task.task_id.clone()));
        }
        self.counters.tasks_launched += 1;
        self.outputs.push_back(Output::Agent(
            agent_id,
            AgentCommand::RunTask {
                framework: fref,
                task,
            },
        ));
    }

    /// A status update the master itself generates (no uuid; not acknowledged).
    #[allow(clippy::too_many_arguments)]
    fn master_update(
        &mut self,
        framework: &FrameworkId,
        task_id: TaskId,
        agent_id: Option<AgentId>,
        state: TaskState,
        reason: Reason,
        message: &str,
        now: Time,
    ) {
        let mut status = TaskStatus::new(task_id, state)
            .with_source(Source::Master)
            .with_reason(reason)
            .with_message(message)
            .with_timestamp(now);
        status.agent_id = agent_id;
        if self.frameworks.get(framework).is_some_and(|f| f.connected) {
            self.outputs
                .push_back(Output::Framework(framework.clone(), Event::Update(status)));
        }
    }

    fn kill(
        &mut self,
        now: Time,
        framework: &FrameworkId,
        task_id: TaskId,
        agent_id: Option<AgentId>,
    ) {
        let known = self
            .frameworks
            .get(framework)
            .and_then(|f| f.tasks.get(&task_id))
            .map(|t| t.agent_id().clone());
        match known {
            Some(agent) => {
                if self.agents.get(&agent).is_some_and(|a| a.active) {
                    self.outputs.push_back(Output::Agent(
                        agent,
                        AgentCommand::KillTask {
                            framework_id: framework.clone(),
                            task_id,
                        },
                    ));
                }
            }
            None => self.reconcile(now, framework, vec![(task_id, agent_id)]),
        }
    }

    fn acknowledge(
        &mut self,
        framework: &FrameworkId,
        agent: AgentId,
        task_id: TaskId,
        uuid: StatusUuid,
    ) {
        if self.agents.contains_key(&agent) {
            self.outputs.push_back(Output::Agent(
                agent.clone(),
                AgentCommand::Acknowledge {
                    framework_id: framework.clone(),
                    task_id: task_id.clone(),
                    uuid,
                },
            ));
        }
        let Some(f) = self.frameworks.get_mut(framework) else {
            return;
        };
        let done = f.tasks.get(&task_id).is_some_and(|t| {
            t.status_update_uuid == Some(uuid)
                && t.status_update_state.is_some_and(TaskState::is_terminal)
        });
        if done {
            if let Some(task) = f.tasks.remove(&task_id) {
                if let Some(a) = self.agents.get_mut(task.agent_id()) {
                    a.tasks.remove(&(framework.clone(), task_id));
                }
                push_bounded(
                    &mut f.completed_tasks,
                    task,
                    self.config.max_completed_tasks_per_framework,
                );
            }
        }
    }

    fn reconcile(
        &mut self,
        now: Time,
        framework: &FrameworkId,
        tasks: Vec<(TaskId, Option<AgentId>)>,
    ) {
        let Some(f) = self.frameworks.get(framework) else {
            return;
        };
        let partition_aware = f.info.partition_aware();
        let mut replies: Vec<TaskStatus> = Vec::new();
        let latest = |t: &Task| {
            let mut s = TaskStatus::new(
                t.id().clone(),
                t.status_update_state.unwrap_or(t.state.state()),
            )
            .with_source(Source::Master)
            .with_reason(Reason::Reconciliation)
            .with_message("Reconciliation: Latest task state")
            .with_agent(t.agent_id().clone())
            .with_timestamp(now);
            s.unreachable_time = t.unreachable_time;
            s.healthy = t.healthy;
            s
        };
        if tasks.is_empty() {
            replies.extend(f.tasks.values().map(|t| latest(t)));
        } else {
            for (task_id, agent_id) in tasks {
                if let Some(t) = f.tasks.get(&task_id) {
                    replies.push(latest(t));
                    continue;
                }
                let recovering = match &agent_id {
                    Some(a) => self.recovered_agents.contains_key(a),
                    None => !self.recovered_agents.is_empty(),
                };
                if recovering {
                    continue;
                }
                let (state, unreachable) = match &agent_id {
                    Some(a) if self.agents.contains_key(a) => (TaskState::Gone, None),
                    Some(a) if self.unreachable_agents.contains_key(a) => (
                        TaskState::Unreachable,
                        self.unreachable_agents.get(a).copied(),
                    ),
                    Some(a) if self.gone_agents.contains(a) => (TaskState::GoneByOperator, None),
                    _ => (TaskState::Unknown, None),
                };
                let state = if partition_aware {
                    state
                } else {
                    TaskState::Lost
                };
                let message = match state {
                    TaskState::Gone => "Reconciliation: Task is unknown to the agent",
                    TaskState::Unreachable => "Reconciliation: Task is unreachable",
                    TaskState::GoneByOperator => "Reconciliation: Task is gone",
                    _ => "Reconciliation: Task is unknown",
                };
                let mut s = TaskStatus::new(task_id, state)
                    .with_source(Source::Master)
                    .with_reason(Reason::Reconciliation)
                    .with_message(message)
                    .with_timestamp(now);
                s.agent_id = agent_id;
                s.unreachable_time = unreachable;
                replies.push(s);
            }
        }
        for s in replies {
            self.outputs
                .push_back(Output::Framework(framework.clone(), Event::Update(s)));
        }
    }

    // ---------------------------------------------------------------- agents

    /// An agent registers (no id) or reregisters (with the id it had). Returns its id.
    pub fn register_agent(
        &mut self,
        now: Time,
        reg: AgentRegistration,
    ) -> Result<AgentId, AgentError> {
        if reg.hostname.trim().is_empty() {
            return Err(AgentError::Invalid("hostname must not be empty".into()));
        }
        if reg.resources.is_empty() {
            return Err(AgentError::Invalid(
                "an agent must offer some resources".into(),
            ));
        }
        if let Some(id) = &reg.id {
            if self.gone_agents.contains(id) {
                return Err(AgentError::Removed(id.clone()));
            }
            // Upstream's agent reconfiguration rules: a reregistering agent keeps its hostname
            // and may only add resources. This also stops a stray registration from rewriting
            // a live agent (authentication of agents comes with the security work).
            let known_host = self
                .agents
                .get(id)
                .map(|a| a.hostname.as_str())
                .or_else(|| self.recovered_agents.get(id).map(|(h, _)| h.as_str()));
            if let Some(host) = known_host.filter(|h| *h != reg.hostname) {
                return Err(AgentError::Invalid(format!(
                    "agent `{id}` is registered with hostname `{host}` and cannot reregister as `{}`",
                    reg.hostname
                )));
            }
            if let Some(a) = self.agents.get(id) {
                if !reg.resources.contains(&a.total) {
                    return Err(AgentError::Invalid(format!(
                        "agent `{id}` may only add resources when it reregisters: it had `{}`, now `{}`",
                        a.total, reg.resources
                    )));
                }
            }
        }
        let (id, reregistering) = match reg.id.clone() {
            Some(id) => (id, true),
            None => {
                let id = AgentId::new(format!("{}-S{}", self.info.id, self.next_agent));
                self.next_agent += 1;
                self.persist_counters();
                (id, false)
            }
        };
        let was_unreachable = self.unreachable_agents.remove(&id).is_some();
        self.recovered_agents.remove(&id);
        let already_registered = self.agents.contains_key(&id);
        if reregistering {
            self.counters.agent_reregistrations += 1;
        } else {
            self.counters.agent_registrations += 1;
        }

        // Frameworks of reported tasks that this master does not know come back as recovered.
        for rt in &reg.tasks {
            if !self.frameworks.contains_key(&rt.framework.id)
                && !self
                    .completed_frameworks
                    .iter()
                    .any(|f| f.id == rt.framework.id)
            {
                self.add_recovered_framework(
                    now,
                    rt.framework.id.clone(),
                    rt.framework.info.clone(),
                );
            }
        }

        if already_registered {
            // A reconnect of a known agent (e.g. it restarted): stop using stale offers.
            let offers: Vec<OfferId> = self
                .agents
                .get(&id)
                .map(|a| a.offers.iter().cloned().collect())
                .unwrap_or_default();
            for o in offers {
                self.rescind_offer(now, &o, true);
            }
        }

        let reported: BTreeMap<(FrameworkId, TaskId), &ReportedTask> = reg
            .tasks
            .iter()
            .map(|t| ((t.framework.id.clone(), t.task.task_id.clone()), t))
            .collect();

        // Tasks the master placed on this agent that the agent no longer has.
        let known: Vec<(FrameworkId, TaskId)> = self
            .frameworks
            .values()
            .flat_map(|f| {
                f.tasks
                    .values()
                    .filter(|t| t.agent_id() == &id)
                    .map(|t| (f.id.clone(), t.id().clone()))
            })
            .collect();
        for (fw, task_id) in known {
            if reported.contains_key(&(fw.clone(), task_id.clone())) {
                continue;
            }
            let Some(task) = self.frameworks.get(&fw).and_then(|f| f.tasks.get(&task_id)) else {
                continue;
            };
            if task.state.state().is_terminal()
                || task.status_update_state.is_some_and(TaskState::is_terminal)
            {
                continue;
            }
            let partition_aware = self
                .frameworks
                .get(&fw)
                .is_some_and(|f| f.info.partition_aware());
            let state = if partition_aware {
                TaskState::Gone
            } else {
                TaskState::Lost
            };
            self.terminate_task(
                now,
                &fw,
                &task_id,
                state,
                Reason::AgentRestarted,
                "Task is unknown to the agent after it reregistered",
                already_registered,
            );
        }

        // Tasks the agent reports.
        let mut used: BTreeMap<FrameworkId, Resources> = BTreeMap::new();
        for ((fw, task_id), rt) in &reported {
            let Some(f) = self.frameworks.get_mut(fw) else {
                continue;
            };
            let connected = f.connected;
            // A task the master gave up on (LOST while its agent was unreachable) comes back
            // when the agent does, as in Mesos' non-strict registry: move it out of the
            // completed tasks instead of listing it twice.
            if !f.tasks.contains_key(task_id) {
                if let Some(pos) = f.completed_tasks.iter().position(|t| t.id() == task_id) {
                    if let Some(mut old) = f.completed_tasks.remove(pos) {
                        old.state = TaskStateMachine::with_state(rt.state);
                        old.statuses.push(StatusEntry {
                            state: rt.state,
                            timestamp: now,
                        });
                        old.released = rt.state.releases_resources();
                        old.status_update_state = None;
                        old.status_update_uuid = None;
                        f.tasks.insert(task_id.clone(), old);
                        self.counters.tasks_revived += 1;
                    }
                }
            }
            let entry = f.tasks.entry(task_id.clone()).or_insert_with(|| {
                Box::new(Task {
                    info: rt.task.clone(),
                    framework_id: fw.clone(),
                    role: rt
                        .task
                        .resources
                        .iter()
                        .find_map(|r| r.allocation_role.as_deref().map(str::to_string))
                        .unwrap_or_else(|| "*".into()),
                    state: TaskStateMachine::with_state(rt.state),
                    status_update_state: None,
                    status_update_uuid: None,
                    healthy: None,
                    statuses: vec![StatusEntry {
                        state: rt.state,
                        timestamp: now,
                    }],
                    released: rt.state.releases_resources(),
                    unreachable_time: None,
                })
            });
            let changed = entry.state.state() != rt.state;
            if changed && entry.state.apply(rt.state).is_ok() {
                entry.statuses.push(StatusEntry {
                    state: rt.state,
                    timestamp: now,
                });
            }
            entry.unreachable_time = None;
            if !rt.state.releases_resources() {
                entry.released = false;
                *used.entry(fw.clone()).or_default() += &entry.info.resources;
            }
            if (was_unreachable || changed) && connected {
                let s = TaskStatus::new(task_id.clone(), rt.state)
                    .with_source(Source::Master)
                    .with_reason(Reason::AgentReregistered)
                    .with_message("Unreachable agent re-reregistered")
                    .with_agent(id.clone())
                    .with_timestamp(now);
                self.outputs
                    .push_back(Output::Framework(fw.clone(), Event::Update(s)));
            }
        }

        let spec = crate::allocator::AgentSpec {
            hostname: reg.hostname.clone(),
            total: reg.resources.clone(),
            attributes: reg.attributes.clone(),
        };
        if already_registered {
            let _ = self.allocator.remove_agent(&id);
        }
        let used: Vec<(FrameworkId, Resources)> = used.into_iter().collect();
        if let Err(e) = self.allocator.add_agent(&id, spec, &used) {
            return Err(AgentError::Invalid(e.to_string()));
        }
        let mut task_set = BTreeSet::new();
        for (fw, t) in reported.keys() {
            task_set.insert((fw.clone(), t.clone()));
        }
        let next_ping = now + self.config.agent_ping_timeout;
        let registered_time = self.agents.get(&id).map_or(now, |a| a.registered_time);
        self.agents.insert(
            id.clone(),
            Agent {
                id: id.clone(),
                hostname: reg.hostname.clone(),
                address: reg.address.clone(),
                total: reg.resources,
                attributes: reg.attributes,
                version: reg.version,
                active: true,
                registered_time,
                reregistered_time: reregistering.then_some(now),
                tasks: task_set,
                offers: BTreeSet::new(),
                last_heard: now,
                next_ping,
            },
        );
        self.timers
            .insert((next_ping, Timer::AgentPing(id.clone())));
        self.outputs
            .push_back(Output::Persist(Record::AgentAdmitted {
                id: id.clone(),
                hostname: reg.hostname,
                address: reg.address,
            }));
        Ok(id)
    }

    /// Moves a task to a terminal state decided by the master and tells its framework.
    #[allow(clippy::too_many_arguments)]
    fn terminate_task(
        &mut self,
        now: Time,
        fw: &FrameworkId,
        task_id: &TaskId,
        state: TaskState,
        reason: Reason,
        message: &str,
        recover: bool,
    ) {
        let Some(f) = self.frameworks.get_mut(fw) else {
            return;
        };
        let Some(mut task) = f.tasks.remove(task_id) else {
            return;
        };
        let agent = task.agent_id().clone();
        if !task.state.state().is_terminal() && state.is_terminal() {
            *self.counters.tasks_terminal.entry(state).or_default() += 1;
        }
        let _ = task.state.apply(state);
        task.statuses.push(StatusEntry {
            state,
            timestamp: now,
        });
        if !task.released {
            task.released = true;
            if recover {
                let _ =
                    self.allocator
                        .recover_resources(now, fw, &agent, &task.info.resources, None);
            }
        }
        push_bounded(
            &mut f.completed_tasks,
            task,
            self.config.max_completed_tasks_per_framework,
        );
        if let Some(a) = self.agents.get_mut(&agent) {
            a.tasks.remove(&(fw.clone(), task_id.clone()));
        }
        self.master_update(
            fw,
            task_id.clone(),
            Some(agent),
            state,
            reason,
            message,
            now,
        );
    }

    /// A message from a registered agent. An unknown (or unreachable) agent gets an error and
    /// must register again.
    pub fn handle_agent(
        &mut self,
        now: Time,
        agent: &AgentId,
        message: AgentMessage,
    ) -> Result<(), AgentError> {
        let Some(a) = self.agents.get_mut(agent) else {
            if self.gone_agents.contains(agent) {
                return Err(AgentError::Removed(agent.clone()));
            }
            return Err(AgentError::UnknownAgent(agent.clone()));
        };
        a.last_heard = now;
        match message {
            AgentMessage::Pong => Ok(()),
            AgentMessage::StatusUpdate {
                framework_id,
                status,
            } => {
                self.status_update(now, agent, framework_id, status);
                Ok(())
            }
            AgentMessage::ExecutorExited {
                framework_id,
                executor_id,
                status,
            } => {
                if self
                    .frameworks
                    .get(&framework_id)
                    .is_some_and(|f| f.connected)
                {
                    self.outputs.push_back(Output::Framework(
                        framework_id,
                        Event::Failure {
                            agent_id: Some(agent.clone()),
                            executor_id: Some(executor_id),
                            status: Some(status),
                        },
                    ));
                }
                Ok(())
            }
            AgentMessage::FrameworkMessage {
                framework_id,
                executor_id,
                data,
            } => {
                if self
                    .frameworks
                    .get(&framework_id)
                    .is_some_and(|f| f.connected)
                {
                    self.outputs.push_back(Output::Framework(
                        framework_id,
                        Event::Message {
                            agent_id: agent.clone(),
                            executor_id,
                            data,
                        },
                    ));
                }
                Ok(())
            }
        }
    }

    fn status_update(
        &mut self,
        now: Time,
        agent: &AgentId,
        framework: FrameworkId,
        mut status: TaskStatus,
    ) {
        status.agent_id = Some(agent.clone());
        let Some(f) = self.frameworks.get_mut(&framework) else {
            // The framework is gone: acknowledge on its behalf so the agent's stream drains.
            self.counters.invalid_status_updates += 1;
            if let Some(uuid) = status.uuid {
                self.outputs.push_back(Output::Agent(
                    agent.clone(),
                    AgentCommand::Acknowledge {
                        framework_id: framework,
                        task_id: status.task_id,
                        uuid,
                    },
                ));
            }
            return;
        };
        self.counters.valid_status_updates += 1;
        let connected = f.connected;
        let mut release: Option<Resources> = None;
        let mut became_terminal = false;
        if let Some(task) = f.tasks.get_mut(&status.task_id) {
            became_terminal = !task.state.state().is_terminal() && status.state.is_terminal();
            if task.state.apply(status.state).is_ok()
                && task.statuses.last().map(|s| s.state) != Some(status.state)
            {
                task.statuses.push(StatusEntry {
                    state: status.state,
                    timestamp: status.timestamp.unwrap_or(now),
                });
            }
            task.status_update_state = Some(status.state);
            task.status_update_uuid = status.uuid;
            if status.healthy.is_some() {
                task.healthy = status.healthy;
            }
            if status.state.releases_resources() && !task.released {
                task.released = true;
                release = Some(task.info.resources.clone());
            }
        }
        if became_terminal {
            *self
                .counters
                .tasks_terminal
                .entry(status.state)
                .or_default() += 1;
        }
        if let Some(res) = release {
            let _ = self
                .allocator
                .recover_resources(now, &framework, agent, &res, None);
        }
        if connected {
            self.outputs
                .push_back(Output::Framework(framework, Event::Update(status)));
        }
    }

    /// The agent's connection dropped: its resources are not offered (outstanding offers are
    /// rescinded) until it reconnects; its tasks wait for the ping timeout.
    pub fn disconnect_agent(&mut self, now: Time, agent: &AgentId) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        a.active = false;
        let offers: Vec<OfferId> = a.offers.iter().cloned().collect();
        let _ = self.allocator.set_agent_active(agent, false);
        for o in offers {
            self.rescind_offer(now, &o, true);
        }
    }

    /// The agent's connection is back (without a full reregistration).
    pub fn reconnect_agent(&mut self, now: Time, agent: &AgentId) -> Result<(), AgentError> {
        let Some(a) = self.agents.get_mut(agent) else {
            return Err(AgentError::UnknownAgent(agent.clone()));
        };
        a.active = true;
        a.last_heard = now;
        let _ = self.allocator.set_agent_active(agent, true);
        Ok(())
    }

    fn agent_ping(&mut self, now: Time, id: &AgentId, due: Time) {
        let Some(a) = self.agents.get_mut(id) else {
            return;
        };
        if a.next_ping != due {
            return;
        }
        let limit = self.config.agent_ping_timeout * self.config.max_agent_ping_timeouts.max(1);
        if now.saturating_duration_since(a.last_heard) >= limit {
            self.mark_unreachable(now, id);
            return;
        }
        a.next_ping = now + self.config.agent_ping_timeout;
        self.timers
            .insert((a.next_ping, Timer::AgentPing(id.clone())));
        self.outputs
            .push_back(Output::Agent(id.clone(), AgentCommand::Ping));
    }

    /// The agent stopped answering: its tasks become UNREACHABLE (partition-aware frameworks)
    /// or LOST, its offers are rescinded, and every framework gets a FAILURE event.
    fn mark_unreachable(&mut self, now: Time, id: &AgentId) {
        let Some(agent) = self.agents.get(id) else {
            return;
        };
        self.counters.agents_unreachable += 1;
        let offers: Vec<OfferId> = agent.offers.iter().cloned().collect();
        let tasks: Vec<(FrameworkId, TaskId)> = agent.tasks.iter().cloned().collect();
        for o in offers {
            self.rescind_offer(now, &o, false);
        }
        let _ = self.allocator.remove_agent(id);
        for (fw, task_id) in tasks {
            let Some(f) = self.frameworks.get_mut(&fw) else {
                continue;
            };
            let partition_aware = f.info.partition_aware();
            let Some(task) = f.tasks.get_mut(&task_id) else {
                continue;
            };
            if task.state.state().is_terminal() {
                continue;
            }
            task.released = true;
            if partition_aware {
                let _ = task.state.apply(TaskState::Unreachable);
                task.statuses.push(StatusEntry {
                    state: TaskState::Unreachable,
                    timestamp: now,
                });
                task.unreachable_time = Some(now);
                task.status_update_state = Some(TaskState::Unreachable);
                task.status_update_uuid = None;
                if f.connected {
                    let mut s = TaskStatus::new(task_id.clone(), TaskState::Unreachable)
                        .with_source(Source::Master)
                        .with_reason(Reason::AgentRemoved)
                        .with_message("Agent is unreachable: health check timed out")
                        .with_agent(id.clone())
                        .with_timestamp(now);
                    s.unreachable_time = Some(now);
                    self.outputs
                        .push_back(Output::Framework(fw.clone(), Event::Update(s)));
                }
            } else {
                self.terminate_task(
                    now,
                    &fw,
                    &task_id,
                    TaskState::Lost,
                    Reason::AgentRemoved,
                    "Agent is unreachable: health check timed out",
                    false,
                );
            }
        }
        self.agents.remove(id);
        self.unreachable_agents.insert(id.clone(), now);
        let connected: Vec<FrameworkId> = self
            .frameworks
            .values()
            .filter(|f| f.connected)
            .map(|f| f.id.clone())
            .collect();
        for fw in connected {
            self.outputs.push_back(Output::Framework(
                fw,
                Event::Failure {
                    agent_id: Some(id.clone()),
                    executor_id: None,
                    status: None,
                },
            ));
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
