//! Supervising one host process per container: spawn it in its own process group and cgroup
//! (without forking the agent, see `spawn`), watch it, signal its process group, checkpoint its
//! pid and start time (in the runtime's journal), and find it again.
//!
//! [`crate::ProcessRuntime`] runs the task's command this way; [`crate::LxcRuntime`] runs
//! `lxc-execute` this way (LXC forwards our signals into the container).

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mesos_core::ids::TaskId;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Gid, Pid, Uid};

use crate::cgroups::{Cgroup, Cgroups};
use crate::checkpoint::{Journal, Record};
use crate::error::RuntimeError;
use crate::naming::safe_name;
use crate::procfs;
use crate::runtime::{Recovered, ResourceUsage};
use crate::sandbox;
use crate::spawn::{self, SpawnSpec};
use crate::spec::ContainerSpec;
use crate::table::{Slot, Table};
use crate::termination::{ExitStatus, TerminalState, Termination, TerminationReason};

/// How often a recovered process (no longer our child) is checked for liveness.
const RECOVERED_POLL: Duration = Duration::from_millis(100);

/// What to spawn for one container.
pub(crate) struct Plan {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// The complete environment (nothing else is inherited).
    pub env: Vec<(String, String)>,
    /// Run as this user and group.
    pub run_as: Option<(Uid, Gid)>,
    /// Write the spec's limits into our cgroup (the process runtime) or only account in it
    /// (LXC, which sets limits through `lxc.cgroup.*` on its own nested cgroup).
    pub apply_limits: bool,
    /// Judge an OOM kill by SIGKILL plus peak memory at the limit, because the OOM happens in a
    /// nested cgroup we cannot read afterwards (LXC).
    pub oom_by_peak: bool,
    /// The engine's name of the container, for the checkpoint; it also names the container's
    /// cgroup (else the task id does), so runtimes sharing a cgroup parent cannot collide.
    pub name: Option<String>,
    /// Put the process into the container's cgroup before it execs (the process runtime).
    /// LXC instead creates its monitor and payload cgroups below ours itself
    /// (`lxc.cgroup.dir.*`), so `lxc-execute` joins none.
    pub join_cgroup: bool,
}

/// What the supervisor knows about one container.
pub(crate) struct Handle {
    pid: i32,
    start_time: u64,
    /// Whether the process is our child (spawned by this runtime object, not recovered).
    owned: bool,
    cgroup: Option<Cgroup>,
    mem_limit: Option<u64>,
    cpus: Option<f64>,
    oom_by_peak: bool,
}

/// Spawns and watches processes; shared by the process and LXC runtimes.
pub(crate) struct Supervisor {
    name: &'static str,
    journal: Journal,
    cgroups: Option<Cgroups>,
    /// See [`crate::ProcessConfig::stale_cgroup_age`].
    stale_cgroup_age: Duration,
    table: Table<Handle>,
}

fn to_exit(status: std::process::ExitStatus) -> Option<ExitStatus> {
    status
        .code()
        .map(ExitStatus::Code)
        .or_else(|| status.signal().map(ExitStatus::Signal))
}

fn signal_group(pid: i32, sig: Signal) {
    match killpg(Pid::from_raw(pid), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pid, signal = %sig, error = %e, "could not signal process group"),
    }
}

/// Decides the termination of a process that is gone. `status` is `None` when it was not our
/// child (recovered), so its exit status could not be collected.
fn decide(
    h: &Handle,
    kill_requested: bool,
    status: Option<ExitStatus>,
    oom_kills: u64,
    peak: Option<u64>,
) -> Termination {
    if kill_requested {
        return Termination::killed(status);
    }
    let killed_by_9 = matches!(
        status,
        Some(ExitStatus::Signal(9)) | Some(ExitStatus::Code(137))
    );
    let peak_at_limit = matches!((peak, h.mem_limit), (Some(p), Some(l)) if p >= l);
    if oom_kills > 0 || (h.oom_by_peak && killed_by_9 && peak_at_limit) {
        return Termination::memory_limit(status, h.mem_limit, peak);
    }
    match status {
        Some(s) => Termination::from_exit(s),
        None => Termination {
            state: TerminalState::Failed,
            reason: Some(TerminationReason::ExitStatusUnknown),
            status: None,
            message: format!(
                "process {} exited after the agent restarted; its exit status could not be collected",
                h.pid
            ),
        },
    }
}

/// Cleans up after the process is gone (leftover group members and the cgroup) and publishes
/// the termination.
async fn conclude(slot: &Slot<Handle>, status: Option<ExitStatus>) {
    let h = &slot.handle;
    if h.owned {
        // The leader is gone; whatever it left in its group goes too, as in Mesos.
        signal_group(h.pid, Signal::SIGKILL);
    }
    let (oom_kills, peak) = match &h.cgroup {
        Some(cg) => {
            let oom_kills = cg.oom_kills();
            // The peak only matters for an OOM's message or when it is the OOM evidence.
            let peak = (oom_kills > 0 || h.oom_by_peak)
                .then(|| cg.peak_memory())
                .flatten();
            (oom_kills, peak)
        }
        None => (0, None),
    };
    if let Some(cg) = &h.cgroup {
        cg.destroy().await;
    }
    slot.finish(decide(h, slot.kill_requested(), status, oom_kills, peak));
}

impl Supervisor {
    /// A supervisor checkpointing into `checkpoint_dir`, with cgroups if given.
    pub(crate) fn new(
        name: &'static str,
        checkpoint_dir: PathBuf,
        cgroups: Option<Cgroups>,
        stale_cgroup_age: Duration,
    ) -> Self {
        Supervisor {
            name,
            journal: Journal::new(checkpoint_dir),
            cgroups,
            stale_cgroup_age,
            table: Table::new(),
        }
    }

    /// Launches one container: reserves the task id, prepares the sandbox, asks `build` for the
    /// plan (after the sandbox exists, so it may write files there), creates the cgroup, spawns,
    /// checkpoints and starts watching. On error everything created is undone.
    pub(crate) async fn launch(
        &self,
        spec: &ContainerSpec,
        build: impl FnOnce(&ContainerSpec) -> Result<Plan, RuntimeError>,
        sandbox_owner: Option<(Uid, Gid)>,
    ) -> Result<(), RuntimeError> {
        let task_id = spec.task_id.clone();
        let _reservation = self.table.reserve(&task_id)?;
        let outputs = sandbox::prepare(&spec.sandbox, sandbox_owner)?;
        let plan = build(spec)?;
        let leaf = plan
            .name
            .clone()
            .unwrap_or_else(|| safe_name(task_id.as_str()));

        let cgroup = match &self.cgroups {
            // LXC creates this cgroup itself, in every hierarchy, as the parent of the
            // `lxc.cgroup.dir.*` it is given: we only clear a stale one of the same name.
            Some(cgs) if !plan.join_cgroup => Some(cgs.stale_cleared(&leaf)),
            Some(cgs) => Some(cgs.create(&leaf, &spec.limits, plan.apply_limits).map_err(
                |source| RuntimeError::Cgroup {
                    task_id: task_id.clone(),
                    path: cgs.cgroup(&leaf).procs_files()[0].clone(),
                    source,
                },
            )?),
            None => None,
        };
        let undo_cgroup = |cg: &Option<Cgroup>| {
            let cg = cg.clone();
            async move {
                if let Some(cg) = cg {
                    cg.destroy().await;
                }
            }
        };

        let mut procs_files = Vec::new();
        let joining = cgroup.iter().filter(|_| plan.join_cgroup);
        for path in joining.flat_map(Cgroup::procs_files) {
            match std::fs::OpenOptions::new().write(true).open(&path) {
                Ok(f) => procs_files.push(f),
                Err(source) => {
                    undo_cgroup(&cgroup).await;
                    return Err(RuntimeError::Cgroup {
                        task_id,
                        path,
                        source,
                    });
                }
            }
        }

        let Some((program, args)) = plan.argv.split_first() else {
            undo_cgroup(&cgroup).await;
            return Err(crate::error::SpecError::EmptyCommand {
                task_id: task_id.to_string(),
            }
            .into());
        };
        let spawned = spawn::spawn(&SpawnSpec {
            program,
            args,
            env: &plan.env,
            cwd: &spec.sandbox,
            stdout: &outputs.stdout,
            stderr: &outputs.stderr,
            cgroup_procs: &procs_files,
            run_as: plan.run_as,
        });
        drop(procs_files);
        let mut child = match spawned {
            Ok(c) => c,
            Err(source) => {
                undo_cgroup(&cgroup).await;
                return Err(RuntimeError::Spawn {
                    task_id,
                    program: program.clone(),
                    source,
                });
            }
        };
        let pid = child.id();
        let start_time = procfs::stat(pid).map(|(_, s)| s).unwrap_or(0);

        let record = Record {
            task_id: task_id.to_string(),
            sandbox: spec.sandbox.clone(),
            pid: Some(pid),
            start_time: Some(start_time),
            name: plan.name.clone(),
            cgroup: cgroup.as_ref().map(|c| c.name.clone()),
            mem_limit: spec.limits.mem_bytes(),
            cpus: spec.limits.cpus,
        };
        if let Err(e) = self.journal.add(&record) {
            signal_group(pid, Signal::SIGKILL);
            let _ = child.wait().await;
            undo_cgroup(&cgroup).await;
            return Err(e);
        }

        let handle = Handle {
            pid,
            start_time,
            owned: true,
            cgroup,
            mem_limit: spec.limits.mem_bytes(),
            cpus: spec.limits.cpus,
            oom_by_peak: plan.oom_by_peak,
        };
        tracing::info!(runtime = self.name, task = %task_id, pid, "launched");
        let slot = self.table.insert(task_id, handle);
        self.table.spawn_watcher(async move {
            let status = child.wait().await.ok().and_then(to_exit);
            conclude(&slot, status).await;
        });
        Ok(())
    }

    /// The cgroups in use, if any.
    pub(crate) fn cgroups(&self) -> Option<&Cgroups> {
        self.cgroups.as_ref()
    }

    pub(crate) async fn wait(&self, task_id: &TaskId) -> Result<Termination, RuntimeError> {
        self.table
            .wait(task_id, || self.journal.remove(task_id.as_str()))
            .await
    }

    pub(crate) async fn kill(&self, task_id: &TaskId, grace: Duration) -> Result<(), RuntimeError> {
        let slot = self.table.get(task_id)?;
        if slot.is_finished() {
            return Ok(());
        }
        slot.request_kill();
        let h = &slot.handle;
        let alive = || h.owned || procfs::is_same_live_process(h.pid, h.start_time);
        if alive() {
            signal_group(h.pid, Signal::SIGTERM);
        }
        if tokio::time::timeout(grace, slot.terminated())
            .await
            .is_err()
        {
            tracing::info!(runtime = self.name, task = %task_id, ?grace, "still running after the grace period; sending SIGKILL");
            if alive() {
                signal_group(h.pid, Signal::SIGKILL);
            }
            if let Some(cg) = &h.cgroup {
                cg.signal_all(Signal::SIGKILL);
            }
            slot.terminated().await;
        }
        Ok(())
    }

    pub(crate) fn usage(&self, task_id: &TaskId) -> Result<ResourceUsage, RuntimeError> {
        let slot = self.table.get(task_id)?;
        let h = &slot.handle;
        let (cpu_time, mem_bytes) = match &h.cgroup {
            Some(cg) => (
                cg.cpu_usage().unwrap_or_default(),
                cg.memory_usage().unwrap_or(0),
            ),
            None => procfs::usage(h.pid).unwrap_or_default(),
        };
        Ok(ResourceUsage {
            cpu_time,
            mem_bytes,
            mem_limit_bytes: h.mem_limit,
            cpus_limit: h.cpus,
        })
    }

    /// Recovers from the checkpoints in `dir`. `still_there` lets the LXC runtime also ask the
    /// engine, by name, whether a container whose monitor process lives is really running.
    pub(crate) async fn recover(
        &self,
        dir: &Path,
        still_there: impl Fn(&Record) -> bool,
    ) -> Result<Vec<Recovered>, RuntimeError> {
        let mut out = Vec::new();
        for record in self.recorded(dir)? {
            let task_id = TaskId::new(record.task_id.clone());
            if self.table.contains(&task_id) {
                continue;
            }
            let cgroup = match (&self.cgroups, &record.cgroup) {
                (Some(cgs), Some(name)) => Some(cgs.cgroup(name)).filter(Cgroup::exists),
                _ => None,
            };
            let (Some(pid), Some(start_time)) = (record.pid, record.start_time) else {
                tracing::error!(task = %task_id, "checkpoint without pid; reporting the task lost");
                let slot = self.table.insert(
                    task_id.clone(),
                    Handle {
                        pid: 0,
                        start_time: 0,
                        owned: false,
                        cgroup,
                        mem_limit: record.mem_limit,
                        cpus: record.cpus,
                        oom_by_peak: false,
                    },
                );
                let t = Termination::vanished("a container without a checkpointed pid");
                slot.finish(t.clone());
                out.push(Recovered {
                    task_id,
                    sandbox: record.sandbox,
                    terminated: Some(t),
                });
                continue;
            };
            let handle = Handle {
                pid,
                start_time,
                owned: false,
                cgroup,
                mem_limit: record.mem_limit,
                cpus: record.cpus,
                oom_by_peak: record.name.is_some(),
            };
            let alive = procfs::is_same_live_process(pid, start_time) && still_there(&record);
            let slot = self.table.insert(task_id.clone(), handle);
            if alive {
                tracing::info!(runtime = self.name, task = %task_id, pid, "recovered running container");
                out.push(Recovered {
                    task_id,
                    sandbox: record.sandbox,
                    terminated: None,
                });
                self.table.spawn_watcher(async move {
                    while procfs::is_same_live_process(slot.handle.pid, slot.handle.start_time) {
                        tokio::time::sleep(RECOVERED_POLL).await;
                    }
                    conclude(&slot, None).await;
                });
            } else {
                let oom = slot
                    .handle
                    .cgroup
                    .as_ref()
                    .map(Cgroup::oom_kills)
                    .unwrap_or(0)
                    > 0;
                let t = if oom {
                    Termination::memory_limit(
                        None,
                        record.mem_limit,
                        slot.handle.cgroup.as_ref().and_then(Cgroup::peak_memory),
                    )
                } else {
                    Termination::vanished(&format!("process {pid} of task {task_id}"))
                };
                if let Some(cg) = &slot.handle.cgroup {
                    cg.destroy().await;
                }
                tracing::warn!(runtime = self.name, task = %task_id, message = %t.message, "container gone at recovery");
                slot.finish(t.clone());
                out.push(Recovered {
                    task_id,
                    sandbox: record.sandbox,
                    terminated: Some(t),
                });
            }
        }
        self.sweep_stale_cgroups();
        Ok(out)
    }

    /// The records to recover from `dir`: our own journal's, or (another directory) that
    /// directory's, adopted into ours so that collecting them forgets them.
    fn recorded(&self, dir: &Path) -> Result<Vec<Record>, RuntimeError> {
        if dir == self.journal.dir() {
            return self.journal.records();
        }
        let records = Journal::new(dir).records()?;
        let ours: std::collections::HashSet<String> = self
            .journal
            .records()?
            .into_iter()
            .map(|r| r.task_id)
            .collect();
        for r in records.iter().filter(|r| !ours.contains(&r.task_id)) {
            self.journal.add(r)?;
        }
        Ok(records)
    }

    /// Removes empty cgroups under our parent that no container here owns and that are older
    /// than `stale_cgroup_age`: left by containers that ended while no runtime watched them and
    /// whose checkpoints are gone. The age keeps a launch of another runtime sharing the parent
    /// (its cgroup is empty for a moment before the task joins) safe.
    fn sweep_stale_cgroups(&self) {
        let Some(cgs) = &self.cgroups else { return };
        let ours: std::collections::HashSet<String> = self
            .table
            .all()
            .iter()
            .filter_map(|s| s.handle.cgroup.as_ref().map(|c| c.name.clone()))
            .collect();
        for name in cgs.leaves() {
            if ours.contains(&name) {
                continue;
            }
            let cg = cgs.cgroup(&name);
            let old_enough = cg.age().is_some_and(|a| a >= self.stale_cgroup_age);
            if old_enough && cg.pids().is_empty() {
                tracing::info!(runtime = self.name, cgroup = %name, "removing a stale empty cgroup");
                cg.remove_dirs();
            }
        }
    }
}
