//! The agent's checkpoint under `<work_dir>/meta/`, written on a thread of its own:
//!
//! - `agent.json`: the agent id and the runtime instance name, rewritten atomically (temp file,
//!   fsync, rename) when they change.
//! - `tasks.journal`: one JSON line per change of a task or of its status-update stream
//!   (`{"put":{..}}` or `{"del":{..}}`), appended in batches with one fsync per batch (a
//!   [`LineJournal`] with [`Durability::Fsync`] and [`Damage::TornTail`]). The lines, and which
//!   batch to write when, are the agent core's ([`mesos_core::agent`]); it keeps at most one
//!   batch in flight; the next one carries every task that changed meanwhile,
//!   once. So a checkpoint costs in proportion to the tasks that changed, not to all the agent's
//!   tasks. The first line written for a task carries its whole record (`TaskInfo`, sandbox,
//!   container); later ones only its state and its unacknowledged updates. When the journal has
//!   grown well past what it describes, it is replaced by a snapshot (one full `put` per task;
//!   temp file, fsync, rename).
//!
//! Reading replays the journal (the last line about a task wins; a torn last line, from a crash
//! in the middle of an append, is ignored) and rebuilds the status-update streams by queueing
//! each task's unacknowledged updates again, in order. Checkpoints of earlier versions (everything
//! in `agent.json`) are still read.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use mesos_core::ids::{AgentId, FrameworkId, TaskId};
use mesos_core::time::Time;
use mesos_runtime::{Damage, Durability, JournalError, LineJournal};
use serde::Deserialize;

use super::AgentDaemonError;

pub use mesos_core::agent::{
    del_line, encode_meta, put_line, EntryView, Replay, Restored as AgentCheckpoint, TaskRecord,
};

/// `agent.json`: today only the id and the instance; in a checkpoint of an earlier version also
/// the tasks and the streams (a `StatusUpdateManager` as a list of `{framework, task, stream}`).
#[derive(Deserialize)]
struct MetaFile {
    agent_id: Option<AgentId>,
    instance: String,
    #[serde(default)]
    tasks: Vec<TaskRecord>,
    #[serde(default)]
    updates: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct OldStreamKey {
    framework: FrameworkId,
    task: TaskId,
}

fn from_meta_file(m: MetaFile, p: &Path) -> Result<AgentCheckpoint, AgentDaemonError> {
    let mut cp = AgentCheckpoint {
        agent_id: m.agent_id,
        instance: m.instance,
        tasks: m.tasks,
        ..Default::default()
    };
    if let Some(v) = m.updates {
        let keys: Vec<OldStreamKey> = serde_json::from_value(v["streams"].clone())
            .map_err(|e| corrupt(p, format!("updates: {e}")))?;
        cp.orphan_streams = keys
            .into_iter()
            .map(|k| (k.framework, k.task))
            .filter(|(f, t)| {
                !cp.tasks
                    .iter()
                    .any(|r| &r.framework.id == f && &r.task.task_id == t)
            })
            .collect();
        cp.updates = serde_json::from_value(v).map_err(|e| corrupt(p, format!("updates: {e}")))?;
    }
    Ok(cp)
}

/// The small checkpoint file of `work_dir` (agent id and instance).
pub fn path(work_dir: &Path) -> PathBuf {
    work_dir.join("meta").join("agent.json")
}

/// The task journal of `work_dir`.
pub fn journal_path(work_dir: &Path) -> PathBuf {
    work_dir.join("meta").join("tasks.journal")
}

fn corrupt(p: &Path, reason: String) -> AgentDaemonError {
    AgentDaemonError::CorruptCheckpoint {
        path: p.to_path_buf(),
        reason,
    }
}

fn read_optional(p: &Path) -> Result<Option<Vec<u8>>, AgentDaemonError> {
    match std::fs::read(p) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AgentDaemonError::Io {
            path: p.to_path_buf(),
            source,
        }),
    }
}

/// The agent's task journal: every batch on disk before its updates are forwarded, and only a
/// torn last line forgiven (anything else wrong is a corrupt checkpoint the agent refuses to
/// start from, rather than forgetting tasks).
fn task_journal(work_dir: &Path) -> LineJournal {
    LineJournal::new(journal_path(work_dir), Durability::Fsync, Damage::TornTail)
}

fn journal_error(e: JournalError) -> AgentDaemonError {
    match e {
        JournalError::Io { path, source } => AgentDaemonError::Io { path, source },
        JournalError::Corrupt { path, line, reason } => AgentDaemonError::CorruptCheckpoint {
            path,
            reason: format!("line {line}: {reason}"),
        },
    }
}

/// Reads the checkpoint, `None` when there is none. `now` arms the rebuilt streams' retries.
pub fn load(work_dir: &Path, now: Time) -> Result<Option<AgentCheckpoint>, AgentDaemonError> {
    let p = path(work_dir);
    let meta = read_optional(&p)?;
    let journal = task_journal(work_dir);
    let mut replayed = Replay::default();
    let read = journal
        .read(|line| replayed.apply(line).map_err(|e| e.to_string()))
        .map_err(journal_error)?;
    let cp = match &meta {
        Some(bytes) => from_meta_file(
            serde_json::from_slice::<MetaFile>(bytes).map_err(|e| corrupt(&p, e.to_string()))?,
            &p,
        )?,
        None if read.is_none() => return Ok(None),
        None => AgentCheckpoint::default(),
    };
    if read.is_none() {
        // Nothing journaled yet: an `agent.json` of an earlier version holds the tasks.
        return Ok(Some(cp));
    }
    let cp = replayed.into_restored(cp.agent_id, cp.instance, now);
    Ok(Some(cp))
}

/// Writes `bytes` to `p` atomically (temp file, fsync, rename, fsync of the directory).
pub fn save_bytes(p: &Path, bytes: &[u8]) -> Result<(), AgentDaemonError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AgentDaemonError::Io { path, source }
    };
    let dir = p.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut tmp = p.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, p).map_err(io(p))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// One write for the [`Writer`].
#[derive(Debug)]
pub enum Job {
    /// Replace `agent.json`.
    Meta(Vec<u8>),
    /// Append lines to the journal.
    Append(Vec<u8>),
    /// Replace the journal with a snapshot.
    Replace(Vec<u8>),
}

#[derive(Default)]
struct WriterState {
    queue: VecDeque<Job>,
    closed: bool,
}

/// What the writer thread shares with the agent.
#[derive(Default)]
struct Progress {
    completed: AtomicU64,
    journal_failed: AtomicBool,
    meta_failed: AtomicBool,
    done: tokio::sync::Notify,
}

/// Writes checkpoints on a thread of its own, in the order submitted, so the agent's task never
/// waits for the disk (an fsync can take tens of milliseconds, long enough to miss a fast
/// master's pings). It says when it is done with what was submitted ([`Writer::busy`],
/// [`Writer::idle`]), so the agent can keep one write in flight and gather everything that
/// changes meanwhile into the next. [`Writer::close`] writes what is queued, then stops.
pub struct Writer {
    shared: Arc<(Mutex<WriterState>, Condvar)>,
    progress: Arc<Progress>,
    submitted: u64,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Files {
    work_dir: PathBuf,
    journal: LineJournal,
}

impl Files {
    fn run(&mut self, job: Job, progress: &Progress) {
        let (result, failed) = match &job {
            Job::Meta(b) => (save_bytes(&path(&self.work_dir), b), &progress.meta_failed),
            Job::Append(b) => (
                self.journal.append(b).map_err(journal_error),
                &progress.journal_failed,
            ),
            Job::Replace(b) => (
                self.journal.replace(b).map_err(journal_error),
                &progress.journal_failed,
            ),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot checkpoint the agent's state");
            failed.store(true, Ordering::SeqCst);
        }
    }
}

impl Writer {
    /// Starts the writer thread for `work_dir`.
    pub fn start(work_dir: PathBuf) -> Result<Writer, AgentDaemonError> {
        let shared = Arc::new((Mutex::new(WriterState::default()), Condvar::new()));
        let progress = Arc::new(Progress::default());
        let theirs = shared.clone();
        let their_progress = progress.clone();
        let mut files = Files {
            journal: task_journal(&work_dir),
            work_dir,
        };
        let thread = std::thread::Builder::new()
            .name("agent-checkpoint".into())
            .spawn(move || loop {
                let (lock, cvar) = &*theirs;
                let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
                while st.queue.is_empty() && !st.closed {
                    st = cvar.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                let Some(job) = st.queue.pop_front() else {
                    return; // closed and nothing left
                };
                drop(st);
                files.run(job, &their_progress);
                their_progress.completed.fetch_add(1, Ordering::SeqCst);
                their_progress.done.notify_one();
            })
            .map_err(|source| AgentDaemonError::Io {
                path: PathBuf::from("agent-checkpoint thread"),
                source,
            })?;
        Ok(Writer {
            shared,
            progress,
            submitted: 0,
            thread: Some(thread),
        })
    }

    /// Queues a write (after those already queued).
    pub fn submit(&mut self, job: Job) {
        let (lock, cvar) = &*self.shared;
        lock.lock()
            .unwrap_or_else(|e| e.into_inner())
            .queue
            .push_back(job);
        self.submitted += 1;
        cvar.notify_one();
    }

    /// How many writes were submitted so far.
    pub fn submitted(&self) -> u64 {
        self.submitted
    }

    /// How many writes are done (in the order submitted).
    pub fn completed(&self) -> u64 {
        self.progress.completed.load(Ordering::SeqCst)
    }

    /// Whether a journal write failed and no snapshot was asked for since (see
    /// [`Writer::take_journal_failure`]): what it held is not on disk.
    pub fn journal_failed(&self) -> bool {
        self.progress.journal_failed.load(Ordering::SeqCst)
    }

    /// Whether an `agent.json` write failed and was not taken yet (see
    /// [`Writer::take_meta_failure`]).
    pub fn meta_failed(&self) -> bool {
        self.progress.meta_failed.load(Ordering::SeqCst)
    }

    /// Whether a submitted write is not done yet.
    pub fn busy(&self) -> bool {
        self.progress.completed.load(Ordering::SeqCst) < self.submitted
    }

    /// Resolves after the writer finished a write (possibly one already finished: check
    /// [`Writer::busy`] again).
    pub async fn idle(&self) {
        self.progress.done.notified().await
    }

    /// Whether a journal write failed since the last call (the journal may miss lines: write a
    /// snapshot).
    pub fn take_journal_failure(&self) -> bool {
        self.progress.journal_failed.swap(false, Ordering::SeqCst)
    }

    /// Whether an `agent.json` write failed since the last call.
    pub fn take_meta_failure(&self) -> bool {
        self.progress.meta_failed.swap(false, Ordering::SeqCst)
    }

    /// Writes what is queued and stops the thread (blocking: call from a blocking context).
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
    use mesos_core::master::{FrameworkInfo, FrameworkRef};
    use mesos_core::task::{StatusUpdateManager, StatusUuid, TaskState, TaskStatus};
    use serde::Serialize;

    use super::*;

    fn record(fw: &str, task: &str) -> TaskRecord {
        TaskRecord {
            framework: FrameworkRef {
                id: FrameworkId::new(fw),
                info: FrameworkInfo::default(),
            },
            task: serde_json::from_value(serde_json::json!({
                "name": task, "task_id": {"value": task}, "agent_id": {"value": "a"},
                "command": {"value": "true"}
            }))
            .unwrap(),
            container_id: format!("c-{task}"),
            container_key: String::new(),
            runtime: None,
            sandbox: PathBuf::from("/sandbox"),
            state: TaskState::Staging,
        }
    }

    fn status(task: &str, state: TaskState, uuid: u128) -> TaskStatus {
        TaskStatus::new(TaskId::new(task), state).with_uuid(StatusUuid::from_u128(uuid))
    }

    #[test]
    fn journal_replays_puts_and_dels_and_ignores_a_torn_last_line() {
        let dir = std::env::temp_dir().join(format!("agent-cp-j-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(load(&dir, Time::ZERO).unwrap().is_none());
        let fw = FrameworkId::new("f");
        let (a, b, c) = (TaskId::new("a"), TaskId::new("b"), TaskId::new("c"));
        let (ra, rb, rc) = (record("f", "a"), record("f", "b"), record("f", "c"));
        let (s1, s2, s3) = (
            status("a", TaskState::Starting, 1),
            status("a", TaskState::Running, 2),
            status("b", TaskState::Finished, 3),
        );
        let mut buf = Vec::new();
        for (key, rec, updates) in [(&a, &ra, vec![]), (&b, &rb, vec![]), (&c, &rc, vec![])] {
            let e = EntryView {
                framework: &fw,
                task: key,
                record: Some(rec),
                state: None,
                runtime: None,
                updates,
            };
            put_line(&mut buf, e);
        }
        let mut w = Writer::start(dir.clone()).unwrap();
        w.submit(Job::Replace(buf));
        w.submit(Job::Meta(encode_meta(Some(&AgentId::new("m-S1")), "inst")));
        // Later lines: state and updates only; c is gone.
        let mut buf = Vec::new();
        let e = EntryView {
            framework: &fw,
            task: &a,
            record: None,
            state: Some(TaskState::Running),
            runtime: Some("mesos"),
            updates: vec![&s1, &s2],
        };
        put_line(&mut buf, e);
        let e = EntryView {
            framework: &fw,
            task: &b,
            record: None,
            state: Some(TaskState::Finished),
            runtime: None,
            updates: vec![&s3],
        };
        put_line(&mut buf, e);
        del_line(&mut buf, &fw, &c);
        w.submit(Job::Append(buf));
        w.close();

        let back = load(&dir, Time::ZERO).unwrap().unwrap();
        assert_eq!(back.agent_id, Some(AgentId::new("m-S1")));
        assert_eq!(back.instance, "inst");
        let got: Vec<_> = back
            .tasks
            .iter()
            .map(|t| (t.task.task_id.as_str(), t.state, t.runtime.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", TaskState::Running, Some("mesos")),
                ("b", TaskState::Finished, None)
            ]
        );
        let pending: Vec<_> = back
            .updates
            .pending(&fw, &a)
            .iter()
            .map(|s| s.state)
            .collect();
        assert_eq!(pending, vec![TaskState::Starting, TaskState::Running]);
        assert_eq!(back.updates.stream_count(), 2);
        // `agent.json` stays readable on its own (tests and tools read the instance from it).
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path(&dir)).unwrap()).unwrap();
        assert_eq!(meta["instance"], "inst");

        // A torn last line is ignored; a bad line in the middle is corruption.
        let jp = journal_path(&dir);
        let mut bytes = std::fs::read(&jp).unwrap();
        bytes.extend_from_slice(br#"{"del":{"framework":{"val"#);
        std::fs::write(&jp, &bytes).unwrap();
        assert_eq!(load(&dir, Time::ZERO).unwrap().unwrap().tasks.len(), 2);
        bytes.extend_from_slice(b"\n{\"put\":{}}\n");
        std::fs::write(&jp, &bytes).unwrap();
        let err = load(&dir, Time::ZERO).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
        std::fs::write(path(&dir), b"{not json").unwrap();
        let err = load(&dir, Time::ZERO).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_checkpoint_of_the_earlier_single_file_format_is_read() {
        let dir = std::env::temp_dir().join(format!("agent-cp-old-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let fw = FrameworkId::new("f");
        let mut updates = StatusUpdateManager::new();
        updates
            .update(Time::ZERO, fw.clone(), status("a", TaskState::Running, 7))
            .unwrap();
        #[derive(Serialize)]
        struct Old<'a> {
            agent_id: Option<AgentId>,
            instance: &'a str,
            tasks: Vec<TaskRecord>,
            updates: &'a StatusUpdateManager,
        }
        let old = Old {
            agent_id: Some(AgentId::new("m-S2")),
            instance: "old",
            tasks: vec![record("f", "a")],
            updates: &updates,
        };
        save_bytes(&path(&dir), &serde_json::to_vec(&old).unwrap()).unwrap();
        let back = load(&dir, Time::ZERO).unwrap().unwrap();
        assert_eq!(back.agent_id, Some(AgentId::new("m-S2")));
        assert_eq!(back.tasks.len(), 1);
        assert_eq!(back.updates.pending(&fw, &TaskId::new("a")).len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
