//! Scheduler calls: [`Master::handle_call`] dispatches each call of a subscribed framework.

use super::*;
use crate::allocator::Allocator;
use crate::ids::{FrameworkId, TaskId};
use crate::resources::validate_role;
use crate::time::Time;

impl<A: Allocator> Master<A> {
    /// A call from a subscribed framework. `stream_id` is the request's `Mesos-Stream-Id`; the
    /// call is refused unless [`Master::check_subscription`] passes.
    pub fn handle_call(
        &mut self,
        now: Time,
        framework: &FrameworkId,
        stream_id: &str,
        call: Call,
    ) -> Result<(), CallError> {
        self.count_call(call.name());
        self.check_subscription(framework, stream_id)?;
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

    pub(super) fn check_roles(
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
}
