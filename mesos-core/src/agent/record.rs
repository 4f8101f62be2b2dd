//! One task as the agent keeps (and checkpoints) it, and the places on disk named after it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::ids::{AgentId, FrameworkId, TaskId};
use crate::master::{FrameworkRef, TaskInfo};
use crate::task::TaskState;

/// A task's key: task ids are unique per framework.
pub type TaskKey = (FrameworkId, TaskId);

/// One task as checkpointed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Whose task.
    pub framework: FrameworkRef,
    /// The task as launched.
    pub task: TaskInfo,
    /// The container's id (the last component of the sandbox path).
    pub container_id: String,
    /// The key the runtime knows the container by (`<task>.<12 hex of the container id>`, so
    /// equal task ids of two frameworks, or of two agents on one host, never share a container,
    /// a cgroup or a Docker name). Empty in older checkpoints: the task id.
    #[serde(default)]
    pub container_key: String,
    /// The runtime that runs it (`mesos`, `docker`, `lxc`), `None` if it never got one.
    pub runtime: Option<String>,
    /// The sandbox on the host.
    pub sandbox: PathBuf,
    /// The latest state the agent produced.
    pub state: TaskState,
}

impl TaskRecord {
    /// The task's key.
    pub fn key(&self) -> TaskKey {
        (self.framework.id.clone(), self.task.task_id.clone())
    }

    /// The id the runtime knows this task's container by.
    pub fn runtime_task_id(&self) -> TaskId {
        if self.container_key.is_empty() {
            self.task.task_id.clone()
        } else {
            TaskId::new(self.container_key.as_str())
        }
    }
}

/// The key the runtime knows a task's container by: `<task>.<first 12 of the container id>`.
pub fn container_key(task: &TaskId, container_id: &str) -> String {
    let short: String = container_id.chars().take(12).collect();
    format!("{task}.{short}")
}

/// A framework's `executors` directory: `<work_dir>/slaves/<agent>/frameworks/<fw>/executors`.
pub fn executors_dir(work_dir: &Path, agent: &AgentId, framework: &FrameworkRef) -> PathBuf {
    work_dir
        .join("slaves")
        .join(path_safe(agent.as_str()))
        .join("frameworks")
        .join(path_safe(framework.id.as_str()))
        .join("executors")
}

/// The sandbox of a task's run: `<work_dir>/slaves/<agent>/frameworks/<fw>/executors/<task>/runs/<container>`.
pub fn sandbox_path(
    work_dir: &Path,
    agent: &AgentId,
    framework: &FrameworkRef,
    task: &TaskInfo,
    container_id: &str,
) -> PathBuf {
    executors_dir(work_dir, agent, framework)
        .join(path_safe(task.task_id.as_str()))
        .join("runs")
        .join(path_safe(container_id))
}

/// Whether `sandbox` is a run directory (`.../runs/<container>`) under `work_dir/slaves`: the
/// only kind of directory the agent ever deletes.
pub fn is_run_dir(work_dir: &Path, sandbox: &Path) -> bool {
    sandbox.starts_with(work_dir.join("slaves"))
        && sandbox
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|n| n == "runs")
}

/// Ids are free text; a path component must not climb out or hold a separator.
fn path_safe(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => format!("_{cleaned}"),
        _ => cleaned,
    }
}

/// The grace period of a kill: the task's `kill_policy.grace_period`, else `default`.
pub fn kill_grace(task: &TaskInfo, default: Duration) -> Duration {
    task.kill_policy
        .as_ref()
        .and_then(|p| p.get("grace_period"))
        .and_then(|g| g.get("nanoseconds"))
        .and_then(Json::as_i64)
        .filter(|n| *n >= 0)
        .map(|n| Duration::from_nanos(n as u64))
        .unwrap_or(default)
}
