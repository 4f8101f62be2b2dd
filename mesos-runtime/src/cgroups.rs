//! Linux control groups: cpu and memory limits, OOM detection and usage for one container.
//!
//! cgroup v2 is used where the unified hierarchy is mounted at the root with the memory
//! controller; otherwise v1 with the `memory`, `cpu` and `cpuacct` hierarchies (what this machine
//! kind has). Each container gets `<hierarchy>/<parent>/<name>`. Processes join their cgroup
//! before `exec` (see [`Cgroup::procs_files`]), so a task cannot fork out of it before its limits
//! apply.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::spec::Limits;

/// Which cgroup layout is in use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// The unified hierarchy at this root.
    V2 { root: PathBuf },
    /// Per-controller hierarchies.
    V1 {
        memory: PathBuf,
        cpu: Option<PathBuf>,
        cpuacct: Option<PathBuf>,
    },
}

/// The usable cgroup setup of this host: a layout and the parent cgroup we create ours in.
#[derive(Clone, Debug)]
pub(crate) struct Cgroups {
    layout: Layout,
    parent: String,
    /// Every other cgroup hierarchy mounted under the root (v1), for cleanup.
    other_roots: Vec<PathBuf>,
}

/// One container's cgroup (in every hierarchy of the layout).
#[derive(Clone, Debug)]
pub(crate) struct Cgroup {
    pub name: String,
    v2: bool,
    /// Directory holding the memory controller's files.
    mem: PathBuf,
    cpu: Option<PathBuf>,
    cpuacct: Option<PathBuf>,
    /// The same cgroup in the other hierarchies (pids, freezer, devices…), where LXC creates
    /// its monitor and payload cgroups below ours; removed with ours.
    others: Vec<PathBuf>,
}

impl Cgroups {
    /// Finds a usable layout under `root` (normally `/sys/fs/cgroup`) and creates `parent` in
    /// it. The error says why cgroups cannot be used here.
    pub(crate) fn detect(root: &Path, parent: &str) -> Result<Cgroups, String> {
        let controllers = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        let layout = if controllers.split_whitespace().any(|c| c == "memory") {
            Layout::V2 {
                root: root.to_path_buf(),
            }
        } else if root.join("memory/memory.limit_in_bytes").exists() {
            let cpu = root.join("cpu");
            let cpuacct = root.join("cpuacct");
            Layout::V1 {
                memory: root.join("memory"),
                cpu: cpu.join("cpu.shares").exists().then_some(cpu),
                cpuacct: cpuacct.join("cpuacct.usage").exists().then_some(cpuacct),
            }
        } else {
            return Err(format!(
                "no cgroup v2 memory controller at {0} and no v1 memory hierarchy at {0}/memory",
                root.display()
            ));
        };
        let mut other_roots = Vec::new();
        if let Layout::V1 {
            memory,
            cpu,
            cpuacct,
        } = &layout
        {
            let ours = [Some(memory), cpu.as_ref(), cpuacct.as_ref()];
            for e in fs::read_dir(root).into_iter().flatten().flatten() {
                let p = e.path();
                let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                if is_dir && p.join("cgroup.procs").exists() && !ours.contains(&Some(&p)) {
                    other_roots.push(p);
                }
            }
        }
        let cgroups = Cgroups {
            layout,
            parent: parent.to_string(),
            other_roots,
        };
        for dir in cgroups.dirs(None) {
            fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create cgroup {}: {e}", dir.display()))?;
        }
        if let Layout::V2 { root } = &cgroups.layout {
            // Delegate memory and cpu down to our parent and from it to the containers.
            for dir in [root.clone(), root.join(parent)] {
                let path = dir.join("cgroup.subtree_control");
                if let Err(e) = fs::write(&path, "+memory +cpu") {
                    if fs::write(&path, "+memory").is_err() {
                        return Err(format!(
                            "cannot enable the memory controller in {}: {e}",
                            path.display()
                        ));
                    }
                }
            }
        }
        Ok(cgroups)
    }

    /// `v1`/`v2`, for logs.
    pub(crate) fn version(&self) -> &'static str {
        match self.layout {
            Layout::V2 { .. } => "v2",
            Layout::V1 { .. } => "v1",
        }
    }

    /// The directories of the parent (`name` = None) or of one container, one per hierarchy.
    fn dirs(&self, name: Option<&str>) -> Vec<PathBuf> {
        let leaf = |base: &Path| match name {
            Some(n) => base.join(&self.parent).join(n),
            None => base.join(&self.parent),
        };
        match &self.layout {
            Layout::V2 { root } => vec![leaf(root)],
            Layout::V1 {
                memory,
                cpu,
                cpuacct,
            } => {
                let mut v = vec![leaf(memory)];
                v.extend(cpu.as_deref().map(leaf));
                v.extend(cpuacct.as_deref().map(leaf));
                v
            }
        }
    }

    /// The cgroup `name`, whether or not it exists (for recovery).
    pub(crate) fn cgroup(&self, name: &str) -> Cgroup {
        let at = |base: &Path| base.join(&self.parent).join(name);
        match &self.layout {
            Layout::V2 { root } => {
                let d = at(root);
                Cgroup {
                    name: name.into(),
                    v2: true,
                    mem: d.clone(),
                    cpu: Some(d.clone()),
                    cpuacct: Some(d),
                    others: Vec::new(),
                }
            }
            Layout::V1 {
                memory,
                cpu,
                cpuacct,
            } => Cgroup {
                name: name.into(),
                v2: false,
                mem: at(memory),
                cpu: cpu.as_deref().map(at),
                cpuacct: cpuacct.as_deref().map(at),
                others: self.other_roots.iter().map(|r| at(r)).collect(),
            },
        }
    }

    /// The path of cgroup `name` relative to each hierarchy's root (for `lxc.cgroup.dir.*`).
    pub(crate) fn relative_path(&self, name: &str) -> String {
        format!("{}/{name}", self.parent)
    }

    /// The names of the container cgroups under our parent.
    pub(crate) fn leaves(&self) -> Vec<String> {
        let Some(parent) = self.dirs(None).into_iter().next() else {
            return Vec::new();
        };
        fs::read_dir(parent)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()
    }

    /// The cgroup `name`, with a stale one of that name (an earlier container's, left by a
    /// crash) removed: it would carry its OOM count and peak memory over. One with processes
    /// in it cannot be removed and stays.
    pub(crate) fn stale_cleared(&self, name: &str) -> Cgroup {
        let cg = self.cgroup(name);
        if cg.exists() {
            cg.remove_dirs();
        }
        cg
    }

    /// Creates the cgroup `name` (clearing a stale one) and, if `apply_limits`, writes the
    /// limits into it.
    pub(crate) fn create(
        &self,
        name: &str,
        limits: &Limits,
        apply_limits: bool,
    ) -> io::Result<Cgroup> {
        let mut cg = self.stale_cleared(name);
        // Only LXC creates cgroups in the other hierarchies (below its own); ours lives in the
        // memory and cpu ones, so removing it needs no look at the others.
        cg.others.clear();
        for dir in self.dirs(Some(name)) {
            fs::create_dir_all(&dir)?;
        }
        if apply_limits {
            if let Err(e) = cg.apply(limits) {
                cg.remove_dirs();
                return Err(e);
            }
        }
        Ok(cg)
    }
}

/// Removes a cgroup directory and the cgroups nested in it (cgroupfs only lets empty cgroups
/// go, and their control files go with them). One `rmdir` when nothing is nested (the process
/// runtime's case); only when that fails are the children looked for, removed first, and the
/// `rmdir` retried. Returns whether the directory is gone.
fn remove_tree(dir: &Path, depth: usize) -> bool {
    match fs::remove_dir(dir) {
        Ok(()) => return true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
        Err(_) if depth == 0 => return false,
        Err(_) => {}
    }
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&e.path(), depth - 1);
        }
    }
    match fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn keyed(path: &Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key))
            .then(|| it.next()?.parse().ok())
            .flatten()
    })
}

impl Cgroup {
    fn apply(&self, limits: &Limits) -> io::Result<()> {
        if let Some(bytes) = limits.mem_bytes() {
            if self.v2 {
                fs::write(self.mem.join("memory.max"), bytes.to_string())?;
                // No swap: a task over its limit is killed, as in Mesos, not slowed down.
                let _ = fs::write(self.mem.join("memory.swap.max"), "0");
            } else {
                fs::write(self.mem.join("memory.limit_in_bytes"), bytes.to_string())?;
                let _ = fs::write(
                    self.mem.join("memory.memsw.limit_in_bytes"),
                    bytes.to_string(),
                );
            }
        }
        if let (Some(shares), Some(cpu)) = (limits.cpu_shares(), &self.cpu) {
            if self.v2 {
                // cpu.weight is 1..10000 with 100 the default: map 1024 shares to 100.
                let weight = (shares * 100 / 1024).clamp(1, 10_000);
                fs::write(cpu.join("cpu.weight"), weight.to_string())?;
            } else {
                fs::write(cpu.join("cpu.shares"), shares.to_string())?;
            }
        }
        Ok(())
    }

    /// The `cgroup.procs` files a process writes `0` into to join this cgroup (one per
    /// hierarchy).
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.mem.clone()];
        for d in [&self.cpu, &self.cpuacct].into_iter().flatten() {
            if !dirs.contains(d) {
                dirs.push(d.clone());
            }
        }
        dirs.into_iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// How long ago the cgroup was created (its directory's modification time).
    pub(crate) fn age(&self) -> Option<Duration> {
        fs::metadata(&self.mem)
            .and_then(|m| m.modified())
            .ok()?
            .elapsed()
            .ok()
    }

    pub(crate) fn exists(&self) -> bool {
        self.mem.exists()
    }

    /// How many processes the kernel's OOM killer killed in this cgroup.
    pub(crate) fn oom_kills(&self) -> u64 {
        if self.v2 {
            keyed(&self.mem.join("memory.events"), "oom_kill").unwrap_or(0)
        } else {
            keyed(&self.mem.join("memory.oom_control"), "oom_kill").unwrap_or(0)
        }
    }

    /// Peak memory use (v1 `max_usage_in_bytes`, v2 `memory.peak` where the kernel has it).
    pub(crate) fn peak_memory(&self) -> Option<u64> {
        if self.v2 {
            read_u64(&self.mem.join("memory.peak"))
        } else {
            read_u64(&self.mem.join("memory.max_usage_in_bytes"))
        }
    }

    pub(crate) fn memory_usage(&self) -> Option<u64> {
        if self.v2 {
            read_u64(&self.mem.join("memory.current"))
        } else {
            read_u64(&self.mem.join("memory.usage_in_bytes"))
        }
    }

    pub(crate) fn cpu_usage(&self) -> Option<Duration> {
        let dir = self.cpuacct.as_ref()?;
        if self.v2 {
            keyed(&dir.join("cpu.stat"), "usage_usec").map(Duration::from_micros)
        } else {
            read_u64(&dir.join("cpuacct.usage")).map(Duration::from_nanos)
        }
    }

    /// The pids in the cgroup and in the cgroups nested below it (LXC's).
    pub(crate) fn pids(&self) -> Vec<i32> {
        fn walk(dir: &Path, out: &mut Vec<i32>, depth: usize) {
            let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            out.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            if depth == 0 {
                return;
            }
            for e in fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(&e.path(), out, depth - 1);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.mem, &mut out, 3);
        out
    }

    /// Sends `sig` to every process in the cgroup.
    pub(crate) fn signal_all(&self, sig: Signal) {
        for pid in self.pids() {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }

    /// Removes the cgroup's directories in every hierarchy; returns whether all are gone.
    pub(crate) fn remove_dirs(&self) -> bool {
        let mut dirs = vec![&self.mem];
        dirs.extend(self.cpu.iter());
        dirs.extend(self.cpuacct.iter());
        dirs.extend(self.others.iter());
        dirs.dedup();
        let mut all = true;
        for d in dirs {
            all &= remove_tree(d, 3);
        }
        all
    }

    /// Removes the cgroup, killing whatever is left in it first if the removal is refused
    /// (cgroupfs refuses while processes are inside). Bounded: a process stuck in the kernel
    /// leaves the directory behind (logged), never blocks the caller for long.
    pub(crate) async fn destroy(&self) {
        for attempt in 0..50 {
            if self.remove_dirs() {
                return;
            }
            self.signal_all(Signal::SIGKILL);
            tokio::time::sleep(Duration::from_millis(if attempt < 10 { 5 } else { 50 })).await;
        }
        if self.remove_dirs() {
            return;
        }
        tracing::warn!(cgroup = %self.mem.display(), "cgroup could not be removed; processes are stuck in it");
    }
}
