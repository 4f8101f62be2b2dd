//! The agent's checkpoint: one JSON file under `<work_dir>/meta/`, written atomically (temp file,
//! fsync, rename), holding the agent id, every task not yet finished with (its framework, its
//! `TaskInfo`, container id, runtime and latest state) and the status-update streams.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

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
    save_bytes(work_dir, &encode(work_dir, cp)?)
}

/// The checkpoint's bytes.
pub fn encode(work_dir: &Path, cp: &impl Serialize) -> Result<Vec<u8>, AgentDaemonError> {
    serde_json::to_vec(cp).map_err(|e| AgentDaemonError::CorruptCheckpoint {
        path: path(work_dir),
        reason: e.to_string(),
    })
}

/// Writes encoded checkpoint bytes atomically (temp file, fsync, rename).
pub fn save_bytes(work_dir: &Path, bytes: &[u8]) -> Result<(), AgentDaemonError> {
    let p = path(work_dir);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AgentDaemonError::Io { path, source }
    };
    let dir = p.parent().unwrap_or(work_dir);
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = p.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, &p).map_err(io(&p))?;
    Ok(())
}

#[derive(Default)]
struct WriterState {
    pending: Option<Vec<u8>>,
    closed: bool,
}

/// Writes checkpoints on a thread of its own, so the agent's task never waits for the disk
/// (an fsync can take tens of milliseconds, long enough to miss a fast master's pings).
///
/// Only the latest snapshot matters: one submitted while another is being written replaces
/// any older one still waiting. [`Writer::close`] writes what is pending, then stops.
pub struct Writer {
    shared: Arc<(Mutex<WriterState>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread for `work_dir`.
    pub fn start(work_dir: PathBuf) -> Result<Writer, AgentDaemonError> {
        let shared = Arc::new((Mutex::new(WriterState::default()), Condvar::new()));
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("agent-checkpoint".into())
            .spawn(move || loop {
                let (lock, cvar) = &*theirs;
                let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
                while st.pending.is_none() && !st.closed {
                    st = cvar.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                let Some(bytes) = st.pending.take() else {
                    return; // closed and nothing left
                };
                drop(st);
                if let Err(e) = save_bytes(&work_dir, &bytes) {
                    tracing::error!(error = %e, "cannot checkpoint the agent's state");
                }
            })
            .map_err(|source| AgentDaemonError::Io {
                path: PathBuf::from("agent-checkpoint thread"),
                source,
            })?;
        Ok(Writer {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues a snapshot (replacing one not yet written).
    pub fn submit(&self, bytes: Vec<u8>) {
        let (lock, cvar) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).pending = Some(bytes);
        cvar.notify_one();
    }

    /// Writes what is pending and stops the thread (blocking: call from a blocking context).
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let (lock, cvar) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        cvar.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
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
        // The writer thread: the last snapshot submitted is what ends up on disk.
        let w = Writer::start(dir.clone()).unwrap();
        for i in 0..20 {
            let cp = AgentCheckpoint {
                agent_id: Some(AgentId::new(format!("m-S{i}"))),
                instance: "abc".into(),
                ..Default::default()
            };
            w.submit(encode(&dir, &cp).unwrap());
        }
        w.close();
        let back = load(&dir).unwrap().unwrap();
        assert_eq!(back.agent_id, Some(AgentId::new("m-S19")));
        std::fs::write(path(&dir), b"{not json").unwrap();
        let err = load(&dir).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
