//! What to run: the container spec the agent builds from a task.
//!
//! The spec is a plain value, independent of the v1 JSON wire types: the agent converts a
//! `TaskInfo` into it, so the runtimes never see protobuf-shaped data and tests can build specs by
//! hand. [`ContainerSpec::validate`] catches what no runtime could run (an empty command, an env
//! name with `=` in it, a port mapping without a host port) before anything touches the machine.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use mesos_core::ids::TaskId;

use crate::error::SpecError;

/// How the task's command is given, as in Mesos' `CommandInfo.shell`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandSpec {
    /// A shell string, run as `/bin/sh -c <string>`.
    Shell(String),
    /// A program and its arguments, run directly (no shell). For Docker these become the
    /// container's `Cmd`, appended to the image's entrypoint.
    Argv(Vec<String>),
}

impl CommandSpec {
    /// The argv to execute, with shell strings wrapped in `/bin/sh -c`.
    pub fn to_argv(&self) -> Vec<String> {
        match self {
            CommandSpec::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
            CommandSpec::Argv(v) => v.clone(),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            CommandSpec::Shell(s) => s.trim().is_empty(),
            CommandSpec::Argv(v) => v.first().is_none_or(|p| p.trim().is_empty()),
        }
    }
}

/// Resource limits of one container. `None` means unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Limits {
    /// CPU share, in cores (Mesos `cpus`); becomes cgroup cpu shares (`1024 * cpus`).
    pub cpus: Option<f64>,
    /// Memory limit in MB (Mesos `mem`, 1 MB = 1 MiB); exceeding it kills the container.
    pub mem_mb: Option<f64>,
}

impl Limits {
    /// The memory limit in bytes, if any.
    pub fn mem_bytes(&self) -> Option<u64> {
        self.mem_mb.map(|mb| (mb * 1024.0 * 1024.0) as u64)
    }

    /// The cgroup v1 / Docker cpu shares for the cpu limit (Mesos: 1024 per cpu, at least 2).
    pub fn cpu_shares(&self) -> Option<u64> {
        self.cpus.map(|c| ((c * 1024.0) as u64).max(2))
    }
}

/// A network mode, as in Mesos' `ContainerInfo.DockerInfo.Network`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Network {
    /// The engine's default bridge, with port mappings to host ports.
    Bridge,
    /// The host's network namespace.
    Host,
    /// A network namespace with only a loopback device.
    None,
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Network::Bridge => "BRIDGE",
            Network::Host => "HOST",
            Network::None => "NONE",
        })
    }
}

impl FromStr for Network {
    type Err = SpecError;

    /// Parses Mesos' and Marathon's names (`BRIDGE`, `HOST`, `NONE`, any case).
    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s.to_ascii_uppercase().as_str() {
            "BRIDGE" => Ok(Network::Bridge),
            "HOST" => Ok(Network::Host),
            "NONE" => Ok(Network::None),
            _ => Err(SpecError::UnknownNetworkMode(s.to_string())),
        }
    }
}

/// A transport protocol of a port mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// TCP (the default, as in Marathon).
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

impl FromStr for Protocol {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            _ => Err(SpecError::UnknownProtocol(s.to_string())),
        }
    }
}

/// A container port published on a host port the scheduler assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortMapping {
    /// The port inside the container.
    pub container_port: u16,
    /// The host port from the task's `ports` resource; never 0 here (the scheduler assigns it).
    pub host_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

/// Whether a volume is mounted read-only or read-write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VolumeMode {
    /// Read-write (the default).
    #[default]
    Rw,
    /// Read-only.
    Ro,
}

/// A host directory mounted into a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// Where it appears inside the container (absolute).
    pub container_path: String,
    /// The host directory.
    pub host_path: PathBuf,
    /// Read-only or read-write.
    pub mode: VolumeMode,
}

/// Docker-specific container settings (Mesos `ContainerInfo.DockerInfo`).
#[derive(Clone, Debug, PartialEq)]
pub struct DockerInfo {
    /// The image reference, e.g. `mesos-test/httpd:latest`; `:latest` is implied when untagged.
    pub image: String,
    /// BRIDGE, HOST or NONE.
    pub network: Network,
    /// Published ports (BRIDGE only).
    pub port_mappings: Vec<PortMapping>,
    /// Run privileged.
    pub privileged: bool,
    /// `docker run` style parameters (`key` without dashes, e.g. `("label", "a=b")`). The
    /// supported keys are listed in [`crate::docker`]; others are rejected, not ignored.
    pub parameters: Vec<(String, String)>,
    /// Host directories to mount.
    pub volumes: Vec<Volume>,
    /// Pull the image even when it is present locally.
    pub force_pull_image: bool,
}

impl DockerInfo {
    /// A BRIDGE-networked container of `image` with no ports, parameters or volumes.
    pub fn new(image: impl Into<String>) -> Self {
        DockerInfo {
            image: image.into(),
            network: Network::Bridge,
            port_mappings: Vec::new(),
            privileged: false,
            parameters: Vec::new(),
            volumes: Vec::new(),
            force_pull_image: false,
        }
    }
}

/// Where an LXC container's root file system comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LxcRootfs {
    /// An `lxc-create` template name (e.g. `busybox`); the runtime creates one shared, read-only
    /// base root file system per template and reuses it.
    Template(String),
    /// A prepared root file system directory (used read-only).
    Path(PathBuf),
}

/// LXC-specific container settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LxcInfo {
    /// Template or prepared root file system.
    pub rootfs: LxcRootfs,
    /// The network: `None` (the default) gives `lxc.net.0.type = empty`, `Host` shares the host's
    /// network (`none` in LXC's terms), `Bridge` a veth on the runtime's bridge.
    pub network: Network,
}

impl LxcInfo {
    /// A container from the `busybox` template without network.
    pub fn busybox() -> Self {
        LxcInfo {
            rootfs: LxcRootfs::Template("busybox".into()),
            network: Network::None,
        }
    }
}

/// Which containerizer the task asks for (Mesos `ContainerInfo.type`, plus LXC).
#[derive(Clone, Debug, PartialEq, Default)]
pub enum ContainerInfo {
    /// No container image: a plain process in a sandbox (Mesos' own containerizer).
    #[default]
    Mesos,
    /// A Docker container.
    Docker(DockerInfo),
    /// An LXC container.
    Lxc(LxcInfo),
}

impl ContainerInfo {
    /// A short name for messages: `mesos`, `docker` or `lxc`.
    pub fn kind(&self) -> &'static str {
        match self {
            ContainerInfo::Mesos => "mesos",
            ContainerInfo::Docker(_) => "docker",
            ContainerInfo::Lxc(_) => "lxc",
        }
    }
}

/// Everything a runtime needs to launch one task's container.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerSpec {
    /// The task; also the container's key in the runtime.
    pub task_id: TaskId,
    /// The command; `None` only for Docker, where the image's default command runs.
    pub command: Option<CommandSpec>,
    /// Extra environment, applied after (and so overriding) the runtime's `MESOS_*`/`PORT*`.
    pub env: BTreeMap<String, String>,
    /// cpus and mem limits.
    pub limits: Limits,
    /// The sandbox directory on the host; created if missing. `stdout` and `stderr` go there.
    pub sandbox: PathBuf,
    /// Host ports the scheduler assigned, exported as `PORT0..PORTn`, `PORT` and `PORTS`.
    pub host_ports: Vec<u16>,
    /// Which containerizer and its settings.
    pub container: ContainerInfo,
    /// Run as this user (process and LXC runtimes); `None` runs as the agent's user.
    pub user: Option<String>,
    /// Task labels; Docker containers carry them as container labels.
    pub labels: BTreeMap<String, String>,
}

impl ContainerSpec {
    /// A spec for a plain process running `shell` in `sandbox`, without limits or ports.
    pub fn shell(
        task_id: impl Into<TaskId>,
        shell: impl Into<String>,
        sandbox: impl Into<PathBuf>,
    ) -> Self {
        ContainerSpec {
            task_id: task_id.into(),
            command: Some(CommandSpec::Shell(shell.into())),
            env: BTreeMap::new(),
            limits: Limits::default(),
            sandbox: sandbox.into(),
            host_ports: Vec::new(),
            container: ContainerInfo::Mesos,
            user: None,
            labels: BTreeMap::new(),
        }
    }

    /// Checks what no runtime can run. Runtimes call this first in `launch`.
    pub fn validate(&self) -> Result<(), SpecError> {
        let task = self.task_id.as_str();
        if task.is_empty() || task.chars().any(|c| c.is_control()) {
            return Err(SpecError::BadTaskId(task.to_string()));
        }
        match &self.command {
            Some(c) if c.is_empty() => {
                return Err(SpecError::EmptyCommand {
                    task_id: task.to_string(),
                })
            }
            None if !matches!(self.container, ContainerInfo::Docker(_)) => {
                return Err(SpecError::EmptyCommand {
                    task_id: task.to_string(),
                })
            }
            _ => {}
        }
        if let Some(CommandSpec::Argv(argv)) = &self.command {
            if let Some(arg) = argv.iter().find(|a| a.contains('\0')) {
                return Err(SpecError::NulInArgument(arg.replace('\0', "\\0")));
            }
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(SpecError::BadEnvName(k.clone()));
            }
            if v.contains('\0') {
                return Err(SpecError::BadEnvValue { name: k.clone() });
            }
        }
        if let Some(c) = self.limits.cpus {
            if !(c.is_finite() && c > 0.0) {
                return Err(SpecError::BadCpus(c));
            }
        }
        if let Some(m) = self.limits.mem_mb {
            // Below 4 MB not even a shell starts; Mesos' own minimum is 32 MB.
            if !(m.is_finite() && m >= 4.0) {
                return Err(SpecError::BadMem(m));
            }
        }
        if self.sandbox.as_os_str().is_empty() || !self.sandbox.is_absolute() {
            return Err(SpecError::RelativeSandbox(self.sandbox.clone()));
        }
        if let Some(p) = self.host_ports.iter().find(|p| **p == 0) {
            return Err(SpecError::UnassignedHostPort { container_port: *p });
        }
        if let ContainerInfo::Docker(d) = &self.container {
            if d.image.trim().is_empty() {
                return Err(SpecError::EmptyImage);
            }
            if !d.port_mappings.is_empty() && d.network != Network::Bridge {
                return Err(SpecError::PortMappingsNeedBridge { network: d.network });
            }
            for m in &d.port_mappings {
                if m.host_port == 0 {
                    return Err(SpecError::UnassignedHostPort {
                        container_port: m.container_port,
                    });
                }
            }
            for v in &d.volumes {
                if !v.container_path.starts_with('/') || !v.host_path.is_absolute() {
                    return Err(SpecError::RelativeVolume {
                        container_path: v.container_path.clone(),
                        host_path: v.host_path.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cmd: &str) -> ContainerSpec {
        ContainerSpec::shell("t1", cmd, "/tmp/sb")
    }

    #[test]
    fn empty_and_blank_commands_are_rejected() {
        for cmd in ["", "   "] {
            let err = spec(cmd).validate().unwrap_err();
            assert!(matches!(err, SpecError::EmptyCommand { .. }), "{err}");
            assert!(err.to_string().contains("t1"), "{err}");
        }
        let mut s = spec("x");
        s.command = Some(CommandSpec::Argv(vec![]));
        assert!(matches!(s.validate(), Err(SpecError::EmptyCommand { .. })));
        s.command = None;
        assert!(matches!(s.validate(), Err(SpecError::EmptyCommand { .. })));
        // Docker may run the image's default command.
        s.container = ContainerInfo::Docker(DockerInfo::new("busybox"));
        s.validate().unwrap();
    }

    #[test]
    fn network_modes_parse_and_unknown_ones_say_which() {
        assert_eq!("bridge".parse::<Network>().unwrap(), Network::Bridge);
        assert_eq!("HOST".parse::<Network>().unwrap(), Network::Host);
        assert_eq!("None".parse::<Network>().unwrap(), Network::None);
        let err = "OVERLAY".parse::<Network>().unwrap_err();
        assert_eq!(err, SpecError::UnknownNetworkMode("OVERLAY".into()));
        assert!(err.to_string().contains("OVERLAY"), "{err}");
    }

    #[test]
    fn port_mappings_need_bridge_and_a_host_port() {
        let mut s = spec("x");
        let mut d = DockerInfo::new("img");
        d.port_mappings.push(PortMapping {
            container_port: 80,
            host_port: 0,
            protocol: Protocol::Tcp,
        });
        s.container = ContainerInfo::Docker(d.clone());
        assert_eq!(
            s.validate(),
            Err(SpecError::UnassignedHostPort { container_port: 80 })
        );
        d.port_mappings[0].host_port = 31000;
        d.network = Network::Host;
        s.container = ContainerInfo::Docker(d);
        assert_eq!(
            s.validate(),
            Err(SpecError::PortMappingsNeedBridge {
                network: Network::Host
            })
        );
    }

    #[test]
    fn bad_env_limits_and_sandbox_are_rejected() {
        let mut s = spec("x");
        s.env.insert("A=B".into(), "v".into());
        assert_eq!(s.validate(), Err(SpecError::BadEnvName("A=B".into())));
        let mut s = spec("x");
        s.limits.cpus = Some(-1.0);
        assert_eq!(s.validate(), Err(SpecError::BadCpus(-1.0)));
        let mut s = spec("x");
        s.limits.mem_mb = Some(f64::NAN);
        assert!(matches!(s.validate(), Err(SpecError::BadMem(_))));
        let mut s = spec("x");
        s.sandbox = PathBuf::from("relative/dir");
        assert!(matches!(s.validate(), Err(SpecError::RelativeSandbox(_))));
    }

    #[test]
    fn limits_convert_like_mesos() {
        let l = Limits {
            cpus: Some(0.5),
            mem_mb: Some(32.0),
        };
        assert_eq!(l.cpu_shares(), Some(512));
        assert_eq!(l.mem_bytes(), Some(32 * 1024 * 1024));
        assert_eq!(
            Limits {
                cpus: Some(0.0001),
                mem_mb: None
            }
            .cpu_shares(),
            Some(2)
        );
    }
}
