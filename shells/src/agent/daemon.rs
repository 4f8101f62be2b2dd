//! The one task that owns the agent's state: tasks, the status-update streams and the
//! checkpoint. It `select!`s over a closed set of inputs (commands from the master, launch and
//! termination results from workers, queries from the HTTP server, the retry timer, shutdown),
//! drains the [`StatusUpdateManager`] after each and sleeps until its next retry.
//!
//! Runtime calls (launch, wait, kill) run in worker tasks that report back as inputs, so a slow
//! Docker pull never holds up a PING.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mesos_core::attributes::Attributes;
use mesos_core::ids::{AgentId, ExecutorId, FrameworkId, TaskId};
use mesos_core::master::{
    Address, AgentCommand, AgentMessage, AgentRegistration, FrameworkRef, ReportedTask, TaskInfo,
};
use mesos_core::resources::{Resources, Value};
use mesos_core::task::{
    AckOutcome, Reason, Source, StatusUpdateManager, StatusUuid, TaskState, TaskStatus,
};
use mesos_core::time::Time;
use mesos_runtime::{ContainerRuntime, Termination};
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use super::checkpoint::{self, AgentCheckpoint, EntryView, Job, TaskRecord};
use super::fetcher::{fetch_all, parse_uris};
use super::health::{self, Health, HealthCheck, Verdict};
use super::spec::{executors_dir, sandbox_path, task_spec, SpecContext};
use super::AgentDaemonError;

/// Sandboxes waiting for deletion at most; beyond it the oldest go early.
pub const MAX_GC_QUEUE: usize = 100_000;

/// The journal is replaced by a snapshot once it has grown past this many bytes and past
/// [`COMPACT_RATIO`] times the size of the last snapshot.
pub const COMPACT_MIN_BYTES: usize = 4 << 20;

/// Checkpoint writes start at most this often (each ends in an fsync); what changes in between
/// goes into the next write. The checkpoint is written behind the agent's work anyway: this
/// only widens what a crash can lose by as much.
pub const MIN_CHECKPOINT_INTERVAL: Duration = Duration::from_millis(10);

/// See [`COMPACT_MIN_BYTES`].
pub const COMPACT_RATIO: usize = 4;

/// Messages waiting for room in the sender's queue, at most (beyond, updates wait for their
/// retry and pongs are dropped). Each update stream has one update in flight, so this is only
/// reached with that many tasks changing state at once.
pub const MAX_OUTBOX: usize = 64 * 1024;

/// The version the agent reports.
pub const VERSION: &str = "1.11.0";

/// A task's key: tasks ids are unique per framework.
pub type TaskKey = (FrameworkId, TaskId);

/// Everything the agent task reacts to.
#[derive(Debug)]
pub enum Input {
    /// A command from the master's stream.
    Command(Box<AgentCommand>),
    /// The connection task is about to (re)register and needs the current registration.
    RegistrationWanted(oneshot::Sender<AgentRegistration>),
    /// The master accepted the registration.
    Registered(AgentId),
    /// The command stream is open.
    StreamOpened,
    /// The command stream dropped (the connection task reconnects).
    StreamClosed,
    /// The master removed this agent for good.
    Removed(String),
    /// The master refused the registration as invalid (400).
    Refused(String),
    /// A launch finished.
    Launched {
        /// The task.
        key: TaskKey,
        /// Its container.
        container_id: String,
        /// `Err` holds the reason the launch failed.
        result: Result<(), String>,
    },
    /// A container ended.
    Terminated {
        /// The task.
        key: TaskKey,
        /// Its container.
        container_id: String,
        /// How, or why it could not be known.
        result: Result<Termination, String>,
    },
    /// A health check's result.
    Health {
        /// The task.
        key: TaskKey,
        /// Its container.
        container_id: String,
        /// `Err` says why the check failed.
        result: Result<(), String>,
    },
    /// `/state` wants a snapshot.
    State(oneshot::Sender<Json>),
    /// `/metrics/snapshot` wants the metrics.
    Metrics(oneshot::Sender<Json>),
}

struct Task {
    rec: TaskRecord,
    launched: bool,
    kill_requested: bool,
    terminated: bool,
    /// Its health check, if it has one (and the checker's handle while it runs).
    health_check: Option<HealthCheck>,
    health: Health,
    checker: Option<AbortHandle>,
    /// When checking started (the grace period counts from here).
    checking_since: Option<Instant>,
    /// Why the agent itself killed the task (failed health checks).
    kill_reason: Option<String>,
    /// Whether the journal holds its whole record (later lines carry only what changes).
    journaled: bool,
}

impl Task {
    fn new(rec: TaskRecord) -> Task {
        let terminated = rec.state.is_terminal();
        Task {
            rec,
            launched: false,
            kill_requested: false,
            terminated,
            health_check: None,
            health: Health::default(),
            checker: None,
            checking_since: None,
            kill_reason: None,
            journaled: false,
        }
    }
}

/// What the agent announces about itself.
pub struct Identity {
    /// Hostname.
    pub hostname: String,
    /// Address (ip and HTTP port).
    pub address: Address,
    /// Resources.
    pub resources: Resources,
    /// Attributes.
    pub attributes: Attributes,
    /// The master's URL (for `/state`).
    pub master: String,
    /// Flags for `/state`.
    pub flags: Json,
}

/// Settings of the agent task.
pub struct Settings {
    /// The work directory.
    pub work_dir: PathBuf,
    /// Default kill grace period.
    pub grace: Duration,
    /// Whether tasks run as their framework's user.
    pub switch_user: bool,
    /// Kill every task on shutdown.
    pub kill_tasks_on_shutdown: bool,
    /// Completed tasks kept for `/state`.
    pub max_completed: usize,
    /// How long finished tasks' sandboxes are kept.
    pub gc_delay: Duration,
    /// The enabled containerizers, as given.
    pub containerizers: Vec<String>,
}

/// The agent's state and its handlers.
pub struct Agent {
    id: Option<AgentId>,
    instance: String,
    identity: Identity,
    settings: Settings,
    runtimes: BTreeMap<String, Arc<dyn ContainerRuntime>>,
    tasks: BTreeMap<TaskKey, Task>,
    completed: VecDeque<TaskRecord>,
    updates: StatusUpdateManager,
    /// Frameworks the master shut down: their updates are acknowledged locally, not sent.
    shut_down: BTreeSet<FrameworkId>,
    registered: bool,
    /// Set by a registration, cleared by the stream that follows it.
    just_registered: bool,
    connected: bool,
    last_now: Time,
    inputs: mpsc::Sender<Input>,
    outbound: mpsc::Sender<(AgentId, AgentMessage)>,
    /// Messages for the sender that did not fit in its queue yet, oldest first.
    outbox: VecDeque<(AgentId, AgentMessage)>,
    /// Status updates waiting for the checkpoint that holds them to be submitted.
    unsynced: Vec<(AgentId, AgentMessage)>,
    /// Status updates waiting for that checkpoint to be on disk: sent once the writer has
    /// completed `barrier` writes.
    syncing: VecDeque<(u64, AgentId, AgentMessage)>,
    workers: JoinSet<()>,
    writer: checkpoint::Writer,
    /// Tasks (or streams) changed since the last checkpoint write.
    dirty: BTreeSet<TaskKey>,
    /// Update streams of tasks the agent does not have (kills of unknown tasks).
    orphan_streams: BTreeSet<TaskKey>,
    /// `agent.json` needs writing.
    meta_dirty: bool,
    /// The next checkpoint write is a snapshot.
    snapshot_wanted: bool,
    /// When the last checkpoint write was submitted.
    last_checkpoint: Option<Instant>,
    /// Bytes in the journal, and in its last snapshot.
    journal_bytes: usize,
    snapshot_bytes: usize,
    /// Sandboxes to delete, oldest first (bounded: see [`MAX_GC_QUEUE`]).
    gc: VecDeque<(Instant, PathBuf)>,
    /// Frameworks' `executors` directories already marked with
    /// [`mesos_runtime::spread_subdirectories`] by this process (bounded: cleared when large;
    /// marking again is harmless).
    spread_dirs: BTreeSet<PathBuf>,
    /// For the fetcher and HTTP health checks.
    http: reqwest::Client,
    /// Terminal states reached since start, for `/metrics/snapshot`.
    terminal_counts: BTreeMap<TaskState, u64>,
    /// Updates produced and acknowledgements received, for `/metrics/snapshot`.
    updates_sent: u64,
    acks_received: u64,
    started: Instant,
    shutting_down: bool,
}

fn random_uuid() -> StatusUuid {
    StatusUuid(rand::random::<[u8; 16]>())
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// A fresh runtime instance name (stable across restarts once checkpointed).
pub fn new_instance() -> String {
    random_hex(6)
}

fn key_task_uris(task: Option<&TaskInfo>) -> Option<&[Json]> {
    task.and_then(|t| t.command.as_ref())
        .map(|c| c.uris.as_slice())
}

fn kill_grace(task: &TaskInfo, default: Duration) -> Duration {
    task.kill_policy
        .as_ref()
        .and_then(|p| p.get("grace_period"))
        .and_then(|g| g.get("nanoseconds"))
        .and_then(Json::as_i64)
        .filter(|n| *n >= 0)
        .map(|n| Duration::from_nanos(n as u64))
        .unwrap_or(default)
}

fn resources_state_json(r: &Resources) -> Json {
    let mut m = serde_json::Map::new();
    for res in r.iter() {
        let v = match &res.value {
            Value::Scalar(s) => json!(s.as_f64()),
            other => json!(other.to_string()),
        };
        m.insert(res.name.as_str().to_string(), v);
    }
    Json::Object(m)
}

impl Agent {
    /// An agent restored from `checkpoint` (or new), with its runtimes, whose containers carry
    /// the name `instance`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        checkpoint: Option<AgentCheckpoint>,
        instance: String,
        identity: Identity,
        settings: Settings,
        runtimes: BTreeMap<String, Arc<dyn ContainerRuntime>>,
        inputs: mpsc::Sender<Input>,
        outbound: mpsc::Sender<(AgentId, AgentMessage)>,
        writer: checkpoint::Writer,
    ) -> Self {
        let cp = checkpoint.unwrap_or_default();
        let tasks: BTreeMap<TaskKey, Task> = cp
            .tasks
            .into_iter()
            .map(|rec| {
                (
                    (rec.framework.id.clone(), rec.task.task_id.clone()),
                    Task::new(rec),
                )
            })
            .collect();
        // Streams without a task: rebuilt from the checkpoint's updates.
        let orphan_streams = cp.orphan_streams.into_iter().collect();
        Agent {
            id: cp.agent_id,
            instance,
            identity,
            settings,
            runtimes,
            tasks,
            completed: VecDeque::new(),
            updates: cp.updates,
            shut_down: BTreeSet::new(),
            registered: false,
            just_registered: false,
            connected: false,
            last_now: Time::ZERO,
            inputs,
            outbound,
            outbox: VecDeque::new(),
            unsynced: Vec::new(),
            syncing: VecDeque::new(),
            workers: JoinSet::new(),
            writer,
            dirty: BTreeSet::new(),
            orphan_streams,
            meta_dirty: true,
            snapshot_wanted: true,
            last_checkpoint: None,
            journal_bytes: 0,
            snapshot_bytes: 0,
            http: reqwest::Client::new(),
            terminal_counts: BTreeMap::new(),
            gc: VecDeque::new(),
            spread_dirs: BTreeSet::new(),
            updates_sent: 0,
            acks_received: 0,
            started: Instant::now(),
            shutting_down: false,
        }
    }

    /// The runtime instance name.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn now(&mut self) -> Time {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        self.last_now = self.last_now.max(Time::from_nanos(nanos));
        self.last_now
    }

    /// Notes that a task or its update stream changed: the next checkpoint write covers it.
    fn touch(&mut self, key: &TaskKey) {
        if !self.dirty.contains(key) {
            self.dirty.insert(key.clone());
        }
    }

    /// Writes what changed since the last write, unless a write is still in flight (`force`:
    /// queue it anyway, at shutdown). Every so often the journal is replaced by a snapshot.
    fn flush_checkpoint(&mut self, force: bool) {
        if !force && (self.writer.busy() || self.checkpoint_due().is_some()) {
            return;
        }
        if self.writer.take_journal_failure() {
            self.snapshot_wanted = true;
        }
        if self.writer.take_meta_failure() {
            self.meta_dirty = true;
        }
        if self.dirty.is_empty() && !self.meta_dirty && !self.snapshot_wanted {
            return;
        }
        self.last_checkpoint = Some(Instant::now());
        let compact = self.snapshot_wanted
            || self.journal_bytes > COMPACT_MIN_BYTES.max(COMPACT_RATIO * self.snapshot_bytes);
        if compact {
            self.snapshot_wanted = false;
            self.dirty.clear();
            let mut buf = Vec::new();
            for (key, task) in &mut self.tasks {
                let entry = EntryView {
                    framework: &key.0,
                    task: &key.1,
                    record: Some(&task.rec),
                    state: None,
                    runtime: None,
                    updates: self.updates.pending(&key.0, &key.1),
                };
                checkpoint::put_line(&mut buf, entry);
                task.journaled = true;
            }
            let updates = &self.updates;
            self.orphan_streams
                .retain(|key| !updates.pending(&key.0, &key.1).is_empty());
            for key in &self.orphan_streams {
                let entry = EntryView {
                    framework: &key.0,
                    task: &key.1,
                    record: None,
                    state: None,
                    runtime: None,
                    updates: self.updates.pending(&key.0, &key.1),
                };
                checkpoint::put_line(&mut buf, entry);
            }
            self.snapshot_bytes = buf.len();
            self.journal_bytes = buf.len();
            self.writer.submit(Job::Replace(buf));
            // After a failed append, updates waiting for it are durable with this snapshot.
            let barrier = self.writer.submitted();
            for entry in &mut self.syncing {
                entry.0 = entry.0.max(barrier);
            }
        } else if !self.dirty.is_empty() {
            let mut buf = Vec::new();
            for key in std::mem::take(&mut self.dirty) {
                let updates = self.updates.pending(&key.0, &key.1);
                match self.tasks.get_mut(&key) {
                    Some(task) => {
                        let full = !task.journaled;
                        task.journaled = true;
                        let entry = EntryView {
                            framework: &key.0,
                            task: &key.1,
                            record: full.then_some(&task.rec),
                            state: Some(task.rec.state),
                            runtime: task.rec.runtime.as_deref(),
                            updates,
                        };
                        checkpoint::put_line(&mut buf, entry);
                    }
                    None if updates.is_empty() => {
                        checkpoint::del_line(&mut buf, &key.0, &key.1);
                        self.orphan_streams.remove(&key);
                    }
                    None => {
                        let entry = EntryView {
                            framework: &key.0,
                            task: &key.1,
                            record: None,
                            state: None,
                            runtime: None,
                            updates,
                        };
                        checkpoint::put_line(&mut buf, entry);
                        self.orphan_streams.insert(key.clone());
                    }
                }
            }
            self.journal_bytes += buf.len();
            self.writer.submit(Job::Append(buf));
        }
        // After the tasks: a checkpoint of the earlier format keeps its tasks in `agent.json`
        // until the journal has them.
        if self.meta_dirty {
            self.meta_dirty = false;
            let bytes = checkpoint::encode_meta(self.id.as_ref(), &self.instance);
            self.writer.submit(Job::Meta(bytes));
        }
    }

    /// When the next checkpoint write may start, if something waits for one and it is too soon
    /// after the last (see [`MIN_CHECKPOINT_INTERVAL`]).
    fn checkpoint_due(&self) -> Option<Instant> {
        // A failed write is redone (as a snapshot) like any other pending change.
        let failed = self.writer.journal_failed() || self.writer.meta_failed();
        if self.dirty.is_empty() && !self.meta_dirty && !self.snapshot_wanted && !failed {
            return None;
        }
        let due = self.last_checkpoint? + MIN_CHECKPOINT_INTERVAL;
        (due > Instant::now()).then_some(due)
    }

    /// Re-attaches to the containers that survived the restart; reports the rest.
    pub async fn recover(&mut self) -> Result<(), AgentDaemonError> {
        let mut found: HashMap<(String, TaskId), Option<Termination>> = HashMap::new();
        for (name, rt) in &self.runtimes {
            let dir = runtime_dir(&self.settings.work_dir, name);
            let recovered = rt
                .recover(&dir)
                .await
                .map_err(|e| AgentDaemonError::Recovery {
                    runtime: name.clone(),
                    reason: e.to_string(),
                })?;
            for r in recovered {
                found.insert((name.clone(), r.task_id), r.terminated);
            }
        }
        let keys: Vec<TaskKey> = self.tasks.keys().cloned().collect();
        let mut adopted: BTreeSet<(String, TaskId)> = BTreeSet::new();
        for key in keys {
            let Some(task) = self.tasks.get(&key) else {
                continue;
            };
            if task.terminated {
                continue;
            }
            let runtime = task.rec.runtime.clone();
            let state = task.rec.state;
            let container_id = task.rec.container_id.clone();
            let runtime_id = task.rec.runtime_task_id();
            let hit = runtime
                .as_ref()
                .and_then(|r| found.get(&(r.clone(), runtime_id.clone())).map(|t| (r, t)));
            match hit {
                Some((name, _)) => {
                    adopted.insert((name.clone(), runtime_id.clone()));
                    tracing::info!(task = %key.1, framework = %key.0, runtime = %name, "recovered task");
                    if let Some(t) = self.tasks.get_mut(&key) {
                        t.launched = true;
                    }
                    if matches!(state, TaskState::Staging | TaskState::Starting) {
                        self.update(&key, TaskState::Running, Source::Executor, None, None);
                    }
                    if let Some(rt) = self.runtimes.get(name).cloned() {
                        self.spawn_wait(rt, key.clone(), container_id, runtime_id);
                    }
                    self.restore_health_check(&key);
                    self.start_checker(&key);
                }
                None if matches!(state, TaskState::Staging | TaskState::Starting) => {
                    self.terminate(
                        &key,
                        TaskState::Failed,
                        Source::Agent,
                        Some(Reason::ContainerLaunchFailed),
                        "the agent restarted while the container was being launched; it was not started".into(),
                    );
                }
                None => {
                    let state = self.lost_state(&key.0);
                    self.terminate(
                        &key,
                        state,
                        Source::Agent,
                        Some(Reason::AgentRestarted),
                        "the task's container vanished while the agent was down".into(),
                    );
                }
            }
        }
        // Containers nobody owns any more: stop them, as upstream does with orphans.
        for ((name, task_id), terminated) in found {
            if adopted.contains(&(name.clone(), task_id.clone())) {
                continue;
            }
            let Some(rt) = self.runtimes.get(&name).cloned() else {
                continue;
            };
            tracing::warn!(task = %task_id, runtime = %name, "stopping an orphan container");
            let grace = self.settings.grace;
            self.workers.spawn(async move {
                if terminated.is_none() {
                    let _ = rt.kill(&task_id, grace).await;
                }
                let _ = rt.wait(&task_id).await;
            });
        }
        self.meta_dirty = true;
        self.snapshot_wanted = true;
        Ok(())
    }

    /// Rebuilds a recovered task's health check from its checkpointed `TaskInfo`.
    fn restore_health_check(&mut self, key: &TaskKey) {
        let Some(agent_id) = self.id.clone() else {
            return;
        };
        let Some(task) = self.tasks.get(key) else {
            return;
        };
        if task.rec.task.health_check.is_none() {
            return;
        }
        let ctx = SpecContext {
            agent_id: &agent_id,
            framework: &task.rec.framework,
            sandbox: task.rec.sandbox.clone(),
            switch_user: false,
        };
        let check = task_spec(&task.rec.task, &ctx)
            .and_then(|spec| health::parse(task.rec.task.health_check.as_ref(), &spec));
        match check {
            Ok(hc) => {
                if let Some(t) = self.tasks.get_mut(key) {
                    t.health_check = hc;
                }
            }
            Err(e) => {
                tracing::warn!(task = %key.1, error = %e, "cannot restore the health check")
            }
        }
    }

    /// Creates the framework's `executors` directory once and marks it so that the file system
    /// spreads the tasks' sandboxes over its block groups (see
    /// [`mesos_runtime::spread_subdirectories`]: on this kind of ext4 it makes a sandbox several
    /// times cheaper to create after many were deleted). Failures only cost that speed.
    fn prepare_executors_dir(&mut self, agent_id: &AgentId, framework: &FrameworkRef) {
        let dir = executors_dir(&self.settings.work_dir, agent_id, framework);
        if self.spread_dirs.contains(&dir) {
            return;
        }
        if self.spread_dirs.len() >= 4096 {
            self.spread_dirs.clear();
        }
        let marked =
            std::fs::create_dir_all(&dir).and_then(|()| mesos_runtime::spread_subdirectories(&dir));
        if let Err(e) = marked {
            tracing::debug!(dir = %dir.display(), error = %e, "executors directory not marked for spreading");
        }
        self.spread_dirs.insert(dir);
    }

    /// Queues a sandbox (a `.../runs/<container>` directory under the work dir) for deletion.
    fn schedule_gc(&mut self, at: Instant, sandbox: PathBuf) {
        let slaves = self.settings.work_dir.join("slaves");
        let is_run_dir = sandbox.starts_with(&slaves)
            && sandbox
                .parent()
                .and_then(|p| p.file_name())
                .is_some_and(|n| n == "runs");
        if !is_run_dir {
            return;
        }
        // Keep the queue ordered by deadline (deadlines are nearly always increasing).
        let pos = self.gc.partition_point(|(t, _)| *t <= at);
        self.gc.insert(pos, (at, sandbox));
        while self.gc.len() > MAX_GC_QUEUE {
            if let Some((_, p)) = self.gc.pop_front() {
                self.delete_sandbox(p);
            }
        }
    }

    fn delete_sandbox(&mut self, sandbox: PathBuf) {
        tracing::info!(sandbox = %sandbox.display(), "removing a finished task's sandbox");
        self.workers.spawn(async move {
            if let Err(e) = tokio::fs::remove_dir_all(&sandbox).await {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(sandbox = %sandbox.display(), error = %e, "cannot remove a sandbox");
                }
            }
            // Then `runs/` and the executor directory, when nothing else is left in them.
            let mut dir = sandbox.parent().map(PathBuf::from);
            for _ in 0..2 {
                let Some(d) = dir else { break };
                if tokio::fs::remove_dir(&d).await.is_err() {
                    break;
                }
                dir = d.parent().map(PathBuf::from);
            }
        });
    }

    fn run_gc(&mut self) {
        let now = Instant::now();
        while self.gc.front().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, p)) = self.gc.pop_front() {
                self.delete_sandbox(p);
            }
        }
    }

    /// Finds sandboxes left by earlier runs that belong to no current task and schedules them
    /// for deletion `gc_delay` after they were last modified.
    pub fn scan_sandboxes(&mut self) {
        let live: BTreeSet<PathBuf> = self.tasks.values().map(|t| t.rec.sandbox.clone()).collect();
        let root = self.settings.work_dir.join("slaves");
        let mut found = Vec::new();
        // slaves/<agent>/frameworks/<fw>/executors/<task>/runs/<container>
        let mut level: Vec<PathBuf> = vec![root];
        for step in ["", "frameworks", "", "executors", "", "runs", ""] {
            let mut next = Vec::new();
            for dir in &level {
                if !step.is_empty() {
                    let d = dir.join(step);
                    if d.is_dir() {
                        next.push(d);
                    }
                    continue;
                }
                let Ok(rd) = std::fs::read_dir(dir) else {
                    continue;
                };
                next.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
            }
            level = next;
        }
        for run in level {
            if live.contains(&run) {
                continue;
            }
            let modified = std::fs::metadata(&run)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.elapsed().ok())
                .unwrap_or_default();
            let left = self.settings.gc_delay.saturating_sub(modified);
            found.push((Instant::now() + left, run));
        }
        for (at, run) in found {
            self.schedule_gc(at, run);
        }
    }

    fn lost_state(&self, fw: &FrameworkId) -> TaskState {
        let partition_aware = self
            .tasks
            .iter()
            .find(|((f, _), _)| f == fw)
            .is_some_and(|(_, t)| t.rec.framework.info.partition_aware());
        if partition_aware {
            TaskState::Gone
        } else {
            TaskState::Lost
        }
    }

    /// The registration the connection task sends.
    fn registration(&self) -> AgentRegistration {
        AgentRegistration {
            id: self.id.clone(),
            hostname: self.identity.hostname.clone(),
            address: self.identity.address.clone(),
            resources: self.identity.resources.clone(),
            attributes: self.identity.attributes.clone(),
            tasks: self
                .tasks
                .values()
                .map(|t| ReportedTask {
                    framework: t.rec.framework.clone(),
                    task: t.rec.task.clone(),
                    state: t.rec.state,
                })
                .collect(),
            version: VERSION.to_string(),
        }
    }

    /// Queues a reliable update for a task and records its state.
    fn update(
        &mut self,
        key: &TaskKey,
        state: TaskState,
        source: Source,
        reason: Option<Reason>,
        message: Option<String>,
    ) {
        let now = self.now();
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        let mut status = TaskStatus::new(key.1.clone(), state)
            .with_source(source)
            .with_timestamp(now)
            .with_uuid(random_uuid());
        status.executor_id = Some(ExecutorId::new(key.1.as_str()));
        status.agent_id = self.id.clone();
        status.reason = reason;
        status.message = message;
        if task.health_check.is_some() {
            status.healthy = task.health.healthy;
        }
        task.rec.state = state;
        self.updates_sent += 1;
        if state.is_terminal() {
            *self.terminal_counts.entry(state).or_default() += 1;
            task.terminated = true;
            if let Some(h) = task.checker.take() {
                h.abort();
            }
        }
        if let Err(e) = self.updates.update(now, key.0.clone(), status) {
            tracing::warn!(error = %e, "status update refused");
        }
        self.touch(key);
    }

    fn terminate(
        &mut self,
        key: &TaskKey,
        state: TaskState,
        source: Source,
        reason: Option<Reason>,
        message: String,
    ) {
        tracing::info!(task = %key.1, framework = %key.0, %state, %message, "task ended");
        self.update(key, state, source, reason, Some(message));
    }

    fn spawn_wait(
        &mut self,
        rt: Arc<dyn ContainerRuntime>,
        key: TaskKey,
        container_id: String,
        runtime_id: TaskId,
    ) {
        let tx = self.inputs.clone();
        self.workers.spawn(async move {
            let result = rt.wait(&runtime_id).await.map_err(|e| e.to_string());
            let _ = tx
                .send(Input::Terminated {
                    key,
                    container_id,
                    result,
                })
                .await;
        });
    }

    fn spawn_kill(&mut self, key: &TaskKey) {
        let Some(task) = self.tasks.get(key) else {
            return;
        };
        let Some(rt) = task
            .rec
            .runtime
            .as_ref()
            .and_then(|n| self.runtimes.get(n))
            .cloned()
        else {
            return;
        };
        let grace = kill_grace(&task.rec.task, self.settings.grace);
        let task_id = task.rec.runtime_task_id();
        self.workers.spawn(async move {
            if let Err(e) = rt.kill(&task_id, grace).await {
                tracing::warn!(task = %task_id, error = %e, "kill failed");
            }
        });
    }

    /// Sends what the status-update manager has to send.
    fn drain_updates(&mut self) {
        while let Some(fwd) = self.updates.poll_output() {
            if self.shut_down.contains(&fwd.framework) {
                // Upstream drops a removed framework's streams; we acknowledge them locally.
                if let Some(uuid) = fwd.status.uuid {
                    let now = self.now();
                    let key = (fwd.framework.clone(), fwd.status.task_id.clone());
                    let outcome = self.updates.acknowledge(now, &key.0, &key.1, uuid);
                    self.after_ack(&key, outcome);
                }
                continue;
            }
            let Some(id) = self.id.clone().filter(|_| self.registered) else {
                continue; // resent after registration
            };
            let msg = AgentMessage::StatusUpdate {
                framework_id: fwd.framework,
                status: fwd.status,
            };
            // Forwarded once the checkpoint holding it is on disk, as upstream checkpoints an
            // update before forwarding it: a crash right after the master saw TASK_RUNNING
            // must still find the task (and the unacknowledged update) on restart.
            self.unsynced.push((id, msg));
        }
        self.pump_outbox();
    }

    /// Moves status updates along as their checkpoint is written: those whose task changes
    /// were all submitted wait for the writes submitted so far; those whose writes completed
    /// (and did not fail) are sent.
    fn release_durable(&mut self) {
        if !self.unsynced.is_empty() && self.dirty.is_empty() && !self.snapshot_wanted {
            let barrier = self.writer.submitted();
            for (id, msg) in self.unsynced.drain(..) {
                self.syncing.push_back((barrier, id, msg));
            }
        }
        if self.writer.journal_failed() {
            return; // the snapshot that follows is what makes them durable
        }
        let completed = self.writer.completed();
        while self
            .syncing
            .front()
            .is_some_and(|(b, _, _)| *b <= completed)
        {
            if let Some((_, id, msg)) = self.syncing.pop_front() {
                self.send(id, msg);
            }
        }
        self.pump_outbox();
    }

    /// Queues a message for the master: straight into the sender's queue when there is room
    /// and nothing waits before it, else into the outbox.
    fn send(&mut self, id: AgentId, msg: AgentMessage) {
        if self.outbox.is_empty() {
            if let Err(mpsc::error::TrySendError::Full(m)) = self.outbound.try_send((id, msg)) {
                self.outbox.push_back(m);
            }
        } else if self.outbox.len() < MAX_OUTBOX {
            self.outbox.push_back((id, msg));
        } else {
            tracing::debug!("outbox full; the update waits for its retry");
        }
    }

    /// Moves what fits from the outbox into the sender's queue.
    fn pump_outbox(&mut self) {
        while let Some(m) = self.outbox.pop_front() {
            match self.outbound.try_send(m) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => self.outbox.clear(),
                Err(mpsc::error::TrySendError::Full(m)) => {
                    self.outbox.push_front(m);
                    break;
                }
            }
        }
    }

    fn after_ack(&mut self, key: &TaskKey, outcome: AckOutcome) {
        if outcome == AckOutcome::StreamClosed {
            if let Some(task) = self.tasks.remove(key) {
                self.schedule_gc(
                    Instant::now() + self.settings.gc_delay,
                    task.rec.sandbox.clone(),
                );
                self.completed.push_back(task.rec);
                while self.completed.len() > self.settings.max_completed {
                    self.completed.pop_front();
                }
            }
            // A shut-down framework is forgotten once its last task is gone.
            if self.shut_down.contains(&key.0) && !self.tasks.keys().any(|(f, _)| f == &key.0) {
                self.shut_down.remove(&key.0);
            }
        }
        if matches!(outcome, AckOutcome::Acknowledged | AckOutcome::StreamClosed) {
            self.touch(key);
        }
    }

    fn handle_command(&mut self, cmd: AgentCommand) {
        match cmd {
            AgentCommand::RunTask { framework, task } => self.run_task(framework, task),
            AgentCommand::KillTask {
                framework_id,
                task_id,
            } => self.kill_task((framework_id, task_id)),
            AgentCommand::Acknowledge {
                framework_id,
                task_id,
                uuid,
            } => {
                let now = self.now();
                self.acks_received += 1;
                let outcome = self.updates.acknowledge(now, &framework_id, &task_id, uuid);
                tracing::debug!(task = %task_id, ?outcome, "acknowledgement");
                self.after_ack(&(framework_id, task_id), outcome);
            }
            AgentCommand::ShutdownFramework { framework_id } => {
                tracing::info!(framework = %framework_id, "shutting the framework down");
                self.shut_down.insert(framework_id.clone());
                let keys: Vec<TaskKey> = self
                    .tasks
                    .keys()
                    .filter(|(f, _)| f == &framework_id)
                    .cloned()
                    .collect();
                let now = self.now();
                for key in keys {
                    // Drop what is in flight: acknowledge each head locally.
                    while let Some(uuid) = self
                        .updates
                        .pending(&key.0, &key.1)
                        .first()
                        .and_then(|s| s.uuid)
                    {
                        let outcome = self.updates.acknowledge(now, &key.0, &key.1, uuid);
                        let closed = outcome == AckOutcome::StreamClosed;
                        self.after_ack(&key, outcome);
                        if closed || outcome != AckOutcome::Acknowledged {
                            break;
                        }
                    }
                    if let Some(t) = self.tasks.get_mut(&key) {
                        if !t.terminated && !t.kill_requested {
                            t.kill_requested = true;
                            if t.launched {
                                self.spawn_kill(&key);
                            }
                        }
                    }
                }
                // The local acknowledgements queued the next heads; they are dropped on drain.
            }
            AgentCommand::FrameworkMessage {
                framework_id,
                executor_id,
                ..
            } => {
                tracing::warn!(framework = %framework_id, executor = %executor_id,
                    "dropping a framework message: command tasks have no executor to deliver it to");
            }
            AgentCommand::Ping => {
                if let Some(id) = self.id.clone() {
                    self.send(id, AgentMessage::Pong);
                }
            }
        }
    }

    fn run_task(&mut self, framework: FrameworkRef, task: TaskInfo) {
        let key = (framework.id.clone(), task.task_id.clone());
        if self.tasks.contains_key(&key) {
            tracing::warn!(task = %key.1, framework = %key.0, "ignoring a duplicate RUN_TASK");
            return;
        }
        let Some(agent_id) = self.id.clone() else {
            tracing::warn!(task = %key.1, "RUN_TASK before registration: ignored");
            return;
        };
        self.shut_down.remove(&key.0);
        let container_id = random_hex(16);
        self.prepare_executors_dir(&agent_id, &framework);
        let sandbox = sandbox_path(
            &self.settings.work_dir,
            &agent_id,
            &framework,
            &task,
            &container_id,
        );
        let ctx = SpecContext {
            agent_id: &agent_id,
            framework: &framework,
            sandbox: sandbox.clone(),
            switch_user: self.settings.switch_user,
        };
        let container_key = format!("{}.{}", task.task_id, &container_id[..12]);
        let spec = task_spec(&task, &ctx).map(|mut spec| {
            spec.task_id = TaskId::new(container_key.as_str());
            spec.env
                .insert("MESOS_TASK_ID".into(), task.task_id.as_str().to_string());
            spec
        });
        tracing::info!(task = %key.1, framework = %key.0, sandbox = %sandbox.display(), "launching task");
        self.tasks.insert(
            key.clone(),
            Task::new(TaskRecord {
                framework,
                task,
                container_id: container_id.clone(),
                container_key: container_key.clone(),
                runtime: None,
                sandbox,
                state: TaskState::Staging,
            }),
        );
        let spec = match spec {
            Ok(s) => s,
            Err(msg) => {
                self.terminate(
                    &key,
                    TaskState::Failed,
                    Source::Agent,
                    Some(Reason::ContainerLaunchFailed),
                    format!("Failed to launch container: {msg}"),
                );
                return;
            }
        };
        let health_check = health::parse(
            self.tasks
                .get(&key)
                .and_then(|t| t.rec.task.health_check.as_ref()),
            &spec,
        );
        match health_check {
            Ok(hc) => {
                if let Some(t) = self.tasks.get_mut(&key) {
                    t.health_check = hc;
                }
            }
            Err(msg) => {
                self.terminate(
                    &key,
                    TaskState::Failed,
                    Source::Agent,
                    Some(Reason::ContainerLaunchFailed),
                    format!("Failed to launch container: {msg}"),
                );
                return;
            }
        }
        let uris = match parse_uris(
            key_task_uris(self.tasks.get(&key).map(|t| &t.rec.task)).unwrap_or(&[]),
        ) {
            Ok(u) => u,
            Err(msg) => {
                self.terminate(
                    &key,
                    TaskState::Failed,
                    Source::Agent,
                    Some(Reason::ContainerLaunchFailed),
                    format!("Failed to launch container: {msg}"),
                );
                return;
            }
        };
        let kind = spec.container.kind();
        let Some(rt) = self.runtimes.get(kind).cloned() else {
            let msg = format!(
                "Failed to launch container: the {kind} containerizer is not enabled on this agent (--containerizers={})",
                self.settings.containerizers.join(",")
            );
            self.terminate(
                &key,
                TaskState::Failed,
                Source::Agent,
                Some(Reason::ContainerLaunchFailed),
                msg,
            );
            return;
        };
        if let Some(t) = self.tasks.get_mut(&key) {
            t.rec.runtime = Some(kind.to_string());
        }
        self.update(&key, TaskState::Starting, Source::Executor, None, None);
        let tx = self.inputs.clone();
        let http = self.http.clone();
        self.workers.spawn(async move {
            let result = match fetch_all(&http, &uris, &spec.sandbox).await {
                Ok(()) => rt.launch(spec).await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            let ok = result.is_ok();
            if tx
                .send(Input::Launched {
                    key: key.clone(),
                    container_id: container_id.clone(),
                    result,
                })
                .await
                .is_err()
            {
                return;
            }
            if ok {
                let result = rt
                    .wait(&TaskId::new(container_key.as_str()))
                    .await
                    .map_err(|e| e.to_string());
                let _ = tx
                    .send(Input::Terminated {
                        key,
                        container_id,
                        result,
                    })
                    .await;
            }
        });
    }

    /// Starts the task's health checker, if it has a check.
    fn start_checker(&mut self, key: &TaskKey) {
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        let Some(check) = task.health_check.clone() else {
            return;
        };
        if task.checker.is_some() || task.terminated {
            return;
        }
        task.checking_since = Some(Instant::now());
        let tx = self.inputs.clone();
        let http = self.http.clone();
        let key2 = key.clone();
        let container_id = task.rec.container_id.clone();
        let handle = self.workers.spawn(async move {
            tokio::time::sleep(check.delay).await;
            loop {
                let result = health::probe(&http, &check).await;
                let input = Input::Health {
                    key: key2.clone(),
                    container_id: container_id.clone(),
                    result,
                };
                if tx.send(input).await.is_err() {
                    return;
                }
                tokio::time::sleep(check.interval).await;
            }
        });
        if let Some(t) = self.tasks.get_mut(key) {
            t.checker = Some(handle);
        }
    }

    fn on_health(&mut self, key: TaskKey, container_id: String, result: Result<(), String>) {
        let Some(task) = self
            .tasks
            .get_mut(&key)
            .filter(|t| t.rec.container_id == container_id)
        else {
            return;
        };
        if task.terminated || task.kill_requested {
            return;
        }
        let Some(check) = task.health_check.clone() else {
            return;
        };
        let in_grace = task
            .checking_since
            .is_some_and(|t| t.elapsed() < check.delay + check.grace_period);
        match task.health.record(&check, result.clone(), in_grace) {
            Verdict::Quiet => {}
            Verdict::Changed(healthy) => {
                tracing::info!(task = %key.1, healthy, "task health changed");
                self.update(
                    &key,
                    TaskState::Running,
                    Source::Executor,
                    Some(Reason::TaskHealthCheckStatusUpdated),
                    result.err(),
                );
            }
            Verdict::Kill(why) => {
                tracing::warn!(task = %key.1, %why, "killing an unhealthy task");
                task.kill_reason = Some(why);
                task.kill_requested = true;
                self.spawn_kill(&key);
            }
        }
    }

    fn kill_task(&mut self, key: TaskKey) {
        let Some(task) = self.tasks.get_mut(&key) else {
            // As upstream: the master believes the task is here, so tell it that it is not.
            tracing::warn!(task = %key.1, framework = %key.0, "asked to kill an unknown task");
            if self
                .completed
                .iter()
                .any(|r| r.framework.id == key.0 && r.task.task_id == key.1)
            {
                return; // it ended and its terminal update was acknowledged
            }
            let state = match self.lost_state(&key.0) {
                TaskState::Gone => TaskState::Dropped,
                other => other,
            };
            let now = self.now();
            let mut status = TaskStatus::new(key.1.clone(), state)
                .with_source(Source::Agent)
                .with_reason(Reason::TaskUnknown)
                .with_message("Cannot kill task: it is not known to this agent")
                .with_timestamp(now)
                .with_uuid(random_uuid());
            status.agent_id = self.id.clone();
            if let Err(e) = self.updates.update(now, key.0.clone(), status) {
                tracing::debug!(error = %e, "no update for the unknown task");
            }
            self.touch(&key);
            return;
        };
        if task.terminated || task.kill_requested {
            return;
        }
        task.kill_requested = true;
        let launched = task.launched;
        let killing_state = task.rec.framework.info.has_capability("TASK_KILLING_STATE");
        tracing::info!(task = %key.1, framework = %key.0, "killing task");
        if killing_state {
            self.update(&key, TaskState::Killing, Source::Executor, None, None);
        }
        if launched {
            self.spawn_kill(&key);
        }
    }

    fn on_launched(&mut self, key: TaskKey, container_id: String, result: Result<(), String>) {
        let Some(task) = self
            .tasks
            .get_mut(&key)
            .filter(|t| t.rec.container_id == container_id)
        else {
            return;
        };
        match result {
            Ok(()) => {
                task.launched = true;
                if task.kill_requested {
                    self.spawn_kill(&key);
                } else {
                    self.update(&key, TaskState::Running, Source::Executor, None, None);
                    self.start_checker(&key);
                }
            }
            Err(msg) => self.terminate(
                &key,
                TaskState::Failed,
                Source::Agent,
                Some(Reason::ContainerLaunchFailed),
                format!("Failed to launch container: {msg}"),
            ),
        }
    }

    fn on_terminated(
        &mut self,
        key: TaskKey,
        container_id: String,
        result: Result<Termination, String>,
    ) {
        let Some(task) = self
            .tasks
            .get(&key)
            .filter(|t| t.rec.container_id == container_id)
        else {
            return;
        };
        if task.terminated {
            return;
        }
        match result {
            Ok(mut t) => {
                if let Some(why) = self.tasks.get(&key).and_then(|t| t.kill_reason.clone()) {
                    t.message = format!("{why} ({})", t.message);
                }
                let (state, reason) = t.to_mesos();
                let state = if state == TaskState::Lost {
                    self.lost_state(&key.0)
                } else {
                    state
                };
                self.terminate(&key, state, Source::Executor, reason, t.message);
            }
            Err(_) if self.shutting_down => {}
            Err(e) => self.terminate(
                &key,
                TaskState::Failed,
                Source::Agent,
                Some(Reason::ExecutorTerminated),
                format!("the agent lost track of the container: {e}"),
            ),
        }
    }

    fn state_json(&self) -> Json {
        let task_json = |r: &TaskRecord| {
            json!({
                "id": r.task.task_id.as_str(),
                "name": r.task.name,
                "framework_id": r.framework.id.as_str(),
                "executor_id": r.task.task_id.as_str(),
                "slave_id": self.id.as_ref().map(|i| i.as_str()),
                "agent_id": self.id.as_ref().map(|i| i.as_str()),
                "state": r.state.as_str(),
                "resources": resources_state_json(&r.task.resources),
                "container_id": r.container_id,
                "containerizer": r.runtime,
                "sandbox": r.sandbox.display().to_string(),
            })
        };
        // Upstream's shape: each command task has its own executor (same id), whose
        // `directory` is the sandbox.
        let executor_json = |r: &TaskRecord, running: bool| {
            let task = task_json(r);
            json!({
                "id": r.task.task_id.as_str(),
                "name": format!("Command Executor (Task: {})", r.task.task_id),
                "source": r.task.task_id.as_str(),
                "framework_id": r.framework.id.as_str(),
                "container": r.container_id,
                "directory": r.sandbox.display().to_string(),
                "resources": resources_state_json(&r.task.resources),
                "tasks": if running { vec![task.clone()] } else { vec![] },
                "queued_tasks": [],
                "completed_tasks": if running { vec![] } else { vec![task] },
            })
        };
        #[derive(Default)]
        struct Fw {
            info: Option<FrameworkRef>,
            tasks: Vec<Json>,
            completed_tasks: Vec<Json>,
            executors: Vec<Json>,
            completed_executors: Vec<Json>,
        }
        let mut frameworks: BTreeMap<FrameworkId, Fw> = BTreeMap::new();
        for t in self.tasks.values() {
            let f = frameworks.entry(t.rec.framework.id.clone()).or_default();
            f.info.get_or_insert_with(|| t.rec.framework.clone());
            f.tasks.push(task_json(&t.rec));
            f.executors.push(executor_json(&t.rec, !t.terminated));
        }
        for r in &self.completed {
            let f = frameworks.entry(r.framework.id.clone()).or_default();
            f.info.get_or_insert_with(|| r.framework.clone());
            f.completed_tasks.push(task_json(r));
            f.completed_executors.push(executor_json(r, false));
        }
        let frameworks: Vec<Json> = frameworks
            .into_iter()
            .map(|(id, f)| {
                let info = f.info.map(|r| r.info).unwrap_or_default();
                json!({
                    "id": id.as_str(),
                    "name": info.name,
                    "user": info.user,
                    "role": info.role.clone().unwrap_or_else(|| "*".into()),
                    "tasks": f.tasks,
                    "completed_tasks": f.completed_tasks,
                    "executors": f.executors,
                    "completed_executors": f.completed_executors,
                })
            })
            .collect();
        let a = &self.identity.address;
        json!({
            "id": self.id.as_ref().map(|i| i.as_str()),
            "pid": format!("slave(1)@{}:{}", a.ip, a.port),
            "hostname": self.identity.hostname,
            "version": VERSION,
            "resources": resources_state_json(&self.identity.resources),
            "attributes": self.identity.attributes.to_state_json(),
            "master_hostname": self.identity.master,
            "registered": self.registered,
            "connected": self.connected,
            "flags": self.identity.flags,
            "frameworks": frameworks,
            "completed_frameworks": [],
            "pending_status_updates": self.updates.stream_count(),
        })
    }

    /// Upstream's agent metrics (`slave/...`), as far as this agent knows them.
    fn metrics_json(&self) -> Json {
        let mut m = serde_json::Map::new();
        let count =
            |state: TaskState| self.tasks.values().filter(|t| t.rec.state == state).count() as f64;
        for (name, state) in [
            ("staging", TaskState::Staging),
            ("starting", TaskState::Starting),
            ("running", TaskState::Running),
            ("killing", TaskState::Killing),
        ] {
            m.insert(format!("slave/tasks_{name}"), json!(count(state)));
        }
        for (name, state) in [
            ("finished", TaskState::Finished),
            ("failed", TaskState::Failed),
            ("killed", TaskState::Killed),
            ("lost", TaskState::Lost),
            ("gone", TaskState::Gone),
            ("dropped", TaskState::Dropped),
        ] {
            let n = self.terminal_counts.get(&state).copied().unwrap_or(0);
            m.insert(format!("slave/tasks_{name}"), json!(n as f64));
        }
        let live = self.tasks.values().filter(|t| !t.terminated).count() as f64;
        m.insert("slave/executors_running".into(), json!(live));
        let used: Resources = self
            .tasks
            .values()
            .filter(|t| !t.terminated)
            .map(|t| t.rec.task.resources.clone())
            .sum();
        let total = &self.identity.resources;
        for (name, t, u) in [
            ("cpus", total.cpus(), used.cpus()),
            ("mem", total.mem(), used.mem()),
            ("disk", total.disk(), used.disk()),
        ] {
            m.insert(format!("slave/{name}_total"), json!(t));
            m.insert(format!("slave/{name}_used"), json!(u));
            let percent = if t > 0.0 { u / t } else { 0.0 };
            m.insert(format!("slave/{name}_percent"), json!(percent));
        }
        m.insert(
            "slave/registered".into(),
            json!(if self.registered { 1.0 } else { 0.0 }),
        );
        m.insert(
            "slave/uptime_secs".into(),
            json!(self.started.elapsed().as_secs_f64()),
        );
        m.insert(
            "slave/valid_status_updates".into(),
            json!(self.updates_sent as f64),
        );
        m.insert(
            "slave/status_update_acknowledgements".into(),
            json!(self.acks_received as f64),
        );
        m.insert(
            "slave/pending_status_update_streams".into(),
            json!(self.updates.stream_count() as f64),
        );
        Json::Object(m)
    }

    fn handle(&mut self, input: Input) -> Result<(), AgentDaemonError> {
        match input {
            Input::Command(cmd) => self.handle_command(*cmd),
            Input::RegistrationWanted(reply) => {
                let _ = reply.send(self.registration());
            }
            Input::Registered(id) => {
                if self.id.as_ref().is_some_and(|old| old != &id) {
                    tracing::warn!(old = ?self.id, new = %id, "the master gave this agent a new id");
                }
                self.id = Some(id);
                self.registered = true;
                self.just_registered = true;
                let now = self.now();
                // Every head is sent again, with the (new) id: what waits is stale.
                self.outbox.clear();
                self.updates.flush(now);
                self.meta_dirty = true;
            }
            Input::StreamOpened => {
                self.connected = true;
                // After a mere reconnect, updates sent while the stream was down may have been
                // lost with the master: send the heads again (a registration already did).
                if self.registered && !std::mem::take(&mut self.just_registered) {
                    let now = self.now();
                    self.outbox.clear();
                    self.updates.flush(now);
                }
            }
            Input::StreamClosed => self.connected = false,
            Input::Refused(body) => return Err(AgentDaemonError::RegistrationRefused(body)),
            Input::Removed(body) => {
                return Err(AgentDaemonError::Removed(format!(
                    "{} ({body})",
                    self.id.as_ref().map(|i| i.as_str()).unwrap_or("?")
                )))
            }
            Input::Launched {
                key,
                container_id,
                result,
            } => self.on_launched(key, container_id, result),
            Input::Terminated {
                key,
                container_id,
                result,
            } => self.on_terminated(key, container_id, result),
            Input::Health {
                key,
                container_id,
                result,
            } => self.on_health(key, container_id, result),
            Input::State(reply) => {
                let _ = reply.send(self.state_json());
            }
            Input::Metrics(reply) => {
                let _ = reply.send(self.metrics_json());
            }
        }
        Ok(())
    }

    /// Runs until shutdown (or the master removes the agent).
    pub async fn run(
        mut self,
        mut inputs: mpsc::Receiver<Input>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), AgentDaemonError> {
        loop {
            self.drain_updates();
            self.flush_checkpoint(false);
            self.release_durable();
            let timer = self.updates.poll_timeout().map(|due| {
                let now = self.now();
                Instant::now() + due.saturating_duration_since(now)
            });
            let gc_due = self.gc.front().map(|(t, _)| *t);
            let checkpoint_due = if self.writer.busy() {
                None
            } else {
                self.checkpoint_due()
            };
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
                Some(input) = inputs.recv() => self.handle(input)?,
                _ = tokio::time::sleep_until(timer.unwrap_or_else(Instant::now)), if timer.is_some() => {
                    let now = self.now();
                    self.updates.handle_timeout(now);
                }
                Some(_) = self.workers.join_next(), if !self.workers.is_empty() => {}
                // A checkpoint write is done: the next covers what changed since, and the
                // updates it held can go. Armed even when no write seems in flight: one that
                // finished since the last look left its notification behind.
                _ = self.writer.idle() => {}
                _ = tokio::time::sleep_until(checkpoint_due.unwrap_or_else(Instant::now)), if checkpoint_due.is_some() => {}
                // The sender's queue has room again.
                permit = self.outbound.clone().reserve_owned(), if !self.outbox.is_empty() => {
                    if let (Ok(permit), Some(m)) = (permit, self.outbox.pop_front()) {
                        permit.send(m);
                    }
                }
                _ = tokio::time::sleep_until(gc_due.unwrap_or_else(Instant::now)), if gc_due.is_some() => {
                    self.run_gc();
                }
            }
        }
        self.shutdown(inputs).await;
        // The last changes reach the disk before `run` returns.
        self.flush_checkpoint(true);
        let writer = self.writer;
        let _ = tokio::task::spawn_blocking(move || writer.close()).await;
        Ok(())
    }

    async fn shutdown(&mut self, mut inputs: mpsc::Receiver<Input>) {
        self.shutting_down = true;
        // Acknowledgements already received are applied, so their updates are not resent.
        while let Ok(input) = inputs.try_recv() {
            match input {
                Input::Command(cmd) if matches!(*cmd, AgentCommand::Acknowledge { .. }) => {
                    self.handle_command(*cmd)
                }
                Input::Terminated {
                    key,
                    container_id,
                    result,
                } => {
                    self.shutting_down = false;
                    self.on_terminated(key, container_id, result);
                    self.shutting_down = true;
                }
                _ => {}
            }
        }
        if !self.settings.kill_tasks_on_shutdown {
            tracing::info!(
                tasks = self.tasks.len(),
                "agent stopping; tasks keep running"
            );
            return;
        }
        let keys: Vec<TaskKey> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.launched && !t.terminated)
            .map(|(k, _)| k.clone())
            .collect();
        tracing::info!(tasks = keys.len(), "agent stopping; killing its tasks");
        let mut longest = Duration::ZERO;
        for key in &keys {
            if let Some(t) = self.tasks.get_mut(key) {
                t.kill_requested = true;
                longest = longest.max(kill_grace(&t.rec.task, self.settings.grace));
            }
            self.spawn_kill(key);
        }
        // Record how they ended (bounded: grace plus a margin).
        let deadline = Instant::now() + longest + Duration::from_secs(5);
        let mut waiting: BTreeSet<TaskKey> = keys.into_iter().collect();
        while !waiting.is_empty() {
            let input = tokio::select! {
                i = inputs.recv() => i,
                _ = tokio::time::sleep_until(deadline) => None,
            };
            match input {
                Some(Input::Terminated {
                    key,
                    container_id,
                    result,
                }) => {
                    waiting.remove(&key);
                    self.shutting_down = false;
                    self.on_terminated(key, container_id, result);
                    self.shutting_down = true;
                }
                Some(Input::RegistrationWanted(reply)) => {
                    let _ = reply.send(self.registration());
                }
                Some(_) => {}
                None => break,
            }
        }
        self.drain_updates();
    }
}

/// Where runtime `name` keeps its checkpoints.
pub fn runtime_dir(work_dir: &std::path::Path, name: &str) -> PathBuf {
    work_dir.join("meta").join("runtimes").join(name)
}
