//! Marathon's flags, with the environment variables upstream reads (`MARATHON_<FLAG>`).
//!
//! Unknown or unsupported `MARATHON_*` variables (the guide sets `MARATHON_HTTPS_ADDRESS`) are
//! logged as ignored by [`log_ignored_env`], never fatal.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::scheduler_client::{MasterUrl, MasterUrlError};

/// `marathon`'s flags.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "marathon",
    about = "Marathon: long-running apps on a Mesos cluster (v2 REST API, v1 scheduler API)"
)]
pub struct MarathonFlags {
    /// The Mesos master: `host:port` or `http://host:port` (`zk://` needs ZooKeeper support,
    /// not built yet).
    #[arg(long, env = "MARATHON_MASTER", default_value = "127.0.0.1:5050")]
    pub master: String,
    /// ZooKeeper URL for Marathon's own state (`zk://host:port/marathon`): not supported yet.
    #[arg(long, env = "MARATHON_ZK")]
    pub zk: Option<String>,
    /// The address the REST API listens on.
    #[arg(
        long = "http_address",
        alias = "http-address",
        env = "MARATHON_HTTP_ADDRESS",
        default_value = "0.0.0.0"
    )]
    pub http_address: String,
    /// The REST API's port.
    #[arg(
        long = "http_port",
        alias = "http-port",
        env = "MARATHON_HTTP_PORT",
        default_value_t = 8080
    )]
    pub http_port: u16,
    /// The hostname Marathon advertises (`/v2/leader`, the framework's hostname).
    #[arg(long, env = "MARATHON_HOSTNAME")]
    pub hostname: Option<String>,
    /// The framework's name.
    #[arg(
        long = "framework_name",
        alias = "framework-name",
        env = "MARATHON_FRAMEWORK_NAME",
        default_value = "marathon"
    )]
    pub framework_name: String,
    /// The role Marathon subscribes with and apps default to.
    #[arg(
        long = "mesos_role",
        alias = "mesos-role",
        env = "MARATHON_MESOS_ROLE",
        default_value = "*"
    )]
    pub mesos_role: String,
    /// Milliseconds a launched task may take to reach TASK_RUNNING before it is killed.
    #[arg(
        long = "task_launch_timeout",
        alias = "task-launch-timeout",
        env = "MARATHON_TASK_LAUNCH_TIMEOUT",
        default_value_t = 300_000
    )]
    pub task_launch_timeout: u64,
    /// Deployments that may run at the same time (403 beyond).
    #[arg(
        long = "max_running_deployments",
        alias = "max-running-deployments",
        env = "MARATHON_MAX_RUNNING_DEPLOYMENTS",
        default_value_t = 100
    )]
    pub max_running_deployments: u32,
    /// The user tasks run as (default: the user Marathon runs as).
    #[arg(long = "mesos_user", alias = "mesos-user", env = "MARATHON_MESOS_USER")]
    pub mesos_user: Option<String>,
    /// Where Marathon keeps its state (default `./marathon-data`).
    #[arg(long = "work_dir", alias = "work-dir", env = "MARATHON_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Seconds the master keeps Marathon's tasks after it disconnects.
    #[arg(
        long = "failover_timeout",
        alias = "failover-timeout",
        env = "MARATHON_FAILOVER_TIMEOUT",
        default_value_t = 604_800
    )]
    pub failover_timeout: u64,
    /// Seed of the scheduler's random choices (default: from the clock).
    #[arg(long, env = "MARATHON_SEED")]
    pub seed: Option<u64>,
}

/// The flags upstream Marathon reads from `MARATHON_<NAME>`, that this build understands.
const KNOWN_ENV: &[&str] = &[
    "MARATHON_MASTER",
    "MARATHON_ZK",
    "MARATHON_HTTP_ADDRESS",
    "MARATHON_HTTP_PORT",
    "MARATHON_HOSTNAME",
    "MARATHON_FRAMEWORK_NAME",
    "MARATHON_MESOS_ROLE",
    "MARATHON_TASK_LAUNCH_TIMEOUT",
    "MARATHON_MAX_RUNNING_DEPLOYMENTS",
    "MARATHON_MESOS_USER",
    "MARATHON_WORK_DIR",
    "MARATHON_FAILOVER_TIMEOUT",
    "MARATHON_SEED",
    // Read by the logging setup of the binary.
    "MARATHON_LOG",
];

/// The `MARATHON_*` variables in `vars` this build does not use.
pub fn ignored_env(vars: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    let mut out: Vec<String> = vars
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("MARATHON_") && !KNOWN_ENV.contains(&k.as_str()))
        .collect();
    out.sort();
    out
}

/// Logs every ignored `MARATHON_*` variable of the process environment.
pub fn log_ignored_env() {
    for name in ignored_env(std::env::vars()) {
        tracing::warn!(variable = %name, "ignoring an unsupported Marathon setting");
    }
}

/// Why the flags cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `--master` is unusable.
    #[error("--master: {0}")]
    Master(#[from] MasterUrlError),
    /// `--zk` was given.
    #[error("--zk '{0}': Marathon's state in ZooKeeper needs ZooKeeper support, which this build does not have yet; leave --zk unset (state goes to --work_dir)")]
    NeedsZooKeeper(String),
}

impl MarathonFlags {
    /// Defaults for tests and `mesos-local`: the given master, any free port, state in `work_dir`.
    pub fn local(master: &str, work_dir: PathBuf) -> Self {
        let mut f = MarathonFlags::parse_from(["marathon"]);
        f.master = master.to_string();
        f.http_address = "127.0.0.1".into();
        f.http_port = 0;
        f.work_dir = Some(work_dir);
        f.zk = None;
        f
    }

    /// The master's URL.
    pub fn master_url(&self) -> Result<MasterUrl, ConfigError> {
        if let Some(zk) = &self.zk {
            return Err(ConfigError::NeedsZooKeeper(zk.clone()));
        }
        Ok(MasterUrl::parse(&self.master)?)
    }

    /// The state directory.
    pub fn work_dir(&self) -> PathBuf {
        self.work_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("marathon-data"))
    }

    /// The task launch timeout.
    pub fn launch_timeout(&self) -> Duration {
        Duration::from_millis(self.task_launch_timeout)
    }

    /// The user tasks run as.
    pub fn user(&self) -> String {
        self.mesos_user.clone().unwrap_or_else(|| {
            std::env::var("USER")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "root".into())
        })
    }

    /// The advertised hostname.
    pub fn advertised_host(&self) -> String {
        self.hostname.clone().unwrap_or_else(|| {
            if self.http_address == "0.0.0.0" {
                "127.0.0.1".into()
            } else {
                self.http_address.clone()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_marathon_variables_are_listed() {
        let vars = vec![
            ("MARATHON_HTTPS_ADDRESS".to_string(), "0.0.0.0".to_string()),
            ("MARATHON_MASTER".to_string(), "m:5050".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        assert_eq!(
            ignored_env(vars),
            vec!["MARATHON_HTTPS_ADDRESS".to_string()]
        );
    }

    #[test]
    fn zk_gives_a_clear_error() {
        let mut f = MarathonFlags::local("zk://z:2181/mesos", "/tmp/x".into());
        let e = f.master_url().unwrap_err().to_string();
        assert!(e.contains("needs ZooKeeper support"), "{e}");
        f.master = "127.0.0.1:5050".into();
        f.zk = Some("zk://z:2181/marathon".into());
        let e = f.master_url().unwrap_err().to_string();
        assert!(e.contains("needs ZooKeeper support"), "{e}");
    }

    #[test]
    fn upstream_flag_spellings_parse() {
        let f = MarathonFlags::parse_from([
            "marathon",
            "--master",
            "http://m:5050",
            "--http_port",
            "9090",
            "--framework_name",
            "mara",
            "--task_launch_timeout",
            "1000",
        ]);
        assert_eq!(f.http_port, 9090);
        assert_eq!(f.framework_name, "mara");
        assert_eq!(f.master_url().unwrap().base(), "http://m:5050");
    }
}
