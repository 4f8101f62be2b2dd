//! `DockerRuntime`: tasks as Docker containers, through the Engine API (bollard).
//!
//! - Image: used when present locally; pulled when missing or when `force_pull_image` is set. A
//!   missing image that cannot be pulled fails the launch with
//!   `image <ref> is not present locally and could not be pulled: <why>`.
//! - Container: named `mesos-<instance>-<task>` and labelled `mesos.instance`, `mesos.task_id`
//!   and `mesos.sandbox` (so recovery finds it by label), plus the task's labels. The sandbox is
//!   bind-mounted at `/mnt/mesos/sandbox` (the working directory, as in Mesos) and the
//!   container's stdout/stderr are copied into the sandbox's `stdout`/`stderr`.
//! - Network BRIDGE/HOST/NONE; BRIDGE port mappings publish the container port on the host port
//!   the scheduler assigned. cpus become `CpuShares` (1024 per cpu), mem a hard `Memory` limit
//!   without swap; an OOM kill ends the task FAILED with the memory reason.
//! - Kill: `docker stop` with the grace period (rounded up to whole seconds), i.e. SIGTERM, then
//!   SIGKILL. Containers are removed once their termination is known.
//! - Supported `parameters` keys (with or without a leading `--`): `env`/`e`, `label`/`l`,
//!   `hostname`/`h`, `user`/`u`, `workdir`/`w`, `add-host`, `cap-add`, `cap-drop`, `dns`,
//!   `init`, `volume`/`v`. Others are rejected rather than silently ignored.
//! - The spec's `user` is not applied: as in Mesos, Docker containers run as the image's user
//!   unless a `user` parameter says otherwise.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StatsOptions, StopContainerOptions,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures::StreamExt;
use mesos_core::ids::TaskId;
use tokio::io::AsyncWriteExt;

use crate::checkpoint::{Checkpoints, Record};
use crate::error::{RuntimeError, SpecError};
use crate::naming::safe_name;
use crate::runtime::{ContainerRuntime, Recovered, ResourceUsage};
use crate::sandbox::{self, task_env, CONTAINER_SANDBOX};
use crate::spec::{CommandSpec, ContainerInfo, ContainerSpec, DockerInfo, Network, VolumeMode};
use crate::table::{Slot, Table};
use crate::termination::{ExitStatus, TerminalState, Termination, TerminationReason};

/// Label holding the runtime instance that launched a container.
pub const LABEL_INSTANCE: &str = "mesos.instance";
/// Label holding the task id, verbatim.
pub const LABEL_TASK_ID: &str = "mesos.task_id";
/// Label holding the sandbox path on the host.
pub const LABEL_SANDBOX: &str = "mesos.sandbox";

const SUPPORTED_PARAMETERS: &str =
    "env, label, hostname, user, workdir, add-host, cap-add, cap-drop, dns, init, volume";

/// Settings of a [`DockerRuntime`].
#[derive(Clone, Debug)]
pub struct DockerConfig {
    /// The daemon: `unix:///path`, `/path` or `tcp://host:port`. `None`: `$DOCKER_HOST`, else
    /// `unix:///var/run/docker.sock`.
    pub endpoint: Option<String>,
    /// Names this runtime among others on the same daemon (e.g. the agent id); recovery only
    /// adopts containers with this instance label. `[A-Za-z0-9_.-]`, other characters become `_`.
    pub instance: String,
    /// Where launches are checkpointed, so containers removed while the agent was down are
    /// reported.
    pub checkpoint_dir: PathBuf,
    /// How long a pull may take before the launch fails.
    pub pull_timeout: Duration,
    /// Per-request timeout of the Docker client, in seconds.
    pub request_timeout_secs: u64,
}

impl DockerConfig {
    /// Defaults: endpoint from `$DOCKER_HOST`, 5 minute pulls, 120 s requests.
    pub fn new(instance: impl Into<String>, checkpoint_dir: impl Into<PathBuf>) -> Self {
        DockerConfig {
            endpoint: None,
            instance: instance.into(),
            checkpoint_dir: checkpoint_dir.into(),
            pull_timeout: Duration::from_secs(300),
            request_timeout_secs: 120,
        }
    }
}

struct DockerHandle {
    name: String,
    checkpoint: PathBuf,
    mem_limit: Option<u64>,
    cpus: Option<f64>,
}

/// Runs tasks as Docker containers; see the [module docs](self).
pub struct DockerRuntime {
    endpoint: String,
    instance: String,
    pull_timeout: Duration,
    request_timeout_secs: u64,
    client: tokio::sync::Mutex<Option<Docker>>,
    checkpoints: Checkpoints,
    table: Table<DockerHandle>,
}

fn is_unreachable(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::HyperLegacyError { .. }
            | BollardError::IOError { .. }
            | BollardError::SocketNotFoundError(_)
            | BollardError::RequestTimeoutError
    )
}

fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// `image` with `:latest` added when it has neither tag nor digest, as the docker CLI does.
fn image_ref(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || image.contains('@') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// The parts of a create body that `parameters` can change.
#[derive(Default)]
struct Extra {
    env: Vec<String>,
    labels: Vec<(String, String)>,
    hostname: Option<String>,
    user: Option<String>,
    workdir: Option<String>,
    extra_hosts: Vec<String>,
    cap_add: Vec<String>,
    cap_drop: Vec<String>,
    dns: Vec<String>,
    init: Option<bool>,
    binds: Vec<String>,
}

fn translate_parameters(params: &[(String, String)]) -> Result<Extra, SpecError> {
    let mut x = Extra::default();
    for (key, value) in params {
        let k = key.trim_start_matches('-');
        let bad = |why| SpecError::BadDockerParameter {
            key: key.clone(),
            value: value.clone(),
            why,
        };
        match k {
            "env" | "e" => {
                if !value.contains('=') || value.starts_with('=') {
                    return Err(bad("expected NAME=value"));
                }
                x.env.push(value.clone());
            }
            "label" | "l" => {
                let (lk, lv) = value.split_once('=').unwrap_or((value.as_str(), ""));
                if lk.is_empty() {
                    return Err(bad("expected key=value"));
                }
                x.labels.push((lk.to_string(), lv.to_string()));
            }
            "hostname" | "h" => x.hostname = Some(value.clone()),
            "user" | "u" => x.user = Some(value.clone()),
            "workdir" | "w" => x.workdir = Some(value.clone()),
            "add-host" => x.extra_hosts.push(value.clone()),
            "cap-add" => x.cap_add.push(value.clone()),
            "cap-drop" => x.cap_drop.push(value.clone()),
            "dns" => x.dns.push(value.clone()),
            "init" => {
                x.init = Some(match value.as_str() {
                    "" | "true" => true,
                    "false" => false,
                    _ => return Err(bad("expected true or false")),
                })
            }
            "volume" | "v" => {
                if !value.contains(':') {
                    return Err(bad("expected /host/path:/container/path[:ro]"));
                }
                x.binds.push(value.clone());
            }
            _ => {
                return Err(SpecError::UnsupportedDockerParameter {
                    key: key.clone(),
                    supported: SUPPORTED_PARAMETERS,
                })
            }
        }
    }
    Ok(x)
}

impl DockerRuntime {
    /// A runtime for the daemon in `config`. Does not connect yet: an unreachable daemon shows
    /// up as [`RuntimeError::DockerUnreachable`] on the first call that needs it.
    pub fn new(config: DockerConfig) -> Self {
        let endpoint = config
            .endpoint
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
        let instance: String = config
            .instance
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        DockerRuntime {
            endpoint,
            instance: if instance.is_empty() {
                "default".into()
            } else {
                instance
            },
            pull_timeout: config.pull_timeout,
            request_timeout_secs: config.request_timeout_secs,
            client: tokio::sync::Mutex::new(None),
            checkpoints: Checkpoints::new(config.checkpoint_dir),
            table: Table::new(),
        }
    }

    /// The daemon endpoint in use.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The container name for a task.
    pub fn container_name(&self, task_id: &TaskId) -> String {
        format!("mesos-{}-{}", self.instance, safe_name(task_id.as_str()))
    }

    fn unreachable(&self, source: BollardError) -> RuntimeError {
        RuntimeError::DockerUnreachable {
            endpoint: self.endpoint.clone(),
            source,
        }
    }

    /// A connected client, negotiated down to the daemon's API version; cached once it works.
    async fn client(&self) -> Result<Docker, RuntimeError> {
        let mut cached = self.client.lock().await;
        if let Some(c) = cached.as_ref() {
            return Ok(c.clone());
        }
        let ep = self.endpoint.as_str();
        let connected = if ep.starts_with("tcp://") || ep.starts_with("http://") {
            Docker::connect_with_http(ep, self.request_timeout_secs, API_DEFAULT_VERSION)
        } else {
            Docker::connect_with_unix(ep, self.request_timeout_secs, API_DEFAULT_VERSION)
        };
        let docker = connected.map_err(|e| self.unreachable(e))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| self.unreachable(e))?;
        *cached = Some(docker.clone());
        Ok(docker)
    }

    fn docker_err(&self, op: &'static str, container: &str, source: BollardError) -> RuntimeError {
        if is_unreachable(&source) {
            self.unreachable(source)
        } else {
            RuntimeError::Docker {
                op,
                container: container.to_string(),
                source,
            }
        }
    }

    async fn ensure_image(
        &self,
        docker: &Docker,
        image: &str,
        force_pull: bool,
    ) -> Result<(), RuntimeError> {
        let present = match docker.inspect_image(image).await {
            Ok(_) => true,
            Err(e) if is_not_found(&e) => false,
            Err(e) => return Err(self.docker_err("inspect image", image, e)),
        };
        if present && !force_pull {
            return Ok(());
        }
        let pull = async {
            let opts = CreateImageOptions {
                from_image: Some(image.to_string()),
                ..Default::default()
            };
            let mut progress = docker.create_image(Some(opts), None, None);
            while let Some(step) = progress.next().await {
                step?;
            }
            Ok::<(), BollardError>(())
        };
        let failure = match tokio::time::timeout(self.pull_timeout, pull).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) if is_unreachable(&e) => return Err(self.unreachable(e)),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("the pull did not finish within {:?}", self.pull_timeout),
        };
        if present {
            tracing::warn!(image, cause = %failure, "forced pull failed; using the local image");
            Ok(())
        } else {
            Err(RuntimeError::ImageUnavailable {
                image: image.to_string(),
                cause: failure,
            })
        }
    }

    fn create_body(
        &self,
        spec: &ContainerSpec,
        info: &DockerInfo,
        image: &str,
        extra: Extra,
    ) -> ContainerCreateBody {
        let mut env: Vec<String> = task_env(spec, CONTAINER_SANDBOX)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.extend(extra.env);
        let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        labels.extend(extra.labels);
        labels.insert(LABEL_INSTANCE.into(), self.instance.clone());
        labels.insert(LABEL_TASK_ID.into(), spec.task_id.as_str().into());
        labels.insert(
            LABEL_SANDBOX.into(),
            spec.sandbox.to_string_lossy().into_owned(),
        );
        let (entrypoint, cmd) = match &spec.command {
            Some(CommandSpec::Shell(s)) => (
                Some(vec!["/bin/sh".into(), "-c".into()]),
                Some(vec![s.clone()]),
            ),
            Some(CommandSpec::Argv(v)) => (None, Some(v.clone())),
            None => (None, None),
        };
        let mut binds = vec![format!("{}:{CONTAINER_SANDBOX}:rw", spec.sandbox.display())];
        for v in &info.volumes {
            let mode = match v.mode {
                VolumeMode::Rw => "rw",
                VolumeMode::Ro => "ro",
            };
            binds.push(format!(
                "{}:{}:{mode}",
                v.host_path.display(),
                v.container_path
            ));
        }
        binds.extend(extra.binds);
        let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        let mut exposed = Vec::new();
        for m in &info.port_mappings {
            let key = format!("{}/{}", m.container_port, m.protocol);
            exposed.push(key.clone());
            port_bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: None,
                    host_port: Some(m.host_port.to_string()),
                });
        }
        let network_mode = match info.network {
            Network::Bridge => "bridge",
            Network::Host => "host",
            Network::None => "none",
        };
        let mem = spec.limits.mem_bytes().map(|b| b as i64);
        let opt_vec = |v: Vec<String>| (!v.is_empty()).then_some(v);
        ContainerCreateBody {
            image: Some(image.to_string()),
            env: Some(env),
            labels: Some(labels),
            entrypoint,
            cmd,
            hostname: extra.hostname,
            user: extra.user,
            working_dir: Some(extra.workdir.unwrap_or_else(|| CONTAINER_SANDBOX.into())),
            exposed_ports: opt_vec(exposed),
            attach_stdin: Some(false),
            tty: Some(false),
            host_config: Some(HostConfig {
                binds: Some(binds),
                network_mode: Some(network_mode.into()),
                port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
                privileged: Some(info.privileged),
                cpu_shares: spec.limits.cpu_shares().map(|s| s as i64),
                memory: mem,
                memory_swap: mem,
                extra_hosts: opt_vec(extra.extra_hosts),
                cap_add: opt_vec(extra.cap_add),
                cap_drop: opt_vec(extra.cap_drop),
                dns: opt_vec(extra.dns),
                init: extra.init,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    async fn remove(docker: &Docker, name: &str) {
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        match docker.remove_container(name, Some(opts)).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => tracing::warn!(container = name, error = %e, "could not remove container"),
        }
    }

    /// Starts watching a running container: copies its logs (from `since`, unix seconds) into
    /// the sandbox, waits for its exit, then concludes.
    fn watch(
        &self,
        docker: Docker,
        slot: std::sync::Arc<Slot<DockerHandle>>,
        sandbox: PathBuf,
        since: i32,
        append: bool,
    ) {
        self.table.spawn_watcher(async move {
            let name = slot.handle.name.clone();
            let logs = copy_logs(&docker, &name, &sandbox, since, append);
            let (exit, ()) = tokio::join!(wait_exit(&docker, &name), logs);
            let t = conclude(&docker, &slot, exit).await;
            slot.finish(t);
        });
    }
}

/// Copies the container's stdout/stderr into the sandbox files until the container stops.
async fn copy_logs(docker: &Docker, name: &str, sandbox: &Path, since: i32, append: bool) {
    let open = |file: &str| {
        let path = sandbox.join(file);
        async move {
            tokio::fs::OpenOptions::new()
                .create(true)
                .append(append)
                .write(true)
                .truncate(!append)
                .open(&path)
                .await
        }
    };
    let (Ok(mut out), Ok(mut err)) = (open("stdout").await, open("stderr").await) else {
        tracing::warn!(container = name, sandbox = %sandbox.display(), "cannot open sandbox log files");
        return;
    };
    let opts = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        since,
        ..Default::default()
    };
    let mut stream = docker.logs(name, Some(opts));
    while let Some(item) = stream.next().await {
        let res = match item {
            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                out.write_all(&message).await
            }
            Ok(LogOutput::StdErr { message }) => err.write_all(&message).await,
            Ok(LogOutput::StdIn { .. }) => Ok(()),
            Err(e) => {
                tracing::debug!(container = name, error = %e, "log stream ended");
                break;
            }
        };
        if let Err(e) = res {
            tracing::warn!(container = name, error = %e, "cannot write container output to the sandbox");
            break;
        }
    }
    let _ = out.flush().await;
    let _ = err.flush().await;
}

/// Waits for the container to stop; `None` if the engine lost it.
async fn wait_exit(docker: &Docker, name: &str) -> Option<i64> {
    loop {
        match docker.wait_container(name, None).next().await {
            Some(Ok(r)) => return Some(r.status_code),
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => return Some(code),
            Some(Err(e)) if is_not_found(&e) => return None,
            other => {
                // A dropped connection or a daemon restart: look, and wait again if it runs.
                tracing::debug!(container = name, result = ?other.map(|r| r.err()), "wait interrupted");
                match docker.inspect_container(name, None).await {
                    Ok(i) if i.state.as_ref().and_then(|s| s.running) == Some(true) => {}
                    Ok(i) => return i.state.and_then(|s| s.exit_code),
                    Err(e) if is_not_found(&e) => return None,
                    Err(_) => {}
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// How often, and how long apart, a SIGKILLed container is inspected again for the OOM flag.
const OOM_FLAG_CHECKS: u32 = 10;
const OOM_FLAG_WAIT: Duration = Duration::from_millis(100);

/// Inspects a stopped container for its exit code and OOM flag, removes it, and decides.
async fn conclude(docker: &Docker, slot: &Slot<DockerHandle>, exit: Option<i64>) -> Termination {
    let h = &slot.handle;
    let inspect = || async {
        docker
            .inspect_container(&h.name, None)
            .await
            .ok()
            .and_then(|i| i.state)
    };
    let mut state = inspect().await;
    // dockerd learns of an OOM kill from an event of its own, which can come after the exit
    // it reports: a SIGKILLed container with a memory limit is looked at again for a moment
    // before its exit is taken as a plain failure.
    let sigkilled = state.as_ref().and_then(|s| s.exit_code).or(exit) == Some(137);
    if sigkilled && h.mem_limit.is_some() && !slot.kill_requested() {
        for _ in 0..OOM_FLAG_CHECKS {
            if state.as_ref().and_then(|s| s.oom_killed) == Some(true) {
                break;
            }
            tokio::time::sleep(OOM_FLAG_WAIT).await;
            state = inspect().await;
        }
    }
    DockerRuntime::remove(docker, &h.name).await;
    let oom = state.as_ref().and_then(|s| s.oom_killed).unwrap_or(false);
    let code = state.as_ref().and_then(|s| s.exit_code).or(exit);
    let status = code.map(|c| ExitStatus::Code(c as i32));
    if slot.kill_requested() {
        return Termination::killed(status);
    }
    if oom {
        return Termination::memory_limit(status, h.mem_limit, None);
    }
    match status {
        Some(s) => Termination::from_exit(s),
        None => Termination {
            state: TerminalState::Failed,
            reason: Some(TerminationReason::EngineLostContainer),
            status: None,
            message: format!(
                "docker container {} disappeared while it was watched",
                h.name
            ),
        },
    }
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn launch(&self, spec: ContainerSpec) -> Result<(), RuntimeError> {
        spec.validate()?;
        let ContainerInfo::Docker(info) = &spec.container else {
            return Err(SpecError::WrongContainerKind {
                runtime: "docker",
                kind: spec.container.kind(),
            }
            .into());
        };
        let extra = translate_parameters(&info.parameters)?;
        let task_id = spec.task_id.clone();
        let _reservation = self.table.reserve(&task_id)?;
        let outputs = sandbox::prepare(&spec.sandbox, None)?;
        drop(outputs);
        let docker = self.client().await?;
        let image = image_ref(&info.image);
        self.ensure_image(&docker, &image, info.force_pull_image)
            .await?;

        let name = self.container_name(&task_id);
        let body = self.create_body(&spec, info, &image, extra);
        let opts = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| self.docker_err("create", &name, e))?;

        let record = Record {
            task_id: task_id.to_string(),
            sandbox: spec.sandbox.clone(),
            pid: None,
            start_time: None,
            name: Some(name.clone()),
            cgroup: None,
            mem_limit: spec.limits.mem_bytes(),
            cpus: spec.limits.cpus,
        };
        let checkpoint = match self.checkpoints.write(&record) {
            Ok(p) => p,
            Err(e) => {
                Self::remove(&docker, &name).await;
                return Err(e);
            }
        };
        if let Err(e) = docker.start_container(&name, None).await {
            Self::remove(&docker, &name).await;
            let _ = std::fs::remove_file(&checkpoint);
            return Err(self.docker_err("start", &name, e));
        }
        tracing::info!(task = %task_id, container = %name, "launched docker container");
        let handle = DockerHandle {
            name,
            checkpoint,
            mem_limit: spec.limits.mem_bytes(),
            cpus: spec.limits.cpus,
        };
        let slot = self.table.insert(task_id, handle);
        self.watch(docker, slot, spec.sandbox.clone(), 0, false);
        Ok(())
    }

    async fn wait(&self, task_id: &TaskId) -> Result<Termination, RuntimeError> {
        let checkpoint = self.table.get(task_id)?.handle.checkpoint.clone();
        self.table
            .wait(task_id, || {
                let _ = std::fs::remove_file(&checkpoint);
            })
            .await
    }

    async fn kill(&self, task_id: &TaskId, grace: Duration) -> Result<(), RuntimeError> {
        let slot = self.table.get(task_id)?;
        if slot.is_finished() {
            return Ok(());
        }
        slot.request_kill();
        let docker = self.client().await?;
        let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
        let opts = StopContainerOptions {
            t: Some(secs.min(i32::MAX as u64) as i32),
            signal: None,
        };
        match docker.stop_container(&slot.handle.name, Some(opts)).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => {}
            Err(e) => return Err(self.docker_err("stop", &slot.handle.name, e)),
        }
        slot.terminated().await;
        Ok(())
    }

    async fn usage(&self, task_id: &TaskId) -> Result<ResourceUsage, RuntimeError> {
        let slot = self.table.get(task_id)?;
        let docker = self.client().await?;
        let opts = StatsOptions {
            stream: false,
            one_shot: true,
        };
        let stats = docker
            .stats(&slot.handle.name, Some(opts))
            .next()
            .await
            .ok_or_else(|| RuntimeError::UnknownContainer(task_id.clone()))?
            .map_err(|e| self.docker_err("stats", &slot.handle.name, e))?;
        let cpu = stats
            .cpu_stats
            .and_then(|c| c.cpu_usage)
            .and_then(|u| u.total_usage)
            .unwrap_or(0);
        let mem = stats.memory_stats.and_then(|m| m.usage).unwrap_or(0);
        Ok(ResourceUsage {
            cpu_time: Duration::from_nanos(cpu),
            mem_bytes: mem,
            mem_limit_bytes: slot.handle.mem_limit,
            cpus_limit: slot.handle.cpus,
        })
    }

    async fn recover(&self, checkpoint_dir: &Path) -> Result<Vec<Recovered>, RuntimeError> {
        let docker = self.client().await?;
        let mut filters = HashMap::new();
        filters.insert(
            "label".to_string(),
            vec![format!("{LABEL_INSTANCE}={}", self.instance)],
        );
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let containers = docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| self.docker_err("list", "containers", e))?;
        let records = Checkpoints::read_all(checkpoint_dir)?;
        let cps = Checkpoints::new(checkpoint_dir);
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for c in containers {
            let labels = c.labels.unwrap_or_default();
            let Some(task) = labels.get(LABEL_TASK_ID) else {
                continue;
            };
            let task_id = TaskId::new(task.clone());
            seen.insert(task.clone());
            if self.table.contains(&task_id) {
                continue;
            }
            let name = c
                .names
                .and_then(|n| n.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_else(|| self.container_name(&task_id));
            let sandbox = PathBuf::from(labels.get(LABEL_SANDBOX).cloned().unwrap_or_default());
            let record = records.iter().find(|r| &r.task_id == task);
            let handle = DockerHandle {
                name: name.clone(),
                checkpoint: cps.path(task),
                mem_limit: record.and_then(|r| r.mem_limit),
                cpus: record.and_then(|r| r.cpus),
            };
            let running = c.state.map(|s| s.to_string() == "running").unwrap_or(false);
            let slot = self.table.insert(task_id.clone(), handle);
            if running {
                tracing::info!(task = %task_id, container = %name, "recovered running docker container");
                // Resume copying output from the last write; a line may repeat, none is lost.
                let since = std::fs::metadata(sandbox.join("stdout"))
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs() as i32)
                    .unwrap_or(0);
                self.watch(docker.clone(), slot, sandbox.clone(), since, true);
                out.push(Recovered {
                    task_id,
                    sandbox,
                    terminated: None,
                });
            } else {
                let t = conclude(&docker, &slot, None).await;
                slot.finish(t.clone());
                out.push(Recovered {
                    task_id,
                    sandbox,
                    terminated: Some(t),
                });
            }
        }
        for r in records {
            let task_id = TaskId::new(r.task_id.clone());
            if seen.contains(&r.task_id) || self.table.contains(&task_id) {
                continue;
            }
            let name = r
                .name
                .clone()
                .unwrap_or_else(|| self.container_name(&task_id));
            let t = Termination::vanished(&format!("docker container {name}"));
            tracing::warn!(task = %task_id, message = %t.message, "container gone at recovery");
            let handle = DockerHandle {
                name,
                checkpoint: cps.path(&r.task_id),
                mem_limit: r.mem_limit,
                cpus: r.cpus,
            };
            let slot = self.table.insert(task_id.clone(), handle);
            slot.finish(t.clone());
            out.push(Recovered {
                task_id,
                sandbox: r.sandbox,
                terminated: Some(t),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untagged_images_get_latest() {
        assert_eq!(image_ref("daocloud.io/nginx"), "daocloud.io/nginx:latest");
        assert_eq!(image_ref("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(
            image_ref("mesos-test/httpd:latest"),
            "mesos-test/httpd:latest"
        );
        assert_eq!(image_ref("a@sha256:00"), "a@sha256:00");
    }

    #[test]
    fn parameters_translate_or_are_rejected_by_name() {
        let p = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert_eq!(
            translate_parameters(&p("--env", "A=1")).unwrap().env,
            vec!["A=1"]
        );
        assert_eq!(
            translate_parameters(&p("label", "x=y")).unwrap().labels,
            vec![("x".into(), "y".into())]
        );
        let err = translate_parameters(&p("pid", "host")).err().unwrap();
        assert!(err.to_string().contains("\"pid\""), "{err}");
        assert!(matches!(
            translate_parameters(&p("env", "novalue")),
            Err(SpecError::BadDockerParameter { .. })
        ));
    }
}
