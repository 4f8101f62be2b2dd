//! The one trait every containerizer implements.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use mesos_core::ids::TaskId;

use crate::error::RuntimeError;
use crate::spec::ContainerSpec;
use crate::termination::Termination;

/// Resource usage of a running container (a subset of Mesos' `ResourceStatistics`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ResourceUsage {
    /// CPU time used so far (user + system).
    pub cpu_time: Duration,
    /// Memory in use, in bytes.
    pub mem_bytes: u64,
    /// The memory limit in force, if any.
    pub mem_limit_bytes: Option<u64>,
    /// The cpu limit in force, in cores, if any.
    pub cpus_limit: Option<f64>,
}

/// A container found again by [`ContainerRuntime::recover`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// Its task.
    pub task_id: TaskId,
    /// Its sandbox on the host.
    pub sandbox: PathBuf,
    /// `None` if it is still running; otherwise how it ended while the agent was down (or that
    /// it vanished). Either way [`ContainerRuntime::wait`] now answers for it.
    pub terminated: Option<Termination>,
}

/// A containerizer: launches containers from specs, watches them, kills them and finds them
/// again after an agent restart.
///
/// The agent holds several of these as `Arc<dyn ContainerRuntime>` keyed by [`name`](Self::name).
/// For each task it calls [`launch`](Self::launch), spawns a task awaiting
/// [`wait`](Self::wait), may call [`kill`](Self::kill), and at startup calls
/// [`recover`](Self::recover) once before launching anything.
///
/// Containers outlive the runtime object: dropping it stops the watching, not the containers,
/// which is what lets a restarted agent recover them.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use mesos_runtime::{ContainerRuntime, ContainerSpec, ProcessRuntime, ProcessConfig, TerminalState};
///
/// let dir = std::env::temp_dir().join(format!("mesos-rt-doc-{}", std::process::id()));
/// let runtime: Arc<dyn ContainerRuntime> =
///     Arc::new(ProcessRuntime::new(ProcessConfig::new(dir.join("checkpoints"))));
/// let spec = ContainerSpec::shell("hello-1", "echo hi", dir.join("sandbox"));
/// runtime.launch(spec).await?;
/// let end = runtime.wait(&"hello-1".into()).await?;
/// assert_eq!(end.state, TerminalState::Finished);
/// assert_eq!(std::fs::read_to_string(dir.join("sandbox/stdout"))?, "hi\n");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait ContainerRuntime: Send + Sync {
    /// The containerizer's name (`mesos`, `docker`, `lxc`).
    fn name(&self) -> &'static str;

    /// Starts the container and returns once it runs (the agent then sends `TASK_RUNNING`).
    /// On error nothing is left behind: no process, no container, no checkpoint.
    async fn launch(&self, spec: ContainerSpec) -> Result<(), RuntimeError>;

    /// Waits for the container to end and returns how. Several callers may wait at once; once a
    /// wait has returned, the container is forgotten and later calls fail with
    /// [`RuntimeError::UnknownContainer`].
    async fn wait(&self, task_id: &TaskId) -> Result<Termination, RuntimeError>;

    /// Asks the container to stop (SIGTERM or the engine's equivalent), waits up to `grace`,
    /// then forces it (SIGKILL), and returns once it is gone. Its termination is then `KILLED`.
    /// Killing a container that already ended is not an error.
    async fn kill(&self, task_id: &TaskId, grace: Duration) -> Result<(), RuntimeError>;

    /// Current resource usage of a running container.
    async fn usage(&self, task_id: &TaskId) -> Result<ResourceUsage, RuntimeError>;

    /// Finds the containers this runtime launched before the agent restarted, using the
    /// checkpoints under `checkpoint_dir` (the directory the runtime was configured with) and
    /// the engine's own listing. Running ones are watched again; ones that ended or vanished are
    /// reported with their termination, never silently forgotten.
    async fn recover(&self, checkpoint_dir: &Path) -> Result<Vec<Recovered>, RuntimeError>;
}
