//! The agent's checkpoint: one JSON file under `<work_dir>/meta/`, written atomically (temp file,
//! fsync, rename), holding the agent id, every task not yet finished with (its framework, its
//! `TaskInfo`, container id, runtime and latest state) and the status-update streams.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use mesos_core::ids::{AgentId, TaskId};
use mesos_core::master::{FrameworkRef, TaskInfo};
use mesos_core::task::{StatusUpdateManager, TaskState};
use serde::{Deserialize, Serialize};

use super::AgentDaemonError;

/// One task as checkpointed.
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    /// The id the runtime knows this task's container by.
    pub fn runtime_task_id(&self) -> TaskId {
        if self.container_key.is_empty() {
            self.task.task_id.clone()
        } else {
            TaskId::new(self.container_key.as_str())
        }
    }
}

/// Everything the agent needs after a restart.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AgentCheckpoint {
    /// The id the master gave this agent.
    pub agent_id: Option<AgentId>,
    /// The name this agent's runtimes give their containers (stable across restarts).
    pub instance: String,
    /// Tasks whose terminal update is not yet acknowledged.
    pub tasks: Vec<TaskRecord>,
    /// The status-update streams.
    pub updates: StatusUpdateManager,
}

/// The checkpoint file of `work_dir`.
pub fn path(work_dir: &Path) -> PathBuf {
    work_dir.join("meta").join("agent.json")
}

/// Reads the checkpoint, `None` when there is none.
pub fn load(work_dir: &Path) -> Result<Option<AgentCheckpoint>, AgentDaemonError> {
    let p = path(work_dir);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(AgentDaemonError::Io { path: p, source }),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| AgentDaemonError::CorruptCheckpoint {
            path: p,
            reason: e.to_string(),
        })
}

/// The checkpoint as written: borrowed from the running agent, read back as [`AgentCheckpoint`].
#[derive(Serialize)]
pub struct CheckpointView<'a> {
    /// See [`AgentCheckpoint::agent_id`].
    pub agent_id: Option<&'a AgentId>,
    /// See [`AgentCheckpoint::instance`].
    pub instance: &'a str,
    /// See [`AgentCheckpoint::tasks`].
    pub tasks: Vec<&'a TaskRecord>,
    /// See [`AgentCheckpoint::updates`].
    pub updates: &'a StatusUpdateManager,
}

/// Writes the checkpoint atomically.
pub fn save(work_dir: &Path, cp: &impl Serialize) -> Result<(), AgentDaemonError> {
    let p = path(work_dir);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AgentDaemonError::Io { path, source }
    };
    let dir = p.parent().unwrap_or(work_dir);
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let bytes = serde_json::to_vec(cp).map_err(|e| AgentDaemonError::CorruptCheckpoint {
        path: p.clone(),
        reason: e.to_string(),
    })?;
    let tmp = p.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, &p).map_err(io(&p))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reports_corruption() {
        let dir = std::env::temp_dir().join(format!("agent-cp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(load(&dir).unwrap().is_none());
        let cp = AgentCheckpoint {
            agent_id: Some(AgentId::new("m-S1")),
            instance: "abc".into(),
            ..Default::default()
        };
        save(&dir, &cp).unwrap();
        let back = load(&dir).unwrap().unwrap();
        assert_eq!(back.agent_id, Some(AgentId::new("m-S1")));
        assert_eq!(back.instance, "abc");
        std::fs::write(path(&dir), b"{not json").unwrap();
        let err = load(&dir).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
