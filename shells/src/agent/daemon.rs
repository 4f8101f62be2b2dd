//! The agent daemon's event loop: one task owns the [`mesos_core::agent::Agent`] core and
//! `select!`s over a closed set of inputs (commands from the master, launch, termination and
//! health results from workers, queries from the HTTP server, checkpoint writes done, the
//! core's timer, shutdown). After each it drains the core's outputs and carries them out:
//! runtime calls (launch, wait, kill) and health probes run in worker tasks that report back as
//! inputs, so a slow Docker pull never holds up a PING; checkpoint writes go to the writer
//! thread; messages to the sender task. Every decision is the core's.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mesos_core::agent::{self as core, Ended, HealthPolicy, Output, Prepared, Write};
use mesos_core::attributes::Attributes;
use mesos_core::ids::{AgentId, TaskId};
use mesos_core::master::{Address, AgentCommand, AgentMessage, AgentRegistration};
use mesos_core::resources::Resources;
use mesos_core::time::Time;
use mesos_runtime::{ContainerRuntime, ContainerSpec, Termination};
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use super::checkpoint::{self, AgentCheckpoint, Job};
use super::fetcher::{fetch_all, parse_uris, FetchUri};
use super::health::{self, HealthCheck};
use super::spec::{executors_dir, task_spec, SpecContext};
use super::AgentDaemonError;

pub use mesos_core::agent::{
    TaskKey, COMPACT_MIN_BYTES, COMPACT_RATIO, MAX_GC_QUEUE, MIN_CHECKPOINT_INTERVAL,
};

/// Messages waiting for room in the sender's queue, at most (beyond, updates wait for their
/// retry and pongs are dropped). Each update stream has one update in flight, so this is only
/// reached with that many tasks changing state at once.
pub const MAX_OUTBOX: usize = 64 * 1024;

/// The version the agent reports.
pub const VERSION: &str = "1.11.0";

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

/// What the shell keeps of a task between the core's `Prepare` and `Launch`.
struct Staged {
    spec: ContainerSpec,
    uris: Vec<FetchUri>,
}

/// The agent daemon: the core plus what carries out its outputs.
pub struct Agent {
    core: core::Agent,
    identity: Identity,
    switch_user: bool,
    runtimes: BTreeMap<String, Arc<dyn ContainerRuntime>>,
    last_now: Time,
    inputs: mpsc::Sender<Input>,
    outbound: mpsc::Sender<(AgentId, AgentMessage)>,
    /// Messages for the sender that did not fit in its queue yet, oldest first.
    outbox: VecDeque<(AgentId, AgentMessage)>,
    workers: JoinSet<()>,
    writer: checkpoint::Writer,
    /// Specs of tasks prepared and not launched yet.
    staged: BTreeMap<TaskKey, Staged>,
    /// Health checks of tasks whose checking has not started yet.
    checks: BTreeMap<TaskKey, HealthCheck>,
    /// The running checkers.
    checkers: BTreeMap<TaskKey, AbortHandle>,
    /// Frameworks' `executors` directories already marked with
    /// [`mesos_runtime::spread_subdirectories`] by this process (bounded: cleared when large;
    /// marking again is harmless).
    spread_dirs: std::collections::BTreeSet<PathBuf>,
    /// For the fetcher and HTTP health checks.
    http: reqwest::Client,
    started: Instant,
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

fn policy(check: &HealthCheck) -> HealthPolicy {
    HealthPolicy {
        delay: check.delay,
        grace_period: check.grace_period,
        consecutive_failures: check.consecutive_failures,
    }
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
        let core_settings = core::Settings {
            work_dir: settings.work_dir,
            instance,
            grace: settings.grace,
            kill_tasks_on_shutdown: settings.kill_tasks_on_shutdown,
            max_completed: settings.max_completed,
            gc_delay: settings.gc_delay,
            containerizers: settings.containerizers,
        };
        Agent {
            core: core::Agent::new(core_settings, rand::random(), checkpoint),
            identity,
            switch_user: settings.switch_user,
            runtimes,
            last_now: Time::ZERO,
            inputs,
            outbound,
            outbox: VecDeque::new(),
            workers: JoinSet::new(),
            writer,
            staged: BTreeMap::new(),
            checks: BTreeMap::new(),
            checkers: BTreeMap::new(),
            spread_dirs: std::collections::BTreeSet::new(),
            http: reqwest::Client::new(),
            started: Instant::now(),
        }
    }

    /// The runtime instance name.
    pub fn instance(&self) -> &str {
        &self.core.settings().instance
    }

    fn now(&mut self) -> Time {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        self.last_now = self.last_now.max(Time::from_nanos(nanos));
        self.last_now
    }

    fn work_dir(&self) -> &std::path::Path {
        &self.core.settings().work_dir
    }

    /// Re-attaches to the containers that survived the restart; reports the rest.
    pub async fn recover(&mut self) -> Result<(), AgentDaemonError> {
        let mut found: BTreeMap<(String, TaskId), bool> = BTreeMap::new();
        for (name, rt) in &self.runtimes {
            let dir = runtime_dir(self.work_dir(), name);
            let recovered = rt
                .recover(&dir)
                .await
                .map_err(|e| AgentDaemonError::Recovery {
                    runtime: name.clone(),
                    reason: e.to_string(),
                })?;
            for r in recovered {
                found.insert((name.clone(), r.task_id), r.terminated.is_none());
            }
        }
        // The health checks of tasks that may be adopted, rebuilt from their `TaskInfo`.
        if let Some(agent_id) = self.core.id().cloned() {
            let mut restored = Vec::new();
            for t in self.core.tasks().filter(|t| !t.terminated) {
                let rec = t.record;
                if rec.task.health_check.is_none() {
                    continue;
                }
                let ctx = SpecContext {
                    agent_id: &agent_id,
                    framework: &rec.framework,
                    sandbox: rec.sandbox.clone(),
                    switch_user: false,
                };
                match task_spec(&rec.task, &ctx)
                    .and_then(|spec| health::parse(rec.task.health_check.as_ref(), &spec))
                {
                    Ok(Some(hc)) => restored.push((rec.key(), hc)),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(task = %rec.task.task_id, error = %e, "cannot restore the health check")
                    }
                }
            }
            for (key, hc) in restored {
                self.core.set_health_policy(&key, Some(policy(&hc)));
                self.checks.insert(key, hc);
            }
        }
        let now = self.now();
        self.core.recover(now, found);
        self.drain();
        // Checks of tasks that were not adopted never start.
        let core = &self.core;
        self.checks
            .retain(|k, _| core.task(k).is_some_and(|r| !r.state.is_terminal()));
        Ok(())
    }

    /// Finds sandboxes left by earlier runs; those of no current task are deleted `gc_delay`
    /// after they were last modified.
    pub fn scan_sandboxes(&mut self) {
        let runs = super::sandboxes::find_runs(self.work_dir());
        let now = self.now();
        self.core.handle_found_sandboxes(now, runs);
    }

    /// The registration the connection task sends.
    fn registration(&self) -> AgentRegistration {
        AgentRegistration {
            id: self.core.id().cloned(),
            hostname: self.identity.hostname.clone(),
            address: self.identity.address.clone(),
            resources: self.identity.resources.clone(),
            attributes: self.identity.attributes.clone(),
            tasks: self.core.reported_tasks(),
            version: VERSION.to_string(),
        }
    }

    /// Carries out what the core asks for, then moves what fits to the sender.
    fn drain(&mut self) {
        while let Some(out) = self.core.poll_output() {
            self.execute(out);
        }
        self.pump_outbox();
    }

    fn execute(&mut self, out: Output) {
        match out {
            Output::Prepare { key } => {
                let result = self.prepare(&key);
                let prepared = result.map(|(staged, check)| {
                    let runtime = staged.spec.container.kind().to_string();
                    let health = check.as_ref().map(policy);
                    self.staged.insert(key.clone(), staged);
                    if let Some(hc) = check {
                        self.checks.insert(key.clone(), hc);
                    }
                    Prepared { runtime, health }
                });
                let now = self.now();
                self.core.handle_prepared(now, &key, prepared);
                if self.core.task(&key).is_none_or(|r| r.runtime.is_none()) {
                    self.staged.remove(&key);
                    self.checks.remove(&key);
                }
            }
            Output::Launch {
                key,
                container_id,
                runtime,
            } => self.launch(key, container_id, runtime),
            Output::Wait {
                key,
                container_id,
                runtime,
                runtime_task_id,
            } => {
                tracing::info!(task = %key.1, framework = %key.0, %runtime, "recovered task");
                if let Some(rt) = self.runtimes.get(&runtime).cloned() {
                    self.spawn_wait(rt, key, container_id, runtime_task_id);
                }
            }
            Output::Kill {
                key,
                runtime,
                runtime_task_id,
                grace,
            } => {
                tracing::info!(task = %key.1, framework = %key.0, "killing task");
                if let Some(rt) = self.runtimes.get(&runtime).cloned() {
                    self.workers.spawn(async move {
                        if let Err(e) = rt.kill(&runtime_task_id, grace).await {
                            tracing::warn!(task = %runtime_task_id, error = %e, "kill failed");
                        }
                    });
                }
            }
            Output::StopOrphan {
                runtime,
                runtime_task_id,
                running,
                grace,
            } => {
                let Some(rt) = self.runtimes.get(&runtime).cloned() else {
                    return;
                };
                tracing::warn!(task = %runtime_task_id, %runtime, "stopping an orphan container");
                self.workers.spawn(async move {
                    if running {
                        let _ = rt.kill(&runtime_task_id, grace).await;
                    }
                    let _ = rt.wait(&runtime_task_id).await;
                });
            }
            Output::StartHealthChecks { key, container_id } => {
                if let Some(check) = self.checks.remove(&key) {
                    self.start_checker(key, container_id, check);
                }
            }
            Output::StopHealthChecks { key } => {
                self.checks.remove(&key);
                if let Some(h) = self.checkers.remove(&key) {
                    h.abort();
                }
            }
            Output::Send(id, msg) => {
                if let AgentMessage::StatusUpdate { status, .. } = &msg {
                    if status.state.is_terminal() {
                        tracing::info!(task = %status.task_id, state = %status.state,
                            message = status.message.as_deref().unwrap_or(""), "task ended");
                    }
                }
                self.send(id, msg);
            }
            Output::DiscardUnsent => self.outbox.clear(),
            Output::Checkpoint(w) => self.writer.submit(match w {
                Write::Meta(b) => Job::Meta(b),
                Write::Append(b) => Job::Append(b),
                Write::Replace(b) => Job::Replace(b),
            }),
            Output::DeleteSandbox(p) => {
                self.workers.spawn(super::sandboxes::delete(p));
            }
        }
    }

    /// Builds a task's container spec, health check and fetch list: `Err` says what is wrong
    /// with the task.
    fn prepare(&mut self, key: &TaskKey) -> Result<(Staged, Option<HealthCheck>), String> {
        let (Some(agent_id), Some(rec)) = (self.core.id().cloned(), self.core.task(key).cloned())
        else {
            return Err("the task is gone".into());
        };
        self.prepare_executors_dir(&agent_id, &rec.framework);
        tracing::info!(task = %key.1, framework = %key.0, sandbox = %rec.sandbox.display(), "launching task");
        let ctx = SpecContext {
            agent_id: &agent_id,
            framework: &rec.framework,
            sandbox: rec.sandbox.clone(),
            switch_user: self.switch_user,
        };
        let mut spec = task_spec(&rec.task, &ctx)?;
        spec.task_id = rec.runtime_task_id();
        spec.env.insert(
            "MESOS_TASK_ID".into(),
            rec.task.task_id.as_str().to_string(),
        );
        let check = health::parse(rec.task.health_check.as_ref(), &spec)?;
        let uris = rec
            .task
            .command
            .as_ref()
            .map(|c| c.uris.as_slice())
            .unwrap_or(&[]);
        let uris = parse_uris(uris)?;
        Ok((Staged { spec, uris }, check))
    }

    /// Creates the framework's `executors` directory once and marks it so that the file system
    /// spreads the tasks' sandboxes over its block groups (see
    /// [`mesos_runtime::spread_subdirectories`]: on this kind of ext4 it makes a sandbox several
    /// times cheaper to create after many were deleted). Failures only cost that speed.
    fn prepare_executors_dir(
        &mut self,
        agent_id: &AgentId,
        framework: &mesos_core::master::FrameworkRef,
    ) {
        let dir = executors_dir(self.work_dir(), agent_id, framework);
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

    fn launch(&mut self, key: TaskKey, container_id: String, runtime: String) {
        let (Some(staged), Some(rt)) = (
            self.staged.remove(&key),
            self.runtimes.get(&runtime).cloned(),
        ) else {
            let now = self.now();
            self.core.handle_launched(
                now,
                &key,
                &container_id,
                Err(format!(
                    "the {runtime} containerizer has no container spec for the task"
                )),
            );
            return;
        };
        let tx = self.inputs.clone();
        let http = self.http.clone();
        self.workers.spawn(async move {
            let Staged { spec, uris } = staged;
            let runtime_id = spec.task_id.clone();
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
                let result = rt.wait(&runtime_id).await.map_err(|e| e.to_string());
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

    /// Starts the task's health checker: after the check's delay, then every interval.
    fn start_checker(&mut self, key: TaskKey, container_id: String, check: HealthCheck) {
        let tx = self.inputs.clone();
        let http = self.http.clone();
        let key2 = key.clone();
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
        if let Some(old) = self.checkers.insert(key, handle) {
            old.abort();
        }
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

    /// Tells the core how far the checkpoint writer got.
    fn report_writes(&mut self) {
        let now = self.now();
        let done = self.writer.completed();
        let journal_failed = self.writer.take_journal_failure();
        let meta_failed = self.writer.take_meta_failure();
        self.core
            .handle_writes(now, done, journal_failed, meta_failed);
    }

    fn on_terminated(
        &mut self,
        key: TaskKey,
        container_id: String,
        result: Result<Termination, String>,
    ) {
        self.checks.remove(&key);
        let result = result.map(|t| {
            let (state, reason) = t.to_mesos();
            Ended {
                state,
                reason,
                message: t.message,
            }
        });
        let now = self.now();
        self.core
            .handle_terminated(now, &key, &container_id, result);
    }

    fn handle(&mut self, input: Input) -> Result<(), AgentDaemonError> {
        let now = self.now();
        match input {
            Input::Command(cmd) => {
                if let AgentCommand::FrameworkMessage {
                    framework_id,
                    executor_id,
                    ..
                } = &*cmd
                {
                    tracing::warn!(framework = %framework_id, executor = %executor_id,
                        "dropping a framework message: command tasks have no executor to deliver it to");
                }
                self.core.handle_command(now, *cmd);
            }
            Input::RegistrationWanted(reply) => {
                let _ = reply.send(self.registration());
            }
            Input::Registered(id) => {
                if self.core.id().is_some_and(|old| old != &id) {
                    tracing::warn!(old = ?self.core.id(), new = %id, "the master gave this agent a new id");
                }
                self.core.handle_registered(now, id);
            }
            Input::StreamOpened => self.core.handle_stream_opened(now),
            Input::StreamClosed => self.core.handle_stream_closed(now),
            Input::Refused(body) => return Err(AgentDaemonError::RegistrationRefused(body)),
            Input::Removed(body) => {
                return Err(AgentDaemonError::Removed(format!(
                    "{} ({body})",
                    self.core.id().map(|i| i.as_str()).unwrap_or("?")
                )))
            }
            Input::Launched {
                key,
                container_id,
                result,
            } => {
                if result.is_err() {
                    self.checks.remove(&key);
                }
                self.core.handle_launched(now, &key, &container_id, result);
            }
            Input::Terminated {
                key,
                container_id,
                result,
            } => self.on_terminated(key, container_id, result),
            Input::Health {
                key,
                container_id,
                result,
            } => {
                if let Err(why) = &result {
                    tracing::debug!(task = %key.1, %why, "health check failed");
                }
                self.core.handle_health(now, &key, &container_id, result);
            }
            Input::State(reply) => {
                let _ = reply.send(super::state::state_json(&self.core, &self.identity));
            }
            Input::Metrics(reply) => {
                let uptime = self.started.elapsed().as_secs_f64();
                let _ = reply.send(super::state::metrics_json(
                    &self.core,
                    &self.identity,
                    uptime,
                ));
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
            self.drain();
            let timer = self.core.poll_timeout().map(|due| {
                let now = self.now();
                Instant::now() + due.saturating_duration_since(now)
            });
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
                    self.core.handle_timeout(now);
                }
                Some(_) = self.workers.join_next(), if !self.workers.is_empty() => {}
                // A checkpoint write is done: the next covers what changed since, and the
                // updates it held can go. Armed even when no write seems in flight: one that
                // finished since the last look left its notification behind.
                _ = self.writer.idle() => self.report_writes(),
                // The sender's queue has room again.
                permit = self.outbound.clone().reserve_owned(), if !self.outbox.is_empty() => {
                    if let (Ok(permit), Some(m)) = (permit, self.outbox.pop_front()) {
                        permit.send(m);
                    }
                }
            }
        }
        self.shutdown(inputs).await;
        // The last changes reach the disk before `run` returns.
        self.report_writes();
        let now = self.now();
        self.core.flush_checkpoint(now);
        self.drain();
        let writer = self.writer;
        let _ = tokio::task::spawn_blocking(move || writer.close()).await;
        Ok(())
    }

    async fn shutdown(&mut self, mut inputs: mpsc::Receiver<Input>) {
        // Acknowledgements already received are applied, so their updates are not resent.
        while let Ok(input) = inputs.try_recv() {
            match input {
                Input::Command(cmd) if matches!(*cmd, AgentCommand::Acknowledge { .. }) => {
                    let now = self.now();
                    self.core.handle_command(now, *cmd);
                }
                Input::Terminated {
                    key,
                    container_id,
                    result,
                } => self.on_terminated(key, container_id, result),
                _ => {}
            }
        }
        let now = self.now();
        let (keys, longest) = self.core.begin_shutdown(now);
        if keys.is_empty() {
            tracing::info!(
                tasks = self.core.tasks().count(),
                "agent stopping; tasks keep running"
            );
            return;
        }
        tracing::info!(tasks = keys.len(), "agent stopping; killing its tasks");
        self.drain();
        // Record how they ended (bounded: grace plus a margin).
        let deadline = Instant::now() + longest + Duration::from_secs(5);
        let mut waiting: std::collections::BTreeSet<TaskKey> = keys.into_iter().collect();
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
                    self.on_terminated(key, container_id, result);
                }
                Some(Input::RegistrationWanted(reply)) => {
                    let _ = reply.send(self.registration());
                }
                Some(_) => {}
                None => break,
            }
        }
        self.drain();
    }
}

/// Where runtime `name` keeps its checkpoints.
pub fn runtime_dir(work_dir: &std::path::Path, name: &str) -> PathBuf {
    work_dir.join("meta").join("runtimes").join(name)
}
