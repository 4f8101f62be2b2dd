//! The `mesos-agent` daemon: registers with a master, runs tasks through `mesos-runtime`, sends
//! their status updates reliably, checkpoints under its work directory and recovers after a
//! restart.
//!
//! Layout (a thin shell: every decision is [`mesos_core::agent::Agent`]'s, the sans-IO core):
//! - [`config`]: flags and what is derived from them (master URL, detected resources).
//! - [`spec`]: `TaskInfo` to the runtime's `ContainerSpec`.
//! - [`fetcher`]: `CommandInfo.uris` into the sandbox before launch.
//! - [`health`]: Mesos health checks (COMMAND, HTTP, TCP): parsing and probing.
//! - [`checkpoint`]: the checkpoint files under `<work_dir>/meta/` (`agent.json` and the task
//!   journal, a [`mesos_runtime::LineJournal`]) and the thread that writes them.
//! - [`link`]: registration, the command stream and message sending (the agent <-> master protocol).
//! - [`daemon`]: the one task that owns the core, `select!`s over its inputs and carries out its
//!   outputs.
//! - [`state`]: `/state` and `/metrics/snapshot` from the core's queries.
//! - [`sandboxes`]: finding and deleting sandboxes (which and when is the core's choice).
//! - [`http`]: `/state`, `/health`, `/metrics/snapshot` and the sandbox `/files/*` endpoints.

pub mod checkpoint;
pub mod config;
pub mod daemon;
pub mod fetcher;
pub mod health;
pub mod http;
pub mod link;
pub mod sandboxes;
pub mod spec;
pub mod state;

use std::path::PathBuf;

pub use config::AgentConfig;

/// Why the agent daemon stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentDaemonError {
    /// A flag's value is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The work directory or a checkpoint could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A checkpoint exists but cannot be read back.
    #[error("checkpoint {path} is corrupt: {reason}")]
    CorruptCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The master removed this agent for good; it may not come back with this id.
    #[error("the master removed agent {0}; clear the work directory to register as a new agent")]
    Removed(String),
    /// The master refused the registration as invalid.
    #[error("the master refused this agent's registration: {0}")]
    RegistrationRefused(String),
    /// A runtime could not recover its containers (upstream refuses to start then, too).
    #[error("the {runtime} containerizer could not recover its containers: {reason}")]
    Recovery {
        /// The runtime.
        runtime: String,
        /// Why.
        reason: String,
    },
    /// The HTTP server failed.
    #[error("HTTP server: {0}")]
    Server(std::io::Error),
}

/// Runs the agent until `shutdown` turns true: serves `/state`, `/health`, `/metrics/snapshot`
/// and the sandbox `/files/*` endpoints on `listener`,
/// recovers what a previous run checkpointed under the work directory, registers with the master
/// (retrying with backoff while it is unreachable) and runs the tasks it sends.
///
/// With `kill_tasks_on_shutdown` false (the default) tasks keep running after it returns, and a
/// later `run` on the same work directory recovers them and reregisters with the same id.
pub async fn run(
    config: AgentConfig,
    listener: tokio::net::TcpListener,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), AgentDaemonError> {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use mesos_core::master::Address;
    use mesos_runtime::{
        ContainerRuntime, DockerConfig, DockerRuntime, LxcConfig, LxcRuntime, ProcessConfig,
        ProcessRuntime,
    };
    use tokio::sync::mpsc;

    let master = config.master_url()?;
    let containerizers = config.containerizer_list()?;
    let attributes = config.attribute_set()?;
    let cgroups = config.cgroups_isolation()?;
    let work_dir = if config.work_dir.is_absolute() {
        config.work_dir.clone()
    } else {
        std::env::current_dir()
            .map_err(|source| AgentDaemonError::Io {
                path: config.work_dir.clone(),
                source,
            })?
            .join(&config.work_dir)
    };
    std::fs::create_dir_all(&work_dir).map_err(|source| AgentDaemonError::Io {
        path: work_dir.clone(),
        source,
    })?;
    let resources = config.resource_set()?;
    if resources.is_empty() {
        return Err(AgentDaemonError::Config(
            "--resources: the agent has no resources to offer".into(),
        ));
    }
    let local = listener.local_addr().map_err(AgentDaemonError::Server)?;
    let hostname = config.announced_hostname();
    let ip = match (config.advertise_ip, config.ip) {
        (Some(a), _) => a,
        (None, Some(ip)) if !ip.is_unspecified() => ip,
        _ if !local.ip().is_unspecified() => local.ip(),
        // Listening everywhere: announce what the hostname resolves to, as upstream does.
        _ => config::resolve_host_ip(&hostname).await,
    };
    let switch_user = config.switch_user && config::running_as_root();

    let now = mesos_core::time::Time::from_nanos(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0),
    );
    let saved = checkpoint::load(&work_dir, now)?;
    let instance = saved
        .as_ref()
        .map(|c| c.instance.clone())
        .filter(|i| !i.is_empty())
        .unwrap_or_else(daemon::new_instance);

    let mut runtimes: BTreeMap<String, Arc<dyn ContainerRuntime>> = BTreeMap::new();
    for name in &containerizers {
        let dir = daemon::runtime_dir(&work_dir, name);
        let rt: Arc<dyn ContainerRuntime> = match name.as_str() {
            "mesos" => {
                let mut c = ProcessConfig::new(dir);
                c.cgroups = cgroups;
                if let Some(root) = &config.cgroups_root {
                    c.cgroups_root = root.clone();
                }
                Arc::new(ProcessRuntime::new(c))
            }
            "docker" => {
                let mut c = DockerConfig::new(instance.clone(), dir);
                c.endpoint = config.docker_socket.clone();
                Arc::new(DockerRuntime::new(c))
            }
            _ => {
                let mut c = LxcConfig::new(instance.clone(), dir);
                if let Some(root) = &config.cgroups_root {
                    c.cgroups_root = root.clone();
                }
                Arc::new(LxcRuntime::new(c))
            }
        };
        runtimes.insert(name.clone(), rt);
    }

    let flags = serde_json::json!({
        "master": config.master,
        "work_dir": work_dir.display().to_string(),
        "containerizers": containerizers.join(","),
        "isolation": config.isolation,
        "port": local.port().to_string(),
        "hostname": hostname,
        "resources": config.resources,
        "attributes": config.attributes,
        "executor_shutdown_grace_period": format!("{}secs", config.executor_shutdown_grace_period.as_secs_f64()),
    });
    let identity = daemon::Identity {
        hostname: hostname.clone(),
        address: Address {
            hostname,
            ip: ip.to_string(),
            port: local.port(),
        },
        resources,
        attributes,
        master: master.clone(),
        flags,
    };
    let settings = daemon::Settings {
        work_dir: work_dir.clone(),
        grace: config.executor_shutdown_grace_period,
        switch_user,
        kill_tasks_on_shutdown: config.kill_tasks_on_shutdown,
        max_completed: config.max_completed_tasks,
        gc_delay: config.gc_delay,
        containerizers,
    };

    let (input_tx, input_rx) = mpsc::channel(1024);
    let (out_tx, out_rx) = mpsc::channel(1024);
    let (ctl_tx, ctl_rx) = mpsc::channel(4);
    let mut agent = daemon::Agent::new(
        saved,
        instance,
        identity,
        settings,
        runtimes,
        input_tx.clone(),
        out_tx,
        checkpoint::Writer::start(work_dir.clone())?,
    );
    agent.recover().await?;
    agent.scan_sandboxes();

    let client =
        link::MasterClient::new(master).map_err(|e| AgentDaemonError::Config(e.to_string()))?;
    let backoff = link::registration_backoff(
        config
            .registration_backoff_factor
            .max(std::time::Duration::from_millis(10)),
        config.registration_backoff_max,
    );
    let mut background = tokio::task::JoinSet::new();
    background.spawn(link::connection(
        client.clone(),
        input_tx.clone(),
        ctl_rx,
        backoff,
    ));
    background.spawn(link::sender(client, out_rx, input_tx.clone(), ctl_tx));

    let app = http::router(input_tx, &work_dir);
    let mut server_shutdown = shutdown.clone();
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = async {
                        while !*server_shutdown.borrow() {
                            if server_shutdown.changed().await.is_err() {
                                break;
                            }
                        }
                    } => {}
                    _ = stopped_rx => {}
                }
            })
            .await
    });

    let result = agent.run(input_rx, shutdown).await;
    background.shutdown().await;
    let _ = stopped_tx.send(());
    if let Ok(Err(e)) = server.await {
        if result.is_ok() {
            return Err(AgentDaemonError::Server(e));
        }
    }
    result
}
