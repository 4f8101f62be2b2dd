//! Tasks: the status updates the master itself generates, kill, acknowledgement and
//! reconciliation.

use super::*;
use crate::allocator::Allocator;
use crate::ids::{AgentId, FrameworkId, TaskId};
use crate::task::{Reason, Source, StatusUuid, TaskState, TaskStatus};
use crate::time::Time;

impl<A: Allocator> Master<A> {
    /// A status update the master itself generates (no uuid; not acknowledged).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn master_update(
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

    pub(super) fn kill(
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

    pub(super) fn acknowledge(
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

    pub(super) fn reconcile(
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

    /// Moves a task to a terminal state decided by the master and tells its framework.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn terminate_task(
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
}
