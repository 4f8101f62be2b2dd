//! `mesos-local`: one master and N agents in one process on loopback.
//!
//! [`LocalCluster::start`] binds and starts everything and waits until the master answers
//! `/master/health` and every agent has registered; [`LocalCluster::stop`] stops the agents first
//! (they kill their tasks, containers included) and then the master. [`run`] does both around a
//! shutdown signal, for the binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::agent::{self, AgentConfig, AgentDaemonError};
use crate::master::{self, MasterDaemonError, MasterFlags};

/// `mesos-local`'s flags.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "mesos-local",
    about = "A Mesos cluster (one master, N agents) in one process on loopback"
)]
pub struct LocalFlags {
    /// Number of agents.
    #[arg(long, env = "MESOS_LOCAL_AGENTS", default_value_t = 1)]
    pub agents: usize,
    /// The master's port (0: any free port); agents take the ports after it.
    #[arg(
        long = "master-port",
        alias = "master_port",
        env = "MESOS_LOCAL_MASTER_PORT",
        default_value_t = 5050
    )]
    pub master_port: u16,
    /// Marathon's port (0: any free port; a busy port falls back to a free one).
    #[arg(
        long = "marathon-port",
        alias = "marathon_port",
        env = "MESOS_LOCAL_MARATHON_PORT",
        default_value_t = 8080
    )]
    pub marathon_port: u16,
    /// Leave Marathon out.
    #[arg(long = "no-marathon", alias = "no_marathon")]
    pub no_marathon: bool,
    /// Where the master's registry and the agents' sandboxes go (default: a directory under
    /// the system temp dir).
    #[arg(long = "work-dir", alias = "work_dir", env = "MESOS_LOCAL_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Containerizers of every agent (`mesos,docker,lxc`); default `mesos`, plus `docker`
    /// when a Docker engine answers on `$DOCKER_HOST` or `/var/run/docker.sock`.
    #[arg(long, env = "MESOS_LOCAL_CONTAINERIZERS")]
    pub containerizers: Option<String>,
    /// Resources of each agent in Mesos text form (`cpus:4;mem:4096`); give the flag once for
    /// all agents or once per agent. Unset: detected from the machine.
    #[arg(long = "agent-resources", alias = "agent_resources")]
    pub agent_resources: Vec<String>,
    /// Attributes of every agent in Mesos text form.
    #[arg(long = "agent-attributes", alias = "agent_attributes")]
    pub agent_attributes: Option<String>,
    /// The master's agent ping interval (Mesos duration, e.g. `1secs`).
    #[arg(
        long = "agent-ping-timeout",
        alias = "agent_ping_timeout",
        default_value = "15secs"
    )]
    pub agent_ping_timeout: String,
    /// Missed pings before an agent is unreachable.
    #[arg(
        long = "max-agent-ping-timeouts",
        alias = "max_agent_ping_timeouts",
        default_value_t = 5
    )]
    pub max_agent_ping_timeouts: u32,
    /// The allocation interval (Mesos duration).
    #[arg(
        long = "allocation-interval",
        alias = "allocation_interval",
        default_value = "1secs"
    )]
    pub allocation_interval: String,
    /// Seed of the master's random choices.
    #[arg(long)]
    pub seed: Option<u64>,
}

impl LocalFlags {
    /// Defaults (as if no flag was given) with free ports, for tests.
    pub fn for_tests(agents: usize, work_dir: PathBuf) -> Self {
        let mut f = LocalFlags::parse_from(["mesos-local"]);
        f.agents = agents;
        f.master_port = 0;
        f.work_dir = Some(work_dir);
        f.containerizers = Some("mesos".into());
        f.marathon_port = 0;
        f.no_marathon = true;
        f
    }
}

/// Why `mesos-local` failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// A flag is unusable.
    #[error("invalid flag --{flag}: {reason}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// Why.
        reason: String,
    },
    /// A port could not be bound or a directory created.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The master failed.
    #[error("master: {0}")]
    Master(#[from] MasterDaemonError),
    /// An agent failed.
    #[error("agent {index}: {source}")]
    Agent {
        /// Which agent.
        index: usize,
        /// Its error.
        source: AgentDaemonError,
    },
    /// Marathon failed.
    #[error("marathon: {0}")]
    Marathon(#[from] crate::marathon::MarathonError),
    /// The master did not become healthy.
    #[error("the master did not answer /master/health within {0:?}")]
    NotReady(Duration),
}

/// A running local cluster.
pub struct LocalCluster {
    /// The master's address.
    pub master_addr: SocketAddr,
    /// The agents' addresses.
    pub agent_addrs: Vec<SocketAddr>,
    /// The work directory.
    pub work_dir: PathBuf,
    /// Marathon, unless `--no-marathon`.
    pub marathon: Option<crate::marathon::LocalMarathon>,
    master_stop: watch::Sender<bool>,
    agents_stop: Vec<watch::Sender<bool>>,
    master_task: JoinHandle<Result<(), MasterDaemonError>>,
    agent_tasks: Vec<JoinHandle<Result<(), AgentDaemonError>>>,
}

/// True when a Docker engine answers `GET /_ping` on `$DOCKER_HOST` or `/var/run/docker.sock`.
pub async fn docker_answers() -> bool {
    let target =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let probe = async {
        let request = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";
        let mut buf = vec![0u8; 256];
        let n = if let Some(path) = target.strip_prefix("unix://") {
            let mut s = tokio::net::UnixStream::connect(path).await.ok()?;
            s.write_all(request).await.ok()?;
            s.read(&mut buf).await.ok()?
        } else if let Some(addr) = target.strip_prefix("tcp://") {
            let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
            s.write_all(request).await.ok()?;
            s.read(&mut buf).await.ok()?
        } else {
            return None;
        };
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        Some(head.starts_with("HTTP/1.") && head.contains(" 200 "))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Some(true))
    )
}

async fn bind(ip: &str, port: u16, fallback_any: bool) -> Result<TcpListener, LocalError> {
    match TcpListener::bind((ip, port)).await {
        Ok(l) => Ok(l),
        Err(e) if fallback_any && port != 0 => {
            tracing::warn!(port, error = %e, "port busy; using a free port");
            TcpListener::bind((ip, 0))
                .await
                .map_err(|source| LocalError::Io {
                    what: format!("bind {ip}:0"),
                    source,
                })
        }
        Err(source) => Err(LocalError::Io {
            what: format!("bind {ip}:{port}"),
            source,
        }),
    }
}

impl LocalCluster {
    /// Starts the master and the agents, and waits until the master is healthy and the agents
    /// have registered (or 30 s passed).
    pub async fn start(flags: LocalFlags) -> Result<Self, LocalError> {
        if flags.agents == 0 {
            return Err(LocalError::Flag {
                flag: "agents",
                reason: "at least one agent is needed".into(),
            });
        }
        if flags.agent_resources.len() > 1 && flags.agent_resources.len() != flags.agents {
            return Err(LocalError::Flag {
                flag: "agent-resources",
                reason: format!(
                    "given {} times for {} agents: give it once for all agents or once per agent",
                    flags.agent_resources.len(),
                    flags.agents
                ),
            });
        }
        let work_dir = flags.work_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("mesos-local-{}", std::process::id()))
        });
        std::fs::create_dir_all(&work_dir).map_err(|source| LocalError::Io {
            what: format!("create {}", work_dir.display()),
            source,
        })?;
        let containerizers = match &flags.containerizers {
            Some(c) => c.clone(),
            None if docker_answers().await => "mesos,docker".to_string(),
            None => "mesos".to_string(),
        };
        let ip = "127.0.0.1";
        let master_listener = bind(ip, flags.master_port, false).await?;
        let master_addr = master_listener
            .local_addr()
            .map_err(|source| LocalError::Io {
                what: "master address".into(),
                source,
            })?;

        let mut mflags = MasterFlags::local();
        mflags.ip = ip.into();
        mflags.port = master_addr.port();
        mflags.hostname = Some(ip.into());
        mflags.work_dir = Some(work_dir.join("master"));
        mflags.agent_ping_timeout = flags.agent_ping_timeout.clone();
        mflags.max_agent_ping_timeouts = flags.max_agent_ping_timeouts;
        mflags.allocation_interval = flags.allocation_interval.clone();
        mflags.seed = flags.seed;
        mflags.cluster = Some("mesos-local".into());
        mflags.zk = None;
        let (master_stop, master_rx) = watch::channel(false);
        let master_task = tokio::spawn(master::run(mflags, master_listener, master_rx));

        let mut agent_addrs = Vec::new();
        let mut agents_stop = Vec::new();
        let mut agent_tasks = Vec::new();
        for i in 0..flags.agents {
            let port = if flags.master_port == 0 {
                0
            } else {
                flags.master_port.saturating_add(1 + i as u16)
            };
            let listener = bind(ip, port, true).await?;
            let addr = listener.local_addr().map_err(|source| LocalError::Io {
                what: "agent address".into(),
                source,
            })?;
            let mut cfg =
                AgentConfig::local(master_addr.to_string(), work_dir.join(format!("agent-{i}")));
            cfg.port = addr.port();
            cfg.containerizers = containerizers.clone();
            cfg.kill_tasks_on_shutdown = true;
            cfg.resources = match flags.agent_resources.len() {
                0 => None,
                1 => Some(flags.agent_resources[0].clone()),
                _ => Some(flags.agent_resources[i].clone()),
            };
            cfg.attributes = flags.agent_attributes.clone();
            cfg.registration_backoff_factor = Duration::from_millis(200);
            cfg.registration_backoff_max = Duration::from_secs(2);
            let (tx, rx) = watch::channel(false);
            agent_tasks.push(tokio::spawn(agent::run(cfg, listener, rx)));
            agents_stop.push(tx);
            agent_addrs.push(addr);
        }
        let cluster = LocalCluster {
            master_addr,
            agent_addrs,
            work_dir,
            marathon: None,
            master_stop,
            agents_stop,
            master_task,
            agent_tasks,
        };
        let mut cluster = cluster;
        cluster.wait_ready(Duration::from_secs(30)).await?;
        if !flags.no_marathon {
            let listener = bind(ip, flags.marathon_port, true).await?;
            let mflags = crate::marathon::MarathonFlags::local(
                &cluster.master_url(),
                cluster.work_dir.join("marathon"),
            );
            cluster.marathon = Some(crate::marathon::LocalMarathon::start_on(mflags, listener)?);
        }
        Ok(cluster)
    }

    /// `http://127.0.0.1:<master port>`.
    pub fn master_url(&self) -> String {
        format!("http://{}", self.master_addr)
    }

    async fn wait_ready(&self, limit: Duration) -> Result<(), LocalError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| LocalError::Io {
                what: "HTTP client".into(),
                source: std::io::Error::other(e),
            })?;
        let deadline = tokio::time::Instant::now() + limit;
        let base = self.master_url();
        let mut healthy = false;
        while tokio::time::Instant::now() < deadline {
            if self.master_task.is_finished() {
                break;
            }
            if !healthy {
                healthy = client
                    .get(format!("{base}/master/health"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
            }
            if healthy {
                let registered = match client.get(format!("{base}/master/state")).send().await {
                    Ok(r) => r
                        .json::<serde_json::Value>()
                        .await
                        .ok()
                        .and_then(|s| s.get("activated_slaves").and_then(|v| v.as_u64()))
                        .unwrap_or(0),
                    Err(_) => 0,
                };
                if registered as usize >= self.agent_addrs.len() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if healthy {
            tracing::warn!("not every agent registered within {limit:?}; continuing");
            return Ok(());
        }
        Err(LocalError::NotReady(limit))
    }

    /// `http://127.0.0.1:<marathon port>`, when Marathon runs.
    pub fn marathon_url(&self) -> Option<String> {
        self.marathon.as_ref().map(|m| m.url())
    }

    /// Stops Marathon, the agents (killing their tasks), then the master.
    pub async fn stop(mut self) -> Result<(), LocalError> {
        if let Some(m) = self.marathon.take() {
            if let Err(e) = m.stop().await {
                tracing::warn!(error = %e, "marathon stopped with an error");
            }
        }
        for tx in &self.agents_stop {
            let _ = tx.send(true);
        }
        let mut first_err = None;
        for (index, t) in self.agent_tasks.into_iter().enumerate() {
            match tokio::time::timeout(Duration::from_secs(30), t).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(source))) => {
                    tracing::warn!(index, error = %source, "agent stopped with an error");
                    first_err.get_or_insert(LocalError::Agent { index, source });
                }
                Ok(Err(e)) => tracing::warn!(index, error = %e, "agent task failed"),
                Err(_) => tracing::warn!(index, "agent did not stop within 30 s"),
            }
        }
        let _ = self.master_stop.send(true);
        match tokio::time::timeout(Duration::from_secs(15), self.master_task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                first_err.get_or_insert(LocalError::Master(e));
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "master task failed"),
            Err(_) => tracing::warn!("master did not stop within 15 s"),
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Starts the cluster, prints `mesos-local: ready at http://127.0.0.1:<port>` once it is
/// ready, and stops everything when `shutdown` turns true.
pub async fn run(flags: LocalFlags, mut shutdown: watch::Receiver<bool>) -> Result<(), LocalError> {
    let cluster = LocalCluster::start(flags).await?;
    println!("mesos-local: ready at {}", cluster.master_url());
    if let Some(url) = cluster.marathon_url() {
        println!("mesos-local: marathon at {url}");
    }
    tracing::info!(
        work_dir = %cluster.work_dir.display(),
        agents = ?cluster.agent_addrs,
        "mesos-local running"
    );
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
    cluster.stop().await
}
