//! The v1 task states and reasons.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! wire_enum {
    (
        $(#[$doc:meta])*
        $name:ident { $( $(#[$vdoc:meta])* $variant:ident = $wire:literal / $num:literal ),* $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vdoc])* #[serde(rename = $wire)] $variant, )*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The v1 wire name (e.g. `TASK_RUNNING`).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire,)* }
            }

            /// The protobuf number.
            pub fn number(self) -> i32 {
                match self { $($name::$variant => $num,)* }
            }

            /// The value with this wire name.
            pub fn from_wire(name: &str) -> Option<Self> {
                match name { $($wire => Some($name::$variant),)* _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// The state of a task (`TaskState` in v1 `mesos.proto`).
    TaskState {
        /// Created by the master, not yet started by the agent.
        Staging = "TASK_STAGING" / 6,
        /// The executor is starting it.
        Starting = "TASK_STARTING" / 0,
        /// Running.
        Running = "TASK_RUNNING" / 1,
        /// Being killed (frameworks with the TASK_KILLING_STATE capability).
        Killing = "TASK_KILLING" / 8,
        /// Exited with status 0.
        Finished = "TASK_FINISHED" / 2,
        /// Exited otherwise, or hit a limit.
        Failed = "TASK_FAILED" / 3,
        /// Killed on request.
        Killed = "TASK_KILLED" / 4,
        /// Invalid or unauthorized.
        Error = "TASK_ERROR" / 7,
        /// Lost (frameworks that are not partition-aware).
        Lost = "TASK_LOST" / 5,
        /// Dropped before it started (partition-aware).
        Dropped = "TASK_DROPPED" / 9,
        /// The agent cannot be reached (partition-aware); may come back.
        Unreachable = "TASK_UNREACHABLE" / 10,
        /// Gone for good (partition-aware).
        Gone = "TASK_GONE" / 11,
        /// Its agent was marked gone by an operator (partition-aware).
        GoneByOperator = "TASK_GONE_BY_OPERATOR" / 12,
        /// Unknown to the master (reconciliation answers only).
        Unknown = "TASK_UNKNOWN" / 13,
    }
}

impl TaskState {
    /// Terminal as Mesos' `protobuf::isTerminalState` says: FINISHED, FAILED, KILLED, ERROR,
    /// LOST, DROPPED, GONE, GONE_BY_OPERATOR. (UNREACHABLE is not terminal.)
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Finished
                | TaskState::Failed
                | TaskState::Killed
                | TaskState::Error
                | TaskState::Lost
                | TaskState::Dropped
                | TaskState::Gone
                | TaskState::GoneByOperator
        )
    }

    /// True when the master gives the task's resources back: every terminal state, and
    /// UNREACHABLE (the agent may never return, so its resources cannot stay booked).
    pub fn releases_resources(self) -> bool {
        self.is_terminal() || self == TaskState::Unreachable
    }
}

wire_enum! {
    /// Who produced a status update.
    Source {
        /// The master (reconciliation, agent loss, invalid launches); such updates carry no uuid.
        Master = "SOURCE_MASTER" / 0,
        /// The agent.
        Agent = "SOURCE_AGENT" / 1,
        /// The executor.
        Executor = "SOURCE_EXECUTOR" / 2,
    }
}

wire_enum! {
    /// Why a status update was sent (`TaskStatus.Reason`).
    Reason {
        /// The command executor failed.
        CommandExecutorFailed = "REASON_COMMAND_EXECUTOR_FAILED" / 0,
        /// The container could not be launched.
        ContainerLaunchFailed = "REASON_CONTAINER_LAUNCH_FAILED" / 21,
        /// The container hit a resource limit.
        ContainerLimitation = "REASON_CONTAINER_LIMITATION" / 19,
        /// The container hit its disk limit.
        ContainerLimitationDisk = "REASON_CONTAINER_LIMITATION_DISK" / 20,
        /// The container hit its memory limit (OOM).
        ContainerLimitationMemory = "REASON_CONTAINER_LIMITATION_MEMORY" / 8,
        /// The container was preempted.
        ContainerPreempted = "REASON_CONTAINER_PREEMPTED" / 17,
        /// Updating the container's resources failed.
        ContainerUpdateFailed = "REASON_CONTAINER_UPDATE_FAILED" / 22,
        /// The task ran past `max_completion_time`.
        MaxCompletionTimeReached = "REASON_MAX_COMPLETION_TIME_REACHED" / 33,
        /// The executor did not register in time.
        ExecutorRegistrationTimeout = "REASON_EXECUTOR_REGISTRATION_TIMEOUT" / 23,
        /// The executor did not reregister in time.
        ExecutorReregistrationTimeout = "REASON_EXECUTOR_REREGISTRATION_TIMEOUT" / 24,
        /// The executor terminated.
        ExecutorTerminated = "REASON_EXECUTOR_TERMINATED" / 1,
        /// The executor unregistered.
        ExecutorUnregistered = "REASON_EXECUTOR_UNREGISTERED" / 2,
        /// The framework was removed.
        FrameworkRemoved = "REASON_FRAMEWORK_REMOVED" / 3,
        /// Sandbox garbage collection failed.
        GcError = "REASON_GC_ERROR" / 4,
        /// The framework id is not valid.
        InvalidFrameworkid = "REASON_INVALID_FRAMEWORKID" / 5,
        /// The offers used were not valid.
        InvalidOffers = "REASON_INVALID_OFFERS" / 6,
        /// The I/O switchboard exited.
        IoSwitchboardExited = "REASON_IO_SWITCHBOARD_EXITED" / 27,
        /// The agent lost its master.
        MasterDisconnected = "REASON_MASTER_DISCONNECTED" / 7,
        /// A reconciliation answer.
        Reconciliation = "REASON_RECONCILIATION" / 9,
        /// The resources are unknown.
        ResourcesUnknown = "REASON_RESOURCES_UNKNOWN" / 18,
        /// The agent disconnected.
        AgentDisconnected = "REASON_AGENT_DISCONNECTED" / 10,
        /// The agent was removed (unreachable).
        AgentRemoved = "REASON_AGENT_REMOVED" / 11,
        /// The agent was removed by an operator.
        AgentRemovedByOperator = "REASON_AGENT_REMOVED_BY_OPERATOR" / 31,
        /// An unreachable agent reregistered.
        AgentReregistered = "REASON_AGENT_REREGISTERED" / 32,
        /// The agent restarted.
        AgentRestarted = "REASON_AGENT_RESTARTED" / 12,
        /// The agent is unknown.
        AgentUnknown = "REASON_AGENT_UNKNOWN" / 13,
        /// Killed while launching.
        TaskKilledDuringLaunch = "REASON_TASK_KILLED_DURING_LAUNCH" / 30,
        /// A check's status changed.
        TaskCheckStatusUpdated = "REASON_TASK_CHECK_STATUS_UPDATED" / 28,
        /// A health check's status changed.
        TaskHealthCheckStatusUpdated = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED" / 29,
        /// The task group is invalid.
        TaskGroupInvalid = "REASON_TASK_GROUP_INVALID" / 25,
        /// The task group is not authorized.
        TaskGroupUnauthorized = "REASON_TASK_GROUP_UNAUTHORIZED" / 26,
        /// The task is invalid.
        TaskInvalid = "REASON_TASK_INVALID" / 14,
        /// The task is not authorized.
        TaskUnauthorized = "REASON_TASK_UNAUTHORIZED" / 15,
        /// The task is unknown.
        TaskUnknown = "REASON_TASK_UNKNOWN" / 16,
    }
}

/// A transition the state machine refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// A terminal state is final.
    #[error("task is in terminal state {from} and cannot move to {to}")]
    FromTerminal {
        /// The terminal state.
        from: TaskState,
        /// The refused target.
        to: TaskState,
    },
    /// TASK_UNKNOWN only ever appears in reconciliation answers.
    #[error("TASK_UNKNOWN is a reconciliation answer, not a state a task can enter (from {from})")]
    ToUnknown {
        /// The current state.
        from: TaskState,
    },
}

/// One task's state, which never leaves a terminal state.
///
/// ```
/// use mesos_core::task::{TaskState, TaskStateMachine};
/// let mut t = TaskStateMachine::new();
/// t.apply(TaskState::Running).unwrap();
/// t.apply(TaskState::Finished).unwrap();
/// assert!(t.apply(TaskState::Running).is_err());
/// assert_eq!(t.state(), TaskState::Finished);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStateMachine {
    state: TaskState,
}

impl Default for TaskStateMachine {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskStateMachine {
    /// A task as the master creates it: TASK_STAGING.
    pub fn new() -> Self {
        TaskStateMachine {
            state: TaskState::Staging,
        }
    }

    /// A task known to be in `state` (e.g. recovered from an agent).
    pub fn with_state(state: TaskState) -> Self {
        TaskStateMachine { state }
    }

    /// The current state.
    pub fn state(&self) -> TaskState {
        self.state
    }

    /// Moves to `to`. Any move out of a non-terminal state is allowed, as in Mesos (including
    /// UNREACHABLE back to RUNNING when an agent reregisters); staying put is a no-op.
    pub fn apply(&mut self, to: TaskState) -> Result<(), TransitionError> {
        if self.state.is_terminal() && to != self.state {
            return Err(TransitionError::FromTerminal {
                from: self.state,
                to,
            });
        }
        if to == TaskState::Unknown {
            return Err(TransitionError::ToUnknown { from: self.state });
        }
        self.state = to;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mesos' `protobuf::isTerminalState` and the master's resource recovery, state by state.
    #[test]
    fn terminal_and_releasing_states_match_mesos() {
        use TaskState::*;
        let table = [
            (Staging, 6, false, false),
            (Starting, 0, false, false),
            (Running, 1, false, false),
            (Killing, 8, false, false),
            (Finished, 2, true, true),
            (Failed, 3, true, true),
            (Killed, 4, true, true),
            (Error, 7, true, true),
            (Lost, 5, true, true),
            (Dropped, 9, true, true),
            (Unreachable, 10, false, true),
            (Gone, 11, true, true),
            (GoneByOperator, 12, true, true),
            (Unknown, 13, false, false),
        ];
        assert_eq!(table.len(), TaskState::ALL.len());
        for (state, number, terminal, releases) in table {
            assert_eq!(state.number(), number, "{state}");
            assert_eq!(state.is_terminal(), terminal, "{state}");
            assert_eq!(state.releases_resources(), releases, "{state}");
            assert_eq!(TaskState::from_wire(state.as_str()), Some(state));
        }
        assert_eq!(Reason::ContainerLimitationMemory.number(), 8);
        assert_eq!(
            Reason::AgentReregistered.as_str(),
            "REASON_AGENT_REREGISTERED"
        );
    }
}
