//! The agent protocol: the messages between the master and its agents.
//!
//! These are the wire types of our master <-> agent link (JSON over HTTP; Mesos' own agent
//! protocol is libprocess protobuf, which no outside client speaks, so the shape is ours). They
//! live here, below both the master state machine and the agent, so each side depends on the
//! protocol and not on the other's internals. [`crate::master`] re-exports them for code written
//! before the move.

use serde::{Deserialize, Serialize};

use crate::attributes::Attributes;
use crate::ids::{AgentId, ExecutorId, FrameworkId, TaskId};
use crate::master::{Address, FrameworkInfo, TaskInfo};
use crate::resources::Resources;
use crate::task::{StatusUuid, TaskState, TaskStatus};

/// What a framework needs to know on an agent to run its tasks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameworkRef {
    /// The framework's id.
    pub id: FrameworkId,
    /// Its info.
    pub info: FrameworkInfo,
}

/// A command from the master to an agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
// Messages are short-lived and moved, not stored in bulk: boxing would only add allocations.
#[allow(clippy::large_enum_variant)]
pub enum AgentCommand {
    /// Start a task.
    RunTask {
        /// Whose task it is.
        framework: FrameworkRef,
        /// The task.
        task: TaskInfo,
    },
    /// Kill a task.
    KillTask {
        /// The framework.
        framework_id: FrameworkId,
        /// The task.
        task_id: TaskId,
    },
    /// The framework acknowledged a status update.
    Acknowledge {
        /// The framework.
        framework_id: FrameworkId,
        /// The task.
        task_id: TaskId,
        /// The update's uuid.
        uuid: StatusUuid,
    },
    /// The framework is gone: kill all its tasks.
    ShutdownFramework {
        /// The framework.
        framework_id: FrameworkId,
    },
    /// Data for an executor.
    FrameworkMessage {
        /// The framework.
        framework_id: FrameworkId,
        /// The executor.
        executor_id: ExecutorId,
        /// The data (base64).
        data: String,
    },
    /// Are you there? (answer with [`AgentMessage::Pong`]).
    Ping,
}

/// A message from an agent to the master (after registration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AgentMessage {
    /// A reliable status update (it carries a uuid).
    StatusUpdate {
        /// Whose task.
        framework_id: FrameworkId,
        /// The update.
        status: TaskStatus,
    },
    /// The answer to a ping (any message also counts as a sign of life).
    Pong,
    /// An executor exited.
    ExecutorExited {
        /// Whose executor.
        framework_id: FrameworkId,
        /// The executor.
        executor_id: ExecutorId,
        /// Its exit status.
        status: i32,
    },
    /// Data from an executor to its scheduler.
    FrameworkMessage {
        /// The framework.
        framework_id: FrameworkId,
        /// The executor.
        executor_id: ExecutorId,
        /// The data (base64).
        data: String,
    },
}

/// A task an agent reports when it reregisters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportedTask {
    /// Whose task.
    pub framework: FrameworkRef,
    /// The task as launched.
    pub task: TaskInfo,
    /// Its latest state on the agent.
    pub state: TaskState,
}

/// An agent's (re)registration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentRegistration {
    /// The id it had before (reregistration), if any.
    #[serde(default)]
    pub id: Option<AgentId>,
    /// Its hostname.
    pub hostname: String,
    /// Its address.
    pub address: Address,
    /// Everything it offers.
    pub resources: Resources,
    /// Its attributes.
    #[serde(default)]
    pub attributes: Attributes,
    /// Tasks it runs (on reregistration).
    #[serde(default)]
    pub tasks: Vec<ReportedTask>,
    /// Its software version.
    #[serde(default)]
    pub version: String,
}
