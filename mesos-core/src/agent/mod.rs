//! The agent's state machine, sans-IO: the task table and each task's lifecycle, the
//! status-update streams, health verdicts, what to checkpoint and when, and which sandboxes to
//! delete when. The daemon (`shells/src/agent`) feeds it inputs with the time they happened and
//! carries out its outputs (runtime calls, health probes, file writes, messages to the master);
//! a test or a simulator can drive it on a virtual clock.
//!
//! Drain order after every input: [`Agent::poll_output`] until `None` (answering a
//! [`Output::Prepare`] with [`Agent::handle_prepared`] as it comes), then arm one timer for
//! [`Agent::poll_timeout`] and call [`Agent::handle_timeout`] when it fires.
//!
//! A task's path (see `ARCHITECTURE.md`): RUN_TASK inserts it STAGING and asks the shell to
//! prepare it ([`Output::Prepare`]: build the container spec, parse its health check); a good
//! spec makes it STARTING and launches it ([`Output::Launch`]); the launch result makes it
//! RUNNING and starts its health checks; the container's end makes it terminal. Every state is
//! a reliable status update: checkpointed first, then forwarded ([`Output::Send`]) once the
//! write that holds it is done, retried with [`crate::task::RETRY_BACKOFF`] until acknowledged.
//! The acknowledgement of the terminal update removes the task and schedules its sandbox for
//! deletion `gc_delay` later.

mod checkpoint;
mod health;
mod record;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use checkpoint::{del_line, encode_meta, put_line, EntryView, Replay, Write};
pub use health::{Health, HealthPolicy, Verdict};
pub use record::{
    container_key, executors_dir, is_run_dir, kill_grace, sandbox_path, TaskKey, TaskRecord,
};

use crate::ids::{AgentId, ExecutorId, FrameworkId, TaskId};
use crate::master::{AgentCommand, AgentMessage, FrameworkRef, ReportedTask, TaskInfo};
use crate::task::{
    AckOutcome, Reason, Source, StatusUpdateManager, StatusUuid, TaskState, TaskStatus,
};
use crate::time::Time;

/// Sandboxes waiting for deletion at most; beyond it the oldest go early.
pub const MAX_GC_QUEUE: usize = 100_000;

/// The journal is replaced by a snapshot once it has grown past this many bytes and past
/// [`COMPACT_RATIO`] times the size of the last snapshot.
pub const COMPACT_MIN_BYTES: usize = 4 << 20;

/// See [`COMPACT_MIN_BYTES`].
pub const COMPACT_RATIO: usize = 4;

/// Checkpoint writes start at most this often (each ends in an fsync); what changes in between
/// goes into the next write. The checkpoint is written behind the agent's work anyway: this
/// only widens what a crash can lose by as much.
pub const MIN_CHECKPOINT_INTERVAL: Duration = Duration::from_millis(10);

/// The agent's settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The work directory (sandboxes live under `<work_dir>/slaves`).
    pub work_dir: PathBuf,
    /// The runtime instance name (stable across restarts: checkpointed in `agent.json`).
    pub instance: String,
    /// Default kill grace period.
    pub grace: Duration,
    /// Kill every task on shutdown.
    pub kill_tasks_on_shutdown: bool,
    /// Completed tasks kept for `/state`.
    pub max_completed: usize,
    /// How long finished tasks' sandboxes are kept.
    pub gc_delay: Duration,
    /// The enabled containerizers (`mesos`, `docker`, `lxc`), as given.
    pub containerizers: Vec<String>,
}

/// What a previous run checkpointed.
#[derive(Debug, Default)]
pub struct Restored {
    /// The id the master gave this agent.
    pub agent_id: Option<AgentId>,
    /// The name this agent's runtimes give their containers (stable across restarts).
    pub instance: String,
    /// Tasks whose terminal update is not yet acknowledged.
    pub tasks: Vec<TaskRecord>,
    /// The status-update streams.
    pub updates: StatusUpdateManager,
    /// Streams with unacknowledged updates for tasks the agent does not have (answers to kills
    /// of unknown tasks).
    pub orphan_streams: Vec<TaskKey>,
}

/// What the shell made of a task it was asked to prepare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// The containerizer its container needs (`mesos`, `docker`, `lxc`).
    pub runtime: String,
    /// Its health check's policy, if it has one.
    pub health: Option<HealthPolicy>,
}

/// How a container ended, as the runtime reports it in Mesos' terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// The terminal state (`TASK_LOST` becomes `TASK_GONE` for partition-aware frameworks).
    pub state: TaskState,
    /// Why.
    pub reason: Option<Reason>,
    /// For the update's message.
    pub message: String,
}

/// What the agent asks its shell to do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Build the task's container spec (and create its framework's `executors` directory), then
    /// answer with [`Agent::handle_prepared`] before going on with the outputs.
    Prepare {
        /// The task ([`Agent::task`] has its record).
        key: TaskKey,
    },
    /// Fetch the task's URIs and launch its container; report with [`Agent::handle_launched`],
    /// then wait for it and report with [`Agent::handle_terminated`].
    Launch {
        /// The task.
        key: TaskKey,
        /// Its container.
        container_id: String,
        /// The runtime to launch it with.
        runtime: String,
    },
    /// Wait for a recovered container; report with [`Agent::handle_terminated`].
    Wait {
        /// The task.
        key: TaskKey,
        /// Its container.
        container_id: String,
        /// Its runtime.
        runtime: String,
        /// The id the runtime knows it by.
        runtime_task_id: TaskId,
    },
    /// Kill a container (its end comes as [`Agent::handle_terminated`]).
    Kill {
        /// The task.
        key: TaskKey,
        /// Its runtime.
        runtime: String,
        /// The id the runtime knows it by.
        runtime_task_id: TaskId,
        /// The grace period between the polite signal and the kill.
        grace: Duration,
    },
    /// Stop (if still running) and collect a container no task owns any more.
    StopOrphan {
        /// Its runtime.
        runtime: String,
        /// The id the runtime knows it by.
        runtime_task_id: TaskId,
        /// Whether it still runs (else it only needs collecting).
        running: bool,
        /// The kill's grace period.
        grace: Duration,
    },
    /// Start probing the task's health: first after its check's delay, then at its interval;
    /// report each result with [`Agent::handle_health`].
    StartHealthChecks {
        /// The task.
        key: TaskKey,
        /// Its container.
        container_id: String,
    },
    /// Stop probing the task's health.
    StopHealthChecks {
        /// The task.
        key: TaskKey,
    },
    /// Send a message to the master.
    Send(AgentId, AgentMessage),
    /// Drop messages queued for the master and not sent yet (every head is sent again).
    DiscardUnsent,
    /// Write to the checkpoint, after the writes before it; report progress with
    /// [`Agent::handle_writes`].
    Checkpoint(Write),
    /// Delete a finished task's sandbox (and its `runs/` and executor directory when empty).
    DeleteSandbox(PathBuf),
}

/// One task in the table.
#[derive(Debug)]
struct Task {
    rec: TaskRecord,
    launched: bool,
    kill_requested: bool,
    terminated: bool,
    /// Its health check's policy, and its health.
    health_policy: Option<HealthPolicy>,
    health: Health,
    /// Whether its health checks run.
    checking: bool,
    /// When checking started (the grace period counts from here).
    checking_since: Option<Time>,
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
            health_policy: None,
            health: Health::default(),
            checking: false,
            checking_since: None,
            kill_reason: None,
            journaled: false,
        }
    }
}

/// A task as the agent shows it (`/state`, metrics).
#[derive(Clone, Copy, Debug)]
pub struct TaskView<'a> {
    /// Its record.
    pub record: &'a TaskRecord,
    /// Whether it reached a terminal state (its terminal update may still wait for its ack).
    pub terminated: bool,
}

/// The agent's state machine (see the module docs).
#[derive(Debug)]
pub struct Agent {
    settings: Settings,
    rng: ChaCha8Rng,
    id: Option<AgentId>,
    registered: bool,
    /// Set by a registration, cleared by the stream that follows it.
    just_registered: bool,
    connected: bool,
    tasks: BTreeMap<TaskKey, Task>,
    completed: VecDeque<TaskRecord>,
    updates: StatusUpdateManager,
    /// Frameworks the master shut down: their updates are acknowledged locally, not sent.
    shut_down: BTreeSet<FrameworkId>,
    /// Update streams of tasks the agent does not have (kills of unknown tasks).
    orphan_streams: BTreeSet<TaskKey>,
    outputs: VecDeque<Output>,
    /// The latest `now` seen.
    now: Time,
    /// Something changed since the last [`Agent::advance`].
    stale: bool,
    /// Status updates waiting for the checkpoint that holds them to be submitted.
    unsynced: Vec<(AgentId, AgentMessage)>,
    /// Status updates waiting for that checkpoint to be on disk: sent once `barrier` writes
    /// are done.
    syncing: VecDeque<(u64, AgentId, AgentMessage)>,
    /// Tasks (or streams) changed since the last checkpoint write.
    dirty: BTreeSet<TaskKey>,
    /// `agent.json` needs writing.
    meta_dirty: bool,
    /// The next checkpoint write is a snapshot.
    snapshot_wanted: bool,
    /// A journal (or `agent.json`) write failed and no snapshot (rewrite) was planned since.
    journal_failed: bool,
    meta_failed: bool,
    /// When the last checkpoint write was planned.
    last_checkpoint: Option<Time>,
    /// Writes emitted, and writes the shell reported done.
    writes_submitted: u64,
    writes_done: u64,
    /// Bytes in the journal, and in its last snapshot.
    journal_bytes: usize,
    snapshot_bytes: usize,
    /// Sandboxes to delete, by deadline (bounded: see [`MAX_GC_QUEUE`]).
    gc: VecDeque<(Time, PathBuf)>,
    /// Terminal states reached since start, for metrics.
    terminal_counts: BTreeMap<TaskState, u64>,
    updates_sent: u64,
    acks_received: u64,
}

impl Agent {
    /// An agent restored from `restored` (or new); `seed` draws its container ids and update
    /// uuids.
    pub fn new(settings: Settings, seed: u64, restored: Option<Restored>) -> Self {
        let cp = restored.unwrap_or_default();
        let tasks = cp
            .tasks
            .into_iter()
            .map(|rec| (rec.key(), Task::new(rec)))
            .collect();
        Agent {
            settings,
            rng: ChaCha8Rng::seed_from_u64(seed),
            id: cp.agent_id,
            registered: false,
            just_registered: false,
            connected: false,
            tasks,
            completed: VecDeque::new(),
            updates: cp.updates,
            shut_down: BTreeSet::new(),
            orphan_streams: cp.orphan_streams.into_iter().collect(),
            outputs: VecDeque::new(),
            now: Time::ZERO,
            stale: true,
            unsynced: Vec::new(),
            syncing: VecDeque::new(),
            dirty: BTreeSet::new(),
            meta_dirty: true,
            snapshot_wanted: true,
            journal_failed: false,
            meta_failed: false,
            last_checkpoint: None,
            writes_submitted: 0,
            writes_done: 0,
            journal_bytes: 0,
            snapshot_bytes: 0,
            gc: VecDeque::new(),
            terminal_counts: BTreeMap::new(),
            updates_sent: 0,
            acks_received: 0,
        }
    }

    // ----- queries -----

    /// The id the master gave this agent.
    pub fn id(&self) -> Option<&AgentId> {
        self.id.as_ref()
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether the master accepted the registration.
    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// Whether the command stream is open.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// A task's record.
    pub fn task(&self, key: &TaskKey) -> Option<&TaskRecord> {
        self.tasks.get(key).map(|t| &t.rec)
    }

    /// The tasks, in key order.
    pub fn tasks(&self) -> impl Iterator<Item = TaskView<'_>> {
        self.tasks.values().map(|t| TaskView {
            record: &t.rec,
            terminated: t.terminated,
        })
    }

    /// Completed tasks (terminal update acknowledged), oldest first.
    pub fn completed(&self) -> impl Iterator<Item = &TaskRecord> {
        self.completed.iter()
    }

    /// The tasks as the registration reports them.
    pub fn reported_tasks(&self) -> Vec<ReportedTask> {
        self.tasks
            .values()
            .map(|t| ReportedTask {
                framework: t.rec.framework.clone(),
                task: t.rec.task.clone(),
                state: t.rec.state,
            })
            .collect()
    }

    /// Terminal states reached since start.
    pub fn terminal_counts(&self) -> &BTreeMap<TaskState, u64> {
        &self.terminal_counts
    }

    /// Status updates produced since start.
    pub fn updates_sent(&self) -> u64 {
        self.updates_sent
    }

    /// Acknowledgements received since start.
    pub fn acks_received(&self) -> u64 {
        self.acks_received
    }

    /// Open status-update streams.
    pub fn pending_streams(&self) -> usize {
        self.updates.stream_count()
    }

    /// Whether a checkpoint write emitted is not reported done yet.
    pub fn writing(&self) -> bool {
        self.writes_done < self.writes_submitted
    }

    // ----- the sans-IO interface -----

    fn at(&mut self, now: Time) -> Time {
        self.now = self.now.max(now);
        self.stale = true;
        self.now
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outputs.is_empty() && self.stale {
            self.stale = false;
            let now = self.now;
            self.advance(now, false);
        }
        self.outputs.pop_front()
    }

    /// When [`Agent::handle_timeout`] is due next: an update retry, a sandbox deletion, or a
    /// checkpoint write held back by [`MIN_CHECKPOINT_INTERVAL`].
    pub fn poll_timeout(&self) -> Option<Time> {
        let checkpoint = if self.writing() {
            None
        } else {
            self.checkpoint_due(self.now)
        };
        [
            self.updates.poll_timeout(),
            self.gc.front().map(|(t, _)| *t),
            checkpoint,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Time passed: resends due updates, deletes due sandboxes, writes a held-back checkpoint.
    pub fn handle_timeout(&mut self, now: Time) {
        let now = self.at(now);
        self.updates.handle_timeout(now);
        while self.gc.front().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, p)) = self.gc.pop_front() {
                self.outputs.push_back(Output::DeleteSandbox(p));
            }
        }
    }

    /// A command from the master.
    pub fn handle_command(&mut self, now: Time, cmd: AgentCommand) {
        let now = self.at(now);
        match cmd {
            AgentCommand::RunTask { framework, task } => self.run_task(framework, task),
            AgentCommand::KillTask {
                framework_id,
                task_id,
            } => self.kill_task(now, (framework_id, task_id)),
            AgentCommand::Acknowledge {
                framework_id,
                task_id,
                uuid,
            } => {
                self.acks_received += 1;
                let outcome = self.updates.acknowledge(now, &framework_id, &task_id, uuid);
                self.after_ack(now, &(framework_id, task_id), outcome);
            }
            AgentCommand::ShutdownFramework { framework_id } => {
                self.shutdown_framework(now, framework_id)
            }
            // Command tasks have no executor to deliver it to (the shell logs it).
            AgentCommand::FrameworkMessage { .. } => {}
            AgentCommand::Ping => {
                if let Some(id) = self.id.clone() {
                    self.outputs.push_back(Output::Send(id, AgentMessage::Pong));
                }
            }
        }
    }

    /// The master accepted the registration (with this id, perhaps a new one).
    pub fn handle_registered(&mut self, now: Time, id: AgentId) {
        let now = self.at(now);
        self.id = Some(id);
        self.registered = true;
        self.just_registered = true;
        // Every head is sent again, with the (new) id: what waits is stale.
        self.outputs.push_back(Output::DiscardUnsent);
        self.updates.flush(now);
        self.meta_dirty = true;
    }

    /// The command stream opened.
    pub fn handle_stream_opened(&mut self, now: Time) {
        let now = self.at(now);
        self.connected = true;
        // After a mere reconnect, updates sent while the stream was down may have been lost
        // with the master: send the heads again (a registration already did).
        if self.registered && !std::mem::take(&mut self.just_registered) {
            self.outputs.push_back(Output::DiscardUnsent);
            self.updates.flush(now);
        }
    }

    /// The command stream dropped (the link reconnects).
    pub fn handle_stream_closed(&mut self, now: Time) {
        self.at(now);
        self.connected = false;
    }

    /// The answer to [`Output::Prepare`]: `Err` says what is wrong with the task.
    pub fn handle_prepared(&mut self, now: Time, key: &TaskKey, result: Result<Prepared, String>) {
        let now = self.at(now);
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        if task.terminated || task.rec.runtime.is_some() {
            return;
        }
        let prepared = match result {
            Ok(p) => p,
            Err(msg) => {
                return self.launch_failed(now, key, msg);
            }
        };
        if !self.settings.containerizers.contains(&prepared.runtime) {
            let msg = format!(
                "the {} containerizer is not enabled on this agent (--containerizers={})",
                prepared.runtime,
                self.settings.containerizers.join(",")
            );
            return self.launch_failed(now, key, msg);
        }
        task.rec.runtime = Some(prepared.runtime.clone());
        task.health_policy = prepared.health;
        let container_id = task.rec.container_id.clone();
        self.update(now, key, TaskState::Starting, Source::Executor, None, None);
        self.outputs.push_back(Output::Launch {
            key: key.clone(),
            container_id,
            runtime: prepared.runtime,
        });
    }

    /// A launch finished (`Err` holds why it failed).
    pub fn handle_launched(
        &mut self,
        now: Time,
        key: &TaskKey,
        container_id: &str,
        result: Result<(), String>,
    ) {
        let now = self.at(now);
        let Some(task) = self
            .tasks
            .get_mut(key)
            .filter(|t| t.rec.container_id == container_id)
        else {
            return;
        };
        match result {
            Ok(()) => {
                task.launched = true;
                if task.kill_requested {
                    self.kill(key);
                } else {
                    self.update(now, key, TaskState::Running, Source::Executor, None, None);
                    self.start_checks(now, key);
                }
            }
            Err(msg) => self.launch_failed(now, key, msg),
        }
    }

    /// A container ended (`Err`: the runtime lost track of it, and says why).
    pub fn handle_terminated(
        &mut self,
        now: Time,
        key: &TaskKey,
        container_id: &str,
        result: Result<Ended, String>,
    ) {
        let now = self.at(now);
        let Some(task) = self
            .tasks
            .get(key)
            .filter(|t| t.rec.container_id == container_id)
        else {
            return;
        };
        if task.terminated {
            return;
        }
        match result {
            Ok(mut ended) => {
                if let Some(why) = &task.kill_reason {
                    ended.message = format!("{why} ({})", ended.message);
                }
                let state = if ended.state == TaskState::Lost {
                    self.lost_state(&key.0)
                } else {
                    ended.state
                };
                self.update(
                    now,
                    key,
                    state,
                    Source::Executor,
                    ended.reason,
                    Some(ended.message),
                );
            }
            Err(e) => self.update(
                now,
                key,
                TaskState::Failed,
                Source::Agent,
                Some(Reason::ExecutorTerminated),
                Some(format!("the agent lost track of the container: {e}")),
            ),
        }
    }

    /// A health check's result (`Err` says why it failed).
    pub fn handle_health(
        &mut self,
        now: Time,
        key: &TaskKey,
        container_id: &str,
        result: Result<(), String>,
    ) {
        let now = self.at(now);
        let Some(task) = self
            .tasks
            .get_mut(key)
            .filter(|t| t.rec.container_id == container_id)
        else {
            return;
        };
        if task.terminated || task.kill_requested {
            return;
        }
        let Some(policy) = task.health_policy else {
            return;
        };
        let in_grace = task
            .checking_since
            .is_some_and(|t| now - t < policy.delay + policy.grace_period);
        match task.health.record(&policy, result.clone(), in_grace) {
            Verdict::Quiet => {}
            Verdict::Changed(_) => self.update(
                now,
                key,
                TaskState::Running,
                Source::Executor,
                Some(Reason::TaskHealthCheckStatusUpdated),
                result.err(),
            ),
            Verdict::Kill(why) => {
                task.kill_reason = Some(why);
                task.kill_requested = true;
                self.kill(key);
            }
        }
    }

    /// Checkpoint writes the shell finished: `done` in all (in the order emitted), and whether
    /// a journal or an `agent.json` write failed since the last report.
    pub fn handle_writes(&mut self, now: Time, done: u64, journal_failed: bool, meta_failed: bool) {
        self.at(now);
        self.writes_done = self.writes_done.max(done);
        self.journal_failed |= journal_failed;
        self.meta_failed |= meta_failed;
    }

    /// Sets the health policy of a restored task (before [`Agent::recover`]).
    pub fn set_health_policy(&mut self, key: &TaskKey, policy: Option<HealthPolicy>) {
        if let Some(t) = self.tasks.get_mut(key) {
            t.health_policy = policy;
        }
    }

    /// After a restart: `found` holds the containers the runtimes recovered, by (runtime, id
    /// the runtime knows it by), with whether each still runs. Adopts the tasks whose container
    /// survived, fails or loses the others, and stops containers no task owns.
    pub fn recover(&mut self, now: Time, found: BTreeMap<(String, TaskId), bool>) {
        let now = self.at(now);
        let keys: Vec<TaskKey> = self.tasks.keys().cloned().collect();
        let mut adopted: BTreeSet<(String, TaskId)> = BTreeSet::new();
        for key in keys {
            let Some(task) = self.tasks.get(&key) else {
                continue;
            };
            if task.terminated {
                continue;
            }
            let state = task.rec.state;
            let container_id = task.rec.container_id.clone();
            let runtime_id = task.rec.runtime_task_id();
            let hit = task
                .rec
                .runtime
                .clone()
                .filter(|r| found.contains_key(&(r.clone(), runtime_id.clone())));
            match hit {
                Some(runtime) => {
                    adopted.insert((runtime.clone(), runtime_id.clone()));
                    if let Some(t) = self.tasks.get_mut(&key) {
                        t.launched = true;
                    }
                    if matches!(state, TaskState::Staging | TaskState::Starting) {
                        self.update(now, &key, TaskState::Running, Source::Executor, None, None);
                    }
                    self.outputs.push_back(Output::Wait {
                        key: key.clone(),
                        container_id,
                        runtime,
                        runtime_task_id: runtime_id,
                    });
                    self.start_checks(now, &key);
                }
                None if matches!(state, TaskState::Staging | TaskState::Starting) => self.update(
                    now,
                    &key,
                    TaskState::Failed,
                    Source::Agent,
                    Some(Reason::ContainerLaunchFailed),
                    Some("the agent restarted while the container was being launched; it was not started".into()),
                ),
                None => {
                    let state = self.lost_state(&key.0);
                    self.update(
                        now,
                        &key,
                        state,
                        Source::Agent,
                        Some(Reason::AgentRestarted),
                        Some("the task's container vanished while the agent was down".into()),
                    );
                }
            }
        }
        // Containers nobody owns any more: stop them, as upstream does with orphans.
        for ((runtime, runtime_task_id), running) in found {
            if adopted.contains(&(runtime.clone(), runtime_task_id.clone())) {
                continue;
            }
            self.outputs.push_back(Output::StopOrphan {
                runtime,
                runtime_task_id,
                running,
                grace: self.settings.grace,
            });
        }
        self.meta_dirty = true;
        self.snapshot_wanted = true;
    }

    /// Sandboxes found on disk at start (`.../runs/<container>` directories, with how long ago
    /// each was last modified): those no task owns are deleted `gc_delay` after that.
    pub fn handle_found_sandboxes(&mut self, now: Time, runs: Vec<(PathBuf, Duration)>) {
        let now = self.at(now);
        let live: BTreeSet<&PathBuf> = self.tasks.values().map(|t| &t.rec.sandbox).collect();
        let due: Vec<(Time, PathBuf)> = runs
            .into_iter()
            .filter(|(p, _)| !live.contains(p))
            .map(|(p, age)| (now + self.settings.gc_delay.saturating_sub(age), p))
            .collect();
        for (at, p) in due {
            self.schedule_gc(at, p);
        }
    }

    /// The agent stops: with `kill_tasks_on_shutdown`, kills every launched task and returns
    /// them with the longest grace period among them (the shell waits that long, plus a
    /// margin, for their ends); else returns nothing.
    pub fn begin_shutdown(&mut self, now: Time) -> (Vec<TaskKey>, Duration) {
        self.at(now);
        if !self.settings.kill_tasks_on_shutdown {
            return (Vec::new(), Duration::ZERO);
        }
        let keys: Vec<TaskKey> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.launched && !t.terminated)
            .map(|(k, _)| k.clone())
            .collect();
        let mut longest = Duration::ZERO;
        for key in &keys {
            if let Some(t) = self.tasks.get_mut(key) {
                t.kill_requested = true;
                longest = longest.max(kill_grace(&t.rec.task, self.settings.grace));
            }
            self.kill(key);
        }
        (keys, longest)
    }

    /// Emits every checkpoint write that is pending now, even with a write in flight or too
    /// soon after the last (the last changes reach the disk before the agent stops).
    pub fn flush_checkpoint(&mut self, now: Time) {
        let now = self.at(now);
        self.stale = false;
        self.advance(now, true);
    }

    // ----- decisions -----

    fn run_task(&mut self, framework: FrameworkRef, task: TaskInfo) {
        let key = (framework.id.clone(), task.task_id.clone());
        if self.tasks.contains_key(&key) {
            return; // a duplicate RUN_TASK
        }
        let Some(agent_id) = self.id.clone() else {
            return; // RUN_TASK before registration
        };
        self.shut_down.remove(&key.0);
        let container_id = self.random_hex(16);
        let sandbox = sandbox_path(
            &self.settings.work_dir,
            &agent_id,
            &framework,
            &task,
            &container_id,
        );
        let container_key = container_key(&task.task_id, &container_id);
        self.tasks.insert(
            key.clone(),
            Task::new(TaskRecord {
                framework,
                task,
                container_id,
                container_key,
                runtime: None,
                sandbox,
                state: TaskState::Staging,
            }),
        );
        self.touch(&key);
        self.outputs.push_back(Output::Prepare { key });
    }

    fn launch_failed(&mut self, now: Time, key: &TaskKey, msg: String) {
        self.update(
            now,
            key,
            TaskState::Failed,
            Source::Agent,
            Some(Reason::ContainerLaunchFailed),
            Some(format!("Failed to launch container: {msg}")),
        );
    }

    fn kill_task(&mut self, now: Time, key: TaskKey) {
        let Some(task) = self.tasks.get_mut(&key) else {
            // As upstream: the master believes the task is here, so tell it that it is not.
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
            let mut status = TaskStatus::new(key.1.clone(), state)
                .with_source(Source::Agent)
                .with_reason(Reason::TaskUnknown)
                .with_message("Cannot kill task: it is not known to this agent")
                .with_timestamp(now)
                .with_uuid(self.random_uuid());
            status.agent_id = self.id.clone();
            // Refused only after a terminal update on that stream: then nothing is owed.
            let _ = self.updates.update(now, key.0.clone(), status);
            self.touch(&key);
            return;
        };
        if task.terminated || task.kill_requested {
            return;
        }
        task.kill_requested = true;
        let launched = task.launched;
        if task.rec.framework.info.has_capability("TASK_KILLING_STATE") {
            self.update(now, &key, TaskState::Killing, Source::Executor, None, None);
        }
        if launched {
            self.kill(&key);
        }
    }

    fn shutdown_framework(&mut self, now: Time, framework_id: FrameworkId) {
        self.shut_down.insert(framework_id.clone());
        let keys: Vec<TaskKey> = self
            .tasks
            .keys()
            .filter(|(f, _)| f == &framework_id)
            .cloned()
            .collect();
        for key in keys {
            // Drop what is in flight: acknowledge each head locally.
            while let Some(uuid) = self
                .updates
                .pending(&key.0, &key.1)
                .first()
                .and_then(|s| s.uuid)
            {
                let outcome = self.updates.acknowledge(now, &key.0, &key.1, uuid);
                self.after_ack(now, &key, outcome);
                if outcome != AckOutcome::Acknowledged {
                    break;
                }
            }
            if let Some(t) = self.tasks.get_mut(&key) {
                if !t.terminated && !t.kill_requested {
                    t.kill_requested = true;
                    if t.launched {
                        self.kill(&key);
                    }
                }
            }
        }
        // The local acknowledgements queued the next heads; they are dropped on drain.
    }

    fn after_ack(&mut self, now: Time, key: &TaskKey, outcome: AckOutcome) {
        if outcome == AckOutcome::StreamClosed {
            if let Some(task) = self.tasks.remove(key) {
                self.schedule_gc(now + self.settings.gc_delay, task.rec.sandbox.clone());
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

    fn start_checks(&mut self, now: Time, key: &TaskKey) {
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        if task.health_policy.is_none() || task.checking || task.terminated {
            return;
        }
        task.checking = true;
        task.checking_since = Some(now);
        self.outputs.push_back(Output::StartHealthChecks {
            key: key.clone(),
            container_id: task.rec.container_id.clone(),
        });
    }

    fn kill(&mut self, key: &TaskKey) {
        let Some(task) = self.tasks.get(key) else {
            return;
        };
        let Some(runtime) = task.rec.runtime.clone() else {
            return;
        };
        self.outputs.push_back(Output::Kill {
            key: key.clone(),
            runtime,
            runtime_task_id: task.rec.runtime_task_id(),
            grace: kill_grace(&task.rec.task, self.settings.grace),
        });
    }

    /// `TASK_GONE` for partition-aware frameworks, else `TASK_LOST`.
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

    /// Queues a reliable update for a task and records its state.
    fn update(
        &mut self,
        now: Time,
        key: &TaskKey,
        state: TaskState,
        source: Source,
        reason: Option<Reason>,
        message: Option<String>,
    ) {
        let uuid = self.random_uuid();
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        let mut status = TaskStatus::new(key.1.clone(), state)
            .with_source(source)
            .with_timestamp(now)
            .with_uuid(uuid);
        status.executor_id = Some(ExecutorId::new(key.1.as_str()));
        status.agent_id = self.id.clone();
        status.reason = reason;
        status.message = message;
        if task.health_policy.is_some() {
            status.healthy = task.health.healthy;
        }
        task.rec.state = state;
        self.updates_sent += 1;
        if state.is_terminal() {
            *self.terminal_counts.entry(state).or_default() += 1;
            task.terminated = true;
            if std::mem::take(&mut task.checking) {
                self.outputs
                    .push_back(Output::StopHealthChecks { key: key.clone() });
            }
        }
        // Refused only after the stream's terminal update, which `terminated` prevents.
        let _ = self.updates.update(now, key.0.clone(), status);
        self.touch(key);
    }

    fn touch(&mut self, key: &TaskKey) {
        if !self.dirty.contains(key) {
            self.dirty.insert(key.clone());
        }
    }

    fn random_uuid(&mut self) -> StatusUuid {
        StatusUuid(self.rng.gen::<[u8; 16]>())
    }

    fn random_hex(&mut self, bytes: usize) -> String {
        (0..bytes)
            .map(|_| format!("{:02x}", self.rng.gen::<u8>()))
            .collect()
    }

    /// Queues a sandbox (a `.../runs/<container>` directory under the work dir) for deletion.
    fn schedule_gc(&mut self, at: Time, sandbox: PathBuf) {
        if !is_run_dir(&self.settings.work_dir, &sandbox) {
            return;
        }
        // Keep the queue ordered by deadline (deadlines are nearly always increasing).
        let pos = self.gc.partition_point(|(t, _)| *t <= at);
        self.gc.insert(pos, (at, sandbox));
        while self.gc.len() > MAX_GC_QUEUE {
            if let Some((_, p)) = self.gc.pop_front() {
                self.outputs.push_back(Output::DeleteSandbox(p));
            }
        }
    }

    /// After inputs: forwards what the update streams produced (once checkpointed), plans the
    /// next checkpoint write, releases updates whose write is done.
    fn advance(&mut self, now: Time, force: bool) {
        self.drain_updates(now);
        self.plan_checkpoint(now, force);
        self.release_durable();
    }

    fn drain_updates(&mut self, now: Time) {
        while let Some(fwd) = self.updates.poll_output() {
            if self.shut_down.contains(&fwd.framework) {
                // Upstream drops a removed framework's streams; we acknowledge them locally.
                if let Some(uuid) = fwd.status.uuid {
                    let key = (fwd.framework.clone(), fwd.status.task_id.clone());
                    let outcome = self.updates.acknowledge(now, &key.0, &key.1, uuid);
                    self.after_ack(now, &key, outcome);
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
    }

    /// When the next checkpoint write may start, if something waits for one and it is too soon
    /// after the last (see [`MIN_CHECKPOINT_INTERVAL`]).
    fn checkpoint_due(&self, now: Time) -> Option<Time> {
        let failed = self.journal_failed || self.meta_failed;
        if self.dirty.is_empty() && !self.meta_dirty && !self.snapshot_wanted && !failed {
            return None;
        }
        let due = self.last_checkpoint? + MIN_CHECKPOINT_INTERVAL;
        (due > now).then_some(due)
    }

    fn emit_write(&mut self, w: Write) {
        self.writes_submitted += 1;
        self.outputs.push_back(Output::Checkpoint(w));
    }

    /// Writes what changed since the last write, unless a write is still in flight or the last
    /// was too recent (`force`: anyway). Every so often the journal is replaced by a snapshot.
    fn plan_checkpoint(&mut self, now: Time, force: bool) {
        if !force && (self.writing() || self.checkpoint_due(now).is_some()) {
            return;
        }
        if std::mem::take(&mut self.journal_failed) {
            self.snapshot_wanted = true;
        }
        if std::mem::take(&mut self.meta_failed) {
            self.meta_dirty = true;
        }
        if self.dirty.is_empty() && !self.meta_dirty && !self.snapshot_wanted {
            return;
        }
        self.last_checkpoint = Some(now);
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
                put_line(&mut buf, entry);
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
                put_line(&mut buf, entry);
            }
            self.snapshot_bytes = buf.len();
            self.journal_bytes = buf.len();
            self.emit_write(Write::Replace(buf));
            // After a failed append, updates waiting for it are durable with this snapshot.
            let barrier = self.writes_submitted;
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
                        put_line(&mut buf, entry);
                    }
                    None if updates.is_empty() => {
                        del_line(&mut buf, &key.0, &key.1);
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
                        put_line(&mut buf, entry);
                        self.orphan_streams.insert(key.clone());
                    }
                }
            }
            self.journal_bytes += buf.len();
            self.emit_write(Write::Append(buf));
        }
        // After the tasks: a checkpoint of the earlier format keeps its tasks in `agent.json`
        // until the journal has them.
        if self.meta_dirty {
            self.meta_dirty = false;
            let bytes = encode_meta(self.id.as_ref(), &self.settings.instance);
            self.emit_write(Write::Meta(bytes));
        }
    }

    /// Moves status updates along as their checkpoint is written: those whose task changes
    /// were all submitted wait for the writes submitted so far; those whose writes are done
    /// (and did not fail) are sent.
    fn release_durable(&mut self) {
        if !self.unsynced.is_empty() && self.dirty.is_empty() && !self.snapshot_wanted {
            let barrier = self.writes_submitted;
            for (id, msg) in self.unsynced.drain(..) {
                self.syncing.push_back((barrier, id, msg));
            }
        }
        if self.journal_failed {
            return; // the snapshot that follows is what makes them durable
        }
        while self
            .syncing
            .front()
            .is_some_and(|(b, _, _)| *b <= self.writes_done)
        {
            if let Some((_, id, msg)) = self.syncing.pop_front() {
                self.outputs.push_back(Output::Send(id, msg));
            }
        }
    }
}
