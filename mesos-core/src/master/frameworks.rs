//! Frameworks: subscription, the one check every call passes, disconnection and removal.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::Rng;

use super::*;
use crate::allocator::Allocator;
use crate::ids::{FrameworkId, OfferId};
use crate::resources::validate_role;
use crate::task::TaskState;
use crate::time::Time;

impl<A: Allocator> Master<A> {
    pub(super) fn add_recovered_framework(
        &mut self,
        now: Time,
        id: FrameworkId,
        info: FrameworkInfo,
    ) {
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

    /// The one check every call of a framework passes before it is handled (the shell asks it
    /// too for the calls it answers itself): the framework is known and not removed, a scheduler
    /// is subscribed, and the request carries that subscription's `Mesos-Stream-Id`. A call on a
    /// stream that just closed is refused like any other call of an unsubscribed framework (403
    /// in Mesos); only a new SUBSCRIBE brings it back.
    pub fn check_subscription(
        &self,
        framework: &FrameworkId,
        stream_id: &str,
    ) -> Result<(), CallError> {
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
        Ok(())
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

    pub(super) fn remove_framework(&mut self, now: Time, id: &FrameworkId, why: &str) {
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
}
