//! Agents: admission of a new agent, reregistration of a known one, their messages, pings,
//! disconnection and becoming unreachable.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::allocator::{AgentSpec, Allocator};
use crate::ids::{AgentId, FrameworkId, OfferId, TaskId};
use crate::resources::Resources;
use crate::task::{Reason, Source, TaskState, TaskStateMachine, TaskStatus};
use crate::time::Time;

impl<A: Allocator> Master<A> {
    /// An agent registers (no id: [`Master::admit`] gives it one) or reregisters (with the id it
    /// had: [`Master::reregister`]). Returns its id.
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
        match reg.id.clone() {
            None => self.admit(now, reg),
            Some(id) => self.reregister(now, id, reg),
        }
    }

    /// A new agent: it gets the next id and its resources go to the allocator.
    fn admit(&mut self, now: Time, mut reg: AgentRegistration) -> Result<AgentId, AgentError> {
        let id = AgentId::new(format!("{}-S{}", self.info.id, self.next_agent));
        self.next_agent += 1;
        self.persist_counters();
        self.counters.agent_registrations += 1;
        self.adopt_frameworks_of(now, &reg.tasks);
        let reported = reported_tasks(&mut reg);
        let used = self.apply_reported(now, &id, &reported, false);
        self.install_agent(now, id, reg, reported, used, false, false)
    }

    /// An agent that had `id` comes back: after a restart of its own, of the master (it is then
    /// a recovered agent), or after being unreachable. Upstream's reconfiguration rules apply,
    /// and its tasks are reconciled with what the master knows.
    fn reregister(
        &mut self,
        now: Time,
        id: AgentId,
        mut reg: AgentRegistration,
    ) -> Result<AgentId, AgentError> {
        if self.gone_agents.contains(&id) {
            return Err(AgentError::Removed(id));
        }
        // Upstream's agent reconfiguration rules: a reregistering agent keeps its hostname
        // and may only add resources. This also stops a stray registration from rewriting
        // a live agent (authentication of agents comes with the security work).
        let known_host = self
            .agents
            .get(&id)
            .map(|a| a.hostname.as_str())
            .or_else(|| self.recovered_agents.get(&id).map(|(h, _)| h.as_str()));
        if let Some(host) = known_host.filter(|h| *h != reg.hostname) {
            return Err(AgentError::Invalid(format!(
                "agent `{id}` is registered with hostname `{host}` and cannot reregister as `{}`",
                reg.hostname
            )));
        }
        if let Some(a) = self.agents.get(&id) {
            if !reg.resources.contains(&a.total) {
                return Err(AgentError::Invalid(format!(
                    "agent `{id}` may only add resources when it reregisters: it had `{}`, now `{}`",
                    a.total, reg.resources
                )));
            }
        }
        let was_unreachable = self.unreachable_agents.remove(&id).is_some();
        self.recovered_agents.remove(&id);
        let already_registered = self.agents.contains_key(&id);
        self.counters.agent_reregistrations += 1;
        self.adopt_frameworks_of(now, &reg.tasks);

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

        let reported = reported_tasks(&mut reg);

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

        let used = self.apply_reported(now, &id, &reported, was_unreachable);
        self.install_agent(now, id, reg, reported, used, true, already_registered)
    }

    /// Frameworks of reported tasks that this master does not know come back as recovered.
    fn adopt_frameworks_of(&mut self, now: Time, tasks: &[ReportedTask]) {
        for rt in tasks {
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
    }

    /// Takes in the tasks an agent reports: new ones are added, known ones move to the reported
    /// state, and frameworks hear of changes. Returns what each framework uses on the agent.
    fn apply_reported(
        &mut self,
        now: Time,
        id: &AgentId,
        reported: &BTreeMap<(FrameworkId, TaskId), ReportedTask>,
        was_unreachable: bool,
    ) -> Vec<(FrameworkId, Resources)> {
        let mut used: BTreeMap<FrameworkId, Resources> = BTreeMap::new();
        for ((fw, task_id), rt) in reported {
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
        used.into_iter().collect()
    }

    /// Hands the agent's resources to the allocator and starts tracking it (pings, records).
    #[allow(clippy::too_many_arguments)]
    fn install_agent(
        &mut self,
        now: Time,
        id: AgentId,
        reg: AgentRegistration,
        reported: BTreeMap<(FrameworkId, TaskId), ReportedTask>,
        used: Vec<(FrameworkId, Resources)>,
        reregistering: bool,
        already_registered: bool,
    ) -> Result<AgentId, AgentError> {
        let spec = AgentSpec {
            hostname: reg.hostname.clone(),
            total: reg.resources.clone(),
            attributes: reg.attributes.clone(),
        };
        if already_registered {
            let _ = self.allocator.remove_agent(&id);
        }
        if let Err(e) = self.allocator.add_agent(&id, spec, &used) {
            return Err(AgentError::Invalid(e.to_string()));
        }
        let task_set: BTreeSet<(FrameworkId, TaskId)> = reported.into_keys().collect();
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

    pub(super) fn status_update(
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

    pub(super) fn agent_ping(&mut self, now: Time, id: &AgentId, due: Time) {
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
    pub(super) fn mark_unreachable(&mut self, now: Time, id: &AgentId) {
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
}

/// The tasks of a registration keyed by framework and task id.
fn reported_tasks(reg: &mut AgentRegistration) -> BTreeMap<(FrameworkId, TaskId), ReportedTask> {
    std::mem::take(&mut reg.tasks)
        .into_iter()
        .map(|t| ((t.framework.id.clone(), t.task.task_id.clone()), t))
        .collect()
}
