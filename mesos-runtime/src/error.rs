//! Errors: one enum for bad specs, one for everything a runtime call can hit.
//!
//! A launch that fails returns an error and leaves nothing behind (no process, no container); the
//! agent turns it into `TASK_FAILED` with `REASON_CONTAINER_LAUNCH_FAILED` and the error's text as
//! the message, so every variant says what was wrong and with which value.

use std::io;
use std::path::PathBuf;

use mesos_core::ids::TaskId;
use mesos_core::task::{Reason, TaskState};

use crate::spec::Network;

/// A container spec no runtime can run. Found by [`crate::ContainerSpec::validate`] or by a
/// runtime that does not support a setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// No command, or only whitespace, and no image default to fall back to.
    #[error("task {task_id}: the command is empty")]
    EmptyCommand {
        /// The task.
        task_id: String,
    },
    /// The task id is empty or holds control characters.
    #[error("task id {0:?} is empty or holds control characters")]
    BadTaskId(String),
    /// An argument holds a NUL byte, which no `execve` can pass.
    #[error("command argument {0:?} holds a NUL byte")]
    NulInArgument(String),
    /// A network mode that is not BRIDGE, HOST or NONE.
    #[error("unknown network mode {0:?} (expected BRIDGE, HOST or NONE)")]
    UnknownNetworkMode(String),
    /// A port mapping protocol that is not tcp or udp.
    #[error("unknown port mapping protocol {0:?} (expected tcp or udp)")]
    UnknownProtocol(String),
    /// A host port of 0: the scheduler must assign host ports from the offer.
    #[error("port {container_port} has no host port assigned (0); the scheduler must assign one")]
    UnassignedHostPort {
        /// The container port of the mapping (or 0 for a bare host port).
        container_port: u16,
    },
    /// Port mappings asked for on a network without port publishing.
    #[error("port mappings need BRIDGE networking, but the task asks for {network}")]
    PortMappingsNeedBridge {
        /// The network asked for.
        network: Network,
    },
    /// An environment variable name that is empty or holds `=` or NUL.
    #[error("environment variable name {0:?} is empty or holds '=' or NUL")]
    BadEnvName(String),
    /// An environment variable value that holds NUL (or a newline, for LXC).
    #[error("environment variable {name} has a value this runtime cannot pass (NUL or newline)")]
    BadEnvValue {
        /// The variable.
        name: String,
    },
    /// A cpu limit that is not a positive number.
    #[error("cpus limit {0} is not a positive number")]
    BadCpus(f64),
    /// A memory limit that is not a number of at least 4 MB.
    #[error("mem limit {0} MB is not a number of at least 4 MB")]
    BadMem(f64),
    /// The sandbox path is not absolute.
    #[error("sandbox path {0:?} is not absolute")]
    RelativeSandbox(PathBuf),
    /// A Docker spec without an image.
    #[error("the docker image name is empty")]
    EmptyImage,
    /// A volume with a relative path.
    #[error("volume {host_path:?}:{container_path} needs absolute paths on both sides")]
    RelativeVolume {
        /// Path inside the container.
        container_path: String,
        /// Path on the host.
        host_path: PathBuf,
    },
    /// A Docker parameter this runtime does not translate.
    #[error("docker parameter {key:?} is not supported (supported: {supported})")]
    UnsupportedDockerParameter {
        /// The parameter's key.
        key: String,
        /// The supported keys.
        supported: &'static str,
    },
    /// A Docker parameter with a value that does not parse.
    #[error("docker parameter {key}={value:?} is malformed: {why}")]
    BadDockerParameter {
        /// The parameter's key.
        key: String,
        /// Its value.
        value: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The spec is for another containerizer.
    #[error("the {runtime} runtime cannot launch a {kind} container")]
    WrongContainerKind {
        /// This runtime.
        runtime: &'static str,
        /// What the spec asks for.
        kind: &'static str,
    },
    /// A setting this runtime does not support.
    #[error("the {runtime} runtime does not support {what}")]
    Unsupported {
        /// This runtime.
        runtime: &'static str,
        /// The setting.
        what: String,
    },
}

/// Everything a [`crate::ContainerRuntime`] call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The spec is invalid; nothing was started.
    #[error("invalid container spec: {0}")]
    Spec(#[from] SpecError),
    /// The task already has a container here.
    #[error("task {0} already has a container in this runtime")]
    AlreadyLaunched(TaskId),
    /// No container for that task (never launched, or its termination was already collected).
    #[error("no container for task {0} in this runtime")]
    UnknownContainer(TaskId),
    /// The sandbox cannot be created or written.
    #[error("sandbox {path:?} is not usable: {source}")]
    Sandbox {
        /// The sandbox or the file in it.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The user to run as does not exist.
    #[error("user {0:?} does not exist on this host")]
    UnknownUser(String),
    /// The process could not be started.
    #[error("could not start {program:?} for task {task_id}: {source}")]
    Spawn {
        /// The task.
        task_id: TaskId,
        /// The program.
        program: String,
        /// The OS error.
        source: io::Error,
    },
    /// The container's cgroup could not be set up.
    #[error("cgroup {path:?} for task {task_id} could not be set up: {source}")]
    Cgroup {
        /// The task.
        task_id: TaskId,
        /// The cgroup directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A checkpoint file could not be written or read.
    #[error("checkpoint {path:?}: {source}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The Docker daemon did not answer.
    #[error("the Docker daemon at {endpoint} is unreachable: {source}")]
    DockerUnreachable {
        /// Where we looked for it.
        endpoint: String,
        /// The client error.
        source: bollard::errors::Error,
    },
    /// The image is neither local nor pullable.
    #[error("image {image} is not present locally and could not be pulled: {cause}")]
    ImageUnavailable {
        /// The image reference.
        image: String,
        /// Why the pull failed.
        cause: String,
    },
    /// A Docker API call failed.
    #[error("docker {op} of {container} failed: {source}")]
    Docker {
        /// The API operation (`create`, `start`, `stop`…).
        op: &'static str,
        /// The container or image.
        container: String,
        /// The client error.
        source: bollard::errors::Error,
    },
    /// An `lxc-*` tool failed.
    #[error("{command} failed ({status}): {stderr}")]
    Lxc {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// The runtime object was dropped (agent shutting down) while a call waited on it.
    #[error("the runtime stopped watching task {0}")]
    Shutdown(TaskId),
}

impl RuntimeError {
    /// The status update for a task whose launch failed with this error: `TASK_FAILED` with
    /// `REASON_CONTAINER_LAUNCH_FAILED`, the error's text being the message (as Mesos' agent
    /// reports a containerizer launch failure).
    pub fn launch_failure_status(&self) -> (TaskState, Reason) {
        (TaskState::Failed, Reason::ContainerLaunchFailed)
    }
}
