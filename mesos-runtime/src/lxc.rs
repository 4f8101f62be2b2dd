//! `LxcRuntime`: tasks as LXC application containers, through the `lxc-*` tools.
//!
//! Each task runs as `lxc-execute -n <name> -f <sandbox>/.lxc.conf -- <command>`, supervised like
//! a process-runtime task (own session, checkpointed pid and start time); LXC forwards our
//! SIGTERM to the container, and SIGKILL of the monitor takes the container down.
//!
//! - Root file system: a template (`lxc-create -t <template>` once, into a shared base
//!   container `mesos-rs-tmpl-<template>` under the LXC path) or a prepared directory; both
//!   are mounted read-only, with a fresh tmpfs on `/tmp`.
//! - The sandbox is bind-mounted at `/mnt/mesos/sandbox`; the container's stdout and stderr are
//!   the sandbox's `stdout` and `stderr`. Env goes in as `lxc.environment`.
//! - Network: `lxc.net.0.type = empty` for NONE (the default), `none` (the host's network) for
//!   HOST, a `veth` on the configured bridge for BRIDGE.
//! - Limits: `lxc.cgroup.memory.limit_in_bytes` and `lxc.cgroup.cpu.shares` (v1) or
//!   `lxc.cgroup2.memory.max` and `lxc.cgroup2.cpu.weight` (v2). `lxc.cgroup.dir.monitor` and
//!   `lxc.cgroup.dir.container` put LXC's cgroups below one of ours, whose hierarchical peak
//!   memory outlives the container and tells an OOM kill from another SIGKILL.
//! - Recovery: by checkpoint, confirmed by name with `lxc-ls --active`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use mesos_core::ids::TaskId;

use crate::error::{RuntimeError, SpecError};
use crate::naming::safe_name;
use crate::process::{detect_cgroups, resolve_user, DEFAULT_PATH};
use crate::runtime::{ContainerRuntime, Recovered, ResourceUsage};
use crate::sandbox::{task_env, CONTAINER_SANDBOX};
use crate::spec::{ContainerInfo, ContainerSpec, LxcInfo, LxcRootfs, Network};
use crate::supervisor::{Plan, Supervisor};
use crate::termination::Termination;

/// Settings of an [`LxcRuntime`].
#[derive(Clone, Debug)]
pub struct LxcConfig {
    /// Where launches are checkpointed.
    pub checkpoint_dir: PathBuf,
    /// Names this runtime's containers (`mesos-<instance>-<task>`); `[A-Za-z0-9_.-]`.
    pub instance: String,
    /// LXC's container directory, where template base containers are created.
    pub lxc_path: PathBuf,
    /// The bridge BRIDGE-networked containers attach to.
    pub bridge: String,
    /// Account (and detect OOM kills) in a cgroup of ours around each container.
    pub cgroups: bool,
    /// The cgroup file system root.
    pub cgroups_root: PathBuf,
    /// The parent cgroup of ours.
    pub cgroup_parent: String,
    /// `PATH` inside containers.
    pub path: String,
    /// As [`crate::ProcessConfig::stale_cgroup_age`].
    pub stale_cgroup_age: Duration,
}

impl LxcConfig {
    /// Defaults: `/var/lib/lxc`, bridge `lxcbr0`, cgroups on under `mesos-rs-lxc`.
    pub fn new(instance: impl Into<String>, checkpoint_dir: impl Into<PathBuf>) -> Self {
        LxcConfig {
            checkpoint_dir: checkpoint_dir.into(),
            instance: instance.into(),
            lxc_path: PathBuf::from("/var/lib/lxc"),
            bridge: "lxcbr0".into(),
            cgroups: true,
            cgroups_root: PathBuf::from("/sys/fs/cgroup"),
            cgroup_parent: "mesos-rs-lxc".into(),
            path: DEFAULT_PATH.into(),
            stale_cgroup_age: Duration::from_secs(60),
        }
    }
}

/// Runs tasks in LXC containers; see the [module docs](self).
pub struct LxcRuntime {
    sup: Supervisor,
    config: LxcConfig,
    instance: String,
    cgroup_v2: bool,
    /// `lxc-execute`, resolved to an absolute path once (no `PATH` search per launch).
    lxc_execute: String,
    /// Serialises template creation: two launches must not both run `lxc-create`.
    templates: tokio::sync::Mutex<()>,
}

async fn run_tool(program: &str, args: &[&str]) -> Result<String, RuntimeError> {
    let command = format!("{program} {}", args.join(" "));
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| RuntimeError::Lxc {
            command: command.clone(),
            status: "not started".into(),
            stderr: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(RuntimeError::Lxc {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `program` found in the agent's `PATH`, or the bare name.
fn which(program: &str) -> String {
    std::env::var("PATH")
        .unwrap_or_else(|_| DEFAULT_PATH.into())
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.into())
}

fn conf_safe(what: &str, value: &str) -> Result<(), SpecError> {
    if value.contains('\n') || value.contains('\r') {
        return Err(SpecError::BadEnvValue {
            name: what.to_string(),
        });
    }
    Ok(())
}

impl LxcRuntime {
    /// A runtime with the given settings. Never fails; missing tools show up at launch.
    pub fn new(config: LxcConfig) -> Self {
        let cgroups = detect_cgroups(config.cgroups, &config.cgroups_root, &config.cgroup_parent);
        let cgroup_v2 = match &cgroups {
            Some(c) => c.version() == "v2",
            None => !config.cgroups_root.join("memory").exists(),
        };
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
        LxcRuntime {
            sup: Supervisor::new(
                "lxc",
                config.checkpoint_dir.clone(),
                cgroups,
                config.stale_cgroup_age,
            ),
            config,
            instance,
            cgroup_v2,
            lxc_execute: which("lxc-execute"),
            templates: tokio::sync::Mutex::new(()),
        }
    }

    /// The LXC container name of a task.
    pub fn container_name(&self, task_id: &TaskId) -> String {
        format!("mesos-{}-{}", self.instance, safe_name(task_id.as_str()))
    }

    /// The root file system of `info`, creating the template's base container when missing.
    async fn rootfs(&self, info: &LxcInfo) -> Result<PathBuf, RuntimeError> {
        match &info.rootfs {
            LxcRootfs::Path(p) => {
                if !p.join("bin/sh").exists() {
                    return Err(RuntimeError::Lxc {
                        command: "prepare root file system".into(),
                        status: "missing".into(),
                        stderr: format!("{} has no bin/sh", p.display()),
                    });
                }
                Ok(p.clone())
            }
            LxcRootfs::Template(t) => {
                if t.is_empty()
                    || !t
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(SpecError::Unsupported {
                        runtime: "lxc",
                        what: format!("template name {t:?}"),
                    }
                    .into());
                }
                let base = format!("mesos-rs-tmpl-{t}");
                let rootfs = self.config.lxc_path.join(&base).join("rootfs");
                let _guard = self.templates.lock().await;
                if !rootfs.join("bin").exists() {
                    // Created under a private name and renamed into place, so that runtimes in
                    // other processes racing on the same template never see half a root fs.
                    let lxc_path = self.config.lxc_path.to_string_lossy().into_owned();
                    static ATTEMPT: AtomicU32 = AtomicU32::new(0);
                    let n = ATTEMPT.fetch_add(1, Ordering::Relaxed);
                    let tmp = format!("{base}.tmp-{}-{n}", std::process::id());
                    tracing::info!(template = %t, base = %base, "creating LXC template base container");
                    run_tool("lxc-create", &["-P", &lxc_path, "-n", &tmp, "-t", t]).await?;
                    let (from, to) = (
                        self.config.lxc_path.join(&tmp),
                        self.config.lxc_path.join(&base),
                    );
                    if std::fs::rename(&from, &to).is_err() {
                        let _ = std::fs::remove_dir_all(&from);
                    }
                    if !rootfs.join("bin").exists() {
                        return Err(RuntimeError::Lxc {
                            command: format!("lxc-create -t {t}"),
                            status: "incomplete".into(),
                            stderr: format!("{} has no bin directory", rootfs.display()),
                        });
                    }
                }
                // The sandbox mount point must exist: the base is mounted read-only.
                let mount_point = rootfs.join(CONTAINER_SANDBOX.trim_start_matches('/'));
                std::fs::create_dir_all(&mount_point).map_err(|source| RuntimeError::Sandbox {
                    path: mount_point.clone(),
                    source,
                })?;
                Ok(rootfs)
            }
        }
    }

    fn config_text(
        &self,
        spec: &ContainerSpec,
        info: &LxcInfo,
        rootfs: &Path,
        name: &str,
    ) -> Result<String, SpecError> {
        let sandbox = spec.sandbox.to_string_lossy();
        if sandbox.chars().any(char::is_whitespace) {
            return Err(SpecError::Unsupported {
                runtime: "lxc",
                what: format!("a sandbox path with whitespace ({sandbox:?})"),
            });
        }
        let mut c = String::new();
        let mut line = |k: &str, v: &str| {
            let _ = writeln!(c, "{k} = {v}");
        };
        line("lxc.rootfs.path", &format!("dir:{}", rootfs.display()));
        line("lxc.rootfs.options", "ro");
        line("lxc.uts.name", &name.chars().take(63).collect::<String>());
        line("lxc.autodev", "1");
        line("lxc.console.path", "none");
        line("lxc.apparmor.profile", "unconfined");
        line("lxc.mount.auto", "cgroup:mixed proc:mixed sys:ro");
        line("lxc.mount.entry", "tmpfs tmp tmpfs defaults 0 0");
        line(
            "lxc.mount.entry",
            &format!(
                "{sandbox} {} none bind 0 0",
                CONTAINER_SANDBOX.trim_start_matches('/')
            ),
        );
        if let Some(cgs) = self.sup.cgroups() {
            // LXC's cgroups go below ours, whose hierarchical peak memory survives the container.
            let ours = cgs.relative_path(name);
            line("lxc.cgroup.dir.monitor", &format!("{ours}/monitor"));
            line("lxc.cgroup.dir.container", &format!("{ours}/payload"));
        }
        match info.network {
            Network::None => line("lxc.net.0.type", "empty"),
            Network::Host => line("lxc.net.0.type", "none"),
            Network::Bridge => {
                line("lxc.net.0.type", "veth");
                line("lxc.net.0.link", &self.config.bridge);
                line("lxc.net.0.flags", "up");
            }
        }
        conf_safe("PATH", &self.config.path)?;
        line("lxc.environment", &format!("PATH={}", self.config.path));
        for (k, v) in task_env(spec, CONTAINER_SANDBOX) {
            conf_safe(&k, &v)?;
            line("lxc.environment", &format!("{k}={v}"));
        }
        if let Some(bytes) = spec.limits.mem_bytes() {
            if self.cgroup_v2 {
                line("lxc.cgroup2.memory.max", &bytes.to_string());
            } else {
                line("lxc.cgroup.memory.limit_in_bytes", &bytes.to_string());
            }
        }
        if let Some(shares) = spec.limits.cpu_shares() {
            if self.cgroup_v2 {
                line(
                    "lxc.cgroup2.cpu.weight",
                    &(shares * 100 / 1024).clamp(1, 10_000).to_string(),
                );
            } else {
                line("lxc.cgroup.cpu.shares", &shares.to_string());
            }
        }
        Ok(c)
    }
}

#[async_trait]
impl ContainerRuntime for LxcRuntime {
    fn name(&self) -> &'static str {
        "lxc"
    }

    async fn launch(&self, spec: ContainerSpec) -> Result<(), RuntimeError> {
        spec.validate()?;
        let ContainerInfo::Lxc(info) = &spec.container else {
            return Err(SpecError::WrongContainerKind {
                runtime: "lxc",
                kind: spec.container.kind(),
            }
            .into());
        };
        let owner = resolve_user(&spec.user)?;
        let rootfs = self.rootfs(info).await?;
        let name = self.container_name(&spec.task_id);
        let path = self.config.path.clone();
        let build = |spec: &ContainerSpec| {
            let mut text = self.config_text(spec, info, &rootfs, &name)?;
            if let Some((uid, gid)) = owner {
                let _ = writeln!(text, "lxc.init.uid = {uid}\nlxc.init.gid = {gid}");
            }
            let conf = spec.sandbox.join(".lxc.conf");
            std::fs::write(&conf, text).map_err(|source| RuntimeError::Sandbox {
                path: conf.clone(),
                source,
            })?;
            let mut argv = vec![
                self.lxc_execute.clone(),
                "-n".into(),
                name.clone(),
                "-f".into(),
            ];
            argv.push(conf.to_string_lossy().into_owned());
            argv.push("--".into());
            argv.extend(
                spec.command
                    .as_ref()
                    .map(|c| c.to_argv())
                    .unwrap_or_default(),
            );
            Ok(Plan {
                argv,
                env: vec![("PATH".into(), path)],
                run_as: None,
                apply_limits: false,
                oom_by_peak: true,
                name: Some(name.clone()),
                join_cgroup: false,
            })
        };
        self.sup.launch(&spec, build, owner).await
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
        let active: HashSet<String> = match run_tool("lxc-ls", &["--active", "-1"]).await {
            Ok(out) => out
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "lxc-ls failed; recovering LXC containers by pid only");
                return self.sup.recover(checkpoint_dir, |_| true).await;
            }
        };
        self.sup
            .recover(checkpoint_dir, |r| {
                r.name.as_ref().is_none_or(|n| active.contains(n))
            })
            .await
    }
}
