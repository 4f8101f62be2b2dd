//! ACCEPT and DECLINE: validating the offers and each operation, launching the valid tasks and
//! giving the rest back to the allocator with the framework's filter.

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;
use crate::allocator::Allocator;
use crate::ids::{AgentId, FrameworkId, OfferId, TaskId};
use crate::resources::Resources;
use crate::task::{Reason, TaskState, TaskStateMachine};
use crate::time::Time;

impl<A: Allocator> Master<A> {
    pub(super) fn accept(
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

    pub(super) fn validate_task(
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

    pub(super) fn launch(
        &mut self,
        now: Time,
        framework: &FrameworkId,
        role: &str,
        task: TaskInfo,
    ) {
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
}
