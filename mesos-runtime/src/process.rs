//! `ProcessRuntime`: Mesos' own containerizer. A task is a process tree in a sandbox, in its own
//! session (so a kill reaches the whole tree) and, where the host allows, its own cgroup with
//! the task's cpu and memory limits.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use async_trait::async_trait;
use mesos_core::ids::TaskId;
use nix::unistd::{Gid, Uid, User};

use crate::cgroups::Cgroups;
use crate::error::{RuntimeError, SpecError};
use crate::runtime::{ContainerRuntime, Recovered, ResourceUsage};
use crate::sandbox::task_env;
use crate::spec::{ContainerInfo, ContainerSpec};
use crate::supervisor::{Plan, Supervisor};
use crate::termination::Termination;

/// The `PATH` tasks get unless configured otherwise.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Settings of a [`ProcessRuntime`].
#[derive(Clone, Debug)]
pub struct ProcessConfig {
    /// Where launches are checkpointed (one journal file, see `checkpoint`).
    pub checkpoint_dir: PathBuf,
    /// Use cgroups for limits and accounting when the host allows it.
    pub cgroups: bool,
    /// The cgroup file system root.
    pub cgroups_root: PathBuf,
    /// The cgroup (in each hierarchy) under which containers get theirs.
    pub cgroup_parent: String,
    /// `PATH` for tasks; nothing else of the agent's environment is passed on.
    pub path: String,
    /// At recovery, empty cgroups under the parent that belong to no recovered container and
    /// are at least this old are removed (left by tasks that ended while no agent watched).
    pub stale_cgroup_age: Duration,
}

impl ProcessConfig {
    /// Defaults: cgroups on, under `/sys/fs/cgroup/<hierarchy>/mesos-rs`.
    pub fn new(checkpoint_dir: impl Into<PathBuf>) -> Self {
        ProcessConfig {
            checkpoint_dir: checkpoint_dir.into(),
            cgroups: true,
            cgroups_root: PathBuf::from("/sys/fs/cgroup"),
            cgroup_parent: "mesos-rs".into(),
            path: DEFAULT_PATH.into(),
            stale_cgroup_age: Duration::from_secs(60),
        }
    }
}

static LIMITS_OFF: Once = Once::new();

/// Detects cgroups as configured; says once per process, in the log, when limits are off.
pub(crate) fn detect_cgroups(enabled: bool, root: &Path, parent: &str) -> Option<Cgroups> {
    let result = if enabled {
        Cgroups::detect(root, parent)
    } else {
        Err("disabled in the configuration".into())
    };
    match result {
        Ok(c) => {
            tracing::debug!(version = c.version(), parent, "cgroups in use for limits");
            Some(c)
        }
        Err(why) => {
            LIMITS_OFF.call_once(|| {
                tracing::warn!(reason = %why, "cgroups are not usable: tasks run without cpu and memory limits");
            });
            None
        }
    }
}

/// Looks up the user a task runs as.
pub(crate) fn resolve_user(user: &Option<String>) -> Result<Option<(Uid, Gid)>, RuntimeError> {
    let Some(name) = user else { return Ok(None) };
    match User::from_name(name) {
        Ok(Some(u)) => Ok(Some((u.uid, u.gid))),
        _ => Err(RuntimeError::UnknownUser(name.clone())),
    }
}

/// Runs tasks as plain processes (Mesos' default containerizer).
///
/// - The sandbox gets `stdout` and `stderr`; the task runs there with `MESOS_SANDBOX`,
///   `MESOS_TASK_ID`, `PORT0..`, `PORT`, `PORTS`, `PATH` and the spec's env, nothing else.
/// - Kill: SIGTERM to the task's process group, the grace period, then SIGKILL to the group
///   and to everything left in its cgroup.
/// - Limits: cgroup v2 where mounted, else v1 (`memory.limit_in_bytes`, `cpu.shares`); an OOM
///   kill ends the task FAILED with the memory reason. Without usable cgroups tasks still run,
///   and the log says once that limits are off.
/// - Recovery: by checkpointed pid plus process start time.
pub struct ProcessRuntime {
    sup: Supervisor,
    path: String,
}

impl ProcessRuntime {
    /// A runtime with the given settings. Never fails: unusable cgroups only turn limits off.
    pub fn new(config: ProcessConfig) -> Self {
        let cgroups = detect_cgroups(config.cgroups, &config.cgroups_root, &config.cgroup_parent);
        ProcessRuntime {
            sup: Supervisor::new(
                "mesos",
                config.checkpoint_dir,
                cgroups,
                config.stale_cgroup_age,
            ),
            path: config.path,
        }
    }
}

#[async_trait]
impl ContainerRuntime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "mesos"
    }

    async fn launch(&self, spec: ContainerSpec) -> Result<(), RuntimeError> {
        spec.validate()?;
        if !matches!(spec.container, ContainerInfo::Mesos) {
            return Err(SpecError::WrongContainerKind {
                runtime: "mesos",
                kind: spec.container.kind(),
            }
            .into());
        }
        let run_as = resolve_user(&spec.user)?;
        let path = self.path.clone();
        let build = |spec: &ContainerSpec| {
            let sandbox = spec.sandbox.to_string_lossy().into_owned();
            let mut env = vec![("PATH".to_string(), path)];
            let task = task_env(spec, &sandbox);
            env.retain(|(k, _)| !task.iter().any(|(t, _)| t == k));
            env.extend(task);
            let argv = spec
                .command
                .as_ref()
                .map(|c| c.to_argv())
                .unwrap_or_default();
            Ok(Plan {
                argv,
                env,
                run_as,
                apply_limits: true,
                oom_by_peak: false,
                name: None,
                join_cgroup: true,
            })
        };
        self.sup.launch(&spec, build, run_as).await
    }

    async fn wait(&self, task_id: &TaskId) -> Result<Termination, RuntimeError> {
        self.sup.wait(task_id).await
    }

    async fn kill(&self, task_id: &TaskId, grace: Duration) -> Result<(), RuntimeError> {
        self.sup.kill(task_id, grace).await
    }

    async fn usage(&self, task_id: &TaskId) -> Result<ResourceUsage, RuntimeError> {
        self.sup.usage(task_id)
    }

    async fn recover(&self, checkpoint_dir: &Path) -> Result<Vec<Recovered>, RuntimeError> {
        self.sup.recover(checkpoint_dir, |_| true).await
    }
}
