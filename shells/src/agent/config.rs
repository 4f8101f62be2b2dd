//! The agent's flags (upstream names, each also an environment variable) and what is derived
//! from them: the master's address, the resources detected from the machine, durations.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgAction, Parser};
use mesos_core::attributes::Attributes;
use mesos_core::resources::Resources;

use super::AgentDaemonError;

/// The containerizers an agent can enable (`--containerizers`).
pub const KNOWN_CONTAINERIZERS: [&str; 3] = ["mesos", "docker", "lxc"];

/// `mesos-agent` flags. Every flag is also read from the environment variable upstream Mesos
/// uses (`MESOS_<FLAG>`); a flag on the command line wins.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "mesos-agent",
    version,
    about = "A Mesos agent: runs tasks for a master."
)]
pub struct AgentConfig {
    /// The master, as `host:port` (or `http://host:port`). `zk://` values are refused for now.
    #[arg(long, env = "MESOS_MASTER")]
    pub master: String,

    /// The IP address to listen on and announce (default: listen on all interfaces and announce
    /// the address the hostname resolves to, else 127.0.0.1).
    #[arg(long, env = "MESOS_IP")]
    pub ip: Option<IpAddr>,

    /// The IP address announced to the master when it differs from the one listened on
    /// (NAT, containers).
    #[arg(
        long = "advertise_ip",
        alias = "advertise-ip",
        env = "MESOS_ADVERTISE_IP"
    )]
    pub advertise_ip: Option<IpAddr>,

    /// The port to listen on.
    #[arg(long, env = "MESOS_PORT", default_value_t = 5051)]
    pub port: u16,

    /// The hostname the agent announces (default: the machine's hostname).
    #[arg(long, env = "MESOS_HOSTNAME")]
    pub hostname: Option<String>,

    /// Where the agent keeps sandboxes and checkpoints.
    #[arg(long = "work_dir", alias = "work-dir", env = "MESOS_WORK_DIR")]
    pub work_dir: PathBuf,

    /// Resources in Mesos text form (`cpus:2;mem:1024;disk:4096;ports:[31000-32000]`). Each of
    /// cpus, mem, disk and ports not given is detected from the machine.
    #[arg(long, env = "MESOS_RESOURCES")]
    pub resources: Option<String>,

    /// Attributes in Mesos text form (`rack:r1;zone:a`).
    #[arg(long, env = "MESOS_ATTRIBUTES")]
    pub attributes: Option<String>,

    /// Comma-separated containerizers to enable: `mesos`, `docker`, `lxc`.
    #[arg(long, env = "MESOS_CONTAINERIZERS", default_value = "mesos")]
    pub containerizers: String,

    /// The Docker daemon (`unix:///path`, `/path` or `tcp://host:port`); default `$DOCKER_HOST`,
    /// else `/var/run/docker.sock`.
    #[arg(
        long = "docker_socket",
        alias = "docker-socket",
        env = "MESOS_DOCKER_SOCKET"
    )]
    pub docker_socket: Option<String>,

    /// Grace period of kills when a task has no kill policy (Mesos duration: `3secs`, `500ms`).
    #[arg(
        long = "executor_shutdown_grace_period",
        alias = "executor-shutdown-grace-period",
        env = "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
        default_value = "3secs",
        value_parser = parse_duration
    )]
    pub executor_shutdown_grace_period: Duration,

    /// Kill every task when the agent shuts down (default: tasks keep running and a restarted
    /// agent recovers them).
    #[arg(
        long = "kill_tasks_on_shutdown",
        alias = "kill-tasks-on-shutdown",
        env = "MESOS_KILL_TASKS_ON_SHUTDOWN",
        action = ArgAction::Set,
        num_args = 0..=1,
        default_value_t = false,
        default_missing_value = "true"
    )]
    pub kill_tasks_on_shutdown: bool,

    /// Initial delay between registration attempts while the master is unreachable; it doubles
    /// up to `--registration_backoff_max`.
    #[arg(
        long = "registration_backoff_factor",
        alias = "registration-backoff-factor",
        env = "MESOS_REGISTRATION_BACKOFF_FACTOR",
        default_value = "1secs",
        value_parser = parse_duration
    )]
    pub registration_backoff_factor: Duration,

    /// Largest delay between registration attempts.
    #[arg(
        long = "registration_backoff_max",
        alias = "registration-backoff-max",
        env = "MESOS_REGISTRATION_BACKOFF_MAX",
        default_value = "30secs",
        value_parser = parse_duration
    )]
    pub registration_backoff_max: Duration,

    /// Isolators of the `mesos` containerizer, upstream's names, comma-separated. With any
    /// `cgroups/...` (the default here: `cgroups/cpu,cgroups/mem`) each task gets its own cgroup
    /// with its cpu and memory limits (where cgroups are usable). With only `posix/...`
    /// isolators (upstream's default, `posix/cpu,posix/mem`) tasks run without limits, as
    /// upstream's posix isolators do, and launch faster (no cgroup, and no fork of the agent).
    #[arg(
        long = "isolation",
        env = "MESOS_ISOLATION",
        default_value = "cgroups/cpu,cgroups/mem"
    )]
    pub isolation: String,

    /// Where cgroups are mounted (limits are off when unusable).
    #[arg(
        long = "cgroups_root",
        alias = "cgroups-root",
        env = "MESOS_CGROUPS_ROOT"
    )]
    pub cgroups_root: Option<PathBuf>,

    /// Run tasks as their framework's user (only when the agent runs as root).
    #[arg(
        long = "switch_user",
        alias = "switch-user",
        env = "MESOS_SWITCH_USER",
        action = ArgAction::Set,
        num_args = 0..=1,
        default_value_t = true,
        default_missing_value = "true"
    )]
    pub switch_user: bool,

    /// How long a finished task's sandbox is kept before it is deleted (Mesos duration).
    #[arg(
        long = "gc_delay",
        alias = "gc-delay",
        env = "MESOS_GC_DELAY",
        default_value = "1weeks",
        value_parser = parse_duration
    )]
    pub gc_delay: Duration,

    /// Completed tasks kept for `/state`.
    #[arg(
        long = "max_completed_tasks",
        env = "MESOS_MAX_COMPLETED_TASKS",
        default_value_t = 1000
    )]
    pub max_completed_tasks: usize,
}

impl AgentConfig {
    /// Defaults for an agent run inside another process (`mesos-local`, tests): announced on
    /// 127.0.0.1 as `localhost`, the `mesos` containerizer only, resources detected.
    pub fn local(master: String, work_dir: PathBuf) -> Self {
        AgentConfig {
            master,
            ip: Some(IpAddr::from([127, 0, 0, 1])),
            advertise_ip: None,
            port: 0,
            hostname: Some("localhost".into()),
            work_dir,
            resources: None,
            attributes: None,
            containerizers: "mesos".into(),
            docker_socket: None,
            executor_shutdown_grace_period: Duration::from_secs(3),
            kill_tasks_on_shutdown: false,
            registration_backoff_factor: Duration::from_secs(1),
            registration_backoff_max: Duration::from_secs(30),
            isolation: "cgroups/cpu,cgroups/mem".into(),
            cgroups_root: None,
            switch_user: false,
            gc_delay: Duration::from_secs(7 * 86400),
            max_completed_tasks: 1000,
        }
    }

    /// The master's base URL (`http://host:port`), refusing what this agent cannot use.
    pub fn master_url(&self) -> Result<String, AgentDaemonError> {
        let m = self.master.trim();
        if m.starts_with("zk://") {
            return Err(AgentDaemonError::Config(format!(
                "--master={m}: ZooKeeper detection comes with the HA issue; give the master as host:port"
            )));
        }
        if m.starts_with("file://") {
            return Err(AgentDaemonError::Config(format!(
                "--master={m}: file:// master lists are not supported; give the master as host:port"
            )));
        }
        let rest = m.strip_prefix("http://").unwrap_or(m).trim_end_matches('/');
        if m.starts_with("https://") {
            return Err(AgentDaemonError::Config(format!(
                "--master={m}: TLS is not supported; give the master as host:port"
            )));
        }
        let rest = rest.strip_suffix("/master").unwrap_or(rest);
        let Some((host, port)) = rest.rsplit_once(':') else {
            return Err(AgentDaemonError::Config(format!(
                "--master={m}: expected host:port"
            )));
        };
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(AgentDaemonError::Config(format!(
                "--master={m}: expected host:port with a port between 1 and 65535"
            )));
        }
        Ok(format!("http://{host}:{port}"))
    }

    /// The enabled containerizers, validated.
    pub fn containerizer_list(&self) -> Result<Vec<String>, AgentDaemonError> {
        let mut out: Vec<String> = Vec::new();
        for name in self.containerizers.split(',').map(str::trim) {
            if name.is_empty() {
                continue;
            }
            if !KNOWN_CONTAINERIZERS.contains(&name) {
                return Err(AgentDaemonError::Config(format!(
                    "--containerizers: unknown containerizer `{name}` (known: mesos, docker, lxc)"
                )));
            }
            if !out.iter().any(|n| n == name) {
                out.push(name.to_string());
            }
        }
        if out.is_empty() {
            return Err(AgentDaemonError::Config(
                "--containerizers: at least one containerizer is needed".into(),
            ));
        }
        Ok(out)
    }

    /// Whether `--isolation` asks for cgroups (limits) for the `mesos` containerizer.
    pub fn cgroups_isolation(&self) -> Result<bool, AgentDaemonError> {
        let mut cgroups = false;
        for name in self.isolation.split(',').map(str::trim) {
            if name.is_empty() {
                continue;
            }
            let Some((family, _)) = name.split_once('/') else {
                return Err(AgentDaemonError::Config(format!(
                    "--isolation: `{name}` is not an isolator name (e.g. posix/cpu, cgroups/mem)"
                )));
            };
            match family {
                "cgroups" => cgroups = true,
                "posix" | "filesystem" | "network" | "namespaces" | "disk" | "docker"
                | "volume" | "linux" | "gpu" | "appc" | "environment_secret" => {}
                _ => {
                    return Err(AgentDaemonError::Config(format!(
                        "--isolation: unknown isolator `{name}`"
                    )))
                }
            }
        }
        Ok(cgroups)
    }

    /// The attributes, parsed.
    pub fn attribute_set(&self) -> Result<Attributes, AgentDaemonError> {
        match self.attributes.as_deref().map(str::trim) {
            None | Some("") => Ok(Attributes::default()),
            Some(text) => Attributes::parse(text)
                .map_err(|e| AgentDaemonError::Config(format!("--attributes: {e}"))),
        }
    }

    /// The resources: the given ones, completed with detected cpus, mem, disk and ports.
    pub fn resource_set(&self) -> Result<Resources, AgentDaemonError> {
        let mut given = match self.resources.as_deref().map(str::trim) {
            None | Some("") => Resources::new(),
            Some(text) => Resources::parse(text)
                .map_err(|e| AgentDaemonError::Config(format!("--resources: {e}")))?,
        };
        let has = |r: &Resources, name: &str| r.iter().any(|x| x.name.as_str() == name);
        let detected = detect_resources(&self.work_dir);
        for name in ["cpus", "mem", "disk", "ports"] {
            if !has(&given, name) {
                for r in detected.iter().filter(|r| r.name.as_str() == name) {
                    given.push(r.clone());
                }
            }
        }
        Ok(given)
    }

    /// The hostname to announce.
    pub fn announced_hostname(&self) -> String {
        self.hostname
            .clone()
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(machine_hostname)
    }
}

/// True when this process runs as root (real uid 0).
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The address `hostname` resolves to (IPv4 and not loopback preferred), else 127.0.0.1.
pub async fn resolve_host_ip(hostname: &str) -> IpAddr {
    let fallback = IpAddr::from([127, 0, 0, 1]);
    let Ok(addrs) = tokio::net::lookup_host((hostname, 0)).await else {
        return fallback;
    };
    let addrs: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4() && !a.is_loopback())
        .or_else(|| addrs.iter().find(|a| !a.is_loopback()))
        .copied()
        .unwrap_or(fallback)
}

/// The machine's hostname (`/proc/sys/kernel/hostname`, `/etc/hostname`, else `localhost`).
pub fn machine_hostname() -> String {
    for p in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(s) = std::fs::read_to_string(p) {
            let s = s.trim();
            if !s.is_empty() {
                return s.to_string();
            }
        }
    }
    "localhost".into()
}

const MIB: f64 = 1024.0 * 1024.0;

/// Resources detected from the machine, as upstream: cpus = the number of cores, mem = total
/// memory minus 1 GiB (at least half of it), disk = free space of `work_dir` minus 5 GiB (at
/// least half of it), ports `[31000-32000]`.
pub fn detect_resources(work_dir: &Path) -> Resources {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as f64)
        .unwrap_or(1.0);
    let mem_total_mb = mem_total_bytes().map(|b| b as f64 / MIB).unwrap_or(2048.0);
    let mem = (mem_total_mb - 1024.0).max(mem_total_mb / 2.0).floor();
    let disk_free_mb = free_disk_bytes(work_dir)
        .map(|b| b as f64 / MIB)
        .unwrap_or(10240.0);
    let disk = (disk_free_mb - 5120.0).max(disk_free_mb / 2.0).floor();
    let text = format!("cpus:{cpus};mem:{mem};disk:{disk};ports:[31000-32000]");
    Resources::parse(&text).unwrap_or_default()
}

fn mem_total_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Free space of the file system holding `dir` (or its nearest existing ancestor), via `df`.
fn free_disk_bytes(dir: &Path) -> Option<u64> {
    let mut probe = dir.to_path_buf();
    while !probe.exists() {
        probe = probe.parent()?.to_path_buf();
    }
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(&probe)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1)?;
    let avail_kb: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(avail_kb * 1024)
}

/// Parses a Mesos duration: a number and a unit among `ns`, `us`, `ms`, `secs`, `mins`, `hrs`,
/// `days`, `weeks` (also `s`, `m`, `h`, `d`); a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 3secs, 500ms, 2mins)"))?;
    let factor = match unit.trim() {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "" | "s" | "sec" | "secs" => 1.0,
        "m" | "min" | "mins" => 60.0,
        "h" | "hr" | "hrs" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        "w" | "week" | "weeks" => 604800.0,
        other => {
            return Err(format!(
            "`{text}`: unknown duration unit `{other}` (ns, us, ms, secs, mins, hrs, days, weeks)"
        ))
        }
    };
    let secs = value * factor;
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(args: &[&str]) -> Result<AgentConfig, clap::Error> {
        let mut v = vec!["mesos-agent"];
        v.extend_from_slice(args);
        AgentConfig::try_parse_from(v)
    }

    #[test]
    fn flags_use_upstream_names() {
        let c = cfg(&[
            "--master=127.0.0.1:5050",
            "--work_dir=/tmp/x",
            "--port=5052",
            "--containerizers=mesos,docker",
            "--executor_shutdown_grace_period=500ms",
            "--kill_tasks_on_shutdown",
        ])
        .unwrap();
        assert_eq!(c.port, 5052);
        assert_eq!(c.master_url().unwrap(), "http://127.0.0.1:5050");
        assert_eq!(c.containerizer_list().unwrap(), ["mesos", "docker"]);
        assert_eq!(c.executor_shutdown_grace_period, Duration::from_millis(500));
        assert!(c.kill_tasks_on_shutdown);
        let c = cfg(&["--master=m:5050", "--work_dir=/tmp/x"]).unwrap();
        assert_eq!(c.port, 5051);
        assert!(!c.kill_tasks_on_shutdown);
        assert!(cfg(&["--master=m:5050"]).is_err(), "work_dir is required");
    }

    #[test]
    fn zk_and_bad_masters_are_refused_with_a_reason() {
        let mut c = AgentConfig::local("zk://127.0.0.1:2181/mesos".into(), "/tmp/x".into());
        let err = c.master_url().unwrap_err().to_string();
        assert!(
            err.contains("ZooKeeper detection comes with the HA issue"),
            "{err}"
        );
        c.master = "nohost".into();
        assert!(c
            .master_url()
            .unwrap_err()
            .to_string()
            .contains("host:port"));
        c.master = "http://h:0".into();
        assert!(c.master_url().is_err());
        c.master = "http://h:5050/".into();
        assert_eq!(c.master_url().unwrap(), "http://h:5050");
    }

    #[test]
    fn isolation_turns_cgroups_on_or_off() {
        let c = cfg(&["--master=m:5050", "--work_dir=/tmp/x"]).unwrap();
        assert!(c.cgroups_isolation().unwrap(), "cgroups by default");
        let c = cfg(&[
            "--master=m:5050",
            "--work_dir=/tmp/x",
            "--isolation=posix/cpu,posix/mem",
        ])
        .unwrap();
        assert!(!c.cgroups_isolation().unwrap());
        let mut c = AgentConfig::local("h:1".into(), "/tmp/x".into());
        c.isolation = "posix/cpu,cgroups/mem".into();
        assert!(c.cgroups_isolation().unwrap());
        c.isolation = "posix/cpu,bogus/thing".into();
        let err = c.cgroups_isolation().unwrap_err().to_string();
        assert!(err.contains("`bogus/thing`"), "{err}");
        c.isolation = "cpu".into();
        assert!(c.cgroups_isolation().is_err());
    }

    #[test]
    fn unknown_containerizer_is_named() {
        let mut c = AgentConfig::local("h:1".into(), "/tmp/x".into());
        c.containerizers = "mesos,rkt".into();
        let err = c.containerizer_list().unwrap_err().to_string();
        assert!(err.contains("`rkt`"), "{err}");
    }

    #[test]
    fn given_resources_win_and_the_rest_is_detected() {
        let mut c = AgentConfig::local("h:1".into(), std::env::temp_dir());
        c.resources = Some("cpus:3;mem:100;gpus:1".into());
        let r = c.resource_set().unwrap();
        assert_eq!(r.cpus(), 3.0);
        assert_eq!(r.mem(), 100.0);
        assert_eq!(r.scalar("gpus"), Some(1.0));
        assert!(r.disk() > 0.0);
        assert_eq!(r.ports().count(), 1001);
        c.resources = Some("cpus:x".into());
        assert!(c
            .resource_set()
            .unwrap_err()
            .to_string()
            .contains("--resources"));
    }

    #[test]
    fn detected_memory_keeps_at_least_half() {
        let r = detect_resources(&std::env::temp_dir());
        let total = mem_total_bytes().unwrap() as f64 / MIB;
        assert!(r.mem() >= (total / 2.0).floor() - 1.0 && r.mem() <= total);
        assert!(r.cpus() >= 1.0);
    }

    #[tokio::test]
    async fn announced_ip_comes_from_the_hostname_or_falls_back_to_loopback() {
        let lo = IpAddr::from([127, 0, 0, 1]);
        assert_eq!(resolve_host_ip("localhost").await, lo);
        let c = AgentConfig::try_parse_from([
            "mesos-agent",
            "--master=m:1",
            "--work_dir=/tmp/x",
            "--advertise_ip=10.1.2.3",
        ])
        .unwrap();
        assert_eq!(c.advertise_ip, Some(IpAddr::from([10, 1, 2, 3])));
    }

    #[test]
    fn durations_parse_like_mesos() {
        assert_eq!(parse_duration("3secs").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("1.5mins").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert!(parse_duration("3parsecs").unwrap_err().contains("parsecs"));
        assert!(parse_duration("abc").is_err());
    }
}
