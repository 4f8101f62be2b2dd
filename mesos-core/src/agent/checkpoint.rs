//! What the agent checkpoints, as bytes: `agent.json` (the agent id and the runtime instance)
//! and the lines of the task journal (`{"put":{..}}` or `{"del":{..}}`, one per change of a
//! task or of its status-update stream). The agent core decides when to write what
//! ([`super::Agent`]); the shell only puts the bytes on disk and reads them back.
//!
//! The first line written for a task carries its whole record (`TaskInfo`, sandbox,
//! container); later ones only its state, its runtime and its unacknowledged updates.
//! [`Replay`] folds lines back into tasks: the last line about a task wins.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::record::{TaskKey, TaskRecord};
use crate::ids::{AgentId, FrameworkId, TaskId};
use crate::task::{TaskState, TaskStatus};

/// What `agent.json` holds now.
#[derive(Serialize)]
struct MetaView<'a> {
    agent_id: Option<&'a AgentId>,
    instance: &'a str,
}

/// The bytes of `agent.json`.
pub fn encode_meta(agent_id: Option<&AgentId>, instance: &str) -> Vec<u8> {
    serde_json::to_vec(&MetaView { agent_id, instance }).unwrap_or_default()
}

/// One task (or an update stream without a task) as journaled, borrowed from the agent.
#[derive(Serialize)]
pub struct EntryView<'a> {
    /// The framework.
    pub framework: &'a FrameworkId,
    /// The task.
    pub task: &'a TaskId,
    /// The whole record: on the first line about a task (and in snapshots).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<&'a TaskRecord>,
    /// The task's latest state, when the record is not repeated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<TaskState>,
    /// Its runtime, when the record is not repeated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<&'a str>,
    /// The task's unacknowledged updates, head first.
    pub updates: Vec<&'a TaskStatus>,
}

#[derive(Serialize)]
struct KeyView<'a> {
    framework: &'a FrameworkId,
    task: &'a TaskId,
}

#[derive(Serialize)]
enum LineView<'a> {
    #[serde(rename = "put")]
    Put(EntryView<'a>),
    #[serde(rename = "del")]
    Del(KeyView<'a>),
}

#[derive(Deserialize)]
struct Entry {
    framework: FrameworkId,
    task: TaskId,
    #[serde(default)]
    record: Option<TaskRecord>,
    #[serde(default)]
    state: Option<TaskState>,
    #[serde(default)]
    runtime: Option<String>,
    #[serde(default)]
    updates: Vec<TaskStatus>,
}

#[derive(Deserialize)]
struct Key {
    framework: FrameworkId,
    task: TaskId,
}

#[derive(Deserialize)]
enum Line {
    #[serde(rename = "put")]
    Put(Box<Entry>),
    #[serde(rename = "del")]
    Del(Key),
}

/// Appends a `put` line to `buf`.
pub fn put_line(buf: &mut Vec<u8>, entry: EntryView<'_>) {
    write_line(buf, &LineView::Put(entry));
}

/// Appends a `del` line (the task and its stream are gone) to `buf`.
pub fn del_line(buf: &mut Vec<u8>, framework: &FrameworkId, task: &TaskId) {
    write_line(buf, &LineView::Del(KeyView { framework, task }));
}

fn write_line(buf: &mut Vec<u8>, line: &LineView<'_>) {
    let start = buf.len();
    match serde_json::to_writer(&mut *buf, line) {
        Ok(()) => buf.push(b'\n'),
        // Cannot happen for these types (string keys only); never leave half a line.
        Err(_) => buf.truncate(start),
    }
}

/// The tasks and unacknowledged updates a journal describes, in key order: each key's latest
/// record (`None` for an update stream without a task) and its pending updates.
#[derive(Debug, Default)]
pub struct Replay {
    /// By task.
    pub entries: BTreeMap<TaskKey, (Option<TaskRecord>, Vec<TaskStatus>)>,
}

impl Replay {
    /// Applies one journal line (without its newline).
    pub fn apply(&mut self, line: &[u8]) -> Result<(), serde_json::Error> {
        match serde_json::from_slice::<Line>(line)? {
            Line::Del(k) => {
                self.entries.remove(&(k.framework, k.task));
            }
            Line::Put(e) => {
                let slot = self.entries.entry((e.framework, e.task)).or_default();
                match e.record {
                    Some(rec) => slot.0 = Some(rec),
                    None => {
                        if let (Some(rec), Some(state)) = (slot.0.as_mut(), e.state) {
                            rec.state = state;
                            if e.runtime.is_some() {
                                rec.runtime = e.runtime;
                            }
                        }
                    }
                }
                slot.1 = e.updates;
            }
        }
        Ok(())
    }
}

/// One checkpoint write, in the order the core emits them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Replace `agent.json`.
    Meta(Vec<u8>),
    /// Append lines to the journal (one fsync).
    Append(Vec<u8>),
    /// Replace the journal with a snapshot.
    Replace(Vec<u8>),
}

impl Write {
    /// The bytes written.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Write::Meta(b) | Write::Append(b) | Write::Replace(b) => b,
        }
    }
}

impl Replay {
    /// What the replayed journal describes, as the agent restores it: the tasks, and their
    /// streams rebuilt by queueing each one's unacknowledged updates again, in order (`now`
    /// arms their retries).
    pub fn into_restored(
        self,
        agent_id: Option<AgentId>,
        instance: String,
        now: crate::time::Time,
    ) -> super::Restored {
        let mut updates = crate::task::StatusUpdateManager::new();
        let mut tasks = Vec::new();
        let mut orphan_streams = Vec::new();
        for ((framework, task), (rec, pending)) in self.entries {
            match rec {
                Some(rec) => tasks.push(rec),
                None if pending.is_empty() => {}
                None => orphan_streams.push((framework.clone(), task)),
            }
            for status in pending {
                // Refused only after a terminal update on the stream: a journal never holds
                // one after it.
                let _ = updates.update(now, framework.clone(), status);
            }
        }
        super::Restored {
            agent_id,
            instance,
            tasks,
            updates,
            orphan_streams,
        }
    }
}
